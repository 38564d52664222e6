// SPDX-License-Identifier: GPL-2.0-only
// The xvs YAML format: the model with snake_case keys, LVS words and ipvsadm defaults. Unknown keys are
// errors with a suggestion; every error and every validation failure points at file:line:column.
// examples/xvs.yaml shows every field.
import { Document, LineCounter, isMap, isSeq, parseDocument, type Node, type Scalar } from 'yaml'
import { familyOf, parseIp, parseNetmask } from '../model/addr'
import { CHECK_DEFAULTS, DEFAULT_METHOD, DEFAULT_PERSISTENCE_TIMEOUT, compact, defaultNetmask, defaultSettings, portService, realServer, serviceGroup } from '../model/defaults'
import { deepEqual } from '../model/diff'
import { fail } from '../model/fail'
import { suggestion } from '../model/suggest'
import type { Family, GroupMatch, HealthCheck, HttpUrl, Method, Model, RealServer, SchedFlag, Service, Settings } from '../model/types'
import { Locations, at, finish, type ParsedConfig } from './source'
import { flowVrrp, readVrrp, vrrpToPlain } from './yaml-vrrp'
import { nodeKind, offsetOf, readPlainYaml, type AnyNode, type FastScalar } from './yaml-fast'
import { ConfigError } from '../errors'

const KEYS = {
  top: ['settings', 'services', 'vrrp'],
  settings: ['timeouts', 'conn_table_size', 'expire_nodest_conn', 'local_addresses', 'interfaces', 'tunnel_sources'],
  timeouts: ['tcp', 'tcpfin', 'udp'],
  service: [
    'name', 'vip', 'port', 'protocol', 'group', 'family', 'match', 'incomplete', 'scheduler', 'sched_flags',
    'mh_table_size', 'persistence', 'method', 'check', 'sorry_server', 'quorum', 'real_servers',
  ],
  match: ['vip', 'protocol', 'ports'],
  persistence: ['timeout', 'netmask'],
  realServer: ['name', 'address', 'port', 'weight', 'method', 'upper_threshold', 'lower_threshold', 'check'],
  sorry: ['address', 'port', 'method'],
  quorum: ['weight', 'hysteresis'],
  url: ['path', 'status', 'digest', 'regex'],
} as const

const CHECK_COMMON = ['type', 'port', 'interval', 'timeout', 'rise', 'fall', 'retry', 'retry_delay', 'reentry', 'on_failure']
const CHECK_KEYS: Record<string, readonly string[]> = {
  tcp: CHECK_COMMON,
  'send-expect': [...CHECK_COMMON, 'send', 'expect', 'regex'],
  http: [...CHECK_COMMON, 'urls', 'virtualhost'],
  https: [...CHECK_COMMON, 'urls', 'virtualhost'],
  external: [...CHECK_COMMON, 'command', 'expect', 'dynamic'],
}
const ALL_CHECK_KEYS = [...new Set(Object.values(CHECK_KEYS).flat())]

/** A YAML node and the key path that reached it ("services[0].real_servers[1]"). */
export interface Val {
  node: AnyNode | null
  readonly path: string
}

/** A Val one key or index below another: its path is spelled out only when an error names it. */
class Step implements Val {
  constructor(readonly node: AnyNode | null, private readonly parent: Val, private readonly step: string | number) {}
  get path(): string {
    const p = this.parent.path
    return typeof this.step === 'number' ? `${p}[${this.step}]` : `${p}${p ? '.' : ''}${this.step}`
  }
}
type Fields = Partial<Record<string, Val>>

export class Reader {
  readonly locations: Locations

  constructor(
    private readonly file: string,
    private readonly lc: LineCounter,
  ) {
    this.locations = new Locations((offset) => this.at(offset))
  }

  at(offset: number): string {
    const { line, col } = this.lc.linePos(offset)
    return at(this.file, line, col)
  }

  where(v: Val | undefined): string | undefined {
    const offset = offsetOf(v?.node)
    return offset === undefined ? undefined : this.at(offset)
  }

  fail(v: Val, text: string): never {
    return fail(v.path, text, this.where(v))
  }

