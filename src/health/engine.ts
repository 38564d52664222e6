// SPDX-License-Identifier: GPL-2.0-only
// The health engine: runs every target's checker on its own schedule and turns results into up/down.
//
// Scheduling. Each target has one timer on the injected clock. Its checks start on a fixed grid,
// first + k * interval (the first run spread at random over min(interval, spreadMs), so thousands of
// targets added together do not fire together); a round that overruns skips the grid points it missed
// rather than drifting. One attempt per target is in flight at most: each gets its own AbortController,
// aborted at `timeoutMs`, when the attempt counts as failed at once. A checker that ignores the abort
// keeps its slot until it settles, and the target's next attempts fail ("previous check still running")
// instead of piling up. `maxInFlight` bounds attempts across all targets (file descriptors, processes);
// attempts over it wait in a FIFO, and their timeout starts when they start.
//
// States. Per target, 'up' or 'down':
//   up   --fail-->  failStreak += 1; at `fall` consecutive failed checks: down
//        (while up, a failed attempt is retried `retries` times, `retryDelayMs` apart, before the check
//         counts as failed: keepalived retry / delay_before_retry)
//   down --ok-->    okStreak += 1; up once okStreak >= `rise` and the good streak has lasted `reentryMs`
//                   (lvs.cf reentry); any failure resets the streak
//   initial 'down' (alpha): the first good check brings it up.
// Transitions, every check, and each service's changed desired set (desired.ts) are emitted as events.
import { EventEmitter } from 'node:events'
import { ArgumentError } from '../errors'
import { silentLogger } from '../log'
import type { Logger } from '../log'
import { assertTarget, CheckTimeoutError, describeError } from './checkers/common'
import { systemClock } from '../util/clock'
import { computeDesired, validatePolicy } from './desired'
import type { DesiredService, ServerHealth, ServicePolicy } from './desired'
import type { Checker, CheckPolicy, CheckResult, Clock, Health } from './types'

/** Engine defaults for a policy field the target leaves out (lvs.cf-like: check every 6 s). */
export const DEFAULT_POLICY: Readonly<CheckPolicy> = {
  intervalMs: 6000,
  timeoutMs: 5000,
  rise: 1,
  fall: 1,
  retries: 0,
  retryDelayMs: 1000,
  reentryMs: 0,
  initial: 'up',
}
const DEFAULT_MAX_IN_FLIGHT = 1024
const DEFAULT_SPREAD_MS = 10_000

export interface HealthTargetSpec {
  /** Unique among the engine's targets, e.g. "web/10.0.0.1:80". */
  key: string
  /** The service (see setService) whose desired set this server belongs to. */
  service?: string
  address: string
  port: number
  /** Configured weight; default 1. */
  weight?: number
  checker: Checker
  policy?: Partial<CheckPolicy>
}

export interface TargetStatus {
  key: string
  service: string | undefined
  address: string
  port: number
  weight: number
  health: Health
  /** Clock time of the last transition (or of add()). */
  since: number
  okStreak: number
  failStreak: number
  /** Completed checks. */
  checks: number
  lastResult: CheckResult | undefined
  lastCheckAt: number | undefined
  dynamicWeight: number | undefined
}

export interface TransitionEvent {
  key: string
  service: string | undefined
  from: Health
  to: Health
  /** Why, for logs: "3 failed checks: connect ECONNREFUSED ...". */
  cause: string
  at: number
  result: CheckResult
}

export interface CheckEvent {
  key: string
  service: string | undefined
  result: CheckResult
  /** 1 for the first attempt of a check, 2.. for retries. */
  attempt: number
  /** False for an attempt that will be retried; true when the check's result was applied. */
  final: boolean
  /** The state after this result. */
  health: Health
  at: number
}

export interface DesiredEvent {
  service: string
  desired: DesiredService
}

export type HealthEngineEvents = {
  transition: [TransitionEvent]
  check: [CheckEvent]
  desired: [DesiredEvent]
}

export interface HealthEngineOptions {
  clock?: Clock
  log?: Logger
  /** For the first-run spread; default Math.random. */
  random?: () => number
  /** Attempts running at once across all targets; default 1024. */
  maxInFlight?: number
  /** First runs land uniformly in [start, start + min(interval, spreadMs)); default 10000. 0: all at once. */
  spreadMs?: number
  /** Overrides DEFAULT_POLICY for every target. */
  defaults?: Partial<CheckPolicy>
}

