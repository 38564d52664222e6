// SPDX-License-Identifier: GPL-2.0-only
// The director's schedulers through BPF_PROG_TEST_RUN: rr in turn and skipping unavailable servers,
// wrr 1:3 exactly over whole sequences (tables from src/sched), the bpf_loop walk over a long run of
// down slots, mh predicted flow by flow (a mirror of the flow hash), its spread over even source
// ports, stickiness without state, the source-address flags and fallback, the double-buffered table
// flip, and the seams (no or an unknown scheduler, no table).
//
// rr/wrr cursors are per CPU and a test run lands on whichever CPU the test process is on: runs set
// every CPU's cursor first and carry the one the run left (Director.runWithCursor), which is exactly
// what one CPU would see.
import t, { type Test } from 'tap'
import { needsRoot } from '../helpers/root'
import { CLIENT_MAC, Director, DIRECTOR_MAC, flowHash, fmix, runRow } from '../helpers/director'
import { ConnKey, Limits, Proto, RealFlags, Sched, ServiceFlags } from '../../src/dataplane/abi'
import { buildMaglev, buildWrrSequence } from '../../src/sched'
import { ether, ipv4, ipv6, tcp } from '../../src/lab/packet'

const CIP = '10.0.0.1'
const VIP = '10.0.0.10'
const MAC = (id: number): string => `02:00:00:00:04:${id.toString(16).padStart(2, '0')}`
const REAL = (id: number, extra: Record<string, unknown> = {}) => ({ id, addr: `10.1.0.${id}`, dst_mac: MAC(id), ...extra })

const syn = (sport: number, src = CIP, vip = VIP): Buffer =>
  ether({ dst: DIRECTOR_MAC, src: CLIENT_MAC }, ipv4({ src, dst: vip }, tcp({ sport, dport: 80, flags: 'S' })))
const ack = (sport: number, src = CIP, vip = VIP): Buffer =>
  ether({ dst: DIRECTOR_MAC, src: CLIENT_MAC }, ipv4({ src, dst: vip }, tcp({ sport, dport: 80, flags: 'A' })))
/** Which real a forwarded frame went to (0: not forwarded to one). */
const realOf = (frame: Buffer): number => (frame.subarray(0, 5).equals(Buffer.from([2, 0, 0, 0, 4])) ? frame[5]! : 0)

/** Run `n` new connections through service `id` as one CPU would, from cursor `start`; the reals chosen. */
function sequence(t: Test, d: Director, id: number, n: number, start = 0, firstPort = 30000): { reals: number[]; cursors: number[] } {
  const reals: number[] = []
  const cursors: number[] = []
  let cursor = start
  for (let i = 0; i < n; i++) {
    const r = d.runWithCursor(id, cursor, syn(firstPort + 2 * i))
    if (r.action !== 'tx') t.fail(`connection ${i + 1}: ${r.action}, counters ${JSON.stringify(r.counters)}`)
    reals.push(realOf(r.data))
    cursors.push(r.cursor)
    cursor = r.cursor
  }
  return { reals, cursors }
}

t.test('rr: servers in turn, one per-CPU cursor', needsRoot, async (t) => {
  const d = Director.load(t)
  d.settings({})
  d.addService({ id: 0, vip: VIP, port: 80, sched: Sched.RR, reals: [REAL(1), REAL(2), REAL(3)] })
  const s = sequence(t, d, 0, 7)
  t.same(s.reals, [1, 2, 3, 1, 2, 3, 1], 'rr: 1 2 3 1 2 3 1')
  t.same(s.cursors, [1, 2, 0, 1, 2, 0, 1], 'rr: the cursor names the next slot, wrapping')
  d.setRrCursor(0, 0)
  d.run(syn(31000))
  const cursors = d.rrCursors(0)
  t.equal(cursors.filter((c) => c === 1).length, 1, `only the CPU that ran moved its cursor (${cursors.join(',')})`)
  t.equal(cursors.filter((c) => c === 0).length, cursors.length - 1, 'the other CPUs\' cursors are untouched')
  runRow(t, d, { description: 'the ACK of an rr connection does not move the cursor', input: ack(30000), verdict: 'tx', counters: { fwd_dr: 1, xdp_tx: 1 } })
})

