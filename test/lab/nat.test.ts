// SPDX-License-Identifier: GPL-2.0-only
// nat and fullnat through real namespaces, real TCP and UDP: a two-arm director (routed shape, xvs on
// both interfaces) and a one-arm one (onearm shape: one interface, XDP_TX both ways), port mapping
// (VIP:80 -> real servers' 8080), rr over two real servers, who the real servers see as the client,
// fullnat to real servers with no route back to the clients, bursts of short connections, long
// transfers checked by digest both ways, ICMP errors from the real servers translated back to the
// client, and the director's counters. Every lab is destroyed at its test's teardown.
import t, { type Test } from 'tap'
import type { ChildProcess } from 'node:child_process'
import { needsRoot, tempBpffs } from '../helpers/root'
import { xvsLab, type XvsLab } from '../helpers/xvs-lab'
import { bulkTransfer, startBulkServers } from '../helpers/bulk'
import { httpRequests } from '../../src/lab/http'
import type { Shape, Topology } from '../../src/lab/topology'
import { readCounters } from '../../src/dataplane/reader'
import { cliCommands, runIn } from '../helpers/cli'

type Fam = 'ipv4' | 'ipv6'
type Method = 'nat' | 'fullnat'
const FAMS: readonly Fam[] = ['ipv4', 'ipv6']

const VPORT = 80
const RPORT = 8080 // the real servers' HTTP port: the service maps 80 -> 8080
const BULK_VPORT = 9000
const BULK_RPORT = 9001
const UDP_VPORT = 5353
const UDP_RPORT = 5354 // nobody listens there: the real server answers port unreachable
// fullnat local addresses (LIPs): in the real servers' subnet, on the director's back interface.
const LIP: Record<Fam, string> = { ipv4: '10.200.1.200', ipv6: 'fd00:201::200' }

const BURST = 10_000
const MiB = 1024 * 1024

function natYaml(topo: Topology, method: Method): string {
  const svc = (fam: Fam, proto: 'tcp' | 'udp', vport: number, rport: number): string =>
    `  - vip: "${topo.vip[fam]}"\n    protocol: ${proto}\n    port: ${vport}\n    scheduler: rr\n    real_servers:\n` +
    topo.reals.map((rs) => `      - { address: "${rs[fam]}", port: ${rport}, method: ${method} }\n`).join('')
  const settings = method === 'fullnat' ? `settings:\n  local_addresses: [${LIP.ipv4}, "${LIP.ipv6}"]\n` : ''
  return `${settings}services:\n${FAMS.flatMap((f) => [
    svc(f, 'tcp', VPORT, RPORT), svc(f, 'tcp', BULK_VPORT, BULK_RPORT), svc(f, 'udp', UDP_VPORT, UDP_RPORT),
  ]).join('')}`
}

interface NatLab extends XvsLab {
  counters(): Record<string, number>
}

/**
 * A lab of the given shape with xvs on the director (both interfaces when there are two), HTTP on the
 * real servers' 8080, the bulk server on 9001, and the nat or fullnat services applied. For fullnat the
 * LIPs go on the director's back interface and the real servers lose their default routes: they can
 * reach nothing but their own subnet.
 */
async function natLab(t: Test, shape: Shape, method: Method): Promise<NatLab> {
  process.env.XVS_BPFFS = tempBpffs(t)
  const lab = await xvsLab(t, { shape, reals: 2, httpPort: RPORT })
  const { topo } = lab
  await startBulkServers(topo, BULK_RPORT)
  if (method === 'fullnat') {
    topo.exec(topo.director, ['ip', 'addr', 'add', `${LIP.ipv4}/24`, 'dev', topo.director.back.name])
    topo.exec(topo.director, ['ip', '-6', 'addr', 'add', `${LIP.ipv6}/64`, 'dev', topo.director.back.name, 'nodad'])
    for (const rs of topo.reals) {
      topo.exec(rs, ['ip', 'route', 'del', 'default'])
      topo.exec(rs, ['ip', '-6', 'route', 'del', 'default'])
    }
  }
  lab.load()
  // every interface xvs serves is a devmap redirect target (replies leave by the client side)
  const ports = lab.inDirector((dp) => [...dp.maps.txPorts.keys()].map((k) => k.readUInt32LE()).sort((a, b) => a - b))
  const served = [...new Set([topo.director.front.ifindex, topo.director.back.ifindex])].sort((a, b) => a - b)
  t.same(ports, served, `xvs_tx_ports holds the director's ${served.length === 2 ? 'two interfaces' : 'interface'}`)
  const res = lab.apply(natYaml(topo, method))
  t.same(res.services, { added: 6, removed: 0, changed: 0, unchanged: 0 }, `six ${method} services (tcp 80, tcp 9000, udp 5353; both families)`)
  return Object.assign(lab, { counters: () => lab.inDirector((dp) => readCounters(dp)) })
}

