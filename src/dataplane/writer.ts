// SPDX-License-Identifier: GPL-2.0-only
// The writer: make the maps hold a model's services and real servers. It reads what the maps hold
// now (the kernel's view, as ipvsadm reads IPVS's), computes the difference, resolves every real
// server's next hop before touching anything, then writes in an order that is safe for packets in
// flight: real servers first, then each changed service's table into its inactive half, then one
// service-entry write that flips to it. Removed real servers are marked (their flows drop or are
// rescheduled per expire_nodest_conn), removed services vanish from the lookup.
import { buildMaglev, buildWrrSequence, MAGLEV_DEFAULT_SIZE } from '../sched'
import type { Model, PortService, RealServer, Service as ModelService } from '../model/types'
import {
  ConnFlags, Family, FwdMethod, Limits, Proto, Real, RealFlags, Sched, Service, ServiceFlags, ServiceKey, Settings,
  type Real as RealValue, type Service as ServiceValue, type ServiceKey as ServiceKeyValue,
} from './abi'
import type { Dataplane } from './loader'
import { installTable, removeTables } from './tables'
import { resolveNextHop, type NextHop, type ResolveOptions } from './neigh'
import { ConfigError } from '../errors'
import { silentLogger, type Logger } from '../log'

void ConnFlags

/** Schedulers and methods the data plane runs today; the rest are refused with a clear error. */
const SUPPORTED_SCHED = new Set(['rr', 'wrr', 'mh'])
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

/** Refuse what the data plane cannot run yet, naming the service and what to use instead. */
function checkSupported(model: Model): PortService[] {
  const out: PortService[] = []
  for (const s of model.services) {
    if (s.kind === 'group') throw new ConfigError(`${where(s)}: service groups are not in the data plane yet`, { field: 'kind', hint: 'use (VIP, protocol, port) services for now' })
    if (!SUPPORTED_SCHED.has(s.scheduler))
      throw new ConfigError(`${where(s)}: scheduler ${s.scheduler} is not in the data plane yet`, { field: 'scheduler', hint: 'use rr, wrr or mh for now' })
    if (s.persistence) throw new ConfigError(`${where(s)}: persistence is not in the data plane yet`, { field: 'persistence' })
    for (const r of s.realServers) {
      if (!SUPPORTED_METHOD.has(r.method))
        throw new ConfigError(`${where(s)}: real server ${r.address}: method ${r.method} is not in the data plane yet`, { field: 'method', hint: 'use dr (-g) or tun (-i) for now' })
      if (r.method === 'dr' && r.port !== s.port && s.port !== 0)
        throw new ConfigError(`${where(s)}: real server ${r.address}:${r.port}: dr cannot change the port`, { field: 'port', hint: `use port ${s.port}, or nat (-m) for port mapping` })
      if (r.method === 'dr' && r.address.includes(':') !== s.vip.includes(':'))
        throw new ConfigError(`${where(s)}: real server ${r.address}: dr needs the real server in the VIP's address family`, { field: 'address', hint: 'use tun (-i) across families' })
    }
    out.push(s)
  }
  return out
}

function serviceFlags(s: PortService): number {
  let f = 0
  if (s.scheduler === 'mh') {
    // IPVS mh hashes the client address (and with mh-port its port too).
    f |= ServiceFlags.HASH_SRC_ADDR
    if (s.schedFlags.includes('mh-port')) f |= ServiceFlags.HASH_SRC_PORT
    if (s.schedFlags.includes('mh-fallback')) f |= ServiceFlags.SCHED_FALLBACK
  }
  return f
}

function table(s: PortService, ids: number[]): ArrayLike<number> {
  const live = s.realServers.map((r, i) => ({ r, id: ids[i]! }))
  switch (s.scheduler) {
    case 'rr': {
      const t = live.filter((x) => x.r.weight > 0).map((x) => x.id)
      return t.length ? t : [Limits.REAL_NONE]
    }
    case 'wrr': {
      const seq = buildWrrSequence(live.map((x) => x.r.weight))
      return seq.length ? Array.from(seq, (i) => live[i]!.id) : [Limits.REAL_NONE]
    }
    default: {
      const size = s.mhTableSize ?? MAGLEV_DEFAULT_SIZE
      const ring = buildMaglev(live.map((x) => ({ key: `${x.r.address}|${x.r.port}`, weight: x.r.weight })), size)
      const out = new Uint32Array(size)
      for (let i = 0; i < size; i++) out[i] = ring[i]! < 0 ? Limits.REAL_NONE : live[ring[i]!]!.id
      return out
    }
  }
}

function readServices(dp: Dataplane): Map<string, CurrentService> {
  const out = new Map<string, CurrentService>()
  for (const { key, value } of dp.maps.services.entries()) out.set(hex(key), { key: ServiceKey.decode(key), keyBuf: key, value: Service.decode(value) })
  return out
}

function readReals(dp: Dataplane): CurrentReal[] {
  const out: CurrentReal[] = []
  for (const { key, value } of dp.maps.reals.lookupBatch(4096)) {
    const id = key.readUInt32LE()
    if (id === 0 || value.every((x) => x === 0)) continue
    out.push({ id, value: Real.decode(value), buf: value })
  }
  return out
}

