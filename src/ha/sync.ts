// SPDX-License-Identifier: GPL-2.0-only
// Connection sync, the IPVS sync daemon's job: the MASTER director streams its connection table
// (xvs_conns: flows and persistence templates) to the BACKUP directors, which install it in their own
// table, so that flows continue on the same real servers after a failover. A BACKUP that has a full
// copy says so ("in sync"); the failover manager holds preemption until it does.
//
// Protocol (UDP, default port 8848, unicast to the configured peers):
//   BACKUP -> MASTER  HELLO     every helloInterval: "I am here, my nonce is N, I am (not) in sync"
//   MASTER -> BACKUP  SNAPSHOT  the whole table, in parts, when a backup is not in sync (new nonce)
//   MASTER -> BACKUP  DELTA     new entries, entries whose state or real server changed, and entries
//                               in use again since they were last sent (refresh, so the backup's
//                               copies do not time out), every scan interval
// Every message is authenticated: HMAC-SHA256 under the shared key over the whole message. Replays are
// refused twice over: a sequence number per sender (starting at the sender's wall clock in µs, so a
// restarted sender continues above its previous run) checked against a 64-message sliding window, and
// the receiver's nonce, echoed by the master in SNAPSHOT and DELTA, so a backup that restarts cannot
// be fed an old recording.
//
// Real servers are named on the wire by what identifies them on both directors (their service's key,
// address and port), never by the data plane's ids, which differ from one director to the other; the
// receiver maps them onto its own ids from its xvs_services and xvs_reals, refreshed when it meets a
// name it does not know. Times travel as ages (ms since the last packet, since creation), because
// bpf_ktime_get_ns() clocks of two machines have nothing in common.
//
// Message layout (network order):
//   0 magic "XVSY"  4 version 2  5 type  6 flags u16  8 sender id u32  12 seq u64  20 nonce u64
//   28 count u16  30 part u16  32 snapshot id u32  36 reserved u32  40 entries (112 bytes each)
//   end: HMAC-SHA256 (32 bytes) of everything before it
// Entry:
//   0 family  1 proto  2 kind  3 state  4 flags  5 service proto  6 service family  7 real family
//   8 client port  10 virtual port  12 service port  14 real port  16 idle ms u32  20 age ms u32
//   24 template control seconds left u32  28 fullnat local port u16  30 reserved u16
//   32 client address  48 virtual address  64 service address  80 real address  96 fullnat local
//   address (16 bytes each; IPv4 in the first 4; the local address all zero unless fullnat)
// nat and fullnat entries (flags NAT, FULLNAT) are installed with their xvs_nat_rev entry, built from
// the receiver's own real server entry, so replies keep being translated after a failover.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import dgram from 'node:dgram'
import { readFileSync } from 'node:fs'
import { ConfigError, XvsError } from '../errors'
import type { Logger } from '../log'
import { silentLogger } from '../log'
import type { ConnSyncSpec } from '../model/types'
import { systemClock, type Clock, type TimerHandle } from '../util/clock'
import { Conn, ConnFlags, ConnKey, Real, Service, ServiceKey, type Real as RealValue, type ServiceKey as ServiceKeyValue } from '../dataplane/abi'
import { natRevKeyOf } from '../daemon/sweeper'
import { encodeAddr } from '../dataplane/codec'
import type { Dataplane } from '../dataplane/loader'
import { bytesToIp, canonicalIp, ipToBytes, type Family } from './inet'
import type { ConnSyncPeer } from './failover'

export const SYNC_MAGIC = 0x5856_5359 // "XVSY"
export const SYNC_VERSION = 2
export const SYNC_HEADER = 40
export const SYNC_ENTRY = 112
export const SYNC_MAC = 32
/** Entries per message: 40 + 11 * 112 + 32 = 1304 bytes, one unfragmented datagram on a 1500-byte link. */
export const SYNC_MAX_ENTRIES = 11

export const MsgType = { HELLO: 1, SNAPSHOT: 2, DELTA: 3 } as const
export type MsgTypeName = keyof typeof MsgType
/** SNAPSHOT: this is the last part. HELLO: the sender is in sync. */
export const MSG_F_LAST = 1
export const MSG_F_IN_SYNC = 1

const AF = { 4: 2, 6: 10 } as const

/** One connection-table entry as it travels: everything that identifies it, with ids resolved to names. */
export interface SyncEntry {
  family: number
  proto: number
  kind: number
  state: number
  flags: number
  caddr: string
  vaddr: string
  cport: number
  vport: number
  /** The real server's service: its xvs_services key. */
  service: ServiceKeyValue
  realAddr: string
  realPort: number
  realFamily: number
  idleMs: number
  ageMs: number
  /** Templates: seconds the template must live for the connections it controls; 0 none. */
  ctlLeftS: number
  /** fullnat: the local address and port the client's became ('' and 0 otherwise). */
  laddr?: string
  lport?: number
}

