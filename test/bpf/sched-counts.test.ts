// SPDX-License-Identifier: GPL-2.0-only
// The counting schedulers through BPF_PROG_TEST_RUN: the per-real-server connection counters the data
// plane keeps (new connection, state changes, deletion), the upper/lower thresholds that mark a server
// overloaded as IPVS does, and lc, wlc, sed, nq, fo, ovf and twos deciding from counters written
// through the maps, with the LVS documentation's worked examples exactly.
import t, { type Test } from 'tap'
import { needsRoot } from '../helpers/root'
import { Director, runRow } from '../helpers/director'
import { SchedMaps, VIP, real, realOf, tcpPkt, udpPkt } from '../helpers/sched'
import { ConnState, Proto, RealFlags, Sched } from '../../src/dataplane/abi'
import { buildWrrSequence } from '../../src/sched'

const CIP = '10.0.0.1'
const key = (sport: number, src = CIP) => ({ caddr: src, vaddr: VIP, cport: sport, vport: 80, proto: Proto.TCP })

function setup(t: Test, sched: number, reals: Array<Record<string, unknown> & { id: number }>, table?: number[]): { d: Director; m: SchedMaps } {
  const d = Director.load(t)
  d.settings({})
  d.addService({ id: 0, vip: VIP, port: 80, sched, reals, ...(table ? { table } : {}) })
  return { d, m: new SchedMaps(t, d) }
}

/** One new connection (a SYN); the real server it went to (0: not forwarded). */
function pick(d: Director, sport: number, src = CIP): number {
  const r = d.run(tcpPkt({ src, sport }))
  return r.action === 'tx' ? realOf(r.data) : 0
}

t.test('counters: new connection, state changes, deletion (IPVS activeconns/inactconns)', needsRoot, async (t) => {
  const { d, m } = setup(t, Sched.RR, [real(1)])
  t.same(m.counts(1), [0, 0, 0], 'nothing counted yet')
  d.run(tcpPkt({ sport: 1000 }))
  t.same(m.counts(1), [0, 1, 0], 'SYN: an entry in SYN_RECV counts inactive')
  d.run(tcpPkt({ sport: 1000, flags: 'A' }))
  t.equal(d.conn(key(1000))?.state, ConnState.ESTABLISHED, 'ESTABLISHED')
  t.same(m.counts(1), [1, 0, 0], 'ACK: ESTABLISHED counts active')
  d.run(tcpPkt({ sport: 1000, flags: 'A' }))
  t.same(m.counts(1), [1, 0, 0], 'another ACK changes nothing')
  d.run(tcpPkt({ sport: 1000, flags: 'FA' }))
  t.same(m.counts(1), [0, 1, 0], 'FIN: FIN_WAIT counts inactive again')
  d.run(tcpPkt({ sport: 1001 }))
  d.run(tcpPkt({ sport: 1001, flags: 'A' }))
  d.run(tcpPkt({ sport: 1001, flags: 'R' }))
  t.equal(d.conn(key(1001))?.state, ConnState.CLOSE, 'RST: CLOSE')
  t.same(m.counts(1), [0, 2, 0], 'RST: inactive')
  d.run(udpPkt({ sport: 2000, dport: 80 }))
  t.same(m.counts(1), [0, 2, 0], 'a datagram to no UDP service counts nothing')

  // Deleted by the packet path: an expired entry hit again, a reused port, a removed server.
  d.ageConn(key(1000), 200)
  runRow(t, d, { description: 'expired FIN_WAIT entry hit by a SYN: deleted, a new one made', input: tcpPkt({ sport: 1000 }), verdict: 'tx',
    counters: { conn_expired: 1, conn_new: 1, fwd_dr: 1, xdp_tx: 1 } })
  t.same(m.counts(1), [0, 2, 0], 'one uncounted, one counted')
  d.run(tcpPkt({ sport: 1000, flags: 'A' }))
  t.same(m.counts(1), [1, 1, 0], 'ESTABLISHED again')
  runRow(t, d, { description: 'SYN on the CLOSE entry: reused', input: tcpPkt({ sport: 1001 }), verdict: 'tx',
    counters: { conn_reused: 1, conn_new: 1, fwd_dr: 1, xdp_tx: 1 } })
  t.same(m.counts(1), [1, 1, 0], 'the CLOSE entry uncounted, the new SYN_RECV one counted')
  d.settings({ expire_nodest_conn: 1 })
  d.setReal({ service_id: 0, ...real(1), flags: RealFlags.REMOVED })
  runRow(t, d, { description: 'ACK on a removed server\'s flow, expire_nodest_conn 1', input: tcpPkt({ sport: 1000, flags: 'A' }), verdict: 'pass',
    counters: { conn_nodest_expired: 1, pass_tcp_not_syn: 1 } })
  t.same(m.counts(1), [0, 1, 0], 'its ESTABLISHED entry uncounted')
})

