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
import { FailoverManager, type FailoverHooks, type FailoverOptions, type VrrpInstanceStatus } from './failover'
import { ConnSync, DataplaneConnTable, type ConnSyncOptions, type ConnSyncStats, type ConnTable } from './sync'

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

export interface FailoverStatus {
  instances: VrrpInstanceStatus[]
  sync: ({ role: string | undefined; inSync: boolean; peers: Array<{ address: string; inSync: boolean; lastHelloAgoMs: number | undefined }> } & { stats: ConnSyncStats }) | null
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

const STATE_VALUE = { INIT: 0, BACKUP: 1, MASTER: 2, FAULT: 3 } as const

const esc = (s: string): string => s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')

/** Prometheus text for VRRP instances and connection sync. */
export function renderFailoverMetrics(s: FailoverStatus): string {
  const out: string[] = []
  const metric = (name: string, type: 'gauge' | 'counter', help: string, rows: Array<[Record<string, string>, number]>): void => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`)
    for (const [labels, v] of rows) {
      const l = Object.entries(labels).map(([k, x]) => `${k}="${esc(x)}"`).join(',')
      out.push(`${name}${l ? `{${l}}` : ''} ${v}`)
    }
  }
  const inst = (i: VrrpInstanceStatus): Record<string, string> => ({ instance: i.name, interface: i.interface, vrid: String(i.vrid) })
  metric('xvs_vrrp_state', 'gauge', 'VRRP instance state: 0 init, 1 backup, 2 master, 3 fault', s.instances.map((i) => [inst(i), STATE_VALUE[i.state]]))
  metric('xvs_vrrp_priority', 'gauge', 'Effective VRRP priority (after weighted tracking)', s.instances.map((i) => [inst(i), i.priority]))
  metric('xvs_vrrp_preempt_held', 'gauge', '1 while preemption waits for connection sync', s.instances.map((i) => [inst(i), i.preemptHold ? 1 : 0]))
  metric('xvs_vrrp_adverts_sent_total', 'counter', 'VRRP advertisements sent', s.instances.map((i) => [inst(i), i.stats.advertsSent]))
  metric('xvs_vrrp_adverts_received_total', 'counter', 'VRRP advertisements accepted', s.instances.map((i) => [inst(i), i.stats.advertsReceived]))
  metric('xvs_vrrp_became_master_total', 'counter', 'Transitions to MASTER', s.instances.map((i) => [inst(i), i.stats.becameMaster]))
  metric('xvs_vrrp_adverts_dropped_total', 'counter', 'VRRP advertisements dropped, by reason', s.instances.flatMap((i) =>
    Object.entries(i.stats.drops).map(([reason, n]) => [{ ...inst(i), reason }, n] as [Record<string, string>, number])))
  if (s.sync) {
    const st = s.sync.stats
    metric('xvs_conn_sync_in_sync', 'gauge', '1 when this backup holds a full copy of the master\'s connection table', [[{ role: s.sync.role ?? 'none' }, s.sync.inSync ? 1 : 0]])
    metric('xvs_conn_sync_messages_total', 'counter', 'Connection sync messages', [[{ direction: 'sent' }, st.messagesSent], [{ direction: 'received' }, st.messagesReceived]])
    metric('xvs_conn_sync_entries_total', 'counter', 'Connection entries sent and installed', [[{ what: 'sent' }, st.entriesSent], [{ what: 'installed' }, st.entriesInstalled], [{ what: 'unmapped' }, st.unmapped]])
    metric('xvs_conn_sync_rejected_total', 'counter', 'Connection sync messages rejected, by reason', Object.entries(st.rejected).map(([reason, n]) => [{ reason }, n]))
  }
  return out.join('\n') + '\n'
}