const delta = (a: Record<string, number>, b: Record<string, number>, name: string): number => (b[name] ?? 0) - (a[name] ?? 0)

/** Counters that moved between two readings, for messages. */
function moved(a: Record<string, number>, b: Record<string, number>): string {
  return JSON.stringify(Object.fromEntries(Object.keys(b).filter((k) => delta(a, b, k) !== 0).map((k) => [k, delta(a, b, k)])))
}

/** 1,000 requests to VIP:80: all answered, rr over both real servers, seen from `peer`. */
async function httpThrough(t: Test, lab: NatLab, fam: Fam, peer: string): Promise<void> {
  const { topo } = lab
  const n = 1000
  const r = await httpRequests(topo, topo.client, { host: topo.vip[fam], port: VPORT, count: n, concurrency: 8, deadlineMs: 120_000 })
  t.equal(r.failed, 0, `${fam}: no request failed ${JSON.stringify(r.errors)}`)
  t.equal(r.ok, n, `${fam}: all ${n} answered`)
  // rr runs a cursor per CPU: each CPU alternates, so the split is even within a step per CPU.
  const a = r.byResponder.rs1 ?? 0
  t.ok(Math.abs(a - n / 2) <= 4 && a + (r.byResponder.rs2 ?? 0) === n, `${fam}: rr split ${JSON.stringify(r.byResponder)}`)
  t.same(r.byPeer, { [peer]: n }, `${fam}: every connection reached the real servers from ${peer}`)
}

/**
 * A connected UDP socket on the client sends to VIP:5353 (real port 5354, where nobody listens) and
 * waits for ECONNREFUSED, while tcpdump on the client records the ICMP error that caused it.
 */
async function udpRefused(topo: Topology, fam: Fam): Promise<{ code: string; icmp: string }> {
  const dev = topo.client.interfaces[0]!.name
  const filter = fam === 'ipv4' ? 'icmp and icmp[0] == 3' : 'icmp6 and ip6[40] == 1'
  const dump: ChildProcess = topo.spawn(topo.client, ['tcpdump', '-i', dev, '-n', '-l', '-c', '1', '-Q', 'in', filter])
  let captured = ''
  const exited = new Promise<void>((resolve) => dump.once('exit', () => resolve()))
  dump.stdout!.setEncoding('utf8').on('data', (d: string) => { captured += d })
  await new Promise<void>((resolve, reject) => {
    let err = ''
    const timer = setTimeout(() => reject(new Error(`tcpdump did not start: ${err}`)), 10_000)
    dump.stderr!.setEncoding('utf8').on('data', (d: string) => {
      err += d
      if (/listening on/.test(err)) { clearTimeout(timer); resolve() }
    })
  })
  const probe = `
const s = require('node:dgram').createSocket('${fam === 'ipv4' ? 'udp4' : 'udp6'}')
const out = (code) => process.stdout.write(code + '\\n', () => process.exit(0))
s.on('error', (e) => out(e.code))
s.on('message', () => out('answered'))
setTimeout(() => out('no answer'), 5000)
s.connect(${UDP_VPORT}, '${topo.vip[fam]}', () => {
  let sent = 0
  const send = () => { if (sent++ < 5) s.send('xvs', () => setTimeout(send, 500)) }
  send()
})`
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin' }
  const code = (await topo.execAsync(topo.client, ['node', '-e', probe], { timeoutMs: 20_000, env })).trim()
  const timer = setTimeout(() => dump.kill('SIGKILL'), 3000)
  await exited
  clearTimeout(timer)
  return { code, icmp: captured.trim() }
}

const udpNoPorts = (topo: Topology, node: Parameters<Topology['netstat']>[0], fam: Fam): number =>
  topo.netstat(node)[fam === 'ipv4' ? 'UdpNoPorts' : 'Udp6NoPorts'] ?? 0

