// SPDX-License-Identifier: GPL-2.0-only
// The `vrrp:` section of the xvs YAML: director failover (VRRP instances, sync groups, connection
// sync). Read with yaml.ts's Reader, so unknown keys and bad values point at file:line:column like
// the rest of the file; printed so that parseYaml(toYaml(m)) deep-equals m.
//
//   vrrp:
//     version: 3
//     garp: { master_delay: 5, master_repeat: 5 }
//     instances:
//       - name: VI_1
//         interface: eth0
//         vrid: 51
//         priority: 150
//         advert_interval: 1
//         virtual_addresses: [10.0.0.100/24, 10.0.1.100/24 dev eth1 label eth1:vip]
//         unicast_peers: [10.0.0.2]
//         track_interfaces: [eth1, { name: eth2, weight: -20 }]
//         track_services: [web]
//         notify: { master: /etc/xvs/to-master.sh }
//     sync_groups: [{ name: G1, instances: [VI_1] }]
//     conn_sync: { instance: VI_1, peers: [10.0.0.2], key_file: /etc/xvs/sync.key }
import type { Document } from 'yaml'
import { parseIp } from '../model/addr'
import { compact } from '../model/defaults'
import type { ConnSyncSpec, GarpSettings, VirtualAddress, VrrpInstanceSpec, VrrpModel, VrrpNotify, VrrpSyncGroupSpec } from '../model/types'
import { connSync, defaultGarp, emptyVrrp, vrrpInstance } from '../model/vrrp'
import type { Reader, Val } from './yaml'
import { nodeKind } from './yaml-fast'

export const VRRP_KEYS = {
  vrrp: ['version', 'garp', 'instances', 'sync_groups', 'conn_sync'],
  garp: ['master_delay', 'master_repeat', 'master_refresh', 'master_refresh_repeat', 'interval'],
  instance: [
    'name', 'interface', 'vrid', 'priority', 'advert_interval', 'state', 'preempt', 'preempt_delay', 'version',
    'virtual_addresses', 'excluded_addresses', 'unicast_src_ip', 'unicast_peers', 'auth_pass', 'track_interfaces',
    'track_services', 'notify', 'garp',
  ],
  address: ['address', 'prefix', 'dev', 'label'],
  notify: ['master', 'backup', 'fault', 'stop', 'any'],
  trackInterface: ['name', 'weight'],
  trackService: ['service', 'weight'],
  syncGroup: ['name', 'instances', 'notify'],
  connSync: ['instance', 'peers', 'port', 'source', 'key', 'key_file', 'interval', 'hold_preempt', 'hold_timeout'],
} as const

const GARP_FIELDS: ReadonlyArray<readonly [string, keyof GarpSettings]> = [
  ['master_delay', 'masterDelay'], ['master_repeat', 'masterRepeat'], ['master_refresh', 'masterRefresh'],
  ['master_refresh_repeat', 'masterRefreshRepeat'], ['interval', 'interval'],
]

/** "ADDRESS[/PREFIX] [dev DEV] [label LABEL]", keepalived's virtual_ipaddress words. */
export function parseVirtualAddress(text: string): VirtualAddress | string {
  const words = text.trim().split(/\s+/)
  const [head, ...rest] = words
  const m = /^([^/]+)(?:\/(\d{1,3}))?$/.exec(head ?? '')
  const ip = m ? parseIp(m[1]!) : undefined
  if (!m || !ip) return `'${head ?? ''}' is not an address; write ADDRESS[/PREFIX] such as 10.0.0.100/24`
  const a: VirtualAddress = { address: ip.address, prefix: m[2] !== undefined ? Number(m[2]) : ip.family === 4 ? 32 : 128 }
  for (let i = 0; i < rest.length; i += 2) {
    const [k, val] = [rest[i]!, rest[i + 1]]
    if ((k !== 'dev' && k !== 'label') || val === undefined) return `'${rest.slice(i).join(' ')}' is not understood; after the address give dev NAME and/or label NAME`
    a[k] = val
  }
  return a
}

