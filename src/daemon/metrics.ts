// SPDX-License-Identifier: GPL-2.0-only
// Prometheus metrics: the text exposition format (version 0.0.4) written by hand, a rate estimator in
// the manner of IPVS's (per-second rates from 2-second samples, smoothed), a latency histogram, and
// renderMetrics(), which turns one snapshot of the daemon's state into the page /metrics serves.
// Everything here is pure; the daemon gathers the snapshot (daemon.ts) and serves it (http.ts).
import { ArgumentError } from '../errors'

export type MetricType = 'counter' | 'gauge' | 'histogram' | 'untyped'
export type Labels = Readonly<Record<string, string | number>>

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/

const escapeHelp = (s: string): string => s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')
const escapeLabel = (s: string): string => s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')

/** A sample value as the format spells it: Go float syntax, NaN, +Inf, -Inf. */
export function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN'
  if (v === Infinity) return '+Inf'
  if (v === -Infinity) return '-Inf'
  return String(v)
}

function formatLabels(labels: Labels | undefined): string {
  if (!labels) return ''
  const parts: string[] = []
  for (const [k, v] of Object.entries(labels)) {
    if (!LABEL.test(k) || k.startsWith('__')) throw new ArgumentError(`metric label name ${JSON.stringify(k)} is not valid`)
    parts.push(`${k}="${escapeLabel(String(v))}"`)
  }
  return parts.length ? `{${parts.join(',')}}` : ''
}

interface Family { name: string; type: MetricType; help: string; lines: string[] }

/**
 * Builds an exposition page. Each family is declared once (HELP, TYPE) and its samples are kept
 * together, in the order they were added, as the format requires.
 */
export class Exposition {
  private readonly families = new Map<string, Family>()

  family(name: string, type: MetricType, help: string): this {
    if (!NAME.test(name)) throw new ArgumentError(`metric name ${JSON.stringify(name)} is not valid`)
    const f = this.families.get(name)
    if (f && f.type !== type) throw new ArgumentError(`metric ${name} declared as ${f.type} and ${type}`)
    if (!f) this.families.set(name, { name, type, help, lines: [] })
    return this
  }

  /** A sample of a declared family; `suffix` for histogram parts (_bucket, _sum, _count). */
  sample(name: string, labels: Labels | undefined, value: number, suffix = ''): this {
    const f = this.families.get(name)
    if (!f) throw new ArgumentError(`metric ${name} sampled before it was declared`)
    f.lines.push(`${name}${suffix}${formatLabels(labels)} ${formatValue(value)}`)
    return this
  }

  histogram(name: string, labels: Labels | undefined, h: HistogramData): this {
    let cum = 0
    h.bounds.forEach((le, i) => {
      cum += h.counts[i]!
      this.sample(name, { ...labels, le: formatValue(le) }, cum, '_bucket')
    })
    this.sample(name, { ...labels, le: '+Inf' }, h.count, '_bucket')
    this.sample(name, labels, h.sum, '_sum')
    this.sample(name, labels, h.count, '_count')
    return this
  }

  text(): string {
    let out = ''
    for (const f of this.families.values()) {
      out += `# HELP ${f.name} ${escapeHelp(f.help)}\n# TYPE ${f.name} ${f.type}\n`
      for (const l of f.lines) out += `${l}\n`
    }
    return out
  }
}

export const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'

// --- histogram ------------------------------------------------------------------------------------

export interface HistogramData {
  /** Upper bounds, ascending (without +Inf). */
  bounds: readonly number[]
  /** Observations per bucket (not cumulative): counts[i] fell in (bounds[i-1], bounds[i]]. */
  counts: number[]
  sum: number
  count: number
}

export class Histogram implements HistogramData {
  readonly counts: number[]
  sum = 0
  count = 0
  constructor(readonly bounds: readonly number[]) {
    this.counts = bounds.map(() => 0)
  }
  observe(v: number): void {
    this.sum += v
    this.count++
    const i = this.bounds.findIndex((b) => v <= b)
    if (i >= 0) this.counts[i]!++
  }
}

/** Health-check latency buckets, seconds: 1 ms .. 10 s. */
export const CHECK_LATENCY_BOUNDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const

// --- rates ----------------------------------------------------------------------------------------

export interface Totals { conns: number; packetsIn: number; bytesIn: number; packetsOut: number; bytesOut: number }
export type Rates = Totals

const ZERO: Totals = { conns: 0, packetsIn: 0, bytesIn: 0, packetsOut: 0, bytesOut: 0 }
const FIELDS = Object.keys(ZERO) as (keyof Totals)[]