async function icmpThrough(t: Test, lab: NatLab, fam: Fam): Promise<void> {
  const { topo } = lab
  const before = lab.counters()
  const realsBefore = topo.reals.map((rs) => udpNoPorts(topo, rs, fam))
  const dirBefore = udpNoPorts(topo, topo.director, fam)
  const r = await udpRefused(topo, fam)
  const after = lab.counters()
  t.equal(r.code, 'ECONNREFUSED', `${fam}: the client's connected UDP socket got ECONNREFUSED`)
  const realsRefused = topo.reals.map((rs, i) => udpNoPorts(topo, rs, fam) - realsBefore[i]!)
  t.ok(realsRefused.some((n) => n > 0), `${fam}: a real server refused the datagram (NoPorts +${realsRefused.join('/')})`)
  t.equal(udpNoPorts(topo, topo.director, fam) - dirBefore, 0, `${fam}: the director itself refused nothing`)
  const vip = topo.vip[fam]
  const want = fam === 'ipv4'
    ? `IP ${vip} > ${topo.client.ipv4}: ICMP ${vip} udp port ${UDP_VPORT} unreachable`
    : `IP6 ${vip} > ${topo.client.ipv6}: ICMP6, destination unreachable, unreachable port, ${vip} udp port ${UDP_VPORT}`
  t.ok(r.icmp.includes(want), `${fam}: the port unreachable arrived from the VIP about VIP:${UDP_VPORT}: ${r.icmp}`)
  t.ok(delta(before, after, 'nat_icmp') >= 1, `${fam}: the director translated it (nat_icmp) ${moved(before, after)}`)
}

/** A download and an upload of `size` bytes through VIP:9000, each checked by length and SHA-256. */
async function bulkThrough(t: Test, lab: NatLab, fam: Fam, peer: string, size: number): Promise<void> {
  const { topo } = lab
  const down = await bulkTransfer(topo, topo.client, 'download', topo.vip[fam], BULK_VPORT, size)
  t.same({ intact: down.intact, bytes: down.bytes, peer: down.peer, error: down.error },
    { intact: true, bytes: size, peer, error: undefined }, `${fam}: ${size / MiB} MiB download arrived intact (sha256 ${down.sha256}) from ${down.name}`)
  const up = await bulkTransfer(topo, topo.client, 'upload', topo.vip[fam], BULK_VPORT, size)
  t.same({ intact: up.intact, bytes: up.bytes, peer: up.peer, error: up.error },
    { intact: true, bytes: size, peer, error: undefined }, `${fam}: ${size / MiB} MiB upload arrived intact at ${up.name}`)
}

async function burstThrough(t: Test, lab: NatLab, fam: Fam): Promise<void> {
  const { topo } = lab
  const r = await httpRequests(topo, topo.client, { host: topo.vip[fam], port: VPORT, count: BURST, concurrency: 32, timeoutMs: 10_000, deadlineMs: 240_000 })
  t.same({ ok: r.ok, failed: r.failed, errors: r.errors }, { ok: BURST, failed: 0, errors: {} }, `${fam}: ${BURST} short connections, none failed (${r.elapsedMs} ms)`)
  t.equal((r.byResponder.rs1 ?? 0) + (r.byResponder.rs2 ?? 0), BURST, `${fam}: answered by the two real servers ${JSON.stringify(r.byResponder)}`)
}

/**
 * The director forgets the client's neighbour entry: the next replies, translated, go to the kernel,
 * which resolves the client and forwards them (from the VIP: net.ipv4.conf.all.accept_local); the
 * packets after that find the neighbour and stay in XDP.
 */
async function unknownNeighbour(t: Test, lab: NatLab, fam: Fam): Promise<void> {
  const { topo } = lab
  const front = topo.director.front.name
  const neigh = (): string => topo.exec(topo.director, ['ip', ...(fam === 'ipv6' ? ['-6'] : ['-4']), 'neigh', 'show', 'to', topo.client[fam], 'dev', front]).trim()
  topo.exec(topo.director, ['ip', ...(fam === 'ipv6' ? ['-6'] : ['-4']), 'neigh', 'flush', 'to', topo.client[fam], 'dev', front])
  t.equal(neigh(), '', `${fam}: the director has no neighbour entry for the client`)
  const before = lab.counters()
  const r = await httpRequests(topo, topo.client, { host: topo.vip[fam], port: VPORT, count: 20, concurrency: 1 })
  const mid = lab.counters()
  t.same({ ok: r.ok, errors: r.errors }, { ok: 20, errors: {} }, `${fam}: 20 requests answered`)
  t.ok(delta(before, mid, 'pass_nat_no_neigh') >= 1, `${fam}: replies went to the kernel to resolve the client ${moved(before, mid)}`)
  t.match(neigh(), /lladdr/, `${fam}: and the kernel resolved it`)
  const again = await httpRequests(topo, topo.client, { host: topo.vip[fam], port: VPORT, count: 20, concurrency: 1 })
  const after = lab.counters()
  t.same({ ok: again.ok, errors: again.errors }, { ok: 20, errors: {} }, `${fam}: 20 more answered`)
  t.equal(delta(mid, after, 'pass_nat_no_neigh'), 0, `${fam}: now every reply stays in XDP ${moved(mid, after)}`)
}

