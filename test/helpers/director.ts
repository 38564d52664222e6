// SPDX-License-Identifier: GPL-2.0-only
// Test helpers for the data-plane programs run through BPF_PROG_TEST_RUN: load a fresh director (or
// decap) object per test, write settings/services/reals/tables through the ABI codecs, run a packet
// and get the verdict, the output and every counter that moved, compare an output frame with the
// expected one field by field, and close everything at teardown. Nothing is pinned or shared.
import type { Test } from 'tap'
import { BpfObject, BpfMap, BpfProgram, btfEnum, withNetns } from '../../src/bpf'
import {
  Conn, ConnKey, ConnKind, DecapKey, Limits, objectPath, Real, RealConns, Service, ServiceKey, Settings, Stats, statCounterNames, FwdMethod, Proto,
  type Conn as ConnValue, type ConnKey as ConnKeyValue, type Real as RealValue, type RealConns as RealConnsValue, type Service as ServiceValue,
  type Settings as SettingsValue, type Stats as StatsValue,
} from '../../src/dataplane/abi'
import { encodeAddr } from '../../src/dataplane/codec'
import { installTable } from '../../src/dataplane/tables'
import { firstDifference, describeFrame, parseFrame, verifyChecksums, type ParsedFrame, type ParsedIp, type ParsedL4 } from '../../src/lab/packet'

export const CLIENT_MAC = '02:00:00:00:00:01'
export const DIRECTOR_MAC = '02:00:00:00:00:02'

export type Verdict = 'aborted' | 'drop' | 'pass' | 'tx' | 'redirect'

export interface RunResult {
  action: string
  /** The packet as the program left it. */
  data: Buffer
  /** Every counter that moved during the run, by name (rx included), summed over CPUs. */
  counters: Record<string, number>
}

export interface RunOptions {
  /** struct xdp_md ingress_ifindex (default: the kernel's, the namespace's lo, ifindex 1). */
  ingressIfindex?: number
}

/** struct xdp_md for BPF_PROG_TEST_RUN: data 0, data_end = the packet length (the kernel insists). */
export function xdpCtx(packetLength: number, ingressIfindex: number, rxQueue = 0): Buffer {
  const b = Buffer.alloc(24)
  b.writeUInt32LE(0, 0) // data
  b.writeUInt32LE(packetLength, 4) // data_end
  b.writeUInt32LE(0, 8) // data_meta
  b.writeUInt32LE(ingressIfindex, 12)
  b.writeUInt32LE(rxQueue, 16)
  b.writeUInt32LE(0, 20) // egress_ifindex
  return b
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4)
  b.writeUInt32LE(n >>> 0)
  return b
}

/** Sum a PERCPU_ARRAY of __u64 counters by index, one batch read. */
function readCounters(map: BpfMap, names: readonly string[]): Record<string, bigint> {
  const out: Record<string, bigint> = {}
  for (const n of names) out[n] = 0n
  for (const { key, value } of map.lookupBatch()) {
    const i = key.readUInt32LE(0)
    const name = names[i] ?? `#${i}`
    let sum = 0n
    for (const slot of map.splitSlots(value)) sum += slot.readBigUInt64LE(0)
    out[name] = sum
  }
  return out
}

function deltas(before: Record<string, bigint>, after: Record<string, bigint>): Record<string, number> {
  const out: Record<string, number> = {}
  for (const [k, v] of Object.entries(after)) {
    const d = v - (before[k] ?? 0n)
    if (d !== 0n) out[k] = Number(d)
  }
  return out
}

function runProgram(prog: BpfProgram, counters: BpfMap, names: readonly string[], pkt: Buffer, opts: RunOptions): RunResult {
  const before = readCounters(counters, names)
  const r = prog.testRun(pkt, opts.ingressIfindex === undefined ? {} : { ctxIn: xdpCtx(pkt.length, opts.ingressIfindex) })
  const after = readCounters(counters, names)
  return { action: r.action, data: r.data, counters: deltas(before, after) }
}

export interface DirectorOptions {
  /** xvs_conns max_entries (default 4096: tests need few, and the LRU is preallocated). */
  conns?: number
  /** The .rodata switch xvs_cfg_tx_via_devmap (default: the object's, 1). */
  txViaDevmap?: boolean
  /**
   * A network namespace (`ip netns` name) to run the packets in: ingress_ifindex and bpf_fib_lookup
   * see its interfaces, routes and neighbours, and devmap entries are written there. Default: the
   * caller's namespace.
   */
  netns?: string
}

