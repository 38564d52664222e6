// SPDX-License-Identifier: GPL-2.0-only
// HTTP in the lab: a server per real server that answers with its own name, and a client that makes N
// requests from a namespace and counts who answered. Both run as `ip netns exec NS node -e <script>`
// children of the lab (so destroy() kills them) and need no build: the scripts are the functions
// serverMain/clientMain below, sent as source text (Function.prototype.toString). They must stay
// self-contained: no closures over this module, only `require` of Node built-ins inside.
import type { ChildProcess } from 'node:child_process'
import type { AddressInfo } from 'node:net'
import { ArgumentError, XvsError } from '../errors'
import type { LabNode, NodeRef, Topology } from './topology'

export interface HttpServerOptions {
  /** What the server answers (body and the x-xvs-lab-server header); default the node's short name. */
  name?: string
  /** Listen address; default '::' (every IPv4 and IPv6 address of the namespace, the VIP included). */
  host?: string
  /** Default 80; 0 picks a free port (see HttpServer.port). */
  port?: number
  /** How long to wait for the server to listen; default 10 s. */
  readyTimeoutMs?: number
}

export interface HttpServer {
  readonly node: string
  readonly ns: string
  readonly name: string
  readonly port: number
  readonly pid: number
  /** SIGTERM, then SIGKILL after 2 s; resolves once the process is gone. */
  stop(): Promise<void>
}

export interface HttpRequestsOptions {
  /** Address to connect to (IPv4 or IPv6 literal, no brackets). */
  host: string
  port?: number
  path?: string
  /** Number of requests, 1..100000; each is a new TCP connection. */
  count: number
  /** Requests in flight at once, 1..256; default 1. */
  concurrency?: number
  /** Per request (connect included), 1..60000 ms; default 2000. */
  timeoutMs?: number
  /** For the whole run, 1..600000 ms; default 30000. Requests not started by then count as 'deadline'. */
  deadlineMs?: number
  /** Source address to bind (for persistence and source-hash tests). */
  localAddress?: string
}

export interface HttpRequestsResult {
  /** Requests answered with HTTP 200. */
  ok: number
  failed: number
  /** Answers per server name. */
  byResponder: Record<string, number>
  /**
   * Answers per client address as the server saw it (its x-xvs-lab-peer header: the connection's
   * remote address, IPv4-mapped IPv6 shown as IPv4): the client itself, or a NAT's address.
   */
  byPeer: Record<string, number>
  /** Failures per reason: an errno code (ECONNREFUSED, ETIMEDOUT, ...), 'HTTP <status>' or 'deadline'. */
  errors: Record<string, number>
  elapsedMs: number
}

interface ServerConfig {
  name: string
  host: string
  port: number
}

interface ClientConfig {
  host: string
  port: number
  path: string
  count: number
  concurrency: number
  timeoutMs: number
  deadlineMs: number
  localAddress: string | undefined
}

// ---------------------------------------------------------------------------------------------------
// Child scripts. They run in a bare `node -e` (CommonJS): only built-ins, everything inside.

function serverMain(cfg: ServerConfig): void {
  const http = require('node:http') as typeof import('node:http')
  const server = http.createServer((req, res) => {
    req.resume()
    const peer = (req.socket.remoteAddress ?? '').replace(/^::ffff:(?=\d+\.)/, '')
    res.writeHead(200, { 'content-type': 'text/plain', 'x-xvs-lab-server': cfg.name, 'x-xvs-lab-peer': peer, connection: 'close' })
    res.end(`${cfg.name}\n`)
  })
  server.on('error', err => {
    process.stderr.write(`httpd ${cfg.name}: ${err.message}\n`)
    process.exit(1)
  })
  server.listen({ host: cfg.host, port: cfg.port }, () => {
    process.stdout.write(`ready ${(server.address() as AddressInfo).port}\n`)
  })
  // The parent holds our stdin: when it goes away, even by SIGKILL, the pipe closes and we follow.
  process.stdin.on('end', () => process.exit(0))
  process.stdin.on('error', () => process.exit(0))
  process.stdin.resume()
}