/**
 * The director's counters over a whole run: the method's forwarding counter, replies and ICMP errors
 * translated; every translated packet left through XDP_TX (one arm) or a redirect to the other
 * interface (two arms), except those handed to the kernel for want of a neighbour; nothing dropped.
 */
function countersMakeSense(t: Test, start: Record<string, number>, end: Record<string, number>, method: Method, arms: 1 | 2, conns: number, synRetries: number): void {
  const d = (name: string): number => delta(start, end, name)
  const fwd = method === 'nat' ? 'fwd_nat' : 'fwd_fullnat'
  const other = method === 'nat' ? 'fwd_fullnat' : 'fwd_nat'
  // Each TCP connection is at least SYN, ACK, request, FIN and ACK in, and SYN-ACK, answer and FIN out.
  t.ok(d(fwd) >= 3 * conns, `${fwd} counted the clients' packets: ${d(fwd)}`)
  t.ok(d('nat_reply') >= 3 * conns, `nat_reply counted the real servers' packets: ${d('nat_reply')}`)
  // One entry per connection; a client port reused while its old entry is not yet closed may join
  // that entry (IPVS conn_reuse_mode), so allow a few fewer. A connection whose SYN a real server
  // refused (see pawsInTimeWait) was reset, and its retransmitted SYN makes a second entry.
  t.ok(d('conn_new') <= conns + synRetries && d('conn_new') >= conns * 0.99,
    `conn_new counted the ${conns} connections (the client retransmitted ${synRetries} SYNs): ${d('conn_new')}`)
  t.ok(d('nat_icmp') >= 2, `nat_icmp counted both families' port unreachables: ${d('nat_icmp')}`)
  t.equal(d(other), 0, `nothing went ${other}`)
  const translated = d(fwd) + d('nat_reply') + d('nat_icmp')
  const toKernel = d('pass_nat_no_neigh') + d('pass_nat_no_route')
  const [sent, unused] = arms === 1 ? ['xdp_tx', 'xdp_redirect'] : ['xdp_redirect', 'xdp_tx']
  t.equal(d(sent), translated - toKernel, `${arms === 1 ? 'one arm: every translated packet went back out through XDP_TX' : 'two arms: every translated packet was redirected to the other interface'} (${d(sent)} of ${translated}, ${toKernel} to the kernel)`)
  t.equal(d(unused), 0, `${unused} did not move`)
  const drops = Object.fromEntries(Object.entries(end).filter(([k]) => k.startsWith('drop_') && d(k) !== 0).map(([k]) => [k, d(k)]))
  t.same(drops, {}, `no drop counter moved; all that moved: ${moved(start, end)}`)
}

/** The TCP counters of the client and the real servers: nstat's absolute values, per node. */
function tcpStats(topo: Topology): Record<string, Record<string, number>> {
  return Object.fromEntries([topo.client, ...topo.reals].map((n) => [n.name, topo.netstat(n)]))
}

/**
 * A new connection's SYN must not meet the real server's TIME_WAIT of an older connection on the same
 * four-tuple with an older timestamp (PAWS: the real server answers with an ACK for the old
 * connection, the client resets and retries a second later). nat cannot cause it: the real server sees
 * the client's own tuple, whose timestamps only grow. fullnat can, if it gives a local port to a new
 * connection while the real server may still hold it in TIME_WAIT (60 s on Linux).
 */
function pawsInTimeWait(t: Test, topo: Topology, before: Record<string, Record<string, number>>): { synRetries: number } {
  const after = tcpStats(topo)
  const d = (node: string, k: string): number => (after[node]![k] ?? 0) - (before[node]![k] ?? 0)
  const rejected = topo.reals.reduce((sum, rs) => sum + d(rs.name, 'TcpExtPAWSTimewait'), 0)
  const synRetries = d(topo.client.name, 'TcpExtTCPSynRetrans')
  t.equal(rejected, 0, `no real server refused a new connection's SYN in TIME_WAIT (PAWS; the client retransmitted ${synRetries} SYNs)`)
  return { synRetries }
}


