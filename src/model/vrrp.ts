// SPDX-License-Identifier: GPL-2.0-only
// The failover part of the model (Model.vrrp): defaults, constructors every parser builds through, and
// validation with errors that name the field and the fix. Runtime details (the interface's own
// address, timers) are the HA runtime's; what is checked here is what a config file can get wrong.
import { familyOf, isInterfaceName, parseIp } from './addr'
import { serviceKey } from './diff'
import type {
  ConnSyncSpec, Family, GarpSettings, Model, VirtualAddress, VrrpInstanceSpec, VrrpModel, VrrpNotify, VrrpSyncGroupSpec,
} from './types'

/** keepalived's defaults (global_defs vrrp_garp_*). */
export function defaultGarp(): GarpSettings {
  return { masterDelay: 5, masterRepeat: 5, masterRefresh: 0, masterRefreshRepeat: 1, interval: 0 }
}

export const DEFAULT_VRRP_VERSION = 2
export const DEFAULT_VRRP_PRIORITY = 100
export const DEFAULT_ADVERT_INTERVAL = 1
/** The IPVS sync daemon's port. */
export const DEFAULT_SYNC_PORT = 8848
export const DEFAULT_SYNC_INTERVAL = 1
export const MIN_SYNC_KEY_LENGTH = 16
export const MAX_TRACK_WEIGHT = 253
export const MAX_PREEMPT_DELAY = 1000
export const MAX_AUTH_PASS = 8

export function emptyVrrp(): VrrpModel {
  return { version: DEFAULT_VRRP_VERSION, garp: defaultGarp(), instances: [], syncGroups: [] }
}

export type VrrpInstanceOptions = Partial<Omit<VrrpInstanceSpec, 'name' | 'interface' | 'vrid'>>

/** An instance with every default filled in; optional fields given as undefined are left out. */
export function vrrpInstance(name: string, iface: string, vrid: number, o: VrrpInstanceOptions = {}): VrrpInstanceSpec {
  const inst: VrrpInstanceSpec = {
    name,
    interface: iface,
    vrid,
    priority: o.priority ?? DEFAULT_VRRP_PRIORITY,
    advertInterval: o.advertInterval ?? DEFAULT_ADVERT_INTERVAL,
    state: o.state ?? 'BACKUP',
    preempt: o.preempt ?? true,
    preemptDelay: o.preemptDelay ?? 0,
    virtualAddresses: o.virtualAddresses ?? [],
    excludedAddresses: o.excludedAddresses ?? [],
    unicastPeers: o.unicastPeers ?? [],
    trackInterfaces: o.trackInterfaces ?? [],
    trackServices: o.trackServices ?? [],
    notify: o.notify ?? {},
  }
  if (o.version !== undefined) inst.version = o.version
  if (o.unicastSrcIp !== undefined) inst.unicastSrcIp = o.unicastSrcIp
  if (o.authPass !== undefined) inst.authPass = o.authPass
  if (o.garp !== undefined && Object.keys(o.garp).length > 0) inst.garp = o.garp
  return inst
}

export function connSync(instance: string, peers: string[], o: Partial<Omit<ConnSyncSpec, 'instance' | 'peers'>> = {}): ConnSyncSpec {
  const s: ConnSyncSpec = {
    instance,
    peers,
    port: o.port ?? DEFAULT_SYNC_PORT,
    interval: o.interval ?? DEFAULT_SYNC_INTERVAL,
    holdPreempt: o.holdPreempt ?? true,
    holdTimeout: o.holdTimeout ?? 0,
  }
  if (o.source !== undefined) s.source = o.source
  if (o.key !== undefined) s.key = o.key
  if (o.keyFile !== undefined) s.keyFile = o.keyFile
  return s
}

/** The address family of an instance: its advertised addresses', else its source's, else IPv4. */
export function instanceFamily(i: Pick<VrrpInstanceSpec, 'virtualAddresses' | 'unicastSrcIp'>): Family {
  return familyOf(i.virtualAddresses[0]?.address ?? '') ?? familyOf(i.unicastSrcIp ?? '') ?? 4
}

