// SPDX-License-Identifier: GPL-2.0-only
// Reconciling the data plane's per-real connection counters with the connection table
// (src/dataplane/conncount.ts): connections opened through the program are counted the same by both;
// after the counts drift (an entry timing out with no more packets, one evicted, garbage written),
// reconcileConnCounts deletes what the packet path treats as absent, recounts, rewrites, and ends an
// overload the lost connections held up.
import t, { type Test } from 'tap'
import { needsRoot } from '../helpers/root'
import { loadDetached, type Dataplane } from '../../src/dataplane/loader'
import { applyModel } from '../../src/dataplane/writer'
import { Conn, ConnKey, ConnKind, Proto, Real, RealConns, type Conn as ConnValue, type ConnKey as ConnKeyValue } from '../../src/dataplane/abi'
import { countConns, reconcileConnCounts, readConnCounters, templateExpired, flowExpired, writeConnCounts } from '../../src/dataplane/conncount'
import { parseConfig } from '../../src/config'
import { tcpPkt, udpPkt } from '../helpers/sched'

const fakeHop = (address: string) => ({
  address, ifname: 'lo', ifindex: 1, srcMac: '02:00:00:00:00:02', dstMac: '02:00:00:00:04:01', mtu: 1500, source: '10.0.0.254',
})

const MODEL = `services:
  - vip: 10.0.0.10
    port: 80
    scheduler: wlc
    real_servers:
      - { address: 10.1.0.1, method: dr, upper_threshold: 3, lower_threshold: 2 }
      - { address: 10.1.0.2, method: dr }
  - vip: 10.0.0.10
    port: 443
    scheduler: rr
    persistence: 60
    real_servers:
      - { address: 10.1.0.3, method: dr }
  - group: 5
    scheduler: rr
    match: [{ vip: 10.0.0.11, protocol: tcp, ports: 9000-9009 }, { vip: 10.0.0.11, protocol: udp, ports: "53" }]
    real_servers:
      - { address: 10.1.0.4, method: dr }
`

function setup(t: Test): { dp: Dataplane; ids: Record<string, number> } {
  const dp = loadDetached({ connTableSize: 4096 })
  t.teardown(() => dp.close())
  applyModel(dp, parseConfig(MODEL, 'm.yaml', 'yaml').model, { resolve: fakeHop })
  const ids: Record<string, number> = {}
  for (const { key, value } of dp.maps.reals.lookupBatch(4096)) {
    if (value.every((x) => x === 0)) continue
    ids[Real.decode(value).addr] = key.readUInt32LE()
  }
  return { dp, ids }
}

const run = (dp: Dataplane, pkt: Buffer): string => dp.prog.testRun(pkt).action
const plain = (m: Map<number, { active: number; inactive: number; persistent: number }>, ids: Record<string, number>) =>
  Object.fromEntries(Object.entries(ids).map(([a, id]) => [a, m.get(id) ?? { active: 0, inactive: 0, persistent: 0 }]))
const held = (dp: Dataplane, ids: Record<string, number>) => {
  const c = readConnCounters(dp)
  return Object.fromEntries(Object.entries(ids).map(([a, id]) => {
    const x = c.get(id)
    return [a, { active: x?.active ?? 0, inactive: x?.inactive ?? 0, persistent: x?.persistent ?? 0 }]
  }))
}

function age(dp: Dataplane, key: Partial<ConnKeyValue>, seconds: number, extra: Partial<ConnValue> = {}): void {
  const k = ConnKey.encode(key)
  const c = Conn.decode(dp.maps.conns.lookup(k)!)
  dp.maps.conns.update(k, Conn.encode({ ...c, last_seen_ns: c.last_seen_ns - BigInt(seconds * 1e9), ...extra }))
}