export interface SyncMessage {
  type: number
  flags: number
  senderId: number
  seq: bigint
  nonce: bigint
  part: number
  snapshotId: number
  entries: SyncEntry[]
}

const famOf = (af: number): Family => (af === AF[6] ? 6 : 4)

function putAddr(b: Buffer, off: number, text: string, af: number): void {
  const bytes = ipToBytes(text)
  if (!bytes || bytes.length !== (af === AF[6] ? 16 : 4)) throw new XvsError('ESYNC', `${text} is not an address of family ${af}`)
  b.fill(0, off, off + 16)
  bytes.copy(b, off)
}

const getAddr = (b: Buffer, off: number, af: number): string => bytesToIp(b, off, famOf(af))

const sat32 = (n: number): number => Math.max(0, Math.min(0xffffffff, Math.floor(n)))

export function encodeEntry(e: SyncEntry, b: Buffer, off: number): void {
  b[off] = e.family
  b[off + 1] = e.proto
  b[off + 2] = e.kind
  b[off + 3] = e.state
  b[off + 4] = e.flags
  b[off + 5] = e.service.proto
  b[off + 6] = e.service.family
  b[off + 7] = e.realFamily
  b.writeUInt16BE(e.cport, off + 8)
  b.writeUInt16BE(e.vport, off + 10)
  b.writeUInt16BE(e.service.port, off + 12)
  b.writeUInt16BE(e.realPort, off + 14)
  b.writeUInt32BE(sat32(e.idleMs), off + 16)
  b.writeUInt32BE(sat32(e.ageMs), off + 20)
  b.writeUInt32BE(sat32(e.ctlLeftS), off + 24)
  b.writeUInt16BE(e.lport ?? 0, off + 28)
  b.writeUInt16BE(0, off + 30)
  putAddr(b, off + 32, e.caddr, e.family)
  putAddr(b, off + 48, e.vaddr, e.family)
  putAddr(b, off + 64, e.service.addr, e.service.family)
  putAddr(b, off + 80, e.realAddr, e.realFamily)
  if (e.laddr) putAddr(b, off + 96, e.laddr, e.family)
  else b.fill(0, off + 96, off + 112)
}

const isAf = (x: number): boolean => x === AF[4] || x === AF[6]

/** undefined when a family byte is not IPv4 or IPv6. */
export function decodeEntry(b: Buffer, off: number): SyncEntry | undefined {
  const family = b[off]!
  const sfamily = b[off + 6]!
  const rfamily = b[off + 7]!
  if (!isAf(family) || !isAf(sfamily) || !isAf(rfamily)) return undefined
  return {
    family,
    proto: b[off + 1]!,
    kind: b[off + 2]!,
    state: b[off + 3]!,
    flags: b[off + 4]!,
    cport: b.readUInt16BE(off + 8),
    vport: b.readUInt16BE(off + 10),
    service: { addr: getAddr(b, off + 64, sfamily), port: b.readUInt16BE(off + 12), proto: b[off + 5]!, family: sfamily },
    realPort: b.readUInt16BE(off + 14),
    realFamily: rfamily,
    idleMs: b.readUInt32BE(off + 16),
    ageMs: b.readUInt32BE(off + 20),
    ctlLeftS: b.readUInt32BE(off + 24),
    caddr: getAddr(b, off + 32, family),
    vaddr: getAddr(b, off + 48, family),
    realAddr: getAddr(b, off + 80, rfamily),
    ...(b[off + 4]! & ConnFlags.FULLNAT ? { laddr: getAddr(b, off + 96, family), lport: b.readUInt16BE(off + 28) } : {}),
  }
}

/** A whole message, signed. */
export function encodeMessage(m: SyncMessage, key: Buffer): Buffer {
  if (m.entries.length > SYNC_MAX_ENTRIES) throw new XvsError('ESYNC', `${m.entries.length} entries: at most ${SYNC_MAX_ENTRIES} per message`)
  const len = SYNC_HEADER + m.entries.length * SYNC_ENTRY
  const b = Buffer.alloc(len + SYNC_MAC)
  b.writeUInt32BE(SYNC_MAGIC, 0)
  b[4] = SYNC_VERSION
  b[5] = m.type
  b.writeUInt16BE(m.flags, 6)
  b.writeUInt32BE(m.senderId >>> 0, 8)
  b.writeBigUInt64BE(m.seq, 12)
  b.writeBigUInt64BE(m.nonce, 20)
  b.writeUInt16BE(m.entries.length, 28)
  b.writeUInt16BE(m.part, 30)
  b.writeUInt32BE(m.snapshotId >>> 0, 32)
  m.entries.forEach((e, i) => encodeEntry(e, b, SYNC_HEADER + i * SYNC_ENTRY))
  createHmac('sha256', key).update(b.subarray(0, len)).digest().copy(b, len)
  return b
}

export type DecodeFailure = 'short' | 'magic' | 'version' | 'length' | 'mac' | 'entry'

