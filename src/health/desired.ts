// SPDX-License-Identifier: GPL-2.0-only
// From health states to what the data plane should hold for one virtual service: which real servers,
// at which weight, or the sorry server. A pure function, so the daemon can feed its writer from it and
// tests can enumerate cases.
//
// keepalived semantics (check/ipwrapper.c, update_quorum_state):
// - The service has quorum while the weights of its up servers sum to at least `quorum` (default 1).
//   With `hysteresis` h, quorum is gained at sum >= quorum + h and lost at sum < quorum - h (or sum 0);
//   in between it keeps its previous state. Without a previous state: quorum iff sum >= quorum.
// - Quorum lost and a sorry server configured: the sorry server goes in and the real servers go out
//   (under 'quiesce' they stay at weight 0 instead, so their existing connections finish).
// - Quorum lost without a sorry server: the up servers stay; `quorumUp: false` tells the daemon (for its
//   notifications and for withdrawing the VIP's route).
// - A down server is removed, or with 'quiesce' (keepalived inhibit_on_failure) kept at weight 0.
// - A server's weight is the one its dynamic check last set (misc_dynamic), else the configured one.
import { ArgumentError } from '../errors'
import type { Health } from './types'

export interface SorryServerSpec {
  address: string
  port: number
  /** Default 1. */
  weight?: number
}

export interface ServicePolicy {
  onFailure: 'remove' | 'quiesce'
  sorryServer?: SorryServerSpec
  /** Minimum sum of up weights; default 1. */
  quorum?: number
  /** Default 0. */
  hysteresis?: number
}

export interface ServerHealth {
  key: string
  address: string
  port: number
  /** Configured weight. */
  weight: number
  health: Health
  /** Set by a dynamic check; overrides `weight`. */
  dynamicWeight?: number
}

export interface DesiredBackend {
  kind: 'real' | 'sorry'
  /** The server's key; for the sorry server "sorry". */
  key: string
  address: string
  port: number
  weight: number
}

export interface DesiredService {
  quorumUp: boolean
  sorryActive: boolean
  /** Sum of the weights of the up servers. */
  upWeight: number
  /** Real servers in input order, then the sorry server when active. */
  backends: DesiredBackend[]
}

export function effectiveWeight(server: ServerHealth): number {
  return server.dynamicWeight ?? server.weight
}

export function computeDesired(policy: ServicePolicy, servers: readonly ServerHealth[], previousQuorumUp?: boolean): DesiredService {
  validatePolicy(policy)
  const quorum = policy.quorum ?? 1
  const hysteresis = policy.hysteresis ?? 0
  let upWeight = 0
  for (const server of servers) if (server.health === 'up') upWeight += effectiveWeight(server)

  let quorumUp: boolean
  if (previousQuorumUp === undefined) quorumUp = upWeight > 0 && upWeight >= quorum
  else if (previousQuorumUp) quorumUp = !(upWeight === 0 || upWeight < quorum - hysteresis)
  else quorumUp = upWeight >= quorum + hysteresis

  const sorryActive = !quorumUp && policy.sorryServer !== undefined
  const quiesce = policy.onFailure === 'quiesce'
  const backends: DesiredBackend[] = []
  for (const server of servers) {
    const base = { kind: 'real' as const, key: server.key, address: server.address, port: server.port }
    if (sorryActive) {
      if (quiesce) backends.push({ ...base, weight: 0 })
    } else if (server.health === 'up') backends.push({ ...base, weight: effectiveWeight(server) })
    else if (quiesce) backends.push({ ...base, weight: 0 })
  }
  if (sorryActive) {
    const sorry = policy.sorryServer!
    backends.push({ kind: 'sorry', key: 'sorry', address: sorry.address, port: sorry.port, weight: sorry.weight ?? 1 })
  }
  return { quorumUp, sorryActive, upWeight, backends }
}

export function validatePolicy(policy: ServicePolicy): void {
  if (policy.onFailure !== 'remove' && policy.onFailure !== 'quiesce') {
    throw new ArgumentError(`service onFailure must be 'remove' or 'quiesce', got ${JSON.stringify(policy.onFailure)}`)
  }
  if (policy.quorum !== undefined && (!Number.isInteger(policy.quorum) || policy.quorum < 1)) {
    throw new ArgumentError(`service quorum must be an integer >= 1, got ${String(policy.quorum)}`)
  }
  if (policy.hysteresis !== undefined && (!Number.isInteger(policy.hysteresis) || policy.hysteresis < 0)) {
    throw new ArgumentError(`service hysteresis must be an integer >= 0, got ${String(policy.hysteresis)}`)
  }
  const sorry = policy.sorryServer
  if (sorry !== undefined && (sorry.weight !== undefined && (!Number.isInteger(sorry.weight) || sorry.weight < 1))) {
    throw new ArgumentError(`sorry server weight must be an integer >= 1, got ${String(sorry.weight)}`)
  }
}
