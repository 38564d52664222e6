// SPDX-License-Identifier: GPL-2.0-only
// Failover as people read it: the status the daemon reports, its Prometheus text, and the lines of
// `xvs status`. Types only from the runtime, so the CLI can print it without loading the HA stack.
import type { VrrpInstanceStatus } from './failover'
import type { ConnSyncStats } from './sync'

export interface FailoverStatus {
  instances: VrrpInstanceStatus[]
  sync: ({ role: string | undefined; inSync: boolean; peers: Array<{ address: string; inSync: boolean; lastHelloAgoMs: number | undefined }> } & { stats: ConnSyncStats }) | null
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

/** Lines for `xvs status`: each instance's state, priority and master, and the sync. */
export function formatFailoverStatus(s: FailoverStatus): string[] {
  const lines = s.instances.map((i) => {
    const prio = i.priority === i.configuredPriority ? `priority ${i.priority}` : `priority ${i.priority} (configured ${i.configuredPriority})`
    const master = i.state === 'MASTER' ? `master: this director (${i.master ?? '?'})` : `master: ${i.master ?? 'none heard'}`
    const hold = i.preemptHold ? '; preemption held until the connection table is synced' : ''
    return `vrrp ${i.name}: ${i.state}, ${prio}, vrid ${i.vrid} on ${i.interface} (v${i.version}), ${master}${hold}; addresses ${i.addresses.join(' ') || '-'}`
  })
  if (s.sync) {
    const st = s.sync.stats
    const rejected = Object.values(st.rejected).reduce((a, b) => a + b, 0)
    const peers = s.sync.peers.map((p) => `${p.address}${p.lastHelloAgoMs !== undefined ? ` (hello ${(p.lastHelloAgoMs / 1000).toFixed(1)} s ago)` : ''}`).join(', ')
    lines.push(`conn sync: ${s.sync.role ?? 'idle'}${s.sync.role === 'backup' ? (s.sync.inSync ? ', in sync' : ', not in sync') : ''}; peers ${peers}; ` +
      `${st.entriesSent} entries sent, ${st.entriesInstalled} installed, ${st.unmapped} unmapped, ${rejected} messages rejected`)
  }
  return lines
}
