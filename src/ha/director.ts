// SPDX-License-Identifier: GPL-2.0-only
// DirectorFailover: what the daemon hosts when its config has a `vrrp` part. It builds the
// FailoverManager and, when vrrp.conn_sync is set, the ConnSync over the daemon's data plane, and
// gives the daemon a few calls: start, stop, service health in, status and Prometheus text out.
import type { Logger } from '../log'
import { silentLogger } from '../log'
import { deepEqual } from '../model/diff'
import type { Model } from '../model/types'
import type { Clock } from '../util/clock'
import type { Dataplane } from '../dataplane/loader'
import { FailoverManager, type FailoverHooks, type FailoverOptions } from './failover'
import { renderFailoverMetrics, type FailoverStatus } from './status'
import { ConnSync, DataplaneConnTable, type ConnSyncOptions, type ConnTable } from './sync'

export interface DirectorFailoverOptions {
  model: Model
  /** The daemon's loaded data plane (for connection sync). */
  dataplane: () => Dataplane
  log?: Logger
  clock?: Clock
  hooks?: FailoverHooks
  /** Test seams: transport, system, scripts, link polling; and the sync's channel and table. */
  failover?: Partial<Pick<FailoverOptions, 'transport' | 'system' | 'runScript' | 'linkPollMs'>>
  sync?: Partial<Pick<ConnSyncOptions, 'channel' | 'helloMs' | 'refreshMs'>> & { table?: ConnTable }
}


export class DirectorFailover {
  readonly manager: FailoverManager
  readonly sync: ConnSync | undefined
  private readonly vrrp: NonNullable<Model['vrrp']>
  private readonly log: Logger

  constructor(opts: DirectorFailoverOptions) {
    if (!opts.model.vrrp) throw new Error('DirectorFailover needs a model with a vrrp part')
    this.vrrp = opts.model.vrrp
    this.log = opts.log ?? silentLogger
    const spec = this.vrrp.connSync
    if (spec) {
      this.sync = new ConnSync({
        spec,
        table: opts.sync?.table ?? new DataplaneConnTable(opts.dataplane),
        log: this.log,
        ...(opts.clock ? { clock: opts.clock } : {}),
        ...(opts.sync?.channel ? { channel: opts.sync.channel } : {}),
        ...(opts.sync?.helloMs !== undefined ? { helloMs: opts.sync.helloMs } : {}),
        ...(opts.sync?.refreshMs !== undefined ? { refreshMs: opts.sync.refreshMs } : {}),
      })
    }
    try {
      this.manager = new FailoverManager({
        vrrp: this.vrrp,
        services: opts.model.services,
        log: this.log,
        ...(opts.clock ? { clock: opts.clock } : {}),
        ...(opts.hooks ? { hooks: opts.hooks } : {}),
        ...(this.sync ? { connSync: this.sync } : {}),
        ...opts.failover,
      })
    } catch (err) {
      this.sync?.close()
      throw err
    }
  }

  start(): void {
    this.manager.start()
  }

  /** Resign, remove the addresses, close sockets. */
  stop(): void {
    this.manager.stop()
    this.sync?.close()
  }

  /** Health: whether each service (by key) still has a real server in service. */
  serviceStates(states: Iterable<{ key: string; up: boolean }>): void {
    for (const s of states) this.manager.setServiceUp(s.key, s.up)
  }

  /** A reload's vrrp part: undefined when it is the running one, else a warning (changes apply at restart). */
  reloadWarning(model: Model): string | undefined {
    if (deepEqual(model.vrrp, this.vrrp)) return undefined
    return 'the vrrp section changed: failover keeps running the previous one until the daemon restarts'
  }

  status(): FailoverStatus {
    return {
      instances: this.manager.status(),
      sync: this.sync ? { ...this.sync.status(), stats: this.sync.stats } : null,
    }
  }

  metricsText(): string {
    return renderFailoverMetrics(this.status())
  }
}
