// SPDX-License-Identifier: GPL-2.0-only
// Telling the LAN that a VIP moved: gratuitous ARP (IPv4) and unsolicited neighbour advertisements
// (IPv6) as whole Ethernet frames for an AF_PACKET socket, and keepalived's repeat schedule for them.
//
// Gratuitous ARP (RFC 826 layout, RFC 5227 §3 / RFC 5944 §4.6 usage), 42 bytes (the NIC pads to 60):
//   0  dst MAC ff:ff:ff:ff:ff:ff     6  src MAC        12 ethertype 0x0806
//   14 htype 1   16 ptype 0x0800   18 hlen 6   19 plen 4   20 oper 1 request | 2 reply
//   22 sender MAC   28 sender IP = VIP   32 target MAC   38 target IP = VIP
// keepalived sends requests with target MAC ff:ff:ff:ff:ff:ff (as `arping -U` does); a reply (as
// `arping -A`) carries the sender's own MAC as target MAC.
//
// Unsolicited neighbour advertisement (RFC 4861 §4.4, §7.2.6), 86 bytes:
//   0  dst MAC 33:33 + low 32 bits of the IPv6 destination   6 src MAC   12 ethertype 0x86dd
//   14 IPv6: version 6, traffic class 0, flow 0, payload length 32, next header 58, hop limit 255,
//      src (the interface's link-local address), dst ff02::1
//   54 ICMPv6 type 136, code 0, checksum (RFC 4443 §2.3, over the RFC 2460 §8.1 pseudo-header),
//      flags R|S|O in the top 3 bits (S = 0: unsolicited; O = 1: override caches), 29 reserved bits,
//      target address = VIP
//   78 option type 2 (target link-layer address), length 1 (8 octets), MAC
import { ArgumentError } from '../errors'
import { ipToBytes, macToBytes, onesComplementSum } from './inet'

export const ETHERTYPE_ARP = 0x0806
export const ETHERTYPE_IPV4 = 0x0800
export const ETHERTYPE_IPV6 = 0x86dd
export const ARP_HTYPE_ETHERNET = 1
export const ARP_OP_REQUEST = 1
export const ARP_OP_REPLY = 2
export const ICMPV6_NEXT_HEADER = 58
export const ICMPV6_NEIGHBOR_ADVERTISEMENT = 136
export const ND_OPT_TARGET_LINKADDR = 2
export const ND_NA_FLAG_ROUTER = 0x80000000
export const ND_NA_FLAG_SOLICITED = 0x40000000
export const ND_NA_FLAG_OVERRIDE = 0x20000000
export const ALL_NODES_V6 = 'ff02::1'
export const GARP_FRAME_LENGTH = 42
export const UNSOLICITED_NA_FRAME_LENGTH = 86

const BROADCAST_MAC = Buffer.alloc(6, 0xff)

function mac(value: string | Buffer, what: string): Buffer {
  const b = typeof value === 'string' ? macToBytes(value) : value
  if (!b || b.length !== 6) throw new ArgumentError(`${what} '${String(value)}' is not a 6-byte MAC address`)
  return b
}

function ip(value: string, family: 4 | 6, what: string): Buffer {
  const b = ipToBytes(value)
  if (!b || b.length !== (family === 4 ? 4 : 16)) throw new ArgumentError(`${what} '${value}' is not an IPv${family} address`)
  return b
}

export interface GratuitousArpOptions {
  /** The VIP being announced (sender and target protocol address). */
  ip: string
  /** The MAC that now answers for it (sender hardware address and Ethernet source). */
  mac: string | Buffer
  /** 'request' (default, keepalived) or 'reply'. */
  op?: 'request' | 'reply'
  /** Target hardware address; default ff:ff:ff:ff:ff:ff for a request, the sender MAC for a reply. */
  targetMac?: string | Buffer
}

export function buildGratuitousArp(o: GratuitousArpOptions): Buffer {
  const sha = mac(o.mac, 'MAC')
  const spa = ip(o.ip, 4, 'VIP')
  const op = o.op ?? 'request'
  const tha = o.targetMac !== undefined ? mac(o.targetMac, 'target MAC') : op === 'request' ? BROADCAST_MAC : sha
  const f = Buffer.alloc(GARP_FRAME_LENGTH)
  BROADCAST_MAC.copy(f, 0)
  sha.copy(f, 6)
  f.writeUInt16BE(ETHERTYPE_ARP, 12)
  f.writeUInt16BE(ARP_HTYPE_ETHERNET, 14)
  f.writeUInt16BE(ETHERTYPE_IPV4, 16)
  f[18] = 6
  f[19] = 4
  f.writeUInt16BE(op === 'request' ? ARP_OP_REQUEST : ARP_OP_REPLY, 20)
  sha.copy(f, 22)
  spa.copy(f, 28)
  tha.copy(f, 32)
  spa.copy(f, 38)
  return f
}

/** 33:33 followed by the low 32 bits of an IPv6 multicast address (RFC 2464 §7). */
export function ipv6MulticastMac(group: string): Buffer {
  const g = ip(group, 6, 'IPv6 multicast group')
  return Buffer.concat([Buffer.from([0x33, 0x33]), g.subarray(12, 16)])
}

export interface UnsolicitedNaOptions {
  /** The VIP being announced (target address). */
  target: string
  /** The MAC that now answers for it (Ethernet source and target link-layer address option). */
  mac: string | Buffer
  /** IPv6 source: the interface's link-local address. */
  src: string
  /** IPv6 destination, default ff02::1 (all nodes). */
  dst?: string
  /** R flag: set when the sender is a router (RFC 5798 §6.4.2 sets it for VRRP routers; keepalived
   * sets it when the interface forwards). Default false. */
  router?: boolean
  /** O flag, default true: receivers replace a cached link-layer address. */
  override?: boolean
}

