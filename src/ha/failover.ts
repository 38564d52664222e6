// SPDX-License-Identifier: GPL-2.0-only
// FailoverManager: a director's VRRP at run time, as keepalived's VRRP child does it, for the daemon
// to host. It takes the model's vrrp part and:
//  - runs the instances and sync groups (VrrpHost) on a transport (raw sockets by default);
//  - on becoming MASTER: asks the host to serve the addresses (hook), adds them (virtual_ipaddress and
//    virtual_ipaddress_excluded, with prefix, device and label), announces them with gratuitous ARP /
//    unsolicited NA on keepalived's schedule (garp_master_delay, _repeat, _refresh, _refresh_repeat,
//    garp_interval), then runs the notify scripts;
//  - on leaving MASTER (BACKUP, FAULT, stop): stops announcing, removes the addresses, tells the host
//    (hook), runs the notify scripts. At start, addresses an earlier run may have left behind (a
//    SIGKILLed daemon) are removed, as keepalived does;
//  - tracking: interfaces (polled link state) and services (the daemon reports when every real
//    server of a tracked service is down) fault an instance or move its priority;
//  - connection sync coordination: the director whose sync instance is MASTER sends its connection
//    table, the others receive; while a receiver has no full copy, preemption of a live lower-priority
//    master is held (VrrpInstance.setPreemptHold), so a recovered master does not take the VIPs back
//    before it can continue their flows.
// Side effects go through HaSystem, scripts through a ScriptRunner, time through a Clock: the unit
// tests drive all of it with fakes.
import { ConfigError } from '../errors'
import type { Logger } from '../log'
import { silentLogger } from '../log'
import { serviceKey } from '../model/diff'
import type { ConnSyncSpec, GarpSettings, Service, VrrpInstanceSpec, VrrpModel, VrrpNotify } from '../model/types'
import { findTrackedService, instanceFamily, instanceVersion } from '../model/vrrp'
import { systemClock, type Clock, type TimerHandle } from '../util/clock'
import { buildGratuitousArp, buildUnsolicitedNa, garpSchedule } from './garp'
import { canonicalIp, type Family } from './inet'
import { notifyCommands, spawnRunner, type NotifyState, type ScriptRunner } from './notify'
import { RawVrrpTransport } from './raw-transport'
import { LinuxSystem, type HaSystem, type PlacedAddress } from './system'
import type { VrrpInstanceConfig, VrrpTrackConfig } from './vrrp-config'
import { VrrpHost } from './vrrp-host'
import type { VrrpInstance, VrrpState, VrrpStats, VrrpTransitionReason } from './vrrp-instance'
import type { VrrpTransport } from './vrrp-transport'

/** What the daemon learns from failover. */
export interface FailoverHooks {
  /** An instance became MASTER: make sure the data plane serves these addresses (called before they are added). */
  serve?(instance: string, addresses: readonly string[]): void
  /** An instance left MASTER: its addresses are gone from the interfaces (called after removal). */
  release?(instance: string, addresses: readonly string[]): void
  /** Every state change, after the actions above. */
  stateChange?(instance: string, from: VrrpState, to: VrrpState, reason: VrrpTransitionReason): void
}

/** The connection-sync side the manager coordinates (src/ha/sync.ts implements it). */
export interface ConnSyncPeer {
  /** 'master': send the table; 'backup': receive and install it. */
  setRole(role: 'master' | 'backup'): void
  /** A full snapshot of the current master's table has been installed since the role became backup. */
  readonly inSync: boolean
  /** Called whenever inSync changes. */
  onInSyncChange(cb: (inSync: boolean) => void): void
}

export interface FailoverOptions {
  vrrp: VrrpModel
  /** The config's services, for track_services given by name. */
  services?: readonly Service[]
  log?: Logger
  clock?: Clock
  /** Default: raw sockets (RawVrrpTransport) in this network namespace. */
  transport?: VrrpTransport
  /** Default: LinuxSystem. */
  system?: HaSystem
  /** Default: spawn, logged. */
  runScript?: ScriptRunner
  hooks?: FailoverHooks
  /** Connection sync, when vrrp.connSync is configured. */
  connSync?: ConnSyncPeer
  /** Link polling period for tracked interfaces, ms (default 1000; 0: no polling, feed setInterfaceState). */
  linkPollMs?: number
}