t.test('counters: UDP flows are inactive; a one-packet datagram counts nothing', needsRoot, async (t) => {
  const d = Director.load(t)
  d.settings({})
  d.addService({ id: 0, vip: VIP, port: 53, proto: Proto.UDP, sched: Sched.RR, reals: [real(1)] })
  d.addService({ id: 1, vip: VIP, port: 54, proto: Proto.UDP, sched: Sched.RR, flags: 8, reals: [real(2)] })
  const m = new SchedMaps(t, d)
  d.run(udpPkt({ sport: 3000 }))
  d.run(udpPkt({ sport: 3000 }))
  d.run(udpPkt({ sport: 3001 }))
  t.same(m.counts(1), [0, 2, 0], 'two UDP flows, inactive')
  d.run(udpPkt({ sport: 3000, dport: 54 }))
  t.same(m.counts(2), [0, 0, 0], 'one-packet scheduling makes no entry, counts nothing')
})

t.test('thresholds: -x marks a server overloaded, -y (or 3/4 of -x) clears it, as ip_vs_bind/unbind_dest', needsRoot, async (t) => {
  // lc over two servers; server 1 listed first wins ties.
  const { d, m } = setup(t, Sched.LC, [real(1, { upper_threshold: 3, lower_threshold: 2 }), real(2)])
  m.setConns(2, { active: 1000 })
  t.same([pick(d, 1), pick(d, 2), pick(d, 3)], [1, 1, 1], 'three connections to server 1 while server 2 is busy')
  t.equal(m.conns(1).overload_upper, 3, 'total 3 >= upper 3: overloaded')
  t.equal(pick(d, 4), 2, 'the fourth skips the overloaded server')
  d.ageConn(key(1), 100)
  d.run(tcpPkt({ sport: 1, flags: 'A' }))
  t.same(m.counts(1), [0, 2, 0], 'one entry expired: total 2')
  t.equal(m.conns(1).overload_upper, 3, 'not below lower 2: still overloaded')
  t.equal(pick(d, 5), 2, 'still skipped')
  d.ageConn(key(2), 100)
  d.run(tcpPkt({ sport: 2, flags: 'A' }))
  t.equal(m.conns(1).overload_upper, 0, 'total 1 < lower 2: no longer overloaded')
  t.equal(pick(d, 6), 1, 'takes connections again')

  // No lower threshold: the overload ends below 3/4 of the upper one.
  const s2 = setup(t, Sched.LC, [real(1, { upper_threshold: 4 }), real(2)])
  s2.m.setConns(2, { active: 1000 })
  for (const p of [1, 2, 3, 4]) s2.d.run(tcpPkt({ sport: p }))
  t.equal(s2.m.conns(1).overload_upper, 4, 'upper 4 reached')
  s2.d.ageConn(key(1), 100)
  s2.d.run(tcpPkt({ sport: 1, flags: 'A' }))
  t.equal(s2.m.conns(1).overload_upper, 4, '3 * 4 = 12 is not below 4 * 3: still overloaded')
  s2.d.ageConn(key(2), 100)
  s2.d.run(tcpPkt({ sport: 2, flags: 'A' }))
  t.equal(s2.m.conns(1).overload_upper, 0, '2 * 4 < 12: cleared')

  // Raising the upper threshold (ipvsadm -e -x) ends an overload at once; lowering keeps it.
  const s3 = setup(t, Sched.LC, [real(1, { upper_threshold: 1 }), real(2)])
  s3.m.setConns(2, { active: 1000 })
  t.equal(pick(s3.d, 1), 1, 'first connection to server 1')
  t.equal(pick(s3.d, 2), 2, 'overloaded at 1: the next goes to server 2')
  s3.d.setReal({ service_id: 0, ...real(1), upper_threshold: 5 })
  t.equal(pick(s3.d, 3), 1, 'upper raised to 5: server 1 takes connections at once')
  s3.d.setReal({ service_id: 0, ...real(1), upper_threshold: 0 })
  t.equal(pick(s3.d, 4), 1, 'no upper threshold: never overloaded')
})

