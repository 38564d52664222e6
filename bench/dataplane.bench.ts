// SPDX-License-Identifier: GPL-2.0-only
// Per-packet cost of the director's paths through BPF_PROG_TEST_RUN. A driver program restores a
// fresh packet from a template before every run (repeat would otherwise re-run the rewritten
// buffer) and tail-calls the director; the same driver in front of XDP_PASS is the baseline, and
// every row is reported net of it.
//
// The nat and fullnat rows need bpf_fib_lookup to succeed: they run inside a namespace of their own
// with an interface, routes and permanent neighbours (src/lab/fibns.ts), with the packet's ingress
// ifindex in the xdp_md; the namespace is removed when the suite ends, whatever happens (and one a
// killed run left behind, by the next run).
import { BpfMap, BpfObject, BpfProgram, MapType, withNetns } from '../src/bpf'
import { loadDetached, type Dataplane } from '../src/dataplane/loader'
import { applyModel } from '../src/dataplane/writer'
import { ConnKey, Conn, ConnState, Proto } from '../src/dataplane/abi'
import { parseConfig } from '../src/config'
import { createFibNetns, type FibNetns } from '../src/lab/fibns'
import { ether, ipv4, ipv6, parseFrame, tcp } from '../src/lab/packet'
import { loadPassProgram, nsPerRun, outDir, printRows, type Row } from './harness'

const MAC_DIR = '02:00:00:00:00:01'
const MAC_CLI = '02:00:00:00:00:0c'
const CLIENT4 = '10.1.0.0'   // + run index: a new client per run
const CLIENT6 = 'fd00:1::1'

interface Driver { prog: BpfProgram; tmpl: BpfMap; target: BpfMap; run: BpfMap; close(): void }

function loadDriver(): Driver {
  const obj = BpfObject.open(outDir('bench', 'driver.bpf.o')).load()
  const d = { prog: obj.program('bench_driver'), tmpl: obj.map('bench_tmpl'), target: obj.map('bench_target'), run: obj.map('bench_run') }
  obj.close()
  return { ...d, close: () => { d.prog.close(); d.tmpl.close(); d.target.close(); d.run.close() } }
}

function setTarget(d: Driver, prog: BpfProgram): void {
  const fd = Buffer.alloc(4)
  fd.writeUInt32LE(prog.fd)
  d.target.update(Buffer.alloc(4), fd)
}

/** Template packet; vary = [offset, base, modulus] of a 4-byte field rewritten each run. */
function setTemplate(d: Driver, pkt: Buffer, vary?: [number, number, number]): void {
  const v = Buffer.alloc(16 + 256)
  v.writeUInt32LE(pkt.length, 0)
  if (vary) { v.writeUInt32LE(vary[0], 4); v.writeUInt32LE(vary[1] >>> 0, 8); v.writeUInt32LE(vary[2], 12) }
  pkt.copy(v, 16)
  d.tmpl.update(Buffer.alloc(4), v)
  d.run.updatePerCpu(Buffer.alloc(4), d.run.splitSlots(Buffer.alloc(d.run.valueBytes)))
}

const ip4 = (a: string): number => a.split('.').reduce((n, o) => n * 256 + Number(o), 0)
const SRC4_OFF = 14 + 12 // IPv4 source address in an untagged frame

function pkt4(dst: string, dport: number, flags: string): Buffer {
  return ether({ dst: MAC_DIR, src: MAC_CLI }, ipv4({ src: '10.1.0.1', dst }, tcp({ sport: 40000, dport, flags, payload: Buffer.alloc(6) })))
}
function pkt6(dst: string, dport: number, flags: string): Buffer {
  return ether({ dst: MAC_DIR, src: MAC_CLI }, ipv6({ src: CLIENT6, dst }, tcp({ sport: 40000, dport, flags, payload: Buffer.alloc(6) })))
}

const fakeHop = (address: string) => ({
  address, ifname: 'eth0', ifindex: 1, srcMac: MAC_DIR, dstMac: '02:00:00:00:00:aa', mtu: 9000,
  source: address.includes(':') ? 'fd00::1' : '10.0.0.1',
})

// nat and fullnat (one-arm: clients, real servers and the local address on the namespace's eth0).
const NAT_VIP = '10.9.0.30'
const FNAT_VIP = '10.9.0.31'
const NAT_RIP = '10.0.0.31'
const FNAT_RIP = '10.0.0.32'
const LIP = '10.0.0.200'
const ROUTER = '10.0.0.1'         // the clients' (10.1.0.0/16) next hop
const MAC_ROUTER = '02:00:00:00:00:0e'
const MAC_NAT_RIP = '02:00:00:00:00:31'
const MAC_FNAT_RIP = '02:00:00:00:00:32'

