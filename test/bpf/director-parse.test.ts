// SPDX-License-Identifier: GPL-2.0-only
// The director's parser through BPF_PROG_TEST_RUN: what is not ours passes to the stack untouched
// (counted by reason), broken headers are dropped, fragments and unhandled IPv6 chains pass, VLAN
// tags, IPv4 options and IPv6 extension headers are walked.
import t from 'tap'
import { needsRoot } from '../helpers/root'
import { CLIENT_MAC, Director, DIRECTOR_MAC, runRow, type FixtureRow } from '../helpers/director'
import { Proto, Sched } from '../../src/dataplane/abi'
import { arp, ether, EtherType, icmp4, icmp6, ipv4, ipv6, rawPayload, tcp, udp, type IpPacket, type Ipv6Ext, type VlanTag } from '../../src/lab/packet'

const CIP = '10.0.0.1'
const CIP6 = 'fd00:1::1'
const VIP = '10.0.0.10'
const VIP6 = 'fd00:2::10'
const REAL1_MAC = '02:00:00:00:01:01'
const REAL2_MAC = '02:00:00:00:01:02'

function setup(d: Director): void {
  d.settings({})
  d.addService({ id: 0, vip: VIP, port: 80, sched: Sched.RR, reals: [{ id: 1, addr: '10.1.0.1', dst_mac: REAL1_MAC }] })
  d.addService({ id: 1, vip: VIP6, port: 443, sched: Sched.RR, reals: [{ id: 2, addr: 'fd00:3::2', dst_mac: REAL2_MAC }] })
  d.addService({ id: 2, vip: VIP, port: 53, proto: Proto.UDP, sched: Sched.RR, reals: [{ id: 3, addr: '10.1.0.3', dst_mac: REAL1_MAC }] })
}

const frame = (ip: IpPacket, vlan?: number | VlanTag | Array<number | VlanTag>): Buffer =>
  ether({ dst: DIRECTOR_MAC, src: CLIENT_MAC, ...(vlan === undefined ? {} : { vlan }) }, ip)

const pass = (description: string, input: Buffer, counters: Record<string, number>): FixtureRow =>
  ({ description, input, verdict: 'pass', output: 'unchanged', counters })
const drop = (description: string, input: Buffer, counters: Record<string, number>): FixtureRow =>
  ({ description, input, verdict: 'drop', counters })

const syn4 = (sport = 40000, dst = VIP, dport = 80): IpPacket => ipv4({ src: CIP, dst, df: true }, tcp({ sport, dport, flags: 'S' }))
const syn6 = (ext: Ipv6Ext[] = [], sport = 40000): IpPacket => ipv6({ src: CIP6, dst: VIP6, ext }, tcp({ sport, dport: 443, flags: 'S' }))