  /** A mapping with only `allowed` keys. */
  map(v: Val, allowed: readonly string[]): Fields {
    if (nodeKind(v.node) !== 'map') this.fail(v, `is not a mapping; give ${allowed.slice(0, 3).join(', ')}, ... as key: value lines`)
    const out: Fields = {}
    for (const pair of (v.node as { items: { key: unknown; value: unknown }[] }).items) {
      const key = nodeKind(pair.key) === 'scalar' ? String((pair.key as Scalar | FastScalar).value) : undefined
      const kv = new Step(pair.key as AnyNode | null, v, key ?? '?')
      if (key === undefined) this.fail(kv, 'keys must be plain words')
      if (!allowed.includes(key)) this.fail(kv, `unknown key '${key}'${suggestion(key, allowed)}`)
      out[key] = new Step(pair.value as AnyNode | null, v, key)
    }
    return out
  }

  list(v: Val): Val[] {
    if (v.node === null) return []
    if (nodeKind(v.node) !== 'seq') this.fail(v, 'is not a list; give "- item" lines or [a, b]')
    return (v.node as { items: unknown[] }).items.map((node, i) => new Step(node as AnyNode | null, v, i))
  }

  scalar(v: Val): unknown {
    if (nodeKind(v.node) !== 'scalar') this.fail(v, v.node === null ? 'is empty; give a value' : 'is not a single value')
    return (v.node as Scalar | FastScalar).value
  }

  str(v: Val): string {
    const x = this.scalar(v)
    if (typeof x === 'string') return x
    const source = (v.node as Scalar | FastScalar).source
    if (typeof x === 'number' && source !== undefined) return source
    return this.fail(v, `${JSON.stringify(x)} is not text`)
  }

  num(v: Val): number {
    const x = this.scalar(v)
    if (typeof x !== 'number') this.fail(v, `${JSON.stringify(x)} is not a number`)
    return x
  }

  int(v: Val): number {
    const x = this.num(v)
    if (!Number.isInteger(x)) this.fail(v, `${x} is not a whole number`)
    return x
  }

  bool(v: Val): boolean {
    const x = this.scalar(v)
    if (typeof x !== 'boolean') this.fail(v, `${JSON.stringify(x)} is not true or false`)
    return x
  }

  /** An IP address in canonical form; a bad one is kept as written for validation to report in place. */
  ip(v: Val): string {
    const s = this.str(v)
    return parseIp(s)?.address ?? s
  }

  /** Record where each model field came from. */
  mark(obj: object, whole: Val | undefined, fields: Record<string, Val | undefined> = {}): void {
    // offsets, resolved to file:line:column only for an error that needs one
    this.locations.mark(obj, offsetOf(whole?.node))
    for (const k in fields) this.locations.mark(obj, offsetOf(fields[k]?.node), k)
  }

  model(root: Val): Model {
    const f = root.node === null ? {} : this.map(root, KEYS.top)
    const settings = f.settings ? this.settings(f.settings) : defaultSettings()
    const services = f.services ? this.list(f.services).map((v) => this.service(v)) : []
    const model: Model = { settings, services }
    if (f.vrrp) {
      model.vrrp = readVrrp(this, f.vrrp)
      this.mark(model, root, { vrrp: f.vrrp })
    }
    return model
  }

  settings(v: Val): Settings {
    const f = this.map(v, KEYS.settings)
    const s = defaultSettings()
    if (f.timeouts) {
      const t = this.map(f.timeouts, KEYS.timeouts)
      for (const k of KEYS.timeouts) if (t[k]) s.timeouts[k] = this.int(t[k])
      this.mark(s.timeouts, f.timeouts, t)
    }
    if (f.conn_table_size) s.connTableSize = this.int(f.conn_table_size)
    if (f.expire_nodest_conn) s.expireNodestConn = this.bool(f.expire_nodest_conn)
    if (f.local_addresses) s.localAddresses = this.list(f.local_addresses).map((x) => this.ip(x))
    if (f.interfaces) s.interfaces = this.list(f.interfaces).map((x) => this.str(x))
    if (f.tunnel_sources) s.tunnelSources = this.list(f.tunnel_sources).map((x) => this.ip(x))
    this.mark(s, v, { connTableSize: f.conn_table_size, expireNodestConn: f.expire_nodest_conn })
    if (f.local_addresses) this.list(f.local_addresses).forEach((x, i) => this.locations.mark(s.localAddresses, this.where(x), String(i)))
    if (f.interfaces) this.list(f.interfaces).forEach((x, i) => this.locations.mark(s.interfaces, this.where(x), String(i)))
    if (f.tunnel_sources) this.list(f.tunnel_sources).forEach((x, i) => this.locations.mark(s.tunnelSources, this.where(x), String(i)))
    return s
  }

