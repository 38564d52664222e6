// SPDX-License-Identifier: GPL-2.0-only
// TypeScript side of bpf/include/xvs/abi.h: codecs for every map key and value, named by their C
// fields, and the enum values userspace writes. test/bpf/abi.test.ts and the loader compare all of
// it with the BTF of the built object, so a drift fails loudly instead of corrupting maps.
import path from 'node:path'
import { projectRoot, btfEnum } from '../bpf'
import { addr, be16, bytes, defineStruct, mac, pad, s32, u8, u16, u32, u64, AF_INET, AF_INET6, type StructCodec } from './codec'
import { ArgumentError } from '../errors'

/** Must equal XVS_ABI_VERSION; the loader refuses maps of another version. */
export const ABI_VERSION = 3

export const objectPath = (name = 'xvs'): string => path.join(projectRoot(), 'out', 'bpf', `${name}.bpf.o`)

export const Family = { INET: 2, INET6: 10 } as const
export const Proto = { TCP: 6, UDP: 17 } as const

export const Sched = {
  NONE: 0, RR: 1, WRR: 2, LC: 3, WLC: 4, SED: 5, NQ: 6, LBLC: 7, LBLCR: 8, DH: 9, SH: 10, MH: 11, FO: 12, OVF: 13, TWOS: 14,
} as const
export type SchedName = Lowercase<Exclude<keyof typeof Sched, 'NONE'>>

export const FwdMethod = { DR: 0, TUN: 1, NAT: 2, FULLNAT: 3 } as const
export type FwdMethodName = Lowercase<keyof typeof FwdMethod>

export const ServiceFlags = { SCHED_FALLBACK: 1, HASH_SRC_ADDR: 2, HASH_SRC_PORT: 4, ONE_PACKET: 8, PERSISTENT: 16 } as const
export const RealFlags = { QUIESCED: 1, REMOVED: 2, DOWN: 4 } as const
export const ConnFlags = { SLOPPY: 1, TEMPLATE: 2, NAT: 4, FULLNAT: 8 } as const
/** xvs_conn_key.kind: a flow, a persistence template's key, or a nat reply's (abi.h enum xvs_conn_kind). */
export const ConnKind = { FLOW: 0, TEMPLATE: 1, REPLY: 2 } as const

export const ConnState = {
  NONE: 0, ESTABLISHED: 1, SYN_SENT: 2, SYN_RECV: 3, FIN_WAIT: 4, TIME_WAIT: 5, CLOSE: 6, CLOSE_WAIT: 7,
  LAST_ACK: 8, LISTEN: 9, SYNACK: 10, TCP_MAX: 11, UDP: 16,
} as const

export const Limits = {
  MAX_SERVICES: 1024, MAX_REALS: 65536, CONNS_DEFAULT: 262144, TX_PORTS_MAX: 64, DECAP_ADDRS_MAX: 64,
  REAL_NONE: 0, SVC_TABLE_MAP_FLAGS: 1 << 12, SVC_TABLE_CHUNK: 2048, MH_DEFAULT_SIZE: 16381, MH_MAX_SIZE: 131071, SH_TABLE_SIZE: 256,
  GROUP_RANGES_MAX: 64, LOCALITY_SET_MAX: 16, LOCALITY_ENTRIES: 16384, LADDRS_PER_FAMILY: 32, LADDRS_MAX: 64,
  FNAT_PORT_MIN: 1024, FNAT_PORT_MAX: 32767, FNAT_PORT_TRIES: 16,
} as const

export const Timeouts = {
  TCP_S: 900, TCP_FIN_S: 120, UDP_S: 300, NONE_S: 2, SYN_SENT_S: 120, SYN_RECV_S: 60, TIME_WAIT_S: 120, CLOSE_S: 10,
  CLOSE_WAIT_S: 60, LAST_ACK_S: 30, LISTEN_S: 120, SYNACK_S: 120, LOCALITY_S: 86400,
} as const

