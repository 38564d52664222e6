// SPDX-License-Identifier: GPL-2.0-only
// The director's nat and fullnat paths through BPF_PROG_TEST_RUN, run inside a network namespace of
// our own so that bpf_fib_lookup finds real interfaces, routes and PERMANENT neighbours with known
// MACs (ingress_ifindex in the xdp_md names one of them). Katran-style rows: the frame in, the frame
// expected out built field by field from the builders (which compute every checksum from scratch),
// compared byte for byte, every checksum checked again by the independent verifier, and the counters
// that must move, none other.
//
//   namespace (forwarding on)
//     eth0  10.0.0.254/24 fd00::fe/64   clients 10.0.0.1 / .2, fd00::1 / ::2; real R1 10.0.0.21, fd00::21
//           (one-arm); router 10.0.0.9 / fd00::9 for 172.16.0.0/16, fd16::/64; 10.7.0.0/24 and fd07::/64
//           via 10.0.0.99 / fd00::99 and 10.8.0.0/24, fd08::/64 via .98 / ::98, which have no neighbour
//     eth1  10.2.0.254/24 fd02::fe/64   real R2 10.2.0.21, fd02::21 (two-arm); fullnat local addresses
//           10.2.0.200, fd02::200
//     eth2  10.5.0.254/24 fd05::fe/64, MTU 1300: real R3 10.5.0.21, fd05::21; client 10.5.0.1, fd05::1
//     no route to 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32
import fs from 'node:fs'
import t, { type Test } from 'tap'
import { needsRoot } from '../helpers/root'
import { CLIENT_MAC, Director, DIRECTOR_MAC, runRow, type FixtureRow, type Verdict } from '../helpers/director'
import { ConnFlags, ConnKey, ConnKind, ConnState, FwdMethod, Limits, Proto, Sched, type Settings } from '../../src/dataplane/abi'
import { encodeAddr } from '../../src/dataplane/codec'
import { createFibNetns, netnsExists, type FibNetns } from '../../src/lab/fibns'
import { inNetns, run } from '../../src/lab/exec'
import {
  ether, icmp4, icmp6, internetChecksum, ipBytes, ipv4, ipv6, parseFrame, rawPayload, tcp, udp,
  type IpPacket, type IpPayload, type Ipv4Option, type Ipv6Ext, type ParsedFrame, type TcpOption,
} from '../../src/lab/packet'

// --- the namespace --------------------------------------------------------------------------------------

const DIR0_MAC = DIRECTOR_MAC
const DIR1_MAC = '02:00:00:00:01:fe'
const DIR2_MAC = '02:00:00:00:02:fe'
const CLIENT_B_MAC = '02:00:00:00:00:0b'
const ROUTER_MAC = '02:00:00:00:00:09'
const R1_MAC = '02:00:00:00:10:21'
const R2_MAC = '02:00:00:00:20:21'
const R3_MAC = '02:00:00:00:50:21'
const DR_MAC = '02:00:00:00:10:31'

const CIP = '10.0.0.1'
const CIP6 = 'fd00::1'
const CIP_B = '10.0.0.2'
const CIP6_B = 'fd00::2'
const FAR = '172.16.5.5'
const FAR6 = 'fd16::5'
const ROUTER = '10.0.0.9'
const ROUTER6 = 'fd00::9'
const SMALL_CIP = '10.5.0.1'
const SMALL_CIP6 = 'fd05::1'
const NONEIGH_CIP = '10.8.0.1'
const NONEIGH_CIP6 = 'fd08::1'
const NOROUTE_CIP = '203.0.113.7'
const NOROUTE_CIP6 = '2001:db8:7::7'
const LIP = '10.2.0.200'
const LIP6 = 'fd02::200'

const created: string[] = []

function makeNetns(t: Test): FibNetns {
  const ns = createFibNetns({
    prefix: 'xvnat',
    ifaces: [
      { name: 'eth0', mac: DIR0_MAC, addrs: ['10.0.0.254/24', 'fd00::fe/64'] },
      { name: 'eth1', mac: DIR1_MAC, addrs: ['10.2.0.254/24', 'fd02::fe/64', `${LIP}/24`, `${LIP6}/64`] },
      { name: 'eth2', mac: DIR2_MAC, mtu: 1300, addrs: ['10.5.0.254/24', 'fd05::fe/64'] },
    ],
    routes: [
      { dst: '172.16.0.0/16', via: ROUTER, dev: 'eth0' },
      { dst: 'fd16::/64', via: ROUTER6, dev: 'eth0' },
      { dst: '10.7.0.0/24', via: '10.0.0.99', dev: 'eth0' },
      { dst: 'fd07::/64', via: 'fd00::99', dev: 'eth0' },
      { dst: '10.8.0.0/24', via: '10.0.0.98', dev: 'eth0' },
      { dst: 'fd08::/64', via: 'fd00::98', dev: 'eth0' },
    ],
    neighbours: [
      { addr: CIP, mac: CLIENT_MAC, dev: 'eth0' },
      { addr: CIP6, mac: CLIENT_MAC, dev: 'eth0' },
      { addr: CIP_B, mac: CLIENT_B_MAC, dev: 'eth0' },
      { addr: CIP6_B, mac: CLIENT_B_MAC, dev: 'eth0' },
      { addr: ROUTER, mac: ROUTER_MAC, dev: 'eth0' },
      { addr: ROUTER6, mac: ROUTER_MAC, dev: 'eth0' },
      { addr: '10.0.0.21', mac: R1_MAC, dev: 'eth0' },
      { addr: 'fd00::21', mac: R1_MAC, dev: 'eth0' },
      { addr: '10.2.0.21', mac: R2_MAC, dev: 'eth1' },
      { addr: 'fd02::21', mac: R2_MAC, dev: 'eth1' },
      { addr: '10.5.0.21', mac: R3_MAC, dev: 'eth2' },
      { addr: 'fd05::21', mac: R3_MAC, dev: 'eth2' },
      { addr: SMALL_CIP, mac: CLIENT_MAC, dev: 'eth2' },
      { addr: SMALL_CIP6, mac: CLIENT_MAC, dev: 'eth2' },
    ],
  })
  created.push(ns.name)
  t.teardown(() => ns.destroy())
  return ns
}

const IFACE_MAC: Record<string, string> = { eth0: DIR0_MAC, eth1: DIR1_MAC, eth2: DIR2_MAC }

// --- services -------------------------------------------------------------------------------------------

type Fam = 4 | 6
type Kind = 'one' | 'two' | 'fnat' | 'small' | 'noneigh' | 'noroute' | 'fnat1'

/** Each kind is a VIP (IPv4 and IPv6) with TCP 80 -> rport 8080 and UDP 53 -> rport 5353 to one real. */
const KINDS: Record<Kind, { vip: [string, string]; rip: [string, string]; method: number; rmac: string; egress: string; why: string }> = {
  one: { vip: ['10.0.0.10', 'fd00:a::10'], rip: ['10.0.0.21', 'fd00::21'], method: FwdMethod.NAT, rmac: R1_MAC, egress: 'eth0', why: 'nat one-arm' },
  two: { vip: ['10.0.0.11', 'fd00:a::11'], rip: ['10.2.0.21', 'fd02::21'], method: FwdMethod.NAT, rmac: R2_MAC, egress: 'eth1', why: 'nat two-arm' },
  fnat: { vip: ['10.0.0.12', 'fd00:a::12'], rip: ['10.2.0.21', 'fd02::21'], method: FwdMethod.FULLNAT, rmac: R2_MAC, egress: 'eth1', why: 'fullnat two-arm' },
  small: { vip: ['10.0.0.13', 'fd00:a::13'], rip: ['10.5.0.21', 'fd05::21'], method: FwdMethod.NAT, rmac: R3_MAC, egress: 'eth2', why: 'nat over MTU 1300' },
  noneigh: { vip: ['10.0.0.14', 'fd00:a::14'], rip: ['10.7.0.21', 'fd07::21'], method: FwdMethod.NAT, rmac: '', egress: '', why: 'nat, next hop without neighbour' },
  noroute: { vip: ['10.0.0.15', 'fd00:a::15'], rip: ['198.51.100.21', '2001:db8:99::21'], method: FwdMethod.NAT, rmac: '', egress: '', why: 'nat, no route' },
  fnat1: { vip: ['10.0.0.17', 'fd00:a::17'], rip: ['10.0.0.21', 'fd00::21'], method: FwdMethod.FULLNAT, rmac: R1_MAC, egress: 'eth0', why: 'fullnat one-arm' },
}
const KIND_ORDER = Object.keys(KINDS) as Kind[]

interface Svc { id: number; realId: number; vip: string; vport: number; rip: string; rport: number; proto: number; method: number; rmac: string; egress: string }

function svc(kind: Kind, fam: Fam, proto: number): Svc {
  const k = KINDS[kind]
  const id = KIND_ORDER.indexOf(kind) * 4 + (fam === 6 ? 2 : 0) + (proto === Proto.UDP ? 1 : 0)
  const tcp = proto === Proto.TCP
  return { id, realId: id + 1, vip: k.vip[fam === 4 ? 0 : 1], vport: tcp ? 80 : 53, rip: k.rip[fam === 4 ? 0 : 1], rport: tcp ? 8080 : 5353,
    proto, method: k.method, rmac: k.rmac, egress: k.egress }
}

interface Lab { ns: FibNetns; d: Director; ifx(name: string): number }

/** A namespace and a director with every kind's services (settings: nat on, one local address per family). */
function makeLab(t: Test, settings: Partial<Settings> = {}): Lab {
  const ns = makeNetns(t)
  const d = Director.load(t, { netns: ns.name })
  d.settings({ nat: 1, laddrs_v4: 1, laddrs_v6: 1, ...settings })
  d.setLaddrs([LIP], [LIP6])
  for (const i of ['eth0', 'eth1', 'eth2']) d.setTxPort(ns.ifindex(i))
  for (const kind of KIND_ORDER) {
    for (const fam of [4, 6] as const) {
      for (const proto of [Proto.TCP, Proto.UDP]) {
        const s = svc(kind, fam, proto)
        d.addService({ id: s.id, vip: s.vip, port: s.vport, proto, sched: Sched.RR,
          reals: [{ id: s.realId, addr: s.rip, port: s.rport, method: s.method }] })
      }
    }
  }
  return { ns, d, ifx: (name) => ns.ifindex(name) }
}

// --- packets --------------------------------------------------------------------------------------------

interface IpX { ttl?: number; df?: boolean; id?: number; tos?: number; options?: Ipv4Option[]; ext?: Ipv6Ext[]; flowLabel?: number; totalLength?: number }
interface L4X { flags?: string; seq?: number; ack?: number; payload?: Buffer | string; options?: TcpOption[]; checksum?: 'none' }

const famOf = (a: string): Fam => (a.includes(':') ? 6 : 4)

function l4(proto: number, sport: number, dport: number, x: L4X = {}): IpPayload {
  if (proto === Proto.TCP) {
    return tcp({ sport, dport, flags: x.flags ?? 'A', seq: x.seq ?? 1000, ack: x.ack ?? 2000,
      ...(x.payload !== undefined ? { payload: x.payload } : {}), ...(x.options ? { options: x.options } : {}) })
  }
  return udp({ sport, dport, payload: x.payload ?? 'a datagram', ...(x.checksum ? { checksum: x.checksum } : {}) })
}

function ipp(src: string, dst: string, payload: IpPayload, x: IpX = {}): IpPacket {
  if (famOf(src) === 4) {
    return ipv4({ src, dst, ttl: x.ttl ?? 64, df: x.df ?? true, id: x.id ?? 0x1234, tos: x.tos ?? 0,
      ...(x.options ? { options: x.options } : {}), ...(x.totalLength !== undefined ? { totalLength: x.totalLength } : {}) }, payload)
  }
  return ipv6({ src, dst, hopLimit: x.ttl ?? 64, trafficClass: x.tos ?? 0, flowLabel: x.flowLabel ?? 0, ...(x.ext ? { ext: x.ext } : {}) }, payload)
}

