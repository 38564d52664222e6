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
import type { Dataplane } from './loader'
import { installTable, removeTables } from './tables'
import { resolveNextHop, type NextHop, type ResolveOptions } from './neigh'
import { ConfigError } from '../errors'
import { silentLogger, type Logger } from '../log'

/** Methods the data plane runs today; the rest are refused with a clear error. Every scheduler runs. */
const SUPPORTED_METHOD = new Set(['dr', 'tun'])

export interface ApplyResult {
  services: { added: number; removed: number; changed: number; unchanged: number }
  reals: { added: number; removed: number; changed: number }
  tablesWritten: number
  slotsWritten: number
}

export interface WriterOptions {
  log?: Logger
  /** Next-hop resolution; default: the kernel's routing and neighbour tables (neigh.ts). */
  resolve?: (address: string, opts: ResolveOptions) => NextHop
}

interface CurrentService { key: ServiceKeyValue; keyBuf: Buffer; value: ServiceValue }
interface CurrentReal { id: number; value: RealValue; buf: Buffer }

const hex = (b: Buffer): string => b.toString('hex')
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
      if (!SUPPORTED_METHOD.has(r.method))
        throw new ConfigError(`${where(s)}: real server ${r.address}: method ${r.method} is not in the data plane yet`, { field: 'method', hint: 'use dr (-g) or tun (-i) for now' })
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

function table(s: ModelService, ids: number[]): ArrayLike<number> {
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
      const ring = buildMaglev(live.map((x) => ({ key: `${x.r.address}|${x.r.port}`, weight: x.r.weight })), size)
      const out = new Uint32Array(size)
      for (let i = 0; i < size; i++) out[i] = idOf(ring[i]!)
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
  for (const { key, value } of dp.maps.services.entries()) out.set(hex(key), { key: ServiceKey.decode(key), keyBuf: key, value: Service.decode(value) })
  return out
}

