// SPDX-License-Identifier: GPL-2.0-only
// The desired state of a director as plain data: what the operator wants, no I/O, no kernel state.
// Every config format (xvs YAML, ipvsadm rules, keepalived.conf, Piranha lvs.cf) parses into a `Model`;
// the planner and writer read only this. Parsers fill every default (see defaults.ts), so two configs that
// mean the same thing produce deep-equal models. Optional fields are left out, never set to undefined.

export const PROTOCOLS = ['tcp', 'udp'] as const
export type Protocol = (typeof PROTOCOLS)[number]

/** Forwarding methods: ipvsadm -g (dr), -i (tun), -m (nat), and xvs's --fullnat. */
export const METHODS = ['dr', 'tun', 'nat', 'fullnat'] as const
export type Method = (typeof METHODS)[number]

/** The Linux IPVS schedulers of the same names; DESIGN.md fixes their semantics. */
export const SCHEDULERS = ['rr', 'wrr', 'lc', 'wlc', 'sed', 'nq', 'lblc', 'lblcr', 'dh', 'sh', 'mh', 'fo', 'ovf', 'twos'] as const
export type Scheduler = (typeof SCHEDULERS)[number]

/** ipvsadm -b flags: the fallback flag walks on past a quiesced/overloaded bucket, the port flag hashes the port too. */
export const SCHED_FLAGS = ['sh-fallback', 'sh-port', 'mh-fallback', 'mh-port'] as const
export type SchedFlag = (typeof SCHED_FLAGS)[number]

export type Family = 4 | 6

export interface Persistence {
  /** Seconds a client stays on its real server after its last connection (ipvsadm -p; 300 when -p has no value). */
  timeout: number
  /**
   * Which clients share a persistence entry (ipvsadm -M, keepalived persistence_granularity, lvs.cf pmask):
   * a dotted IPv4 mask such as "255.255.255.0" for an IPv4 service, a prefix length 1..128 for an IPv6 one.
   */
  netmask: string | number
}

interface CheckCommon {
  /** Port to probe (keepalived connect_port); absent: the real server's port. */
  port?: number
  /** Seconds between checks (keepalived delay_loop). */
  interval: number
  /** Seconds one attempt may take (keepalived connect_timeout, misc_timeout; lvs.cf timeout). */
  timeout: number
  /** Consecutive good checks before a failed server is put back. */
  rise: number
  /** Consecutive failed checks before a server is taken out. */
  fall: number
  /** Retries inside one check before it counts as failed (keepalived retry / nb_get_retry). */
  retry: number
  /** Seconds between those retries (keepalived delay_before_retry). */
  retryDelay: number
  /** Seconds a failed server must stay healthy before it re-enters the pool (lvs.cf reentry); 0: at once. */
  reentry: number
  /** On failure set the weight to 0 and keep existing connections (keepalived inhibit_on_failure), or remove. */
  onFailure: 'quiesce' | 'remove'
}

export interface TcpCheck extends CheckCommon {
  type: 'tcp'
}

/** Send a string, expect a reply (lvs.cf send/expect). Strings hold the real characters (escapes decoded). */
export interface SendExpectCheck extends CheckCommon {
  type: 'send-expect'
  send: string
  expect: string
  /** `expect` is a regular expression (lvs.cf use_regex). */
  regex: boolean
}

export interface HttpUrl {
  path: string
  /** Expected status; absent: any 2xx. */
  status?: number
  /** MD5 of the body, lower-case hex (keepalived genhash). */
  digest?: string
  /** The body must match this regular expression. */
  regex?: string
}

/** keepalived HTTP_GET (http) and SSL_GET (https): every url must pass. */
export interface HttpCheck extends CheckCommon {
  type: 'http' | 'https'
  urls: HttpUrl[]
  /** Host header / TLS SNI. */
  virtualhost?: string
}