interface Tuple { src: string; dst: string; sport: number; dport: number }
interface Macs { src: string; dst: string }

const fromClient: Macs = { src: CLIENT_MAC, dst: DIR0_MAC }
const fromRouter: Macs = { src: ROUTER_MAC, dst: DIR0_MAC }

interface XRow {
  description: string
  proto: number
  /** The packet as it arrives. */
  from: Tuple
  /** As it must leave; a function for what the run decides (a fullnat local port). */
  to: Tuple | (() => Tuple)
  l4?: L4X
  ip?: IpX
  ingress: string
  inMacs?: Macs
  /** Out MACs; 'same' = as they came in (XDP_PASS). */
  outMacs: Macs | 'same'
  /** TTL / hop limit decremented by one (a routed reply). */
  decTtl?: boolean
  vlan?: number
  padTo?: number
  verdict: Verdict
  counters: Record<string, number>
  check?: FixtureRow['check']
}

/** A translation row: the same packet on both sides but for the addresses, ports, TTL and MACs. */
function xrow(lab: Lab, r: XRow): FixtureRow {
  const l2 = { ...(r.vlan === undefined ? {} : { vlan: r.vlan }), ...(r.padTo === undefined ? {} : { padTo: r.padTo }) }
  const inMacs = r.inMacs ?? fromClient
  const ipx = r.ip ?? {}
  const f = r.from
  return {
    description: r.description,
    input: ether({ ...inMacs, ...l2 }, ipp(f.src, f.dst, l4(r.proto, f.sport, f.dport, r.l4), ipx)),
    verdict: r.verdict,
    ingressIfindex: lab.ifx(r.ingress),
    output: () => {
      const o = typeof r.to === 'function' ? r.to() : r.to
      const macs = r.outMacs === 'same' ? inMacs : r.outMacs
      return ether({ ...macs, ...l2 }, ipp(o.src, o.dst, l4(r.proto, o.sport, o.dport, r.l4), { ...ipx, ttl: (ipx.ttl ?? 64) - (r.decTtl ? 1 : 0) }))
    },
    counters: r.counters,
    ...(r.check ? { check: r.check } : {}),
  }
}

const out = (iface: string, dst: string): Macs => ({ dst, src: IFACE_MAC[iface]! })
const xmit = (ingress: string, egress: string): Record<string, number> => (ingress === egress ? { xdp_tx: 1 } : { xdp_redirect: 1 })
const key = (caddr: string, vaddr: string, cport: number, vport: number, proto: number) => ({ caddr, vaddr, cport, vport, proto })
const addrBytes = (a: string): Buffer => { const b = Buffer.alloc(16); encodeAddr(a).bytes.copy(b); return b }
const stateName = (s: number | undefined): string => Object.entries(ConnState).find(([, v]) => v === s)?.[0] ?? String(s)
const PROTOS = [[Proto.TCP, 'TCP'], [Proto.UDP, 'UDP']] as const

// --- nat forward and reply ------------------------------------------------------------------------------

t.test('nat: forward and reply, IPv4 and IPv6, TCP and UDP, one-arm (XDP_TX) and two-arm (XDP_REDIRECT)', needsRoot, async (t) => {
  const lab = makeLab(t)
  const { d } = lab
  let cport = 40000
  for (const kind of ['one', 'two'] as const) {
    for (const fam of [4, 6] as const) {
      for (const [proto, pname] of PROTOS) {
        const s = svc(kind, fam, proto)
        const c = fam === 4 ? CIP : CIP6
        const cp = cport++
        const name = `${KINDS[kind].why}, IPv${fam} ${pname}`
        const first: L4X = proto === Proto.TCP ? { flags: 'S', seq: 7, ack: 0, options: [{ kind: 'mss', value: 1460 }, { kind: 'sackOk' }] } : { payload: 'first' }
        runRow(t, d, xrow(lab, { description: `${name}: first packet VIP:${s.vport} -> RIP:${s.rport}, next hop MAC from the neighbour table`,
          proto, from: { src: c, dst: s.vip, sport: cp, dport: s.vport }, to: { src: c, dst: s.rip, sport: cp, dport: s.rport }, l4: first,
          ip: { ttl: 50, tos: 0x28 }, ingress: 'eth0', outMacs: out(s.egress, s.rmac), verdict: s.egress === 'eth0' ? 'tx' : 'redirect',
          counters: { conn_new: 1, fwd_nat: 1, ...xmit('eth0', s.egress) } }))
        const k = key(c, s.vip, cp, s.vport, proto)
        const conn = d.conn(k)
        t.ok(conn, `${name}: connection entry`)
        t.equal(conn?.flags, ConnFlags.NAT, `${name}: flags NAT`)
        t.equal(conn?.real_id, s.realId, `${name}: real id`)
        t.equal(conn?.state, proto === Proto.TCP ? ConnState.SYN_RECV : ConnState.UDP, `${name}: state ${proto === Proto.TCP ? 'SYN_RECV' : 'UDP'}`)
        t.same(d.natRev({ caddr: s.rip, vaddr: c, cport: s.rport, vport: cp, proto }), { ...k, family: fam === 4 ? 2 : 10, kind: 0 },
          `${name}: xvs_nat_rev (RIP, rport, client, cport, proto, family, kind 2) -> the flow key`)

        const rl4: L4X = proto === Proto.TCP ? { flags: 'SA', seq: 9000, ack: 8, payload: Buffer.alloc(33, 0x72) } : { payload: 'the answer, 27 bytes long.' }
        const reply = xrow(lab, { description: `${name}: reply RIP:${s.rport} -> client becomes VIP:${s.vport} -> client, TTL - 1`,
          proto, from: { src: s.rip, dst: c, sport: s.rport, dport: cp }, to: { src: s.vip, dst: c, sport: s.vport, dport: cp }, l4: rl4,
          ip: { ttl: 64, tos: 0x10 }, ingress: s.egress, inMacs: { src: s.rmac, dst: IFACE_MAC[s.egress]! }, outMacs: out('eth0', CLIENT_MAC), decTtl: true,
          verdict: s.egress === 'eth0' ? 'tx' : 'redirect', counters: { nat_reply: 1, ...xmit(s.egress, 'eth0') } })
        runRow(t, d, reply)
        const replyLen = reply.input.length - 14
        for (const [what, st] of [['service', d.serviceStats(s.id)], ['real', d.realStatsOf(s.realId)]] as const) {
          t.equal(st.packets_out, 1n, `${name}: ${what} stats: one packet out`)
          t.equal(st.bytes_out, BigInt(replyLen), `${name}: ${what} stats: its ${replyLen} IP bytes out`)
          t.equal(st.packets_in, 1n, `${name}: ${what} stats: one packet in`)
          t.equal(st.conns, 1n, `${name}: ${what} stats: one connection`)
        }

        runRow(t, d, xrow(lab, { description: `${name}: the next client packet follows the entry`,
          proto, from: { src: c, dst: s.vip, sport: cp, dport: s.vport }, to: { src: c, dst: s.rip, sport: cp, dport: s.rport },
          l4: proto === Proto.TCP ? { flags: 'PA', seq: 8, ack: 9001, payload: 'GET / HTTP/1.1\r\nHost: x\r\n\r\n' } : { payload: 'second' },
          ingress: 'eth0', outMacs: out(s.egress, s.rmac), verdict: s.egress === 'eth0' ? 'tx' : 'redirect', counters: { fwd_nat: 1, ...xmit('eth0', s.egress) } }))
      }
    }
  }

  const s = svc('one', 4, Proto.UDP)
  runRow(t, d, xrow(lab, { description: 'IPv4 UDP without a checksum (0): translated, the checksum stays 0',
    proto: Proto.UDP, from: { src: CIP, dst: s.vip, sport: 41000, dport: 53 }, to: { src: CIP, dst: s.rip, sport: 41000, dport: 5353 },
    l4: { checksum: 'none', payload: 'no checksum' }, ip: { df: false }, ingress: 'eth0', outMacs: out('eth0', R1_MAC), verdict: 'tx',
    counters: { conn_new: 1, fwd_nat: 1, xdp_tx: 1 },
    check: (t, o) => t.equal(o.readUInt16BE(14 + 20 + 6), 0, 'UDP checksum field still 0') }))
  runRow(t, d, xrow(lab, { description: 'its reply without a checksum: stays 0',
    proto: Proto.UDP, from: { src: s.rip, dst: CIP, sport: 5353, dport: 41000 }, to: { src: s.vip, dst: CIP, sport: 53, dport: 41000 },
    l4: { checksum: 'none', payload: 'none back' }, ip: { df: false }, ingress: 'eth0', inMacs: { src: R1_MAC, dst: DIR0_MAC },
    outMacs: out('eth0', CLIENT_MAC), decTtl: true, verdict: 'tx', counters: { nat_reply: 1, xdp_tx: 1 } }))

  // A datagram whose translated checksum computes to 0 must carry 0xffff (RFC 768), never 0 (= none).
  const zeroPayload = (() => {
    const pseudoAndHeader = (src: string, dst: string, sport: number, dport: number, payload: Buffer): number => {
      const seg = Buffer.alloc(8 + payload.length)
      seg.writeUInt16BE(sport, 0); seg.writeUInt16BE(dport, 2); seg.writeUInt16BE(seg.length, 4); payload.copy(seg, 8)
      const ph = Buffer.concat([ipBytes(src), ipBytes(dst), Buffer.from([0, Proto.UDP, seg.length >> 8, seg.length & 0xff])])
      return internetChecksum(ph, seg)
    }
    for (let v = 0; v < 0x10000; v++) {
      const p = Buffer.from([v >> 8, v & 0xff, 0x55, 0x55])
      if (pseudoAndHeader(CIP, s.rip, 41001, 5353, p) === 0) return p
    }
    throw new Error('no payload gives a zero checksum')
  })()
  runRow(t, d, xrow(lab, { description: 'IPv4 UDP whose translated checksum computes to 0: sent as 0xffff',
    proto: Proto.UDP, from: { src: CIP, dst: s.vip, sport: 41001, dport: 53 }, to: { src: CIP, dst: s.rip, sport: 41001, dport: 5353 },
    l4: { payload: zeroPayload }, ingress: 'eth0', outMacs: out('eth0', R1_MAC), verdict: 'tx', counters: { conn_new: 1, fwd_nat: 1, xdp_tx: 1 },
    check: (t, o) => t.equal(o.readUInt16BE(14 + 20 + 6), 0xffff, 'UDP checksum 0xffff') }))

  const far = svc('one', 4, Proto.TCP)
  runRow(t, d, xrow(lab, { description: 'a client behind a router: forwarded to the real server',
    proto: Proto.TCP, from: { src: FAR, dst: far.vip, sport: 42000, dport: 80 }, to: { src: FAR, dst: far.rip, sport: 42000, dport: 8080 },
    l4: { flags: 'S' }, ingress: 'eth0', inMacs: fromRouter, outMacs: out('eth0', R1_MAC), verdict: 'tx',
    counters: { conn_new: 1, fwd_nat: 1, xdp_tx: 1 } }))
  runRow(t, d, xrow(lab, { description: 'its reply goes to the router\'s MAC (the route\'s next hop)',
    proto: Proto.TCP, from: { src: far.rip, dst: FAR, sport: 8080, dport: 42000 }, to: { src: far.vip, dst: FAR, sport: 80, dport: 42000 },
    l4: { flags: 'SA' }, ingress: 'eth0', inMacs: { src: R1_MAC, dst: DIR0_MAC }, outMacs: out('eth0', ROUTER_MAC), decTtl: true, verdict: 'tx',
    counters: { nat_reply: 1, xdp_tx: 1 } }))
  const far6 = svc('two', 6, Proto.TCP)
  runRow(t, d, xrow(lab, { description: 'IPv6 client behind a router, two-arm: forwarded',
    proto: Proto.TCP, from: { src: FAR6, dst: far6.vip, sport: 42001, dport: 80 }, to: { src: FAR6, dst: far6.rip, sport: 42001, dport: 8080 },
    l4: { flags: 'S' }, ingress: 'eth0', inMacs: fromRouter, outMacs: out('eth1', R2_MAC), verdict: 'redirect',
    counters: { conn_new: 1, fwd_nat: 1, xdp_redirect: 1 } }))
  runRow(t, d, xrow(lab, { description: 'its reply: redirected to eth0, to the router\'s MAC, hop limit - 1',
    proto: Proto.TCP, from: { src: far6.rip, dst: FAR6, sport: 8080, dport: 42001 }, to: { src: far6.vip, dst: FAR6, sport: 80, dport: 42001 },
    l4: { flags: 'SA' }, ip: { ttl: 2 }, ingress: 'eth1', inMacs: { src: R2_MAC, dst: DIR1_MAC }, outMacs: out('eth0', ROUTER_MAC), decTtl: true,
    verdict: 'redirect', counters: { nat_reply: 1, xdp_redirect: 1 } }))

  runRow(t, d, xrow(lab, { description: 'an 802.1Q-tagged SYN: translated behind the tag, the tag kept',
    proto: Proto.TCP, from: { src: CIP, dst: far.vip, sport: 42002, dport: 80 }, to: { src: CIP, dst: far.rip, sport: 42002, dport: 8080 },
    l4: { flags: 'S' }, vlan: 5, ingress: 'eth0', outMacs: out('eth0', R1_MAC), verdict: 'tx', counters: { conn_new: 1, fwd_nat: 1, xdp_tx: 1 } }))
  runRow(t, d, xrow(lab, { description: 'a 60-byte frame with Ethernet padding: translated, the padding kept',
    proto: Proto.UDP, from: { src: CIP, dst: s.vip, sport: 42003, dport: 53 }, to: { src: CIP, dst: s.rip, sport: 42003, dport: 5353 },
    l4: { payload: 'q' }, padTo: 60, ingress: 'eth0', outMacs: out('eth0', R1_MAC), verdict: 'tx', counters: { conn_new: 1, fwd_nat: 1, xdp_tx: 1 } }))
})

