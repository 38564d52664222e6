// SPDX-License-Identifier: GPL-2.0-only
// One virtual router's configuration (a keepalived `vrrp_instance`), checked and completed, and the
// RFC timer formulas as pure functions of it.
//
// Timers are integer microseconds, computed the way keepalived computes them so that both sides of a
// mixed xvs/keepalived pair time out at the same instant:
//   v3 (RFC 5798 §6.1): Skew_Time = ((256 - Priority) * Master_Adver_Interval) / 256, with
//      Master_Adver_Interval in centiseconds, taken to microseconds and truncated:
//      skew_us = floor((256 - p) * cs * 10000 / 256) = floor((256 - p) * cs * 625 / 16)
//   v2 (RFC 3768 §6.1): Skew_Time = (256 - Priority) / 256 seconds, independent of the interval:
//      skew_us = floor((256 - p) * 1000000 / 256)
//   both: Master_Down_Interval = 3 * Master_Adver_Interval + Skew_Time
//
// Problems that keepalived reports and corrects (it logs a warning and carries on) are corrected the
// same way and returned as warnings; problems it refuses are ConfigErrors naming the keyword.
import { ConfigError } from '../errors'
import { canonicalIp, ipFamily, isLinkLocalV6, type Family } from './inet'
import { VRRP_MULTICAST_V4, VRRP_MULTICAST_V6, VRRP_PRIORITY_OWNER, VRRP_V3_MAX_ADVER_INT_CS, vrrpPassword } from './vrrp-packet'

export type VrrpVersion = 2 | 3

/** A tracked object: keepalived's track_interface / track_script (and xvs health checks). */
export interface VrrpTrackConfig {
  kind: 'interface' | 'script'
  name: string
  /**
   * 0 (default): the instance goes to FAULT while the object is down. Positive: the priority rises by
   * `weight` while it is up. Negative: the priority falls by |weight| while it is down. -253..253.
   */
  weight?: number
  /** keepalived `reverse`: the object counts as up when it reports down, and vice versa. */
  reverse?: boolean
}

export type VrrpAuthConfig = { type: 'none' } | { type: 'pass'; password: string }

/** A keepalived vrrp_instance, in xvs field names (keepalived keyword in each comment). */
export interface VrrpInstanceConfig {
  /** vrrp_instance NAME */
  name: string
  /** interface */
  interface: string
  /** virtual_router_id, 1..255 */
  vrid: number
  /** vrrp_version; default 2 for IPv4 (keepalived's default), 3 for IPv6. */
  version?: VrrpVersion
  /** priority, 1..255 (default 100). 255 is the address owner. */
  priority?: number
  /** advert_int in milliseconds (default 1000): whole seconds for v2, centiseconds for v3. */
  advertIntervalMs?: number
  /** The address adverts come from: unicast_src_ip, or the interface's primary (IPv6: link-local) address. */
  primaryAddress: string
  /** virtual_ipaddress (the addresses listed in adverts), all of the instance's family. */
  virtualAddresses: string[]
  /** unicast_peer: send to each peer instead of the multicast group. */
  unicastPeers?: string[]
  /** state MASTER | BACKUP (default BACKUP). */
  initialState?: 'MASTER' | 'BACKUP'
  /** nopreempt */
  nopreempt?: boolean
  /** preempt_delay in milliseconds, 0..1000 s. */
  preemptDelayMs?: number
  /** authentication { auth_type PASS; auth_pass ... } — version 2 only. AH is not supported. */
  auth?: VrrpAuthConfig | { type: 'ah'; password: string }
  /** track_interface / track_script */
  track?: VrrpTrackConfig[]
  /** Go to FAULT when the instance's own interface is down (default true; keepalived dont_track_primary = false). */
  trackOwnInterface?: boolean
  /** lower_prio_no_advert: as master, do not answer a lower-priority advert with one of ours (default false). */
  lowerPrioNoAdvert?: boolean
  /** keepalived's global vrrp_check_unicast_src: drop unicast adverts from addresses that are not peers. */
  checkUnicastSource?: boolean
}

