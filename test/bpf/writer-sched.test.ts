// SPDX-License-Identifier: GPL-2.0-only
// The writer with every scheduler, thresholds, persistence and service groups: what it puts in the
// maps, and packets through the program it wrote for (BPF_PROG_TEST_RUN on a detached data plane). A
// service group matches each of its ranges and nothing else; exact and port-0 services come first.
import t, { type Test } from 'tap'
import { needsRoot } from '../helpers/root'
import { loadDetached, type Dataplane } from '../../src/dataplane/loader'
import { applyModel } from '../../src/dataplane/writer'
import { readTable } from '../../src/dataplane/tables'
import {
  Family, GroupKey, LocalityKey, Proto, Real, RealConns, Sched, Service, ServiceFlags, ServiceKey, decodeGroupRanges, groupServiceKey,
  Settings, persistMask, statCounterNames, svcTableSlot,
} from '../../src/dataplane/abi'
import { parseConfig } from '../../src/config'
import { BpfMap } from '../../src/bpf'
import { buildShTable } from '../../src/sched'
import { realOf, tcpPkt, udpPkt } from '../helpers/sched'

const fakeHop = (address: string) => ({
  address, ifname: 'lo', ifindex: 1, srcMac: '02:00:00:00:00:02',
  dstMac: `02:00:00:00:04:${Number(address.split(/[.:]/).pop() || 0).toString(16).padStart(2, '0').slice(-2)}`,
  mtu: 1500, source: address.includes(':') ? 'fd00::1' : '10.0.0.254',
})

function dataplane(t: Test): Dataplane {
  const dp = loadDetached({ connTableSize: 4096 })
  t.teardown(() => dp.close())
  return dp
}

const apply = (dp: Dataplane, yaml: string) => applyModel(dp, parseConfig(yaml, 'test.yaml', 'yaml').model, { resolve: fakeHop })
const u32 = (n: number): Buffer => { const b = Buffer.alloc(4); b.writeUInt32LE(n); return b }

function service(dp: Dataplane, key: Buffer) {
  const v = dp.maps.services.lookup(key)
  return v === null ? null : Service.decode(v)
}

function tableOf(dp: Dataplane, serviceId: number, half: number, n: number): number[] {
  const fd = dp.maps.svcTables.lookup(u32(svcTableSlot(serviceId, half)))
  if (fd === null) return []
  const inner = BpfMap.fromId(fd.readUInt32LE())
  try { return Array.from(readTable(inner, n)) } finally { inner.close() }
}

/** The real ids of a service, in the order the writer allocated them (the config's order). */
function realIdsOf(dp: Dataplane, serviceId: number): number[] {
  return [...dp.maps.reals.lookupBatch(4096)].filter((e) => !e.value.every((x) => x === 0) && Real.decode(e.value).service_id === serviceId)
    .map((e) => e.key.readUInt32LE()).sort((a, b) => a - b)
}

function counters(dp: Dataplane): Record<string, number> {
  const names = statCounterNames()
  const out: Record<string, number> = {}
  for (const { key, value } of dp.maps.counters.lookupBatch(256)) {
    let s = 0n
    for (const slot of dp.maps.counters.splitSlots(value)) s += slot.readBigUInt64LE(0)
    if (s) out[names[key.readUInt32LE()]!] = Number(s)
  }
  return out
}

/** Run a packet; the verdict and the real server (last octet of its address) it went to. */
function send(dp: Dataplane, pkt: Buffer): string {
  const r = dp.prog.testRun(pkt)
  return r.action === 'tx' ? `rs${realOf(r.data)}` : r.action
}

const reals = (n: number, extra = ''): string => Array.from({ length: n }, (_, i) => `      - { address: 10.1.0.${i + 1}, method: dr${extra} }`).join('\n')

