// SPDX-License-Identifier: GPL-2.0-only
// TCP connect (keepalived TCP_CHECK): healthy when the three-way handshake completes. The connection
// is closed at once; nothing is sent.
import type { Checker, CheckResult, CheckTarget, TcpCheckSpec } from '../types'
import { assertOptionalMs, assertPort, beginCheck, connectTcp } from './common'

export class TcpChecker implements Checker {
  readonly type = 'tcp'
  private readonly spec: TcpCheckSpec

  constructor(spec: TcpCheckSpec) {
    if (spec.port !== undefined) assertPort(spec.port, 'tcp check port')
    assertOptionalMs(spec.timeoutMs, 'tcp check timeoutMs')
    assertOptionalMs(spec.connectTimeoutMs, 'tcp check connectTimeoutMs')
    this.spec = { ...spec }
  }

  async run(target: CheckTarget, signal: AbortSignal): Promise<CheckResult> {
    const start = beginCheck(target, this.spec, signal, 'connect')
    if ('refused' in start) return start.refused
    const { watch, port, limit } = start
    try {
      const outcome = await connectTcp(target.address, port, this.spec, limit.signal)
      if ('error' in outcome) return watch.result(false, outcome.error)
      outcome.socket.destroy()
      return watch.result(true, `connected to port ${port}`)
    } finally {
      limit.dispose()
    }
  }
}