export function formatVirtualAddress(a: VirtualAddress): string {
  return [`${a.address}/${a.prefix}`, ...(a.dev ? ['dev', a.dev] : []), ...(a.label ? ['label', a.label] : [])].join(' ')
}

export function readVrrp(r: Reader, v: Val): VrrpModel {
  const f = r.map(v, VRRP_KEYS.vrrp)
  const out = emptyVrrp()
  if (f.version) out.version = version(r, f.version)
  if (f.garp) out.garp = { ...defaultGarp(), ...readGarp(r, f.garp) }
  if (f.instances) out.instances = r.list(f.instances).map((x) => readInstance(r, x))
  if (f.sync_groups) out.syncGroups = r.list(f.sync_groups).map((x) => readSyncGroup(r, x))
  if (f.conn_sync) out.connSync = readConnSync(r, f.conn_sync)
  r.mark(out, v, { version: f.version, garp: f.garp, instances: f.instances, syncGroups: f.sync_groups, connSync: f.conn_sync })
  return out
}

function version(r: Reader, v: Val): 2 | 3 {
  const n = r.int(v)
  if (n !== 2 && n !== 3) r.fail(v, `${n} is not a VRRP version; use 2 or 3`)
  return n as 2 | 3
}

function readGarp(r: Reader, v: Val): Partial<GarpSettings> {
  const f = r.map(v, VRRP_KEYS.garp)
  const g: Partial<GarpSettings> = {}
  const marks: Record<string, Val | undefined> = {}
  for (const [yk, mk] of GARP_FIELDS) {
    const x = f[yk]
    if (!x) continue
    g[mk] = mk === 'masterRepeat' || mk === 'masterRefreshRepeat' ? r.int(x) : r.num(x)
    marks[mk] = x
  }
  r.mark(g, v, marks)
  return g
}

function readNotify(r: Reader, v: Val): VrrpNotify {
  const f = r.map(v, VRRP_KEYS.notify)
  const n: VrrpNotify = {}
  for (const k of VRRP_KEYS.notify) if (f[k]) n[k] = r.str(f[k])
  r.mark(n, v, f)
  return n
}

function readAddresses(r: Reader, v: Val): VirtualAddress[] {
  return r.list(v).map((x) => {
    let a: VirtualAddress
    if (nodeKind(x.node) === 'map') {
      const f = r.map(x, VRRP_KEYS.address)
      if (!f.address) r.fail(x, 'has no address')
      const ip = r.ip(f.address)
      a = compact({
        address: ip,
        prefix: f.prefix ? r.int(f.prefix) : ip.includes(':') ? 128 : 32,
        dev: f.dev && r.str(f.dev),
        label: f.label && r.str(f.label),
      })
      r.mark(a, x, { address: f.address, prefix: f.prefix, dev: f.dev, label: f.label })
    } else {
      const parsed = parseVirtualAddress(r.str(x))
      if (typeof parsed === 'string') r.fail(x, parsed)
      a = parsed
      r.mark(a, x, { address: x, prefix: x, dev: x, label: x })
    }
    return a
  })
}