/** Allocates the lowest free id, preferring ids never used over those of removed servers. */
class IdPool {
  #used: Set<number>
  #reclaimable: number[]
  constructor(readonly first: number, readonly limit: number, used: Iterable<number>, reclaimable: number[] = []) {
    this.#used = new Set(used)
    this.#reclaimable = [...reclaimable].sort((a, b) => a - b)
  }
  take(what: string): number {
    for (let i = this.first; i < this.limit; i++) if (!this.#used.has(i)) { this.#used.add(i); return i }
    const r = this.#reclaimable.shift()
    if (r !== undefined) return r
    throw new ConfigError(`too many ${what}: the data plane holds at most ${this.limit - this.first}`)
  }
}

export function applyModel(dp: Dataplane, model: Model, opts: WriterOptions = {}): ApplyResult {
  const log = (opts.log ?? silentLogger).child({ component: 'writer' })
  const resolve = opts.resolve ?? resolveNextHop
  const services = checkSupported(model)
  const result: ApplyResult = { services: { added: 0, removed: 0, changed: 0, unchanged: 0 }, reals: { added: 0, removed: 0, changed: 0 }, tablesWritten: 0, slotsWritten: 0 }

  // What the kernel holds now.
  const curServices = readServices(dp)
  const curReals = readReals(dp)
  const realsByKey = new Map(curReals.map((r) => [realKey(r.value.service_id, r.value.addr, r.value.port), r]))

  // Plan ids and values; resolve every next hop before the first write (nothing half-applied).
  const svcIds = new IdPool(0, Limits.MAX_SERVICES, [...curServices.values()].map((s) => s.value.id))
  const realIds = new IdPool(1, Limits.MAX_REALS, curReals.filter((r) => !(r.value.flags & RealFlags.REMOVED)).map((r) => r.id),
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
    const keyBuf = ServiceKey.encode({ addr: s.vip, port: s.port, proto: s.kind === 'tcp' ? Proto.TCP : Proto.UDP })
    const cur = curServices.get(hex(keyBuf))
    const id = cur ? cur.value.id : svcIds.take('services')
    const reals = s.realServers.map((r) => {
      const h = hop(r)
      const existing = realsByKey.get(realKey(id, r.address, r.port))
      const value: Partial<RealValue> = {
        addr: r.address, port: r.port, method: r.method === 'tun' ? FwdMethod.TUN : FwdMethod.DR, weight: r.weight,
        flags: r.weight === 0 ? RealFlags.QUIESCED : 0, service_id: id, ifindex: h.ifindex, mtu: h.mtu,
        dst_mac: h.dstMac, src_mac: h.srcMac,
        ...(r.method === 'tun' ? { tun_src: tunSource(r.address, h.source) ?? '' } : {}),
      }
      return { model: r, existing, value: Real.encode(value) }
    })
    return { s, keyBuf, cur, id, reals }
  })
  const ids = plans.map((p) => p.reals.map((r) => r.existing?.id ?? realIds.take('real servers')))

  // 1. Settings: timeouts and expire_nodest_conn, keeping what the model does not own.
  const zero = u32(0)
  const curSettings = Settings.decode(dp.maps.settings.lookup(zero) ?? Buffer.alloc(Settings.size))
  dp.maps.settings.update(zero, Settings.encode({
    ...curSettings, tcp_timeout_s: model.settings.timeouts.tcp, tcp_fin_timeout_s: model.settings.timeouts.tcpfin,
    udp_timeout_s: model.settings.timeouts.udp, expire_nodest_conn: model.settings.expireNodestConn ? 1 : 0,
    // Kept here too, so a reader of the maps recovers settings.tunnelSources.
    tun_src_v4: model.settings.tunnelSources.find((a) => !a.includes(':')) ?? '',
    tun_src_v6: model.settings.tunnelSources.find((a) => a.includes(':')) ?? '',
  }))

  // 2. Real servers, so every table written next points at complete entries.
  const keep = new Set<number>()
  plans.forEach((p, i) => p.reals.forEach((r, j) => {
    const id = ids[i]![j]!
    keep.add(id)
    if (r.existing && r.existing.buf.equals(r.value)) return
    dp.maps.reals.update(u32(id), r.value)
    if (r.existing && !(r.existing.value.flags & RealFlags.REMOVED)) result.reals.changed++
    else result.reals.added++
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
    if (p.cur && !realChanged && !dropped && p.cur.value.sched === sched && p.cur.value.flags === flags &&
        (size === undefined || p.cur.value.table_size === size) && p.cur.value.num_reals === p.reals.length) {
      result.services.unchanged++
      continue
    }
    const half = p.cur ? 1 - p.cur.value.active_table : 0
    const n = installTable(dp.maps.svcTables, p.id, half, table(p.s, ids[i]!))
    result.tablesWritten++
    result.slotsWritten += n
    dp.maps.services.update(p.keyBuf, Service.encode({
      id: p.id, flags, sched, active_table: half, table_size: n, num_reals: p.reals.length, persist_timeout_s: 0,
    }))
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

  // 6. Services that left the model: out of the lookup first, then their tables.
  const wanted = new Set(plans.map((p) => hex(p.keyBuf)))
  for (const [k, cur] of curServices) {
    if (wanted.has(k)) continue
    dp.maps.services.delete(cur.keyBuf)
    removeTables(dp.maps.svcTables, cur.value.id)
    result.services.removed++
  }
  log.info({ ...result }, 'model applied')
  return result
}

/** Family of a model address, as the ABI numbers it. */
export const familyOf = (a: string): number => (a.includes(':') ? Family.INET6 : Family.INET)