t.test('every scheduler is written: its table, flags, thresholds', needsRoot, async (t) => {
  const dp = dataplane(t)
  const scheds = ['rr', 'wrr', 'lc', 'wlc', 'sed', 'nq', 'lblc', 'lblcr', 'dh', 'sh', 'mh', 'fo', 'ovf', 'twos']
  const yaml = `services:\n${scheds.map((s, i) => `  - vip: 10.0.1.${i + 1}
    port: 80
    scheduler: ${s}
${s === 'sh' ? '    sched_flags: [sh-port, sh-fallback]\n' : ''}    real_servers:
      - { address: 10.1.0.1, method: dr, weight: 1, upper_threshold: 10, lower_threshold: 5 }
      - { address: 10.1.0.2, method: dr, weight: 3 }
      - { address: 10.1.0.3, method: dr, weight: 0 }
`).join('')}`
  const r = apply(dp, yaml)
  t.equal(r.services.added, scheds.length, 'every scheduler accepted')
  for (const [i, name] of scheds.entries()) {
    const s = service(dp, ServiceKey.encode({ addr: `10.0.1.${i + 1}`, port: 80, proto: Proto.TCP }))!
    t.equal(s.sched, Sched[name.toUpperCase() as keyof typeof Sched], `${name}: scheduler`)
    const table = tableOf(dp, s.id, s.active_table, Math.min(s.table_size, 300))
    const ids = [...new Set(table)].filter((x) => x !== 0)
    if (['lc', 'wlc', 'sed', 'nq', 'lblc', 'lblcr', 'fo', 'ovf', 'twos'].includes(name))
      t.equal(s.table_size, 3, `${name}: a table of the three servers, once each, in order`)
    if (name === 'sh') {
      t.equal(s.flags, ServiceFlags.HASH_SRC_ADDR | ServiceFlags.HASH_SRC_PORT | ServiceFlags.SCHED_FALLBACK, 'sh: source hash, port and fallback flags')
      t.equal(s.table_size, 256, 'sh: 256 buckets')
      const idOf = realIdsOf(dp, s.id)
      t.same(table, [...buildShTable([1, 3, 0])].map((i) => (i < 0 ? 0 : idOf[i]!)), 'sh: buckets as buildShTable lays them out, weight 0 empty')
    }
    if (name === 'dh') t.same([s.table_size, ids.length], [256, 3], 'dh: 256 buckets dealt over all three (weight checked per packet)')
    if (name === 'wlc') t.same(table, realIdsOf(dp, s.id), 'wlc: the real ids in the order of the config')
  }
  const r1 = [...dp.maps.reals.lookupBatch(4096)].map((e) => Real.decode(e.value)).find((x) => x.addr === '10.1.0.1')!
  t.same([r1.upper_threshold, r1.lower_threshold], [10, 5], 'thresholds written to the real server')
})