/** Open connections of every kind: established, half-open, closing, UDP, persistent (template), group. */
function traffic(dp: Dataplane): void {
  const tcp = (sport: number, flags: string, dport = 80, dst = '10.0.0.10', src = '10.0.0.1') => run(dp, tcpPkt({ src, dst, sport, dport, flags }))
  for (const p of [1000, 1002, 1004]) { tcp(p, 'S'); tcp(p, 'A') } // established
  tcp(1006, 'S') // half-open
  tcp(1008, 'S'); tcp(1008, 'A'); tcp(1008, 'FA') // closing
  tcp(2000, 'S', 443); tcp(2000, 'A', 443); tcp(2002, 'S', 443, '10.0.0.10', '10.0.0.2') // two clients, two templates
  tcp(3000, 'S', 9005, '10.0.0.11'); tcp(3000, 'A', 9005, '10.0.0.11') // a group flow
  run(dp, udpPkt({ dst: '10.0.0.11', dport: 53, sport: 3001 })) // a group UDP flow
}

t.test('the counters the data plane keeps are what a recount finds', needsRoot, async (t) => {
  const { dp, ids } = setup(t)
  traffic(dp)
  const r = countConns(dp)
  t.same(r.dead, [], 'nothing absent yet')
  t.same(held(dp, ids), plain(r.counts, ids), 'the data plane\'s counts equal the table\'s')
  const all = Object.values(plain(r.counts, ids)).reduce((a, c) => ({ active: a.active + c.active, inactive: a.inactive + c.inactive, persistent: a.persistent + c.persistent }))
  t.same(all, { active: 5, inactive: 4, persistent: 2 }, 'five established, four other flows (half-open, closing, SYN_RECV, UDP), two templates')
  t.same(plain(r.counts, ids)['10.1.0.4'], { active: 1, inactive: 1, persistent: 0 }, 'the group\'s flows are counted for its server, not taken as stale')
  const w = reconcileConnCounts(dp)
  t.same([w.deleted, w.fixed], [0, []], 'a reconcile with nothing to fix writes nothing')
})

t.test('drift fixed: a flow timed out, one evicted, garbage, a template expired, a service gone', needsRoot, async (t) => {
  const { dp, ids } = setup(t)
  traffic(dp)
  // A flow timed out with no more packets: the data plane still counts it.
  const k = (sport: number, dport = 80, src = '10.0.0.1', dst = '10.0.0.10') => ({ caddr: src, vaddr: dst, cport: sport, vport: dport, proto: Proto.TCP })
  const estOn = (addr: string): number => [1000, 1002, 1004].find((p) => Conn.decode(dp.maps.conns.lookup(ConnKey.encode(k(p)))!).real_id === ids[addr]) ?? 0
  const victim = estOn('10.1.0.1') || estOn('10.1.0.2')
  const victimReal = Conn.decode(dp.maps.conns.lookup(ConnKey.encode(k(victim)))!).real_id
  age(dp, k(victim), 902)
  // One evicted by the LRU: gone from the table, still counted.
  dp.maps.conns.delete(ConnKey.encode(k(1006)))
  // Garbage in another server's counts.
  const rs2 = ids['10.1.0.2']!
  dp.maps.realConns.update(Buffer.from(Uint32Array.of(rs2).buffer), RealConns.encode({ active: 50, inactive: -3, persistent: 9 }))
  // A template past its timeout with no connection left, and its connection closed long ago.
  const tk = { caddr: '10.0.0.2', vaddr: '10.0.0.10', cport: 0, vport: 443, proto: Proto.TCP, kind: ConnKind.TEMPLATE }
  age(dp, tk, 61, { ctl_until_s: 1 })
  age(dp, k(2002, 443, '10.0.0.2'), 62)

  const r = reconcileConnCounts(dp)
  t.equal(r.deleted, 3, 'three entries deleted: the timed-out flow, the expired template, its connection')
  t.equal(dp.maps.conns.lookup(ConnKey.encode(k(victim))), null, 'the timed-out flow is gone')
  t.equal(dp.maps.conns.lookup(ConnKey.encode(tk)), null, 'the expired template is gone')
  t.same(held(dp, ids), plain(countConns(dp).counts, ids), 'the counters equal a fresh recount')
  t.ok(r.fixed.includes(victimReal) && r.fixed.includes(rs2) && r.fixed.includes(ids['10.1.0.3']!), 'the drifted servers were rewritten')
  const again = reconcileConnCounts(dp)
  t.same([again.deleted, again.fixed], [0, []], 'a second reconcile finds nothing to do')

  // A service gone: its flows are stale (the packet path would treat them as absent).
  applyModel(dp, parseConfig(MODEL.replace(/  - group: 5[\s\S]*$/, ''), 'm.yaml', 'yaml').model, { resolve: fakeHop })
  const g = reconcileConnCounts(dp)
  t.equal(g.deleted, 2, 'the group\'s two flows deleted with it')
  t.same(held(dp, ids)['10.1.0.4'], { active: 0, inactive: 0, persistent: 0 }, 'its server counts nothing')
})

