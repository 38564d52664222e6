// SPDX-License-Identifier: GPL-2.0-only
// The reader: what a running data plane does now, read back from its maps through the ABI codecs.
// readModel() turns xvs_services, xvs_reals and xvs_settings into a Model, which is what `xvs save`
// and `xvsadm -S` print and what commands that change one thing (`xvsadm -a ...`) start from; the
// other functions read statistics, counters and the connection table for listings. Nothing here
// writes a map.
import { parseIp, prefixToMask } from '../model/addr'
import { defaultSettings, incompleteNote, portService, realServer, serviceGroup } from '../model/defaults'
import type { Method, Model, RealServer, SchedFlag, Scheduler, Service as ModelService } from '../model/types'
import {
  Conn, ConnFlags, ConnKey, ConnState, Family, FwdMethod, Limits, Proto, Real, RealFlags, Sched, Service, ServiceFlags, ServiceKey,
  Settings, Stats, Timeouts, statCounterNames,
  type Conn as ConnValue, type ConnKey as ConnKeyValue, type Real as RealValue, type Service as ServiceValue,
  type ServiceKey as ServiceKeyValue, type Settings as SettingsValue,
} from './abi'
import type { BpfMap } from '../bpf'
import { decodeAddr, encodeAddr } from './codec'
import { flowTimeoutS } from './conncount'
import type { Dataplane } from './loader'

export interface ServiceEntry { key: ServiceKeyValue; value: ServiceValue }
/** `raw`: the entry's bytes as read (readReals sets it; the writer compares them with what it would write). */
export interface RealEntry { id: number; value: RealValue; raw?: Buffer }
export interface ConnEntry { key: ConnKeyValue; value: ConnValue }

/** Sums of struct xvs_stats over CPUs. */
export interface StatTotals { conns: number; packetsIn: number; bytesIn: number; packetsOut: number; bytesOut: number }

export const ZERO_STATS: Readonly<StatTotals> = Object.freeze({ conns: 0, packetsIn: 0, bytesIn: 0, packetsOut: 0, bytesOut: 0 })

const u32 = (n: number): Buffer => { const b = Buffer.alloc(4); b.writeUInt32LE(n); return b }

/** Enum value -> lower-case name ("wrr", "tun", "established"). */
function nameOf(table: Readonly<Record<string, number>>, v: number): string | undefined {
  for (const [k, x] of Object.entries(table)) if (x === v) return k.toLowerCase()
  return undefined
}

export const schedName = (v: number): string => nameOf(Sched, v) ?? `sched#${v}`
export const methodName = (v: number): string => nameOf(FwdMethod, v) ?? `method#${v}`
/** IPVS spells connection states in capitals ("ESTABLISHED"); UDP flows are "UDP". */
export const stateName = (v: number): string => (nameOf(ConnState, v) ?? `state#${v}`).toUpperCase()

/** Names of the bits set in `flags` ("quiesced,removed"), or "-". */
export function flagNames(table: Readonly<Record<string, number>>, flags: number): string {
  const out = Object.entries(table).filter(([, bit]) => flags & bit).map(([k]) => k.toLowerCase())
  const known = Object.values(table).reduce((a, b) => a | b, 0)
  if (flags & ~known) out.push(`0x${(flags & ~known).toString(16)}`)
  return out.length ? out.join(',') : '-'
}

export function protoName(proto: number): 'tcp' | 'udp' | string {
  return proto === Proto.TCP ? 'tcp' : proto === Proto.UDP ? 'udp' : `proto#${proto}`
}

/** Every service entry, in id order (the order they were created in). */
export function readServices(dp: Dataplane): ServiceEntry[] {
  const out: ServiceEntry[] = []
  for (const { key, value } of dp.maps.services.lookupBatch(1024)) out.push({ key: ServiceKey.decode(key), value: Service.decode(value) })
  return out.sort((a, b) => a.value.id - b.value.id)
}

/** Real server entries in use (written, not marked removed unless `removed`), in id order. */
export function readReals(dp: Dataplane, opts: { removed?: boolean } = {}): RealEntry[] {
  const out: RealEntry[] = []
  for (const { key, value } of dp.maps.reals.nonZeroEntries()) {
    const id = key.readUInt32LE()
    if (id === 0) continue
    const v = Real.decode(value)
    if (v.flags & RealFlags.REMOVED && !opts.removed) continue
    out.push({ id, value: v, raw: value })
  }
  return out.sort((a, b) => a.id - b.id)
}

