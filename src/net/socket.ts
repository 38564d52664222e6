// SPDX-License-Identifier: GPL-2.0-only
// Typed raw IP sockets and AF_PACKET senders over the addon (native/socket.cc): what VRRP and the
// gratuitous ARP / unsolicited NA of a takeover need, and nothing about VRRP itself. Arguments are
// checked here before any native call; failures are BpfErrors with code, errno, op and target.
// Sockets are made in the calling thread's network namespace (see withNetns) and stay there.
import { native, type NativePollHandle } from '../bpf/native'
import { FdHolder } from '../bpf/fd'
import { ifindexOf } from '../bpf/xdp'
import { checkBuffer, checkIfname, checkUint } from '../bpf/validate'
import { ArgumentError } from '../errors'
import { bytesToIp, ipToBytes, type Family } from '../ha/inet'

export const AF_INET = 2
export const AF_INET6 = 10

/** setsockopt levels and names used here (linux/in.h, linux/in6.h). */
export const SockOpt = {
  IPPROTO_IP: 0,
  IP_TOS: 1,
  IP_TTL: 2,
  IP_MULTICAST_TTL: 33,
  IP_MULTICAST_LOOP: 34,
  IPPROTO_IPV6: 41,
  IPV6_CHECKSUM: 7,
  IPV6_UNICAST_HOPS: 16,
  IPV6_MULTICAST_HOPS: 18,
  IPV6_MULTICAST_LOOP: 19,
  IPV6_TCLASS: 67,
} as const

const afOf = (family: Family): number => (family === 4 ? AF_INET : AF_INET6)

function addrBytes(what: string, text: string, family: Family): Buffer {
  const b = typeof text === 'string' ? ipToBytes(text) : undefined
  if (!b || b.length !== (family === 4 ? 4 : 16)) throw new ArgumentError(`${what} ${JSON.stringify(text)} is not an IPv${family} address`)
  return b
}

/** One received packet. IPv4 raw sockets deliver the IP header too; IPv6 ones the payload only. */
export interface RawPacket {
  data: Buffer
  /** The packet was longer than the receive buffer. */
  truncated: boolean
  /** IP source, canonical text (no zone id). */
  src: string
  /** IP destination (IP_PKTINFO / IPV6_PKTINFO), when the kernel reported it. */
  dst: string | undefined
  /** IPv4 TTL / IPv6 hop limit, when reported. */
  hops: number | undefined
  /** Receiving interface (0 if not reported). */
  ifindex: number
}

export interface RawSocketOptions {
  family: Family
  /** IP protocol number, 1..255 (VRRP: 112). */
  protocol: number
  /** Receive and send on this interface only (SO_BINDTODEVICE); undefined: any interface. */
  ifname?: string
}

export interface RawSendOptions {
  /** Source address (must be local); undefined: the kernel's choice. */
  src?: string
  /** Outgoing interface (and, for IPv6 link-local or multicast destinations, the scope); 0: routing decides. */
  ifindex?: number
}

/** A non-blocking raw IP socket for one protocol, optionally bound to one interface. */
export class RawSocket extends FdHolder {
  readonly family: Family
  readonly protocol: number
  readonly ifname: string | undefined
  #poll: NativePollHandle | undefined

  private constructor(fd: number, opts: RawSocketOptions) {
    super(fd)
    this.family = opts.family
    this.protocol = opts.protocol
    this.ifname = opts.ifname
  }

  static open(opts: RawSocketOptions): RawSocket {
    if (opts.family !== 4 && opts.family !== 6) throw new ArgumentError(`family must be 4 or 6, got ${String(opts.family)}`)
    checkUint('protocol', opts.protocol, 255)
    if (opts.protocol === 0) throw new ArgumentError('protocol must be 1..255')
    const ifname = opts.ifname === undefined ? '' : checkIfname(opts.ifname)
    return new RawSocket(native().rawOpen(afOf(opts.family), opts.protocol, ifname), opts)
  }

  protected describe(): string {
    return `raw IPv${this.family} socket for protocol ${this.protocol}${this.ifname ? ` on ${this.ifname}` : ''}`
  }

  /** TTL / hop limit of sent packets, unicast and multicast (VRRP: 255 for both). */
  setHopLimit(unicast: number, multicast = unicast): void {
    checkUint('unicast hop limit', unicast, 255)
    checkUint('multicast hop limit', multicast, 255)
    const n = native()
    if (this.family === 4) {
      n.sockSetInt(this.fd, SockOpt.IPPROTO_IP, SockOpt.IP_TTL, unicast)
      n.sockSetInt(this.fd, SockOpt.IPPROTO_IP, SockOpt.IP_MULTICAST_TTL, multicast)
    } else {
      n.sockSetInt(this.fd, SockOpt.IPPROTO_IPV6, SockOpt.IPV6_UNICAST_HOPS, unicast)
      n.sockSetInt(this.fd, SockOpt.IPPROTO_IPV6, SockOpt.IPV6_MULTICAST_HOPS, multicast)
    }
  }

