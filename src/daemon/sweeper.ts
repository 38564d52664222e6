// SPDX-License-Identifier: GPL-2.0-only
// The connection sweeper: walks xvs_conns in bounded batches and deletes the entries past their
// timeout, by the rules of the packet path (flows: xvs_conn_timeout_s and xvs_conn_expired in
// bpf/include/xvs/conntrack.h, with its XVS_CONN_TOUCH_NS slack; persistence templates:
// xvs_tmpl_live in persist.h), and entries of a service that no longer exists or was replaced (the
// packet path treats both as absent already; the sweeper gives their slots back before the LRU has to
// evict live flows). On the way it counts each real server's active (ESTABLISHED), inactive and
// persistent entries, as IPVS shows them, and hands the counts to `reconcile` (the data plane's
// xvs_real_conns, which the packet path cannot decrement for entries that time out unseen).
//
// The expiry rules themselves are src/dataplane/conncount.ts's (flowExpired, templateExpired), which
// mirror the packet path; this file adds the walk in bounded batches.
//
// nat and fullnat connections have a second entry, in xvs_nat_rev, under their replies' tuple. After
// the walk over xvs_conns the sweeper walks xvs_nat_rev and deletes the entries no live connection
// owns: those of connections it just expired, of connections the LRU evicted, of a flow since
// re-created with another local port. An entry not owned by a flow of this pass is looked up once
// more before it goes (a connection opened during the pass owns it). A fullnat entry (a local
// address and port) goes only after it has been nobody's for natRetireMs: the real server may hold
// the old connection on that tuple in TIME_WAIT, and would refuse another client's SYN on it.
//
// Each batch is one BPF_MAP_LOOKUP_BATCH of at most `batchSize` entries, a re-read of every candidate
// (an entry the packet path rewrote since, e.g. a new flow on the same ports, has other bytes and is
// kept), and one BPF_MAP_DELETE_BATCH; between batches the sweeper yields to the event loop, so a table
// of millions never stalls the daemon.
import { setImmediate as yieldToLoop } from 'node:timers/promises'
import { Conn, ConnFlags, ConnKey, ConnKind, ConnState, GroupKey, Proto, ServiceKey, groupServiceKey, type PortRange } from '../dataplane/abi'
import { flowExpired, flowTimeoutS, templateExpired as tmplExpired, type ConnTimeouts, type RealCounts } from '../dataplane/conncount'
import { silentLogger, type Logger } from '../log'
import { systemClock, type Clock, type TimerHandle } from '../util/clock'

/** The part of a BpfMap the sweeper uses (xvs_conns), so tests can hand it a fake. */
export interface ConnTable {
  readonly keySize: number
  /** Bytes of one value as the batch calls lay them out. */
  readonly valueBytes: number
  readonly maxEntries: number
  lookupBatchRaw(token: Buffer | null, chunk: number): { keys: Buffer; values: Buffer; count: number; token: Buffer | null }
  lookup(key: Buffer): Buffer | null
  deleteBatchRaw(keys: Buffer, count: number): number
}

export type { ConnTimeouts, RealCounts }

/** xvs_conn_timeout_s(): seconds a connection in `state` lives without packets. */
export const connTimeoutS = flowTimeoutS

const NS = 1_000_000_000n
/** XVS_CONN_TOUCH_NS: last_seen_ns lags a flow's last packet by up to this, so expiry allows it. */
export const CONN_TOUCH_NS = NS

/**
 * xvs_conn_expired(): idle longer than the timeout plus the touch slack (strictly). An entry touched
 * after `nowNs` was sampled (last_seen ahead of now) is not expired; the packet path's unsigned
 * difference never sees that.
 */
export const connExpired = flowExpired

/**
 * !xvs_tmpl_live(): a persistence template lives persist_timeout_s after its last use, and while a
 * connection it sent lives (ctl_until_s, a second of CLOCK_MONOTONIC).
 */
export function templateExpired(lastSeenNs: bigint, ctlUntilS: number, persistTimeoutS: number, nowNs: bigint): boolean {
  return tmplExpired({ last_seen_ns: lastSeenNs, ctl_until_s: ctlUntilS }, persistTimeoutS, nowNs)
}

