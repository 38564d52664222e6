// SPDX-License-Identifier: GPL-2.0-only
// What the data plane should run: the configured model with health applied. Per service (keepalived
// semantics, through computeDesired in src/health/desired.ts): a real server that failed its check is
// removed, or kept at weight 0 when its check says quiesce (inhibit_on_failure); a dynamic check's
// weight replaces the configured one; when the up servers' weights fall below the quorum (default 1:
// every server down) and a sorry server is configured, the sorry server takes the new connections.
// Pure: the daemon calls it after every health transition and reload, and applies the result with
// the writer, which touches only what differs from the maps.
import { computeDesired, type DesiredService, type ServerHealth } from '../health/desired'
import type { Health } from '../health/types'
import type { Model, RealServer, Service } from '../model/types'
import { realServerKey, serviceKey } from '../model/diff'
import { targetKey } from './checks'

/** A checked real server's state, by target key (see checks.ts). Servers without one count as up. */
export interface ServerState {
  health: Health
  /** misc_dynamic: the weight the check last asked for. */
  dynamicWeight?: number
  onFailure: 'quiesce' | 'remove'
}

export interface ServiceOutcome {
  key: string
  quorumUp: boolean
  sorryActive: boolean
  upWeight: number
  /** Real servers (keys) left out: down and removed, or unusable (see `exclude`). */
  removed: string[]
  /** Real servers kept at weight 0 because they are down (or the sorry server took over). */
  quiesced: string[]
}

export interface EffectiveResult {
  model: Model
  services: ServiceOutcome[]
  /** Quorum state per service key, to pass back in next time (hysteresis needs it). */
  quorum: Map<string, boolean>
}

export interface EffectiveOptions {
  /** Target key -> state; absent: the server has no check and is up. */
  health: ReadonlyMap<string, ServerState>
  /** Quorum state per service from the previous call. */
  quorum?: ReadonlyMap<string, boolean>
  /**
   * Target keys (service/server) to leave out whatever their health: real servers the daemon cannot
   * program (no next hop). They count as down for quorum.
   */
  exclude?: ReadonlySet<string>
}

export function effectiveModel(config: Model, opts: EffectiveOptions): EffectiveResult {
  const quorum = new Map<string, boolean>()
  const outcomes: ServiceOutcome[] = []
  const services = config.services.map((s): Service => {
    const sk = serviceKey(s)
    const { service, outcome } = effectiveService(s, sk, opts, opts.quorum?.get(sk))
    quorum.set(sk, outcome.quorumUp)
    outcomes.push(outcome)
    return service
  })
  return { model: { settings: config.settings, services }, services: outcomes, quorum }
}

function effectiveService(s: Service, sk: string, opts: EffectiveOptions, previousQuorum: boolean | undefined): { service: Service; outcome: ServiceOutcome } {
  const byKey = new Map<string, RealServer>()
  const states = new Map<string, ServerState | undefined>()
  const servers: ServerHealth[] = s.realServers.map((rs) => {
    const rk = realServerKey(rs)
    const tk = targetKey(sk, rk)
    byKey.set(rk, rs)
    const state = opts.health.get(tk)
    states.set(rk, state)
    const health: Health = opts.exclude?.has(tk) ? 'down' : state?.health ?? 'up'
    const h: ServerHealth = { key: rk, address: rs.address, port: rs.port, weight: rs.weight, health }
    if (state?.dynamicWeight !== undefined) h.dynamicWeight = state.dynamicWeight
    return h
  })
  // 'quiesce' for the whole service here; servers whose own check says remove are dropped below.
  const desired: DesiredService = computeDesired({
    onFailure: 'quiesce',
    ...(s.sorryServer ? { sorryServer: { address: s.sorryServer.address, port: s.sorryServer.port } } : {}),
    ...(s.quorum ? { quorum: s.quorum.weight, hysteresis: s.quorum.hysteresis } : {}),
  }, servers, previousQuorum)

  const removed: string[] = []
  const quiesced: string[] = []
  const realServers: RealServer[] = []
  const healthOf = new Map(servers.map((x) => [x.key, x.health]))
  for (const b of desired.backends) {
    if (b.kind === 'sorry') continue
    const rs = byKey.get(b.key)!
    const tk = targetKey(sk, b.key)
    const out = healthOf.get(b.key) === 'down' || desired.sorryActive
    // No check, or a check that removes: out of the pool (keepalived's default); an unusable server always.
    const removes = opts.exclude?.has(tk) || (states.get(b.key)?.onFailure ?? 'remove') === 'remove'
    if (out && removes) { removed.push(b.key); continue }
    if (out) quiesced.push(b.key)
    realServers.push(b.weight === rs.weight ? rs : { ...rs, weight: b.weight })
  }
  for (const x of servers) if (!desired.backends.some((b) => b.kind === 'real' && b.key === x.key) && !removed.includes(x.key)) removed.push(x.key)
  if (desired.sorryActive && s.sorryServer) {
    const sorry = s.sorryServer
    const sorryKey = realServerKey(sorry)
    const clash = realServers.findIndex((r) => realServerKey(r) === sorryKey)
    const entry: RealServer = { address: sorry.address, port: sorry.port, weight: 1, method: sorry.method, upperThreshold: 0, lowerThreshold: 0 }
    // A sorry server that is also a (quiesced) real server of the service takes the weight.
    if (clash >= 0) realServers[clash] = { ...realServers[clash]!, weight: 1 }
    else realServers.push(entry)
  }
  return {
    service: { ...s, realServers },
    outcome: { key: sk, quorumUp: desired.quorumUp, sorryActive: desired.sorryActive, upWeight: desired.upWeight, removed, quiesced },
  }
}
