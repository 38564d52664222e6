// SPDX-License-Identifier: GPL-2.0-only
// The director's connection table through BPF_PROG_TEST_RUN: TCP states (the IPVS input-only
// table), every state's timeout, quiesced / removed / down real servers with expire_nodest_conn 0
// and 1, port reuse after TIME_WAIT/CLOSE/FIN_WAIT, sloppy_tcp, UDP expiry with a 1 s timeout, one-packet
// scheduling, and entries of a replaced service.
//
// Timeouts are checked two ways: once in real time (a 1 s UDP timeout and a bounded wait), and for
// every state by moving an entry's last_seen_ns back — bpf_ktime_get_ns() and process.hrtime() both
// read CLOCK_MONOTONIC, and last_seen_ns is the only clock an entry has, so that is time passing.
import t from 'tap'
import { needsRoot } from '../helpers/root'
import { CLIENT_MAC, Director, DIRECTOR_MAC, runRow } from '../helpers/director'
import { ConnFlags, ConnState, Proto, RealFlags, ServiceFlags, Sched, Timeouts } from '../../src/dataplane/abi'
import { ether, ipv4, ipv6, tcp, udp } from '../../src/lab/packet'

const CIP = '10.0.0.1'
const VIP = '10.0.0.10'
const VIP2 = '10.0.0.20'
const MAC = (id: number): string => `02:00:00:00:03:${id.toString(16).padStart(2, '0')}`

/**
 * Service 0: VIP:80/tcp, one real (1). Service 1: VIP:53/udp, one real (2).
 * Service 2: VIP2:80/tcp and service 3: VIP2:53/udp, two reals each (3, 4 and 5, 6), rr.
 */
function setup(d: Director, settings: Parameters<Director['settings']>[0] = {}): void {
  d.settings(settings)
  d.addService({ id: 0, vip: VIP, port: 80, sched: Sched.RR, reals: [{ id: 1, addr: '10.1.0.1', dst_mac: MAC(1) }] })
  d.addService({ id: 1, vip: VIP, port: 53, proto: Proto.UDP, sched: Sched.RR, reals: [{ id: 2, addr: '10.1.0.2', dst_mac: MAC(2) }] })
  d.addService({ id: 2, vip: VIP2, port: 80, sched: Sched.RR, reals: [{ id: 3, addr: '10.1.0.3', dst_mac: MAC(3) }, { id: 4, addr: '10.1.0.4', dst_mac: MAC(4) }] })
  d.addService({ id: 3, vip: VIP2, port: 53, proto: Proto.UDP, sched: Sched.RR, reals: [{ id: 5, addr: '10.1.0.5', dst_mac: MAC(5) }, { id: 6, addr: '10.1.0.6', dst_mac: MAC(6) }] })
}

const seg = (sport: number, flags: string, vip = VIP): Buffer =>
  ether({ dst: DIRECTOR_MAC, src: CLIENT_MAC }, ipv4({ src: CIP, dst: vip }, tcp({ sport, dport: 80, flags })))
const dgram = (sport: number, vip = VIP): Buffer =>
  ether({ dst: DIRECTOR_MAC, src: CLIENT_MAC }, ipv4({ src: CIP, dst: vip }, udp({ sport, dport: 53, payload: 'q' })))
const tkey = (cport: number, vaddr = VIP) => ({ caddr: CIP, vaddr, cport, vport: 80, proto: Proto.TCP })
const ukey = (cport: number, vaddr = VIP) => ({ caddr: CIP, vaddr, cport, vport: 53, proto: Proto.UDP })
/** The real a forwarded dr frame went to, by its destination MAC (0: not forwarded). */
const realOf = (frame: Buffer): number => (frame.subarray(0, 5).equals(Buffer.from([2, 0, 0, 0, 3])) ? frame[5]! : 0)

const FWD = { fwd_dr: 1, xdp_tx: 1 }
const NEW = { conn_new: 1, fwd_dr: 1, xdp_tx: 1 }
const S = ConnState