interface Attempt {
  controller: AbortController
  timer: unknown
  /** Its result was delivered (or it was given up on): a later settle is ignored. */
  done: boolean
}

interface TargetRecord {
  spec: Required<Omit<HealthTargetSpec, 'service' | 'policy'>> & { service: string | undefined }
  policy: CheckPolicy
  health: Health
  awaitingFirst: boolean
  since: number
  okStreak: number
  failStreak: number
  healthySince: number | undefined
  checks: number
  lastResult: CheckResult | undefined
  lastCheckAt: number | undefined
  dynamicWeight: number | undefined
  /** Grid point of the current or next check. */
  nextDue: number
  /** The one pending clock timer: the next check or the next retry. */
  timer: unknown
  timerSet: boolean
  /** Attempts made in the current check. */
  attempt: number
  current: Attempt | undefined
  /** The checker's promise has not settled yet. */
  inFlight: boolean
  /** An attempt waits for the previous (timed-out) one to settle. */
  deferred: boolean
  removed: boolean
}

interface ServiceRecord {
  policy: ServicePolicy
  members: Set<TargetRecord>
  quorumUp: boolean | undefined
  last: DesiredService | undefined
  lastJson: string | undefined
}

export class HealthEngine extends EventEmitter<HealthEngineEvents> {
  private readonly clock: Clock
  private readonly log: Logger
  private readonly random: () => number
  private readonly maxInFlight: number
  private readonly spreadMs: number
  private readonly defaults: CheckPolicy
  private readonly targets = new Map<string, TargetRecord>()
  private readonly services = new Map<string, ServiceRecord>()
  private readonly waiting: TargetRecord[] = []
  private readonly settling = new Set<Promise<void>>()
  private inFlightCount = 0
  private running = false

  constructor(opts: HealthEngineOptions = {}) {
    super()
    this.clock = opts.clock ?? systemClock
    this.log = (opts.log ?? silentLogger).child({ component: 'health' })
    this.random = opts.random ?? Math.random
    this.maxInFlight = opts.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT
    if (!Number.isInteger(this.maxInFlight) || this.maxInFlight < 1) throw new ArgumentError(`maxInFlight must be an integer >= 1, got ${String(opts.maxInFlight)}`)
    this.spreadMs = opts.spreadMs ?? DEFAULT_SPREAD_MS
    if (!Number.isFinite(this.spreadMs) || this.spreadMs < 0) throw new ArgumentError(`spreadMs must be >= 0, got ${String(opts.spreadMs)}`)
    this.defaults = resolvePolicy(DEFAULT_POLICY, opts.defaults ?? {}, 'defaults')
  }

  /** Adds or replaces a service's policy; its targets refer to it by key. */
  setService(key: string, policy: ServicePolicy): void {
    validatePolicy(policy)
    const existing = this.services.get(key)
    if (existing) existing.policy = { ...policy }
    else this.services.set(key, { policy: { ...policy }, members: new Set(), quorumUp: undefined, last: undefined, lastJson: undefined })
    this.updateService(key)
  }

  /** Removes a service that no target refers to any more. */
  removeService(key: string): void {
    const svc = this.services.get(key)
    if (!svc) return
    if (svc.members.size > 0) throw new ArgumentError(`service ${key} still has ${svc.members.size} health-check targets`, { hint: 'remove them first' })
    this.services.delete(key)
  }

  add(spec: HealthTargetSpec): void {
    if (typeof spec.key !== 'string' || spec.key === '') throw new ArgumentError('health-check target needs a key')
    if (this.targets.has(spec.key)) throw new ArgumentError(`health-check target ${spec.key} already exists`)
    assertTarget(spec)
    const weight = spec.weight ?? 1
    if (!Number.isInteger(weight) || weight < 0 || weight > 65535) throw new ArgumentError(`target ${spec.key} weight must be 0..65535, got ${String(weight)}`)
    if (spec.checker === undefined || typeof spec.checker.run !== 'function') throw new ArgumentError(`target ${spec.key} needs a checker`)
    const svc = spec.service !== undefined ? this.services.get(spec.service) : undefined
    if (spec.service !== undefined && svc === undefined) throw new ArgumentError(`target ${spec.key}: unknown service ${spec.service}`, { hint: 'call setService first' })
    const policy = resolvePolicy(this.defaults, spec.policy ?? {}, `target ${spec.key} policy`)
    const now = this.clock.now()
    const rec: TargetRecord = {
      spec: { key: spec.key, service: spec.service, address: spec.address, port: spec.port, weight, checker: spec.checker },
      policy,
      health: policy.initial,
      awaitingFirst: policy.initial === 'down',
      since: now,
      okStreak: 0,
      failStreak: 0,
      healthySince: undefined,
      checks: 0,
      lastResult: undefined,
      lastCheckAt: undefined,
      dynamicWeight: undefined,
      nextDue: now,
      timer: undefined,
      timerSet: false,
      attempt: 0,
      current: undefined,
      inFlight: false,
      deferred: false,
      removed: false,
    }
    this.targets.set(spec.key, rec)
    if (svc && spec.service !== undefined) {
      svc.members.add(rec)
      this.updateService(spec.service)
    }
    if (this.running) this.scheduleFirst(rec)
  }

