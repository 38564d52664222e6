// SPDX-License-Identifier: GPL-2.0-only
// Next hops for real servers, resolved by xvs itself from the kernel's routing and neighbour tables
// (an operator never types a MAC): the egress interface, its MAC and MTU, the next hop's MAC
// (probed when the neighbour table has none yet), and the local source address for tunnels.
// Runs `ip` in the calling thread's network namespace.
import { execFileSync, spawnSync } from 'node:child_process'
import net from 'node:net'
import { XvsError } from '../errors'
import { parseIp } from '../model/addr'

export interface NextHop {
  /** The real server's address. */
  address: string
  ifname: string
  ifindex: number
  /** Director's MAC on the egress interface. */
  srcMac: string
  /** MAC of the next hop: the real server itself when on-link, else the gateway. */
  dstMac: string
  /** Gateway address when the real server is not on-link. */
  gateway?: string
  /** L3 MTU of the egress interface. */
  mtu: number
  /** The director's preferred source address towards the real server (tunnel outer source). */
  source?: string
}

export class ResolveError extends XvsError {
  constructor(message: string, hint?: string) {
    super('ERESOLVE', message, hint === undefined ? {} : { hint })
  }
}

interface RouteJson { dst?: string; dev?: string; gateway?: string; prefsrc?: string; type?: string }
interface NeighJson { dst?: string; dev?: string; lladdr?: string; state?: string[] }
interface LinkJson { ifindex: number; ifname: string; address?: string; mtu: number; link_type?: string }

const IP_TIMEOUT_MS = 5000

function ip(args: string[]): unknown {
  try {
    const out = execFileSync('ip', ['-j', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: IP_TIMEOUT_MS, maxBuffer: 64 << 20 })
    return out.trim() === '' ? [] : JSON.parse(out)
  } catch (e) {
    const err = e as { stderr?: string; message: string }
    throw new ResolveError(`ip ${args.join(' ')}: ${(err.stderr ?? err.message).trim().split('\n')[0]}`)
  }
}

/** Routes, interfaces and neighbours as one `ip` process sees them (batchRead). */
interface Snapshot {
  routes: (RouteJson | ResolveError)[]
  links: LinkJson[] | ResolveError
  neigh: NeighJson[] | ResolveError
}

/**
 * `ip -j route get` of every address, then `ip -j link show` and `ip -j neigh show`, in one `ip -batch`
 * process. With -force, ip goes on after a failed command, prints nothing on stdout for it and names
 * its line on stderr ("Command failed -:N" after the error's own lines), so stdout's lines belong to
 * the commands that did not fail, in order. Anything unexpected falls back to one process per command.
 */
function batchRead(addresses: readonly string[]): Snapshot {
  const cmds = [...addresses.map((a) => ['route', 'get', a]), ['link', 'show'], ['neigh', 'show']]
  const one = (args: string[]): unknown => {
    try {
      return ip(args)
    } catch (e) {
      return e as ResolveError
    }
  }
  const split = (results: unknown[]): Snapshot => ({
    routes: results.slice(0, addresses.length).map((r) => (r instanceof ResolveError ? r : (r as RouteJson[])[0] ?? {})),
    links: results[addresses.length] as LinkJson[] | ResolveError,
    neigh: results[addresses.length + 1] as NeighJson[] | ResolveError,
  })
  const fallback = (): Snapshot => split(cmds.map(one))
  const r = spawnSync('ip', ['-j', '-force', '-batch', '-'], {
    input: cmds.map((c) => `${c.join(' ')}\n`).join(''), encoding: 'utf8',
    timeout: IP_TIMEOUT_MS + 10 * cmds.length, maxBuffer: 64 << 20,
  })
  if (r.error || r.status === null) return fallback()
  const parsed = parseBatchOutput(cmds.length, r.stdout, r.stderr)
  if (!parsed) return fallback()
  return split(parsed.map((x, i) => (x instanceof Error ? new ResolveError(`ip ${cmds[i]!.join(' ')}: ${x.message}`) : x.json)))
}

