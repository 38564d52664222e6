// SPDX-License-Identifier: GPL-2.0-only
// Golden layouts of the listings: every column as ipvsadm's printf puts it (ipvsadm.c print_title,
// print_service_entry, print_largenum, print_conn, list_timeout), fed plain data.
import t from 'tap'
import { formatApply, formatConns, formatCounters, formatDiff, formatList, formatStatus, formatTimeouts, largenum, rates, table, compareServices } from '../../src/cli/format'
import type { ConnRow, RealRow, ServiceRow, Snapshot } from '../../src/cli/backend'
import { ZERO_STATS, type StatTotals } from '../../src/dataplane/reader'
import { diffModels } from '../../src/model/diff'
import { emptyModel, portService, realServer, serviceGroup } from '../../src/model/defaults'
import type { RealServer, Service } from '../../src/model/types'

const real = (id: number, server: RealServer, active = 0, inactive = 0, stats: Partial<StatTotals> = {}, persistent = 0): RealRow =>
  ({ id, server, flags: 0, stats: { ...ZERO_STATS, ...stats }, active, inactive, persistent })
const row = (id: number, service: Service, reals: RealRow[], stats: Partial<StatTotals> = {}): ServiceRow =>
  ({ id, service, stats: { ...ZERO_STATS, ...stats }, reals })
const snap = (services: ServiceRow[], size = 4096): Snapshot =>
  ({ takenAtMs: 0, connTableSize: size, timeouts: { tcp: 900, tcpfin: 120, udp: 300 }, services, counters: {} })

// The LVS documentation's NAT example, as `ipvsadm -Ln` prints it.
const lvsExample = (): Snapshot => snap([row(0, portService('tcp', '172.16.100.67', 80, { scheduler: 'wrr' }), [
  real(2, realServer('192.168.12.22', 80, { weight: 3, method: 'nat' }), 3, 120),
  real(1, realServer('192.168.12.21', 80, { weight: 1, method: 'nat' }), 1, 40),
])])

t.test('-Ln: the ipvsadm layout, byte for byte', async (t) => {
  t.equal(formatList(lvsExample()), [
    'IP Virtual Server version 1.2.1 (size=4096)',
    'Prot LocalAddress:Port Scheduler Flags',
    '  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn',
    'TCP  172.16.100.67:80 wrr',
    '  -> 192.168.12.21:80             Masq    1      1          40        ',
    '  -> 192.168.12.22:80             Masq    3      3          120       ',
    '',
  ].join('\n'), 'sorted by address, columns padded (with ipvsadm\'s trailing spaces)')
  const unsorted = formatList(lvsExample(), { sort: false })
  t.ok(unsorted.indexOf('192.168.12.22') < unsorted.indexOf('192.168.12.21'), '--nosort keeps the data plane\'s order')
})

t.test('-Ln: every method, persistence, flags, IPv6, groups; services sorted as ipvsadm sorts', async (t) => {
  const s = snap([
    row(3, portService('udp', '10.0.0.1', 53, { scheduler: 'rr' }), [real(7, realServer('10.0.1.1', 53, { method: 'tun' }))]),
    row(1, portService('tcp', '2001:db8::1', 443, { scheduler: 'mh', schedFlags: ['mh-fallback', 'mh-port'], mhTableSize: 16381 }), [
      real(5, realServer('2001:db8::10', 443, { weight: 0 })),
    ]),
    row(0, portService('tcp', '10.0.0.1', 80, { scheduler: 'wlc', persistence: { timeout: 600, netmask: '255.255.255.0' } }), [
      real(3, realServer('10.0.1.2', 8080, { weight: 2, method: 'fullnat' })),
      real(2, realServer('10.0.1.10', 80, { weight: 65535, method: 'dr' })),
    ]),
    row(4, serviceGroup(7, 4, [], { incomplete: 'x' }), []),
    row(5, portService('tcp', '10.0.0.1', 0, { scheduler: 'sh', persistence: { timeout: 300, netmask: '255.255.255.255' } }), []),
  ])
  t.equal(formatList(s, {}), [
    'IP Virtual Server version 1.2.1 (size=4096)',
    'Prot LocalAddress:Port Scheduler Flags',
    '  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn',
    'TCP  10.0.0.1:0 sh persistent 300',
    'TCP  10.0.0.1:80 wlc persistent 600 mask 255.255.255.0',
    '  -> 10.0.1.2:8080                FullNat 2      0          0         ',
    '  -> 10.0.1.10:80                 Route   65535  0          0         ',
    'UDP  10.0.0.1:53 rr',
    '  -> 10.0.1.1:53                  Tunnel  1      0          0         ',
    'TCP  [2001:db8::1]:443 mh (mh-fallback,mh-port)',
    '  -> [2001:db8::10]:443           Route   0      0          0         ',
    'FWM  7 wlc',
    '',
  ].join('\n'))
  t.ok(compareServices(s.services[0]!.service, s.services[3]!.service) < 0, 'port services before groups (fwmark 0 first)')
})