export interface RealSpec extends Partial<RealValue> {
  /** Real id (index of xvs_reals), >= 1. */
  id: number
}

export interface ServiceSpec {
  id: number
  vip: string
  port: number
  proto?: number
  sched: number
  flags?: number
  /** The real servers to write (service_id, src_mac, weight 1 and method dr filled in when left out). */
  reals?: RealSpec[]
  /** The live table: real ids per slot (default: the reals' ids, once each). Empty: no table installed. */
  table?: ArrayLike<number>
  /** The live half (default 0). */
  half?: number
  /** Override table_size (default: the table's length). */
  tableSize?: number
}

/** The director object, loaded fresh, with its maps and helpers. Closed at teardown. */
export class Director {
  readonly prog: BpfProgram
  readonly settingsMap: BpfMap
  readonly services: BpfMap
  readonly reals: BpfMap
  readonly svcTables: BpfMap
  readonly rrCursor: BpfMap
  readonly conns: BpfMap
  readonly svcStats: BpfMap
  readonly realStats: BpfMap
  readonly countersMap: BpfMap
  readonly txPorts: BpfMap
  readonly natRevMap: BpfMap
  readonly laddrsMap: BpfMap
  readonly realConnsMap: BpfMap
  readonly counterNames: readonly string[]
  readonly netns: string | undefined

  private constructor(obj: BpfObject, netns?: string) {
    this.prog = obj.program('xvs_director')
    this.settingsMap = obj.map('xvs_settings')
    this.services = obj.map('xvs_services')
    this.reals = obj.map('xvs_reals')
    this.svcTables = obj.map('xvs_svc_tables')
    this.rrCursor = obj.map('xvs_rr_cursor')
    this.conns = obj.map('xvs_conns')
    this.svcStats = obj.map('xvs_svc_stats')
    this.realStats = obj.map('xvs_real_stats')
    this.countersMap = obj.map('xvs_counters')
    this.txPorts = obj.map('xvs_tx_ports')
    this.natRevMap = obj.map('xvs_nat_rev')
    this.laddrsMap = obj.map('xvs_laddrs')
    this.realConnsMap = obj.map('xvs_real_conns')
    this.counterNames = statCounterNames()
    this.netns = netns
  }

  /** Load out/bpf/xvs.bpf.o afresh; everything is closed when `t` ends. */
  static load(t: Test, opts: DirectorOptions = {}): Director {
    const obj = BpfObject.open(objectPath('xvs'))
    let d: Director
    try {
      obj.setMaxEntries('xvs_conns', opts.conns ?? 4096)
      if (opts.txViaDevmap !== undefined) obj.setGlobal('xvs_cfg_tx_via_devmap', Buffer.from([opts.txViaDevmap ? 1 : 0]))
      obj.load()
      d = new Director(obj, opts.netns)
    } finally {
      obj.close() // programs and maps taken out keep their own fds
    }
    t.teardown(() => d.close())
    return d
  }

  close(): void {
    for (const fd of [this.prog, this.settingsMap, this.services, this.reals, this.svcTables, this.rrCursor, this.conns,
      this.svcStats, this.realStats, this.countersMap, this.txPorts, this.natRevMap, this.laddrsMap, this.realConnsMap]) fd.close()
  }

  /** fn in the director's namespace (DirectorOptions.netns), or here. */
  private within<T>(fn: () => T): T {
    return this.netns === undefined ? fn() : withNetns(this.netns, fn)
  }

  /** Write the whole settings entry: fields left out are 0 (the documented defaults). */
  /** Write xvs_settings; port0_services follows the port-0 services added (as the writer keeps it) unless given. */
  settings(s: Partial<SettingsValue>): void {
    this.settingsMap.update(u32(0), Settings.encode({ port0_services: this.port0 ? 1 : 0, ...s }))
  }

  private port0 = false

  serviceKey(vip: string, port: number, proto: number = Proto.TCP): Buffer {
    return ServiceKey.encode({ addr: vip, port, proto })
  }

  /** Write one xvs_services entry. */
  setService(vip: string, port: number, proto: number, svc: Partial<ServiceValue>): void {
    this.services.update(this.serviceKey(vip, port, proto), Service.encode(svc))
  }

  deleteService(vip: string, port: number, proto: number = Proto.TCP): boolean {
    return this.services.delete(this.serviceKey(vip, port, proto))
  }

