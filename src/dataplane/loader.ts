// SPDX-License-Identifier: GPL-2.0-only
// Loading, finding and unloading the director's data plane in the calling thread's network
// namespace. The kernel is the source of truth, as it is for ipvsadm: a later command finds the
// running data plane through the program attached to this namespace's interfaces and its maps by
// id, so separate invocations meet the same state even where no bpffs is visible (`ip netns exec`
// hides /sys/fs/bpf). Where a bpffs is visible, maps and links are also pinned under
// <bpffs>/xvs/<netns>/v<ABI>/. A new program replaces a running one atomically and reuses its maps.
import fs from 'node:fs'
import path from 'node:path'
import {
  BpfMap, BpfObject, BpfProgram, XdpLink, ifindexOf, interfaces, isBpffs, netnsCookie, xdpAttach, xdpDetach, xdpQuery, type XdpMode,
} from '../bpf'
import { ABI_VERSION, abiDiff, objectPath } from './abi'
import { XvsError } from '../errors'
import { silentLogger, type Logger } from '../log'

export const PROGRAM_NAME = 'xvs_director'

/** Map names (as the kernel reports them) and the properties they are reached by. */
export const MAP_NAMES = {
  settings: 'xvs_settings', services: 'xvs_services', reals: 'xvs_reals', svcTables: 'xvs_svc_tables',
  rrCursor: 'xvs_rr_cursor', conns: 'xvs_conns', svcStats: 'xvs_svc_stats', realStats: 'xvs_real_stats',
  counters: 'xvs_counters', txPorts: 'xvs_tx_ports', realConns: 'xvs_real_conns', groupRanges: 'xvs_grp_ranges',
  locality: 'xvs_locality', natRev: 'xvs_nat_rev', laddrs: 'xvs_laddrs',
} as const
export type MapKey = keyof typeof MAP_NAMES
export type DataplaneMaps = Record<MapKey, BpfMap>

const ABI_MAP = '.rodata.abi'

export class DataplaneError extends XvsError {
  constructor(message: string, opts: { hint?: string; cause?: unknown } = {}) {
    super('EDATAPLANE', message, opts)
  }
}

export interface Attachment {
  ifname: string
  ifindex: number
  mode: 'native' | 'generic'
  /** 'link' when a pinned bpf_link holds it, else 'netlink'. */
  via: 'link' | 'netlink'
  progId: number
}

/**
 * This network namespace's identity for pin paths: its cookie, which no later namespace reuses
 * (nsfs inode numbers are reused, and pins of a deleted namespace would be adopted by a new one).
 */
export function netnsId(): string {
  return `ns${netnsCookie()}`
}

/** The bpffs xvs pins into, if one is visible: $XVS_BPFFS, else /sys/fs/bpf. */
export function bpffsRoot(): string | null {
  const root = process.env.XVS_BPFFS ?? '/sys/fs/bpf'
  return isBpffs(root) ? root : null
}

export function pinDir(root: string): string {
  return path.join(root, 'xvs', netnsId(), `v${ABI_VERSION}`)
}

export class Dataplane {
  readonly prog: BpfProgram
  readonly maps: DataplaneMaps
  readonly abiVersion: number
  /** Where this data plane is pinned, or null. */
  readonly pins: string | null

  constructor(prog: BpfProgram, maps: DataplaneMaps, abiVersion: number, pins: string | null) {
    this.prog = prog
    this.maps = maps
    this.abiVersion = abiVersion
    this.pins = pins
  }

  /** Every interface of this namespace where this program (or another xvs director) is attached. */
  attachments(): Attachment[] {
    const out: Attachment[] = []
    for (const i of interfaces()) {
      const q = xdpQuery(i.ifindex)
      if (q.mode === 'none') continue
      const id = q.nativeProgId || q.genericProgId
      if (id !== this.prog.id && !isDirector(id)) continue
      const via = this.pins && fs.existsSync(path.join(this.pins, `link_${i.name}`)) ? 'link' : 'netlink'
      out.push({ ifname: i.name, ifindex: i.ifindex, mode: q.nativeProgId ? 'native' : 'generic', via, progId: id })
    }
    return out
  }

  close(): void {
    this.prog.close()
    for (const m of Object.values(this.maps)) m.close()
  }
}

function isDirector(progId: number): boolean {
  try {
    const p = BpfProgram.fromId(progId)
    try { return p.name === PROGRAM_NAME } finally { p.close() }
  } catch {
    return false
  }
}