// Field offsets from the ABI codecs (checked against BTF), not typed by hand.
const C_LAST_SEEN = Conn.offsetOf('last_seen_ns')
const C_CREATED = Conn.offsetOf('created_ns')
const C_REAL = Conn.offsetOf('real_id')
const C_SERVICE = Conn.offsetOf('service_id')
const C_STATE = Conn.offsetOf('state')
const C_FLAGS = Conn.offsetOf('flags')
const C_CTL_UNTIL = Conn.offsetOf('ctl_until_s')
const C_LPORT = Conn.offsetOf('lport')
const C_LADDR = Conn.offsetOf('laddr')
const K_CADDR = ConnKey.offsetOf('caddr')
const K_CPORT = ConnKey.offsetOf('cport')
const K_VADDR = ConnKey.offsetOf('vaddr')
const K_VPORT = ConnKey.offsetOf('vport')
const K_PROTO = ConnKey.offsetOf('proto')
const K_FAMILY = ConnKey.offsetOf('family')
const K_KIND = ConnKey.offsetOf('kind')
const S_PORT = ServiceKey.offsetOf('port')
const S_PROTO = ServiceKey.offsetOf('proto')
const S_FAMILY = ServiceKey.offsetOf('family')
const G_PROTO = GroupKey.offsetOf('proto')
const G_FAMILY = GroupKey.offsetOf('family')

/** The xvs_services key a connection key is looked up under (with `port`, or the wildcard 0). */
export function serviceKeyOf(connKey: Buffer, base: number, wildcard = false): Buffer {
  const k = Buffer.alloc(ServiceKey.size)
  connKey.copy(k, 0, base + K_VADDR, base + K_VADDR + 16)
  if (!wildcard) connKey.copy(k, S_PORT, base + K_VPORT, base + K_VPORT + 2)
  k[S_PROTO] = connKey[base + K_PROTO]!
  k[S_FAMILY] = connKey[base + K_FAMILY]!
  return k
}

/** A real server's address (16 bytes, as xvs_real holds it) and port (host order), by real id. */
export type RealAddrs = ReadonlyMap<number, { addr: Buffer; port: number }>

/**
 * The xvs_nat_rev key of a nat/fullnat connection (xvs_nat_rev_key in conntrack.h): from the real
 * server's address and port to the client's, or with FULLNAT to the connection's local address and
 * port. undefined when its real server is unknown.
 */
export function natRevKeyOf(flowKey: Buffer, kb: number, value: Buffer, vb: number, reals: RealAddrs): Buffer | undefined {
  const real = reals.get(value.readUInt32LE(vb + C_REAL))
  if (!real) return undefined
  const rk = Buffer.alloc(ConnKey.size)
  real.addr.copy(rk, K_CADDR, 0, 16)
  rk.writeUInt16BE(real.port || flowKey.readUInt16BE(kb + K_VPORT), K_CPORT)
  if (value[vb + C_FLAGS]! & ConnFlags.FULLNAT) {
    value.copy(rk, K_VADDR, vb + C_LADDR, vb + C_LADDR + 16)
    value.copy(rk, K_VPORT, vb + C_LPORT, vb + C_LPORT + 2)
  } else {
    flowKey.copy(rk, K_VADDR, kb + K_CADDR, kb + K_CADDR + 16)
    flowKey.copy(rk, K_VPORT, kb + K_CPORT, kb + K_CPORT + 2)
  }
  rk[K_PROTO] = flowKey[kb + K_PROTO]!
  rk[K_FAMILY] = flowKey[kb + K_FAMILY]!
  rk[K_KIND] = ConnKind.REPLY
  return rk
}

/** What the sweeper needs of the services, read once per pass. */
export interface ServiceIndex {
  /** Hex of an xvs_services key -> the service's id. */
  ids: ReadonlyMap<string, number>
  /** Service id -> persist_timeout_s (for templates; absent: 0). */
  persist?: ReadonlyMap<number, number>
  /** Hex of an xvs_group_key -> the port ranges of xvs_grp_ranges. */
  groups?: ReadonlyMap<string, readonly PortRange[]>
}

/**
 * The id of the service a connection entry belongs to now, as the packet path finds it: a template's
 * key holds its service's key; a flow's service is (VIP, proto, port), else (VIP, proto, 0), else the
 * service group whose port range holds the port. undefined: no such service.
 */
