// SPDX-License-Identifier: GPL-2.0-only
// Connections per real server: reconciling the data plane's counters (xvs_real_conns) with the
// connection table (xvs_conns).
//
// The data plane counts what it sees: +1 when it creates an entry, a move when a TCP entry enters or
// leaves ESTABLISHED, -1 when it deletes one. It cannot see an entry time out with no more packets,
// nor the LRU evict one, so its counts drift upwards until userspace recounts: reconcileConnCounts()
// deletes the entries the packet path would treat as absent (past their timeout, or of a service that
// is gone or replaced), counts the rest per real id, as IPVS counts them (ESTABLISHED flows active,
// other flows inactive, templates persistent), and writes the counts back; writeConnCounts() writes
// counts a caller made itself (the daemon's sweeper walks the table anyway).
//
// Expiry here follows the packet path exactly (bpf/include/xvs/conntrack.h and persist.h): a flow
// lives its state's timeout plus XVS_CONN_TOUCH_NS after last_seen; a persistence template lives
// persist_timeout_s after its last use, or while a connection it controls lives (ctl_until_s).
//
// The rewrite races with the packet path, which keeps counting while we do: a count can be off by the
// connections that came or went during the walk, until the next reconcile. Counts are signed in the
// map so that a decrement racing a rewrite goes briefly negative instead of wrapping; the schedulers
// read a negative count as 0.
import {
  Conn, ConnFlags, ConnKey, ConnKind, ConnState, Proto, Real, RealConns, Service, ServiceKey, Settings, Timeouts, decodeGroupRanges,
  groupServiceKey, type RealConns as RealConnsValue,
} from './abi'
import type { Dataplane } from './loader'

/** A real server's connections, as ipvsadm shows them (ActiveConn, InActConn, and templates). */
export interface RealCounts { active: number; inactive: number; persistent: number }

/** Seconds; 0 = the default (as xvs_settings holds them). */
export interface ConnTimeouts { tcp_timeout_s: number; tcp_fin_timeout_s: number; udp_timeout_s: number }

const NS = 1_000_000_000n
/** XVS_CONN_TOUCH_NS: last_seen lags a packet by up to this much, so expiry allows it. */
const TOUCH_SLACK_NS = NS

/** xvs_conn_timeout_s(). */
export function flowTimeoutS(proto: number, state: number, t: ConnTimeouts): number {
  if (proto !== Proto.TCP) return t.udp_timeout_s || Timeouts.UDP_S
  switch (state) {
    case ConnState.ESTABLISHED: return t.tcp_timeout_s || Timeouts.TCP_S
    case ConnState.FIN_WAIT: return t.tcp_fin_timeout_s || Timeouts.TCP_FIN_S
    case ConnState.SYN_SENT: return Timeouts.SYN_SENT_S
    case ConnState.SYN_RECV: return Timeouts.SYN_RECV_S
    case ConnState.TIME_WAIT: return Timeouts.TIME_WAIT_S
    case ConnState.CLOSE: return Timeouts.CLOSE_S
    case ConnState.CLOSE_WAIT: return Timeouts.CLOSE_WAIT_S
    case ConnState.LAST_ACK: return Timeouts.LAST_ACK_S
    case ConnState.LISTEN: return Timeouts.LISTEN_S
    case ConnState.SYNACK: return Timeouts.SYNACK_S
    default: return Timeouts.NONE_S
  }
}

/** xvs_conn_expired(): idle longer than the timeout and the touch slack. Entries newer than nowNs are not. */
export function flowExpired(lastSeenNs: bigint, proto: number, state: number, t: ConnTimeouts, nowNs: bigint): boolean {
  return nowNs > lastSeenNs && nowNs - lastSeenNs > BigInt(flowTimeoutS(proto, state, t)) * NS + TOUCH_SLACK_NS
}

/** !xvs_tmpl_live() for a template of a service with this persistence timeout. */
export function templateExpired(c: { last_seen_ns: bigint; ctl_until_s?: number }, persistTimeoutS: number, nowNs: bigint): boolean {
  if (nowNs <= c.last_seen_ns || nowNs - c.last_seen_ns <= BigInt(persistTimeoutS) * NS) return false
  return nowNs / NS > BigInt(c.ctl_until_s ?? 0)
}