/** Open a running director program's maps by id, and read its ABI version. */
function adopt(prog: BpfProgram, pins: string | null): Dataplane {
  const found: Partial<DataplaneMaps> = {}
  let abi = 0
  for (const id of prog.info().mapIds) {
    const m = BpfMap.fromId(id)
    const key = (Object.keys(MAP_NAMES) as MapKey[]).find((k) => MAP_NAMES[k] === m.name)
    if (key) { found[key] = m; continue }
    if (m.name === ABI_MAP) abi = m.lookup(Buffer.alloc(4))?.readUInt32LE() ?? 0
    m.close()
  }
  const missing = (Object.keys(MAP_NAMES) as MapKey[]).filter((k) => !found[k])
  if (missing.length) {
    for (const m of Object.values(found)) m.close()
    prog.close()
    throw new DataplaneError(`the attached xvs program (id ${prog.id}) lacks maps ${missing.map((k) => MAP_NAMES[k]).join(', ')}`,
      { hint: 'it is from an incompatible xvs; unload it (xvs unload) and load again' })
  }
  return new Dataplane(prog, found as DataplaneMaps, abi, pins)
}

/** The data plane running in this network namespace, found through the kernel; null if none. */
export function findDataplane(): Dataplane | null {
  const root = bpffsRoot()
  const pins = root ? pinDir(root) : null
  for (const i of interfaces()) {
    const q = xdpQuery(i.ifindex)
    for (const id of [q.nativeProgId, q.genericProgId]) {
      if (!id) continue
      const p = BpfProgram.fromId(id)
      if (p.name === PROGRAM_NAME) return adopt(p, pins)
      p.close()
    }
  }
  // Loaded and pinned, but attached nowhere (every interface was detached).
  if (pins && fs.existsSync(path.join(pins, 'prog'))) return adopt(BpfProgram.fromPin(path.join(pins, 'prog')), pins)
  return null
}

export interface LoadOptions {
  /** Interfaces to attach to (in this namespace). */
  ifaces: string[]
  mode?: XdpMode
  /** xvs_conns entries; only used when no data plane is running (a running one keeps its table). */
  connTableSize?: number
  /** The director object; default out/bpf/xvs.bpf.o. */
  object?: string
  log?: Logger
}

export interface LoadResult {
  dataplane: Dataplane
  /** True when a running data plane's maps were reused (upgrade/restart without losing flows). */
  adopted: boolean
  /** Interfaces where the program was newly attached, and where it replaced a running one. */
  attached: string[]
  replaced: string[]
}

/**
 * Load the director and attach it to `ifaces`. A running director's maps are reused and its
 * attachments replaced atomically (no packet sees no program); an incompatible one is refused.
 */
export function loadDataplane(opts: LoadOptions): LoadResult {
  const log = (opts.log ?? silentLogger).child({ component: 'loader' })
  const file = opts.object ?? objectPath()
  if (!fs.existsSync(file)) throw new DataplaneError(`${file} is missing`, { hint: "build it with 'make'" })
  const drift = abiDiff(file)
  if (drift.length) throw new DataplaneError(`xvs.bpf.o does not match the ABI this xvs was built for: ${drift[0]}`, { hint: "rebuild with 'make'" })
  const ifaces = [...new Set(opts.ifaces)]
  if (ifaces.length === 0) throw new DataplaneError('no interface to attach to', { hint: 'name one with -i' })
  const mode = opts.mode ?? 'native'

  const running = findDataplane()
  if (running && running.abiVersion !== ABI_VERSION) {
    running.close()
    throw new DataplaneError(`a data plane of ABI version ${running.abiVersion} runs here; this xvs speaks version ${ABI_VERSION}`,
      { hint: 'unload it first (xvs unload); its connections will be lost' })
  }
  const root = bpffsRoot()
  const pins = root ? pinDir(root) : null
  if (pins) fs.mkdirSync(pins, { recursive: true })

  // A fresh data plane that fails to load or attach leaves no pins behind (nothing half-applied).
  const abandon = (): void => { if (pins && !running) removePins(pins) }
  const obj = BpfObject.open(file)
  let prog: BpfProgram
  try {
    for (const [key, name] of Object.entries(MAP_NAMES) as [MapKey, string][]) {
      if (running) obj.reuseMap(name, running.maps[key])
      else if (pins) obj.setPinPath(name, path.join(pins, name))
      // nat reply entries are as many as the connections at most
      if (!running && (key === 'conns' || key === 'natRev') && opts.connTableSize) obj.setMaxEntries(name, opts.connTableSize)
    }
    obj.load()
    prog = obj.program(PROGRAM_NAME)
  } catch (e) {
    abandon()
    throw e
  } finally {
    obj.close()
  }

  const attached: string[] = []
  const replaced: string[] = []
  const previous = new Map((running?.attachments() ?? []).map((a) => [a.ifname, a]))
  try {
    for (const ifname of ifaces) {
      const old = previous.get(ifname)
      if (old) {
        replaceAttachment(ifname, old, prog, running!.prog, pins)
        replaced.push(ifname)
      } else {
        attach(ifname, prog, mode, pins)
        attached.push(ifname)
      }
    }
    // Interfaces the running program served but this load does not name keep the new program too:
    // one program version per namespace.
    for (const [ifname, old] of previous) {
      if (ifaces.includes(ifname)) continue
      replaceAttachment(ifname, old, prog, running!.prog, pins)
      replaced.push(ifname)
    }
  } catch (e) {
    // Nothing half-applied: undo the fresh attachments (replacements keep a working program).
    for (const ifname of attached) detachOne(ifname, pins)
    prog.close()
    running?.close()
    abandon()
    throw e
  }
  if (pins) {
    const pp = path.join(pins, 'prog')
    if (fs.existsSync(pp)) fs.unlinkSync(pp)
    prog.pin(pp)
  }
  const maps = running ? running.maps : openMaps(prog)
  running?.prog.close()
  // Every interface the director serves is a redirect target (nat replies leave by the client side),
  // through the devmap: bulked transmits. Written here, in the namespace the ifindexes belong to.
  for (const ifname of [...attached, ...replaced]) {
    try {
      const ifindex = ifindexOf(ifname)
      const k = Buffer.alloc(4)
      k.writeUInt32LE(ifindex)
      maps.txPorts.update(k, k)
    } catch (err) {
      log.warn({ err, ifname }, 'not in xvs_tx_ports: redirects there use bpf_redirect')
    }
  }
  log.info({ attached, replaced, adopted: !!running, progId: prog.id, pins }, 'data plane loaded')
  return { dataplane: new Dataplane(prog, maps, ABI_VERSION, pins), adopted: !!running, attached, replaced }
}

