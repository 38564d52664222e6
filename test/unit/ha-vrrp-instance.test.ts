// SPDX-License-Identifier: GPL-2.0-only
// The VRRP state machine on a fake clock and an in-memory LAN: takeover after Master_Down_Interval
// (exact times, skew included), preemption (on, off, delayed), priority-0 resignation, the address
// tie-break, v3 interval learning, unicast peers, sync groups, tracking and FAULT, v2 authentication
// mismatches, advert loss, and convergence of three routers.
//
// Times below are derived from the formulas in src/ha/vrrp-config.ts with Advertisement_Interval 1 s
// (100 cs) unless a test says otherwise:
//   priority 200: Skew 56*100/256 cs  = 218.75 ms    Master_Down_Interval 3218.75 ms
//   priority 150: Skew 106*100/256 cs = 414.0625 ms -> 414.062 ms (us truncation), MDI 3414.062 ms
//   priority 100: Skew 156*100/256 cs = 609.375 ms   MDI 3609.375 ms
//   priority  50: Skew 206*100/256 cs = 804.6875 ms -> 804.687 ms, MDI 3804.687 ms
// Deliveries have zero latency, so a message arrives at the instant it is sent.
import t from 'tap'
import { FakeClock } from '../../src/util/clock'
import { VrrpHost } from '../../src/ha/vrrp-host'
import type { VrrpInstanceConfig } from '../../src/ha/vrrp-config'
import type { VrrpInstance, VrrpState, VrrpTransitionReason } from '../../src/ha/vrrp-instance'
import { MemoryNetwork, type MemoryDelivery, type MemoryInterface } from '../../src/ha/vrrp-transport'
import { buildAdvert, decodeAdvert } from '../../src/ha/vrrp-packet'

interface Seen {
  at: number
  node: string
  inst: string
  from: VrrpState
  to: VrrpState
  reason: VrrpTransitionReason
}

/** A LAN of simulated directors on one fake clock. */
function lan(opts: { loss?: (d: MemoryDelivery) => boolean } = {}) {
  const clock = new FakeClock()
  const net = new MemoryNetwork({ clock, ...(opts.loss ? { loss: opts.loss } : {}) })
  const seen: Seen[] = []
  const hosts = new Map<string, VrrpHost>()
  /** A director with one interface (eth0 on link "lan") unless told otherwise. */
  const node = (name: string, addr: string, instances: Array<Partial<VrrpInstanceConfig>>, ifaces?: MemoryInterface[]): VrrpHost => {
    const host = new VrrpHost({ transport: net.attach(name, ifaces ?? [{ ifname: 'eth0', link: 'lan', addresses: [addr] }]), clock })
    for (const c of instances) {
      const inst = host.addInstance({
        name: 'VI_1', interface: 'eth0', vrid: 1, version: 3, primaryAddress: addr, virtualAddresses: ['10.0.0.100'], ...c,
      })
      inst.onTransition((from, to, reason) => seen.push({ at: clock.now(), node: name, inst: inst.name, from, to, reason }))
    }
    hosts.set(name, host)
    return host
  }
  const vi = (nodeName: string, inst = 'VI_1'): VrrpInstance => hosts.get(nodeName)!.instance(inst)!
  const states = (inst = 'VI_1'): Record<string, VrrpState> =>
    Object.fromEntries([...hosts].filter(([, h]) => h.instance(inst)).map(([n, h]) => [n, h.instance(inst)!.state]))
  const of = (nodeName: string, inst = 'VI_1'): Array<[number, string, string, string]> =>
    seen.filter((s) => s.node === nodeName && s.inst === inst).map((s) => [s.at, s.from, s.to, s.reason])
  return { clock, net, seen, node, vi, states, of }
}

/** Exact to the microsecond (the instance computes in integer microseconds, the clock in ms). */
const near = (a: number | undefined, b: number): boolean => a !== undefined && Math.abs(a - b) < 1e-6

