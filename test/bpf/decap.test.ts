// SPDX-License-Identifier: GPL-2.0-only
// The tun real server's decap program (bpf/decap.bpf.c, xvs_decap) through BPF_PROG_TEST_RUN: all
// four tunnel kinds give back the original frame exactly, VLAN tags and outer options included;
// a director's own tun output round-trips; everything else passes untouched or, if broken, drops.
import t from 'tap'
import { needsRoot } from '../helpers/root'
import { CLIENT_MAC, Decap, Director, DIRECTOR_MAC, runRow, type FixtureRow } from '../helpers/director'
import { FwdMethod, Proto, Sched } from '../../src/dataplane/abi'
import { arp, ether, ipv4, ipv6, parseFrame, rawPayload, tcp, udp, type IpPacket, type VlanTag } from '../../src/lab/packet'

const REAL_MAC = '02:00:00:00:06:01'
const DIR_MAC = '02:00:00:00:0e:01'
const RIP4 = '10.1.0.2'
const RIP6 = 'fd00:3::2'
const DIP4 = '192.168.0.1'
const DIP6 = 'fd00::1'

const inner4 = ipv4({ src: '10.0.0.1', dst: '10.0.0.11', df: true, ttl: 50, tos: 0x10 }, tcp({ sport: 40000, dport: 80, flags: 'S', seq: 7, payload: 'hello' }))
const inner6 = ipv6({ src: 'fd00:1::1', dst: 'fd00:2::11', hopLimit: 33 }, udp({ sport: 5353, dport: 53, payload: 'query' }))
const outer4 = (inner: IpPacket, dst = RIP4, extra: Partial<Parameters<typeof ipv4>[0]> = {}): IpPacket =>
  ipv4({ src: DIP4, dst, df: true, ttl: 64, id: 0x77, ...extra }, inner)
const outer6 = (inner: IpPacket, dst = RIP6): IpPacket => ipv6({ src: DIP6, dst, flowLabel: 0x12345 }, inner)
const frame = (ip: IpPacket | ReturnType<typeof arp>, vlan?: number | VlanTag, padTo?: number): Buffer =>
  ether({ dst: REAL_MAC, src: DIR_MAC, ...(vlan === undefined ? {} : { vlan }), ...(padTo === undefined ? {} : { padTo }) }, ip)

/** In: the tunnel packet. Out: the frame as it was before the director encapsulated it. */
const decapRow = (description: string, outer: IpPacket, inner: IpPacket, counter: string, vlan?: number | VlanTag): FixtureRow =>
  ({ description, input: frame(outer, vlan), verdict: 'pass', output: frame(inner, vlan), counters: { [counter]: 1 } })

function setup(d: Decap): void {
  d.addAddress(RIP4)
  d.addAddress(RIP6)
}

t.test('decap: the four tunnel kinds give back the original frame', needsRoot, async (t) => {
  const d = Decap.load(t)
  setup(d)
  const rows: FixtureRow[] = [
    decapRow('IPv4 in IPv4 (protocol 4)', outer4(inner4), inner4, 'decap_ipip'),
    decapRow('IPv6 in IPv4 (protocol 41): the ethertype becomes IPv6', outer4(inner6), inner6, 'decap_ip6ip'),
    decapRow('IPv4 in IPv6 (next header 4): the ethertype becomes IPv4', outer6(inner4), inner4, 'decap_ipip6'),
    decapRow('IPv6 in IPv6 (next header 41)', outer6(inner6), inner6, 'decap_ip6ip6'),
    decapRow('IPv4 in IPv4 on VLAN 7: the tag stays', outer4(inner4), inner4, 'decap_ipip', { id: 7, pcp: 5 }),
    decapRow('IPv6 in IPv4 on VLAN 7: the ethertype after the tag changes', outer4(inner6), inner6, 'decap_ip6ip', 7),
    decapRow('IPv4 in IPv6 on an 802.1ad tag', outer6(inner4), inner4, 'decap_ipip6', { id: 8, tpid: 0x88a8 }),
    decapRow('IPv6 in IPv6 on VLAN 7', outer6(inner6), inner6, 'decap_ip6ip6', 7),
    decapRow('outer IPv4 with 8 bytes of options: all of its header removed', outer4(inner4, RIP4, { options: [{ type: 1 }, { type: 7, data: Buffer.alloc(5) }] }),
      inner4, 'decap_ipip'),
    decapRow('a 1500-byte inner packet', outer4(ipv4({ src: '10.0.0.1', dst: '10.0.0.11', df: true }, tcp({ sport: 1, dport: 80, flags: 'A', payload: Buffer.alloc(1460, 7) }))),
      ipv4({ src: '10.0.0.1', dst: '10.0.0.11', df: true }, tcp({ sport: 1, dport: 80, flags: 'A', payload: Buffer.alloc(1460, 7) })), 'decap_ipip'),
  ]
  for (const row of rows) runRow(t, d, row)
  runRow(t, d, { description: 'Ethernet padding after the outer datagram stays after the inner one',
    input: frame(outer4(ipv4({ src: '10.0.0.1', dst: '10.0.0.11' }, udp({ sport: 1, dport: 53 }))), undefined, 80), verdict: 'pass',
    output: Buffer.concat([frame(ipv4({ src: '10.0.0.1', dst: '10.0.0.11' }, udp({ sport: 1, dport: 53 }))), Buffer.alloc(80 - (14 + 20 + 28))]),
    counters: { decap_ipip: 1 } })
})

