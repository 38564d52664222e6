// SPDX-License-Identifier: GPL-2.0-only
// HTTP and HTTPS GET (keepalived HTTP_GET / SSL_GET). Each url is fetched on its own connection
// (no keep-alive, no proxy, redirects not followed); the check passes when every url answers with an
// expected status and, where asked, a body matching a regular expression or an MD5 digest.
import { createHash } from 'node:crypto'
import http from 'node:http'
import https from 'node:https'
import net from 'node:net'
import type { Socket } from 'node:net'
import { ArgumentError } from '../../errors'
import type { Checker, CheckResult, CheckTarget, HttpCheckSpec, HttpUrlSpec, StatusMatch } from '../types'
import {
  abortDetail,
  assertOptionalMs,
  assertOptionalSize,
  assertPort,
  beginCheck,
  compileRegex,
  describeError,
} from './common'

const DEFAULT_MAX_BODY = 1024 * 1024
const DEFAULT_STATUSES: readonly StatusMatch[] = [200]
const USER_AGENT = 'xvs-healthcheck'

/**
 * Parses an operator's status list: "200", "200,204", "200-299, 301". Codes are 100..599; a range is
 * "low-high" with low <= high.
 */
export function parseStatusList(text: string): StatusMatch[] {
  const parts = text.split(/[\s,]+/).filter((part) => part !== '')
  if (parts.length === 0) throw new ArgumentError('status list is empty', { hint: 'write codes like "200" or "200-299,301"' })
  return parts.map((part) => {
    const m = /^(\d{3})(?:-(\d{3}))?$/.exec(part)
    if (!m) throw new ArgumentError(`bad HTTP status ${JSON.stringify(part)} in ${JSON.stringify(text)}`, { hint: 'write codes like "200" or "200-299,301"' })
    const low = Number(m[1])
    if (m[2] === undefined) return checkStatus(low)
    const range: [number, number] = [checkStatus(low), checkStatus(Number(m[2]))]
    if (range[0] > range[1]) throw new ArgumentError(`status range ${part} runs backwards`)
    return range
  })
}

function checkStatus(code: number): number {
  if (!Number.isInteger(code) || code < 100 || code > 599) throw new ArgumentError(`HTTP status must be 100..599, got ${code}`)
  return code
}

export function statusMatches(status: number, statuses: readonly StatusMatch[]): boolean {
  return statuses.some((m) => (typeof m === 'number' ? status === m : status >= m[0] && status <= m[1]))
}

export function formatStatuses(statuses: readonly StatusMatch[]): string {
  return statuses.map((m) => (typeof m === 'number' ? String(m) : `${m[0]}-${m[1]}`)).join(',')
}

interface PreparedUrl {
  path: string
  statuses: readonly StatusMatch[]
  regex: RegExp | undefined
  digest: string | undefined
}

export class HttpChecker implements Checker {
  readonly type: 'http' | 'https'
  private readonly spec: HttpCheckSpec
  private readonly urls: PreparedUrl[]
  private readonly verify: boolean
  private readonly servername: string | undefined
  private readonly maxBody: number

  constructor(spec: HttpCheckSpec) {
    if (spec.type !== 'http' && spec.type !== 'https') throw new ArgumentError(`http check type must be http or https, got ${String(spec.type)}`)
    this.type = spec.type
    if (spec.port !== undefined) assertPort(spec.port, 'http check port')
    assertOptionalMs(spec.timeoutMs, 'http check timeoutMs')
    assertOptionalMs(spec.connectTimeoutMs, 'http check connectTimeoutMs')
    assertOptionalMs(spec.readTimeoutMs, 'http check readTimeoutMs')
    assertOptionalSize(spec.maxBodyBytes, 'http check maxBodyBytes')
    if (!Array.isArray(spec.urls) || spec.urls.length === 0) throw new ArgumentError('http check needs at least one url')
    this.urls = spec.urls.map((url, i) => prepareUrl(url, i))
    if (spec.host !== undefined && (spec.host === '' || /[\s]/.test(spec.host))) {
      throw new ArgumentError(`http check host must be a non-empty header value without spaces, got ${JSON.stringify(spec.host)}`)
    }
    this.verify = spec.verify ?? spec.ca !== undefined
    this.servername = serverName(spec)
    this.maxBody = spec.maxBodyBytes ?? DEFAULT_MAX_BODY
    this.spec = { ...spec }
  }

  async run(target: CheckTarget, signal: AbortSignal): Promise<CheckResult> {
    const start = beginCheck(target, this.spec, signal, 'http check')
    if ('refused' in start) return start.refused
    const { watch, port, limit } = start
    try {
      let detail = ''
      for (const url of this.urls) {
        const [ok, line] = await this.get(target.address, port, url, limit.signal)
        if (!ok) return watch.result(false, line)
        detail = this.urls.length === 1 ? line : `${this.urls.length} urls ok`
      }
      return watch.result(true, detail)
    } finally {
      limit.dispose()
    }
  }