/** Slot of a service's table half in xvs_svc_tables (XVS_SVC_TABLE_SLOT). */
export const svcTableSlot = (serviceId: number, half: number): number => serviceId * 2 + (half & 1)

export interface ServiceKey { addr: string; port: number; proto: number; family: number }
export const ServiceKey = defineStruct<ServiceKey>('xvs_service_key', [
  ['addr', addr('family')], ['port', be16], ['proto', u8], ['family', u8],
])

export interface Service {
  id: number; flags: number; sched: number; active_table: number; table_size: number; num_reals: number
  persist_timeout_s: number; persist_mask: Buffer
}
// persist_mask has the VIP's family, which lives in the key: raw bytes here, decodeAddr when shown
// (persistMask() builds it).
export const Service = defineStruct<Service>('xvs_service', [
  ['id', u32], ['flags', u32], ['sched', u8], ['active_table', u8], ['pad0', pad(2)], ['table_size', u32],
  ['num_reals', u32], ['persist_timeout_s', u32], ['persist_mask', bytes(16)],
])

export interface Real {
  addr: string; tun_src: string; port: number; family: number; method: number; weight: number; flags: number
  service_id: number; ifindex: number; mtu: number; dst_mac: string; src_mac: string
  upper_threshold: number; lower_threshold: number
}
export const Real = defineStruct<Real>('xvs_real', [
  ['addr', addr('family')], ['tun_src', addr('family')], ['port', be16], ['family', u8], ['method', u8], ['weight', u32],
  ['flags', u32], ['service_id', u32], ['ifindex', u32], ['mtu', u16], ['dst_mac', mac], ['src_mac', mac], ['pad0', pad(2)],
  ['upper_threshold', u32], ['lower_threshold', u32],
])

// kind and ctl_until_s are optional for literals written before they existed; decode always fills them.
export interface ConnKey { caddr: string; vaddr: string; cport: number; vport: number; proto: number; family: number; kind?: number }
// A template's vaddr is its service key's addr: a group's id for a group (decodes as an address; see groupIdOf).
export const ConnKey = defineStruct<ConnKey>('xvs_conn_key', [
  ['caddr', addr('family')], ['vaddr', addr('family')], ['cport', be16], ['vport', be16], ['proto', u8], ['family', u8],
  ['kind', u8], ['pad0', pad(1)],
])

// laddr has the key's family, which the value does not hold: raw bytes here (see connLaddr).
export interface Conn {
  last_seen_ns: bigint; created_ns: bigint; real_id: number; service_id: number; state: number; flags: number; ctl_until_s?: number
  lport?: number; laddr?: Buffer
}
export const Conn = defineStruct<Conn>('xvs_conn', [
  ['last_seen_ns', u64], ['created_ns', u64], ['real_id', u32], ['service_id', u32], ['state', u8], ['flags', u8],
  ['lport', be16], ['ctl_until_s', u32], ['laddr', bytes(16)],
])

/** Connections per real server (xvs_real_conns), as IPVS counts them; the counts are signed (abi.h). */
export interface RealConns { active: number; inactive: number; persistent: number; overload_upper: number }
export const RealConns = defineStruct<RealConns>('xvs_real_conns', [
  ['active', s32], ['inactive', s32], ['persistent', s32], ['overload_upper', u32],
])

export interface GroupKey { addr: string; proto: number; family: number }
export const GroupKey = defineStruct<GroupKey>('xvs_group_key', [['addr', addr('family')], ['proto', u8], ['family', u8], ['pad0', pad(2)]])

/** One port range of a service group; ports in host order, inclusive. */
export interface PortRange { first: number; last: number; group_id: number }
export const PortRange = defineStruct<PortRange>('xvs_port_range', [['first', u16], ['last', u16], ['group_id', u32]])

/** xvs_grp_ranges value: `ranges` holds Limits.GROUP_RANGES_MAX PortRange slots (encodeGroupRanges). */
export interface GroupRanges { count: number; ranges: Buffer }
export const GroupRanges = defineStruct<GroupRanges>('xvs_group_ranges', [
  ['count', u32], ['pad0', pad(4)], ['ranges', bytes(Limits.GROUP_RANGES_MAX * PortRange.size)],
])