/**
 * The outputs of `ip -j -force -batch` running `count` commands that print one JSON line each when
 * they succeed: per command its JSON, or an Error with the first line ip wrote for it. Undefined
 * when the output does not fit that shape (the caller then runs the commands one by one).
 */
export function parseBatchOutput(count: number, stdout: string, stderr: string): ({ json: unknown } | Error)[] | undefined {
  const failed = new Map<number, string>()
  let pending: string[] = []
  for (const line of stderr.split('\n')) {
    const m = /^Command failed -:(\d+)$/.exec(line.trim())
    if (m) {
      failed.set(Number(m[1]) - 1, pending.find((l) => l.trim() !== '')?.trim() ?? 'failed')
      pending = []
    } else pending.push(line)
  }
  const lines = stdout.split('\n').filter((l) => l.trim() !== '')
  if (lines.length + failed.size !== count || [...failed.keys()].some((i) => i < 0 || i >= count)) return undefined
  const out: ({ json: unknown } | Error)[] = []
  let next = 0
  try {
    for (let i = 0; i < count; i++) {
      const err = failed.get(i)
      out.push(err !== undefined ? new Error(err) : { json: JSON.parse(lines[next++]!) })
    }
  } catch {
    return undefined
  }
  return out
}

const USABLE = new Set(['REACHABLE', 'STALE', 'DELAY', 'PROBE', 'PERMANENT', 'NOARP'])

const canon = (a: string | undefined): string | undefined => (a === undefined ? undefined : parseIp(a)?.address ?? a)

/** Usable neighbour MACs, by "dev|canonical address". */
function usableMacs(rows: readonly NeighJson[]): Map<string, string> {
  const out = new Map<string, string>()
  for (const r of rows) {
    if (r.dst && r.dev && r.lladdr && (r.state ?? []).some((s) => USABLE.has(s))) out.set(`${r.dev}|${canon(r.dst)}`, r.lladdr)
  }
  return out
}

/**
 * Make the kernel resolve each (address, device): one echo request sends the ARP request / neighbour
 * solicitation. All at once, in one process when there are several.
 */
function probe(targets: readonly { addr: string; dev: string }[]): void {
  const argv = (t: { addr: string; dev: string }): string[] => [net.isIPv6(t.addr) ? '-6' : '-4', '-c', '1', '-W', '1', '-I', t.dev, t.addr]
  try {
    // No echo reply is fine: only the neighbour entry matters (real servers may drop ICMP).
    if (targets.length === 1) execFileSync('ping', argv(targets[0]!), { stdio: 'ignore', timeout: 3000 })
    else {
      spawnSync('sh', ['-c', 'while [ $# -ge 8 ]; do ping "$1" "$2" "$3" "$4" "$5" "$6" "$7" "$8" >/dev/null 2>&1 & shift 8; done; wait', 'sh', ...targets.flatMap(argv)],
        { stdio: 'ignore', timeout: 5000 })
    }
  } catch {
    // as above
  }
}

export interface ResolveOptions {
  /** Probes before giving up on a missing neighbour entry. */
  probes?: number
  /** Direct routing needs the real server on-link (layer-2 adjacency). */
  requireOnLink?: boolean
}

export interface HopRequest {
  address: string
  /** Direct routing needs the real server on-link (layer-2 adjacency). */
  requireOnLink?: boolean
}

/**
 * The next hops of many real servers at once, each a NextHop or the ResolveError that says why not,
 * in the order asked. One `ip` process whatever the count (batchRead), plus, while neighbours are
 * missing, a round of parallel probes and a neighbour listing per retry.
 */