/** The VRRP version an instance runs. */
export function instanceVersion(i: VrrpInstanceSpec, v: VrrpModel): 2 | 3 {
  return i.version ?? v.version
}

/** The service a track_service entry names: by name, or by key ("tcp:10.0.0.1:80", "group:7"). */
export function findTrackedService(model: Pick<Model, 'services'>, ref: string): number[] {
  const out: number[] = []
  model.services.forEach((s, i) => {
    if (s.name === ref || serviceKey(s) === ref) out.push(i)
  })
  return out
}

type Bad = (path: string, text: string) => never

const show = (v: unknown): string => (typeof v === 'string' ? `'${v}'` : JSON.stringify(v) ?? String(v))
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v)
const isInt = (v: unknown, min: number, max: number): v is number => Number.isInteger(v) && (v as number) >= min && (v as number) <= max

/** Check Model.vrrp; `bad` throws the located ConfigError. */
export function validateVrrp(model: Model, bad: Bad): void {
  const v = model.vrrp
  if (v === undefined) return
  const p = 'vrrp'
  if (typeof v !== 'object' || v === null) bad(p, 'is not a mapping; give instances (and optionally sync_groups, conn_sync)')
  if (v.version !== 2 && v.version !== 3) bad(`${p}.version`, `${show(v.version)} is not a VRRP version; use 2 or 3`)
  garp(`${p}.garp`, v.garp, bad, false)
  if (!Array.isArray(v.instances)) bad(`${p}.instances`, 'is not a list')
  const names = new Map<string, number>()
  const routers = new Map<string, number>()
  v.instances.forEach((inst, i) => {
    const ip = `${p}.instances[${i}]`
    instance(ip, inst, v, model, bad)
    const first = names.get(inst.name)
    if (first !== undefined) bad(`${ip}.name`, `${show(inst.name)} is also the name of instances[${first}]; give each instance its own name`)
    names.set(inst.name, i)
    const router = `${inst.interface}/${instanceFamily(inst)}/${inst.vrid}`
    const other = routers.get(router)
    if (other !== undefined) {
      bad(`${ip}.vrid`, `${inst.vrid} is already used on ${inst.interface} by instances[${other}]; a VRID may appear once per interface and address family`)
    }
    routers.set(router, i)
  })
  if (!Array.isArray(v.syncGroups)) bad(`${p}.syncGroups`, 'is not a list')
  const member = new Map<string, string>()
  const groups = new Set<string>()
  v.syncGroups.forEach((g, i) => syncGroup(`${p}.syncGroups[${i}]`, g, names, member, groups, bad))
  if (v.connSync !== undefined) sync(`${p}.connSync`, v.connSync, names, groups, bad)
}

function garp(p: string, g: Partial<GarpSettings> | undefined, bad: Bad, partial: boolean): void {
  if (typeof g !== 'object' || g === null) return bad(p, 'is not a mapping')
  const seconds = ['masterDelay', 'masterRefresh', 'interval'] as const
  const counts = ['masterRepeat', 'masterRefreshRepeat'] as const
  for (const k of Object.keys(g)) {
    if (![...seconds, ...counts].includes(k as never)) bad(`${p}.${k}`, 'is not a garp setting')
  }
  for (const k of seconds) {
    const x = g[k]
    if (x === undefined && partial) continue
    if (!isNum(x) || x < 0 || x > 86400) bad(`${p}.${k}`, `${show(x)} is not a number of seconds 0..86400`)
  }
  for (const k of counts) {
    const x = g[k]
    if (x === undefined && partial) continue
    if (!isInt(x, 0, 1000)) bad(`${p}.${k}`, `${show(x)} is not a whole number of messages 0..1000`)
  }
}

function notify(p: string, n: VrrpNotify, bad: Bad): void {
  if (typeof n !== 'object' || n === null) bad(p, 'is not a mapping of master / backup / fault / stop / any commands')
  for (const [k, cmd] of Object.entries(n)) {
    if (!['master', 'backup', 'fault', 'stop', 'any'].includes(k)) bad(`${p}.${k}`, 'is not a notify event; use master, backup, fault, stop or any')
    if (typeof cmd !== 'string' || cmd.trim() === '') bad(`${p}.${k}`, `${show(cmd)} is not a command; give a script path (and arguments)`)
  }
}

