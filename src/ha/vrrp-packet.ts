// SPDX-License-Identifier: GPL-2.0-only
// VRRP advertisements byte for byte, and the receive checks that decide whether one counts.
//
// Version 3 (RFC 5798), IPv4 and IPv6:
//    0                   1                   2                   3
//   |Version| Type  | Virtual Rtr ID|   Priority    |Count IPvX Addr|
//   |(rsvd) |     Max Adver Int     |          Checksum             |
//   |                       IPvX Address(es)                        |
// Max Adver Int is 12 bits of centiseconds. The checksum (§5.2.8) covers a pseudo-header and the whole
// VRRP message. The RFC points at RFC 2460 §8.1 for it (src, dst, 32-bit length, 3 zero bytes, next
// header 112) and says nothing else for IPv4; implementations (keepalived, FRR, the Linux-based
// routers) use the IPv4 pseudo-header of RFC 768/793 (src, dst, zero, protocol 112, 16-bit length).
// For IPv4 addresses the two give the same one's complement sum — the same 16-bit words, only
// arranged differently — so there is one answer; the test proves it.
//
// Version 2 (RFC 3768), IPv4 only:
//   |Version| Type  | Virtual Rtr ID|   Priority    | Count IP Addrs|
//   |   Auth Type   |   Adver Int   |          Checksum             |
//   |                         IP Address(es)                        |
//   |                     Authentication Data (1)                   |
//   |                     Authentication Data (2)                   |
// Adver Int is whole seconds; the checksum covers the VRRP message only (no pseudo-header), including
// the 8 bytes of authentication data. RFC 3768 made types 1 and 2 reserved; keepalived still speaks
// RFC 2338's type 1 (simple text password, 8 bytes zero-padded), which is kept here. Type 2 (IP AH) is
// recognised on receipt but never built or accepted.
//
// Everything here works on the VRRP message alone (no IP header); the transport supplies the IP
// fields the checks need (source, destination, TTL / hop limit). checkAdvert never throws on bad input:
// it returns a typed reason for the drop counters. buildAdvert throws ArgumentError, because what it
// is given comes from our own validated configuration.
import { ArgumentError } from '../errors'
import { bytesToIp, compareIp, ipToBytes, isMulticast, onesComplementSum, type Family } from './inet'

export const VRRP_PROTOCOL = 112
export const VRRP_MULTICAST_V4 = '224.0.0.18'
export const VRRP_MULTICAST_V6 = 'ff02::12'
/** IPv4 TTL and IPv6 hop limit on every advertisement, checked on receipt (RFC 5798 §7.1). */
export const VRRP_TTL = 255
export const VRRP_TYPE_ADVERTISEMENT = 1
export const VRRP_HEADER_LENGTH = 8
export const VRRP_V2_AUTH_LENGTH = 8
export const VRRP_PRIORITY_OWNER = 255
export const VRRP_PRIORITY_STOP = 0
/** 12 bits of centiseconds: 40.95 s. */
export const VRRP_V3_MAX_ADVER_INT_CS = 0x0fff

export const VRRP_AUTH_NONE = 0
export const VRRP_AUTH_PASS = 1
export const VRRP_AUTH_AH = 2

export interface VrrpV3Advert {
  version: 3
  family: Family
  vrid: number
  priority: number
  /** Max Adver Int in centiseconds, 1..4095. */
  maxAdverIntCs: number
  addresses: string[]
}

export interface VrrpV2Advert {
  version: 2
  family: 4
  vrid: number
  priority: number
  /** Adver Int in whole seconds, 1..255. */
  adverIntSec: number
  /** 0 none, 1 simple text password, 2 IP AH (decoded only). */
  authType: number
  /** The 8 bytes of authentication data (zero for type 0). */
  authData: Buffer
  addresses: string[]
}

export type VrrpAdvert = VrrpV3Advert | VrrpV2Advert

/** Source and destination of the IP packet that carries (or will carry) the message. */
export interface VrrpEndpoints {
  src: string
  dst: string
}

