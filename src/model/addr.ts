// SPDX-License-Identifier: GPL-2.0-only
// Addresses, ports and netmasks as every config format writes them. Pure functions returning undefined on
// bad input; callers turn that into a located ConfigError with their own wording.
import { isIPv4, isIPv6 } from 'node:net'
import type { Family } from './types'

export interface Ip {
  /** Canonical text: dotted decimal, or RFC 5952 IPv6 (lower case, longest zero run compressed). */
  address: string
  family: Family
}

/** Canonical text of IPv6 addresses seen (parsing one through URL is slow; configs repeat them). */
const v6Canonical = new Map<string, string>()

export function parseIp(text: string): Ip | undefined {
  // isIPv4 accepts no leading zeros, so what it accepts is already canonical
  if (isIPv4(text)) return { address: text, family: 4 }
  if (isIPv6(text) && !text.includes('%')) {
    let address = v6Canonical.get(text)
    if (address === undefined) {
      address = new URL(`http://[${text}]/`).hostname.slice(1, -1)
      if (v6Canonical.size >= 65536) v6Canonical.clear()
      v6Canonical.set(text, address)
    }
    return { address, family: 6 }
  }
  return undefined
}

export function familyOf(address: string): Family | undefined {
  return parseIp(address)?.family
}

/** "10.0.0.1:80", "[2001:db8::1]:80". */
export function formatHostPort(address: string, port: number): string {
  return familyOf(address) === 6 ? `[${address}]:${port}` : `${address}:${port}`
}

/**
 * Split "host[:port]" the way ipvsadm does: "[v6]:port", a bare IPv6 address (no port), "v4:port" or "v4".
 * Only the syntax: the host is not checked.
 */
export function splitHostPort(text: string): { host: string; port?: string } | undefined {
  if (text.startsWith('[')) {
    const m = /^\[([^\]]*)\](?::(.*))?$/.exec(text)
    return m ? { host: m[1] ?? '', ...(m[2] === undefined ? {} : { port: m[2] }) } : undefined
  }
  if (isIPv6(text)) return { host: text }
  const i = text.lastIndexOf(':')
  return i < 0 ? { host: text } : { host: text.slice(0, i), port: text.slice(i + 1) }
}

/** A few /etc/services names that rules written without -n carry (ipvsadm -S prints names unless -n). */
const SERVICE_PORTS: Record<string, number> = {
  ftp: 21, ssh: 22, telnet: 23, smtp: 25, domain: 53, http: 80, www: 80, pop3: 110, ntp: 123, imap: 143,
  snmp: 161, ldap: 389, https: 443, submission: 587, smtps: 465, ldaps: 636, imaps: 993, pop3s: 995,
  mysql: 3306, postgresql: 5432, 'http-alt': 8080,
}

/** Decimal 0..65535, or a well-known service name when `names` is set. */
export function parsePort(text: string, names = false): number | undefined {
  if (/^\d{1,5}$/.test(text)) {
    const n = Number(text)
    return n <= 65535 ? n : undefined
  }
  return names ? SERVICE_PORTS[text] : undefined
}

/** A non-negative decimal integer no larger than max (no sign, no exponent, no fraction). */
export function parseUint(text: string, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (!/^\d+$/.test(text)) return undefined
  const n = Number(text)
  return n <= max ? n : undefined
}

/** Prefix length of a contiguous dotted IPv4 mask ("255.255.255.0" -> 24); undefined if not a contiguous mask. */
export function maskToPrefix(mask: string): number | undefined {
  if (!isIPv4(mask)) return undefined
  const bits = mask.split('.').reduce((acc, o) => acc * 256 + Number(o), 0)
  for (let p = 0; p <= 32; p++) if (bits === prefixBits(p)) return p
  return undefined
}

export function prefixToMask(prefix: number): string {
  const bits = prefixBits(prefix)
  return [24, 16, 8, 0].map((s) => Math.floor(bits / 2 ** s) % 256).join('.')
}

function prefixBits(p: number): number {
  return p === 0 ? 0 : 2 ** 32 - 2 ** (32 - p)
}

/**
 * A persistence netmask for a service of `family`: IPv4 takes a contiguous dotted mask (or "/24"),
 * IPv6 a prefix length 1..128 (or "/64"). Returns the canonical model value.
 */
export function parseNetmask(text: string, family: Family): string | number | undefined {
  const slash = /^\/?(\d{1,3})$/.exec(text)
  if (family === 6) {
    const n = slash ? Number(slash[1]) : NaN
    return n >= 1 && n <= 128 ? n : undefined
  }
  if (slash && text.startsWith('/')) {
    const n = Number(slash[1])
    return n <= 32 ? prefixToMask(n) : undefined
  }
  const p = maskToPrefix(text)
  return p === undefined ? undefined : prefixToMask(p)
}

/** Linux interface names: 1..15 characters, no '/', ':' or whitespace. */
export function isInterfaceName(name: string): boolean {
  return /^[^\s/:]{1,15}$/.test(name) && name !== '.' && name !== '..'
}