t.test('persistence: flag, timeout and netmask; a new real server starts from zero counts', needsRoot, async (t) => {
  const dp = dataplane(t)
  apply(dp, `services:
  - { vip: 10.0.2.1, port: 443, scheduler: wlc, persistence: { timeout: 600, netmask: 255.255.255.0 }, real_servers: [{ address: 10.1.0.1, method: dr }] }
  - { vip: 10.0.2.1, port: 0, scheduler: rr, persistence: 60, real_servers: [{ address: 10.1.0.2, method: dr }] }
  - { vip: "fd00:2::1", port: 80, scheduler: wlc, persistence: { timeout: 30, netmask: 48 }, real_servers: [{ address: "fd00:1::5", method: dr }] }
`)
  const a = service(dp, ServiceKey.encode({ addr: '10.0.2.1', port: 443, proto: Proto.TCP }))!
  t.same([a.flags & ServiceFlags.PERSISTENT, a.persist_timeout_s, a.persist_mask.toString('hex')],
    [ServiceFlags.PERSISTENT, 600, 'ffffff00000000000000000000000000'], 'ipv4: flag, 600 s, /24')
  const b = service(dp, ServiceKey.encode({ addr: '10.0.2.1', port: 0, proto: Proto.TCP }))!
  t.same([b.persist_timeout_s, b.persist_mask.subarray(0, 4).toString('hex')], [60, 'ffffffff'], 'port 0: 60 s, /32 by default')
  const c = service(dp, ServiceKey.encode({ addr: 'fd00:2::1', port: 80, proto: Proto.TCP }))!
  t.same(c.persist_mask, persistMask(48, Family.INET6), 'ipv6: a /48 mask')
  t.equal(persistMask(48, Family.INET6).toString('hex'), 'ffffffffffff00000000000000000000', '/48 is six bytes of ones')
  const id = [...dp.maps.reals.lookupBatch(4096)].find((e) => Real.decode(e.value).addr === '10.1.0.1')!.key.readUInt32LE()
  dp.maps.realConns.update(u32(id), RealConns.encode({ active: 7, inactive: 9 }))
  apply(dp, `services:
  - { vip: 10.0.2.1, port: 443, scheduler: wlc, persistence: { timeout: 600, netmask: 255.255.255.0 }, real_servers: [{ address: 10.1.0.1, method: dr, weight: 2 }] }
`)
  t.same(RealConns.decode(dp.maps.realConns.lookup(u32(id))!), { active: 7, inactive: 9, persistent: 0, overload_upper: 0 }, 'a changed server keeps its counts')
  // Removed from the service, then back: its counts were kept (IPVS restores a destination from its trash).
  apply(dp, `services:
  - { vip: 10.0.2.1, port: 443, scheduler: wlc, real_servers: [{ address: 10.1.0.9, method: dr }] }
`)
  t.ok(Real.decode(dp.maps.reals.lookup(u32(id))!).flags & 2, 'removed: marked REMOVED')
  apply(dp, `services:
  - { vip: 10.0.2.1, port: 443, scheduler: wlc, real_servers: [{ address: 10.1.0.9, method: dr }, { address: 10.1.0.1, method: dr }] }
`)
  t.equal(Real.decode(dp.maps.reals.lookup(u32(id))!).flags & 2, 0, 'back, under its old id')
  t.equal(RealConns.decode(dp.maps.realConns.lookup(u32(id))!).active, 7, 'with its counts')
  t.equal(service(dp, ServiceKey.encode({ addr: '10.0.2.1', port: 443, proto: Proto.TCP }))!.flags & ServiceFlags.PERSISTENT, 0, 'no persistence: no flag')
  // A server new to an id starts from zero, whatever the id counted before.
  const ids = new Set([...dp.maps.reals.lookupBatch(4096)].filter((e) => !e.value.every((x) => x === 0)).map((e) => e.key.readUInt32LE()))
  let fresh = 1
  while (ids.has(fresh)) fresh++
  dp.maps.realConns.update(u32(fresh), RealConns.encode({ active: 3, inactive: 4, persistent: 5 }))
  apply(dp, `services:
  - { vip: 10.0.2.1, port: 443, scheduler: wlc, real_servers: [{ address: 10.1.0.9, method: dr }, { address: 10.1.0.1, method: dr }, { address: 10.1.0.77, method: dr }] }
`)
  t.equal(Real.decode(dp.maps.reals.lookup(u32(fresh))!).addr, '10.1.0.77', `the new server took id ${fresh}`)
  t.same(RealConns.decode(dp.maps.realConns.lookup(u32(fresh))!), { active: 0, inactive: 0, persistent: 0, overload_upper: 0 }, 'and starts from zero counts')
})

const GROUPS = `services:
  - group: 7
    scheduler: rr
    persistence: 300
    match:
      - { vip: 10.0.3.1, protocol: tcp, ports: "80" }
      - { vip: 10.0.3.1, protocol: tcp, ports: "443" }
      - { vip: 10.0.3.2, protocol: tcp, ports: 8000-8099 }
      - { vip: 10.0.3.2, protocol: tcp, ports: 8100-8199 }
      - { vip: 10.0.3.1, protocol: udp, ports: 5000-5010 }
    real_servers:
${reals(3)}
  - group: 8
    scheduler: wlc
    match:
      - { vip: 10.0.3.1, protocol: tcp, ports: 1000-1999 }
      - { vip: 10.0.3.2, protocol: tcp, ports: 20-21 }
    real_servers:
      - { address: 10.1.0.9, method: dr }
  - { vip: 10.0.3.1, port: 22, scheduler: rr, real_servers: [{ address: 10.1.0.22, method: dr }] }
  - { vip: 10.0.3.3, port: 0, scheduler: rr, persistence: 60, real_servers: [{ address: 10.1.0.33, method: dr }] }
`