const u32 = (n: number): Buffer => { const b = Buffer.alloc(4); b.writeUInt32LE(n); return b }
const hex = (b: Buffer): string => b.toString('hex')

/** xvs_real_conns of every real id with an entry or a non-zero count. */
export function readConnCounters(dp: Dataplane): Map<number, RealConnsValue> {
  const out = new Map<number, RealConnsValue>()
  for (const { key, value } of dp.maps.realConns.nonZeroEntries()) {
    out.set(key.readUInt32LE(), RealConns.decode(value))
  }
  return out
}

/** The service id a connection entry belongs to now (as the packet path would find it), or undefined. */
function serviceResolver(dp: Dataplane): (key: Buffer) => number | undefined {
  const ids = new Map<string, number>()
  for (const { key, value } of dp.maps.services.entries()) ids.set(hex(key), Service.decode(value).id)
  const ranges = new Map<string, ReturnType<typeof decodeGroupRanges>>()
  for (const { key, value } of dp.maps.groupRanges.entries()) ranges.set(hex(key), decodeGroupRanges(value))
  const [K_VADDR, K_VPORT, K_PROTO, K_FAMILY, K_KIND] = (['vaddr', 'vport', 'proto', 'family', 'kind'] as const).map((f) => ConnKey.offsetOf(f))
  const [S_PORT, S_PROTO, S_FAMILY] = (['port', 'proto', 'family'] as const).map((f) => ServiceKey.offsetOf(f))
  return (key) => {
    const sk = Buffer.alloc(ServiceKey.size)
    key.copy(sk, 0, K_VADDR, K_VADDR + 16)
    key.copy(sk, S_PORT, K_VPORT, K_VPORT + 2)
    sk[S_PROTO] = key[K_PROTO]!
    sk[S_FAMILY] = key[K_FAMILY]!
    // A template's key holds its service's key (abi.h, enum xvs_conn_kind).
    if (key[K_KIND] === ConnKind.TEMPLATE) return ids.get(hex(sk))
    const exact = ids.get(hex(sk))
    if (exact !== undefined) return exact
    sk.writeUInt16BE(0, S_PORT)
    const wildcard = ids.get(hex(sk))
    if (wildcard !== undefined) return wildcard
    // xvs_grp_ranges key: addr, proto, family (the first bytes of a service key without the port).
    const gk = Buffer.alloc(20)
    key.copy(gk, 0, K_VADDR, K_VADDR + 16)
    gk[16] = key[K_PROTO]!
    gk[17] = key[K_FAMILY]!
    const port = key.readUInt16BE(K_VPORT)
    const r = ranges.get(hex(gk))?.find((x) => x.first <= port && port <= x.last)
    return r ? ids.get(hex(groupServiceKey(r.group_id, key[K_FAMILY]!))) : undefined
  }
}

export interface CountResult {
  /** Live entries per real id. */
  counts: Map<number, RealCounts>
  /** Entries read. */
  scanned: number
  /** Entries the packet path treats as absent (past their timeout, or of a service gone or replaced), as read. */
  dead: { key: Buffer; value: Buffer }[]
}

/** Count xvs_conns per real id and state, as IPVS counts, leaving out what the packet path treats as absent. */
export function countConns(dp: Dataplane, opts: { nowNs?: bigint } = {}): CountResult {
  const nowNs = opts.nowNs ?? process.hrtime.bigint() // CLOCK_MONOTONIC, as bpf_ktime_get_ns
  const set = Settings.decode(dp.maps.settings.lookup(u32(0)) ?? Buffer.alloc(Settings.size))
  const persistTimeout = new Map<number, number>()
  for (const { value } of dp.maps.services.entries()) {
    const s = Service.decode(value)
    persistTimeout.set(s.id, s.persist_timeout_s)
  }
  const serviceOf = serviceResolver(dp)
  const out: CountResult = { counts: new Map(), scanned: 0, dead: [] }
  for (const { key, value } of dp.maps.conns.lookupBatch(8192)) {
    out.scanned++
    const k = ConnKey.decode(key)
    const c = Conn.decode(value)
    const template = (c.flags & ConnFlags.TEMPLATE) !== 0
    const expired = template
      ? templateExpired(c, persistTimeout.get(c.service_id) ?? 0, nowNs)
      : flowExpired(c.last_seen_ns, k.proto, c.state, set, nowNs)
    // An entry made after nowNs was sampled is judged next time.
    if (c.created_ns < nowNs && (expired || serviceOf(key) !== c.service_id)) {
      out.dead.push({ key, value })
      continue
    }
    let n = out.counts.get(c.real_id)
    if (!n) out.counts.set(c.real_id, (n = { active: 0, inactive: 0, persistent: 0 }))
    if (template) n.persistent++
    else if (k.proto === Proto.TCP && c.state === ConnState.ESTABLISHED) n.active++
    else n.inactive++
  }
  return out
}