function vaddr(p: string, a: VirtualAddress, bad: Bad): Family {
  const ip = typeof a?.address === 'string' ? parseIp(a.address) : undefined
  if (!ip) bad(`${p}.address`, `${show(a?.address)} is not an IP address`)
  const max = ip.family === 4 ? 32 : 128
  if (!isInt(a.prefix, 0, max)) bad(`${p}.prefix`, `${show(a.prefix)} is not a prefix length for IPv${ip.family}; use 0..${max}`)
  if (a.dev !== undefined && (typeof a.dev !== 'string' || !isInterfaceName(a.dev))) {
    bad(`${p}.dev`, `${show(a.dev)} is not an interface name`)
  }
  if (a.label !== undefined) {
    if (ip.family !== 4) bad(`${p}.label`, 'labels are for IPv4 addresses only; remove it')
    if (typeof a.label !== 'string' || a.label.length > 15 || /\s/.test(a.label)) bad(`${p}.label`, `${show(a.label)} is not a label; use up to 15 characters such as eth0:1`)
  }
  return ip.family
}

function instance(p: string, i: VrrpInstanceSpec, v: VrrpModel, model: Model, bad: Bad): void {
  if (typeof i !== 'object' || i === null) bad(p, 'is not an instance')
  if (typeof i.name !== 'string' || !/^[\w.:-]{1,64}$/.test(i.name)) bad(`${p}.name`, `${show(i.name)} is not an instance name; use one word of letters, digits, _ . : -`)
  if (typeof i.interface !== 'string' || !isInterfaceName(i.interface)) bad(`${p}.interface`, `${show(i.interface)} is not an interface name; use a name such as eth0`)
  if (!isInt(i.vrid, 1, 255)) bad(`${p}.vrid`, `${show(i.vrid)} is not a virtual router id; use 1..255`)
  if (!isInt(i.priority, 1, 255)) bad(`${p}.priority`, `${show(i.priority)} is not a priority; use 1..254 (255: the address owner)`)
  if (i.version !== undefined && i.version !== 2 && i.version !== 3) bad(`${p}.version`, `${show(i.version)} is not a VRRP version; use 2 or 3`)
  const version = instanceVersion(i, v)
  if (version === 2) {
    if (!isInt(i.advertInterval, 1, 255)) bad(`${p}.advertInterval`, `${show(i.advertInterval)} is not an advert interval for VRRPv2; use whole seconds 1..255`)
  } else if (!isNum(i.advertInterval) || i.advertInterval < 0.01 || i.advertInterval > 40.95 || Math.abs(i.advertInterval * 100 - Math.round(i.advertInterval * 100)) > 1e-9) {
    bad(`${p}.advertInterval`, `${show(i.advertInterval)} is not an advert interval for VRRPv3; use 0.01..40.95 seconds in hundredths`)
  }
  if (i.state !== 'MASTER' && i.state !== 'BACKUP') bad(`${p}.state`, `${show(i.state)} is not an initial state; use MASTER or BACKUP`)
  if (typeof i.preempt !== 'boolean') bad(`${p}.preempt`, `${show(i.preempt)} is not true or false`)
  if (!isNum(i.preemptDelay) || i.preemptDelay < 0 || i.preemptDelay > MAX_PREEMPT_DELAY) bad(`${p}.preemptDelay`, `${show(i.preemptDelay)} is not a delay; use 0..${MAX_PREEMPT_DELAY} seconds`)
  if (i.preemptDelay > 0 && !i.preempt) bad(`${p}.preemptDelay`, 'has no meaning without preemption (preempt: false); remove one')

  if (!Array.isArray(i.virtualAddresses)) bad(`${p}.virtualAddresses`, 'is not a list')
  if (i.virtualAddresses.length > 255) bad(`${p}.virtualAddresses`, `lists ${i.virtualAddresses.length} addresses; an advertisement carries at most 255 (put the rest in excludedAddresses)`)
  const family = instanceFamily(i)
  const seen = new Map<string, string>()
  const addrList = (field: 'virtualAddresses' | 'excludedAddresses', sameFamily: boolean): void => {
    if (!Array.isArray(i[field])) bad(`${p}.${field}`, 'is not a list')
    i[field].forEach((a, j) => {
      const ap = `${p}.${field}[${j}]`
      const f = vaddr(ap, a, bad)
      if (sameFamily && f !== family) bad(`${ap}.address`, `${a.address} is IPv${f} but the instance is IPv${family}; advertised addresses share one family (use another instance, or excludedAddresses)`)
      const key = `${parseIp(a.address)!.address}`
      const first = seen.get(key)
      if (first !== undefined) bad(ap, `${a.address} is already listed at ${first}; remove one`)
      seen.set(key, ap)
    })
  }
  addrList('virtualAddresses', true)
  addrList('excludedAddresses', false)
  if (family === 6 && version === 2) bad(`${p}.version`, 'VRRPv2 is IPv4 only (RFC 3768); use version 3 for IPv6 addresses')
  if (i.unicastSrcIp !== undefined) {
    const ip = typeof i.unicastSrcIp === 'string' ? parseIp(i.unicastSrcIp) : undefined
    if (!ip || ip.family !== family) bad(`${p}.unicastSrcIp`, `${show(i.unicastSrcIp)} is not an IPv${family} address`)
  }
  if (!Array.isArray(i.unicastPeers)) bad(`${p}.unicastPeers`, 'is not a list')
  const peers = new Set<string>()
  i.unicastPeers.forEach((a, j) => {
    const ip = typeof a === 'string' ? parseIp(a) : undefined
    if (!ip || ip.family !== family) bad(`${p}.unicastPeers[${j}]`, `${show(a)} is not an IPv${family} address`)
    if (peers.has(ip.address)) bad(`${p}.unicastPeers[${j}]`, `${a} is listed twice; remove one`)
    peers.add(ip.address)
  })
  if (i.authPass !== undefined) {
    if (version !== 2) bad(`${p}.authPass`, 'authentication exists in VRRPv2 only (RFC 5798 removed it); remove it or use version 2')
    if (typeof i.authPass !== 'string' || i.authPass.length === 0 || Buffer.byteLength(i.authPass, 'latin1') > MAX_AUTH_PASS) {
      bad(`${p}.authPass`, `${show(i.authPass)} is not a password; use 1..${MAX_AUTH_PASS} characters (keepalived auth_pass)`)
    }
  }
  if (!Array.isArray(i.trackInterfaces)) bad(`${p}.trackInterfaces`, 'is not a list')
  const tracked = new Set<string>()
  i.trackInterfaces.forEach((ti, j) => {
    const tp = `${p}.trackInterfaces[${j}]`
    if (typeof ti?.name !== 'string' || !isInterfaceName(ti.name)) bad(`${tp}.name`, `${show(ti?.name)} is not an interface name`)
    if (!isInt(ti.weight, -MAX_TRACK_WEIGHT, MAX_TRACK_WEIGHT)) bad(`${tp}.weight`, `${show(ti.weight)} is not a weight; use -253..253 (0: fault while down)`)
    if (tracked.has(ti.name)) bad(tp, `${ti.name} is tracked twice; remove one`)
    tracked.add(ti.name)
  })
  if (!Array.isArray(i.trackServices)) bad(`${p}.trackServices`, 'is not a list')
  i.trackServices.forEach((ts, j) => {
    const tp = `${p}.trackServices[${j}]`
    if (typeof ts?.service !== 'string' || ts.service === '') bad(`${tp}.service`, 'names no service; give a service name or key such as tcp:10.0.0.1:80')
    const found = findTrackedService(model, ts.service)
    if (found.length === 0) {
      bad(`${tp}.service`, `${show(ts.service)} is no service of this config; give a service name or key (${model.services.slice(0, 3).map((s) => s.name ?? serviceKey(s)).join(', ') || 'no services defined'})`)
    }
    if (found.length > 1) bad(`${tp}.service`, `${show(ts.service)} names ${found.length} services; give names that are unique, or use the key`)
    if (!isInt(ts.weight, -MAX_TRACK_WEIGHT, MAX_TRACK_WEIGHT)) bad(`${tp}.weight`, `${show(ts.weight)} is not a weight; use -253..253 (0: fault while down)`)
  })
  notify(`${p}.notify`, i.notify, bad)
  if (i.garp !== undefined) garp(`${p}.garp`, i.garp, bad, true)
}