t.test('TCP states: the IPVS input-only table, driven by client packets', needsRoot, async (t) => {
  const d = Director.load(t)
  setup(d)
  const sequences: Array<{ name: string; sport: number; steps: Array<[string, number, Record<string, number>]> }> = [
    { name: 'open, data, close by the client', sport: 40000, steps: [
      ['S', S.SYN_RECV, NEW], ['A', S.ESTABLISHED, FWD], ['PA', S.ESTABLISHED, FWD], ['FA', S.FIN_WAIT, FWD], ['A', S.FIN_WAIT, FWD],
      ['F', S.FIN_WAIT, FWD], ['R', S.CLOSE, FWD], ['A', S.CLOSE, FWD]] },
    { name: 'reset in SYN_RECV stays SYN_RECV (IPVS)', sport: 40001, steps: [['S', S.SYN_RECV, NEW], ['R', S.SYN_RECV, FWD], ['S', S.SYN_RECV, FWD]] },
    { name: 'FIN straight after the SYN: TIME_WAIT', sport: 40002, steps: [['S', S.SYN_RECV, NEW], ['F', S.TIME_WAIT, FWD], ['A', S.TIME_WAIT, FWD]] },
    { name: 'a SYN+ACK opens in SYN_RECV; on TIME_WAIT it is no new connection', sport: 40003, steps: [
      ['SA', S.SYN_RECV, NEW], ['F', S.TIME_WAIT, FWD], ['SA', S.SYN_RECV, FWD]] },
    { name: 'reset on an established connection: CLOSE', sport: 40004, steps: [['S', S.SYN_RECV, NEW], ['A', S.ESTABLISHED, FWD], ['RA', S.CLOSE, FWD]] },
    { name: 'a packet with no flag leaves the state alone', sport: 40005, steps: [['S', S.SYN_RECV, NEW], ['', S.SYN_RECV, FWD], ['U', S.SYN_RECV, FWD]] },
  ]
  for (const seq of sequences) {
    let i = 0
    for (const [flags, state, counters] of seq.steps) {
      const label = `${seq.name}: step ${++i} [${flags || 'none'}]`
      runRow(t, d, { description: label, input: seg(seq.sport, flags), verdict: 'tx', counters })
      t.equal(d.conn(tkey(seq.sport))?.state, state, `${label}: state ${Object.entries(S).find(([, v]) => v === state)?.[0]}`)
    }
  }
  t.equal(d.conn(tkey(40000))?.real_id, 1, 'the connection kept its real server throughout')
})

