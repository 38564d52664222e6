// SPDX-License-Identifier: GPL-2.0-only
// Model.vrrp validation: each rule names the field and the fix.
import t from 'tap'
import { emptyModel } from '../../src/model/defaults'
import { validate } from '../../src/model/validate'
import { connSync, emptyVrrp, findTrackedService, instanceFamily, vrrpInstance } from '../../src/model/vrrp'
import type { Model } from '../../src/model/types'

function model(edit: (m: Model) => void): Model {
  const m = emptyModel()
  m.vrrp = emptyVrrp()
  m.vrrp.instances.push(vrrpInstance('VI_1', 'eth0', 1, { virtualAddresses: [{ address: '10.0.0.1', prefix: 24 }] }))
  edit(m)
  return m
}

t.test('a minimal vrrp part is valid; defaults are keepalived\'s', async (t) => {
  const m = model(() => {})
  t.equal(validate(m), m)
  t.same(m.vrrp!.instances[0], {
    name: 'VI_1', interface: 'eth0', vrid: 1, priority: 100, advertInterval: 1, state: 'BACKUP', preempt: true, preemptDelay: 0,
    virtualAddresses: [{ address: '10.0.0.1', prefix: 24 }], excludedAddresses: [], unicastPeers: [], trackInterfaces: [],
    trackServices: [], notify: {},
  })
  t.same(m.vrrp!.garp, { masterDelay: 5, masterRepeat: 5, masterRefresh: 0, masterRefreshRepeat: 1, interval: 0 })
  t.equal(instanceFamily({ virtualAddresses: [], unicastSrcIp: 'fe80::1' }), 6)
})

t.test('each rule', async (t) => {
  const bad = (edit: (m: Model) => void, re: RegExp) => t.throws(() => validate(model(edit)), { code: 'ECONFIG', message: re }, String(re))
  const i0 = (m: Model) => m.vrrp!.instances[0]!
  bad((m) => { m.vrrp!.version = 4 as 2 }, /vrrp\.version: 4 is not a VRRP version/)
  bad((m) => { m.vrrp!.garp.masterRepeat = 1.5 }, /vrrp\.garp\.masterRepeat: 1\.5 is not a whole number/)
  bad((m) => { i0(m).name = 'two words' }, /instances\[0\]\.name: 'two words' is not an instance name/)
  bad((m) => { i0(m).interface = 'a-very-long-interface-name' }, /interface: .* is not an interface name/)
  bad((m) => { i0(m).priority = 0 }, /priority: 0 is not a priority; use 1\.\.254/)
  bad((m) => { i0(m).state = 'ACTIVE' as 'MASTER' }, /state: 'ACTIVE' is not an initial state/)
  bad((m) => { i0(m).preemptDelay = 2000 }, /preemptDelay: 2000 is not a delay/)
  bad((m) => { i0(m).virtualAddresses.push({ address: '10.0.0.1', prefix: 32 }) }, /virtualAddresses\[1\]: 10\.0\.0\.1 is already listed/)
  bad((m) => { i0(m).excludedAddresses.push({ address: '2001:db8::1', prefix: 64, label: 'eth0:1' }) }, /excludedAddresses\[0\]\.label: labels are for IPv4/)
  bad((m) => { i0(m).virtualAddresses[0]!.dev = 'bad dev' }, /virtualAddresses\[0\]\.dev: 'bad dev' is not an interface name/)
  bad((m) => { i0(m).unicastSrcIp = 'fe80::1' }, /unicastSrcIp: 'fe80::1' is not an IPv4 address/)
  bad((m) => { i0(m).unicastPeers = ['10.0.0.2', '10.0.0.2'] }, /unicastPeers\[1\]: 10\.0\.0\.2 is listed twice/)
  bad((m) => { i0(m).authPass = '123456789' }, /authPass: '123456789' is not a password; use 1\.\.8/)
  bad((m) => { i0(m).trackInterfaces = [{ name: 'eth1', weight: 300 }] }, /trackInterfaces\[0\]\.weight: 300 is not a weight/)
  bad((m) => { i0(m).trackInterfaces = [{ name: 'eth1', weight: 0 }, { name: 'eth1', weight: 5 }] }, /trackInterfaces\[1\]: eth1 is tracked twice/)
  bad((m) => { i0(m).notify = { master: ' ' } }, /notify\.master: ' ' is not a command/)
  bad((m) => { (i0(m).notify as Record<string, string>).up = '/x' }, /notify\.up: is not a notify event/)
  bad((m) => { i0(m).garp = { masterDelay: -1 } }, /instances\[0\]\.garp\.masterDelay: -1 is not a number of seconds/)
  bad((m) => { m.vrrp!.syncGroups = [{ name: 'G', instances: [], notify: {} }] }, /syncGroups\[0\]\.instances: is empty/)
  bad((m) => { m.vrrp!.syncGroups = [{ name: 'G', instances: ['VI_1'], notify: {} }, { name: 'H', instances: ['VI_1'], notify: {} }] }, /syncGroups\[1\]\.instances\[0\]: VI_1 is already in sync group G/)
  bad((m) => { m.vrrp!.syncGroups = [{ name: 'VI_1', instances: ['VI_1'], notify: {} }] }, /syncGroups\[0\]\.name: 'VI_1' is already the name/)
  bad((m) => { m.vrrp!.connSync = connSync('VI_1', ['10.0.0.2'], { key: 'k'.repeat(20), keyFile: '/k' }) }, /connSync: needs exactly one of key and keyFile/)
  bad((m) => { m.vrrp!.connSync = connSync('VI_1', [], { keyFile: '/k' }) }, /connSync\.peers: is empty/)
  bad((m) => { m.vrrp!.connSync = connSync('VI_1', ['10.0.0.2'], { keyFile: '/k', interval: 0 }) }, /connSync\.interval: 0 is not a scan interval/)
  bad((m) => { m.vrrp!.connSync = connSync('VI_1', ['10.0.0.2'], { keyFile: '/k', port: 0 }) }, /connSync\.port: 0 is not a port/)
})

t.test('track_services resolve by name or key, once', async (t) => {
  const m = emptyModel()
  m.services.push({ kind: 'tcp', vip: '10.0.0.1', port: 80, name: 'web', scheduler: 'wlc', schedFlags: [], realServers: [] })
  m.services.push({ kind: 'tcp', vip: '10.0.0.1', port: 443, name: 'web', scheduler: 'wlc', schedFlags: [], realServers: [] })
  t.same(findTrackedService(m, 'tcp:10.0.0.1:443'), [1])
  t.same(findTrackedService(m, 'web'), [0, 1])
  m.vrrp = emptyVrrp()
  m.vrrp.instances.push(vrrpInstance('VI_1', 'eth0', 1, { trackServices: [{ service: 'web', weight: 0 }] }))
  t.throws(() => validate(m), { message: /trackServices\[0\]\.service: 'web' names 2 services/ })
})
