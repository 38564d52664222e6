// SPDX-License-Identifier: GPL-2.0-only
// The director's dr (direct routing) path through BPF_PROG_TEST_RUN: a fixture table of packets in
// and frames out (only the MACs change, the IP packet is byte-identical), the connection entries
// and per-service/per-real stats they leave, XDP_TX versus redirect, and the nat/fullnat seams.
import t from 'tap'
import { needsRoot } from '../helpers/root'
import { CLIENT_MAC, Director, DIRECTOR_MAC, runRow, type FixtureRow } from '../helpers/director'
import { ConnState, Proto, Sched } from '../../src/dataplane/abi'
import { ether, ipv4, ipv6, tcp, udp, type IpPacket, type VlanTag } from '../../src/lab/packet'

const CIP = '10.0.0.1'
const CIP6 = 'fd00:1::1'
const VIP = '10.0.0.10'
const VIP_ANY = '10.0.0.12'
const VIP6 = 'fd00:2::10'
/** The director's MAC on the egress side, distinct from the ingress one so a swap would show. */
const EGRESS_MAC = '02:00:00:00:0e:01'
const REAL_MAC = ['', '02:00:00:00:01:01', '02:00:00:00:01:02', '02:00:00:00:01:03', '02:00:00:00:01:04', '02:00:00:00:01:05']

/** Services 0-4: TCP/UDP on an IPv4 VIP, TCP/UDP on an IPv6 VIP, an all-ports IPv4 VIP; one dr real each. */
function setup(d: Director): void {
  d.settings({})
  const real = (id: number, addr: string): { id: number; addr: string; dst_mac: string; src_mac: string } =>
    ({ id, addr, dst_mac: REAL_MAC[id]!, src_mac: EGRESS_MAC })
  d.addService({ id: 0, vip: VIP, port: 80, proto: Proto.TCP, sched: Sched.RR, reals: [real(1, '10.1.0.1')] })
  d.addService({ id: 1, vip: VIP, port: 53, proto: Proto.UDP, sched: Sched.RR, reals: [real(2, '10.1.0.2')] })
  d.addService({ id: 2, vip: VIP6, port: 443, proto: Proto.TCP, sched: Sched.RR, reals: [real(3, 'fd00:3::3')] })
  d.addService({ id: 3, vip: VIP6, port: 53, proto: Proto.UDP, sched: Sched.RR, reals: [real(4, 'fd00:3::4')] })
  d.addService({ id: 4, vip: VIP_ANY, port: 0, proto: Proto.TCP, sched: Sched.RR, reals: [real(5, '10.1.0.5')] })
}

interface DrRow {
  description: string
  ip: IpPacket
  vlan?: number | VlanTag | Array<number | VlanTag>
  padTo?: number
  /** The real server the frame must go to. */
  real: number
  counters: Record<string, number>
  check?: FixtureRow['check']
}

/** A dr row: in from the client to the director; out the same IP packet from the director to the real. */
function drRow(r: DrRow): FixtureRow {
  const l2 = { ...(r.vlan === undefined ? {} : { vlan: r.vlan }), ...(r.padTo === undefined ? {} : { padTo: r.padTo }) }
  return {
    description: r.description,
    input: ether({ dst: DIRECTOR_MAC, src: CLIENT_MAC, ...l2 }, r.ip),
    verdict: 'tx',
    output: ether({ dst: REAL_MAC[r.real]!, src: EGRESS_MAC, ...l2 }, r.ip),
    counters: r.counters,
    ...(r.check ? { check: r.check } : {}),
  }
}

const NEW = { conn_new: 1, fwd_dr: 1, xdp_tx: 1 }
const HIT = { fwd_dr: 1, xdp_tx: 1 }