export interface VrrpInstanceStatus {
  name: string
  interface: string
  vrid: number
  family: Family
  version: 2 | 3
  state: VrrpState
  /** Effective priority (after weighted tracking). */
  priority: number
  configuredPriority: number
  /** The master as last heard while BACKUP; our own address while MASTER. */
  master: string | undefined
  preemptHold: boolean
  group: string | undefined
  addresses: string[]
  stats: VrrpStats
}

interface Running {
  spec: VrrpInstanceSpec
  inst: VrrpInstance
  addresses: PlacedAddress[]
  garp: GarpSettings
  timers: TimerHandle[]
  /** Addresses this run added (removed again when leaving MASTER). */
  added: boolean
}

const trackServiceName = (key: string): string => `service:${key}`

export class FailoverManager {
  readonly host: VrrpHost
  private readonly log: Logger
  private readonly clock: Clock
  private readonly system: HaSystem
  private readonly runScript: ScriptRunner
  private readonly hooks: FailoverHooks
  private readonly transport: VrrpTransport
  private readonly running = new Map<string, Running>()
  private readonly serviceKeys = new Map<string, string>()
  private readonly spec: VrrpModel
  private readonly sync: ConnSyncPeer | undefined
  private readonly linkPollMs: number
  private linkTimer: TimerHandle | undefined
  private holdTimer: TimerHandle | undefined
  private holdExpired = false
  private started = false
  private stopped = false
  /** Counted failures of address changes and announcements. */
  readonly errors = { addAddress: 0, removeAddress: 0, announce: 0 }

  constructor(opts: FailoverOptions) {
    this.spec = opts.vrrp
    this.log = (opts.log ?? silentLogger).child({ component: 'failover' })
    this.clock = opts.clock ?? systemClock
    this.system = opts.system ?? new LinuxSystem()
    this.runScript = opts.runScript ?? spawnRunner(this.log)
    this.hooks = opts.hooks ?? {}
    this.transport = opts.transport ?? new RawVrrpTransport({ log: this.log })
    this.sync = opts.connSync
    this.linkPollMs = opts.linkPollMs ?? 1000
    this.host = new VrrpHost({ transport: this.transport, clock: this.clock, log: this.log })
    for (const s of opts.services ?? []) {
      const key = serviceKey(s)
      this.serviceKeys.set(key, key)
      if (s.name !== undefined) this.serviceKeys.set(s.name, key)
    }
    const services = opts.services ?? []
    for (const spec of this.spec.instances) {
      const config = this.instanceConfig(spec, services)
      const inst = this.host.addInstance(config)
      const dev = spec.interface
      const r: Running = {
        spec,
        inst,
        addresses: [...spec.virtualAddresses, ...spec.excludedAddresses].map((a) => ({ ...a, dev: a.dev ?? dev })),
        garp: { ...this.spec.garp, ...(spec.garp ?? {}) },
        timers: [],
        added: false,
      }
      this.running.set(spec.name, r)
      inst.onTransition((from, to, reason) => this.transition(r, from, to, reason))
    }
    for (const g of this.spec.syncGroups) {
      const group = this.host.addSyncGroup(g.name, g.instances)
      group.onTransition((_from, to) => {
        if (to === 'INIT' && this.stopped) this.notify(g.notify, 'GROUP', g.name, 'STOP', 0)
        else if (to === 'MASTER' || to === 'BACKUP' || to === 'FAULT') this.notify(g.notify, 'GROUP', g.name, to, 0)
      })
    }
    if (this.spec.connSync && this.sync) {
      this.sync.onInSyncChange((inSync) => {
        this.log.info({ inSync }, inSync ? 'connection table in sync' : 'connection table not in sync')
        this.applyHold()
      })
    }
  }

