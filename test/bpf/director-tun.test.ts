// SPDX-License-Identifier: GPL-2.0-only
// The director's tun path through BPF_PROG_TEST_RUN: a fixture table of the four inner/outer family
// combinations (outer header field by field, inner packet byte-identical), VLANs and options, the
// outer source and TTL settings, and the MTU: ICMP "fragmentation needed" / ICMPv6 "packet too big"
// sent back to the client, built byte for byte, and the drops where no answer is allowed.
import t, { type Test } from 'tap'
import { needsRoot } from '../helpers/root'
import { CLIENT_MAC, Director, DIRECTOR_MAC, flowHash, runRow, type FixtureRow } from '../helpers/director'
import { FwdMethod, Proto, Sched } from '../../src/dataplane/abi'
import {
  ether, firstDifference, icmp4, icmp6, innerIp, ipv4, ipv6, parseFrame, tcp, udp, type IpPacket, type ParsedFrame, type VlanTag,
} from '../../src/lab/packet'

const CIP = '10.0.0.1'
const CIP6 = 'fd00:1::1'
const VIP4 = '10.0.0.11'
const VIP6 = 'fd00:2::11'
const TUN_SRC4 = '192.168.0.1'
const TUN_SRC6 = 'fd00::1'
const EGRESS_MAC = '02:00:00:00:0e:01'
const RMAC = (id: number): string => `02:00:00:00:02:${id.toString(16).padStart(2, '0')}`

/**
 * Services (all TCP and UDP on port 0 of their VIP, one tun real each):
 *   id 0: VIP4 -> real 1, IPv4 10.1.0.1        (IPv4 in IPv4)
 *   id 1: VIP6 -> real 2, IPv4 10.1.0.2        (IPv6 in IPv4)
 *   id 2: 10.0.0.12 -> real 3, IPv6 fd00:3::3  (IPv4 in IPv6)
 *   id 3: fd00:2::12 -> real 4, IPv6 fd00:3::4 (IPv6 in IPv6)
 * UDP services are ids + 10 with reals + 10.
 */
const COMBOS = [
  { name: 'IPv4 in IPv4', vip: VIP4, rip: '10.1.0.1' },
  { name: 'IPv6 in IPv4', vip: VIP6, rip: '10.1.0.2' },
  { name: 'IPv4 in IPv6', vip: '10.0.0.12', rip: 'fd00:3::3' },
  { name: 'IPv6 in IPv6', vip: 'fd00:2::12', rip: 'fd00:3::4' },
] as const

function setup(d: Director, settings: Parameters<Director['settings']>[0] = { tun_src_v4: TUN_SRC4, tun_src_v6: TUN_SRC6 }): void {
  d.settings(settings)
  COMBOS.forEach((c, i) => {
    for (const [proto, off] of [[Proto.TCP, 0], [Proto.UDP, 10]] as const) {
      d.addService({ id: i + off, vip: c.vip, port: 0, proto, sched: Sched.RR,
        reals: [{ id: i + 1 + off, addr: c.rip, method: FwdMethod.TUN, dst_mac: RMAC(i + 1 + off), src_mac: EGRESS_MAC }] })
    }
  })
}

const fam = (a: string): 4 | 6 => (a.includes(':') ? 6 : 4)

interface TunRow {
  description: string
  /** The client's packet. */
  ip: IpPacket
  vlan?: number | VlanTag
  /** Its transport, for the conn key and the flow label. */
  sport: number
  dport: number
  proto: number
  /** Expected outer header. */
  outer: { src: string; dst: string; mac: string; tos: number; ttl: number; df: boolean; seed?: number }
  counters: Record<string, number>
}