/** Verify and decode; never throws on bad input. */
export function decodeMessage(b: Buffer, key: Buffer): { ok: true; msg: SyncMessage } | { ok: false; reason: DecodeFailure } {
  if (b.length < SYNC_HEADER + SYNC_MAC) return { ok: false, reason: 'short' }
  if (b.readUInt32BE(0) !== SYNC_MAGIC) return { ok: false, reason: 'magic' }
  if (b[4] !== SYNC_VERSION) return { ok: false, reason: 'version' }
  const count = b.readUInt16BE(28)
  const len = SYNC_HEADER + count * SYNC_ENTRY
  if (b.length !== len + SYNC_MAC) return { ok: false, reason: 'length' }
  const mac = createHmac('sha256', key).update(b.subarray(0, len)).digest()
  if (!timingSafeEqual(mac, b.subarray(len))) return { ok: false, reason: 'mac' }
  const entries: SyncEntry[] = []
  for (let i = 0; i < count; i++) {
    const e = decodeEntry(b, SYNC_HEADER + i * SYNC_ENTRY)
    if (!e) return { ok: false, reason: 'entry' }
    entries.push(e)
  }
  return {
    ok: true,
    msg: {
      type: b[5]!,
      flags: b.readUInt16BE(6),
      senderId: b.readUInt32BE(8),
      seq: b.readBigUInt64BE(12),
      nonce: b.readBigUInt64BE(20),
      part: b.readUInt16BE(30),
      snapshotId: b.readUInt32BE(32),
      entries,
    },
  }
}

/**
 * Replay protection for one peer: a 64-message sliding window over the current sender's sequence
 * numbers (IPsec's anti-replay window, RFC 4303 §3.4.3), and across sender restarts (a new sender id)
 * only sequence numbers above everything seen from that peer.
 */
export class ReplayWindow {
  private senderId: number | undefined
  private highest = -1n
  private bitmap = 0n
  static readonly SIZE = 64n

  /** True if the message is fresh (and records it); false for a replay or one too old. */
  accept(senderId: number, seq: bigint): boolean {
    if (senderId !== this.senderId) {
      if (seq <= this.highest) return false
      this.senderId = senderId
      this.highest = seq
      this.bitmap = 1n
      return true
    }
    if (seq > this.highest) {
      const shift = seq - this.highest
      this.bitmap = shift >= ReplayWindow.SIZE ? 1n : ((this.bitmap << shift) | 1n) & ((1n << ReplayWindow.SIZE) - 1n)
      this.highest = seq
      return true
    }
    const back = this.highest - seq
    if (back >= ReplayWindow.SIZE) return false
    const bit = 1n << back
    if (this.bitmap & bit) return false
    this.bitmap |= bit
    return true
  }
}

// --- id translation ------------------------------------------------------------------------------

export interface ServiceRow { key: ServiceKeyValue; id: number }
export interface RealRow { id: number; addr: string; port: number; family: number; serviceId: number }

const svcName = (k: ServiceKeyValue): string => `${k.family}/${canonicalIp(k.addr) ?? k.addr}/${k.port}/${k.proto}`
const realName = (svc: string, addr: string, port: number): string => `${svc}|${canonicalIp(addr) ?? addr}|${port}`

/**
 * A director's ids and the names they stand for: service id <-> service key, real id <-> (service
 * key, address, port). The sender names its ids; the receiver finds its own ids for the names.
 */
export class IdMap {
  private readonly svcById = new Map<number, ServiceKeyValue>()
  private readonly svcIdByName = new Map<string, number>()
  private readonly realById = new Map<number, RealRow>()
  private readonly realIdByName = new Map<string, number>()

  constructor(services: readonly ServiceRow[], reals: readonly RealRow[]) {
    for (const s of services) {
      this.svcById.set(s.id, s.key)
      this.svcIdByName.set(svcName(s.key), s.id)
    }
    for (const r of reals) {
      const svc = this.svcById.get(r.serviceId)
      if (!svc) continue
      this.realById.set(r.id, r)
      this.realIdByName.set(realName(svcName(svc), r.addr, r.port), r.id)
    }
  }

  /** The names of an entry's ids, or undefined when they are unknown or stale (real moved service). */
  name(realId: number, serviceId: number): { service: ServiceKeyValue; addr: string; port: number; family: number } | undefined {
    const r = this.realById.get(realId)
    if (!r || r.serviceId !== serviceId) return undefined
    const service = this.svcById.get(serviceId)
    return service && { service, addr: r.addr, port: r.port, family: r.family }
  }

  /** This director's ids for names, or undefined. */
  ids(service: ServiceKeyValue, addr: string, port: number): { realId: number; serviceId: number } | undefined {
    const sn = svcName(service)
    const serviceId = this.svcIdByName.get(sn)
    const realId = this.realIdByName.get(realName(sn, addr, port))
    return serviceId === undefined || realId === undefined ? undefined : { realId, serviceId }
  }
}

// --- the table the sync reads and writes -------------------------------------------------------------