function model(nat = false): ReturnType<typeof parseConfig>['model'] {
  const reals = (m: string, a: string[]): string => a.map((x) => `      - { address: "${x}", method: ${m} }`).join('\n')
  const natServices = !nat ? '' : `
  - vip: ${NAT_VIP}
    port: 80
    scheduler: mh
    real_servers:
      - { address: "${NAT_RIP}", port: 8080, method: nat }
  - vip: ${FNAT_VIP}
    port: 80
    scheduler: mh
    real_servers:
      - { address: "${FNAT_RIP}", port: 8080, method: fullnat }`
  return parseConfig(`${nat ? `settings:\n  local_addresses: [${LIP}]\n` : ''}services:
  - { vip: 10.9.0.1, port: 80, scheduler: mh, real_servers: [] }
  - vip: 10.9.0.2
    port: 80
    scheduler: mh
    real_servers:
${reals('dr', ['10.0.0.11', '10.0.0.12', '10.0.0.13', '10.0.0.14'])}
  - vip: 10.9.0.3
    port: 80
    scheduler: mh
    real_servers:
${reals('tun', ['10.0.0.21', '10.0.0.22'])}
  - vip: "fd00:9::3"
    port: 80
    scheduler: mh
    real_servers:
${reals('tun', ['fd00::21', 'fd00::22'])}
  - vip: 10.9.0.16
    port: 80
    scheduler: wlc
    real_servers:
${reals('dr', many(16, 40))}
  - vip: 10.9.0.17
    port: 80
    scheduler: wlc
    real_servers:
${reals('dr', many(256, 41))}
  - vip: 10.9.0.18
    port: 80
    scheduler: lblcr
    real_servers:
${reals('dr', many(16, 42))}
  - vip: 10.9.0.19
    port: 80
    scheduler: wlc
    persistence: { timeout: 300, netmask: 255.0.0.0 }
    real_servers:
${reals('dr', many(16, 43))}${natServices}
`, 'bench.yaml', 'yaml').model
}

/** The namespace the nat rows run in: eth0 10.0.0.254/24, clients behind ROUTER, both real servers on-link. */
function natNetns(): FibNetns {
  return createFibNetns({
    prefix: 'xvbench',
    ifaces: [{ name: 'eth0', mac: MAC_DIR, addrs: ['10.0.0.254/24', `${LIP}/24`] }],
    routes: [{ dst: '10.1.0.0/16', via: ROUTER, dev: 'eth0' }],
    neighbours: [
      { addr: ROUTER, mac: MAC_ROUTER, dev: 'eth0' },
      { addr: NAT_RIP, mac: MAC_NAT_RIP, dev: 'eth0' },
      { addr: FNAT_RIP, mac: MAC_FNAT_RIP, dev: 'eth0' },
    ],
  })
}

/** struct xdp_md for a test run: data 0, data_end = the packet length, ingress_ifindex. */
function xdpMd(len: number, ifindex: number): Buffer {
  const b = Buffer.alloc(24)
  b.writeUInt32LE(len, 4)
  b.writeUInt32LE(ifindex, 12)
  return b
}

/** A reply from a real server: RIP:8080 -> dst:dport, an ACK with 6 bytes, as the client rows. */
function reply4(src: string, dst: string, dport: number): Buffer {
  return ether({ dst: MAC_DIR, src: MAC_NAT_RIP }, ipv4({ src, dst }, tcp({ sport: 8080, dport, flags: 'A', payload: Buffer.alloc(6) })))
}

/** n real server addresses 10.<net>.x.y. */
const many = (n: number, net: number): string[] => Array.from({ length: n }, (_, i) => `10.${net}.${(i + 1) >> 8}.${(i + 1) & 255}`)

type Measure = (name: string, pkt: Buffer, vary?: [number, number, number], target?: BpfProgram, ctxIn?: Buffer,
  expect?: (out: Buffer) => string) => number

/**
 * nat and fullnat, established, both ways: the services are added to the running data plane, the
 * flows opened and established through the director (SYN, ACK, the server's SYN-ACK), then each way
 * measured inside the namespace, the output checked once (translated, next hop from the neighbour
 * table, not a fallback). Also the pass-through row again: with nat on, a packet for no service costs
 * a reply lookup.
 */
