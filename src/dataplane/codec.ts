// SPDX-License-Identifier: GPL-2.0-only
// Struct codecs for map keys and values. A codec lists the C struct's fields by their C names, in
// order, with explicit padding; it encodes plain objects to the exact bytes the BPF side reads and
// decodes them back. checkAgainstBtf() compares every offset and size with the BTF of the built
// object, so a layout is never "kept in sync by hand".
import net from 'node:net'
import { btfStruct } from '../bpf'
import { ArgumentError, XvsError } from '../errors'

type Scalar = 'u8' | 'u16' | 'u32' | 's32' | 'u64' | 'be16' | 'be32'

export type FieldType =
  | { kind: 'scalar'; t: Scalar }
  | { kind: 'bytes'; size: number }
  | { kind: 'mac' }
  | { kind: 'addr'; familyField: string | number }
  | { kind: 'pad'; size: number }

const SIZES: Record<Scalar, number> = { u8: 1, u16: 2, u32: 4, s32: 4, u64: 8, be16: 2, be32: 4 }

export const u8: FieldType = { kind: 'scalar', t: 'u8' }
export const u16: FieldType = { kind: 'scalar', t: 'u16' }
export const u32: FieldType = { kind: 'scalar', t: 'u32' }
/** __s32, host order. */
export const s32: FieldType = { kind: 'scalar', t: 's32' }
/** Decoded as bigint. */
export const u64: FieldType = { kind: 'scalar', t: 'u64' }
/** Network byte order; decoded as a host number. */
export const be16: FieldType = { kind: 'scalar', t: 'be16' }
export const be32: FieldType = { kind: 'scalar', t: 'be32' }
export const bytes = (size: number): FieldType => ({ kind: 'bytes', size })
/** Six bytes, as "aa:bb:cc:dd:ee:ff". */
export const mac: FieldType = { kind: 'mac' }
/**
 * union xvs_addr (16 bytes): IPv4 in the first 4 bytes, or IPv6; as a string. `family` names the
 * sibling field holding the family, or is the fixed family (AF_INET / AF_INET6) of the field.
 */
export const addr = (family: string | number): FieldType => ({ kind: 'addr', familyField: family })
export const pad = (size: number): FieldType => ({ kind: 'pad', size })

export const AF_INET = 2
export const AF_INET6 = 10

function sizeOf(f: FieldType): number {
  switch (f.kind) {
    case 'scalar': return SIZES[f.t]
    case 'bytes': return f.size
    case 'mac': return 6
    case 'addr': return 16
    case 'pad': return f.size
  }
}

/** Address string -> 16 bytes (IPv4 in the first four) and its family. */
export function encodeAddr(a: string): { bytes: Buffer; family: number } {
  const out = Buffer.alloc(16)
  if (net.isIPv4(a)) {
    encodeV4Into(a, out, 0)
    return { bytes: out, family: AF_INET }
  }
  if (net.isIPv6(a)) {
    let s = a.replace(/%.*$/, '')
    // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two hextets.
    const m = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(s)
    if (m) {
      const o = m[2]!.split('.').map(Number)
      s = `${m[1]}${((o[0]! << 8) | o[1]!).toString(16)}:${((o[2]! << 8) | o[3]!).toString(16)}`
    }
    const [head, tail] = s.split('::') as [string, string | undefined]
    const h = head ? head.split(':') : []
    const tl = tail !== undefined && tail !== '' ? tail.split(':') : []
    const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - tl.length).fill('0'), ...tl]
    groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2))
    return { bytes: out, family: AF_INET6 }
  }
  throw new ArgumentError(`not an IP address: ${JSON.stringify(a)}`)
}

/** A dotted quad that net.isIPv4 accepted, into 4 bytes at `o`. */
function encodeV4Into(a: string, b: Buffer, o: number): void {
  let octet = 0
  let i = o
  for (let k = 0; k < a.length; k++) {
    const c = a.charCodeAt(k)
    if (c === 46) { b[i++] = octet; octet = 0 } else octet = octet * 10 + (c - 48)
  }
  b[i] = octet
}