export function resolveNextHops(requests: readonly HopRequest[], opts: { probes?: number } = {}): (NextHop | ResolveError)[] {
  const out: (NextHop | ResolveError | undefined)[] = requests.map((q) =>
    (net.isIP(q.address) ? undefined : new ResolveError(`not an IP address: ${q.address}`)))
  const addresses = [...new Set(requests.filter((_, i) => out[i] === undefined).map((q) => q.address))]
  if (addresses.length === 0) return out as (NextHop | ResolveError)[]
  const snap = batchRead(addresses)
  const routes = new Map(snap.routes.map((r, i) => [addresses[i]!, r]))

  // Routes checked; what is left needs its interface and its next hop's MAC.
  interface Want { i: number; address: string; route: RouteJson & { dev: string }; link?: LinkJson; hop: string }
  const wants: Want[] = []
  const links = snap.links instanceof ResolveError ? snap.links : new Map(snap.links.map((l) => [l.ifname, l]))
  for (const [i, q] of requests.entries()) {
    if (out[i] !== undefined) continue
    const address = q.address
    const r = routes.get(address)!
    if (r instanceof ResolveError) { out[i] = r; continue }
    if (!r.dev) { out[i] = new ResolveError(`no route to real server ${address}`, 'add a route to it on the director (ip route)'); continue }
    if (r.type === 'local' || r.dev === 'lo') {
      out[i] = new ResolveError(`real server ${address} is an address of the director itself`, 'use the real server\'s own address')
      continue
    }
    if (q.requireOnLink && r.gateway) {
      out[i] = new ResolveError(`real server ${address} is reached through gateway ${r.gateway}, not on-link`,
        'direct routing needs the real server on a directly connected network; use tun (-i) across routers')
      continue
    }
    if (links instanceof ResolveError) { out[i] = links; continue }
    const link = links.get(r.dev)
    if (!link) { out[i] = new ResolveError(`ip link show dev ${r.dev}: the interface towards ${address} is gone`); continue }
    if (!link.address || link.link_type !== 'ether') {
      out[i] = new ResolveError(`interface ${r.dev} towards ${address} is not Ethernet`, 'XDP forwarding needs an Ethernet interface')
      continue
    }
    wants.push({ i, address, route: r as RouteJson & { dev: string }, link, hop: r.gateway ?? address })
  }
  if (wants.length) {
    const key = (w: Want): string => `${w.route.dev}|${canon(w.hop)}`
    if (snap.neigh instanceof ResolveError) {
      for (const w of wants) out[w.i] = snap.neigh
      return out as (NextHop | ResolveError)[]
    }
    let macs = usableMacs(snap.neigh)
    for (let round = 0; round < (opts.probes ?? 3); round++) {
      const missing = new Map<string, { addr: string; dev: string }>()
      for (const w of wants) if (!macs.has(key(w))) missing.set(key(w), { addr: w.hop, dev: w.route.dev })
      if (missing.size === 0) break
      probe([...missing.values()])
      try {
        macs = usableMacs(ip(['neigh', 'show']) as NeighJson[])
      } catch {
        // keep what we had; the missing ones fail below
      }
    }
    for (const w of wants) {
      const mac = macs.get(key(w))
      const { route: r, link } = w
      if (!mac) {
        out[w.i] = new ResolveError(`cannot resolve the MAC address of ${w.hop} on ${r.dev}: no ARP/neighbour reply`,
          `check that ${w.hop} is up and reachable from the director (ping -I ${r.dev} ${w.hop})`)
        continue
      }
      out[w.i] = {
        address: w.address, ifname: r.dev, ifindex: link!.ifindex, srcMac: link!.address!, dstMac: mac, mtu: link!.mtu,
        ...(r.gateway ? { gateway: r.gateway } : {}), ...(r.prefsrc ? { source: r.prefsrc } : {}),
      }
    }
  }
  return out as (NextHop | ResolveError)[]
}

export function resolveNextHop(address: string, opts: ResolveOptions = {}): NextHop {
  const [r] = resolveNextHops([{ address, ...(opts.requireOnLink ? { requireOnLink: true } : {}) }], opts.probes === undefined ? {} : { probes: opts.probes })
  if (r instanceof ResolveError) throw r
  return r!
}
