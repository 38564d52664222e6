// SPDX-License-Identifier: GPL-2.0-only
// The writer: make the maps hold a model's services and real servers. It reads what the maps hold
// now (the kernel's view, as ipvsadm reads IPVS's), computes the difference, resolves every real
// server's next hop before touching anything, then writes in an order that is safe for packets in
// flight: real servers first, then each changed service's table into its inactive half, then one
// service-entry write that flips to it. Removed real servers are marked (their flows drop or are
// rescheduled per expire_nodest_conn), removed services vanish from the lookup.
//
// Service groups (ipvsadm -f) are one xvs_services entry under the group's key (groupServiceKey) plus
// their port ranges in xvs_grp_ranges, one entry per (VIP, protocol): written after the services they
// lead to, and removed before them.
import { buildDhTable, buildMaglev, buildShTable, buildWrrSequence, MAGLEV_DEFAULT_SIZE } from '../sched'
import type { Model, RealServer, Service as ModelService } from '../model/types'
import {
  encodeGroupRanges, Family, FwdMethod, GroupKey, Limits, LocalityKey, persistMask, Proto, Real, RealConns, RealFlags, Sched,
  Service, ServiceFlags, ServiceKey, Settings, groupServiceKey,
  type PortRange, type Real as RealValue, type Service as ServiceValue, type ServiceKey as ServiceKeyValue,
} from './abi'
import type { BpfMap } from '../bpf'
import type { Dataplane } from './loader'
import fs from 'node:fs'
import { readRealsInUse, type RealEntry } from './reader'
import { createTable, installTables, removeTables } from './tables'
import { resolveNextHops, ResolveError, type NextHop, type ResolveOptions } from './neigh'
import { parseIp } from '../model/addr'
import { ConfigError } from '../errors'
import { encodeAddr } from './codec'
import { silentLogger, type Logger } from '../log'

const METHOD_CODE = { dr: FwdMethod.DR, tun: FwdMethod.TUN, nat: FwdMethod.NAT, fullnat: FwdMethod.FULLNAT } as const
const isNat = (m: string): boolean => m === 'nat' || m === 'fullnat'

export interface ApplyResult {
  services: { added: number; removed: number; changed: number; unchanged: number }
  reals: { added: number; removed: number; changed: number }
  tablesWritten: number
  slotsWritten: number
}

export interface WriterOptions {
  log?: Logger
  /**
   * Next-hop resolution, one address at a time; default: the kernel's routing and neighbour tables,
   * every address that needs it at once (resolveNextHops in neigh.ts).
   */
  resolve?: (address: string, opts: ResolveOptions) => NextHop
  /**
   * Keep the next hop that the maps hold for a real server whose address and method are unchanged
   * (any live entry of that address and method, in any service) instead of resolving it again; only
   * new addresses, changed methods and tunnels losing their configured source are resolved. Default
   * true. The daemon turns it off: its NextHopCache decides when a hop is looked up again.
   */
  reuseHops?: boolean
  /**
   * xvs_reals as the caller has just read it (reader.readRealsInUse, removed entries included), so
   * that an apply reads the array once.
   */
  reals?: readonly RealEntry[]
}

interface CurrentService { key: ServiceKeyValue; keyBuf: Buffer; value: ServiceValue }
interface CurrentReal { id: number; value: RealValue; buf: Buffer }
/** What an xvs_reals entry needs of a next hop. */
interface Hop { ifindex: number; mtu: number; dstMac: string; srcMac: string; source?: string | undefined }

const hex = (b: Buffer): string => b.toString('hex')
/** Offset of xvs_real.service_id (a __u32, host order). */
const REAL_SERVICE_ID = Real.offsetOf('service_id')
const canon = (a: string): string => parseIp(a)?.address ?? a
const realKey = (svcId: number, addr: string, port: number): string => `${svcId}|${addr}|${port}`
const u32 = (n: number): Buffer => { const b = Buffer.alloc(4); b.writeUInt32LE(n); return b }

