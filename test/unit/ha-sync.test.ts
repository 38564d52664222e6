// SPDX-License-Identifier: GPL-2.0-only
// Connection sync: the message layout, HMAC and replay rejection, id translation between two
// directors whose ids differ, time rebasing between two monotonic clocks, and the protocol (hello,
// snapshot, deltas, refresh, in sync) between a master and a backup over an in-memory channel.
import t from 'tap'
import { FakeClock } from '../../src/util/clock'
import {
  ConnSync, IdMap, MsgType, ReplayWindow, SYNC_ENTRY, SYNC_HEADER, SYNC_MAC, SYNC_MAX_ENTRIES, decodeMessage, encodeMessage,
  fromSyncEntry, toSyncEntry, type ConnTable, type RawEntry, type RealRow, type ServiceRow, type SyncChannel, type SyncEntry,
} from '../../src/ha/sync'
import { Conn, ConnFlags, ConnKey, ConnKind, ConnState } from '../../src/dataplane/abi'
import { connSync } from '../../src/model/vrrp'

const KEY = Buffer.from('0123456789abcdef0123456789abcdef')
const web = { addr: '10.0.0.100', port: 80, proto: 6, family: 2 }
const dns6 = { addr: '2001:db8::53', port: 53, proto: 17, family: 10 }

const entry = (o: Partial<SyncEntry> = {}): SyncEntry => ({
  family: 2, proto: 6, kind: 0, state: ConnState.ESTABLISHED, flags: 0, caddr: '192.0.2.7', vaddr: '10.0.0.100', cport: 40001, vport: 80,
  service: web, realAddr: '10.0.1.2', realPort: 80, realFamily: 2, idleMs: 1500, ageMs: 60_000, ctlLeftS: 0, ...o,
})

t.test('message layout: header, entries, HMAC', async (t) => {
  const e6 = entry({ family: 10, proto: 17, caddr: '2001:db8::7', vaddr: '2001:db8::53', cport: 5353, vport: 53, service: dns6, realAddr: '10.0.1.3', realPort: 53, state: ConnState.UDP })
  const msg = { type: MsgType.DELTA, flags: 0, senderId: 0xdeadbeef, seq: 1700000000000000n, nonce: 0x0102030405060708n, part: 0, snapshotId: 7, entries: [entry(), e6] }
  const b = encodeMessage(msg, KEY)
  t.equal(b.length, SYNC_HEADER + 2 * SYNC_ENTRY + SYNC_MAC, '40 + 2 x 112 + 32 bytes')
  t.equal(b.toString('latin1', 0, 4), 'XVSY', 'magic')
  t.same([b[4], b[5], b.readUInt16BE(6), b.readUInt32BE(8)], [2, 3, 0, 0xdeadbeef], 'version, type, flags, sender id')
  t.equal(b.readBigUInt64BE(12), 1700000000000000n, 'seq')
  t.equal(b.readBigUInt64BE(20), 0x0102030405060708n, 'nonce')
  t.same([b.readUInt16BE(28), b.readUInt16BE(30), b.readUInt32BE(32)], [2, 0, 7], 'count, part, snapshot id')
  const e = b.subarray(SYNC_HEADER, SYNC_HEADER + SYNC_ENTRY)
  t.same([...e.subarray(0, 8)], [2, 6, 0, 1, 0, 6, 2, 2], 'family proto kind state flags, service proto/family, real family')
  t.same([e.readUInt16BE(8), e.readUInt16BE(10), e.readUInt16BE(12), e.readUInt16BE(14)], [40001, 80, 80, 80], 'ports')
  t.same([e.readUInt32BE(16), e.readUInt32BE(20), e.readUInt32BE(24)], [1500, 60000, 0], 'idle, age, template control')
  t.equal(e.subarray(32, 48).toString('hex'), 'c0000207' + '00'.repeat(12), 'IPv4 client address in the first 4 bytes')
  const d = decodeMessage(b, KEY)
  t.ok(d.ok)
  if (d.ok) t.same(d.msg, msg, 'decodes to what was encoded')
  t.throws(() => encodeMessage({ ...msg, entries: Array(SYNC_MAX_ENTRIES + 1).fill(entry()) }, KEY), { code: 'ESYNC' })
  t.ok(SYNC_HEADER + SYNC_MAX_ENTRIES * SYNC_ENTRY + SYNC_MAC + 28 <= 1500, 'a full message fits one 1500-byte IPv4 datagram')
})