// --- TCP state ------------------------------------------------------------------------------------------

t.test('nat: TCP state from both directions (the IPVS INPUT and OUTPUT tables)', needsRoot, async (t) => {
  const lab = makeLab(t)
  const { d } = lab
  const s = svc('one', 4, Proto.TCP)
  const S = ConnState
  type Step = [dir: 'in' | 'out', flags: string, state: number, active: number, inactive: number]
  const run = (name: string, cport: number, steps: Step[]): void => {
    const k = key(CIP, s.vip, cport, 80, Proto.TCP)
    steps.forEach(([dir, flags, state, active, inactive], i) => {
      const label = `${name}: step ${i + 1}, ${dir === 'in' ? 'client' : 'server'} [${flags}]`
      const existed = d.conn(k) !== null
      runRow(t, d, dir === 'in'
        ? xrow(lab, { description: label, proto: Proto.TCP, from: { src: CIP, dst: s.vip, sport: cport, dport: 80 }, to: { src: CIP, dst: s.rip, sport: cport, dport: 8080 },
          l4: { flags }, ingress: 'eth0', outMacs: out('eth0', R1_MAC), verdict: 'tx', counters: { ...(existed ? {} : { conn_new: 1 }), fwd_nat: 1, xdp_tx: 1 } })
        : xrow(lab, { description: label, proto: Proto.TCP, from: { src: s.rip, dst: CIP, sport: 8080, dport: cport }, to: { src: s.vip, dst: CIP, sport: 80, dport: cport },
          l4: { flags }, ingress: 'eth0', inMacs: { src: R1_MAC, dst: DIR0_MAC }, outMacs: out('eth0', CLIENT_MAC), decTtl: true, verdict: 'tx',
          counters: { nat_reply: 1, xdp_tx: 1 } }))
      t.equal(stateName(d.conn(k)?.state), stateName(state), `${label}: state ${stateName(state)}`)
      const rc = d.realConns(s.realId)
      t.same([rc.active, rc.inactive], [active, inactive], `${label}: real server counts active ${active}, inactive ${inactive}`)
    })
  }
  // Expected states: Linux net/netfilter/ipvs/ip_vs_proto_tcp.c tcp_states[], INPUT rows for client
  // packets, OUTPUT rows for the server's (IPVS masquerading connections never carry NOOUTPUT).
  run('the server closes first', 40000, [
    ['in', 'S', S.SYN_RECV, 0, 1], //      new entry (INPUT syn, sNO -> sSR)
    ['out', 'SA', S.SYN_RECV, 0, 1], //    OUTPUT syn, sSR -> sSR
    ['in', 'A', S.ESTABLISHED, 1, 0], //   INPUT ack, sSR -> sES: active
    ['out', 'PA', S.ESTABLISHED, 1, 0], // OUTPUT ack, sES -> sES
    ['out', 'FA', S.FIN_WAIT, 0, 1], //    OUTPUT fin, sES -> sFW
    ['in', 'A', S.FIN_WAIT, 0, 1], //      INPUT ack, sFW -> sFW
    ['in', 'FA', S.TIME_WAIT, 0, 1], //    INPUT fin, sFW -> sTW
    ['out', 'A', S.TIME_WAIT, 0, 1], //    OUTPUT ack, sTW -> sTW
  ])
  run('the client closes first', 40001, [
    ['in', 'S', S.SYN_RECV, 0, 2], ['out', 'SA', S.SYN_RECV, 0, 2], ['in', 'A', S.ESTABLISHED, 1, 1],
    ['in', 'FA', S.CLOSE_WAIT, 0, 2], //   INPUT fin, sES -> sCW
    ['out', 'A', S.CLOSE_WAIT, 0, 2], //   OUTPUT ack, sCW -> sCW
    ['out', 'FA', S.TIME_WAIT, 0, 2], //   OUTPUT fin, sCW -> sTW
  ])
  run('the server resets an established connection', 40002, [
    ['in', 'S', S.SYN_RECV, 0, 3], ['out', 'SA', S.SYN_RECV, 0, 3], ['in', 'A', S.ESTABLISHED, 1, 2],
    ['out', 'R', S.CLOSE, 0, 3], //        OUTPUT rst, sES -> sCL
  ])
  run('the server resets a SYN_RECV connection (refused)', 40003, [
    ['in', 'S', S.SYN_RECV, 0, 4],
    ['out', 'RA', S.CLOSE, 0, 4], //       OUTPUT rst, sSR -> sCL (the INPUT table would keep sSR)
  ])
  run('a client reset in SYN_RECV keeps SYN_RECV', 40004, [
    ['in', 'S', S.SYN_RECV, 0, 5],
    ['in', 'R', S.SYN_RECV, 0, 5], //      INPUT rst, sSR -> sSR
    ['out', 'SA', S.SYN_RECV, 0, 5],
    ['in', 'A', S.ESTABLISHED, 1, 4],
  ])
  run('a server FIN straight after its SYN-ACK', 40005, [
    ['in', 'S', S.SYN_RECV, 1, 5], ['out', 'SA', S.SYN_RECV, 1, 5],
    ['out', 'F', S.TIME_WAIT, 1, 5], //    OUTPUT fin, sSR -> sTW
  ])

  // A new SYN on a closed nat connection (TIME_WAIT / CLOSE) is a new connection (conn_reuse_mode); on
  // FIN_WAIT it is not, for nat (the director saw the server's side too), and the INPUT table applies.
  const syn = (cport: number, counters: Record<string, number>, what: string): void => void runRow(t, d, xrow(lab, {
    description: what, proto: Proto.TCP, from: { src: CIP, dst: s.vip, sport: cport, dport: 80 }, to: { src: CIP, dst: s.rip, sport: cport, dport: 8080 },
    l4: { flags: 'S' }, ingress: 'eth0', outMacs: out('eth0', R1_MAC), verdict: 'tx', counters }))
  syn(40000, { conn_reused: 1, conn_new: 1, fwd_nat: 1, xdp_tx: 1 }, 'a SYN on the TIME_WAIT entry: a new connection')
  t.equal(stateName(d.conn(key(CIP, s.vip, 40000, 80, Proto.TCP))?.state), 'SYN_RECV', 'the new entry is in SYN_RECV')
  t.ok(d.natRev({ caddr: s.rip, vaddr: CIP, cport: 8080, vport: 40000, proto: Proto.TCP }), 'with its reply entry')
  syn(40002, { conn_reused: 1, conn_new: 1, fwd_nat: 1, xdp_tx: 1 }, 'a SYN on the CLOSE entry: a new connection')
  run('then FIN_WAIT', 40006, [['in', 'S', S.SYN_RECV, 1, 6], ['in', 'A', S.ESTABLISHED, 2, 5], ['out', 'FA', S.FIN_WAIT, 1, 6]])
  syn(40006, { fwd_nat: 1, xdp_tx: 1 }, 'a SYN on a nat FIN_WAIT entry: the same connection (INPUT syn, sFW -> sSR)')
  t.equal(stateName(d.conn(key(CIP, s.vip, 40006, 80, Proto.TCP))?.state), 'SYN_RECV', 'FIN_WAIT -> SYN_RECV')
})

// --- fullnat --------------------------------------------------------------------------------------------

t.test('fullnat: forward and reply, IPv4 and IPv6, TCP and UDP, two-arm and one-arm', needsRoot, async (t) => {
  const lab = makeLab(t)
  const { d } = lab
  let cport = 40000
  for (const kind of ['fnat', 'fnat1'] as const) {
    for (const fam of [4, 6] as const) {
      for (const [proto, pname] of PROTOS) {
        const s = svc(kind, fam, proto)
        const c = fam === 4 ? CIP : CIP6
        const lip = fam === 4 ? LIP : LIP6
        const cp = cport++
        const name = `${KINDS[kind].why}, IPv${fam} ${pname}`
        const k = key(c, s.vip, cp, s.vport, proto)
        const lport = (): number => d.conn(k)?.lport ?? -1
        runRow(t, d, xrow(lab, { description: `${name}: client:cport -> VIP:${s.vport} becomes LIP:lport -> RIP:${s.rport}`,
          proto, from: { src: c, dst: s.vip, sport: cp, dport: s.vport }, to: () => ({ src: lip, dst: s.rip, sport: lport(), dport: s.rport }),
          l4: proto === Proto.TCP ? { flags: 'S', seq: 1 } : {}, ingress: 'eth0', outMacs: out(s.egress, s.rmac),
          verdict: s.egress === 'eth0' ? 'tx' : 'redirect', counters: { conn_new: 1, fwd_fullnat: 1, ...xmit('eth0', s.egress) } }))
        const conn = d.conn(k)
        t.equal(conn?.flags, ConnFlags.NAT | ConnFlags.FULLNAT, `${name}: flags NAT | FULLNAT`)
        t.same(conn?.laddr, addrBytes(lip), `${name}: laddr is the local address ${lip}`)
        const lp = lport()
        t.ok(lp >= Limits.FNAT_PORT_MIN && lp <= Limits.FNAT_PORT_MAX, `${name}: lport ${lp} in ${Limits.FNAT_PORT_MIN}..${Limits.FNAT_PORT_MAX}`)
        t.same(d.natRev({ caddr: s.rip, vaddr: lip, cport: s.rport, vport: lp, proto }), { ...k, family: fam === 4 ? 2 : 10, kind: 0 },
          `${name}: xvs_nat_rev (RIP, rport, LIP, lport, proto, family, kind 2) -> the client's flow key`)
        t.equal(d.natRev({ caddr: s.rip, vaddr: c, cport: s.rport, vport: cp, proto }), null, `${name}: no reply entry under the client's address`)

        const reply = xrow(lab, { description: `${name}: reply RIP:${s.rport} -> LIP:lport becomes VIP:${s.vport} -> client:cport`,
          proto, from: { src: s.rip, dst: lip, sport: s.rport, dport: lp }, to: { src: s.vip, dst: c, sport: s.vport, dport: cp },
          l4: proto === Proto.TCP ? { flags: 'SA', payload: 'x' } : { payload: 'reply' }, ingress: s.egress, inMacs: { src: s.rmac, dst: IFACE_MAC[s.egress]! },
          outMacs: out('eth0', CLIENT_MAC), decTtl: true, verdict: s.egress === 'eth0' ? 'tx' : 'redirect', counters: { nat_reply: 1, ...xmit(s.egress, 'eth0') } })
        runRow(t, d, reply)
        t.equal(d.realStatsOf(s.realId).bytes_out, BigInt(reply.input.length - 14), `${name}: real stats count the reply's bytes out`)
        runRow(t, d, xrow(lab, { description: `${name}: the next client packet keeps its local port`,
          proto, from: { src: c, dst: s.vip, sport: cp, dport: s.vport }, to: { src: lip, dst: s.rip, sport: lp, dport: s.rport },
          l4: proto === Proto.TCP ? { flags: 'A', payload: 'more' } : { payload: 'more' }, ingress: 'eth0', outMacs: out(s.egress, s.rmac),
          verdict: s.egress === 'eth0' ? 'tx' : 'redirect', counters: { fwd_fullnat: 1, ...xmit('eth0', s.egress) } }))
      }
    }
  }
})

