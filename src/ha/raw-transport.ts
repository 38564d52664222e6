// SPDX-License-Identifier: GPL-2.0-only
// The VrrpTransport of a real director: one raw IP socket (protocol 112) per interface and address
// family, shared by every instance there, as keepalived's socket pool does.
//
// Each socket is bound to its interface (SO_BINDTODEVICE), joined to 224.0.0.18 / ff02::12 there when
// an instance on it uses multicast, sends with TTL / hop limit 255 (unicast and multicast), TOS 0xc0
// like keepalived, and with multicast loop off (our own adverts never come back). The source address is
// set per message (IP_PKTINFO / IPV6_PKTINFO) because it is inside the v3 checksum. The kernel writes
// the IP header; IPv4 raw sockets hand the whole datagram up, so its header is parsed here for the TTL
// and the addresses; IPv6 sockets hand up the payload, with the hop limit and destination from
// IPV6_RECVHOPLIMIT / IPV6_RECVPKTINFO.
//
// The IPv6 checksum is left to the VRRP core (IPV6_CHECKSUM stays off): it computes the same value on
// send, and on receive a bad checksum is counted by checkAdvert instead of being dropped silently by
// the kernel.
import type { Logger } from '../log'
import { silentLogger } from '../log'
import { RawSocket, type RawPacket } from '../net/socket'
import { type Family } from './inet'
import { parseIpv4, VRRP_MULTICAST_V4, VRRP_MULTICAST_V6, VRRP_PROTOCOL, VRRP_TTL } from './vrrp-packet'
import type { VrrpPacketHandler, VrrpSendTarget, VrrpTransport } from './vrrp-transport'

/** IPTOS_PREC_INTERNETCONTROL, what keepalived sends adverts with. */
export const VRRP_TOS = 0xc0

export interface RawVrrpTransportStats {
  sent: number
  sendErrors: number
  received: number
  /** IPv4 datagrams whose header did not parse (or that were not VRRP). */
  badIpHeader: number
  truncated: number
}

export interface RawVrrpTransportOptions {
  log?: Logger
  /** Opens a socket (tests substitute one); default RawSocket.open in the calling thread's netns. */
  open?: (family: Family, ifname: string) => RawSocketLike
}

/** What the transport uses of a RawSocket. */
export type RawSocketLike = Pick<RawSocket, 'setHopLimit' | 'setMulticastLoop' | 'setTos' | 'join' | 'leave' | 'send' | 'listen' | 'close'>

interface Entry {
  socket: RawSocketLike
  ifname: string
  family: Family
  joined: boolean
}

export class RawVrrpTransport implements VrrpTransport {
  readonly stats: RawVrrpTransportStats = { sent: 0, sendErrors: 0, received: 0, badIpHeader: 0, truncated: 0 }
  private readonly sockets = new Map<string, Entry>()
  private readonly handlers: VrrpPacketHandler[] = []
  private readonly log: Logger
  private readonly openSocket: (family: Family, ifname: string) => RawSocketLike
  private closed = false

  constructor(opts: RawVrrpTransportOptions = {}) {
    this.log = (opts.log ?? silentLogger).child({ component: 'vrrp-socket' })
    this.openSocket = opts.open ?? ((family, ifname) => RawSocket.open({ family, protocol: VRRP_PROTOCOL, ifname }))
  }

  /**
   * Open (once) the socket for an interface and family, and join the VRRP group there when
   * `multicast`. Instances call this before they start so that they hear adverts from the start.
   */
  open(ifname: string, family: Family, multicast: boolean): void {
    const e = this.entry(ifname, family)
    if (multicast && !e.joined) {
      e.socket.join(family === 4 ? VRRP_MULTICAST_V4 : VRRP_MULTICAST_V6, ifname)
      e.joined = true
    }
  }

  send(packet: Buffer, dest: VrrpSendTarget): void {
    if (this.closed) return
    try {
      const e = this.entry(dest.ifname, dest.family)
      e.socket.send(packet, dest.dst, { src: dest.src })
      this.stats.sent++
    } catch (err) {
      // A send that fails (the interface went down, the source address is gone) is what a lost
      // advert is to the protocol; the state machine carries on and the next interval tries again.
      this.stats.sendErrors++
      this.log.warn({ err, ifname: dest.ifname, dst: dest.dst, src: dest.src }, 'vrrp send failed')
    }
  }

  onPacket(cb: VrrpPacketHandler): void {
    this.handlers.push(cb)
  }

  close(): void {
    if (this.closed) return
    this.closed = true
    for (const e of this.sockets.values()) {
      try {
        if (e.joined) e.socket.leave(e.family === 4 ? VRRP_MULTICAST_V4 : VRRP_MULTICAST_V6, e.ifname)
      } catch {
        // The interface may be gone; closing the socket drops the membership anyway.
      }
      e.socket.close()
    }
    this.sockets.clear()
    this.handlers.length = 0
  }

  private entry(ifname: string, family: Family): Entry {
    const key = `${family}/${ifname}`
    const have = this.sockets.get(key)
    if (have) return have
    const socket = this.openSocket(family, ifname)
    try {
      socket.setHopLimit(VRRP_TTL, VRRP_TTL)
      socket.setMulticastLoop(false)
      socket.setTos(VRRP_TOS)
      socket.listen((p) => this.receive(ifname, family, p))
    } catch (err) {
      socket.close()
      throw err
    }
    const e: Entry = { socket, ifname, family, joined: false }
    this.sockets.set(key, e)
    return e
  }

  /** @internal Hand one raw packet up as (VRRP message, source, TTL, interface, destination). */
  receive(ifname: string, family: Family, p: RawPacket): void {
    if (this.closed) return
    this.stats.received++
    if (p.truncated) {
      this.stats.truncated++
      return
    }
    let message: Buffer
    let src = p.src
    let dst = p.dst
    let ttl = p.hops ?? -1
    if (family === 4) {
      const ip = parseIpv4(p.data)
      if (!ip || ip.protocol !== VRRP_PROTOCOL) {
        this.stats.badIpHeader++
        return
      }
      message = ip.payload
      src = ip.src
      dst = ip.dst
      ttl = ip.ttl
    } else {
      message = p.data
    }
    for (const h of [...this.handlers]) {
      try {
        h(message, src, ttl, ifname, dst)
      } catch (err) {
        this.log.error({ err, ifname, src }, 'vrrp packet handler failed')
      }
    }
  }
}