/** Run a program; `%h` and `%p` are replaced by the real server's address and port (keepalived MISC_CHECK, lvs.cf send_program). */
export interface ExternalCheck extends CheckCommon {
  type: 'external'
  command: string
  /** lvs.cf: the program's output must contain this; absent: exit status 0 means healthy. */
  expect?: string
  /** keepalived misc_dynamic: exit status 2..255 sets the weight to status - 2. */
  dynamic: boolean
}

/** Kept as data here; the health daemon (a later issue) runs it. */
export type HealthCheck = TcpCheck | SendExpectCheck | HttpCheck | ExternalCheck
export type CheckType = HealthCheck['type']
export const CHECK_TYPES: readonly CheckType[] = ['tcp', 'send-expect', 'http', 'https', 'external']

export interface RealServer {
  /** Operator label (lvs.cf server NAME, YAML name). */
  name?: string
  address: string
  /** Defaults to the service port; dr and tun cannot change it. */
  port: number
  /** 0..65535; 0 quiesces (no new connections). */
  weight: number
  method: Method
  /** ipvsadm -x: stop sending new connections above this many; 0: no limit. */
  upperThreshold: number
  /** ipvsadm -y: resume below this many; 0: no limit. */
  lowerThreshold: number
  check?: HealthCheck
}

/** Used when no real server is available (keepalived sorry_server). */
export interface SorryServer {
  address: string
  port: number
  method: Method
}

/** keepalived quorum: the service is up only while the healthy servers' weights sum to at least `weight`. */
export interface Quorum {
  weight: number
  hysteresis: number
}

interface ServiceCommon {
  /** Operator label (lvs.cf virtual NAME, YAML name). */
  name?: string
  scheduler: Scheduler
  /** Sorted, no duplicates; only flags of the service's scheduler. */
  schedFlags: SchedFlag[]
  /** Maglev table size: present exactly when the scheduler is mh; a prime, default 16381, at most 131071. */
  mhTableSize?: number
  persistence?: Persistence
  realServers: RealServer[]
  sorryServer?: SorryServer
  quorum?: Quorum
}

/** ipvsadm -t/-u: (VIP, protocol, port); port 0 means all ports and needs persistence. */
export interface PortService extends ServiceCommon {
  kind: Protocol
  vip: string
  port: number
}

export interface GroupMatch {
  vip: string
  protocol: Protocol
  fromPort: number
  toPort: number
}

/**
 * ipvsadm -f: a service group, xvs's stand-in for a firewall-mark service. The data plane runs before
 * netfilter marks exist, so the group says itself which (VIP, protocol, port range) it matches.
 */
export interface ServiceGroup extends ServiceCommon {
  kind: 'group'
  /** The fwmark number (ipvsadm -f ID); unique among groups. */
  id: number
  family: Family
  matches: GroupMatch[]
  /**
   * Present when the source could not say what the group matches (an ipvsadm -f rule, keepalived
   * `virtual_server fwmark N`): `matches` is empty and this note tells the operator what to supply.
   * The model is valid; the writer refuses to apply such a group.
   */
  incomplete?: string
}

export type Service = PortService | ServiceGroup

export interface Timeouts {
  /** Seconds, as ipvsadm --set tcp tcpfin udp. */
  tcp: number
  tcpfin: number
  udp: number
}

export interface Settings {
  timeouts: Timeouts
  /** Entries in the connection table (an LRU map). */
  connTableSize: number
  /** Drop the flows of a removed or down real server instead of keeping them (IPVS expire_nodest_conn). */
  expireNodestConn: boolean
  /** Local addresses (LIP pool) fullnat rewrites client sources to; needs one of each real server's family. */
  localAddresses: string[]
  /** Interfaces the XDP program is attached to. */
  interfaces: string[]
  /**
   * Outer source addresses of tun packets, at most one per family; a family without one uses the
   * director's preferred source on the route to each real server.
   */
  tunnelSources: string[]
}

export interface Model {
  settings: Settings
  services: Service[]
}