/** A connection-table entry; a nat connection received from a peer also carries its xvs_nat_rev key. */
export interface RawEntry { key: Buffer; value: Buffer; natRev?: Buffer }

/** Access to a data plane's connection table and the tables that name its ids. */
export interface ConnTable {
  /** Every entry now. */
  entries(): RawEntry[]
  /** Install entries (key and value buffers of the ABI's sizes); returns how many were written. */
  install(entries: readonly RawEntry[]): number
  idMap(): IdMap
  /** The data plane's clock (bpf_ktime_get_ns: CLOCK_MONOTONIC), ns. */
  nowNs(): bigint
}

/** The ConnTable of a running data plane. `dataplane` is called for each operation (the daemon's handle, or findDataplane). */
export class DataplaneConnTable implements ConnTable {
  constructor(private readonly dataplane: () => Dataplane) {}

  entries(): RawEntry[] {
    const m = this.dataplane().maps.conns
    const out: RawEntry[] = []
    let token: Buffer | null = null
    for (let i = 0; i <= m.maxEntries; i++) {
      const r = m.lookupBatchRaw(token, 4096)
      for (let j = 0; j < r.count; j++) {
        out.push({ key: r.keys.subarray(j * m.keySize, (j + 1) * m.keySize), value: r.values.subarray(j * m.valueBytes, (j + 1) * m.valueBytes) })
      }
      if (r.token === null) break
      token = r.token
    }
    return out
  }

  install(entries: readonly RawEntry[]): number {
    if (entries.length === 0) return 0
    const dp = this.dataplane()
    const m = dp.maps.conns
    const keys = Buffer.concat(entries.map((e) => e.key))
    const values = Buffer.concat(entries.map((e) => e.value))
    const n = m.updateBatchRaw(keys, values, entries.length)
    // nat connections: their reply entries, so this director translates their replies too
    for (const e of entries.slice(0, n)) if (e.natRev) dp.maps.natRev.update(e.natRev, e.key)
    return n
  }

  idMap(): IdMap {
    const dp = this.dataplane()
    const services = dp.maps.services.lookupBatch(1024).map(({ key, value }) => ({ key: ServiceKey.decode(key), id: Service.decode(value).id }))
    const reals: RealRow[] = []
    for (const { key, value } of dp.maps.reals.nonZeroEntries()) {
      const id = key.readUInt32LE()
      if (id === 0) continue
      const r: RealValue = Real.decode(value)
      reals.push({ id, addr: r.addr, port: r.port, family: r.family, serviceId: r.service_id })
    }
    return new IdMap(services, reals)
  }

  nowNs(): bigint {
    return process.hrtime.bigint()
  }
}

/** Table entry (raw) -> wire entry, or undefined when its ids name nothing (a stale entry). */
export function toSyncEntry(e: RawEntry, ids: IdMap, nowNs: bigint): SyncEntry | undefined {
  const k = ConnKey.decode(e.key)
  const v = Conn.decode(e.value)
  const n = ids.name(v.real_id, v.service_id)
  if (!n) return undefined
  const nowS = Number(nowNs / 1_000_000_000n)
  const ctl = v.ctl_until_s ?? 0
  return {
    family: k.family,
    proto: k.proto,
    kind: k.kind ?? 0,
    state: v.state,
    flags: v.flags,
    caddr: k.caddr,
    vaddr: k.vaddr,
    cport: k.cport,
    vport: k.vport,
    service: n.service,
    realAddr: n.addr,
    realPort: n.port,
    realFamily: n.family,
    idleMs: nowNs > v.last_seen_ns ? Number((nowNs - v.last_seen_ns) / 1_000_000n) : 0,
    ageMs: nowNs > v.created_ns ? Number((nowNs - v.created_ns) / 1_000_000n) : 0,
    ctlLeftS: ctl > nowS ? ctl - nowS : 0,
    ...(v.flags & ConnFlags.FULLNAT && v.laddr ? { laddr: bytesToIp(v.laddr, 0, famOf(k.family)), lport: v.lport ?? 0 } : {}),
  }
}

/** Wire entry -> table entry on this director, or undefined when its real server is unknown here. */
export function fromSyncEntry(e: SyncEntry, ids: IdMap, nowNs: bigint): RawEntry | undefined {
  const mine = ids.ids(e.service, e.realAddr, e.realPort)
  if (!mine) return undefined
  const ms = 1_000_000n
  const key = ConnKey.encode({ caddr: e.caddr, vaddr: e.vaddr, cport: e.cport, vport: e.vport, proto: e.proto, family: e.family, kind: e.kind })
  const value = Conn.encode({
    last_seen_ns: nowNs - BigInt(e.idleMs) * ms,
    created_ns: nowNs - BigInt(e.ageMs) * ms,
    real_id: mine.realId,
    service_id: mine.serviceId,
    state: e.state,
    flags: e.flags,
    ctl_until_s: e.ctlLeftS > 0 ? Number(nowNs / 1_000_000_000n) + e.ctlLeftS : 0,
    ...(e.laddr ? { laddr: encodeAddr(e.laddr).bytes, lport: e.lport ?? 0 } : {}),
  })
  // the real server's address and port come with the entry: no table to read for its reply key
  const natRev = e.flags & ConnFlags.NAT
    ? natRevKeyOf(key, 0, value, 0, new Map([[mine.realId, { addr: encodeAddr(e.realAddr).bytes, port: e.realPort }]]))
    : undefined
  return natRev ? { key, value, natRev } : { key, value }
}