/** Why a received advertisement was not accepted. */
export type VrrpPacketDropReason =
  | 'bad-ttl' // TTL / hop limit is not 255 (multicast only; see VrrpExpectation.checkTtl)
  | 'too-short' // fewer than the 8 fixed bytes
  | 'bad-version' // not the version this virtual router runs (or v2 over IPv6)
  | 'bad-type' // type is not 1 (ADVERTISEMENT)
  | 'length-mismatch' // length disagrees with Count IPvX Addrs (plus auth data for v2)
  | 'bad-source' // source address missing or not of the instance's family
  | 'bad-checksum'
  | 'vrid-mismatch' // another virtual router's advertisement
  | 'local-is-owner' // we are the address owner (priority 255): RFC 5798 §7.1 discards
  | 'invalid-auth-type' // v2 auth type other than 0, 1, 2
  | 'auth-type-mismatch' // v2 auth type differs from ours
  | 'auth-failure' // v2 simple password differs
  | 'address-list-mismatch' // address list differs and the sender is not the owner
  | 'interval-mismatch' // v2 Adver Int differs from ours (RFC 3768 §7.1 MUST discard)
  | 'bad-interval' // v3 Max Adver Int of 0
  | 'source-not-peer' // unicast source not among the configured peers (when checked)
  | 'destination-mismatch' // multicast received where unicast peers are configured, or vice versa

export const VRRP_PACKET_DROP_REASONS: readonly VrrpPacketDropReason[] = [
  'bad-ttl', 'too-short', 'bad-version', 'bad-type', 'length-mismatch', 'bad-source', 'bad-checksum',
  'vrid-mismatch', 'local-is-owner', 'invalid-auth-type', 'auth-type-mismatch', 'auth-failure',
  'address-list-mismatch', 'interval-mismatch', 'bad-interval', 'source-not-peer', 'destination-mismatch',
]

const addrLen = (family: Family): number => (family === 4 ? 4 : 16)

/** The 8 authentication bytes keepalived derives from `auth_pass`: the first 8 characters, zero padded. */
export function vrrpPassword(text: string): Buffer {
  const out = Buffer.alloc(VRRP_V2_AUTH_LENGTH)
  Buffer.from(text, 'latin1').copy(out, 0, 0, VRRP_V2_AUTH_LENGTH)
  return out
}

/**
 * The pseudo-header summed into a v3 checksum. IPv4: src, dst, zero, protocol 112, 16-bit length
 * (12 bytes). IPv6 (RFC 2460 §8.1): src, dst, 32-bit length, 3 zero bytes, next header 112 (40 bytes).
 */
export function vrrpPseudoHeader(ends: VrrpEndpoints, length: number): Buffer | undefined {
  const src = ipToBytes(ends.src)
  const dst = ipToBytes(ends.dst)
  if (!src || !dst || src.length !== dst.length) return undefined
  if (src.length === 4) {
    const ph = Buffer.alloc(12)
    src.copy(ph, 0)
    dst.copy(ph, 4)
    ph[9] = VRRP_PROTOCOL
    ph.writeUInt16BE(length, 10)
    return ph
  }
  const ph = Buffer.alloc(40)
  src.copy(ph, 0)
  dst.copy(ph, 16)
  ph.writeUInt32BE(length, 32)
  ph[39] = VRRP_PROTOCOL
  return ph
}

/**
 * The checksum a message should carry, computed with its checksum field taken as zero. Version 3
 * needs the endpoints for the pseudo-header; version 2 ignores them. Undefined if the version nibble
 * is neither or the v3 endpoints do not parse.
 */
export function vrrpChecksum(message: Buffer, ends?: VrrpEndpoints): number | undefined {
  if (message.length < VRRP_HEADER_LENGTH) return undefined
  const zeroed = Buffer.from(message)
  zeroed.writeUInt16BE(0, 6)
  const version = message[0]! >> 4
  if (version === 2) return ~onesComplementSum([zeroed]) & 0xffff
  if (version !== 3 || !ends) return undefined
  const ph = vrrpPseudoHeader(ends, message.length)
  if (!ph) return undefined
  return ~onesComplementSum([ph, zeroed]) & 0xffff
}

function checkRange(what: string, v: number, lo: number, hi: number): void {
  if (!Number.isInteger(v) || v < lo || v > hi) throw new ArgumentError(`VRRP ${what} ${v} is not an integer in ${lo}..${hi}`)
}

/**
 * Build an advertisement with its checksum. Version 3 needs the IP source and destination the packet
 * will carry (the pseudo-header); for unicast peers that is a different checksum per peer.
 */
