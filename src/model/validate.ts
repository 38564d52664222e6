// SPDX-License-Identifier: GPL-2.0-only
// validate(model): the model as given, or a ConfigError naming the field, what is wrong and what would be
// right. Parsers pass `locate` so the error also carries the file:line:column the field came from.
import { familyOf, formatHostPort, isInterfaceName, parseIp, parseNetmask } from './addr'
import { MAX_MH_TABLE_SIZE, MAX_THRESHOLD, MAX_TIMEOUT, MAX_WEIGHT } from './defaults'
import { realServerKey, serviceKey } from './diff'
import { fail } from './fail'
import { suggestion } from './suggest'
import { validateVrrp } from './vrrp'
import {
  CHECK_TYPES,
  METHODS,
  PROTOCOLS,
  SCHED_FLAGS,
  SCHEDULERS,
  type Family,
  type GroupMatch,
  type HealthCheck,
  type Model,
  type RealServer,
  type Service,
  type Settings,
} from './types'

/** Maps a model path ("services[1].realServers[0].weight") to "file:line:column", when known. */
export type Locate = (path: string) => string | undefined

/** Words operators use for a forwarding method, mapped to xvs's name for it. */
export const METHOD_ALIASES: Record<string, string> = {
  gatewaying: 'dr', direct: 'dr', route: 'dr', routing: 'dr', g: 'dr',
  ipip: 'tun', tunnel: 'tun', tunneling: 'tun', i: 'tun',
  masquerading: 'nat', masq: 'nat', masquerade: 'nat', m: 'nat',
  fnat: 'fullnat', 'full-nat': 'fullnat', full_nat: 'fullnat',
}

export function isPrime(n: number): boolean {
  if (!Number.isInteger(n) || n < 2) return false
  for (let d = 2; d * d <= n; d++) if (n % d === 0) return false
  return true
}

/** The prime closest to n (the smaller on a tie), within 2..MAX_MH_TABLE_SIZE. */
export function nearestPrime(n: number): number {
  const x = Math.min(Math.max(Math.round(n), 2), MAX_MH_TABLE_SIZE)
  for (let d = 0; ; d++) {
    if (isPrime(x - d)) return x - d
    if (isPrime(x + d) && x + d <= MAX_MH_TABLE_SIZE) return x + d
  }
}

const show = (v: unknown): string => (typeof v === 'string' ? `'${v}'` : JSON.stringify(v) ?? String(v))
const isInt = (v: unknown, min: number, max: number): v is number => Number.isInteger(v) && (v as number) >= min && (v as number) <= max
const isPositive = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v > 0

class Validator {
  constructor(private readonly locate: Locate) {}

  bad(path: string, text: string): never {
    return fail(path, text, this.locate(path))
  }

  int(path: string, v: unknown, min: number, max: number, unit = ''): number {
    if (isInt(v, min, max)) return v
    if (!Number.isInteger(v)) this.bad(path, `${show(v)} is not a whole number; use ${min}..${max}${unit}`)
    return this.bad(path, `${show(v)} is out of range; use ${min}..${max}${unit}`)
  }

  seconds(path: string, v: unknown, zeroOk = false): void {
    if (isPositive(v) || (zeroOk && v === 0)) return
    this.bad(path, `${show(v)} is not a valid duration; use a number of seconds${zeroOk ? ', 0 or more' : ' above 0'}`)
  }

  oneOf<T extends string>(path: string, v: unknown, allowed: readonly T[], what: string, aliases?: Record<string, string>): T {
    if (allowed.includes(v as T)) return v as T
    return this.bad(path, `${show(v)} is not ${what}${suggestion(String(v), allowed, aliases)}`)
  }

  ip(path: string, v: unknown): Family {
    const ip = typeof v === 'string' ? parseIp(v) : undefined
    if (!ip) this.bad(path, `${show(v)} is not an IP address; use an IPv4 (192.0.2.10) or IPv6 (2001:db8::10) address`)
    return ip.family
  }

  bool(path: string, v: unknown): void {
    if (typeof v !== 'boolean') this.bad(path, `${show(v)} is not true or false`)
  }

  string(path: string, v: unknown, what: string): void {
    if (typeof v !== 'string' || v === '') this.bad(path, `${show(v)} is not ${what}`)
  }

  regex(path: string, v: string): void {
    try {
      new RegExp(v)
    } catch (e) {
      this.bad(path, `${show(v)} is not a regular expression (${(e as Error).message}); fix the pattern`)
    }
  }

