// SPDX-License-Identifier: GPL-2.0-only
// Address bytes and the Internet checksum for the HA packet builders. IP text <-> network-order bytes,
// canonical text (dotted decimal, RFC 5952 IPv6), unsigned byte-wise comparison (VRRP's tie-break on
// the primary address), MAC addresses, and the RFC 1071 one's complement sum. Pure functions; bad text
// gives undefined, never an exception.

export type Family = 4 | 6

/** IPv4 dotted decimal (no leading zeros beyond a single 0, no zone) to 4 network-order bytes. */
function ipv4Bytes(text: string): Buffer | undefined {
  const parts = text.split('.')
  if (parts.length !== 4) return undefined
  const out = Buffer.alloc(4)
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!
    if (!/^(0|[1-9]\d{0,2})$/.test(p)) return undefined
    const n = Number(p)
    if (n > 255) return undefined
    out[i] = n
  }
  return out
}

/** IPv6 text (RFC 4291 §2.2, including "::" and a trailing dotted quad; no zone id) to 16 bytes. */
function ipv6Bytes(text: string): Buffer | undefined {
  if (text.includes('%') || text.length === 0) return undefined
  const halves = text.split('::')
  if (halves.length > 2) return undefined
  const groups = (s: string): number[] | undefined => {
    if (s === '') return []
    const out: number[] = []
    const parts = s.split(':')
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i]!
      if (i === parts.length - 1 && p.includes('.')) {
        const v4 = ipv4Bytes(p)
        if (!v4) return undefined
        out.push(v4.readUInt16BE(0), v4.readUInt16BE(2))
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(p)) return undefined
        out.push(parseInt(p, 16))
      }
    }
    return out
  }
  const head = groups(halves[0]!)
  const tail = halves.length === 2 ? groups(halves[1]!) : []
  if (!head || !tail) return undefined
  let all: number[]
  if (halves.length === 2) {
    const fill = 8 - head.length - tail.length
    if (fill < 1) return undefined
    all = [...head, ...new Array<number>(fill).fill(0), ...tail]
  } else {
    all = head
  }
  if (all.length !== 8) return undefined
  const out = Buffer.alloc(16)
  all.forEach((g, i) => out.writeUInt16BE(g, i * 2))
  return out
}

/** Network-order bytes of an IPv4 (4) or IPv6 (16) address; undefined if the text is neither. */
export function ipToBytes(text: string): Buffer | undefined {
  return text.includes(':') ? ipv6Bytes(text) : ipv4Bytes(text)
}

export function ipFamily(text: string): Family | undefined {
  const b = ipToBytes(text)
  return b === undefined ? undefined : b.length === 4 ? 4 : 6
}

/** Canonical text of the address at `offset`: dotted decimal, or RFC 5952 (lower case, longest zero run). */
export function bytesToIp(buf: Buffer, offset: number, family: Family): string {
  if (family === 4) return `${buf[offset]}.${buf[offset + 1]}.${buf[offset + 2]}.${buf[offset + 3]}`
  const g: number[] = []
  for (let i = 0; i < 8; i++) g.push(buf.readUInt16BE(offset + i * 2))
  // RFC 5952 §4.2: compress the longest run of two or more zero groups, the first one on a tie.
  let best = -1
  let bestLen = 1
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++
      continue
    }
    let j = i
    while (j < 8 && g[j] === 0) j++
    if (j - i > bestLen) {
      best = i
      bestLen = j - i
    }
    i = j
  }
  const hex = (xs: number[]): string => xs.map((x) => x.toString(16)).join(':')
  if (best < 0) return hex(g)
  return `${hex(g.slice(0, best))}::${hex(g.slice(best + bestLen))}`
}

/** Canonical form of an address, or undefined if it is not one. */
export function canonicalIp(text: string): string | undefined {
  const b = ipToBytes(text)
  return b === undefined ? undefined : bytesToIp(b, 0, b.length === 4 ? 4 : 6)
}

/**
 * Compare two addresses of one family as unsigned network-order integers (RFC 5798 §6.4.3: "the
 * primary IPvX address of the sender is greater than the local primary IPvX address"). Negative, 0 or
 * positive; addresses that do not parse compare as equal to nothing and sort first.
 */
export function compareIp(a: string, b: string): number {
  const x = ipToBytes(a)
  const y = ipToBytes(b)
  if (!x || !y) return x ? 1 : y ? -1 : 0
  if (x.length !== y.length) return x.length - y.length
  return Buffer.compare(x, y)
}

export function isMulticast(text: string): boolean {
  const b = ipToBytes(text)
  if (!b) return false
  return b.length === 4 ? (b[0]! & 0xf0) === 0xe0 : b[0] === 0xff
}

/** fe80::/10 */
export function isLinkLocalV6(text: string): boolean {
  const b = ipToBytes(text)
  return b !== undefined && b.length === 16 && b[0] === 0xfe && (b[1]! & 0xc0) === 0x80
}

/** "aa:bb:cc:dd:ee:ff" or "aa-bb-..." to 6 bytes. */
export function macToBytes(text: string): Buffer | undefined {
  const parts = text.split(/[:-]/)
  if (parts.length !== 6 || !parts.every((p) => /^[0-9a-fA-F]{2}$/.test(p))) return undefined
  return Buffer.from(parts.map((p) => parseInt(p, 16)))
}

export function bytesToMac(buf: Buffer, offset = 0): string {
  return Array.from(buf.subarray(offset, offset + 6), (x) => x.toString(16).padStart(2, '0')).join(':')
}

/**
 * RFC 1071 one's complement sum of the buffers taken as one byte string (an odd trailing byte is
 * padded with zero), folded to 16 bits. Not complemented: checksum = ~sum & 0xffff.
 */
export function onesComplementSum(parts: readonly Buffer[]): number {
  const data = parts.length === 1 ? parts[0]! : Buffer.concat(parts)
  let sum = 0
  const even = data.length & ~1
  for (let i = 0; i < even; i += 2) sum += data.readUInt16BE(i)
  if (data.length & 1) sum += data[data.length - 1]! << 8
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000)
  return sum
}

/** The Internet checksum of the concatenated buffers (the checksum field must be zero in them). */
export function internetChecksum(parts: readonly Buffer[]): number {
  return ~onesComplementSum(parts) & 0xffff
}
