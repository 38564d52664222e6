// SPDX-License-Identifier: GPL-2.0-only
// One director's VRRP: its instances and sync groups on one transport. Received messages are
// dispatched by (interface, family, VRID) the way keepalived's socket pool does; messages for a VRID
// nobody here runs are counted, not errors. Interface and check states fan out to every instance that
// tracks them.
import type { Logger } from '../log'
import { silentLogger } from '../log'
import { ConfigError } from '../errors'
import { systemClock, type Clock } from '../util/clock'
import { ipFamily } from './inet'
import type { VrrpInstanceConfig } from './vrrp-config'
import { VrrpInstance, VrrpSyncGroup, type VrrpReceiveOutcome } from './vrrp-instance'
import type { VrrpTransport } from './vrrp-transport'

export interface VrrpHostOptions {
  transport: VrrpTransport
  clock?: Clock
  log?: Logger
}

export interface VrrpHostStats {
  /** Messages handed up by the transport. */
  received: number
  /** Shorter than the two bytes needed to find the VRID. */
  tooShort: number
  /** Source address not IPv4 or IPv6. */
  badSource: number
  /** Arrived on an interface / family where we run no instance. */
  noInstance: number
  /** A VRID we do not run on that interface (another virtual router on the LAN). */
  otherVrid: number
}

export class VrrpHost {
  readonly stats: VrrpHostStats = { received: 0, tooShort: 0, badSource: 0, noInstance: 0, otherVrid: 0 }
  private readonly transport: VrrpTransport
  private readonly clock: Clock
  private readonly log: Logger
  private readonly byName = new Map<string, VrrpInstance>()
  private readonly groups = new Map<string, VrrpSyncGroup>()
  private closed = false

  constructor(opts: VrrpHostOptions) {
    this.transport = opts.transport
    this.clock = opts.clock ?? systemClock
    this.log = (opts.log ?? silentLogger).child({ component: 'vrrp' })
    this.transport.onPacket((packet, src, ttl, ifname, dst) => {
      this.receive(packet, src, ttl, ifname, dst)
    })
  }

  get instances(): readonly VrrpInstance[] {
    return [...this.byName.values()]
  }

  get syncGroups(): readonly VrrpSyncGroup[] {
    return [...this.groups.values()]
  }

  instance(name: string): VrrpInstance | undefined {
    return this.byName.get(name)
  }

  syncGroup(name: string): VrrpSyncGroup | undefined {
    return this.groups.get(name)
  }

  /** Add a virtual router (not started). Throws ConfigError on a bad config or a duplicate. */
  addInstance(config: VrrpInstanceConfig): VrrpInstance {
    const inst = new VrrpInstance({ config, transport: this.transport, clock: this.clock, log: this.log })
    const c = inst.config
    if (this.byName.has(c.name)) throw new ConfigError(`vrrp_instance ${c.name} is defined twice`, { field: 'vrrp_instance' })
    for (const o of this.byName.values()) {
      if (o.config.interface === c.interface && o.config.family === c.family && o.config.vrid === c.vrid) {
        throw new ConfigError(
          `vrrp_instance ${c.name} uses virtual_router_id ${c.vrid} on ${c.interface}, as ${o.name} does`,
          { field: 'virtual_router_id', hint: 'each VRID may appear once per interface and address family' },
        )
      }
    }
    this.byName.set(c.name, inst)
    return inst
  }

  /** keepalived vrrp_sync_group NAME { group { instances } }. */
  addSyncGroup(name: string, instanceNames: readonly string[]): VrrpSyncGroup {
    if (this.groups.has(name)) throw new ConfigError(`vrrp_sync_group ${name} is defined twice`, { field: 'vrrp_sync_group' })
    const members = instanceNames.map((n) => {
      const i = this.byName.get(n)
      if (!i) throw new ConfigError(`vrrp_sync_group ${name} names unknown instance ${n}`, { field: 'vrrp_sync_group' })
      return i
    })
    const g = new VrrpSyncGroup(name, members, this.log)
    this.groups.set(name, g)
    return g
  }

  start(): void {
    for (const i of this.byName.values()) i.start()
  }

  /** Stop every instance (masters resign with priority 0). */
  stop(): void {
    for (const i of this.byName.values()) i.stop()
  }

  /** stop(), then close the transport. */
  close(): void {
    if (this.closed) return
    this.stop()
    this.closed = true
    this.transport.close()
  }

  /** An interface's link went up or down: instances on it, and those tracking it, follow. */
  setInterfaceState(ifname: string, up: boolean): void {
    for (const i of this.byName.values()) i.setTrackState('interface', ifname, up)
  }

  /** A track script's (or health check's) result. */
  setScriptState(name: string, ok: boolean): void {
    for (const i of this.byName.values()) i.setTrackState('script', name, ok)
  }

  /** What the transport calls for each received message; returns the instance's verdict, if any. */
  receive(packet: Buffer, src: string, ttl: number, ifname: string, dst?: string): VrrpReceiveOutcome | undefined {
    if (this.closed) return undefined
    this.stats.received++
    const family = ipFamily(src)
    if (family === undefined) {
      this.stats.badSource++
      return undefined
    }
    if (packet.length < 2) {
      this.stats.tooShort++
      return undefined
    }
    let here = false
    for (const i of this.byName.values()) {
      if (i.config.interface !== ifname || i.config.family !== family) continue
      here = true
      if (i.config.vrid === packet[1]) return i.receive(packet, src, ttl, dst)
    }
    if (here) this.stats.otherVrid++
    else this.stats.noInstance++
    return undefined
  }
}
