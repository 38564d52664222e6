// SPDX-License-Identifier: GPL-2.0-only
// The director daemon: one process that keeps a data plane running what a config file says, with
// health applied, as keepalived's checker and pulse/lvs/nanny do for IPVS.
//
// Life: start() reads the config (an invalid one is fatal at start), loads the director program (a
// running one's maps are adopted, its attachments replaced atomically: no packet sees no program, no
// flow is lost), writes the desired state, then runs the health engine, the connection sweeper, the
// control socket and /metrics. reload() (SIGHUP, `xvs reload`) reads the file again: a file that does
// not parse or validate, or that the data plane refuses, changes nothing and is reported with its
// position; otherwise only what changed is written (the writer diffs against the maps), health checks
// whose definition did not change keep their state. A health transition recomputes the desired state
// (effective.ts) and writes the difference. stop() leaves the data plane forwarding unless told to
// detach: like ipvsadm, the daemon is not the data plane's owner of last resort.
import fs from 'node:fs'
import path from 'node:path'
import { loadConfig, parseConfig, toYaml, type ConfigFormat, type ParsedConfig } from '../config'
import { ConfigError, XvsError } from '../errors'
import { createChecker, HealthEngine } from '../health'
import type { Checker, CheckResult, CheckSpec, Health } from '../health/types'
import { silentLogger, type Logger } from '../log'
import { deepEqual, realServerKey, serviceKey } from '../model/diff'
import type { Model } from '../model/types'
import type { ApplyResult, WriterOptions } from '../dataplane/writer'
import { ResolveError } from '../dataplane/neigh'
import { systemClock, type Clock, type TimerHandle } from '../util/clock'
import type { XdpMode } from '../bpf'
import { healthTargets, targetKey, type HealthTarget, type SkippedCheck } from './checks'
import { effectiveModel, type EffectiveResult, type ServerState, type ServiceOutcome } from './effective'
import { BpfHost, type DataplaneHost, type DataplaneInfo, type HostLoadInfo, type KernelView } from './host'
import {
  CHECK_LATENCY_BOUNDS, Histogram, RateEstimator, renderMetrics, type MetricsSnapshot, type RealMetrics, type ServiceMetrics, type Totals,
} from './metrics'
import { NextHopCache } from './nexthop'
import { ConnSweeper, type ConnTable, type RealCounts, type SweepReport } from './sweeper'
import { ControlServer, type Handlers } from './control'
import { MetricsServer } from './http'
import { PROTOCOL_VERSION } from './protocol'
import { DirectorFailover, type DirectorFailoverOptions } from '../ha/director'
import type { FailoverStatus } from '../ha/status'

export class DaemonError extends XvsError {
  constructor(message: string, opts: { hint?: string; cause?: unknown } = {}) {
    super('EDAEMON', message, opts)
  }
}

export interface DaemonOptions {
  /** The config file (any of the four formats). */
  config: string
  /** Its format, when the name and content do not tell. */
  format?: ConfigFormat
  log?: Logger
  clock?: Clock
  /** Default BpfHost: the data plane of this network namespace. */
  host?: DataplaneHost
  readFile?: (path: string) => string
  /** Interfaces to attach to instead of the config's settings.interfaces. */
  interfaces?: string[]
  mode?: XdpMode
  /** The director object; default the installed one. */
  object?: string
  /** Control socket path; null: none. Default /run/xvs/xvs.sock. */
  socket?: string | null
  /** /metrics listen address ("127.0.0.1:9110"); null: none. */
  metrics?: string | null
  /** Detach the data plane when the daemon stops (default: leave it forwarding). */
  detachOnExit?: boolean
  /** Health checkers for specs (tests); default createChecker. */
  createChecker?: (spec: CheckSpec) => Checker
  /** Health engine tuning: first-run spread (default 10 s), attempts in flight (default 1024), randomness. */
  health?: { spreadMs?: number; maxInFlight?: number; random?: () => number }
  /** Sweeper tuning; false: no sweeper. */
  sweeper?: { intervalMs?: number; batchSize?: number; nowNs?: () => bigint } | false
  /** Rate estimator period; 0: no rates. Default 2000 ms. */
  rateIntervalMs?: number
  /** Next-hop resolution under the daemon's cache (see nexthop.ts); default the kernel's tables. */
  resolve?: WriterOptions['resolve']
  /** Failover (the config's vrrp section): test seams; false: no VRRP even when the config has some. */
  failover?: Pick<DirectorFailoverOptions, 'failover' | 'sync'> | false
}

export interface ReloadReport {
  generation: number
  format: ConfigFormat
  file: string
  /** What the writer did. */
  result: ApplyResult | null
  health: { added: number; removed: number; kept: number; skipped: SkippedCheck[] }
  interfaces: { attached: string[]; detached: string[] }
  warnings: string[]
}

interface TargetStats { ok: number; failed: number; transitions: number; lastLatencyMs?: number }

interface Source { kind: 'file' | 'text'; file: string; format: ConfigFormat | undefined }

const RETRY_UNRESOLVED_MS = 10_000

