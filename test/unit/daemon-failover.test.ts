// SPDX-License-Identifier: GPL-2.0-only
// The daemon hosting failover: a config with a vrrp section runs VRRP (here on a MemoryNetwork, with a
// recording fake system), health of a tracked service faults the instance, status and /metrics show
// the instances, a reload that changes the vrrp section is reported, stop resigns and releases.
import t from 'tap'
import { Daemon } from '../../src/daemon/daemon'
import type { DataplaneHost, HostLoadRequest, KernelView } from '../../src/daemon/host'
import type { ConnTable } from '../../src/daemon/sweeper'
import type { ApplyResult } from '../../src/dataplane/writer'
import type { Model } from '../../src/model/types'
import type { Checker, CheckResult, CheckSpec } from '../../src/health/types'
import type { HaSystem, InterfaceInfo, PlacedAddress } from '../../src/ha/system'
import { FakeClock } from '../../src/util/clock'
import { MemoryNetwork } from '../../src/ha/vrrp-transport'

const RESULT: ApplyResult = { services: { added: 0, removed: 0, changed: 0, unchanged: 0 }, reals: { added: 0, removed: 0, changed: 0 }, tablesWritten: 0, slotsWritten: 0 }

class Host implements DataplaneHost {
  runningInterfaces(): string[] { return [] }
  load(req: HostLoadRequest) { return { adopted: false, attached: req.ifaces, replaced: [], progId: 1 } }
  detach(): void {}
  apply(_m: Model): ApplyResult { return RESULT }
  info() { return { progId: 1, connsMapId: 2, abiVersion: 1, connTableSize: 16, attachments: [] } }
  view(): KernelView { return { services: [], reals: [] } }
  stats() { return { services: new Map(), reals: new Map() } }
  counters() { return {} }
  conns(): ConnTable { return { keySize: 40, valueBytes: 32, maxEntries: 16, lookupBatchRaw: () => ({ keys: Buffer.alloc(0), values: Buffer.alloc(0), count: 0, token: null }), lookup: () => null, deleteBatchRaw: () => 0 } }
  timeouts() { return { tcp_timeout_s: 0, tcp_fin_timeout_s: 0, udp_timeout_s: 0 } }
  serviceIndex() { return { ids: new Map<string, number>() } }
  unload(): void {}
  close(): void {}
}

class System implements HaSystem {
  readonly addresses = new Set<string>()
  addAddress(a: PlacedAddress): void { this.addresses.add(`${a.address}/${a.prefix}`) }
  removeAddress(a: PlacedAddress): void { this.addresses.delete(`${a.address}/${a.prefix}`) }
  interfaceInfo(): InterfaceInfo { return { ifindex: 2, mac: '02:00:00:00:00:01', up: true, ipv4: [{ address: '10.0.0.1', prefix: 24 }], ipv6: [] } }
  linkStates(): Map<string, boolean> { return new Map([['eth0', true]]) }
  sendFrame(): void {}
  close(): void {}
}

const CONFIG = (prio = 150) => `settings:
  interfaces: [eth0]
services:
  - name: web
    vip: 10.0.0.100
    port: 80
    check: { type: tcp, interval: 1, timeout: 0.5, fall: 1, rise: 1, retry: 0 }
    real_servers:
      - { address: 10.0.0.11, method: dr }
vrrp:
  instances:
    - { name: VI_1, interface: eth0, vrid: 51, priority: ${prio}, virtual_addresses: [10.0.0.100/24], track_services: [web] }
`

t.test('the daemon runs failover from the config\'s vrrp section', async (t) => {
  const clock = new FakeClock(1000)
  const net = new MemoryNetwork({ clock })
  const sys = new System()
  const up = new Map<string, boolean>()
  const files = new Map([['/x.yaml', CONFIG()]])
  const d = new Daemon({
    config: '/x.yaml', clock, host: new Host(), socket: null, metrics: null, sweeper: false, rateIntervalMs: 0,
    readFile: (p) => files.get(p)!,
    createChecker: (spec: CheckSpec): Checker => ({ type: spec.type, run: (target) => Promise.resolve<CheckResult>({ ok: up.get(target.address) ?? true, detail: '', latencyMs: 1 }) }),
    health: { spreadMs: 0 },
    resolve: (address) => ({ address, ifname: 'eth0', ifindex: 2, srcMac: '02:00:00:00:00:01', dstMac: '02:00:00:00:00:02', mtu: 1500 }),
    failover: { failover: { transport: net.attach('me', [{ ifname: 'eth0', addresses: ['10.0.0.1'] }]), system: sys, runScript: () => {}, linkPollMs: 0 } },
  })
  t.teardown(() => d.stop())
  await d.start()
  t.match(d.status().vrrp, { instances: [{ name: 'VI_1', state: 'BACKUP', priority: 150, vrid: 51 }], sync: null })
  await clock.advanceAsync(4000)
  t.equal(d.status().vrrp!.instances[0]!.state, 'MASTER', 'alone on the link: MASTER after Master_Down_Interval')
  t.ok(sys.addresses.has('10.0.0.100/24'), 'the VIP is added')
  const text = d.metricsText()
  t.match(text, /xvs_vrrp_state\{instance="VI_1",interface="eth0",vrid="51"\} 2/)
  t.match(text, /xvs_vrrp_priority\{instance="VI_1",interface="eth0",vrid="51"\} 150/)
  up.set('10.0.0.11', false)
  await clock.advanceAsync(1000)
  t.equal(d.status().vrrp!.instances[0]!.state, 'FAULT', 'the only real server of the tracked service is down: FAULT')
  t.notOk(sys.addresses.has('10.0.0.100/24'), 'the VIP is released')
  up.set('10.0.0.11', true)
  await clock.advanceAsync(1000)
  t.equal(d.status().vrrp!.instances[0]!.state, 'BACKUP', 'back to BACKUP when it is up again')
  files.set('/x.yaml', CONFIG(200))
  t.match(d.reload().warnings, [/the vrrp section changed/])
  await clock.advanceAsync(4000)
  t.equal(d.status().vrrp!.instances[0]!.state, 'MASTER')
  await d.stop()
  t.notOk(sys.addresses.has('10.0.0.100/24'), 'stop releases the VIP')
  t.equal(d.status().vrrp, null)
})
