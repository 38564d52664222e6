// SPDX-License-Identifier: GPL-2.0-only
// One virtual router's state machine (RFC 5798 §6.4, with keepalived's FAULT state, tracking, preempt
// delay and sync groups), driven by an injected clock and a transport that only needs send().
//
// States: INIT -> BACKUP | MASTER (owner) ; BACKUP <-> MASTER ; any running state <-> FAULT ; -> INIT
// on stop. Every change is reported through onTransition(from, to, reason) so the daemon can add or
// remove VIPs, send gratuitous ARP / unsolicited NA and run notify scripts; nothing here touches the
// system.
//
// Where RFC 5798 and keepalived differ, keepalived's behaviour is kept (a mixed pair must agree):
//  - a master that hears a lower-priority advert answers with one of its own at once ("forcing a new
//    election"), unless lowerPrioNoAdvert;
//  - preempt_delay: a backup keeps accepting a lower-priority master's adverts until preempt_delay has
//    passed since the first of them, then discards them, so Master_Down_Timer runs out;
//  - `state MASTER` on a non-owner starts as backup with Master_Down_Timer = Advertisement_Interval +
//    the minimum skew, so it takes over after one interval unless it hears a master;
//  - the TTL check is skipped for unicast peers (routed unicast arrives with a lower TTL);
//  - leaving MASTER for FAULT (or stopping) sends a priority-0 advert; a sync group pulling a master
//    back to BACKUP does not.
//
// xvs adds one thing keepalived lacks (its issues #98 and #1140): a preemption hold. While held, a
// backup accepts a lower-priority master's adverts as if it were nopreempt, so a recovered master does
// not take the VIPs back before connection sync has given it the current table. The hold never delays
// a takeover from a master that went silent or resigned: Master_Down_Timer still runs out.
import type { Logger } from '../log'
import { silentLogger } from '../log'
import { ConfigError } from '../errors'
import type { Clock, TimerHandle } from '../util/clock'
import { compareIp } from './inet'
import {
  effectivePriority,
  masterDownIntervalUs,
  minimumSkewUs,
  resolveVrrpConfig,
  skewTimeUs,
  trackGood,
  type ResolvedTrack,
  type ResolvedVrrpConfig,
  type VrrpInstanceConfig,
} from './vrrp-config'
import {
  buildAdvert,
  checkAdvert,
  VRRP_PACKET_DROP_REASONS,
  VRRP_PRIORITY_OWNER,
  VRRP_PRIORITY_STOP,
  VRRP_TTL,
  type VrrpAdvert,
  type VrrpPacketDropReason,
} from './vrrp-packet'
import type { VrrpTransport } from './vrrp-transport'

export type VrrpState = 'INIT' | 'BACKUP' | 'MASTER' | 'FAULT'

export type VrrpTransitionReason =
  | 'startup' // INIT -> BACKUP, or INIT -> MASTER for the address owner
  | 'master-down' // Master_Down_Timer ran out: no master heard
  | 'priority-zero' // the master resigned (priority 0) and Skew_Time ran out
  | 'preempt' // a lower-priority master was preempted (its adverts discarded until the timer ran out)
  | 'higher-priority' // a master heard a higher priority
  | 'higher-address' // a master heard an equal priority from a higher primary address
  | 'fault' // a tracked object (or the own interface) went down
  | 'recovered' // the tracked objects are all back
  | 'sync-group' // followed another member of the sync group
  | 'shutdown' // stop()

export type VrrpDropReason = VrrpPacketDropReason | 'inactive' | 'own-advert'

export const VRRP_DROP_REASONS: readonly VrrpDropReason[] = [...VRRP_PACKET_DROP_REASONS, 'inactive', 'own-advert']

export interface VrrpStats {
  /** Messages sent (one per unicast peer). */
  advertsSent: number
  /** Advertisements that passed every check. */
  advertsReceived: number
  priorityZeroSent: number
  priorityZeroReceived: number
  becameMaster: number
  releasedMaster: number
  /** Accepted adverts from an owner whose address list differs from ours (RFC: log, continue). */
  addressListErrors: number
  /** Lower-priority adverts a preempting backup discarded. */
  discardedLowerPriority: number
  drops: Record<VrrpDropReason, number>
}

export type VrrpTransitionListener = (from: VrrpState, to: VrrpState, reason: VrrpTransitionReason) => void