const MAC_RE = /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i
const HEX2 = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'))

export function decodeAddr(b: Buffer, family: number): string {
  if (family === AF_INET) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`
  if (family === AF_INET6) {
    const g: string[] = []
    for (let i = 0; i < 16; i += 2) g.push(b.readUInt16BE(i).toString(16))
    // Compress the longest run of zero groups (RFC 5952).
    let best = -1, bestLen = 0
    for (let i = 0; i < 8;) {
      if (g[i] !== '0') { i++; continue }
      let j = i
      while (j < 8 && g[j] === '0') j++
      if (j - i > bestLen && j - i > 1) { best = i; bestLen = j - i }
      i = j
    }
    if (best < 0) return g.join(':')
    return `${g.slice(0, best).join(':')}::${g.slice(best + bestLen).join(':')}`
  }
  return family === 0 && b.every((x) => x === 0) ? '' : `?${b.toString('hex')}`
}

export interface FieldSpec { name: string; type: FieldType; offset: number; size: number }

export class StructCodec<T extends object> {
  readonly cName: string
  readonly size: number
  readonly fields: readonly FieldSpec[]

  constructor(cName: string, fields: ReadonlyArray<readonly [string, FieldType]>) {
    this.cName = cName
    let off = 0
    this.fields = fields.map(([name, type]) => {
      const f = { name, type, offset: off, size: sizeOf(type) }
      off += f.size
      return f
    })
    this.size = off
  }

  /** The byte offset of field `name` (checked against BTF with the rest of the layout). */
  offsetOf(name: Extract<keyof T, string>): number {
    const f = this.fields.find((x) => x.name === name)
    if (!f) throw new XvsError('EABI', `struct ${this.cName} has no field ${name}`)
    return f.offset
  }

  /** Encode `v` into a fresh Buffer; missing fields are zero, padding is always zero. */
  encode(v: Partial<T>): Buffer {
    const b = Buffer.alloc(this.size)
    this.encodeInto(v, b, 0)
    return b
  }

  encodeInto(v: Partial<T>, b: Buffer, base: number): void {
    const rec = v as Record<string, unknown>
    for (const f of this.fields) {
      const x = rec[f.name]
      const o = base + f.offset
      const t = f.type
      if (t.kind === 'pad' || x === undefined) continue
      switch (t.kind) {
        case 'scalar': {
          if (t.t === 'u64') { b.writeBigUInt64LE(BigInt(x as bigint | number), o); break }
          if (t.t === 's32') {
            const v = Number(x)
            if (!Number.isInteger(v) || v < -(2 ** 31) || v >= 2 ** 31) throw new ArgumentError(`${this.cName}.${f.name}: ${String(x)} does not fit s32`)
            b.writeInt32LE(v, o)
            break
          }
          const n = Number(x)
          if (!Number.isInteger(n) || n < 0 || n >= 2 ** (8 * SIZES[t.t]))
            throw new ArgumentError(`${this.cName}.${f.name}: ${String(x)} does not fit ${t.t}`)
          if (t.t === 'u8') b.writeUInt8(n, o)
          else if (t.t === 'u16') b.writeUInt16LE(n, o)
          else if (t.t === 'u32') b.writeUInt32LE(n, o)
          else if (t.t === 'be16') b.writeUInt16BE(n, o)
          else b.writeUInt32BE(n, o)
          break
        }
        case 'bytes': {
          const src = x as Buffer
          if (!Buffer.isBuffer(src) || src.length > t.size) throw new ArgumentError(`${this.cName}.${f.name}: want up to ${t.size} bytes`)
          src.copy(b, o)
          break
        }
        case 'mac': {
          const s = String(x)
          if (!MAC_RE.test(s)) throw new ArgumentError(`${this.cName}.${f.name}: bad MAC ${JSON.stringify(s)}`)
          for (let i = 0; i < 6; i++) b[o + i] = parseInt(s.slice(3 * i, 3 * i + 2), 16)
          break
        }
        case 'addr': {
          if (x === '') break
          const text = String(x)
          let family: number
          if (net.isIPv4(text)) {
            encodeV4Into(text, b, o)
            family = AF_INET
          } else {
            const a = encodeAddr(text)
            a.bytes.copy(b, o)
            family = a.family
          }
          if (typeof t.familyField === 'number' && family !== t.familyField)
            throw new ArgumentError(`${this.cName}.${f.name}: ${text} is not an ${t.familyField === AF_INET ? 'IPv4' : 'IPv6'} address`)
          // Fill in the family field when the caller left it out.
          if (typeof t.familyField === 'string' && rec[t.familyField] === undefined) {
            const ff = this.fields.find((g) => g.name === t.familyField)
            if (ff) b.writeUInt8(family, base + ff.offset)
          }
          break
        }
      }
    }
  }

  decode(b: Buffer, base = 0): T {
    if (b.length - base < this.size) throw new XvsError('EABI', `${this.cName}: need ${this.size} bytes, got ${b.length - base}`)
    const out: Record<string, unknown> = {}
    const addrs: FieldSpec[] = []
    for (const f of this.fields) {
      const o = base + f.offset
      const t = f.type
      switch (t.kind) {
        case 'pad': break
        case 'scalar':
          out[f.name] = t.t === 'u8' ? b.readUInt8(o) : t.t === 'u16' ? b.readUInt16LE(o) : t.t === 'u32' ? b.readUInt32LE(o)
            : t.t === 's32' ? b.readInt32LE(o) : t.t === 'u64' ? b.readBigUInt64LE(o) : t.t === 'be16' ? b.readUInt16BE(o) : b.readUInt32BE(o)
          break
        case 'bytes': out[f.name] = Buffer.from(b.subarray(o, o + t.size)); break
        case 'mac': out[f.name] = `${HEX2[b[o]!]}:${HEX2[b[o + 1]!]}:${HEX2[b[o + 2]!]}:${HEX2[b[o + 3]!]}:${HEX2[b[o + 4]!]}:${HEX2[b[o + 5]!]}`; break
        case 'addr': addrs.push(f); break
      }
    }
    for (const f of addrs) {
      const t = f.type as { kind: 'addr'; familyField: string | number }
      const family = typeof t.familyField === 'number' ? t.familyField : Number(out[t.familyField] ?? 0)
      const raw = b.subarray(base + f.offset, base + f.offset + 16)
      // An all-zero fixed-family address means "unset" (the ABI's zero defaults).
      out[f.name] = typeof t.familyField === 'number' && raw.every((x) => x === 0) ? '' : decodeAddr(raw, family)
    }
    return out as T
  }

  /**
   * Compare with the struct of the same C name in an object file's BTF: total size, and every
   * field's offset and size (padding included). Returns the differences, empty when they agree.
   */
  diffAgainstBtf(objectPath: string): string[] {
    const s = btfStruct(objectPath, this.cName)
    const diffs: string[] = []
    if (s.size !== this.size) diffs.push(`struct ${this.cName}: size ${this.size} here, ${s.size} in BTF`)
    const btfNames = s.members.map((m) => m.name)
    const ours = this.fields.map((f) => f.name)
    if (btfNames.join(',') !== ours.join(','))
      diffs.push(`struct ${this.cName}: fields [${ours.join(', ')}] here, [${btfNames.join(', ')}] in BTF`)
    for (const m of s.members) {
      const f = this.fields.find((x) => x.name === m.name)
      if (!f) continue
      if (m.bitSize) diffs.push(`${this.cName}.${m.name} is a bitfield in BTF`)
      if (f.offset !== m.offset) diffs.push(`${this.cName}.${m.name}: offset ${f.offset} here, ${m.offset} in BTF`)
      if (f.size !== m.size) diffs.push(`${this.cName}.${m.name}: size ${f.size} here, ${m.size} in BTF`)
    }
    return diffs
  }
}

export function defineStruct<T extends object>(cName: string, fields: ReadonlyArray<readonly [string, FieldType]>): StructCodec<T> {
  return new StructCodec<T>(cName, fields)
}