let cachedVersion: string | undefined
export function xvsVersion(): string {
  if (cachedVersion) return cachedVersion
  try {
    let dir = __dirname
    for (let i = 0; i < 6 && !fs.existsSync(path.join(dir, 'package.json')); i++) dir = path.dirname(dir)
    cachedVersion = (JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { version?: string }).version ?? 'unknown'
  } catch {
    cachedVersion = 'unknown'
  }
  return cachedVersion
}

/** A ConnTable that asks `get` for the map at every call: the host's maps change on upgrade. */
function lateTable(get: () => ConnTable): ConnTable {
  return {
    get keySize() { return get().keySize },
    get valueBytes() { return get().valueBytes },
    get maxEntries() { return get().maxEntries },
    lookupBatchRaw: (t, n) => get().lookupBatchRaw(t, n),
    lookup: (k) => get().lookup(k),
    deleteBatchRaw: (k, n) => get().deleteBatchRaw(k, n),
  }
}

export class Daemon {
  readonly log: Logger
  private readonly clock: Clock
  private readonly host: DataplaneHost
  private readonly engine: HealthEngine
  private readonly hops: NextHopCache
  private readonly resolve: NonNullable<WriterOptions['resolve']>
  private readonly makeChecker: (spec: CheckSpec) => Checker
  private readonly sweeper: ConnSweeper | undefined
  private readonly rates = new RateEstimator()
  private readonly latency = new Histogram(CHECK_LATENCY_BOUNDS)
  private control: ControlServer | undefined
  private metricsServer: MetricsServer | undefined
  private metricsAddress: { host: string; port: number } | undefined

  private parsed: ParsedConfig | undefined
  private source: Source
  private generation = 0
  private readonly targets = new Map<string, HealthTarget>()
  private readonly targetStats = new Map<string, TargetStats>()
  private quorum = new Map<string, boolean>()
  private effective: EffectiveResult | undefined
  private excluded = new Map<string, string>()
  private loadInfo: HostLoadInfo | undefined
  private kernelAtStart: KernelView | undefined
  private lastReload: { ok: boolean; at: number; error?: { code: string; message: string; where?: string } } | undefined
  private readonly counts = { reloadsOk: 0, reloadsFailed: 0, appliesOk: 0, appliesFailed: 0 }
  private lastSweep: { counts: Map<number, RealCounts>; scanned: number; durationMs: number } | undefined
  private recomputeTimer: TimerHandle | undefined
  private retryTimer: TimerHandle | undefined
  private rateTimer: TimerHandle | undefined
  private readonly startedAt = Date.now()
  private running = false
  private failover: DirectorFailover | undefined

  constructor(readonly opts: DaemonOptions) {
    this.log = (opts.log ?? silentLogger).child({ component: 'daemon' })
    this.clock = opts.clock ?? systemClock
    const root = opts.log ?? silentLogger
    this.host = opts.host ?? new BpfHost({ log: root })
    this.engine = new HealthEngine({ clock: this.clock, log: root, ...opts.health })
    this.hops = new NextHopCache({ clock: this.clock, ...(opts.resolve ? { resolve: opts.resolve } : {}) })
    this.resolve = this.hops.resolve
    this.makeChecker = opts.createChecker ?? createChecker
    this.source = { kind: 'file', file: opts.config, format: opts.format }
    if (opts.sweeper !== false) {
      const s = opts.sweeper ?? {}
      this.sweeper = new ConnSweeper({
        conns: lateTable(() => this.host.conns()),
        timeouts: () => this.host.timeouts(),
        services: () => this.host.serviceIndex(),
        ...(this.host.natRev && this.host.realAddrs ? {
          natRev: lateTable(() => this.host.natRev!()),
          realAddrs: () => this.host.realAddrs!(),
        } : {}),
        clock: this.clock, log: root,
        ...(s.intervalMs !== undefined ? { intervalMs: s.intervalMs } : {}),
        ...(s.batchSize !== undefined ? { batchSize: s.batchSize } : {}),
        ...(s.nowNs ? { nowNs: s.nowNs } : {}),
        begin: () => this.host.connCounters?.(),
        reconcile: (counts, since) => {
          this.host.reconcile?.(counts, since)
          const last = this.sweeper?.totals.last
          this.lastSweep = { counts: new Map(counts), scanned: last?.scanned ?? 0, durationMs: last?.durationMs ?? 0 }
        },
      })
    }
    this.engine.on('transition', (e) => {
      const st = this.statsOf(e.key)
      st.transitions++
      this.scheduleRecompute()
    })
    this.engine.on('check', (e) => {
      this.observe(e.key, e.result, e.final)
      if (e.final && e.result.weight !== undefined) this.scheduleRecompute()
    })
  }

  // --- life -------------------------------------------------------------------------------------