  service(v: Val): Service {
    const f = this.map(v, KEYS.service)
    const isGroup = f.group !== undefined
    for (const k of isGroup ? ['vip', 'port', 'protocol'] : ['family', 'match', 'incomplete']) {
      if (f[k]) {
        this.fail(
          f[k],
          isGroup ? `does not go with group; a group lists its vip/protocol/ports under match` : `goes with group; give group: ID for a service group`,
        )
      }
    }
    if (!isGroup && !f.vip) this.fail(v, 'has neither vip nor group; give vip, port and protocol (or group and match)')
    if (!isGroup && !f.port) this.fail(v, 'has no port; give port (0 for all ports)')

    const matches = f.match ? this.list(f.match).map((m) => this.match(m)) : []
    const inferred = isGroup ? familyOf(matches[0]?.vip ?? '') : familyOf(this.ip(f.vip!))
    const family: Family = f.family ? this.family(f.family) : (inferred ?? 4)
    const port = isGroup ? 0 : this.int(f.port!)
    const method = f.method && { value: this.str(f.method) as Method, at: f.method }
    const defaultCheck = f.check
    if (defaultCheck) this.check(undefined, defaultCheck) // its errors count even with no real servers
    const opts = {
      name: f.name && this.str(f.name),
      scheduler: f.scheduler && (this.str(f.scheduler) as Service['scheduler']),
      schedFlags: f.sched_flags && (this.list(f.sched_flags).map((x) => this.str(x)) as Service['schedFlags']),
      mhTableSize: f.mh_table_size && this.int(f.mh_table_size),
      persistence: f.persistence && this.persistence(f.persistence, family),
      realServers: f.real_servers ? this.list(f.real_servers).map((x) => this.realServer(x, port, method, defaultCheck)) : [],
      sorryServer: f.sorry_server && this.sorry(f.sorry_server, port, method),
      quorum: f.quorum && this.quorum(f.quorum),
    }
    const s = isGroup
      ? serviceGroup(this.int(f.group!), family, matches, { ...opts, incomplete: f.incomplete && this.str(f.incomplete) })
      : portService(this.protocol(f.protocol), this.ip(f.vip!), port, opts)
    this.mark(s, v, {
      kind: f.protocol, vip: f.vip, port: f.port, id: f.group, family: f.family, matches: f.match, incomplete: f.incomplete,
      name: f.name, scheduler: f.scheduler, schedFlags: f.sched_flags, mhTableSize: f.mh_table_size, persistence: f.persistence,
      sorryServer: f.sorry_server, quorum: f.quorum,
    })
    // Flags are stored sorted: mark each where its value was written.
    for (const x of f.sched_flags ? this.list(f.sched_flags) : []) {
      this.locations.mark(s.schedFlags, this.where(x), String(s.schedFlags.indexOf(this.str(x) as SchedFlag)))
    }
    return s
  }

  protocol(v: Val | undefined): 'tcp' | 'udp' {
    if (!v) return 'tcp'
    const p = this.str(v)
    if (p !== 'tcp' && p !== 'udp') this.fail(v, `'${p}' is not a protocol${suggestion(p, ['tcp', 'udp'])}`)
    return p
  }

  family(v: Val): Family {
    const x = this.str(v)
    if (x === '4' || x === 'ipv4' || x === 'inet') return 4
    if (x === '6' || x === 'ipv6' || x === 'inet6') return 6
    return this.fail(v, `'${x}' is not an address family; use 4 or 6`)
  }