  /** One GET; resolves [ok, detail] after the connection is destroyed. */
  private get(address: string, port: number, url: PreparedUrl, signal: AbortSignal): Promise<[boolean, string]> {
    const spec = this.spec
    const secure = spec.type === 'https'
    const what = `GET ${url.path}`
    return new Promise((resolve) => {
      if (signal.aborted) {
        resolve([false, `${what}: ${abortDetail(signal)}`])
        return
      }
      const headers: Record<string, string> = { 'User-Agent': USER_AGENT, Accept: '*/*', Connection: 'close' }
      if (spec.host !== undefined) headers['Host'] = spec.host
      const options: https.RequestOptions = { host: address, port, path: url.path, method: 'GET', headers, agent: false }
      if (spec.localAddress !== undefined) options.localAddress = spec.localAddress
      if (secure) {
        options.rejectUnauthorized = this.verify
        // '' tells Node's agent to send no SNI rather than derive one from the Host header.
        options.servername = this.servername ?? ''
        if (spec.ca !== undefined) options.ca = spec.ca
      }
      const req = (secure ? https : http).request(options)
      let done = false
      let connectTimer: NodeJS.Timeout | undefined
      const finish = (ok: boolean, detail: string): void => {
        if (done) return
        done = true
        if (connectTimer !== undefined) clearTimeout(connectTimer)
        signal.removeEventListener('abort', onAbort)
        req.destroy()
        resolve([ok, detail])
      }
      const fail = (detail: string): void => finish(false, `${what}: ${detail}`)
      const onAbort = (): void => fail(abortDetail(signal))
      signal.addEventListener('abort', onAbort, { once: true })
      req.on('error', (err) => fail(describeError(err)))
      req.on('socket', (socket: Socket) => {
        if (spec.connectTimeoutMs !== undefined) {
          const ms = spec.connectTimeoutMs
          connectTimer = setTimeout(() => fail(`connect timed out after ${ms} ms`), ms)
        }
        socket.once(secure ? 'secureConnect' : 'connect', () => {
          if (connectTimer !== undefined) clearTimeout(connectTimer)
          if (spec.readTimeoutMs !== undefined) {
            const ms = spec.readTimeoutMs
            socket.setTimeout(ms, () => fail(`read timed out after ${ms} ms`))
          }
        })
      })
      req.on('response', (res: http.IncomingMessage) => {
        const status = res.statusCode ?? 0
        if (!statusMatches(status, url.statuses)) {
          fail(`HTTP ${status}, expected ${formatStatuses(url.statuses)}`)
          return
        }
        if (url.regex === undefined && url.digest === undefined) {
          finish(true, `${what}: HTTP ${status}`)
          return
        }
        const md5 = url.digest !== undefined ? createHash('md5') : undefined
        const chunks: Buffer[] = []
        let size = 0
        const evaluate = (truncated: boolean): void => {
          if (done) return
          if (url.regex !== undefined && !url.regex.test(Buffer.concat(chunks).toString('utf8'))) {
            fail(`HTTP ${status}, body${truncated ? ` (first ${size} bytes)` : ''} does not match /${url.regex.source}/`)
            return
          }
          if (md5 !== undefined) {
            const sum = md5.digest('hex')
            if (sum !== url.digest) {
              fail(`HTTP ${status}, body MD5 ${sum}, expected ${url.digest}`)
              return
            }
          }
          finish(true, `${what}: HTTP ${status}, body ok (${size} bytes)`)
        }
        res.on('data', (chunk: Buffer) => {
          if (done) return
          const room = this.maxBody - size
          if (chunk.length > room) {
            if (md5 !== undefined) {
              fail(`HTTP ${status}, body longer than ${this.maxBody} bytes, cannot check its digest`)
              return
            }
            chunks.push(chunk.subarray(0, room))
            size += room
            evaluate(true)
            return
          }
          md5?.update(chunk)
          if (url.regex !== undefined) chunks.push(chunk)
          size += chunk.length
        })
        res.on('end', () => evaluate(false))
        res.on('error', (err) => fail(describeError(err)))
        res.on('close', () => fail(`HTTP ${status}, connection closed before the body ended`))
      })
      req.end()
    })
  }
}

function prepareUrl(url: HttpUrlSpec, i: number): PreparedUrl {
  const where = `http check urls[${i}]`
  if (typeof url.path !== 'string' || !url.path.startsWith('/') || /[\s]/.test(url.path)) {
    throw new ArgumentError(`${where}.path must start with '/' and hold no spaces, got ${JSON.stringify(url.path)}`)
  }
  const statuses = url.statuses ?? DEFAULT_STATUSES
  if (statuses.length === 0) throw new ArgumentError(`${where}.statuses is empty`, { hint: 'leave it out for 200' })
  for (const m of statuses) {
    if (typeof m === 'number') checkStatus(m)
    else if (checkStatus(m[0]) > checkStatus(m[1])) throw new ArgumentError(`${where}.statuses range ${m[0]}-${m[1]} runs backwards`)
  }
  if (url.digest !== undefined && !/^[0-9a-fA-F]{32}$/.test(url.digest)) {
    throw new ArgumentError(`${where}.digest must be 32 hex digits (an MD5), got ${JSON.stringify(url.digest)}`)
  }
  return {
    path: url.path,
    statuses: statuses.map((m) => (typeof m === 'number' ? m : ([m[0], m[1]] as const))),
    regex: url.regex !== undefined ? compileRegex(url.regex, `${where}.regex`) : undefined,
    digest: url.digest?.toLowerCase(),
  }
}

/** SNI: explicit, else the Host header's name part unless it is an IP literal, else none. */
function serverName(spec: HttpCheckSpec): string | undefined {
  if (spec.sni === false) return undefined
  if (spec.sni !== undefined) {
    if (spec.sni === '' || net.isIP(spec.sni) !== 0) throw new ArgumentError(`http check sni must be a host name, got ${JSON.stringify(spec.sni)}`)
    return spec.sni
  }
  if (spec.host === undefined) return undefined
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(spec.host)
  const name = bracketed ? bracketed[1]! : spec.host.replace(/:\d+$/, '')
  return net.isIP(name) !== 0 ? undefined : name
}