t.test('rr: unavailable servers are skipped', needsRoot, async (t) => {
  const cases: Array<[string, Record<string, unknown>]> = [
    ['weight 0', { weight: 0 }], ['QUIESCED', { flags: RealFlags.QUIESCED }], ['REMOVED', { flags: RealFlags.REMOVED }],
    ['DOWN', { flags: RealFlags.DOWN }], ['in another service', { service_id: 5 }],
  ]
  for (const [how, extra] of cases) {
    const d = Director.load(t)
    d.settings({})
    d.addService({ id: 0, vip: VIP, port: 80, sched: Sched.RR, reals: [REAL(1), REAL(2), REAL(3)] })
    d.setReal({ service_id: 0, ...REAL(2), ...extra })
    t.same(sequence(t, d, 0, 4).reals, [1, 3, 1, 3], `real 2 ${how}: 1 3 1 3`)
  }
  const d = Director.load(t)
  d.settings({})
  d.addService({ id: 0, vip: VIP, port: 80, sched: Sched.RR, reals: [REAL(1), REAL(2)], table: [0, 1, 0, 2] })
  t.same(sequence(t, d, 0, 4).reals, [1, 2, 1, 2], 'empty slots (real id 0) are skipped')
  d.setReal({ service_id: 0, ...REAL(1), weight: 0 })
  d.setReal({ service_id: 0, ...REAL(2), weight: 0 })
  runRow(t, d, { description: 'every server quiesced: no backend', input: syn(32000), verdict: 'drop', counters: { drop_no_backend: 1 } })
})

t.test('wrr: the IPVS interleaved sequence, exactly', needsRoot, async (t) => {
  const d = Director.load(t)
  d.settings({})
  // Weights 1 and 3 (LVS docs: the first gets 1 of every 4 new connections).
  const seq13 = [...buildWrrSequence([1, 3])].map((i) => [1, 2][i]!)
  d.addService({ id: 0, vip: VIP, port: 80, sched: Sched.WRR, reals: [REAL(1, { weight: 1 }), REAL(2, { weight: 3 })], table: seq13 })
  t.same(seq13, [2, 2, 1, 2], 'the table: B B A B')
  const s = sequence(t, d, 0, 12)
  t.same(s.reals, [2, 2, 1, 2, 2, 2, 1, 2, 2, 2, 1, 2], 'wrr 1:3 over three periods: B B A B, exactly')
  t.same([s.reals.filter((r) => r === 1).length, s.reals.filter((r) => r === 2).length], [3, 9], 'wrr 1:3: 3 and 9 of 12')
  t.same(d.serviceStats(0).conns, 12n, 'twelve connections counted')
  t.same([d.realStatsOf(1).conns, d.realStatsOf(2).conns], [3n, 9n], 'per-real connections 3 and 9')

  // Weights 4, 3, 2: A A B A B C A B C (LVS documentation).
  const d2 = Director.load(t)
  d2.settings({})
  const seq432 = [...buildWrrSequence([4, 3, 2])].map((i) => [1, 2, 3][i]!)
  d2.addService({ id: 0, vip: VIP, port: 80, sched: Sched.WRR, reals: [REAL(1, { weight: 4 }), REAL(2, { weight: 3 }), REAL(3, { weight: 2 })], table: seq432 })
  t.same(sequence(t, d2, 0, 18).reals, [1, 1, 2, 1, 2, 3, 1, 2, 3, 1, 1, 2, 1, 2, 3, 1, 2, 3], 'wrr 4:3:2: A A B A B C A B C, twice')
})

t.test('wrr: down servers skipped, a long run walked with bpf_loop', needsRoot, async (t) => {
  const d = Director.load(t)
  d.settings({})
  const seq13 = [...buildWrrSequence([1, 3])].map((i) => [1, 2][i]!)
  d.addService({ id: 0, vip: VIP, port: 80, sched: Sched.WRR, reals: [REAL(1, { weight: 1 }), REAL(2, { weight: 3 })], table: seq13 })
  d.setReal({ service_id: 0, ...REAL(2, { weight: 3, flags: RealFlags.DOWN }) })
  t.same(sequence(t, d, 0, 4).reals, [1, 1, 1, 1], 'the weight-3 server down: everything to the other')

  const d2 = Director.load(t)
  d2.settings({})
  d2.addService({ id: 0, vip: VIP, port: 80, sched: Sched.WRR, reals: [REAL(1, { flags: RealFlags.DOWN }), REAL(2)], table: [...Array<number>(3000).fill(1), 2] })
  const r = d2.runWithCursor(0, 0, syn(33000))
  t.equal(r.action, 'tx', '3000 slots of a down server, then a live one: forwarded')
  t.equal(realOf(r.data), 2, 'to the live server at slot 3000')
  t.equal(r.cursor, 0, 'the cursor wraps past the last slot')
  const r2 = d2.runWithCursor(0, 1500, syn(33002))
  t.equal(realOf(r2.data), 2, 'from the middle of the run too')
  d2.setReal({ service_id: 0, ...REAL(2, { flags: RealFlags.DOWN }) })
  runRow(t, d2, { description: 'all 3001 slots down: no backend', input: syn(33004), verdict: 'drop', counters: { drop_no_backend: 1 } })
})