t.test('a backup takes over Master_Down_Interval after the last advert, skew included', async (t) => {
  const l = lan()
  l.net.setLoss((d) => d.from === 'A' && d.at > 5500)
  l.node('A', '10.0.0.1', [{ priority: 200 }]).start()
  l.node('B', '10.0.0.2', [{ priority: 100 }]).start()
  const b = l.vi('B')
  t.equal(b.skewTimeUs, 609_375, 'B Skew_Time = (256-100)*100cs/256 = 60.9375 cs')
  t.equal(b.masterDownIntervalUs, 3_609_375, 'B Master_Down_Interval = 3*100 cs + skew')
  t.equal(l.vi('A').masterDownIntervalUs, 3_218_750, 'A Master_Down_Interval with priority 200')
  t.ok(near(b.timerDueAt, 3609.375), 'B: Master_Down_Timer armed at startup')
  l.clock.advanceTo(3218.75)
  t.same(l.of('A'), [[0, 'INIT', 'BACKUP', 'startup'], [3218.75, 'BACKUP', 'MASTER', 'master-down']], 'A: no master heard')
  t.ok(near(b.timerDueAt, 3218.75 + 3609.375), 'B reset its timer on A\'s first advert')
  l.clock.advanceTo(5400)
  t.ok(near(b.timerDueAt, 5218.75 + 3609.375), 'and on every advert (last at 5218.75)')
  t.same(b.masterSeen, { address: '10.0.0.1', priority: 200 })
  l.clock.advanceTo(8828.125 - 0.001)
  t.equal(b.state, 'BACKUP', 'one microsecond before Master_Down_Interval expires')
  l.clock.advanceTo(8828.125)
  t.same(l.of('B'), [[0, 'INIT', 'BACKUP', 'startup'], [8828.125, 'BACKUP', 'MASTER', 'master-down']], 'B takes over at 5218.75 + 3609.375')
  t.equal(l.vi('A').state, 'MASTER', 'A (cut off) still thinks it is master')
  // What B sends as master: a v3 advert to 224.0.0.18, hop limit 255, with its own fields.
  const sent = l.net.history.filter((h) => h.from === 'B')
  t.equal(sent.length, 1)
  t.same(sent[0]!.target, { ifname: 'eth0', family: 4, src: '10.0.0.2', dst: '224.0.0.18', hopLimit: 255 })
  const d = decodeAdvert(sent[0]!.packet, 4)
  t.same(d.ok && d.advert, { version: 3, family: 4, vrid: 1, priority: 100, maxAdverIntCs: 100, addresses: ['10.0.0.100'] })
  t.equal(l.vi('A').stats.advertsSent, 7, 'A sent at 3218.75 + k*1000 up to 8218.75, and answered B\'s advert at once')
  t.equal(b.stats.advertsReceived, 3, 'B heard 3218.75, 4218.75, 5218.75')
})

t.test('a higher priority preempts; nopreempt does not; preempt_delay waits', async (t) => {
  await t.test('preempt (default)', async (t) => {
    const l = lan()
    l.node('B', '10.0.0.2', [{ priority: 100 }]).start()
    l.clock.advanceTo(10_000)
    t.equal(l.vi('B').state, 'MASTER', 'B alone became master at 3609.375')
    l.node('A', '10.0.0.1', [{ priority: 200 }]).start()
    l.clock.advanceTo(30_000)
    t.same(l.of('A'), [[10_000, 'INIT', 'BACKUP', 'startup'], [13_218.75, 'BACKUP', 'MASTER', 'preempt']],
      'A discards B\'s lower-priority adverts and takes over when its own Master_Down_Timer runs out')
    t.equal(l.vi('A').stats.discardedLowerPriority, 3, 'B\'s adverts at 10609.375, 11609.375, 12609.375')
    t.same(l.of('B').slice(-1), [[13_218.75, 'MASTER', 'BACKUP', 'higher-priority']], 'B steps down on A\'s first advert')
  })

  await t.test('nopreempt', async (t) => {
    const l = lan()
    l.node('B', '10.0.0.2', [{ priority: 100 }]).start()
    l.clock.advanceTo(10_000)
    l.node('A', '10.0.0.1', [{ priority: 200, nopreempt: true }]).start()
    l.clock.advanceTo(100_000)
    t.same(l.states(), { B: 'MASTER', A: 'BACKUP' }, 'the lower-priority master keeps the VIPs')
    t.same(l.vi('A').masterSeen, { address: '10.0.0.2', priority: 100 })
    t.equal(l.vi('A').stats.discardedLowerPriority, 0)
    l.net.setLoss((d) => d.from === 'B')
    l.clock.advanceTo(110_000)
    t.equal(l.vi('A').state, 'MASTER', 'but takes over when that master goes away')
  })

  await t.test('preempt_delay 5 s', async (t) => {
    const l = lan()
    l.node('B', '10.0.0.2', [{ priority: 100 }]).start()
    l.clock.advanceTo(10_000)
    l.node('A', '10.0.0.1', [{ priority: 200, preemptDelayMs: 5000 }]).start()
    // B's adverts: 3609.375 + k*1000. The first one A hears (10609.375) starts the delay (until
    // 15609.375); adverts before then are accepted and reset Master_Down_Timer; the one at 15609.375
    // and later are discarded, so A takes over 3218.75 ms after 14609.375.
    l.clock.advanceTo(17_828.125 - 0.001)
    t.equal(l.vi('A').state, 'BACKUP', 'still waiting')
    l.clock.advanceTo(30_000)
    t.same(l.of('A'), [[10_000, 'INIT', 'BACKUP', 'startup'], [17_828.125, 'BACKUP', 'MASTER', 'preempt']])
    t.same(l.states(), { B: 'BACKUP', A: 'MASTER' })
  })
})

