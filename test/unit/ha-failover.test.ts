// SPDX-License-Identifier: GPL-2.0-only
// FailoverManager with a FakeClock, a MemoryNetwork and a recording fake system: the order of the
// takeover actions (hook, addresses, gratuitous ARP / NA on keepalived's schedule, notify), release on
// BACKUP / FAULT / stop, tracking of interfaces and services, and the preemption hold that waits for
// connection sync.
import t from 'tap'
import { FakeClock } from '../../src/util/clock'
import { MemoryNetwork } from '../../src/ha/vrrp-transport'
import { FailoverManager, type ConnSyncPeer } from '../../src/ha/failover'
import type { HaSystem, InterfaceInfo, PlacedAddress } from '../../src/ha/system'
import { connSync, emptyVrrp, vrrpInstance } from '../../src/model/vrrp'
import type { VrrpModel } from '../../src/model/types'
import { ARP_OP_REQUEST, ETHERTYPE_ARP, ETHERTYPE_IPV6 } from '../../src/ha/garp'

type Ev = [number, string, ...unknown[]]

class FakeSystem implements HaSystem {
  readonly events: Ev[] = []
  readonly links = new Map<string, boolean>([['eth0', true], ['eth1', true]])
  constructor(private readonly clock: FakeClock, readonly me: string, readonly ipv4: string, readonly mac: string) {}
  private ev(...e: unknown[]): void { this.events.push([this.clock.now(), ...(e as [string])]) }
  addAddress(a: PlacedAddress): void { this.ev('add', `${a.address}/${a.prefix}`, a.dev, a.label) }
  removeAddress(a: PlacedAddress): void { this.ev('del', `${a.address}/${a.prefix}`, a.dev) }
  interfaceInfo(ifname: string): InterfaceInfo | undefined {
    if (!this.links.has(ifname)) return undefined
    return { ifindex: 2, mac: this.mac, up: this.links.get(ifname)!, ipv4: [{ address: this.ipv4, prefix: 24 }], ipv6: [{ address: `fe80::${this.me === 'a' ? 1 : 2}`, prefix: 64, linkLocal: true }] }
  }
  linkStates(): Map<string, boolean> { return new Map(this.links) }
  sendFrame(ifname: string, frame: Buffer): void {
    const type = frame.readUInt16BE(12)
    this.ev('frame', ifname, type === ETHERTYPE_ARP ? `arp ${frame.readUInt16BE(20) === ARP_OP_REQUEST ? 'request' : 'reply'} ${frame.subarray(28, 32).join('.')}` : type === ETHERTYPE_IPV6 ? 'na' : 'other')
  }
  close(): void { this.ev('close') }
  of(kind: string): Ev[] { return this.events.filter((e) => e[1] === kind) }
}

function vrrpModel(edit: (v: VrrpModel) => void = () => {}): VrrpModel {
  const v = emptyVrrp()
  v.version = 3
  v.garp = { masterDelay: 5, masterRepeat: 2, masterRefresh: 0, masterRefreshRepeat: 1, interval: 0 }
  v.instances.push(vrrpInstance('VI_1', 'eth0', 51, {
    virtualAddresses: [{ address: '10.0.0.100', prefix: 24, label: 'eth0:vip' }, { address: '10.0.0.101', prefix: 32 }],
    excludedAddresses: [{ address: '2001:db8::100', prefix: 64, dev: 'eth1' }],
    trackInterfaces: [{ name: 'eth1', weight: 0 }],
    trackServices: [{ service: 'web', weight: 0 }],
    notify: { master: '/n/master.sh', backup: '/n/backup.sh', fault: '/n/fault.sh', stop: '/n/stop.sh', any: '/n/any.sh' },
  }))
  edit(v)
  return v
}

const SERVICES = [{ kind: 'tcp' as const, vip: '10.0.0.100', port: 80, name: 'web', scheduler: 'wlc' as const, schedFlags: [], realServers: [] }]