  /** Resolve the instance's source address from its interface and build the protocol config. */
  private instanceConfig(spec: VrrpInstanceSpec, services: readonly Service[]): VrrpInstanceConfig {
    const family = instanceFamily(spec)
    const version = instanceVersion(spec, this.spec)
    let primary = spec.unicastSrcIp
    if (primary === undefined) {
      const info = this.system.interfaceInfo(spec.interface)
      if (!info) throw new ConfigError(`interface ${spec.interface} of vrrp instance ${spec.name} does not exist`, { field: 'interface', hint: 'check the name with ip link' })
      const mine = new Set([...spec.virtualAddresses, ...spec.excludedAddresses].map((a) => canonicalIp(a.address)))
      primary = family === 4
        ? info.ipv4.find((a) => !mine.has(canonicalIp(a.address)))?.address
        : info.ipv6.find((a) => a.linkLocal)?.address
      if (primary === undefined) {
        throw new ConfigError(
          `interface ${spec.interface} has no ${family === 4 ? 'IPv4' : 'IPv6 link-local'} address to send vrrp instance ${spec.name}'s adverts from`,
          { field: 'unicast_src_ip', hint: 'give the interface an address, or set unicast_src_ip' },
        )
      }
    }
    const track: VrrpTrackConfig[] = [
      ...spec.trackInterfaces.map((t) => ({ kind: 'interface' as const, name: t.name, weight: t.weight })),
      ...spec.trackServices.map((t) => {
        const idx = findTrackedService({ services: [...services] }, t.service)
        const key = idx.length === 1 ? serviceKey(services[idx[0]!]!) : t.service
        return { kind: 'script' as const, name: trackServiceName(key), weight: t.weight }
      }),
    ]
    return {
      name: spec.name,
      interface: spec.interface,
      vrid: spec.vrid,
      version,
      priority: spec.priority,
      advertIntervalMs: Math.round(spec.advertInterval * 1000),
      primaryAddress: primary,
      virtualAddresses: spec.virtualAddresses.map((a) => a.address),
      unicastPeers: spec.unicastPeers,
      initialState: spec.state,
      nopreempt: !spec.preempt,
      preemptDelayMs: spec.preemptDelay * 1000,
      ...(spec.authPass !== undefined ? { auth: { type: 'pass' as const, password: spec.authPass } } : {}),
      track,
    }
  }

  /** Open sockets, clean up leftovers, start the instances and link polling. */
  start(): void {
    if (this.started) return
    this.started = true
    const t = this.transport as VrrpTransport & { open?: (ifname: string, family: Family, multicast: boolean) => void }
    for (const r of this.running.values()) {
      t.open?.(r.inst.config.interface, r.inst.config.family, r.inst.config.unicastPeers.length === 0)
      // A daemon that was killed leaves its addresses behind: a backup must not keep answering for them.
      this.removeAddresses(r)
    }
    this.pollLinks()
    if (this.sync && this.spec.connSync) this.updateSyncRole()
    this.applyHold()
    this.host.start()
  }

  /** Resign (priority 0 from masters), remove addresses, run notify_stop, close the sockets. */
  stop(): void {
    if (this.stopped) return
    this.stopped = true
    if (this.linkTimer !== undefined) this.clock.clearTimeout(this.linkTimer)
    if (this.holdTimer !== undefined) this.clock.clearTimeout(this.holdTimer)
    this.host.close()
    for (const r of this.running.values()) this.stopAnnouncing(r)
    this.system.close()
  }

  /** The daemon's health feed: whether a service (name or key) has any real server up. */
  setServiceUp(service: string, up: boolean): void {
    const key = this.serviceKeys.get(service) ?? service
    this.host.setScriptState(trackServiceName(key), up)
  }

  /** An interface's link state (the poller calls this; the daemon may too). */
  setInterfaceState(ifname: string, up: boolean): void {
    this.host.setInterfaceState(ifname, up)
  }