t.test('fullnat entries carry their local address and port; nat and dr entries none', async (t) => {
  const fnat = entry({ flags: ConnFlags.NAT | ConnFlags.FULLNAT, laddr: '10.0.9.1', lport: 20001 })
  const nat = entry({ flags: ConnFlags.NAT, cport: 40002 })
  const b = encodeMessage({ type: MsgType.DELTA, flags: 0, senderId: 1, seq: 2n, nonce: 3n, part: 0, snapshotId: 0, entries: [fnat, nat] }, KEY)
  const e = b.subarray(SYNC_HEADER, SYNC_HEADER + SYNC_ENTRY)
  t.equal(e.readUInt16BE(28), 20001, 'local port at 28')
  t.equal(e.subarray(96, 112).toString('hex'), '0a000901' + '00'.repeat(12), 'local address at 96')
  t.equal(b.subarray(SYNC_HEADER + SYNC_ENTRY + 96, SYNC_HEADER + 2 * SYNC_ENTRY).toString('hex'), '00'.repeat(16), 'a nat entry has none')
  const d = decodeMessage(b, KEY)
  t.ok(d.ok)
  if (d.ok) t.same(d.msg.entries, [fnat, nat], 'decodes to what was encoded')
})

t.test('tampered, truncated and foreign messages are rejected', async (t) => {
  const b = encodeMessage({ type: MsgType.SNAPSHOT, flags: 1, senderId: 1, seq: 5n, nonce: 9n, part: 0, snapshotId: 1, entries: [entry()] }, KEY)
  const flip = (i: number): Buffer => { const c = Buffer.from(b); c[i]! ^= 1; return c }
  const reason = (x: Buffer, key = KEY) => { const d = decodeMessage(x, key); return d.ok ? 'ok' : d.reason }
  t.equal(reason(b), 'ok')
  t.equal(reason(flip(13)), 'mac', 'sequence number changed')
  t.equal(reason(flip(21)), 'mac', 'nonce changed')
  t.equal(reason(flip(SYNC_HEADER + 40)), 'mac', 'an address in an entry changed')
  t.equal(reason(flip(b.length - 1)), 'mac', 'MAC changed')
  t.equal(reason(b, Buffer.from('another key of sixteen+')), 'mac', 'another key')
  t.equal(reason(b.subarray(0, b.length - 1)), 'length', 'truncated')
  t.equal(reason(b.subarray(0, 20)), 'short')
  t.equal(reason(flip(0)), 'magic')
  t.equal(reason(flip(4)), 'version')
  const count = Buffer.from(b); count.writeUInt16BE(2, 28)
  t.equal(reason(count), 'length', 'count disagrees with the length')
})

t.test('replay window', async (t) => {
  const w = new ReplayWindow()
  t.ok(w.accept(1, 100n), 'first')
  t.notOk(w.accept(1, 100n), 'the same again')
  t.ok(w.accept(1, 102n))
  t.ok(w.accept(1, 101n), 'late, within the window')
  t.notOk(w.accept(1, 101n), 'late and replayed')
  t.ok(w.accept(1, 300n))
  t.notOk(w.accept(1, 236n), '64 behind: too old')
  t.ok(w.accept(1, 237n), '63 behind: still in the window')
  t.notOk(w.accept(2, 299n), 'a new sender id (restart) below everything seen: an old recording')
  t.ok(w.accept(2, 1000n), 'a restarted sender continues above')
  t.notOk(w.accept(1, 301n), 'the previous run is gone for good')
})

// Director A and director B hold the same services and real servers under different ids.
const servicesA: ServiceRow[] = [{ key: web, id: 3 }, { key: dns6, id: 4 }]
const realsA: RealRow[] = [
  { id: 7, addr: '10.0.1.2', port: 80, family: 2, serviceId: 3 },
  { id: 8, addr: '10.0.1.3', port: 53, family: 2, serviceId: 4 },
  { id: 9, addr: '10.0.1.4', port: 80, family: 2, serviceId: 3 },
]
const servicesB: ServiceRow[] = [{ key: dns6, id: 0 }, { key: web, id: 1 }]
const realsB: RealRow[] = [
  { id: 1, addr: '10.0.1.3', port: 53, family: 2, serviceId: 0 },
  { id: 2, addr: '10.0.1.2', port: 80, family: 2, serviceId: 1 },
]