function director(net: MemoryNetwork, clock: FakeClock, name: 'a' | 'b', priority: number, edit?: (v: VrrpModel) => void, sync?: ConnSyncPeer) {
  const ipv4 = name === 'a' ? '10.0.0.1' : '10.0.0.2'
  const sys = new FakeSystem(clock, name, ipv4, name === 'a' ? '02:00:00:00:00:0a' : '02:00:00:00:00:0b')
  const v = vrrpModel((m) => {
    m.instances[0]!.priority = priority
    edit?.(m)
  })
  const transport = net.attach(name, [{ ifname: 'eth0', link: 'lan', addresses: [ipv4] }])
  const scripts: Array<[number, string[]]> = []
  const hooks: Ev[] = []
  const fm = new FailoverManager({
    vrrp: v, services: SERVICES, clock, transport, system: sys, linkPollMs: 1000,
    runScript: (argv) => scripts.push([clock.now(), [...argv]]),
    hooks: {
      serve: (i, a) => { hooks.push([clock.now(), 'serve', i, [...a]]); sys.events.push([clock.now(), 'serve-hook']) },
      release: (i, a) => { hooks.push([clock.now(), 'release', i, [...a]]); sys.events.push([clock.now(), 'release-hook']) },
      stateChange: (i, f, to, why) => hooks.push([clock.now(), 'state', i, f, to, why]),
    },
    ...(sync ? { connSync: sync } : {}),
  })
  return { fm, sys, transport, scripts, hooks }
}

t.test('takeover: hook, addresses, announcements on schedule, notify; then release on BACKUP', async (t) => {
  const clock = new FakeClock()
  const net = new MemoryNetwork({ clock })
  const a = director(net, clock, 'a', 200)
  const b = director(net, clock, 'b', 100)
  b.fm.start()
  a.fm.start()
  t.same(a.sys.of('del').map((e) => e[2]), ['10.0.0.100/24', '10.0.0.101/32', '2001:db8::100/64'], 'leftovers removed at start')
  t.same(a.scripts, [[0, ['/n/backup.sh']], [0, ['/n/any.sh', 'INSTANCE', 'VI_1', 'BACKUP', '200']]], 'startup: notify backup with TYPE NAME STATE PRIORITY')
  // Master_Down_Interval for priority 200, 1 s adverts, v3: 3 s + (56 * 100 cs * 625/16) us = 3.21875 s
  clock.advance(3218)
  t.equal(a.fm.status()[0]!.state, 'BACKUP')
  clock.advance(1)
  const st = a.fm.status()[0]!
  t.equal(st.state, 'MASTER', 'a took over at Master_Down_Interval')
  t.equal(st.master, '10.0.0.1')
  const at = 3218.75
  const evs = a.sys.events.filter((e) => e[0] === at).map((e) => e.slice(1))
  t.same(evs.slice(0, 4), [
    ['serve-hook'],
    ['add', '10.0.0.100/24', 'eth0', 'eth0:vip'],
    ['add', '10.0.0.101/32', 'eth0', undefined],
    ['add', '2001:db8::100/64', 'eth1', undefined],
  ], 'serve hook first, then every address with its prefix, device and label')
  t.same(a.hooks.find((h) => h[1] === 'serve'), [at, 'serve', 'VI_1', ['10.0.0.100', '10.0.0.101', '2001:db8::100']])
  t.same(a.scripts.slice(2), [[at, ['/n/master.sh']], [at, ['/n/any.sh', 'INSTANCE', 'VI_1', 'MASTER', '200']]], 'then notify master')
  clock.advance(10_000)
  const frames = a.sys.of('frame').map((e) => [e[0] - at, e[2], e[3]])
  t.same(frames, [
    [0, 'eth0', 'arp request 10.0.0.100'], [0, 'eth0', 'arp request 10.0.0.101'], [0, 'eth1', 'na'],
    [0, 'eth0', 'arp request 10.0.0.100'], [0, 'eth0', 'arp request 10.0.0.101'], [0, 'eth1', 'na'],
    [5000, 'eth0', 'arp request 10.0.0.100'], [5000, 'eth0', 'arp request 10.0.0.101'], [5000, 'eth1', 'na'],
    [5000, 'eth0', 'arp request 10.0.0.100'], [5000, 'eth0', 'arp request 10.0.0.101'], [5000, 'eth1', 'na'],
  ], 'garp_master_repeat 2 at once and again after garp_master_delay 5 s, per address, on its device')
  t.equal(b.fm.status()[0]!.state, 'BACKUP')
  t.equal(b.fm.status()[0]!.master, '10.0.0.1', 'b knows the master')

  // A higher-priority master appears: a steps down at once (no announcements after).
  const c = director(net, clock, 'b', 250)
  c.fm.start()
  clock.advance(3500)
  t.equal(a.fm.status()[0]!.state, 'BACKUP', 'a preempted by priority 250')
  const down = a.sys.events.findIndex((e) => e[1] === 'release-hook')
  t.same(a.sys.events.slice(down - 3, down + 1).map((e) => e.slice(1)), [
    ['del', '10.0.0.100/24', 'eth0'], ['del', '10.0.0.101/32', 'eth0'], ['del', '2001:db8::100/64', 'eth1'], ['release-hook'],
  ], 'addresses removed, then the release hook')
  t.same(a.scripts.slice(-2).map((s) => s[1]), [['/n/backup.sh'], ['/n/any.sh', 'INSTANCE', 'VI_1', 'BACKUP', '200']])
  const n = a.sys.of('frame').length
  clock.advance(20_000)
  t.equal(a.sys.of('frame').length, n, 'no announcement once BACKUP')
  for (const d of [a, b, c]) d.fm.stop()
})