  service(vip: string, port: number, proto: number = Proto.TCP): ServiceValue | null {
    const v = this.services.lookup(this.serviceKey(vip, port, proto))
    return v === null ? null : Service.decode(v)
  }

  /** Write xvs_reals[id]: weight 1, method dr, src_mac the director's unless given. */
  setReal(r: RealSpec): void {
    const { id, ...rest } = r
    this.reals.update(u32(id), Real.encode({ weight: 1, method: FwdMethod.DR, src_mac: DIRECTOR_MAC, ...rest }))
  }

  real(id: number): RealValue {
    return Real.decode(this.reals.lookup(u32(id))!)
  }

  /** Install a table half (real ids per slot). */
  table(serviceId: number, half: number, realIds: ArrayLike<number>): number {
    return installTable(this.svcTables, serviceId, half, realIds)
  }

  /** A service with its reals and live table in one go. */
  addService(s: ServiceSpec): void {
    for (const r of s.reals ?? []) this.setReal({ service_id: s.id, ...r })
    const table = s.table ?? (s.reals ?? []).map((r) => r.id)
    const half = s.half ?? 0
    if (table.length > 0) this.table(s.id, half, table)
    this.setService(s.vip, s.port, s.proto ?? Proto.TCP, {
      id: s.id, sched: s.sched, flags: s.flags ?? 0, active_table: half, table_size: s.tableSize ?? table.length,
      num_reals: (s.reals ?? []).length,
    })
    if (s.port === 0 && !this.port0) {
      this.port0 = true
      const cur = this.settingsMap.lookup(u32(0))
      this.settingsMap.update(u32(0), Settings.encode({ ...(cur ? Settings.decode(cur) : {}), port0_services: 1 }))
    }
  }

  /** Run one packet (inside DirectorOptions.netns if given); see RunResult. */
  run(pkt: Buffer, opts: RunOptions = {}): RunResult {
    return this.within(() => runProgram(this.prog, this.countersMap, this.counterNames, pkt, opts))
  }

  /** An egress interface in xvs_tx_ports (written inside the director's namespace, where the ifindex means it). */
  setTxPort(ifindex: number): void {
    this.within(() => this.txPorts.update(u32(ifindex), u32(ifindex)))
  }

  /**
   * fullnat local addresses: xvs_laddrs entries from index 0 (IPv4) and Limits.LADDRS_PER_FAMILY
   * (IPv6). The counts the data plane reads are settings laddrs_v4 / laddrs_v6: write them too.
   */
  setLaddrs(v4: readonly string[], v6: readonly string[] = []): void {
    const entry = (a: string): Buffer => { const b = Buffer.alloc(16); encodeAddr(a).bytes.copy(b); return b }
    v4.forEach((a, i) => this.laddrsMap.update(u32(i), entry(a)))
    v6.forEach((a, i) => this.laddrsMap.update(u32(Limits.LADDRS_PER_FAMILY + i), entry(a)))
  }

  /** The xvs_nat_rev entry of a reply tuple (kind REPLY unless given): the flow key it leads to, or null. */
  natRev(reply: Partial<ConnKeyValue>): ConnKeyValue | null {
    const v = this.natRevMap.lookup(ConnKey.encode({ kind: ConnKind.REPLY, ...reply }))
    return v === null ? null : ConnKey.decode(v)
  }

  setNatRev(reply: Partial<ConnKeyValue>, flow: Partial<ConnKeyValue>): void {
    this.natRevMap.update(ConnKey.encode({ kind: ConnKind.REPLY, ...reply }), ConnKey.encode(flow))
  }

  deleteConn(key: Partial<ConnKeyValue>): boolean {
    return this.conns.delete(ConnKey.encode(key))
  }

  /** Every xvs_nat_rev entry: reply tuple -> flow key. */
  allNatRev(): Array<{ reply: ConnKeyValue; flow: ConnKeyValue }> {
    return [...this.natRevMap.entries()].map((e) => ({ reply: ConnKey.decode(e.key), flow: ConnKey.decode(e.value) }))
  }

  /** xvs_real_conns[id]. */
  realConns(id: number): RealConnsValue {
    return RealConns.decode(this.realConnsMap.lookup(u32(id))!)
  }

  /** Every global counter, summed over CPUs. */
  counters(): Record<string, bigint> {
    return readCounters(this.countersMap, this.counterNames)
  }