t.test('fullnat: local ports never collide', needsRoot, async (t) => {
  const lab = makeLab(t, { fnat_port_min: 20000, fnat_port_max: 20063 })
  const { d } = lab
  const s = svc('fnat', 4, Proto.TCP)
  const n = 32
  for (let i = 0; i < n; i++) {
    const r = d.run(ether(fromClient, ipp(`10.0.0.${100 + i}`, s.vip, l4(Proto.TCP, 50000, 80, { flags: 'S' }))), { ingressIfindex: lab.ifx('eth0') })
    if (!t.equal(r.action, 'redirect', `client ${i}: SYN forwarded`)) break
  }
  const ports = d.allConns().map((c) => c.value.lport!)
  t.equal(ports.length, n, `${n} connections`)
  t.equal(new Set(ports).size, n, `${n} distinct local ports (32 of 64: random tries often meet taken ones)`)
  t.ok(ports.every((p) => p >= 20000 && p <= 20063), 'all within fnat_port_min..fnat_port_max (20000..20063)')
  const rev = d.allNatRev()
  t.equal(rev.length, n, 'one reply entry per connection')
  t.same(rev.map((e) => e.reply.vport).sort(), [...ports].sort(), 'the reply entries hold those ports')
})

t.test('fullnat: one local port, taken: the next client is dropped until it is free again', needsRoot, async (t) => {
  const lab = makeLab(t, { fnat_port_min: 5000, fnat_port_max: 5000, laddrs_v6: 0 })
  const { d } = lab
  const s = svc('fnat', 4, Proto.TCP)
  const kA = key(CIP, s.vip, 40000, 80, Proto.TCP)
  const kB = key(CIP_B, s.vip, 40000, 80, Proto.TCP)
  const synA = (counters: Record<string, number>, what: string): void => void runRow(t, d, xrow(lab, { description: what, proto: Proto.TCP,
    from: { src: CIP, dst: s.vip, sport: 40000, dport: 80 }, to: { src: LIP, dst: s.rip, sport: 5000, dport: 8080 }, l4: { flags: 'S' },
    ingress: 'eth0', outMacs: out('eth1', R2_MAC), verdict: 'redirect', counters }))
  const synB = (): Buffer => ether({ src: CLIENT_B_MAC, dst: DIR0_MAC }, ipp(CIP_B, s.vip, l4(Proto.TCP, 40000, 80, { flags: 'S' })))
  const refusedB = (what: string): void => {
    runRow(t, d, { description: what, input: synB(), ingressIfindex: lab.ifx('eth0'), verdict: 'drop', counters: { drop_fnat_no_port: 1 } })
    t.equal(d.conn(kB), null, `${what}: no entry left behind`)
    t.equal(d.allNatRev().length, 1, `${what}: still one reply entry`)
  }

  synA({ conn_new: 1, fwd_fullnat: 1, xdp_redirect: 1 }, 'client A: the only port, 5000')
  refusedB('client B while A holds the port: dropped')
  synA({ fwd_fullnat: 1, xdp_redirect: 1 }, 'A retransmits its SYN: same entry, same port')

  d.ageConn(kA, 120) // SYN_RECV lives 60 s
  synA({ conn_expired: 1, conn_new: 1, fwd_fullnat: 1, xdp_redirect: 1 }, 'A\'s entry aged past its timeout; A\'s new SYN: the port again')
  t.equal(d.allNatRev().length, 1, 'the expired connection\'s reply entry went with it')
  refusedB('client B while A\'s new connection holds it: dropped')

  // As the sweeper does: the entry and its reply entry go.
  t.ok(d.deleteConn(kA), 'A\'s entry deleted')
  t.ok(d.natRevMap.delete(d.natRevMap.nextKey(null)!), 'and its reply entry')
  runRow(t, d, xrow(lab, { description: 'client B once the port is free: 5000', proto: Proto.TCP,
    from: { src: CIP_B, dst: s.vip, sport: 40000, dport: 80 }, to: { src: LIP, dst: s.rip, sport: 5000, dport: 8080 }, l4: { flags: 'S' },
    ingress: 'eth0', inMacs: { src: CLIENT_B_MAC, dst: DIR0_MAC }, outMacs: out('eth1', R2_MAC), verdict: 'redirect',
    counters: { conn_new: 1, fwd_fullnat: 1, xdp_redirect: 1 } }))
  t.equal(d.conn(kB)?.lport, 5000, 'B holds port 5000')

  const s6 = svc('fnat', 6, Proto.TCP)
  runRow(t, d, { description: 'IPv6 fullnat with no IPv6 local address (laddrs_v6 0): dropped', ingressIfindex: lab.ifx('eth0'),
    input: ether(fromClient, ipp(CIP6, s6.vip, l4(Proto.TCP, 40000, 80, { flags: 'S' }))), verdict: 'drop', counters: { drop_fnat_no_laddr: 1 } })
  t.equal(d.conn(key(CIP6, s6.vip, 40000, 80, Proto.TCP)), null, 'no entry left behind')
  d.settings({ nat: 1, laddrs_v4: 0, laddrs_v6: 0, fnat_port_min: 5000, fnat_port_max: 5000 })
  runRow(t, d, { description: 'IPv4 fullnat with laddrs_v4 0: dropped', ingressIfindex: lab.ifx('eth0'),
    input: ether(fromClient, ipp(CIP, s.vip, l4(Proto.TCP, 40001, 80, { flags: 'S' }))), verdict: 'drop', counters: { drop_fnat_no_laddr: 1 } })
})

t.test('fullnat: a port held by an expired entry is free for another client; one whose entry is gone, once its reply entry goes', needsRoot, async (t) => {
  const lab = makeLab(t, { fnat_port_min: 5000, fnat_port_max: 5000 })
  const { d } = lab
  const s = svc('fnat', 4, Proto.TCP)
  const kA = key(CIP, s.vip, 40000, 80, Proto.TCP)
  const syn = (c: string, mac: string, what: string, counters: Record<string, number>): void => void runRow(t, d, xrow(lab, { description: what, proto: Proto.TCP,
    from: { src: c, dst: s.vip, sport: 40000, dport: 80 }, to: { src: LIP, dst: s.rip, sport: 5000, dport: 8080 }, l4: { flags: 'S' },
    ingress: 'eth0', inMacs: { src: mac, dst: DIR0_MAC }, outMacs: out('eth1', R2_MAC), verdict: 'redirect', counters }))
  syn(CIP, CLIENT_MAC, 'client A takes port 5000', { conn_new: 1, fwd_fullnat: 1, xdp_redirect: 1 })
  d.ageConn(kA, 120)
  // conntrack.h: "the packet path treats such an entry as absent even before the sweeper runs".
  syn(CIP_B, CLIENT_B_MAC, 'client B after A\'s entry expired (not swept yet): port 5000', { conn_expired: 1, conn_new: 1, fwd_fullnat: 1, xdp_redirect: 1 })
  t.equal(d.conn(kA), null, 'A\'s expired entry is gone')
  t.same(d.natRev({ caddr: s.rip, vaddr: LIP, cport: 8080, vport: 5000, proto: Proto.TCP }), { ...key(CIP_B, s.vip, 40000, 80, Proto.TCP), family: 2, kind: 0 },
    'the reply entry is B\'s')
  t.equal(d.realConns(s.realId).inactive, 1, 'the real server counts one connection (B\'s), A\'s uncounted')

  // An LRU eviction leaves the reply entry behind. The data plane cannot tell it from a connection
  // being opened on another CPU (the reply entry is claimed before the entry is inserted), and a
  // fullnat tuple that lost its connection must wait out the real server's TIME_WAIT anyway: the
  // sweeper deletes it after that (natRetireMs).
  t.ok(d.deleteConn(key(CIP_B, s.vip, 40000, 80, Proto.TCP)), 'B\'s entry deleted (evicted), its reply entry left')
  runRow(t, d, { description: 'client A while the orphaned reply entry holds the port: dropped', ingressIfindex: lab.ifx('eth0'), verdict: 'drop',
    input: ether(fromClient, ipp(CIP, s.vip, l4(Proto.TCP, 40000, 80, { flags: 'S' }))), counters: { drop_fnat_no_port: 1 } })
  runRow(t, d, { description: 'a reply to LIP:5000 finds the orphan: untouched, the local port still held', ingressIfindex: lab.ifx('eth1'), verdict: 'pass',
    output: 'unchanged', input: ether({ src: R2_MAC, dst: DIR1_MAC }, ipp(s.rip, LIP, l4(Proto.TCP, 8080, 5000, { flags: 'A' }))), counters: { pass_nat_stale: 1 } })
  t.ok(d.natRev({ caddr: s.rip, vaddr: LIP, cport: 8080, vport: 5000, proto: Proto.TCP }), 'the orphan is kept for the sweeper')
  t.ok(d.natRevMap.delete(ConnKey.encode({ kind: ConnKind.REPLY, caddr: s.rip, vaddr: LIP, cport: 8080, vport: 5000, proto: Proto.TCP })), 'the sweeper deletes it')
  syn(CIP, CLIENT_MAC, 'client A then: port 5000', { conn_new: 1, fwd_fullnat: 1, xdp_redirect: 1 })
})

t.test('fullnat: a client reusing its port early leaves the old local port claimed (the real server\'s TIME_WAIT)', needsRoot, async (t) => {
  const lab = makeLab(t, { fnat_port_min: 5000, fnat_port_max: 5001 })
  const { d } = lab
  const s = svc('fnat', 4, Proto.TCP)
  const kA = key(CIP, s.vip, 40000, 80, Proto.TCP)
  const synA = () => d.run(ether(fromClient, ipp(CIP, s.vip, l4(Proto.TCP, 40000, 80, { flags: 'S' }))), { ingressIfindex: lab.ifx('eth0') })
  t.equal(synA().action, 'redirect', 'A\'s first connection')
  const first = d.conn(kA)!.lport
  t.ok(first === 5000 || first === 5001, `took port ${first}`)
  // A closes: the connection ends in TIME_WAIT (client FIN, server FIN, client ACK, as the packet path sees it)
  d.setConn(kA, { ...d.conn(kA)!, state: ConnState.TIME_WAIT })
  t.equal(synA().action, 'redirect', 'A reuses its port at once: a new connection')
  t.equal(d.counters().conn_reused, 1n, 'counted as a reuse')
  const second = d.conn(kA)!.lport
  t.not(second, first, `the new connection got the other port (${second}), not the one the server may hold in TIME_WAIT`)
  t.ok(d.natRev({ caddr: s.rip, vaddr: LIP, cport: 8080, vport: first!, proto: Proto.TCP }), 'the old port stays claimed')
  d.setConn(kA, { ...d.conn(kA)!, state: ConnState.TIME_WAIT })
  const r = synA()
  t.equal(r.action, 'drop', 'a third connection at once finds both ports held')
  t.equal(d.counters().drop_fnat_no_port, 1n, 'and says so')
})