  /** IPv4 TOS / IPv6 traffic class of sent packets (VRRP: 0xc0, internetwork control). */
  setTos(tos: number): void {
    checkUint('tos', tos, 255)
    if (this.family === 4) native().sockSetInt(this.fd, SockOpt.IPPROTO_IP, SockOpt.IP_TOS, tos)
    else native().sockSetInt(this.fd, SockOpt.IPPROTO_IPV6, SockOpt.IPV6_TCLASS, tos)
  }

  /** Whether our own multicast comes back to local sockets (default on in the kernel). */
  setMulticastLoop(on: boolean): void {
    if (this.family === 4) native().sockSetInt(this.fd, SockOpt.IPPROTO_IP, SockOpt.IP_MULTICAST_LOOP, on ? 1 : 0)
    else native().sockSetInt(this.fd, SockOpt.IPPROTO_IPV6, SockOpt.IPV6_MULTICAST_LOOP, on ? 1 : 0)
  }

  /**
   * IPv6 only: the kernel computes (send) and verifies (receive, dropping bad ones silently) the
   * checksum at this byte offset of the payload, over the RFC 2460 pseudo-header; -1 turns it off.
   */
  setChecksumOffset(offset: number): void {
    if (this.family !== 6) throw new ArgumentError('IPV6_CHECKSUM applies to IPv6 raw sockets only')
    if (!Number.isInteger(offset) || offset < -1 || offset > 65534 || (offset >= 0 && offset % 2 !== 0)) {
      throw new ArgumentError(`checksum offset must be -1 or an even byte offset, got ${offset}`)
    }
    native().sockSetInt(this.fd, SockOpt.IPPROTO_IPV6, SockOpt.IPV6_CHECKSUM, offset)
  }

  /** Join a multicast group on an interface (name or ifindex). */
  join(group: string, iface: string | number): void {
    native().mcastMembership(this.fd, afOf(this.family), addrBytes('group', group, this.family), ifindexOf(iface), true)
  }

  leave(group: string, iface: string | number): void {
    native().mcastMembership(this.fd, afOf(this.family), addrBytes('group', group, this.family), ifindexOf(iface), false)
  }

  /** Send one packet's payload (the kernel writes the IP header); returns the bytes sent. */
  send(data: Buffer, dst: string, opts: RawSendOptions = {}): number {
    checkBuffer('data', data)
    const src = opts.src === undefined ? null : addrBytes('source', opts.src, this.family)
    const ifindex = checkUint('ifindex', opts.ifindex ?? 0, 0x7fffffff)
    return native().rawSend(this.fd, afOf(this.family), data, addrBytes('destination', dst, this.family), src, ifindex)
  }

  /** The next queued packet, or undefined when none is. */
  recv(maxLen = 65535): RawPacket | undefined {
    checkUint('maxLen', maxLen, 65535)
    const r = native().rawRecv(this.fd, afOf(this.family), maxLen)
    if (r === null) return undefined
    const fam = (b: Buffer): Family => (b.length === 4 ? 4 : 6)
    return {
      data: r.data,
      truncated: r.truncated,
      src: r.src ? bytesToIp(r.src, 0, fam(r.src)) : '',
      dst: r.dst ? bytesToIp(r.dst, 0, fam(r.dst)) : undefined,
      hops: r.hops >= 0 ? r.hops : undefined,
      ifindex: r.ifindex,
    }
  }

  /**
   * Call `onPacket` for every packet that arrives, from the event loop (the socket is drained each
   * time it turns readable). Keeps the process alive until close(). One listener per socket.
   */
  listen(onPacket: (p: RawPacket) => void, maxLen = 65535): void {
    if (this.#poll) throw new ArgumentError(`${this.describe()} already has a listener`)
    const fd = this.fd
    this.#poll = native().pollStart(fd, () => {
      for (let i = 0; i < 1024 && !this.closed; i++) {
        const p = this.recv(maxLen)
        if (!p) break
        onPacket(p)
      }
    })
  }

  override close(): void {
    if (this.#poll) {
      native().pollStop(this.#poll)
      this.#poll = undefined
    }
    super.close()
  }
}

/** Sends whole Ethernet frames out of one interface (AF_PACKET, receives nothing). */
export class PacketSocket extends FdHolder {
  readonly ifindex: number

  private constructor(fd: number, ifindex: number) {
    super(fd)
    this.ifindex = ifindex
  }

  /** On an interface, by name or ifindex, of the calling thread's network namespace. */
  static open(iface: string | number): PacketSocket {
    const ifindex = ifindexOf(iface)
    return new PacketSocket(native().packetOpen(ifindex), ifindex)
  }

  protected describe(): string {
    return `packet socket on ifindex ${this.ifindex}`
  }

  /** Send one frame as given (destination MAC first); returns the bytes sent. */
  send(frame: Buffer): number {
    checkBuffer('frame', frame)
    if (frame.length < 14 || frame.length > 65535) throw new ArgumentError(`a frame is 14..65535 bytes, got ${frame.length}`)
    return native().packetSend(this.fd, this.ifindex, frame)
  }
}