const MH_SIZE = 1021

function mhSetup(d: Director, n: number, flags = 0, seed = 0, size = MH_SIZE): number[] {
  d.settings({ hash_seed: seed })
  const reals = Array.from({ length: n }, (_, i) => REAL(i + 1))
  const table = [...buildMaglev(reals.map((r) => ({ key: r.addr, weight: 1 })), size)].map((i) => i + 1)
  d.addService({ id: 0, vip: VIP, port: 80, sched: Sched.MH, flags, reals, table })
  return table
}

t.test('mh: every flow where the maglev table and the flow hash say', needsRoot, async (t) => {
  const d = Director.load(t)
  const table = mhSetup(d, 3, 0, 0x5eed)
  const counts = [0, 0, 0, 0]
  let predicted = 0
  const n = 96
  for (let i = 0; i < n; i++) {
    const sport = 40000 + 2 * i // Linux connect() picks even ports
    const r = d.run(syn(sport))
    const want = table[flowHash({ caddr: CIP, vaddr: VIP, cport: sport, vport: 80, proto: Proto.TCP }, 0, 0x5eed) % MH_SIZE]!
    if (realOf(r.data) === want) predicted++
    counts[realOf(r.data)]!++
  }
  t.equal(predicted, n, `all ${n} flows went to table[flow hash mod ${MH_SIZE}]`)
  t.ok(counts.slice(1).every((c) => c >= n / 6), `even source ports spread over all three reals (${counts.slice(1).join(', ')})`)

  // Stickiness without state: the same flow, its entry gone, and on another director, lands on the same real.
  const first = realOf(d.run(syn(40000)).data)
  const key = { caddr: CIP, vaddr: VIP, cport: 40000, vport: 80, proto: Proto.TCP }
  t.equal(d.conns.delete(ConnKey.encode(key)), true, 'the flow\'s entry deleted')
  t.equal(realOf(d.run(syn(40000)).data), first, 'same flow, no entry: same real')
  const other = Director.load(t)
  mhSetup(other, 3, 0, 0x5eed)
  t.equal(realOf(other.run(syn(40000)).data), first, 'a second director with the same table and seed agrees')
  const reseeded = Director.load(t)
  mhSetup(reseeded, 3, 0, 0x1234)
  let moved = 0
  for (let i = 0; i < 32; i++) if (realOf(reseeded.run(syn(40000 + 2 * i)).data) !== realOf(other.run(syn(40000 + 2 * i)).data)) moved++
  t.ok(moved > 0, `another hash_seed sends some flows elsewhere (${moved} of 32)`)

  // IPv6 flows hash the 16-byte addresses.
  const d6 = Director.load(t)
  d6.settings({})
  const reals = [REAL(1, { addr: 'fd00:3::1' }), REAL(2, { addr: 'fd00:3::2' })]
  const t6 = [...buildMaglev(reals.map((r) => ({ key: r.addr, weight: 1 })), MH_SIZE)].map((i) => i + 1)
  d6.addService({ id: 0, vip: 'fd00:2::10', port: 80, sched: Sched.MH, reals, table: t6 })
  let ok6 = 0
  for (let i = 0; i < 16; i++) {
    const out = d6.run(ether({ dst: DIRECTOR_MAC, src: CLIENT_MAC }, ipv6({ src: 'fd00:1::1', dst: 'fd00:2::10' }, tcp({ sport: 50000 + 2 * i, dport: 80, flags: 'S' })))).data
    if (realOf(out) === t6[flowHash({ caddr: 'fd00:1::1', vaddr: 'fd00:2::10', cport: 50000 + 2 * i, vport: 80, proto: Proto.TCP }, 0, 0) % MH_SIZE]) ok6++
  }
  t.equal(ok6, 16, 'IPv6: all 16 flows where predicted')
})