t.test('the worked examples of DESIGN.md, exactly', needsRoot, async (t) => {
  // wrr 1:3 sends 1 of every 4 new connections to the first.
  const seq = [...buildWrrSequence([1, 3])].map((i) => [1, 2][i]!)
  const w = setup(t, Sched.WRR, [real(1, { weight: 1 }), real(2, { weight: 3 })], seq)
  const wrr: number[] = []
  for (let i = 0; i < 8; i++) wrr.push(w.d.runWithCursor(0, i % 4, tcpPkt({ sport: 100 + i })).data[5]!)
  t.same(wrr.filter((x) => x === 1).length, 2, `wrr 1:3: 2 of 8 to the first (${wrr.join(' ')})`)

  // lc: (active, inactive) = (10, 100) and (20, 10): overheads 2660 < 5130, the first.
  const lc = setup(t, Sched.LC, [real(1), real(2)])
  lc.m.setConns(1, { active: 10, inactive: 100 })
  lc.m.setConns(2, { active: 20, inactive: 10 })
  t.equal(pick(lc.d, 1), 1, 'lc (10,100) vs (20,10): the first')
  // in either order
  const lc2 = setup(t, Sched.LC, [real(2), real(1)])
  lc2.m.setConns(1, { active: 10, inactive: 100 })
  lc2.m.setConns(2, { active: 20, inactive: 10 })
  t.equal(pick(lc2.d, 1), 1, 'lc: the same server when listed second')

  // wlc: (10, 100, w1) and (20, 10, w3): 2660/1 > 5130/3, the second.
  const wlc = setup(t, Sched.WLC, [real(1, { weight: 1 }), real(2, { weight: 3 })])
  wlc.m.setConns(1, { active: 10, inactive: 100 })
  wlc.m.setConns(2, { active: 20, inactive: 10 })
  t.equal(pick(wlc.d, 1), 2, 'wlc (10,100,w1) vs (20,10,w3): the second')

  // sed: (0 active, w1) and (0 active, w3): (0+1)/1 > (0+1)/3, the second.
  const sed = setup(t, Sched.SED, [real(1, { weight: 1 }), real(2, { weight: 3 })])
  t.equal(pick(sed.d, 1), 2, 'sed (0,w1) vs (0,w3): the second')
  // wlc would take the first there (0/1 vs 0/3: a tie, the first listed).
  const wlc0 = setup(t, Sched.WLC, [real(1, { weight: 1 }), real(2, { weight: 3 })])
  t.equal(pick(wlc0.d, 1), 1, 'wlc with both idle: a tie, the first listed (where sed differs)')
})

