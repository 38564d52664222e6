// SPDX-License-Identifier: GPL-2.0-only
// Health checks: checkers (TCP, send/expect, HTTP/HTTPS, external program), the engine that schedules
// them and keeps per-server up/down state, and the pure function from states to a service's desired set.
export * from './types'
export { FakeClock, systemClock } from '../util/clock'
export { decodeEscapes, encodeEscapes } from './escapes'
export {
  CheckTimeoutError,
  createChecker,
  ExternalChecker,
  formatStatuses,
  HttpChecker,
  isIpLiteral,
  parseStatusList,
  SendExpectChecker,
  statusMatches,
  substituteTokens,
  TcpChecker,
} from './checkers'
export { computeDesired, effectiveWeight, validatePolicy } from './desired'
export type { DesiredBackend, DesiredService, ServerHealth, ServicePolicy, SorryServerSpec } from './desired'
export { DEFAULT_POLICY, HealthEngine, resolvePolicy } from './engine'
export type { CheckEvent, DesiredEvent, HealthEngineEvents, HealthEngineOptions, HealthTargetSpec, TargetStatus, TransitionEvent } from './engine'