t.test('long names are cut as ipvsadm cuts them (IPv4 only)', async (t) => {
  const names = (a: string, p: number): string => `${a}.very-long-host-name.example.com:${p}`
  const out = formatList(snap([row(0, portService('tcp', '10.0.0.1', 80, { scheduler: 'rr' }), [real(1, realServer('10.0.1.1', 80))])]), { names })
  t.match(out, /^TCP {2}10\.0\.0\.1\.very-long-host-name rr$/m, 'service name: 33 characters')
  t.match(out, /^ {2}-> 10\.0\.1\.1\.very-long-host-name Route/m, 'server name: 28 characters')
})

t.test('--stats, --rate, --thresholds, --persistent-conn and -c layouts', async (t) => {
  const s = snap([row(0, portService('tcp', '10.0.0.1', 80, { scheduler: 'rr' }), [
    real(1, realServer('10.0.1.1', 80, { upperThreshold: 100, lowerThreshold: 50 }), 2, 3, { conns: 5, packetsIn: 123456789, bytesIn: 98765432100 }, 4),
  ], { conns: 5, packetsIn: 123456789, bytesIn: 98765432100, packetsOut: 0, bytesOut: 0 })])
  t.equal(formatList(s, { stats: true }), [
    'IP Virtual Server version 1.2.1 (size=4096)',
    'Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes',
    '  -> RemoteAddress:Port',
    'TCP  10.0.0.1:80                         5  123456K        0   98765M        0',
    '  -> 10.0.1.1:80                         5  123456K        0   98765M        0',
    '',
  ].join('\n'))
  t.match(formatList(s, { stats: true, exact: true }), /^TCP {2}10\.0\.0\.1:80 {25}5 123456789 {8}0 98765432100 {8}0$/m, '--exact: full numbers, one space apart when wide')
  const r = snap([row(0, portService('tcp', '10.0.0.1', 80, { scheduler: 'rr' }), [real(1, realServer('10.0.1.1', 80), 0, 0, { conns: 12, packetsIn: 340, bytesIn: 250000 })],
    { conns: 12, packetsIn: 340, bytesIn: 250000 })])
  t.equal(formatList(r, { rate: true }), [
    'IP Virtual Server version 1.2.1 (size=4096)',
    'Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS',
    '  -> RemoteAddress:Port',
    'TCP  10.0.0.1:80                        12      340        0   250000        0',
    '  -> 10.0.1.1:80                        12      340        0   250000        0',
    '',
  ].join('\n'))
  t.equal(formatList(s, { thresholds: true }).split('\n').slice(1, 5).join('\n'), [
    'Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn ',
    '  -> RemoteAddress:Port',
    'TCP  10.0.0.1:80 rr',
    '  -> 10.0.1.1:80                  100        50         2          3         ',
  ].join('\n'))
  t.equal(formatList(s, { persistentConn: true }).split('\n').slice(1, 5).join('\n'), [
    'Prot LocalAddress:Port            Weight    PersistConn ActiveConn InActConn ',
    '  -> RemoteAddress:Port',
    'TCP  10.0.0.1:80 rr',
    '  -> 10.0.1.1:80                  1         4           2          3         ',
  ].join('\n'))
  const only = formatList(s, {}, s.services[0])
  t.notMatch(only, /IP Virtual Server/, 'one service (-L -t): no version header, as list_service')
  t.match(only, /^Prot LocalAddress:Port Scheduler Flags\n/)
})

t.test('print_largenum', async (t) => {
  t.equal(largenum(0), '        0')
  t.equal(largenum(99_999_999), ' 99999999')
  t.equal(largenum(100_000_000), '  100000K')
  t.equal(largenum(1_000_000_000), '    1000M')
  t.equal(largenum(100_000_000_000), '     100G')
  t.equal(largenum(100_000_000_000_000), '     100T')
  t.equal(largenum(123, true), '      123')
  t.equal(largenum(1_234_567_890, true), ' 1234567890')
})

t.test('rates divide the difference of two snapshots by the time between them', async (t) => {
  const a = snap([row(0, portService('tcp', '10.0.0.1', 80), [real(1, realServer('10.0.1.1', 80), 0, 0, { conns: 10, packetsIn: 100 })], { conns: 10 })])
  const b = snap([row(0, portService('tcp', '10.0.0.1', 80), [real(1, realServer('10.0.1.1', 80), 0, 0, { conns: 30, packetsIn: 500 })], { conns: 30 })])
  a.counters = { rx: 1000 }
  b.counters = { rx: 3000 }
  b.takenAtMs = 2000
  const r = rates(a, b)
  t.equal(r.services[0]!.stats.conns, 10, 'service CPS')
  t.same([r.services[0]!.reals[0]!.stats.conns, r.services[0]!.reals[0]!.stats.packetsIn], [10, 200], 'server CPS and InPPS')
  t.equal(r.counters.rx, 1000, 'counters per second')
})