t.test('lc, wlc, sed: the least loaded, weights, ties to the first listed', needsRoot, async (t) => {
  const cases: Array<[string, number, Array<[number, number, number]>, number]> = [
    // [name, sched, [active, inactive, weight] per server 1..3, expected]
    ['lc: inactive counts 1/256 of active', Sched.LC, [[1, 0, 1], [0, 255, 1], [0, 257, 1]], 2],
    ['lc: weights do not matter', Sched.LC, [[2, 0, 100], [1, 0, 1], [3, 0, 1]], 2],
    ['lc: a tie goes to the first listed', Sched.LC, [[1, 5, 1], [1, 5, 1], [2, 0, 1]], 1],
    ['wlc: overhead per weight', Sched.WLC, [[4, 0, 2], [5, 0, 3], [1, 0, 1]], 3],
    ['wlc: 256/1 vs 512/3', Sched.WLC, [[1, 0, 1], [2, 0, 3], [9, 0, 1]], 2],
    ['wlc: a tie goes to the first listed', Sched.WLC, [[2, 0, 2], [1, 0, 1], [5, 0, 1]], 1],
    ['sed: (active + 1) / weight, inactive ignored', Sched.SED, [[1, 0, 1], [2, 900, 3], [5, 0, 4]], 2],
    ['sed: a tie goes to the first listed', Sched.SED, [[1, 0, 2], [0, 0, 1], [9, 0, 1]], 1],
  ]
  for (const [name, sched, loads, want] of cases) {
    const { d, m } = setup(t, sched, loads.map(([, , w], i) => real(i + 1, { weight: w })))
    loads.forEach(([a, i], j) => m.setConns(j + 1, { active: a, inactive: i }))
    t.equal(pick(d, 1), want, name)
  }
})

t.test('nq: an idle server first, else sed', needsRoot, async (t) => {
  const a = setup(t, Sched.NQ, [real(1, { weight: 100 }), real(2, { weight: 1 }), real(3, { weight: 1 })])
  a.m.setConns(1, { active: 1 })
  a.m.setConns(2, { active: 0, inactive: 50 })
  t.equal(pick(a.d, 1), 2, 'the first idle server (no active connection), whatever the weights')
  const b = setup(t, Sched.NQ, [real(1, { weight: 1 }), real(2, { weight: 3 })])
  b.m.setConns(1, { active: 1 })
  b.m.setConns(2, { active: 2 })
  t.equal(pick(b.d, 1), 2, 'none idle: sed, (1+1)/1 > (2+1)/3')
})

t.test('fo and ovf: by weight', needsRoot, async (t) => {
  const fo = setup(t, Sched.FO, [real(1, { weight: 2 }), real(2, { weight: 5 }), real(3, { weight: 5 })])
  fo.m.setConns(2, { active: 10000 })
  t.same([pick(fo.d, 1), pick(fo.d, 2)], [2, 2], 'fo: the highest weight, the first of equals, however loaded')
  fo.d.setReal({ service_id: 0, ...real(2), weight: 5, flags: RealFlags.DOWN })
  t.equal(pick(fo.d, 3), 3, 'fo: it down, the next highest')

  const ovf = setup(t, Sched.OVF, [real(1, { weight: 2 }), real(2, { weight: 3 }), real(3, { weight: 1 })])
  ovf.m.setConns(2, { active: 3 })
  t.equal(pick(ovf.d, 1), 2, 'ovf: the highest weight while active <= weight (3 <= 3)')
  ovf.m.setConns(2, { active: 4 })
  t.equal(pick(ovf.d, 2), 1, 'ovf: past its weight, the next highest')
  ovf.m.setConns(1, { active: 3 })
  t.equal(pick(ovf.d, 3), 3, 'ovf: and the next')
  ovf.m.setConns(3, { active: 2 })
  runRow(t, ovf.d, { description: 'ovf: every server past its weight: none', input: tcpPkt({ sport: 4 }), verdict: 'drop', counters: { drop_no_backend: 1 } })
})