/**
 * A director loaded but attached nowhere and pinned nowhere: for test runs and benchmarks. It lives
 * as long as the returned Dataplane is open.
 */
export function loadDetached(opts: { object?: string; connTableSize?: number } = {}): Dataplane {
  const obj = BpfObject.open(opts.object ?? objectPath())
  try {
    if (opts.connTableSize) {
      obj.setMaxEntries(MAP_NAMES.conns, opts.connTableSize)
      obj.setMaxEntries(MAP_NAMES.natRev, opts.connTableSize)
    }
    obj.load()
    const prog = obj.program(PROGRAM_NAME)
    return new Dataplane(prog, openMaps(prog), ABI_VERSION, null)
  } finally {
    obj.close()
  }
}

function openMaps(prog: BpfProgram): DataplaneMaps {
  const d = adopt(BpfProgram.fromId(prog.id), null)
  d.prog.close()
  return d.maps
}

/** Attach: a pinned bpf_link where a bpffs is visible, else the netlink attachment (outlives us). */
export function attach(ifname: string, prog: BpfProgram, mode: XdpMode, pins: string | null): void {
  if (pins) {
    const link = XdpLink.attach(prog, ifname, { mode })
    try {
      const lp = path.join(pins, `link_${ifname}`)
      if (fs.existsSync(lp)) fs.unlinkSync(lp)
      link.pin(lp)
    } finally {
      link.close()
    }
  } else {
    xdpAttach(ifname, prog, { mode })
  }
}

export function replaceAttachment(ifname: string, old: Attachment, prog: BpfProgram, oldProg: BpfProgram, pins: string | null): void {
  if (old.via === 'link' && pins) {
    const link = XdpLink.fromPin(path.join(pins, `link_${ifname}`))
    try { link.update(prog, { expected: oldProg }) } finally { link.close() }
  } else {
    xdpAttach(ifname, prog, { mode: old.mode, replace: oldProg })
  }
}

/** Detach whatever xvs attached to `ifname`: its pinned link, else the netlink attachment. */
export function detachOne(ifname: string, pins: string | null): void {
  const lp = pins ? path.join(pins, `link_${ifname}`) : null
  if (lp && fs.existsSync(lp)) {
    const link = XdpLink.fromPin(lp)
    try { link.detach() } finally { link.close() }
    fs.unlinkSync(lp)
    return
  }
  const q = xdpQuery(ifname)
  const id = q.nativeProgId || q.genericProgId
  if (!id) return
  const p = BpfProgram.fromId(id)
  try {
    xdpDetach(ifname, { mode: q.nativeProgId ? 'native' : 'generic', expected: p })
  } finally {
    p.close()
  }
}

/**
 * Detach the director from `ifaces` (default: everywhere in this namespace). When it is attached
 * nowhere any more, the pins go too and the kernel frees the program and maps.
 */
/** Remove a pin directory and everything in it, and the namespace's directory once empty. */
function removePins(pins: string): void {
  fs.rmSync(pins, { recursive: true, force: true })
  // the namespace's directory goes once no other ABI version's pins are in it
  try { fs.rmdirSync(path.dirname(pins)) } catch { /* not empty, or gone */ }
}

export function unloadDataplane(opts: { ifaces?: string[]; log?: Logger } = {}): string[] {
  const log = (opts.log ?? silentLogger).child({ component: 'loader' })
  const dp = findDataplane()
  if (!dp) return []
  const done: string[] = []
  try {
    for (const a of dp.attachments()) {
      if (opts.ifaces && !opts.ifaces.includes(a.ifname)) continue
      detachOne(a.ifname, dp.pins)
      done.push(a.ifname)
    }
    if (dp.attachments().length === 0 && dp.pins) removePins(dp.pins)
  } finally {
    dp.close()
  }
  log.info({ detached: done }, 'data plane unloaded')
  return done
}