t.test('every state times out after its own timeout (settings honoured)', needsRoot, async (t) => {
  const d = Director.load(t)
  // Settable ones short, so that they are told apart from the fixed ones.
  setup(d, { tcp_timeout_s: 5, tcp_fin_timeout_s: 3, udp_timeout_s: 4 })
  const rows: Array<[string, number, number, number]> = [
    // name, proto, state, timeout (s)
    ['ESTABLISHED (tcp_timeout_s 5)', Proto.TCP, S.ESTABLISHED, 5],
    ['FIN_WAIT (tcp_fin_timeout_s 3)', Proto.TCP, S.FIN_WAIT, 3],
    ['NONE', Proto.TCP, S.NONE, Timeouts.NONE_S],
    ['SYN_SENT', Proto.TCP, S.SYN_SENT, Timeouts.SYN_SENT_S],
    ['SYN_RECV', Proto.TCP, S.SYN_RECV, Timeouts.SYN_RECV_S],
    ['TIME_WAIT', Proto.TCP, S.TIME_WAIT, Timeouts.TIME_WAIT_S],
    ['CLOSE', Proto.TCP, S.CLOSE, Timeouts.CLOSE_S],
    ['CLOSE_WAIT', Proto.TCP, S.CLOSE_WAIT, Timeouts.CLOSE_WAIT_S],
    ['LAST_ACK', Proto.TCP, S.LAST_ACK, Timeouts.LAST_ACK_S],
    ['LISTEN', Proto.TCP, S.LISTEN, Timeouts.LISTEN_S],
    ['SYNACK', Proto.TCP, S.SYNACK, Timeouts.SYNACK_S],
    ['UDP (udp_timeout_s 4)', Proto.UDP, S.UDP, 4],
  ]
  let port = 41000
  for (const [name, proto, state, timeout] of rows) {
    // Alive 1 s before its timeout; gone 1.5 s after it (expiry may lag by XVS_CONN_TOUCH_NS, 1 s).
    for (const [age, alive] of [[timeout - 1, true], [timeout + 1.5, false]] as const) {
      const cport = port++
      const key = proto === Proto.TCP ? tkey(cport) : ukey(cport)
      const now = process.hrtime.bigint()
      const then = now - BigInt(Math.round(age * 1e9))
      d.setConn(key, { last_seen_ns: then, created_ns: then, real_id: proto === Proto.TCP ? 1 : 2, service_id: proto === Proto.TCP ? 0 : 1, state })
      const label = `${name}: last packet ${age} s ago`
      const input = proto === Proto.TCP ? seg(cport, 'A') : dgram(cport)
      if (alive) runRow(t, d, { description: `${label}: still there`, input, verdict: 'tx', counters: FWD })
      else if (proto === Proto.TCP) runRow(t, d, { description: `${label}: expired, and an ACK opens nothing`, input, verdict: 'pass', counters: { conn_expired: 1, pass_tcp_not_syn: 1 } })
      else runRow(t, d, { description: `${label}: expired, scheduled afresh`, input, verdict: 'tx', counters: { conn_expired: 1, ...NEW } })
      if (!alive && proto === Proto.TCP) t.equal(d.conn(key), null, `${label}: the stale entry is deleted`)
    }
  }
  // 0 in a settable timeout means the IPVS default (900 / 120 / 300 s), not 0 s: idle 60 s, all live.
  d.settings({})
  for (const [name, proto, state] of [['ESTABLISHED', Proto.TCP, S.ESTABLISHED], ['FIN_WAIT', Proto.TCP, S.FIN_WAIT], ['UDP', Proto.UDP, S.UDP]] as const) {
    const cport = port++
    const key = proto === Proto.TCP ? tkey(cport) : ukey(cport)
    const then = process.hrtime.bigint() - 60_000_000_000n
    d.setConn(key, { last_seen_ns: then, created_ns: then, real_id: proto === Proto.TCP ? 1 : 2, service_id: proto === Proto.TCP ? 0 : 1, state })
    runRow(t, d, { description: `timeout settings 0: ${name} idle 60 s is still there (default ${name === 'UDP' ? Timeouts.UDP_S : name === 'FIN_WAIT' ? Timeouts.TCP_FIN_S : Timeouts.TCP_S} s)`,
      input: proto === Proto.TCP ? seg(cport, 'A') : dgram(cport), verdict: 'tx', counters: FWD })
  }
})

t.test('UDP expiry in real time, 1 s timeout', needsRoot, async (t) => {
  const d = Director.load(t)
  setup(d, { udp_timeout_s: 1 })
  runRow(t, d, { description: 'first datagram: an entry', input: dgram(6000), verdict: 'tx', counters: NEW })
  const created = d.conn(ukey(6000))!.created_ns
  runRow(t, d, { description: 'second datagram at once: a hit', input: dgram(6000), verdict: 'tx', counters: FWD })
  // 1 s, plus up to 1 s of XVS_CONN_TOUCH_NS granularity: 2.2 s of silence is past any reading of it.
  await new Promise((r) => setTimeout(r, 2200))
  runRow(t, d, { description: 'after 2.2 s of silence: expired, scheduled afresh', input: dgram(6000), verdict: 'tx', counters: { conn_expired: 1, ...NEW } })
  const again = d.conn(ukey(6000))
  t.ok(again && again.created_ns > created, 'a new entry replaced the old one')
  t.equal(again?.state, S.UDP, 'state UDP')
})