  model(m: Model): void {
    if (typeof m !== 'object' || m === null) this.bad('model', 'is not an object; give {settings, services}')
    this.settings(m.settings)
    if (!Array.isArray(m.services)) this.bad('services', 'is not a list; give a list of services')
    const seen = new Map<string, number>()
    m.services.forEach((s, i) => {
      this.service(`services[${i}]`, s, m.settings)
      const key = serviceKey(s)
      const first = seen.get(key)
      if (first !== undefined) {
        this.bad(
          `services[${i}]`,
          s.kind === 'group'
            ? `group id ${s.id} is also used by services[${first}]; give each group its own id`
            : `duplicate of services[${first}] (${key}); remove one, or change its vip, protocol or port`,
        )
      }
      seen.set(key, i)
    })
    this.groupOverlaps(m.services)
    validateVrrp(m, (path, text) => this.bad(path, text))
  }

  settings(s: Settings): void {
    if (typeof s !== 'object' || s === null) this.bad('settings', 'is missing; give settings (see defaultSettings())')
    for (const k of ['tcp', 'tcpfin', 'udp'] as const) this.int(`settings.timeouts.${k}`, s.timeouts?.[k], 1, MAX_TIMEOUT, ' seconds')
    this.int('settings.connTableSize', s.connTableSize, 1, 2 ** 28, ' entries')
    this.bool('settings.expireNodestConn', s.expireNodestConn)
    this.list('settings.localAddresses', s.localAddresses, (p, a) => {
      this.ip(p, a)
      return parseIp(a as string)!.address
    })
    const families = new Set<number>()
    this.list('settings.tunnelSources', s.tunnelSources, (p, a) => {
      this.ip(p, a)
      const ip = parseIp(a as string)!
      if (families.has(ip.family)) this.bad(p, `a second IPv${ip.family} tunnel source; give at most one per family`)
      families.add(ip.family)
      return ip.address
    })
    this.list('settings.interfaces', s.interfaces, (p, n) => {
      if (typeof n !== 'string' || !isInterfaceName(n)) {
        this.bad(p, `${show(n)} is not an interface name; use a name such as eth0 (at most 15 characters)`)
      }
      return n
    })
  }

  /** Each element checked by `item`, which returns its identity; duplicates are errors. */
  list(path: string, v: unknown, item: (path: string, x: unknown) => string): void {
    if (!Array.isArray(v)) this.bad(path, `${show(v)} is not a list`)
    const seen = new Map<string, number>()
    v.forEach((x, i) => {
      const id = item(`${path}[${i}]`, x)
      const first = seen.get(id)
      if (first !== undefined) this.bad(`${path}[${i}]`, `${show(x)} is already listed at ${path}[${first}]; remove one`)
      seen.set(id, i)
    })
  }

  service(p: string, s: Service, settings: Settings): void {
    if (typeof s !== 'object' || s === null) this.bad(p, 'is not a service')
    this.oneOf(`${p}.kind`, s.kind, [...PROTOCOLS, 'group'], 'a service kind')
    if (s.name !== undefined) this.string(`${p}.name`, s.name, 'a name')
    let family: Family
    if (s.kind === 'group') {
      this.int(`${p}.id`, s.id, 1, 2 ** 32 - 1)
      if (s.family !== 4 && s.family !== 6) this.bad(`${p}.family`, `${show(s.family)} is not an address family; use 4 or 6`)
      family = s.family
      if (!Array.isArray(s.matches)) this.bad(`${p}.matches`, 'is not a list; give the (vip, protocol, ports) the group matches')
      if (s.incomplete !== undefined && s.matches.length > 0) {
        this.bad(`${p}.incomplete`, 'is set but the group has matches; remove incomplete')
      }
      if (s.incomplete === undefined && s.matches.length === 0) {
        this.bad(`${p}.matches`, 'is empty; a group needs at least one (vip, protocol, ports) match')
      }
      s.matches.forEach((m, j) => this.match(`${p}.matches[${j}]`, m, family))
    } else {
      family = this.ip(`${p}.vip`, s.vip)
      this.int(`${p}.port`, s.port, 0, 65535)
      if (s.port === 0 && s.persistence === undefined) {
        this.bad(`${p}.port`, '0 (all ports) needs persistence, as in ipvsadm ("Zero port specified for non-persistent service"); add persistence or give a port')
      }
    }
    const scheduler = this.oneOf(`${p}.scheduler`, s.scheduler, SCHEDULERS, 'a scheduler')
    this.schedFlags(p, s, scheduler)
    if (s.persistence !== undefined) {
      this.int(`${p}.persistence.timeout`, s.persistence.timeout, 1, MAX_TIMEOUT, ' seconds')
      const mask = s.persistence.netmask
      if (parseNetmask(String(mask), family) !== mask) {
        this.bad(
          `${p}.persistence.netmask`,
          family === 4
            ? `${show(mask)} is not a netmask for an IPv4 service; use a contiguous dotted mask such as 255.255.255.0`
            : `${show(mask)} is not a netmask for an IPv6 service; use a prefix length 1..128 such as 64`,
        )
      }
    }
    if (!Array.isArray(s.realServers)) this.bad(`${p}.realServers`, 'is not a list')
    const seen = new Map<string, number>()
    s.realServers.forEach((rs, j) => {
      const rp = `${p}.realServers[${j}]`
      this.realServer(rp, rs, s, family, settings)
      const key = realServerKey(rs)
      const first = seen.get(key)
      if (first !== undefined) this.bad(rp, `duplicate of realServers[${first}] (${key}); remove one, or change its address or port`)
      seen.set(key, j)
    })
    if (s.sorryServer !== undefined) this.endpoint(`${p}.sorryServer`, s.sorryServer, s, family, settings)
    if (s.quorum !== undefined) {
      this.int(`${p}.quorum.weight`, s.quorum.weight, 1, 2 ** 32 - 1)
      this.int(`${p}.quorum.hysteresis`, s.quorum.hysteresis, 0, 2 ** 32 - 1)
    }
  }