/**
 * Per-second rates of counters sampled every couple of seconds, smoothed as IPVS's estimator does
 * (each sample moves the average a quarter of the way), so `ipvsadm --rate`-like figures are steady.
 * A key not sampled in a round is forgotten; a counter that went backwards (zeroed) restarts it.
 */
export class RateEstimator {
  private readonly prev = new Map<string, { at: number; totals: Totals; rates: Rates }>()

  constructor(private readonly weight = 0.25) {}

  /** Feed one round of samples taken at `atMs`. */
  sample(atMs: number, totals: ReadonlyMap<string, Totals>): void {
    for (const k of [...this.prev.keys()]) if (!totals.has(k)) this.prev.delete(k)
    for (const [k, t] of totals) {
      const p = this.prev.get(k)
      if (!p || atMs <= p.at || FIELDS.some((f) => t[f] < p.totals[f])) {
        this.prev.set(k, { at: atMs, totals: { ...t }, rates: p && atMs > p.at ? p.rates : { ...ZERO } })
        continue
      }
      const dt = (atMs - p.at) / 1000
      const rates = { ...p.rates }
      for (const f of FIELDS) {
        const r = (t[f] - p.totals[f]) / dt
        rates[f] = p.rates[f] + (r - p.rates[f]) * this.weight
      }
      this.prev.set(k, { at: atMs, totals: { ...t }, rates })
    }
  }

  rates(key: string): Rates | undefined {
    return this.prev.get(key)?.rates
  }
}

// --- the page -------------------------------------------------------------------------------------

export interface RealMetrics {
  /** "10.0.0.11:80". */
  key: string
  name?: string
  /** Weight in the data plane now (0: quiesced), and as configured. */
  weight: number
  configuredWeight: number
  /** 'up', 'down' (checked and failed), 'unchecked', or 'sorry' (the sorry server, while it serves). */
  health: 'up' | 'down' | 'unchecked' | 'sorry'
  /** In the data plane (false: removed after a failed check, or not programmable). */
  inService: boolean
  stats?: Totals
  rates?: Rates
  active?: number
  inactive?: number
  checks?: { ok: number; failed: number; lastLatencyMs?: number; transitions: number }
}

export interface ServiceMetrics {
  /** "tcp:10.0.0.100:80". */
  key: string
  name?: string
  quorumUp: boolean
  sorryActive: boolean
  upWeight: number
  stats?: Totals
  rates?: Rates
  reals: RealMetrics[]
}

export interface SweeperMetrics {
  passes: number
  scanned: number
  expired: number
  stale: number
  raced: number
  errors: number
  lastDurationMs?: number
  lastEntries?: number
}

export interface MetricsSnapshot {
  daemon: {
    version: string
    startTimeS: number
    configFile: string
    generation: number
    reloads: { ok: number; failed: number }
    lastReloadOk: boolean
    applies: { ok: number; failed: number }
  }
  dataplane?: { progId: number; connsMapId: number; abiVersion: number; connTableSize: number }
  services: ServiceMetrics[]
  counters: Record<string, number>
  checkLatency: HistogramData
  checksInFlight: number
  sweeper: SweeperMetrics
}

