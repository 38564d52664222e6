// SPDX-License-Identifier: GPL-2.0-only
// `make demo`: a namespace lab with a client, a director and three real servers. The xvs daemon runs
// on the director (as `ip netns exec <director> node dist/src/daemon/main.js --config ...`) with a
// default config: real HTTP is balanced through an IPv4 direct-routing VIP and an IPv6 tunnel VIP;
// then a real server's HTTP process is killed, the health check takes it out, it is restarted and
// put back. Everything is removed at the end. An entry point, so it prints to stdout.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import type { ChildProcess } from 'node:child_process'
import { XvsError } from '../errors'
import { createLogger } from '../log'
import { httpRequests, startHttpServer, startHttpServers, type HttpServer } from './http'
import { createTopology, type LabInterface, type Topology } from './topology'
import { projectRoot, withNetns } from '../bpf'
import { findDataplane, unloadDataplane } from '../dataplane/loader'
import { loadDecap } from '../dataplane/decap'
import { statCounterNames } from '../dataplane/abi'
import { DaemonClient } from '../daemon/client'
import type { DaemonStatus, HealthView } from '../daemon/daemon'
import type { ServiceMetrics } from '../daemon/metrics'

function heading(text: string): void {
  console.log(`\n== ${text}`)
}

/** Left-aligned columns, for tables of a dozen rows. */
function table(rows: string[][]): void {
  const widths = rows[0]!.map((_, col) => Math.max(...rows.map(r => (r[col] ?? '').length)))
  for (const row of rows) console.log(`  ${row.map((cell, col) => cell.padEnd(widths[col]!)).join('  ').trimEnd()}`)
}

function describeLab(topo: Topology): void {
  heading(`lab ${topo.id} (${topo.shape}): ${topo.namespaces.length} network namespaces`)
  const rows = [['node', 'namespace', 'interface', 'ifindex', 'MAC', 'IPv4', 'IPv6', 'peer']]
  const addr = (a: LabInterface['ipv4']): string => (a === undefined ? '-' : `${a.address}/${a.prefixLength}`)
  for (const node of topo.nodes) {
    for (const i of node.interfaces) {
      rows.push([node.name, node.ns, i.name, String(i.ifindex), i.mac, addr(i.ipv4), addr(i.ipv6), i.peer === undefined ? '-' : `${i.peer.node}/${i.peer.name}`])
    }
  }
  table(rows)
  console.log(`  VIP ${topo.vip.ipv4} and ${topo.vip.ipv6}: on lo of the director${topo.shape === 'bridge' ? ' and of every real server (DR)' : ''}`)
}

/** What the demo's daemon logs that a reader wants to see, one line each. */
function logLine(rec: Record<string, unknown>): string | undefined {
  const at = new Date(Number(rec.time)).toISOString().slice(11, 23)
  switch (rec.msg) {
    case 'data plane loaded':
    case 'adopted the running data plane':
      return `${at} ${rec.msg as string}: prog id ${String(rec.progId)}, connection table map id ${String(rec.connsMapId)}`
    case 'config applied':
      return `${at} config applied: generation ${String(rec.generation)}, ${String(rec.checks)} health checks`
    case 'real server health changed':
      return `${at} health: ${String(rec.target)} ${String(rec.from)} -> ${String(rec.to)} (${String(rec.cause)})`
    case 'real server taken out':
    case 'real server back in service':
    case 'real server quiesced':
      return `${at} ${rec.msg as string}: ${String(rec.service)} ${String(rec.real)}`
    case 'daemon ready':
    case 'daemon stopped; the data plane keeps forwarding':
      return `${at} ${rec.msg as string}`
    default:
      return Number(rec.level) >= 50 ? `${at} ${String(rec.msg)}: ${JSON.stringify(rec.err ?? rec)}` : undefined
  }
}

interface Daemon { child: ChildProcess; socket: string; client(): Promise<DaemonClient> }