  match(v: Val): GroupMatch {
    const f = this.map(v, KEYS.match)
    if (!f.vip) this.fail(v, 'has no vip')
    if (!f.ports) this.fail(v, 'has no ports; give a port (80) or a range (8000-8099)')
    const text = this.str(f.ports)
    const r = /^(\d+)(?:\s*-\s*(\d+))?$/.exec(text)
    if (!r) this.fail(f.ports, `'${text}' is not a port or port range; use 80 or 8000-8099`)
    const m = { vip: this.ip(f.vip), protocol: this.protocol(f.protocol), fromPort: Number(r[1]), toPort: Number(r[2] ?? r[1]) }
    this.mark(m, v, { vip: f.vip, protocol: f.protocol, fromPort: f.ports, toPort: f.ports })
    return m
  }

  persistence(v: Val, family: Family): Service['persistence'] {
    // `persistence: 300` is short for {timeout: 300}; `persistence: true` takes ipvsadm's 300 s.
    const f: Fields = nodeKind(v.node) === 'map' ? this.map(v, KEYS.persistence) : {}
    let timeout = DEFAULT_PERSISTENCE_TIMEOUT
    if (nodeKind(v.node) !== 'map') timeout = this.scalar(v) === true ? DEFAULT_PERSISTENCE_TIMEOUT : this.int(v)
    else if (f.timeout) timeout = this.int(f.timeout)
    const maskText = f.netmask ? this.str(f.netmask) : undefined
    const p = {
      timeout,
      netmask: maskText === undefined ? defaultNetmask(family) : (parseNetmask(maskText, family) ?? maskText),
    }
    this.mark(p, v, { timeout: f.timeout, netmask: f.netmask })
    return p
  }

  realServer(v: Val, servicePort: number, method: { value: Method; at: Val } | undefined, defaultCheck: Val | undefined): RealServer {
    const f = this.map(v, KEYS.realServer)
    if (!f.address) this.fail(v, 'has no address')
    const rs = realServer(this.ip(f.address), f.port ? this.int(f.port) : servicePort, {
      name: f.name && this.str(f.name),
      weight: f.weight && this.int(f.weight),
      method: f.method ? (this.str(f.method) as Method) : (method?.value ?? DEFAULT_METHOD),
      upperThreshold: f.upper_threshold && this.int(f.upper_threshold),
      lowerThreshold: f.lower_threshold && this.int(f.lower_threshold),
      check: f.check || defaultCheck ? this.check(f.check, defaultCheck) : undefined,
    })
    this.mark(rs, v, {
      name: f.name, address: f.address, port: f.port, weight: f.weight, method: f.method ?? method?.at,
      upperThreshold: f.upper_threshold, lowerThreshold: f.lower_threshold, check: f.check ?? defaultCheck,
    })
    return rs
  }

  sorry(v: Val, servicePort: number, method: { value: Method; at: Val } | undefined): Service['sorryServer'] {
    const f = this.map(v, KEYS.sorry)
    if (!f.address) this.fail(v, 'has no address')
    const s = {
      address: this.ip(f.address),
      port: f.port ? this.int(f.port) : servicePort,
      method: f.method ? (this.str(f.method) as Method) : (method?.value ?? DEFAULT_METHOD),
    }
    this.mark(s, v, { address: f.address, port: f.port, method: f.method ?? method?.at })
    return s
  }

  quorum(v: Val): Service['quorum'] {
    const f = this.map(v, KEYS.quorum)
    if (!f.weight) this.fail(v, 'has no weight; give the total weight of healthy servers the service needs')
    const q = { weight: this.int(f.weight), hysteresis: f.hysteresis ? this.int(f.hysteresis) : 0 }
    this.mark(q, v, { weight: f.weight, hysteresis: f.hysteresis })
    return q
  }