t.test('mh: the largest table, 65,537 slots in 33 chunks: every flow at its slot', needsRoot, async (t) => {
  // A slot's chunk and place in it (xvs_table_get): a wrong chunk or offset sends flows elsewhere.
  const size = 65537
  t.equal(Math.ceil(size / Limits.SVC_TABLE_CHUNK), 33, `${size} slots span 33 chunks`)
  const d = Director.load(t)
  const table = mhSetup(d, 7, 0, 0x5eed, size)
  const chunks = new Set<number>()
  let predicted = 0
  const n = 200
  for (let i = 0; i < n; i++) {
    const sport = 20000 + 2 * i
    const slot = flowHash({ caddr: CIP, vaddr: VIP, cport: sport, vport: 80, proto: Proto.TCP }, 0, 0x5eed) % size
    chunks.add(Math.floor(slot / Limits.SVC_TABLE_CHUNK))
    if (realOf(d.run(syn(sport)).data) === table[slot]) predicted++
  }
  t.equal(predicted, n, `all ${n} flows went to table[flow hash mod ${size}]`)
  t.ok(chunks.size >= 25, `the flows' slots lie in ${chunks.size} of the 33 chunks`)
})

t.test('mh: hashing the client address only (mh, mh-port)', needsRoot, async (t) => {
  const d = Director.load(t)
  const table = mhSetup(d, 4, ServiceFlags.HASH_SRC_ADDR)
  const reals = new Set<number>()
  for (let i = 0; i < 16; i++) reals.add(realOf(d.run(syn(41000 + 2 * i)).data))
  t.equal(reals.size, 1, 'HASH_SRC_ADDR: every port of one client to one real')
  const want = table[flowHash({ caddr: CIP, vaddr: VIP, cport: 0, vport: 0, proto: Proto.TCP }, ServiceFlags.HASH_SRC_ADDR, 0) % MH_SIZE]
  t.equal([...reals][0], want, 'HASH_SRC_ADDR: the real the client address alone hashes to')
  const clients = new Set<number>()
  for (let i = 0; i < 32; i++) clients.add(realOf(d.run(syn(41000, `10.0.${i}.1`)).data))
  t.ok(clients.size >= 3, `different clients spread (${clients.size} reals for 32 clients)`)

  const p = Director.load(t)
  const ptable = mhSetup(p, 4, ServiceFlags.HASH_SRC_ADDR | ServiceFlags.HASH_SRC_PORT)
  let ok = 0
  const spread = new Set<number>()
  for (let i = 0; i < 32; i++) {
    const sport = 41000 + 2 * i
    const got = realOf(p.run(syn(sport)).data)
    spread.add(got)
    if (got === ptable[flowHash({ caddr: CIP, vaddr: VIP, cport: sport, vport: 80, proto: Proto.TCP }, ServiceFlags.HASH_SRC_ADDR | ServiceFlags.HASH_SRC_PORT, 0) % MH_SIZE]) ok++
  }
  t.equal(ok, 32, 'HASH_SRC_ADDR|HASH_SRC_PORT: every flow where address and port hash')
  t.ok(spread.size >= 3, `with the port, one client's flows spread (${spread.size} reals)`)
})

t.test('mh: an unavailable server, without and with fallback', needsRoot, async (t) => {
  const run = (flags: number): { table: number[]; results: Array<{ sport: number; action: string; real: number; counters: Record<string, number> }> } => {
    const d = Director.load(t)
    const table = mhSetup(d, 3, flags)
    d.setReal({ service_id: 0, ...REAL(1, { flags: RealFlags.DOWN }) })
    const results = []
    for (let i = 0; i < 48; i++) {
      const sport = 42000 + 2 * i
      const r = d.run(syn(sport))
      results.push({ sport, action: r.action, real: realOf(r.data), counters: r.counters })
    }
    return { table, results }
  }
  const hashOf = (sport: number): number => flowHash({ caddr: CIP, vaddr: VIP, cport: sport, vport: 80, proto: Proto.TCP }, 0, 0)

  const plain = run(0)
  const onDown = plain.results.filter((r) => plain.table[hashOf(r.sport) % MH_SIZE] === 1)
  t.ok(onDown.length > 0, `some flows hash to the down server (${onDown.length} of 48)`)
  t.ok(onDown.every((r) => r.action === 'drop' && r.counters.drop_no_backend === 1), 'without fallback they find no server (IPVS mh)')
  t.ok(plain.results.filter((r) => !onDown.includes(r)).every((r) => r.action === 'tx' && r.real === plain.table[hashOf(r.sport) % MH_SIZE]),
    'the other flows are not moved')

  const fb = run(ServiceFlags.SCHED_FALLBACK)
  t.ok(fb.results.every((r) => r.action === 'tx' && r.real !== 1), 'with fallback every flow finds a live server')
  let exact = 0
  for (const r of fb.results) {
    const h = hashOf(r.sport)
    let want = fb.table[h % MH_SIZE]!
    for (let i = 0; want === 1 && i < 256; i++) want = fb.table[fmix((h + i + 1) >>> 0) % MH_SIZE]!
    if (r.real === want) exact++
  }
  t.equal(exact, 48, 'with fallback: each flow where the rehash sequence fmix(hash + i + 1) first finds a live server')
  t.ok(fb.results.filter((r) => fb.table[hashOf(r.sport) % MH_SIZE] !== 1).every((r) => r.real === fb.table[hashOf(r.sport) % MH_SIZE]),
    'with fallback, flows of live servers are not moved')
})