function natRows(dp: Dataplane, measure: Measure): void {
  const ns = natNetns()
  try {
    applyModel(dp, model(true), { resolve: fakeHop })
    const ifindex = ns.ifindex('eth0')
    const within = <T>(fn: () => T): T => withNetns(ns.name, fn)
    const ctx = (p: Buffer): Buffer => xdpMd(p.length, ifindex)
    const send = (p: Buffer): Buffer => within(() => dp.prog.testRun(p, { ctxIn: ctx(p) }).data)
    const expect = (mac: string, src: string, dst: string, sport: number, dport: number) => (out: Buffer): string => {
      const f = parseFrame(out)
      const ip = f.ip
      const l4 = ip?.l4
      const got = `${f.eth.dst} ${ip?.src}:${l4?.kind === 'tcp' ? l4.sport : '?'} > ${ip?.dst}:${l4?.kind === 'tcp' ? l4.dport : '?'}`
      const want = `${mac} ${src}:${sport} > ${dst}:${dport}`
      return got === want ? '' : `got ${got}, want ${want}`
    }
    const m = (name: string, p: Buffer, e: (out: Buffer) => string): number => within(() => measure(name, p, undefined, dp.prog, ctx(p), e))

    within(() => measure('not a service: pass-through, nat on (reply lookup)', pkt4('10.9.9.9', 80, 'A'), undefined, dp.prog, ctx(pkt4('10.9.9.9', 80, 'A'))))
    for (const flags of ['S', 'A']) { send(pkt4(NAT_VIP, 80, flags)); send(pkt4(FNAT_VIP, 80, flags)) }
    const fkey = ConnKey.encode({ caddr: '10.1.0.1', vaddr: FNAT_VIP, cport: 40000, vport: 80, proto: Proto.TCP })
    const fconn = dp.maps.conns.lookup(fkey)
    const lport = fconn ? Conn.decode(fconn).lport ?? 0 : 0
    send(reply4(NAT_RIP, '10.1.0.1', 40000))
    send(reply4(FNAT_RIP, LIP, lport))
    for (const [vip, what] of [[NAT_VIP, 'nat'], [FNAT_VIP, 'fullnat']] as const) {
      const c = dp.maps.conns.lookup(ConnKey.encode({ caddr: '10.1.0.1', vaddr: vip, cport: 40000, vport: 80, proto: Proto.TCP }))
      if (!c || Conn.decode(c).state !== ConnState.ESTABLISHED) throw new Error(`bench: the ${what} flow is not established (${c ? Conn.decode(c).state : 'no entry'})`)
    }
    m('nat forward (established)', pkt4(NAT_VIP, 80, 'A'), expect(MAC_NAT_RIP, '10.1.0.1', NAT_RIP, 40000, 8080))
    m('nat reply (established)', reply4(NAT_RIP, '10.1.0.1', 40000), expect(MAC_ROUTER, NAT_VIP, '10.1.0.1', 80, 40000))
    m('fullnat forward (established)', pkt4(FNAT_VIP, 80, 'A'), expect(MAC_FNAT_RIP, LIP, FNAT_RIP, lport, 8080))
    m('fullnat reply (established)', reply4(FNAT_RIP, LIP, lport), expect(MAC_ROUTER, FNAT_VIP, '10.1.0.1', 80, 40000))
  } finally {
    ns.destroy()
  }
}

/** Fill the connection table with `n` established flows client 10.1.0.0+i:40000 -> 10.9.0.2:80. */
function fillConns(dp: Dataplane, n: number): void {
  const keys = Buffer.alloc(n * ConnKey.size)
  const vals = Buffer.alloc(n * Conn.size)
  const key = ConnKey.encode({ caddr: CLIENT4, vaddr: '10.9.0.2', cport: 40000, vport: 80, proto: Proto.TCP })
  const now = process.hrtime.bigint() // CLOCK_MONOTONIC, as bpf_ktime_get_ns
  const realIds = [...dp.maps.reals.entries()].filter((e) => e.value.readUInt32LE(48) === 1).map((e) => e.key.readUInt32LE())
  for (let i = 0; i < n; i++) {
    key.writeUInt32BE((ip4(CLIENT4) + i) >>> 0, 0)
    key.copy(keys, i * ConnKey.size)
    Conn.encodeInto({ last_seen_ns: now, created_ns: now, real_id: realIds[i % realIds.length]!, service_id: 1, state: ConnState.ESTABLISHED }, vals, i * Conn.size)
  }
  const chunk = 50_000
  for (let i = 0; i < n; i += chunk) {
    const c = Math.min(chunk, n - i)
    dp.maps.conns.updateBatchRaw(keys.subarray(i * ConnKey.size, (i + c) * ConnKey.size), vals.subarray(i * Conn.size, (i + c) * Conn.size), c)
  }
}