  /** A real server's check: its own keys over the service's default check (unless it names another type). */
  check(own: Val | undefined, dflt: Val | undefined): HealthCheck {
    const read = (v: Val) => this.map(v, ALL_CHECK_KEYS)
    const mine = own ? read(own) : {}
    const base = dflt ? read(dflt) : {}
    const typeVal = mine.type ?? base.type
    if (!typeVal) this.fail(own ?? dflt!, `has no type; use one of ${Object.keys(CHECK_KEYS).join(', ')}`)
    const type = this.str(typeVal)
    if (!(type in CHECK_KEYS)) this.fail(typeVal, `'${type}' is not a check type${suggestion(type, Object.keys(CHECK_KEYS))}`)
    const f: Fields = mine.type && base.type && this.str(base.type) !== type ? mine : { ...base, ...mine }
    for (const [k, kv] of Object.entries(f)) {
      if (kv && !CHECK_KEYS[type]!.includes(k)) this.fail(kv, `does not apply to a ${type} check; remove it (or change type)`)
    }
    const d = CHECK_DEFAULTS
    const common = {
      port: f.port && this.int(f.port),
      interval: f.interval ? this.num(f.interval) : d.interval,
      timeout: f.timeout ? this.num(f.timeout) : d.timeout,
      rise: f.rise ? this.int(f.rise) : d.rise,
      fall: f.fall ? this.int(f.fall) : d.fall,
      retry: f.retry ? this.int(f.retry) : d.retry,
      retryDelay: f.retry_delay ? this.num(f.retry_delay) : d.retryDelay,
      reentry: f.reentry ? this.num(f.reentry) : d.reentry,
      onFailure: f.on_failure ? (this.str(f.on_failure) as 'quiesce' | 'remove') : d.onFailure,
    }
    let c: HealthCheck
    if (type === 'http' || type === 'https') {
      if (!f.urls) this.fail(own ?? dflt!, `has no urls; an ${type} check needs urls: [{path: /healthz}]`)
      c = { type, ...common, urls: this.list(f.urls).map((u) => this.url(u)), virtualhost: f.virtualhost && this.str(f.virtualhost) }
    } else if (type === 'send-expect') {
      c = { type, ...common, send: f.send ? this.str(f.send) : '', expect: f.expect ? this.str(f.expect) : '', regex: f.regex ? this.bool(f.regex) : false }
    } else if (type === 'external') {
      if (!f.command) this.fail(own ?? dflt!, 'has no command; give the program to run (%h, %p: real server address, port)')
      c = { type, ...common, command: this.str(f.command), expect: f.expect && this.str(f.expect), dynamic: f.dynamic ? this.bool(f.dynamic) : false }
    } else {
      c = { type: 'tcp', ...common }
    }
    compact(c)
    this.mark(c, own ?? dflt, {
      type: f.type, port: f.port, interval: f.interval, timeout: f.timeout, rise: f.rise, fall: f.fall, retry: f.retry,
      retryDelay: f.retry_delay, reentry: f.reentry, onFailure: f.on_failure, send: f.send, expect: f.expect,
      regex: f.regex, urls: f.urls, virtualhost: f.virtualhost, command: f.command, dynamic: f.dynamic,
    })
    return c
  }

  url(v: Val): HttpUrl {
    const f = this.map(v, KEYS.url)
    if (!f.path) this.fail(v, 'has no path; give path: /healthz')
    const u = compact({
      path: this.str(f.path),
      status: f.status && this.int(f.status),
      digest: f.digest && this.str(f.digest),
      regex: f.regex && this.str(f.regex),
    })
    this.mark(u, v, { path: f.path, status: f.status, digest: f.digest, regex: f.regex })
    return u
  }
}

/** Parse and validate xvs YAML. `file` names the source in error positions. */
export function parseYaml(text: string, file: string): ParsedConfig {
  const plain = readPlainYaml(text)
  if (plain) {
    try {
      const r = new Reader(file, plain.lc)
      return finish('yaml', r.model({ node: plain.root, path: '' }), r.locations)
    } catch (e) {
      // errors are reported as the full parser sees the file
      if (!(e instanceof ConfigError)) throw e
    }
  }
  const lc = new LineCounter()
  const doc = parseDocument(text, { lineCounter: lc, uniqueKeys: true, prettyErrors: false })
  const err = doc.errors[0]
  if (err) {
    const { line, col } = lc.linePos(err.pos[0])
    fail('yaml', err.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, ''), at(file, line, col))
  }
  const r = new Reader(file, lc)
  const model = r.model({ node: doc.contents as Node | null, path: '' })
  return finish('yaml', model, r.locations)
}

