// SPDX-License-Identifier: GPL-2.0-only
// The connection sweeper against a fake xvs_conns with the kernel's batch semantics: timeouts by
// protocol and state as xvs_conn_timeout_s() has them (settings' zeros meaning the defaults), strict
// expiry, entries of services gone or replaced, active/inactive counts per real server, bounded
// batches that yield to the event loop, and the races with the packet path (an entry rewritten or
// removed between the read and the delete is kept or skipped, never wrongly deleted).
import t from 'tap'
import { Conn, ConnFlags, ConnKey, ConnKind, ConnState, GroupKey, Proto, Service, ServiceKey, Timeouts, groupServiceKey } from '../../src/dataplane/abi'
import { CONN_TOUCH_NS, ConnSweeper, connExpired, connTimeoutS, serviceKeyOf, templateExpired, type ConnTable } from '../../src/daemon/sweeper'
import { FakeClock } from '../../src/util/clock'

const S = 1_000_000_000n

/** A hash map with BPF batch semantics: lookup batches resume from a token; delete batches stop at a missing key. */
class FakeConns implements ConnTable {
  readonly keySize = ConnKey.size
  readonly valueBytes = Conn.size
  readonly entries = new Map<string, Buffer>()
  batches = 0
  afterLookup: ((keys: Buffer[]) => void) | undefined
  constructor(readonly maxEntries = 1 << 16) {}
  put(k: Buffer, v: Buffer): void { this.entries.set(k.toString('hex'), v) }
  lookupBatchRaw(token: Buffer | null, chunk: number) {
    // Keys in order; the token is the last key handed out, so deletions meanwhile skip nothing (as
    // the kernel's bucket-index token).
    this.batches++
    const after = token ? token.toString('hex') : ''
    const all = [...this.entries.keys()].sort().filter((k) => k > after)
    const slice = all.slice(0, chunk)
    const keys = Buffer.alloc(this.keySize * chunk)
    const values = Buffer.alloc(this.valueBytes * chunk)
    slice.forEach((k, i) => { Buffer.from(k, 'hex').copy(keys, i * this.keySize); this.entries.get(k)!.copy(values, i * this.valueBytes) })
    this.afterLookup?.(slice.map((k) => Buffer.from(k, 'hex')))
    return { keys, values, count: slice.length, token: all.length > chunk ? Buffer.from(slice[slice.length - 1]!, 'hex') : null }
  }
  lookup(k: Buffer): Buffer | null { return this.entries.get(k.toString('hex')) ?? null }
  deleteBatchRaw(keys: Buffer, count: number): number {
    for (let i = 0; i < count; i++) {
      const k = keys.subarray(i * this.keySize, (i + 1) * this.keySize).toString('hex')
      if (!this.entries.delete(k)) return i
    }
    return count
  }
}

let port = 1000
const key = (proto: number = Proto.TCP, vport = 80, vaddr = '10.0.0.100'): Buffer =>
  ConnKey.encode({ caddr: '192.0.2.1', vaddr, cport: port++, vport, proto, family: 2 })
const conn = (o: { lastSeen: bigint; state: number; real?: number; svc?: number; created?: bigint; flags?: number }): Buffer =>
  Conn.encode({ last_seen_ns: o.lastSeen, created_ns: o.created ?? 0n, real_id: o.real ?? 1, service_id: o.svc ?? 0, state: o.state, flags: o.flags ?? 0 })
const defaults = { tcp_timeout_s: 0, tcp_fin_timeout_s: 0, udp_timeout_s: 0 }