t.test('priority 0 on shutdown: the backup takes over after Skew_Time', async (t) => {
  const l = lan()
  const a = l.node('A', '10.0.0.1', [{ priority: 200 }])
  a.start()
  l.node('B', '10.0.0.2', [{ priority: 100 }]).start()
  l.clock.advanceTo(6000)
  a.stop()
  t.same(l.of('A').slice(-1), [[6000, 'MASTER', 'INIT', 'shutdown']])
  const last = l.net.history.filter((h) => h.from === 'A').pop()!
  const d = decodeAdvert(last.packet, 4)
  t.equal(d.ok && d.advert.priority, 0, 'the last advert A sends has priority 0')
  t.equal(l.vi('A').stats.priorityZeroSent, 1)
  l.clock.advanceTo(20_000)
  t.same(l.of('B').slice(-1), [[6609.375, 'BACKUP', 'MASTER', 'priority-zero']], '6000 + Skew_Time 609.375, not 3609.375')
  t.equal(l.vi('B').stats.priorityZeroReceived, 1)
  t.equal(l.net.history.filter((h) => h.from === 'A' && h.at > 6000).length, 0, 'A is silent after stopping')
  a.stop()
  t.equal(l.of('A').length, 3, 'stopping twice is harmless')
})

t.test('equal priority: the higher primary address wins', async (t) => {
  for (const order of [['A', 'B'], ['B', 'A']] as const) {
    const l = lan()
    const addr = { A: '10.0.0.9', B: '10.0.0.10' } // numerically 10 > 9, though "10" < "9" as text
    for (const n of order) l.node(n, addr[n], [{ priority: 100 }]).start()
    l.clock.advanceTo(60_000)
    t.same(l.states(), { [order[0]]: order[0] === 'B' ? 'MASTER' : 'BACKUP', [order[1]]: order[1] === 'B' ? 'MASTER' : 'BACKUP' }, `started ${order.join(', ')}: B wins`)
    t.same(l.of('A'), [[0, 'INIT', 'BACKUP', 'startup'], [3609.375, 'BACKUP', 'MASTER', 'master-down'], [3609.375, 'MASTER', 'BACKUP', 'higher-address']],
      'both time out together; A yields on B\'s advert')
    t.same(l.of('B'), [[0, 'INIT', 'BACKUP', 'startup'], [3609.375, 'BACKUP', 'MASTER', 'master-down']], 'and nothing changes afterwards')
  }
})

t.test('v3: a backup learns Master_Adver_Interval from the master', async (t) => {
  const l = lan()
  l.net.setLoss((d) => d.from === 'A' && d.at > 9000)
  l.node('A', '10.0.0.1', [{ priority: 200, advertIntervalMs: 2000 }]).start()
  l.clock.advanceTo(7000)
  t.same(l.of('A').slice(-1), [[6437.5, 'BACKUP', 'MASTER', 'master-down']], 'A alone: 3*200 cs + 56*200/256 cs = 6437.5 ms')
  l.node('B', '10.0.0.2', [{ priority: 100, advertIntervalMs: 1000 }]).start()
  const b = l.vi('B')
  t.equal(b.masterDownIntervalUs, 3_609_375, 'B before hearing A: its own 1 s interval')
  l.clock.advanceTo(8437.5)
  t.equal(b.masterAdverIntervalUs, 2_000_000, 'learned 200 cs from A\'s advert at 8437.5')
  t.equal(b.skewTimeUs, 1_218_750, 'Skew_Time = 156*200/256 cs')
  t.equal(b.masterDownIntervalUs, 7_218_750, 'Master_Down_Interval = 3*200 cs + skew')
  l.clock.advanceTo(30_000)
  t.same(l.of('B'), [[7000, 'INIT', 'BACKUP', 'startup'], [15_656.25, 'BACKUP', 'MASTER', 'master-down']], 'takes over at 8437.5 + 7218.75')
  const sent = l.net.history.filter((h) => h.from === 'B')
  const d = decodeAdvert(sent[0]!.packet, 4)
  t.equal(d.ok && d.advert.version === 3 && d.advert.maxAdverIntCs, 100, 'but advertises its own interval as master')

  // v2: Skew_Time is (256 - priority)/256 s whatever the interval (RFC 3768).
  const solo = lan()
  solo.node('B', '10.0.0.2', [{ version: 2, priority: 100, advertIntervalMs: 2000 }]).start()
  solo.clock.advanceTo(10_000)
  t.same(solo.of('B').slice(-1), [[6609.375, 'BACKUP', 'MASTER', 'master-down']], 'v2, 2 s: 3 * 2 s + 609.375 ms')

  // v2 has no learning: a different Adver Int is a misconfiguration, dropped and counted.
  const v2 = lan()
  v2.node('A', '10.0.0.1', [{ version: 2, priority: 200, advertIntervalMs: 2000 }]).start()
  v2.node('B', '10.0.0.2', [{ version: 2, priority: 100 }]).start()
  v2.clock.advanceTo(30_000)
  t.same(v2.states(), { A: 'MASTER', B: 'MASTER' }, 'v2: interval mismatch means neither hears the other')
  t.ok(v2.vi('B').stats.drops['interval-mismatch'] > 0, 'B counted A\'s adverts as interval-mismatch')
  t.ok(v2.vi('A').stats.drops['interval-mismatch'] > 0, 'and A counted B\'s')
})

