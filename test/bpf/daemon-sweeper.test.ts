// SPDX-License-Identifier: GPL-2.0-only
// The daemon's connection sweeper against the real xvs_conns of a loaded (unattached) director: entries
// the packet path made (BPF_PROG_TEST_RUN) are judged on the same clock (bpf_ktime_get_ns and
// process.hrtime both read CLOCK_MONOTONIC); what the sweeper deletes the packet path would treat as
// absent, what it keeps the packet path still uses; entries of a replaced service go; a table of
// 100,000 entries is swept in bounded batches with the event loop running between them; and through
// the daemon's BpfHost, groups and templates are judged as the packet path does and the data plane's
// per-server connection counters are rewritten from the sweep's counts.
import t from 'tap'
import { needsRoot } from '../helpers/root'
import { CLIENT_MAC, Director, DIRECTOR_MAC } from '../helpers/director'
import { Conn, ConnKey, ConnState, Proto, Sched, Service, Timeouts } from '../../src/dataplane/abi'
import { ConnSweeper } from '../../src/daemon/sweeper'
import { FakeClock } from '../../src/util/clock'
import { BpfHost } from '../../src/daemon/host'
import { loadDetached } from '../../src/dataplane/loader'
import { applyModel } from '../../src/dataplane/writer'
import { countConns, readConnCounters } from '../../src/dataplane/conncount'
import { parseConfig } from '../../src/config'
import { ether, ipv4, tcp, udp } from '../../src/lab/packet'
import { loHop, NAT_MODEL, tcpPkt } from '../helpers/sched'

const CIP = '10.0.0.1'
const VIP = '10.0.0.10'
const MAC = '02:00:00:00:03:01'
const defaults = { tcp_timeout_s: 0, tcp_fin_timeout_s: 0, udp_timeout_s: 0 }

function setup(d: Director): void {
  d.settings({})
  d.addService({ id: 0, vip: VIP, port: 80, sched: Sched.RR, reals: [{ id: 1, addr: '10.1.0.1', dst_mac: MAC }] })
  d.addService({ id: 1, vip: VIP, port: 53, proto: Proto.UDP, sched: Sched.RR, reals: [{ id: 2, addr: '10.1.0.2', dst_mac: MAC }] })
}
const seg = (sport: number, flags: string): Buffer => ether({ dst: DIRECTOR_MAC, src: CLIENT_MAC }, ipv4({ src: CIP, dst: VIP }, tcp({ sport, dport: 80, flags })))
const dgram = (sport: number): Buffer => ether({ dst: DIRECTOR_MAC, src: CLIENT_MAC }, ipv4({ src: CIP, dst: VIP }, udp({ sport, dport: 53, payload: 'q' })))
const tkey = (cport: number) => ({ caddr: CIP, vaddr: VIP, cport, vport: 80, proto: Proto.TCP })
const ukey = (cport: number) => ({ caddr: CIP, vaddr: VIP, cport, vport: 53, proto: Proto.UDP })

function sweeper(d: Director, o: Partial<ConstructorParameters<typeof ConnSweeper>[0]> = {}): ConnSweeper {
  return new ConnSweeper({ conns: d.conns, timeouts: () => defaults, ...o })
}

