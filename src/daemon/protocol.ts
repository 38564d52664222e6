// SPDX-License-Identifier: GPL-2.0-only
// The control socket's protocol: newline-delimited JSON over a unix stream socket.
//
//   request   {"id": 1, "method": "reload", "params": {}}          one line, at most MAX_LINE bytes
//   success   {"id": 1, "ok": true, "result": {...}}
//   failure   {"id": 1, "ok": false, "error": {"code": "ECONFIG", "message": "...", "where": "f:3:7", "hint": "..."}}
//
// `id` is the client's (a string or a number; answers carry it back, null when the request could not be
// read far enough to find it); `params` may be left out. Requests on one connection are answered in
// order. A line that is not JSON, not an object, names no known method or carries bad parameters gets a
// failure answer with code EPROTO and the connection stays usable; only a line over MAX_LINE closes it
// (after the answer). Methods and their parameters are listed in METHODS below.
import { ConfigError, XvsError } from '../errors'
import type { ConfigFormat } from '../config'

export const PROTOCOL_VERSION = 1
/** Longest request line (an `apply` carries a whole config file). */
export const MAX_LINE = 16 * 1024 * 1024
export const DEFAULT_SOCKET = '/run/xvs/xvs.sock'

export type RequestId = string | number | null

export interface WireError {
  code: string
  message: string
  hint?: string
  /** "file:line:column" or a field path, for config errors. */
  where?: string
}

export type Response =
  | { id: RequestId; ok: true; result: unknown }
  | { id: RequestId; ok: false; error: WireError }

export const CONFIG_FORMATS: readonly ConfigFormat[] = ['yaml', 'ipvsadm', 'keepalived', 'lvs.cf']

/** What each method takes. */
export interface MethodParams {
  /** {pid, version, protocol, netns}: netns identifies the daemon's network namespace (one socket path may be reached from several). */
  ping: Record<string, never>
  /** The daemon, its config and data plane, health and sweeper in brief. */
  status: Record<string, never>
  /** Services and real servers as configured and as running, with health, statistics and rates. */
  list: Record<string, never>
  /** Every health-check target's state and last result. */
  health: Record<string, never>
  /** Global data-plane counters, sweeper figures. */
  stats: Record<string, never>
  /** The Prometheus page, as /metrics serves it. */
  metrics: Record<string, never>
  /** The running config as xvs YAML ({text, format, file, generation}): what edits start from. */
  config: Record<string, never>
  /** Re-read the config file; a bad one is refused (error reply), the running config stays. */
  reload: Record<string, never>
  /**
   * Run this config text instead of the file's (until the next reload re-reads the file). `format`:
   * one of CONFIG_FORMATS, else told by `file`'s name or the text; `file` names it in error positions.
   */
  apply: { text: string; format?: ConfigFormat; file?: string }
  /** Load the director program again (from `object`, default the installed one) and replace the attached one atomically, keeping every map. */
  upgrade: { object?: string }
  /** Run a sweeper pass now and return its report. */
  sweep: Record<string, never>
}
export type Method = keyof MethodParams

export interface Request<M extends Method = Method> {
  id: RequestId
  method: M
  params: MethodParams[M]
}

export class ProtocolError extends XvsError {
  constructor(message: string, hint?: string) {
    super('EPROTO', message, hint === undefined ? {} : { hint })
  }
}

type Validator = (p: Record<string, unknown>) => void

const none: Validator = (p) => {
  const extra = Object.keys(p)
  if (extra.length) throw new ProtocolError(`unexpected parameter ${extra[0]}`)
}

function only(p: Record<string, unknown>, allowed: string[]): void {
  const extra = Object.keys(p).find((k) => !allowed.includes(k))
  if (extra !== undefined) throw new ProtocolError(`unexpected parameter ${extra}; this method takes ${allowed.join(', ')}`)
}

function optString(p: Record<string, unknown>, k: string): void {
  if (p[k] !== undefined && typeof p[k] !== 'string') throw new ProtocolError(`parameter ${k} must be a string`)
}

