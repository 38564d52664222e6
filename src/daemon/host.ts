// SPDX-License-Identifier: GPL-2.0-only
// The daemon's view of the data plane, as one interface: load (or adopt) and attach, apply a model,
// and read back what metrics, listings and the sweeper need. BpfHost is the real one, over the loader,
// writer and the ABI codecs in the daemon's network namespace; unit tests give the daemon a fake.
import type { XdpMode } from '../bpf'
import type { BpfMap } from '../bpf'
import { Proto, Real, RealFlags, Service, ServiceKey, Settings, Stats, decodeGroupRanges, statCounterNames } from '../dataplane/abi'
import { detachOne, findDataplane, loadDataplane, netnsId, unloadDataplane, type Dataplane } from '../dataplane/loader'
import { applyModel, type ApplyResult, type WriterOptions } from '../dataplane/writer'
import { readConnCounters, writeConnCounts } from '../dataplane/conncount'
import { readRealAddrs } from '../dataplane/reader'
import type { Model } from '../model/types'
import { realServerKey, serviceKey } from '../model/diff'
import { parseIp } from '../model/addr'
import { silentLogger, type Logger } from '../log'
import type { ConnTable, ConnTimeouts, RealAddrs, RealCounts, ServiceIndex } from './sweeper'

export interface HostLoadRequest {
  ifaces: string[]
  mode?: XdpMode
  connTableSize?: number
  /** The director object; default the installed out/bpf/xvs.bpf.o. */
  object?: string
}

export interface HostLoadInfo {
  /** A running data plane's maps were kept. */
  adopted: boolean
  attached: string[]
  replaced: string[]
  progId: number
}

export interface DataplaneInfo {
  progId: number
  connsMapId: number
  abiVersion: number
  connTableSize: number
  attachments: { ifname: string; mode: string; via: string }[]
}

/** The kernel's ids of services and real servers, with the keys the daemon names them by. */
export interface KernelView {
  services: { id: number; key: string }[]
  reals: { id: number; serviceId: number; key: string; weight: number; flags: number }[]
}

/** Sums of struct xvs_stats over CPUs. */
export interface StatTotals { conns: number; packetsIn: number; bytesIn: number; packetsOut: number; bytesOut: number }

export interface DataplaneHost {
  /** Interfaces a running data plane is attached to here (none: empty). */
  runningInterfaces(): string[]
  /** Load the program and attach it (a running one: its maps kept, its attachments replaced atomically). */
  load(req: HostLoadRequest): HostLoadInfo
  /** Detach from these interfaces only. */
  detach(ifaces: string[]): void
  apply(model: Model, opts: WriterOptions): ApplyResult
  info(): DataplaneInfo
  view(): KernelView
  /** Statistics by service id and real id, summed over CPUs. */
  stats(): { services: Map<number, StatTotals>; reals: Map<number, StatTotals> }
  counters(): Record<string, number>
  /** For the sweeper. */
  conns(): ConnTable
  timeouts(): ConnTimeouts
  /** xvs_services and xvs_grp_ranges as the sweeper judges entries by them. */
  serviceIndex(): ServiceIndex
  /** xvs_nat_rev, the nat/fullnat reply entries the sweeper deletes when no connection owns them. */
  natRev?(): ConnTable
  /** Real servers' addresses and ports by id, for the sweeper's reply keys. */
  realAddrs?(): RealAddrs
  /** The data plane's per-real-server connection counters (xvs_real_conns) now, as a sweep begins. */
  connCounters?(): unknown
  /**
   * Rewrite those counters (what lc, wlc, sed, nq, lblc and the thresholds read) from a sweep's counts:
   * the packet path cannot see an entry expire unseen, so its counts only drift up until this. `since`
   * is what connCounters() returned as the sweep began: what the packet path counted meanwhile is kept.
   */
  reconcile?(counts: ReadonlyMap<number, RealCounts>, since: unknown): void
  /** Detach everywhere and drop the pins (--detach-on-exit). */
  unload(): void
  /** Close our handles; the data plane keeps running. */
  close(): void
  /** This network namespace's identity (the loader's netnsId), so clients can tell whose daemon answers. */
  netns?(): string
  /** The loaded data plane itself (HA connection sync reads and writes its conn table); fakes leave it out. */
  dataplane?(): Dataplane
}

const canon = (a: string): string => parseIp(a)?.address ?? a

/** Every id of a per-CPU xvs_stats map with a non-zero entry, summed over CPUs. */
function sumStats(map: BpfMap): Map<number, StatTotals> {
  const out = new Map<number, StatTotals>()
  for (const { key, value } of map.nonZeroEntries()) {
    const t = { conns: 0n, packets_in: 0n, bytes_in: 0n, packets_out: 0n, bytes_out: 0n }
    for (const slot of map.splitSlots(value)) {
      const s = Stats.decode(slot)
      t.conns += s.conns; t.packets_in += s.packets_in; t.bytes_in += s.bytes_in; t.packets_out += s.packets_out; t.bytes_out += s.bytes_out
    }
    out.set(key.readUInt32LE(0), {
      conns: Number(t.conns), packetsIn: Number(t.packets_in), bytesIn: Number(t.bytes_in), packetsOut: Number(t.packets_out), bytesOut: Number(t.bytes_out),
    })
  }
  return out
}