export function buildAdvert(advert: VrrpAdvert, ends?: VrrpEndpoints): Buffer {
  checkRange('VRID', advert.vrid, 1, 255)
  checkRange('priority', advert.priority, 0, 255)
  checkRange('address count', advert.addresses.length, 0, 255)
  const family = advert.family
  const alen = addrLen(family)
  const authLen = advert.version === 2 ? VRRP_V2_AUTH_LENGTH : 0
  const buf = Buffer.alloc(VRRP_HEADER_LENGTH + advert.addresses.length * alen + authLen)
  buf[0] = (advert.version << 4) | VRRP_TYPE_ADVERTISEMENT
  buf[1] = advert.vrid
  buf[2] = advert.priority
  buf[3] = advert.addresses.length
  if (advert.version === 3) {
    checkRange('Max Adver Int (centiseconds)', advert.maxAdverIntCs, 1, VRRP_V3_MAX_ADVER_INT_CS)
    buf.writeUInt16BE(advert.maxAdverIntCs & 0x0fff, 4) // the 4 reserved bits stay zero
  } else {
    if (family !== 4) throw new ArgumentError('VRRP version 2 is IPv4 only (RFC 3768); use version 3 for IPv6')
    checkRange('Adver Int (seconds)', advert.adverIntSec, 1, 255)
    checkRange('auth type', advert.authType, 0, 255)
    buf[4] = advert.authType
    buf[5] = advert.adverIntSec
    if (advert.authData.length > VRRP_V2_AUTH_LENGTH) throw new ArgumentError('VRRP authentication data is at most 8 bytes')
    advert.authData.copy(buf, buf.length - VRRP_V2_AUTH_LENGTH)
  }
  advert.addresses.forEach((a, i) => {
    const b = ipToBytes(a)
    if (!b || b.length !== alen) throw new ArgumentError(`VRRP address '${a}' is not an IPv${family} address`)
    b.copy(buf, VRRP_HEADER_LENGTH + i * alen)
  })
  let sum: number | undefined
  if (advert.version === 3) {
    if (!ends) throw new ArgumentError('a VRRPv3 checksum needs the packet source and destination')
    const fam = ipToBytes(ends.src)?.length === alen && ipToBytes(ends.dst)?.length === alen
    if (!fam) throw new ArgumentError(`VRRPv3 endpoints ${ends.src} -> ${ends.dst} are not IPv${family} addresses`)
    sum = vrrpChecksum(buf, ends)
  } else {
    sum = vrrpChecksum(buf)
  }
  buf.writeUInt16BE(sum!, 6)
  return buf
}

export type VrrpDecodeResult =
  | { ok: true; advert: VrrpAdvert; checksum: number }
  | { ok: false; reason: 'too-short' | 'bad-version' | 'bad-type' | 'length-mismatch'; detail: string }

/**
 * Decode the fields of a message received over `family`: structure only (length, version, type, count
 * against length). Checksums and configuration are checkAdvert's job.
 */
export function decodeAdvert(message: Buffer, family: Family): VrrpDecodeResult {
  if (message.length < VRRP_HEADER_LENGTH) {
    return { ok: false, reason: 'too-short', detail: `${message.length} bytes, the fixed header is ${VRRP_HEADER_LENGTH}` }
  }
  const version = message[0]! >> 4
  const type = message[0]! & 0x0f
  if (version !== 2 && version !== 3) return { ok: false, reason: 'bad-version', detail: `version ${version}` }
  if (version === 2 && family !== 4) return { ok: false, reason: 'bad-version', detail: 'version 2 over IPv6' }
  if (type !== VRRP_TYPE_ADVERTISEMENT) return { ok: false, reason: 'bad-type', detail: `type ${type}` }
  const count = message[3]!
  const alen = addrLen(family)
  const expected = VRRP_HEADER_LENGTH + count * alen + (version === 2 ? VRRP_V2_AUTH_LENGTH : 0)
  if (message.length !== expected) {
    return {
      ok: false,
      reason: 'length-mismatch',
      detail: `${message.length} bytes, ${count} IPv${family} address(es) make ${expected}`,
    }
  }
  const addresses: string[] = []
  for (let i = 0; i < count; i++) addresses.push(bytesToIp(message, VRRP_HEADER_LENGTH + i * alen, family))
  const checksum = message.readUInt16BE(6)
  const vrid = message[1]!
  const priority = message[2]!
  if (version === 3) {
    return {
      ok: true,
      checksum,
      advert: { version: 3, family, vrid, priority, maxAdverIntCs: message.readUInt16BE(4) & 0x0fff, addresses },
    }
  }
  return {
    ok: true,
    checksum,
    advert: {
      version: 2,
      family: 4,
      vrid,
      priority,
      authType: message[4]!,
      adverIntSec: message[5]!,
      authData: Buffer.from(message.subarray(message.length - VRRP_V2_AUTH_LENGTH)),
      addresses,
    },
  }
}