t.test('unicast peers: adverts go to each peer, not to the group', async (t) => {
  const l = lan()
  l.net.setLoss((d) => d.from === 'A' && d.at > 10_000)
  const peersOf = { A: ['10.0.0.2', '10.0.0.4'], B: ['10.0.0.1', '10.0.0.4'] }
  l.node('A', '10.0.0.1', [{ priority: 200, unicastPeers: peersOf.A }]).start()
  l.node('B', '10.0.0.2', [{ priority: 100, unicastPeers: peersOf.B }]).start()
  l.node('C', '10.0.0.3', [{ priority: 50 }]).start() // multicast, same VRID, not a peer
  l.clock.advanceTo(9000)
  t.same(l.states(), { A: 'MASTER', B: 'BACKUP', C: 'MASTER' }, 'C hears none of the unicast adverts')
  const fromA = l.net.history.filter((h) => h.from === 'A')
  t.ok(fromA.length > 0)
  t.same([...new Set(fromA.map((h) => h.target.dst))], ['10.0.0.2', '10.0.0.4'], 'one message per peer')
  t.ok(fromA.every((h) => h.target.hopLimit === 255))
  // Each peer gets its own v3 checksum (the destination is in the pseudo-header).
  const [toB, toD] = [fromA.find((h) => h.target.dst === '10.0.0.2')!, fromA.find((h) => h.target.dst === '10.0.0.4')!]
  t.equal(toB.packet.toString('hex'), buildAdvert({ version: 3, family: 4, vrid: 1, priority: 200, maxAdverIntCs: 100, addresses: ['10.0.0.100'] }, { src: '10.0.0.1', dst: '10.0.0.2' }).toString('hex'))
  t.not(toB.packet.readUInt16BE(6), toD.packet.readUInt16BE(6), 'different checksums per peer')
  t.ok(l.vi('B').stats.drops['destination-mismatch'] > 0, 'B drops C\'s multicast adverts')
  t.equal(l.vi('B').stats.drops['bad-checksum'], 0)
  l.clock.advanceTo(20_000)
  t.same(l.of('B').slice(-1), [[9218.75 + 3609.375, 'BACKUP', 'MASTER', 'master-down']], 'unicast failover, same timing')
  t.same([...new Set(l.net.history.filter((h) => h.from === 'B').map((h) => h.target.dst))], ['10.0.0.1', '10.0.0.4'])
})

t.test('sync group: FAULT takes the group along, recovery brings it back', async (t) => {
  const l = lan()
  const two = (n: string, out: string, inside: string, prio: number): VrrpHost => {
    const h = l.node(n, out, [
      { name: 'VI_OUT', interface: 'eth0', vrid: 1, priority: prio, primaryAddress: out, virtualAddresses: ['10.0.0.100'] },
      { name: 'VI_IN', interface: 'eth1', vrid: 2, priority: prio, primaryAddress: inside, virtualAddresses: ['10.1.0.254'] },
    ], [{ ifname: 'eth0', link: 'out', addresses: [out] }, { ifname: 'eth1', link: 'in', addresses: [inside] }])
    h.addSyncGroup('G', ['VI_OUT', 'VI_IN'])
    h.start()
    return h
  }
  const a = two('A', '10.0.0.1', '10.1.0.1', 200)
  const b = two('B', '10.0.0.2', '10.1.0.2', 100)
  l.clock.advanceTo(10_000)
  t.same([l.states('VI_OUT'), l.states('VI_IN')], [{ A: 'MASTER', B: 'BACKUP' }, { A: 'MASTER', B: 'BACKUP' }])
  t.same(l.of('A', 'VI_OUT').slice(-1), [[3218.75, 'BACKUP', 'MASTER', 'sync-group']], 'VI_OUT timed out first, waited for VI_IN, then followed it')
  t.same(l.of('A', 'VI_IN').slice(-1), [[3218.75, 'BACKUP', 'MASTER', 'master-down']])
  t.equal(a.syncGroup('G')!.state, 'MASTER')

  a.setInterfaceState('eth1', false) // A's inside link goes down
  t.same(l.of('A', 'VI_IN').slice(-1), [[10_000, 'MASTER', 'FAULT', 'fault']])
  t.same(l.of('A', 'VI_OUT').slice(-1), [[10_000, 'MASTER', 'FAULT', 'sync-group']], 'the outside VIP leaves with it')
  t.equal(a.syncGroup('G')!.state, 'FAULT')
  t.equal(l.vi('A', 'VI_OUT').stats.priorityZeroSent, 1, 'both resign with priority 0')
  l.clock.advanceTo(20_000)
  t.same([l.states('VI_OUT'), l.states('VI_IN')], [{ A: 'FAULT', B: 'MASTER' }, { A: 'FAULT', B: 'MASTER' }])
  t.ok(near(l.of('B', 'VI_OUT').slice(-1)[0]![0], 10_609.375), 'B takes both after Skew_Time')
  t.equal(b.syncGroup('G')!.state, 'MASTER')

  a.setInterfaceState('eth1', true)
  t.same(l.of('A', 'VI_IN').slice(-1), [[20_000, 'FAULT', 'BACKUP', 'recovered']])
  t.same(l.of('A', 'VI_OUT').slice(-1), [[20_000, 'FAULT', 'BACKUP', 'sync-group']])
  l.clock.advanceTo(40_000)
  t.same([l.states('VI_OUT'), l.states('VI_IN')], [{ A: 'MASTER', B: 'BACKUP' }, { A: 'MASTER', B: 'BACKUP' }], 'A preempts both back')
  t.ok(near(l.of('A', 'VI_IN').slice(-1)[0]![0], 23_218.75), '3218.75 ms after recovering')
})