const VALIDATORS: Record<Method, Validator> = {
  ping: none, status: none, list: none, health: none, stats: none, metrics: none, config: none, reload: none, sweep: none,
  apply: (p) => {
    only(p, ['text', 'format', 'file'])
    if (typeof p.text !== 'string') throw new ProtocolError('apply needs params.text, the config text')
    optString(p, 'file')
    if (p.format !== undefined && !CONFIG_FORMATS.includes(p.format as ConfigFormat))
      throw new ProtocolError(`params.format must be one of ${CONFIG_FORMATS.join(', ')}`)
  },
  upgrade: (p) => {
    only(p, ['object'])
    optString(p, 'object')
  },
}

export const METHODS = Object.keys(VALIDATORS) as Method[]

export function isMethod(m: unknown): m is Method {
  return typeof m === 'string' && Object.prototype.hasOwnProperty.call(VALIDATORS, m)
}

/**
 * Parse one request line. Never throws: a bad line gives `{ error }` with whatever id could be read,
 * ready to be answered.
 */
export function parseRequest(line: string): { request: Request } | { id: RequestId; error: WireError } {
  let msg: unknown
  try {
    msg = JSON.parse(line)
  } catch (e) {
    return { id: null, error: toWire(new ProtocolError(`request is not JSON: ${(e as Error).message}`, 'send one JSON object per line')) }
  }
  if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) {
    return { id: null, error: toWire(new ProtocolError('request must be a JSON object {id, method, params}')) }
  }
  const m = msg as Record<string, unknown>
  const id: RequestId = typeof m.id === 'string' || (typeof m.id === 'number' && Number.isFinite(m.id)) ? m.id : null
  try {
    if (m.id !== undefined && m.id !== null && id === null) throw new ProtocolError('id must be a string or a number')
    if (!isMethod(m.method)) {
      throw new ProtocolError(typeof m.method === 'string' ? `unknown method ${JSON.stringify(m.method).slice(0, 80)}` : 'request has no method',
        `methods: ${METHODS.join(', ')}`)
    }
    const params = m.params ?? {}
    if (typeof params !== 'object' || params === null || Array.isArray(params)) throw new ProtocolError('params must be an object')
    VALIDATORS[m.method](params as Record<string, unknown>)
    return { request: { id, method: m.method, params: params as never } }
  } catch (e) {
    return { id, error: toWire(e) }
  }
}

/** An error as it crosses the socket: code, message, and the hint and position when known. */
export function toWire(err: unknown): WireError {
  if (err instanceof XvsError) {
    const out: WireError = { code: err.code, message: err.message }
    if (err.hint) out.hint = err.hint
    if (err instanceof ConfigError && err.where) out.where = err.where
    return out
  }
  if (err instanceof Error) return { code: (err as NodeJS.ErrnoException).code ?? 'EINTERNAL', message: err.message }
  return { code: 'EINTERNAL', message: String(err) }
}

export function encodeResponse(r: Response): string {
  return `${JSON.stringify(r)}\n`
}

/**
 * Splits a byte stream into lines. push() returns the complete lines so far; a line longer than
 * `max` bytes (without its newline) sets `overflow` and everything after is ignored.
 */
export class LineSplitter {
  private parts: Buffer[] = []
  private size = 0
  overflow = false

  constructor(private readonly max = MAX_LINE) {}

  push(chunk: Buffer): string[] {
    if (this.overflow) return []
    const lines: string[] = []
    let start = 0
    for (;;) {
      const nl = chunk.indexOf(0x0a, start)
      if (nl < 0) break
      const piece = chunk.subarray(start, nl)
      if (this.size + piece.length > this.max) { this.overflow = true; return lines }
      this.parts.push(piece)
      const line = Buffer.concat(this.parts).toString('utf8').replace(/\r$/, '')
      this.parts = []
      this.size = 0
      if (line.trim() !== '') lines.push(line)
      start = nl + 1
    }
    const rest = chunk.subarray(start)
    if (this.size + rest.length > this.max) { this.overflow = true; return lines }
    if (rest.length) { this.parts.push(Buffer.from(rest)); this.size += rest.length }
    return lines
  }
}