/** What the receiving virtual router is configured with. */
export interface VrrpExpectation {
  version: 2 | 3
  family: Family
  vrid: number
  /** Our current (effective) priority: 255 makes us the owner, who discards every advertisement. */
  localPriority: number
  /** Our virtual addresses, for the address-list check (order does not matter). */
  addresses: readonly string[]
  /** The multicast group, or our own address when unicast peers are configured: the pseudo-header
   * destination when the transport does not report one. */
  localDestination: string
  /** Enforce TTL / hop limit 255. keepalived skips it for unicast peers (routed unicast loses TTL). */
  checkTtl: boolean
  /** Unicast peers; when non-empty, adverts must arrive unicast, and with checkSourceIsPeer from a peer. */
  unicastPeers?: readonly string[]
  checkSourceIsPeer?: boolean
  /** v2: our auth type (0 or 1) and its 8 bytes. */
  authType?: number
  authData?: Buffer
  /** v2: our Adver Int in seconds, which the advertisement must match. */
  adverIntSec?: number
}

/** What the IP layer said about a received message. */
export interface VrrpReceivedOn {
  src: string
  /** Destination, when the transport knows it; else expect.localDestination is assumed. */
  dst?: string
  ttl: number
}

export type VrrpCheckResult =
  | { ok: true; advert: VrrpAdvert; addressListMatches: boolean }
  | { ok: false; reason: VrrpPacketDropReason; detail: string }

function sameAddressSet(got: readonly string[], want: readonly string[]): boolean {
  if (got.length !== want.length) return false
  return want.every((w) => got.some((g) => compareIp(g, w) === 0))
}

/**
 * The receive rules of RFC 5798 §7.1 (v3) and RFC 3768 §7.1 (v2, with RFC 2338's password check), in
 * the RFCs' order: TTL, version, complete packet, checksum, VRID, address owner, auth type and data
 * (v2), address list (MAY; a mismatch is only fatal when the sender is not the owner), Adver Int (v2).
 * Then keepalived's extra checks: unicast versus multicast destination, unicast source among the peers.
 */