export interface ResolvedTrack {
  kind: 'interface' | 'script'
  name: string
  weight: number
  reverse: boolean
}

export interface ResolvedVrrpConfig {
  name: string
  interface: string
  vrid: number
  family: Family
  version: VrrpVersion
  priority: number
  /** Advertisement_Interval, microseconds (a whole number of seconds for v2, of centiseconds for v3). */
  advertIntervalUs: number
  primaryAddress: string
  virtualAddresses: string[]
  unicastPeers: string[]
  /** The multicast group for the family. */
  group: string
  initialState: 'MASTER' | 'BACKUP'
  preempt: boolean
  preemptDelayUs: number
  /** v2: 0 none or 1 password, with its 8 bytes. */
  authType: 0 | 1
  authData: Buffer
  track: ResolvedTrack[]
  lowerPrioNoAdvert: boolean
  checkUnicastSource: boolean
}

export const VRRP_DEFAULT_PRIORITY = 100
export const VRRP_DEFAULT_ADVERT_INTERVAL_MS = 1000
export const VRRP_MAX_PREEMPT_DELAY_MS = 1000 * 1000
export const VRRP_MAX_TRACK_WEIGHT = 253

/** Skew_Time in microseconds for a priority and Master_Adver_Interval (see the header comment). */
export function skewTimeUs(version: VrrpVersion, priority: number, masterAdverIntervalUs: number): number {
  if (version === 2) return Math.floor(((256 - priority) * 1_000_000) / 256)
  const cs = Math.round(masterAdverIntervalUs / 10_000)
  return Math.floor(((256 - priority) * cs * 625) / 16)
}

/** Master_Down_Interval = 3 * Master_Adver_Interval + Skew_Time, microseconds. */
export function masterDownIntervalUs(version: VrrpVersion, priority: number, masterAdverIntervalUs: number): number {
  return 3 * masterAdverIntervalUs + skewTimeUs(version, priority, masterAdverIntervalUs)
}

/**
 * keepalived's smallest skew (VRRP_TIMER_SKEW_MIN, the skew of priority 255): a non-owner configured
 * `state MASTER` starts as backup with Master_Down_Timer = Advertisement_Interval + this.
 */
export function minimumSkewUs(version: VrrpVersion, advertIntervalUs: number): number {
  return skewTimeUs(version, 255, advertIntervalUs)
}

/** Whether a tracked object's state counts as good, after `reverse`. */
export function trackGood(track: ResolvedTrack, up: boolean): boolean {
  return track.reverse ? !up : up
}

/**
 * keepalived's effective priority: the configured priority plus each weighted track's contribution
 * (+weight while a positive-weight object is good, weight while a negative-weight object is bad),
 * clamped to 1..254. The owner (255) never changes.
 */
export function effectivePriority(base: number, tracks: readonly ResolvedTrack[], isUp: (t: ResolvedTrack) => boolean): number {
  if (base === VRRP_PRIORITY_OWNER) return base
  let total = base
  for (const t of tracks) {
    if (t.weight === 0) continue
    const good = trackGood(t, isUp(t))
    if (t.weight > 0 && good) total += t.weight
    if (t.weight < 0 && !good) total += t.weight
  }
  return Math.min(VRRP_PRIORITY_OWNER - 1, Math.max(1, total))
}

const isIfname = (s: string): boolean => /^[^\s/:]{1,15}$/.test(s) && s !== '.' && s !== '..'

