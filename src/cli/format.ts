// SPDX-License-Identifier: GPL-2.0-only
// What the command lines print, as pure functions of plain data (no kernel, no I/O), so golden tests
// pin every column. The ipvsadm listings reproduce ipvsadm's printf layouts field for field
// (ipvsadm.c: print_title, print_service_entry, print_largenum, print_conn, list_timeout).
import { formatHostPort, parseIp } from '../model/addr'
import type { ModelDiff, Change } from '../model/diff'
import type { Method, RealServer, Service } from '../model/types'
import type { StatTotals } from '../dataplane/reader'
import type { ApplyReport, ConnRow, RealRow, ServiceRow, Snapshot, Status } from './backend'
import { refText } from './edits'

/** How listings name an endpoint: numeric ("10.0.0.1:80"), or a host/service name (ipvsadm without -n). */
export type NameOf = (address: string, port: number) => string
export const numeric: NameOf = (address, port) => formatHostPort(address, port)

/** The IPVS version ipvsadm's header reports; scripts parse this line. */
export const IPVS_VERSION = '1.2.1'

export interface ListFormat {
  stats?: boolean
  rate?: boolean
  thresholds?: boolean
  persistentConn?: boolean
  /** Sort services and real servers as ipvsadm does (its default; --nosort turns it off). */
  sort?: boolean
  exact?: boolean
  names?: NameOf
}

// ---- printf helpers ----

const left = (s: string | number, w: number): string => String(s).padEnd(w)
const right = (s: string | number, w: number): string => String(s).padStart(w)

/** print_largenum: 9 columns, scaled to K/M/G/T unless exact. */
export function largenum(n: number, exact = false): string {
  const i = Math.max(0, Math.floor(n))
  if (exact) {
    const s = String(i)
    return right(s, s.length <= 8 ? 9 : s.length + 1)
  }
  if (i < 1e8) return right(i, 9)
  if (i < 1e9) return `${right(Math.floor(i / 1e3), 8)}K`
  if (i < 1e11) return `${right(Math.floor(i / 1e6), 8)}M`
  if (i < 1e14) return `${right(Math.floor(i / 1e9), 8)}G`
  return `${right(Math.floor(i / 1e12), 8)}T`
}

// ---- ordering (libipvs ipvs_cmp_services / ipvs_cmp_dests) ----

function addrBytes(address: string): { family: number; bytes: number[] } {
  const ip = parseIp(address)
  if (!ip) return { family: 99, bytes: [] }
  if (ip.family === 4) return { family: 4, bytes: ip.address.split('.').map(Number) }
  const full = new URL(`http://[${ip.address}]/`).hostname.slice(1, -1)
  const [h, t] = full.split('::') as [string, string | undefined]
  const hs = h ? h.split(':') : []
  const ts = t ? t.split(':') : []
  const groups = t === undefined ? hs : [...hs, ...Array<string>(8 - hs.length - ts.length).fill('0'), ...ts]
  return { family: 6, bytes: groups.flatMap((g) => { const n = parseInt(g, 16); return [n >> 8, n & 255] }) }
}

export function compareAddr(a: string, b: string): number {
  const x = addrBytes(a)
  const y = addrBytes(b)
  if (x.family !== y.family) return x.family - y.family
  for (let i = 0; i < x.bytes.length; i++) if (x.bytes[i] !== y.bytes[i]) return x.bytes[i]! - y.bytes[i]!
  return 0
}

export function compareServices(a: Service, b: Service): number {
  const mark = (s: Service): number => (s.kind === 'group' ? s.id : 0)
  if (mark(a) !== mark(b)) return mark(a) - mark(b)
  if (a.kind === 'group' || b.kind === 'group') return (a.kind === 'group' ? a.family : 0) - (b.kind === 'group' ? b.family : 0)
  const fa = parseIp(a.vip)?.family ?? 4
  const fb = parseIp(b.vip)?.family ?? 4
  if (fa !== fb) return fa - fb
  if (a.kind !== b.kind) return a.kind === 'tcp' ? -1 : 1
  return compareAddr(a.vip, b.vip) || a.port - b.port
}

export function compareServers(a: { address: string; port: number }, b: { address: string; port: number }): number {
  return compareAddr(a.address, b.address) || a.port - b.port
}

// ---- ipvsadm -L ----