t.test('decap: what is not a tunnel to us passes untouched', needsRoot, async (t) => {
  const d = Decap.load(t)
  setup(d)
  const pass = (description: string, input: Buffer, counter: string): FixtureRow => ({ description, input, verdict: 'pass', output: 'unchanged', counters: { [counter]: 1 } })
  const rows: FixtureRow[] = [
    pass('plain TCP to the real server', frame(inner4), 'pass_not_tunnel'),
    pass('plain IPv6 UDP', frame(inner6), 'pass_not_tunnel'),
    pass('ARP', frame(arp({ senderMac: DIR_MAC, senderIp: DIP4, targetIp: RIP4 })), 'pass_not_tunnel'),
    pass('GRE to the real server', frame(ipv4({ src: DIP4, dst: RIP4 }, rawPayload(47, Buffer.alloc(24)))), 'pass_not_tunnel'),
    pass('IPv4 tunnel to an address that is not ours', frame(outer4(inner4, '10.1.0.99')), 'pass_not_local'),
    pass('IPv6 tunnel to an address that is not ours', frame(outer6(inner6, 'fd00:3::99')), 'pass_not_local'),
    pass('protocol 4 carrying an IPv6 packet', frame(ipv4({ src: DIP4, dst: RIP4, proto: 4 }, inner6.bytes())), 'pass_bad_inner'),
    pass('next header 41 carrying an IPv4 packet', frame(ipv6({ src: DIP6, dst: RIP6, proto: 41 }, inner4.bytes())), 'pass_bad_inner'),
    pass('protocol 4 with nothing inside', frame(ipv4({ src: DIP4, dst: RIP4, proto: 4 }, Buffer.alloc(0))), 'pass_bad_inner'),
    pass('an outer IPv4 fragment', frame(outer4(inner4, RIP4, { mf: true, df: false })), 'pass_fragment'),
    pass('an IPv6 tunnel behind a hop-by-hop header (only a tunnel header right after the fixed one)',
      frame(ipv6({ src: DIP6, dst: RIP6, ext: [{ type: 'hopopts' }] }, inner4)), 'pass_not_tunnel'),
  ]
  for (const row of rows) runRow(t, d, row)
})

t.test('decap: broken outer headers drop', needsRoot, async (t) => {
  const d = Decap.load(t)
  setup(d)
  const drop = (description: string, input: Buffer): FixtureRow => ({ description, input, verdict: 'drop', counters: { drop_bad_outer: 1 } })
  const rows: FixtureRow[] = [
    drop('outer IPv4 header cut at 10 bytes', frame(outer4(inner4)).subarray(0, 14 + 10)),
    drop('outer IPv4 total length past the end', frame(outer4(inner4, RIP4, { totalLength: 200 }))),
    drop('outer IPv4 ihl 4', frame(outer4(inner4, RIP4, { ihl: 4 }))),
    drop('outer IPv6 header cut at 30 bytes', frame(outer6(inner4)).subarray(0, 14 + 30)),
    drop('outer IPv6 payload length past the end', frame(ipv6({ src: DIP6, dst: RIP6, payloadLength: 500 }, inner4))),
  ]
  for (const row of rows) runRow(t, d, row)
})

t.test('decap with xvs_cfg_decap_any_dst: every tunnel packet is ours', needsRoot, async (t) => {
  const d = Decap.load(t, { anyDst: true })
  runRow(t, d, decapRow('IPv4 in IPv4 to an address not listed', outer4(inner4, '10.1.0.99'), inner4, 'decap_ipip'))
  runRow(t, d, decapRow('IPv6 in IPv6 to an address not listed', outer6(inner6, 'fd00:3::99'), inner6, 'decap_ip6ip6'))
})

t.test('round trip: the director\'s tun output, decapsulated, is the client\'s packet', needsRoot, async (t) => {
  const dir = Director.load(t)
  const dec = Decap.load(t)
  dir.settings({ tun_src_v4: DIP4, tun_src_v6: DIP6 })
  const combos: Array<[string, string, string]> = [['10.0.0.11', RIP4, '4 in 4'], ['fd00:2::11', RIP4, '6 in 4'], ['10.0.0.12', RIP6, '4 in 6'], ['fd00:2::12', RIP6, '6 in 6']]
  combos.forEach(([vip, rip], i) => {
    dir.addService({ id: i, vip, port: 0, proto: Proto.UDP, sched: Sched.RR,
      reals: [{ id: i + 1, addr: rip, method: FwdMethod.TUN, dst_mac: REAL_MAC, src_mac: DIR_MAC }] })
  })
  dec.addAddress(RIP4)
  dec.addAddress(RIP6)
  for (const [vip, , name] of combos) {
    const client = vip.includes(':')
      ? ipv6({ src: 'fd00:1::1', dst: vip, trafficClass: 0x48 }, udp({ sport: 7000, dport: 53, payload: Buffer.alloc(333, 3) }))
      : ipv4({ src: '10.0.0.1', dst: vip, tos: 0x48, id: 4242 }, udp({ sport: 7000, dport: 53, payload: Buffer.alloc(333, 3) }))
    for (const vlan of [undefined, 42]) {
      const l2 = vlan === undefined ? {} : { vlan }
      const label = `${name}${vlan === undefined ? '' : ' on VLAN 42'}`
      const tunnelled = dir.run(ether({ dst: DIRECTOR_MAC, src: CLIENT_MAC, ...l2 }, client))
      t.equal(tunnelled.action, 'tx', `${label}: the director tunnels it`)
      const back = dec.run(tunnelled.data)
      t.equal(back.action, 'pass', `${label}: the real server decapsulates it`)
      t.same(back.data, ether({ dst: REAL_MAC, src: DIR_MAC, ...l2 }, client), `${label}: the client's packet, byte for byte, in the director's frame`)
      t.equal(parseFrame(back.data).ip?.dst, vip, `${label}: addressed to the VIP the real server holds`)
    }
  }
})