/** What receive() did with a message. */
export type VrrpReceiveOutcome =
  | { accepted: true; advert: VrrpAdvert }
  | { accepted: false; reason: VrrpDropReason; detail: string }

export interface VrrpInstanceOptions {
  config: VrrpInstanceConfig
  /** Only send() is used; receiving is the caller's (VrrpHost's) job. */
  transport: Pick<VrrpTransport, 'send'>
  clock: Clock
  log?: Logger
}

const trackKey = (kind: string, name: string): string => `${kind}:${name}`

export class VrrpInstance {
  readonly config: ResolvedVrrpConfig
  readonly warnings: readonly string[]
  readonly stats: VrrpStats
  private readonly transport: Pick<VrrpTransport, 'send'>
  private readonly clock: Clock
  private readonly log: Logger
  private readonly listeners: VrrpTransitionListener[] = []
  private readonly trackUp = new Map<string, boolean>()
  private current: VrrpState = 'INIT'
  private wantMaster = false
  private prio: number
  private masterAdverIntUs: number
  private timer: TimerHandle | undefined
  private timerKind: 'adver' | 'down' | undefined
  private timerDue = 0
  private downArmedAt = 0
  private downFollowsPriority = false
  private downReason: VrrpTransitionReason = 'master-down'
  private preemptAt: number | undefined
  private master: { address: string; priority: number } | undefined
  private group: VrrpSyncGroup | undefined
  private preemptHeld = false

  constructor(opts: VrrpInstanceOptions) {
    const { config, warnings } = resolveVrrpConfig(opts.config)
    this.config = config
    this.warnings = warnings
    this.transport = opts.transport
    this.clock = opts.clock
    this.log = (opts.log ?? silentLogger).child({ component: 'vrrp', instance: config.name })
    for (const w of warnings) this.log.warn({ warning: w }, 'vrrp config corrected')
    for (const t of config.track) this.trackUp.set(trackKey(t.kind, t.name), true)
    this.prio = this.computePriority()
    this.masterAdverIntUs = config.advertIntervalUs
    const drops = {} as Record<VrrpDropReason, number>
    for (const r of VRRP_DROP_REASONS) drops[r] = 0
    this.stats = {
      advertsSent: 0,
      advertsReceived: 0,
      priorityZeroSent: 0,
      priorityZeroReceived: 0,
      becameMaster: 0,
      releasedMaster: 0,
      addressListErrors: 0,
      discardedLowerPriority: 0,
      drops,
    }
  }

  get name(): string {
    return this.config.name
  }

  get state(): VrrpState {
    return this.current
  }

  /** The effective priority (configured priority adjusted by weighted tracks, clamped to 1..254). */
  get priority(): number {
    return this.prio
  }

  /** Master_Adver_Interval: our own interval, or (v3, as backup) the one learned from the master. */
  get masterAdverIntervalUs(): number {
    return this.masterAdverIntUs
  }

  get skewTimeUs(): number {
    return skewTimeUs(this.config.version, this.prio, this.masterAdverIntUs)
  }

  get masterDownIntervalUs(): number {
    return masterDownIntervalUs(this.config.version, this.prio, this.masterAdverIntUs)
  }

  /** The current master as last heard (address and priority), while BACKUP. */
  get masterSeen(): { address: string; priority: number } | undefined {
    return this.master ? { ...this.master } : undefined
  }

  /** Clock time at which the running timer (advertisement or Master_Down) fires. */
  get timerDueAt(): number | undefined {
    return this.timer === undefined ? undefined : this.timerDue
  }

  get syncGroup(): VrrpSyncGroup | undefined {
    return this.group
  }

  /** True while a weight-0 tracked object (or the own interface) is down. */
  get faulted(): boolean {
    return this.config.track.some((t) => t.weight === 0 && !trackGood(t, this.isUp(t)))
  }

  /** True while preemption of a lower-priority master is held (see setPreemptHold). */
  get preemptHold(): boolean {
    return this.preemptHeld
  }

  /**
   * Hold (or release) preemption: while held, a backup treats a live lower-priority master as a
   * nopreempt backup would. Releasing lets the next lower-priority advert be discarded, so the backup
   * takes over one Master_Down_Interval later.
   */
  setPreemptHold(hold: boolean): void {
    if (hold === this.preemptHeld) return
    this.preemptHeld = hold
    this.log.info({ hold }, hold ? 'vrrp preemption held' : 'vrrp preemption released')
  }