t.test('dr fixture table', needsRoot, async (t) => {
  const d = Director.load(t)
  setup(d)
  const syn = (sport: number, extra: Partial<Parameters<typeof tcp>[0]> = {}): IpPacket =>
    ipv4({ src: CIP, dst: VIP, df: true, id: sport & 0xffff }, tcp({ sport, dport: 80, seq: 1000, flags: 'S', ...extra }))
  const rows: FixtureRow[] = [
    drRow({ description: 'IPv4 TCP SYN to a dr service', ip: syn(40000), real: 1, counters: NEW }),
    drRow({ description: 'IPv4 TCP ACK of that connection', real: 1, counters: HIT,
      ip: ipv4({ src: CIP, dst: VIP, df: true }, tcp({ sport: 40000, dport: 80, seq: 1001, ack: 1, flags: 'A', payload: 'GET / HTTP/1.0\r\n\r\n' })) }),
    drRow({ description: 'IPv4 UDP datagram to a dr service', real: 2, counters: NEW,
      ip: ipv4({ src: CIP, dst: VIP }, udp({ sport: 5353, dport: 53, payload: 'query' })) }),
    drRow({ description: 'IPv4 UDP datagram without a checksum', real: 2, counters: NEW,
      ip: ipv4({ src: CIP, dst: VIP }, udp({ sport: 5354, dport: 53, payload: 'query', checksum: 'none' })) }),
    drRow({ description: 'IPv6 TCP SYN to a dr service', real: 3, counters: NEW,
      ip: ipv6({ src: CIP6, dst: VIP6, flowLabel: 0xabcde }, tcp({ sport: 40000, dport: 443, flags: 'S' })) }),
    drRow({ description: 'IPv6 UDP datagram to a dr service', real: 4, counters: NEW,
      ip: ipv6({ src: CIP6, dst: VIP6 }, udp({ sport: 5353, dport: 53, payload: 'query' })) }),
    drRow({ description: 'IPv4 SYN with an 802.1Q tag: the tag stays', ip: syn(40001), vlan: { id: 100, pcp: 3 }, real: 1, counters: NEW }),
    drRow({ description: 'IPv4 SYN with an 802.1ad tag: the tag stays', ip: syn(40002), vlan: { id: 200, tpid: 0x88a8 }, real: 1, counters: NEW }),
    drRow({ description: 'IPv4 SYN with IP options (record route): forwarded untouched, counted', real: 1,
      counters: { ...NEW, ipv4_options: 1 },
      ip: ipv4({ src: CIP, dst: VIP, df: true, options: [{ type: 7, data: Buffer.from([4, 0, 0, 0, 0, 0, 0, 0, 0]) }] }, tcp({ sport: 40003, dport: 80, flags: 'S' })) }),
    drRow({ description: 'IPv6 SYN behind hop-by-hop and destination options: forwarded, counted', real: 3,
      counters: { ...NEW, ipv6_ext_skipped: 1 },
      ip: ipv6({ src: CIP6, dst: VIP6, ext: [{ type: 'hopopts' }, { type: 'dstopts' }] }, tcp({ sport: 40001, dport: 443, flags: 'S' })) }),
    drRow({ description: 'IPv6 SYN behind a routing header with no segments left: forwarded', real: 3,
      counters: { ...NEW, ipv6_ext_skipped: 1 },
      ip: ipv6({ src: CIP6, dst: VIP6, ext: [{ type: 'routing', segmentsLeft: 0 }] }, tcp({ sport: 40002, dport: 443, flags: 'S' })) }),
    drRow({ description: 'SYN to port 8080 of an all-ports (port 0) service', real: 5, counters: NEW,
      ip: ipv4({ src: CIP, dst: VIP_ANY, df: true }, tcp({ sport: 40000, dport: 8080, flags: 'S' })) }),
    drRow({ description: 'SYN with TCP options and data', ip: syn(40004, {
      options: [{ kind: 'mss', value: 1460 }, { kind: 'sackOk' }, { kind: 'timestamp', value: 7, echo: 0 }, { kind: 'nop' }, { kind: 'wscale', shift: 7 }],
      payload: Buffer.alloc(100, 0x61) }), real: 1, counters: NEW }),
    drRow({ description: 'SYN+ACK opens a connection too (IPVS: syn and not rst)', ip: syn(40005, { flags: 'SA' }), real: 1, counters: NEW }),
    drRow({ description: 'a 60-byte frame with Ethernet padding: padding kept', ip: syn(40006), padTo: 60, real: 1, counters: NEW }),
    drRow({ description: 'a full 1500-byte IPv4 segment', real: 1, counters: HIT,
      ip: ipv4({ src: CIP, dst: VIP, df: true }, tcp({ sport: 40000, dport: 80, flags: 'A', payload: Buffer.alloc(1460, 0x5a) })) }),
    drRow({ description: 'a 1500-byte IPv6 UDP datagram', real: 4, counters: NEW,
      ip: ipv6({ src: CIP6, dst: VIP6 }, udp({ sport: 5000, dport: 53, payload: Buffer.alloc(1452, 0x33) })) }),
  ]
  for (const row of rows) runRow(t, d, row)
})