t.test('not ours: passed to the stack untouched', needsRoot, async (t) => {
  const d = Director.load(t)
  setup(d)
  const NS = { pass_not_service: 1 }
  const NIP = { pass_not_ip: 1 }
  const rows: FixtureRow[] = [
    pass('TCP SYN to an address that is no VIP', frame(syn4(40000, '10.0.0.99')), NS),
    pass('TCP SYN to a VIP on a port without a service', frame(syn4(40000, VIP, 81)), NS),
    pass('UDP to a VIP:port that is a TCP service only', frame(ipv4({ src: CIP, dst: VIP }, udp({ sport: 1, dport: 80 }))), NS),
    pass('TCP to a VIP:port that is a UDP service only', frame(syn4(40000, VIP, 53)), NS),
    pass('IPv6 TCP SYN to an address that is no VIP', frame(ipv6({ src: CIP6, dst: 'fd00:2::99' }, tcp({ sport: 1, dport: 443, flags: 'S' }))), NS),
    pass('IPv6 destination a00:a:: (the same 16 key bytes as the IPv4 VIP): the family tells them apart',
      frame(ipv6({ src: CIP6, dst: 'a00:a::' }, tcp({ sport: 1, dport: 80, flags: 'S' }))), NS),
    pass('ARP request for the VIP', ether({ dst: 'ff:ff:ff:ff:ff:ff', src: CLIENT_MAC }, arp({ senderMac: CLIENT_MAC, senderIp: CIP, targetIp: VIP })), NIP),
    pass('ARP request on VLAN 5', ether({ dst: 'ff:ff:ff:ff:ff:ff', src: CLIENT_MAC, vlan: 5 }, arp({ senderMac: CLIENT_MAC, senderIp: CIP, targetIp: VIP })), NIP),
    pass('LLDP frame', ether({ dst: '01:80:c2:00:00:0e', src: CLIENT_MAC, type: 0x88cc }, Buffer.alloc(46)), NIP),
    pass('two VLAN tags (802.1ad + 802.1Q): not walked', frame(syn4(), [{ id: 10, tpid: EtherType.QINQ }, 20]), NIP),
    pass('ICMP echo request to a VIP', frame(ipv4({ src: CIP, dst: VIP }, icmp4({ type: 8, id: 1, seq: 1, body: 'ping' }))), NS),
    pass('ICMP redirect to a VIP: not an error IPVS relays', frame(ipv4({ src: '10.0.0.254', dst: VIP },
      icmp4({ type: 5, code: 1, rest: Buffer.from([10, 0, 0, 2]), body: syn4(), bodyLength: 28 }))), NS),
    pass('ICMPv6 echo request to a VIP', frame(ipv6({ src: CIP6, dst: VIP6 }, icmp6({ type: 128, id: 1, seq: 1, body: 'ping' }))), NS),
    pass('ICMPv6 neighbour solicitation for a VIP', frame(ipv6({ src: CIP6, dst: 'ff02::1:ff00:10', hopLimit: 255 },
      icmp6({ type: 135, body: Buffer.concat([Buffer.from('fd000002000000000000000000000010', 'hex'), Buffer.from([1, 1, 2, 0, 0, 0, 0, 1])]) }))), NS),
    pass('GRE to a VIP', frame(ipv4({ src: CIP, dst: VIP }, rawPayload(47, Buffer.alloc(8)))), NS),
    pass('ESP to an IPv6 VIP', frame(ipv6({ src: CIP6, dst: VIP6 }, rawPayload(50, Buffer.alloc(16)))), NS),
    pass('IPv4 with options to no VIP: not counted as options forwarded',
      frame(ipv4({ src: CIP, dst: '10.0.0.99', options: [{ type: 1 }, { type: 1 }, { type: 1 }, { type: 1 }] }, tcp({ sport: 1, dport: 80, flags: 'S' }))), NS),
    pass('802.1Q-tagged SYN to no VIP', frame(syn4(40000, '10.0.0.99'), 100), NS),
  ]
  for (const row of rows) runRow(t, d, row)
  t.same(d.allConns(), [], 'no connection entry made')
})

t.test('broken headers: dropped and counted', needsRoot, async (t) => {
  const d = Director.load(t)
  setup(d)
  const TR = { drop_truncated: 1 }
  const MF = { drop_malformed: 1 }
  const full = frame(syn4())
  const rows: FixtureRow[] = [
    drop('802.1Q tag cut short (16-byte frame)', ether({ dst: DIRECTOR_MAC, src: CLIENT_MAC, type: EtherType.VLAN }, Buffer.from([0, 5])), TR),
    drop('IPv4 header cut at 10 bytes', full.subarray(0, 14 + 10), TR),
    drop('IPv4 total length past the end of the frame', frame(ipv4({ src: CIP, dst: VIP, totalLength: 60 }, tcp({ sport: 1, dport: 80, flags: 'S' }))), TR),
    drop('IPv4 frame cut inside the TCP header (total length says 40)', full.subarray(0, 14 + 30), TR),
    drop('IPv4 ihl 4', frame(ipv4({ src: CIP, dst: VIP, ihl: 4 }, tcp({ sport: 1, dport: 80, flags: 'S' }))), MF),
    drop('IPv4 total length 16, under its own header', frame(ipv4({ src: CIP, dst: VIP, totalLength: 16 }, tcp({ sport: 1, dport: 80, flags: 'S' }))), MF),
    drop('version 6 behind the IPv4 ethertype', frame(ipv4({ src: CIP, dst: VIP, version: 6 }, tcp({ sport: 1, dport: 80, flags: 'S' }))), MF),
    drop('TCP data offset 4', frame(ipv4({ src: CIP, dst: VIP }, tcp({ sport: 1, dport: 80, flags: 'S', dataOffset: 4 }))), MF),
    drop('TCP data offset 15 with no options there', frame(ipv4({ src: CIP, dst: VIP }, tcp({ sport: 1, dport: 80, flags: 'S', dataOffset: 15 }))), TR),
    drop('UDP header cut at 4 bytes', frame(ipv4({ src: CIP, dst: VIP, proto: Proto.UDP }, Buffer.from([0, 1, 0, 53]))), TR),
    drop('IPv6 header cut at 30 bytes', frame(syn6()).subarray(0, 14 + 30), TR),
    drop('IPv6 payload length past the end of the frame', frame(ipv6({ src: CIP6, dst: VIP6, payloadLength: 100 }, tcp({ sport: 1, dport: 443, flags: 'S' }))), TR),
    drop('version 4 behind the IPv6 ethertype', frame(ipv6({ src: CIP6, dst: VIP6, version: 4 }, tcp({ sport: 1, dport: 443, flags: 'S' }))), MF),
    drop('IPv6 hop-by-hop header longer than the packet', frame(ipv6({ src: CIP6, dst: VIP6, nextHeader: 0, proto: 0 },
      Buffer.concat([Buffer.from([6, 10]), Buffer.alloc(26)]))), TR),
  ]
  for (const row of rows) runRow(t, d, row)
  t.same(d.allConns(), [], 'no connection entry made')
})