/** The xvs daemon on the director, and decap on the real servers (for tun); its log lines are echoed. */
async function startDaemon(topo: Topology, dir: string, config: string): Promise<Daemon> {
  for (const rs of topo.reals) withNetns(rs.ns, () => loadDecap({ ifaces: [rs.iface('eth0').name] }))
  const file = path.join(dir, 'xvs.yaml')
  const socket = path.join(dir, 'xvs.sock')
  fs.writeFileSync(file, config)
  heading(`xvs daemon on ${topo.director.ns}: ${file}`)
  console.log(config.trimEnd().split('\n').map((l) => `  ${l}`).join('\n'))
  const main = path.join(projectRoot(), 'dist', 'src', 'daemon', 'main.js')
  const env = { ...process.env }
  delete env.NODE_OPTIONS
  const child = topo.spawn(topo.director, [process.execPath, main, '--config', file, '--socket', socket, '--metrics', '127.0.0.1:9110'], { env })
  let buf = ''
  child.stdout!.setEncoding('utf8')
  child.stdout!.on('data', (d: string) => {
    buf += d
    let nl: number
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl)
      buf = buf.slice(nl + 1)
      try {
        const text = logLine(JSON.parse(line) as Record<string, unknown>)
        if (text) console.log(`  [daemon] ${text}`)
      } catch {
        console.log(`  [daemon] ${line}`)
      }
    }
  })
  child.stderr!.setEncoding('utf8')
  child.stderr!.on('data', (d: string) => process.stderr.write(d))
  const client = (): Promise<DaemonClient> => DaemonClient.connect({ socket })
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new XvsError('EDEMO', `the daemon exited (${child.exitCode}) before it answered`)
    const c = await DaemonClient.tryConnect({ socket })
    if (c) { c.close(); break }
    if (i > 300) throw new XvsError('EDEMO', 'the daemon did not answer on its control socket within 30 s')
    await new Promise((r) => setTimeout(r, 100))
  }
  return { child, socket, client }
}

async function ask<T>(d: Daemon, method: 'status' | 'health' | 'list' | 'reload'): Promise<T> {
  const c = await d.client()
  try { return (await c.request(method)) as T } finally { c.close() }
}

/** Wait until `pred` holds for the daemon's health view; returns how long it took (ms). */
async function waitHealth(d: Daemon, pred: (h: HealthView[]) => boolean, timeoutMs = 20_000): Promise<number> {
  const start = Date.now()
  for (;;) {
    if (pred((await ask<{ targets: HealthView[] }>(d, 'health')).targets)) return Date.now() - start
    if (Date.now() - start > timeoutMs) throw new XvsError('EDEMO', `health did not change within ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

/** Wait until the daemon has written what `pred` asks of its services (in the data plane or not). */
async function waitServices(d: Daemon, pred: (s: ServiceMetrics[]) => boolean, timeoutMs = 20_000): Promise<number> {
  const start = Date.now()
  while (!pred((await ask<{ services: ServiceMetrics[] }>(d, 'list')).services)) {
    if (Date.now() - start > timeoutMs) throw new XvsError('EDEMO', `the daemon did not write the change within ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, 50))
  }
  return Date.now() - start
}

function describeHealth(h: HealthView[]): void {
  const rows = [['check', 'type', 'state', 'last result']]
  for (const x of h) rows.push([x.key, x.type, x.health, x.last ? `${x.last.ok ? 'ok' : 'failed'}: ${x.last.detail} (${x.last.latencyMs.toFixed(1)} ms)` : '-'])
  table(rows)
}

/** What runs XDP where, read back from the kernel (`ip -n <ns> link show`). */
function describeAttachments(topo: Topology): void {
  heading('XDP attachments (ip -n <ns> link show)')
  for (const node of topo.nodes) {
    const lines = topo.linkShow(node).split('\n')
    for (let i = 0; i < lines.length; i++) {
      const prog = /prog\/xdp id (\d+) name (\S+)/.exec(lines[i]!)
      if (prog === null) continue
      // The interface line is the last one above that starts with "<ifindex>:".
      let j = i
      while (j > 0 && !/^\d+:/.test(lines[j]!)) j--
      const dev = /^\d+: ([^:@]+)/.exec(lines[j]!)?.[1] ?? '?'
      console.log(`  ${node.ns.padEnd(14)} ${dev.padEnd(6)} ${prog[2]} (prog id ${prog[1]})`)
    }
  }
  heading(`ip -n ${topo.director.ns} link show`)
  for (const line of topo.linkShow(topo.director).trimEnd().split('\n')) console.log(`  ${line}`)
}