t.test('dr: connection entries the packets leave', needsRoot, async (t) => {
  const d = Director.load(t)
  setup(d)
  const t0 = process.hrtime.bigint()
  const key = { caddr: CIP, vaddr: VIP, cport: 41000, vport: 80, proto: Proto.TCP }
  d.run(ether({ dst: DIRECTOR_MAC, src: CLIENT_MAC }, ipv4({ src: CIP, dst: VIP }, tcp({ sport: 41000, dport: 80, flags: 'S' }))))
  const c = d.conn(key)
  t.ok(c, 'SYN: an entry under (client, VIP, ports, proto)')
  t.equal(c?.real_id, 1, 'entry: real id')
  t.equal(c?.service_id, 0, 'entry: service id')
  t.equal(c?.state, ConnState.SYN_RECV, 'entry: state SYN_RECV')
  t.equal(c?.flags, 0, 'entry: no flags (opened by a SYN)')
  const t1 = process.hrtime.bigint()
  // the packet path's clock is CLOCK_MONOTONIC at the last tick (bpf_ktime_get_coarse_ns): up to a tick behind
  t.ok(c && c.created_ns >= t0 - 20_000_000n && c.created_ns <= t1, 'entry: created_ns is CLOCK_MONOTONIC (coarse) at the run')
  t.equal(c?.last_seen_ns, c?.created_ns, 'entry: last_seen_ns = created_ns on creation')

  const ukey = { caddr: CIP6, vaddr: VIP6, cport: 6000, vport: 53, proto: Proto.UDP }
  d.run(ether({ dst: DIRECTOR_MAC, src: CLIENT_MAC }, ipv6({ src: CIP6, dst: VIP6 }, udp({ sport: 6000, dport: 53 }))))
  const u = d.conn(ukey)
  t.equal(u?.state, ConnState.UDP, 'IPv6 UDP entry: state UDP')
  t.equal(u?.real_id, 4, 'IPv6 UDP entry: real id')
  t.equal(u?.flags, 0, 'IPv6 UDP entry: no flags')
  t.equal(d.allConns().length, 2, 'two entries in xvs_conns')
})

t.test('dr: per-service and per-real stats', needsRoot, async (t) => {
  const d = Director.load(t)
  setup(d)
  const f = (sport: number, flags: string, payload = ''): Buffer =>
    ether({ dst: DIRECTOR_MAC, src: CLIENT_MAC }, ipv4({ src: CIP, dst: VIP }, tcp({ sport, dport: 80, flags, payload })))
  const pkts = [f(42000, 'S'), f(42000, 'A'), f(42000, 'PA', 'x'.repeat(100)), f(42001, 'S')]
  for (const p of pkts) t.equal(d.run(p).action, 'tx', 'forwarded')
  const bytes = BigInt(40 + 40 + 140 + 40)
  t.same(d.serviceStats(0), { conns: 2n, packets_in: 4n, bytes_in: bytes, packets_out: 0n, bytes_out: 0n },
    'service 0: 2 connections, 4 packets, their IP bytes in; nothing out (dr)')
  t.same(d.realStatsOf(1), { conns: 2n, packets_in: 4n, bytes_in: bytes, packets_out: 0n, bytes_out: 0n }, 'real 1: the same')
  t.same(d.serviceStats(1), { conns: 0n, packets_in: 0n, bytes_in: 0n, packets_out: 0n, bytes_out: 0n }, 'service 1 untouched')
  d.run(ether({ dst: DIRECTOR_MAC, src: CLIENT_MAC }, ipv4({ src: CIP, dst: VIP }, tcp({ sport: 42002, dport: 80, flags: 'A' }))))
  t.equal(d.serviceStats(0).packets_in, 4n, 'a packet passed to the stack (no connection) is not counted')
})