t.test('fragments and IPv6 chains the fast path leaves to the stack', needsRoot, async (t) => {
  const d = Director.load(t)
  setup(d)
  const FR = { pass_fragment: 1 }
  const EXT = { pass_ipv6_ext: 1 }
  const seg = tcp({ sport: 40000, dport: 80, flags: 'S', payload: Buffer.alloc(16) })
  const rows: FixtureRow[] = [
    pass('IPv4 first fragment (MF, offset 0) to a service', frame(ipv4({ src: CIP, dst: VIP, mf: true, id: 7 }, seg)), FR),
    pass('IPv4 middle fragment', frame(ipv4({ src: CIP, dst: VIP, mf: true, fragOffset: 185, id: 7, proto: Proto.TCP }, Buffer.alloc(64))), FR),
    pass('IPv4 last fragment', frame(ipv4({ src: CIP, dst: VIP, fragOffset: 370, id: 7, proto: Proto.TCP }, Buffer.alloc(64))), FR),
    pass('IPv4 fragment on a VLAN', frame(ipv4({ src: CIP, dst: VIP, mf: true }, seg), 42), FR),
    pass('IPv6 fragment header (first fragment)', frame(syn6([{ type: 'fragment', more: true, id: 1 }])), FR),
    pass('IPv6 atomic fragment (offset 0, no more)', frame(syn6([{ type: 'fragment', id: 2 }])), FR),
    pass('IPv6 fragment header behind hop-by-hop', frame(syn6([{ type: 'hopopts' }, { type: 'fragment', more: true, id: 3 }])), FR),
    pass('IPv6 routing header with a segment left: not for this address yet', frame(syn6([{ type: 'routing', segmentsLeft: 1, routingType: 4, data: Buffer.alloc(20) }])), EXT),
    pass('IPv6 chain of five extension headers: longer than the walk', frame(syn6([{ type: 'hopopts' }, { type: 'dstopts' },
      { type: 'routing', segmentsLeft: 0 }, { type: 'dstopts' }, { type: 'dstopts' }])), EXT),
    pass('IPv6 jumbogram (payload length 0)', frame(ipv6({ src: CIP6, dst: VIP6, payloadLength: 0 }, tcp({ sport: 1, dport: 443, flags: 'S' }))), EXT),
  ]
  for (const row of rows) runRow(t, d, row)
  t.same(d.allConns(), [], 'no connection entry made')
})

