// SPDX-License-Identifier: GPL-2.0-only
// The xvs daemon as a real process in a namespace lab: spawned with `ip netns exec <director> node
// dist/src/daemon/main.js` (the build `make` produces), its control socket in a private temp
// directory, its pino log kept for the test's diagnostics. Each call registers teardown: the daemon
// killed, the data plane unloaded, the lab destroyed, the directory removed.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { spawnSync, type ChildProcess } from 'node:child_process'
import { createTopology, type Topology, type TopologyOptions } from '../../src/lab/topology'
import { startHttpServers, type HttpRequestsResult, type HttpServer } from '../../src/lab/http'
import { withNetns } from '../../src/bpf'
import { findDataplane, unloadDataplane } from '../../src/dataplane/loader'
import { DaemonClient } from '../../src/daemon/client'
import type { DaemonStatus, HealthView } from '../../src/daemon/daemon'
import type { ServiceMetrics } from '../../src/daemon/metrics'

type Tap = { teardown(fn: () => void | Promise<void>): void; comment(...args: unknown[]): void }

const ROOT = path.join(__dirname, '..', '..')
export const DAEMON_MAIN = path.join(ROOT, 'dist', 'src', 'daemon', 'main.js')

/** Why the built daemon (and command line) cannot be used (missing, or a module older than its source), or undefined. */
export function daemonBuildProblem(): string | undefined {
  if (!fs.existsSync(DAEMON_MAIN)) return `${DAEMON_MAIN} is missing: build with 'make'`
  for (const dir of ['daemon', 'cli']) {
    const srcDir = path.join(ROOT, 'src', dir)
    const distDir = path.join(ROOT, 'dist', 'src', dir)
    for (const f of fs.readdirSync(srcDir).filter((x) => x.endsWith('.ts'))) {
      const js = path.join(distDir, f.replace(/\.ts$/, '.js'))
      if (!fs.existsSync(js) || fs.statSync(js).mtimeMs < fs.statSync(path.join(srcDir, f)).mtimeMs) {
        return `dist/src/${dir}/${f.replace(/\.ts$/, '.js')} is missing or older than its source: build with 'make'`
      }
    }
  }
  return undefined
}