/**
 * Every xvs_reals entry written (removed ones included), without reading all XVS_MAX_REALS of them
 * when it can: from id 1 up, in chunks of `chunk` ids, until a chunk holds none and every service's
 * num_reals live entries have been met. The writer hands out the lowest id never used (IdPool) and
 * never clears an entry, so the ids in use are 1..k and the walk ends one chunk past k; should the
 * services count more live servers than were met by then, the walk goes on to the end.
 */
export function readRealsInUse(dp: Dataplane, chunk = 1024): RealEntry[] {
  const want: [number, number][] = readServices(dp).map((e) => [e.value.id, e.value.num_reals])
  const live = new Map<number, number>()
  const out: RealEntry[] = []
  for (const entries of dp.maps.reals.nonZeroChunks(chunk)) {
    for (const { key, value } of entries) {
      const id = key.readUInt32LE()
      if (id === 0) continue
      const v = Real.decode(value)
      out.push({ id, value: v, raw: value })
      if (!(v.flags & RealFlags.REMOVED)) live.set(v.service_id, (live.get(v.service_id) ?? 0) + 1)
    }
    if (entries.length === 0 && want.every(([id, n]) => (live.get(id) ?? 0) >= n)) break
  }
  return out
}

export function readSettings(dp: Dataplane): SettingsValue {
  return Settings.decode(dp.maps.settings.lookup(u32(0)) ?? Buffer.alloc(Settings.size))
}

/** Timeouts in effect: a zero field means the documented default. */
export function effectiveTimeouts(s: SettingsValue): { tcp: number; tcpfin: number; udp: number } {
  return { tcp: s.tcp_timeout_s || Timeouts.TCP_S, tcpfin: s.tcp_fin_timeout_s || Timeouts.TCP_FIN_S, udp: s.udp_timeout_s || Timeouts.UDP_S }
}

function schedFlagsOf(scheduler: string, flags: number): SchedFlag[] {
  if (scheduler !== 'sh' && scheduler !== 'mh') return []
  const out: SchedFlag[] = []
  if (flags & ServiceFlags.SCHED_FALLBACK) out.push(`${scheduler}-fallback` as SchedFlag)
  if (flags & ServiceFlags.HASH_SRC_PORT) out.push(`${scheduler}-port` as SchedFlag)
  return out.sort()
}

/** persist_mask (network order, the VIP's family) as the model writes it: a dotted mask, or a prefix length. */
function netmaskOf(mask: Buffer, family: number): string | number {
  const bytes = family === Family.INET ? mask.subarray(0, 4) : mask
  let prefix = 0
  for (const b of bytes) for (let bit = 7; bit >= 0 && (b >> bit) & 1; bit--) prefix++
  // The writer writes the whole mask (all ones for the default /32): zero really is 0.0.0.0, every
  // client sharing one template.
  if (family === Family.INET) return prefixToMask(prefix)
  return prefix
}

const canonical = (address: string): string => parseIp(address)?.address ?? address

/** Whether this ABI keeps real servers' connection thresholds (ipvsadm -x/-y) in xvs_real. */
export const ABI_HAS_THRESHOLDS = Real.fields.some((f) => f.name === 'upper_threshold')

export function modelRealServer(r: RealValue): RealServer {
  // Thresholds (ipvsadm -x/-y) are read where the ABI has them.
  const t = r as RealValue & { upper_threshold?: number; lower_threshold?: number }
  return realServer(canonical(r.addr), r.port, {
    weight: r.weight, method: methodName(r.method) as Method, upperThreshold: t.upper_threshold ?? 0, lowerThreshold: t.lower_threshold ?? 0,
  })
}

/** Real servers by the id of the service they belong to, each list in id order. */
export function realsByService(reals: readonly RealEntry[]): Map<number, RealEntry[]> {
  const out = new Map<number, RealEntry[]>()
  for (const r of reals) {
    const list = out.get(r.value.service_id)
    if (list) list.push(r)
    else out.set(r.value.service_id, [r])
  }
  return out
}

/**
 * The model service of an entry; `reals` are its own (realsByService) or all of them. A service
 * group's entry (protocol 0, its id in the address: abi.h) comes back with its id and family; the
 * port ranges it matches live in another map and are not read back here, so it carries the
 * "incomplete" note.
 */
export function modelService(e: ServiceEntry, reals: readonly RealEntry[]): ModelService {
  const scheduler = schedName(e.value.sched) as Scheduler
  const persistence = e.value.persist_timeout_s > 0 || e.value.flags & ServiceFlags.PERSISTENT
    ? { timeout: e.value.persist_timeout_s, netmask: netmaskOf(e.value.persist_mask, e.key.family) }
    : undefined
  const o = {
    scheduler,
    schedFlags: schedFlagsOf(scheduler, e.value.flags),
    ...(scheduler === 'mh' ? { mhTableSize: e.value.table_size } : {}),
    ...(persistence ? { persistence } : {}),
    realServers: reals.filter((r) => r.value.service_id === e.value.id).map((r) => modelRealServer(r.value)),
  }
  if (e.key.proto === 0) {
    const id = encodeAddr(e.key.addr).bytes.readUInt32BE(0)
    return serviceGroup(id, e.key.family === Family.INET6 ? 6 : 4, [], { ...o, incomplete: incompleteNote(id) })
  }
  return portService(protoName(e.key.proto) as 'tcp' | 'udp', canonical(e.key.addr), e.key.port, o)
}