t.test('twos: two weighted draws, the less loaded of the two', needsRoot, async (t) => {
  const { d, m } = setup(t, Sched.TWOS, [real(1), real(2), real(3, { weight: 0 })])
  m.setConns(1, { active: 1_000_000 })
  const got = [0, 0, 0, 0]
  for (let i = 0; i < 400; i++) got[pick(d, 5000 + i)]!++
  t.equal(got[3], 0, 'the weight-0 server is never drawn')
  t.equal(got[1]! + got[2]!, 400, 'every connection forwarded')
  // IPVS draws from 0..total inclusive and takes the first server whose running weight reaches the
  // draw, so with weights 1 and 1 a draw is server 1 for 0 and 1, server 2 for 2: P = 2/3 and 1/3.
  // Server 2 loses only when both draws are server 1: 4/9. Expected 5/9 of 400 = 222.
  t.ok(got[2]! > 180 && got[2]! < 265, `server 2 (idle) got ${got[2]} of 400 (about 5/9), server 1 (loaded) ${got[1]}`)
  const z = setup(t, Sched.TWOS, [real(1, { weight: 0 }), real(2, { flags: RealFlags.QUIESCED })])
  runRow(t, z.d, { description: 'twos: nothing available', input: tcpPkt({ sport: 1 }), verdict: 'drop', counters: { drop_no_backend: 1 } })
})

t.test('every counting scheduler skips weight-0, quiesced, down, removed and overloaded servers', needsRoot, async (t) => {
  const scheds: Array<[string, number]> = [['lc', Sched.LC], ['wlc', Sched.WLC], ['sed', Sched.SED], ['nq', Sched.NQ],
    ['fo', Sched.FO], ['ovf', Sched.OVF], ['twos', Sched.TWOS], ['lblc', Sched.LBLC], ['lblcr', Sched.LBLCR]]
  const unavailable: Array<[string, Record<string, unknown>, Record<string, number>?]> = [
    ['weight 0', { weight: 0 }], ['quiesced', { flags: RealFlags.QUIESCED }], ['down', { flags: RealFlags.DOWN }],
    ['removed', { flags: RealFlags.REMOVED }], ['in another service', { service_id: 9 }],
    ['overloaded', { upper_threshold: 5 }, { overload_upper: 5 }],
  ]
  let sport = 7000
  for (const [name, sched] of scheds) {
    const { d, m } = setup(t, sched, [real(1, { weight: 10 }), real(2, { weight: 1 })])
    for (const [how, extra, conns] of unavailable) {
      // Server 1 would win every rule: idle, the highest weight, listed first.
      d.setReal({ service_id: 0, ...real(1, { weight: 10, ...extra }) })
      m.setConns(1, conns ?? {})
      m.setConns(2, { active: 1, inactive: 3 })
      const got = new Set<number>()
      for (let i = 0; i < 6; i++) got.add(pick(d, sport++, `10.9.${i}.1`))
      t.same([...got], [2], `${name}: server 1 ${how}: every connection to server 2`)
    }
    d.setReal({ service_id: 0, ...real(1, { weight: 0 }) })
    d.setReal({ service_id: 0, ...real(2, { flags: RealFlags.QUIESCED }) })
    runRow(t, d, { description: `${name}: no server available`, input: tcpPkt({ sport: 1 }), verdict: 'drop', counters: { drop_no_backend: 1 } })
  }
})

t.test('a walk over 256 servers (bpf_loop) finds the least loaded anywhere', needsRoot, async (t) => {
  const reals = Array.from({ length: 256 }, (_, i) => real(i + 1))
  const d = Director.load(t)
  d.settings({})
  const m = new SchedMaps(t, d)
  // ids 1..256 (id 256 has MAC byte 0: check the entry instead of the frame)
  d.addService({ id: 0, vip: VIP, port: 80, sched: Sched.WLC, reals })
  for (let i = 1; i <= 256; i++) m.setConns(i, { active: 5 })
  m.setConns(200, { active: 1 })
  d.run(tcpPkt({ sport: 1 }))
  t.equal(d.conn(key(1))?.real_id, 200, 'server 200 of 256')
  m.setConns(256, { active: 0 })
  d.run(tcpPkt({ sport: 2 }))
  t.equal(d.conn(key(2))?.real_id, 256, 'the last of 256')
})