t.test('timeouts: the rules of xvs_conn_timeout_s', async (t) => {
  t.equal(connTimeoutS(Proto.TCP, ConnState.ESTABLISHED, defaults), 900)
  t.equal(connTimeoutS(Proto.TCP, ConnState.ESTABLISHED, { ...defaults, tcp_timeout_s: 60 }), 60)
  t.equal(connTimeoutS(Proto.TCP, ConnState.FIN_WAIT, defaults), 120)
  t.equal(connTimeoutS(Proto.TCP, ConnState.FIN_WAIT, { ...defaults, tcp_fin_timeout_s: 5 }), 5)
  t.equal(connTimeoutS(Proto.UDP, ConnState.UDP, defaults), 300)
  t.equal(connTimeoutS(Proto.UDP, ConnState.ESTABLISHED, { ...defaults, udp_timeout_s: 7 }), 7, 'not TCP: the udp timeout whatever the state')
  t.equal(connTimeoutS(Proto.TCP, ConnState.SYN_RECV, defaults), Timeouts.SYN_RECV_S)
  t.equal(connTimeoutS(Proto.TCP, ConnState.CLOSE, defaults), Timeouts.CLOSE_S)
  t.equal(connTimeoutS(Proto.TCP, ConnState.TIME_WAIT, defaults), Timeouts.TIME_WAIT_S)
  t.equal(connTimeoutS(Proto.TCP, ConnState.UDP, defaults), Timeouts.NONE_S, 'an unknown TCP state: NONE')
  t.equal(connExpired(0n, Proto.TCP, ConnState.CLOSE, defaults, 11n * S), false, 'the timeout and the 1 s touch slack: not yet (strict)')
  t.equal(connExpired(0n, Proto.TCP, ConnState.CLOSE, defaults, 11n * S + 1n), true)
  t.equal(CONN_TOUCH_NS, S, 'the slack is XVS_CONN_TOUCH_NS')
  t.equal(templateExpired(0n, 0, 300, 300n * S), false, 'a template within its persistence timeout lives')
  t.equal(templateExpired(0n, 0, 300, 300n * S + 1n), true, 'past it, with no connection promising longer, it is gone')
  t.equal(templateExpired(0n, 400, 300, 400n * S), false, 'while a connection it sent lives (ctl_until_s), it lives')
  t.equal(templateExpired(0n, 400, 300, 401n * S), true)
  t.equal(connExpired(20n * S, Proto.TCP, ConnState.CLOSE, defaults, 10n * S), false, 'touched after now was sampled: alive')
})

t.test('a pass deletes expired entries and counts the live ones per real server', async (t) => {
  const m = new FakeConns()
  const now = 10_000n * S
  const live = [
    [key(), conn({ lastSeen: now - 899n * S, state: ConnState.ESTABLISHED, real: 1 })],
    [key(), conn({ lastSeen: now - 10n * S, state: ConnState.FIN_WAIT, real: 1 })],
    [key(Proto.UDP), conn({ lastSeen: now - 299n * S, state: ConnState.UDP, real: 2 })],
    [key(), conn({ lastSeen: now - 900n * S, state: ConnState.ESTABLISHED, real: 1 })], // within the touch slack
    [key(), conn({ lastSeen: now - 1n * S, state: ConnState.ESTABLISHED, real: 2, flags: ConnFlags.TEMPLATE })], // never judged without the services
  ] as const
  const dead = [
    [key(), conn({ lastSeen: now - 902n * S, state: ConnState.ESTABLISHED })],
    [key(), conn({ lastSeen: now - 122n * S, state: ConnState.FIN_WAIT })],
    [key(Proto.UDP), conn({ lastSeen: now - 302n * S, state: ConnState.UDP })],
    [key(), conn({ lastSeen: now - 12n * S, state: ConnState.CLOSE })],
    [key(), conn({ lastSeen: now - 4n * S, state: ConnState.NONE })],
  ] as const
  for (const [k, v] of [...live, ...dead]) m.put(k, v)
  const reconciled: unknown[] = []
  const s = new ConnSweeper({ conns: m, timeouts: () => defaults, nowNs: () => now, batchSize: 3, clock: new FakeClock(), reconcile: (c) => reconciled.push(new Map(c)) })
  const r = await s.sweep()
  t.equal(r.scanned, 10)
  t.equal(r.expired, 5)
  t.equal(r.stale, 0)
  t.equal(r.batches, 4, 'four batches of at most 3')
  t.same([...m.entries.keys()].sort(), live.map(([k]) => k.toString('hex')).sort(), 'exactly the expired entries are gone')
  t.same(r.counts, new Map([[1, { active: 2, inactive: 1, persistent: 0 }], [2, { active: 0, inactive: 1, persistent: 1 }]]))
  t.same(reconciled, [r.counts], 'the counts were handed to reconcile')
  t.same({ passes: s.totals.passes, expired: s.totals.expired, scanned: s.totals.scanned }, { passes: 1, expired: 5, scanned: 10 })
})

t.test('configured timeouts are read at the start of each pass', async (t) => {
  const m = new FakeConns()
  const now = 1000n * S
  m.put(key(), conn({ lastSeen: now - 62n * S, state: ConnState.ESTABLISHED }))
  let set = { ...defaults }
  const s = new ConnSweeper({ conns: m, timeouts: () => set, nowNs: () => now, clock: new FakeClock() })
  t.equal((await s.sweep()).expired, 0, 'alive under the 900 s default')
  set = { ...defaults, tcp_timeout_s: 60 }
  t.equal((await s.sweep()).expired, 1, 'expired under tcp 60 s')
})