t.test('service groups: each range matches, nothing else does', needsRoot, async (t) => {
  const dp = dataplane(t)
  const r = apply(dp, GROUPS)
  t.equal(r.services.added, 4, 'two groups and two port services')
  const g7 = service(dp, groupServiceKey(7, Family.INET))!
  t.ok(g7, 'group 7 is a service entry under its id')
  t.equal(g7.flags & ServiceFlags.PERSISTENT, ServiceFlags.PERSISTENT, 'persistent')
  const ranges = decodeGroupRanges(dp.maps.groupRanges.lookup(GroupKey.encode({ addr: '10.0.3.2', proto: Proto.TCP }))!)
  t.same(ranges, [{ first: 20, last: 21, group_id: 8 }, { first: 8000, last: 8199, group_id: 7 }], '10.0.3.2 tcp: sorted, group 7\'s touching ranges merged')

  const group7 = new Set(['rs1', 'rs2', 'rs3'])
  type Mk = (o: { src: string; sport: number; dst: string; dport: number }) => Buffer
  const T: Mk = tcpPkt
  const U: Mk = udpPkt
  const cases: Array<[string, Mk, string, number, string]> = [
    ['10.0.3.1 tcp 80', T, '10.0.3.1', 80, 'g7'],
    ['10.0.3.1 tcp 443', T, '10.0.3.1', 443, 'g7'],
    ['10.0.3.2 tcp 8000 (first of a range)', T, '10.0.3.2', 8000, 'g7'],
    ['10.0.3.2 tcp 8099', T, '10.0.3.2', 8099, 'g7'],
    ['10.0.3.2 tcp 8100', T, '10.0.3.2', 8100, 'g7'],
    ['10.0.3.2 tcp 8199 (last of a range)', T, '10.0.3.2', 8199, 'g7'],
    ['10.0.3.1 udp 5000', U, '10.0.3.1', 5000, 'g7'],
    ['10.0.3.1 udp 5010', U, '10.0.3.1', 5010, 'g7'],
    ['10.0.3.1 tcp 1000 (group 8)', T, '10.0.3.1', 1000, 'rs9'],
    ['10.0.3.1 tcp 1999 (group 8)', T, '10.0.3.1', 1999, 'rs9'],
    ['10.0.3.2 tcp 21 (group 8)', T, '10.0.3.2', 21, 'rs9'],
    ['10.0.3.1 tcp 22 (an exact service)', T, '10.0.3.1', 22, 'rs22'],
    ['10.0.3.3 tcp 443 (a port-0 service)', T, '10.0.3.3', 443, 'rs33'],
    ['10.0.3.1 tcp 79', T, '10.0.3.1', 79, 'pass'],
    ['10.0.3.1 tcp 81', T, '10.0.3.1', 81, 'pass'],
    ['10.0.3.1 tcp 442', T, '10.0.3.1', 442, 'pass'],
    ['10.0.3.1 tcp 444', T, '10.0.3.1', 444, 'pass'],
    ['10.0.3.1 tcp 999', T, '10.0.3.1', 999, 'pass'],
    ['10.0.3.1 tcp 2000', T, '10.0.3.1', 2000, 'pass'],
    ['10.0.3.2 tcp 7999', T, '10.0.3.2', 7999, 'pass'],
    ['10.0.3.2 tcp 8200', T, '10.0.3.2', 8200, 'pass'],
    ['10.0.3.2 tcp 22', T, '10.0.3.2', 22, 'pass'],
    ['10.0.3.2 tcp 80 (another VIP\'s range)', T, '10.0.3.2', 80, 'pass'],
    ['10.0.3.1 udp 80 (the tcp range, udp)', U, '10.0.3.1', 80, 'pass'],
    ['10.0.3.1 udp 5011', U, '10.0.3.1', 5011, 'pass'],
    ['10.0.3.4 tcp 80 (no such VIP)', T, '10.0.3.4', 80, 'pass'],
    ['0.0.0.7 tcp 80 (the group id as an address)', T, '0.0.0.7', 80, 'pass'],
  ]
  let n = 0
  for (const [what, mk, dst, dport, want] of cases) {
    // a fresh client per packet: no persistence carries over
    n++
    const got = send(dp, mk({ src: `10.99.${n}.1`, sport: 40000 + n, dst, dport }))
    if (want === 'g7') t.ok(group7.has(got), `${what}: group 7 (${got})`)
    else t.equal(got, want, `${what}: ${want}`)
  }
  const c = counters(dp)
  t.equal(c.pass_not_service, cases.filter((x) => x[4] === 'pass').length, 'every non-match passed as not a service')
})