function where(s: ModelService): string {
  return s.kind === 'group' ? `service group ${s.id}` : `${s.kind} ${s.vip.includes(':') ? `[${s.vip}]` : s.vip}:${s.port}`
}

const isV6 = (s: ModelService): boolean => (s.kind === 'group' ? s.family === 6 : s.vip.includes(':'))

/** Refuse what the data plane cannot run yet, naming the service and what to use instead. */
function checkSupported(model: Model): ModelService[] {
  const out: ModelService[] = []
  for (const s of model.services) {
    if (s.kind === 'group' && (s.incomplete !== undefined || s.matches.length === 0))
      throw new ConfigError(`${where(s)}: the group does not say what it matches${s.incomplete ? ` (${s.incomplete})` : ''}`, { field: 'matches', hint: 'give its (vip, protocol, ports) matches' })
    for (const r of s.realServers) {
      if (!(r.method in METHOD_CODE))
        throw new ConfigError(`${where(s)}: real server ${r.address}: unknown method ${r.method}`, { field: 'method', hint: 'use dr (-g), tun (-i), nat (-m) or fullnat' })
      if (isNat(r.method) && r.address.includes(':') !== isV6(s))
        throw new ConfigError(`${where(s)}: real server ${r.address}: ${r.method} needs the real server in the VIP's address family`, { field: 'address', hint: 'use tun (-i) across families' })
      if (r.method === 'fullnat' && !model.settings.localAddresses.some((a) => a.includes(':') === r.address.includes(':')))
        throw new ConfigError(`${where(s)}: real server ${r.address}: fullnat needs an IPv${r.address.includes(':') ? 6 : 4} local address`, { field: 'localAddresses', hint: 'add one to settings.localAddresses (ipvsadm --add-laddr)' })
      if (s.kind !== 'group' && r.method === 'dr' && r.port !== s.port && s.port !== 0)
        throw new ConfigError(`${where(s)}: real server ${r.address}:${r.port}: dr cannot change the port`, { field: 'port', hint: `use port ${s.port}, or nat (-m) for port mapping` })
      if (r.method === 'dr' && r.address.includes(':') !== isV6(s))
        throw new ConfigError(`${where(s)}: real server ${r.address}: dr needs the real server in the VIP's address family`, { field: 'address', hint: 'use tun (-i) across families' })
    }
    out.push(s)
  }
  return out
}

function serviceFlags(s: ModelService): number {
  let f = 0
  if (s.scheduler === 'mh' || s.scheduler === 'sh') {
    // IPVS mh and sh hash the client address (and with mh-port/sh-port its port too).
    f |= ServiceFlags.HASH_SRC_ADDR
    if (s.schedFlags.includes(`${s.scheduler}-port`)) f |= ServiceFlags.HASH_SRC_PORT
    if (s.schedFlags.includes(`${s.scheduler}-fallback`)) f |= ServiceFlags.SCHED_FALLBACK
  }
  if (s.persistence) f |= ServiceFlags.PERSISTENT
  return f
}

/** Maglev rings of one apply by (size, backends): services with the same real servers share one build. */
type RingCache = Map<string, Int32Array>
/** Table slots are 16-bit real ids (tables.ts), so a ring is remapped straight into that form. */
let mhScratch = new Uint16Array(0)