t.test('entries made by the packet path: the sweeper and the packet path agree on what is expired', needsRoot, async (t) => {
  const d = Director.load(t)
  setup(d)
  // SYN_RECV (60 s), ESTABLISHED (900 s), FIN_WAIT (120 s), CLOSE (10 s), UDP (300 s).
  const flows: { key: Parameters<Director['conn']>[0]; packets: Buffer[]; state: number; timeout: number }[] = [
    { key: tkey(40000), packets: [seg(40000, 'S')], state: ConnState.SYN_RECV, timeout: Timeouts.SYN_RECV_S },
    { key: tkey(40001), packets: [seg(40001, 'S'), seg(40001, 'A')], state: ConnState.ESTABLISHED, timeout: Timeouts.TCP_S },
    { key: tkey(40002), packets: [seg(40002, 'S'), seg(40002, 'A'), seg(40002, 'FA')], state: ConnState.FIN_WAIT, timeout: Timeouts.TCP_FIN_S },
    { key: tkey(40003), packets: [seg(40003, 'S'), seg(40003, 'A'), seg(40003, 'RA')], state: ConnState.CLOSE, timeout: Timeouts.CLOSE_S },
    { key: ukey(5300), packets: [dgram(5300)], state: ConnState.UDP, timeout: Timeouts.UDP_S },
  ]
  for (const f of flows) for (const p of f.packets) t.match(d.run(p).action, /tx/i)
  for (const f of flows) t.equal(d.conn(f.key)?.state, f.state, `${f.state} made by the packet path`)

  let r = await sweeper(d).sweep()
  t.same({ scanned: r.scanned, expired: r.expired }, { scanned: 5, expired: 0 }, 'fresh entries are all alive on the sweeper\'s clock')
  t.same(r.counts.get(1), { active: 1, inactive: 3, persistent: 0 }, 'real 1: one ESTABLISHED, three in other states')
  t.same(r.counts.get(2), { active: 0, inactive: 1, persistent: 0 }, 'real 2: the UDP flow, inactive')

  // Two seconds short of each timeout: kept; three past it: deleted. The packet path agrees.
  for (const f of flows) d.ageConn(f.key, f.timeout - 2)
  r = await sweeper(d).sweep()
  t.equal(r.expired, 0, 'nothing deleted two seconds before the timeouts')
  for (const f of flows) d.ageConn(f.key, 5)
  r = await sweeper(d).sweep()
  t.equal(r.expired, 5, 'all deleted three seconds after their timeouts')
  t.equal(d.allConns().length, 0)

  // The same ages, judged by the packet path instead (the entry is treated as absent: conn_expired).
  for (const f of flows) for (const p of f.packets) d.run(p)
  for (const f of flows) d.ageConn(f.key, f.timeout + 3)
  const expiredBefore = d.counters().conn_expired ?? 0n
  for (const f of flows) d.run(f.packets[0]!)
  t.equal((d.counters().conn_expired ?? 0n) - expiredBefore, 5n, 'the packet path found the same five expired')
})

t.test('configured timeouts (xvs_settings) are the ones applied', needsRoot, async (t) => {
  const d = Director.load(t)
  setup(d)
  d.run(seg(41000, 'S')); d.run(seg(41000, 'A'))
  d.ageConn(tkey(41000), 65)
  const settings = () => ({ tcp_timeout_s: 60, tcp_fin_timeout_s: 0, udp_timeout_s: 0 })
  t.equal((await sweeper(d).sweep()).expired, 0, 'alive under the 900 s default')
  t.equal((await sweeper(d, { timeouts: settings }).sweep()).expired, 1, 'expired under tcp 60 s')
})

t.test('entries of a service that was replaced are deleted', needsRoot, async (t) => {
  const d = Director.load(t)
  setup(d)
  d.run(seg(42000, 'S'))
  d.run(dgram(5301))
  const ids = () => ({ ids: new Map([...d.services.entries()].map((e) => [e.key.toString('hex'), Service.decode(e.value).id])) })
  t.equal((await sweeper(d, { services: ids }).sweep()).stale, 0, 'both services as they were: nothing stale')
  d.setService(VIP, 80, Proto.TCP, { ...d.service(VIP, 80)!, id: 7 })
  const r = await sweeper(d, { services: ids }).sweep()
  t.equal(r.stale, 1, 'the TCP entry of the replaced service went')
  t.ok(d.conn(ukey(5301)), 'the UDP service\'s entry stayed')
})