function clientMain(cfg: ClientConfig): void {
  const http = require('node:http') as typeof import('node:http')
  const started = Date.now()
  const byResponder: Record<string, number> = {}
  const byPeer: Record<string, number> = {}
  const errors: Record<string, number> = {}
  let ok = 0
  let failed = 0
  let issued = 0
  let finished = false
  const fail = (why: string, n = 1): void => {
    errors[why] = (errors[why] ?? 0) + n
    failed += n
  }
  const finish = (): void => {
    if (finished) return
    finished = true
    if (issued < cfg.count) fail('deadline', cfg.count - issued)
    process.stdout.write(`${JSON.stringify({ ok, failed, byResponder, byPeer, errors, elapsedMs: Date.now() - started })}\n`, () => process.exit(0))
  }
  const one = (): Promise<void> =>
    new Promise(resolve => {
      let settled = false
      const settle = (outcome: { responder: string; peer: string | undefined } | { error: string }): void => {
        if (settled) return
        settled = true
        if ('responder' in outcome) {
          byResponder[outcome.responder] = (byResponder[outcome.responder] ?? 0) + 1
          if (outcome.peer !== undefined) byPeer[outcome.peer] = (byPeer[outcome.peer] ?? 0) + 1
          ok++
        } else {
          fail(outcome.error)
        }
        resolve()
      }
      const codeOf = (err: Error): string => (err as NodeJS.ErrnoException).code ?? err.message
      const req = http.request(
        {
          host: cfg.host,
          port: cfg.port,
          path: cfg.path,
          // No agent: every request is a new TCP connection, i.e. a new scheduling decision.
          agent: false,
          timeout: cfg.timeoutMs,
          ...(cfg.localAddress !== undefined ? { localAddress: cfg.localAddress } : {}),
        },
        res => {
          let body = ''
          res.setEncoding('utf8')
          res.on('data', (chunk: string) => {
            if (body.length < 1024) body += chunk
          })
          const peer = res.headers['x-xvs-lab-peer']
          res.on('end', () => settle(res.statusCode === 200 ? { responder: body.trim(), peer: typeof peer === 'string' ? peer : undefined } : { error: `HTTP ${res.statusCode}` }))
          res.on('error', err => settle({ error: codeOf(err) }))
        },
      )
      // 'timeout' covers connect too: a SYN nobody answers ends here, not in the kernel's 2-minute retry.
      req.on('timeout', () => {
        settle({ error: 'ETIMEDOUT' })
        req.destroy()
      })
      req.on('error', err => settle({ error: codeOf(err) }))
      req.end()
    })
  const deadline = started + cfg.deadlineMs
  const worker = async (): Promise<void> => {
    while (issued < cfg.count && Date.now() < deadline) {
      issued++
      await one()
    }
  }
  setTimeout(finish, cfg.deadlineMs + cfg.timeoutMs).unref()
  void Promise.all(Array.from({ length: cfg.concurrency }, worker)).then(finish)
  process.stdin.on('end', () => process.exit(0))
  process.stdin.on('error', () => process.exit(0))
  process.stdin.resume()
}

function script<T>(main: (cfg: T) => void, cfg: T): string {
  return `(${main.toString()})(${JSON.stringify(cfg)})`
}

/** The environment for child scripts: without NODE_OPTIONS, which under tap preloads its instrumentation. */
function childEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env }
  delete env.NODE_OPTIONS
  return env
}

// ---------------------------------------------------------------------------------------------------
// Parent side.

const OUTPUT_LIMIT = 1024 * 1024

function checkInt(what: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) throw new ArgumentError(`${what} must be an integer from ${min} to ${max}, got ${value}`)
  return value
}

function nodeOf(topo: Topology, node: NodeRef): LabNode {
  return typeof node === 'string' ? topo.node(node) : node
}

/** Collects a child's stdout/stderr (bounded) and resolves on exit; kills it and rejects after timeoutMs. */
function collect(child: ChildProcess, what: string, timeoutMs: number, onStdout?: (text: string) => boolean): Promise<{ stdout: string; stderr: string; code: number | null }> {
  return new Promise((resolve, reject) => {
    let stdout = ''
    let stderr = ''
    let done = false
    const end = (fn: () => void): void => {
      if (done) return
      done = true
      clearTimeout(timer)
      fn()
    }
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      end(() => reject(new XvsError('ETIMEDOUT', `${what}: no result after ${timeoutMs} ms${stderr ? `: ${stderr.trim().split('\n')[0]}` : ''}`)))
    }, timeoutMs)
    child.stdout?.setEncoding('utf8')
    child.stderr?.setEncoding('utf8')
    child.stdout?.on('data', (chunk: string) => {
      if (stdout.length < OUTPUT_LIMIT) stdout += chunk
      if (onStdout?.(stdout) === true) end(() => resolve({ stdout, stderr, code: null }))
    })
    child.stderr?.on('data', (chunk: string) => {
      if (stderr.length < OUTPUT_LIMIT) stderr += chunk
    })
    child.once('error', err => end(() => reject(new XvsError('ELAB', `${what}: ${err.message}`, { cause: err }))))
    child.once('close', code => end(() => resolve({ stdout, stderr, code })))
  })
}