const FORWARD: Record<Method, string> = { dr: 'Route', tun: 'Tunnel', nat: 'Masq', fullnat: 'FullNat' }

function isV6(s: Service): boolean {
  return s.kind === 'group' ? s.family === 6 : parseIp(s.vip)?.family === 6
}

function serviceName(s: Service, names: NameOf): string {
  if (s.kind === 'group') return `FWM  ${s.id}${s.family === 6 ? ' IPv6' : ''}`
  const name = `${s.kind.toUpperCase()}  ${names(s.vip, s.port)}`
  return isV6(s) ? name : name.slice(0, 33)
}

function realName(s: Service, r: RealServer, names: NameOf): string {
  const name = names(r.address, r.port)
  return isV6(s) ? name : name.slice(0, 28)
}

function schedulerText(s: Service): string {
  let line = s.scheduler
  if (s.schedFlags.length > 0) line += ` (${s.schedFlags.join(',')})`
  if (s.persistence) {
    line += ` persistent ${s.persistence.timeout}`
    const m = s.persistence.netmask
    if (isV6(s) ? m !== 128 : m !== '255.255.255.255') line += ` mask ${m}`
  }
  return line
}

function title(f: ListFormat): string {
  if (f.stats) {
    return `${left('Prot LocalAddress:Port', 33)} ${['Conns', 'InPkts', 'OutPkts', 'InBytes', 'OutBytes'].map((h) => right(h, 8)).join(' ')}\n  -> RemoteAddress:Port\n`
  }
  if (f.rate) {
    return `${left('Prot LocalAddress:Port', 33)} ${['CPS', 'InPPS', 'OutPPS', 'InBPS', 'OutBPS'].map((h) => right(h, 8)).join(' ')}\n  -> RemoteAddress:Port\n`
  }
  if (f.thresholds) {
    return `${left('Prot LocalAddress:Port', 33)} ${['Uthreshold', 'Lthreshold', 'ActiveConn', 'InActConn'].map((h) => left(h, 10)).join(' ')}\n  -> RemoteAddress:Port\n`
  }
  if (f.persistentConn) {
    return `${left('Prot LocalAddress:Port', 33)} ${left('Weight', 9)} ${left('PersistConn', 11)} ${left('ActiveConn', 10)} ${left('InActConn', 10)}\n  -> RemoteAddress:Port\n`
  }
  return 'Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n'
}

const fiveStats = (t: StatTotals, exact: boolean): string =>
  [t.conns, t.packetsIn, t.packetsOut, t.bytesIn, t.bytesOut].map((n) => largenum(n, exact)).join('')

function serviceEntry(row: ServiceRow, f: ListFormat): string {
  const names = f.names ?? numeric
  const s = row.service
  const svc = serviceName(s, names)
  const exact = f.exact ?? false
  let out = f.stats || f.rate ? `${left(svc, 33)}${fiveStats(row.stats, exact)}\n` : `${svc} ${schedulerText(s)}\n`
  const reals = f.sort === false ? row.reals : [...row.reals].sort((a, b) => compareServers(a.server, b.server))
  for (const r of reals) out += realEntry(s, r, f, names, exact)
  return out
}

function realEntry(s: Service, r: RealRow, f: ListFormat, names: NameOf, exact: boolean): string {
  const d = realName(s, r.server, names)
  const t = r.stats
  if (f.stats) return `  -> ${left(d, 28)}${fiveStats(t, exact)}\n`
  if (f.rate) return `  -> ${left(d, 28)} ${right(Math.round(t.conns), 8)} ${right(Math.round(t.packetsIn), 8)} ${right(Math.round(t.packetsOut), 8)}${largenum(t.bytesIn, exact)}${largenum(t.bytesOut, exact)}\n`
  if (f.thresholds) return `  -> ${left(d, 28)} ${[r.server.upperThreshold, r.server.lowerThreshold, r.active, r.inactive].map((n) => left(n, 10)).join(' ')}\n`
  if (f.persistentConn) return `  -> ${left(d, 28)} ${left(r.server.weight, 9)} ${left(r.persistent, 11)} ${left(r.active, 10)} ${left(r.inactive, 10)}\n`
  return `  -> ${left(d, 28)} ${left(FORWARD[r.server.method], 7)} ${left(r.server.weight, 6)} ${left(r.active, 10)} ${left(r.inactive, 10)}\n`
}