t.test('100,000 entries: bounded batches, the event loop keeps running', needsRoot, async (t) => {
  const d = Director.load(t, { conns: 1 << 17 })
  setup(d)
  const now = process.hrtime.bigint()
  const n = 100_000
  const keys = Buffer.alloc(n * ConnKey.size)
  const values = Buffer.alloc(n * Conn.size)
  for (let i = 0; i < n; i++) {
    ConnKey.encodeInto({ caddr: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, vaddr: VIP, cport: 1024 + (i % 50000), vport: 80, proto: Proto.TCP, family: 2 }, keys, i * ConnKey.size)
    // Every other entry idle for 1000 s (past ESTABLISHED's 900), the rest fresh.
    Conn.encodeInto({ last_seen_ns: i % 2 ? now : now - 1000n * 1_000_000_000n, created_ns: now - 1_000_000_000_000n, real_id: 1, service_id: 0, state: ConnState.ESTABLISHED }, values, i * Conn.size)
  }
  t.equal(d.conns.updateBatchRaw(keys, values, n), n, 'table filled')
  // Yielding is shown by the event loop running between batches (an immediate that re-queues itself
  // counts its turns); how long each batch held the loop is reported, not asserted (a shared machine).
  let turns = 0
  let spinning = true
  const spin = (): void => { turns++; if (spinning) setImmediate(spin) }
  setImmediate(spin)
  let maxGap = 0
  let last = performance.now()
  const timer = setInterval(() => { const x = performance.now(); maxGap = Math.max(maxGap, x - last); last = x }, 1)
  const started = performance.now()
  const r = await sweeper(d, { batchSize: 4096 }).sweep()
  const ms = performance.now() - started
  spinning = false
  clearInterval(timer)
  t.equal(r.scanned, n)
  t.equal(r.expired, n / 2)
  t.equal(r.counts.get(1)?.active, n / 2, 'the fresh half counted active')
  t.ok(r.batches >= Math.ceil(n / 4096), `${r.batches} batches`)
  t.ok(turns >= r.batches - 1, `the event loop ran between batches (${turns} turns for ${r.batches} batches)`)
  t.comment(`swept ${n} entries (${n / 2} deleted) in ${ms.toFixed(0)} ms; longest event-loop gap ${maxGap.toFixed(1)} ms`)
  t.equal([...d.conns.keys()].length, n / 2)
})

t.test('a pass through BpfHost: services, groups and templates judged as the packet path does; counters reconciled', needsRoot, async (t) => {
  const dp = loadDetached({ connTableSize: 4096 })
  t.teardown(() => dp.close())
  const MODEL = `services:
  - vip: 10.0.0.10
    port: 80
    scheduler: wlc
    real_servers:
      - { address: 10.1.0.1, method: dr }
      - { address: 10.1.0.2, method: dr }
  - vip: 10.0.0.10
    port: 443
    scheduler: rr
    persistence: 60
    real_servers:
      - { address: 10.1.0.3, method: dr }
  - group: 5
    scheduler: rr
    match: [{ vip: 10.0.0.11, protocol: tcp, ports: 9000-9009 }]
    real_servers:
      - { address: 10.1.0.4, method: dr }
`
  applyModel(dp, parseConfig(MODEL, 'm.yaml', 'yaml').model, { resolve: loHop })
  const host = new BpfHost({ dataplane: dp })
  const run = (pkt: Buffer): string => dp.prog.testRun(pkt).action
  const tcpTo = (sport: number, flags: string, dport = 80, dst = '10.0.0.10', src = '10.0.0.1') => run(tcpPkt({ src, dst, sport, dport, flags }))
  for (const p of [1000, 1002, 1004]) { tcpTo(p, 'S'); tcpTo(p, 'A') }
  tcpTo(2000, 'S', 443); tcpTo(2000, 'A', 443)
  tcpTo(3000, 'S', 9005, '10.0.0.11'); tcpTo(3000, 'A', 9005, '10.0.0.11')
  const sw = new ConnSweeper({
    conns: host.conns(), timeouts: () => host.timeouts(), services: () => host.serviceIndex(),
    begin: () => host.connCounters(), reconcile: (c, since) => host.reconcile(c, since),
  })
  let r = await sw.sweep()
  t.same({ scanned: r.scanned, expired: r.expired, stale: r.stale }, { scanned: 6, expired: 0, stale: 0 },
    'five flows and a template, none expired; the group\'s flow is not taken for stale')
  t.same(countConns(dp).counts, r.counts, 'the sweeper counts as conncount does')

  // Drift: a flow times out unseen (the data plane still counts it active).
  const k = (sport: number) => ConnKey.encode({ caddr: '10.0.0.1', vaddr: '10.0.0.10', cport: sport, vport: 80, proto: Proto.TCP })
  const c = Conn.decode(dp.maps.conns.lookup(k(1000))!)
  dp.maps.conns.update(k(1000), Conn.encode({ ...c, last_seen_ns: c.last_seen_ns - 902n * 1_000_000_000n }))
  const before = readConnCounters(dp).get(c.real_id)!.active
  r = await sw.sweep()
  t.equal(r.expired, 1, 'the timed-out flow is deleted')
  t.equal(readConnCounters(dp).get(c.real_id)!.active, before - 1, 'and its server\'s active count rewritten one lower')
  const held = readConnCounters(dp)
  for (const [id, n] of countConns(dp).counts) t.same({ active: held.get(id)!.active, inactive: held.get(id)!.inactive, persistent: held.get(id)!.persistent }, n, `real ${id}: counters equal a recount`)
})