  private sumStats(map: BpfMap, id: number): StatsValue {
    const out: StatsValue = { conns: 0n, packets_in: 0n, bytes_in: 0n, packets_out: 0n, bytes_out: 0n }
    for (const slot of map.lookupPerCpu(u32(id)) ?? []) {
      const s = Stats.decode(slot)
      for (const k of Object.keys(out) as (keyof StatsValue)[]) out[k] += s[k]
    }
    return out
  }

  /** xvs_svc_stats[id] summed over CPUs. */
  serviceStats(id: number): StatsValue { return this.sumStats(this.svcStats, id) }

  /** xvs_real_stats[id] summed over CPUs. */
  realStatsOf(id: number): StatsValue { return this.sumStats(this.realStats, id) }

  /** The connection entry of a flow as the client sends it, or null. */
  conn(key: Partial<ConnKeyValue>): ConnValue | null {
    const v = this.conns.lookup(ConnKey.encode(key))
    return v === null ? null : Conn.decode(v)
  }

  setConn(key: Partial<ConnKeyValue>, value: Partial<ConnValue>): void {
    this.conns.update(ConnKey.encode(key), Conn.encode(value))
  }

  /** All connection entries. */
  allConns(): Array<{ key: ConnKeyValue; value: ConnValue }> {
    return [...this.conns.entries()].map((e) => ({ key: ConnKey.decode(e.key), value: Conn.decode(e.value) }))
  }

  /** Make a connection look `seconds` older: last_seen_ns moves back (bpf_ktime_get_ns is CLOCK_MONOTONIC). */
  ageConn(key: Partial<ConnKeyValue>, seconds: number): void {
    const c = this.conn(key)
    if (!c) throw new Error(`no connection ${JSON.stringify(key)} to age`)
    const by = BigInt(Math.round(seconds * 1e9))
    if (by > c.last_seen_ns) throw new Error(`cannot age a connection by ${seconds} s: CLOCK_MONOTONIC is only ${c.last_seen_ns / 1_000_000_000n} s old (booted just now?)`)
    this.setConn(key, { ...c, last_seen_ns: c.last_seen_ns - by })
  }

  /** xvs_rr_cursor[id], one value per possible CPU. */
  rrCursors(serviceId: number): number[] {
    return (this.rrCursor.lookupPerCpu(u32(serviceId)) ?? []).map((b) => b.readUInt32LE(0))
  }

  /** Set xvs_rr_cursor[id] on every CPU, so a run's choice does not depend on the CPU it lands on. */
  setRrCursor(serviceId: number, value: number): void {
    const n = this.rrCursors(serviceId).length
    this.rrCursor.updatePerCpu(u32(serviceId), Array.from({ length: n }, () => u32(value)))
  }

  /**
   * Run a packet as one CPU's sequence would see it: all CPUs' rr cursors are set to `cursor` first,
   * and the cursor the run left behind (on whichever CPU ran it) is returned with the result.
   */
  runWithCursor(serviceId: number, cursor: number, pkt: Buffer): RunResult & { cursor: number } {
    this.setRrCursor(serviceId, cursor)
    const r = this.run(pkt)
    const moved = this.rrCursors(serviceId).filter((c) => c !== cursor)
    return { ...r, cursor: moved.length === 0 ? cursor : moved[0]! }
  }
}

/** The decap object, loaded fresh. */
export class Decap {
  readonly prog: BpfProgram
  readonly addrs: BpfMap
  readonly countersMap: BpfMap
  readonly counterNames: readonly string[]

  private constructor(obj: BpfObject) {
    this.prog = obj.program('xvs_decap')
    this.addrs = obj.map('xvs_decap_addrs')
    this.countersMap = obj.map('xvs_decap_ctrs')
    const e = btfEnum(objectPath('decap'), 'xvs_decap_stat')
    const names: string[] = []
    for (const [k, v] of Object.entries(e)) if (k !== 'XVS_DECAP_STAT_MAX') names[v] = k.replace(/^XVS_DECAP_STAT_/, '').toLowerCase()
    this.counterNames = names
  }

  static load(t: Test, opts: { anyDst?: boolean } = {}): Decap {
    const obj = BpfObject.open(objectPath('decap'))
    let d: Decap
    try {
      if (opts.anyDst !== undefined) obj.setGlobal('xvs_cfg_decap_any_dst', Buffer.from([opts.anyDst ? 1 : 0]))
      obj.load()
      d = new Decap(obj)
    } finally {
      obj.close()
    }
    t.teardown(() => d.close())
    return d
  }

