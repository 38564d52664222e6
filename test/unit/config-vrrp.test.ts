// SPDX-License-Identifier: GPL-2.0-only
// Failover config: keepalived vrrp_instance / vrrp_sync_group blocks into Model.vrrp (with keepalived's
// corrections as warnings), the YAML `vrrp:` section both ways, and errors that point at the line.
import t from 'tap'
import { parseKeepalived } from '../../src/config/keepalived'
import { parseYaml, toYaml } from '../../src/config/yaml'
import { formatVirtualAddress, parseVirtualAddress } from '../../src/config/yaml-vrrp'
import { deepEqual } from '../../src/model/diff'
import { vrrpInstance } from '../../src/model/vrrp'

const KEEPALIVED = `global_defs {
  router_id LVS_A
  vrrp_version 3
  vrrp_garp_master_delay 1
  vrrp_garp_master_repeat 3
}
vrrp_script chk { script "/bin/true" }
vrrp_sync_group VG1 {
  group {
    VI_1
    VI_6
  }
  notify_master "/etc/keepalived/group.sh master"
}
vrrp_instance VI_1 {
  state MASTER
  interface eth0
  virtual_router_id 51
  priority 150
  advert_int 0.25
  preempt_delay 30
  version 2
  authentication {
    auth_type PASS
    auth_pass longpassword
  }
  virtual_ipaddress {
    10.0.0.100/24 dev eth0 label eth0:vip
    10.0.0.101 brd 10.0.0.255
  }
  virtual_ipaddress_excluded {
    10.0.9.1/24 dev eth1
  }
  unicast_src_ip 10.0.0.1
  unicast_peer {
    10.0.0.2
  }
  track_interface {
    eth1
    eth2 weight -20
  }
  track_script {
    chk
  }
  garp_master_refresh 60
  notify_master /etc/keepalived/m.sh
  notify "/etc/keepalived/any.sh"
}
vrrp_instance VI_6 {
  interface eth0
  virtual_router_id 52
  nopreempt
  advert_int 0.5
  authentication {
    auth_type PASS
    auth_pass x
  }
  virtual_ipaddress { fe80::100/64 }
}
virtual_server 10.0.0.100 80 {
  lb_kind DR
  real_server 10.0.1.1 80 { weight 1 }
}
`

t.test('keepalived vrrp blocks become Model.vrrp', async (t) => {
  const p = parseKeepalived(KEEPALIVED, 'k.conf')
  const v = p.model.vrrp!
  t.equal(v.version, 3, 'global vrrp_version')
  t.same(v.garp, { masterDelay: 1, masterRepeat: 3, masterRefresh: 0, masterRefreshRepeat: 1, interval: 0 }, 'global garp settings over the defaults')
  t.same(v.instances[0], {
    name: 'VI_1', interface: 'eth0', vrid: 51, priority: 150, advertInterval: 1, state: 'MASTER', preempt: true, preemptDelay: 30,
    version: 2,
    virtualAddresses: [{ address: '10.0.0.100', prefix: 24, dev: 'eth0', label: 'eth0:vip' }, { address: '10.0.0.101', prefix: 32 }],
    excludedAddresses: [{ address: '10.0.9.1', prefix: 24, dev: 'eth1' }],
    unicastSrcIp: '10.0.0.1', unicastPeers: ['10.0.0.2'], authPass: 'longpass',
    trackInterfaces: [{ name: 'eth1', weight: 0 }, { name: 'eth2', weight: -20 }], trackServices: [],
    notify: { master: '/etc/keepalived/m.sh', any: '/etc/keepalived/any.sh' },
    garp: { masterRefresh: 60 },
  })
  t.same(v.instances[1], vrrpInstance('VI_6', 'eth0', 52, {
    preempt: false, advertInterval: 0.5, virtualAddresses: [{ address: 'fe80::100', prefix: 64 }],
  }), 'IPv6 under global version 3; nopreempt; authentication dropped')
  t.same(v.syncGroups, [{ name: 'VG1', instances: ['VI_1', 'VI_6'], notify: { master: '/etc/keepalived/group.sh master' } }])
  t.same(p.warnings.map((w) => w.message).sort(), [
    'VRRPv2 advert_int 0.25s must be whole seconds 1..255 - using 1s',
    'auth_pass is longer than 8 characters - truncating',
    'authentication is not supported with VRRPv3 - ignoring',
    'track_script is not run by xvs (use track_services for real-server health); ignored',
    'virtual address option brd 10.0.0.255 is not used by xvs; ignored',
    'vrrp_script chk is not run by xvs; ignored',
  ])
  t.equal(p.raw.filter((b) => b.keyword.startsWith('vrrp_')).length, 4, 'the blocks are still in raw too')
})