// --- ICMP errors ----------------------------------------------------------------------------------------

/**
 * The bytes of a quoted packet after translation: the translated packet cut to `len`, with the quoted
 * transport checksum left as it was (the director does not touch it, as IPVS).
 */
function quoteOf(translated: IpPacket, original: IpPacket, len: number, proto: number): Buffer {
  const tb = translated.bytes()
  const ob = original.bytes()
  const q = Buffer.from(tb.subarray(0, len))
  const l4off = translated.family === 4 ? (tb[0]! & 0xf) * 4 : 40
  const cs = l4off + (proto === Proto.TCP ? 16 : 6)
  for (const i of [cs, cs + 1]) if (i < len) q[i] = ob[i]!
  return q
}

interface IcmpRow {
  description: string
  fam: Fam
  type: number
  code: number
  mtu?: number
  proto: number
  /** The outer header as it arrives, and as it must leave. */
  outerIn: { src: string; dst: string }
  outerOut: () => { src: string; dst: string }
  /** The quoted packet as it arrives, and as it must leave (before cutting). */
  quotedIn: Tuple
  quotedOut: () => Tuple
  quoteLen: number
  ingress: string
  inMacs: Macs
  outMacs: Macs
  decTtl: boolean
  verdict: Verdict
  counters: Record<string, number>
}

function icmpRow(lab: Lab, r: IcmpRow): FixtureRow {
  const ql4: L4X = r.proto === Proto.TCP ? { flags: 'PA', payload: Buffer.alloc(1300, 0x51) } : { payload: Buffer.alloc(1300, 0x55) }
  const quoted = (q: Tuple): IpPacket => ipp(q.src, q.dst, l4(r.proto, q.sport, q.dport, ql4), { ttl: 61 })
  const msg = (body: Buffer | IpPacket, len?: number): IpPayload => {
    const spec = { type: r.type, code: r.code, ...(r.mtu !== undefined ? { mtu: r.mtu } : {}), body, ...(len !== undefined ? { bodyLength: len } : {}) }
    return r.fam === 4 ? icmp4(spec) : icmp6(spec)
  }
  const outer = (o: { src: string; dst: string }, ttl: number, payload: IpPayload): IpPacket =>
    r.fam === 4 ? ipv4({ src: o.src, dst: o.dst, ttl, tos: 0xc0, id: 77 }, payload) : ipv6({ src: o.src, dst: o.dst, hopLimit: ttl }, payload)
  const qin = quoted(r.quotedIn)
  return {
    description: r.description,
    input: ether(r.inMacs, outer(r.outerIn, 60, msg(qin, r.quoteLen))),
    ingressIfindex: lab.ifx(r.ingress),
    verdict: r.verdict,
    output: () => ether(r.outMacs, outer(r.outerOut(), r.decTtl ? 59 : 60, msg(quoteOf(quoted(r.quotedOut()), qin, r.quoteLen, r.proto)))),
    counters: r.counters,
    check: (t, o) => {
      const ip = parseFrame(o).ip
      const icmp = ip?.l4
      const what = (icmp && (icmp.kind === 'icmp' || icmp.kind === 'icmp6')) ? icmp.quoted?.kind : undefined
      t.equal(what, r.fam === 4 ? 'ipv4' : 'ipv6', `${r.description}: the quoted header parses`)
    },
  }
}

t.test('ICMP errors both ways: about replies to the real server, about translated packets to the client', needsRoot, async (t) => {
  const lab = makeLab(t)
  const { d } = lab
  // Connections: nat one-arm TCP and UDP (v4, v6), nat two-arm TCP v4, fullnat two-arm TCP v4 and UDP v6.
  const open: Array<[Kind, Fam, number, number]> = [['one', 4, Proto.TCP, 40000], ['one', 4, Proto.UDP, 33333], ['one', 6, Proto.TCP, 40000],
    ['one', 6, Proto.UDP, 33333], ['two', 4, Proto.TCP, 40000], ['fnat', 4, Proto.TCP, 40000], ['fnat', 6, Proto.UDP, 33333], ['fnat', 6, Proto.TCP, 40000]]
  for (const [kind, fam, proto, cp] of open) {
    const s = svc(kind, fam, proto)
    const r = d.run(ether(fromClient, ipp(fam === 4 ? CIP : CIP6, s.vip, l4(proto, cp, s.vport, { flags: 'S' }))), { ingressIfindex: lab.ifx('eth0') })
    t.ok(r.action === 'tx' || r.action === 'redirect', `setup: ${kind} IPv${fam} ${proto === Proto.TCP ? 'TCP' : 'UDP'} connection opened (${r.action})`)
  }
  const lport = (kind: Kind, fam: Fam, proto: number, cp: number): number => {
    const s = svc(kind, fam, proto)
    return d.conn(key(fam === 4 ? CIP : CIP6, s.vip, cp, s.vport, proto))?.lport ?? -1
  }
  const IN = { nat_icmp: 1 }
  const rows: FixtureRow[] = []
  // From the client's side, quoting a reply VIP:vport -> client:cport.
  {
    const s = svc('one', 4, Proto.TCP)
    rows.push(icmpRow(lab, { description: 'nat: frag-needed from a router about a reply: to the real server, quoting RIP:8080 -> client',
      fam: 4, type: 3, code: 4, mtu: 1400, proto: Proto.TCP, outerIn: { src: ROUTER, dst: s.vip }, outerOut: () => ({ src: ROUTER, dst: s.rip }),
      quotedIn: { src: s.vip, dst: CIP, sport: 80, dport: 40000 }, quotedOut: () => ({ src: s.rip, dst: CIP, sport: 8080, dport: 40000 }),
      quoteLen: 28, ingress: 'eth0', inMacs: fromRouter, outMacs: out('eth0', R1_MAC), decTtl: false, verdict: 'tx',
      counters: { ...IN, xdp_tx: 1 } }))
    rows.push(icmpRow(lab, { description: 'nat: the same quoting 548 bytes (the quoted TCP checksum included, left alone)',
      fam: 4, type: 3, code: 4, mtu: 1400, proto: Proto.TCP, outerIn: { src: ROUTER, dst: s.vip }, outerOut: () => ({ src: ROUTER, dst: s.rip }),
      quotedIn: { src: s.vip, dst: CIP, sport: 80, dport: 40000 }, quotedOut: () => ({ src: s.rip, dst: CIP, sport: 8080, dport: 40000 }),
      quoteLen: 548, ingress: 'eth0', inMacs: fromRouter, outMacs: out('eth0', R1_MAC), decTtl: false, verdict: 'tx',
      counters: { ...IN, xdp_tx: 1 } }))
    const u = svc('one', 4, Proto.UDP)
    rows.push(icmpRow(lab, { description: 'nat: port unreachable from the client about a UDP reply (checksum in the quote, left alone)',
      fam: 4, type: 3, code: 3, proto: Proto.UDP, outerIn: { src: CIP, dst: u.vip }, outerOut: () => ({ src: CIP, dst: u.rip }),
      quotedIn: { src: u.vip, dst: CIP, sport: 53, dport: 33333 }, quotedOut: () => ({ src: u.rip, dst: CIP, sport: 5353, dport: 33333 }),
      quoteLen: 60, ingress: 'eth0', inMacs: fromClient, outMacs: out('eth0', R1_MAC), decTtl: false, verdict: 'tx', counters: { ...IN, xdp_tx: 1 } }))
    const s6 = svc('one', 6, Proto.TCP)
    rows.push(icmpRow(lab, { description: 'nat: ICMPv6 packet too big from a router about a reply',
      fam: 6, type: 2, code: 0, mtu: 1400, proto: Proto.TCP, outerIn: { src: ROUTER6, dst: s6.vip }, outerOut: () => ({ src: ROUTER6, dst: s6.rip }),
      quotedIn: { src: s6.vip, dst: CIP6, sport: 80, dport: 40000 }, quotedOut: () => ({ src: s6.rip, dst: CIP6, sport: 8080, dport: 40000 }),
      quoteLen: 1232, ingress: 'eth0', inMacs: fromRouter, outMacs: out('eth0', R1_MAC), decTtl: false, verdict: 'tx',
      counters: { ...IN, xdp_tx: 1 } }))
    const tw = svc('two', 4, Proto.TCP)
    rows.push(icmpRow(lab, { description: 'nat two-arm: time exceeded from a router about a reply: redirected to the real server',
      fam: 4, type: 11, code: 0, proto: Proto.TCP, outerIn: { src: ROUTER, dst: tw.vip }, outerOut: () => ({ src: ROUTER, dst: tw.rip }),
      quotedIn: { src: tw.vip, dst: CIP, sport: 80, dport: 40000 }, quotedOut: () => ({ src: tw.rip, dst: CIP, sport: 8080, dport: 40000 }),
      quoteLen: 28, ingress: 'eth0', inMacs: fromRouter, outMacs: out('eth1', R2_MAC), decTtl: false, verdict: 'redirect',
      counters: { ...IN, xdp_redirect: 1 } }))
    const f = svc('fnat', 4, Proto.TCP)
    rows.push(icmpRow(lab, { description: 'fullnat: frag-needed about a reply: from LIP to the real server, quoting RIP:8080 -> LIP:lport',
      fam: 4, type: 3, code: 4, mtu: 1400, proto: Proto.TCP, outerIn: { src: ROUTER, dst: f.vip }, outerOut: () => ({ src: LIP, dst: f.rip }),
      quotedIn: { src: f.vip, dst: CIP, sport: 80, dport: 40000 }, quotedOut: () => ({ src: f.rip, dst: LIP, sport: 8080, dport: lport('fnat', 4, Proto.TCP, 40000) }),
      quoteLen: 28, ingress: 'eth0', inMacs: fromRouter, outMacs: out('eth1', R2_MAC), decTtl: false, verdict: 'redirect',
      counters: { ...IN, xdp_redirect: 1 } }))
    const f6 = svc('fnat', 6, Proto.UDP)
    rows.push(icmpRow(lab, { description: 'fullnat: ICMPv6 port unreachable from the client about a UDP reply',
      fam: 6, type: 1, code: 4, proto: Proto.UDP, outerIn: { src: CIP6, dst: f6.vip }, outerOut: () => ({ src: LIP6, dst: f6.rip }),
      quotedIn: { src: f6.vip, dst: CIP6, sport: 53, dport: 33333 }, quotedOut: () => ({ src: f6.rip, dst: LIP6, sport: 5353, dport: lport('fnat', 6, Proto.UDP, 33333) }),
      quoteLen: 100, ingress: 'eth0', inMacs: fromClient, outMacs: out('eth1', R2_MAC), decTtl: false, verdict: 'redirect', counters: { ...IN, xdp_redirect: 1 } }))
  }
  // From the real server's side, quoting what the director sent it.
  {
    const u = svc('one', 4, Proto.UDP)
    rows.push(icmpRow(lab, { description: 'nat: port unreachable from the real server (client -> RIP:5353): to the client from the VIP, quoting client -> VIP:53',
      fam: 4, type: 3, code: 3, proto: Proto.UDP, outerIn: { src: u.rip, dst: CIP }, outerOut: () => ({ src: u.vip, dst: CIP }),
      quotedIn: { src: CIP, dst: u.rip, sport: 33333, dport: 5353 }, quotedOut: () => ({ src: CIP, dst: u.vip, sport: 33333, dport: 53 }),
      quoteLen: 36, ingress: 'eth0', inMacs: { src: R1_MAC, dst: DIR0_MAC }, outMacs: out('eth0', CLIENT_MAC), decTtl: true, verdict: 'tx',
      counters: { ...IN, xdp_tx: 1 } }))
    const s = svc('one', 4, Proto.TCP)
    rows.push(icmpRow(lab, { description: 'nat: frag-needed from the real server quoting 548 bytes of client -> RIP:8080',
      fam: 4, type: 3, code: 4, mtu: 1280, proto: Proto.TCP, outerIn: { src: s.rip, dst: CIP }, outerOut: () => ({ src: s.vip, dst: CIP }),
      quotedIn: { src: CIP, dst: s.rip, sport: 40000, dport: 8080 }, quotedOut: () => ({ src: CIP, dst: s.vip, sport: 40000, dport: 80 }),
      quoteLen: 548, ingress: 'eth0', inMacs: { src: R1_MAC, dst: DIR0_MAC }, outMacs: out('eth0', CLIENT_MAC), decTtl: true, verdict: 'tx',
      counters: { ...IN, xdp_tx: 1 } }))
    const s6 = svc('one', 6, Proto.UDP)
    rows.push(icmpRow(lab, { description: 'nat: ICMPv6 port unreachable from the real server: to the client from the VIP',
      fam: 6, type: 1, code: 4, proto: Proto.UDP, outerIn: { src: s6.rip, dst: CIP6 }, outerOut: () => ({ src: s6.vip, dst: CIP6 }),
      quotedIn: { src: CIP6, dst: s6.rip, sport: 33333, dport: 5353 }, quotedOut: () => ({ src: CIP6, dst: s6.vip, sport: 33333, dport: 53 }),
      quoteLen: 200, ingress: 'eth0', inMacs: { src: R1_MAC, dst: DIR0_MAC }, outMacs: out('eth0', CLIENT_MAC), decTtl: true, verdict: 'tx',
      counters: { ...IN, xdp_tx: 1 } }))
    const tw = svc('two', 4, Proto.TCP)
    rows.push(icmpRow(lab, { description: 'nat two-arm: host unreachable from the real server: redirected to the client',
      fam: 4, type: 3, code: 1, proto: Proto.TCP, outerIn: { src: tw.rip, dst: CIP }, outerOut: () => ({ src: tw.vip, dst: CIP }),
      quotedIn: { src: CIP, dst: tw.rip, sport: 40000, dport: 8080 }, quotedOut: () => ({ src: CIP, dst: tw.vip, sport: 40000, dport: 80 }),
      quoteLen: 28, ingress: 'eth1', inMacs: { src: R2_MAC, dst: DIR1_MAC }, outMacs: out('eth0', CLIENT_MAC), decTtl: true, verdict: 'redirect',
      counters: { ...IN, xdp_redirect: 1 } }))
    const f = svc('fnat', 4, Proto.TCP)
    rows.push(icmpRow(lab, { description: 'fullnat: port unreachable from the real server (LIP:lport -> RIP:8080): to the client from the VIP',
      fam: 4, type: 3, code: 3, proto: Proto.TCP, outerIn: { src: f.rip, dst: LIP }, outerOut: () => ({ src: f.vip, dst: CIP }),
      quotedIn: { src: LIP, dst: f.rip, sport: lport('fnat', 4, Proto.TCP, 40000), dport: 8080 }, quotedOut: () => ({ src: CIP, dst: f.vip, sport: 40000, dport: 80 }),
      quoteLen: 28, ingress: 'eth1', inMacs: { src: R2_MAC, dst: DIR1_MAC }, outMacs: out('eth0', CLIENT_MAC), decTtl: true, verdict: 'redirect',
      counters: { ...IN, xdp_redirect: 1 } }))
    const f6 = svc('fnat', 6, Proto.TCP)
    rows.push(icmpRow(lab, { description: 'fullnat: ICMPv6 packet too big from the real server: to the client from the VIP',
      fam: 6, type: 2, code: 0, mtu: 1280, proto: Proto.TCP, outerIn: { src: f6.rip, dst: LIP6 }, outerOut: () => ({ src: f6.vip, dst: CIP6 }),
      quotedIn: { src: LIP6, dst: f6.rip, sport: lport('fnat', 6, Proto.TCP, 40000), dport: 8080 }, quotedOut: () => ({ src: CIP6, dst: f6.vip, sport: 40000, dport: 80 }),
      quoteLen: 1232, ingress: 'eth1', inMacs: { src: R2_MAC, dst: DIR1_MAC }, outMacs: out('eth0', CLIENT_MAC), decTtl: true, verdict: 'redirect',
      counters: { ...IN, xdp_redirect: 1 } }))
  }
  const before = d.allConns().map((c) => [c.value.state, c.value.last_seen_ns])
  for (const row of rows) runRow(t, d, row)
  t.same(d.allConns().map((c) => [c.value.state, c.value.last_seen_ns]), before, 'errors neither changed nor refreshed an entry')
  t.equal(d.allConns().length, open.length, 'and created none')
  t.equal(d.serviceStats(svc('one', 4, Proto.TCP).id).packets_in, 3n, 'errors towards the real server count as packets in (SYN + 2 errors)')

  // TTL 1 from the real server's side: the kernel answers time exceeded; untouched.
  const s = svc('one', 4, Proto.TCP)
  const ttl1 = ether({ src: R1_MAC, dst: DIR0_MAC }, ipv4({ src: s.rip, dst: CIP, ttl: 1 },
    icmp4({ type: 3, code: 3, body: ipp(CIP, s.rip, l4(Proto.TCP, 40000, 8080, {})), bodyLength: 28 })))
  runRow(t, d, { description: 'an error from the real server with TTL 1: to the stack untouched', input: ttl1, ingressIfindex: lab.ifx('eth0'),
    verdict: 'pass', output: 'unchanged', counters: { pass_nat_ttl: 1 } })
})