  schedFlags(p: string, s: Service, scheduler: string): void {
    if (!Array.isArray(s.schedFlags)) this.bad(`${p}.schedFlags`, 'is not a list')
    if (new Set(s.schedFlags).size !== s.schedFlags.length) this.bad(`${p}.schedFlags`, 'lists a flag twice; list each once')
    s.schedFlags.forEach((f, j) => {
      this.oneOf(`${p}.schedFlags[${j}]`, f, SCHED_FLAGS, 'a scheduler flag')
      const owner = f.split('-')[0]
      if (owner !== scheduler) {
        this.bad(
          `${p}.schedFlags[${j}]`,
          `${f} is a flag of the ${owner} scheduler, not ${scheduler}; remove it or use scheduler ${owner}`,
        )
      }
    })
    if (scheduler === 'mh') {
      const size = s.mhTableSize
      if (!isInt(size, 2, MAX_MH_TABLE_SIZE)) {
        this.bad(`${p}.mhTableSize`, `${show(size)} is out of range; use a prime up to ${MAX_MH_TABLE_SIZE}, such as 16381`)
      }
      if (!isPrime(size)) this.bad(`${p}.mhTableSize`, `${size} is not prime; use a prime such as ${nearestPrime(size)}`)
      if (size <= s.realServers.length) {
        this.bad(
          `${p}.mhTableSize`,
          `${size} is too small for ${s.realServers.length} real servers; use a prime well above that, such as 16381`,
        )
      }
    } else if (s.mhTableSize !== undefined) {
      this.bad(`${p}.mhTableSize`, `applies only to the mh scheduler, not ${scheduler}; remove it or use scheduler mh`)
    }
  }

  match(p: string, m: GroupMatch, family: Family): void {
    if (this.ip(`${p}.vip`, m.vip) !== family) {
      this.bad(
        `${p}.vip`,
        `${m.vip} is IPv${family === 4 ? 6 : 4} but the group is IPv${family}; put it in a group of its own family`,
      )
    }
    this.oneOf(`${p}.protocol`, m.protocol, PROTOCOLS, 'a protocol')
    this.int(`${p}.fromPort`, m.fromPort, 0, 65535)
    this.int(`${p}.toPort`, m.toPort, 0, 65535)
    if (m.fromPort > m.toPort) this.bad(`${p}.toPort`, `${m.toPort} is below fromPort ${m.fromPort}; give the range low-high`)
  }

  /** Fields a real server and a sorry server share. */
  endpoint(p: string, rs: { address: string; port: number; method: string }, s: Service, family: Family, settings: Settings): void {
    const rf = this.ip(`${p}.address`, rs.address)
    this.int(`${p}.port`, rs.port, 0, 65535)
    const method = this.oneOf(`${p}.method`, rs.method, METHODS, 'a forwarding method', METHOD_ALIASES)
    if (rf !== family && method !== 'tun') {
      this.bad(`${p}.address`, `${rs.address} is IPv${rf} but the service is IPv${family}; only tun can forward across families`)
    }
    if ((method === 'dr' || method === 'tun') && s.kind !== 'group' && rs.port !== s.port) {
      this.bad(`${p}.port`, `${rs.port} differs from the service port ${s.port}; ${method} cannot change the port (use nat or fullnat, or port ${s.port})`)
    }
    if (method === 'fullnat' && !settings.localAddresses.some((a) => familyOf(a) === rf)) {
      this.bad(`${p}.method`, `fullnat needs an IPv${rf} local address to rewrite client sources to; add one to settings.localAddresses`)
    }
  }