  /** Read the config, load or adopt the data plane, apply, and start serving. Throws when it cannot run. */
  async start(): Promise<void> {
    const parsed = this.read() // an invalid config at start is fatal: nothing to keep in force
    const ifaces = this.wantedInterfaces(parsed.model, this.host.runningInterfaces())
    if (ifaces.length === 0) {
      throw new ConfigError('no interface to attach the data plane to', {
        where: this.source.file, hint: 'list them in settings.interfaces, or give --interface',
      })
    }
    this.loadInfo = this.host.load({
      ifaces, connTableSize: parsed.model.settings.connTableSize,
      ...(this.opts.mode ? { mode: this.opts.mode } : {}), ...(this.opts.object ? { object: this.opts.object } : {}),
    })
    const info = this.host.info()
    this.log.info({ adopted: this.loadInfo.adopted, progId: info.progId, connsMapId: info.connsMapId, attached: this.loadInfo.attached, replaced: this.loadInfo.replaced },
      this.loadInfo.adopted ? 'adopted the running data plane' : 'data plane loaded')
    if (this.loadInfo.adopted) this.kernelAtStart = this.host.view()
    try {
      const report = this.install(parsed, 'start')
      this.lastReload = { ok: true, at: Date.now() }
      this.log.info({ generation: report.generation, file: report.file, format: report.format, checks: this.targets.size, result: report.result }, 'config applied')
    } catch (err) {
      this.clearTimers()
      // A data plane we loaded fresh goes again; an adopted one keeps forwarding what it had.
      if (!this.loadInfo.adopted) {
        try { this.host.unload() } catch (e) { this.log.error({ err: e }, 'unloading after a failed start failed') }
      } else this.host.close()
      throw err
    } finally {
      this.kernelAtStart = undefined
    }
    this.running = true
    this.engine.start()
    this.sweeper?.start()
    this.scheduleRates()
    this.startFailover(parsed)
    if (this.opts.socket !== null) {
      this.control = new ControlServer(this.opts.socket ?? '/run/xvs/xvs.sock', this.handlers(), { log: this.opts.log ?? silentLogger })
      await this.control.listen()
    }
    if (this.opts.metrics !== null && this.opts.metrics !== undefined) {
      this.metricsServer = new MetricsServer(() => this.metricsText(), { log: this.opts.log ?? silentLogger })
      this.metricsAddress = await this.metricsServer.listen(this.opts.metrics)
    }
  }

  /** Stop serving and checking. The data plane keeps forwarding unless `detach` (or --detach-on-exit). */
  async stop(opts: { detach?: boolean } = {}): Promise<void> {
    const wasRunning = this.running
    this.running = false
    this.clearTimers()
    // Failover first: a master resigns (priority 0) and removes its addresses while the data plane
    // still forwards, so the backup takes over at once.
    this.failover?.stop()
    this.failover = undefined
    await Promise.all([this.control?.close(), this.metricsServer?.close(), this.engine.stop(), this.sweeper?.stop()])
    this.control = undefined
    this.metricsServer = undefined
    const detach = opts.detach ?? this.opts.detachOnExit ?? false
    if (detach) {
      this.host.unload()
      this.log.info('data plane detached (--detach-on-exit)')
    } else {
      this.host.close()
      if (wasRunning) this.log.info('daemon stopped; the data plane keeps forwarding')
    }
  }

  private clearTimers(): void {
    for (const t of [this.recomputeTimer, this.retryTimer, this.rateTimer]) if (t !== undefined) this.clock.clearTimeout(t)
    this.recomputeTimer = this.retryTimer = this.rateTimer = undefined
  }

  /** VRRP and connection sync, when the config has a vrrp section. */
  private startFailover(parsed: ParsedConfig): void {
    if (!parsed.model.vrrp || this.opts.failover === false) return
    const host = this.host
    this.failover = new DirectorFailover({
      model: parsed.model,
      log: this.opts.log ?? silentLogger,
      clock: this.clock,
      dataplane: () => {
        const d = host.dataplane?.()
        if (!d) throw new DaemonError('connection sync needs the BPF data plane')
        return d
      },
      hooks: {
        // The data plane serves every configured service all the time; what moves is who answers ARP.
        serve: (instance, addresses) => this.log.info({ instance, addresses }, 'failover: this director now holds the addresses'),
        release: (instance, addresses) => this.log.info({ instance, addresses }, 'failover: addresses released'),
      },
      ...(this.opts.failover ?? {}),
    })
    this.failover.start()
    this.feedFailover()
  }

  /** Tracked services: up while at least one real server is in service (not down, not the sorry server). */
  private feedFailover(): void {
    if (!this.failover || !this.effective || !this.parsed) return
    const total = new Map(this.parsed.model.services.map((s) => [serviceKey(s), s.realServers.length]))
    this.failover.serviceStates(this.effective.services.map((o) => ({
      key: o.key, up: !o.sorryActive && (total.get(o.key) ?? 0) - o.removed.length - o.quiesced.length > 0,
    })))
  }

  /** Where /metrics listens, once started. */
  get metricsListen(): { host: string; port: number } | undefined {
    return this.metricsAddress
  }

  // --- config -----------------------------------------------------------------------------------

  private read(): ParsedConfig {
    const { file, format } = this.source
    const readFile = this.opts.readFile
    return loadConfig(file, { ...(format ? { from: format } : {}), ...(readFile ? { readFile } : {}) })
  }

  /** SIGHUP / `xvs reload`: read the config file again and apply it. Throws (and changes nothing) when it is refused. */
  reload(): ReloadReport {
    this.source = { kind: 'file', file: this.opts.config, format: this.opts.format }
    return this.guarded('reload', () => this.read())
  }