export function run(): void {
  const rows: Row[] = []
  const dp = loadDetached({ connTableSize: Number(process.env.XVS_BENCH_CONNS ?? 1 << 21) })
  const pass = loadPassProgram()
  const d = loadDriver()
  try {
    applyModel(dp, model(), { resolve: fakeHop })
    const measure = (name: string, pkt: Buffer, vary?: [number, number, number], target: BpfProgram = dp.prog,
      ctxIn?: Buffer, expect?: (out: Buffer) => string): number => {
      setTarget(d, target)
      setTemplate(d, pkt, vary)
      const check = d.prog.testRun(pkt, ctxIn ? { ctxIn } : {})
      const ns = nsPerRun(d.prog, pkt, 100_000, 5, ctxIn)
      const wrong = expect?.(check.data)
      if (target !== pass) rows.push({ name, value: ns, unit: 'ns/pkt', net: ns - base, note: `verdict ${check.action}${wrong ? `; NOT AS EXPECTED: ${wrong}` : ''}` })
      return ns
    }
    const plain = nsPerRun(pass, Buffer.alloc(64), 200_000)
    const base = measure('baseline', pkt4('10.9.9.9', 80, 'A'), undefined, pass)
    rows.push({ name: 'XDP_PASS alone (repeat 200k)', value: plain, unit: 'ns/pkt' })
    rows.push({ name: 'driver + XDP_PASS (baseline)', value: base, unit: 'ns/pkt' })
    measure('not a service: pass-through', pkt4('10.9.9.9', 80, 'A'))
    // Established rows: open the flow with a SYN through the director itself first.
    const open = (syn: Buffer): void => { dp.prog.testRun(syn) }
    open(pkt4('10.9.0.2', 80, 'S'))
    measure('established flow (conn hit), dr', pkt4('10.9.0.2', 80, 'A'))
    measure('new flow (SYN, mh, insert), dr', pkt4('10.9.0.2', 80, 'S'), [SRC4_OFF, ip4('10.2.0.0'), 1 << 24])
    // For reading the row above: the same miss + insert into a bare LRU map of the same size.
    const probeObj = BpfObject.open(outDir('bench', 'lru_probe.bpf.o'))
    probeObj.setMaxEntries('probe_conns', dp.maps.conns.maxEntries).load()
    const probe = probeObj.program('probe_insert')
    probeObj.close()
    measure('  of which: bare LRU miss + insert', pkt4('10.9.0.2', 80, 'S'), [SRC4_OFF, ip4('10.2.0.0'), 1 << 24], probe)
    probe.close()
    open(pkt4('10.9.0.3', 80, 'S'))
    measure('tun IPv4, established', pkt4('10.9.0.3', 80, 'A'))
    open(pkt6('fd00:9::3', 80, 'S'))
    measure('tun IPv6, established', pkt6('fd00:9::3', 80, 'A'))
    natRows(dp, measure)
    // Schedulers on new flows: mh again as the reference, then the counting schedulers (every new flow
    // walks the service's servers with bpf_loop, reading their counts), lblcr and a persistence
    // template hit. How full the connection table is changes an insert's cost more than any scheduler
    // does, so these rows run back to back, each 7 rounds of 20k flows never seen before (140k per
    // row, the table stays far from full), median of the rounds.
    const newFlow = (name: string, dst: string, from: string): number => {
      const pkt = pkt4(dst, 80, 'S')
      setTarget(d, dp.prog)
      const samples: number[] = []
      let verdict = ''
      for (let i = 0; i < 7; i++) {
        setTemplate(d, pkt, [SRC4_OFF, ip4(from) + i * 20_001, 1 << 24])
        verdict = d.prog.testRun(pkt).action
        samples.push(d.prog.testRun(pkt, { repeat: 20_000 }).durationNs)
      }
      samples.sort((a, b) => a - b)
      const ns = samples[3]!
      rows.push({ name, value: ns, unit: 'ns/pkt', net: ns - base, note: `verdict ${verdict}` })
      return ns - base
    }
    const mhNew = newFlow('new flow (SYN, mh over 4): reference', '10.9.0.2', '10.32.0.0')
    const vsMh = (ns: number, target = ''): void => { rows[rows.length - 1]!.note += `; ${(ns / mhNew).toFixed(2)}x mh${target}` }
    vsMh(newFlow('new flow (SYN, wlc over 16)', '10.9.0.16', '10.33.0.0'), ' (target <= 1.5x)')
    vsMh(newFlow('new flow (SYN, wlc over 256)', '10.9.0.17', '10.34.0.0'))
    vsMh(newFlow('new flow (SYN, lblcr over 16, set hit)', '10.9.0.18', '10.35.0.0'))
    // Every client of 10.0.0.0/8 (netmask 255.0.0.0) shares one template, made by the first run.
    vsMh(newFlow('new flow (SYN, persistence template hit, wlc over 16)', '10.9.0.19', '10.36.0.0'))
    const N = 1_000_000
    fillConns(dp, N)
    measure(`conn hit among ${N / 1e6}M flows, dr`, pkt4('10.9.0.2', 80, 'A'), [SRC4_OFF, ip4(CLIENT4), N])
  } finally {
    d.close(); pass.close(); dp.close()
  }
  printRows('data plane (BPF_PROG_TEST_RUN, fresh packet per run; net = minus driver+XDP_PASS baseline)', rows)
  void MapType
}