/** The expected frame: the client's IP packet, whole, behind the outer header the director pushes. */
function tunRow(r: TunRow): FixtureRow {
  const l2 = r.vlan === undefined ? {} : { vlan: r.vlan }
  const inner = r.ip
  return {
    description: r.description,
    input: ether({ dst: DIRECTOR_MAC, src: CLIENT_MAC, ...l2 }, inner),
    verdict: 'tx',
    output: (out: ParsedFrame) => {
      const o = r.outer
      if (fam(o.dst) === 4) {
        // The outer IPv4 id is random (bpf_get_prandom_u32): take it from the output.
        const id = out.ip?.kind === 'ipv4' ? out.ip.id : 0
        return ether({ dst: o.mac, src: EGRESS_MAC, ...l2 }, ipv4({ src: o.src, dst: o.dst, tos: o.tos, ttl: o.ttl, df: o.df, id }, inner))
      }
      const key = { caddr: inner.src, vaddr: inner.dst, cport: r.sport, vport: r.dport, proto: r.proto }
      const label = flowHash(key, 0, o.seed ?? 0) & 0xfffff
      return ether({ dst: o.mac, src: EGRESS_MAC, ...l2 }, ipv6({ src: o.src, dst: o.dst, trafficClass: o.tos, hopLimit: o.ttl, flowLabel: label }, inner))
    },
    counters: r.counters,
    check: (t: Test, out: Buffer) => {
      const inn = innerIp(parseFrame(out, { strict: false }).ip)
      t.equal(inn ? firstDifference(inn.bytes, inner.bytes()) : 0, -1, `${r.description}: inner packet byte-identical`)
    },
  }
}

const NEW = { conn_new: 1, fwd_tun: 1, xdp_tx: 1 }

t.test('tun fixture table: every inner/outer family combination', needsRoot, async (t) => {
  const d = Director.load(t)
  setup(d)
  const rows: FixtureRow[] = []
  COMBOS.forEach((c, i) => {
    const v6in = fam(c.vip) === 6
    const src = v6in ? CIP6 : CIP
    const outerSrc = fam(c.rip) === 4 ? TUN_SRC4 : TUN_SRC6
    const tcpIp = v6in
      ? ipv6({ src, dst: c.vip, trafficClass: 0x28, hopLimit: 50 }, tcp({ sport: 40000, dport: 443, flags: 'S', seq: 7 }))
      : ipv4({ src, dst: c.vip, tos: 0x28, ttl: 50, df: true, id: 99 }, tcp({ sport: 40000, dport: 443, flags: 'S', seq: 7 }))
    rows.push(tunRow({ description: `${c.name}: TCP SYN`, ip: tcpIp, sport: 40000, dport: 443, proto: Proto.TCP, counters: NEW,
      outer: { src: outerSrc, dst: c.rip, mac: RMAC(i + 1), tos: 0x28, ttl: 50, df: true } }))
    const udpIp = v6in
      ? ipv6({ src, dst: c.vip, hopLimit: 9 }, udp({ sport: 5353, dport: 53, payload: 'q'.repeat(33) }))
      : ipv4({ src, dst: c.vip, ttl: 9 }, udp({ sport: 5353, dport: 53, payload: 'q'.repeat(33) }))
    rows.push(tunRow({ description: `${c.name}: UDP datagram (IPv4 without DF: outer without DF)`, ip: udpIp, sport: 5353, dport: 53,
      proto: Proto.UDP, counters: NEW, outer: { src: outerSrc, dst: c.rip, mac: RMAC(i + 11), tos: 0, ttl: 9, df: v6in } }))
    rows.push(tunRow({ description: `${c.name}: TCP SYN with an 802.1Q tag: the tag stays, the ethertype follows the outer family`,
      ip: v6in ? ipv6({ src, dst: c.vip }, tcp({ sport: 40001, dport: 80, flags: 'S' })) : ipv4({ src, dst: c.vip, df: true }, tcp({ sport: 40001, dport: 80, flags: 'S' })),
      vlan: { id: 7, pcp: 2 }, sport: 40001, dport: 80, proto: Proto.TCP, counters: NEW,
      outer: { src: outerSrc, dst: c.rip, mac: RMAC(i + 1), tos: 0, ttl: 64, df: true } }))
    rows.push(tunRow({ description: `${c.name}: a packet exactly at the path MTU (1500 with the outer header) is forwarded`,
      ip: v6in ? ipv6({ src, dst: c.vip }, tcp({ sport: 40002, dport: 80, flags: 'S', payload: Buffer.alloc(1500 - (fam(c.rip) === 4 ? 20 : 40) - 60, 1) }))
        : ipv4({ src, dst: c.vip, df: true }, tcp({ sport: 40002, dport: 80, flags: 'S', payload: Buffer.alloc(1500 - (fam(c.rip) === 4 ? 20 : 40) - 40, 1) })),
      sport: 40002, dport: 80, proto: Proto.TCP, counters: NEW, outer: { src: outerSrc, dst: c.rip, mac: RMAC(i + 1), tos: 0, ttl: 64, df: true } }))
  })
  rows.push(tunRow({ description: 'IPv4 with options in IPv4: inner options kept, counted',
    ip: ipv4({ src: CIP, dst: VIP4, df: true, options: [{ type: 1 }, { type: 1 }, { type: 1 }, { type: 0 }] }, tcp({ sport: 40003, dport: 80, flags: 'S' })),
    sport: 40003, dport: 80, proto: Proto.TCP, counters: { ...NEW, ipv4_options: 1 },
    outer: { src: TUN_SRC4, dst: '10.1.0.1', mac: RMAC(1), tos: 0, ttl: 64, df: true } }))
  rows.push(tunRow({ description: 'IPv6 with a hop-by-hop header in IPv6: counted as skipped, kept inside',
    ip: ipv6({ src: CIP6, dst: 'fd00:2::12', ext: [{ type: 'hopopts' }] }, tcp({ sport: 40003, dport: 80, flags: 'S' })),
    sport: 40003, dport: 80, proto: Proto.TCP, counters: { ...NEW, ipv6_ext_skipped: 1 },
    outer: { src: TUN_SRC6, dst: 'fd00:3::4', mac: RMAC(4), tos: 0, ttl: 64, df: true } }))
  rows.push(tunRow({ description: 'IPv4 in IPv4 with an 802.1ad tag',
    ip: ipv4({ src: CIP, dst: VIP4 }, udp({ sport: 7000, dport: 53 })), vlan: { id: 300, tpid: 0x88a8 },
    sport: 7000, dport: 53, proto: Proto.UDP, counters: NEW, outer: { src: TUN_SRC4, dst: '10.1.0.1', mac: RMAC(11), tos: 0, ttl: 64, df: false } }))
  for (const row of rows) runRow(t, d, row)
  t.equal(d.serviceStats(0).bytes_in, BigInt(40 + 40 + 1480 + 44), 'service stats count the inner IP bytes (SYN, VLAN SYN, 1480-byte, SYN with options), not the outer header')
})

