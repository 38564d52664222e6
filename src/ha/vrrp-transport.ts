// SPDX-License-Identifier: GPL-2.0-only
// How VRRP messages leave and arrive. The real transport (a raw IP socket per interface and family,
// protocol 112, joined to 224.0.0.18 / ff02::12, TTL / hop limit 255, multicast loop off) comes from the
// native addon; this file defines the interface it implements and an in-memory network that connects
// several simulated directors for tests and demos, with optional, deterministic packet loss.
import type { Clock } from '../util/clock'
import { compareIp, ipFamily, isMulticast, type Family } from './inet'
import { mulberry32 } from '../util/random'

/** Where one message goes, and from which source address (it is in the v3 checksum). */
export interface VrrpSendTarget {
  ifname: string
  family: Family
  src: string
  /** The multicast group, or a unicast peer. */
  dst: string
  /** Always 255 for VRRP. */
  hopLimit: number
}

/**
 * Called for each VRRP message received: the message without its IP header, the IP source, the IPv4
 * TTL or IPv6 hop limit, the receiving interface, and (where the socket reports it, IP_PKTINFO /
 * IPV6_PKTINFO) the IP destination.
 */
export type VrrpPacketHandler = (packet: Buffer, src: string, ttlOrHopLimit: number, ifname: string, dst?: string) => void

export interface VrrpTransport {
  send(packet: Buffer, dest: VrrpSendTarget): void
  /** Register a receiver; every registered handler sees every message. */
  onPacket(cb: VrrpPacketHandler): void
  close(): void
}

export interface MemoryInterface {
  ifname: string
  /** The segment the interface is plugged into; interfaces on one link hear each other's multicast. */
  link?: string
  /** Addresses on the interface: unicast messages are delivered to the owner of the destination. */
  addresses: string[]
}

/** One copy of a message on its way to one receiver. */
export interface MemoryDelivery {
  from: string
  to: string
  link: string
  /** The receiver's interface. */
  ifname: string
  src: string
  dst: string
  hopLimit: number
  packet: Buffer
  /** Clock time of the send. */
  at: number
}

/** A message as it was sent (before fan-out and loss). */
export interface MemorySend {
  from: string
  target: VrrpSendTarget
  packet: Buffer
  at: number
}

export interface MemoryNetworkOptions {
  clock: Clock
  /** Delivery delay, ms (default 0: delivered by a zero timer, after the sender's handler returns). */
  latencyMs?: number
  /** Drop each delivery with this probability, from a PRNG seeded with `seed` (default 0: no loss). */
  lossRate?: number
  seed?: number
  /** Decide per delivery; true drops it. Applied before lossRate. */
  loss?: (d: MemoryDelivery) => boolean
  /** Keep at most this many sends in `history` (default 10000). */
  historyLimit?: number
}

interface Endpoint {
  node: string
  interfaces: Array<Required<MemoryInterface>>
  handlers: VrrpPacketHandler[]
  closed: boolean
}

/**
 * An in-memory Ethernet for VRRP: multicast reaches every other endpoint on the link, unicast the one
 * that holds the destination address. Deliveries go through the clock (never synchronously inside
 * send), so a FakeClock orders them deterministically with the routers' own timers.
 */
export class MemoryNetwork {
  readonly history: MemorySend[] = []
  readonly stats = { sent: 0, delivered: 0, lost: 0 }
  private readonly endpoints: Endpoint[] = []
  private readonly clock: Clock
  private readonly latencyMs: number
  private readonly lossRate: number
  private readonly historyLimit: number
  private lossFn: ((d: MemoryDelivery) => boolean) | undefined
  private rand: () => number

  constructor(opts: MemoryNetworkOptions) {
    this.clock = opts.clock
    this.latencyMs = opts.latencyMs ?? 0
    this.lossRate = opts.lossRate ?? 0
    this.historyLimit = opts.historyLimit ?? 10000
    this.lossFn = opts.loss
    this.rand = mulberry32(opts.seed ?? 1)
  }

  /** Replace the loss function (undefined: no scripted loss). */
  setLoss(fn: ((d: MemoryDelivery) => boolean) | undefined): void {
    this.lossFn = fn
  }

  /** Plug a node in; its transport sends from, and receives on, the given interfaces. */
  attach(node: string, interfaces: MemoryInterface[]): VrrpTransport {
    const ep: Endpoint = {
      node,
      interfaces: interfaces.map((i) => ({ ifname: i.ifname, link: i.link ?? i.ifname, addresses: [...i.addresses] })),
      handlers: [],
      closed: false,
    }
    this.endpoints.push(ep)
    return {
      send: (packet, dest) => this.send(ep, packet, dest),
      onPacket: (cb) => {
        ep.handlers.push(cb)
      },
      close: () => {
        ep.closed = true
        ep.handlers.length = 0
      },
    }
  }

  private send(from: Endpoint, packet: Buffer, target: VrrpSendTarget): void {
    if (from.closed) return
    const out = from.interfaces.find((i) => i.ifname === target.ifname)
    if (!out) return
    const at = this.clock.now()
    this.stats.sent++
    this.history.push({ from: from.node, target: { ...target }, packet: Buffer.from(packet), at })
    if (this.history.length > this.historyLimit) this.history.shift()
    const multicast = isMulticast(target.dst)
    for (const ep of this.endpoints) {
      if (ep === from || ep.closed) continue
      for (const iface of ep.interfaces) {
        if (iface.link !== out.link) continue
        if (ipFamily(target.dst) !== (target.family)) continue
        if (!multicast && !iface.addresses.some((a) => compareIp(a, target.dst) === 0)) continue
        const d: MemoryDelivery = {
          from: from.node,
          to: ep.node,
          link: out.link,
          ifname: iface.ifname,
          src: target.src,
          dst: target.dst,
          hopLimit: target.hopLimit,
          packet: Buffer.from(packet),
          at,
        }
        if ((this.lossFn && this.lossFn(d)) || (this.lossRate > 0 && this.rand() < this.lossRate)) {
          this.stats.lost++
          continue
        }
        this.clock.setTimeout(() => {
          if (ep.closed) return
          this.stats.delivered++
          for (const h of [...ep.handlers]) h(d.packet, d.src, d.hopLimit, d.ifname, d.dst)
        }, this.latencyMs)
      }
    }
  }
}

/** mulberry32: small seeded PRNG, so a lossy run is the same run every time. */