export function serviceOfEntry(keys: Buffer, base: number, index: ServiceIndex): number | undefined {
  const exact = index.ids.get(serviceKeyOf(keys, base).toString('hex'))
  if (keys[base + K_KIND] === ConnKind.TEMPLATE || exact !== undefined) return exact
  const wildcard = index.ids.get(serviceKeyOf(keys, base, true).toString('hex'))
  if (wildcard !== undefined || !index.groups) return wildcard
  const gk = Buffer.alloc(GroupKey.size)
  keys.copy(gk, 0, base + K_VADDR, base + K_VADDR + 16)
  gk[G_PROTO] = keys[base + K_PROTO]!
  gk[G_FAMILY] = keys[base + K_FAMILY]!
  const port = keys.readUInt16BE(base + K_VPORT)
  const r = index.groups.get(gk.toString('hex'))?.find((x) => x.first <= port && port <= x.last)
  return r ? index.ids.get(groupServiceKey(r.group_id, keys[base + K_FAMILY]!).toString('hex')) : undefined
}

export interface SweepReport {
  /** Entries read. */
  scanned: number
  /** Deleted as past their timeout. */
  expired: number
  /** Deleted because their service is gone or was replaced. */
  stale: number
  /** Candidates the packet path rewrote (or removed) between the read and the delete: kept. */
  raced: number
  /** xvs_nat_rev entries deleted: no live connection owns them. */
  natRevRemoved: number
  batches: number
  durationMs: number
  /** Live entries per real id. */
  counts: Map<number, RealCounts>
}

export interface SweeperOptions {
  conns: ConnTable
  /** xvs_settings' timeouts, read at the start of each pass. */
  timeouts: () => ConnTimeouts
  /** The services, read at the start of each pass; omit to keep stale entries (and templates: they need it). */
  services?: () => ServiceIndex
  /** xvs_nat_rev (keys and values are connection keys); with realAddrs, its unowned entries are deleted. */
  natRev?: ConnTable
  /** The real servers' addresses and ports, read at the start of each pass. */
  realAddrs?: () => RealAddrs
  /** How long a fullnat reply entry stays after its connection, ms; default the TIME_WAIT timeout, 120 s. */
  natRetireMs?: number
  /** bpf_ktime_get_ns()'s clock (CLOCK_MONOTONIC), ns; default process.hrtime.bigint. */
  nowNs?: () => bigint
  clock?: Clock
  log?: Logger
  /** Entries per lookup/delete batch; default 4096. */
  batchSize?: number
  /** Between the end of one pass and the start of the next, ms; default 2000. */
  intervalMs?: number
  /** Called as a pass starts; what it returns is handed to `reconcile` with the pass's counts. */
  begin?: () => unknown
  /**
   * Given each pass's live counts per real id, and what `begin` returned (the data plane's counters as
   * they were when the walk began, so what the packet path counted meanwhile is kept).
   */
  reconcile?: (counts: ReadonlyMap<number, RealCounts>, begun: unknown) => void
}

export interface SweeperTotals {
  passes: number
  scanned: number
  expired: number
  stale: number
  raced: number
  natRevRemoved: number
  errors: number
  last: SweepReport | undefined
}

export class ConnSweeper {
  private readonly opts: Required<Omit<SweeperOptions, 'services' | 'reconcile' | 'begin' | 'log' | 'natRev' | 'realAddrs'>> &
    Pick<SweeperOptions, 'services' | 'reconcile' | 'begin' | 'natRev' | 'realAddrs'>
  /** Hex of a fullnat reply key nobody owns -> when a pass first found it so (clock ms). */
  private retiring = new Map<string, number>()
  private readonly log: Logger
  private timer: TimerHandle | undefined
  private running = false
  private current: Promise<SweepReport> | undefined
  readonly totals: SweeperTotals = { passes: 0, scanned: 0, expired: 0, stale: 0, raced: 0, natRevRemoved: 0, errors: 0, last: undefined }

  constructor(opts: SweeperOptions) {
    this.opts = {
      nowNs: () => process.hrtime.bigint(), clock: systemClock, batchSize: 4096, intervalMs: 2000, natRetireMs: 120_000, ...opts,
    }
    this.log = (opts.log ?? silentLogger).child({ component: 'sweeper' })
  }

  /** Sweep every intervalMs until stop(). */
  start(): void {
    if (this.running) return
    this.running = true
    this.schedule(0)
  }