/**
 * `ipvsadm -L` (list_all): the version header, the column titles and every service with its real
 * servers. With `only`, one service without the version header (list_service).
 */
export function formatList(snap: Snapshot, f: ListFormat = {}, only?: ServiceRow): string {
  if (only) return title(f) + serviceEntry(only, f)
  const services = f.sort === false ? snap.services : [...snap.services].sort((a, b) => compareServices(a.service, b.service))
  return `IP Virtual Server version ${IPVS_VERSION} (size=${snap.connTableSize})\n${title(f)}${services.map((s) => serviceEntry(s, f)).join('')}`
}

/** Per-second rates between two snapshots of the same data plane, in Snapshot shape (stats hold rates). */
export function rates(a: Snapshot, b: Snapshot): Snapshot {
  const dt = Math.max(1e-3, (b.takenAtMs - a.takenAtMs) / 1000)
  const per = (x: StatTotals | undefined, y: StatTotals): StatTotals => ({
    conns: Math.max(0, (y.conns - (x?.conns ?? 0)) / dt),
    packetsIn: Math.max(0, (y.packetsIn - (x?.packetsIn ?? 0)) / dt),
    bytesIn: Math.max(0, (y.bytesIn - (x?.bytesIn ?? 0)) / dt),
    packetsOut: Math.max(0, (y.packetsOut - (x?.packetsOut ?? 0)) / dt),
    bytesOut: Math.max(0, (y.bytesOut - (x?.bytesOut ?? 0)) / dt),
  })
  const before = new Map(a.services.map((s) => [s.id, s]))
  const counters: Record<string, number> = {}
  for (const [k, v] of Object.entries(b.counters)) counters[k] = Math.max(0, (v - (a.counters[k] ?? 0)) / dt)
  return {
    ...b,
    counters,
    services: b.services.map((s) => {
      const old = before.get(s.id)
      const oldReals = new Map((old?.reals ?? []).map((r) => [r.id, r]))
      return { ...s, stats: per(old?.stats, s.stats), reals: s.reals.map((r) => ({ ...r, stats: per(oldReals.get(r.id)?.stats, r.stats) })) }
    }),
  }
}

/** `ipvsadm -L -c` (list_conn / print_conn). */
export function formatConns(rows: readonly ConnRow[], names: NameOf = numeric): string {
  // fullnat connections add a column: the local address and port the real server sees
  const local = rows.some((c) => c.local)
  let out = `IPVS connection entries\npro expire ${left('state', 11)} ${left('source', 18)} ${left('virtual', 18)} ${local ? `${left('destination', 18)} local` : 'destination'}\n`
  for (const c of rows) {
    const secs = Math.max(0, Math.floor(c.expires))
    const expire = `${String(Math.floor(secs / 60)).padStart(2, '0')}:${String(secs % 60).padStart(2, '0')}`
    const proto = c.template ? 'IP' : c.proto.toUpperCase()
    const dest = c.real ? names(c.real.address, c.real.port) : '-'
    const via = local ? ` ${c.local ? names(c.local.address, c.local.port) : '-'}` : ''
    out += `${left(proto, 3)} ${left(expire, 6)} ${left(c.template ? 'NONE' : c.state, 11)} ${left(names(c.client.address, c.client.port), 18)} ${left(names(c.virtual.address, c.virtual.port), 18)} ${local ? left(dest, 18) : dest}${via}\n`
  }
  return out
}

/** `ipvsadm -L --timeout`. */
export function formatTimeouts(t: { tcp: number; tcpfin: number; udp: number }): string {
  return `Timeout (tcp tcpfin udp): ${t.tcp} ${t.tcpfin} ${t.udp}\n`
}

// ---- xvs ----

/** Rows of key/value objects as an aligned table with a header line. */
export function table(rows: readonly Record<string, unknown>[], columns?: string[]): string {
  if (rows.length === 0) return '(empty)\n'
  const cols = columns ?? [...new Set(rows.flatMap((r) => Object.keys(r)))]
  const cell = (v: unknown): string => v === undefined || v === null ? '-' : typeof v === 'object' ? JSON.stringify(v) : String(v)
  const cells = rows.map((r) => cols.map((c) => cell(r[c])))
  const widths = cols.map((c, i) => Math.max(c.length, ...cells.map((r) => r[i]!.length)))
  const line = (vals: string[]): string => vals.map((v, i) => (i === vals.length - 1 ? v : v.padEnd(widths[i]!))).join('  ').trimEnd()
  return `${[line(cols), ...cells.map(line)].join('\n')}\n`
}