  /** `apply`: run this text as the config until the next reload. */
  applyText(text: string, opts: { format?: ConfigFormat; file?: string } = {}): ReloadReport {
    const file = opts.file ?? '<apply>'
    return this.guarded('apply', () => {
      const parsed = parseConfig(text, file, opts.format)
      this.source = { kind: 'text', file, format: parsed.format }
      return parsed
    })
  }

  private guarded(why: 'reload' | 'apply', read: () => ParsedConfig): ReloadReport {
    try {
      const report = this.install(read(), why)
      this.counts.reloadsOk++
      this.lastReload = { ok: true, at: Date.now() }
      this.log.info({ generation: report.generation, file: report.file, result: report.result, health: { ...report.health, skipped: report.health.skipped.length }, interfaces: report.interfaces },
        why === 'reload' ? 'config reloaded' : 'config applied from the control socket')
      for (const w of report.warnings) this.log.warn({ file: report.file }, w)
      return report
    } catch (err) {
      this.counts.reloadsFailed++
      const e = err as XvsError
      this.lastReload = { ok: false, at: Date.now(), error: { code: e.code ?? 'EINTERNAL', message: e.message, ...(err instanceof ConfigError && err.where ? { where: err.where } : {}) } }
      this.log.error({ err, where: err instanceof ConfigError ? err.where : undefined }, `${why} refused; the running config stays in force`)
      throw err
    }
  }

  private wantedInterfaces(model: Model, current: string[]): string[] {
    const want = this.opts.interfaces?.length ? this.opts.interfaces : model.settings.interfaces
    return [...new Set(want.length ? want : current)]
  }

  /**
   * Make `parsed` the running config: health targets, desired state, interfaces. Either all of it
   * happens, or (an exception) none: the maps are written back to what they ran before.
   */
  private install(parsed: ParsedConfig, why: 'start' | 'reload' | 'apply'): ReloadReport {
    const { targets, skipped } = healthTargets(parsed.model.services, parsed.format)
    const kept: HealthTarget[] = []
    const added: { t: HealthTarget; checker: Checker; initial: Health }[] = []
    for (const t of targets) {
      const old = this.targets.get(t.key)
      if (old && old.identity === t.identity) { kept.push(t); continue }
      let checker: Checker
      try {
        checker = this.makeChecker(t.spec)
      } catch (e) {
        const where = parsed.locations.locator(parsed.model)(t.path) ?? this.source.file
        throw new ConfigError(`${t.path}: ${(e as Error).message}`, { where, field: t.path, cause: e })
      }
      added.push({ t, checker, initial: this.initialHealth(t, parsed.model) })
    }
    const wantedKeys = new Set(targets.map((t) => t.key))
    const removed = [...this.targets.keys()].filter((k) => !wantedKeys.has(k))
    const warnings: string[] = parsed.warnings.map((w) => `${w.where}: ${w.message}`)
    for (const s of skipped) warnings.push(`health check of ${s.key} not run: ${s.reason}`)
    const vrrpChange = this.failover?.reloadWarning(parsed.model)
    if (vrrpChange) warnings.push(vrrpChange)

    // Health as it will be: kept targets as the engine knows them, new ones at their initial state.
    const health = this.healthStates(new Map(added.map((a) => [a.t.key, { health: a.initial, onFailure: a.t.onFailure }])), new Set(removed), kept)
    if (why !== 'start') this.hops.flush()
    const before = this.effective
    const result = this.applyDesired(parsed.model, health, why)

    // Interfaces: attach new ones (the program is loaded again and replaces the running one
    // atomically, maps kept), detach the ones no longer named.
    let attached: string[] = []
    let detached: string[] = []
    if (why !== 'start') {
      try {
        const current = this.host.info().attachments.map((a) => a.ifname)
        const want = this.wantedInterfaces(parsed.model, current)
        const add = want.filter((i) => !current.includes(i))
        const drop = current.filter((i) => !want.includes(i))
        if (add.length) {
          const r = this.host.load({ ifaces: want, ...(this.opts.mode ? { mode: this.opts.mode } : {}), ...(this.opts.object ? { object: this.opts.object } : {}) })
          attached = r.attached
        }
        if (drop.length) { this.host.detach(drop); detached = drop }
        if (this.parsed && parsed.model.settings.connTableSize !== this.parsed.model.settings.connTableSize) {
          warnings.push(`conn_table_size ${parsed.model.settings.connTableSize} takes effect only when the data plane is loaded afresh (its table keeps ${this.host.info().connTableSize} entries)`)
        }
      } catch (err) {
        if (before) this.rollback(before)
        throw err
      }
    }

    // Commit.
    for (const k of removed) {
      this.engine.remove(k)
      this.targets.delete(k)
      this.targetStats.delete(k)
    }
    for (const a of added) {
      if (this.engine.has(a.t.key)) { this.engine.remove(a.t.key); this.targetStats.delete(a.t.key) }
      this.engine.add({
        key: a.t.key, address: a.t.address, port: a.t.port, checker: a.checker,
        policy: { ...a.t.policy, initial: a.initial },
      })
      this.targets.set(a.t.key, a.t)
    }
    this.parsed = parsed
    this.generation++
    return {
      generation: this.generation, format: parsed.format, file: this.source.file, result,
      health: { added: added.length, removed: removed.length, kept: kept.length, skipped },
      interfaces: { attached, detached }, warnings,
    }
  }