/** A (VIP, protocol)'s ranges, sorted and not overlapping, as one xvs_grp_ranges value. */
export function encodeGroupRanges(ranges: readonly PortRange[]): Buffer {
  if (ranges.length > Limits.GROUP_RANGES_MAX) throw new ArgumentError(`${ranges.length} port ranges: at most ${Limits.GROUP_RANGES_MAX} per VIP and protocol`)
  const b = Buffer.alloc(Limits.GROUP_RANGES_MAX * PortRange.size)
  ranges.forEach((r, i) => PortRange.encodeInto(r, b, i * PortRange.size))
  return GroupRanges.encode({ count: ranges.length, ranges: b })
}

export function decodeGroupRanges(value: Buffer): PortRange[] {
  const v = GroupRanges.decode(value)
  const n = Math.min(v.count, Limits.GROUP_RANGES_MAX)
  return Array.from({ length: n }, (_, i) => PortRange.decode(v.ranges, i * PortRange.size))
}

export interface LocalityKey { daddr: string; service_id: number; family: number }
export const LocalityKey = defineStruct<LocalityKey>('xvs_locality_key', [
  ['daddr', addr('family')], ['service_id', u32], ['family', u8], ['pad0', pad(3)],
])

/** xvs_locality value; `real_ids` holds Limits.LOCALITY_SET_MAX __u32 slots, `count` of them in use. */
export interface Locality { lastuse_ns: bigint; lastmod_ns: bigint; count: number; real_ids: Buffer }
export const Locality = defineStruct<Locality>('xvs_locality', [
  ['lastuse_ns', u64], ['lastmod_ns', u64], ['count', u32], ['pad0', pad(4)], ['real_ids', bytes(4 * Limits.LOCALITY_SET_MAX)],
])

/** The real ids of an xvs_locality value's set. */
export function localityMembers(v: Locality): number[] {
  const n = Math.min(v.count, Limits.LOCALITY_SET_MAX)
  return Array.from({ length: n }, (_, i) => v.real_ids.readUInt32LE(4 * i))
}

/**
 * The xvs_services key of service group `id` (ipvsadm -f ID): the id in network order where the VIP
 * goes, port 0, proto 0 (IPPROTO_IP), the group's family (abi.h, struct xvs_service_key).
 */
export function groupServiceKey(id: number, family: number): Buffer {
  const k = Buffer.alloc(ServiceKey.size)
  k.writeUInt32BE(id >>> 0, 0)
  k[ServiceKey.offsetOf('family')] = family
  return k
}

/** The group id of a service key (or a template's key) with proto 0, else undefined. */
export function groupIdOf(addrBytes: Buffer, proto: number): number | undefined {
  return proto === 0 ? addrBytes.readUInt32BE(0) : undefined
}

/**
 * persist_mask for a model netmask: a dotted IPv4 mask, or an IPv6 prefix length; network order, 16
 * bytes (the IPv4 mask in the first four).
 */
export function persistMask(netmask: string | number, family: number): Buffer {
  const b = Buffer.alloc(16)
  if (family === Family.INET) {
    String(netmask).split('.').forEach((o, i) => { b[i] = Number(o) })
    return b
  }
  const prefix = Number(netmask)
  for (let i = 0; i < 16; i++) {
    const bits = Math.max(0, Math.min(8, prefix - 8 * i))
    b[i] = bits === 0 ? 0 : (0xff << (8 - bits)) & 0xff
  }
  return b
}

export interface Stats { conns: bigint; packets_in: bigint; bytes_in: bigint; packets_out: bigint; bytes_out: bigint }
export const Stats = defineStruct<Stats>('xvs_stats', [
  ['conns', u64], ['packets_in', u64], ['bytes_in', u64], ['packets_out', u64], ['bytes_out', u64],
])