// ---- printing ----

function checkToPlain(c: HealthCheck): Record<string, unknown> {
  const out: Record<string, unknown> = { type: c.type }
  if (c.type === 'http' || c.type === 'https') Object.assign(out, { urls: c.urls, virtualhost: c.virtualhost })
  if (c.type === 'send-expect') Object.assign(out, { send: c.send, expect: c.expect, regex: c.regex })
  if (c.type === 'external') Object.assign(out, { command: c.command, expect: c.expect, dynamic: c.dynamic })
  Object.assign(out, {
    port: c.port, interval: c.interval, timeout: c.timeout, rise: c.rise, fall: c.fall, retry: c.retry,
    retry_delay: c.retryDelay, reentry: c.reentry, on_failure: c.onFailure,
  })
  return compact(out)
}

/** The value every real server shares, to print once at service level; undefined if they differ. */
function shared<T>(servers: RealServer[], get: (rs: RealServer) => T | undefined): T | undefined {
  const first = servers[0] && get(servers[0])
  return first !== undefined && servers.every((rs) => deepEqual(get(rs), first)) ? first : undefined
}

function serviceToPlain(s: Service): Record<string, unknown> {
  const method = shared(s.realServers, (rs) => rs.method)
  const check = shared(s.realServers, (rs) => rs.check)
  const head =
    s.kind === 'group'
      ? {
          group: s.id,
          family: s.matches.length === 0 && s.family === 6 ? 6 : undefined,
          match: s.matches.map((m) => ({ vip: m.vip, protocol: m.protocol, ports: m.fromPort === m.toPort ? m.fromPort : `${m.fromPort}-${m.toPort}` })),
          incomplete: s.incomplete,
        }
      : { vip: s.vip, port: s.port, protocol: s.kind }
  return compact({
    name: s.name,
    ...head,
    scheduler: s.scheduler,
    sched_flags: s.schedFlags.length > 0 ? s.schedFlags : undefined,
    mh_table_size: s.mhTableSize,
    persistence: s.persistence,
    method,
    check: check && checkToPlain(check),
    sorry_server: s.sorryServer,
    quorum: s.quorum,
    real_servers: s.realServers.map((rs) =>
      compact({
        name: rs.name,
        address: rs.address,
        port: rs.port,
        weight: rs.weight,
        method: method === undefined ? rs.method : undefined,
        upper_threshold: rs.upperThreshold || undefined,
        lower_threshold: rs.lowerThreshold || undefined,
        check: check === undefined && rs.check ? checkToPlain(rs.check) : undefined,
      }),
    ),
  })
}

/** The model as xvs YAML; parseYaml(toYaml(m)) deep-equals m. */
export function toYaml(model: Model): string {
  const s = model.settings
  const plain = {
    settings: {
      timeouts: s.timeouts,
      conn_table_size: s.connTableSize,
      expire_nodest_conn: s.expireNodestConn,
      local_addresses: s.localAddresses,
      interfaces: s.interfaces,
      tunnel_sources: s.tunnelSources,
    },
    services: model.services.map(serviceToPlain),
    ...(model.vrrp ? { vrrp: vrrpToPlain(model.vrrp) } : {}),
  }
  const doc = new Document(plain)
  doc.commentBefore = ' xvs configuration (see examples/xvs.yaml for every field)'
  const flow = (path: (string | number)[]) => {
    const n = doc.getIn(path, true)
    if (isMap(n) || isSeq(n)) n.flow = true
  }
  flow(['settings', 'timeouts'])
  flow(['settings', 'local_addresses'])
  flow(['settings', 'interfaces'])
  flow(['settings', 'tunnel_sources'])
  plain.services.forEach((svc, i) => {
    for (const k of ['persistence', 'sorry_server', 'quorum', 'sched_flags']) flow(['services', i, k])
    ;(svc.match as unknown[] | undefined)?.forEach((_, j) => flow(['services', i, 'match', j]))
  })
  if (plain.vrrp) flowVrrp(doc, plain.vrrp, flow)
  return doc.toString({ lineWidth: 0 })
}