t.test('walked: VLAN tags, IPv4 options, IPv6 extension headers', needsRoot, async (t) => {
  const d = Director.load(t)
  setup(d)
  const fwd = (description: string, ip: IpPacket, mac: string, counters: Record<string, number>, vlan?: number | VlanTag): FixtureRow => {
    const l2 = vlan === undefined ? {} : { vlan }
    return { description, input: ether({ dst: DIRECTOR_MAC, src: CLIENT_MAC, ...l2 }, ip), verdict: 'tx',
      output: ether({ dst: mac, src: DIRECTOR_MAC, ...l2 }, ip), counters: { conn_new: 1, fwd_dr: 1, xdp_tx: 1, ...counters } }
  }
  const rows: FixtureRow[] = [
    fwd('SYN on VLAN 4094 with priority 7 and DEI', syn4(40000), REAL1_MAC, {}, { id: 4094, pcp: 7, dei: true }),
    fwd('SYN with 40 bytes of IPv4 options (the most there can be)',
      ipv4({ src: CIP, dst: VIP, options: Buffer.concat([Buffer.from([7, 39, 4]), Buffer.alloc(36), Buffer.from([0])]) }, tcp({ sport: 40001, dport: 80, flags: 'S' })),
      REAL1_MAC, { ipv4_options: 1 }),
    fwd('UDP with IPv4 options (router alert)', ipv4({ src: CIP, dst: VIP, options: [{ type: 148, data: Buffer.from([0, 0]) }] }, udp({ sport: 1, dport: 53 })),
      REAL1_MAC, { ipv4_options: 1 }),
    fwd('IPv4 DF alone is no fragment', ipv4({ src: CIP, dst: VIP, df: true }, tcp({ sport: 40002, dport: 80, flags: 'S' })), REAL1_MAC, {}),
    fwd('IPv6 hop-by-hop with a router alert option', syn6([{ type: 'hopopts', options: Buffer.from([5, 2, 0, 0]) }], 40001), REAL2_MAC, { ipv6_ext_skipped: 1 }),
    fwd('IPv6 destination options of 24 bytes', syn6([{ type: 'dstopts', options: Buffer.concat([Buffer.from([1, 20]), Buffer.alloc(20)]) }], 40002), REAL2_MAC,
      { ipv6_ext_skipped: 1 }),
    fwd('IPv6 chain of three: hop-by-hop, routing (done), destination options', syn6([{ type: 'hopopts' }, { type: 'routing', segmentsLeft: 0 }, { type: 'dstopts' }], 40003),
      REAL2_MAC, { ipv6_ext_skipped: 1 }),
    fwd('IPv6 on VLAN 3', syn6([], 40004), REAL2_MAC, {}, 3),
  ]
  for (const row of rows) runRow(t, d, row)
})

// Regression test (bpf/include/xvs/parsing.h, parse_ipv6; fixed): the loop walks XVS_IPV6_EXT_MAX (4) headers and then
// gives up without looking at the next header, so a chain of exactly four is refused as "too long".
t.test('an IPv6 chain of exactly XVS_IPV6_EXT_MAX (4) extension headers is walked', needsRoot, async (t) => {
  const d = Director.load(t)
  setup(d)
  const ip = syn6([{ type: 'hopopts' }, { type: 'dstopts' }, { type: 'routing', segmentsLeft: 0 }, { type: 'dstopts' }], 40100)
  runRow(t, d, { description: 'hop-by-hop, destination options, routing (done), destination options, then TCP',
    input: frame(ip), verdict: 'tx', output: ether({ dst: REAL2_MAC, src: DIRECTOR_MAC }, ip),
    counters: { conn_new: 1, fwd_dr: 1, xdp_tx: 1, ipv6_ext_skipped: 1 } })
})

// Regression test (bpf/include/xvs/parsing.h, parse_tcphdr/parse_udphdr; fixed): transport headers are bounds-checked
// against data_end, not against the end of the IP datagram (tot_len), so a datagram that ends inside
// its TCP header, followed by other bytes in the frame, is forwarded as a whole SYN (and makes a
// connection entry); the stack, which trims to tot_len first, would drop it.
t.test('an IPv4 datagram that ends inside its TCP header is not forwarded', needsRoot, async (t) => {
  const d = Director.load(t)
  setup(d)
  const ip = ipv4({ src: CIP, dst: VIP, totalLength: 20 + 8 }, tcp({ sport: 40200, dport: 80, flags: 'S' }))
  runRow(t, d, { description: 'total length 28: 8 of the 20 TCP header bytes are in the datagram', input: frame(ip), verdict: 'drop',
    counters: { drop_truncated: 1 } })
  t.same(d.allConns(), [], 'no connection entry made')
})
