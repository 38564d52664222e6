// SPDX-License-Identifier: GPL-2.0-only
// The control socket's server: a unix stream socket, mode 0600 (only root, who runs the daemon, may
// connect), speaking protocol.ts. A stale socket file left by a killed daemon is replaced; a live one
// (another daemon answers) is refused. Handlers are the daemon's; a handler that throws becomes an
// error answer, never a crash.
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { XvsError } from '../errors'
import { silentLogger, type Logger } from '../log'
import {
  LineSplitter, MAX_LINE, encodeResponse, parseRequest, toWire, type Method, type MethodParams, type Response,
} from './protocol'

export type Handlers = { [M in Method]: (params: MethodParams[M]) => unknown }

export class ControlError extends XvsError {
  constructor(message: string, opts: { hint?: string; cause?: unknown } = {}) {
    super('ECONTROL', message, opts)
  }
}

/** Is something listening on this unix socket? */
export function socketAnswers(file: string, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(file)
    const done = (v: boolean): void => { clearTimeout(timer); s.destroy(); resolve(v) }
    const timer = setTimeout(() => done(true), timeoutMs) // it accepted or hangs: someone is there
    s.once('connect', () => done(true))
    s.once('error', () => done(false))
  })
}

export class ControlServer {
  private server: net.Server | undefined
  private readonly sockets = new Set<net.Socket>()
  private ino: number | undefined
  private readonly log: Logger

  constructor(readonly file: string, private readonly handlers: Handlers, opts: { log?: Logger; maxLine?: number } = {}) {
    this.log = (opts.log ?? silentLogger).child({ component: 'control' })
    this.maxLine = opts.maxLine ?? MAX_LINE
  }

  private readonly maxLine: number

  async listen(): Promise<void> {
    const dir = path.dirname(this.file)
    fs.mkdirSync(dir, { recursive: true, mode: 0o755 })
    if (fs.existsSync(this.file)) {
      const st = fs.lstatSync(this.file)
      if (!st.isSocket()) throw new ControlError(`${this.file} exists and is not a socket`, { hint: 'remove it or give another --socket path' })
      if (await socketAnswers(this.file)) {
        throw new ControlError(`another xvs daemon answers on ${this.file}`, { hint: 'stop it first (systemctl stop xvs), or give another --socket path' })
      }
      fs.unlinkSync(this.file) // left by a daemon that was killed
    }
    const server = net.createServer((s) => this.accept(s))
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      // The socket file is created inside listen(): a umask makes it 0600 from the first instant.
      const old = process.umask(0o177)
      try {
        server.listen(this.file, () => { server.off('error', reject); resolve() })
      } finally {
        process.umask(old)
      }
    }).catch((e: unknown) => {
      throw new ControlError(`cannot listen on ${this.file}: ${(e as Error).message}`, { cause: e })
    })
    fs.chmodSync(this.file, 0o600)
    this.ino = fs.statSync(this.file).ino
    server.on('error', (err) => this.log.error({ err }, 'control socket error'))
    this.server = server
    this.log.info({ socket: this.file }, 'control socket listening')
  }

  private accept(s: net.Socket): void {
    this.sockets.add(s)
    const splitter = new LineSplitter(this.maxLine)
    let queue = Promise.resolve()
    s.on('data', (chunk: Buffer) => {
      for (const line of splitter.push(chunk)) queue = queue.then(() => this.answer(s, line))
      if (splitter.overflow) {
        queue = queue.then(() => {
          this.write(s, { id: null, ok: false, error: { code: 'EPROTO', message: `request line longer than ${this.maxLine} bytes`, hint: 'one JSON object per line' } })
          s.end()
        })
      }
    })
    s.on('error', (err) => this.log.debug({ err }, 'control connection error'))
    s.on('close', () => this.sockets.delete(s))
  }

  private async answer(s: net.Socket, line: string): Promise<void> {
    const parsed = parseRequest(line)
    if ('error' in parsed) {
      this.log.warn({ error: parsed.error }, 'bad control request')
      this.write(s, { id: parsed.id, ok: false, error: parsed.error })
      return
    }
    const { id, method, params } = parsed.request
    try {
      const handler = this.handlers[method] as (p: unknown) => unknown
      const result = await handler(params)
      this.write(s, { id, ok: true, result: result ?? null })
    } catch (err) {
      this.log.debug({ err, method }, 'control request failed')
      this.write(s, { id, ok: false, error: toWire(err) })
    }
  }

  private write(s: net.Socket, r: Response): void {
    if (s.destroyed || !s.writable) return
    let text: string
    try {
      text = encodeResponse(r)
    } catch (err) {
      text = encodeResponse({ id: r.id, ok: false, error: toWire(err) })
    }
    s.write(text)
  }

  /** Stop listening, end every connection, remove the socket file (if it is still ours). */
  async close(): Promise<void> {
    const server = this.server
    if (!server) return
    this.server = undefined
    for (const s of this.sockets) s.destroy()
    await new Promise<void>((resolve) => server.close(() => resolve()))
    try {
      if (fs.statSync(this.file).ino === this.ino) fs.unlinkSync(this.file)
    } catch { /* already gone */ }
  }
}