  /** Stops the timer and waits for a pass in progress to end. */
  async stop(): Promise<void> {
    this.running = false
    if (this.timer !== undefined) this.opts.clock.clearTimeout(this.timer)
    this.timer = undefined
    if (this.current) await this.current.catch(() => undefined)
  }

  private schedule(ms: number): void {
    this.timer = this.opts.clock.setTimeout(() => {
      this.timer = undefined
      void this.sweep().catch(() => undefined).finally(() => { if (this.running) this.schedule(this.opts.intervalMs) })
    }, ms)
  }

  /** One pass over the table (a pass already under way is joined, not doubled). */
  sweep(): Promise<SweepReport> {
    this.current ??= this.pass().then(
      (r) => { this.current = undefined; return r },
      (err: unknown) => {
        this.current = undefined
        this.totals.errors++
        this.log.error({ err }, 'connection sweep failed')
        throw err
      })
    return this.current
  }

  private async pass(): Promise<SweepReport> {
    const { conns, batchSize } = this.opts
    const started = this.opts.clock.now()
    // now before the services: an entry created before now found its service in what is read next.
    const nowNs = this.opts.nowNs()
    const begun = this.opts.begin?.()
    const set = this.opts.timeouts()
    const services = this.opts.services?.()
    // read the real servers' addresses once per pass, and only if a nat entry needs them
    const realAddrs = this.opts.natRev ? this.opts.realAddrs : undefined
    let readReals: RealAddrs | undefined
    const reals = realAddrs && ((): RealAddrs => (readReals ??= realAddrs()))
    // hex of a live nat flow's key -> hex of the reply key it owns
    const liveNat = new Map<string, string>()
    const ks = conns.keySize
    const vs = conns.valueBytes
    const report: SweepReport = { scanned: 0, expired: 0, stale: 0, raced: 0, natRevRemoved: 0, batches: 0, durationMs: 0, counts: new Map() }
    let token: Buffer | null = null
    for (let guard = 0; guard <= conns.maxEntries + 1; guard++) {
      const r = conns.lookupBatchRaw(token, batchSize)
      report.batches++
      report.scanned += r.count
      const doomed: number[] = []
      const why: ('expired' | 'stale')[] = []
      for (let i = 0; i < r.count; i++) {
        const kb = i * ks
        const vb = i * vs
        const proto = r.keys[kb + K_PROTO]!
        const state = r.values[vb + C_STATE]!
        const template = (r.values[vb + C_FLAGS]! & ConnFlags.TEMPLATE) !== 0
        const lastSeen = r.values.readBigUInt64LE(vb + C_LAST_SEEN)
        const serviceId = r.values.readUInt32LE(vb + C_SERVICE)
        const expired = template
          ? services !== undefined && templateExpired(lastSeen, r.values.readUInt32LE(vb + C_CTL_UNTIL), services.persist?.get(serviceId) ?? 0, nowNs)
          : connExpired(lastSeen, proto, state, set, nowNs)
        if (expired) { doomed.push(i); why.push('expired'); continue }
        // Created before this pass read the services (a flow of a service added since is not judged on old news).
        if (services && r.values.readBigUInt64LE(vb + C_CREATED) < nowNs && serviceOfEntry(r.keys, kb, services) !== serviceId) {
          doomed.push(i); why.push('stale'); continue
        }
        const realId = r.values.readUInt32LE(vb + C_REAL)
        if (reals && r.values[vb + C_FLAGS]! & ConnFlags.NAT) {
          const rk = natRevKeyOf(r.keys, kb, r.values, vb, reals())
          if (rk) liveNat.set(r.keys.subarray(kb, kb + ks).toString('hex'), rk.toString('hex'))
        }
        let c = report.counts.get(realId)
        if (!c) report.counts.set(realId, (c = { active: 0, inactive: 0, persistent: 0 }))
        if (template) c.persistent++
        else if (proto === Proto.TCP && state === ConnState.ESTABLISHED) c.active++
        else c.inactive++
      }
      if (doomed.length) this.remove(r.keys, r.values, vs, doomed, why, report)
      token = r.token
      if (token === null) break
      await yieldToLoop()
    }
    if (reals && this.opts.natRev) await this.sweepNatRev(this.opts.natRev, reals, liveNat, report)
    report.durationMs = this.opts.clock.now() - started
    this.totals.passes++
    this.totals.natRevRemoved += report.natRevRemoved
    this.totals.scanned += report.scanned
    this.totals.expired += report.expired
    this.totals.stale += report.stale
    this.totals.raced += report.raced
    this.totals.last = report
    if (report.expired || report.stale) this.log.debug({ scanned: report.scanned, expired: report.expired, stale: report.stale, raced: report.raced, ms: report.durationMs }, 'connections swept')
    try {
      this.opts.reconcile?.(report.counts, begun)
    } catch (err) {
      this.totals.errors++
      this.log.error({ err }, 'reconciling connection counters failed')
    }
    return report
  }