  /** keepalived's wantstate == MASTER: our Master_Down_Timer ran out (or we are master). */
  get wantsMaster(): boolean {
    return this.wantMaster
  }

  onTransition(cb: VrrpTransitionListener): () => void {
    this.listeners.push(cb)
    return () => {
      const i = this.listeners.indexOf(cb)
      if (i >= 0) this.listeners.splice(i, 1)
    }
  }

  /** RFC 5798 Startup event. */
  start(): void {
    if (this.current !== 'INIT') return
    this.masterAdverIntUs = this.config.advertIntervalUs
    this.master = undefined
    this.preemptAt = undefined
    this.wantMaster = false
    if (this.faulted) {
      this.enterFault('fault')
      this.group?.memberFaulted(this)
      return
    }
    if (this.group?.state === 'FAULT') {
      this.enterFault('sync-group')
      return
    }
    if (this.prio === VRRP_PRIORITY_OWNER && !this.group) {
      this.becomeMaster('startup')
      return
    }
    // Timers are set before listeners run, so a listener that calls stop() cancels them.
    if (this.config.initialState === 'MASTER') {
      // keepalived: ms_down_timer = master_adver_int + VRRP_TIMER_SKEW_MIN
      const us = this.config.advertIntervalUs + minimumSkewUs(this.config.version, this.config.advertIntervalUs)
      this.armDown(us, false, 'master-down')
    } else {
      this.armDownInterval('master-down')
    }
    this.group?.memberStarted()
    this.transition('BACKUP', 'startup')
  }

  /** RFC 5798 Shutdown event: a master resigns with a priority-0 advert. */
  stop(): void {
    if (this.current === 'INIT') return
    const wasMaster = this.current === 'MASTER'
    this.cancelTimer()
    if (wasMaster) {
      this.sendAdvert(VRRP_PRIORITY_STOP)
      this.stats.releasedMaster++
    }
    this.wantMaster = false
    this.transition('INIT', 'shutdown')
    this.group?.memberStopped()
  }

  /**
   * Report a tracked object's state (an interface's link, a check script's or health check's result).
   * Returns false when this instance does not track it.
   */
  setTrackState(kind: 'interface' | 'script', name: string, up: boolean): boolean {
    const key = trackKey(kind, name)
    const before = this.trackUp.get(key)
    if (before === undefined) return false
    if (before === up) return true
    const wasFaulted = this.faulted
    this.trackUp.set(key, up)
    this.log.info({ track: key, up }, 'vrrp tracked object changed')
    this.updatePriority()
    const nowFaulted = this.faulted
    if (nowFaulted !== wasFaulted && this.current !== 'INIT') {
      if (nowFaulted) {
        if (this.current !== 'FAULT') this.enterFault('fault')
        this.group?.memberFaulted(this)
      } else if (this.current === 'FAULT') {
        if (this.group) this.group.memberRecovered(this)
        else this.leaveFault('recovered')
      }
    }
    return true
  }

  /** Process one received message (the IP payload). Never throws on bad input. */
  receive(packet: Buffer, src: string, ttl: number, dst?: string): VrrpReceiveOutcome {
    const drop = (reason: VrrpDropReason, detail: string): VrrpReceiveOutcome => {
      this.stats.drops[reason]++
      this.log.debug({ reason, detail, src }, 'vrrp advert dropped')
      return { accepted: false, reason, detail }
    }
    if (this.current !== 'BACKUP' && this.current !== 'MASTER') return drop('inactive', `state ${this.current}`)
    if (compareIp(src, this.config.primaryAddress) === 0) return drop('own-advert', 'source is our own primary address')
    const c = this.config
    const unicast = c.unicastPeers.length > 0
    const res = checkAdvert(packet, { src, ttl, ...(dst === undefined ? {} : { dst }) }, {
      version: c.version,
      family: c.family,
      vrid: c.vrid,
      localPriority: this.prio,
      addresses: c.virtualAddresses,
      localDestination: unicast ? c.primaryAddress : c.group,
      checkTtl: !unicast,
      unicastPeers: c.unicastPeers,
      checkSourceIsPeer: c.checkUnicastSource,
      authType: c.authType,
      authData: c.authData,
      adverIntSec: c.advertIntervalUs / 1_000_000,
    })
    if (!res.ok) return drop(res.reason, res.detail)
    const ad = res.advert
    if (!res.addressListMatches) {
      this.stats.addressListErrors++
      this.log.warn({ src, addresses: ad.addresses }, 'vrrp owner advertises a different address list')
    }
    this.stats.advertsReceived++
    if (ad.priority === VRRP_PRIORITY_STOP) this.stats.priorityZeroReceived++
    if (this.current === 'BACKUP') this.backupReceived(ad, src)
    else this.masterReceived(ad, src)
    return { accepted: true, advert: ad }
  }