t.test('entries of a service that is gone or was replaced are stale; the wildcard service counts', async (t) => {
  const m = new FakeConns()
  const now = 1000n * S
  const svcKey = (port: number) => ServiceKey.encode({ addr: '10.0.0.100', port, proto: Proto.TCP, family: 2 }).toString('hex')
  const services = { ids: new Map([[svcKey(80), 5], [svcKey(0), 9]]) }
  const fresh = { lastSeen: now, state: ConnState.ESTABLISHED, created: now - S }
  const ok80 = key(Proto.TCP, 80); m.put(ok80, conn({ ...fresh, svc: 5 }))
  const replaced = key(Proto.TCP, 80); m.put(replaced, conn({ ...fresh, svc: 4 }))
  const wild = key(Proto.TCP, 443); m.put(wild, conn({ ...fresh, svc: 9 }))
  const gone = key(Proto.TCP, 80, '10.0.0.200'); m.put(gone, conn({ ...fresh, svc: 5 }))
  const newer = key(Proto.TCP, 80); m.put(newer, conn({ ...fresh, svc: 4, created: now + 1n })) // created after the pass read the services
  const s = new ConnSweeper({ conns: m, timeouts: () => defaults, services: () => services, nowNs: () => now, clock: new FakeClock() })
  const r = await s.sweep()
  t.equal(r.stale, 2)
  t.ok(m.lookup(ok80) && m.lookup(wild) && m.lookup(newer), 'live entries stay (port match, wildcard match, created after the snapshot)')
  t.notOk(m.lookup(replaced) || m.lookup(gone), 'the replaced service\'s and the gone service\'s entries went')
  t.equal(serviceKeyOf(ok80, 0).toString('hex'), svcKey(80), 'a conn key maps onto its service key')
  t.equal(Service.size > 0, true)
})

t.test('persistence templates: persist_timeout_s after their last use, or while a connection they sent lives', async (t) => {
  const m = new FakeConns()
  const now = 10_000n * S
  const svcKey = ServiceKey.encode({ addr: '10.0.0.100', port: 80, proto: Proto.TCP, family: 2 })
  const index = { ids: new Map([[svcKey.toString('hex'), 3]]), persist: new Map([[3, 300]]) }
  // A template's key is the masked client and its service's key (kind TEMPLATE, cport 0).
  const tkey = (c: string) => ConnKey.encode({ caddr: c, vaddr: '10.0.0.100', cport: 0, vport: 80, proto: Proto.TCP, family: 2, kind: ConnKind.TEMPLATE })
  const tmpl = (idle: bigint, ctlUntil = 0) => Conn.encode({ last_seen_ns: now - idle * S, created_ns: 0n, real_id: 4, service_id: 3, state: ConnState.NONE, flags: ConnFlags.TEMPLATE, ctl_until_s: ctlUntil })
  m.put(tkey('192.0.2.1'), tmpl(299n))
  m.put(tkey('192.0.2.2'), tmpl(301n))
  m.put(tkey('192.0.2.3'), tmpl(301n, Number(now / S) + 60))
  m.put(tkey('192.0.2.4'), Conn.encode({ ...Conn.decode(tmpl(0n)), service_id: 2 })) // of a service replaced since, just used
  const r = await new ConnSweeper({ conns: m, timeouts: () => defaults, services: () => index, nowNs: () => now, clock: new FakeClock() }).sweep()
  t.same({ expired: r.expired, stale: r.stale }, { expired: 1, stale: 1 })
  t.ok(m.lookup(tkey('192.0.2.1')) && m.lookup(tkey('192.0.2.3')), 'within the timeout, or held by a live connection: kept')
  t.same(r.counts.get(4), { active: 0, inactive: 0, persistent: 2 }, 'counted as persistent')
})

t.test('service groups: a flow whose port falls in a group range belongs to the group', async (t) => {
  const m = new FakeConns()
  const now = 1000n * S
  const gkey = GroupKey.encode({ addr: '10.0.0.100', proto: Proto.TCP, family: 2 }).toString('hex')
  const index = {
    ids: new Map([[groupServiceKey(7, 2).toString('hex'), 11]]),
    groups: new Map([[gkey, [{ first: 8000, last: 8099, group_id: 7 }]]]),
  }
  const fresh = { lastSeen: now, state: ConnState.ESTABLISHED, created: now - S }
  const inGroup = key(Proto.TCP, 8001); m.put(inGroup, conn({ ...fresh, svc: 11 }))
  const replaced = key(Proto.TCP, 8002); m.put(replaced, conn({ ...fresh, svc: 10 }))
  const outside = key(Proto.TCP, 9000); m.put(outside, conn({ ...fresh, svc: 11 }))
  const r = await new ConnSweeper({ conns: m, timeouts: () => defaults, services: () => index, nowNs: () => now, clock: new FakeClock() }).sweep()
  t.equal(r.stale, 2)
  t.ok(m.lookup(inGroup), 'the group\'s flow stays')
  t.notOk(m.lookup(replaced) || m.lookup(outside), 'a flow of an older group id, and one outside every range, go')
})

