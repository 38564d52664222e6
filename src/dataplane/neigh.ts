// SPDX-License-Identifier: GPL-2.0-only
// Next hops for real servers, resolved by xvs itself from the kernel's routing and neighbour tables
// (an operator never types a MAC): the egress interface, its MAC and MTU, the next hop's MAC
// (probed when the neighbour table has none yet), and the local source address for tunnels.
// Runs `ip` in the calling thread's network namespace.
import { execFileSync } from 'node:child_process'
import net from 'node:net'
import { XvsError } from '../errors'

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

function ip(args: string[]): unknown {
  try {
    const out = execFileSync('ip', ['-j', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 5000 })
    return out.trim() === '' ? [] : JSON.parse(out)
  } catch (e) {
    const err = e as { stderr?: string; message: string }
    throw new ResolveError(`ip ${args.join(' ')}: ${(err.stderr ?? err.message).trim().split('\n')[0]}`)
  }
}

const USABLE = new Set(['REACHABLE', 'STALE', 'DELAY', 'PROBE', 'PERMANENT', 'NOARP'])

function neighMac(addr: string, dev: string): string | undefined {
  const rows = ip(['neigh', 'show', 'to', addr, 'dev', dev]) as NeighJson[]
  const row = rows.find((r) => r.dst === addr && r.lladdr && (r.state ?? []).some((s) => USABLE.has(s)))
  return row?.lladdr
}

/** Make the kernel resolve `addr` on `dev`: one echo request sends the ARP request / neighbour solicitation. */
function probe(addr: string, dev: string): void {
  try {
    execFileSync('ping', [net.isIPv6(addr) ? '-6' : '-4', '-c', '1', '-W', '1', '-I', dev, addr], { stdio: 'ignore', timeout: 3000 })
  } catch {
    // No echo reply is fine: only the neighbour entry matters (real servers may drop ICMP).
  }
}

export interface ResolveOptions {
  /** Probes before giving up on a missing neighbour entry. */
  probes?: number
  /** Direct routing needs the real server on-link (layer-2 adjacency). */
  requireOnLink?: boolean
}

export function resolveNextHop(address: string, opts: ResolveOptions = {}): NextHop {
  if (!net.isIP(address)) throw new ResolveError(`not an IP address: ${address}`)
  const routes = ip(['route', 'get', address]) as RouteJson[]
  const r = routes[0]
  if (!r?.dev) throw new ResolveError(`no route to real server ${address}`, 'add a route to it on the director (ip route)')
  if (r.type === 'local' || r.dev === 'lo')
    throw new ResolveError(`real server ${address} is an address of the director itself`, 'use the real server\'s own address')
  if (opts.requireOnLink && r.gateway)
    throw new ResolveError(`real server ${address} is reached through gateway ${r.gateway}, not on-link`,
      'direct routing needs the real server on a directly connected network; use tun (-i) across routers')
  const link = (ip(['link', 'show', 'dev', r.dev]) as LinkJson[])[0]
  if (!link?.address || link.link_type !== 'ether')
    throw new ResolveError(`interface ${r.dev} towards ${address} is not Ethernet`, 'XDP forwarding needs an Ethernet interface')
  const hop = r.gateway ?? address
  let mac = neighMac(hop, r.dev)
  for (let i = 0; !mac && i < (opts.probes ?? 3); i++) {
    probe(hop, r.dev)
    mac = neighMac(hop, r.dev)
  }
  if (!mac)
    throw new ResolveError(`cannot resolve the MAC address of ${hop} on ${r.dev}: no ARP/neighbour reply`,
      `check that ${hop} is up and reachable from the director (ping -I ${r.dev} ${hop})`)
  return {
    address, ifname: r.dev, ifindex: link.ifindex, srcMac: link.address, dstMac: mac, mtu: link.mtu,
    ...(r.gateway ? { gateway: r.gateway } : {}), ...(r.prefsrc ? { source: r.prefsrc } : {}),
  }
}
