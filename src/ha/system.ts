// SPDX-License-Identifier: GPL-2.0-only
// What failover does to the director it runs on, behind one interface so that tests substitute a
// recording fake: add and remove addresses, read an interface's MAC, addresses and link state, and
// send whole Ethernet frames (gratuitous ARP, unsolicited NA). LinuxSystem does it with `ip` (the
// simplest robust way to change addresses; its JSON output for reading) and AF_PACKET sockets, in the
// network namespace of the process.
import { execFileSync } from 'node:child_process'
import { CommandError } from '../errors'
import { PacketSocket } from '../net/socket'
import type { VirtualAddress } from '../model/types'

export interface InterfaceInfo {
  ifindex: number
  mac: string
  /** Administratively up and carrier present (IFF_UP and IFF_LOWER_UP). */
  up: boolean
  /** Addresses with their prefix, in the kernel's order (primary first). */
  ipv4: Array<{ address: string; prefix: number }>
  ipv6: Array<{ address: string; prefix: number; linkLocal: boolean }>
}

/** An address to add or remove: a VirtualAddress with its interface resolved. */
export interface PlacedAddress extends VirtualAddress {
  dev: string
}

export interface HaSystem {
  /** Add an address; one that is there already counts as added. */
  addAddress(a: PlacedAddress): void
  /** Remove an address; one that is not there counts as removed. */
  removeAddress(a: PlacedAddress): void
  /** undefined when there is no such interface. */
  interfaceInfo(ifname: string): InterfaceInfo | undefined
  /** Every interface's link state (for track_interface polling). */
  linkStates(): Map<string, boolean>
  /** Send a frame out of an interface. */
  sendFrame(ifname: string, frame: Buffer): void
  close(): void
}

interface IpLinkJson {
  ifindex: number
  ifname: string
  address?: string
  flags?: string[]
  addr_info?: Array<{ family: string; local: string; prefixlen: number; scope?: string }>
}

const linkUp = (l: IpLinkJson): boolean => (l.flags ?? []).includes('UP') && (l.flags ?? []).includes('LOWER_UP')

export class LinuxSystem implements HaSystem {
  private readonly sockets = new Map<string, PacketSocket>()

  constructor(private readonly ipPath = 'ip') {}

  private ip(args: string[]): string {
    try {
      return execFileSync(this.ipPath, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000 })
    } catch (e) {
      const err = e as { status?: number | null; stderr?: string }
      throw new CommandError([this.ipPath, ...args], err.status ?? null, String(err.stderr ?? (e as Error).message))
    }
  }

  static addrArgs(a: PlacedAddress): string[] {
    const v6 = a.address.includes(':')
    return [...(v6 ? ['-6'] : []), 'addr', 'add', `${a.address}/${a.prefix}`, 'dev', a.dev, ...(a.label ? ['label', a.label] : []), ...(v6 ? ['nodad'] : [])]
  }

  addAddress(a: PlacedAddress): void {
    try {
      this.ip(LinuxSystem.addrArgs(a))
    } catch (e) {
      if (e instanceof CommandError && /File exists/.test(e.stderr)) return
      throw e
    }
  }

  removeAddress(a: PlacedAddress): void {
    const v6 = a.address.includes(':')
    try {
      this.ip([...(v6 ? ['-6'] : []), 'addr', 'del', `${a.address}/${a.prefix}`, 'dev', a.dev])
    } catch (e) {
      if (e instanceof CommandError && /Cannot assign requested address|Cannot find device|does not exist/.test(e.stderr)) return
      throw e
    }
  }

  interfaceInfo(ifname: string): InterfaceInfo | undefined {
    let links: IpLinkJson[]
    try {
      links = JSON.parse(this.ip(['-j', 'addr', 'show', 'dev', ifname])) as IpLinkJson[]
    } catch (e) {
      if (e instanceof CommandError && /does not exist|Cannot find device/.test(e.stderr)) return undefined
      throw e
    }
    const l = links[0]
    if (!l) return undefined
    const addrs = l.addr_info ?? []
    return {
      ifindex: l.ifindex,
      mac: l.address ?? '00:00:00:00:00:00',
      up: linkUp(l),
      ipv4: addrs.filter((a) => a.family === 'inet').map((a) => ({ address: a.local, prefix: a.prefixlen })),
      ipv6: addrs.filter((a) => a.family === 'inet6').map((a) => ({ address: a.local, prefix: a.prefixlen, linkLocal: a.scope === 'link' })),
    }
  }

  linkStates(): Map<string, boolean> {
    const links = JSON.parse(this.ip(['-j', 'link', 'show'])) as IpLinkJson[]
    return new Map(links.map((l) => [l.ifname, linkUp(l)]))
  }

  sendFrame(ifname: string, frame: Buffer): void {
    let s = this.sockets.get(ifname)
    if (!s) {
      s = PacketSocket.open(ifname)
      this.sockets.set(ifname, s)
    }
    try {
      s.send(frame)
    } catch (e) {
      // The interface may have been re-created (new ifindex): reopen once.
      s.close()
      this.sockets.delete(ifname)
      throw e
    }
  }

  close(): void {
    for (const s of this.sockets.values()) s.close()
    this.sockets.clear()
  }
}