t.test('races with the packet path: a rewritten entry is kept, a vanished one skipped, the rest deleted', async (t) => {
  const m = new FakeConns()
  const now = 1000n * S
  const old = () => conn({ lastSeen: now - 902n * S, state: ConnState.ESTABLISHED })
  const ks = Array.from({ length: 6 }, () => key())
  for (const k of ks) m.put(k, old())
  m.afterLookup = (keys) => {
    m.afterLookup = undefined
    // A new flow on the same ports replaced one expired entry; the LRU took another.
    m.put(keys[1]!, conn({ lastSeen: now + S, created: now + S, state: ConnState.SYN_RECV }))
    m.entries.delete(keys[3]!.toString('hex'))
  }
  const s = new ConnSweeper({ conns: m, timeouts: () => defaults, nowNs: () => now, clock: new FakeClock() })
  const r = await s.sweep()
  t.equal(r.expired, 4, 'four deleted')
  t.equal(r.raced, 2, 'two raced')
  t.same([...m.entries.values()].map((v) => Conn.decode(v).state), [ConnState.SYN_RECV], 'only the new flow is left')

  // A key that vanishes between the re-read and the delete: the batch stops there and goes on after it.
  const m2 = new FakeConns()
  const ks2 = Array.from({ length: 5 }, () => key())
  for (const k of ks2) m2.put(k, old())
  const realDelete = m2.deleteBatchRaw.bind(m2)
  let first = true
  m2.deleteBatchRaw = (keys, count) => {
    if (first) { first = false; m2.entries.delete(keys.subarray(2 * m2.keySize, 3 * m2.keySize).toString('hex')) }
    return realDelete(keys, count)
  }
  const r2 = await new ConnSweeper({ conns: m2, timeouts: () => defaults, nowNs: () => now, clock: new FakeClock() }).sweep()
  t.same({ expired: r2.expired, raced: r2.raced, left: m2.entries.size }, { expired: 4, raced: 1, left: 0 })
})

t.test('a large table is swept in bounded batches that let the event loop run', async (t) => {
  const m = new FakeConns(1 << 20)
  const now = 100_000n * S
  for (let i = 0; i < 20_000; i++) m.put(key(Proto.UDP), conn({ lastSeen: i % 2 ? now : now - 1000n * S, state: ConnState.UDP }))
  let ticks = 0
  const timer = setInterval(() => ticks++, 0)
  const s = new ConnSweeper({ conns: m, timeouts: () => defaults, nowNs: () => now, batchSize: 1000, clock: new FakeClock() })
  const r = await s.sweep()
  clearInterval(timer)
  t.equal(r.expired, 10_000)
  t.equal(r.batches, 20)
  t.ok(ticks >= 3, `the event loop ran between batches (${ticks} timer ticks)`)
})

t.test('start() sweeps on the clock; a failing pass is counted and the next one still runs; stop() ends it', async (t) => {
  const clock = new FakeClock()
  const m = new FakeConns()
  let fail = true
  const s = new ConnSweeper({
    conns: m, clock, intervalMs: 1000, nowNs: () => 0n,
    timeouts: () => { if (fail) { fail = false; throw new Error('map gone') } return defaults },
  })
  s.start()
  await clock.advanceAsync(0)
  t.equal(s.totals.errors, 1, 'the first pass failed')
  await clock.advanceAsync(1000)
  t.equal(s.totals.passes, 1, 'the next pass ran')
  await clock.advanceAsync(3000)
  t.equal(s.totals.passes, 4)
  await s.stop()
  await clock.advanceAsync(5000)
  t.equal(s.totals.passes, 4, 'no pass after stop')
  t.equal(clock.pending, 0, 'no timer left')
})

t.test('concurrent sweep() calls join one pass', async (t) => {
  const m = new FakeConns()
  for (let i = 0; i < 10; i++) m.put(key(), conn({ lastSeen: 0n, state: ConnState.ESTABLISHED }))
  const s = new ConnSweeper({ conns: m, timeouts: () => defaults, nowNs: () => 0n, batchSize: 2, clock: new FakeClock() })
  const [a, b] = await Promise.all([s.sweep(), s.sweep()])
  t.equal(a, b)
  t.equal(s.totals.passes, 1)
})