t.test('tun: outer source and TTL settings', needsRoot, async (t) => {
  const d = Director.load(t)
  setup(d, { tun_src_v4: TUN_SRC4, tun_src_v6: TUN_SRC6, tun_ttl: 17, hash_seed: 0xdeadbeef })
  d.setReal({ id: 1, addr: '10.1.0.1', method: FwdMethod.TUN, service_id: 0, dst_mac: RMAC(1), src_mac: EGRESS_MAC, tun_src: '192.168.9.9' })
  d.setReal({ id: 4, addr: 'fd00:3::4', method: FwdMethod.TUN, service_id: 3, dst_mac: RMAC(4), src_mac: EGRESS_MAC, tun_src: 'fd00:9::9' })
  const rows = [
    tunRow({ description: 'xvs_real.tun_src overrides the default IPv4 source; tun_ttl sets the outer TTL',
      ip: ipv4({ src: CIP, dst: VIP4, ttl: 50 }, tcp({ sport: 1, dport: 80, flags: 'S' })), sport: 1, dport: 80, proto: Proto.TCP,
      counters: NEW, outer: { src: '192.168.9.9', dst: '10.1.0.1', mac: RMAC(1), tos: 0, ttl: 17, df: false } }),
    tunRow({ description: 'xvs_real.tun_src overrides the default IPv6 source; tun_ttl sets the hop limit; the seed moves the flow label',
      ip: ipv6({ src: CIP6, dst: 'fd00:2::12', hopLimit: 50 }, tcp({ sport: 2, dport: 80, flags: 'S' })), sport: 2, dport: 80, proto: Proto.TCP,
      counters: NEW, outer: { src: 'fd00:9::9', dst: 'fd00:3::4', mac: RMAC(4), tos: 0, ttl: 17, df: true, seed: 0xdeadbeef } }),
    tunRow({ description: 'the default IPv6 source for a real without one',
      ip: ipv4({ src: CIP, dst: '10.0.0.12' }, tcp({ sport: 3, dport: 80, flags: 'S' })), sport: 3, dport: 80, proto: Proto.TCP,
      counters: NEW, outer: { src: TUN_SRC6, dst: 'fd00:3::3', mac: RMAC(3), tos: 0, ttl: 17, df: true, seed: 0xdeadbeef } }),
  ]
  for (const row of rows) runRow(t, d, row)

  // Flows differ in their flow labels (RFC 6438): the label is the flow hash, not a constant.
  const labels = new Set<number>()
  for (let p = 10000; p < 10016; p += 2) {
    const out = d.run(ether({ dst: DIRECTOR_MAC, src: CLIENT_MAC }, ipv4({ src: CIP, dst: '10.0.0.12' }, tcp({ sport: p, dport: 80, flags: 'S' })))).data
    const ip = parseFrame(out).ip
    if (ip?.kind === 'ipv6') labels.add(ip.flowLabel)
  }
  t.ok(labels.size >= 7, `8 flows (even source ports) get distinct flow labels (${labels.size})`)
})