export function renderMetrics(s: MetricsSnapshot): string {
  const e = new Exposition()
  const d = s.daemon
  e.family('xvs_daemon_info', 'gauge', 'The xvs daemon: version and config file (always 1).')
    .sample('xvs_daemon_info', { version: d.version, config: d.configFile }, 1)
  e.family('xvs_daemon_start_time_seconds', 'gauge', 'Start of the daemon, seconds since the Unix epoch.')
    .sample('xvs_daemon_start_time_seconds', undefined, d.startTimeS)
  e.family('xvs_config_generation', 'gauge', 'Configurations applied since start (1 after the first).')
    .sample('xvs_config_generation', undefined, d.generation)
  e.family('xvs_config_reloads_total', 'counter', 'Reloads (SIGHUP, reload, apply) by result.')
    .sample('xvs_config_reloads_total', { result: 'ok' }, d.reloads.ok)
    .sample('xvs_config_reloads_total', { result: 'failed' }, d.reloads.failed)
  e.family('xvs_config_last_reload_success', 'gauge', '1 if the last reload was applied, 0 if it was refused (the previous config stays in force).')
    .sample('xvs_config_last_reload_success', undefined, d.lastReloadOk ? 1 : 0)
  e.family('xvs_dataplane_applies_total', 'counter', 'Writes of the desired state to the maps (reloads and health changes), by result.')
    .sample('xvs_dataplane_applies_total', { result: 'ok' }, d.applies.ok)
    .sample('xvs_dataplane_applies_total', { result: 'failed' }, d.applies.failed)
  if (s.dataplane) {
    const p = s.dataplane
    e.family('xvs_dataplane_info', 'gauge', 'The attached data plane: program id, connection table map id, ABI version (always 1).')
      .sample('xvs_dataplane_info', { prog_id: p.progId, conns_map_id: p.connsMapId, abi: p.abiVersion }, 1)
    e.family('xvs_conn_table_max_entries', 'gauge', 'Size of the connection table (xvs_conns).')
      .sample('xvs_conn_table_max_entries', undefined, p.connTableSize)
  }

  const svcLabels = (x: ServiceMetrics): Labels => ({ service: x.key, ...(x.name ? { name: x.name } : {}) })
  const realLabels = (x: ServiceMetrics, r: RealMetrics): Labels => ({ service: x.key, real: r.key, ...(r.name ? { name: r.name } : {}) })
  type Row = [Labels, Totals]
  const traffic = (prefix: string, what: string, rows: Row[]): void => {
    e.family(`${prefix}_connections_total`, 'counter', `Connections scheduled to the ${what}.`)
    for (const [l, t] of rows) e.sample(`${prefix}_connections_total`, l, t.conns)
    e.family(`${prefix}_packets_total`, 'counter', `Packets forwarded for the ${what}; in: client to server, out: server to client (nat/fullnat only).`)
    for (const [l, t] of rows) {
      e.sample(`${prefix}_packets_total`, { ...l, direction: 'in' }, t.packetsIn)
      e.sample(`${prefix}_packets_total`, { ...l, direction: 'out' }, t.packetsOut)
    }
    e.family(`${prefix}_bytes_total`, 'counter', `IP bytes forwarded for the ${what}, by direction.`)
    for (const [l, t] of rows) {
      e.sample(`${prefix}_bytes_total`, { ...l, direction: 'in' }, t.bytesIn)
      e.sample(`${prefix}_bytes_total`, { ...l, direction: 'out' }, t.bytesOut)
    }
  }
  const rates = (prefix: string, what: string, rows: Row[]): void => {
    e.family(`${prefix}_connection_rate`, 'gauge', `New connections per second to the ${what} (smoothed, as ipvsadm --rate).`)
    for (const [l, r] of rows) e.sample(`${prefix}_connection_rate`, l, round(r.conns))
    e.family(`${prefix}_packet_rate`, 'gauge', `Packets per second for the ${what}, by direction (smoothed).`)
    for (const [l, r] of rows) {
      e.sample(`${prefix}_packet_rate`, { ...l, direction: 'in' }, round(r.packetsIn))
      e.sample(`${prefix}_packet_rate`, { ...l, direction: 'out' }, round(r.packetsOut))
    }
    e.family(`${prefix}_byte_rate`, 'gauge', `Bytes per second for the ${what}, by direction (smoothed).`)
    for (const [l, r] of rows) {
      e.sample(`${prefix}_byte_rate`, { ...l, direction: 'in' }, round(r.bytesIn))
      e.sample(`${prefix}_byte_rate`, { ...l, direction: 'out' }, round(r.bytesOut))
    }
  }

  traffic('xvs_service', 'virtual service', s.services.map((x) => [svcLabels(x), x.stats ?? ZERO]))
  rates('xvs_service', 'virtual service', s.services.map((x) => [svcLabels(x), x.rates ?? ZERO]))
  e.family('xvs_service_quorum_up', 'gauge', '1 while the up real servers\' weights reach the quorum (default: any server up).')
  for (const x of s.services) e.sample('xvs_service_quorum_up', svcLabels(x), x.quorumUp ? 1 : 0)
  e.family('xvs_service_sorry_active', 'gauge', '1 while the sorry server takes the service\'s new connections.')
  for (const x of s.services) e.sample('xvs_service_sorry_active', svcLabels(x), x.sorryActive ? 1 : 0)
  e.family('xvs_service_up_weight', 'gauge', 'Sum of the weights of the real servers that are up.')
  for (const x of s.services) e.sample('xvs_service_up_weight', svcLabels(x), x.upWeight)

  const reals = s.services.flatMap((x) => x.reals.map((r) => ({ x, r, l: realLabels(x, r) })))
  traffic('xvs_real', 'real server', reals.map(({ r, l }) => [l, r.stats ?? ZERO]))
  rates('xvs_real', 'real server', reals.map(({ r, l }) => [l, r.rates ?? ZERO]))
  e.family('xvs_real_active_connections', 'gauge', 'ESTABLISHED connections in the table (ipvsadm ActiveConn), as of the last sweep.')
  for (const { r, l } of reals) e.sample('xvs_real_active_connections', l, r.active ?? 0)
  e.family('xvs_real_inactive_connections', 'gauge', 'Connections in any other state (ipvsadm InActConn), as of the last sweep.')
  for (const { r, l } of reals) e.sample('xvs_real_inactive_connections', l, r.inactive ?? 0)
  e.family('xvs_real_weight', 'gauge', 'Weight in the data plane now (0: quiesced); see xvs_real_in_service for removed servers.')
  for (const { r, l } of reals) e.sample('xvs_real_weight', l, r.weight)
  e.family('xvs_real_configured_weight', 'gauge', 'Weight as configured.')
  for (const { r, l } of reals) e.sample('xvs_real_configured_weight', l, r.configuredWeight)
  e.family('xvs_real_in_service', 'gauge', '1 if the real server is in the data plane (possibly quiesced), 0 if taken out.')
  for (const { r, l } of reals) e.sample('xvs_real_in_service', l, r.inService ? 1 : 0)
  e.family('xvs_real_health', 'gauge', 'Health-check state: 1 up, 0 down; absent for servers without a check.')
  for (const { r, l } of reals) if (r.health === 'up' || r.health === 'down') e.sample('xvs_real_health', l, r.health === 'up' ? 1 : 0)
  const checked = reals.filter(({ r }) => r.checks)
  e.family('xvs_real_checks_total', 'counter', 'Completed health checks, by result.')
  for (const { r, l } of checked) {
    e.sample('xvs_real_checks_total', { ...l, result: 'ok' }, r.checks!.ok)
    e.sample('xvs_real_checks_total', { ...l, result: 'failed' }, r.checks!.failed)
  }
  e.family('xvs_real_health_transitions_total', 'counter', 'Up/down transitions of the health-check state.')
  for (const { r, l } of checked) e.sample('xvs_real_health_transitions_total', l, r.checks!.transitions)
  e.family('xvs_real_check_latency_seconds', 'gauge', 'Duration of the last health-check attempt.')
  for (const { r, l } of checked) if (r.checks!.lastLatencyMs !== undefined) e.sample('xvs_real_check_latency_seconds', l, r.checks!.lastLatencyMs / 1000)
  e.family('xvs_health_check_duration_seconds', 'histogram', 'Duration of health-check attempts, all real servers.')
    .histogram('xvs_health_check_duration_seconds', undefined, s.checkLatency)
  e.family('xvs_health_checks_in_flight', 'gauge', 'Health-check attempts running now.')
    .sample('xvs_health_checks_in_flight', undefined, s.checksInFlight)

  e.family('xvs_dataplane_events_total', 'counter', 'Data-plane counters (enum xvs_stat) by name: pass_* went to the kernel untouched, drop_* were dropped.')
  for (const [k, v] of Object.entries(s.counters)) e.sample('xvs_dataplane_events_total', { event: k }, v)
  e.family('xvs_dataplane_dropped_packets_total', 'counter', 'Packets the data plane dropped, by reason (the drop_* counters).')
  for (const [k, v] of Object.entries(s.counters)) if (k.startsWith('drop_')) e.sample('xvs_dataplane_dropped_packets_total', { reason: k.slice(5) }, v)

  const w = s.sweeper
  e.family('xvs_sweeper_passes_total', 'counter', 'Passes of the connection sweeper over the table.').sample('xvs_sweeper_passes_total', undefined, w.passes)
  e.family('xvs_sweeper_scanned_total', 'counter', 'Connection entries read by the sweeper.').sample('xvs_sweeper_scanned_total', undefined, w.scanned)
  e.family('xvs_sweeper_deleted_total', 'counter', 'Connection entries deleted, by reason (expired: past their timeout; stale: service gone or replaced).')
    .sample('xvs_sweeper_deleted_total', { reason: 'expired' }, w.expired)
    .sample('xvs_sweeper_deleted_total', { reason: 'stale' }, w.stale)
  e.family('xvs_sweeper_raced_total', 'counter', 'Entries the packet path changed between the sweeper\'s read and delete (kept).').sample('xvs_sweeper_raced_total', undefined, w.raced)
  e.family('xvs_sweeper_errors_total', 'counter', 'Sweeper passes that failed.').sample('xvs_sweeper_errors_total', undefined, w.errors)
  if (w.lastDurationMs !== undefined) {
    e.family('xvs_sweeper_last_duration_seconds', 'gauge', 'Duration of the last sweeper pass.').sample('xvs_sweeper_last_duration_seconds', undefined, w.lastDurationMs / 1000)
  }
  if (w.lastEntries !== undefined) {
    e.family('xvs_conn_table_entries', 'gauge', 'Entries in the connection table at the last sweep (before deletions).').sample('xvs_conn_table_entries', undefined, w.lastEntries)
  }
  return e.text()
}

const round = (v: number): number => Math.round(v * 1000) / 1000