/** Traffic: new HTTP connections to each VIP, and who answered them. */
async function traffic(topo: Topology, title: string, expect: Record<string, Record<string, number>>): Promise<boolean> {
  heading(title)
  let allOk = true
  const rows = [['VIP', 'requests', ...topo.reals.map((r) => `${r.name} (want)`), 'errors']]
  for (const [vip, want] of Object.entries(expect)) {
    const total = Object.values(want).reduce((a, b) => a + b, 0)
    const res = await httpRequests(topo, topo.client, { host: vip, count: total, concurrency: 4, deadlineMs: 60_000 })
    const errors = Object.entries(res.errors).map(([why, n]) => `${why} x${n}`).join(', ') || '-'
    rows.push([vip, String(total), ...topo.reals.map((r) => `${res.byResponder[r.name] ?? 0} (${want[r.name] ?? 0})`), errors])
    // Per-CPU cursors may each be a step apart from the exact sequence: allow 2% either way.
    for (const r of topo.reals) if (Math.abs((res.byResponder[r.name] ?? 0) - (want[r.name] ?? 0)) > Math.max(2, total * 0.02)) allOk = false
    if (res.failed > 0) allOk = false
  }
  table(rows)
  return allOk
}

/** What the data plane counted, read back from its maps. */
function describeStats(topo: Topology): void {
  withNetns(topo.director.ns, () => {
    const dp = findDataplane()
    if (!dp) return
    try {
      heading('counters (xvs_counters, non-zero)')
      const names = statCounterNames()
      const rows = [['counter', 'value']]
      for (const [i, name] of names.entries()) {
        const key = Buffer.alloc(4)
        key.writeUInt32LE(i)
        const v = (dp.maps.counters.lookupPerCpu(key) ?? []).reduce((s, b) => s + b.readBigUInt64LE(0), 0n)
        if (v > 0n) rows.push([name, String(v)])
      }
      table(rows)
    } finally {
      dp.close()
    }
  })
}

