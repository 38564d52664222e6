// SPDX-License-Identifier: GPL-2.0-only
// DirectBackend: the command lines' state without a daemon. It finds the data plane of the calling
// thread's network namespace through the kernel (so separate `ip netns exec NS xvsadm ...` runs meet
// the same maps), reads it back into a model, applies changes with the writer and reads statistics
// and connections for listings. Everything is synchronous underneath (the binding is); the async
// Backend surface is for the daemon's socket later.
import { execFileSync } from 'node:child_process'
import type { ServiceRef } from '../config'
import { diffModels, serviceKey } from '../model/diff'
import { validate } from '../model/validate'
import type { Model } from '../model/types'
import { BpfError, BpfMap, ifnameOf } from '../bpf'
import { ConnFlags, ConnKey, Limits, RealFlags, ServiceFlags, svcTableSlot } from '../dataplane/abi'
import { decodeAddr } from '../dataplane/codec'
import { findDataplane, loadDataplane, unloadDataplane, MAP_NAMES, type Dataplane } from '../dataplane/loader'
import {
  ABI_HAS_THRESHOLDS, countConns, effectiveTimeouts, flagNames, heldPart, methodName, modelRealServer, modelService, protoName, readConns,
  readCounters, readModel, readReals, readRealsInUse, readServices, readSettings, readStats, realsByService, schedName, secondsLeft, stateName, zeroStats,
  ZERO_STATS, type ServiceEntry,
} from '../dataplane/reader'
import { applyModel, type WriterOptions } from '../dataplane/writer'
import { readTable } from '../dataplane/tables'
import { defaultSettings } from '../model/defaults'
import { silentLogger, type Logger } from '../log'
import { ConfigError, XvsError } from '../errors'
import {
  NotLoadedError, StateError, type ApplyReport, type Backend, type ConnRow, type Edit, type InspectResult, type LoadReport,
  type LoadRequest, type MapKind, type ServiceRow, type Snapshot, type Status,
} from './backend'
import { applyEdits, refText, relocate } from './edits'

export interface DirectOptions {
  log?: Logger
  /**
   * When no data plane runs here: 'never' fails with NotLoadedError; 'writes' loads one for apply
   * and edits; 'always' for any command that reads or writes the maps (ipvsadm's habit).
   */
  autoLoad?: 'never' | 'writes' | 'always'
  /** Told after a data plane was loaded because none ran. */
  onAutoLoad?: (r: LoadReport) => void
  /** Next-hop resolution for the writer (tests and benchmarks). */
  resolve?: WriterOptions['resolve']
}

interface IpAddrJson { ifname: string; flags?: string[]; link_type?: string; addr_info?: { scope?: string }[] }

/** Every up interface of this network namespace with a global address, lo excepted: where IPVS would apply. */
export function defaultInterfaces(): string[] {
  let rows: IpAddrJson[]
  try {
    rows = JSON.parse(execFileSync('ip', ['-j', 'addr', 'show'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 5000 })) as IpAddrJson[]
  } catch (e) {
    throw new XvsError('ECOMMAND', `cannot list interfaces (ip -j addr show): ${(e as Error).message.split('\n')[0]}`)
  }
  return rows
    .filter((r) => r.ifname !== 'lo' && r.link_type !== 'loopback' && (r.flags ?? []).includes('UP') &&
      (r.addr_info ?? []).some((a) => a.scope === 'global'))
    .map((r) => r.ifname)
}

const u32 = (n: number): Buffer => { const b = Buffer.alloc(4); b.writeUInt32LE(n); return b }

/** Where a model asks the data plane to run, and with what connection table. */
function loadRequestFor(model?: Model): LoadRequest {
  const s = model?.settings ?? defaultSettings()
  return { ifaces: s.interfaces, connTableSize: s.connTableSize }
}