function readInstance(r: Reader, v: Val): VrrpInstanceSpec {
  const f = r.map(v, VRRP_KEYS.instance)
  for (const k of ['name', 'interface', 'vrid'] as const) if (!f[k]) r.fail(v, `has no ${k}; an instance needs name, interface and vrid`)
  const state = f.state && r.str(f.state).toUpperCase()
  if (state !== undefined && state !== 'MASTER' && state !== 'BACKUP') r.fail(f.state!, `'${state}' is not an initial state; use MASTER or BACKUP`)
  const trackInterfaces = f.track_interfaces
    ? r.list(f.track_interfaces).map((x) => {
        if (nodeKind(x.node) === 'scalar') {
          const ti = { name: r.str(x), weight: 0 }
          r.mark(ti, x, { name: x })
          return ti
        }
        const tf = r.map(x, VRRP_KEYS.trackInterface)
        if (!tf.name) r.fail(x, 'has no name')
        const ti = { name: r.str(tf.name), weight: tf.weight ? r.int(tf.weight) : 0 }
        r.mark(ti, x, { name: tf.name, weight: tf.weight })
        return ti
      })
    : undefined
  const trackServices = f.track_services
    ? r.list(f.track_services).map((x) => {
        if (nodeKind(x.node) === 'scalar') {
          const ts = { service: r.str(x), weight: 0 }
          r.mark(ts, x, { service: x })
          return ts
        }
        const tf = r.map(x, VRRP_KEYS.trackService)
        if (!tf.service) r.fail(x, 'has no service; give a service name or key such as tcp:10.0.0.1:80')
        const ts = { service: r.str(tf.service), weight: tf.weight ? r.int(tf.weight) : 0 }
        r.mark(ts, x, { service: tf.service, weight: tf.weight })
        return ts
      })
    : undefined
  const inst = vrrpInstance(r.str(f.name!), r.str(f.interface!), r.int(f.vrid!), {
    priority: f.priority && r.int(f.priority),
    advertInterval: f.advert_interval && r.num(f.advert_interval),
    state: state as 'MASTER' | 'BACKUP' | undefined,
    preempt: f.preempt && r.bool(f.preempt),
    preemptDelay: f.preempt_delay && r.num(f.preempt_delay),
    version: f.version && version(r, f.version),
    virtualAddresses: f.virtual_addresses && readAddresses(r, f.virtual_addresses),
    excludedAddresses: f.excluded_addresses && readAddresses(r, f.excluded_addresses),
    unicastSrcIp: f.unicast_src_ip && r.ip(f.unicast_src_ip),
    unicastPeers: f.unicast_peers && r.list(f.unicast_peers).map((x) => r.ip(x)),
    authPass: f.auth_pass && r.str(f.auth_pass),
    trackInterfaces,
    trackServices,
    notify: f.notify && readNotify(r, f.notify),
    garp: f.garp && readGarp(r, f.garp),
  })
  r.mark(inst, v, {
    name: f.name, interface: f.interface, vrid: f.vrid, priority: f.priority, advertInterval: f.advert_interval, state: f.state,
    preempt: f.preempt, preemptDelay: f.preempt_delay, version: f.version, virtualAddresses: f.virtual_addresses,
    excludedAddresses: f.excluded_addresses, unicastSrcIp: f.unicast_src_ip, unicastPeers: f.unicast_peers, authPass: f.auth_pass,
    trackInterfaces: f.track_interfaces, trackServices: f.track_services, notify: f.notify, garp: f.garp,
  })
  if (f.unicast_peers) r.list(f.unicast_peers).forEach((x, i) => r.locations.mark(inst.unicastPeers, r.where(x), String(i)))
  return inst
}

function readSyncGroup(r: Reader, v: Val): VrrpSyncGroupSpec {
  const f = r.map(v, VRRP_KEYS.syncGroup)
  if (!f.name) r.fail(v, 'has no name')
  if (!f.instances) r.fail(v, 'has no instances; list the instances that change state together')
  const g = { name: r.str(f.name), instances: r.list(f.instances).map((x) => r.str(x)), notify: f.notify ? readNotify(r, f.notify) : {} }
  r.mark(g, v, { name: f.name, instances: f.instances, notify: f.notify })
  r.list(f.instances).forEach((x, i) => r.locations.mark(g.instances, r.where(x), String(i)))
  return g
}

function readConnSync(r: Reader, v: Val): ConnSyncSpec {
  const f = r.map(v, VRRP_KEYS.connSync)
  if (!f.instance) r.fail(v, 'has no instance; name the VRRP instance (or sync group) whose MASTER sends')
  if (!f.peers) r.fail(v, 'has no peers; give the other director\'s address')
  const s = connSync(r.str(f.instance), r.list(f.peers).map((x) => r.ip(x)), {
    port: f.port && r.int(f.port),
    source: f.source && r.ip(f.source),
    key: f.key && r.str(f.key),
    keyFile: f.key_file && r.str(f.key_file),
    interval: f.interval && r.num(f.interval),
    holdPreempt: f.hold_preempt && r.bool(f.hold_preempt),
    holdTimeout: f.hold_timeout && r.num(f.hold_timeout),
  })
  r.mark(s, v, {
    instance: f.instance, peers: f.peers, port: f.port, source: f.source, key: f.key, keyFile: f.key_file, interval: f.interval,
    holdPreempt: f.hold_preempt, holdTimeout: f.hold_timeout,
  })
  r.list(f.peers).forEach((x, i) => r.locations.mark(s.peers, r.where(x), String(i)))
  return s
}