export function buildUnsolicitedNa(o: UnsolicitedNaOptions): Buffer {
  const hw = mac(o.mac, 'MAC')
  const target = ip(o.target, 6, 'VIP')
  const src = ip(o.src, 6, 'source')
  const dstText = o.dst ?? ALL_NODES_V6
  const dst = ip(dstText, 6, 'destination')
  const icmp = Buffer.alloc(32)
  icmp[0] = ICMPV6_NEIGHBOR_ADVERTISEMENT
  icmp[1] = 0
  let flags = 0
  if (o.router) flags |= ND_NA_FLAG_ROUTER
  if (o.override ?? true) flags |= ND_NA_FLAG_OVERRIDE
  icmp.writeUInt32BE(flags >>> 0, 4)
  target.copy(icmp, 8)
  icmp[24] = ND_OPT_TARGET_LINKADDR
  icmp[25] = 1
  hw.copy(icmp, 26)
  const pseudo = Buffer.alloc(40)
  src.copy(pseudo, 0)
  dst.copy(pseudo, 16)
  pseudo.writeUInt32BE(icmp.length, 32)
  pseudo[39] = ICMPV6_NEXT_HEADER
  icmp.writeUInt16BE(~onesComplementSum([pseudo, icmp]) & 0xffff, 2)

  const ip6 = Buffer.alloc(40)
  ip6.writeUInt32BE(0x60000000, 0)
  ip6.writeUInt16BE(icmp.length, 4)
  ip6[6] = ICMPV6_NEXT_HEADER
  ip6[7] = 255
  src.copy(ip6, 8)
  dst.copy(ip6, 24)

  const eth = Buffer.alloc(14)
  ipv6MulticastMac(dstText).copy(eth, 0)
  hw.copy(eth, 6)
  eth.writeUInt16BE(ETHERTYPE_IPV6, 12)
  return Buffer.concat([eth, ip6, icmp])
}

/** keepalived's settings for announcing VIPs (per instance, defaults from global_defs). */
export interface GarpScheduleOptions {
  /** garp_master_delay: a second burst this long after becoming MASTER (default 5000 ms; 0 = none). */
  masterDelayMs?: number
  /** garp_master_repeat: messages per VIP in each burst on becoming MASTER (default 5). */
  masterRepeat?: number
  /** garp_master_refresh: while MASTER, a refresh burst this often (default 0 = never). */
  masterRefreshMs?: number
  /** garp_master_refresh_repeat: messages per VIP in each refresh burst (default 1). */
  masterRefreshRepeat?: number
  /** garp_interval / gna_interval: minimum gap between two messages on the interface (default 0). */
  intervalMs?: number
  /** How many VIPs each burst announces (one message per VIP per repeat; default 1). */
  addressCount?: number
}

export interface GarpSend {
  /** Milliseconds after the transition to MASTER. */
  atMs: number
  burst: 'master' | 'master-delay' | 'refresh'
  /** Which repeat of the burst, from 0. */
  repeat: number
  /** Which VIP, from 0 (the instance's address order). */
  address: number
}

/**
 * When to send each gratuitous ARP / unsolicited NA after an instance becomes MASTER, up to (not
 * including) `untilMs`. Bursts: `masterRepeat` at once, `masterRepeat` again after `masterDelayMs`,
 * then `masterRefreshRepeat` every `masterRefreshMs`. Within a burst, each repeat sends one message per
 * VIP; messages go out in order and never closer together than `intervalMs` (keepalived queues them
 * when garp_interval is set, so a late burst starts when the previous one has drained).
 * keepalived checks the refresh timer when it sends an advert, so its refreshes land up to one
 * advert interval after the times given here.
 */
export function garpSchedule(o: GarpScheduleOptions, untilMs: number): GarpSend[] {
  const delay = o.masterDelayMs ?? 5000
  const repeat = o.masterRepeat ?? 5
  const refresh = o.masterRefreshMs ?? 0
  const refreshRepeat = o.masterRefreshRepeat ?? 1
  const gap = o.intervalMs ?? 0
  const count = o.addressCount ?? 1
  for (const [k, v] of Object.entries({ masterDelayMs: delay, masterRefreshMs: refresh, intervalMs: gap })) {
    if (!Number.isFinite(v) || v < 0) throw new ArgumentError(`${k} ${v} must be a non-negative number`)
  }
  for (const [k, v] of Object.entries({ masterRepeat: repeat, masterRefreshRepeat: refreshRepeat, addressCount: count })) {
    if (!Number.isInteger(v) || v < 0) throw new ArgumentError(`${k} ${v} must be a non-negative integer`)
  }
  const bursts: Array<{ at: number; burst: GarpSend['burst']; repeat: number }> = [{ at: 0, burst: 'master', repeat }]
  if (delay > 0) bursts.push({ at: delay, burst: 'master-delay', repeat })
  if (refresh > 0 && refreshRepeat > 0) {
    for (let at = refresh; at < untilMs; at += refresh) bursts.push({ at, burst: 'refresh', repeat: refreshRepeat })
  }
  bursts.sort((a, b) => a.at - b.at)
  const out: GarpSend[] = []
  let last = -Infinity
  for (const b of bursts) {
    for (let r = 0; r < b.repeat; r++) {
      for (let a = 0; a < count; a++) {
        const at = Math.max(b.at, last + gap)
        if (at >= untilMs) return out
        out.push({ atMs: at, burst: b.burst, repeat: r, address: a })
        last = at
      }
    }
  }
  return out
}