  // --- RFC 5798 §6.4.2 Backup ------------------------------------------------------------------------

  private backupReceived(ad: VrrpAdvert, src: string): void {
    if (ad.priority === VRRP_PRIORITY_STOP) {
      // The master resigned: take over after Skew_Time, unless someone else does first.
      this.armDown(this.skewTimeUs, false, 'priority-zero')
      return
    }
    const now = this.clock.now()
    const delay = this.config.preemptDelayUs
    const accept =
      !this.config.preempt ||
      this.preemptHeld ||
      ad.priority >= this.prio ||
      (delay > 0 && (this.preemptAt === undefined || this.preemptAt > now))
    if (!accept) {
      // Preempt: discard; Master_Down_Timer keeps running and makes us master.
      this.stats.discardedLowerPriority++
      this.downReason = 'preempt'
      this.master = { address: src, priority: ad.priority }
      return
    }
    if (ad.version === 3) this.masterAdverIntUs = ad.maxAdverIntCs * 10_000
    this.master = { address: src, priority: ad.priority }
    this.wantMaster = false
    if (delay > 0 && !this.preemptHeld) {
      if (ad.priority >= this.prio) this.preemptAt = undefined
      else if (this.preemptAt === undefined) this.preemptAt = now + delay / 1000
    }
    this.armDownInterval('master-down')
  }

  private onMasterDown(): void {
    this.wantMaster = true
    if (this.group && !this.group.canGoMaster(this)) {
      // keepalived: wait for the whole group to want MASTER, rather than split it.
      this.log.info({ group: this.group.name }, 'vrrp master down, waiting for sync group')
      this.armDownInterval(this.downReason)
      return
    }
    this.becomeMaster(this.downReason)
    this.group?.memberBecameMaster(this)
  }

  // --- RFC 5798 §6.4.3 Master ------------------------------------------------------------------------

  private masterReceived(ad: VrrpAdvert, src: string): void {
    if (ad.priority === VRRP_PRIORITY_STOP) {
      this.sendAdvert(this.prio)
      this.armAdver()
      return
    }
    const addressCmp = compareIp(src, this.config.primaryAddress)
    if (ad.priority > this.prio || (ad.priority === this.prio && addressCmp > 0)) {
      if (ad.version === 3) this.masterAdverIntUs = ad.maxAdverIntCs * 10_000
      this.master = { address: src, priority: ad.priority }
      this.leaveMaster(ad.priority > this.prio ? 'higher-priority' : 'higher-address')
      this.group?.memberBecameBackup(this)
      return
    }
    // A lower priority (or equal, lower address) master: keepalived answers so it steps down quickly.
    if (!this.config.lowerPrioNoAdvert) this.sendAdvert(this.prio)
  }

  private onAdverTimer(): void {
    this.sendAdvert(this.prio)
    this.armAdver()
  }

  // --- transitions -------------------------------------------------------------------------------------

  private becomeMaster(reason: VrrpTransitionReason): void {
    this.cancelTimer()
    this.wantMaster = true
    this.preemptAt = undefined
    this.master = undefined
    this.sendAdvert(this.prio)
    this.armAdver()
    this.stats.becameMaster++
    this.transition('MASTER', reason)
  }

  private leaveMaster(reason: VrrpTransitionReason): void {
    this.wantMaster = false
    this.stats.releasedMaster++
    this.armDownInterval('master-down')
    this.transition('BACKUP', reason)
  }

  private enterFault(reason: VrrpTransitionReason): void {
    this.cancelTimer()
    if (this.current === 'MASTER') {
      this.sendAdvert(VRRP_PRIORITY_STOP)
      this.stats.releasedMaster++
    }
    this.wantMaster = false
    this.master = undefined
    this.transition('FAULT', reason)
  }

