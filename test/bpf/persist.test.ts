// SPDX-License-Identifier: GPL-2.0-only
// Persistence through BPF_PROG_TEST_RUN: a client (its address masked with the service's netmask)
// keeps its real server across connections through a template in xvs_conns; the template lives its
// timeout after its last use, and longer while a connection it sent lives; it is dropped when its
// server is removed or down but kept when the server is only quiesced (IPVS defaults); a port-0
// persistent service sends all of a client's ports to one server.
import t, { type Test } from 'tap'
import { needsRoot } from '../helpers/root'
import { Director, runRow } from '../helpers/director'
import { SchedMaps, VIP, VIP6, monoNow, real, realOf, tcpPkt, udpPkt } from '../helpers/sched'
import { ConnFlags, ConnKind, ConnState, Family, Proto, RealFlags, Sched, ServiceFlags, persistMask } from '../../src/dataplane/abi'

const P = ServiceFlags.PERSISTENT

interface Opts { vip?: string; port?: number; proto?: number; timeout?: number; mask?: string | number; flags?: number; n?: number }

function setup(t: Test, o: Opts = {}): { d: Director; m: SchedMaps } {
  const vip = o.vip ?? VIP
  const port = o.port ?? 80
  const proto = o.proto ?? Proto.TCP
  const d = Director.load(t)
  d.settings({})
  const reals = Array.from({ length: o.n ?? 3 }, (_, i) => real(i + 1))
  d.addService({ id: 0, vip, port, proto, sched: Sched.RR, reals })
  const v6 = vip.includes(':')
  d.setService(vip, port, proto, {
    id: 0, sched: Sched.RR, flags: P | (o.flags ?? 0), table_size: reals.length, num_reals: reals.length,
    persist_timeout_s: o.timeout ?? 300, persist_mask: persistMask(o.mask ?? (v6 ? 128 : '255.255.255.255'), v6 ? Family.INET6 : Family.INET),
  })
  return { d, m: new SchedMaps(t, d) }
}

let sport = 30000
/** A new connection from src, run as a CPU whose rr cursor is `cursor`: the real server it went to. */
function conn(d: Director, src: string, o: { dst?: string; dport?: number; cursor?: number } = {}): number {
  const r = d.runWithCursor(0, o.cursor ?? 0, tcpPkt({ src, dst: o.dst ?? (src.includes(':') ? VIP6 : VIP), dport: o.dport ?? 80, sport: sport += 2 }))
  return r.action === 'tx' ? realOf(r.data) : 0
}

const tmplKey = (caddr: string, vport = 80, vaddr = VIP, proto: number = Proto.TCP) =>
  ({ caddr, vaddr, cport: 0, vport, proto, kind: ConnKind.TEMPLATE })

t.test('one client, many connections: one server, whatever rr says', needsRoot, async (t) => {
  const { d, m } = setup(t)
  const first = conn(d, '10.0.0.1', { cursor: 1 })
  t.equal(first, 2, 'the first connection: rr\'s pick from cursor 1')
  const tm = d.conn(tmplKey('10.0.0.1'))
  t.ok(tm, 'a template keyed by the client, the service\'s VIP and port, cport 0')
  t.same([tm?.real_id, tm?.flags, tm?.state], [2, ConnFlags.TEMPLATE, ConnState.NONE], 'naming server 2, flagged TEMPLATE')
  t.same(m.counts(2), [0, 1, 1], 'server 2: one connection (SYN_RECV) and one template')
  const later = [0, 1, 2, 0, 1, 2].map((c) => conn(d, '10.0.0.1', { cursor: c }))
  t.same(later, [2, 2, 2, 2, 2, 2], 'six more connections, from every rr cursor: server 2')
  runRow(t, d, { description: 'a persistent hit', input: tcpPkt({ src: '10.0.0.1', sport: 999 }), verdict: 'tx',
    counters: { persist_hit: 1, conn_new: 1, fwd_dr: 1, xdp_tx: 1 } })
  t.equal(conn(d, '10.0.0.2', { cursor: 0 }), 1, 'another client: scheduled, server 1')
  runRow(t, d, { description: 'a new client: a template made', input: tcpPkt({ src: '10.0.0.3', sport: 999 }), verdict: 'tx',
    counters: { persist_new: 1, conn_new: 1, fwd_dr: 1, xdp_tx: 1 } })
  t.equal(m.conns(2).persistent + m.conns(1).persistent + m.conns(3).persistent, 3, 'three templates counted')
})

t.test('netmask: clients of one /24 share a server; IPv6 by prefix length', needsRoot, async (t) => {
  const { d } = setup(t, { mask: '255.255.255.0' })
  const a = conn(d, '10.0.7.1', { cursor: 2 })
  t.equal(a, 3, 'the first client of 10.0.7.0/24: rr\'s pick')
  t.same(['10.0.7.99', '10.0.7.254', '10.0.7.1'].map((c) => conn(d, c, { cursor: 0 })), [3, 3, 3], 'the same /24: server 3')
  t.equal(conn(d, '10.0.8.1', { cursor: 0 }), 1, 'another /24: its own template, rr\'s pick')
  t.ok(d.conn(tmplKey('10.0.7.0')), 'the template is keyed by the masked address 10.0.7.0')
  t.equal(d.conn(tmplKey('10.0.7.1')), null, 'not by the client\'s own')

  const s6 = setup(t, { vip: VIP6, mask: 64 })
  t.equal(conn(s6.d, 'fd00:1::1', { cursor: 1 }), 2, 'IPv6, /64: the first client')
  t.same(['fd00:1::ffff', 'fd00:1:0:0:abcd::9'].map((c) => conn(s6.d, c, { cursor: 0 })), [2, 2], 'the same /64: server 2')
  t.equal(conn(s6.d, 'fd00:1:0:1::1', { cursor: 0 }), 1, 'the next /64: rr\'s pick')
  t.ok(s6.d.conn(tmplKey('fd00:1::', 80, VIP6)), 'keyed by the /64 prefix')
})

