// SPDX-License-Identifier: GPL-2.0-only
// One checker per spec type. Construction validates the spec (ArgumentError naming the field); run()
// never throws.
import { ArgumentError } from '../../errors'
import type { Checker, CheckSpec } from '../types'
import { ExternalChecker } from './external'
import { HttpChecker } from './http'
import { SendExpectChecker } from './send-expect'
import { TcpChecker } from './tcp'

export function createChecker(spec: CheckSpec): Checker {
  switch (spec.type) {
    case 'tcp':
      return new TcpChecker(spec)
    case 'send-expect':
      return new SendExpectChecker(spec)
    case 'http':
    case 'https':
      return new HttpChecker(spec)
    case 'external':
      return new ExternalChecker(spec)
    default:
      throw new ArgumentError(`unknown health check type ${JSON.stringify((spec as { type?: unknown }).type)}`, {
        hint: 'use tcp, send-expect, http, https or external',
      })
  }
}

export { CheckTimeoutError, isIpLiteral } from './common'
export { ExternalChecker, substituteTokens } from './external'
export { formatStatuses, HttpChecker, parseStatusList, statusMatches } from './http'
export { SendExpectChecker } from './send-expect'
export { TcpChecker } from './tcp'