/** Starts an HTTP server in node's namespace that answers with its name; resolves once it listens. */
export async function startHttpServer(topo: Topology, node: NodeRef, opts: HttpServerOptions = {}): Promise<HttpServer> {
  const n = nodeOf(topo, node)
  const cfg: ServerConfig = {
    name: opts.name ?? n.name,
    host: opts.host ?? '::',
    port: checkInt('http server port', opts.port ?? 80, 0, 65535),
  }
  const readyTimeoutMs = checkInt('readyTimeoutMs', opts.readyTimeoutMs ?? 10_000, 1, 600_000)
  const child = topo.spawn(n, [process.execPath, '-e', script(serverMain, cfg)], { env: childEnv() })
  const what = `http server ${cfg.name} in ${n.ns}`
  const started = await collect(child, what, readyTimeoutMs, out => /^ready \d+$/m.test(out))
  const m = /^ready (\d+)$/m.exec(started.stdout)
  if (m === null) {
    child.kill('SIGKILL')
    throw new XvsError('ELAB', `${what} exited before listening (exit ${started.code}): ${started.stderr.trim().split('\n')[0] ?? ''}`)
  }
  // Keep draining its pipes so a chatty child never blocks on a full pipe.
  child.stdout?.resume()
  child.stderr?.resume()
  return {
    node: n.name,
    ns: n.ns,
    name: cfg.name,
    port: Number(m[1]),
    pid: child.pid ?? -1,
    stop: () => stopChild(child),
  }
}

/** One server per node (default: every real server), each answering with its node's name. */
export function startHttpServers(topo: Topology, nodes: readonly NodeRef[] = topo.reals, opts: Omit<HttpServerOptions, 'name'> = {}): Promise<HttpServer[]> {
  return Promise.all(nodes.map(node => startHttpServer(topo, node, opts)))
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise(resolve => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 2000)
    child.once('exit', () => {
      clearTimeout(timer)
      resolve()
    })
    child.kill('SIGTERM')
  })
}

/** Makes opts.count HTTP requests from node's namespace and counts the answers per server name. */
export async function httpRequests(topo: Topology, from: NodeRef, opts: HttpRequestsOptions): Promise<HttpRequestsResult> {
  const n = nodeOf(topo, from)
  if (typeof opts.host !== 'string' || opts.host === '') throw new ArgumentError('httpRequests: host is required')
  const cfg: ClientConfig = {
    host: opts.host,
    port: checkInt('port', opts.port ?? 80, 1, 65535),
    path: opts.path ?? '/',
    count: checkInt('count', opts.count, 1, 100_000),
    concurrency: checkInt('concurrency', opts.concurrency ?? 1, 1, 256),
    timeoutMs: checkInt('timeoutMs', opts.timeoutMs ?? 2000, 1, 60_000),
    deadlineMs: checkInt('deadlineMs', opts.deadlineMs ?? 30_000, 1, 600_000),
    localAddress: opts.localAddress,
  }
  const child = topo.spawn(n, [process.execPath, '-e', script(clientMain, cfg)], { env: childEnv() })
  // The child stops itself after deadline + one request timeout; allow for Node's start-up on top.
  const what = `http client in ${n.ns} -> ${cfg.host}:${cfg.port}`
  const res = await collect(child, what, cfg.deadlineMs + cfg.timeoutMs + 10_000)
  const line = res.stdout.trim().split('\n').pop() ?? ''
  try {
    return JSON.parse(line) as HttpRequestsResult
  } catch {
    throw new XvsError('ELAB', `${what} gave no result (exit ${res.code}): ${res.stderr.trim().split('\n')[0] ?? ''}`)
  }
}
