// SPDX-License-Identifier: GPL-2.0-only
// A client of the daemon's control socket (protocol.ts), for the command lines and tests. An error
// answer becomes a DaemonRequestError carrying the daemon's code, hint and position, so `xvs reload`
// prints the located config error and exits non-zero as it would for a local one.
import net from 'node:net'
import { ConfigError, XvsError } from '../errors'
import { DEFAULT_SOCKET, LineSplitter, MAX_LINE, type Method, type MethodParams, type Response, type WireError } from './protocol'

/** The daemon answered with an error. A config error arrives as a ConfigError (see `remoteError`). */
export class DaemonRequestError extends XvsError {
  readonly where: string | undefined
  constructor(e: WireError) {
    super(e.code, e.message, e.hint === undefined ? {} : { hint: e.hint })
    this.where = e.where
  }
}

/** The socket could not be reached or broke. */
export class DaemonUnreachableError extends XvsError {
  constructor(message: string, opts: { hint?: string; cause?: unknown } = {}) {
    super('ENODAEMON', message, opts)
  }
}

/** The error for a failure answer: config errors keep their class (and code ECONFIG), the rest are DaemonRequestError. */
export function remoteError(e: WireError): XvsError {
  if (e.code === 'ECONFIG') {
    // The message already starts with the position; keep `where` for callers that want it.
    const err = new ConfigError(e.message, e.hint === undefined ? {} : { hint: e.hint })
    Object.defineProperty(err, 'where', { value: e.where })
    return err
  }
  return new DaemonRequestError(e)
}

export interface ClientOptions {
  /** Default /run/xvs/xvs.sock ($XVS_SOCKET overrides). */
  socket?: string
  /** Per request; default 60 s (a reload resolves next hops and may take a while). */
  timeoutMs?: number
}

export const socketPath = (p?: string): string => p ?? process.env.XVS_SOCKET ?? DEFAULT_SOCKET

export class DaemonClient {
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>()
  private nextId = 1
  private closed = false

  private constructor(private readonly sock: net.Socket, private readonly timeoutMs: number) {
    const splitter = new LineSplitter(MAX_LINE * 4)
    sock.on('data', (chunk: Buffer) => {
      for (const line of splitter.push(chunk)) this.onLine(line)
    })
    const fail = (err: Error): void => {
      this.closed = true
      for (const [id, p] of this.pending) { clearTimeout(p.timer); p.reject(err); this.pending.delete(id) }
    }
    sock.on('error', (e) => fail(new DaemonUnreachableError(`control socket: ${e.message}`, { cause: e })))
    sock.on('close', () => fail(new DaemonUnreachableError('the daemon closed the control connection')))
  }

  /** Connect; rejects with DaemonUnreachableError (code ENODAEMON) when no daemon listens there. */
  static connect(opts: ClientOptions = {}): Promise<DaemonClient> {
    const file = socketPath(opts.socket)
    return new Promise((resolve, reject) => {
      const s = net.connect(file)
      s.once('connect', () => {
        s.removeAllListeners('error')
        resolve(new DaemonClient(s, opts.timeoutMs ?? 60_000))
      })
      s.once('error', (e: NodeJS.ErrnoException) => {
        reject(new DaemonUnreachableError(`no xvs daemon on ${file} (${e.code ?? e.message})`,
          { hint: 'start it (systemctl start xvs, or xvs daemon --config FILE)', cause: e }))
      })
    })
  }

  /** A client if a daemon answers on the socket, else null. */
  static async tryConnect(opts: ClientOptions = {}): Promise<DaemonClient | null> {
    try {
      return await DaemonClient.connect(opts)
    } catch (e) {
      if (e instanceof DaemonUnreachableError) return null
      throw e
    }
  }

  /** One request; resolves with the result, rejects with the daemon's error (see remoteError). */
  request<M extends Method>(method: M, params?: MethodParams[M]): Promise<unknown> {
    if (this.closed) return Promise.reject(new DaemonUnreachableError('the control connection is closed'))
    const id = this.nextId++
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id)
        reject(new DaemonUnreachableError(`the daemon did not answer ${method} within ${this.timeoutMs} ms`))
      }, this.timeoutMs)
      this.pending.set(id, { resolve, reject, timer })
      this.sock.write(`${JSON.stringify({ id, method, params: params ?? {} })}\n`)
    })
  }

  /** Send raw bytes (tests of the protocol); answers to them land in `unsolicited` unless their id is pending. */
  writeRaw(text: string): void {
    this.sock.write(text)
  }

  private onLine(line: string): void {
    let r: Response
    try {
      r = JSON.parse(line) as Response
    } catch {
      return
    }
    const id = typeof r.id === 'number' ? r.id : null
    const p = id === null ? undefined : this.pending.get(id)
    if (!p) { this.unsolicited.push(r); return }
    this.pending.delete(id!)
    clearTimeout(p.timer)
    if (r.ok) p.resolve(r.result)
    else p.reject(remoteError(r.error))
  }

  /** Answers that matched no request (e.g. to a raw line without an id). */
  readonly unsolicited: Response[] = []

  close(): void {
    this.closed = true
    this.sock.end()
    this.sock.destroy()
  }
}

/** One request on a fresh connection. */
export async function callDaemon<M extends Method>(method: M, params?: MethodParams[M], opts: ClientOptions = {}): Promise<unknown> {
  const c = await DaemonClient.connect(opts)
  try {
    return await c.request(method, params)
  } finally {
    c.close()
  }
}