t.test('id translation through names', async (t) => {
  const a = new IdMap(servicesA, realsA)
  const b = new IdMap(servicesB, realsB)
  const n = a.name(7, 3)!
  t.same(n, { service: web, addr: '10.0.1.2', port: 80, family: 2 })
  t.same(b.ids(n.service, n.addr, n.port), { realId: 2, serviceId: 1 }, 'real 7 of service 3 on A is real 2 of service 1 on B')
  t.same(b.ids(dns6, '10.0.1.3', 53), { realId: 1, serviceId: 0 })
  t.equal(a.name(7, 4), undefined, 'an entry whose real server has since moved to another service is stale')
  t.equal(a.name(99, 3), undefined, 'unknown id')
  t.equal(b.ids(web, '10.0.1.4', 80), undefined, 'a real server B does not have')
  t.same(b.ids({ ...dns6, addr: '2001:0db8:0::53' }, '10.0.1.3', 53), { realId: 1, serviceId: 0 }, 'addresses compare canonically')
})

t.test('table entries: ids to names and back, times rebased between two clocks', async (t) => {
  const a = new IdMap(servicesA, realsA)
  const b = new IdMap(servicesB, realsB)
  const nowA = 5_000_000_000_000n // A's monotonic clock: 5000 s since its boot
  const nowB = 90_000_000_000n // B booted later: 90 s
  const key = ConnKey.encode({ caddr: '192.0.2.7', vaddr: '10.0.0.100', cport: 40001, vport: 80, proto: 6, family: 2, kind: ConnKind.FLOW })
  const value = Conn.encode({ last_seen_ns: nowA - 1_500_000_000n, created_ns: nowA - 60_000_000_000n, real_id: 7, service_id: 3, state: ConnState.ESTABLISHED, flags: 0, ctl_until_s: 0 })
  const e = toSyncEntry({ key, value }, a, nowA)!
  t.same(e, entry(), 'named, with ages')
  const raw = fromSyncEntry(e, b, nowB)!
  t.same(raw.key, key, 'the same flow key')
  t.same(Conn.decode(raw.value), { last_seen_ns: nowB - 1_500_000_000n, created_ns: nowB - 60_000_000_000n, real_id: 2, service_id: 1, state: ConnState.ESTABLISHED, flags: 0, ctl_until_s: 0, lport: 0, laddr: Buffer.alloc(16) },
    'B\'s ids and B\'s clock')
  const tkey = ConnKey.encode({ caddr: '192.0.2.0', vaddr: '10.0.0.100', cport: 0, vport: 80, proto: 6, family: 2, kind: ConnKind.TEMPLATE })
  const tval = Conn.encode({ last_seen_ns: nowA, created_ns: nowA, real_id: 7, service_id: 3, state: 0, flags: ConnFlags.TEMPLATE, ctl_until_s: 5000 + 120 })
  const te = toSyncEntry({ key: tkey, value: tval }, a, nowA)!
  t.equal(te.ctlLeftS, 120, 'a template controls connections for 120 s more')
  t.equal(Conn.decode(fromSyncEntry(te, b, nowB)!.value).ctl_until_s, 90 + 120, 'on B\'s clock')
  t.equal(fromSyncEntry(entry({ realAddr: '10.0.1.4' }), b, nowB), undefined, 'a real server B does not have')
})

// --- the protocol over an in-memory channel ---

class MemoryTable implements ConnTable {
  readonly rows = new Map<string, RawEntry>()
  idMapReads = 0
  constructor(private readonly clock: FakeClock, private readonly bootNs: bigint, public services: ServiceRow[], public reals: RealRow[]) {}
  entries(): RawEntry[] { return [...this.rows.values()] }
  install(es: readonly RawEntry[]): number { for (const e of es) this.rows.set(e.key.toString('hex'), e); return es.length }
  idMap(): IdMap { this.idMapReads++; return new IdMap(this.services, this.reals) }
  nowNs(): bigint { return this.bootNs + BigInt(Math.round(this.clock.now() * 1e6)) }
  put(cport: number, realId: number, serviceId: number, o: { state?: number; idleMs?: number } = {}): string {
    const key = ConnKey.encode({ caddr: '192.0.2.7', vaddr: '10.0.0.100', cport, vport: 80, proto: 6, family: 2, kind: 0 })
    const now = this.nowNs()
    this.rows.set(key.toString('hex'), {
      key,
      value: Conn.encode({ last_seen_ns: now - BigInt(o.idleMs ?? 0) * 1_000_000n, created_ns: now, real_id: realId, service_id: serviceId, state: o.state ?? ConnState.ESTABLISHED, flags: 0, ctl_until_s: 0 }),
    })
    return key.toString('hex')
  }
  get(hex: string) { const r = this.rows.get(hex); return r && Conn.decode(r.value) }
}