  private leaveFault(reason: VrrpTransitionReason): void {
    this.masterAdverIntUs = this.config.advertIntervalUs
    this.preemptAt = undefined
    this.wantMaster = false
    this.armDownInterval('master-down')
    this.transition('BACKUP', reason)
  }

  // --- sync group hooks (called by VrrpSyncGroup only) -----------------------------------------------

  /** @internal */
  attachGroup(group: VrrpSyncGroup): void {
    if (this.group && this.group !== group) {
      throw new ConfigError(`instance ${this.name} is already in sync group ${this.group.name}`, { field: 'vrrp_sync_group' })
    }
    this.group = group
  }

  /** @internal */
  followMaster(): void {
    if (this.current === 'BACKUP') this.becomeMaster('sync-group')
  }

  /** @internal */
  followBackup(): void {
    if (this.current === 'MASTER') this.leaveMaster('sync-group')
  }

  /** @internal */
  followFault(): void {
    if (this.current === 'BACKUP' || this.current === 'MASTER') this.enterFault('sync-group')
  }

  /** @internal */
  followRecovery(reason: 'recovered' | 'sync-group'): void {
    if (this.current === 'FAULT' && !this.faulted) this.leaveFault(reason)
  }

  // --- helpers -----------------------------------------------------------------------------------------

  private isUp(t: ResolvedTrack): boolean {
    return this.trackUp.get(trackKey(t.kind, t.name)) ?? true
  }

  private computePriority(): number {
    return effectivePriority(this.config.priority, this.config.track, (t) => this.isUp(t))
  }

  private updatePriority(): void {
    const next = this.computePriority()
    if (next === this.prio) return
    this.log.info({ from: this.prio, to: next }, 'vrrp effective priority changed')
    this.prio = next
    // keepalived moves a running Master_Down_Timer by the change in Master_Down_Interval (the skew).
    if (this.timerKind === 'down' && this.downFollowsPriority) {
      const due = this.downArmedAt + this.masterDownIntervalUs / 1000
      this.schedule('down', Math.max(0, due - this.clock.now()), due)
    }
  }

  private sendAdvert(priority: number): void {
    const c = this.config
    const base =
      c.version === 3
        ? { version: 3 as const, family: c.family, vrid: c.vrid, priority, maxAdverIntCs: c.advertIntervalUs / 10_000, addresses: c.virtualAddresses }
        : { version: 2 as const, family: 4 as const, vrid: c.vrid, priority, adverIntSec: c.advertIntervalUs / 1_000_000, authType: c.authType, authData: c.authData, addresses: c.virtualAddresses }
    const dests = c.unicastPeers.length ? c.unicastPeers : [c.group]
    for (const dst of dests) {
      const packet = buildAdvert(base, { src: c.primaryAddress, dst })
      this.transport.send(packet, { ifname: c.interface, family: c.family, src: c.primaryAddress, dst, hopLimit: VRRP_TTL })
      this.stats.advertsSent++
    }
    if (priority === VRRP_PRIORITY_STOP) this.stats.priorityZeroSent++
  }

  private transition(to: VrrpState, reason: VrrpTransitionReason): void {
    const from = this.current
    if (from === to) return
    this.current = to
    this.log.info({ from, to, reason, priority: this.prio }, 'vrrp state change')
    for (const l of [...this.listeners]) {
      try {
        l(from, to, reason)
      } catch (err) {
        this.log.error({ err, from, to }, 'vrrp transition listener failed')
      }
    }
  }

  private armAdver(): void {
    const ms = this.config.advertIntervalUs / 1000
    this.schedule('adver', ms, this.clock.now() + ms)
  }

  /** Master_Down_Timer := Master_Down_Interval (recomputed from the current priority and interval). */
  private armDownInterval(reason: VrrpTransitionReason): void {
    this.armDown(this.masterDownIntervalUs, true, reason)
  }

  private armDown(us: number, followsPriority: boolean, reason: VrrpTransitionReason): void {
    this.downArmedAt = this.clock.now()
    this.downFollowsPriority = followsPriority
    this.downReason = reason
    this.schedule('down', us / 1000, this.downArmedAt + us / 1000)
  }