// --- the channel --------------------------------------------------------------------------------------

export interface SyncChannel {
  send(message: Buffer, peer: string): void
  onMessage(cb: (message: Buffer, from: string) => void): void
  close(): void
}

/** UDP sockets (one per address family in use), bound to `source` (or any) and `port`. */
export class UdpSyncChannel implements SyncChannel {
  private readonly sockets = new Map<Family, dgram.Socket>()
  private readonly handlers: Array<(m: Buffer, from: string) => void> = []

  constructor(private readonly opts: { port: number; source?: string; families: Family[]; log: Logger }) {
    for (const family of new Set(opts.families)) {
      const s = dgram.createSocket({ type: family === 4 ? 'udp4' : 'udp6', reuseAddr: true })
      s.on('message', (msg, rinfo) => {
        const from = canonicalIp(rinfo.address.replace(/%.*$/, '')) ?? rinfo.address
        for (const h of this.handlers) h(msg, from)
      })
      s.on('error', (err) => opts.log.warn({ err }, 'sync socket error'))
      const src = opts.source && (opts.source.includes(':') ? 6 : 4) === family ? opts.source : undefined
      s.bind({ port: opts.port, ...(src ? { address: src } : {}), exclusive: true })
      this.sockets.set(family, s)
    }
  }

  send(message: Buffer, peer: string): void {
    const s = this.sockets.get(peer.includes(':') ? 6 : 4)
    if (!s) return
    s.send(message, this.opts.port, peer, (err) => {
      if (err) this.opts.log.debug({ err, peer }, 'sync send failed')
    })
  }

  onMessage(cb: (message: Buffer, from: string) => void): void {
    this.handlers.push(cb)
  }

  close(): void {
    for (const s of this.sockets.values()) {
      try { s.close() } catch { /* already closed */ }
    }
    this.sockets.clear()
  }
}

// --- the sync itself ------------------------------------------------------------------------------------

export interface ConnSyncStats {
  messagesSent: number
  messagesReceived: number
  entriesSent: number
  entriesInstalled: number
  /** Entries naming a real server this director does not have. */
  unmapped: number
  snapshotsSent: number
  snapshotsCompleted: number
  rejected: Record<DecodeFailure | 'replay' | 'unknown-peer' | 'stale-nonce' | 'role' | 'type', number>
}

export interface ConnSyncOptions {
  spec: ConnSyncSpec
  table: ConnTable
  log?: Logger
  clock?: Clock
  /** Default: UDP on spec.port. */
  channel?: SyncChannel
  /** The key; default spec.key or the contents of spec.keyFile. */
  key?: Buffer
  /** Milliseconds between HELLOs while not in sync (default 1000; 5x that once in sync). */
  helloMs?: number
  /** Resend a still-used entry after this long (default 10 s) so the backup's copy does not time out. */
  refreshMs?: number
  /** Messages per pacing step of a snapshot (default 64), one step per ms. */
  burst?: number
  /** Random source for the sender id and nonces (tests). */
  random?: (bytes: number) => Buffer
}

interface PeerState {
  address: string
  window: ReplayWindow
  /** Master side: the peer's nonce, from its last HELLO. */
  nonce: bigint | undefined
  inSync: boolean
  lastHello: number
  snapshotting: boolean
  lastSnapshotDone: number
}

/** What was last sent of an entry (the delta scan's memory). */
interface Sent {
  /** last_seen_ns when sent, in ms (a double: exact enough for a refresh decision). */
  lastSeenMs: number
  state: number
  realId: number
  flags: number
  /** The scan that last saw it; entries not seen in a scan are forgotten. */
  gen: number
}

const field = (name: string): number => {
  const f = Conn.fields.find((x) => x.name === name)
  if (!f) throw new XvsError('EABI', `struct xvs_conn has no field ${name}`)
  return f.offset
}
/** Offsets in struct xvs_conn of what the delta scan compares, read without decoding the whole value. */
const CONN_OFF = { lastSeen: field('last_seen_ns'), realId: field('real_id'), state: field('state'), flags: field('flags') }
/** Rows per step of a scan, between which the event loop runs. */
const SCAN_SLICE = 20_000
const msOfNs = (b: Buffer, off: number): number => (b.readUInt32LE(off + 4) * 4294967296 + b.readUInt32LE(off)) / 1e6