  /**
   * A new target's first state. Fresh data plane: up (keepalived's default). Adopting one at start:
   * what the maps say (a server the previous daemon had taken out or quiesced starts down, so a
   * restart does not put a failed server back for a round of checks; its first good check brings it
   * back at once).
   */
  private initialHealth(t: HealthTarget, model: Model): Health {
    const k = this.kernelAtStart
    if (!k) return 'up'
    const svc = k.services.find((s) => s.key === t.service)
    if (!svc) return 'up'
    const rs = k.reals.find((r) => r.serviceId === svc.id && r.key === t.server)
    if (!rs) return 'down'
    const configured = model.services.find((s) => serviceKey(s) === t.service)?.realServers.find((r) => realServerKey(r) === t.server)?.weight
    return rs.weight === 0 && configured !== 0 ? 'down' : 'up'
  }

  // --- desired state --------------------------------------------------------------------------------

  /** Health of every checked server, for effectiveModel. */
  private healthStates(initial = new Map<string, ServerState>(), skip = new Set<string>(), only?: HealthTarget[]): Map<string, ServerState> {
    const out = new Map<string, ServerState>(initial)
    const list = only ?? [...this.targets.values()]
    for (const t of list) {
      if (skip.has(t.key) || out.has(t.key)) continue
      const st = this.engine.status(t.key)
      if (!st) continue
      out.set(t.key, { health: st.health, onFailure: t.onFailure, ...(st.dynamicWeight !== undefined ? { dynamicWeight: st.dynamicWeight } : {}) })
    }
    return out
  }

  /**
   * Compute what the data plane should run and write it. Real servers whose next hop cannot be
   * resolved are left out (and count as down), so one unreachable server never blocks the rest.
   */
  private applyDesired(model: Model, health: Map<string, ServerState>, why: string, opts: { skipIfSame?: boolean } = {}): ApplyResult | null {
    let eff: EffectiveResult
    let result: ApplyResult | null = null
    const failures = new Map<string, string>()
    const cached = this.hops.failures()
    const out = (address: string): boolean => failures.has(address) || cached.has(address)
    for (;;) {
      const exclude = new Set<string>()
      for (const s of model.services) {
        const sk = serviceKey(s)
        for (const r of s.realServers) if (out(r.address)) exclude.add(targetKey(sk, realServerKey(r)))
      }
      eff = effectiveModel(model, { health, quorum: this.quorum, exclude })
      // A sorry server that cannot be reached is no help either.
      for (const s of eff.model.services) s.realServers = s.realServers.filter((r) => !out(r.address))
      if (opts.skipIfSame && this.effective && deepEqual(eff.model, this.effective.model)) break
      const known = failures.size
      try {
        // reuseHops off: the NextHopCache decides when a hop is looked up again
        result = this.host.apply(eff.model, { log: this.opts.log ?? silentLogger, resolve: this.resolveRecording(failures), reuseHops: false })
        this.counts.appliesOk++
        break
      } catch (err) {
        // Another address failed: it is left out next round (so this ends).
        if (err instanceof ResolveError && failures.size > known) continue
        this.counts.appliesFailed++
        throw err
      }
    }
    this.noteExclusions(failures, model)
    this.noteOutcomes(eff.services, why)
    this.quorum = eff.quorum
    this.effective = eff
    this.feedFailover()
    return result
  }

  /** The resolver, noting every address that fails (and why). */
  private resolveRecording(failures: Map<string, string>): NonNullable<WriterOptions['resolve']> {
    return (address, o) => {
      try {
        return this.resolve(address, o)
      } catch (err) {
        failures.set(address, (err as Error).message)
        throw err
      }
    }
  }

  private noteExclusions(failures: Map<string, string>, model: Model): void {
    const now = new Map<string, string>()
    const inModel = new Set(model.services.flatMap((s) => [...s.realServers.map((r) => r.address), ...(s.sorryServer ? [s.sorryServer.address] : [])]))
    for (const [a, e] of failures) now.set(a, e)
    for (const [a, e] of this.hops.failures()) if (!now.has(a) && inModel.has(a)) now.set(a, e.message)
    for (const [a, why] of now) if (!this.excluded.has(a)) this.log.error({ address: a, cause: why }, 'real server left out: its next hop cannot be resolved')
    for (const a of this.excluded.keys()) if (!now.has(a)) this.log.info({ address: a }, 'real server next hop resolved again')
    this.excluded = now
    if (now.size && this.retryTimer === undefined) {
      this.retryTimer = this.clock.setTimeout(() => {
        this.retryTimer = undefined
        if (!this.running) return
        this.hops.retry()
        this.recompute('retry')
      }, RETRY_UNRESOLVED_MS)
    }
  }