/**
 * The model of what the data plane runs: services (in creation order) with their real servers,
 * timeouts, expire_nodest_conn and the tunnel sources, the connection table's size and the
 * interfaces the program is attached to, the fullnat local addresses. What the maps do not hold (names, health checks,
 * thresholds, sorry servers, quorum) is absent or at its default.
 */
export function readModel(dp: Dataplane, opts: { interfaces?: string[]; reals?: readonly RealEntry[] } = {}): Model {
  const settings = readSettings(dp)
  // `reals`: what readRealsInUse(dp) just returned, when the caller has it already
  const reals = opts.reals ? opts.reals.filter((r) => !(r.value.flags & RealFlags.REMOVED)) : readReals(dp)
  return {
    settings: {
      ...defaultSettings(),
      timeouts: effectiveTimeouts(settings),
      expireNodestConn: settings.expire_nodest_conn !== 0,
      connTableSize: dp.maps.conns.maxEntries,
      interfaces: opts.interfaces ?? dp.attachments().map((a) => a.ifname).sort(),
      tunnelSources: [settings.tun_src_v4, settings.tun_src_v6].filter((a) => a !== '').map(canonical),
      localAddresses: readLocalAddresses(dp, settings),
    },
    services: ((byService) => readServices(dp).map((e) => modelService(e, byService.get(e.value.id) ?? [])))(realsByService(reals)),
  }
}

/**
 * The part of `desired` the maps can hold, with the settings the data plane keeps on its own
 * (interfaces, connection table size) taken from `current`: comparing this with readModel() shows
 * what applying `desired` would change.
 */
export function heldPart(desired: Model, current: Model): Model {
  const server = (r: RealServer): RealServer => realServer(r.address, r.port, {
    weight: r.weight, method: r.method, ...(ABI_HAS_THRESHOLDS ? { upperThreshold: r.upperThreshold, lowerThreshold: r.lowerThreshold } : {}),
  })
  const service = (s: ModelService): ModelService => {
    const { name, sorryServer, quorum, ...rest } = s
    return { ...rest, realServers: s.realServers.map(server) }
  }
  return {
    settings: {
      ...desired.settings,
      interfaces: current.settings.interfaces,
      connTableSize: current.settings.connTableSize,
    },
    services: desired.services.map(service),
  }
}

/** Every real server's address (16 bytes, as xvs_real holds it) and port (host order), by real id. */
export function readRealAddrs(dp: Dataplane): Map<number, { addr: Buffer; port: number }> {
  const out = new Map<number, { addr: Buffer; port: number }>()
  const addrOff = Real.offsetOf('addr')
  const portOff = Real.offsetOf('port')
  for (const { key, value } of dp.maps.reals.nonZeroEntries()) {
    out.set(key.readUInt32LE(), { addr: Buffer.from(value.subarray(addrOff, addrOff + 16)), port: value.readUInt16BE(portOff) })
  }
  return out
}

/** The fullnat local addresses (xvs_laddrs), IPv4 ones first, as many as the settings say are in use. */
function readLocalAddresses(dp: Dataplane, settings: SettingsValue): string[] {
  const out: string[] = []
  const read = (first: number, n: number, family: number): void => {
    for (let i = 0; i < Math.min(n, Limits.LADDRS_PER_FAMILY); i++) {
      const v = dp.maps.laddrs.lookup(u32(first + i))
      if (v) out.push(canonical(decodeAddr(v, family)))
    }
  }
  read(0, settings.laddrs_v4 ?? 0, Family.INET)
  read(Limits.LADDRS_PER_FAMILY, settings.laddrs_v6 ?? 0, Family.INET6)
  return out
}

function sumStats(map: BpfMap, value: Buffer): StatTotals {
  const t = { conns: 0n, packets_in: 0n, bytes_in: 0n, packets_out: 0n, bytes_out: 0n }
  for (const slot of map.splitSlots(value)) {
    const s = Stats.decode(slot)
    t.conns += s.conns; t.packets_in += s.packets_in; t.bytes_in += s.bytes_in
    t.packets_out += s.packets_out; t.bytes_out += s.bytes_out
  }
  return {
    conns: Number(t.conns), packetsIn: Number(t.packets_in), bytesIn: Number(t.bytes_in),
    packetsOut: Number(t.packets_out), bytesOut: Number(t.bytes_out),
  }
}