t.test('sync group: a member dropping to BACKUP takes the others, and they wait for each other', async (t) => {
  const l = lan()
  const a = l.node('A', '10.0.0.1', [
    { name: 'VI_OUT', interface: 'eth0', vrid: 1, priority: 200 },
    { name: 'VI_IN', interface: 'eth1', vrid: 2, priority: 200, primaryAddress: '10.1.0.1', virtualAddresses: ['10.1.0.254'] },
  ], [{ ifname: 'eth0', link: 'out', addresses: ['10.0.0.1'] }, { ifname: 'eth1', link: 'in', addresses: ['10.1.0.1'] }])
  a.addSyncGroup('G', ['VI_OUT', 'VI_IN'])
  a.start()
  l.clock.advanceTo(10_000)
  t.same([l.vi('A', 'VI_OUT').state, l.vi('A', 'VI_IN').state], ['MASTER', 'MASTER'])
  // C runs only the outside router, at a higher priority, without a group.
  l.node('C', '10.0.0.3', [{ name: 'VI_OUT', interface: 'eth0', vrid: 1, priority: 250 }], [{ ifname: 'eth0', link: 'out', addresses: ['10.0.0.3'] }]).start()
  l.clock.advanceTo(60_000)
  // C: MDI(250) = 3000 + 6*100/256 cs = 3023.437 ms after starting.
  t.same(l.of('C', 'VI_OUT').slice(-1), [[13_023.437, 'BACKUP', 'MASTER', 'preempt']])
  t.same(l.of('A', 'VI_OUT').slice(-1), [[13_023.437, 'MASTER', 'BACKUP', 'higher-priority']])
  t.same(l.of('A', 'VI_IN').slice(-1), [[13_023.437, 'MASTER', 'BACKUP', 'sync-group']], 'VI_IN follows to BACKUP without hearing anyone')
  t.equal(l.vi('A', 'VI_IN').state, 'BACKUP', 'and stays there: VI_IN wants MASTER but VI_OUT does not (no split)')
  t.ok(l.vi('A', 'VI_IN').wantsMaster)
  t.equal(l.vi('A', 'VI_IN').stats.priorityZeroSent, 0, 'following to BACKUP sends no priority 0')
  t.equal(a.syncGroup('G')!.state, 'BACKUP')
})

t.test('tracking: weights move the priority, weight 0 means FAULT, and back', async (t) => {
  const l = lan()
  const a = l.node('A', '10.0.0.1', [{
    priority: 200,
    track: [{ kind: 'interface', name: 'eth9' }, { kind: 'script', name: 'chk_lb', weight: -150 }],
  }])
  a.start()
  l.node('B', '10.0.0.2', [{ priority: 100 }]).start()
  l.clock.advanceTo(10_000)
  t.same(l.states(), { A: 'MASTER', B: 'BACKUP' })

  a.setScriptState('chk_lb', false)
  t.equal(l.vi('A').priority, 50, '200 - 150')
  t.equal(l.vi('A').state, 'MASTER', 'a weighted failure is not a fault')
  l.clock.advanceTo(20_000)
  // B discards A's adverts from 10218.75 on (priority 50 < 100); its timer, last reset at 9218.75,
  // runs out at 9218.75 + 3609.375.
  t.same(l.of('B').slice(-1), [[12_828.125, 'BACKUP', 'MASTER', 'preempt']])
  t.same(l.of('A').slice(-1), [[12_828.125, 'MASTER', 'BACKUP', 'higher-priority']])

  a.setScriptState('chk_lb', true)
  t.equal(l.vi('A').priority, 200)
  // A's Master_Down_Timer, reset by B's advert at 19828.125 with MDI(50) = 3804.687, moves to
  // MDI(200) = 3218.75 from the same start; B's adverts are now discarded.
  t.ok(near(l.vi('A').timerDueAt, 19_828.125 + 3218.75), 'the running timer follows the new skew')
  l.clock.advanceTo(30_000)
  t.same(l.of('A').slice(-1), [[23_046.875, 'BACKUP', 'MASTER', 'preempt']])

  a.setInterfaceState('eth9', false)
  t.same(l.of('A').slice(-1), [[30_000, 'MASTER', 'FAULT', 'fault']])
  t.ok(l.vi('A').faulted)
  l.clock.advanceTo(40_000)
  t.same(l.of('B').slice(-1), [[30_609.375, 'BACKUP', 'MASTER', 'priority-zero']], 'priority 0 from the faulting master')
  t.equal(l.vi('A').stats.drops.inactive, 10, 'a FAULT instance ignores adverts (B\'s 10, 30609.375 to 39609.375)')

  a.setInterfaceState('eth9', true)
  t.same(l.of('A').slice(-1), [[40_000, 'FAULT', 'BACKUP', 'recovered']])
  l.clock.advanceTo(50_000)
  t.same(l.of('A').slice(-1), [[43_218.75, 'BACKUP', 'MASTER', 'preempt']])

  a.setInterfaceState('eth0', false) // the instance's own interface
  t.equal(l.vi('A').state, 'FAULT', 'the own interface is tracked too')
  a.setInterfaceState('eth0', true)
  t.equal(l.vi('A').state, 'BACKUP')
  t.notOk(l.vi('A').setTrackState('script', 'unknown', false), 'untracked objects are ignored')
})

