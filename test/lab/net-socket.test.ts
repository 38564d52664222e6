// SPDX-License-Identifier: GPL-2.0-only
// Raw IP sockets and AF_PACKET sends over a real veth between two namespaces: multicast and unicast
// with a chosen source, TTL / hop limit and destination reported on receipt, readiness polling on the
// event loop, and a gratuitous ARP that moves a neighbour entry.
import t from 'tap'
import { needsRoot, sh } from '../helpers/root'
import { netnsPair } from '../helpers/netns-pair'
import { withNetns } from '../../src/bpf'
import { PacketSocket, RawSocket, type RawPacket } from '../../src/net/socket'
import { buildGratuitousArp } from '../../src/ha/garp'

const PROTO = 112

function next(sock: RawSocket, ms = 3000): Promise<RawPacket> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no packet within ' + ms + ' ms')), ms)
    sock.listen((p) => {
      clearTimeout(timer)
      resolve(p)
    })
  })
}

t.test('IPv4: multicast and unicast, source, TTL, destination, ifindex', needsRoot, async (t) => {
  const { a, b } = netnsPair(t)
  const tx = withNetns(a.ns, () => RawSocket.open({ family: 4, protocol: PROTO, ifname: a.ifname }))
  const rx = withNetns(b.ns, () => RawSocket.open({ family: 4, protocol: PROTO, ifname: b.ifname }))
  t.teardown(() => { tx.close(); rx.close() })
  tx.setHopLimit(255, 255)
  tx.setMulticastLoop(false)
  tx.setTos(0xc0)
  withNetns(b.ns, () => rx.join('224.0.0.18', b.ifname))
  const got = next(rx)
  const payload = Buffer.from('2101640100010000', 'hex')
  t.equal(withNetns(a.ns, () => tx.send(payload, '224.0.0.18', { src: a.ipv4 })), 8, 'sent 8 bytes')
  const p = await got
  t.equal(p.src, a.ipv4, 'source')
  t.equal(p.dst, '224.0.0.18', 'destination (IP_PKTINFO)')
  t.equal(p.hops, 255, 'TTL 255 (IP_RECVTTL)')
  t.equal(p.ifindex, b.ifindex, 'received on veth0')
  t.equal(p.data[0]! >> 4, 4, 'IPv4 raw sockets hand up the header')
  t.equal(p.data[1], 0xc0, 'TOS 0xc0')
  t.equal(p.data[8], 255, 'TTL in the header')
  t.same(p.data.subarray(20), payload, 'payload')
  rx.close()

  const rx2 = withNetns(b.ns, () => RawSocket.open({ family: 4, protocol: PROTO, ifname: b.ifname }))
  t.teardown(() => rx2.close())
  const got2 = next(rx2)
  withNetns(a.ns, () => tx.send(payload, b.ipv4, { src: a.ipv4 }))
  const u = await got2
  t.equal(u.dst, b.ipv4, 'unicast destination')
  t.equal(u.hops, 255, 'unicast TTL 255')
  t.equal(rx2.recv(), undefined, 'nothing else queued: recv answers undefined')
})

t.test('IPv6: link-local source, hop limit 255, payload only', needsRoot, async (t) => {
  const { a, b } = netnsPair(t)
  const tx = withNetns(a.ns, () => RawSocket.open({ family: 6, protocol: PROTO, ifname: a.ifname }))
  const rx = withNetns(b.ns, () => RawSocket.open({ family: 6, protocol: PROTO, ifname: b.ifname }))
  t.teardown(() => { tx.close(); rx.close() })
  tx.setHopLimit(255, 255)
  tx.setMulticastLoop(false)
  withNetns(b.ns, () => rx.join('ff02::12', b.ifname))
  const got = next(rx)
  const payload = Buffer.from('3101640100640000', 'hex')
  withNetns(a.ns, () => tx.send(payload, 'ff02::12', { src: a.linkLocal, ifindex: a.ifindex }))
  const p = await got
  t.equal(p.src, a.linkLocal, 'link-local source, no zone id')
  t.equal(p.dst, 'ff02::12', 'destination (IPV6_PKTINFO)')
  t.equal(p.hops, 255, 'hop limit (IPV6_RECVHOPLIMIT)')
  t.same(p.data, payload, 'payload only')
})

t.test('argument checks come before the kernel', needsRoot, async (t) => {
  t.throws(() => RawSocket.open({ family: 5 as 4, protocol: PROTO }), { code: 'EARG' })
  t.throws(() => RawSocket.open({ family: 4, protocol: 0 }), { code: 'EARG' })
  t.throws(() => RawSocket.open({ family: 4, protocol: PROTO, ifname: 'a/b' }), { code: 'EARG' })
  const { a, b } = netnsPair(t)
  withNetns(a.ns, () => {
    const s = RawSocket.open({ family: 4, protocol: PROTO })
    t.throws(() => s.send(Buffer.alloc(1), 'fe80::1'), { code: 'EARG' }, 'an IPv6 destination on an IPv4 socket')
    t.throws(() => s.setChecksumOffset(6), { code: 'EARG' }, 'IPV6_CHECKSUM on IPv4')
    t.throws(() => s.send(Buffer.alloc(1), b.ipv4, { src: '10.77.0.200' }), { name: 'BpfError' }, 'a source that is not local: refused by the kernel')
    t.throws(() => s.send(Buffer.alloc(1), '192.0.2.1'), { code: 'ENETUNREACH' }, 'no route')
    s.close()
    t.throws(() => s.recv(), { code: 'EARG' }, 'closed')
    t.throws(() => RawSocket.open({ family: 4, protocol: PROTO, ifname: 'nosuch0' }), { code: 'ENODEV' })
  })
})

t.test('AF_PACKET: a gratuitous ARP moves the peer\'s neighbour entry', needsRoot, async (t) => {
  const { a, b } = netnsPair(t)
  const vip = '10.77.0.99'
  sh(['ip', '-n', b.ns, 'neigh', 'replace', vip, 'lladdr', '02:00:00:00:00:01', 'dev', b.ifname, 'nud', 'stale'])
  const sock = withNetns(a.ns, () => PacketSocket.open(a.ifname))
  t.teardown(() => sock.close())
  t.equal(sock.send(buildGratuitousArp({ ip: vip, mac: a.mac })), 42, 'a 42-byte frame')
  let lladdr = ''
  for (let i = 0; i < 50 && lladdr !== a.mac; i++) {
    await new Promise((r) => setTimeout(r, 20))
    const n = JSON.parse(sh(['ip', '-n', b.ns, '-j', 'neigh', 'show', vip])) as Array<{ lladdr?: string }>
    lladdr = n[0]?.lladdr ?? ''
  }
  t.equal(lladdr, a.mac, 'the neighbour entry now names the sender')
  t.throws(() => sock.send(Buffer.alloc(10)), { code: 'EARG' }, 'shorter than an Ethernet header')
})