t.test('service groups: a client\'s connections to all of a persistent group\'s ranges share its server', needsRoot, async (t) => {
  const dp = dataplane(t)
  apply(dp, GROUPS)
  for (const client of ['10.50.0.1', '10.50.0.2', '10.50.0.3', '10.50.0.4']) {
    const got = new Set([
      send(dp, tcpPkt({ src: client, dst: '10.0.3.1', dport: 80, sport: 1000 })),
      send(dp, tcpPkt({ src: client, dst: '10.0.3.1', dport: 443, sport: 1002 })),
      send(dp, tcpPkt({ src: client, dst: '10.0.3.2', dport: 8042, sport: 1004 })),
      send(dp, udpPkt({ src: client, dst: '10.0.3.1', dport: 5005, sport: 1006 })),
    ])
    t.equal(got.size, 1, `${client}: http, https, a range port and udp all to ${[...got].join(',')}`)
  }
})

t.test('service groups: changed, removed; refused when incomplete or too many ranges; nat across families refused', needsRoot, async (t) => {
  const dp = dataplane(t)
  apply(dp, GROUPS)
  t.equal(Settings.decode(dp.maps.settings.lookup(u32(0))!).service_groups, 1, 'groups exist: xvs_settings.service_groups is set')
  const r = apply(dp, GROUPS.replace('ports: 8100-8199', 'ports: 8300-8399'))
  t.equal(r.services.unchanged, 4, 'a changed range rewrites no service')
  t.same(decodeGroupRanges(dp.maps.groupRanges.lookup(GroupKey.encode({ addr: '10.0.3.2', proto: Proto.TCP }))!).map((x) => [x.first, x.last]),
    [[20, 21], [8000, 8099], [8300, 8399]], 'the range moved')
  t.equal(send(dp, tcpPkt({ dst: '10.0.3.2', dport: 8150 })), 'pass', 'the old range no longer matches')
  t.not(send(dp, tcpPkt({ dst: '10.0.3.2', dport: 8350 })), 'pass', 'the new one does')
  apply(dp, `services:\n  - { vip: 10.0.3.1, port: 22, scheduler: rr, real_servers: [{ address: 10.1.0.22, method: dr }] }\n`)
  t.equal([...dp.maps.groupRanges.keys()].length, 0, 'groups removed: no ranges left')
  t.equal(Settings.decode(dp.maps.settings.lookup(u32(0))!).service_groups, 0, 'and the data plane stops looking for groups')
  t.equal(service(dp, groupServiceKey(7, Family.INET)), null, 'nor their service entries')

  const incomplete = parseConfig('services:\n  - { group: 9, scheduler: wlc, incomplete: "ipvsadm -f 9 says no ports", real_servers: [] }\n', 'x.yaml', 'yaml').model
  t.throws(() => applyModel(dp, incomplete, { resolve: fakeHop }), { code: 'ECONFIG' }, 'a group that says nothing of what it matches is refused')
  const many = `services:\n  - group: 9\n    scheduler: wlc\n    match:\n${Array.from({ length: 65 }, (_, i) => `      - { vip: 10.0.4.1, protocol: tcp, ports: "${1000 + 2 * i}" }`).join('\n')}\n    real_servers: []\n`
  t.throws(() => apply(dp, many), { code: 'ECONFIG', message: /65 port ranges/ }, '65 separate ranges on one VIP and protocol are refused')
  const ok64 = many.replace(/\n.*"1128" }/, '')
  t.doesNotThrow(() => apply(dp, ok64), '64 are taken')
  let hits = 0
  for (let i = 0; i < 64; i++) if (send(dp, tcpPkt({ dst: '10.0.4.1', dport: 1000 + 2 * i })) === 'drop') hits++
  t.equal(hits, 64, 'each of 64 ranges matches (the group has no server: dropped, not passed)')
  let misses = 0
  for (let i = 0; i < 64; i++) if (send(dp, tcpPkt({ dst: '10.0.4.1', dport: 1001 + 2 * i })) === 'pass') misses++
  t.equal(misses, 64, 'each port between them passes')
  t.throws(() => apply(dp, 'services:\n  - { vip: 10.0.5.1, port: 80, scheduler: wlc, real_servers: [{ address: "fd00::1", method: nat }] }\n'),
    { message: /only tun can forward across families/ }, 'nat across address families is refused')
})