t.test('an instance that starts faulted stays in FAULT until the fault clears', async (t) => {
  const l = lan()
  const a = l.node('A', '10.0.0.1', [{ track: [{ kind: 'script', name: 'chk' }] }])
  a.setScriptState('chk', false)
  a.start()
  l.clock.advanceTo(20_000)
  t.same(l.of('A'), [[0, 'INIT', 'FAULT', 'fault']])
  t.equal(l.net.history.length, 0, 'nothing sent')
  a.setScriptState('chk', true)
  l.clock.advanceTo(30_000)
  t.same(l.of('A'), [[0, 'INIT', 'FAULT', 'fault'], [20_000, 'FAULT', 'BACKUP', 'recovered'], [23_609.375, 'BACKUP', 'MASTER', 'master-down']])
})

t.test('v2 with mismatched authentication: dropped and counted, not obeyed', async (t) => {
  const l = lan()
  l.node('A', '10.0.0.1', [{ version: 2, priority: 200, auth: { type: 'pass', password: 'secret' } }]).start()
  l.node('B', '10.0.0.2', [{ version: 2, priority: 100, auth: { type: 'pass', password: 'Secret' } }]).start()
  l.node('C', '10.0.0.3', [{ version: 2, priority: 50 }]).start()
  l.node('D', '10.0.0.4', [{ version: 3, priority: 20 }]).start()
  l.node('E', '10.0.0.5', [{ version: 2, priority: 150, auth: { type: 'pass', password: 'secret' } }]).start()
  l.clock.advanceTo(30_000)
  t.same(l.states(), { A: 'MASTER', B: 'MASTER', C: 'MASTER', D: 'MASTER', E: 'BACKUP' }, 'only E shares A\'s password')
  const drops = (n: string): Record<string, number> => Object.fromEntries(Object.entries(l.vi(n).stats.drops).filter(([, v]) => v > 0))
  const d = drops('B')
  t.ok(d['auth-failure']! > 0, 'B: wrong password from A and E')
  t.ok(d['auth-type-mismatch']! > 0, 'B: no authentication from C')
  t.ok(d['bad-version']! > 0, 'B: v3 from D')
  t.same(Object.keys(drops('C')).sort(), ['auth-type-mismatch', 'bad-version'])
  t.same(Object.keys(drops('D')), ['bad-version'], 'D (v3) drops every v2 advert')
  t.same(Object.keys(drops('E')).sort(), ['auth-failure', 'auth-type-mismatch', 'bad-version'])
  t.ok(l.vi('E').stats.advertsReceived > 0, 'E accepts A')
})

t.test('losing 2 adverts does not flap; losing 3 does', async (t) => {
  const l = lan()
  // A sends at 3218.75 + k*1000. Lose 5218.75 and 6218.75 (two), later 10218.75..12218.75 (three).
  l.net.setLoss((d) => d.from === 'A' && ((d.at > 5000 && d.at < 6500) || (d.at > 10_000 && d.at < 12_500)))
  l.node('A', '10.0.0.1', [{ priority: 200 }]).start()
  l.node('B', '10.0.0.2', [{ priority: 100 }]).start()
  l.clock.advanceTo(9500)
  t.same(l.of('B'), [[0, 'INIT', 'BACKUP', 'startup']], 'two lost: 4218.75 + 3609.375 = 7828.125 > 7218.75, the next advert')
  l.clock.advanceTo(30_000)
  t.same(l.of('B'), [
    [0, 'INIT', 'BACKUP', 'startup'],
    [12_828.125, 'BACKUP', 'MASTER', 'master-down'],
    [12_828.125, 'MASTER', 'BACKUP', 'higher-priority'],
  ], 'three lost: 9218.75 + 3609.375; A answers B\'s advert at once and B steps down')
  t.same(l.of('A'), [[0, 'INIT', 'BACKUP', 'startup'], [3218.75, 'BACKUP', 'MASTER', 'master-down']], 'A never left')
})