  private noteOutcomes(outcomes: ServiceOutcome[], why: string): void {
    const before = new Map((this.effective?.services ?? []).map((o) => [o.key, o]))
    for (const o of outcomes) {
      const b = before.get(o.key)
      if (o.sorryActive && !b?.sorryActive) this.log.warn({ service: o.key, why }, 'sorry server takes the service: no real server is available')
      if (!o.sorryActive && b?.sorryActive) this.log.info({ service: o.key, why }, 'sorry server out: real servers are back')
      if (b && b.quorumUp !== o.quorumUp) this.log[o.quorumUp ? 'info' : 'warn']({ service: o.key, upWeight: o.upWeight }, o.quorumUp ? 'service quorum gained' : 'service quorum lost')
      for (const k of o.removed) if (!b?.removed.includes(k)) this.log.info({ service: o.key, real: k, why }, 'real server taken out')
      for (const k of o.quiesced) if (!b?.quiesced.includes(k)) this.log.info({ service: o.key, real: k, why }, 'real server quiesced')
      for (const k of [...(b?.removed ?? []), ...(b?.quiesced ?? [])]) {
        if (!o.removed.includes(k) && !o.quiesced.includes(k)) this.log.info({ service: o.key, real: k, why }, 'real server back in service')
      }
    }
  }

  private rollback(before: EffectiveResult): void {
    try {
      this.host.apply(before.model, { log: this.opts.log ?? silentLogger, resolve: this.resolve, reuseHops: false })
      this.effective = before
    } catch (e) {
      this.log.error({ err: e }, 'restoring the previous state failed')
    }
  }

  private scheduleRecompute(): void {
    if (this.recomputeTimer !== undefined || !this.running) return
    this.recomputeTimer = this.clock.setTimeout(() => {
      this.recomputeTimer = undefined
      this.recompute('health')
    }, 0)
  }

  /** Health changed (or a retry is due): write the new desired state if it differs. */
  private recompute(why: string): void {
    if (!this.parsed || !this.running) return
    try {
      this.applyDesired(this.parsed.model, this.healthStates(), why, { skipIfSame: true })
    } catch (err) {
      this.log.error({ err, why }, 'applying health changes failed; will try again on the next change')
    }
  }

  private statsOf(key: string): TargetStats {
    let s = this.targetStats.get(key)
    if (!s) this.targetStats.set(key, (s = { ok: 0, failed: 0, transitions: 0 }))
    return s
  }

  private observe(key: string, r: CheckResult, final: boolean): void {
    const s = this.statsOf(key)
    s.lastLatencyMs = r.latencyMs
    this.latency.observe(r.latencyMs / 1000)
    if (!final) return
    if (r.ok) s.ok++
    else s.failed++
  }

  // --- rates, sweeper -------------------------------------------------------------------------------

  private scheduleRates(): void {
    const every = this.opts.rateIntervalMs ?? 2000
    if (every <= 0) return
    this.rateTimer = this.clock.setTimeout(() => {
      this.rateTimer = undefined
      if (!this.running) return
      try {
        this.sampleRates()
      } catch (err) {
        this.log.warn({ err }, 'reading statistics for rates failed')
      }
      this.scheduleRates()
    }, every)
  }

  private sampleRates(): void {
    const view = this.host.view()
    const stats = this.host.stats()
    const totals = new Map<string, Totals>()
    const svcKey = new Map(view.services.map((s) => [s.id, s.key]))
    for (const s of view.services) totals.set(`s|${s.key}`, stats.services.get(s.id) ?? ZERO)
    for (const r of view.reals) {
      const sk = svcKey.get(r.serviceId)
      if (sk) totals.set(`r|${targetKey(sk, r.key)}`, stats.reals.get(r.id) ?? ZERO)
    }
    this.rates.sample(this.clock.now(), totals)
  }

  /** A sweeper pass now. */
  async sweep(): Promise<SweepReport> {
    if (!this.sweeper) throw new DaemonError('the connection sweeper is off')
    return this.sweeper.sweep()
  }

  /**
   * Upgrade: load the director program again (a newer build, or `object`) and swap it in through the
   * attachments atomically; every map, the connection table included, is kept.
   */
  upgrade(object?: string): { previousProgId: number; progId: number; replaced: string[] } {
    const before = this.host.info()
    const ifaces = before.attachments.map((a) => a.ifname)
    if (ifaces.length === 0) throw new DaemonError('the data plane is attached nowhere; nothing to upgrade')
    const r = this.host.load({ ifaces, ...(this.opts.mode ? { mode: this.opts.mode } : {}), ...((object ?? this.opts.object) ? { object: object ?? this.opts.object! } : {}) })
    const after = this.host.info()
    if (after.connsMapId !== before.connsMapId) this.log.error({ before: before.connsMapId, after: after.connsMapId }, 'upgrade replaced the connection table')
    this.log.info({ previousProgId: before.progId, progId: r.progId, replaced: r.replaced }, 'data plane program upgraded')
    return { previousProgId: before.progId, progId: r.progId, replaced: r.replaced }
  }

  // --- views ----------------------------------------------------------------------------------------