function readReals(dp: Dataplane): CurrentReal[] {
  const out: CurrentReal[] = []
  for (const { key, value } of dp.maps.reals.nonZeroEntries()) {
    const id = key.readUInt32LE()
    if (id === 0) continue
    out.push({ id, value: Real.decode(value), buf: value })
  }
  return out
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
  const resolve = opts.resolve ?? resolveNextHop
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
  const curReals = readReals(dp)
  const realsByKey = new Map(curReals.map((r) => [realKey(r.value.service_id, r.value.addr, r.value.port), r]))

  // Plan ids and values; resolve every next hop before the first write (nothing half-applied).
  const svcIds = new IdPool(0, Limits.MAX_SERVICES, [...curServices.values()].map((s) => s.value.id))
  // The map's own size: a data plane loaded by an older xvs keeps the array it was created with.
  const realIds = new IdPool(1, Math.min(dp.maps.reals.maxEntries, Limits.MAX_REALS), curReals.map((r) => r.id),
    curReals.filter((r) => r.value.flags & RealFlags.REMOVED).map((r) => r.id))
  const hops = new Map<string, NextHop>()
  const hop = (r: RealServer): NextHop => {
    const k = `${r.method}|${r.address}`
    let h = hops.get(k)
    if (!h) { h = resolve(r.address, { requireOnLink: r.method === 'dr' }); hops.set(k, h) }
    return h
  }
  const tunSource = (addr: string, routeSource: string | undefined): string | undefined =>
    model.settings.tunnelSources.find((a) => a.includes(':') === addr.includes(':')) ?? routeSource
  const plans = services.map((s) => {
    const keyBuf = serviceKeyOf(s)
    const cur = curServices.get(hex(keyBuf))
    const id = cur ? cur.value.id : svcIds.take('services')
    const reals = s.realServers.map((r) => {
      const h = hop(r)
      const existing = realsByKey.get(realKey(id, r.address, r.port))
      const value: Partial<RealValue> = {
        addr: r.address, port: r.port, method: r.method === 'tun' ? FwdMethod.TUN : FwdMethod.DR, weight: r.weight,
        flags: r.weight === 0 ? RealFlags.QUIESCED : 0, service_id: id, ifindex: h.ifindex, mtu: h.mtu,
        dst_mac: h.dstMac, src_mac: h.srcMac, upper_threshold: r.upperThreshold, lower_threshold: r.lowerThreshold,
        ...(r.method === 'tun' ? { tun_src: tunSource(r.address, h.source) ?? '' } : {}),
      }
      return { model: r, existing, value: Real.encode(value) }
    })
    return { s, keyBuf, cur, id, reals }
  })
  // Servers that stay (or come back) keep their ids before any new one is handed out.
  for (const p of plans) for (const r of p.reals) if (r.existing) realIds.claim(r.existing.id)
  const ids = plans.map((p) => p.reals.map((r) => r.existing?.id ?? realIds.take('real servers')))

  // 1. Settings: timeouts and expire_nodest_conn, keeping what the model does not own.
  const zero = u32(0)
  const curSettings = Settings.decode(dp.maps.settings.lookup(zero) ?? Buffer.alloc(Settings.size))
  dp.maps.settings.update(zero, Settings.encode({
    ...curSettings, tcp_timeout_s: model.settings.timeouts.tcp, tcp_fin_timeout_s: model.settings.timeouts.tcpfin,
    udp_timeout_s: model.settings.timeouts.udp, expire_nodest_conn: model.settings.expireNodestConn ? 1 : 0,
    // on before a group's ranges are written, off before the last ones go (step 6)
    service_groups: ranges.size > 0 ? 1 : 0,
    // Kept here too, so a reader of the maps recovers settings.tunnelSources.
    tun_src_v4: model.settings.tunnelSources.find((a) => !a.includes(':')) ?? '',
    tun_src_v6: model.settings.tunnelSources.find((a) => a.includes(':')) ?? '',
  }))

  // 2. Real servers, so every table written next points at complete entries. A server new to its id
  //    starts with no connections counted (the id may have counted another, removed server's); one
  //    coming back from removal keeps its counts, as IPVS restores a destination from its trash.
  const keep = new Set<number>()
  const zeroConns = RealConns.encode({})
  plans.forEach((p, i) => p.reals.forEach((r, j) => {
    const id = ids[i]![j]!
    keep.add(id)
    if (r.existing && r.existing.buf.equals(r.value)) return
    if (!r.existing) dp.maps.realConns.update(u32(id), zeroConns)
    if (r.existing && !(r.existing.value.flags & RealFlags.REMOVED)) result.reals.changed++
    else result.reals.added++
    dp.maps.reals.update(u32(id), r.value)
  }))

  // 3. Egress ports for redirects (written from this namespace: devmap ifindexes resolve here).
  const ports = new Set([...hops.values()].map((h) => h.ifindex))
  for (const ifindex of ports) dp.maps.txPorts.update(u32(ifindex), u32(ifindex))

  // 4. Services: tables into the inactive half, then one write flips to them.
  for (const [i, p] of plans.entries()) {
    const realChanged = p.reals.some((r) => !r.existing || !r.existing.buf.equals(r.value))
    const sched = Sched[p.s.scheduler.toUpperCase() as keyof typeof Sched]
    const flags = serviceFlags(p.s)
    const dropped = curReals.some((r) => r.value.service_id === p.id && !keep.has(r.id) && !(r.value.flags & RealFlags.REMOVED))
    const size = p.s.scheduler === 'mh' ? p.s.mhTableSize ?? MAGLEV_DEFAULT_SIZE : undefined
    const persist_timeout_s = p.s.persistence?.timeout ?? 0
    const persist_mask = p.s.persistence ? persistMask(p.s.persistence.netmask, isV6(p.s) ? Family.INET6 : Family.INET) : Buffer.alloc(16)
    if (p.cur && !realChanged && !dropped && p.cur.value.sched === sched && p.cur.value.flags === flags &&
        (size === undefined || p.cur.value.table_size === size) && p.cur.value.num_reals === p.reals.length &&
        p.cur.value.persist_timeout_s === persist_timeout_s && p.cur.value.persist_mask.equals(persist_mask)) {
      result.services.unchanged++
      continue
    }
    const half = p.cur ? 1 - p.cur.value.active_table : 0
    const n = installTable(dp.maps.svcTables, p.id, half, table(p.s, ids[i]!))
    result.tablesWritten++
    result.slotsWritten += n
    dp.maps.services.update(p.keyBuf, Service.encode({
      id: p.id, flags, sched, active_table: half, table_size: n, num_reals: p.reals.length, persist_timeout_s, persist_mask,
    }))
    // lblc/lblcr start from no locality when the scheduler changes (IPVS: a new scheduler, new state)
    if (p.cur && p.cur.value.sched !== sched) purgeLocality(dp, new Set([p.id]))
    if (p.cur) result.services.changed++
    else {
      result.services.added++
      // A new service starts from zeroed statistics even if its id was used before.
      const stats = dp.maps.svcStats
      stats.update(u32(p.id), Buffer.alloc(stats.valueBytes))
    }
  }

  // 5. Real servers that left their service: marked removed (flows drop or reschedule).
  for (const r of curReals) {
    if (keep.has(r.id) || r.value.flags & RealFlags.REMOVED) continue
    dp.maps.reals.update(u32(r.id), Real.encode({ ...r.value, weight: 0, flags: r.value.flags | RealFlags.REMOVED }))
    result.reals.removed++
  }

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
  log.info({ ...result }, 'model applied')
  return result
}

/** Drop the lblc/lblcr entries of these service ids (xvs_locality, keyed by service id). */
function purgeLocality(dp: Dataplane, serviceIds: ReadonlySet<number>): void {
  const doomed = [...dp.maps.locality.keys()].filter((k) => serviceIds.has(LocalityKey.decode(k).service_id))
  for (const k of doomed) dp.maps.locality.delete(k)
}

/** Family of a model address, as the ABI numbers it. */
export const familyOf = (a: string): number => (a.includes(':') ? Family.INET6 : Family.INET)