  status(): VrrpInstanceStatus[] {
    return [...this.running.values()].map(({ spec, inst, addresses }) => ({
      name: inst.name,
      interface: inst.config.interface,
      vrid: inst.config.vrid,
      family: inst.config.family,
      version: inst.config.version,
      state: inst.state,
      priority: inst.priority,
      configuredPriority: spec.priority,
      master: inst.state === 'MASTER' ? inst.config.primaryAddress : inst.masterSeen?.address,
      preemptHold: inst.preemptHold,
      group: inst.syncGroup?.name,
      addresses: addresses.map((a) => a.address),
      stats: inst.stats,
    }))
  }

  instance(name: string): VrrpInstance | undefined {
    return this.running.get(name)?.inst
  }

  // --- transitions ----------------------------------------------------------------------------------

  private transition(r: Running, from: VrrpState, to: VrrpState, reason: VrrpTransitionReason): void {
    const name = r.spec.name
    if (to === 'MASTER') {
      const addrs = r.addresses.map((a) => a.address)
      try {
        this.hooks.serve?.(name, addrs)
      } catch (err) {
        this.log.error({ err, instance: name }, 'serve hook failed')
      }
      this.addAddresses(r)
      this.startAnnouncing(r)
    } else if (from === 'MASTER') {
      this.stopAnnouncing(r)
      this.removeAddresses(r)
      try {
        this.hooks.release?.(name, r.addresses.map((a) => a.address))
      } catch (err) {
        this.log.error({ err, instance: name }, 'release hook failed')
      }
    }
    const state: NotifyState | undefined = to === 'INIT' ? 'STOP' : to
    if (state) this.notify(r.spec.notify, 'INSTANCE', name, state, r.inst.priority)
    try {
      this.hooks.stateChange?.(name, from, to, reason)
    } catch (err) {
      this.log.error({ err, instance: name }, 'state hook failed')
    }
    if (this.sync && this.spec.connSync && this.coversSync(name)) {
      this.updateSyncRole()
      this.applyHold()
    }
  }

  private addAddresses(r: Running): void {
    for (const a of r.addresses) {
      try {
        this.system.addAddress(a)
        r.added = true
      } catch (err) {
        this.errors.addAddress++
        this.log.error({ err, address: a.address, dev: a.dev }, 'cannot add address')
      }
    }
    this.log.info({ instance: r.spec.name, addresses: r.addresses.map((a) => `${a.address}/${a.prefix} ${a.dev}`) }, 'addresses added')
  }

  private removeAddresses(r: Running): void {
    for (const a of r.addresses) {
      try {
        this.system.removeAddress(a)
      } catch (err) {
        this.errors.removeAddress++
        this.log.error({ err, address: a.address, dev: a.dev }, 'cannot remove address')
      }
    }
    r.added = false
  }

  private notify(n: VrrpNotify, type: 'INSTANCE' | 'GROUP', name: string, state: NotifyState, priority: number): void {
    for (const argv of notifyCommands(n, type, name, state, priority)) {
      this.log.info({ argv }, 'running notify script')
      try {
        this.runScript(argv)
      } catch (err) {
        this.log.warn({ err, argv }, 'notify script failed to start')
      }
    }
  }

  // --- gratuitous ARP / unsolicited NA ------------------------------------------------------------------

  private startAnnouncing(r: Running): void {
    this.stopAnnouncing(r)
    const g = r.garp
    const ms = (s: number): number => Math.round(s * 1000)
    // The two bursts of becoming MASTER (garpSchedule without refresh: a finite list) ...
    const sends = garpSchedule({ masterDelayMs: ms(g.masterDelay), masterRepeat: g.masterRepeat, intervalMs: ms(g.interval), addressCount: r.addresses.length }, Infinity)
    for (const s of sends) r.timers.push(this.clock.setTimeout(() => this.announce(r, s.address), s.atMs))
    // ... then a refresh burst every garp_master_refresh while MASTER.
    if (g.masterRefresh > 0 && g.masterRefreshRepeat > 0) {
      const refresh = (): void => {
        const burst = garpSchedule({ masterDelayMs: 0, masterRepeat: g.masterRefreshRepeat, intervalMs: ms(g.interval), addressCount: r.addresses.length }, Infinity)
        for (const s of burst) r.timers.push(this.clock.setTimeout(() => this.announce(r, s.address), s.atMs))
        r.timers.push(this.clock.setTimeout(refresh, ms(g.masterRefresh)))
      }
      r.timers.push(this.clock.setTimeout(refresh, ms(g.masterRefresh)))
    }
  }

