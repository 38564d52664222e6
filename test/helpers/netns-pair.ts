// SPDX-License-Identifier: GPL-2.0-only
// Two network namespaces joined by one veth (a: veth0 <-> b: veth0), with IPv4, IPv6 and link-local
// addresses usable at once (no DAD). Deleted at teardown. For tests of sockets that need a real peer.
import { randomBytes } from 'node:crypto'
import { sh } from './root'

type Tap = { teardown(fn: () => void | Promise<void>): void }

export interface NetnsEnd {
  ns: string
  ifname: string
  ipv4: string
  ipv6: string
  /** fe80:: address of the veth */
  linkLocal: string
  mac: string
  ifindex: number
}

export interface NetnsPair {
  a: NetnsEnd
  b: NetnsEnd
}

export function netnsPair(t: Tap): NetnsPair {
  const id = `xvp-${process.pid.toString(36)}-${randomBytes(3).toString('hex')}`
  const names = [`${id}-a`, `${id}-b`]
  for (const ns of names) {
    sh(['ip', 'netns', 'add', ns])
    t.teardown(() => { try { sh(['ip', 'netns', 'del', ns]) } catch { /* already gone */ } })
    sh(['ip', 'netns', 'exec', ns, 'sysctl', '-q', '-w', 'net.ipv6.conf.all.accept_dad=0', 'net.ipv6.conf.default.accept_dad=0'])
    sh(['ip', '-n', ns, 'link', 'set', 'lo', 'up'])
  }
  sh(['ip', '-n', names[0]!, 'link', 'add', 'veth0', 'type', 'veth', 'peer', 'name', 'veth0', 'netns', names[1]!])
  names.forEach((ns, i) => {
    sh(['ip', '-n', ns, 'addr', 'add', `10.77.0.${i + 1}/24`, 'dev', 'veth0'])
    sh(['ip', '-n', ns, '-6', 'addr', 'add', `fd00:77::${i + 1}/64`, 'dev', 'veth0', 'nodad'])
    sh(['ip', '-n', ns, 'link', 'set', 'veth0', 'up'])
  })
  // The link-local addresses appear once both ends are up (carrier).
  const ends = names.map((ns, i) => {
    const host = i + 1
    const link = (JSON.parse(sh(['ip', '-n', ns, '-j', 'addr', 'show', 'dev', 'veth0'])) as Array<{
      ifindex: number; address: string; addr_info: Array<{ family: string; local: string; scope: string }>
    }>)[0]!
    const ll = link.addr_info.find((a) => a.family === 'inet6' && a.scope === 'link')
    if (!ll) throw new Error(`no link-local address on veth0 in ${ns}`)
    return { ns, ifname: 'veth0', ipv4: `10.77.0.${host}`, ipv6: `fd00:77::${host}`, linkLocal: ll.local, mac: link.address, ifindex: link.ifindex }
  })
  return { a: ends[0]!, b: ends[1]! }
}