  /** Stops checking a target; an attempt in flight is aborted and its result ignored. */
  remove(key: string): void {
    const rec = this.targets.get(key)
    if (!rec) return
    rec.removed = true
    this.clearTimer(rec)
    this.abandon(rec, new Error('target removed'))
    this.targets.delete(key)
    const service = rec.spec.service
    if (service !== undefined) {
      this.services.get(service)?.members.delete(rec)
      this.updateService(service)
    }
  }

  has(key: string): boolean {
    return this.targets.has(key)
  }

  start(): void {
    if (this.running) return
    this.running = true
    for (const rec of this.targets.values()) this.scheduleFirst(rec)
    this.log.info({ targets: this.targets.size }, 'health engine started')
  }

  /** Stops all timers, aborts attempts in flight and resolves once every checker has settled. */
  async stop(): Promise<void> {
    if (this.running) {
      this.running = false
      for (const rec of this.targets.values()) {
        this.clearTimer(rec)
        this.abandon(rec, new Error('health engine stopped'))
      }
      this.waiting.length = 0
      this.log.info({ targets: this.targets.size }, 'health engine stopped')
    }
    await Promise.all([...this.settling])
  }

  status(key: string): TargetStatus | undefined {
    const rec = this.targets.get(key)
    return rec ? statusOf(rec) : undefined
  }

  statuses(): TargetStatus[] {
    return [...this.targets.values()].map(statusOf)
  }

  /** The service's current desired set (as last emitted). */
  desired(service: string): DesiredService {
    const svc = this.services.get(service)
    if (!svc) throw new ArgumentError(`unknown service ${service}`)
    if (svc.last === undefined) this.updateService(service)
    return svc.last!
  }

  /** Attempts whose checker has not settled yet. */
  get inFlight(): number {
    return this.inFlightCount
  }

  // --- scheduling -------------------------------------------------------------------------------

  private scheduleFirst(rec: TargetRecord): void {
    const spread = Math.min(rec.policy.intervalMs, this.spreadMs)
    rec.nextDue = this.clock.now() + Math.floor(this.random() * spread)
    this.setTimer(rec, rec.nextDue, () => this.startCheck(rec))
  }

  private setTimer(rec: TargetRecord, at: number, fn: () => void): void {
    this.clearTimer(rec)
    rec.timerSet = true
    rec.timer = this.clock.setTimeout(() => {
      rec.timerSet = false
      rec.timer = undefined
      fn()
    }, Math.max(0, at - this.clock.now()))
  }

  private clearTimer(rec: TargetRecord): void {
    if (rec.timerSet) this.clock.clearTimeout(rec.timer)
    rec.deferred = false
    rec.timerSet = false
    rec.timer = undefined
  }

  private startCheck(rec: TargetRecord): void {
    rec.attempt = 0
    this.requestAttempt(rec)
  }

  private requestAttempt(rec: TargetRecord): void {
    if (rec.removed || !this.running) return
    if (this.inFlightCount >= this.maxInFlight) this.waiting.push(rec)
    else this.runAttempt(rec)
  }

  private pump(): void {
    while (this.running && this.inFlightCount < this.maxInFlight && this.waiting.length > 0) {
      const rec = this.waiting.shift()!
      if (!rec.removed) this.runAttempt(rec)
    }
  }