export interface Settings {
  tcp_timeout_s: number; tcp_fin_timeout_s: number; udp_timeout_s: number; hash_seed: number
  expire_nodest_conn: number; sloppy_tcp: number; tun_ttl: number; service_groups?: number; default_mtu: number
  nat?: number; port0_services?: number; tun_src_v4: string; tun_src_v6: string
  fnat_port_min?: number; fnat_port_max?: number; laddrs_v4?: number; laddrs_v6?: number
}
export const Settings = defineStruct<Settings>('xvs_settings', [
  ['tcp_timeout_s', u32], ['tcp_fin_timeout_s', u32], ['udp_timeout_s', u32], ['hash_seed', u32],
  ['expire_nodest_conn', u8], ['sloppy_tcp', u8], ['tun_ttl', u8], ['service_groups', u8], ['default_mtu', u16], ['nat', u8], ['port0_services', u8],
  ['tun_src_v4', addr(AF_INET)], ['tun_src_v6', addr(AF_INET6)],
  ['fnat_port_min', u16], ['fnat_port_max', u16], ['laddrs_v4', u8], ['laddrs_v6', u8], ['pad2', pad(2)],
])

export interface DecapKey { addr: string; family: number }
export const DecapKey = defineStruct<DecapKey>('xvs_decap_key', [['addr', addr('family')], ['family', u8], ['pad0', pad(3)]])

/** The struct codecs of each object, for the BTF check. */
export const DIRECTOR_STRUCTS: readonly StructCodec<object>[] = [
  ServiceKey, Service, Real, ConnKey, Conn, Stats, Settings, RealConns, GroupKey, PortRange, GroupRanges, LocalityKey, Locality,
]
export const DECAP_STRUCTS: readonly StructCodec<object>[] = [DecapKey]

/** Every enum mirrored here, with the C enum it must equal, for the BTF check. */
export const ALL_ENUMS: ReadonlyArray<readonly [string, string, Readonly<Record<string, number>>]> = [
  ['xvs_family', 'XVS_AF_', Family],
  ['xvs_sched', 'XVS_SCHED_', Sched],
  ['xvs_fwd_method', 'XVS_FWD_', FwdMethod],
  ['xvs_service_flags', 'XVS_SVC_F_', ServiceFlags],
  ['xvs_real_flags', 'XVS_REAL_F_', RealFlags],
  ['xvs_conn_flags', 'XVS_CONN_F_', ConnFlags],
  ['xvs_conn_kind', 'XVS_CONN_K_', ConnKind],
  ['xvs_conn_state', 'XVS_CONN_S_', ConnState],
  ['xvs_limits', 'XVS_', Limits],
  ['xvs_timeouts', 'XVS_TIMEOUT_', Timeouts],
]

/**
 * Differences between this file and the object's BTF: struct layouts and enum values. Empty when
 * they agree. The loader refuses to write maps when it is not.
 */
export function abiDiff(obj = objectPath(), structs: readonly StructCodec<object>[] = DIRECTOR_STRUCTS): string[] {
  const out: string[] = []
  for (const s of structs) out.push(...s.diffAgainstBtf(obj))
  for (const [cName, prefix, values] of ALL_ENUMS) {
    const btf = btfEnum(obj, cName)
    for (const [k, v] of Object.entries(values)) {
      const name = prefix + k
      if (!(name in btf)) out.push(`enum ${cName}: ${name} missing in BTF`)
      else if (btf[name] !== v) out.push(`enum ${cName}: ${name} = ${v} here, ${btf[name]} in BTF`)
    }
  }
  return out
}

let statNames: string[] | undefined

/** Names of the global counters (enum xvs_stat) from the object's BTF, lowercased without prefix. */
export function statCounterNames(obj = objectPath()): string[] {
  if (statNames) return statNames
  const e = btfEnum(obj, 'xvs_stat')
  const names: string[] = []
  for (const [k, v] of Object.entries(e)) if (k !== 'XVS_STAT_MAX') names[v] = k.replace(/^XVS_STAT_/, '').toLowerCase()
  statNames = names
  return names
}