// Regression test (bpf/include/xvs/conntrack.h, xvs_conn_touch / xvs_conn_expired; fixed): last_seen_ns is rewritten at
// most once per XVS_CONN_TOUCH_NS (1 s), but expiry compares the full timeout with that stale stamp.
// So an entry can expire up to 1 s before its timeout after the last packet; with a 1 s timeout a
// flow that sends every 0.6 s is torn down and rescheduled (to another real, with several) while busy.
t.test('a UDP flow with a datagram every 0.6 s outlives its 1 s timeout', needsRoot, async (t) => {
  const d = Director.load(t)
  setup(d, { udp_timeout_s: 1 })
  runRow(t, d, { description: 't = 0: first datagram', input: dgram(6100), verdict: 'tx', counters: NEW })
  d.ageConn(ukey(6100), 0.6)
  runRow(t, d, { description: 't = 0.6 s: a hit', input: dgram(6100), verdict: 'tx', counters: FWD })
  d.ageConn(ukey(6100), 0.6)
  runRow(t, d, { description: 't = 1.2 s, 0.6 s after the last datagram: still a hit', input: dgram(6100), verdict: 'tx', counters: FWD })
})

t.test('quiesced real servers keep their connections, take no new ones', needsRoot, async (t) => {
  for (const [how, real] of [
    ['weight 0', { weight: 0 }],
    ['the QUIESCED flag', { weight: 5, flags: RealFlags.QUIESCED }],
  ] as const) {
    const d = Director.load(t)
    setup(d)
    runRow(t, d, { description: `${how}: SYN before`, input: seg(42000, 'S'), verdict: 'tx', counters: NEW })
    runRow(t, d, { description: `${how}: UDP before`, input: dgram(42000), verdict: 'tx', counters: NEW })
    d.setReal({ id: 1, addr: '10.1.0.1', dst_mac: MAC(1), service_id: 0, ...real })
    d.setReal({ id: 2, addr: '10.1.0.2', dst_mac: MAC(2), service_id: 1, ...real })
    runRow(t, d, { description: `${how}: the open TCP connection continues`, input: seg(42000, 'A'), verdict: 'tx', counters: FWD })
    runRow(t, d, { description: `${how}: the UDP flow continues`, input: dgram(42000), verdict: 'tx', counters: FWD })
    runRow(t, d, { description: `${how}: a new SYN finds no server`, input: seg(42001, 'S'), verdict: 'drop', counters: { drop_no_backend: 1 } })
    runRow(t, d, { description: `${how}: a new UDP flow finds no server`, input: dgram(42001), verdict: 'drop', counters: { drop_no_backend: 1 } })
    t.equal(d.conn(tkey(42001)), null, `${how}: no entry for the refused flow`)
  }
})