export function loadSyncKey(spec: ConnSyncSpec): Buffer {
  if (spec.key !== undefined) return Buffer.from(spec.key, 'utf8')
  if (spec.keyFile === undefined) throw new ConfigError('conn_sync needs key or key_file', { field: 'vrrp.conn_sync' })
  let text: string
  try {
    text = readFileSync(spec.keyFile, 'utf8').trim()
  } catch (e) {
    throw new ConfigError(`cannot read conn_sync key_file ${spec.keyFile} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, { field: 'vrrp.conn_sync.key_file' })
  }
  if (text.length < 16) throw new ConfigError(`conn_sync key_file ${spec.keyFile} holds fewer than 16 characters`, { field: 'vrrp.conn_sync.key_file', hint: 'openssl rand -hex 32 > the file' })
  return Buffer.from(text, 'utf8')
}

export class ConnSync implements ConnSyncPeer {
  readonly stats: ConnSyncStats
  private readonly spec: ConnSyncSpec
  private readonly table: ConnTable
  private readonly log: Logger
  private readonly clock: Clock
  private readonly channel: SyncChannel
  private readonly key: Buffer
  private readonly helloMs: number
  private readonly refreshMs: number
  private readonly burst: number
  private readonly random: (n: number) => Buffer
  private readonly senderId: number
  private seq: bigint
  private readonly peers = new Map<string, PeerState>()
  private role: 'master' | 'backup' | undefined
  private nonce = 0n
  private synced = false
  private snapshot: { id: number; parts: Set<number>; last: number | undefined } | undefined
  private snapshotSeq = 0
  private scanGen = 0
  private readonly sent = new Map<string, Sent>()
  private ids: IdMap | undefined
  private scanTimer: TimerHandle | undefined
  private helloTimer: TimerHandle | undefined
  private readonly inSyncListeners: Array<(s: boolean) => void> = []
  private closed = false

  constructor(opts: ConnSyncOptions) {
    this.spec = opts.spec
    this.table = opts.table
    this.log = (opts.log ?? silentLogger).child({ component: 'conn-sync' })
    this.clock = opts.clock ?? systemClock
    this.key = opts.key ?? loadSyncKey(opts.spec)
    this.helloMs = opts.helloMs ?? 1000
    this.refreshMs = opts.refreshMs ?? 10_000
    this.burst = opts.burst ?? 64
    this.random = opts.random ?? randomBytes
    this.senderId = this.random(4).readUInt32BE(0)
    this.seq = BigInt(Date.now()) * 1000n
    for (const p of opts.spec.peers) {
      const address = canonicalIp(p) ?? p
      this.peers.set(address, { address, window: new ReplayWindow(), nonce: undefined, inSync: false, lastHello: -Infinity, snapshotting: false, lastSnapshotDone: -Infinity })
    }
    const families = [...new Set([...this.peers.keys()].map((a) => (a.includes(':') ? 6 : 4) as Family))]
    this.channel = opts.channel ?? new UdpSyncChannel({ port: opts.spec.port, ...(opts.spec.source ? { source: opts.spec.source } : {}), families, log: this.log })
    this.channel.onMessage((m, from) => this.receive(m, from))
    const rejected = {} as ConnSyncStats['rejected']
    for (const r of ['short', 'magic', 'version', 'length', 'mac', 'entry', 'replay', 'unknown-peer', 'stale-nonce', 'role', 'type'] as const) rejected[r] = 0
    this.stats = { messagesSent: 0, messagesReceived: 0, entriesSent: 0, entriesInstalled: 0, unmapped: 0, snapshotsSent: 0, snapshotsCompleted: 0, rejected }
  }

  get inSync(): boolean {
    return this.synced
  }

  get currentRole(): 'master' | 'backup' | undefined {
    return this.role
  }

  onInSyncChange(cb: (inSync: boolean) => void): void {
    this.inSyncListeners.push(cb)
  }

  setRole(role: 'master' | 'backup'): void {
    if (this.closed || role === this.role) return
    this.role = role
    this.log.info({ role }, 'connection sync role')
    this.cancelTimers()
    this.setSynced(false)
    this.snapshot = undefined
    this.sent.clear()
    for (const p of this.peers.values()) {
      p.nonce = undefined
      p.inSync = false
      p.snapshotting = false
      p.lastSnapshotDone = -Infinity
    }
    if (role === 'backup') {
      this.nonce = this.random(8).readBigUInt64BE(0)
      this.hello()
    } else {
      this.scan(true)
    }
  }

  close(): void {
    if (this.closed) return
    this.closed = true
    this.cancelTimers()
    this.channel.close()
  }

  private cancelTimers(): void {
    if (this.scanTimer !== undefined) this.clock.clearTimeout(this.scanTimer)
    if (this.helloTimer !== undefined) this.clock.clearTimeout(this.helloTimer)
    this.scanTimer = this.helloTimer = undefined
  }

  private setSynced(v: boolean): void {
    if (v === this.synced) return
    this.synced = v
    for (const cb of [...this.inSyncListeners]) {
      try { cb(v) } catch (err) { this.log.error({ err }, 'in-sync listener failed') }
    }
  }

  private send(peer: PeerState, type: number, flags: number, nonce: bigint, entries: SyncEntry[], part = 0, snapshotId = 0): void {
    this.seq++
    const msg = encodeMessage({ type, flags, senderId: this.senderId, seq: this.seq, nonce, part, snapshotId, entries }, this.key)
    this.channel.send(msg, peer.address)
    this.stats.messagesSent++
    this.stats.entriesSent += entries.length
  }

  // --- backup side ---

  private hello(): void {
    if (this.closed || this.role !== 'backup') return
    for (const p of this.peers.values()) this.send(p, MsgType.HELLO, this.synced ? MSG_F_IN_SYNC : 0, this.nonce, [])
    this.helloTimer = this.clock.setTimeout(() => this.hello(), this.synced ? this.helloMs * 5 : this.helloMs)
  }

  private install(entries: readonly SyncEntry[]): void {
    if (entries.length === 0) return
    const now = this.table.nowNs()
    let ids = (this.ids ??= this.table.idMap())
    const out: RawEntry[] = []
    let refreshed = false
    for (const e of entries) {
      let raw = fromSyncEntry(e, ids, now)
      if (!raw && !refreshed) {
        // A service or real server added since the ids were read: read them again, once per batch.
        ids = this.ids = this.table.idMap()
        refreshed = true
        raw = fromSyncEntry(e, ids, now)
      }
      if (raw) out.push(raw)
      else this.stats.unmapped++
    }
    try {
      this.stats.entriesInstalled += this.table.install(out)
    } catch (err) {
      this.log.warn({ err, entries: out.length }, 'cannot install synced connections')
    }
  }

  private receiveAsBackup(p: PeerState, m: SyncMessage): void {
    if (m.nonce !== this.nonce) {
      this.stats.rejected['stale-nonce']++
      return
    }
    if (m.type === MsgType.SNAPSHOT) {
      if (!this.snapshot || this.snapshot.id !== m.snapshotId) this.snapshot = { id: m.snapshotId, parts: new Set(), last: undefined }
      this.snapshot.parts.add(m.part)
      if (m.flags & MSG_F_LAST) this.snapshot.last = m.part
      this.install(m.entries)
      const s = this.snapshot
      if (s.last !== undefined && s.parts.size === s.last + 1 && !this.synced) {
        this.stats.snapshotsCompleted++
        this.log.info({ from: p.address, parts: s.last + 1 }, 'connection table snapshot complete')
        this.setSynced(true)
      }
    } else if (m.type === MsgType.DELTA) {
      this.install(m.entries)
    } else {
      this.stats.rejected.role++
    }
  }

  // --- master side ---

  private receiveAsMaster(p: PeerState, m: SyncMessage): void {
    if (m.type !== MsgType.HELLO) {
      this.stats.rejected.role++
      return
    }
    const now = this.clock.now()
    if (p.nonce !== m.nonce) {
      p.nonce = m.nonce
      p.inSync = false
      p.lastSnapshotDone = -Infinity
    }
    p.inSync = (m.flags & MSG_F_IN_SYNC) !== 0
    p.lastHello = now
    // A backup gets the whole table once per term of this master (it may be in sync with a previous
    // one, or with this one before a restart, and miss what changed in between), and again while it
    // says it is not in sync: a lost part shows at the next HELLOs.
    if (p.snapshotting) return
    if (p.lastSnapshotDone === -Infinity || (!p.inSync && now - p.lastSnapshotDone >= 2 * this.helloMs)) this.sendSnapshot(p)
  }

  /**
   * The whole table to one backup, in parts, paced: `burst` messages per step, one step per ms. The
   * rows are copied at the start and named step by step, so a big table never blocks the loop (and
   * VRRP's timers) for long. Stale rows are left out; the part count is known only at the end, so the
   * last part carries MSG_F_LAST (possibly with no entries).
   */
  private sendSnapshot(p: PeerState): void {
    const nonce = p.nonce!
    let rows: RawEntry[]
    try {
      rows = this.table.entries().map((r) => ({ key: Buffer.from(r.key), value: Buffer.from(r.value) }))
    } catch (err) {
      this.log.warn({ err }, 'cannot read the connection table')
      return
    }
    const id = ++this.snapshotSeq
    p.snapshotting = true
    this.stats.snapshotsSent++
    this.log.info({ to: p.address, entries: rows.length }, 'sending connection table snapshot')
    let next = 0
    let part = 0
    const fresh = { done: false }
    const step = (): void => {
      if (this.closed || this.role !== 'master' || p.nonce !== nonce) {
        p.snapshotting = false
        return
      }
      const now = this.table.nowNs()
      let done = false
      for (let n = 0; n < this.burst && !done; n++) {
        const chunk: SyncEntry[] = []
        while (chunk.length < SYNC_MAX_ENTRIES && next < rows.length) {
          const e = this.named(rows[next++]!, now, fresh)
          if (e) chunk.push(e)
        }
        done = next >= rows.length
        this.send(p, MsgType.SNAPSHOT, done ? MSG_F_LAST : 0, nonce, chunk, part++, id)
      }
      if (!done) {
        this.clock.setTimeout(step, 1)
      } else {
        p.snapshotting = false
        p.lastSnapshotDone = this.clock.now()
      }
    }
    step()
  }

  /** toSyncEntry, reading the ids again (once per call of `fresh`) when a row names one not known. */
  private named(row: RawEntry, now: bigint, fresh: { done: boolean }): SyncEntry | undefined {
    let ids = (this.ids ??= this.table.idMap())
    let e = toSyncEntry(row, ids, now)
    if (!e && !fresh.done) {
      ids = this.ids = this.table.idMap()
      fresh.done = true
      e = toSyncEntry(row, ids, now)
    }
    return e
  }

  /**
   * One pass over the table: new, changed and refreshed entries go to every backup that said hello,
   * and are remembered as sent. The pass compares the few bytes that matter in place (no decoding),
   * only what goes out is named, and it yields to the event loop every SCAN_SLICE rows so that a big
   * table never holds up VRRP's timers. `baseline` (on becoming master) only remembers the table: the
   * backups get it whole, as a snapshot, when they say they are not in sync.
   */
  private scan(baseline = false): void {
    if (this.closed || this.role !== 'master') return
    let rows: RawEntry[]
    try {
      rows = this.table.entries()
    } catch (err) {
      this.log.warn({ err }, 'cannot read the connection table')
      this.scanTimer = this.clock.setTimeout(() => this.scan(), this.spec.interval * 1000)
      return
    }
    const gen = ++this.scanGen
    const fresh = { done: false }
    const o = CONN_OFF
    let i = 0
    const slice = (): void => {
      if (this.closed || this.role !== 'master' || gen !== this.scanGen) return
      const now = this.table.nowNs()
      const out: SyncEntry[] = []
      for (const end = Math.min(rows.length, i + SCAN_SLICE); i < end; i++) {
        const row = rows[i]!
        const v = row.value
        const lastSeenMs = msOfNs(v, o.lastSeen)
        const state = v[o.state]!
        const flags = v[o.flags]!
        const realId = v.readUInt32LE(o.realId)
        const k = row.key.toString('latin1')
        const before = this.sent.get(k)
        if (before && before.state === state && before.realId === realId && before.flags === flags && lastSeenMs - before.lastSeenMs < this.refreshMs) {
          before.gen = gen
          continue
        }
        if (!baseline) {
          const e = this.named(row, now, fresh)
          if (!e) continue
          out.push(e)
        }
        this.sent.set(k, { lastSeenMs, state, realId, flags, gen })
      }
      for (const p of this.peers.values()) {
        if (p.nonce === undefined) continue
        for (let j = 0; j < out.length; j += SYNC_MAX_ENTRIES) this.send(p, MsgType.DELTA, 0, p.nonce, out.slice(j, j + SYNC_MAX_ENTRIES))
      }
      if (i < rows.length) {
        this.scanTimer = this.clock.setTimeout(slice, 0)
        return
      }
      for (const [k, x] of this.sent) if (x.gen !== gen) this.sent.delete(k)
      this.scanTimer = this.clock.setTimeout(() => this.scan(), this.spec.interval * 1000)
    }
    slice()
  }

  // --- receive ---

  /** @internal What the channel hands up. */
  receive(buf: Buffer, from: string): void {
    if (this.closed) return
    this.stats.messagesReceived++
    const p = this.peers.get(canonicalIp(from) ?? from)
    if (!p) {
      this.stats.rejected['unknown-peer']++
      return
    }
    const d = decodeMessage(buf, this.key)
    if (!d.ok) {
      this.stats.rejected[d.reason]++
      this.log.debug({ from, reason: d.reason }, 'sync message rejected')
      return
    }
    const m = d.msg
    if (m.type !== MsgType.HELLO && m.type !== MsgType.SNAPSHOT && m.type !== MsgType.DELTA) {
      this.stats.rejected.type++
      return
    }
    if (!p.window.accept(m.senderId, m.seq)) {
      this.stats.rejected.replay++
      return
    }
    if (this.role === 'backup') this.receiveAsBackup(p, m)
    else if (this.role === 'master') this.receiveAsMaster(p, m)
    else this.stats.rejected.role++
  }

  status(): { role: string | undefined; inSync: boolean; peers: Array<{ address: string; inSync: boolean; lastHelloAgoMs: number | undefined }> } {
    const now = this.clock.now()
    return {
      role: this.role,
      inSync: this.synced,
      peers: [...this.peers.values()].map((p) => ({ address: p.address, inSync: p.inSync, lastHelloAgoMs: Number.isFinite(p.lastHello) ? now - p.lastHello : undefined })),
    }
  }
}