// --- next hops ------------------------------------------------------------------------------------------

t.test('next hops: no neighbour, no route, a real server with a resolved MAC, forwarding off', needsRoot, async (t) => {
  const lab = makeLab(t)
  const { d } = lab
  for (const fam of [4, 6] as const) {
    const c = fam === 4 ? CIP : CIP6
    const nn = svc('noneigh', fam, Proto.TCP)
    runRow(t, d, xrow(lab, { description: `IPv${fam}: the route's next hop has no neighbour entry: translated, to the stack to resolve it`,
      proto: Proto.TCP, from: { src: c, dst: nn.vip, sport: 40000, dport: 80 }, to: { src: c, dst: nn.rip, sport: 40000, dport: 8080 },
      l4: { flags: 'S' }, ingress: 'eth0', outMacs: 'same', verdict: 'pass', counters: { conn_new: 1, fwd_nat: 1, pass_nat_no_neigh: 1 } }))
    t.equal(d.serviceStats(nn.id).packets_in, 0n, `IPv${fam}: a passed packet is not counted as forwarded`)
    const nr = svc('noroute', fam, Proto.TCP)
    runRow(t, d, xrow(lab, { description: `IPv${fam}: no route to the real server: translated, to the stack`,
      proto: Proto.TCP, from: { src: c, dst: nr.vip, sport: 40000, dport: 80 }, to: { src: c, dst: nr.rip, sport: 40000, dport: 8080 },
      l4: { flags: 'S' }, ingress: 'eth0', outMacs: 'same', verdict: 'pass', counters: { conn_new: 1, fwd_nat: 1, pass_nat_no_route: 1 } }))
    d.setReal({ id: nr.realId, service_id: nr.id, addr: nr.rip, port: 8080, method: FwdMethod.NAT, dst_mac: '02:00:00:00:99:99', src_mac: '02:00:00:00:99:fe' })
    runRow(t, d, xrow(lab, { description: `IPv${fam}: no route, the real server's entry carries a resolved MAC: sent there (XDP_TX)`,
      proto: Proto.TCP, from: { src: c, dst: nr.vip, sport: 40001, dport: 80 }, to: { src: c, dst: nr.rip, sport: 40001, dport: 8080 },
      l4: { flags: 'S' }, ingress: 'eth0', outMacs: { dst: '02:00:00:00:99:99', src: '02:00:00:00:99:fe' }, verdict: 'tx',
      counters: { conn_new: 1, fwd_nat: 1, xdp_tx: 1 } }))
    d.setReal({ id: nr.realId, service_id: nr.id, addr: nr.rip, port: 8080, method: FwdMethod.NAT, dst_mac: '02:00:00:00:99:99', src_mac: DIR1_MAC,
      ifindex: lab.ifx('eth1') })
    runRow(t, d, xrow(lab, { description: `IPv${fam}: ... and its egress interface: redirected`,
      proto: Proto.TCP, from: { src: c, dst: nr.vip, sport: 40002, dport: 80 }, to: { src: c, dst: nr.rip, sport: 40002, dport: 8080 },
      l4: { flags: 'S' }, ingress: 'eth0', outMacs: { dst: '02:00:00:00:99:99', src: DIR1_MAC }, verdict: 'redirect',
      counters: { conn_new: 1, fwd_nat: 1, xdp_redirect: 1 } }))

    // Replies towards clients the director has no next hop for.
    const s = svc('one', fam, Proto.TCP)
    for (const [cl, stat, what] of [[fam === 4 ? NONEIGH_CIP : NONEIGH_CIP6, 'pass_nat_no_neigh', 'no neighbour'],
      [fam === 4 ? NOROUTE_CIP : NOROUTE_CIP6, 'pass_nat_no_route', 'no route']] as const) {
      runRow(t, d, xrow(lab, { description: `IPv${fam}: a client with ${what} opens a connection`,
        proto: Proto.TCP, from: { src: cl, dst: s.vip, sport: 40000, dport: 80 }, to: { src: cl, dst: s.rip, sport: 40000, dport: 8080 },
        l4: { flags: 'S' }, ingress: 'eth0', outMacs: out('eth0', R1_MAC), verdict: 'tx', counters: { conn_new: 1, fwd_nat: 1, xdp_tx: 1 } }))
      runRow(t, d, xrow(lab, { description: `IPv${fam}: the reply to it (${what}): translated, TTL left for the kernel to count, to the stack`,
        proto: Proto.TCP, from: { src: s.rip, dst: cl, sport: 8080, dport: 40000 }, to: { src: s.vip, dst: cl, sport: 80, dport: 40000 },
        l4: { flags: 'SA' }, ingress: 'eth0', inMacs: { src: R1_MAC, dst: DIR0_MAC }, outMacs: 'same', verdict: 'pass',
        counters: { nat_reply: 1, [stat]: 1 } }))
    }
  }

  const s = svc('one', 4, Proto.TCP)
  const sysctl = (v: number): void => { run(inNetns(lab.ns.name, ['sysctl', '-qw', `net.ipv4.conf.eth0.forwarding=${v}`])) }
  sysctl(0)
  runRow(t, d, xrow(lab, { description: 'forwarding off on the ingress interface (bpf_fib_lookup: FWD_DISABLED): translated, to the stack, counted as no route',
    proto: Proto.TCP, from: { src: CIP, dst: s.vip, sport: 40100, dport: 80 }, to: { src: CIP, dst: s.rip, sport: 40100, dport: 8080 },
    l4: { flags: 'S' }, ingress: 'eth0', outMacs: 'same', verdict: 'pass', counters: { conn_new: 1, fwd_nat: 1, pass_nat_no_route: 1 } }))
  sysctl(1)
})

// --- too big --------------------------------------------------------------------------------------------