export class BpfHost implements DataplaneHost {
  private dp: Dataplane | undefined
  private readonly log: Logger

  constructor(opts: { log?: Logger; dataplane?: Dataplane } = {}) {
    this.log = opts.log ?? silentLogger
    this.dp = opts.dataplane
  }

  private get d(): Dataplane {
    if (!this.dp) throw new Error('the data plane is not loaded')
    return this.dp
  }

  dataplane(): Dataplane {
    return this.d
  }

  netns(): string {
    return netnsId()
  }

  runningInterfaces(): string[] {
    const dp = findDataplane()
    if (!dp) return []
    try { return dp.attachments().map((a) => a.ifname) } finally { dp.close() }
  }

  load(req: HostLoadRequest): HostLoadInfo {
    const r = loadDataplane({
      ifaces: req.ifaces, log: this.log,
      ...(req.mode ? { mode: req.mode } : {}), ...(req.connTableSize ? { connTableSize: req.connTableSize } : {}),
      ...(req.object ? { object: req.object } : {}),
    })
    this.dp?.close()
    this.dp = r.dataplane
    return { adopted: r.adopted, attached: r.attached, replaced: r.replaced, progId: r.dataplane.prog.id }
  }

  detach(ifaces: string[]): void {
    for (const i of ifaces) detachOne(i, this.d.pins)
  }

  apply(model: Model, opts: WriterOptions): ApplyResult {
    return applyModel(this.d, model, opts)
  }

  info(): DataplaneInfo {
    const d = this.d
    return {
      progId: d.prog.id, connsMapId: d.maps.conns.id, abiVersion: d.abiVersion, connTableSize: d.maps.conns.maxEntries,
      attachments: d.attachments().map((a) => ({ ifname: a.ifname, mode: a.mode, via: a.via })),
    }
  }

  view(): KernelView {
    const d = this.d
    const services = d.maps.services.lookupBatch(1024).map(({ key, value }) => {
      const k = ServiceKey.decode(key)
      const kind = k.proto === Proto.UDP ? 'udp' : 'tcp'
      return { id: Service.decode(value).id, key: serviceKey({ kind, vip: canon(k.addr), port: k.port }) }
    })
    const reals: KernelView['reals'] = []
    for (const { key, value } of d.maps.reals.nonZeroEntries()) {
      const id = key.readUInt32LE(0)
      if (id === 0) continue
      const r = Real.decode(value)
      if (r.flags & RealFlags.REMOVED) continue
      reals.push({ id, serviceId: r.service_id, key: realServerKey({ address: canon(r.addr), port: r.port }), weight: r.weight, flags: r.flags })
    }
    return { services, reals }
  }

  stats(): { services: Map<number, StatTotals>; reals: Map<number, StatTotals> } {
    return { services: sumStats(this.d.maps.svcStats), reals: sumStats(this.d.maps.realStats) }
  }

  counters(): Record<string, number> {
    const names = statCounterNames()
    const out: Record<string, number> = {}
    for (const n of names) out[n] = 0
    const map = this.d.maps.counters
    for (const { key, value } of map.lookupBatch(256)) {
      let sum = 0n
      for (const slot of map.splitSlots(value)) sum += slot.readBigUInt64LE(0)
      const i = key.readUInt32LE(0)
      out[names[i] ?? `#${i}`] = Number(sum)
    }
    return out
  }

  conns(): ConnTable {
    return this.d.maps.conns
  }

  natRev(): ConnTable {
    return this.d.maps.natRev
  }

  realAddrs(): RealAddrs {
    return readRealAddrs(this.d)
  }

  timeouts(): ConnTimeouts {
    const zero = Buffer.alloc(4)
    return Settings.decode(this.d.maps.settings.lookup(zero) ?? Buffer.alloc(Settings.size))
  }

  serviceIndex(): ServiceIndex {
    const ids = new Map<string, number>()
    const persist = new Map<number, number>()
    for (const { key, value } of this.d.maps.services.lookupBatch(1024)) {
      const v = Service.decode(value)
      ids.set(key.toString('hex'), v.id)
      persist.set(v.id, v.persist_timeout_s)
    }
    const groups = new Map<string, ReturnType<typeof decodeGroupRanges>>()
    for (const { key, value } of this.d.maps.groupRanges.lookupBatch(1024)) groups.set(key.toString('hex'), decodeGroupRanges(value))
    return { ids, persist, groups }
  }

  connCounters(): ReturnType<typeof readConnCounters> {
    return readConnCounters(this.d)
  }

  reconcile(counts: ReadonlyMap<number, RealCounts>, since: unknown): void {
    const fixed = writeConnCounts(this.d, counts, since instanceof Map ? { since: since as ReturnType<typeof readConnCounters> } : {}).fixed
    if (fixed.length) this.log.debug({ component: 'sweeper', fixed: fixed.length }, 'connection counters rewritten')
  }

  unload(): void {
    this.close()
    unloadDataplane({ log: this.log })
  }

  close(): void {
    this.dp?.close()
    this.dp = undefined
  }
}