t.test('removed and down real servers: expire_nodest_conn 0 drops, 1 reschedules', needsRoot, async (t) => {
  for (const [how, flags] of [['REMOVED', RealFlags.REMOVED], ['DOWN', RealFlags.DOWN]] as const) {
    const d = Director.load(t)
    setup(d)
    d.setRrCursor(2, 0)
    d.setRrCursor(3, 0)
    runRow(t, d, { description: `${how}: SYN to service 2 goes to real 3`, input: seg(43000, 'S', VIP2), verdict: 'tx', counters: NEW,
      check: (t, out) => t.equal(realOf(out), 3, `${how}: real 3`) })
    d.setRrCursor(2, 0)
    runRow(t, d, { description: `${how}: a second flow to service 2 goes to real 3 too (cursor set back)`, input: seg(43001, 'S', VIP2), verdict: 'tx',
      counters: NEW, check: (t, out) => t.equal(realOf(out), 3, `${how}: real 3`) })
    d.setRrCursor(3, 0)
    runRow(t, d, { description: `${how}: a UDP flow to service 3 goes to real 5`, input: dgram(43000, VIP2), verdict: 'tx', counters: NEW,
      check: (t, out) => t.equal(realOf(out), 5, `${how}: real 5`) })
    d.setReal({ id: 3, addr: '10.1.0.3', dst_mac: MAC(3), service_id: 2, flags })
    d.setReal({ id: 5, addr: '10.1.0.5', dst_mac: MAC(5), service_id: 3, flags })

    runRow(t, d, { description: `${how}, expire_nodest_conn 0: the connection's packets are dropped`, input: seg(43000, 'A', VIP2), verdict: 'drop',
      counters: { drop_real_unavailable: 1 } })
    t.equal(d.conn(tkey(43000, VIP2))?.real_id, 3, `${how}, expire_nodest_conn 0: the entry stays`)
    runRow(t, d, { description: `${how}, expire_nodest_conn 0: UDP dropped too`, input: dgram(43000, VIP2), verdict: 'drop', counters: { drop_real_unavailable: 1 } })
    runRow(t, d, { description: `${how}: new SYNs go to the other real`, input: seg(43002, 'S', VIP2), verdict: 'tx', counters: NEW,
      check: (t, out) => t.equal(realOf(out), 4, `${how}: real 4`) })

    d.settings({ expire_nodest_conn: 1 })
    runRow(t, d, { description: `${how}, expire_nodest_conn 1: an ACK loses its entry and, being no SYN, passes`, input: seg(43000, 'A', VIP2), verdict: 'pass',
      counters: { conn_nodest_expired: 1, pass_tcp_not_syn: 1 } })
    t.equal(d.conn(tkey(43000, VIP2)), null, `${how}, expire_nodest_conn 1: the entry is gone`)
    runRow(t, d, { description: `${how}, expire_nodest_conn 1: a SYN on the other flow is rescheduled to the live real`, input: seg(43001, 'S', VIP2),
      verdict: 'tx', counters: { conn_nodest_expired: 1, ...NEW }, check: (t, out) => t.equal(realOf(out), 4, `${how}: rescheduled to real 4`) })
    t.equal(d.conn(tkey(43001, VIP2))?.real_id, 4, `${how}: the new entry names real 4`)
    runRow(t, d, { description: `${how}, expire_nodest_conn 1: the UDP flow is rescheduled`, input: dgram(43000, VIP2), verdict: 'tx',
      counters: { conn_nodest_expired: 1, ...NEW }, check: (t, out) => t.equal(realOf(out), 6, `${how}: rescheduled to real 6`) })
  }
})

t.test('a real server moved to another service no longer serves the old one', needsRoot, async (t) => {
  const d = Director.load(t)
  setup(d)
  runRow(t, d, { description: 'SYN to service 0 (real 1)', input: seg(44000, 'S'), verdict: 'tx', counters: NEW })
  d.setReal({ id: 1, addr: '10.1.0.1', dst_mac: MAC(1), service_id: 7 })
  runRow(t, d, { description: 'real 1 now in service 7: the flow is dropped (expire_nodest_conn 0)', input: seg(44000, 'A'), verdict: 'drop',
    counters: { drop_real_unavailable: 1 } })
  runRow(t, d, { description: 'and a new SYN finds no server of service 0', input: seg(44001, 'S'), verdict: 'drop', counters: { drop_no_backend: 1 } })
})