function table(s: ModelService, ids: number[], rings: RingCache): ArrayLike<number> {
  const live = s.realServers.map((r, i) => ({ r, id: ids[i]! }))
  const idOf = (i: number): number => (i < 0 ? Limits.REAL_NONE : live[i]!.id)
  switch (s.scheduler) {
    case 'rr': {
      const t = live.filter((x) => x.r.weight > 0).map((x) => x.id)
      return t.length ? t : [Limits.REAL_NONE]
    }
    case 'wrr': {
      const seq = buildWrrSequence(live.map((x) => x.r.weight))
      return seq.length ? Array.from(seq, (i) => live[i]!.id) : [Limits.REAL_NONE]
    }
    case 'mh': {
      const size = s.mhTableSize ?? MAGLEV_DEFAULT_SIZE
      const backends = live.map((x) => ({ key: `${x.r.address}|${x.r.port}`, weight: x.r.weight }))
      const memo = `${size}|${backends.map((b) => `${b.key}|${b.weight}`).join(',')}`
      let ring = rings.get(memo)
      if (!ring) rings.set(memo, (ring = buildMaglev(backends, size)))
      const byIndex = Uint32Array.from(live, (x) => x.id)
      // copied by createTable before the next table is built, so one buffer serves all
      if (mhScratch.length < size) mhScratch = new Uint16Array(Math.max(size, MAGLEV_DEFAULT_SIZE))
      const out = mhScratch.subarray(0, size)
      for (let i = 0; i < size; i++) {
        const j = ring[i]!
        out[i] = j < 0 ? Limits.REAL_NONE : byIndex[j]!
      }
      return out
    }
    case 'sh':
      // each server `weight` consecutive buckets; a weight-0 server's buckets are empty (no server)
      return Array.from(buildShTable(live.map((x) => x.r.weight)), idOf)
    case 'dh':
      return Array.from(buildDhTable(live.length), idOf)
    default:
      // lc, wlc, sed, nq, lblc, lblcr, fo, ovf, twos: every server once, in the service's order; the
      // data plane reads weights, flags and connection counts per new connection.
      return live.length ? live.map((x) => x.id) : [Limits.REAL_NONE]
  }
}

/** xvs_services key of a service: (VIP, port, protocol), or a group's key. */
function serviceKeyOf(s: ModelService): Buffer {
  if (s.kind === 'group') return groupServiceKey(s.id, s.family === 6 ? Family.INET6 : Family.INET)
  return ServiceKey.encode({ addr: s.vip, port: s.port, proto: s.kind === 'tcp' ? Proto.TCP : Proto.UDP })
}

/**
 * Every group's port ranges per (VIP, protocol), sorted, a group's touching or overlapping ranges
 * merged (the model keeps groups from overlapping each other): hex of the GroupKey -> key and ranges.
 */
export function groupRangesOf(services: readonly ModelService[]): Map<string, { key: Buffer; ranges: PortRange[] }> {
  const out = new Map<string, { key: Buffer; ranges: PortRange[] }>()
  for (const s of services) {
    if (s.kind !== 'group') continue
    for (const m of s.matches) {
      const key = GroupKey.encode({ addr: m.vip, proto: m.protocol === 'tcp' ? Proto.TCP : Proto.UDP })
      const k = hex(key)
      let e = out.get(k)
      if (!e) out.set(k, (e = { key, ranges: [] }))
      e.ranges.push({ first: m.fromPort, last: m.toPort, group_id: s.id })
    }
  }
  for (const e of out.values()) {
    e.ranges.sort((a, b) => a.first - b.first || a.last - b.last)
    const merged: PortRange[] = []
    for (const r of e.ranges) {
      const prev = merged[merged.length - 1]
      if (prev && prev.group_id === r.group_id && r.first <= prev.last + 1) prev.last = Math.max(prev.last, r.last)
      else merged.push({ ...r })
    }
    e.ranges = merged
  }
  return out
}

function readServices(dp: Dataplane): Map<string, CurrentService> {
  const out = new Map<string, CurrentService>()
  for (const { key, value } of dp.maps.services.lookupBatch(1024)) out.set(hex(key), { key: ServiceKey.decode(key), keyBuf: key, value: Service.decode(value) })
  return out
}

function currentReals(dp: Dataplane, read?: readonly RealEntry[]): CurrentReal[] {
  return (read ?? readRealsInUse(dp)).map((r) => ({ id: r.id, value: r.value, buf: r.raw ?? Real.encode(r.value) }))
}

/**
 * Allocates the lowest never-used id; only when none is left, an id of a removed server (whose old
 * flows would otherwise follow the id to its new owner). `used` holds every id present, removed ones
 * included; `claim` keeps a removed server's id for that same server when it comes back.
 */