  close(): void {
    for (const fd of [this.prog, this.addrs, this.countersMap]) fd.close()
  }

  /** A local tunnel endpoint. */
  addAddress(addr: string): void {
    this.addrs.update(DecapKey.encode({ addr }), u32(0))
  }

  run(pkt: Buffer, opts: RunOptions = {}): RunResult {
    return runProgram(this.prog, this.countersMap, this.counterNames, pkt, opts)
  }
}

// --- flow hash mirror ----------------------------------------------------------------------------------

const rol = (x: number, r: number): number => ((x << r) | (x >>> (32 - r))) >>> 0

function mix(h: number, k: number): number {
  k = Math.imul(k >>> 0, 0xcc9e2d51)
  k = rol(k, 15)
  k = Math.imul(k, 0x1b873593)
  h = (h ^ k) >>> 0
  h = rol(h, 13)
  return (Math.imul(h, 5) + 0xe6546b64) >>> 0
}

/** murmur3 fmix32, as xvs_murmur3_fmix. */
export function fmix(h: number): number {
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

/**
 * A test-side mirror of xvs_flow_hash (bpf/include/xvs/hash.h), to predict mh slots and IPv6 flow
 * labels. The C code reads network-order fields as host (little-endian) words; so does this.
 */
export function flowHash(key: Partial<ConnKeyValue>, flags: number, seed: number): number {
  const k = ConnKey.encode(key) // caddr 0..15, vaddr 16..31, cport 32, vport 34, proto 36, family 37
  const fam = k[37]!
  const addr = (off: number, h: number): number => {
    if (fam === 2) return mix(h, k.readUInt32LE(off))
    for (let i = 0; i < 4; i++) h = mix(h, k.readUInt32LE(off + 4 * i))
    return h
  }
  let h = seed >>> 0
  h = addr(0, h)
  const cport = k.readUInt16LE(32)
  const vport = k.readUInt16LE(34)
  if (!(flags & 2)) {
    h = addr(16, h)
    h = mix(h, ((cport << 16) | vport) >>> 0)
    h = mix(h, k[36]!)
  } else if (flags & 4) {
    h = mix(h, cport)
  }
  return fmix((h ^ fam) >>> 0)
}

// --- comparing frames ------------------------------------------------------------------------------------

const FIELDS: Record<string, readonly string[]> = {
  ipv4: ['version', 'ihl', 'headerLength', 'tos', 'totalLength', 'id', 'df', 'mf', 'fragOffset', 'ttl', 'protocol', 'checksum', 'src', 'dst', 'options'],
  ipv6: ['version', 'trafficClass', 'flowLabel', 'payloadLength', 'nextHeader', 'hopLimit', 'src', 'dst', 'protocol'],
  tcp: ['sport', 'dport', 'seq', 'ack', 'dataOffset', 'flags', 'window', 'checksum', 'urgent', 'options', 'payload'],
  udp: ['sport', 'dport', 'length', 'checksum', 'payload'],
  icmp: ['type', 'code', 'checksum', 'rest', 'mtu', 'body'],
  icmp6: ['type', 'code', 'checksum', 'rest', 'mtu', 'body'],
  raw: ['proto', 'bytes'],
}

function compareLayer(t: Test, label: string, actual: ParsedL4 | undefined, expected: ParsedL4 | undefined): void {
  if (!expected || !actual) {
    t.equal(actual?.kind, expected?.kind, `${label}: layer present`)
    return
  }
  if (!t.equal(actual.kind, expected.kind, `${label}: ${expected.kind}`)) return
  const a = actual as unknown as Record<string, unknown>
  const e = expected as unknown as Record<string, unknown>
  for (const f of FIELDS[expected.kind] ?? []) {
    const av = a[f]
    const ev = e[f]
    if (Buffer.isBuffer(ev)) t.same((av as Buffer).toString('hex'), ev.toString('hex'), `${label}: ${expected.kind} ${f}`)
    else t.equal(av, ev, `${label}: ${expected.kind} ${f}`)
  }
  if (expected.kind === 'ipv6') {
    t.same((actual as ParsedIp & { kind: 'ipv6' }).ext.map((x) => x.bytes.toString('hex')), expected.ext.map((x) => x.bytes.toString('hex')),
      `${label}: ipv6 extension headers`)
  }
  if (expected.kind === 'ipv4' || expected.kind === 'ipv6') {
    const inner = (expected.l4?.kind === 'ipv4' || expected.l4?.kind === 'ipv6') ? `${label} inner` : label
    compareLayer(t, inner, (actual as ParsedIp).l4, expected.l4)
  }
  if ((expected.kind === 'icmp' || expected.kind === 'icmp6') && expected.quoted) {
    compareLayer(t, `${label} quoted`, (actual as { quoted?: ParsedIp }).quoted, expected.quoted)
  }
}

/**
 * Compare an output frame with the expected one: Ethernet addresses, VLAN tags and ethertype, every
 * header field of every IP layer (tunnels recursively) and transport header, then the whole frame
 * byte for byte, then every checksum of the output with the independent verifier. Each assertion is
 * labelled "<label>: <field>". Returns true when the bytes are identical.
 */
export function assertFrame(t: Test, actual: Buffer, expected: Buffer, label: string): boolean {
  let a: ParsedFrame
  try {
    a = parseFrame(actual)
  } catch (e) {
    t.fail(`${label}: output parses (${(e as Error).message}): ${describeFrame(actual)}`)
    return false
  }
  const e = parseFrame(expected)
  t.equal(a.eth.dst, e.eth.dst, `${label}: destination MAC`)
  t.equal(a.eth.src, e.eth.src, `${label}: source MAC`)
  t.same(a.eth.vlans, e.eth.vlans, `${label}: VLAN tags`)
  t.equal(a.eth.type, e.eth.type, `${label}: ethertype`)
  compareLayer(t, label, a.ip, e.ip)
  t.equal(a.trailer.length, e.trailer.length, `${label}: bytes after the IP datagram`)
  const same = t.equal(firstDifference(actual, expected), -1, `${label}: frame byte-identical (${actual.length} bytes)`)
  if (!same) t.comment(`${label}: got      ${describeFrame(actual)}\n${label}: expected ${describeFrame(expected)}`)
  assertChecksums(t, a, label)
  return same
}

/** Every checksum of the frame valid (independent verifier); at least `min` of them. */
export function assertChecksums(t: Test, frame: Buffer | ParsedFrame, label: string, min = 1): void {
  const checks = verifyChecksums(frame)
  t.ok(checks.length >= min, `${label}: ${checks.length} checksums to verify`)
  for (const c of checks) {
    t.ok(c.ok, `${label}: ${c.what} checksum valid (0x${c.stored.toString(16).padStart(4, '0')}${c.ok ? '' : `, want 0x${c.expected.toString(16).padStart(4, '0')}`})`)
  }
}

/** One row of a fixture table (Katran style). */
export interface FixtureRow {
  description: string
  input: Buffer
  verdict: Verdict
  /**
   * The frame expected out: a Buffer, or a function of the parsed output for fields the program
   * randomises (an outer IPv4 id). 'unchanged': the input exactly. Left out: not checked (drops).
   */
  output?: Buffer | ((out: ParsedFrame) => Buffer) | 'unchanged'
  /** Counters expected to move, besides rx +1; every other counter must stay put. */
  counters: Record<string, number>
  /** Ingress ifindex (default: the kernel's lo). */
  ingressIfindex?: number
  /** More checks on the output. */
  check?: (t: Test, out: Buffer) => void
}

/** Run one fixture row through a program and check verdict, output and counters. */
export function runRow(t: Test, prog: { run(p: Buffer, o?: RunOptions): RunResult }, row: FixtureRow): RunResult {
  const r = prog.run(row.input, row.ingressIfindex === undefined ? {} : { ingressIfindex: row.ingressIfindex })
  const label = row.description
  const verdictOk = t.equal(r.action, row.verdict, `${label}: verdict ${row.verdict}`)
  t.same(r.counters, { rx: 1, ...row.counters }, `${label}: counters ${JSON.stringify(row.counters)} (and rx), nothing else`)
  // With the wrong verdict the output is another packet altogether: one failure says enough.
  if (!verdictOk) return r
  if (row.output === 'unchanged') {
    t.equal(firstDifference(r.data, row.input), -1, `${label}: packet unchanged`)
  } else if (row.output !== undefined) {
    const expected = typeof row.output === 'function' ? row.output(parseFrame(r.data, { strict: false })) : row.output
    assertFrame(t, r.data, expected, label)
  }
  row.check?.(t, r.data)
  return r
}