t.test('nat and fullnat: reply entries go with their connections, orphans go, live ones stay', needsRoot, async (t) => {
  const dp = loadDetached({ connTableSize: 4096 })
  t.teardown(() => dp.close())
  applyModel(dp, parseConfig(NAT_MODEL, 'm.yaml', 'yaml').model, { resolve: loHop })
  const host = new BpfHost({ dataplane: dp })
  // Outside a namespace with routes, the translated SYNs go to the stack; entries are made all the same.
  for (const [sport, dport] of [[1000, 80], [1001, 80], [2000, 81], [2001, 81]] as const) dp.prog.testRun(tcpPkt({ sport, dport, flags: 'S' }))
  const revs = (): Array<{ key: ReturnType<typeof ConnKey.decode>; flow: ReturnType<typeof ConnKey.decode> }> =>
    [...dp.maps.natRev.entries()].map((e) => ({ key: ConnKey.decode(e.key), flow: ConnKey.decode(e.value) }))
  t.equal(revs().length, 4, 'four connections, four reply entries')
  const nat = revs().find((r) => r.flow.cport === 1000)!
  t.same({ caddr: nat.key.caddr, cport: nat.key.cport, vaddr: nat.key.vaddr, vport: nat.key.vport, kind: nat.key.kind },
    { caddr: '10.1.0.1', cport: 8080, vaddr: '10.0.0.1', vport: 1000, kind: 2 }, 'nat: the reply tuple is RIP:rport -> client')
  const full = revs().find((r) => r.flow.cport === 2000)!
  t.equal(full.key.vaddr, '10.2.0.1', 'fullnat: the reply goes to the local address')

  const clock = new FakeClock(1_000_000)
  const sw = new ConnSweeper({ conns: host.conns(), timeouts: () => host.timeouts(), services: () => host.serviceIndex(), natRev: host.natRev(), realAddrs: () => host.realAddrs(), clock })
  let r = await sw.sweep()
  t.same({ expired: r.expired, natRevRemoved: r.natRevRemoved }, { expired: 0, natRevRemoved: 0 }, 'live connections keep their reply entries')

  // One nat and one fullnat connection time out unseen; an orphan appears (its connection evicted).
  const k = (cport: number, vport: number) => ConnKey.encode({ caddr: '10.0.0.1', vaddr: '10.0.0.10', cport, vport, proto: Proto.TCP })
  for (const [cport, vport] of [[1000, 80], [2000, 81]] as const) {
    const c = Conn.decode(dp.maps.conns.lookup(k(cport, vport))!)
    dp.maps.conns.update(k(cport, vport), Conn.encode({ ...c, last_seen_ns: c.last_seen_ns - 200n * 1_000_000_000n }))
  }
  dp.maps.conns.delete(k(1001, 80))
  r = await sw.sweep()
  t.equal(r.expired, 2, 'the two idle connections are deleted')
  t.equal(r.natRevRemoved, 2, 'with the nat one\'s reply entry, and the orphan\'s')
  t.same(revs().map((x) => x.flow.cport).sort(), [2000, 2001], 'the fullnat one keeps its local port a while (the server\'s TIME_WAIT)')
  clock.advance(119_000)
  r = await sw.sweep()
  t.equal(r.natRevRemoved, 0, 'still kept 119 s later')
  clock.advance(1_000)
  r = await sw.sweep()
  t.equal(r.natRevRemoved, 1, '120 s after it was first found nobody\'s, it goes')
  t.same(revs().map((x) => x.flow.cport), [2001], 'the live fullnat connection keeps its entry')
  clock.advance(600_000)
  r = await sw.sweep()
  t.equal(r.natRevRemoved, 0, 'whatever the time: a live connection\'s entry stays')
})