  /**
   * Delete the xvs_nat_rev entries no live connection owns. An entry whose flow this pass did not see
   * owning it is judged again from the table as it is now (a connection opened meanwhile keeps it).
   */
  private async sweepNatRev(rev: ConnTable, reals: () => RealAddrs, liveNat: ReadonlyMap<string, string>, report: SweepReport): Promise<void> {
    const { conns, batchSize, natRetireMs } = this.opts
    const ks = rev.keySize
    const vs = rev.valueBytes
    const nowMs = this.opts.clock.now()
    const retiring = new Map<string, number>()
    let token: Buffer | null = null
    for (let guard = 0; guard <= rev.maxEntries + 1; guard++) {
      const r = rev.lookupBatchRaw(token, batchSize)
      const doomed: Buffer[] = []
      for (let i = 0; i < r.count; i++) {
        const key = r.keys.subarray(i * ks, (i + 1) * ks)
        const flow = r.values.subarray(i * vs, i * vs + ConnKey.size)
        const keyHex = key.toString('hex')
        if (liveNat.get(flow.toString('hex')) === keyHex) continue
        const conn = conns.lookup(flow)
        if (conn && conn[C_FLAGS]! & ConnFlags.NAT && natRevKeyOf(flow, 0, conn, 0, reals())?.toString('hex') === keyHex) continue
        // still pointing at the same flow (a new connection may have claimed the tuple since)
        const now = rev.lookup(key)
        if (now === null || !now.subarray(0, ConnKey.size).equals(flow)) { report.raced++; continue }
        // a nat tuple is the client's own address and port; a fullnat one waits out the server's TIME_WAIT
        const fullnat = !key.subarray(K_VADDR, K_VADDR + 16).equals(flow.subarray(K_CADDR, K_CADDR + 16)) ||
          key.readUInt16BE(K_VPORT) !== flow.readUInt16BE(K_CPORT)
        if (fullnat) {
          const since = this.retiring.get(keyHex) ?? nowMs
          if (nowMs - since < natRetireMs) { retiring.set(keyHex, since); continue }
        }
        doomed.push(Buffer.from(key))
      }
      let done = 0
      while (done < doomed.length) {
        const d = rev.deleteBatchRaw(Buffer.concat(doomed.slice(done)), doomed.length - done)
        report.natRevRemoved += d
        done += d
        if (done < doomed.length) { report.raced++; done++ }
      }
      token = r.token
      if (token === null) break
      await yieldToLoop()
    }
    this.retiring = retiring
  }

  /** Re-read each candidate, delete those still as they were, in one batch (skipping keys gone meanwhile). */
  private remove(keys: Buffer, values: Buffer, vs: number, doomed: number[], why: ('expired' | 'stale')[], report: SweepReport): void {
    const { conns } = this.opts
    const ks = conns.keySize
    const out = Buffer.alloc(doomed.length * ks)
    const kinds: ('expired' | 'stale')[] = []
    let n = 0
    doomed.forEach((i, j) => {
      const key = keys.subarray(i * ks, (i + 1) * ks)
      const now = conns.lookup(key)
      if (now === null || !now.subarray(0, Conn.size).equals(values.subarray(i * vs, i * vs + Conn.size))) { report.raced++; return }
      key.copy(out, n * ks)
      kinds.push(why[j]!)
      n++
    })
    let done = 0
    while (done < n) {
      const d = conns.deleteBatchRaw(out.subarray(done * ks, n * ks), n - done)
      for (let j = done; j < done + d; j++) report[kinds[j]!]++
      done += d
      // The batch stops at a key that vanished since the re-read (the packet path or the LRU took it).
      if (done < n) { report.raced++; done++ }
    }
  }
}