t.test('tun: no outer source, bad real family', needsRoot, async (t) => {
  const d = Director.load(t)
  setup(d, {})
  const syn = (dst: string, sport: number): Buffer => ether({ dst: DIRECTOR_MAC, src: CLIENT_MAC },
    fam(dst) === 4 ? ipv4({ src: CIP, dst }, tcp({ sport, dport: 80, flags: 'S' })) : ipv6({ src: CIP6, dst }, tcp({ sport, dport: 80, flags: 'S' })))
  runRow(t, d, { description: 'IPv4 outer, neither xvs_real.tun_src nor settings.tun_src_v4: dropped', input: syn(VIP4, 1), verdict: 'drop',
    counters: { conn_new: 1, drop_no_tun_src: 1 } })
  runRow(t, d, { description: 'IPv6 outer, neither xvs_real.tun_src nor settings.tun_src_v6: dropped', input: syn('fd00:2::12', 1), verdict: 'drop',
    counters: { conn_new: 1, drop_no_tun_src: 1 } })
  d.settings({ tun_src_v4: TUN_SRC4 })
  runRow(t, d, { description: 'only an IPv4 default: the IPv6 outer still has none', input: syn('fd00:2::12', 2), verdict: 'drop',
    counters: { conn_new: 1, drop_no_tun_src: 1 } })
  d.setReal({ id: 1, addr: '', family: 0, method: FwdMethod.TUN, service_id: 0, dst_mac: RMAC(1) })
  runRow(t, d, { description: 'a tun real whose family is neither AF_INET nor AF_INET6: dropped', input: syn(VIP4, 3), verdict: 'drop',
    counters: { conn_new: 1, drop_bad_real: 1 } })
})

/** The client's frame and the ICMP error the director must answer it with, built independently. */
interface TooBig {
  description: string
  ip: IpPacket
  vlan?: number | VlanTag
  /** The MTU the error announces. */
  mtu: number
  /** Bytes quoted. */
  quote: number
  counters?: Record<string, number>
}

