// SPDX-License-Identifier: GPL-2.0-only
// Health checks at scale: how many TCP checks a second the daemon's engine completes on one core
// against lab servers, and the CPU it takes. A lab with three real servers, each accepting on ten
// ports (and closing at once); the checks run in the director's namespace, in a process pinned to
// one CPU (taskset), as the daemon runs them: a HealthEngine with one TcpChecker target per
// (server, port, n), interval 1 s, so the offered rate is the number of targets per second.
//
// The director's namespace gets the full ephemeral port range and tcp_tw_reuse: every check is a new
// connection it closes itself (TIME_WAIT on its side), and at 10,000 a second three servers' thirty
// ports would otherwise run out of source ports within seconds.
//
// Run: `make bench` (all suites; `node dist/bench/run.js health` this one) or
// `node dist/bench/health.bench.js [rate ...]` (default 2500 5000 10000 15000 checks/s). Figures are
// for this machine and this run only.
import { spawnSync } from 'node:child_process'
import { performance } from 'node:perf_hooks'
import { createTopology } from '../src/lab/topology'
import { HealthEngine } from '../src/health/engine'
import { TcpChecker } from '../src/health/checkers/tcp'
import { printRows, type Row } from './harness'

const PORTS = Array.from({ length: 10 }, (_, i) => 9000 + i)
const WARMUP_MS = 3000
const MEASURE_MS = 10_000

/** Suite entry for bench/run.ts: this file as its own process (the lab and the engine are async). */
export function run(): void {
  spawnSync(process.execPath, [__filename], { stdio: 'inherit' })
}

interface WorkerResult { rate: number; targets: number; completed: number; ok: number; failed: number; cpu: number; p50: number; p99: number; inFlightMax: number; details: Record<string, number> }

/** In the director's namespace: `targets` checks a second for MEASURE_MS, after a warm-up. */
async function worker(addresses: string[], rate: number): Promise<void> {
  const engine = new HealthEngine({ spreadMs: 1000, maxInFlight: 4096, defaults: { intervalMs: 1000, timeoutMs: 900, rise: 1, fall: 1, retries: 0 } })
  const checker = new TcpChecker({ type: 'tcp' })
  let i = 0
  for (; i < rate; i++) {
    const address = addresses[i % addresses.length]!
    const port = PORTS[Math.floor(i / addresses.length) % PORTS.length]!
    engine.add({ key: `t${i}`, address, port, checker })
  }
  let measuring = false
  let completed = 0
  let ok = 0
  const latencies: number[] = []
  const details: Record<string, number> = {}
  let inFlightMax = 0
  engine.on('check', (e) => {
    if (!measuring || !e.final) return
    completed++
    if (e.result.ok) ok++
    else {
      const d = e.result.detail.replace(/\d+\.\d+\.\d+\.\d+:\d+/, 'ADDR')
      details[d] = (details[d] ?? 0) + 1
    }
    latencies.push(e.result.latencyMs)
    inFlightMax = Math.max(inFlightMax, engine.inFlight)
  })
  engine.start()
  await new Promise((r) => setTimeout(r, WARMUP_MS))
  measuring = true
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  await new Promise((r) => setTimeout(r, MEASURE_MS))
  const wall = performance.now() - t0
  const cpu = process.cpuUsage(cpu0)
  measuring = false
  await engine.stop()
  latencies.sort((a, b) => a - b)
  const q = (p: number): number => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? 0
  const result: WorkerResult = {
    rate, targets: i, completed, ok, failed: completed - ok, cpu: (cpu.user + cpu.system) / 1000 / wall,
    p50: q(0.5), p99: q(0.99), inFlightMax, details,
  }
  process.stdout.write(`${JSON.stringify({ ...result, rate: completed / (wall / 1000), offered: rate })}\n`)
}

/** Start a closing acceptor on every port of every real server. */
const acceptor = `
const net = require('node:net')
for (const p of process.argv.slice(1).map(Number)) net.createServer((s) => { s.on('error', () => {}); s.destroy() }).listen({ port: p, host: '::', backlog: 4096 })
process.stdout.write('ready\\n')
process.stdin.on('end', () => process.exit(0)); process.stdin.resume()
`

async function main(rates: number[]): Promise<void> {
  const topo = await createTopology({ shape: 'bridge', reals: 3 })
  try {
    for (const rs of topo.reals) {
      topo.exec(rs, ['sysctl', '-qw', 'net.core.somaxconn=4096', 'net.ipv4.tcp_max_syn_backlog=8192'])
      const child = topo.spawn(rs, [process.execPath, '-e', acceptor, ...PORTS.map(String)], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } })
      await new Promise<void>((resolve, reject) => {
        child.stdout!.once('data', () => resolve())
        child.once('exit', (c) => reject(new Error(`acceptor exited ${c}`)))
      })
    }
    topo.exec(topo.director, ['sysctl', '-qw', 'net.ipv4.ip_local_port_range=1024 65535', 'net.ipv4.tcp_tw_reuse=1'])
    const addresses = topo.reals.map((r) => r.ipv4)
    const rows: Row[] = []
    for (const rate of rates) {
      const env = { ...process.env }
      delete env.NODE_OPTIONS
      const child = topo.spawn(topo.director, ['taskset', '-c', '1', process.execPath, __filename, '--worker', String(rate), ...addresses], { env })
      let out = ''
      child.stdout!.on('data', (d: Buffer) => { out += String(d) })
      child.stderr!.on('data', (d: Buffer) => process.stderr.write(d))
      await new Promise((r) => child.once('exit', r))
      const r = JSON.parse(out.trim().split('\n').pop()!) as WorkerResult & { offered: number }
      const fails = Object.entries(r.details).map(([d, n]) => `${n} ${d}`).join('; ')
      const usPerCheck = r.rate > 0 ? (r.cpu * 1e6) / r.rate : 0
      rows.push({ name: `${r.offered} targets, every 1 s`, value: r.rate, unit: 'checks/s', note: `CPU ${(r.cpu * 100).toFixed(0)}% of one core (${usPerCheck.toFixed(0)} us a check, kernel included), latency p50 ${r.p50.toFixed(2)} ms p99 ${r.p99.toFixed(2)} ms, ${r.failed} failed${fails ? ` (${fails.slice(0, 120)})` : ''}, ${r.inFlightMax} in flight at most` })
    }
    printRows('health checks: TCP connect, one core (taskset), three lab servers x ten ports', rows)
  } finally {
    topo.destroy()
  }
}

if (require.main === module) {
  const args = process.argv.slice(2)
  if (args[0] === '--worker') {
    void worker(args.slice(2), Number(args[1]))
  } else {
    const rates = args.filter((a) => /^\d+$/.test(a)).map(Number)
    main(rates.length ? rates : [2500, 5000, 10_000, 15_000]).catch((err: unknown) => {
      process.stderr.write(`health bench failed: ${err instanceof Error ? err.stack : String(err)}\n`)
      process.exitCode = 1
    })
  }
}