t.test('three routers converge to one master', async (t) => {
  await t.test('different priorities, started together', async (t) => {
    const l = lan()
    l.node('A', '10.0.0.1', [{ priority: 100 }]).start()
    l.node('B', '10.0.0.2', [{ priority: 150 }]).start()
    l.node('C', '10.0.0.3', [{ priority: 200 }]).start()
    l.clock.advanceTo(60_000)
    t.same(l.states(), { A: 'BACKUP', B: 'BACKUP', C: 'MASTER' })
    t.equal(l.seen.filter((s) => s.to === 'MASTER').length, 1, 'no one else was ever master')
  })
  await t.test('equal priorities', async (t) => {
    const l = lan()
    for (const [n, a] of [['A', '10.0.0.3'], ['B', '10.0.0.1'], ['C', '10.0.0.2']]) l.node(n!, a!, [{ priority: 100 }]).start()
    l.clock.advanceTo(60_000)
    t.same(l.states(), { A: 'MASTER', B: 'BACKUP', C: 'BACKUP' }, 'the highest address')
    t.equal(l.seen.filter((s) => s.at > 3609.375).length, 0, 'settled at the first timeout')
  })
  await t.test('staggered starts through heavy random loss, then a clean network', async (t) => {
    let s = 7
    const rnd = (): number => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32)
    const l = lan()
    l.net.setLoss((d) => d.at < 60_000 && rnd() < 0.5)
    l.node('A', '10.0.0.1', [{ priority: 100 }]).start()
    l.clock.advanceTo(1234)
    l.node('B', '10.0.0.2', [{ priority: 150 }]).start()
    l.clock.advanceTo(2345)
    l.node('C', '10.0.0.3', [{ priority: 200 }]).start()
    l.clock.advanceTo(60_000)
    const flaps = l.seen.length
    l.clock.advanceTo(120_000)
    t.same(l.states(), { A: 'BACKUP', B: 'BACKUP', C: 'MASTER' })
    t.ok(flaps > 6, `the loss did cause elections (${flaps} transitions)`)
    t.ok(l.seen.every((s) => s.at < 60_000 + 4000), 'and once the loss stops, everything settles within one Master_Down_Interval')
  })
})