function tooBigRow(r: TooBig): FixtureRow {
  const l2 = r.vlan === undefined ? {} : { vlan: r.vlan }
  const input = ether({ dst: DIRECTOR_MAC, src: CLIENT_MAC, ...l2 }, r.ip)
  return {
    description: r.description,
    input,
    verdict: 'tx',
    output: (out: ParsedFrame) => {
      const back = { dst: CLIENT_MAC, src: DIRECTOR_MAC, ...l2 }
      if (r.ip.family === 4) {
        const id = out.ip?.kind === 'ipv4' ? out.ip.id : 0
        return ether(back, ipv4({ src: r.ip.dst, dst: r.ip.src, tos: 0xc0, ttl: 64, id },
          icmp4({ type: 3, code: 4, mtu: r.mtu, body: r.ip, bodyLength: r.quote })))
      }
      return ether(back, ipv6({ src: r.ip.dst, dst: r.ip.src, hopLimit: 64 }, icmp6({ type: 2, mtu: r.mtu, body: r.ip, bodyLength: r.quote })))
    },
    counters: r.counters ?? { tx_too_big_icmp: 1 },
    check: (t: Test, out: Buffer) => {
      const limit = r.ip.family === 4 ? 576 : 1280
      const ip = parseFrame(out).ip
      t.ok(ip !== undefined && ip.bytes.length <= limit, `${r.description}: the error fits ${limit} bytes (${ip?.bytes.length})`)
    },
  }
}

t.test('tun: too big for the path MTU: ICMP fragmentation needed / packet too big', needsRoot, async (t) => {
  const d = Director.load(t)
  setup(d)
  // Open the flows first: the big packets are ACKs of existing connections.
  const flows: Array<[string, string]> = [[CIP, VIP4], [CIP6, VIP6], [CIP, '10.0.0.12'], [CIP6, 'fd00:2::12']]
  for (const [c, v] of flows) {
    const syn = fam(v) === 4 ? ipv4({ src: c, dst: v }, tcp({ sport: 40000, dport: 80, flags: 'S' })) : ipv6({ src: c, dst: v }, tcp({ sport: 40000, dport: 80, flags: 'S' }))
    t.equal(d.run(ether({ dst: DIRECTOR_MAC, src: CLIENT_MAC }, syn)).action, 'tx', `${c} -> ${v}: connection opened`)
  }
  const big4 = (dst: string, len: number, df = true, sport = 40000): IpPacket =>
    ipv4({ src: CIP, dst, df, id: 0x4242 }, tcp({ sport, dport: 80, flags: 'A', payload: Buffer.alloc(len - 40, 0x41) }))
  const big6 = (dst: string, len: number, sport = 40000): IpPacket =>
    ipv6({ src: CIP6, dst }, tcp({ sport, dport: 80, flags: 'A', payload: Buffer.alloc(len - 60, 0x42) }))
  const rows: FixtureRow[] = [
    tooBigRow({ description: 'IPv4 in IPv4, 1500-byte DF packet, MTU 1500: frag-needed, MTU 1480, 576-byte error', ip: big4(VIP4, 1500), mtu: 1480, quote: 548 }),
    tooBigRow({ description: 'IPv6 in IPv4, 1500-byte packet: packet too big, MTU 1480, 1280-byte error', ip: big6(VIP6, 1500), mtu: 1480, quote: 1232 }),
    tooBigRow({ description: 'IPv4 in IPv6, 1500-byte DF packet: frag-needed, MTU 1460', ip: big4('10.0.0.12', 1500), mtu: 1460, quote: 548 }),
    tooBigRow({ description: 'IPv6 in IPv6, 1500-byte packet: packet too big, MTU 1460', ip: big6('fd00:2::12', 1500), mtu: 1460, quote: 1232 }),
    tooBigRow({ description: 'IPv4 one byte over (1481 + 20): frag-needed', ip: big4(VIP4, 1481), mtu: 1480, quote: 548 }),
    tooBigRow({ description: 'IPv4 with an 802.1Q tag: the error goes back on the VLAN', ip: big4(VIP4, 1500), vlan: { id: 9, pcp: 1 }, mtu: 1480, quote: 548 }),
    tooBigRow({ description: 'IPv6 with an 802.1Q tag: the error goes back on the VLAN', ip: big6('fd00:2::12', 1500), vlan: 9, mtu: 1460, quote: 1232 }),
    tooBigRow({ description: 'a too-big SYN: a connection is made and the client answered',
      ip: ipv4({ src: CIP, dst: VIP4, df: true }, tcp({ sport: 40100, dport: 80, flags: 'S', payload: Buffer.alloc(1460) })), mtu: 1480, quote: 548,
      counters: { conn_new: 1, tx_too_big_icmp: 1 } }),
  ]
  for (const row of rows) runRow(t, d, row)
  t.equal(d.serviceStats(0).packets_in, 1n, 'answered packets are not counted as forwarded (only the first SYN was)')

  const f = (ip: IpPacket): Buffer => ether({ dst: DIRECTOR_MAC, src: CLIENT_MAC }, ip)
  runRow(t, d, { description: 'IPv4 without DF, too big: dropped (XDP cannot fragment)', input: f(big4(VIP4, 1500, false)), verdict: 'drop',
    counters: { drop_too_big: 1 } })
})