  private stopAnnouncing(r: Running): void {
    for (const t of r.timers) this.clock.clearTimeout(t)
    r.timers = []
  }

  private announce(r: Running, index: number): void {
    const a = r.addresses[index]
    if (!a || r.inst.state !== 'MASTER') return
    try {
      const info = this.system.interfaceInfo(a.dev)
      if (!info) throw new Error(`interface ${a.dev} is gone`)
      let frame: Buffer
      if (a.address.includes(':')) {
        const ll = info.ipv6.find((x) => x.linkLocal)?.address
        if (!ll) throw new Error(`interface ${a.dev} has no link-local address to send the advertisement from`)
        frame = buildUnsolicitedNa({ target: a.address, mac: info.mac, src: ll })
      } else {
        frame = buildGratuitousArp({ ip: a.address, mac: info.mac })
      }
      this.system.sendFrame(a.dev, frame)
    } catch (err) {
      this.errors.announce++
      this.log.warn({ err, address: a.address, dev: a.dev }, 'cannot announce address')
    }
  }

  // --- link tracking ---------------------------------------------------------------------------------

  private pollLinks(): void {
    if (this.linkPollMs <= 0 || this.stopped) return
    const wanted = new Set<string>()
    for (const r of this.running.values()) for (const t of r.inst.config.track) if (t.kind === 'interface') wanted.add(t.name)
    if (wanted.size > 0) {
      try {
        const states = this.system.linkStates()
        for (const ifname of wanted) this.host.setInterfaceState(ifname, states.get(ifname) ?? false)
      } catch (err) {
        this.log.warn({ err }, 'cannot read link states')
      }
    }
    this.linkTimer = this.clock.setTimeout(() => this.pollLinks(), this.linkPollMs)
  }

  // --- connection sync coordination ------------------------------------------------------------------------

  /** Whether the sync spec's instance (or group) is this instance or contains it. */
  private coversSync(name: string): boolean {
    const s = this.spec.connSync!
    if (s.instance === name) return true
    return this.spec.syncGroups.some((g) => g.name === s.instance && g.instances.includes(name))
  }

  private syncIsMaster(): boolean {
    const s = this.spec.connSync!
    const group = this.host.syncGroup(s.instance)
    if (group) return group.state === 'MASTER'
    return this.host.instance(s.instance)?.state === 'MASTER'
  }

  private updateSyncRole(): void {
    const role = this.syncIsMaster() ? 'master' : 'backup'
    this.sync!.setRole(role)
  }

  /** Hold preemption on the sync instances while this director has no full copy of the table. */
  private applyHold(): void {
    const s: ConnSyncSpec | undefined = this.spec.connSync
    if (!s || !this.sync) return
    const hold = s.holdPreempt && !this.sync.inSync && !this.syncIsMaster() && !this.holdExpired
    for (const r of this.running.values()) if (this.coversSync(r.spec.name)) r.inst.setPreemptHold(hold)
    if (hold && this.holdTimer === undefined && s.holdTimeout > 0) {
      this.holdTimer = this.clock.setTimeout(() => {
        this.log.warn({ seconds: s.holdTimeout }, 'connection sync did not complete in hold_timeout: preempting anyway')
        this.holdTimer = undefined
        this.holdExpired = true
        this.applyHold()
      }, s.holdTimeout * 1000)
    }
    if (!hold && this.holdTimer !== undefined) {
      this.clock.clearTimeout(this.holdTimer)
      this.holdTimer = undefined
    }
    if (this.sync.inSync || this.syncIsMaster()) this.holdExpired = false
  }
}
