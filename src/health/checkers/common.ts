// SPDX-License-Identifier: GPL-2.0-only
// What the checkers share: per-attempt deadlines linked to the caller's AbortSignal, target and port
// checks, one-line error descriptions, and opening a TCP connection that honours a deadline.
import net from 'node:net'
import { performance } from 'node:perf_hooks'
import { ArgumentError, XvsError } from '../../errors'
import type { CheckResult, CheckTarget } from '../types'

/** The abort reason when an attempt ran out of time (the checker's own limit or the engine's). */
export class CheckTimeoutError extends XvsError {
  readonly timeoutMs: number
  constructor(timeoutMs: number, what = 'check') {
    super('ECHECKTIMEOUT', `${what} timed out after ${timeoutMs} ms`)
    this.timeoutMs = timeoutMs
  }
}

export interface Deadline {
  /** Aborts when the parent does or when the time is up. */
  readonly signal: AbortSignal
  /** Stops the timer and unhooks from the parent; call once the attempt is over. */
  dispose(): void
}

/** A child signal of `parent` that also aborts after `timeoutMs` (if given) with a CheckTimeoutError. */
export function deadline(parent: AbortSignal, timeoutMs: number | undefined, what = 'check'): Deadline {
  const controller = new AbortController()
  const onAbort = (): void => controller.abort(parent.reason)
  let timer: NodeJS.Timeout | undefined
  if (parent.aborted) controller.abort(parent.reason)
  else {
    parent.addEventListener('abort', onAbort, { once: true })
    if (timeoutMs !== undefined) {
      timer = setTimeout(() => controller.abort(new CheckTimeoutError(timeoutMs, what)), timeoutMs)
    }
  }
  return {
    signal: controller.signal,
    dispose() {
      if (timer !== undefined) clearTimeout(timer)
      parent.removeEventListener('abort', onAbort)
    },
  }
}

/** Why a signal aborted, as a detail line. */
export function abortDetail(signal: AbortSignal): string {
  const reason: unknown = signal.reason
  if (reason instanceof Error) return reason.message
  return typeof reason === 'string' && reason !== '' ? reason : 'aborted'
}

/** One line from a Node error: its message already names the operation and errno ("connect ECONNREFUSED 127.0.0.1:1"). */
export function describeError(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code
    const first = err.message.split('\n')[0] ?? ''
    return code !== undefined && !first.includes(code) ? `${code}: ${first}` : first
  }
  return String(err)
}

/** True for an IPv4 or IPv6 literal, an IPv6 one possibly with a zone ("fe80::1%eth0"). */
export function isIpLiteral(address: string): boolean {
  const pct = address.indexOf('%')
  if (pct >= 0 && !/^[A-Za-z0-9_.-]+$/.test(address.slice(pct + 1))) return false
  return net.isIP(address) !== 0
}

export function assertPort(port: number, what: string): void {
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new ArgumentError(`${what} must be an integer 1..65535, got ${String(port)}`)
  }
}

/** What is wrong with a target, or undefined. Checkers report it as a failed result instead of throwing. */
export function targetProblem(target: CheckTarget): string | undefined {
  if (typeof target.address !== 'string' || !isIpLiteral(target.address)) {
    return `target address must be an IPv4 or IPv6 literal, got ${JSON.stringify(target.address)}`
  }
  const port = target.port
  if (!Number.isInteger(port) || port < 1 || port > 65535) return `target port must be an integer 1..65535, got ${String(port)}`
  return undefined
}

export function assertTarget(target: CheckTarget): void {
  const problem = targetProblem(target)
  if (problem !== undefined) throw new ArgumentError(`health check: ${problem}`)
}

export function assertOptionalMs(value: number | undefined, what: string): void {
  if (value !== undefined && (!Number.isFinite(value) || value <= 0)) {
    throw new ArgumentError(`${what} must be a positive number of milliseconds, got ${String(value)}`)
  }
}

export function assertOptionalSize(value: number | undefined, what: string): void {
  if (value !== undefined && (!Number.isInteger(value) || value < 1)) {
    throw new ArgumentError(`${what} must be a positive integer, got ${String(value)}`)
  }
}

export function compileRegex(source: string, what: string): RegExp {
  try {
    return new RegExp(source)
  } catch (err) {
    throw new ArgumentError(`${what} is not a valid regular expression: ${JSON.stringify(source)}`, { cause: err })
  }
}

/** Measures one attempt and builds its result. */
export class Stopwatch {
  private readonly start = performance.now()
  result(ok: boolean, detail: string, extra: { weight?: number } = {}): CheckResult {
    const latencyMs = Math.round((performance.now() - this.start) * 1000) / 1000
    return extra.weight === undefined ? { ok, detail, latencyMs } : { ok, detail, latencyMs, weight: extra.weight }
  }
}

export type Connected = { socket: net.Socket } | { error: string }

/**
 * Opens a TCP connection to address:port. Resolves with the socket once connected, or with a detail line
 * when it is refused, times out (`connectTimeoutMs`) or `signal` aborts; a socket that did not connect is
 * destroyed. The returned socket keeps a no-op 'error' listener so a late error can never crash the
 * process; callers add their own.
 */
export function connectTcp(
  address: string,
  port: number,
  opts: { connectTimeoutMs?: number; localAddress?: string },
  signal: AbortSignal,
): Promise<Connected> {
  return new Promise((resolve) => {
    if (signal.aborted) {
      resolve({ error: abortDetail(signal) })
      return
    }
    const socket = net.connect({ host: address, port, noDelay: true, ...(opts.localAddress ? { localAddress: opts.localAddress } : {}) })
    socket.on('error', noop)
    let timer: NodeJS.Timeout | undefined
    const settle = (outcome: Connected): void => {
      if (timer !== undefined) clearTimeout(timer)
      signal.removeEventListener('abort', onAbort)
      socket.removeListener('connect', onConnect)
      socket.removeListener('error', onError)
      if ('error' in outcome) socket.destroy()
      resolve(outcome)
    }
    const onAbort = (): void => settle({ error: abortDetail(signal) })
    const onConnect = (): void => settle({ socket })
    const onError = (err: Error): void => settle({ error: describeError(err) })
    socket.once('connect', onConnect)
    socket.once('error', onError)
    signal.addEventListener('abort', onAbort, { once: true })
    if (opts.connectTimeoutMs !== undefined) {
      const ms = opts.connectTimeoutMs
      timer = setTimeout(() => settle({ error: `connect timed out after ${ms} ms` }), ms)
    }
  })
}

export function noop(): void {}

/** A short, quoted excerpt of received text for a detail line. */
export function excerpt(text: string, max = 60): string {
  return JSON.stringify(text.length > max ? `${text.slice(0, max)}...` : text)
}

/**
 * What every checker does first: start timing, refuse a bad target, pick the port (the spec's, else
 * the target's), arm the deadline. A refusal is a failed result, never a throw.
 */
export function beginCheck(target: CheckTarget, spec: { port?: number; timeoutMs?: number }, signal: AbortSignal,
  what: string): { refused: CheckResult } | { watch: Stopwatch; port: number; limit: Deadline } {
  const watch = new Stopwatch()
  const problem = targetProblem(target)
  if (problem !== undefined) return { refused: watch.result(false, problem) }
  return { watch, port: spec.port ?? target.port, limit: deadline(signal, spec.timeoutMs, what) }
}