t.test('too big for the egress MTU: ICMP to the client (forward), untranslated to the stack (reply)', needsRoot, async (t) => {
  const lab = makeLab(t)
  const { d } = lab
  const tooBig = (description: string, ip: IpPacket, mtu: number, quote: number, counters: Record<string, number>): FixtureRow => ({
    description, input: ether(fromClient, ip), ingressIfindex: lab.ifx('eth0'), verdict: 'tx', counters,
    output: (o: ParsedFrame) => {
      const back = { dst: CLIENT_MAC, src: DIR0_MAC }
      if (ip.family === 4) {
        const id = o.ip?.kind === 'ipv4' ? o.ip.id : 0
        return ether(back, ipv4({ src: ip.dst, dst: ip.src, tos: 0xc0, ttl: 64, id }, icmp4({ type: 3, code: 4, mtu, body: ip, bodyLength: quote })))
      }
      return ether(back, ipv6({ src: ip.dst, dst: ip.src, hopLimit: 64 }, icmp6({ type: 2, mtu, body: ip, bodyLength: quote })))
    },
  })
  for (const fam of [4, 6] as const) {
    const c = fam === 4 ? CIP : CIP6
    const s = svc('small', fam, Proto.TCP)
    const syn = (len: number, sport: number, ipx: IpX = {}): IpPacket =>
      ipp(c, s.vip, l4(Proto.TCP, sport, 80, { flags: 'S', payload: Buffer.alloc(len - (fam === 4 ? 40 : 60), 0x42) }), ipx)
    runRow(t, d, tooBig(`IPv${fam}: a 1400-byte SYN for a real server behind MTU 1300: ${fam === 4 ? 'frag-needed' : 'packet too big'} from the VIP, MTU 1300`,
      syn(1400, 40000), 1300, fam === 4 ? 548 : 1232, { conn_new: 1, tx_too_big_icmp: 1 }))
    runRow(t, d, tooBig(`IPv${fam}: the next 1301-byte packet of that connection: answered again`,
      ipp(c, s.vip, l4(Proto.TCP, 40000, 80, { flags: 'A', payload: Buffer.alloc(1301 - (fam === 4 ? 40 : 60), 0x43) })), 1300, fam === 4 ? 548 : 1232,
      { tx_too_big_icmp: 1 }))
    runRow(t, d, xrow(lab, { description: `IPv${fam}: exactly 1300 bytes fit: forwarded to eth2`,
      proto: Proto.TCP, from: { src: c, dst: s.vip, sport: 40000, dport: 80 }, to: { src: c, dst: s.rip, sport: 40000, dport: 8080 },
      l4: { flags: 'A', payload: Buffer.alloc(1300 - (fam === 4 ? 40 : 60), 0x44) }, ingress: 'eth0', outMacs: out('eth2', R3_MAC), verdict: 'redirect',
      counters: { fwd_nat: 1, xdp_redirect: 1 } }))
  }
  const s4 = svc('small', 4, Proto.TCP)
  runRow(t, d, { description: 'IPv4 without DF, too big: dropped (XDP cannot fragment)', ingressIfindex: lab.ifx('eth0'), verdict: 'drop',
    input: ether(fromClient, ipp(CIP, s4.vip, l4(Proto.TCP, 40000, 80, { flags: 'A', payload: Buffer.alloc(1360) }), { df: false })),
    counters: { drop_too_big: 1 } })

  // Replies towards a client behind eth2 (MTU 1300).
  for (const fam of [4, 6] as const) {
    const c = fam === 4 ? SMALL_CIP : SMALL_CIP6
    const s = svc('one', fam, Proto.TCP)
    runRow(t, d, xrow(lab, { description: `IPv${fam}: a client behind eth2 opens a connection to a real server on eth0`,
      proto: Proto.TCP, from: { src: c, dst: s.vip, sport: 40000, dport: 80 }, to: { src: c, dst: s.rip, sport: 40000, dport: 8080 },
      l4: { flags: 'S' }, ingress: 'eth2', inMacs: { src: CLIENT_MAC, dst: DIR2_MAC }, outMacs: out('eth0', R1_MAC), verdict: 'redirect',
      counters: { conn_new: 1, fwd_nat: 1, xdp_redirect: 1 } }))
    const big = ether({ src: R1_MAC, dst: DIR0_MAC }, ipp(s.rip, c, l4(Proto.TCP, 8080, 40000, { flags: 'A', payload: Buffer.alloc(1400 - (fam === 4 ? 40 : 60), 0x45) })))
    runRow(t, d, { description: `IPv${fam}: a 1400-byte reply to it: untranslated to the stack, which tells the real server`, input: big,
      ingressIfindex: lab.ifx('eth0'), verdict: 'pass', output: 'unchanged', counters: { pass_nat_too_big: 1 } })
    t.equal(stateName(d.conn(key(c, s.vip, 40000, 80, Proto.TCP))?.state), 'SYN_RECV', `IPv${fam}: the passed reply did not move the state (an ACK would make it ESTABLISHED)`)
    t.equal(d.serviceStats(s.id).packets_out, 0n, `IPv${fam}: nor count as out`)
  }
  const s = svc('one', 4, Proto.TCP)
  runRow(t, d, { description: 'IPv4 reply without DF, too big: dropped', ingressIfindex: lab.ifx('eth0'), verdict: 'drop',
    input: ether({ src: R1_MAC, dst: DIR0_MAC }, ipp(s.rip, SMALL_CIP, l4(Proto.TCP, 8080, 40000, { flags: 'A', payload: Buffer.alloc(1360) }), { df: false })),
    counters: { drop_too_big: 1 } })
})

// --- replies nobody owns --------------------------------------------------------------------------------

t.test('replies nobody owns: passed untouched; stale reply entries dropped', needsRoot, async (t) => {
  const lab = makeLab(t)
  const { d } = lab
  const s = svc('one', 4, Proto.TCP)
  const reply = (cport: number, flags = 'SA'): Buffer => ether({ src: R1_MAC, dst: DIR0_MAC }, ipp(s.rip, CIP, l4(Proto.TCP, 8080, cport, { flags })))
  const open = (cport: number): void => { d.run(ether(fromClient, ipp(CIP, s.vip, l4(Proto.TCP, cport, 80, { flags: 'S' }))), { ingressIfindex: lab.ifx('eth0') }) }
  const rev = (cport: number) => ({ caddr: s.rip, vaddr: CIP, cport: 8080, vport: cport, proto: Proto.TCP })
  const row = (description: string, input: Buffer, counters: Record<string, number>): FixtureRow =>
    ({ description, input, ingressIfindex: lab.ifx('eth0'), verdict: 'pass', output: 'unchanged', counters })

  runRow(t, d, row('from RIP:8080 to a client port with no connection: not ours', reply(49999), { pass_not_service: 1 }))
  runRow(t, d, row('from the real server\'s other port: not ours', ether({ src: R1_MAC, dst: DIR0_MAC }, ipp(s.rip, CIP, l4(Proto.TCP, 22, 40000, {}))),
    { pass_not_service: 1 }))

  open(40000)
  t.ok(d.natRev(rev(40000)), 'a connection and its reply entry')
  t.ok(d.deleteConn(key(CIP, s.vip, 40000, 80, Proto.TCP)), 'its entry deleted (LRU eviction), the reply entry left behind')
  runRow(t, d, row('a reply whose connection is gone: untouched, counted stale', reply(40000), { pass_nat_stale: 1 }))
  t.equal(d.natRev(rev(40000)), null, 'the stale reply entry was deleted')
  runRow(t, d, row('the next one: nobody\'s', reply(40000), { pass_not_service: 1 }))

  open(40001)
  d.ageConn(key(CIP, s.vip, 40001, 80, Proto.TCP), 120) // SYN_RECV: 60 s
  const inactive = d.realConns(s.realId).inactive
  runRow(t, d, row('a reply of a connection past its timeout: untouched, the entry and its reply entry dropped', reply(40001),
    { pass_nat_stale: 1, conn_expired: 1 }))
  t.equal(d.conn(key(CIP, s.vip, 40001, 80, Proto.TCP)), null, 'the expired entry is gone')
  t.equal(d.natRev(rev(40001)), null, 'and its reply entry')
  t.equal(d.realConns(s.realId).inactive, inactive - 1, 'and it is uncounted from its real server')

  // A reply entry leading to a flow that is now another connection (here: a dr one).
  d.setConn(key(CIP, s.vip, 40002, 80, Proto.TCP), { real_id: s.realId, service_id: s.id, state: ConnState.ESTABLISHED,
    last_seen_ns: process.hrtime.bigint(), created_ns: process.hrtime.bigint() })
  d.setNatRev(rev(40002), { ...key(CIP, s.vip, 40002, 80, Proto.TCP), family: 2 })
  runRow(t, d, row('a reply entry naming an entry that is no nat connection: stale', reply(40002), { pass_nat_stale: 1 }))
  t.equal(d.natRev(rev(40002)), null, 'that reply entry was deleted')
  t.ok(d.conn(key(CIP, s.vip, 40002, 80, Proto.TCP)), 'the entry it named stays')

  open(40003)
  const k3 = key(CIP, s.vip, 40003, 80, Proto.TCP)
  d.settings({ nat: 0, laddrs_v4: 1, laddrs_v6: 1 })
  runRow(t, d, row('settings.nat 0: replies are not looked for', reply(40003, 'A'), { pass_not_service: 1 }))
  t.equal(stateName(d.conn(k3)?.state), 'SYN_RECV', 'the connection\'s state did not move')
  const err = ether({ src: R1_MAC, dst: DIR0_MAC }, ipv4({ src: s.rip, dst: CIP }, icmp4({ type: 3, code: 3, body: ipp(CIP, s.rip, l4(Proto.TCP, 40003, 8080, {})), bodyLength: 28 })))
  runRow(t, d, row('settings.nat 0: nor ICMP errors from the real server', err, { pass_icmp_no_conn: 1 }))
  d.settings({ nat: 1, laddrs_v4: 1, laddrs_v6: 1 })
  runRow(t, d, xrow(lab, { description: 'settings.nat 1 again: the reply is translated', proto: Proto.TCP,
    from: { src: s.rip, dst: CIP, sport: 8080, dport: 40003 }, to: { src: s.vip, dst: CIP, sport: 80, dport: 40003 }, l4: { flags: 'A' },
    ingress: 'eth0', inMacs: { src: R1_MAC, dst: DIR0_MAC }, outMacs: out('eth0', CLIENT_MAC), decTtl: true, verdict: 'tx', counters: { nat_reply: 1, xdp_tx: 1 } }))
  t.equal(stateName(d.conn(k3)?.state), 'ESTABLISHED', 'and moves the state (OUTPUT ack, sSR -> sES)')
})

// --- bad input ------------------------------------------------------------------------------------------