t.test('import prints YAML that reads back to the same model', async (t) => {
  const m = parseKeepalived(KEEPALIVED, 'k.conf').model
  const yaml = toYaml(m)
  t.match(yaml, /virtual_addresses: \[ 10\.0\.0\.100\/24 dev eth0 label eth0:vip, 10\.0\.0\.101\/32 \]/)
  t.match(yaml, /track_interfaces: \[ eth1, \{ name: eth2, weight: -20 \} \]/)
  t.ok(deepEqual(parseYaml(yaml, 'x.yaml').model, m), 'parseYaml(toYaml(m)) deep-equals m')
})

t.test('a config without vrrp has no vrrp part', async (t) => {
  t.equal(parseKeepalived('virtual_server 10.0.0.1 80 {\n real_server 10.0.1.1 80 { }\n}\n', 'k').model.vrrp, undefined)
  t.notMatch(toYaml(parseYaml('services: []', 'x').model), /vrrp/)
})

t.test('keepalived errors point at the line', async (t) => {
  const bad = (body: string, re: RegExp) => t.throws(() => parseKeepalived(`vrrp_instance VI_1 {\n${body}\n}\n`, 'k.conf'), { message: re }, String(re))
  bad('  interface eth0\n  virtual_router_id 300', /k\.conf:3:3: virtual_router_id: '300' is not a whole number 1\.\.255/)
  bad('  interface eth0', /vrrp_instance VI_1\.virtual_router_id: is missing/)
  bad('  interface eth0\n  virtual_router_id 1\n  use_vmac', /k\.conf:4:3: .*use_vmac is not supported/)
  bad('  interface eth0\n  virtual_router_id 1\n  priorty 100', /unknown keyword 'priorty' in vrrp_instance VI_1; did you mean 'priority'\?/)
  bad('  interface eth0\n  virtual_router_id 1\n  authentication {\n    auth_type AH\n  }', /k\.conf:5:5: .*auth_type AH is not supported/)
  bad('  interface eth0\n  virtual_router_id 1\n  virtual_ipaddress {\n    10.0.0.1 bogus\n  }', /k\.conf:5:5: .*unknown virtual address option 'bogus'/)
  bad('  interface eth0\n  virtual_router_id 1\n  state ACTIVE', /'ACTIVE' is not MASTER or BACKUP/)
  bad('  interface eth0\n  virtual_router_id 1\n  virtual_ipaddress {\n    10.0.0.1\n    fe80::1\n  }', /k\.conf:6:5: vrrp\.instances\[0\]\.virtualAddresses\[1\]\.address: fe80::1 is IPv6 but the instance is IPv4/)
  t.throws(() => parseKeepalived('vrrp_instance A {\n interface eth0\n virtual_router_id 1\n}\nvrrp_instance B {\n interface eth0\n virtual_router_id 1\n}\n', 'k'),
    { message: /k:7:2: vrrp\.instances\[1\]\.vrid: 1 is already used on eth0 by instances\[0\]/ })
  t.throws(() => parseKeepalived('vrrp_sync_group G {\n group {\n  VI_9\n }\n}\nvrrp_instance A {\n interface eth0\n virtual_router_id 1\n}\n', 'k'),
    { message: /k:3:3: vrrp\.syncGroups\[0\]\.instances\[0\]: 'VI_9' is not an instance/ })
})