// The long transfers and bursts run through both methods on the two-arm director; the one-arm one
// carries the same kinds of traffic, in smaller amounts, to keep the file's runtime down.
/** What the command lines show of the connections just made: xvs inspect nat-rev, xvsadm -L -n -c. */
function cliShows(t: Test, lab: NatLab, method: 'nat' | 'fullnat'): void {
  const { topo } = lab
  const cmd = cliCommands()
  const rev = runIn(topo.director.ns, [...cmd.xvs, 'inspect', 'nat-rev', '--json'])
  t.equal(rev.status, 0, `xvs inspect nat-rev ${rev.stderr}`)
  const rows = (JSON.parse(rev.stdout || '{"rows":[]}') as { rows: { reply_from: string; reply_to: string; client: string; virtual: string }[] }).rows
  const v4 = rows.filter((r) => r.virtual === `${topo.vip.ipv4}:${VPORT}`)
  t.ok(v4.length > 0, `reply entries of the IPv4 connections: ${v4.length}`)
  t.ok(v4.every((r) => topo.reals.some((rs) => r.reply_from === `${rs.ipv4}:${RPORT}`)), 'each from a real server\'s mapped port')
  t.ok(v4.every((r) => method === 'fullnat' ? r.reply_to.startsWith(`${LIP.ipv4}:`) : r.reply_to === r.client),
    method === 'fullnat' ? 'each to the local address' : 'each to the client itself')
  const list = runIn(topo.director.ns, [...cmd.xvsadm, '-L', '-n', '-c'])
  t.equal(list.status, 0, 'xvsadm -L -n -c')
  const header = list.stdout.split('\n')[1] ?? ''
  if (method === 'fullnat') t.match(header, /destination\s+local$/, 'fullnat: a local column')
  else t.match(header, /destination$/, 'nat: ipvsadm\'s columns')
}

const SHAPES = [
  { shape: 'routed', arms: 2, what: 'two-arm (routed, xvs on both director interfaces)', bulk: 128 * MiB, burst: true },
  { shape: 'onearm', arms: 1, what: 'one-arm (one interface, clients and real servers in two subnets on it)', bulk: 16 * MiB, burst: false },
] as const

for (const { shape, arms, what, bulk, burst } of SHAPES) {
  for (const method of ['nat', 'fullnat'] as const) {
    t.test(`${method} ${what}`, needsRoot, async (t) => {
      const lab = await natLab(t, shape, method)
      const { topo } = lab
      const start = lab.counters()
      const tcpBefore = tcpStats(topo)
      if (method === 'fullnat') {
        for (const fam of FAMS) {
          const get = topo.execAsync(topo.reals[0]!, ['ip', ...(fam === 'ipv6' ? ['-6'] : []), 'route', 'get', topo.client[fam]])
          await t.rejects(get, { message: /unreachable/i }, `${fam}: the real servers have no route to the client`)
        }
      }
      // nat keeps the client's address; fullnat replaces it with the director's local address.
      const peer = (fam: Fam): string => method === 'fullnat' ? LIP[fam] : topo.client[fam]
      let conns = 0
      for (const fam of FAMS) {
        await t.test(`${fam}: HTTP through VIP:${VPORT} to the real servers' ${RPORT}`, async (t) => httpThrough(t, lab, fam, peer(fam)))
        if (fam === 'ipv4') await t.test('the command lines show the translations', async (t) => cliShows(t, lab, method))
        await t.test(`${fam}: a real server's port unreachable reaches the client translated`, async (t) => icmpThrough(t, lab, fam))
        await t.test(`${fam}: long transfers arrive intact both ways`, async (t) => bulkThrough(t, lab, fam, peer(fam), bulk))
        await t.test(`${fam}: the client's neighbour unknown to the director`, async (t) => unknownNeighbour(t, lab, fam))
        conns += 1000 + 1 + 2 + 40 // HTTP, the UDP probe, the transfers, the neighbour test
        if (burst) {
          await t.test(`${fam}: a burst of ${BURST} short connections`, async (t) => burstThrough(t, lab, fam))
          conns += BURST
        }
      }
      const { synRetries } = pawsInTimeWait(t, topo, tcpBefore)
      countersMakeSense(t, start, lab.counters(), method, arms, conns, synRetries)
    })
  }
}