/** What the data plane will not do with `desired` (yet), compared with what runs. */
function notesFor(desired: Model, current: Model): string[] {
  const notes: string[] = []
  const cur = current.settings
  const want = desired.settings
  if (want.connTableSize !== cur.connTableSize) {
    notes.push(`the connection table holds ${cur.connTableSize} entries, not ${want.connTableSize}: a new size needs xvs unload and xvs load --conn-table-size ${want.connTableSize} (connections are lost)`)
  }
  const missing = want.interfaces.filter((i) => !cur.interfaces.includes(i))
  if (missing.length) notes.push(`not attached to ${missing.join(', ')}: attach with xvs load -i ${missing.join(' -i ')}`)
  for (const s of desired.services) {
    if (!ABI_HAS_THRESHOLDS && s.realServers.some((r) => r.upperThreshold || r.lowerThreshold)) notes.push(`${refText(s)}: connection thresholds (-x/-y) are not enforced by the data plane yet`)
    if (s.realServers.some((r) => r.check)) notes.push(`${refText(s)}: health checks are run by the xvs daemon, not by the command line`)
    if (s.sorryServer || s.quorum) notes.push(`${refText(s)}: sorry server and quorum are handled by the xvs daemon`)
  }
  return notes
}

/** address:port, an IPv6 address in brackets. */
const hostPort = (address: string, port: number): string => (address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`)

export class DirectBackend implements Backend {
  readonly #log: Logger
  readonly #opts: DirectOptions
  #dp: Dataplane | null = null

  constructor(opts: DirectOptions = {}) {
    this.#opts = opts
    this.#log = (opts.log ?? silentLogger).child({ component: 'cli' })
  }

  // ---- synchronous core (usable inside withNetns) ----

  /** The running data plane; loads one when none runs and `load` allows it. */
  dataplane(load: 'read' | 'write', model?: Model): Dataplane {
    if (this.#dp) return this.#dp
    this.#dp = findDataplane()
    if (this.#dp) return this.#dp
    const mode = this.#opts.autoLoad ?? 'never'
    if (mode === 'never' || (mode === 'writes' && load === 'read')) throw new NotLoadedError()
    const report = this.loadSync({ ...loadRequestFor(model), fallback: true })
    this.#opts.onAutoLoad?.(report)
    this.#dp = findDataplane()
    if (!this.#dp) throw new NotLoadedError({ hint: 'it was loaded but cannot be found again; check `ip link` for XDP programs' })
    return this.#dp
  }

  loadSync(req: LoadRequest): LoadReport {
    this.closeDataplane()
    const ifaces = req.ifaces.length ? req.ifaces : defaultInterfaces()
    if (ifaces.length === 0) {
      throw new XvsError('EDATAPLANE', 'no up interface with an address to attach to in this network namespace', { hint: 'name one with -i IFACE' })
    }
    const connTableSize = req.connTableSize ?? defaultSettings().connTableSize
    let mode = req.mode ?? 'native'
    const run = () => loadDataplane({ ifaces, mode, connTableSize, log: this.#log })
    let r: ReturnType<typeof loadDataplane>
    try {
      r = run()
    } catch (e) {
      // A driver without native XDP: an automatic load falls back to generic mode rather than fail.
      if (!(req.fallback && mode === 'native' && e instanceof BpfError && ['EOPNOTSUPP', 'ENOTSUP', 'EINVAL'].includes(e.code))) throw e
      mode = 'generic'
      r = run()
    }
    const report: LoadReport = {
      ifaces, mode, adopted: r.adopted, attached: r.attached, replaced: r.replaced, progId: r.dataplane.prog.id,
      connTableSize: r.dataplane.maps.conns.maxEntries,
    }
    r.dataplane.close()
    return report
  }

  statusSync(): Status | null {
    const dp = findDataplane()
    if (!dp) return null
    try {
      const info = dp.prog.info()
      const fill = (name: string, map: BpfMap, entries: number, max = map.maxEntries) => ({ name, entries, max })
      return {
        abiVersion: dp.abiVersion,
        prog: { id: info.id, name: info.name, tag: info.tag, runCount: info.runCount, runTimeNs: info.runTimeNs },
        attachments: dp.attachments(),
        pins: dp.pins,
        maps: [
          fill(MAP_NAMES.services, dp.maps.services, readServices(dp).length),
          // Real id 0 is never used.
          fill(MAP_NAMES.reals, dp.maps.reals, readReals(dp).length, dp.maps.reals.maxEntries - 1),
          fill(MAP_NAMES.conns, dp.maps.conns, dp.maps.conns.lookupBatch(8192).length),
          fill(MAP_NAMES.txPorts, dp.maps.txPorts, [...dp.maps.txPorts.keys()].length),
          fill(MAP_NAMES.natRev, dp.maps.natRev, dp.maps.natRev.lookupBatch(8192).length),
          fill(MAP_NAMES.laddrs, dp.maps.laddrs, readModel(dp).settings.localAddresses.length),
        ],
      }
    } finally {
      dp.close()
    }
  }

  currentSync(): Model {
    return readModel(this.dataplane('read'))
  }

  applySync(model: Model, opts: { dryRun?: boolean } = {}): ApplyReport {
    validate(model)
    const dp = this.dataplane(opts.dryRun ? 'read' : 'write', model)
    // xvs_reals read once, for the diff and for the writer
    const reals = readRealsInUse(dp)
    const current = readModel(dp, { reals })
    const report: ApplyReport = { diff: diffModels(current, heldPart(model, current)), notes: notesFor(model, current) }
    if (!opts.dryRun) report.result = applyModel(dp, model, this.#writerOptions(reals))
    return report
  }

  editSync(edits: readonly Edit[], opts: { dryRun?: boolean } = {}): ApplyReport {
    const dp = this.dataplane(opts.dryRun ? 'read' : 'write')
    const reals = readRealsInUse(dp)
    const current = readModel(dp, { reals })
    const next = applyEdits(current, edits)
    try {
      validate(next)
    } catch (e) {
      throw e instanceof ConfigError ? relocate(e, next) : e
    }
    const report: ApplyReport = { diff: diffModels(current, heldPart(next, current)), notes: notesFor(next, current) }
    if (!opts.dryRun) report.result = applyModel(dp, next, this.#writerOptions(reals))
    return report
  }

  #writerOptions(reals: WriterOptions['reals']): WriterOptions {
    return { log: this.#log, reals, ...(this.#opts.resolve ? { resolve: this.#opts.resolve } : {}) }
  }

  snapshotSync(): Snapshot {
    const dp = this.dataplane('read')
    const services = readServices(dp)
    const reals = readReals(dp)
    const svcStats = readStats(dp.maps.svcStats)
    const realStats = readStats(dp.maps.realStats)
    const timeouts = effectiveTimeouts(readSettings(dp))
    const persist = new Map(services.map((e) => [e.value.id, e.value.persist_timeout_s]))
    const counts = countConns(readConns(dp), reals, process.hrtime.bigint(), timeouts, persist)
    const counters = readCounters(dp)
    const byService = realsByService(reals)
    const rows: ServiceRow[] = services.map((e) => ({
      id: e.value.id,
      service: modelService(e, byService.get(e.value.id) ?? []),
      stats: svcStats.get(e.value.id) ?? { ...ZERO_STATS },
      reals: (byService.get(e.value.id) ?? []).map((r) => ({
        id: r.id,
        server: modelRealServer(r.value),
        flags: r.value.flags,
        stats: realStats.get(r.id) ?? { ...ZERO_STATS },
        active: counts.get(r.id)?.active ?? 0,
        inactive: counts.get(r.id)?.inactive ?? 0,
        persistent: counts.get(r.id)?.persistent ?? 0,
      })),
    }))
    return { takenAtMs: Number(process.hrtime.bigint()) / 1e6, connTableSize: dp.maps.conns.maxEntries, timeouts, services: rows, counters }
  }

  connsSync(): ConnRow[] {
    const dp = this.dataplane('read')
    const timeouts = effectiveTimeouts(readSettings(dp))
    const reals = new Map(readReals(dp, { removed: true }).map((r) => [r.id, r.value]))
    const persist = new Map(readServices(dp).map((e) => [e.value.id, e.value.persist_timeout_s]))
    const now = process.hrtime.bigint()
    const rows: ConnRow[] = []
    for (const { key, value } of readConns(dp)) {
      const expires = secondsLeft(value, now, timeouts, persist.get(value.service_id))
      if (expires <= 0) continue
      const real = reals.get(value.real_id)
      rows.push({
        proto: protoName(key.proto),
        client: { address: key.caddr, port: key.cport },
        virtual: { address: key.vaddr, port: key.vport },
        // dr and tun keep the virtual port (real.port is the service port for them).
        real: real ? { address: real.addr, port: real.port || key.vport } : null,
        state: stateName(value.state),
        expires,
        template: (value.flags & ConnFlags.TEMPLATE) !== 0,
        serviceId: value.service_id,
        realId: value.real_id,
        ...(value.flags & ConnFlags.FULLNAT && value.laddr ? { local: { address: decodeAddr(value.laddr, key.family), port: value.lport ?? 0 } } : {}),
      })
    }
    return rows.sort((a, b) => b.expires - a.expires)
  }

  #find(dp: Dataplane, ref: ServiceRef): ServiceEntry {
    const e = readServices(dp).find((s) => serviceKey(modelService(s, [])) === serviceKey(ref))
    if (!e) throw new StateError('no-service', `${refText(ref)}: no such service`)
    return e
  }

  zeroSync(service?: ServiceRef): void {
    const dp = this.dataplane('read')
    if (!service) {
      zeroStats(dp.maps.svcStats)
      zeroStats(dp.maps.realStats)
      zeroStats(dp.maps.counters)
      return
    }
    const e = this.#find(dp, service)
    zeroStats(dp.maps.svcStats, [e.value.id])
    zeroStats(dp.maps.realStats, readReals(dp).filter((r) => r.value.service_id === e.value.id).map((r) => r.id))
  }

  inspectSync(map: MapKind, opts: { service?: ServiceRef; all?: boolean } = {}): InspectResult {
    const dp = this.dataplane('read')
    const services = readServices(dp)
    const svcName = (id: number): string => {
      const e = services.find((s) => s.value.id === id)
      return e ? refText(modelService(e, [])) : `#${id}`
    }
    const chosen = opts.service ? [this.#find(dp, opts.service)] : services
    switch (map) {
      case 'services':
        return {
          map, sources: [MAP_NAMES.services], rows: chosen.map((e) => ({
            service: refText(modelService(e, [])), id: e.value.id, sched: schedName(e.value.sched),
            flags: flagNames(ServiceFlags, e.value.flags), active_table: e.value.active_table, table_size: e.value.table_size,
            num_reals: e.value.num_reals, persist_timeout_s: e.value.persist_timeout_s,
          })),
        }
      case 'reals':
        return {
          map, sources: [MAP_NAMES.reals], rows: readReals(dp, { removed: opts.all ?? false })
            .filter((r) => !opts.service || r.value.service_id === chosen[0]!.value.id)
            .map((r) => ({
              id: r.id, service: svcName(r.value.service_id), addr: r.value.addr, port: r.value.port, method: methodName(r.value.method),
              weight: r.value.weight, flags: flagNames(RealFlags, r.value.flags), ifindex: r.value.ifindex, mtu: r.value.mtu,
              dst_mac: r.value.dst_mac, src_mac: r.value.src_mac, tun_src: ['', '0.0.0.0', '::'].includes(r.value.tun_src) ? '-' : r.value.tun_src,
            })),
        }
      case 'tables': {
        const rows: Record<string, unknown>[] = []
        for (const e of chosen) {
          for (const half of [0, 1]) {
            const id = dp.maps.svcTables.lookup(u32(svcTableSlot(e.value.id, half)))?.readUInt32LE()
            if (!id) continue
            const inner = BpfMap.fromId(id)
            try {
              const all = readTable(inner)
              const live = Array.from(half === e.value.active_table ? all.subarray(0, e.value.table_size) : all)
              const share: Record<string, number> = {}
              for (const r of live) share[r === Limits.REAL_NONE ? 'none' : String(r)] = (share[r === Limits.REAL_NONE ? 'none' : String(r)] ?? 0) + 1
              rows.push({
                service: refText(modelService(e, [])), id: e.value.id, half, live: half === e.value.active_table, map_id: id,
                slots: live.length, chunks: inner.maxEntries, share, ...(opts.all ? { table: live } : { first: live.slice(0, 16).join(' ') }),
              })
            } finally {
              inner.close()
            }
          }
        }
        return { map, sources: [MAP_NAMES.svcTables], rows }
      }
      case 'conns':
        return {
          map, sources: [MAP_NAMES.conns], rows: this.connsSync().map((c) => ({
            proto: c.proto, client: hostPort(c.client.address, c.client.port), virtual: hostPort(c.virtual.address, c.virtual.port),
            real: c.real ? hostPort(c.real.address, c.real.port) : '-', real_id: c.realId, service_id: c.serviceId, state: c.state,
            expires_s: Math.floor(c.expires), template: c.template, local: c.local ? hostPort(c.local.address, c.local.port) : '-',
          })),
        }
      case 'counters': {
        const c = readCounters(dp)
        return { map, sources: [MAP_NAMES.counters], rows: Object.entries(c).filter(([, v]) => opts.all || v !== 0).map(([name, value]) => ({ name, value })) }
      }
      case 'settings': {
        const s = readSettings(dp)
        return {
          map, sources: [MAP_NAMES.settings], rows: Object.entries(s).map(([field, value]) => ({ field, value: value === '' ? '-' : value })),
        }
      }
      case 'stats': {
        const rows: Record<string, unknown>[] = []
        for (const [id, t] of readStats(dp.maps.svcStats)) rows.push({ kind: 'service', id, name: svcName(id), ...t })
        const reals = new Map(readReals(dp, { removed: true }).map((r) => [r.id, r.value]))
        for (const [id, t] of readStats(dp.maps.realStats)) {
          const r = reals.get(id)
          rows.push({ kind: 'real', id, name: r ? `${r.addr}:${r.port} in ${svcName(r.service_id)}` : '-', ...t })
        }
        return { map, sources: [MAP_NAMES.svcStats, MAP_NAMES.realStats], rows }
      }
      case 'rr-cursor':
        return {
          map, sources: [MAP_NAMES.rrCursor], rows: chosen.map((e) => ({
            service: refText(modelService(e, [])), id: e.value.id,
            cursors: (dp.maps.rrCursor.lookupPerCpu(u32(e.value.id)) ?? []).map((b) => b.readUInt32LE()).join(' '),
          })),
        }
      case 'tx-ports':
        return {
          map, sources: [MAP_NAMES.txPorts], rows: [...dp.maps.txPorts.entries()].map(({ key, value }) => {
            const ifindex = key.readUInt32LE()
            let ifname = '?'
            try { ifname = ifnameOf(value.readUInt32LE()) } catch { /* gone */ }
            return { ifindex, ifname }
          }),
        }
      case 'nat-rev':
        // nat/fullnat replies: the tuple a reply arrives with -> the client's flow it is translated to
        return {
          map, sources: [MAP_NAMES.natRev], rows: dp.maps.natRev.lookupBatch(8192).map(({ key, value }) => {
            const r = ConnKey.decode(key)
            const f = ConnKey.decode(value)
            return {
              proto: protoName(r.proto), reply_from: hostPort(r.caddr, r.cport), reply_to: hostPort(r.vaddr, r.vport),
              client: hostPort(f.caddr, f.cport), virtual: hostPort(f.vaddr, f.vport),
            }
          }),
        }
      case 'laddrs':
        return { map, sources: [MAP_NAMES.laddrs], rows: readModel(dp).settings.localAddresses.map((address) => ({ address })) }
    }
  }

  unloadSync(ifaces: string[]): string[] {
    this.closeDataplane()
    return unloadDataplane({ ...(ifaces.length ? { ifaces } : {}), log: this.#log })
  }

  closeDataplane(): void {
    this.#dp?.close()
    this.#dp = null
  }

  // ---- Backend ----

  async loaded(): Promise<boolean> {
    if (this.#dp) return true
    this.#dp = findDataplane()
    return this.#dp !== null
  }
  async status(): Promise<Status | null> { return this.statusSync() }
  async load(req: LoadRequest): Promise<LoadReport> { return this.loadSync(req) }
  async unload(ifaces: string[]): Promise<string[]> { return this.unloadSync(ifaces) }
  async current(): Promise<Model> { return this.currentSync() }
  async apply(model: Model, opts: { dryRun?: boolean } = {}): Promise<ApplyReport> { return this.applySync(model, opts) }
  async edit(edits: Edit[], opts: { dryRun?: boolean } = {}): Promise<ApplyReport> { return this.editSync(edits, opts) }
  async snapshot(): Promise<Snapshot> { return this.snapshotSync() }
  async conns(): Promise<ConnRow[]> { return this.connsSync() }
  async zero(service?: ServiceRef): Promise<void> { this.zeroSync(service) }
  async inspect(map: MapKind, opts: { service?: ServiceRef; all?: boolean } = {}): Promise<InspectResult> { return this.inspectSync(map, opts) }
  close(): void { this.closeDataplane() }
}

