// SPDX-License-Identifier: GPL-2.0-only
// Two VRRP hosts in two namespaces over real raw sockets: an election, the master's adverts heard by
// the backup with TTL 255, and a takeover when the master stops (priority 0), for VRRPv2, v3 over IPv4
// and v3 over IPv6 (link-local sources, ff02::12).
import t from 'tap'
import { needsRoot } from '../helpers/root'
import { netnsPair, type NetnsEnd } from '../helpers/netns-pair'
import { withNetns } from '../../src/bpf'
import { RawVrrpTransport } from '../../src/ha/raw-transport'
import { VrrpHost } from '../../src/ha/vrrp-host'
import type { VrrpState } from '../../src/ha/vrrp-instance'
import { buildAdvert } from '../../src/ha/vrrp-packet'
import { RawSocket } from '../../src/net/socket'

const waitFor = async (what: string, cond: () => boolean, ms = 5000): Promise<void> => {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

const cases = [
  { name: 'VRRPv2 IPv4', version: 2 as const, family: 4 as const, advertMs: 1000 },
  { name: 'VRRPv3 IPv4', version: 3 as const, family: 4 as const, advertMs: 100 },
  { name: 'VRRPv3 IPv6', version: 3 as const, family: 6 as const, advertMs: 100 },
]

for (const c of cases) {
  t.test(`${c.name}: election and takeover over raw sockets`, needsRoot, async (t) => {
    const { a, b } = netnsPair(t)
    const src = (e: NetnsEnd) => (c.family === 4 ? e.ipv4 : e.linkLocal)
    const vip = c.family === 4 ? '10.77.0.50' : 'fe80::50'
    const make = (e: NetnsEnd, priority: number) => withNetns(e.ns, () => {
      const transport = new RawVrrpTransport()
      transport.open(e.ifname, c.family, true)
      const host = new VrrpHost({ transport })
      const inst = host.addInstance({
        name: 'VI_1', interface: e.ifname, vrid: 51, version: c.version, priority, advertIntervalMs: c.advertMs,
        primaryAddress: src(e), virtualAddresses: [vip],
        ...(c.version === 2 ? { auth: { type: 'pass' as const, password: 'secret' } } : {}),
      })
      return { transport, host, inst }
    })
    const A = make(a, 200)
    const B = make(b, 100)
    t.teardown(() => { A.host.close(); B.host.close() })
    const states: Array<[string, VrrpState]> = []
    A.inst.onTransition((_f, to) => states.push(['a', to]))
    B.inst.onTransition((_f, to) => states.push(['b', to]))
    B.host.start()
    A.host.start()
    await waitFor('a master', () => A.inst.state === 'MASTER', 6 * c.advertMs + 2000)
    await waitFor('b hears a', () => B.inst.stats.advertsReceived >= 2, 4 * c.advertMs + 1000)
    t.equal(B.inst.state, 'BACKUP', 'b stays backup')
    t.same(B.inst.masterSeen, { address: src(a), priority: 200 }, 'b knows the master')
    t.equal(Object.values(B.inst.stats.drops).reduce((x, y) => x + y, 0), 0, 'b dropped nothing')
    t.equal(B.transport.stats.sendErrors + A.transport.stats.sendErrors, 0, 'no send errors')
    const before = Date.now()
    A.inst.stop()
    await waitFor('b master', () => B.inst.state === 'MASTER', 4 * c.advertMs + 2000)
    const took = Date.now() - before
    // Priority 0 from the resigning master: the backup takes over after Skew_Time, not Master_Down.
    t.ok(took < B.inst.masterDownIntervalUs / 1000, `took over in ${took} ms (skew ${B.inst.skewTimeUs / 1000} ms)`)
    t.equal(B.inst.stats.priorityZeroReceived, 1, 'b heard the resignation')
  })
}

t.test('bad adverts on the wire are dropped and counted, and change nothing', needsRoot, async (t) => {
  const { a, b } = netnsPair(t)
  const B = withNetns(b.ns, () => {
    const transport = new RawVrrpTransport()
    transport.open(b.ifname, 4, true)
    const host = new VrrpHost({ transport })
    const inst = host.addInstance({ name: 'VI_1', interface: b.ifname, vrid: 51, version: 3, priority: 100, advertIntervalMs: 100, primaryAddress: b.ipv4, virtualAddresses: ['10.77.0.50'] })
    return { host, inst }
  })
  const tx = withNetns(a.ns, () => RawSocket.open({ family: 4, protocol: 112, ifname: a.ifname }))
  t.teardown(() => { B.host.close(); tx.close() })
  B.host.start()
  await waitFor('b master', () => B.inst.state === 'MASTER', 2000)
  const good = buildAdvert({ version: 3, family: 4, vrid: 51, priority: 200, maxAdverIntCs: 10, addresses: ['10.77.0.50'] }, { src: a.ipv4, dst: '224.0.0.18' })
  const send = (packet: Buffer, ttl: number) => withNetns(a.ns, () => { tx.setHopLimit(ttl, ttl); tx.send(packet, '224.0.0.18', { src: a.ipv4 }) })
  const badSum = Buffer.from(good); badSum[6]! ^= 0xff
  const v4 = Buffer.from(good); v4[0] = 0x41
  send(good, 254)
  send(badSum, 255)
  send(v4, 255)
  send(good.subarray(0, 6), 255)
  await waitFor('four drops', () => Object.values(B.inst.stats.drops).reduce((x, y) => x + y, 0) >= 4, 2000)
  const d = Object.fromEntries(Object.entries(B.inst.stats.drops).filter(([, n]) => n > 0))
  t.same(d, { 'bad-ttl': 1, 'bad-checksum': 1, 'bad-version': 1, 'too-short': 1 }, 'each counted under its reason')
  t.equal(B.inst.state, 'MASTER', 'a higher priority in a bad advert moved nothing')
  send(good, 255)
  await waitFor('b steps down for the good one', () => B.inst.state === 'BACKUP', 2000)
  t.pass('the same advert with TTL 255 makes b BACKUP')
})