class Wire {
  readonly log: Array<{ from: string; to: string; buf: Buffer }> = []
  private readonly ends = new Map<string, Array<(m: Buffer, from: string) => void>>()
  tamper: ((m: Buffer, from: string, to: string) => Buffer | null) | undefined
  constructor(private readonly clock: FakeClock) {}
  channel(me: string): SyncChannel {
    this.ends.set(me, [])
    return {
      send: (m, peer) => {
        this.log.push({ from: me, to: peer, buf: Buffer.from(m) })
        const out = this.tamper ? this.tamper(Buffer.from(m), me, peer) : m
        if (out) this.clock.setTimeout(() => { for (const h of this.ends.get(peer) ?? []) h(out, me) }, 0)
      },
      onMessage: (cb) => { this.ends.get(me)!.push(cb) },
      close: () => { this.ends.set(me, []) },
    }
  }
  deliver(buf: Buffer, from: string, to: string): void { for (const h of this.ends.get(to) ?? []) h(buf, from) }
}

function pair(clock: FakeClock) {
  const wire = new Wire(clock)
  const tableA = new MemoryTable(clock, 5_000_000_000_000n, servicesA, realsA)
  const tableB = new MemoryTable(clock, 90_000_000_000n, servicesB, realsB)
  let r = 0
  const random = (n: number) => { const b = Buffer.alloc(n); b.writeUInt32BE(++r, n - 4); return b }
  const mk = (me: string, peer: string, table: MemoryTable) => new ConnSync({
    spec: connSync('VI_1', [peer], { key: KEY.toString() }), table, clock, channel: wire.channel(me), helloMs: 1000, refreshMs: 10_000, burst: 4, random,
  })
  const A = mk('10.0.0.1', '10.0.0.2', tableA)
  const B = mk('10.0.0.2', '10.0.0.1', tableB)
  return { wire, tableA, tableB, A, B }
}

t.test('backup hello -> master snapshot -> in sync; then deltas and refreshes', async (t) => {
  const clock = new FakeClock()
  const { wire, tableA, tableB, A, B } = pair(clock)
  for (let i = 0; i < 40; i++) tableA.put(30000 + i, i % 2 ? 7 : 9, 3)
  tableA.put(50000, 8, 4, { state: ConnState.UDP })
  const stale = tableA.put(50001, 7, 4) // real 7 belongs to service 3 now: stale, not sent
  void stale
  const changes: boolean[] = []
  B.onInSyncChange((s) => changes.push(s))
  A.setRole('master')
  B.setRole('backup')
  t.equal(B.inSync, false)
  clock.advance(10)
  const snap = wire.log.filter((m) => m.buf[5] === MsgType.SNAPSHOT)
  t.equal(snap.length, Math.ceil(41 / SYNC_MAX_ENTRIES), '41 entries in 4 parts (the stale one left out)')
  t.equal(B.inSync, true, 'in sync once every part arrived')
  t.same(changes, [true])
  t.equal(B.stats.snapshotsCompleted, 1)
  t.equal(B.stats.unmapped, 20, 'entries of real 9, which B does not have, are counted and skipped')
  t.equal(tableB.rows.size, 21, '20 of real 7 and the UDP flow of real 8')
  const udp = [...tableB.rows.values()].map((r) => ({ k: ConnKey.decode(r.key), v: Conn.decode(r.value) })).find((x) => x.k.cport === 50000)!
  t.same([udp.v.real_id, udp.v.service_id, udp.v.state], [1, 0, ConnState.UDP], 'installed under B\'s own ids')

  const before = wire.log.length
  const k = tableA.put(40000, 7, 3, { state: ConnState.SYN_RECV })
  clock.advance(1000)
  const deltas = wire.log.slice(before).filter((m) => m.buf[5] === MsgType.DELTA)
  t.equal(deltas.length, 1, 'a new entry travels in the next scan')
  t.equal(decodeMessage(deltas[0]!.buf, KEY).ok && (decodeMessage(deltas[0]!.buf, KEY) as { msg: { entries: unknown[] } }).msg.entries.length, 1, 'only the new entry')
  t.equal(tableB.get(k)!.state, ConnState.SYN_RECV)
  tableA.put(40000, 7, 3, { state: ConnState.ESTABLISHED })
  clock.advance(1000)
  t.equal(tableB.get(k)!.state, ConnState.ESTABLISHED, 'a state change travels')
  const quiet = wire.log.length
  clock.advance(3000)
  t.equal(wire.log.slice(quiet).filter((m) => m.buf[5] === MsgType.DELTA).length, 0, 'nothing changed, nothing sent')
  tableA.put(40000, 7, 3, { idleMs: 0 }) // traffic again, 5 s after it was last sent: not yet a refresh
  clock.advance(1000)
  t.equal(wire.log.slice(quiet).filter((m) => m.buf[5] === MsgType.DELTA).length, 0, 'used again within refresh: not sent')
  clock.advance(5000)
  tableA.put(40000, 7, 3, { idleMs: 0 })
  clock.advance(1000)
  t.equal(wire.log.slice(quiet).filter((m) => m.buf[5] === MsgType.DELTA).length, 1, 'used again 11 s after it was sent: refreshed')
  t.ok(Math.abs(Number(tableB.nowNs() - tableB.get(k)!.last_seen_ns) / 1e6 - 1000) < 1, 'the backup\'s copy was seen 1 s ago on its own clock')
  t.equal(Object.values(B.stats.rejected).reduce((x, y) => x + y, 0), 0, 'nothing rejected')
  A.close()
  B.close()
})