t.test('a template lives its timeout after its last use, and while a connection it sent lives', needsRoot, async (t) => {
  const { d, m } = setup(t, { timeout: 60 })
  t.equal(conn(d, '10.0.0.1', { cursor: 0 }), 1, 'server 1')
  const k = tmplKey('10.0.0.1')
  const nowS = Number(monoNow() / 1_000_000_000n)
  const t0 = d.conn(k)!
  // SYN_RECV lives 60 s (+1 s slack, rounded up)
  t.ok(Math.abs(t0.ctl_until_s! - (nowS + 62)) <= 1, `the connection's SYN_RECV life extends it: ctl_until ${t0.ctl_until_s} ~ now ${nowS} + 62`)
  d.run(tcpPkt({ src: '10.0.0.1', sport, flags: 'A' }))
  t.ok(Math.abs(d.conn(k)!.ctl_until_s! - (nowS + 902)) <= 1, 'ESTABLISHED: until now + 900 + 2')

  // Past its timeout since the last use, but a connection still lives: kept.
  d.setConn(k, { ...d.conn(k)!, last_seen_ns: monoNow() - 61_000_000_000n })
  t.equal(conn(d, '10.0.0.1', { cursor: 1 }), 1, 'idle 61 s (timeout 60) while its connection lives: still server 1')
  t.ok(monoNow() - d.conn(k)!.last_seen_ns < 1_000_000_000n, 'the use restarted its timeout')

  // Past its timeout and no connection left: a new template, scheduled afresh.
  d.setConn(k, { ...d.conn(k)!, last_seen_ns: monoNow() - 61_000_000_000n, ctl_until_s: nowS - 1 })
  const r = d.runWithCursor(0, 1, tcpPkt({ src: '10.0.0.1', sport: 5 }))
  t.same([r.action, realOf(r.data), r.counters], ['tx', 2, { rx: 1, persist_new: 1, conn_new: 1, fwd_dr: 1, xdp_tx: 1 }],
    'expired template: scheduled afresh (rr from cursor 1: server 2), a new template')
  t.same([m.conns(1).persistent, m.conns(2).persistent], [0, 1], 'the expired template uncounted, the new one counted')
  t.equal(d.conn(k)!.real_id, 2, 'the new template names server 2')
  d.setConn(k, { ...d.conn(k)!, last_seen_ns: monoNow() - 59_000_000_000n, ctl_until_s: 0 })
  t.equal(conn(d, '10.0.0.1', { cursor: 2 }), d.conn(k)!.real_id, 'idle 59 s of 60, no connection: still its server')
})

t.test('a short timeout, in real time (one-packet UDP: no connection entry keeps the template)', needsRoot, async (t) => {
  const { d } = setup(t, { port: 53, proto: Proto.UDP, timeout: 1, flags: ServiceFlags.ONE_PACKET })
  const send = (cursor: number): number => realOf(d.runWithCursor(0, cursor, udpPkt({ src: '10.0.0.1', dport: 53, sport: 5353 })).data)
  t.equal(send(0), 1, 'first datagram: server 1')
  t.same([send(1), send(2)], [1, 1], 'within the second: server 1 again')
  await new Promise((r) => setTimeout(r, 2200))
  t.equal(send(1), 2, 'after 2.2 s idle (timeout 1 s): rescheduled, rr\'s pick')
  t.same(d.allConns().map((c) => c.key.kind), [ConnKind.TEMPLATE], 'only the template is in the table')
})

t.test('its server removed or down: rescheduled; quiesced or overloaded: kept (IPVS defaults)', needsRoot, async (t) => {
  for (const [how, extra, kept] of [
    ['quiesced', { weight: 0, flags: RealFlags.QUIESCED }, true], ['overloaded', { upper_threshold: 1 }, true],
    ['down', { flags: RealFlags.DOWN }, false], ['removed', { flags: RealFlags.REMOVED }, false],
  ] as const) {
    const { d, m } = setup(t)
    t.equal(conn(d, '10.0.0.1', { cursor: 0 }), 1, `${how}: server 1 first`)
    d.setReal({ service_id: 0, ...real(1), ...extra })
    if (how === 'overloaded') m.setConns(1, { inactive: 5, overload_upper: 1 })
    const again = conn(d, '10.0.0.1', { cursor: 0 })
    if (kept) t.equal(again, 1, `${how}: the client stays on server 1`)
    else t.equal(again, 2, `${how}: the client is scheduled afresh (server 2) and the template follows`)
    if (!kept) t.equal(d.conn(tmplKey('10.0.0.1'))?.real_id, 2, `${how}: the template names server 2`)
  }
})

t.test('port-0 persistent service: all of a client\'s ports to one server', needsRoot, async (t) => {
  const { d } = setup(t, { port: 0 })
  const first = conn(d, '10.0.0.1', { dport: 80, cursor: 2 })
  t.equal(first, 3, 'port 80: rr\'s pick')
  t.same([443, 22, 8080, 21].map((p, i) => conn(d, '10.0.0.1', { dport: p, cursor: i % 3 })), [3, 3, 3, 3], 'ports 443, 22, 8080, 21: the same server')
  t.ok(d.conn(tmplKey('10.0.0.1', 0)), 'one template with vport 0')
  t.equal(conn(d, '10.0.0.2', { dport: 443, cursor: 0 }), 1, 'another client: its own')
  t.equal(d.allConns().filter((c) => c.key.kind === ConnKind.TEMPLATE).length, 2, 'two templates')
})
