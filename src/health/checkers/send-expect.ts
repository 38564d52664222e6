// SPDX-License-Identifier: GPL-2.0-only
// nanny's send/expect check (lvs.cf send, expect, use_regex): connect, write one string, then read
// until the expected text appears. It fails when the server closes first, the read limit is reached,
// or time runs out.
import type net from 'node:net'
import { StringDecoder } from 'node:string_decoder'
import { decodeEscapes } from '../escapes'
import type { Checker, CheckResult, CheckTarget, SendExpectCheckSpec } from '../types'
import {
  abortDetail,
  assertOptionalMs,
  assertOptionalSize,
  assertPort,
  beginCheck,
  compileRegex,
  connectTcp,
  describeError,
  excerpt,
} from './common'

const DEFAULT_MAX_READ = 65536

export class SendExpectChecker implements Checker {
  readonly type = 'send-expect'
  private readonly spec: SendExpectCheckSpec
  private readonly send: Buffer
  /** Literal text to find, or a RegExp; undefined: nothing to read. */
  private readonly expect: string | RegExp | undefined
  private readonly maxRead: number

  constructor(spec: SendExpectCheckSpec) {
    if (spec.port !== undefined) assertPort(spec.port, 'send-expect check port')
    assertOptionalMs(spec.timeoutMs, 'send-expect check timeoutMs')
    assertOptionalMs(spec.connectTimeoutMs, 'send-expect check connectTimeoutMs')
    assertOptionalSize(spec.maxReadBytes, 'send-expect check maxReadBytes')
    const escapes = spec.escapes ?? true
    const send = spec.send ?? ''
    this.send = Buffer.from(escapes ? decodeEscapes(send) : send, 'utf8')
    const expect = spec.expect ?? ''
    if (expect === '') this.expect = undefined
    else if (spec.regex) this.expect = compileRegex(expect, 'send-expect check expect')
    else this.expect = escapes ? decodeEscapes(expect) : expect
    this.maxRead = spec.maxReadBytes ?? DEFAULT_MAX_READ
    this.spec = { ...spec }
  }

  async run(target: CheckTarget, signal: AbortSignal): Promise<CheckResult> {
    const start = beginCheck(target, this.spec, signal, 'send/expect')
    if ('refused' in start) return start.refused
    const { watch, port, limit } = start
    let socket: net.Socket | undefined
    try {
      const outcome = await connectTcp(target.address, port, this.spec, limit.signal)
      if ('error' in outcome) return watch.result(false, outcome.error)
      socket = outcome.socket
      const [ok, detail] = await this.converse(socket, limit.signal)
      return watch.result(ok, detail)
    } finally {
      socket?.destroy()
      limit.dispose()
    }
  }

  /** Writes `send` and reads until `expect`; resolves [ok, detail]. */
  private converse(socket: net.Socket, signal: AbortSignal): Promise<[boolean, string]> {
    const expect = this.expect
    return new Promise((resolve) => {
      const decoder = new StringDecoder('utf8')
      let received = ''
      let bytes = 0
      let done = false
      const finish = (ok: boolean, detail: string): void => {
        if (done) return
        done = true
        signal.removeEventListener('abort', onAbort)
        socket.removeListener('data', onData)
        socket.removeListener('end', onClosed)
        socket.removeListener('close', onClosed)
        socket.removeListener('error', onError)
        resolve([ok, detail])
      }
      const waitingFor = (): string => (expect instanceof RegExp ? `waiting for /${expect.source}/` : `waiting for ${excerpt(expect ?? '')}`)
      const onAbort = (): void => finish(false, `${abortDetail(signal)} ${waitingFor()}, got ${excerpt(received)}`)
      const onError = (err: Error): void => finish(false, describeError(err))
      const onClosed = (): void => finish(false, `connection closed ${waitingFor()}, got ${excerpt(received)}`)
      const onData = (chunk: Buffer): void => {
        bytes += chunk.length
        received += decoder.write(chunk)
        if (matches(received)) finish(true, expect instanceof RegExp ? `matched /${expect.source}/` : `got ${excerpt(expect ?? '')}`)
        else if (bytes >= this.maxRead) finish(false, `read ${bytes} bytes ${waitingFor()}`)
      }
      const matches = (text: string): boolean => (expect instanceof RegExp ? expect.test(text) : text.includes(expect ?? ''))

      if (signal.aborted) {
        onAbort()
        return
      }
      signal.addEventListener('abort', onAbort, { once: true })
      socket.on('error', onError)
      if (expect !== undefined) {
        socket.on('data', onData)
        socket.once('end', onClosed)
        socket.once('close', onClosed)
      }
      if (this.send.length > 0) {
        socket.write(this.send, (err) => {
          if (err) finish(false, describeError(err))
          else if (expect === undefined) finish(true, `sent ${this.send.length} bytes`)
        })
      } else if (expect === undefined) {
        finish(true, 'connected')
      }
    })
  }
}