t.test('dr: XDP_TX or redirect by the real server egress interface', needsRoot, async (t) => {
  const d = Director.load(t)
  d.settings({})
  const rows: Array<[string, number, number | undefined, string, Record<string, number>]> = [
    ['real ifindex 0: out of the ingress interface', 0, undefined, 'tx', { xdp_tx: 1 }],
    ['real ifindex = ingress ifindex (lo, 1): XDP_TX', 1, 1, 'tx', { xdp_tx: 1 }],
    ['real ifindex 77, not in xvs_tx_ports: bpf_redirect', 77, 1, 'redirect', { xdp_redirect: 1 }],
    ['real ifindex 1, ingress left to the kernel (lo, 1): XDP_TX', 1, undefined, 'tx', { xdp_tx: 1 }],
  ]
  let id = 1
  for (const [description, ifindex, ingress, verdict, ctrs] of rows) {
    const vip = `10.0.1.${id}`
    d.addService({ id, vip, port: 80, sched: Sched.RR, reals: [{ id, addr: `10.1.1.${id}`, ifindex, dst_mac: REAL_MAC[1]!, src_mac: EGRESS_MAC }] })
    const ip = ipv4({ src: CIP, dst: vip }, tcp({ sport: 43000, dport: 80, flags: 'S' }))
    runRow(t, d, {
      description, input: ether({ dst: DIRECTOR_MAC, src: CLIENT_MAC }, ip), verdict: verdict as 'tx',
      output: ether({ dst: REAL_MAC[1]!, src: EGRESS_MAC }, ip), counters: { conn_new: 1, fwd_dr: 1, ...ctrs },
      ...(ingress === undefined ? {} : { ingressIfindex: ingress }),
    })
    id++
  }
})

t.test('dr: redirect without the devmap (xvs_cfg_tx_via_devmap 0)', needsRoot, async (t) => {
  const d = Director.load(t, { txViaDevmap: false })
  d.settings({})
  d.addService({ id: 0, vip: VIP, port: 80, sched: Sched.RR, reals: [{ id: 1, addr: '10.1.0.1', ifindex: 77, dst_mac: REAL_MAC[1]!, src_mac: EGRESS_MAC }] })
  const ip = ipv4({ src: CIP, dst: VIP }, tcp({ sport: 43000, dport: 80, flags: 'S' }))
  runRow(t, d, {
    description: 'bpf_redirect to ifindex 77', input: ether({ dst: DIRECTOR_MAC, src: CLIENT_MAC }, ip), verdict: 'redirect',
    output: ether({ dst: REAL_MAC[1]!, src: EGRESS_MAC }, ip), counters: { conn_new: 1, fwd_dr: 1, xdp_redirect: 1 },
  })
})

t.test('a real server with an unknown method: dropped, counted', needsRoot, async (t) => {
  const d = Director.load(t)
  d.settings({})
  d.addService({ id: 2, vip: VIP, port: 82, sched: Sched.RR, reals: [{ id: 3, addr: '10.1.0.3', method: 9 }] })
  const f = (dport: number): Buffer => ether({ dst: DIRECTOR_MAC, src: CLIENT_MAC }, ipv4({ src: CIP, dst: VIP }, tcp({ sport: 44000, dport, flags: 'S' })))
  runRow(t, d, { description: 'SYN to a real with an unknown method', input: f(82), verdict: 'drop', counters: { conn_new: 1, drop_bad_real: 1 } })
  t.equal(d.serviceStats(2).packets_in, 0n, 'a dropped packet is not counted as forwarded')
})