export function formatStatus(s: Status | null): string {
  if (!s) return 'xvs data plane: not loaded in this network namespace\n'
  const lines = [
    `xvs data plane: loaded (ABI version ${s.abiVersion})`,
    `program: ${s.prog.name} id ${s.prog.id} tag ${s.prog.tag}${s.prog.runCount ? `, ran ${s.prog.runCount} times` : ''}`,
    `pins: ${s.pins ?? 'none (no bpffs visible; found through the kernel)'}`,
    'attached:',
    ...(s.attachments.length
      ? s.attachments.map((a) => `  ${a.ifname.padEnd(15)} ${a.mode.padEnd(7)} via ${a.via.padEnd(7)} program ${a.progId}`)
      : ['  nowhere']),
    'maps:',
    ...s.maps.map((m) => `  ${m.name.padEnd(15)} ${right(m.entries, 9)} / ${m.max}  (${((100 * m.entries) / Math.max(1, m.max)).toFixed(1)}%)`),
  ]
  return `${lines.join('\n')}\n`
}

function serviceSummary(s: Service): string {
  return `${refText(s)} ${s.scheduler}, ${s.realServers.length} real server${s.realServers.length === 1 ? '' : 's'}`
}

const show = (v: unknown): string => (typeof v === 'object' ? JSON.stringify(v) : String(v))

function fieldChanges(c: Change<object>): string {
  const before = c.before as Record<string, unknown>
  const after = c.after as Record<string, unknown>
  return c.fields.map((f) => `${f} ${show(before[f] ?? '-')} -> ${show(after[f] ?? '-')}`).join(', ')
}

/** What an apply changed: one line per service added, removed or changed. */
export function formatDiff(d: ModelDiff): string {
  const out: string[] = []
  for (const s of d.services.added) out.push(`+ ${serviceSummary(s)}`)
  for (const s of d.services.removed) out.push(`- ${serviceSummary(s)}`)
  for (const c of d.services.changed) {
    const parts: string[] = []
    if (c.fields.length) parts.push(fieldChanges(c))
    for (const r of c.realServers.added) parts.push(`+ ${formatHostPort(r.address, r.port)} (${r.method}, weight ${r.weight})`)
    for (const r of c.realServers.removed) parts.push(`- ${formatHostPort(r.address, r.port)}`)
    for (const r of c.realServers.changed) parts.push(`${r.key}: ${fieldChanges(r)}`)
    out.push(`~ ${refText(c.after)}: ${parts.join('; ')}`)
  }
  if (d.settings.length) out.push(`~ settings: ${d.settings.join(', ')}`)
  return out.length ? `${out.join('\n')}\n` : 'no change\n'
}

export function formatApply(r: ApplyReport, opts: { dryRun?: boolean } = {}): string {
  let out = formatDiff(r.diff)
  if (r.result) {
    const s = r.result.services
    out += `services: ${s.added} added, ${s.removed} removed, ${s.changed} changed, ${s.unchanged} unchanged; ` +
      `real servers: ${r.result.reals.added} added, ${r.result.reals.removed} removed, ${r.result.reals.changed} changed; ` +
      `${r.result.tablesWritten} table${r.result.tablesWritten === 1 ? '' : 's'} written (${r.result.slotsWritten} slots)\n`
  } else if (opts.dryRun) {
    out += 'dry run: nothing applied\n'
  }
  return out
}

/** Non-zero counters (all with `all`), one per line. */
export function formatCounters(counters: Record<string, number>, opts: { all?: boolean; unit?: string } = {}): string {
  const rows = Object.entries(counters).filter(([, v]) => opts.all || v !== 0)
  if (rows.length === 0) return '  (all zero)\n'
  const w = Math.max(...rows.map(([k]) => k.length))
  return rows.map(([k, v]) => `  ${k.padEnd(w)} ${right(Number.isInteger(v) ? v : v.toFixed(1), 12)}${opts.unit ?? ''}\n`).join('')
}