export function checkAdvert(message: Buffer, rx: VrrpReceivedOn, expect: VrrpExpectation): VrrpCheckResult {
  const fail = (reason: VrrpPacketDropReason, detail: string): VrrpCheckResult => ({ ok: false, reason, detail })
  if (expect.checkTtl && rx.ttl !== VRRP_TTL) return fail('bad-ttl', `TTL/hop limit ${rx.ttl}, expected ${VRRP_TTL}`)
  const decoded = decodeAdvert(message, expect.family)
  if (!decoded.ok) return fail(decoded.reason, decoded.detail)
  const ad = decoded.advert
  if (ad.version !== expect.version) return fail('bad-version', `version ${ad.version}, this virtual router runs ${expect.version}`)
  const srcBytes = ipToBytes(rx.src)
  if (!srcBytes || srcBytes.length !== addrLen(expect.family)) return fail('bad-source', `source '${rx.src}' is not IPv${expect.family}`)
  const dst = rx.dst ?? expect.localDestination
  const want = vrrpChecksum(message, { src: rx.src, dst })
  if (want === undefined) return fail('bad-source', `destination '${dst}' is not IPv${expect.family}`)
  if (want !== decoded.checksum) {
    return fail('bad-checksum', `checksum 0x${hex4(decoded.checksum)}, computed 0x${hex4(want)}`)
  }
  if (ad.vrid !== expect.vrid) return fail('vrid-mismatch', `VRID ${ad.vrid}, ours is ${expect.vrid}`)
  if (expect.localPriority === VRRP_PRIORITY_OWNER) return fail('local-is-owner', 'we own the addresses (priority 255)')
  if (ad.version === 2) {
    if (ad.authType !== VRRP_AUTH_NONE && ad.authType !== VRRP_AUTH_PASS && ad.authType !== VRRP_AUTH_AH) {
      return fail('invalid-auth-type', `auth type ${ad.authType}`)
    }
    const ours = expect.authType ?? VRRP_AUTH_NONE
    if (ad.authType !== ours) return fail('auth-type-mismatch', `auth type ${ad.authType}, ours is ${ours}`)
    if (ours === VRRP_AUTH_PASS && !ad.authData.equals(expect.authData ?? Buffer.alloc(VRRP_V2_AUTH_LENGTH))) {
      return fail('auth-failure', 'password differs')
    }
  }
  const addressListMatches = sameAddressSet(ad.addresses, expect.addresses)
  if (!addressListMatches && ad.priority !== VRRP_PRIORITY_OWNER) {
    return fail('address-list-mismatch', `addresses [${ad.addresses.join(', ')}], ours [${expect.addresses.join(', ')}]`)
  }
  if (ad.version === 2) {
    if (ad.adverIntSec !== expect.adverIntSec) {
      return fail('interval-mismatch', `Adver Int ${ad.adverIntSec} s, ours is ${expect.adverIntSec ?? '?'} s`)
    }
  } else if (ad.maxAdverIntCs === 0) {
    return fail('bad-interval', 'Max Adver Int 0')
  }
  const peers = expect.unicastPeers ?? []
  if (rx.dst !== undefined && isMulticast(rx.dst) !== (peers.length === 0)) {
    return fail('destination-mismatch', peers.length ? `multicast to ${rx.dst}, unicast peers are configured` : `unicast to ${rx.dst}, no unicast peers are configured`)
  }
  if (peers.length && expect.checkSourceIsPeer && !peers.some((p) => compareIp(p, rx.src) === 0)) {
    return fail('source-not-peer', `${rx.src} is not a unicast peer`)
  }
  return { ok: true, advert: ad, addressListMatches }
}

const hex4 = (n: number): string => n.toString(16).padStart(4, '0')

/** The fields of an IPv4 header that VRRP cares about, and what follows it. */
export interface Ipv4Packet {
  src: string
  dst: string
  ttl: number
  protocol: number
  tos: number
  payload: Buffer
}

/**
 * Split a raw IPv4 datagram (what an IPv4 raw socket hands up) into header fields and payload.
 * Undefined when the header is not a whole, self-consistent IPv4 header with a valid checksum.
 */
export function parseIpv4(datagram: Buffer): Ipv4Packet | undefined {
  if (datagram.length < 20 || datagram[0]! >> 4 !== 4) return undefined
  const ihl = (datagram[0]! & 0x0f) * 4
  const total = datagram.readUInt16BE(2)
  if (ihl < 20 || total < ihl || total > datagram.length) return undefined
  if (onesComplementSum([datagram.subarray(0, ihl)]) !== 0xffff) return undefined
  return {
    tos: datagram[1]!,
    ttl: datagram[8]!,
    protocol: datagram[9]!,
    src: bytesToIp(datagram, 12, 4),
    dst: bytesToIp(datagram, 16, 4),
    payload: datagram.subarray(ihl, total),
  }
}

/**
 * An IPv4 datagram carrying a VRRP message, as keepalived builds it for IP_HDRINCL sockets: TOS 0xc0
 * (internetwork control), DF clear, TTL 255, protocol 112, header checksum filled in.
 */
export function buildIpv4(message: Buffer, ends: VrrpEndpoints, id = 0): Buffer {
  const src = ipToBytes(ends.src)
  const dst = ipToBytes(ends.dst)
  if (src?.length !== 4 || dst?.length !== 4) throw new ArgumentError(`${ends.src} -> ${ends.dst} are not IPv4 addresses`)
  checkRange('IP id', id, 0, 0xffff)
  const h = Buffer.alloc(20)
  h[0] = 0x45
  h[1] = 0xc0
  h.writeUInt16BE(20 + message.length, 2)
  h.writeUInt16BE(id, 4)
  h[8] = VRRP_TTL
  h[9] = VRRP_PROTOCOL
  src.copy(h, 12)
  dst.copy(h, 16)
  h.writeUInt16BE(~onesComplementSum([h]) & 0xffff, 10)
  return Buffer.concat([h, message])
}