  private runAttempt(rec: TargetRecord): void {
    const { timeoutMs } = rec.policy
    if (rec.inFlight) {
      // The previous attempt timed out but its checker has not settled yet. Wait for it (runAttempt is
      // called again when it settles), for at most one more timeout; a checker that ignores its abort
      // then costs this attempt, never a second process or socket.
      this.setTimer(rec, this.clock.now() + timeoutMs, () => {
        rec.deferred = false
        this.log.warn({ target: rec.spec.key }, 'checker still running after abort')
        this.deliver(rec, { ok: false, detail: 'previous check still running (its checker ignored the abort)', latencyMs: timeoutMs })
      })
      rec.deferred = true // after setTimer, which clears it
      return
    }
    const attempt: Attempt = { controller: new AbortController(), timer: undefined, done: false }
    attempt.timer = this.clock.setTimeout(() => {
      if (attempt.done) return
      attempt.done = true
      rec.current = undefined
      attempt.controller.abort(new CheckTimeoutError(timeoutMs))
      this.deliver(rec, { ok: false, detail: `timed out after ${timeoutMs} ms`, latencyMs: timeoutMs })
    }, timeoutMs)
    rec.current = attempt
    rec.inFlight = true
    this.inFlightCount++
    let run: Promise<CheckResult>
    try {
      run = Promise.resolve(rec.spec.checker.run({ address: rec.spec.address, port: rec.spec.port }, attempt.controller.signal))
    } catch (err) {
      run = Promise.reject(err)
    }
    const settled = run
      .then(checkedResult, (err: unknown): CheckResult => ({ ok: false, detail: `checker failed: ${describeError(err)}`, latencyMs: 0 }))
      .then((result) => {
        rec.inFlight = false
        this.inFlightCount--
        this.settling.delete(settled)
        if (!attempt.done) {
          attempt.done = true
          this.clock.clearTimeout(attempt.timer)
          rec.current = undefined
          this.deliver(rec, result)
        } else if (rec.deferred) {
          rec.deferred = false
          this.clearTimer(rec)
          if (!rec.removed && this.running) this.runAttempt(rec)
        }
        this.pump()
      })
    this.settling.add(settled)
  }

  /** Gives up on the attempt in flight: aborts it and ignores its result. */
  private abandon(rec: TargetRecord, reason: Error): void {
    const attempt = rec.current
    if (!attempt) return
    attempt.done = true
    this.clock.clearTimeout(attempt.timer)
    rec.current = undefined
    attempt.controller.abort(reason)
  }

  private deliver(rec: TargetRecord, result: CheckResult): void {
    if (rec.removed || !this.running) return
    rec.attempt++
    const now = this.clock.now()
    if (!result.ok && rec.health === 'up' && rec.attempt <= rec.policy.retries) {
      this.log.debug({ target: rec.spec.key, attempt: rec.attempt, detail: result.detail }, 'check attempt failed, retrying')
      this.emitSafe('check', { key: rec.spec.key, service: rec.spec.service, result, attempt: rec.attempt, final: false, health: rec.health, at: now })
      this.setTimer(rec, now + rec.policy.retryDelayMs, () => this.requestAttempt(rec))
      return
    }
    const attempt = rec.attempt
    const changed = this.apply(rec, result, now)
    this.emitSafe('check', { key: rec.spec.key, service: rec.spec.service, result, attempt, final: true, health: rec.health, at: now })
    if (changed && rec.spec.service !== undefined) this.updateService(rec.spec.service)
    // Next grid point after now: a check that overran its interval skips the points it missed.
    const interval = rec.policy.intervalMs
    let next = rec.nextDue + interval
    if (next <= now) next += (Math.floor((now - next) / interval) + 1) * interval
    rec.nextDue = next
    this.setTimer(rec, next, () => this.startCheck(rec))
  }

  // --- state machine ----------------------------------------------------------------------------

  /** Applies one check's result; true when the desired set may have changed (transition or new weight). */
  private apply(rec: TargetRecord, result: CheckResult, now: number): boolean {
    rec.checks++
    rec.lastResult = result
    rec.lastCheckAt = now
    const { rise, fall, reentryMs } = rec.policy
    if (result.ok) {
      rec.failStreak = 0
      rec.okStreak++
      if (rec.healthySince === undefined) rec.healthySince = now
      let changed = false
      if (result.weight !== undefined && result.weight !== rec.dynamicWeight) {
        this.log.info({ target: rec.spec.key, weight: result.weight, previous: rec.dynamicWeight ?? rec.spec.weight }, 'dynamic weight changed')
        rec.dynamicWeight = result.weight
        changed = true
      }
      if (rec.health === 'down') {
        if (rec.awaitingFirst) {
          this.transition(rec, 'up', `first good check: ${result.detail}`, result, now)
          changed = true
        } else if (rec.okStreak >= rise && now - rec.healthySince >= reentryMs) {
          const over = reentryMs > 0 ? ` over ${now - rec.healthySince} ms` : ''
          this.transition(rec, 'up', `${plural(rec.okStreak, 'good check')}${over}: ${result.detail}`, result, now)
          changed = true
        }
      }
      rec.awaitingFirst = false
      return changed
    }
    rec.okStreak = 0
    rec.healthySince = undefined
    rec.failStreak++
    if (rec.health === 'up' && rec.failStreak >= fall) {
      this.transition(rec, 'down', `${plural(rec.failStreak, 'failed check')}: ${result.detail}`, result, now)
      return true
    }
    return false
  }