/** Statistics of every id of xvs_svc_stats or xvs_real_stats, summed over CPUs (ids with all zeroes left out). */
export function readStats(map: BpfMap): Map<number, StatTotals> {
  const out = new Map<number, StatTotals>()
  for (const { key, value } of map.nonZeroEntries()) out.set(key.readUInt32LE(), sumStats(map, value))
  return out
}

/** Zero the statistics of these ids (every id when omitted). */
export function zeroStats(map: BpfMap, ids?: Iterable<number>): void {
  const zero = Buffer.alloc(map.valueBytes)
  if (ids === undefined) {
    const n = map.maxEntries
    const keys = Buffer.alloc(4 * n)
    for (let i = 0; i < n; i++) keys.writeUInt32LE(i, 4 * i)
    map.updateBatchRaw(keys, Buffer.alloc(map.valueBytes * n), n)
    return
  }
  for (const id of ids) map.update(u32(id), zero)
}

/** The global counters (enum xvs_stat, names from the object's BTF), summed over CPUs. */
export function readCounters(dp: Dataplane): Record<string, number> {
  const names = statCounterNames()
  const out: Record<string, number> = {}
  for (const n of names) out[n] = 0
  for (const { key, value } of dp.maps.counters.lookupBatch(256)) {
    const i = key.readUInt32LE()
    let sum = 0n
    for (const slot of dp.maps.counters.splitSlots(value)) sum += slot.readBigUInt64LE(0)
    out[names[i] ?? `#${i}`] = Number(sum)
  }
  return out
}

export function readConns(dp: Dataplane): ConnEntry[] {
  return dp.maps.conns.lookupBatch(8192).map(({ key, value }) => ({ key: ConnKey.decode(key), value: Conn.decode(value) }))
}

/** Seconds a connection in `state` lives after its last packet (IPVS's per-state timeouts). */
export function stateTimeout(state: number, timeouts: { tcp: number; tcpfin: number; udp: number }): number {
  // One table of per-state timeouts: the packet path's, as conncount.ts mirrors it.
  return flowTimeoutS(state === ConnState.UDP ? Proto.UDP : Proto.TCP, state,
    { tcp_timeout_s: timeouts.tcp, tcp_fin_timeout_s: timeouts.tcpfin, udp_timeout_s: timeouts.udp })
}

/**
 * Seconds until `c` expires at monotonic time `nowNs` (bpf_ktime_get_ns's clock); <= 0: expired.
 * A persistence template lives `persistTimeoutS` (its service's) after its last use, and at least
 * as long as a connection it controls (ctl_until_s, where the ABI has it).
 */
export function secondsLeft(c: ConnValue, nowNs: bigint, timeouts: { tcp: number; tcpfin: number; udp: number }, persistTimeoutS = 0): number {
  const idle = Number(nowNs - c.last_seen_ns) / 1e9
  if (c.flags & ConnFlags.TEMPLATE) {
    const ctl = (c as ConnValue & { ctl_until_s?: number }).ctl_until_s ?? 0
    return Math.max(persistTimeoutS - idle, ctl - Number(nowNs) / 1e9)
  }
  return stateTimeout(c.state, timeouts) - idle
}

export interface ConnCounts { active: number; inactive: number; persistent: number }

/**
 * Connections per real id, as IPVS counts them: ESTABLISHED ones are active, every other state
 * (UDP flows included) inactive; persistence templates are counted apart. Expired entries, and
 * entries of a real server since moved to another service, are not counted.
 */
export function countConns(conns: readonly ConnEntry[], reals: readonly RealEntry[], nowNs: bigint,
  timeouts: { tcp: number; tcpfin: number; udp: number }, persistTimeouts: ReadonlyMap<number, number> = new Map()): Map<number, ConnCounts> {
  const serviceOf = new Map(reals.map((r) => [r.id, r.value.service_id]))
  const out = new Map<number, ConnCounts>()
  for (const { value: c } of conns) {
    if (serviceOf.get(c.real_id) !== c.service_id || secondsLeft(c, nowNs, timeouts, persistTimeouts.get(c.service_id)) <= 0) continue
    let n = out.get(c.real_id)
    if (!n) out.set(c.real_id, (n = { active: 0, inactive: 0, persistent: 0 }))
    if (c.flags & ConnFlags.TEMPLATE) n.persistent++
    else if (c.state === ConnState.ESTABLISHED) n.active++
    else n.inactive++
  }
  return out
}