t.test('port reuse: a SYN on a TIME_WAIT, CLOSE or FIN_WAIT entry is a new connection', needsRoot, async (t) => {
  const d = Director.load(t)
  setup(d)
  for (const [name, closing] of [['TIME_WAIT', ['S', 'F']], ['CLOSE', ['S', 'A', 'R']], ['FIN_WAIT', ['S', 'A', 'FA', 'A']]] as const) {
    const sport = name === 'CLOSE' ? 45000 : name === 'TIME_WAIT' ? 45100 : 45300
    d.setRrCursor(2, 0)
    for (const f of closing) d.run(seg(sport, f, VIP2))
    t.equal(d.conn(tkey(sport, VIP2))?.state, S[name], `${name}: reached`)
    t.equal(d.conn(tkey(sport, VIP2))?.real_id, 3, `${name}: on real 3`)
    // the old entry made 10 s earlier, so a new one shows by its creation time (the clock is coarse)
    const old = d.conn(tkey(sport, VIP2))!
    const before = old.created_ns - 10_000_000_000n
    d.setConn(tkey(sport, VIP2), { ...old, created_ns: before })
    d.setRrCursor(2, 1)
    runRow(t, d, { description: `${name}: a SYN reusing the ports is scheduled afresh`, input: seg(sport, 'S', VIP2), verdict: 'tx',
      counters: { conn_reused: 1, ...NEW }, check: (t, out) => t.equal(realOf(out), 4, `${name}: the scheduler chose again (real 4)`) })
    const c = d.conn(tkey(sport, VIP2))
    t.equal(c?.state, S.SYN_RECV, `${name}: the new entry is in SYN_RECV`)
    t.equal(c?.real_id, 4, `${name}: the new entry names real 4`)
    t.ok(c && c.created_ns > before, `${name}: created anew`)
  }
  d.setConn(tkey(45200, VIP2), { last_seen_ns: process.hrtime.bigint(), created_ns: process.hrtime.bigint(), real_id: 3, service_id: 2, state: S.ESTABLISHED })
  runRow(t, d, { description: 'a SYN on an ESTABLISHED entry is no reuse: it stays with its real', input: seg(45200, 'S', VIP2), verdict: 'tx', counters: FWD,
    check: (t, out) => t.equal(realOf(out), 3, 'still real 3') })
})

t.test('sloppy_tcp: TCP misses other than SYN are scheduled too', needsRoot, async (t) => {
  const d = Director.load(t)
  setup(d)
  runRow(t, d, { description: 'sloppy_tcp 0: an ACK without an entry passes to the stack', input: seg(46000, 'A'), verdict: 'pass', output: 'unchanged',
    counters: { pass_tcp_not_syn: 1 } })
  runRow(t, d, { description: 'sloppy_tcp 0: a FIN without an entry passes', input: seg(46000, 'FA'), verdict: 'pass', output: 'unchanged',
    counters: { pass_tcp_not_syn: 1 } })
  d.settings({ sloppy_tcp: 1 })
  runRow(t, d, { description: 'sloppy_tcp 1: an ACK without an entry is scheduled', input: seg(46001, 'A'), verdict: 'tx', counters: NEW })
  t.same([d.conn(tkey(46001))?.state, d.conn(tkey(46001))?.flags], [S.ESTABLISHED, ConnFlags.SLOPPY], 'sloppy entry: ESTABLISHED, flag SLOPPY')
  runRow(t, d, { description: 'sloppy_tcp 1: a FIN without an entry is scheduled', input: seg(46002, 'FA'), verdict: 'tx', counters: NEW })
  t.same([d.conn(tkey(46002))?.state, d.conn(tkey(46002))?.flags], [S.CLOSE, ConnFlags.SLOPPY], 'sloppy FIN entry: CLOSE (IPVS: fin on NONE), flag SLOPPY')
  runRow(t, d, { description: 'sloppy_tcp 1: a RST without an entry still passes', input: seg(46003, 'R'), verdict: 'pass', output: 'unchanged',
    counters: { pass_tcp_not_syn: 1 } })
  runRow(t, d, { description: 'sloppy_tcp 1: a SYN is no sloppy entry', input: seg(46004, 'S'), verdict: 'tx', counters: NEW })
  t.equal(d.conn(tkey(46004))?.flags, 0, 'SYN entry: no SLOPPY flag')
})