  private transition(rec: TargetRecord, to: Health, cause: string, result: CheckResult, now: number): void {
    const from = rec.health
    rec.health = to
    rec.since = now
    this.log.info({ target: rec.spec.key, service: rec.spec.service, from, to, cause }, 'real server health changed')
    this.emitSafe('transition', { key: rec.spec.key, service: rec.spec.service, from, to, cause, at: now, result })
  }

  private updateService(key: string): void {
    const svc = this.services.get(key)
    if (!svc) return
    const servers: ServerHealth[] = []
    for (const rec of svc.members) {
      const server: ServerHealth = { key: rec.spec.key, address: rec.spec.address, port: rec.spec.port, weight: rec.spec.weight, health: rec.health }
      if (rec.dynamicWeight !== undefined) server.dynamicWeight = rec.dynamicWeight
      servers.push(server)
    }
    const desired = computeDesired(svc.policy, servers, svc.quorumUp)
    if (svc.quorumUp !== undefined && svc.quorumUp !== desired.quorumUp) {
      this.log.info({ service: key, quorumUp: desired.quorumUp, upWeight: desired.upWeight }, desired.quorumUp ? 'service quorum gained' : 'service quorum lost')
    }
    svc.quorumUp = desired.quorumUp
    svc.last = desired
    const json = JSON.stringify(desired)
    if (json === svc.lastJson) return
    svc.lastJson = json
    this.emitSafe('desired', { service: key, desired })
  }

  /** A listener that throws must not wedge the engine. */
  private emitSafe<K extends keyof HealthEngineEvents>(event: K, ...args: HealthEngineEvents[K]): void {
    try {
      ;(this.emit as (event: K, ...args: HealthEngineEvents[K]) => boolean)(event, ...args)
    } catch (err) {
      this.log.error({ err, event }, 'health event listener threw')
    }
  }
}

function checkedResult(result: CheckResult): CheckResult {
  if (result === null || typeof result !== 'object' || typeof result.ok !== 'boolean') {
    return { ok: false, detail: 'checker returned no result', latencyMs: 0 }
  }
  return result
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`
}

function statusOf(rec: TargetRecord): TargetStatus {
  return {
    key: rec.spec.key,
    service: rec.spec.service,
    address: rec.spec.address,
    port: rec.spec.port,
    weight: rec.spec.weight,
    health: rec.health,
    since: rec.since,
    okStreak: rec.okStreak,
    failStreak: rec.failStreak,
    checks: rec.checks,
    lastResult: rec.lastResult,
    lastCheckAt: rec.lastCheckAt,
    dynamicWeight: rec.dynamicWeight,
  }
}

export function resolvePolicy(base: CheckPolicy, over: Partial<CheckPolicy>, where: string): CheckPolicy {
  const p: CheckPolicy = { ...base }
  for (const [k, v] of Object.entries(over)) if (v !== undefined) (p as unknown as Record<string, unknown>)[k] = v
  const positive = (name: keyof CheckPolicy): void => {
    const v = p[name]
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new ArgumentError(`${where}: ${name} must be a positive number, got ${String(v)}`)
  }
  const atLeast = (name: keyof CheckPolicy, min: number, integer: boolean): void => {
    const v = p[name]
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || (integer && !Number.isInteger(v))) {
      throw new ArgumentError(`${where}: ${name} must be ${integer ? 'an integer' : 'a number'} >= ${min}, got ${String(v)}`)
    }
  }
  positive('intervalMs')
  positive('timeoutMs')
  atLeast('rise', 1, true)
  atLeast('fall', 1, true)
  atLeast('retries', 0, true)
  atLeast('retryDelayMs', 0, false)
  atLeast('reentryMs', 0, false)
  if (p.initial !== 'up' && p.initial !== 'down') throw new ArgumentError(`${where}: initial must be 'up' or 'down', got ${JSON.stringify(p.initial)}`)
  return p
}