t.test('-c and --timeout', async (t) => {
  const rows: ConnRow[] = [
    { proto: 'tcp', client: { address: '10.0.0.10', port: 40000 }, virtual: { address: '10.0.0.1', port: 80 }, real: { address: '10.0.1.1', port: 80 }, state: 'ESTABLISHED', expires: 899.7, template: false, serviceId: 0, realId: 1 },
    { proto: 'udp', client: { address: '10.0.0.11', port: 5353 }, virtual: { address: '10.0.0.1', port: 53 }, real: null, state: 'UDP', expires: 61, template: false, serviceId: 1, realId: 9 },
    { proto: 'tcp', client: { address: '10.0.0.0', port: 0 }, virtual: { address: '10.0.0.1', port: 80 }, real: { address: '10.0.1.1', port: 80 }, state: 'NONE', expires: 5, template: true, serviceId: 0, realId: 1 },
  ]
  t.equal(formatConns(rows), [
    'IPVS connection entries',
    'pro expire state       source             virtual            destination',
    'TCP 14:59  ESTABLISHED 10.0.0.10:40000    10.0.0.1:80        10.0.1.1:80',
    'UDP 01:01  UDP         10.0.0.11:5353     10.0.0.1:53        -',
    'IP  00:05  NONE        10.0.0.0:0         10.0.0.1:80        10.0.1.1:80',
    '',
  ].join('\n'))
  t.equal(formatTimeouts({ tcp: 900, tcpfin: 120, udp: 300 }), 'Timeout (tcp tcpfin udp): 900 120 300\n')
  // fullnat connections: one more column, the local address the real server sees
  t.equal(formatConns([rows[0]!, { ...rows[0]!, client: { address: '10.0.0.12', port: 40001 }, real: { address: '10.0.1.2', port: 8080 }, local: { address: '10.0.1.250', port: 20001 } }]), [
    'IPVS connection entries',
    'pro expire state       source             virtual            destination        local',
    'TCP 14:59  ESTABLISHED 10.0.0.10:40000    10.0.0.1:80        10.0.1.1:80        -',
    'TCP 14:59  ESTABLISHED 10.0.0.12:40001    10.0.0.1:80        10.0.1.2:8080      10.0.1.250:20001',
    '',
  ].join('\n'))
})

t.test('xvs: the difference an apply made, status, tables, counters', async (t) => {
  const a = emptyModel()
  a.services = [portService('tcp', '10.0.0.1', 80, { scheduler: 'rr', realServers: [realServer('10.0.1.1', 80), realServer('10.0.1.2', 80)] }),
    portService('udp', '10.0.0.1', 53)]
  const b = emptyModel()
  b.settings.timeouts.tcp = 60
  b.services = [portService('tcp', '10.0.0.1', 80, { scheduler: 'wrr', realServers: [realServer('10.0.1.1', 80, { weight: 3 }), realServer('10.0.1.3', 80)] }),
    portService('tcp', '10.0.0.2', 80, { scheduler: 'mh', realServers: [realServer('10.0.1.4', 80)] })]
  t.equal(formatDiff(diffModels(a, b)), [
    '+ tcp 10.0.0.2:80 mh, 1 real server',
    '- udp 10.0.0.1:53 wlc, 0 real servers',
    '~ tcp 10.0.0.1:80: scheduler rr -> wrr; + 10.0.1.3:80 (dr, weight 1); - 10.0.1.2:80; 10.0.1.1:80: weight 1 -> 3',
    '~ settings: timeouts',
    '',
  ].join('\n'))
  t.equal(formatDiff(diffModels(a, a)), 'no change\n')
  t.equal(formatApply({ diff: diffModels(a, a), notes: [] }, { dryRun: true }), 'no change\ndry run: nothing applied\n')
  t.match(formatApply({ diff: diffModels(a, b), notes: [], result: { services: { added: 1, removed: 1, changed: 1, unchanged: 0 }, reals: { added: 2, removed: 1, changed: 1 }, tablesWritten: 2, slotsWritten: 16385 } }),
    /services: 1 added, 1 removed, 1 changed, 0 unchanged; real servers: 2 added, 1 removed, 1 changed; 2 tables written \(16385 slots\)\n$/)
  t.equal(formatStatus(null), 'xvs data plane: not loaded in this network namespace\n')
  t.equal(formatStatus({
    abiVersion: 1, prog: { id: 12, name: 'xvs_director', tag: 'a185016170f8403b', runCount: 0, runTimeNs: 0 }, pins: null,
    attachments: [{ ifname: 'eth0', ifindex: 2, mode: 'native', via: 'netlink', progId: 12 }],
    maps: [{ name: 'xvs_conns', entries: 10, max: 1000 }],
  }), [
    'xvs data plane: loaded (ABI version 1)',
    'program: xvs_director id 12 tag a185016170f8403b',
    'pins: none (no bpffs visible; found through the kernel)',
    'attached:',
    '  eth0            native  via netlink program 12',
    'maps:',
    '  xvs_conns              10 / 1000  (1.0%)',
    '',
  ].join('\n'))
  t.equal(table([{ id: 1, name: 'a' }, { id: 22, name: 'bb', extra: { x: 1 } }]), 'id  name  extra\n1   a     -\n22  bb    {"x":1}\n')
  t.equal(table([]), '(empty)\n')
  t.equal(formatCounters({ rx: 10, drop: 0 }), '  rx           10\n')
  t.equal(formatCounters({ rx: 0 }), '  (all zero)\n')
})
