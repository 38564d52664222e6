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
  /** Director failover; absent when the director runs alone. */
  vrrp?: VrrpModel
}

// ---- failover (VRRP): optional; src/model/vrrp.ts has the defaults and the checks ----

/** An address VRRP adds while MASTER (keepalived virtual_ipaddress): ADDRESS[/PREFIX] [dev DEV] [label LABEL]. */
export interface VirtualAddress {
  address: string
  /** Prefix length; keepalived's default is the host prefix (32 / 128). */
  prefix: number
  /** Interface the address goes on; absent: the instance's interface. */
  dev?: string
  /** IPv4 address label (ip addr ... label eth0:1). */
  label?: string
}

/** A tracked interface: weight 0 puts the instance in FAULT while it is down; otherwise the priority moves by weight. */
export interface VrrpTrackInterface {
  name: string
  weight: number
}

/** A tracked service: "down" when none of its real servers is up (health). `service` is a name or a key ("tcp:10.0.0.1:80", "group:7"). */
export interface VrrpTrackService {
  service: string
  weight: number
}

/** keepalived notify_master / notify_backup / notify_fault / notify_stop / notify: command lines run through /bin/sh. */
export interface VrrpNotify {
  master?: string
  backup?: string
  fault?: string
  stop?: string
  /** keepalived `notify`: run on every change with TYPE NAME STATE PRIORITY appended. */
  any?: string
}

/** Gratuitous ARP / unsolicited NA on becoming MASTER (keepalived's garp_* settings), seconds. */
export interface GarpSettings {
  /** A second burst this long after becoming MASTER; 0: none. */
  masterDelay: number
  /** Messages per address in each burst. */
  masterRepeat: number
  /** While MASTER, a refresh burst this often; 0: never. */
  masterRefresh: number
  masterRefreshRepeat: number
  /** Minimum gap between two messages on an interface. */
  interval: number
}

export interface VrrpInstanceSpec {
  name: string
  interface: string
  /** virtual_router_id, 1..255 */
  vrid: number
  /** 1..255 (255: the address owner) */
  priority: number
  /** Seconds: whole for VRRPv2, hundredths for v3. */
  advertInterval: number
  /** Initial state. */
  state: 'MASTER' | 'BACKUP'
  /** false: keepalived nopreempt. */
  preempt: boolean
  /** Seconds, 0..1000. */
  preemptDelay: number
  /** Absent: the vrrp section's version. */
  version?: 2 | 3
  /** In the adverts, and added while MASTER. */
  virtualAddresses: VirtualAddress[]
  /** keepalived virtual_ipaddress_excluded: added while MASTER, not advertised. */
  excludedAddresses: VirtualAddress[]
  /** Source of the adverts; absent: the interface's primary address (IPv6: its link-local one). */
  unicastSrcIp?: string
  /** Send to these instead of the multicast group. */
  unicastPeers: string[]
  /** VRRPv2 simple password (keepalived auth_type PASS). */
  authPass?: string
  trackInterfaces: VrrpTrackInterface[]
  trackServices: VrrpTrackService[]
  notify: VrrpNotify
  /** Per-instance overrides of the vrrp section's garp settings. */
  garp?: Partial<GarpSettings>
}

export interface VrrpSyncGroupSpec {
  name: string
  /** Instances that change state together. */
  instances: string[]
  notify: VrrpNotify
}

/**
 * Connection sync (the IPVS sync daemon's job): while `instance` (or every instance of a sync group of
 * that name) is MASTER this director streams its connection table to `peers`; while BACKUP it installs
 * what it receives. Authenticated with HMAC-SHA256 under a shared key.
 */
export interface ConnSyncSpec {
  instance: string
  /** Unicast addresses of the other directors. */
  peers: string[]
  /** UDP port, both ends (default 8848, the IPVS sync port). */
  port: number
  /** Local address to send from and listen on; absent: any. */
  source?: string
  /** The shared key as text, or a file holding it; exactly one. */
  key?: string
  keyFile?: string
  /** Seconds between two scans of the table for changes. */
  interval: number
  /** A recovered master does not preempt before it has a full copy of the current master's table. */
  holdPreempt: boolean
  /** Seconds to hold preemption at most; 0: as long as it takes. */
  holdTimeout: number
}

export interface VrrpModel {
  /** keepalived global_defs vrrp_version (default 2). */
  version: 2 | 3
  garp: GarpSettings
  instances: VrrpInstanceSpec[]
  syncGroups: VrrpSyncGroupSpec[]
  connSync?: ConnSyncSpec
}