t.test('one-packet scheduling (ipvsadm -o): every datagram scheduled, no entry', needsRoot, async (t) => {
  const d = Director.load(t)
  setup(d)
  const svc = d.service(VIP2, 53, Proto.UDP)!
  d.setService(VIP2, 53, Proto.UDP, { ...svc, flags: ServiceFlags.ONE_PACKET })
  const seen: number[] = []
  let cursor = 0
  for (let i = 0; i < 4; i++) {
    const r = d.runWithCursor(3, cursor, dgram(47000, VIP2))
    cursor = r.cursor
    t.equal(r.action, 'tx', `datagram ${i + 1}: forwarded`)
    t.same(r.counters, { rx: 1, one_packet: 1, fwd_dr: 1, xdp_tx: 1 }, `datagram ${i + 1}: counted one_packet, no conn_new`)
    seen.push(realOf(r.data))
  }
  t.same(seen, [5, 6, 5, 6], 'the same flow alternates between the reals: each datagram is scheduled')
  t.same(d.allConns(), [], 'no connection entry')
  t.equal(d.serviceStats(3).conns, 4n, 'service stats: one "connection" per datagram')
  // The flag is for UDP: a TCP service with it still keeps connections.
  const tsvc = d.service(VIP2, 80, Proto.TCP)!
  d.setService(VIP2, 80, Proto.TCP, { ...tsvc, flags: ServiceFlags.ONE_PACKET })
  runRow(t, d, { description: 'ONE_PACKET on a TCP service: ignored, the SYN makes an entry', input: seg(47001, 'S', VIP2), verdict: 'tx', counters: NEW })
})

t.test('entries of a replaced service are stale', needsRoot, async (t) => {
  const d = Director.load(t)
  setup(d)
  runRow(t, d, { description: 'SYN to service 0', input: seg(48000, 'S'), verdict: 'tx', counters: NEW })
  runRow(t, d, { description: 'UDP to service 1', input: dgram(48000), verdict: 'tx', counters: NEW })
  // The same VIP:port deleted and added again gets a new id.
  d.addService({ id: 9, vip: VIP, port: 80, sched: Sched.RR, reals: [{ id: 9, addr: '10.1.0.9', dst_mac: MAC(9) }] })
  runRow(t, d, { description: 'an ACK of the old service\'s connection: expired, and passes', input: seg(48000, 'A'), verdict: 'pass',
    counters: { conn_expired: 1, pass_tcp_not_syn: 1 } })
  runRow(t, d, { description: 'a SYN on the new service goes to its real', input: seg(48000, 'S'), verdict: 'tx', counters: NEW,
    check: (t, out) => t.equal(realOf(out), 9, 'real 9') })
  t.equal(d.conn(tkey(48000))?.service_id, 9, 'the entry now names service 9')
})

t.test('IPv6 flows are tracked the same way', needsRoot, async (t) => {
  const d = Director.load(t)
  d.settings({})
  d.addService({ id: 0, vip: 'fd00:2::10', port: 80, sched: Sched.RR, reals: [{ id: 1, addr: 'fd00:3::1', dst_mac: MAC(1) }] })
  const f = (flags: string): Buffer => ether({ dst: DIRECTOR_MAC, src: CLIENT_MAC }, ipv6({ src: 'fd00:1::1', dst: 'fd00:2::10' }, tcp({ sport: 49000, dport: 80, flags })))
  const key = { caddr: 'fd00:1::1', vaddr: 'fd00:2::10', cport: 49000, vport: 80, proto: Proto.TCP }
  runRow(t, d, { description: 'IPv6 SYN', input: f('S'), verdict: 'tx', counters: NEW })
  t.equal(d.conn(key)?.state, S.SYN_RECV, 'IPv6 entry: SYN_RECV')
  runRow(t, d, { description: 'IPv6 ACK', input: f('A'), verdict: 'tx', counters: FWD })
  t.equal(d.conn(key)?.state, S.ESTABLISHED, 'IPv6 entry: ESTABLISHED')
  t.equal(d.allConns()[0]?.key.family, 10, 'the key holds family AF_INET6')
})