/** Run `xvs ARGS` (the built command line) in the lab director's namespace (or `ns`), talking to `socket`. */
export function xvsIn(topo: Topology, socket: string, args: string[], ns = topo.director.ns): { status: number | null; stdout: string; stderr: string } {
  const env: NodeJS.ProcessEnv = { ...process.env, XVS_SOCKET: socket }
  delete env.NODE_OPTIONS
  const r = spawnSync('ip', ['netns', 'exec', ns, process.execPath, path.join(ROOT, 'dist', 'src', 'cli', 'xvs.js'), ...args],
    { env, encoding: 'utf8', timeout: 60_000 })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

export interface DaemonProc {
  child: ChildProcess
  pid: number
  /** Everything it logged so far (pino JSON lines). */
  log(): string
  /** Parsed log records. */
  records(): Record<string, unknown>[]
  exited: Promise<number | null>
}

export interface DaemonLab {
  topo: Topology
  servers: HttpServer[]
  dir: string
  configFile: string
  socket: string
  metricsPort: number
  /** Write the config file (YAML). */
  writeConfig(text: string): void
  /** Start a daemon and wait until it answers on the socket. */
  start(extra?: string[]): Promise<DaemonProc>
  /** The running daemon (the last started). */
  daemon: DaemonProc | undefined
  /** One request on a fresh connection. */
  call(method: string, params?: Record<string, unknown>): Promise<unknown>
  status(): Promise<DaemonStatus>
  health(): Promise<HealthView[]>
  list(): Promise<ServiceMetrics[]>
  /** Wait until `pred` holds for the health view; returns the ms it took. */
  waitHealth(pred: (h: HealthView[]) => boolean, timeoutMs: number): Promise<number>
  /** curl /metrics from inside the director namespace. */
  scrape(): Promise<string>
  kill(signal: NodeJS.Signals): Promise<number | null>
  /** Data-plane ids in the director namespace. */
  ids(): { prog: number; conns: number } | null
}

/** A lab with the daemon ready to start; fails (not skips) when the build is missing or stale. */
export async function daemonLab(t: Tap, opts: TopologyOptions & { bpffs?: string } = {}): Promise<DaemonLab> {
  const problem = daemonBuildProblem()
  if (problem) throw new Error(problem)
  const topo = await createTopology({ shape: 'bridge', reals: 2, ...opts })
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xvs-daemon-'))
  const procs: DaemonProc[] = []
  t.teardown(async () => {
    for (const p of procs) {
      if (p.child.exitCode === null && p.child.signalCode === null) {
        p.child.kill('SIGKILL')
        await p.exited
      }
    }
    const prev = process.env.XVS_BPFFS
    if (opts.bpffs) process.env.XVS_BPFFS = opts.bpffs
    try { withNetns(topo.director.ns, () => unloadDataplane()) } catch { /* lab already gone */ }
    if (opts.bpffs) { if (prev === undefined) delete process.env.XVS_BPFFS; else process.env.XVS_BPFFS = prev }
    topo.destroy()
    fs.rmSync(dir, { recursive: true, force: true })
  })
  const servers = await startHttpServers(topo)
  const configFile = path.join(dir, 'xvs.yaml')
  const socket = path.join(dir, 'xvs.sock')
  const metricsPort = 9500 + Math.floor(Math.random() * 400)

  const lab: DaemonLab = {
    topo, servers, dir, configFile, socket, metricsPort, daemon: undefined,
    writeConfig: (text) => {
      const tmp = `${configFile}.tmp`
      fs.writeFileSync(tmp, text)
      fs.renameSync(tmp, configFile)
    },
    start: async (extra = []) => {
      const env: NodeJS.ProcessEnv = { ...process.env, XVS_LOG_LEVEL: 'debug' }
      delete env.NODE_OPTIONS // tap's instrumentation
      if (opts.bpffs) env.XVS_BPFFS = opts.bpffs
      else delete env.XVS_BPFFS
      const child = topo.spawn(topo.director, [process.execPath, DAEMON_MAIN, '--config', configFile, '--socket', socket,
        '--metrics', `127.0.0.1:${metricsPort}`, '--sweep-interval', '1000', ...extra], { env })
      let out = ''
      child.stdout!.setEncoding('utf8')
      child.stderr!.setEncoding('utf8')
      child.stdout!.on('data', (d: string) => { out += d })
      child.stderr!.on('data', (d: string) => { out += d })
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
      const proc: DaemonProc = {
        child, pid: child.pid!, exited, log: () => out,
        records: () => out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>),
      }
      procs.push(proc)
      lab.daemon = proc
      const deadline = Date.now() + 30_000
      let dead = false
      void exited.then(() => { dead = true })
      for (;;) {
        if (dead) throw new Error(`the daemon exited before it answered: ${out.slice(-2000)}`)
        const c = await DaemonClient.tryConnect({ socket, timeoutMs: 5000 })
        if (c) {
          try {
            await c.request('ping')
            return proc
          } catch { /* not yet */ } finally { c.close() }
        }
        if (Date.now() > deadline) throw new Error(`the daemon did not answer within 30 s: ${out.slice(-2000)}`)
        await new Promise((r) => setTimeout(r, 100))
      }
    },
    call: async (method, params) => {
      const c = await DaemonClient.connect({ socket, timeoutMs: 60_000 })
      try { return await c.request(method as never, params as never) } finally { c.close() }
    },
    status: () => lab.call('status') as Promise<DaemonStatus>,
    health: async () => ((await lab.call('health')) as { targets: HealthView[] }).targets,
    list: async () => ((await lab.call('list')) as { services: ServiceMetrics[] }).services,
    waitHealth: async (pred, timeoutMs) => {
      const start = Date.now()
      for (;;) {
        if (pred(await lab.health())) return Date.now() - start
        if (Date.now() - start > timeoutMs) throw new Error(`health condition not met within ${timeoutMs} ms: ${JSON.stringify(await lab.health())}`)
        await new Promise((r) => setTimeout(r, 50))
      }
    },
    scrape: () => topo.execAsync(topo.director, ['curl', '-sS', '--max-time', '10', `http://127.0.0.1:${metricsPort}/metrics`]),
    kill: async (signal) => {
      const p = lab.daemon
      if (!p || p.child.exitCode !== null || p.child.signalCode !== null) return null
      p.child.kill(signal)
      return p.exited
    },
    ids: () => withNetns(topo.director.ns, () => {
      const prev = process.env.XVS_BPFFS
      if (opts.bpffs) process.env.XVS_BPFFS = opts.bpffs
      try {
        const dp = findDataplane()
        if (!dp) return null
        try { return { prog: dp.prog.id, conns: dp.maps.conns.id } } finally { dp.close() }
      } finally {
        if (opts.bpffs) { if (prev === undefined) delete process.env.XVS_BPFFS; else process.env.XVS_BPFFS = prev }
      }
    }),
  }
  return lab
}

/** Failures other than requests the deadline cut off (a load run stopped by its deadline). */
export function realFailures(r: HttpRequestsResult): number {
  return r.failed - (r.errors.deadline ?? 0)
}

/**
 * A YAML config: one service on the lab VIP with the given real servers and extra service lines.
 * expire_nodest_conn is on: the lab client reuses ports quickly, and a SYN on the entry of a finished
 * connection to a server a check took out would be dropped (as IPVS does) until that entry expires.
 */
export function daemonConfig(topo: Topology, o: {
  reals: { node: number; weight?: number }[]
  scheduler?: string
  check?: string
  extra?: string
  family?: 'ipv4' | 'ipv6'
}): string {
  const fam = o.family ?? 'ipv4'
  const rs = o.reals.map((r) => `      - { address: "${topo.reals[r.node]![fam]}", weight: ${r.weight ?? 1}, method: dr }`).join('\n')
  return `settings:
  interfaces: [${topo.director.front.name}]
  expire_nodest_conn: true
services:
  - vip: "${topo.vip[fam]}"
    port: 80
    scheduler: ${o.scheduler ?? 'wrr'}
${o.check ? `    check: ${o.check}\n` : ''}${o.extra ?? ''}    real_servers:
${rs}
`
}
