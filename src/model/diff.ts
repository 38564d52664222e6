// SPDX-License-Identifier: GPL-2.0-only
// Identity and change: a canonical key per service and per real server, and the difference between two
// models that the writer turns into map operations.
import { formatHostPort, parseIp } from './addr'
import type { Model, RealServer, Service } from './types'

const canon = (address: string): string => parseIp(address)?.address ?? address

/** What identifies a service: "tcp:10.0.0.1:80", "udp:[2001:db8::1]:53", "group:100". */
export function serviceKey(s: { kind: 'group'; id: number } | { kind: 'tcp' | 'udp'; vip: string; port: number }): string {
  return s.kind === 'group' ? `group:${s.id}` : `${s.kind}:${formatHostPort(canon(s.vip), s.port)}`
}

/** What identifies a real server inside its service: "10.0.0.2:80", "[2001:db8::2]:80". */
export function realServerKey(rs: { address: string; port: number }): string {
  return formatHostPort(canon(rs.address), rs.port)
}

/** Deep equality of plain data; a key holding undefined counts as absent. */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false
  if (Array.isArray(a) !== Array.isArray(b)) return false
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((v, i) => deepEqual(v, b[i]))
  const ra = a as Record<string, unknown>
  const rb = b as Record<string, unknown>
  const keys = new Set([...Object.keys(ra), ...Object.keys(rb)])
  for (const k of keys) if (!deepEqual(ra[k], rb[k])) return false
  return true
}

/** Names of the top-level fields of `a` and `b` that differ, `skip` left out. */
function changedFields(a: object, b: object, skip: string[] = []): string[] {
  const ra = a as Record<string, unknown>
  const rb = b as Record<string, unknown>
  return [...new Set([...Object.keys(ra), ...Object.keys(rb)])]
    .filter((k) => !skip.includes(k) && !deepEqual(ra[k], rb[k]))
    .sort()
}

export interface Change<T> {
  key: string
  before: T
  after: T
  /** Top-level fields that differ (for a service: not counting realServers). */
  fields: string[]
}

export interface ServiceChange extends Change<Service> {
  realServers: { added: RealServer[]; removed: RealServer[]; changed: Change<RealServer>[] }
}

export interface ModelDiff {
  /** Settings fields that differ ("timeouts", "localAddresses", ...). */
  settings: string[]
  services: { added: Service[]; removed: Service[]; changed: ServiceChange[] }
}

function diffKeyed<T extends object>(a: T[], b: T[], key: (x: T) => string, skip: string[] = []) {
  const before = new Map(a.map((x) => [key(x), x]))
  const after = new Map(b.map((x) => [key(x), x]))
  const changed: Change<T>[] = []
  for (const [k, x] of after) {
    const old = before.get(k)
    if (old !== undefined) changed.push({ key: k, before: old, after: x, fields: changedFields(old, x, skip) })
  }
  return {
    added: b.filter((x) => !before.has(key(x))),
    removed: a.filter((x) => !after.has(key(x))),
    changed,
  }
}

/** What turns `a` into `b`. Both should be valid (unique keys); order of services or servers does not matter. */
export function diffModels(a: Model, b: Model): ModelDiff {
  const services = diffKeyed(a.services, b.services, serviceKey, ['realServers'])
  const changed: ServiceChange[] = []
  for (const c of services.changed) {
    const rs = diffKeyed(c.before.realServers, c.after.realServers, realServerKey)
    const rsChanged = rs.changed.filter((x) => x.fields.length > 0)
    if (c.fields.length > 0 || rs.added.length > 0 || rs.removed.length > 0 || rsChanged.length > 0) {
      changed.push({ ...c, realServers: { added: rs.added, removed: rs.removed, changed: rsChanged } })
    }
  }
  return {
    settings: changedFields(a.settings, b.settings),
    services: { added: services.added, removed: services.removed, changed },
  }
}

export function isEmptyDiff(d: ModelDiff): boolean {
  return d.settings.length === 0 && d.services.added.length + d.services.removed.length + d.services.changed.length === 0
}