t.test('bad input: options and extension headers translated right; fragments, truncation, bad lengths never translated', needsRoot, async (t) => {
  const lab = makeLab(t)
  const { d } = lab
  const s = svc('one', 4, Proto.TCP)
  const u = svc('one', 4, Proto.UDP)
  const s6 = svc('one', 6, Proto.TCP)
  const OPTS: Ipv4Option[] = [{ type: 7, data: Buffer.from([4, 0, 0, 0, 0, 0, 0, 0, 0]) }, { type: 1 }]
  runRow(t, d, xrow(lab, { description: 'IPv4 SYN with options (record route): translated after them, checksums valid, counted',
    proto: Proto.TCP, from: { src: CIP, dst: s.vip, sport: 40000, dport: 80 }, to: { src: CIP, dst: s.rip, sport: 40000, dport: 8080 },
    l4: { flags: 'S' }, ip: { options: OPTS }, ingress: 'eth0', outMacs: out('eth0', R1_MAC), verdict: 'tx',
    counters: { conn_new: 1, fwd_nat: 1, xdp_tx: 1, ipv4_options: 1 } }))
  runRow(t, d, xrow(lab, { description: 'its reply with options: translated after them, TTL - 1',
    proto: Proto.TCP, from: { src: s.rip, dst: CIP, sport: 8080, dport: 40000 }, to: { src: s.vip, dst: CIP, sport: 80, dport: 40000 },
    l4: { flags: 'SA' }, ip: { options: [{ type: 1 }, { type: 1 }, { type: 1 }, { type: 0 }] }, ingress: 'eth0', inMacs: { src: R1_MAC, dst: DIR0_MAC },
    outMacs: out('eth0', CLIENT_MAC), decTtl: true, verdict: 'tx', counters: { nat_reply: 1, xdp_tx: 1 } }))
  runRow(t, d, xrow(lab, { description: 'IPv4 UDP with 40 bytes of options: translated',
    proto: Proto.UDP, from: { src: CIP, dst: u.vip, sport: 40000, dport: 53 }, to: { src: CIP, dst: u.rip, sport: 40000, dport: 5353 },
    ip: { options: [{ type: 0x44, data: Buffer.alloc(38) }] }, ingress: 'eth0', outMacs: out('eth0', R1_MAC), verdict: 'tx',
    counters: { conn_new: 1, fwd_nat: 1, xdp_tx: 1, ipv4_options: 1 } }))
  runRow(t, d, xrow(lab, { description: 'IPv6 SYN behind hop-by-hop and destination options: translated, counted',
    proto: Proto.TCP, from: { src: CIP6, dst: s6.vip, sport: 40000, dport: 80 }, to: { src: CIP6, dst: s6.rip, sport: 40000, dport: 8080 },
    l4: { flags: 'S' }, ip: { ext: [{ type: 'hopopts' }, { type: 'dstopts', options: Buffer.alloc(12) }] }, ingress: 'eth0', outMacs: out('eth0', R1_MAC),
    verdict: 'tx', counters: { conn_new: 1, fwd_nat: 1, xdp_tx: 1, ipv6_ext_skipped: 1 } }))
  runRow(t, d, xrow(lab, { description: 'its reply behind a destination options header: translated',
    proto: Proto.TCP, from: { src: s6.rip, dst: CIP6, sport: 8080, dport: 40000 }, to: { src: s6.vip, dst: CIP6, sport: 80, dport: 40000 },
    l4: { flags: 'SA' }, ip: { ext: [{ type: 'dstopts' }] }, ingress: 'eth0', inMacs: { src: R1_MAC, dst: DIR0_MAC },
    outMacs: out('eth0', CLIENT_MAC), decTtl: true, verdict: 'tx', counters: { nat_reply: 1, xdp_tx: 1 } }))
  const deep = ether(fromClient, ipp(CIP6, s6.vip, l4(Proto.TCP, 40001, 80, { flags: 'S' }), { ext: [{ type: 'dstopts', options: Buffer.alloc(600) }] }))
  runRow(t, d, { description: 'IPv6 SYN behind 600 bytes of destination options: beyond the translator\'s reach, dropped untouched',
    input: deep, ingressIfindex: lab.ifx('eth0'), verdict: 'drop', counters: { conn_new: 1, drop_nat_unreachable: 1 },
    check: (t, o) => t.equal(o.toString('hex'), deep.toString('hex'), 'not a byte changed') })

  const pass = (description: string, input: Buffer, counters: Record<string, number>): FixtureRow =>
    ({ description, input, ingressIfindex: lab.ifx('eth0'), verdict: 'pass', output: 'unchanged', counters })
  const drop = (description: string, input: Buffer, counters: Record<string, number>): FixtureRow =>
    ({ description, input, ingressIfindex: lab.ifx('eth0'), verdict: 'drop', counters, check: (t, o) => t.equal(o.toString('hex'), input.toString('hex'), `${description}: untouched`) })
  const c = fromClient
  const r = { src: R1_MAC, dst: DIR0_MAC }
  const rows: FixtureRow[] = [
    pass('IPv4 first fragment (MF) to the VIP', ether(c, ipv4({ src: CIP, dst: s.vip, mf: true }, tcp({ sport: 40000, dport: 80, flags: 'A', payload: Buffer.alloc(64) }))),
      { pass_fragment: 1 }),
    pass('IPv4 later fragment to the VIP', ether(c, ipv4({ src: CIP, dst: s.vip, fragOffset: 10, proto: Proto.TCP }, Buffer.alloc(64, 1))), { pass_fragment: 1 }),
    pass('IPv6 fragment to the VIP', ether(c, ipv6({ src: CIP6, dst: s6.vip, ext: [{ type: 'fragment', more: true, id: 5 }] }, tcp({ sport: 40000, dport: 80, flags: 'A' }))),
      { pass_fragment: 1 }),
    pass('IPv4 fragment of a reply', ether(r, ipv4({ src: s.rip, dst: CIP, mf: true }, tcp({ sport: 8080, dport: 40000, flags: 'A', payload: Buffer.alloc(64) }))),
      { pass_fragment: 1 }),
    pass('IPv6 fragment of a reply', ether(r, ipv6({ src: s6.rip, dst: CIP6, ext: [{ type: 'fragment', offset: 3 }], proto: Proto.TCP }, Buffer.alloc(32))), { pass_fragment: 1 }),
    drop('TCP header cut to 12 bytes (IPv4 to the VIP)', ether(c, ipv4({ src: CIP, dst: s.vip }, rawPayload(Proto.TCP, Buffer.from([0x9c, 0x40, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0])))),
      { drop_truncated: 1 }),
    drop('TCP header cut to 12 bytes (a reply)', ether(r, ipv4({ src: s.rip, dst: CIP }, rawPayload(Proto.TCP, Buffer.from([0x1f, 0x90, 0x9c, 0x40, 0, 0, 0, 1, 0, 0, 0, 0])))),
      { drop_truncated: 1 }),
    drop('UDP header cut to 4 bytes', ether(c, ipv4({ src: CIP, dst: u.vip }, rawPayload(Proto.UDP, Buffer.from([0x9c, 0x40, 0, 53])))), { drop_truncated: 1 }),
    drop('IPv6 TCP header cut to 10 bytes', ether(c, ipv6({ src: CIP6, dst: s6.vip }, rawPayload(Proto.TCP, Buffer.alloc(10)))), { drop_truncated: 1 }),
    drop('TCP data offset 3', ether(c, ipv4({ src: CIP, dst: s.vip }, tcp({ sport: 40000, dport: 80, flags: 'S', dataOffset: 3 }))), { drop_malformed: 1 }),
    drop('IPv4 total length past the frame', ether(c, ipv4({ src: CIP, dst: s.vip, totalLength: 200 }, tcp({ sport: 40000, dport: 80, flags: 'S' }))), { drop_truncated: 1 }),
    drop('IPv4 total length under the header', ether(c, ipv4({ src: CIP, dst: s.vip, totalLength: 16 }, tcp({ sport: 40000, dport: 80, flags: 'S' }))), { drop_malformed: 1 }),
    drop('the datagram ends inside its TCP header (bytes after it in the frame)',
      ether(c, ipv4({ src: CIP, dst: s.vip, totalLength: 30 }, tcp({ sport: 40000, dport: 80, flags: 'S' }))), { drop_truncated: 1 }),
    drop('a reply that ends inside its TCP header', ether(r, ipv4({ src: s.rip, dst: CIP, totalLength: 36 }, tcp({ sport: 8080, dport: 40000, flags: 'A' }))),
      { drop_truncated: 1 }),
    drop('IPv6 payload length past the frame', ether(c, ipv6({ src: CIP6, dst: s6.vip, payloadLength: 300 }, tcp({ sport: 40000, dport: 80, flags: 'S' }))),
      { drop_truncated: 1 }),
  ]
  for (const row of rows) runRow(t, d, row)
  t.equal(d.allConns().length, 4, 'entries only for the three translated SYNs and the one dropped beyond reach')
})

// --- mixed methods --------------------------------------------------------------------------------------

t.test('one service, a dr real and a nat real: each real\'s packets use its method', needsRoot, async (t) => {
  const lab = makeLab(t)
  const { d } = lab
  const VIP_MIX = '10.0.0.16'
  d.addService({ id: 100, vip: VIP_MIX, port: 80, sched: Sched.RR, reals: [
    { id: 200, addr: '10.0.0.31', method: FwdMethod.DR, dst_mac: DR_MAC, src_mac: DIR0_MAC },
    { id: 201, addr: '10.0.0.21', port: 8080, method: FwdMethod.NAT },
  ] })
  const dr = (sport: number, flags: string, counters: Record<string, number>, what: string): FixtureRow => {
    const ip = ipp(CIP, VIP_MIX, l4(Proto.TCP, sport, 80, { flags }))
    return { description: what, input: ether(fromClient, ip), ingressIfindex: lab.ifx('eth0'), verdict: 'tx', output: ether({ dst: DR_MAC, src: DIR0_MAC }, ip), counters }
  }
  const nat = (sport: number, flags: string, counters: Record<string, number>, what: string): FixtureRow => xrow(lab, { description: what, proto: Proto.TCP,
    from: { src: CIP, dst: VIP_MIX, sport, dport: 80 }, to: { src: CIP, dst: '10.0.0.21', sport, dport: 8080 }, l4: { flags },
    ingress: 'eth0', outMacs: out('eth0', R1_MAC), verdict: 'tx', counters })
  d.setRrCursor(100, 0)
  runRow(t, d, dr(41000, 'S', { conn_new: 1, fwd_dr: 1, xdp_tx: 1 }, 'first SYN scheduled to the dr real: MACs only'))
  d.setRrCursor(100, 1)
  runRow(t, d, nat(41001, 'S', { conn_new: 1, fwd_nat: 1, xdp_tx: 1 }, 'second SYN scheduled to the nat real: translated'))
  t.equal(d.conn(key(CIP, VIP_MIX, 41000, 80, Proto.TCP))?.flags, 0, 'the dr connection has no NAT flag')
  t.equal(d.conn(key(CIP, VIP_MIX, 41001, 80, Proto.TCP))?.flags, ConnFlags.NAT, 'the nat connection has')
  t.equal(d.allNatRev().filter((e) => e.flow.vaddr === VIP_MIX).length, 1, 'one reply entry, the nat connection\'s')
  d.setRrCursor(100, 1)
  runRow(t, d, dr(41000, 'A', { fwd_dr: 1, xdp_tx: 1 }, 'the dr connection\'s ACK: still dr'))
  d.setRrCursor(100, 0)
  runRow(t, d, nat(41001, 'A', { fwd_nat: 1, xdp_tx: 1 }, 'the nat connection\'s ACK: still nat'))
  runRow(t, d, xrow(lab, { description: 'the nat real\'s reply: translated', proto: Proto.TCP,
    from: { src: '10.0.0.21', dst: CIP, sport: 8080, dport: 41001 }, to: { src: VIP_MIX, dst: CIP, sport: 80, dport: 41001 }, l4: { flags: 'A' },
    ingress: 'eth0', inMacs: { src: R1_MAC, dst: DIR0_MAC }, outMacs: out('eth0', CLIENT_MAC), decTtl: true, verdict: 'tx', counters: { nat_reply: 1, xdp_tx: 1 } }))
  runRow(t, d, { description: 'a packet from the dr real (it answers the client itself): not ours', ingressIfindex: lab.ifx('eth0'),
    input: ether({ src: DR_MAC, dst: DIR0_MAC }, ipp('10.0.0.31', CIP, l4(Proto.TCP, 80, 41000, { flags: 'A' }))), verdict: 'pass', output: 'unchanged',
    counters: { pass_not_service: 1 } })
  t.equal(d.serviceStats(100).packets_out, 1n, 'service stats: one packet out (the nat reply)')
  t.equal(d.realStatsOf(200).packets_out, 0n, 'the dr real: none out')
})

t.test('every namespace these tests made is gone; one a killed run left is removed by the next', needsRoot, async (t) => {
  t.ok(created.length >= 12, `${created.length} namespaces were made`)
  t.same(created.filter(netnsExists), [], 'none is left')
  let dead = 4_000_000
  while (fs.existsSync(`/proc/${dead}`)) dead--
  const stale = `xvnat-${dead.toString(36)}-abcdef`
  run(['ip', 'netns', 'add', stale])
  t.teardown(() => { if (netnsExists(stale)) run(['ip', 'netns', 'del', stale]) })
  const ns = createFibNetns({ prefix: 'xvnat', ifaces: [] })
  ns.destroy()
  t.notOk(netnsExists(stale), `${stale} (pid ${dead} is not running) removed when the next namespace was made`)
  t.notOk(netnsExists(ns.name), 'and that one destroyed')
})
