// SPDX-License-Identifier: GPL-2.0-only
// Names for listings without -n, as ipvsadm's addrport_to_anyname: the host name the resolver
// (getnameinfo: /etc/hosts, then DNS) gives the address, and the /etc/services name of the port;
// numeric wherever there is none. Looked up once per address before printing, each with a time limit.
import { lookupService } from 'node:dns/promises'
import { readFileSync } from 'node:fs'
import { familyOf } from '../model/addr'
import type { NameOf } from './format'

function servicesFile(proto: string, path = '/etc/services'): Map<number, string> {
  const out = new Map<number, string>()
  let text = ''
  try { text = readFileSync(path, 'utf8') } catch { return out }
  for (const line of text.split('\n')) {
    const m = /^([\w.+-]+)\s+(\d+)\/(\w+)/.exec(line)
    if (m && m[3] === proto && !out.has(Number(m[2]))) out.set(Number(m[2]), m[1]!)
  }
  return out
}

async function hostName(address: string, timeoutMs: number): Promise<string | undefined> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<undefined>((resolve) => { timer = setTimeout(() => resolve(undefined), timeoutMs) })
  try {
    const r = await Promise.race([lookupService(address, 0).then((x) => x.hostname, () => undefined), timeout])
    return r && r !== address ? r : undefined
  } finally {
    clearTimeout(timer)
  }
}

/** A NameOf for these addresses (resolved now, in parallel), naming ports of `proto`. */
export async function resolveNames(addresses: Iterable<string>, proto = 'tcp', timeoutMs = 1000): Promise<NameOf> {
  const ports = servicesFile(proto)
  for (const [n, name] of servicesFile(proto === 'tcp' ? 'udp' : 'tcp')) if (!ports.has(n)) ports.set(n, name)
  const hosts = new Map<string, string | undefined>()
  await Promise.all([...new Set(addresses)].map(async (a) => { hosts.set(a, await hostName(a, timeoutMs)) }))
  return (address, port) => {
    const host = hosts.get(address)
    const p = ports.get(port) ?? String(port)
    if (!host) return familyOf(address) === 6 ? `[${address}]:${p}` : `${address}:${p}`
    return `${host}:${p}`
  }
}

