// SPDX-License-Identifier: GPL-2.0-only
// How failover reads: `xvs status` lines and the Prometheus text.
import t from 'tap'
import { formatFailoverStatus, renderFailoverMetrics, type FailoverStatus } from '../../src/ha/status'
import { VRRP_DROP_REASONS, type VrrpDropReason } from '../../src/ha/vrrp-instance'

const drops = Object.fromEntries(VRRP_DROP_REASONS.map((r) => [r, 0])) as Record<VrrpDropReason, number>
const stats = { advertsSent: 10, advertsReceived: 3, priorityZeroSent: 0, priorityZeroReceived: 0, becameMaster: 1, releasedMaster: 0, addressListErrors: 0, discardedLowerPriority: 0, drops: { ...drops, 'bad-ttl': 2 } }
const S: FailoverStatus = {
  instances: [
    { name: 'VI_1', interface: 'eth0', vrid: 51, family: 4, version: 3, state: 'MASTER', priority: 150, configuredPriority: 150, master: '10.0.0.1', preemptHold: false, group: undefined, addresses: ['10.0.0.100'], stats },
    { name: 'VI_2', interface: 'eth1', vrid: 52, family: 4, version: 2, state: 'BACKUP', priority: 80, configuredPriority: 100, master: '10.0.1.2', preemptHold: true, group: 'G', addresses: [], stats },
  ],
  sync: {
    role: 'backup', inSync: false, peers: [{ address: '10.0.0.2', inSync: false, lastHelloAgoMs: 400 }],
    stats: { messagesSent: 1, messagesReceived: 2, entriesSent: 0, entriesInstalled: 26, unmapped: 1, snapshotsSent: 0, snapshotsCompleted: 0, rejected: { short: 0, magic: 0, version: 0, length: 0, mac: 3, entry: 0, replay: 1, 'unknown-peer': 0, 'stale-nonce': 0, role: 0, type: 0 } },
  },
}

t.test('xvs status lines', async (t) => {
  t.same(formatFailoverStatus(S), [
    'vrrp VI_1: MASTER, priority 150, vrid 51 on eth0 (v3), master: this director (10.0.0.1); addresses 10.0.0.100',
    'vrrp VI_2: BACKUP, priority 80 (configured 100), vrid 52 on eth1 (v2), master: 10.0.1.2; preemption held until the connection table is synced; addresses -',
    'conn sync: backup, not in sync; peers 10.0.0.2 (hello 0.4 s ago); 0 entries sent, 26 installed, 1 unmapped, 4 messages rejected',
  ])
})

t.test('Prometheus text', async (t) => {
  const text = renderFailoverMetrics(S)
  t.match(text, /# TYPE xvs_vrrp_state gauge\nxvs_vrrp_state\{instance="VI_1",interface="eth0",vrid="51"\} 2\nxvs_vrrp_state\{instance="VI_2",interface="eth1",vrid="52"\} 1\n/)
  t.match(text, /xvs_vrrp_priority\{instance="VI_2",interface="eth1",vrid="52"\} 80/)
  t.match(text, /xvs_vrrp_preempt_held\{instance="VI_2",interface="eth1",vrid="52"\} 1/)
  t.match(text, /xvs_vrrp_adverts_dropped_total\{instance="VI_1",interface="eth0",vrid="51",reason="bad-ttl"\} 2/)
  t.match(text, /xvs_conn_sync_in_sync\{role="backup"\} 0/)
  t.match(text, /xvs_conn_sync_rejected_total\{reason="mac"\} 3/)
  t.match(text, /xvs_conn_sync_entries_total\{what="installed"\} 26/)
  t.ok(text.endsWith('\n'))
})