  private schedule(kind: 'adver' | 'down', ms: number, due: number): void {
    this.cancelTimer()
    this.timerKind = kind
    this.timerDue = due
    const handle = this.clock.setTimeout(() => {
      if (this.timer !== handle) return
      this.timer = undefined
      this.timerKind = undefined
      if (kind === 'adver') this.onAdverTimer()
      else this.onMasterDown()
    }, ms)
    this.timer = handle
  }

  private cancelTimer(): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer)
    this.timer = undefined
    this.timerKind = undefined
  }
}

export type VrrpSyncGroupState = 'INIT' | 'BACKUP' | 'MASTER' | 'FAULT'

/**
 * keepalived's vrrp_sync_group: instances that change state together (e.g. the outside VIP and the
 * inside gateway of a NAT director). One member going to FAULT takes them all to FAULT, and they leave
 * FAULT together once no member has a fault of its own; one member dropping to BACKUP takes the
 * masters with it; and a member only becomes MASTER when every other member wants to as well ("prefer
 * backup state to avoid thrashing"), at which point they all do.
 */
export class VrrpSyncGroup {
  readonly name: string
  readonly members: readonly VrrpInstance[]
  private current: VrrpSyncGroupState = 'INIT'
  private readonly listeners: Array<(from: VrrpSyncGroupState, to: VrrpSyncGroupState) => void> = []
  private readonly log: Logger

  constructor(name: string, members: readonly VrrpInstance[], log: Logger = silentLogger) {
    if (members.length === 0) throw new ConfigError(`sync group ${name} has no instances`, { field: 'vrrp_sync_group' })
    if (new Set(members).size !== members.length) throw new ConfigError(`sync group ${name} lists an instance twice`, { field: 'vrrp_sync_group' })
    this.name = name
    this.members = [...members]
    this.log = log.child({ component: 'vrrp', group: name })
    for (const m of members) {
      if (m.syncGroup) throw new ConfigError(`instance ${m.name} is already in sync group ${m.syncGroup.name}`, { field: 'vrrp_sync_group' })
    }
    if (members.length === 1) this.log.warn({}, 'vrrp sync group has only 1 virtual router')
    for (const m of members) m.attachGroup(this)
  }

  get state(): VrrpSyncGroupState {
    return this.current
  }

  onTransition(cb: (from: VrrpSyncGroupState, to: VrrpSyncGroupState) => void): () => void {
    this.listeners.push(cb)
    return () => {
      const i = this.listeners.indexOf(cb)
      if (i >= 0) this.listeners.splice(i, 1)
    }
  }

  /** @internal */
  canGoMaster(m: VrrpInstance): boolean {
    return this.current === 'MASTER' || this.members.every((o) => o === m || o.wantsMaster)
  }

  /** @internal */
  memberStarted(): void {
    if (this.current === 'INIT') this.set('BACKUP')
  }

  /** @internal */
  memberStopped(): void {
    if (this.members.every((o) => o.state === 'INIT')) this.set('INIT')
  }

  /** @internal */
  memberBecameMaster(m: VrrpInstance): void {
    if (this.current === 'MASTER') return
    this.set('MASTER')
    for (const o of this.members) if (o !== m) o.followMaster()
  }

  /** @internal */
  memberBecameBackup(m: VrrpInstance): void {
    if (this.current === 'BACKUP') return
    this.set('BACKUP')
    for (const o of this.members) if (o !== m) o.followBackup()
  }

  /** @internal */
  memberFaulted(m: VrrpInstance): void {
    if (this.current === 'FAULT') return
    this.set('FAULT')
    for (const o of this.members) if (o !== m) o.followFault()
  }

  /** @internal A member's own fault cleared: the group leaves FAULT once no member has one. */
  memberRecovered(m: VrrpInstance): void {
    if (this.members.some((o) => o.faulted)) return
    this.set('BACKUP')
    m.followRecovery('recovered')
    for (const o of this.members) if (o !== m) o.followRecovery('sync-group')
  }

  private set(to: VrrpSyncGroupState): void {
    const from = this.current
    if (from === to) return
    this.current = to
    this.log.info({ from, to }, 'vrrp sync group state change')
    for (const l of [...this.listeners]) {
      try {
        l(from, to)
      } catch (err) {
        this.log.error({ err }, 'vrrp sync group listener failed')
      }
    }
  }
}
