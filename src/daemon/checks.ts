// SPDX-License-Identifier: GPL-2.0-only
// From the model's health checks (config vocabulary, seconds) to the health engine's (what to probe, a
// CheckSpec; when and how results count, a CheckPolicy; milliseconds). Pure: the daemon builds one
// target per real server that has a check, and compares `identity` across reloads to keep the state
// of targets whose check did not change.
import type { ConfigFormat } from '../config'
import type { HealthCheck, RealServer, Service } from '../model/types'
import { realServerKey, serviceKey } from '../model/diff'
import type { CheckPolicy, CheckSpec, HttpUrlSpec } from '../health/types'

/** Any 2xx: what the model means by an HTTP url without a status. */
export const ANY_2XX: readonly [number, number] = [200, 299]

/**
 * The checker's own deadline, a little inside the engine's (which aborts at the check's timeout and
 * reports only "timed out"): an attempt that runs out of time then says what it was waiting for and
 * what it got ("waiting for "+OK", got "-ERR""), which is what tells a wrong expect string from a
 * server that never answers.
 */
export function checkerDeadlineMs(timeoutS: number): number {
  const ms = timeoutS * 1000
  return Math.max(1, Math.round(ms - Math.min(100, ms / 10)))
}

/**
 * The engine's spec for a model check. `format` says where the config came from: an lvs.cf
 * send_program is split into words and run without a shell (as nanny does); keepalived's misc_path and
 * YAML's command go to /bin/sh -c.
 */
export function checkSpec(check: HealthCheck, format: ConfigFormat = 'yaml'): CheckSpec {
  return { ...probeSpec(check, format), timeoutMs: checkerDeadlineMs(check.timeout) }
}

function probeSpec(check: HealthCheck, format: ConfigFormat): CheckSpec {
  switch (check.type) {
    case 'tcp':
      return { type: 'tcp' }
    case 'send-expect':
      // The model holds send/expect with their escapes already decoded.
      return { type: 'send-expect', send: check.send, expect: check.expect, regex: check.regex, escapes: false }
    case 'http':
    case 'https': {
      const urls = check.urls.map((u): HttpUrlSpec => ({
        path: u.path,
        statuses: u.status === undefined ? [ANY_2XX] : [u.status],
        ...(u.regex !== undefined ? { regex: u.regex } : {}),
        ...(u.digest !== undefined ? { digest: u.digest } : {}),
      }))
      return { type: check.type, urls, ...(check.virtualhost !== undefined ? { host: check.virtualhost } : {}) }
    }
    case 'external': {
      const run = format === 'lvs.cf'
        ? { argv: check.command.trim().split(/\s+/) }
        : { shell: check.command }
      return {
        type: 'external', ...run,
        ...(check.expect !== undefined && check.expect !== '' ? { expect: check.expect } : {}),
        ...(check.dynamic ? { dynamic: true } : {}),
      }
    }
  }
}

const ms = (seconds: number): number => Math.round(seconds * 1000)

/** When and how often, in milliseconds; `initial` is the daemon's choice (see HealthTarget). */
export function checkPolicy(check: HealthCheck, initial: CheckPolicy['initial'] = 'up'): CheckPolicy {
  return {
    intervalMs: ms(check.interval),
    timeoutMs: ms(check.timeout),
    rise: check.rise,
    fall: check.fall,
    retries: check.retry,
    retryDelayMs: ms(check.retryDelay),
    reentryMs: ms(check.reentry),
    initial,
  }
}

/** One real server's check, as the daemon runs it. */
export interface HealthTarget {
  /** "tcp:10.0.0.1:80/10.0.0.11:80": the service key, a slash, the real server key. */
  key: string
  service: string
  server: string
  address: string
  /** The port probed: the check's own, else the real server's. */
  port: number
  spec: CheckSpec
  /** Without `initial`, which the daemon decides per start. */
  policy: Omit<CheckPolicy, 'initial'>
  onFailure: 'quiesce' | 'remove'
  /** Equal identities: the same check, whose state a reload keeps. */
  identity: string
  /** Model path of the check, for located errors: "services[0].realServers[1].check". */
  path: string
}

export const targetKey = (service: string, server: string): string => `${service}/${server}`

export interface SkippedCheck { key: string; reason: string }

/**
 * Every health-check target of a model. A check with nothing to probe (a real server of port 0, as in
 * a wildcard service, and no check port) is skipped with a reason; its server counts as always up.
 */
export function healthTargets(services: readonly Service[], format: ConfigFormat = 'yaml'): { targets: HealthTarget[]; skipped: SkippedCheck[] } {
  const targets: HealthTarget[] = []
  const skipped: SkippedCheck[] = []
  for (const [i, s] of services.entries()) {
    const sk = serviceKey(s)
    for (const [j, rs] of s.realServers.entries()) {
      if (!rs.check) continue
      const t = healthTarget(sk, rs, rs.check, format, `services[${i}].realServers[${j}].check`)
      if (typeof t === 'string') skipped.push({ key: targetKey(sk, realServerKey(rs)), reason: t })
      else targets.push(t)
    }
  }
  return { targets, skipped }
}

function healthTarget(service: string, rs: RealServer, check: HealthCheck, format: ConfigFormat, path: string): HealthTarget | string {
  const server = realServerKey(rs)
  const port = check.port ?? rs.port
  if (port === 0) return 'the real server has port 0 (all ports) and the check names no port; give the check a port'
  const spec = checkSpec(check, format)
  const { initial: _i, ...policy } = checkPolicy(check)
  void _i
  return {
    key: targetKey(service, server), service, server, address: rs.address, port, spec, policy, onFailure: check.onFailure,
    identity: JSON.stringify({ address: rs.address, port, spec, policy }), path,
  }
}