t.test('port-0 services: the second lookup only while one exists (xvs_settings.port0_services)', needsRoot, async (t) => {
  const dp = dataplane(t)
  const flag = (): number | undefined => Settings.decode(dp.maps.settings.lookup(u32(0))!).port0_services
  apply(dp, 'services:\n  - { vip: 10.0.6.1, port: 80, scheduler: rr, real_servers: [{ address: 10.1.0.1, method: dr }] }\n')
  t.equal(flag(), 0, 'no port-0 service: off')
  t.equal(send(dp, tcpPkt({ dst: '10.0.6.1', dport: 81 })), 'pass', 'another port of the VIP: not a service')
  apply(dp, `services:
  - { vip: 10.0.6.1, port: 80, scheduler: rr, real_servers: [{ address: 10.1.0.1, method: dr }] }
  - { vip: 10.0.6.1, port: 0, scheduler: rr, persistence: 60, real_servers: [{ address: 10.1.0.2, method: dr }] }
`)
  t.equal(flag(), 1, 'a port-0 service: on')
  t.equal(send(dp, tcpPkt({ dst: '10.0.6.1', dport: 81, sport: 41000 })), 'rs2', 'another port of the VIP: the port-0 service')
  // with the flag forced off, the port-0 service is not looked for: the flag is what gates it
  dp.maps.settings.update(u32(0), Settings.encode({ ...Settings.decode(dp.maps.settings.lookup(u32(0))!), port0_services: 0 }))
  t.equal(send(dp, tcpPkt({ dst: '10.0.6.1', dport: 82, sport: 41001 })), 'pass', 'flag off: not looked for')
  apply(dp, 'services:\n  - { vip: 10.0.6.1, port: 80, scheduler: rr, real_servers: [{ address: 10.1.0.1, method: dr }] }\n')
  t.equal(flag(), 0, 'the port-0 service removed: off again')
})

t.test('lblc/lblcr locality: cleared for a service whose scheduler changes or that goes, kept for the others', needsRoot, async (t) => {
  const dp = dataplane(t)
  const svc = (vip: string, sched: string) => `  - { vip: ${vip}, port: 80, scheduler: ${sched}, real_servers: [{ address: 10.1.0.1, method: dr }, { address: 10.1.0.2, method: dr }] }\n`
  const localityOf = (): string[] => [...dp.maps.locality.keys()].map((k) => {
    const id = LocalityKey.decode(k).service_id
    return [...dp.maps.services.entries()].map((e) => [ServiceKey.decode(e.key).addr, Service.decode(e.value).id] as const).find(([, i]) => i === id)?.[0] ?? `id ${id}`
  }).sort()
  apply(dp, 'services:\n' + svc('10.0.7.1', 'lblc') + svc('10.0.7.2', 'lblc') + svc('10.0.7.3', 'lblcr'))
  for (const [i, vip] of ['10.0.7.1', '10.0.7.2', '10.0.7.3'].entries()) send(dp, tcpPkt({ dst: vip, sport: 42000 + i }))
  t.same(localityOf(), ['10.0.7.1', '10.0.7.2', '10.0.7.3'], 'a locality entry for each service after a connection')
  apply(dp, 'services:\n' + svc('10.0.7.1', 'wlc') + svc('10.0.7.2', 'lblc') + svc('10.0.7.3', 'lblc'))
  t.same(localityOf(), ['10.0.7.2'], 'two schedulers changed in one apply: their entries go, the unchanged service keeps its own')
  apply(dp, 'services:\n' + svc('10.0.7.1', 'wlc') + svc('10.0.7.3', 'lblc'))
  t.same(localityOf(), [], 'a removed service\'s entry goes with it')
})
