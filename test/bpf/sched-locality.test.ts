// SPDX-License-Identifier: GPL-2.0-only
// lblc and lblcr through BPF_PROG_TEST_RUN: a destination keeps its server (lblc) or its set of
// servers (lblcr) in xvs_locality until lblc's notion of overload (more active connections than its
// weight while another server has less than half its weight active) sends it to wlc's pick; lblcr's set
// grows then, and sheds its most loaded member once it has not changed for the expiration time.
import t, { type Test } from 'tap'
import { needsRoot } from '../helpers/root'
import { Director, runRow } from '../helpers/director'
import { SchedMaps, memberBytes, monoNow, real, realOf, tcpPkt } from '../helpers/sched'
import { Proto, RealFlags, Sched, Timeouts } from '../../src/dataplane/abi'

const VIP_A = '10.0.6.1'
const VIP_B = '10.0.6.2'
const DAY_NS = BigInt(Timeouts.LOCALITY_S) * 1_000_000_000n
/**
 * A time a day and a second ago. CLOCK_MONOTONIC may not be a day old (a fresh machine); the data
 * plane's u64 difference wraps the same way, so the value taken modulo 2^64 is a day old to it.
 */
const dayAgo = (): bigint => BigInt.asUintN(64, monoNow() - DAY_NS - 1_000_000_000n)

function setup(t: Test, sched: number, n = 3): { d: Director; m: SchedMaps } {
  const d = Director.load(t)
  d.settings({})
  d.addService({ id: 4, vip: VIP_A, port: 80, sched, reals: Array.from({ length: n }, (_, i) => real(i + 1)) })
  // a second destination of the same service (a VIP with the same service entry)
  d.setService(VIP_B, 80, Proto.TCP, { id: 4, sched, table_size: n })
  return { d, m: new SchedMaps(t, d) }
}

let port = 20000
const pick = (d: Director, dst = VIP_A): number => {
  const r = d.run(tcpPkt({ dst, sport: port += 2 }))
  return r.action === 'tx' ? realOf(r.data) : 0
}

t.test('lblc: a destination sticks to its server until it is overloaded in lblc\'s sense', needsRoot, async (t) => {
  const { d, m } = setup(t, Sched.LBLC)
  t.equal(pick(d), 1, 'first connection: wlc\'s pick (all idle: the first listed)')
  t.same(m.localityOf(4, VIP_A)?.members, [1], 'the destination now names server 1')
  m.setConns(1, { active: 1 })
  runRow(t, d, { description: 'server 1 busier than the others but active 1 <= weight 1: still server 1', input: tcpPkt({ dst: VIP_A, sport: port += 2 }),
    verdict: 'tx', counters: { locality_hit: 1, conn_new: 1, fwd_dr: 1, xdp_tx: 1 } })
  m.setConns(2, { active: 3 })
  t.equal(pick(d, VIP_B), 3, 'another destination: its own entry, wlc\'s pick')
  m.setConns(1, { active: 2 })
  t.equal(pick(d), 3, 'active 2 > weight 1 and server 3 has 2 * active < weight: wlc\'s pick, server 3')
  t.same(m.localityOf(4, VIP_A)?.members, [3], 'the destination now names server 3')
  m.setConns(3, { active: 5 })
  m.setConns(1, { active: 5 })
  m.setConns(2, { active: 5 })
  t.equal(pick(d), 3, 'every server past its weight: none is lighter, server 3 kept')

  d.setReal({ service_id: 4, ...real(3), flags: RealFlags.QUIESCED })
  m.setConns(1, { active: 0 })
  t.equal(pick(d), 1, 'its server quiesced: wlc\'s pick')
  t.same(m.localityOf(4, VIP_A)?.members, [1], 'and the entry follows')

  const e = m.localityOf(4, VIP_A)!
  m.setLocality(4, VIP_A, { ...e, lastuse_ns: dayAgo() })
  m.setConns(2, { active: 0 })
  m.setConns(1, { active: 1 })
  t.equal(pick(d), 2, 'an entry unused for a day is gone: wlc\'s pick again')
})

t.test('lblcr: a set per destination that grows under overload and shrinks after the expiration', needsRoot, async (t) => {
  const { d, m } = setup(t, Sched.LBLCR)
  t.equal(pick(d), 1, 'first connection: wlc\'s pick')
  t.same(m.localityOf(4, VIP_A)?.members, [1], 'the set: {1}')
  m.setConns(1, { active: 2 })
  t.equal(pick(d), 2, 'server 1 overloaded (2 > weight 1, others idle): wlc\'s pick')
  t.same(m.localityOf(4, VIP_A)?.members, [1, 2], 'server 2 joined the set')
  m.setConns(2, { active: 1 })
  m.setConns(3, { active: 0 })
  t.equal(pick(d), 2, 'the least loaded member (2), though server 3 outside the set is idle')
  m.setConns(2, { active: 3 })
  t.equal(pick(d), 3, 'both members overloaded: wlc\'s pick joins')
  t.same(m.localityOf(4, VIP_A)?.members, [1, 2, 3], 'the set: {1, 2, 3}')

  // Not changed for the expiration: the most loaded member (per weight) goes.
  m.setConns(1, { active: 0, inactive: 0 })
  m.setConns(2, { active: 9 })
  m.setConns(3, { active: 1 })
  const e = m.localityOf(4, VIP_A)!
  m.setLocality(4, VIP_A, { ...e, lastmod_ns: dayAgo() })
  t.equal(pick(d), 1, 'the least loaded member')
  t.same(m.localityOf(4, VIP_A)?.members.sort(), [1, 3], 'server 2, the most loaded, left the set')
  const e2 = m.localityOf(4, VIP_A)!
  t.ok(monoNow() - e2.lastmod_ns < 10_000_000_000n, 'the set\'s change time restarts')
  t.equal(pick(d), 1, 'no second shrink until the expiration passes again')
  t.same(m.localityOf(4, VIP_A)?.members.sort(), [1, 3], 'the set keeps two members')

  // A member removed from the service is never used, and goes first.
  d.setReal({ service_id: 4, ...real(1), flags: RealFlags.REMOVED })
  m.setConns(3, { active: 0 })
  t.equal(pick(d), 3, 'the removed member is skipped')
  const e3 = m.localityOf(4, VIP_A)!
  m.setLocality(4, VIP_A, { ...e3, lastmod_ns: dayAgo() })
  pick(d)
  t.same(m.localityOf(4, VIP_A)?.members, [3], 'at the next expiration the removed member is dropped')
})

t.test('lblcr: a set of servers all gone falls back to wlc; a full set still schedules', needsRoot, async (t) => {
  const { d, m } = setup(t, Sched.LBLCR, 20)
  m.setLocality(4, VIP_A, { lastuse_ns: monoNow(), lastmod_ns: monoNow(), count: 16, real_ids: memberBytes([...Array(16).keys()].map((i) => i + 1)) })
  for (let i = 1; i <= 16; i++) m.setConns(i, { active: 7 })
  t.equal(pick(d), 17, 'all 16 members overloaded (7 > 1, servers 17..20 idle): wlc\'s pick')
  t.equal(m.localityOf(4, VIP_A)?.count, 16, 'the full set does not grow past 16')
  for (let i = 1; i <= 16; i++) d.setReal({ service_id: 4, ...real(i), flags: RealFlags.DOWN })
  m.setConns(17, {})
  t.equal(pick(d), 17, 'every member down: wlc\'s pick')
  t.ok(m.localityOf(4, VIP_A)?.members.includes(17), 'joins in place of a member no longer in the service')
})