// ---- printing ----

const garpToPlain = (g: Partial<GarpSettings>): Record<string, unknown> =>
  compact(Object.fromEntries(GARP_FIELDS.map(([yk, mk]) => [yk, g[mk]])))

const nonEmpty = <T>(xs: T[]): T[] | undefined => (xs.length > 0 ? xs : undefined)
const notifyToPlain = (n: VrrpNotify): VrrpNotify | undefined => (Object.keys(n).length > 0 ? { ...n } : undefined)

export function vrrpToPlain(v: VrrpModel): Record<string, unknown> {
  return compact({
    version: v.version,
    garp: garpToPlain(v.garp),
    instances: v.instances.map((i) =>
      compact({
        name: i.name,
        interface: i.interface,
        vrid: i.vrid,
        priority: i.priority,
        advert_interval: i.advertInterval,
        state: i.state,
        preempt: i.preempt,
        preempt_delay: i.preemptDelay || undefined,
        version: i.version,
        virtual_addresses: nonEmpty(i.virtualAddresses.map(formatVirtualAddress)),
        excluded_addresses: nonEmpty(i.excludedAddresses.map(formatVirtualAddress)),
        unicast_src_ip: i.unicastSrcIp,
        unicast_peers: nonEmpty(i.unicastPeers),
        auth_pass: i.authPass,
        track_interfaces: nonEmpty(i.trackInterfaces.map((t) => (t.weight === 0 ? t.name : { name: t.name, weight: t.weight }))),
        track_services: nonEmpty(i.trackServices.map((t) => (t.weight === 0 ? t.service : { service: t.service, weight: t.weight }))),
        notify: notifyToPlain(i.notify),
        garp: i.garp && garpToPlain(i.garp),
      }),
    ),
    sync_groups: nonEmpty(v.syncGroups.map((g) => compact({ name: g.name, instances: g.instances, notify: notifyToPlain(g.notify) }))),
    conn_sync: v.connSync && compact({
      instance: v.connSync.instance,
      peers: v.connSync.peers,
      port: v.connSync.port,
      source: v.connSync.source,
      key: v.connSync.key,
      key_file: v.connSync.keyFile,
      interval: v.connSync.interval,
      hold_preempt: v.connSync.holdPreempt,
      hold_timeout: v.connSync.holdTimeout,
    }),
  })
}

/** Short lists and small mappings of the printed section on one line. */
export function flowVrrp(doc: Document, plain: Record<string, unknown>, flow: (path: (string | number)[]) => void): void {
  void doc
  flow(['vrrp', 'garp'])
  ;((plain.instances as Record<string, unknown>[] | undefined) ?? []).forEach((inst, i) => {
    for (const k of ['virtual_addresses', 'excluded_addresses', 'unicast_peers', 'track_interfaces', 'track_services', 'garp']) {
      if (inst[k] !== undefined) flow(['vrrp', 'instances', i, k])
    }
    ;((inst.track_interfaces as unknown[] | undefined) ?? []).forEach((_, j) => flow(['vrrp', 'instances', i, 'track_interfaces', j]))
    ;((inst.track_services as unknown[] | undefined) ?? []).forEach((_, j) => flow(['vrrp', 'instances', i, 'track_services', j]))
  })
  ;((plain.sync_groups as unknown[] | undefined) ?? []).forEach((_, i) => flow(['vrrp', 'sync_groups', i, 'instances']))
  if (plain.conn_sync !== undefined) flow(['vrrp', 'conn_sync', 'peers'])
}