t.test('tun: path MTU settings and limits', needsRoot, async (t) => {
  const d = Director.load(t)
  setup(d, { tun_src_v4: TUN_SRC4, tun_src_v6: TUN_SRC6, default_mtu: 1400 })
  const syn4 = (dst: string, len: number, sport: number): IpPacket =>
    ipv4({ src: CIP, dst, df: true }, tcp({ sport, dport: 80, flags: 'S', payload: Buffer.alloc(len - 40, 0x43) }))
  const NEWBIG = { conn_new: 1, tx_too_big_icmp: 1 }
  runRow(t, d, tooBigRow({ description: 'settings.default_mtu 1400 for a real with mtu 0: frag-needed, MTU 1380',
    ip: syn4(VIP4, 1400, 1), mtu: 1380, quote: 548, counters: NEWBIG }))
  runRow(t, d, tunRow({ description: 'settings.default_mtu 1400: 1380 bytes fit', ip: syn4(VIP4, 1380, 2), sport: 2, dport: 80, proto: Proto.TCP,
    counters: NEW, outer: { src: TUN_SRC4, dst: '10.1.0.1', mac: RMAC(1), tos: 0, ttl: 64, df: true } }))

  d.setReal({ id: 1, addr: '10.1.0.1', method: FwdMethod.TUN, service_id: 0, dst_mac: RMAC(1), src_mac: EGRESS_MAC, mtu: 500 })
  runRow(t, d, tooBigRow({ description: 'xvs_real.mtu 500, a 501-byte packet: the whole odd-length packet quoted, MTU 480',
    ip: syn4(VIP4, 501, 3), mtu: 480, quote: 501, counters: NEWBIG }))
  d.setReal({ id: 1, addr: '10.1.0.1', method: FwdMethod.TUN, service_id: 0, dst_mac: RMAC(1), src_mac: EGRESS_MAC, mtu: 60 })
  runRow(t, d, tooBigRow({ description: 'xvs_real.mtu 60: the announced MTU is raised to the IPv4 minimum, 68',
    ip: syn4(VIP4, 100, 4), mtu: 68, quote: 100, counters: NEWBIG }))
  d.setReal({ id: 1, addr: '10.1.0.1', method: FwdMethod.TUN, service_id: 0, dst_mac: RMAC(1), src_mac: EGRESS_MAC, mtu: 10 })
  runRow(t, d, { description: 'xvs_real.mtu below the outer header: dropped', input: ether({ dst: DIRECTOR_MAC, src: CLIENT_MAC }, syn4(VIP4, 100, 5)),
    verdict: 'drop', counters: { conn_new: 1, drop_too_big: 1 } })
  d.setReal({ id: 4, addr: 'fd00:3::4', method: FwdMethod.TUN, service_id: 3, dst_mac: RMAC(4), src_mac: EGRESS_MAC, mtu: 1300 })
  runRow(t, d, tooBigRow({ description: 'IPv6 over a 1300-byte IPv6 path: the announced MTU is the IPv6 minimum, 1280',
    ip: ipv6({ src: CIP6, dst: 'fd00:2::12' }, tcp({ sport: 6, dport: 80, flags: 'S', payload: Buffer.alloc(1300 - 60) })), mtu: 1280, quote: 1232, counters: NEWBIG }))
})