/**
 * Whether a server stays overloaded after its count is rewritten: the rule IPVS applies when a
 * connection goes (ip_vs_unbind_dest), since a recount only ever removes connections the data plane
 * did not see go. Setting the overload is left to the data plane (IPVS does it when one comes).
 */
function stillOverloaded(c: RealConnsValue, upper: number, lower: number): number {
  if (!c.overload_upper) return 0
  const total = Math.max(c.active, 0) + Math.max(c.inactive, 0)
  if (lower) return total < lower ? 0 : c.overload_upper
  if (upper) return total * 4 < upper * 3 ? 0 : c.overload_upper
  return 0
}

export interface WriteResult {
  /** Real ids whose counters were rewritten. */
  fixed: number[]
}

/**
 * Make xvs_real_conns hold `counts` (ids not in it: no connections) for every real server entry and
 * every id with a non-zero count. Each entry is read again just before it is written, and what the
 * packet path added since `since` (default: that read) is kept.
 */
export function writeConnCounts(dp: Dataplane, counts: ReadonlyMap<number, RealCounts>,
  opts: { since?: ReadonlyMap<number, RealConnsValue> } = {}): WriteResult {
  const thresholds = new Map<number, { upper: number; lower: number }>()
  for (const { key, value } of dp.maps.reals.nonZeroEntries()) {
    const id = key.readUInt32LE()
    if (id === 0) continue
    const r = Real.decode(value)
    thresholds.set(id, { upper: r.upper_threshold, lower: r.lower_threshold })
  }
  const ids = new Set<number>([...thresholds.keys(), ...counts.keys()])
  const current = readConnCounters(dp)
  for (const id of current.keys()) ids.add(id)
  const fixed: number[] = []
  for (const id of ids) {
    if (id === 0) continue
    const raw = dp.maps.realConns.lookup(u32(id))
    if (raw === null) continue // beyond max_entries
    const now = RealConns.decode(raw)
    const was = opts.since?.get(id) ?? now
    const want = counts.get(id) ?? { active: 0, inactive: 0, persistent: 0 }
    const next: RealConnsValue = {
      active: want.active + (now.active - was.active),
      inactive: want.inactive + (now.inactive - was.inactive),
      persistent: want.persistent + (now.persistent - was.persistent),
      overload_upper: now.overload_upper,
    }
    const t = thresholds.get(id) ?? { upper: 0, lower: 0 }
    next.overload_upper = stillOverloaded(next, t.upper, t.lower)
    if (next.active === now.active && next.inactive === now.inactive && next.persistent === now.persistent &&
        next.overload_upper === now.overload_upper) continue
    dp.maps.realConns.update(u32(id), RealConns.encode(next))
    fixed.push(id)
  }
  return { fixed }
}

export interface ReconcileResult extends WriteResult {
  counts: Map<number, RealCounts>
  scanned: number
  /** Entries deleted as absent (expired, or of a service gone or replaced). */
  deleted: number
}

/**
 * Recount and rewrite the data plane's connection counters: delete the entries the packet path
 * treats as absent (each read again first: one the packet path refreshed meanwhile is kept), count
 * the rest per real id, write the counts (writeConnCounts).
 */
export function reconcileConnCounts(dp: Dataplane, opts: { nowNs?: bigint } = {}): ReconcileResult {
  const since = readConnCounters(dp)
  const r = countConns(dp, opts)
  let deleted = 0
  for (const { key, value } of r.dead) {
    // Changed since the walk (a packet refreshed it, or a new flow took its ports): not ours to judge.
    const now = dp.maps.conns.lookup(key)
    if (now === null || !now.equals(value)) continue
    if (dp.maps.conns.delete(key)) deleted++
  }
  const w = writeConnCounts(dp, r.counts, { since })
  return { ...w, counts: r.counts, scanned: r.scanned, deleted }
}