async function main(): Promise<number> {
  const log = createLogger({ name: 'xvs-demo', level: process.env.XVS_LOG_LEVEL ?? 'warn' })
  const topo = await createTopology({ shape: 'bridge', reals: 3, log })
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xvs-demo-'))
  let daemon: Daemon | undefined
  try {
    describeLab(topo)
    const servers: HttpServer[] = await startHttpServers(topo)
    const [r1, r2, r3] = topo.reals.map((r) => r.ipv4)
    const [s1, s2, s3] = topo.reals.map((r) => r.ipv6)
    // expire_nodest_conn: a client reusing the port of a finished connection to a server the health
    // check took out is scheduled afresh (IPVS drops it otherwise, until the old entry times out).
    const config = `settings:
  interfaces: [${topo.director.front.name}]
  expire_nodest_conn: true
services:
  - name: web4
    vip: ${topo.vip.ipv4}             # direct routing, IPVS weighted round robin
    port: 80
    scheduler: wrr
    check: { type: http, urls: [{ path: / }], interval: 1, timeout: 0.5, fall: 2, rise: 2 }
    real_servers:
      - { address: ${r1}, weight: 1, method: dr }
      - { address: ${r2}, weight: 2, method: dr }
      - { address: ${r3}, weight: 3, method: dr }
  - name: web6
    vip: "${topo.vip.ipv6}"             # IPv6-in-IPv6 tunnel, round robin
    port: 80
    scheduler: rr
    check: { type: tcp, interval: 1, timeout: 0.5, fall: 2, rise: 2 }
    real_servers:
      - { address: "${s1}", method: tun }
      - { address: "${s2}", method: tun }
      - { address: "${s3}", method: tun }
`
    daemon = await startDaemon(topo, dir, config)
    const st = await ask<DaemonStatus>(daemon, 'status')
    heading(`daemon pid ${st.pid}: prog id ${st.dataplane?.progId}, attached to ${st.dataplane?.attachments.map((a) => `${a.ifname} (${a.mode}, ${a.via})`).join(', ')}; control socket ${st.socket}; metrics on ${topo.director.ns} 127.0.0.1:9110`)
    await waitHealth(daemon, (h) => h.length === 6 && h.every((x) => x.checks > 0))
    describeHealth((await ask<{ targets: HealthView[] }>(daemon, 'health')).targets)
    describeAttachments(topo)
    let ok = await traffic(topo, `HTTP from ${topo.client.ns} through the VIPs: 600 new connections each`, {
      [topo.vip.ipv4]: { rs1: 100, rs2: 200, rs3: 300 },
      [topo.vip.ipv6]: { rs1: 200, rs2: 200, rs3: 200 },
    })

    heading("rs3's HTTP server is killed: the health checks (every 1 s, out after 2 failures) take it out")
    await servers[2]!.stop()
    const isRs3 = (key: string): boolean => key.startsWith(`${r3}:`) || key.startsWith(`[${s3}]:`)
    const outMs = await waitServices(daemon, (ss) => ss.every((s) => s.reals.every((r) => !isRs3(r.key) || !r.inService)))
    console.log(`  rs3 out of both services ${outMs} ms after its server died`)
    ok = (await traffic(topo, 'HTTP through the VIPs without rs3: 300 new connections each', {
      [topo.vip.ipv4]: { rs1: 100, rs2: 200, rs3: 0 },
      [topo.vip.ipv6]: { rs1: 150, rs2: 150, rs3: 0 },
    })) && ok

    heading("rs3's HTTP server is back: two good checks put it back")
    servers[2] = await startHttpServer(topo, topo.reals[2]!)
    const backMs = await waitServices(daemon, (ss) => ss.every((s) => s.reals.every((r) => r.inService)))
    console.log(`  rs3 back in both services ${backMs} ms after its server restarted`)
    ok = (await traffic(topo, 'HTTP through the VIPs with rs3 again: 600 new connections each', {
      [topo.vip.ipv4]: { rs1: 100, rs2: 200, rs3: 300 },
      [topo.vip.ipv6]: { rs1: 200, rs2: 200, rs3: 200 },
    })) && ok

    heading(`Prometheus metrics (curl http://127.0.0.1:9110/metrics on ${topo.director.ns}), a few of them`)
    const metrics = await topo.execAsync(topo.director, ['curl', '-sS', '--max-time', '10', 'http://127.0.0.1:9110/metrics'])
    for (const line of metrics.split('\n')) {
      if (/^xvs_(real_connections_total|real_health|real_health_transitions_total|service_connections_total)\{/.test(line)) console.log(`  ${line}`)
    }
    describeStats(topo)
    daemon.child.kill('SIGTERM')
    await new Promise((r) => daemon!.child.once('exit', r))
    heading(ok ? 'xvs balanced every request as configured, and its health checks took rs3 out and back' : 'some requests failed or strayed')
    return ok ? 0 : 1
  } finally {
    if (daemon && daemon.child.exitCode === null) daemon.child.kill('SIGKILL')
    try { withNetns(topo.director.ns, () => unloadDataplane()) } catch { /* the lab goes anyway */ }
    topo.destroy()
    fs.rmSync(dir, { recursive: true, force: true })
    console.log(`\nlab ${topo.id} removed (${topo.namespaces.length} namespaces deleted)`)
  }
}

main().then(
  code => {
    process.exitCode = code
  },
  (err: unknown) => {
    const hint = err instanceof XvsError && err.hint !== undefined ? `\n  hint: ${err.hint}` : ''
    console.error(`demo failed: ${err instanceof Error ? err.message : String(err)}${hint}`)
    process.exitCode = 1
  },
)