  status(): DaemonStatus {
    const statuses = this.engine.statuses()
    let dataplane: DataplaneInfo | null = null
    try { dataplane = this.host.info() } catch { /* stopped */ }
    const t = this.sweeper?.totals
    return {
      pid: process.pid, version: xvsVersion(), protocol: PROTOCOL_VERSION,
      startedAt: new Date(this.startedAt).toISOString(), uptimeS: Math.round((Date.now() - this.startedAt) / 1000),
      config: {
        file: this.source.file, source: this.source.kind, format: this.parsed?.format ?? null, generation: this.generation,
        lastReload: this.lastReload ? { ...this.lastReload, at: new Date(this.lastReload.at).toISOString() } : null,
        reloads: { ok: this.counts.reloadsOk, failed: this.counts.reloadsFailed },
      },
      dataplane: dataplane ? { ...dataplane, adopted: this.loadInfo?.adopted ?? false } : null,
      health: {
        targets: statuses.length, up: statuses.filter((s) => s.health === 'up').length,
        down: statuses.filter((s) => s.health === 'down').length, inFlight: this.engine.inFlight,
      },
      unresolved: [...this.excluded].map(([address, error]) => ({ address, error })),
      sweeper: t ? { passes: t.passes, scanned: t.scanned, expired: t.expired, stale: t.stale, raced: t.raced, errors: t.errors, lastEntries: t.last?.scanned ?? null, lastDurationMs: t.last?.durationMs ?? null } : null,
      socket: this.control?.file ?? null,
      metrics: this.metricsAddress ?? null,
      detachOnExit: this.opts.detachOnExit ?? false,
      vrrp: this.failover?.status() ?? null,
    }
  }

  /** Every health-check target. */
  health(): HealthView[] {
    const now = this.clock.now()
    return [...this.targets.values()].map((t) => {
      const st = this.engine.status(t.key)
      const s = this.targetStats.get(t.key)
      return {
        key: t.key, service: t.service, server: t.server, type: t.spec.type, address: t.address, port: t.port,
        health: st?.health ?? 'up', sinceS: st ? (now - st.since) / 1000 : 0,
        okStreak: st?.okStreak ?? 0, failStreak: st?.failStreak ?? 0, checks: st?.checks ?? 0,
        last: st?.lastResult ? { ok: st.lastResult.ok, detail: st.lastResult.detail, latencyMs: st.lastResult.latencyMs, agoS: (now - (st.lastCheckAt ?? now)) / 1000 } : null,
        dynamicWeight: st?.dynamicWeight ?? null, onFailure: t.onFailure,
        counts: { ok: s?.ok ?? 0, failed: s?.failed ?? 0, transitions: s?.transitions ?? 0 },
      }
    })
  }

  /** Services and real servers: configured, effective, health, statistics, rates, connection counts. */
  list(): ServiceMetrics[] {
    const model = this.parsed?.model
    if (!model) return []
    let view: KernelView = { services: [], reals: [] }
    let stats: { services: Map<number, Totals>; reals: Map<number, Totals> } = { services: new Map(), reals: new Map() }
    try {
      view = this.host.view()
      stats = this.host.stats()
    } catch (err) {
      this.log.warn({ err }, 'reading the data plane for a listing failed')
    }
    const svcId = new Map(view.services.map((s) => [s.key, s.id]))
    const realByKey = new Map(view.reals.map((r) => [`${r.serviceId}|${r.key}`, r]))
    const counts = this.lastSweep?.counts
    const outcomes = new Map((this.effective?.services ?? []).map((o) => [o.key, o]))
    const effServices = new Map((this.effective?.model.services ?? []).map((s) => [serviceKey(s), s]))
    return model.services.map((s): ServiceMetrics => {
      const sk = serviceKey(s)
      const id = svcId.get(sk)
      const o = outcomes.get(sk)
      const eff = effServices.get(sk)
      const real = (key: string): { id: number } | undefined => (id === undefined ? undefined : realByKey.get(`${id}|${key}`))
      const reals: RealMetrics[] = s.realServers.map((rs) => {
        const rk = realServerKey(rs)
        const tk = targetKey(sk, rk)
        const k = real(rk)
        const effR = eff?.realServers.find((x) => realServerKey(x) === rk)
        const st = this.targets.has(tk) ? this.engine.status(tk) : undefined
        const ts = this.targetStats.get(tk)
        const c = k ? counts?.get(k.id) : undefined
        return {
          key: rk, ...(rs.name ? { name: rs.name } : {}),
          weight: effR?.weight ?? 0, configuredWeight: rs.weight,
          health: st ? st.health : 'unchecked', inService: effR !== undefined,
          ...(k ? { stats: stats.reals.get(k.id) ?? ZERO } : {}),
          ...(this.rates.rates(`r|${tk}`) ? { rates: this.rates.rates(`r|${tk}`)! } : {}),
          active: c?.active ?? 0, inactive: c?.inactive ?? 0,
          ...(st ? { checks: { ok: ts?.ok ?? 0, failed: ts?.failed ?? 0, transitions: ts?.transitions ?? 0, ...(ts?.lastLatencyMs !== undefined ? { lastLatencyMs: ts.lastLatencyMs } : {}) } } : {}),
        }
      })
      if (o?.sorryActive && s.sorryServer) {
        const rk = realServerKey(s.sorryServer)
        if (!reals.some((r) => r.key === rk)) {
          const k = real(rk)
          const c = k ? counts?.get(k.id) : undefined
          reals.push({
            key: rk, name: 'sorry', weight: 1, configuredWeight: 1, health: 'sorry', inService: eff?.realServers.some((x) => realServerKey(x) === rk) ?? false,
            ...(k ? { stats: stats.reals.get(k.id) ?? ZERO } : {}),
            ...(this.rates.rates(`r|${targetKey(sk, rk)}`) ? { rates: this.rates.rates(`r|${targetKey(sk, rk)}`)! } : {}),
            active: c?.active ?? 0, inactive: c?.inactive ?? 0,
          })
        }
      }
      return {
        key: sk, ...(s.name ? { name: s.name } : {}),
        quorumUp: o?.quorumUp ?? true, sorryActive: o?.sorryActive ?? false, upWeight: o?.upWeight ?? 0,
        ...(id !== undefined ? { stats: stats.services.get(id) ?? ZERO } : {}),
        ...(this.rates.rates(`s|${sk}`) ? { rates: this.rates.rates(`s|${sk}`)! } : {}),
        reals,
      }
    })
  }

