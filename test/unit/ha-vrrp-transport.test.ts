// SPDX-License-Identifier: GPL-2.0-only
// The in-memory VRRP network: multicast fan-out per link, unicast to the address owner, loss, close.
import t from 'tap'
import { FakeClock } from '../../src/util/clock'
import { MemoryNetwork, type VrrpSendTarget } from '../../src/ha/vrrp-transport'

type Got = Array<[string, string, number, string, string | undefined]>
function setup(opts: { latencyMs?: number; lossRate?: number; seed?: number } = {}) {
  const clock = new FakeClock()
  const net = new MemoryNetwork({ clock, ...opts })
  const got: Record<string, Got> = { a: [], b: [], c: [], d: [] }
  const a = net.attach('a', [{ ifname: 'eth0', link: 'lan', addresses: ['10.0.0.1', 'fe80::a'] }, { ifname: 'eth1', link: 'dmz', addresses: ['10.9.0.1'] }])
  const b = net.attach('b', [{ ifname: 'ens3', link: 'lan', addresses: ['10.0.0.2', 'fe80::b'] }])
  const c = net.attach('c', [{ ifname: 'eth0', link: 'lan', addresses: ['10.0.0.3'] }])
  const d = net.attach('d', [{ ifname: 'eth1', link: 'dmz', addresses: ['10.9.0.4'] }])
  for (const [name, tr] of Object.entries({ a, b, c, d })) {
    tr.onPacket((p, src, ttl, ifname, dst) => got[name]!.push([p.toString('hex'), src, ttl, ifname, dst]))
  }
  return { clock, net, got, a, b, c, d }
}
const mc4: VrrpSendTarget = { ifname: 'eth0', family: 4, src: '10.0.0.1', dst: '224.0.0.18', hopLimit: 255 }

t.test('multicast reaches the other nodes on the link, through the clock', async (t) => {
  const { clock, got, a } = setup({ latencyMs: 2 })
  a.send(Buffer.from('aa', 'hex'), mc4)
  t.same(got.b, [], 'not synchronous')
  clock.advance(1)
  t.same(got.b, [], 'latency')
  clock.advance(1)
  t.same(got.b, [['aa', '10.0.0.1', 255, 'ens3', '224.0.0.18']], 'b, on its own interface name')
  t.same(got.c, [['aa', '10.0.0.1', 255, 'eth0', '224.0.0.18']], 'c')
  t.same(got.a, [], 'not back to the sender')
  t.same(got.d, [], 'not to another link')
  a.send(Buffer.from('bb', 'hex'), { ...mc4, ifname: 'eth1', src: '10.9.0.1' })
  clock.advance(2)
  t.same(got.d.map((x) => x[0]), ['bb'], 'the other link')
  a.send(Buffer.from('cc', 'hex'), { ...mc4, ifname: 'nope' })
  clock.advance(2)
  t.equal(got.b.length, 1, 'an interface the node does not have sends nothing')
})

t.test('unicast reaches only the destination address', async (t) => {
  const { clock, got, a } = setup()
  a.send(Buffer.from('01', 'hex'), { ...mc4, dst: '10.0.0.3' })
  a.send(Buffer.from('02', 'hex'), { ifname: 'eth0', family: 6, src: 'fe80::a', dst: 'fe80::b', hopLimit: 255 })
  a.send(Buffer.from('03', 'hex'), { ...mc4, dst: '10.0.0.99' })
  clock.advance(0)
  t.same(got.c.map((x) => x[0]), ['01'])
  t.same(got.b.map((x) => [x[0], x[4]]), [['02', 'fe80::b']])
})

t.test('loss: scripted and seeded', async (t) => {
  const s = setup()
  s.net.setLoss((d) => d.to === 'b')
  s.a.send(Buffer.from('01', 'hex'), mc4)
  s.clock.advance(0)
  t.equal(s.got.b.length, 0)
  t.equal(s.got.c.length, 1)
  t.same(s.net.stats, { sent: 1, delivered: 1, lost: 1 })
  t.equal(s.net.history.length, 1, 'history keeps the send')
  s.net.setLoss(undefined)
  s.a.send(Buffer.from('02', 'hex'), mc4)
  s.clock.advance(0)
  t.equal(s.got.b.length, 1)

  const run = (): number => {
    const r = setup({ lossRate: 0.3, seed: 42 })
    for (let i = 0; i < 200; i++) r.a.send(Buffer.from([i]), mc4)
    r.clock.advance(0)
    return r.got.b.length
  }
  const n = run()
  t.equal(run(), n, 'same seed, same losses')
  t.ok(n > 100 && n < 180, `about 70% delivered (${n}/200)`)
})

t.test('close stops both directions', async (t) => {
  const { clock, got, a, b } = setup()
  a.send(Buffer.from('01', 'hex'), mc4)
  b.close()
  clock.advance(0)
  t.equal(got.b.length, 0, 'in flight to a closed endpoint is dropped')
  t.equal(got.c.length, 1)
  b.send(Buffer.from('02', 'hex'), { ...mc4, ifname: 'ens3', src: '10.0.0.2' })
  clock.advance(0)
  t.equal(got.a.length, 0, 'a closed endpoint sends nothing')
})