t.test('tampered and replayed messages change nothing and are counted', async (t) => {
  const clock = new FakeClock()
  const { wire, tableA, tableB, A, B } = pair(clock)
  tableA.put(30000, 7, 3)
  A.setRole('master')
  B.setRole('backup')
  wire.tamper = (m, from) => { if (from === '10.0.0.1' && m[5] !== MsgType.HELLO) m[SYNC_HEADER + 33]! ^= 0xff; return m }
  clock.advance(3000)
  t.equal(B.inSync, false, 'a tampered snapshot does not count')
  t.ok(B.stats.rejected.mac >= 1, `rejected (mac): ${B.stats.rejected.mac}`)
  t.equal(tableB.rows.size, 0, 'nothing installed')
  wire.tamper = undefined
  clock.advance(3000)
  t.equal(B.inSync, true, 'the snapshot is sent again while the backup says it is not in sync')
  const snap = wire.log.filter((m) => m.buf[5] === MsgType.SNAPSHOT).at(-1)!
  tableB.rows.clear()
  wire.deliver(snap.buf, '10.0.0.1', '10.0.0.2')
  t.equal(B.stats.rejected.replay, 1, 'the same message again: a replay')
  t.equal(tableB.rows.size, 0, 'not installed')
  wire.deliver(snap.buf, '10.0.0.9', '10.0.0.2')
  t.equal(B.stats.rejected['unknown-peer'], 1, 'from an address that is no peer')

  // The backup restarts (a new nonce): an old recording replayed to it must not make it "in sync".
  B.close()
  A.close()
  const B2 = new ConnSync({ spec: connSync('VI_1', ['10.0.0.1'], { key: KEY.toString() }), table: tableB, clock, channel: wire.channel('10.0.0.2'), helloMs: 1000, random: () => Buffer.from('ffffffffffffffff', 'hex') })
  B2.setRole('backup')
  for (const m of wire.log.filter((x) => x.from === '10.0.0.1' && x.buf[5] === MsgType.SNAPSHOT)) wire.deliver(m.buf, '10.0.0.1', '10.0.0.2')
  t.equal(B2.inSync, false, 'an old snapshot does not make a restarted backup in sync')
  t.ok(B2.stats.rejected['stale-nonce'] >= 1, 'rejected for its nonce')
  B2.close()
})

t.test('roles swap on failover: the new master sends, the old one receives', async (t) => {
  const clock = new FakeClock()
  const { tableA, tableB, A, B } = pair(clock)
  tableA.put(30000, 7, 3)
  A.setRole('master')
  B.setRole('backup')
  clock.advance(100)
  t.equal(B.inSync, true)
  B.setRole('master')
  A.setRole('backup')
  t.equal(A.inSync, false, 'a director that became backup starts out of sync')
  tableB.put(31000, 2, 1)
  clock.advance(100)
  t.equal(A.inSync, true, 'and gets the new master\'s table')
  t.equal(tableA.rows.size, 2)
  A.close()
  B.close()
})