const YAML = `services:
  - { name: web, vip: 10.0.0.100, port: 80, real_servers: [{ address: 10.0.1.1 }] }
vrrp:
  instances:
    - name: VI_1
      interface: eth0
      vrid: 51
      virtual_addresses: [10.0.0.100/24]
      track_services: [web, { service: "tcp:10.0.0.100:80", weight: -10 }]
  conn_sync: { instance: VI_1, peers: [10.0.0.2], key: 0123456789abcdef0123 }
`

t.test('YAML vrrp section: defaults, both spellings of an address, round trip', async (t) => {
  const m = parseYaml(YAML, 'x.yaml').model
  t.same(m.vrrp!.instances[0]!.trackServices, [{ service: 'web', weight: 0 }, { service: 'tcp:10.0.0.100:80', weight: -10 }])
  t.same(m.vrrp!.connSync, { instance: 'VI_1', peers: ['10.0.0.2'], port: 8848, interval: 1, holdPreempt: true, holdTimeout: 0, key: '0123456789abcdef0123' })
  t.same(parseYaml(YAML.replace('[10.0.0.100/24]', '[{ address: 10.0.0.100, prefix: 24 }]'), 'x').model, m, 'a mapping means the same as the string')
  t.ok(deepEqual(parseYaml(toYaml(m), 'y').model, m), 'round trip')
  t.same(parseVirtualAddress('2001:db8::1 dev eth1'), { address: '2001:db8::1', prefix: 128, dev: 'eth1' })
  t.match(parseVirtualAddress('10.0.0.1/24 via x'), /not understood/)
  t.equal(formatVirtualAddress({ address: '10.0.0.1', prefix: 24, label: 'eth0:1' }), '10.0.0.1/24 label eth0:1')
})

t.test('YAML vrrp errors are located', async (t) => {
  const bad = (from: string, to: string, re: RegExp) => t.throws(() => parseYaml(YAML.replace(from, to), 'x.yaml'), { message: re }, String(re))
  bad('vrid: 51', 'vrid: 0', /x\.yaml:7:13: vrrp\.instances\[0\]\.vrid: 0 is not a virtual router id/)
  bad('vrid: 51', 'vird: 51', /x\.yaml:7:7: vrrp\.instances\[0\]\.vird: unknown key 'vird'; did you mean 'vrid'\?/)
  bad('[web,', '[webs,', /x\.yaml:9:24: vrrp\.instances\[0\]\.trackServices\[0\]\.service: 'webs' is no service/)
  bad('key: 0123456789abcdef0123', 'key: short', /vrrp\.connSync\.key: is shorter than 16 characters/)
  bad('key: 0123456789abcdef0123', 'port: 1', /vrrp\.connSync: needs exactly one of key and keyFile/)
  bad('instance: VI_1,', 'instance: VI_2,', /x\.yaml:10:26: vrrp\.connSync\.instance: 'VI_2' is neither an instance nor a sync group/)
  bad('      vrid: 51', '      vrid: 51\n      version: 2\n      advert_interval: 0.5', /vrrp\.instances\[0\]\.advertInterval: 0\.5 is not an advert interval for VRRPv2/)
  bad('      vrid: 51', '      vrid: 51\n      version: 3\n      auth_pass: x', /vrrp\.instances\[0\]\.authPass: authentication exists in VRRPv2 only/)
  bad('      vrid: 51', '      vrid: 51\n      preempt: false\n      preempt_delay: 5', /preemptDelay: has no meaning without preemption/)
  bad('[10.0.0.100/24]', '[10.0.0.100/33]', /vrrp\.instances\[0\]\.virtualAddresses\[0\]\.prefix: 33 is not a prefix length for IPv4/)
  bad('[10.0.0.100/24]', '[fd00::1/64]', /VRRPv2 is IPv4 only \(RFC 3768\); use version 3/)
  bad('[10.0.0.100/24]', '["10.0.0.100/24 label x y"]', /not understood/)
})