function syncGroup(p: string, g: VrrpSyncGroupSpec, names: Map<string, number>, member: Map<string, string>, groups: Set<string>, bad: Bad): void {
  if (typeof g?.name !== 'string' || !/^[\w.:-]{1,64}$/.test(g.name)) bad(`${p}.name`, `${show(g?.name)} is not a group name; use one word`)
  if (groups.has(g.name) || names.has(g.name)) bad(`${p}.name`, `${show(g.name)} is already the name of another group or instance; names must be unique`)
  groups.add(g.name)
  if (!Array.isArray(g.instances) || g.instances.length === 0) bad(`${p}.instances`, 'is empty; list the instances that change state together')
  g.instances.forEach((n, j) => {
    if (!names.has(n)) bad(`${p}.instances[${j}]`, `${show(n)} is not an instance of this config`)
    const other = member.get(n)
    if (other !== undefined) bad(`${p}.instances[${j}]`, `${n} is already in sync group ${other}; an instance may be in one group`)
    member.set(n, g.name)
  })
  notify(`${p}.notify`, g.notify, bad)
}

function sync(p: string, s: ConnSyncSpec, names: Map<string, number>, groups: Set<string>, bad: Bad): void {
  if (typeof s !== 'object' || s === null) bad(p, 'is not a mapping')
  if (!names.has(s.instance) && !groups.has(s.instance)) bad(`${p}.instance`, `${show(s.instance)} is neither an instance nor a sync group of this config`)
  if (!Array.isArray(s.peers) || s.peers.length === 0) bad(`${p}.peers`, 'is empty; give the other director\'s address')
  const seen = new Set<string>()
  s.peers.forEach((a, j) => {
    const ip = typeof a === 'string' ? parseIp(a) : undefined
    if (!ip) bad(`${p}.peers[${j}]`, `${show(a)} is not an IP address`)
    if (seen.has(ip.address)) bad(`${p}.peers[${j}]`, `${a} is listed twice; remove one`)
    seen.add(ip.address)
  })
  if (!isInt(s.port, 1, 65535)) bad(`${p}.port`, `${show(s.port)} is not a port; use 1..65535`)
  if (s.source !== undefined && (typeof s.source !== 'string' || !parseIp(s.source))) bad(`${p}.source`, `${show(s.source)} is not an IP address`)
  if ((s.key === undefined) === (s.keyFile === undefined)) bad(p, 'needs exactly one of key and keyFile: the shared secret that authenticates sync messages (e.g. openssl rand -hex 32)')
  if (s.key !== undefined && (typeof s.key !== 'string' || s.key.length < MIN_SYNC_KEY_LENGTH)) {
    bad(`${p}.key`, `is shorter than ${MIN_SYNC_KEY_LENGTH} characters; use a long random secret (openssl rand -hex 32)`)
  }
  if (s.keyFile !== undefined && (typeof s.keyFile !== 'string' || s.keyFile === '')) bad(`${p}.keyFile`, 'is not a file name')
  if (!isNum(s.interval) || s.interval < 0.05 || s.interval > 60) bad(`${p}.interval`, `${show(s.interval)} is not a scan interval; use 0.05..60 seconds`)
  if (typeof s.holdPreempt !== 'boolean') bad(`${p}.holdPreempt`, `${show(s.holdPreempt)} is not true or false`)
  if (!isNum(s.holdTimeout) || s.holdTimeout < 0) bad(`${p}.holdTimeout`, `${show(s.holdTimeout)} is not a number of seconds (0: no limit)`)
}