  realServer(p: string, rs: RealServer, s: Service, family: Family, settings: Settings): void {
    if (typeof rs !== 'object' || rs === null) this.bad(p, 'is not a real server')
    if (rs.name !== undefined) this.string(`${p}.name`, rs.name, 'a name')
    this.endpoint(p, rs, s, family, settings)
    this.int(`${p}.weight`, rs.weight, 0, MAX_WEIGHT)
    this.int(`${p}.upperThreshold`, rs.upperThreshold, 0, MAX_THRESHOLD)
    this.int(`${p}.lowerThreshold`, rs.lowerThreshold, 0, MAX_THRESHOLD)
    if (rs.upperThreshold > 0 && rs.lowerThreshold > rs.upperThreshold) {
      this.bad(`${p}.lowerThreshold`, `${rs.lowerThreshold} is above upperThreshold ${rs.upperThreshold}; use at most ${rs.upperThreshold}`)
    }
    if (rs.check !== undefined) this.check(`${p}.check`, rs.check)
  }

  check(p: string, c: HealthCheck): void {
    const type = this.oneOf(`${p}.type`, c.type, CHECK_TYPES, 'a check type')
    if (c.port !== undefined) this.int(`${p}.port`, c.port, 1, 65535)
    this.seconds(`${p}.interval`, c.interval)
    this.seconds(`${p}.timeout`, c.timeout)
    this.int(`${p}.rise`, c.rise, 1, 1000)
    this.int(`${p}.fall`, c.fall, 1, 1000)
    this.int(`${p}.retry`, c.retry, 0, 1000)
    this.seconds(`${p}.retryDelay`, c.retryDelay, true)
    this.seconds(`${p}.reentry`, c.reentry, true)
    this.oneOf(`${p}.onFailure`, c.onFailure, ['quiesce', 'remove'], 'an on-failure action')
    if (c.type === 'http' || c.type === 'https') {
      if (!Array.isArray(c.urls) || c.urls.length === 0) {
        this.bad(`${p}.urls`, `is empty; an ${type} check needs at least one url with a path`)
      }
      c.urls.forEach((u, j) => {
        const up = `${p}.urls[${j}]`
        if (typeof u.path !== 'string' || !u.path.startsWith('/')) {
          this.bad(`${up}.path`, `${show(u.path)} is not a URL path; use one starting with /, such as /healthz`)
        }
        if (u.status !== undefined) this.int(`${up}.status`, u.status, 100, 599)
        if (u.digest !== undefined && !/^[0-9a-f]{32}$/.test(u.digest)) {
          this.bad(
            `${up}.digest`,
            `${show(u.digest)} is not an MD5 digest; use 32 lower-case hex digits (keepalived genhash prints it)`,
          )
        }
        if (u.regex !== undefined) this.regex(`${up}.regex`, u.regex)
      })
      if (c.virtualhost !== undefined) this.string(`${p}.virtualhost`, c.virtualhost, 'a host name')
    } else if (c.type === 'send-expect') {
      if (typeof c.send !== 'string' || typeof c.expect !== 'string') this.bad(p, 'send and expect must be strings')
      if (c.send === '' && c.expect === '') this.bad(`${p}.send`, 'and expect are both empty; give one of them, or use a tcp check')
      this.bool(`${p}.regex`, c.regex)
      if (c.regex) this.regex(`${p}.expect`, c.expect)
    } else if (c.type === 'external') {
      this.string(`${p}.command`, c.command, 'a command (%h and %p stand for the real server address and port)')
      this.bool(`${p}.dynamic`, c.dynamic)
    }
  }

  /** A packet must belong to one group: matches of different groups may not overlap. */
  groupOverlaps(services: Service[]): void {
    const seen: { p: string; m: GroupMatch }[] = []
    services.forEach((s, i) => {
      if (s.kind !== 'group') return
      s.matches.forEach((m, j) => {
        const p = `services[${i}].matches[${j}]`
        const other = seen.find(
          (o) => !o.p.startsWith(`services[${i}].`) && o.m.protocol === m.protocol &&
            parseIp(o.m.vip)?.address === parseIp(m.vip)?.address && o.m.fromPort <= m.toPort && m.fromPort <= o.m.toPort,
        )
        if (other) {
          this.bad(p, `${m.protocol} ${formatHostPort(m.vip, m.fromPort)}-${m.toPort} overlaps ${other.p}; a packet must belong to one group, so split the ranges`)
        }
        seen.push({ p, m })
      })
    })
  }
}

/** The model unchanged, or a ConfigError for the first problem found. */
export function validate<T extends Model>(model: T, opts: { locate?: Locate } = {}): T {
  new Validator(opts.locate ?? (() => undefined)).model(model)
  return model
}