  /** Data-plane counters and sweeper figures. */
  stats(): { counters: Record<string, number>; sweeper: DaemonStatus['sweeper'] } {
    return { counters: this.host.counters(), sweeper: this.status().sweeper }
  }

  metricsSnapshot(): MetricsSnapshot {
    let dataplane: MetricsSnapshot['dataplane']
    let counters: Record<string, number> = {}
    try {
      const i = this.host.info()
      dataplane = { progId: i.progId, connsMapId: i.connsMapId, abiVersion: i.abiVersion, connTableSize: i.connTableSize }
      counters = this.host.counters()
    } catch (err) {
      this.log.warn({ err }, 'reading the data plane for metrics failed')
    }
    const t = this.sweeper?.totals
    return {
      daemon: {
        version: xvsVersion(), startTimeS: Math.round(this.startedAt / 1000), configFile: this.source.file, generation: this.generation,
        reloads: { ok: this.counts.reloadsOk, failed: this.counts.reloadsFailed }, lastReloadOk: this.lastReload?.ok ?? false,
        applies: { ok: this.counts.appliesOk, failed: this.counts.appliesFailed },
      },
      ...(dataplane ? { dataplane } : {}),
      services: this.list(),
      counters,
      checkLatency: this.latency,
      checksInFlight: this.engine.inFlight,
      sweeper: {
        passes: t?.passes ?? 0, scanned: t?.scanned ?? 0, expired: t?.expired ?? 0, stale: t?.stale ?? 0, raced: t?.raced ?? 0, errors: t?.errors ?? 0,
        ...(t?.last ? { lastDurationMs: t.last.durationMs, lastEntries: t.last.scanned } : {}),
      },
    }
  }

  metricsText(): string {
    return renderMetrics(this.metricsSnapshot()) + (this.failover?.metricsText() ?? '')
  }

  /** The running config (not the desired state with health applied) as xvs YAML. */
  configText(): { text: string; format: ConfigFormat | null; file: string; source: 'file' | 'text'; generation: number } {
    if (!this.parsed) throw new DaemonError('no config is running yet')
    return { text: toYaml(this.parsed.model), format: this.parsed.format, file: this.source.file, source: this.source.kind, generation: this.generation }
  }

  /** What the control socket serves. */
  handlers(): Handlers {
    return {
      ping: () => ({ pid: process.pid, version: xvsVersion(), protocol: PROTOCOL_VERSION, netns: this.host.netns?.() ?? null }),
      status: () => this.status(),
      list: () => ({ services: this.list() }),
      health: () => ({ targets: this.health() }),
      stats: () => this.stats(),
      metrics: () => ({ text: this.metricsText() }),
      config: () => this.configText(),
      reload: () => this.reload(),
      apply: (p) => this.applyText(p.text, { ...(p.format ? { format: p.format } : {}), ...(p.file ? { file: p.file } : {}) }),
      upgrade: (p) => this.upgrade(p.object),
      sweep: async () => {
        const r = await this.sweep()
        return { ...r, counts: Object.fromEntries(r.counts) }
      },
    }
  }

  /** The desired state last written, health applied (tests, listings). */
  get runningModel(): Model | undefined {
    return this.effective?.model
  }
}

const ZERO: Totals = { conns: 0, packetsIn: 0, bytesIn: 0, packetsOut: 0, bytesOut: 0 }

export interface HealthView {
  key: string
  service: string
  server: string
  type: string
  address: string
  port: number
  health: Health
  sinceS: number
  okStreak: number
  failStreak: number
  checks: number
  last: { ok: boolean; detail: string; latencyMs: number; agoS: number } | null
  dynamicWeight: number | null
  onFailure: 'quiesce' | 'remove'
  counts: { ok: number; failed: number; transitions: number }
}

export interface DaemonStatus {
  pid: number
  version: string
  protocol: number
  startedAt: string
  uptimeS: number
  config: {
    file: string
    source: 'file' | 'text'
    format: ConfigFormat | null
    generation: number
    lastReload: { ok: boolean; at: string; error?: { code: string; message: string; where?: string } } | null
    reloads: { ok: number; failed: number }
  }
  dataplane: (DataplaneInfo & { adopted: boolean }) | null
  health: { targets: number; up: number; down: number; inFlight: number }
  unresolved: { address: string; error: string }[]
  sweeper: { passes: number; scanned: number; expired: number; stale: number; raced: number; errors: number; lastEntries: number | null; lastDurationMs: number | null } | null
  socket: string | null
  metrics: { host: string; port: number } | null
  detachOnExit: boolean
  /** VRRP instances and connection sync; null without a vrrp section. */
  vrrp: FailoverStatus | null
}
