// SPDX-License-Identifier: GPL-2.0-only
// Defaults and constructors. Every parser builds its model through these, so a default lives in one place
// and equal intent gives deep-equal models whatever the source format.
import type {
  Family,
  GroupMatch,
  HealthCheck,
  Method,
  Model,
  Persistence,
  PortService,
  Protocol,
  RealServer,
  SchedFlag,
  Scheduler,
  Service,
  ServiceGroup,
  Settings,
} from './types'

export const DEFAULT_SCHEDULER: Scheduler = 'wlc'
export const DEFAULT_WEIGHT = 1
export const DEFAULT_METHOD: Method = 'dr'
/** ipvsadm's timeout when -p is given without a value. */
export const DEFAULT_PERSISTENCE_TIMEOUT = 300
export const DEFAULT_MH_TABLE_SIZE = 16381
export const MAX_MH_TABLE_SIZE = 131071
/** ipvsadm's MAX_TIMEOUT: 31 days. */
export const MAX_TIMEOUT = 86400 * 31
export const MAX_WEIGHT = 65535
export const MAX_THRESHOLD = 2 ** 31 - 1

export function defaultNetmask(family: Family): string | number {
  return family === 4 ? '255.255.255.255' : 128
}

export function defaultSettings(): Settings {
  return {
    timeouts: { tcp: 900, tcpfin: 120, udp: 300 },
    connTableSize: 1 << 20,
    expireNodestConn: false,
    localAddresses: [],
    interfaces: [],
    tunnelSources: [],
  }
}

export function emptyModel(): Model {
  return { settings: defaultSettings(), services: [] }
}

/** Check timing defaults for a spec that does not give them (the xvs YAML format). */
export const CHECK_DEFAULTS = {
  interval: 6,
  timeout: 5,
  rise: 1,
  fall: 1,
  retry: 1,
  retryDelay: 1,
  reentry: 0,
  onFailure: 'remove',
} as const

/** Drop keys whose value is undefined, so optional fields are absent rather than present-and-undefined. */
export function compact<T extends object>(o: T): T {
  for (const k of Object.keys(o) as (keyof T)[]) if (o[k] === undefined) delete o[k]
  return o
}

/**
 * compact() for objects built here: a copy without the undefined keys, so that the model's many
 * services and real servers keep V8's fast properties (delete turns an object into a dictionary).
 */
function defined<T extends object>(o: T): T {
  const src = o as Record<string, unknown>
  const out = {} as Record<string, unknown>
  for (const k in src) if (src[k] !== undefined) out[k] = src[k]
  return out as T
}

export interface ServiceOptions {
  name?: string
  scheduler?: Scheduler
  schedFlags?: SchedFlag[]
  mhTableSize?: number
  persistence?: Persistence
  realServers?: RealServer[]
  sorryServer?: Service['sorryServer']
  quorum?: Service['quorum']
}

function common(o: ServiceOptions) {
  const scheduler = o.scheduler ?? DEFAULT_SCHEDULER
  return {
    name: o.name,
    scheduler,
    schedFlags: [...new Set(o.schedFlags ?? [])].sort(),
    mhTableSize: scheduler === 'mh' ? (o.mhTableSize ?? DEFAULT_MH_TABLE_SIZE) : o.mhTableSize,
    persistence: o.persistence,
    realServers: o.realServers ?? [],
    sorryServer: o.sorryServer,
    quorum: o.quorum,
  }
}

export function portService(kind: Protocol, vip: string, port: number, o: ServiceOptions = {}): PortService {
  return defined({ kind, vip, port, ...common(o) })
}

export function serviceGroup(
  id: number,
  family: Family,
  matches: GroupMatch[],
  o: ServiceOptions & { incomplete?: string } = {},
): ServiceGroup {
  return defined({ kind: 'group' as const, id, family, matches, incomplete: o.incomplete, ...common(o) })
}

export function realServer(
  address: string,
  port: number,
  o: { name?: string; weight?: number; method?: Method; upperThreshold?: number; lowerThreshold?: number; check?: HealthCheck } = {},
): RealServer {
  return defined({
    name: o.name,
    address,
    port,
    weight: o.weight ?? DEFAULT_WEIGHT,
    method: o.method ?? DEFAULT_METHOD,
    upperThreshold: o.upperThreshold ?? 0,
    lowerThreshold: o.lowerThreshold ?? 0,
    check: o.check,
  })
}

/** The note an incomplete group carries: one wording for every parser, so equal sources give equal models. */
export function incompleteNote(id: number): string {
  return `firewall mark ${id} does not say which packets it marks; list this group's matches (vip, protocol, ports) in xvs YAML`
}