t.test('a silent master is replaced after Master_Down_Interval; refresh bursts while MASTER', async (t) => {
  const clock = new FakeClock()
  const net = new MemoryNetwork({ clock })
  const a = director(net, clock, 'a', 200)
  const b = director(net, clock, 'b', 100, (v) => { v.garp.masterRefresh = 60; v.garp.masterDelay = 0 })
  a.fm.start()
  b.fm.start()
  clock.advance(5000)
  t.equal(a.fm.status()[0]!.state, 'MASTER')
  const killedAt = clock.now()
  a.transport.close() // a crash: no priority-0 advert
  // b: 3 * 1 s + skew (256 - 100) * 100 cs * 625 / 16 us = 3.609375 s after the last advert it heard
  clock.advance(3700)
  t.equal(b.fm.status()[0]!.state, 'MASTER', 'b took over')
  const tookAt = b.hooks.find((h) => h[1] === 'state' && h[4] === 'MASTER')![0] as number
  t.ok(tookAt - killedAt <= 3609.375 + 1000, `took over ${tookAt - killedAt} ms after the crash, within Master_Down_Interval of the last advert`)
  t.equal(b.hooks.find((h) => h[1] === 'state' && h[4] === 'MASTER')![5], 'master-down')
  const first = b.sys.of('frame').length
  t.equal(first, 6, 'one burst of 2 x 3 addresses (garp_master_delay 0: no second burst)')
  clock.advance(60_000)
  t.equal(b.sys.of('frame').length, first + 3, 'a refresh burst of 1 x 3 after garp_master_refresh 60 s')
  clock.advance(60_000)
  t.equal(b.sys.of('frame').length, first + 6, 'and again')
  b.fm.stop()
  a.fm.stop()
})

t.test('tracking: a tracked interface or service down faults the instance and releases the addresses', async (t) => {
  const clock = new FakeClock()
  const net = new MemoryNetwork({ clock })
  const a = director(net, clock, 'a', 200, (v) => { v.instances[0]!.state = 'MASTER' })
  a.fm.start()
  clock.advance(1500)
  t.equal(a.fm.status()[0]!.state, 'MASTER', 'state MASTER: takes over after one interval and the minimum skew')
  a.sys.links.set('eth1', false)
  clock.advance(1000)
  t.equal(a.fm.status()[0]!.state, 'FAULT', 'link poll saw eth1 down')
  t.ok(a.sys.of('release-hook').length === 1, 'released')
  t.same(a.scripts.slice(-2).map((s) => s[1]), [['/n/fault.sh'], ['/n/any.sh', 'INSTANCE', 'VI_1', 'FAULT', '200']])
  a.sys.links.set('eth1', true)
  clock.advance(1000)
  t.equal(a.fm.status()[0]!.state, 'BACKUP', 'recovered to BACKUP')
  clock.advance(4000)
  t.equal(a.fm.status()[0]!.state, 'MASTER', 'and MASTER again with nobody else around')
  a.fm.setServiceUp('web', false)
  t.equal(a.fm.status()[0]!.state, 'FAULT', 'every real server of web down')
  a.fm.setServiceUp('tcp:10.0.0.100:80', true)
  t.equal(a.fm.status()[0]!.state, 'BACKUP', 'the service key names the same track')
  a.fm.stop()
  t.same(a.scripts.slice(-2).map((s) => s[1]), [['/n/stop.sh'], ['/n/any.sh', 'INSTANCE', 'VI_1', 'STOP', '200']], 'notify stop')
})

class FakeSync implements ConnSyncPeer {
  role: 'master' | 'backup' | undefined
  inSync = false
  readonly roles: string[] = []
  private cbs: Array<(s: boolean) => void> = []
  setRole(role: 'master' | 'backup'): void {
    if (role !== this.role) this.roles.push(role)
    if (role !== this.role && role === 'backup') this.inSync = false
    this.role = role
  }
  onInSyncChange(cb: (s: boolean) => void): void { this.cbs.push(cb) }
  set(v: boolean): void { this.inSync = v; for (const cb of this.cbs) cb(v) }
}

