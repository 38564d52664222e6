// SPDX-License-Identifier: GPL-2.0-only
// A network namespace for running the director through BPF_PROG_TEST_RUN where bpf_fib_lookup must
// succeed: interfaces (veth, each with its peer left unaddressed in the same namespace), addresses,
// routes and PERMANENT neighbour entries with known MACs, forwarding on. No traffic is sent: the
// packets only exist inside test runs, whose ingress_ifindex names one of these interfaces (the run
// must happen inside the namespace: withNetns). Used by the nat fixture tests and the benchmarks.
import { randomBytes } from 'node:crypto'
import fs from 'node:fs'
import { ifindexOf, withNetns } from '../bpf'
import { ArgumentError } from '../errors'
import { inNetns, ipIn, run, tryRun } from './exec'

export interface FibIfaceSpec {
  /** Interface name (its peer is `<name>p`). */
  name: string
  mac: string
  mtu?: number
  /** Addresses with prefix length: '10.0.0.254/24', 'fd00::fe/64'. */
  addrs?: string[]
}

export interface FibRouteSpec {
  /** Destination prefix, or 'default'. */
  dst: string
  dev: string
  via?: string
  /** Route MTU (IPv4: locked, so bpf_fib_lookup uses it; IPv6 always does). */
  mtu?: number
  family?: 4 | 6
}

export interface FibNeighSpec { addr: string; mac: string; dev: string }

export interface FibNetnsSpec {
  /** Name prefix, 1 to 8 lower-case letters; the pid (base 36) and a random suffix are added. */
  prefix?: string
  ifaces: FibIfaceSpec[]
  routes?: FibRouteSpec[]
  neighbours?: FibNeighSpec[]
}

export interface FibNetns {
  readonly name: string
  /** ifindex of an interface of the spec, inside the namespace. */
  ifindex(name: string): number
  /** Run fn with this thread inside the namespace (test runs, devmap writes). */
  within<T>(fn: () => T): T
  /** `ip -n NS ...args`, for changes after creation. */
  ip(args: readonly string[]): string
  /** Delete the namespace (and with it every interface, route and neighbour). Idempotent. */
  destroy(): void
}

const famOf = (a: string): 4 | 6 => (a.includes(':') ? 6 : 4)

const NAME = /^([a-z]{1,8})-([0-9a-z]{1,8})-[0-9a-f]{6}$/

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * Delete the namespaces of this prefix whose creating process (its pid is in the name) is gone: what
 * a killed test or benchmark left behind. Returns their names.
 */
export function sweepStaleFibNetns(prefix: string): string[] {
  let names: string[]
  try {
    names = fs.readdirSync('/run/netns')
  } catch {
    return []
  }
  const gone: string[] = []
  for (const n of names) {
    const m = NAME.exec(n)
    if (!m || m[1] !== prefix) continue
    const pid = parseInt(m[2]!, 36)
    if (pid === process.pid || alive(pid)) continue
    tryRun(['ip', 'netns', 'del', n])
    gone.push(n)
  }
  return gone
}

/**
 * Create the namespace; on any failure it is removed before the error propagates. Namespaces of the
 * same prefix left by processes that no longer run are removed first.
 */
export function createFibNetns(spec: FibNetnsSpec): FibNetns {
  const prefix = spec.prefix ?? 'xvf'
  if (!/^[a-z]{1,8}$/.test(prefix)) throw new ArgumentError(`fib namespace prefix must be 1 to 8 lower-case letters, got ${JSON.stringify(prefix)}`)
  sweepStaleFibNetns(prefix)
  const name = `${prefix}-${process.pid.toString(36)}-${randomBytes(3).toString('hex')}`
  run(['ip', 'netns', 'add', name])
  let gone = false
  const destroy = (): void => {
    if (gone) return
    gone = true
    tryRun(['ip', 'netns', 'del', name])
  }
  try {
    // Forwarding first, so the interfaces made next inherit it (bpf_fib_lookup: FWD_DISABLED otherwise).
    run(inNetns(name, ['sysctl', '-qw', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1', 'net.ipv6.conf.default.forwarding=1']))
    run(ipIn(name, ['link', 'set', 'lo', 'up']))
    for (const i of spec.ifaces) {
      run(ipIn(name, ['link', 'add', i.name, 'address', i.mac, ...(i.mtu ? ['mtu', String(i.mtu)] : []), 'type', 'veth', 'peer', 'name', `${i.name}p`]))
      run(ipIn(name, ['link', 'set', `${i.name}p`, 'up']))
      run(ipIn(name, ['link', 'set', i.name, 'up']))
      for (const a of i.addrs ?? []) {
        run(ipIn(name, famOf(a) === 6 ? ['-6', 'addr', 'add', a, 'dev', i.name, 'nodad'] : ['addr', 'add', a, 'dev', i.name]))
      }
    }
    for (const r of spec.routes ?? []) {
      const fam = r.family ?? (r.via ? famOf(r.via) : famOf(r.dst))
      const argv = [`-${fam}`, 'route', 'add', r.dst, ...(r.via ? ['via', r.via] : []), 'dev', r.dev]
      if (r.mtu !== undefined) argv.push('mtu', ...(fam === 4 ? ['lock'] : []), String(r.mtu))
      run(ipIn(name, argv))
    }
    for (const n of spec.neighbours ?? []) {
      run(ipIn(name, [`-${famOf(n.addr)}`, 'neigh', 'replace', n.addr, 'lladdr', n.mac, 'dev', n.dev, 'nud', 'permanent']))
    }
  } catch (e) {
    destroy()
    throw e
  }
  const within = <T>(fn: () => T): T => withNetns(name, fn)
  const ifindexes = new Map<string, number>()
  return {
    name,
    ifindex: (ifname) => {
      let i = ifindexes.get(ifname)
      if (i === undefined) {
        i = within(() => ifindexOf(ifname))
        ifindexes.set(ifname, i)
      }
      return i
    },
    within,
    ip: (args) => run(ipIn(name, args)),
    destroy,
  }
}

/** True while a namespace of that name exists (for tests of the cleanup). */
export function netnsExists(name: string): boolean {
  return fs.existsSync(`/run/netns/${name}`)
}