t.test('a recount ends an overload that connections gone unseen held up (lower threshold rule)', needsRoot, async (t) => {
  const { dp, ids } = setup(t)
  const rs1 = ids['10.1.0.1']!
  const rs2 = ids['10.1.0.2']!
  const key = Buffer.from(Uint32Array.of(rs1).buffer)
  dp.maps.realConns.update(Buffer.from(Uint32Array.of(rs2).buffer), RealConns.encode({ active: 100 }))
  for (const p of [1, 2, 3]) run(dp, tcpPkt({ sport: p, flags: 'S' }))
  t.equal(RealConns.decode(dp.maps.realConns.lookup(key)!).overload_upper, 3, 'server 1 (upper 3) overloaded by three connections')
  for (const p of [1, 2]) dp.maps.conns.delete(ConnKey.encode({ caddr: '10.0.0.1', vaddr: '10.0.0.10', cport: p, vport: 80, proto: Proto.TCP }))
  t.equal(RealConns.decode(dp.maps.realConns.lookup(key)!).overload_upper, 3, 'two evicted unseen: still overloaded')
  reconcileConnCounts(dp)
  t.same(RealConns.decode(dp.maps.realConns.lookup(key)!), { active: 0, inactive: 1, persistent: 0, overload_upper: 0 },
    'recounted: one connection, below the lower threshold 2: not overloaded')
  t.equal(run(dp, tcpPkt({ sport: 9, flags: 'S' })), 'tx', 'and it takes connections again')
})

t.test('writeConnCounts: counts made elsewhere (the daemon\'s sweep); ids left out count nothing', needsRoot, async (t) => {
  const { dp, ids } = setup(t)
  traffic(dp)
  const w = writeConnCounts(dp, new Map([[ids['10.1.0.3']!, { active: 7, inactive: 8, persistent: 9 }]]))
  t.same(held(dp, ids)['10.1.0.3'], { active: 7, inactive: 8, persistent: 9 }, 'as given')
  t.same(held(dp, ids)['10.1.0.4'], { active: 0, inactive: 0, persistent: 0 }, 'left out: zero')
  t.ok(w.fixed.length >= 3, 'every server whose counts changed')
})

t.test('expiry rules mirror the packet path', async (t) => {
  const s = 1_000_000_000n
  const set = { tcp_timeout_s: 0, tcp_fin_timeout_s: 0, udp_timeout_s: 0 }
  t.notOk(flowExpired(100n * s, Proto.TCP, 1, set, 1001n * s), 'ESTABLISHED 901 s idle: within 900 s + 1 s slack')
  t.ok(flowExpired(100n * s, Proto.TCP, 1, set, 1001n * s + 1n), 'past the slack: expired')
  t.ok(flowExpired(0n, Proto.UDP, 16, { ...set, udp_timeout_s: 5 }, 7n * s), 'UDP with a 5 s timeout, 7 s idle')
  t.notOk(templateExpired({ last_seen_ns: 10n * s, ctl_until_s: 0 }, 60, 70n * s), 'a template 60 s after its last use: alive')
  t.ok(templateExpired({ last_seen_ns: 10n * s, ctl_until_s: 0 }, 60, 70n * s + 1n), 'just past: expired')
  t.notOk(templateExpired({ last_seen_ns: 10n * s, ctl_until_s: 200 }, 60, 150n * s), 'past its timeout but a connection lives until 200 s')
  t.ok(templateExpired({ last_seen_ns: 10n * s, ctl_until_s: 200 }, 60, 201n * s), 'and after that, expired')
})