t.test('table flip: new connections follow the live half, old ones stay', needsRoot, async (t) => {
  const d = Director.load(t)
  d.settings({})
  d.addService({ id: 0, vip: VIP, port: 80, sched: Sched.RR, reals: [REAL(1), REAL(2)], table: [1], half: 0 })
  d.table(0, 1, [2]) // the next table, written to the idle half
  runRow(t, d, { description: 'before the flip: half 0', input: syn(43000), verdict: 'tx', counters: { conn_new: 1, fwd_dr: 1, xdp_tx: 1 },
    check: (t, out) => t.equal(realOf(out), 1, 'before the flip: real 1') })
  d.setService(VIP, 80, Proto.TCP, { id: 0, sched: Sched.RR, active_table: 1, table_size: 1, num_reals: 2 })
  runRow(t, d, { description: 'after the flip: half 1', input: syn(43002), verdict: 'tx', counters: { conn_new: 1, fwd_dr: 1, xdp_tx: 1 },
    check: (t, out) => t.equal(realOf(out), 2, 'after the flip: real 2') })
  runRow(t, d, { description: 'an old connection after the flip', input: ack(43000), verdict: 'tx', counters: { fwd_dr: 1, xdp_tx: 1 },
    check: (t, out) => t.equal(realOf(out), 1, 'old connection: still real 1') })
  d.table(0, 0, [1, 2]) // rewrite the idle half, flip back
  d.setService(VIP, 80, Proto.TCP, { id: 0, sched: Sched.RR, active_table: 0, table_size: 2, num_reals: 2 })
  const s = sequence(t, d, 0, 2, 0, 43100)
  t.same(s.reals, [1, 2], 'flipped back to the rewritten half 0: 1 2')
  runRow(t, d, { description: 'the connection made on half 1, after flipping back', input: ack(43002), verdict: 'tx', counters: { fwd_dr: 1, xdp_tx: 1 },
    check: (t, out) => t.equal(realOf(out), 2, 'still real 2') })
})

t.test('seams: no scheduler or an unknown one, missing tables', needsRoot, async (t) => {
  const d = Director.load(t)
  d.settings({})
  let id = 0
  // Every IPVS scheduler runs in BPF now; only "none" and values no xvs knows are refused.
  for (const [name, sched] of [['NONE', Sched.NONE], ['UNKNOWN', 200]] as const) {
    const vip = `10.0.2.${++id}`
    d.addService({ id, vip, port: 80, sched, reals: [REAL(id)] })
    runRow(t, d, { description: `scheduler ${name.toLowerCase()} (${sched})`, input: syn(44000, CIP, vip), verdict: 'drop',
      counters: { drop_sched_unsupported: 1 } })
  }
  d.addService({ id: 40, vip: '10.0.3.1', port: 80, sched: Sched.RR, reals: [REAL(40)], table: [], tableSize: 1 })
  runRow(t, d, { description: 'no table installed for the live half', input: syn(44000, CIP, '10.0.3.1'), verdict: 'drop', counters: { drop_no_table: 1 } })
  d.addService({ id: 41, vip: '10.0.3.2', port: 80, sched: Sched.RR, reals: [REAL(41)], tableSize: 0 })
  runRow(t, d, { description: 'table_size 0', input: syn(44000, CIP, '10.0.3.2'), verdict: 'drop', counters: { drop_no_backend: 1 } })
  d.addService({ id: 42, vip: '10.0.3.3', port: 80, sched: Sched.MH, reals: [REAL(42)], half: 1 })
  d.setService('10.0.3.3', 80, Proto.TCP, { id: 42, sched: Sched.MH, active_table: 0, table_size: 1 })
  runRow(t, d, { description: 'mh with only the idle half installed', input: syn(44000, CIP, '10.0.3.3'), verdict: 'drop', counters: { drop_no_table: 1 } })
  t.same(d.allConns(), [], 'no connection entry made')
})