t.test('a recovered master waits for connection sync before preempting', async (t) => {
  const clock = new FakeClock()
  const net = new MemoryNetwork({ clock })
  const key = 'k'.repeat(32)
  const withSync = (v: VrrpModel): void => { v.connSync = connSync('VI_1', ['10.0.0.9'], { key }) }
  const syncB = new FakeSync()
  const b = director(net, clock, 'b', 100, withSync, syncB)
  b.fm.start()
  clock.advance(4000)
  t.equal(b.fm.status()[0]!.state, 'MASTER', 'b alone becomes master (no hold against a silent network)')
  t.same(syncB.roles, ['backup', 'master'], 'b sends the table while MASTER')

  const syncA = new FakeSync()
  const a = director(net, clock, 'a', 200, (v) => { withSync(v); v.instances[0]!.state = 'MASTER' }, syncA)
  a.fm.start()
  t.equal(a.fm.status()[0]!.preemptHold, true, 'a holds preemption: it has no copy of the table')
  clock.advance(20_000)
  t.equal(a.fm.status()[0]!.state, 'BACKUP', 'a stays BACKUP under a live lower-priority master')
  t.equal(b.fm.status()[0]!.state, 'MASTER')
  const syncedAt = clock.now()
  syncA.set(true)
  t.equal(a.fm.status()[0]!.preemptHold, false, 'released once in sync')
  clock.advance(4000)
  t.equal(a.fm.status()[0]!.state, 'MASTER', 'a preempts')
  const at = a.hooks.find((h) => h[1] === 'state' && h[4] === 'MASTER')![0] as number
  t.ok(at - syncedAt <= 3219 + 1000, `within Master_Down_Interval (+ one advert) of the sync: ${at - syncedAt} ms`)
  t.equal(a.hooks.find((h) => h[1] === 'state' && h[4] === 'MASTER')![5], 'preempt')
  t.equal(b.fm.status()[0]!.state, 'BACKUP', 'b stepped down')
  t.same(syncA.roles, ['backup', 'master'])
  t.same(syncB.roles, ['backup', 'master', 'backup'])
  t.equal(b.fm.status()[0]!.preemptHold, true, 'b, now a backup without a copy of the table, holds in turn')
  a.fm.stop()
  b.fm.stop()
})

t.test('hold_timeout: preempt anyway when sync does not complete', async (t) => {
  const clock = new FakeClock()
  const net = new MemoryNetwork({ clock })
  const withSync = (v: VrrpModel): void => { v.connSync = connSync('VI_1', ['10.0.0.9'], { key: 'k'.repeat(32), holdTimeout: 30 }) }
  const b = director(net, clock, 'b', 100, withSync, new FakeSync())
  b.fm.start()
  clock.advance(4000)
  const a = director(net, clock, 'a', 200, withSync, new FakeSync())
  a.fm.start()
  clock.advance(29_000)
  t.equal(a.fm.status()[0]!.state, 'BACKUP', 'held for 29 s')
  clock.advance(5000)
  t.equal(a.fm.status()[0]!.state, 'MASTER', 'preempted after hold_timeout 30 s')
  a.fm.stop()
  b.fm.stop()
})

t.test('configuration errors at construction', async (t) => {
  const clock = new FakeClock()
  const net = new MemoryNetwork({ clock })
  const sys = new FakeSystem(clock, 'a', '10.0.0.1', '02:00:00:00:00:0a')
  const v = vrrpModel((m) => { m.instances[0]!.interface = 'eth9' })
  t.throws(() => new FailoverManager({ vrrp: v, clock, system: sys, transport: net.attach('x', []) }), { code: 'ECONFIG', message: /interface eth9 of vrrp instance VI_1 does not exist/ })
  const v6 = vrrpModel((m) => { m.instances[0]!.virtualAddresses = [{ address: 'fe80::100', prefix: 64 }]; m.instances[0]!.excludedAddresses = [] })
  const fm = new FailoverManager({ vrrp: v6, clock, system: sys, transport: net.attach('y', []), runScript: () => {} })
  t.equal(fm.instance('VI_1')!.config.primaryAddress, 'fe80::1', 'IPv6 adverts come from the link-local address')
  fm.stop()
})