t.test('address owner, state MASTER, IPv6, and what the host drops', async (t) => {
  await t.test('priority 255 starts as master and ignores adverts', async (t) => {
    const l = lan()
    l.node('B', '10.0.0.2', [{ priority: 254 }]).start()
    l.clock.advanceTo(5000)
    const a = l.node('A', '10.0.0.1', [{ priority: 255 }])
    a.start()
    t.same(l.of('A'), [[5000, 'INIT', 'MASTER', 'startup']], 'straight to MASTER (RFC 5798 §6.4.1)')
    l.clock.advanceTo(20_000)
    t.same(l.states(), { B: 'BACKUP', A: 'MASTER' })
    t.same(l.of('B').slice(-1), [[5000, 'MASTER', 'BACKUP', 'higher-priority']], 'B yields on the owner\'s first advert')
    const fromB = buildAdvert({ version: 3, family: 4, vrid: 1, priority: 254, maxAdverIntCs: 100, addresses: ['10.0.0.100'] }, { src: '10.0.0.2', dst: '224.0.0.18' })
    const r = a.receive(fromB, '10.0.0.2', 255, 'eth0')
    t.equal(r && !r.accepted && r.reason, 'local-is-owner', 'the owner discards adverts')
    t.equal(l.vi('A').stats.drops['local-is-owner'], 1, 'counted')
  })
  await t.test('state MASTER: one interval plus the minimum skew', async (t) => {
    const l = lan()
    l.node('A', '10.0.0.1', [{ initialState: 'MASTER', priority: 100 }]).start()
    l.clock.advanceTo(5000)
    t.same(l.of('A'), [[0, 'INIT', 'BACKUP', 'startup'], [1003.906, 'BACKUP', 'MASTER', 'master-down']], '1000 + 3.906 ms')
    const l2 = lan()
    l2.node('B', '10.0.0.2', [{ priority: 200 }]).start()
    l2.clock.advanceTo(5000)
    l2.node('A', '10.0.0.1', [{ initialState: 'MASTER', priority: 100 }]).start()
    l2.clock.advanceTo(20_000)
    t.same(l2.states(), { B: 'MASTER', A: 'BACKUP' }, 'but defers to a higher-priority master it hears')
  })
  await t.test('IPv6 pair', async (t) => {
    const l = lan()
    const v6 = (n: string, a: string, p: number): VrrpHost =>
      l.node(n, a, [{ priority: p, virtualAddresses: ['fe80::100', '2001:db8::100'] }], [{ ifname: 'eth0', link: 'lan', addresses: [a] }])
    v6('A', 'fe80::1', 200).start()
    v6('B', 'fe80::2', 100).start()
    l.clock.advanceTo(10_000)
    t.same(l.states(), { A: 'MASTER', B: 'BACKUP' })
    const sent = l.net.history.find((h) => h.from === 'A')!
    t.same(sent.target, { ifname: 'eth0', family: 6, src: 'fe80::1', dst: 'ff02::12', hopLimit: 255 })
    const d = decodeAdvert(sent.packet, 6)
    t.same(d.ok && d.advert.addresses, ['fe80::100', '2001:db8::100'])
    l.net.setLoss(() => true)
    l.clock.advanceTo(20_000)
    t.equal(l.vi('B').state, 'MASTER')
  })
  await t.test('host dispatch and receive-side drops', async (t) => {
    const l = lan()
    const b = l.node('B', '10.0.0.2', [{ priority: 100 }])
    b.start()
    const good = buildAdvert({ version: 3, family: 4, vrid: 1, priority: 200, maxAdverIntCs: 100, addresses: ['10.0.0.100'] }, { src: '10.0.0.1', dst: '224.0.0.18' })
    const r = b.receive(good, '10.0.0.1', 254, 'eth0')
    t.same(r && !r.accepted && r.reason, 'bad-ttl')
    t.equal(l.vi('B').stats.drops['bad-ttl'], 1, 'counted')
    t.same(b.receive(good, '10.0.0.1', 255, 'eth0'), { accepted: true, advert: decodeAdvert(good, 4).ok && (decodeAdvert(good, 4) as { advert: unknown }).advert })
    t.equal(b.receive(good, '10.0.0.1', 255, 'eth1'), undefined)
    t.equal(b.stats.noInstance, 1, 'no instance on eth1')
    const other = buildAdvert({ version: 3, family: 4, vrid: 9, priority: 200, maxAdverIntCs: 100, addresses: [] }, { src: '10.0.0.1', dst: '224.0.0.18' })
    b.receive(other, '10.0.0.1', 255, 'eth0')
    t.equal(b.stats.otherVrid, 1, 'another virtual router on the LAN')
    b.receive(Buffer.from([0x31]), '10.0.0.1', 255, 'eth0')
    t.equal(b.stats.tooShort, 1)
    b.receive(good, 'garbage', 255, 'eth0')
    t.equal(b.stats.badSource, 1)
    const own = buildAdvert({ version: 3, family: 4, vrid: 1, priority: 100, maxAdverIntCs: 100, addresses: ['10.0.0.100'] }, { src: '10.0.0.2', dst: '224.0.0.18' })
    b.receive(own, '10.0.0.2', 255, 'eth0')
    t.equal(l.vi('B').stats.drops['own-advert'], 1, 'our own advert looped back')
    t.equal(b.stats.received, 7)
    t.throws(() => b.addInstance({ name: 'VI_2', interface: 'eth0', vrid: 1, primaryAddress: '10.0.0.2', virtualAddresses: [] }), { code: 'ECONFIG' }, 'duplicate VRID on an interface')
    t.throws(() => b.addInstance({ name: 'VI_1', interface: 'eth0', vrid: 2, primaryAddress: '10.0.0.2', virtualAddresses: [] }), { code: 'ECONFIG' }, 'duplicate name')
    t.throws(() => b.addSyncGroup('G', ['VI_1', 'VI_X']), { code: 'ECONFIG' }, 'unknown member')
    b.close()
    t.equal(l.vi('B').state, 'INIT')
    t.equal(b.receive(good, '10.0.0.1', 255, 'eth0'), undefined, 'closed')
  })
  await t.test('sync group membership is checked', async (t) => {
    const l = lan()
    const h = l.node('A', '10.0.0.1', [{ name: 'VI_1' }, { name: 'VI_2', vrid: 2 }])
    h.addSyncGroup('G1', ['VI_1', 'VI_2'])
    t.throws(() => h.addSyncGroup('G2', ['VI_2']), { code: 'ECONFIG' }, 'an instance is in one group at most')
    t.throws(() => h.addSyncGroup('G1', ['VI_1']), { code: 'ECONFIG' }, 'duplicate group name')
    t.throws(() => h.addSyncGroup('G3', []), { code: 'ECONFIG' }, 'empty group')
    t.equal(h.syncGroup('G1')!.members.length, 2)
    t.equal(l.vi('A', 'VI_1').syncGroup!.name, 'G1')
  })
  await t.test('a listener may stop the instance from inside a transition', async (t) => {
    const l = lan()
    const a = l.node('A', '10.0.0.1', [{ priority: 200 }])
    l.vi('A').onTransition((_from, to) => {
      if (to === 'MASTER') a.stop()
    })
    a.start()
    l.clock.advanceTo(10_000)
    t.same(l.of('A').map((x) => x[2]), ['BACKUP', 'MASTER', 'INIT'])
    t.equal(l.vi('A').timerDueAt, undefined, 'no timer left running')
    t.equal(l.net.history.filter((h) => h.at > 3218.75).length, 0, 'nothing sent afterwards')
  })
  await t.test('a listener that throws does not break the state machine', async (t) => {
    const l = lan()
    const a = l.node('A', '10.0.0.1', [{ priority: 200 }])
    l.vi('A').onTransition(() => {
      throw new Error('notify script failed')
    })
    const off = l.vi('A').onTransition(() => t.fail('unsubscribed listener called'))
    off()
    a.start()
    l.clock.advanceTo(5000)
    t.equal(l.vi('A').state, 'MASTER')
  })
})