/** Check and complete an instance's configuration. Throws ConfigError; returns keepalived-style warnings. */
export function resolveVrrpConfig(c: VrrpInstanceConfig): { config: ResolvedVrrpConfig; warnings: string[] } {
  const warnings: string[] = []
  const where = `vrrp_instance ${c.name || '?'}`
  const bad = (field: string, message: string, hint?: string): never => {
    throw new ConfigError(message, { where, field, ...(hint ? { hint } : {}) })
  }
  if (typeof c.name !== 'string' || !/^\S+$/.test(c.name)) bad('name', `instance name '${String(c.name)}' must be one word`)
  if (typeof c.interface !== 'string' || !isIfname(c.interface)) bad('interface', `'${String(c.interface)}' is not an interface name`)
  if (!Number.isInteger(c.vrid) || c.vrid < 1 || c.vrid > 255) bad('virtual_router_id', `virtual_router_id ${c.vrid} is not in 1..255`)

  const primary = canonicalIp(c.primaryAddress ?? '')
  if (!primary) bad('unicast_src_ip', `source address '${c.primaryAddress}' is not an IP address`)
  const family = ipFamily(primary!)!

  let version: VrrpVersion = c.version ?? (family === 6 ? 3 : 2)
  if (version !== 2 && version !== 3) bad('vrrp_version', `vrrp_version ${String(c.version)} is not 2 or 3`)
  if (version === 2 && family === 6) {
    warnings.push('VRRP version 2 is IPv4 only (RFC 3768) - using version 3')
    version = 3
  }

  const priority = c.priority ?? VRRP_DEFAULT_PRIORITY
  if (!Number.isInteger(priority) || priority < 1 || priority > 255) bad('priority', `priority ${priority} is not in 1..255`, '255 is the address owner; backups use 1..254')

  const vips = (c.virtualAddresses ?? []).map((a, i) => {
    const ip = canonicalIp(a)
    if (!ip || ipFamily(ip) !== family) bad(`virtual_ipaddress[${i}]`, `'${a}' is not an IPv${family} address (the instance's family comes from its source address)`)
    return ip!
  })
  if (vips.length > 255) bad('virtual_ipaddress', `${vips.length} addresses; an advertisement carries at most 255`)
  const peers = (c.unicastPeers ?? []).map((a, i) => {
    const ip = canonicalIp(a)
    if (!ip || ipFamily(ip) !== family) bad(`unicast_peer[${i}]`, `'${a}' is not an IPv${family} address`)
    return ip!
  })
  if (family === 6 && peers.length === 0 && !isLinkLocalV6(primary!)) {
    warnings.push(`source address ${primary} is not link-local; RFC 5798 sends IPv6 adverts from the link-local address`)
  }
  if (family === 6 && peers.length === 0 && vips.length > 0 && !isLinkLocalV6(vips[0]!)) {
    warnings.push('the first IPv6 virtual address should be link-local (RFC 5798 §5.2.9)')
  }

  // advert_int: keepalived rounds to the unit of the version and clamps to the field's range.
  const ms = c.advertIntervalMs ?? VRRP_DEFAULT_ADVERT_INTERVAL_MS
  if (!Number.isFinite(ms) || ms <= 0) bad('advert_int', `advert_int ${ms} ms is not positive`)
  let advertIntervalUs: number
  if (version === 2) {
    let s = Math.round(ms / 1000)
    if (s * 1000 !== ms) warnings.push(`VRRPv2 advert_int ${ms / 1000}s must be whole seconds - rounding to ${Math.max(1, s)}s`)
    if (s > 255) {
      warnings.push(`VRRPv2 advert_int ${s}s is out of range - using 255s`)
      s = 255
    }
    advertIntervalUs = Math.max(1, s) * 1_000_000
  } else {
    let cs = Math.round(ms / 10)
    if (cs * 10 !== ms) warnings.push(`VRRPv3 advert_int ${ms / 1000}s must be in units of 10ms - rounding to ${Math.max(1, cs) * 10}ms`)
    if (cs > VRRP_V3_MAX_ADVER_INT_CS) {
      warnings.push(`VRRPv3 advert_int ${ms / 1000}s is out of range - using 40.95s`)
      cs = VRRP_V3_MAX_ADVER_INT_CS
    }
    advertIntervalUs = Math.max(1, cs) * 10_000
  }

  // state / nopreempt / preempt_delay, as keepalived's vrrp_complete_instance settles them.
  let nopreempt = c.nopreempt ?? false
  let preemptDelayMs = c.preemptDelayMs ?? 0
  if (!Number.isFinite(preemptDelayMs) || preemptDelayMs < 0 || preemptDelayMs > VRRP_MAX_PREEMPT_DELAY_MS) {
    bad('preempt_delay', `preempt_delay ${preemptDelayMs / 1000}s is not in 0..1000s`)
  }
  let initialState = c.initialState ?? 'BACKUP'
  if (initialState !== 'MASTER' && initialState !== 'BACKUP') bad('state', `state ${String(initialState)} is not MASTER or BACKUP`)
  if (priority === VRRP_PRIORITY_OWNER && nopreempt) {
    warnings.push('nopreempt is incompatible with priority 255 - resetting nopreempt')
    nopreempt = false
  }
  if (priority === VRRP_PRIORITY_OWNER) initialState = 'MASTER'
  if (initialState === 'MASTER') {
    if (nopreempt) {
      warnings.push('nopreempt will not work with initial state MASTER - clearing')
      nopreempt = false
    }
    if (preemptDelayMs) {
      warnings.push('preempt delay will not work with initial state MASTER - clearing')
      preemptDelayMs = 0
    }
  }
  if (preemptDelayMs && nopreempt) {
    warnings.push('preempt_delay is incompatible with nopreempt mode - resetting')
    preemptDelayMs = 0
  }

  // authentication: v2 PASS only.
  let authType: 0 | 1 = 0
  let authData: Buffer = Buffer.alloc(8)
  const auth = c.auth ?? { type: 'none' }
  if (auth.type === 'ah') bad('auth_type', 'auth_type AH is not supported', 'use auth_type PASS, or no authentication (RFC 3768 removed both)')
  if (auth.type === 'pass') {
    if (version === 3) {
      warnings.push('authentication is not supported with VRRPv3 - ignoring')
    } else {
      if (auth.password.length === 0) bad('auth_pass', 'auth_pass is empty')
      if (Buffer.byteLength(auth.password, 'latin1') > 8) warnings.push('auth_pass is longer than 8 characters - truncating')
      authType = 1
      authData = vrrpPassword(auth.password)
    }
  } else if (auth.type !== 'none') {
    bad('auth_type', `auth_type ${String((auth as { type: unknown }).type)} is not PASS`)
  }

  const track: ResolvedTrack[] = []
  for (const [i, t] of (c.track ?? []).entries()) {
    const weight = t.weight ?? 0
    if (t.kind !== 'interface' && t.kind !== 'script') bad(`track[${i}]`, `track kind '${String(t.kind)}' is not interface or script`)
    if (typeof t.name !== 'string' || !t.name) bad(`track[${i}]`, 'tracked object has no name')
    if (!Number.isInteger(weight) || Math.abs(weight) > VRRP_MAX_TRACK_WEIGHT) bad(`track[${i}].weight`, `weight ${weight} is not in -253..253`)
    if (t.kind === 'interface' && t.name === c.interface && (c.trackOwnInterface ?? true)) {
      warnings.push(`ignoring track_interface ${t.name} since it is the instance's own interface`)
      continue
    }
    if (track.some((x) => x.kind === t.kind && x.name === t.name)) bad(`track[${i}]`, `${t.kind} ${t.name} is tracked twice`)
    track.push({ kind: t.kind, name: t.name, weight, reverse: t.reverse ?? false })
  }
  if (c.trackOwnInterface ?? true) track.unshift({ kind: 'interface', name: c.interface, weight: 0, reverse: false })
  if (priority === VRRP_PRIORITY_OWNER && track.some((t) => t.weight !== 0)) {
    warnings.push('tracking weights do not change the priority of an address owner (255)')
  }

  return {
    warnings,
    config: {
      name: c.name,
      interface: c.interface,
      vrid: c.vrid,
      family,
      version,
      priority,
      advertIntervalUs,
      primaryAddress: primary!,
      virtualAddresses: vips,
      unicastPeers: peers,
      group: family === 4 ? VRRP_MULTICAST_V4 : VRRP_MULTICAST_V6,
      initialState,
      preempt: !nopreempt,
      preemptDelayUs: Math.round(preemptDelayMs * 1000),
      authType,
      authData,
      track,
      lowerPrioNoAdvert: c.lowerPrioNoAdvert ?? false,
      checkUnicastSource: c.checkUnicastSource ?? false,
    },
  }
}