export class IdPool {
  #used: Set<number>
  /** Removed servers' ids, ascending; `#ri` is the next to hand out (claimed ones are skipped). */
  #reclaimable: number[]
  #ri = 0
  #claimed = new Set<number>()
  /** Every id below it is used (ids are only ever added), so a take never scans from the start. */
  #next: number
  constructor(readonly first: number, readonly limit: number, used: Iterable<number>, reclaimable: Iterable<number> = []) {
    this.#used = new Set(used)
    this.#reclaimable = [...reclaimable].sort((a, b) => a - b)
    this.#next = first
  }
  claim(id: number): number {
    this.#used.add(id)
    this.#claimed.add(id)
    return id
  }
  take(what: string): number {
    while (this.#next < this.limit && this.#used.has(this.#next)) this.#next++
    if (this.#next < this.limit) { this.#used.add(this.#next); return this.#next++ }
    while (this.#ri < this.#reclaimable.length) {
      const r = this.#reclaimable[this.#ri++]!
      if (!this.#claimed.has(r)) { this.#claimed.add(r); return r }
    }
    throw new ConfigError(`too many ${what}: the data plane holds at most ${this.limit - this.first}`)
  }
}

export function applyModel(dp: Dataplane, model: Model, opts: WriterOptions = {}): ApplyResult {
  const log = (opts.log ?? silentLogger).child({ component: 'writer' })
  const services = checkSupported(model)
  const ranges = groupRangesOf(services)
  for (const { key, ranges: rs } of ranges.values()) {
    if (rs.length <= Limits.GROUP_RANGES_MAX) continue
    const k = GroupKey.decode(key)
    throw new ConfigError(`${k.proto === Proto.TCP ? 'tcp' : 'udp'} ${k.addr}: service groups match ${rs.length} port ranges there, at most ${Limits.GROUP_RANGES_MAX}`,
      { field: 'matches', hint: 'merge neighbouring ranges of a group' })
  }
  const result: ApplyResult = { services: { added: 0, removed: 0, changed: 0, unchanged: 0 }, reals: { added: 0, removed: 0, changed: 0 }, tablesWritten: 0, slotsWritten: 0 }

  // What the kernel holds now.
  const curServices = readServices(dp)
  const curReals = currentReals(dp, opts.reals)
  const realsByKey = new Map(curReals.map((r) => [realKey(r.value.service_id, r.value.addr, r.value.port), r]))
  const zero = u32(0)
  const curSettings = Settings.decode(dp.maps.settings.lookup(zero) ?? Buffer.alloc(Settings.size))

  // Plan ids and values; resolve every next hop before the first write (nothing half-applied).
  const svcIds = new IdPool(0, Limits.MAX_SERVICES, [...curServices.values()].map((s) => s.value.id))
  // The map's own size: a data plane loaded by an older xvs keeps the array it was created with.
  const realIds = new IdPool(1, Math.min(dp.maps.reals.maxEntries, Limits.MAX_REALS), curReals.map((r) => r.id),
    curReals.filter((r) => r.value.flags & RealFlags.REMOVED).map((r) => r.id))
  const hops = resolveHops(services, model, curReals, curSettings, opts)
  const tunSource = (addr: string, routeSource: string | undefined): string | undefined =>
    model.settings.tunnelSources.find((a) => a.includes(':') === addr.includes(':')) ?? routeSource
  // A real server's value differs between services only in service_id: each distinct one is encoded
  // once (a 1,000-service model often repeats the same 16), the copies laid out in one buffer.
  const encoded = new Map<string, Buffer>()
  const realCount = services.reduce((n, s) => n + s.realServers.length, 0)
  const realBufs = Buffer.alloc(realCount * Real.size)
  let realAt = 0
  const realValue = (r: RealServer, h: Hop, serviceId: number): Buffer => {
    const tun = r.method === 'tun' ? tunSource(r.address, h.source) ?? '' : undefined
    const memo = `${r.address}|${r.port}|${r.method}|${r.weight}|${r.upperThreshold}|${r.lowerThreshold}|${h.ifindex}|${h.mtu}|${h.dstMac}|${h.srcMac}|${tun}`
    let template = encoded.get(memo)
    if (!template) {
      encoded.set(memo, (template = Real.encode({
        addr: r.address, port: r.port, method: METHOD_CODE[r.method as keyof typeof METHOD_CODE], weight: r.weight,
        flags: r.weight === 0 ? RealFlags.QUIESCED : 0, service_id: 0, ifindex: h.ifindex, mtu: h.mtu,
        dst_mac: h.dstMac, src_mac: h.srcMac, upper_threshold: r.upperThreshold, lower_threshold: r.lowerThreshold,
        ...(tun !== undefined ? { tun_src: tun } : {}),
      })))
    }
    const out = realBufs.subarray(realAt, (realAt += Real.size))
    template.copy(out)
    out.writeUInt32LE(serviceId, REAL_SERVICE_ID)
    return out
  }
  const plans = services.map((s) => {
    const keyBuf = serviceKeyOf(s)
    const cur = curServices.get(hex(keyBuf))
    const id = cur ? cur.value.id : svcIds.take('services')
    const reals = s.realServers.map((r) => ({
      model: r, existing: realsByKey.get(realKey(id, r.address, r.port)), value: realValue(r, hops.get(hopKey(r))!, id),
    }))
    return { s, keyBuf, cur, id, reals }
  })
  // Servers that stay (or come back) keep their ids before any new one is handed out.
  for (const p of plans) for (const r of p.reals) if (r.existing) realIds.claim(r.existing.id)
  const ids = plans.map((p) => p.reals.map((r) => r.existing?.id ?? realIds.take('real servers')))

  // 1. Settings: timeouts and expire_nodest_conn, keeping what the model does not own; the fullnat
  //    local addresses before anything can use them.
  const nat = services.some((s) => s.realServers.some((r) => isNat(r.method)))
  const port0 = services.some((s) => s.kind !== 'group' && s.port === 0)
  const port0Before = [...curServices.values()].some((c) => c.key.port === 0 && c.key.proto !== 0)
  const laddrs = { v4: model.settings.localAddresses.filter((a) => !a.includes(':')), v6: model.settings.localAddresses.filter((a) => a.includes(':')) }
  for (const [fam, list] of [['IPv4', laddrs.v4], ['IPv6', laddrs.v6]] as const) {
    if (list.length > Limits.LADDRS_PER_FAMILY)
      throw new ConfigError(`settings.localAddresses: ${list.length} ${fam} addresses, the data plane holds ${Limits.LADDRS_PER_FAMILY}`, { field: 'localAddresses', hint: 'use fewer local addresses' })
  }
  if (nat) warnNatForwarding(log, services)
  laddrs.v4.forEach((a, i) => dp.maps.laddrs.update(u32(i), encodeAddr(a).bytes))
  laddrs.v6.forEach((a, i) => dp.maps.laddrs.update(u32(Limits.LADDRS_PER_FAMILY + i), encodeAddr(a).bytes))
  dp.maps.settings.update(zero, Settings.encode({
    ...curSettings, tcp_timeout_s: model.settings.timeouts.tcp, tcp_fin_timeout_s: model.settings.timeouts.tcpfin,
    udp_timeout_s: model.settings.timeouts.udp, expire_nodest_conn: model.settings.expireNodestConn ? 1 : 0,
    // on before a group's ranges are written, off before the last ones go (step 6)
    service_groups: ranges.size > 0 ? 1 : 0,
    // replies are looked for only while some real server needs them
    nat: nat ? 1 : 0,
    // on before a port-0 service's entry is written (step 4); off only once the last one is gone (step 7)
    port0_services: port0 || port0Before ? 1 : 0,
    laddrs_v4: laddrs.v4.length,
    laddrs_v6: laddrs.v6.length,
    // Kept here too, so a reader of the maps recovers settings.tunnelSources.
    tun_src_v4: model.settings.tunnelSources.find((a) => !a.includes(':')) ?? '',
    tun_src_v6: model.settings.tunnelSources.find((a) => a.includes(':')) ?? '',
  }))

  // 2. Real servers, so every table written next points at complete entries. A server new to its id
  //    starts with no connections counted (the id may have counted another, removed server's); one
  //    coming back from removal keeps its counts, as IPVS restores a destination from its trash.
  const keep = new Set<number>()
  const realWrites = new BatchWriter(dp.maps.reals)
  const connWrites = new BatchWriter(dp.maps.realConns)
  const zeroConns = RealConns.encode({})
  plans.forEach((p, i) => p.reals.forEach((r, j) => {
    const id = ids[i]![j]!
    keep.add(id)
    if (r.existing && r.existing.buf.equals(r.value)) return
    if (!r.existing) connWrites.add(u32(id), zeroConns)
    if (r.existing && !(r.existing.value.flags & RealFlags.REMOVED)) result.reals.changed++
    else result.reals.added++
    realWrites.add(u32(id), r.value)
  }))
  connWrites.flush()
  realWrites.flush()

  // 3. Egress ports for redirects (written from this namespace: devmap ifindexes resolve here).
  const ports = new Set([...hops.values()].map((h) => h.ifindex))
  for (const ifindex of ports) dp.maps.txPorts.update(u32(ifindex), u32(ifindex))

  // 4. Services: tables into the inactive half, then one write flips to them. A service whose live
  //    real servers leave it gets a new table (they drop out of it). In groups: the group's tables
  //    are made and installed (one batch), then its service entries flip (one batch).
  const dropped = new Set<number>()
  for (const r of curReals) if (!keep.has(r.id) && !(r.value.flags & RealFlags.REMOVED)) dropped.add(r.value.service_id)
  const rings: RingCache = new Map()
  const group: { p: (typeof plans)[number]; half: number; table: BpfMap; value: Buffer; schedChanged: boolean }[] = []
  const flushGroup = (): void => {
    try {
      installTables(dp.maps.svcTables, group.map((g) => ({ serviceId: g.p.id, half: g.half, table: g.table })))
    } finally {
      for (const g of group) g.table.close()
    }
    const flips = new BatchWriter(dp.maps.services)
    const fresh = new BatchWriter(dp.maps.svcStats)
    for (const g of group) flips.add(g.p.keyBuf, g.value)
    flips.flush()
    // lblc/lblcr start from no locality when the scheduler changes (IPVS: a new scheduler, new state):
    // one walk of xvs_locality for the group's services
    const newSched = new Set(group.filter((g) => g.schedChanged).map((g) => g.p.id))
    if (newSched.size) purgeLocality(dp, newSched)
    for (const g of group) {
      if (g.p.cur) result.services.changed++
      else {
        result.services.added++
        // A new service starts from zeroed statistics even if its id was used before.
        fresh.add(u32(g.p.id), Buffer.alloc(dp.maps.svcStats.valueBytes))
      }
    }
    fresh.flush()
    group.length = 0
  }
  try {
    for (const [i, p] of plans.entries()) {
      const realChanged = p.reals.some((r) => !r.existing || !r.existing.buf.equals(r.value))
      const sched = Sched[p.s.scheduler.toUpperCase() as keyof typeof Sched]
      const flags = serviceFlags(p.s)
      const size = p.s.scheduler === 'mh' ? p.s.mhTableSize ?? MAGLEV_DEFAULT_SIZE : undefined
      const persist_timeout_s = p.s.persistence?.timeout ?? 0
      const persist_mask = p.s.persistence ? persistMask(p.s.persistence.netmask, isV6(p.s) ? Family.INET6 : Family.INET) : Buffer.alloc(16)
      if (p.cur && !realChanged && !dropped.has(p.id) && p.cur.value.sched === sched && p.cur.value.flags === flags &&
          (size === undefined || p.cur.value.table_size === size) && p.cur.value.num_reals === p.reals.length &&
          p.cur.value.persist_timeout_s === persist_timeout_s && p.cur.value.persist_mask.equals(persist_mask)) {
        result.services.unchanged++
        continue
      }
      const half = p.cur ? 1 - p.cur.value.active_table : 0
      const ids_ = table(p.s, ids[i]!, rings)
      const n = ids_.length
      group.push({
        p, half, table: createTable(p.id, half, ids_), schedChanged: !!p.cur && p.cur.value.sched !== sched,
        value: Service.encode({ id: p.id, flags, sched, active_table: half, table_size: n, num_reals: p.reals.length, persist_timeout_s, persist_mask }),
      })
      result.tablesWritten++
      result.slotsWritten += n
      if (group.length >= TABLE_GROUP) flushGroup()
    }
    flushGroup()
  } finally {
    for (const g of group) g.table.close()
  }

  // 5. Real servers that left their service: marked removed (flows drop or reschedule).
  const removals = new BatchWriter(dp.maps.reals)
  for (const r of curReals) {
    if (keep.has(r.id) || r.value.flags & RealFlags.REMOVED) continue
    removals.add(u32(r.id), Real.encode({ ...r.value, weight: 0, flags: r.value.flags | RealFlags.REMOVED }))
    result.reals.removed++
  }
  removals.flush()

  // 6. Service groups' port ranges, now that the groups' entries are in place; stale ones go first.
  for (const { key, value } of [...dp.maps.groupRanges.entries()]) {
    const want = ranges.get(hex(key))
    if (!want) dp.maps.groupRanges.delete(key)
    else if (value.equals(encodeGroupRanges(want.ranges))) ranges.delete(hex(key))
  }
  for (const { key, ranges: rs } of ranges.values()) dp.maps.groupRanges.update(key, encodeGroupRanges(rs))

  // 7. Services that left the model: out of the lookup first, then their tables and locality entries.
  const wanted = new Set(plans.map((p) => hex(p.keyBuf)))
  const gone = new Set<number>()
  for (const [k, cur] of curServices) {
    if (wanted.has(k)) continue
    dp.maps.services.delete(cur.keyBuf)
    removeTables(dp.maps.svcTables, cur.value.id)
    gone.add(cur.value.id)
    result.services.removed++
  }
  if (gone.size) purgeLocality(dp, gone)
  if (port0Before && !port0) {
    const now = Settings.decode(dp.maps.settings.lookup(zero)!)
    dp.maps.settings.update(zero, Settings.encode({ ...now, port0_services: 0 }))
  }
  log.info({ ...result }, 'model applied')
  return result
}

/** Map writes gathered and written with one batch update (each entry is still written on its own). */
class BatchWriter {
  #keys: Buffer[] = []
  #values: Buffer[] = []
  constructor(private readonly map: BpfMap) {}
  add(key: Buffer, value: Buffer): void {
    this.#keys.push(key)
    this.#values.push(value)
  }
  flush(): void {
    const n = this.#keys.length
    if (n === 1) this.map.update(this.#keys[0]!, this.#values[0]!)
    else if (n > 1) this.map.updateBatchRaw(Buffer.concat(this.#keys, n * this.map.keySize), Buffer.concat(this.#values, n * this.map.valueBytes), n)
    this.#keys = []
    this.#values = []
  }
}

/** Services whose tables are made before one batch installs them (bounded: each holds an fd meanwhile). */
const TABLE_GROUP = 128

const hopKey = (r: RealServer): string => `${r.method}|${r.address}`

/**
 * The next hop of every real server of the model, by hopKey. With opts.reuseHops (the default) a
 * live xvs_reals entry of the same address and method gives it, unless that entry's tunnel source
 * came from settings that no longer name one (then the route's source must be looked up). The rest
 * are resolved before anything is written; the first failure, in the model's order, is thrown.
 */
function resolveHops(services: readonly ModelService[], model: Model, curReals: readonly CurrentReal[],
  curSettings: ReturnType<typeof Settings.decode>, opts: WriterOptions): Map<string, Hop> {
  const hops = new Map<string, Hop>()
  const want = new Map<string, RealServer>()
  for (const s of services) for (const r of s.realServers) if (!want.has(hopKey(r))) want.set(hopKey(r), r)
  if (opts.reuseHops ?? true) {
    const held = new Map<string, CurrentReal>()
    for (const r of curReals) {
      if (r.value.flags & RealFlags.REMOVED || (r.value.method !== FwdMethod.DR && r.value.method !== FwdMethod.TUN)) continue
      const k = `${r.value.method === FwdMethod.TUN ? 'tun' : 'dr'}|${canon(r.value.addr)}`
      if (!held.has(k)) held.set(k, r)
    }
    const configured = (settings: { tun_src_v4: string; tun_src_v6: string } | string[], v6: boolean): boolean =>
      Array.isArray(settings) ? settings.some((a) => a.includes(':') === v6) : (v6 ? settings.tun_src_v6 : settings.tun_src_v4) !== ''
    for (const [k, r] of want) {
      const e = held.get(`${r.method}|${canon(r.address)}`)
      if (!e) continue
      const v6 = r.address.includes(':')
      // tun_src was the configured source then, and none is configured now: the route's is needed
      if (r.method === 'tun' && !configured(model.settings.tunnelSources, v6) && configured(curSettings, v6)) continue
      const v = e.value
      hops.set(k, { ifindex: v.ifindex, mtu: v.mtu, dstMac: v.dst_mac, srcMac: v.src_mac, ...(v.tun_src ? { source: v.tun_src } : {}) })
    }
  }
  const todo = [...want].filter(([k]) => !hops.has(k))
  if (opts.resolve) {
    for (const [k, r] of todo) hops.set(k, opts.resolve(r.address, { requireOnLink: r.method === 'dr' }))
  } else if (todo.length) {
    const got = resolveNextHops(todo.map(([, r]) => ({ address: r.address, requireOnLink: r.method === 'dr' })))
    for (const [i, [k]] of todo.entries()) {
      const h = got[i]!
      if (h instanceof ResolveError) throw h
      hops.set(k, h)
    }
  }
  return hops
}

/** Drop the lblc/lblcr entries of these service ids (xvs_locality, keyed by service id). */
function purgeLocality(dp: Dataplane, serviceIds: ReadonlySet<number>): void {
  const doomed = [...dp.maps.locality.keys()].filter((k) => serviceIds.has(LocalityKey.decode(k).service_id))
  for (const k of doomed) dp.maps.locality.delete(k)
}

/** Read a sysctl of the namespace this process is in; undefined when it cannot be read. */
function sysctl(name: string): string | undefined {
  try {
    return fs.readFileSync(`/proc/sys/${name.replace(/\./g, '/')}`, 'utf8').trim()
  } catch {
    return undefined
  }
}

/**
 * nat and fullnat hand the kernel translated packets whose next hop it has not resolved yet (the
 * first packets to a new neighbour): it must forward them, and accept those whose source is one of
 * its own addresses (the VIP on nat replies, a local address on fullnat requests). Says so, once per
 * apply, with the commands that fix it.
 */
function warnNatForwarding(log: Logger, services: readonly ModelService[]): void {
  const v4 = services.some((s) => !isV6(s) && s.realServers.some((r) => isNat(r.method)))
  const v6 = services.some((s) => isV6(s) && s.realServers.some((r) => isNat(r.method)))
  const need: string[] = []
  if (v4 && sysctl('net.ipv4.ip_forward') === '0') need.push('net.ipv4.ip_forward=1')
  if (v4 && sysctl('net.ipv4.conf.all.accept_local') === '0') need.push('net.ipv4.conf.all.accept_local=1')
  if (v6 && sysctl('net.ipv6.conf.all.forwarding') === '0') need.push('net.ipv6.conf.all.forwarding=1')
  if (need.length) log.warn({ sysctls: need }, `nat/fullnat: the kernel forwards packets whose next hop is not resolved yet; set: sysctl -w ${need.join(' ')}`)
}

/** Family of a model address, as the ABI numbers it. */
export const familyOf = (a: string): number => (a.includes(':') ? Family.INET6 : Family.INET)
