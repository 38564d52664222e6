// SPDX-License-Identifier: GPL-2.0-only
// Packets for tests and benchmarks: builders, a parser, and a checksum verifier.
//
// Builders nest like the headers they write and compute every length and checksum:
//
//   ether({ dst, src, vlan: 100 },
//     ipv4({ src: '10.0.0.1', dst: '10.0.0.10', df: true },
//       tcp({ sport: 40000, dport: 80, flags: 'S', options: [{ kind: 'mss', value: 1460 }] })))
//
// An IP packet is itself a payload of IP (protocol 4 / 41), so tunnels are ipv4(outer, ipv6(inner, ...)),
// and an ICMP error quotes one: icmp4({ type: 3, code: 4, mtu: 1400, body: ipv4(...), bodyLength: 28 }).
// Every field a receiver checks can be overridden (lengths, header lengths, versions, checksums), so
// malformed packets are built the same way as good ones.
//
// parseFrame() decodes a frame back into fields (addresses as strings, raw header bytes kept) for
// field-by-field assertions. verifyChecksums() checks every checksum of a frame — IPv4 headers, TCP,
// UDP, ICMP, ICMPv6, inner packets of tunnels, the header quoted by an ICMP error — with an RFC 1071
// sum written apart from the builders' (it adds even and odd bytes in two accumulators, the builders
// add 16-bit words), so one implementation's mistake cannot hide the other's.
import net from 'node:net'
import { XvsError } from '../errors'

/** A packet that cannot be built or parsed as asked. */
export class PacketError extends XvsError {
  constructor(message: string) {
    super('EPACKET', message)
  }
}

// --- numbers -----------------------------------------------------------------------------------------

export const EtherType = { IPV4: 0x0800, ARP: 0x0806, VLAN: 0x8100, QINQ: 0x88a8, IPV6: 0x86dd } as const

export const IpProto = {
  HOPOPTS: 0, ICMP: 1, IPIP: 4, TCP: 6, UDP: 17, IPV6: 41, ROUTING: 43, FRAGMENT: 44, ICMPV6: 58, NONE: 59,
  DSTOPTS: 60,
} as const

/** TCP flag bits (byte 13 of the header). */
export const TcpFlag = { FIN: 0x01, SYN: 0x02, RST: 0x04, PSH: 0x08, ACK: 0x10, URG: 0x20, ECE: 0x40, CWR: 0x80 } as const

export const IcmpType = {
  ECHO_REPLY: 0, DEST_UNREACH: 3, SOURCE_QUENCH: 4, REDIRECT: 5, ECHO_REQUEST: 8, TIME_EXCEEDED: 11,
  PARAMETER_PROBLEM: 12,
} as const

/** Codes of ICMP destination unreachable. */
export const IcmpUnreachCode = { NET: 0, HOST: 1, PROTOCOL: 2, PORT: 3, FRAG_NEEDED: 4 } as const

export const Icmp6Type = {
  DEST_UNREACH: 1, PACKET_TOO_BIG: 2, TIME_EXCEEDED: 3, PARAM_PROBLEM: 4, ECHO_REQUEST: 128, ECHO_REPLY: 129,
  NEIGHBOR_SOLICIT: 135, NEIGHBOR_ADVERT: 136,
} as const

const ICMP4_ERRORS: ReadonlySet<number> = new Set([3, 4, 5, 11, 12])
const ICMP6_ERRORS: ReadonlySet<number> = new Set([1, 2, 3, 4])
const IPV6_EXT: ReadonlySet<number> = new Set([IpProto.HOPOPTS, IpProto.ROUTING, IpProto.FRAGMENT, IpProto.DSTOPTS])

// --- addresses ---------------------------------------------------------------------------------------

/** "aa:bb:cc:dd:ee:ff" -> 6 bytes. */
export function macBytes(mac: string): Buffer {
  if (!/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i.test(mac)) throw new PacketError(`bad MAC address ${JSON.stringify(mac)}`)
  return Buffer.from(mac.replace(/:/g, ''), 'hex')
}

/** 6 bytes -> "aa:bb:cc:dd:ee:ff" (lower case). */
export function macString(b: Uint8Array): string {
  return [...b.subarray(0, 6)].map((x) => x.toString(16).padStart(2, '0')).join(':')
}

/** An IPv4 (4 bytes) or IPv6 (16 bytes) address in network order. */
export function ipBytes(addr: string): Buffer {
  if (net.isIPv4(addr)) return Buffer.from(addr.split('.').map(Number))
  if (!net.isIPv6(addr)) throw new PacketError(`not an IP address: ${JSON.stringify(addr)}`)
  let s = addr
  const v4tail = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(s)
  if (v4tail) {
    const o = v4tail[2]!.split('.').map(Number)
    s = `${v4tail[1]}${((o[0]! << 8) | o[1]!).toString(16)}:${((o[2]! << 8) | o[3]!).toString(16)}`
  }
  const [head, tail] = s.split('::') as [string, string | undefined]
  const h = head === '' ? [] : head.split(':')
  const tl = tail === undefined || tail === '' ? [] : tail.split(':')
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - tl.length).fill('0'), ...tl]
  const out = Buffer.alloc(16)
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), 2 * i))
  return out
}

/** 4 or 16 bytes -> the address in its canonical text form (RFC 5952 for IPv6). */
export function ipString(b: Uint8Array): string {
  if (b.length === 4) return [...b].join('.')
  if (b.length !== 16) throw new PacketError(`an address has 4 or 16 bytes, not ${b.length}`)
  const g: number[] = []
  for (let i = 0; i < 16; i += 2) g.push((b[i]! << 8) | b[i + 1]!)
  let best = -1
  let bestLen = 1
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) { i++; continue }
    let j = i
    while (j < 8 && g[j] === 0) j++
    if (j - i > bestLen) { best = i; bestLen = j - i }
    i = j
  }
  const hex = (xs: number[]): string => xs.map((x) => x.toString(16)).join(':')
  return best < 0 ? hex(g) : `${hex(g.slice(0, best))}::${hex(g.slice(best + bestLen))}`
}

function familyOf(addr: string): 4 | 6 {
  if (net.isIPv4(addr)) return 4
  if (net.isIPv6(addr)) return 6
  throw new PacketError(`not an IP address: ${JSON.stringify(addr)}`)
}

// --- the builders' checksum (16-bit words) -----------------------------------------------------------

function wordSum(parts: readonly Uint8Array[]): number {
  // Parts are concatenated logically; a part of odd length shifts the next part's byte alignment.
  let sum = 0
  let carry = -1
  for (const p of parts) {
    let i = 0
    if (carry >= 0 && p.length > 0) { sum += (carry << 8) | p[0]!; carry = -1; i = 1 }
    for (; i + 1 < p.length; i += 2) sum += (p[i]! << 8) | p[i + 1]!
    if (i < p.length) carry = p[i]!
    if (sum > 0x7fffffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000)
  }
  if (carry >= 0) sum += carry << 8
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000)
  return sum
}

/** The Internet checksum (RFC 1071) of the concatenated parts, as stored in a header. */
export function internetChecksum(...parts: Uint8Array[]): number {
  return ~wordSum(parts) & 0xffff
}

function pseudoHeader(family: 4 | 6, src: Buffer, dst: Buffer, proto: number, length: number): Buffer {
  if (family === 4) {
    const b = Buffer.alloc(12)
    src.copy(b, 0); dst.copy(b, 4)
    b[9] = proto
    b.writeUInt16BE(length, 10)
    return b
  }
  const b = Buffer.alloc(40)
  src.copy(b, 0); dst.copy(b, 16)
  b.writeUInt32BE(length, 32)
  b[39] = proto
  return b
}

// --- layers ------------------------------------------------------------------------------------------

/** The IP header a transport header is built under: its addresses give the pseudo-header. */
export interface IpContext { family: 4 | 6; src: Buffer; dst: Buffer }

/** Something an IP packet carries: TCP, UDP, ICMP, ICMPv6, raw bytes, or another IP packet. */
export interface IpPayload {
  /** IPv4 protocol / IPv6 next header. */
  readonly proto: number
  encode(ip: IpContext): Buffer
}

/** Something an Ethernet frame carries. */
export interface EtherPayload {
  readonly etherType: number
  bytes(): Buffer
}

/** An IPv4 or IPv6 packet: an Ethernet payload, and an IP payload (tunnels). */
export interface IpPacket extends IpPayload, EtherPayload {
  readonly family: 4 | 6
  readonly src: string
  readonly dst: string
}

type Bytes = Buffer | Uint8Array | string

function toBuffer(b: Bytes | undefined): Buffer {
  if (b === undefined) return Buffer.alloc(0)
  if (typeof b === 'string') return Buffer.from(b, 'utf8')
  return Buffer.from(b)
}

function checkField(name: string, v: number, bits: number): number {
  if (!Number.isInteger(v) || v < 0 || v >= 2 ** bits) throw new PacketError(`${name} ${v} does not fit ${bits} bits`)
  return v
}

// --- TCP ---------------------------------------------------------------------------------------------

export type TcpOption =
  | { kind: 'eol' } | { kind: 'nop' }
  | { kind: 'mss'; value: number }
  | { kind: 'wscale'; shift: number }
  | { kind: 'sackOk' }
  | { kind: 'timestamp'; value: number; echo: number }
  | { kind: number; data?: Bytes }

export interface TcpSpec {
  sport: number
  dport: number
  seq?: number
  ack?: number
  /** Flag bits (TcpFlag) or letters: F S R P A U E C, e.g. 'SA' for SYN+ACK. Default none. */
  flags?: number | string
  window?: number
  urgent?: number
  /** Encoded in order and padded with zeros (end of options) to a multiple of 4 bytes. */
  options?: TcpOption[] | Bytes
  payload?: Bytes
  /** Override the header length in 32-bit words (default from the options). */
  dataOffset?: number
  /** Override the checksum (default: correct). */
  checksum?: number
}

const FLAG_LETTERS = 'FSRPAUEC'

/** 'SA' -> 0x12; numbers pass through. */
export function tcpFlags(f: number | string | undefined): number {
  if (f === undefined) return 0
  if (typeof f === 'number') return checkField('TCP flags', f, 8)
  let v = 0
  for (const c of f.toUpperCase()) {
    const i = FLAG_LETTERS.indexOf(c)
    if (i < 0) throw new PacketError(`TCP flag letter ${JSON.stringify(c)}: use ${FLAG_LETTERS}`)
    v |= 1 << i
  }
  return v
}

function encodeTcpOptions(opts: TcpOption[] | Bytes | undefined): Buffer {
  if (opts === undefined) return Buffer.alloc(0)
  if (!Array.isArray(opts)) return padTo(toBuffer(opts as Bytes), 4, 0)
  const parts: Buffer[] = []
  for (const o of opts) {
    switch (o.kind) {
      case 'eol': parts.push(Buffer.from([0])); break
      case 'nop': parts.push(Buffer.from([1])); break
      case 'mss': { const b = Buffer.from([2, 4, 0, 0]); b.writeUInt16BE(o.value, 2); parts.push(b); break }
      case 'wscale': parts.push(Buffer.from([3, 3, o.shift])); break
      case 'sackOk': parts.push(Buffer.from([4, 2])); break
      case 'timestamp': {
        const b = Buffer.alloc(10)
        b[0] = 8; b[1] = 10
        b.writeUInt32BE(o.value >>> 0, 2); b.writeUInt32BE(o.echo >>> 0, 6)
        parts.push(b)
        break
      }
      default: {
        const data = toBuffer((o as { data?: Bytes }).data)
        parts.push(Buffer.concat([Buffer.from([o.kind as number, data.length + 2]), data]))
      }
    }
  }
  return padTo(Buffer.concat(parts), 4, 0)
}

function padTo(b: Buffer, multiple: number, fill: number): Buffer {
  const rest = b.length % multiple
  return rest === 0 ? b : Buffer.concat([b, Buffer.alloc(multiple - rest, fill)])
}

export function tcp(spec: TcpSpec): IpPayload {
  return {
    proto: IpProto.TCP,
    encode(ip: IpContext): Buffer {
      const options = encodeTcpOptions(spec.options)
      const payload = toBuffer(spec.payload)
      const hdrLen = 20 + options.length
      if (hdrLen > 60) throw new PacketError(`TCP options of ${options.length} bytes: at most 40`)
      const h = Buffer.alloc(hdrLen)
      h.writeUInt16BE(checkField('TCP source port', spec.sport, 16), 0)
      h.writeUInt16BE(checkField('TCP destination port', spec.dport, 16), 2)
      h.writeUInt32BE((spec.seq ?? 0) >>> 0, 4)
      h.writeUInt32BE((spec.ack ?? 0) >>> 0, 8)
      h[12] = checkField('TCP data offset', spec.dataOffset ?? hdrLen / 4, 4) << 4
      h[13] = tcpFlags(spec.flags)
      h.writeUInt16BE(checkField('TCP window', spec.window ?? 65535, 16), 14)
      h.writeUInt16BE(checkField('TCP urgent pointer', spec.urgent ?? 0, 16), 18)
      options.copy(h, 20)
      const seg = Buffer.concat([h, payload])
      const sum = spec.checksum ?? internetChecksum(pseudoHeader(ip.family, ip.src, ip.dst, IpProto.TCP, seg.length), seg)
      seg.writeUInt16BE(checkField('TCP checksum', sum, 16), 16)
      return seg
    },
  }
}

// --- UDP ---------------------------------------------------------------------------------------------

export interface UdpSpec {
  sport: number
  dport: number
  payload?: Bytes
  /** Override the length field (default 8 + payload). */
  length?: number
  /** 'none': 0, no checksum (IPv4 only); a number: that value; default: correct (0 sent as 0xffff). */
  checksum?: number | 'none'
}

export function udp(spec: UdpSpec): IpPayload {
  return {
    proto: IpProto.UDP,
    encode(ip: IpContext): Buffer {
      const payload = toBuffer(spec.payload)
      const seg = Buffer.alloc(8 + payload.length)
      seg.writeUInt16BE(checkField('UDP source port', spec.sport, 16), 0)
      seg.writeUInt16BE(checkField('UDP destination port', spec.dport, 16), 2)
      seg.writeUInt16BE(checkField('UDP length', spec.length ?? seg.length, 16), 4)
      payload.copy(seg, 8)
      let sum: number
      if (spec.checksum === 'none') sum = 0
      else if (spec.checksum !== undefined) sum = spec.checksum
      else {
        sum = internetChecksum(pseudoHeader(ip.family, ip.src, ip.dst, IpProto.UDP, seg.length), seg)
        if (sum === 0) sum = 0xffff // RFC 768: a computed 0 is sent as all ones
      }
      seg.writeUInt16BE(checkField('UDP checksum', sum, 16), 6)
      return seg
    },
  }
}

// --- ICMP and ICMPv6 ---------------------------------------------------------------------------------

export interface IcmpSpec {
  type: number
  code?: number
  /**
   * The 4 bytes after the checksum: a Buffer, or a number (big endian). Shortcuts instead: `mtu` (ICMP
   * frag-needed: bytes 6-7; ICMPv6 packet too big: bytes 4-7), `id` and `seq` (echo), `pointer`
   * (parameter problem: first byte).
   */
  rest?: Bytes | number
  mtu?: number
  id?: number
  seq?: number
  pointer?: number
  /** What follows the 8-byte header: data, or a packet an error quotes. */
  body?: Bytes | IpPacket
  /** Keep only this many bytes of the body (an error quotes the start of a packet). */
  bodyLength?: number
  /** Override the checksum (default: correct). */
  checksum?: number
}

function icmpRest(spec: IcmpSpec, v6: boolean): Buffer {
  if (spec.rest !== undefined) {
    if (typeof spec.rest === 'number') { const b = Buffer.alloc(4); b.writeUInt32BE(spec.rest >>> 0); return b }
    const b = toBuffer(spec.rest)
    if (b.length !== 4) throw new PacketError(`ICMP rest of header: 4 bytes, not ${b.length}`)
    return b
  }
  const b = Buffer.alloc(4)
  if (spec.mtu !== undefined) {
    if (v6) b.writeUInt32BE(spec.mtu >>> 0)
    else b.writeUInt16BE(checkField('ICMP next-hop MTU', spec.mtu, 16), 2)
  }
  if (spec.id !== undefined) b.writeUInt16BE(checkField('ICMP id', spec.id, 16), 0)
  if (spec.seq !== undefined) b.writeUInt16BE(checkField('ICMP sequence', spec.seq, 16), 2)
  if (spec.pointer !== undefined) {
    if (v6) b.writeUInt32BE(spec.pointer >>> 0)
    else b[0] = checkField('ICMP pointer', spec.pointer, 8)
  }
  return b
}

function icmpBody(spec: IcmpSpec): Buffer {
  const body = spec.body
  let b: Buffer
  if (body === undefined) b = Buffer.alloc(0)
  else if (typeof body === 'object' && 'etherType' in body && typeof (body as IpPacket).bytes === 'function') b = (body as IpPacket).bytes()
  else b = toBuffer(body as Bytes)
  return spec.bodyLength === undefined ? b : b.subarray(0, spec.bodyLength)
}

function icmpMessage(spec: IcmpSpec, v6: boolean, pseudo: Buffer | null): Buffer {
  const h = Buffer.alloc(8)
  h[0] = checkField('ICMP type', spec.type, 8)
  h[1] = checkField('ICMP code', spec.code ?? 0, 8)
  icmpRest(spec, v6).copy(h, 4)
  const msg = Buffer.concat([h, icmpBody(spec)])
  const sum = spec.checksum ?? (pseudo ? internetChecksum(pseudo, msg) : internetChecksum(msg))
  msg.writeUInt16BE(checkField('ICMP checksum', sum, 16), 2)
  return msg
}

/** ICMP (IPv4): echo, or an error quoting a packet. Checksum over the message, no pseudo-header. */
export function icmp4(spec: IcmpSpec): IpPayload {
  return {
    proto: IpProto.ICMP,
    encode(ip: IpContext): Buffer {
      if (ip.family !== 4) throw new PacketError('ICMP goes in IPv4; use icmp6() in IPv6')
      return icmpMessage(spec, false, null)
    },
  }
}

/** ICMPv6: the checksum covers the IPv6 pseudo-header. */
export function icmp6(spec: IcmpSpec): IpPayload {
  return {
    proto: IpProto.ICMPV6,
    encode(ip: IpContext): Buffer {
      if (ip.family !== 6) throw new PacketError('ICMPv6 goes in IPv6; use icmp4() in IPv4')
      const len = 8 + icmpBody(spec).length
      return icmpMessage(spec, true, pseudoHeader(6, ip.src, ip.dst, IpProto.ICMPV6, len))
    },
  }
}

/** Any bytes as an IP payload of protocol `proto` (nothing computed). */
export function rawPayload(proto: number, data: Bytes): IpPayload {
  const b = toBuffer(data)
  return { proto: checkField('protocol', proto, 8), encode: () => Buffer.from(b) }
}

// --- IPv4 --------------------------------------------------------------------------------------------

export type Ipv4Option = { type: number; data?: Bytes }

export interface Ipv4Spec {
  src: string
  dst: string
  tos?: number
  id?: number
  /** Don't fragment. Default false. */
  df?: boolean
  /** More fragments. */
  mf?: boolean
  /** Fragment offset in 8-byte units. */
  fragOffset?: number
  ttl?: number
  /** Options: raw bytes, or a list (types 0 and 1 are one byte; others type, length, data); padded with 0. */
  options?: Bytes | Ipv4Option[]
  /** Override the protocol (default: the payload's). */
  proto?: number
  /** Overrides for malformed packets: header length in words, total length, version, checksum. */
  ihl?: number
  totalLength?: number
  version?: number
  checksum?: number
}

function encodeIpv4Options(opts: Bytes | Ipv4Option[] | undefined): Buffer {
  if (opts === undefined) return Buffer.alloc(0)
  if (!Array.isArray(opts)) return padTo(toBuffer(opts as Bytes), 4, 0)
  const parts = opts.map((o) => {
    if (o.type === 0 || o.type === 1) return Buffer.from([o.type])
    const data = toBuffer(o.data)
    return Buffer.concat([Buffer.from([checkField('IPv4 option type', o.type, 8), data.length + 2]), data])
  })
  return padTo(Buffer.concat(parts), 4, 0)
}

class Ipv4Packet implements IpPacket {
  readonly family = 4 as const
  readonly etherType = EtherType.IPV4
  readonly proto = IpProto.IPIP
  constructor(private readonly spec: Ipv4Spec, private readonly payload: IpPayload | Bytes) {}

  get src(): string { return this.spec.src }
  get dst(): string { return this.spec.dst }

  encode(): Buffer { return this.bytes() }

  bytes(): Buffer {
    const s = this.spec
    if (familyOf(s.src) !== 4 || familyOf(s.dst) !== 4) throw new PacketError(`IPv4 header with ${s.src} -> ${s.dst}`)
    const src = ipBytes(s.src)
    const dst = ipBytes(s.dst)
    const options = encodeIpv4Options(s.options)
    if (options.length > 40) throw new PacketError(`IPv4 options of ${options.length} bytes: at most 40`)
    const isLayer = typeof this.payload === 'object' && 'encode' in this.payload
    const proto = s.proto ?? (isLayer ? (this.payload as IpPayload).proto : undefined)
    if (proto === undefined) throw new PacketError('IPv4 with a raw payload needs `proto`')
    const body = isLayer ? (this.payload as IpPayload).encode({ family: 4, src, dst }) : toBuffer(this.payload as Bytes)
    const hdrLen = 20 + options.length
    const h = Buffer.alloc(hdrLen)
    h[0] = (checkField('IP version', s.version ?? 4, 4) << 4) | checkField('IPv4 ihl', s.ihl ?? hdrLen / 4, 4)
    h[1] = checkField('IPv4 TOS', s.tos ?? 0, 8)
    h.writeUInt16BE(checkField('IPv4 total length', s.totalLength ?? hdrLen + body.length, 16), 2)
    h.writeUInt16BE(checkField('IPv4 id', s.id ?? 0, 16), 4)
    const frag = (s.df ? 0x4000 : 0) | (s.mf ? 0x2000 : 0) | checkField('IPv4 fragment offset', s.fragOffset ?? 0, 13)
    h.writeUInt16BE(frag, 6)
    h[8] = checkField('IPv4 TTL', s.ttl ?? 64, 8)
    h[9] = checkField('IPv4 protocol', proto, 8)
    src.copy(h, 12)
    dst.copy(h, 16)
    options.copy(h, 20)
    h.writeUInt16BE(checkField('IPv4 checksum', s.checksum ?? internetChecksum(h), 16), 10)
    return Buffer.concat([h, body])
  }
}

/** An IPv4 packet around `payload` (a layer, or raw bytes with `proto`). */
export function ipv4(spec: Ipv4Spec, payload: IpPayload | Bytes): IpPacket {
  return new Ipv4Packet(spec, payload)
}

// --- IPv6 --------------------------------------------------------------------------------------------

export type Ipv6Ext =
  /** Hop-by-hop / destination options: the options (padded with Pad1/PadN to the 8-byte boundary). */
  | { type: 'hopopts' | 'dstopts'; options?: Bytes }
  /** Routing header: `data` is what follows the 4 fixed bytes (reserved/addresses), padded to 8n + 4. */
  | { type: 'routing'; routingType?: number; segmentsLeft: number; data?: Bytes }
  /** Fragment header: offset in 8-byte units. */
  | { type: 'fragment'; offset?: number; more?: boolean; id?: number }

const EXT_NUMBER = { hopopts: IpProto.HOPOPTS, dstopts: IpProto.DSTOPTS, routing: IpProto.ROUTING, fragment: IpProto.FRAGMENT } as const

function padOptions(opts: Buffer, used: number): Buffer {
  // Pad options after `used` fixed bytes to a multiple of 8 with Pad1 (1 byte) or PadN.
  const rest = (8 - ((used + opts.length) % 8)) % 8
  if (rest === 0) return opts
  if (rest === 1) return Buffer.concat([opts, Buffer.from([0])])
  return Buffer.concat([opts, Buffer.from([1, rest - 2]), Buffer.alloc(rest - 2)])
}

function encodeExt(e: Ipv6Ext, next: number): Buffer {
  switch (e.type) {
    case 'hopopts':
    case 'dstopts': {
      const opts = padOptions(toBuffer(e.options), 2)
      const b = Buffer.concat([Buffer.from([next, 0]), opts])
      b[1] = b.length / 8 - 1
      return b
    }
    case 'routing': {
      const data = toBuffer(e.data)
      const fixed = Buffer.from([next, 0, checkField('routing type', e.routingType ?? 0, 8), checkField('segments left', e.segmentsLeft, 8)])
      const b = padTo(Buffer.concat([fixed, data.length === 0 ? Buffer.alloc(4) : data]), 8, 0)
      b[1] = b.length / 8 - 1
      return b
    }
    case 'fragment': {
      const b = Buffer.alloc(8)
      b[0] = next
      b.writeUInt16BE((checkField('fragment offset', e.offset ?? 0, 13) << 3) | (e.more ? 1 : 0), 2)
      b.writeUInt32BE((e.id ?? 0) >>> 0, 4)
      return b
    }
  }
}

export interface Ipv6Spec {
  src: string
  dst: string
  trafficClass?: number
  flowLabel?: number
  hopLimit?: number
  /** Extension headers, in order, between the fixed header and the payload. */
  ext?: Ipv6Ext[]
  /** Overrides: the payload's protocol, the fixed header's next header, payload length, version. */
  proto?: number
  nextHeader?: number
  payloadLength?: number
  version?: number
}

class Ipv6Packet implements IpPacket {
  readonly family = 6 as const
  readonly etherType = EtherType.IPV6
  readonly proto = IpProto.IPV6
  constructor(private readonly spec: Ipv6Spec, private readonly payload: IpPayload | Bytes) {}

  get src(): string { return this.spec.src }
  get dst(): string { return this.spec.dst }

  encode(): Buffer { return this.bytes() }

  bytes(): Buffer {
    const s = this.spec
    if (familyOf(s.src) !== 6 || familyOf(s.dst) !== 6) throw new PacketError(`IPv6 header with ${s.src} -> ${s.dst}`)
    const src = ipBytes(s.src)
    const dst = ipBytes(s.dst)
    const isLayer = typeof this.payload === 'object' && 'encode' in this.payload
    const proto = s.proto ?? (isLayer ? (this.payload as IpPayload).proto : undefined)
    if (proto === undefined) throw new PacketError('IPv6 with a raw payload needs `proto`')
    // The pseudo-header's addresses are the final ones; routing headers here carry no segments to visit.
    const body = isLayer ? (this.payload as IpPayload).encode({ family: 6, src, dst }) : toBuffer(this.payload as Bytes)
    const exts = s.ext ?? []
    const encoded: Buffer[] = []
    let next = proto
    for (let i = exts.length - 1; i >= 0; i--) {
      const e = exts[i]!
      encoded.unshift(encodeExt(e, next))
      next = EXT_NUMBER[e.type]
    }
    const rest = Buffer.concat([...encoded, body])
    const h = Buffer.alloc(40)
    const word0 = ((checkField('IP version', s.version ?? 6, 4) << 28) | (checkField('traffic class', s.trafficClass ?? 0, 8) << 20)
      | checkField('flow label', s.flowLabel ?? 0, 20)) >>> 0
    h.writeUInt32BE(word0, 0)
    h.writeUInt16BE(checkField('IPv6 payload length', s.payloadLength ?? rest.length, 16), 4)
    h[6] = checkField('IPv6 next header', s.nextHeader ?? next, 8)
    h[7] = checkField('IPv6 hop limit', s.hopLimit ?? 64, 8)
    src.copy(h, 8)
    dst.copy(h, 24)
    return Buffer.concat([h, rest])
  }
}

/** An IPv6 packet around `payload` (a layer, or raw bytes with `proto`), with extension headers. */
export function ipv6(spec: Ipv6Spec, payload: IpPayload | Bytes): IpPacket {
  return new Ipv6Packet(spec, payload)
}

/** An IPv4 or IPv6 packet, by the family of `src`. */
export function ip(spec: Ipv4Spec & Ipv6Spec, payload: IpPayload | Bytes): IpPacket {
  return familyOf(spec.src) === 4 ? ipv4(spec, payload) : ipv6(spec, payload)
}

// --- ARP and Ethernet --------------------------------------------------------------------------------

export interface ArpSpec { op?: 'request' | 'reply'; senderMac: string; senderIp: string; targetMac?: string; targetIp: string }

/** An ARP packet for Ethernet/IPv4. */
export function arp(spec: ArpSpec): EtherPayload {
  return {
    etherType: EtherType.ARP,
    bytes(): Buffer {
      const b = Buffer.alloc(28)
      b.writeUInt16BE(1, 0) // Ethernet
      b.writeUInt16BE(EtherType.IPV4, 2)
      b[4] = 6; b[5] = 4
      b.writeUInt16BE(spec.op === 'reply' ? 2 : 1, 6)
      macBytes(spec.senderMac).copy(b, 8)
      ipBytes(spec.senderIp).copy(b, 14)
      macBytes(spec.targetMac ?? '00:00:00:00:00:00').copy(b, 18)
      ipBytes(spec.targetIp).copy(b, 24)
      return b
    },
  }
}

export interface VlanTag {
  id: number
  pcp?: number
  dei?: boolean
  /** 0x8100 (802.1Q, default) or 0x88a8 (802.1ad). */
  tpid?: number
}

export interface EtherSpec {
  dst: string
  src: string
  /** One tag (a VLAN id or a VlanTag), or several, outermost first. */
  vlan?: number | VlanTag | Array<number | VlanTag>
  /** Override the ethertype (default: the payload's). */
  type?: number
  /** Pad the frame with zeros to this many bytes (60: the Ethernet minimum without FCS). */
  padTo?: number
}

/** An Ethernet frame (no FCS) around `payload`; raw bytes need `type`. */
export function ether(spec: EtherSpec, payload: EtherPayload | Bytes): Buffer {
  const isLayer = typeof payload === 'object' && 'etherType' in payload
  const type = spec.type ?? (isLayer ? (payload as EtherPayload).etherType : undefined)
  if (type === undefined) throw new PacketError('an Ethernet frame with a raw payload needs `type`')
  const body = isLayer ? (payload as EtherPayload).bytes() : toBuffer(payload as Bytes)
  const tags = spec.vlan === undefined ? [] : Array.isArray(spec.vlan) ? spec.vlan : [spec.vlan]
  const parts: Buffer[] = [macBytes(spec.dst), macBytes(spec.src)]
  for (const t of tags) {
    const tag: VlanTag = typeof t === 'number' ? { id: t } : t
    const b = Buffer.alloc(4)
    b.writeUInt16BE(checkField('VLAN TPID', tag.tpid ?? EtherType.VLAN, 16), 0)
    b.writeUInt16BE((checkField('VLAN PCP', tag.pcp ?? 0, 3) << 13) | (tag.dei ? 0x1000 : 0) | checkField('VLAN id', tag.id, 12), 2)
    parts.push(b)
  }
  const et = Buffer.alloc(2)
  et.writeUInt16BE(checkField('ethertype', type, 16))
  parts.push(et, body)
  const frame = Buffer.concat(parts)
  return spec.padTo !== undefined && frame.length < spec.padTo ? Buffer.concat([frame, Buffer.alloc(spec.padTo - frame.length)]) : frame
}

// --- parser ------------------------------------------------------------------------------------------

export interface ParsedVlan { tpid: number; pcp: number; dei: boolean; id: number }

export interface ParsedEther {
  dst: string
  src: string
  /** Tags, outermost first (up to two). */
  vlans: ParsedVlan[]
  /** The ethertype after the tags. */
  type: number
  /** Bytes before the network header: 14, 18 or 22. */
  headerLength: number
}

export interface ParsedTcp {
  kind: 'tcp'
  sport: number; dport: number; seq: number; ack: number
  /** In 32-bit words. */
  dataOffset: number
  flags: number
  window: number; checksum: number; urgent: number
  options: Buffer
  payload: Buffer
  /** The whole segment (header and payload). */
  bytes: Buffer
}

export interface ParsedUdp {
  kind: 'udp'
  sport: number; dport: number; length: number; checksum: number
  payload: Buffer
  bytes: Buffer
}

interface ParsedIcmpFields {
  type: number; code: number; checksum: number
  /** The 4 bytes after the checksum. */
  rest: Buffer
  /** Next-hop MTU of ICMP frag-needed (16 bits) or ICMPv6 packet too big (32 bits); else undefined. */
  mtu: number | undefined
  /** Echo id and sequence (ICMP echo request/reply, ICMPv6 128/129). */
  id: number | undefined
  seq: number | undefined
  /** Everything after the 8-byte header. */
  body: Buffer
  /** For errors: the quoted packet, parsed leniently (it is usually cut short). */
  quoted: ParsedIp | undefined
  bytes: Buffer
}

export interface ParsedIcmp extends ParsedIcmpFields { kind: 'icmp' }
export interface ParsedIcmp6 extends ParsedIcmpFields { kind: 'icmp6' }

export interface ParsedRaw { kind: 'raw'; proto: number; bytes: Buffer }

export interface ParsedIpv6Ext {
  type: number
  /** The header's bytes. */
  bytes: Buffer
  /** Routing header: segments left. */
  segmentsLeft?: number
  /** Fragment header fields. */
  fragOffset?: number; more?: boolean; id?: number
}

export interface ParsedIpv4 {
  kind: 'ipv4'
  family: 4
  version: number; ihl: number; headerLength: number; tos: number; totalLength: number; id: number
  df: boolean; mf: boolean; fragOffset: number; ttl: number; protocol: number; checksum: number
  src: string; dst: string
  options: Buffer
  /** The header, options included. */
  header: Buffer
  /** The datagram: header and payload, cut to totalLength (or to what there is, when truncated). */
  bytes: Buffer
  payload: Buffer
  /** Fewer bytes than totalLength (lenient parses only). */
  truncated: boolean
  /** The payload decoded (undefined for a non-first fragment or an unknown protocol left raw). */
  l4: ParsedL4 | undefined
}

export interface ParsedIpv6 {
  kind: 'ipv6'
  family: 6
  version: number; trafficClass: number; flowLabel: number; payloadLength: number; nextHeader: number; hopLimit: number
  src: string; dst: string
  ext: ParsedIpv6Ext[]
  /** The upper-layer protocol after the extension headers. */
  protocol: number
  /** The 40-byte fixed header. */
  header: Buffer
  /** Fixed header, extension headers and payload, cut to 40 + payloadLength. */
  bytes: Buffer
  /** The upper-layer bytes (after the extension headers). */
  payload: Buffer
  truncated: boolean
  l4: ParsedL4 | undefined
}

export type ParsedIp = ParsedIpv4 | ParsedIpv6
export type ParsedL4 = ParsedTcp | ParsedUdp | ParsedIcmp | ParsedIcmp6 | ParsedIp | ParsedRaw

export interface ParsedFrame {
  eth: ParsedEther
  /** The network layer, if the ethertype is IPv4 or IPv6. */
  ip: ParsedIp | undefined
  /** Bytes after the IP datagram (Ethernet padding). */
  trailer: Buffer
  bytes: Buffer
}

export interface ParseOptions {
  /** Throw PacketError on any truncation or impossible field (default true); else parse what is there. */
  strict?: boolean
}

class Cursor {
  constructor(readonly strict: boolean) {}
  fail(msg: string): void {
    if (this.strict) throw new PacketError(msg)
  }
}

export function parseEther(b: Buffer): ParsedEther {
  if (b.length < 14) throw new PacketError(`Ethernet frame of ${b.length} bytes: at least 14`)
  let off = 12
  let type = b.readUInt16BE(off)
  const vlans: ParsedVlan[] = []
  while ((type === EtherType.VLAN || type === EtherType.QINQ) && vlans.length < 2) {
    if (b.length < off + 6) throw new PacketError(`VLAN tag at ${off} runs past the frame (${b.length} bytes)`)
    const tci = b.readUInt16BE(off + 2)
    vlans.push({ tpid: type, pcp: tci >> 13, dei: (tci & 0x1000) !== 0, id: tci & 0xfff })
    off += 4
    type = b.readUInt16BE(off)
  }
  return { dst: macString(b.subarray(0, 6)), src: macString(b.subarray(6, 12)), vlans, type, headerLength: off + 2 }
}

function parseL4(proto: number, b: Buffer, c: Cursor, depth: number): ParsedL4 {
  switch (proto) {
    case IpProto.TCP: {
      if (b.length < 20) { c.fail(`TCP header of ${b.length} bytes`); return { kind: 'raw', proto, bytes: b } }
      const dataOffset = b[12]! >> 4
      const hl = dataOffset * 4
      if (hl < 20 || hl > b.length) c.fail(`TCP data offset ${dataOffset} with ${b.length} bytes`)
      const end = Math.min(Math.max(hl, 20), b.length)
      return {
        kind: 'tcp', sport: b.readUInt16BE(0), dport: b.readUInt16BE(2), seq: b.readUInt32BE(4), ack: b.readUInt32BE(8),
        dataOffset, flags: b[13]!, window: b.readUInt16BE(14), checksum: b.readUInt16BE(16), urgent: b.readUInt16BE(18),
        options: b.subarray(20, end), payload: b.subarray(end), bytes: b,
      }
    }
    case IpProto.UDP: {
      if (b.length < 8) { c.fail(`UDP header of ${b.length} bytes`); return { kind: 'raw', proto, bytes: b } }
      const length = b.readUInt16BE(4)
      if (length < 8 || length > b.length) c.fail(`UDP length ${length} with ${b.length} bytes`)
      return {
        kind: 'udp', sport: b.readUInt16BE(0), dport: b.readUInt16BE(2), length, checksum: b.readUInt16BE(6),
        payload: b.subarray(8, Math.max(8, Math.min(length, b.length))), bytes: b,
      }
    }
    case IpProto.ICMP:
    case IpProto.ICMPV6: {
      if (b.length < 8) { c.fail(`ICMP header of ${b.length} bytes`); return { kind: 'raw', proto, bytes: b } }
      const v6 = proto === IpProto.ICMPV6
      const type = b[0]!
      const code = b[1]!
      const rest = b.subarray(4, 8)
      const isError = v6 ? ICMP6_ERRORS.has(type) : ICMP4_ERRORS.has(type)
      const isEcho = v6 ? type === 128 || type === 129 : type === 0 || type === 8
      let mtu: number | undefined
      if (!v6 && type === IcmpType.DEST_UNREACH && code === IcmpUnreachCode.FRAG_NEEDED) mtu = rest.readUInt16BE(2)
      if (v6 && type === Icmp6Type.PACKET_TOO_BIG) mtu = rest.readUInt32BE(0)
      const body = b.subarray(8)
      const fields: ParsedIcmpFields = {
        type, code, checksum: b.readUInt16BE(2), rest, mtu,
        id: isEcho ? rest.readUInt16BE(0) : undefined, seq: isEcho ? rest.readUInt16BE(2) : undefined,
        body, quoted: isError && depth < 4 ? parseIpLenient(body, depth + 1) : undefined, bytes: b,
      }
      return v6 ? { kind: 'icmp6', ...fields } : { kind: 'icmp', ...fields }
    }
    case IpProto.IPIP:
    case IpProto.IPV6:
      if (depth >= 4) return { kind: 'raw', proto, bytes: b }
      return parseIpAt(b, proto === IpProto.IPIP ? 4 : 6, c, depth + 1)
    default:
      return { kind: 'raw', proto, bytes: b }
  }
}

function parseIpLenient(b: Buffer, depth: number): ParsedIp | undefined {
  if (b.length < 1) return undefined
  const v = b[0]! >> 4
  if ((v === 4 && b.length >= 20) || (v === 6 && b.length >= 40)) return parseIpAt(b, v, new Cursor(false), depth)
  return undefined
}

function parseIpAt(b: Buffer, family: 4 | 6, c: Cursor, depth: number): ParsedIp {
  return family === 4 ? parseIpv4At(b, c, depth) : parseIpv6At(b, c, depth)
}

function parseIpv4At(b: Buffer, c: Cursor, depth: number): ParsedIpv4 {
  if (b.length < 20) throw new PacketError(`IPv4 header of ${b.length} bytes`)
  const version = b[0]! >> 4
  const ihl = b[0]! & 0xf
  if (version !== 4) c.fail(`IPv4 version field ${version}`)
  if (ihl < 5) c.fail(`IPv4 ihl ${ihl}`)
  const headerLength = Math.max(ihl, 5) * 4
  const totalLength = b.readUInt16BE(2)
  if (totalLength < headerLength) c.fail(`IPv4 total length ${totalLength} under the header length ${headerLength}`)
  const truncated = totalLength > b.length || headerLength > b.length
  if (truncated) c.fail(`IPv4 total length ${totalLength} with ${b.length} bytes`)
  const end = Math.min(Math.max(totalLength, Math.min(headerLength, b.length)), b.length)
  const hdrEnd = Math.min(headerLength, b.length)
  const frag = b.readUInt16BE(6)
  const protocol = b[9]!
  const fragOffset = frag & 0x1fff
  const payload = b.subarray(hdrEnd, end)
  return {
    kind: 'ipv4', family: 4, version, ihl, headerLength, tos: b[1]!, totalLength, id: b.readUInt16BE(4),
    df: (frag & 0x4000) !== 0, mf: (frag & 0x2000) !== 0, fragOffset, ttl: b[8]!, protocol, checksum: b.readUInt16BE(10),
    src: ipString(b.subarray(12, 16)), dst: ipString(b.subarray(16, 20)), options: b.subarray(20, hdrEnd),
    header: b.subarray(0, hdrEnd), bytes: b.subarray(0, end), payload, truncated,
    l4: fragOffset === 0 ? parseL4(protocol, payload, (frag & 0x2000) !== 0 || truncated ? new Cursor(false) : c, depth) : undefined,
  }
}

function parseIpv6At(b: Buffer, c: Cursor, depth: number): ParsedIpv6 {
  if (b.length < 40) throw new PacketError(`IPv6 header of ${b.length} bytes`)
  const w0 = b.readUInt32BE(0)
  const version = w0 >>> 28
  if (version !== 6) c.fail(`IPv6 version field ${version}`)
  const payloadLength = b.readUInt16BE(4)
  const truncated = 40 + payloadLength > b.length
  if (truncated) c.fail(`IPv6 payload length ${payloadLength} with ${b.length - 40} bytes`)
  const end = Math.min(40 + payloadLength, b.length)
  const nextHeader = b[6]!
  const ext: ParsedIpv6Ext[] = []
  let proto = nextHeader
  let off = 40
  let fragmentTail = false
  while (IPV6_EXT.has(proto) && ext.length < 16) {
    const len = proto === IpProto.FRAGMENT ? 8 : off + 2 <= end ? (b[off + 1]! + 1) * 8 : 8
    if (off + len > end) { c.fail(`IPv6 extension header ${proto} at ${off} runs past the packet`); break }
    const e: ParsedIpv6Ext = { type: proto, bytes: b.subarray(off, off + len) }
    if (proto === IpProto.ROUTING) e.segmentsLeft = b[off + 3]!
    if (proto === IpProto.FRAGMENT) {
      const fo = b.readUInt16BE(off + 2)
      e.fragOffset = fo >> 3
      e.more = (fo & 1) !== 0
      e.id = b.readUInt32BE(off + 4)
      if (e.fragOffset !== 0) fragmentTail = true
    }
    ext.push(e)
    proto = b[off]!
    off += len
  }
  const payload = b.subarray(Math.min(off, end), end)
  return {
    kind: 'ipv6', family: 6, version, trafficClass: (w0 >>> 20) & 0xff, flowLabel: w0 & 0xfffff, payloadLength, nextHeader,
    hopLimit: b[7]!, src: ipString(b.subarray(8, 24)), dst: ipString(b.subarray(24, 40)), ext, protocol: proto,
    header: b.subarray(0, 40), bytes: b.subarray(0, end), payload, truncated,
    l4: fragmentTail || IPV6_EXT.has(proto) ? undefined : parseL4(proto, payload, truncated ? new Cursor(false) : c, depth),
  }
}

/** Decode an IP packet (no Ethernet header). */
export function parseIp(b: Buffer, opts: ParseOptions = {}): ParsedIp {
  if (b.length < 1) throw new PacketError('empty IP packet')
  const v = b[0]! >> 4
  if (v !== 4 && v !== 6) throw new PacketError(`IP version ${v}`)
  return parseIpAt(b, v, new Cursor(opts.strict ?? true), 0)
}

/** Decode an Ethernet frame down to its innermost transport header. */
export function parseFrame(b: Buffer, opts: ParseOptions = {}): ParsedFrame {
  const eth = parseEther(b)
  const c = new Cursor(opts.strict ?? true)
  const rest = b.subarray(eth.headerLength)
  let ip: ParsedIp | undefined
  if (eth.type === EtherType.IPV4) ip = parseIpv4At(rest, c, 0)
  else if (eth.type === EtherType.IPV6) ip = parseIpv6At(rest, c, 0)
  const used = eth.headerLength + (ip ? ip.bytes.length : rest.length)
  return { eth, ip, trailer: b.subarray(used), bytes: b }
}

/** The packet a tunnel carries: the IP payload of `ip` when it is itself IP. */
export function innerIp(ip: ParsedIp | undefined): ParsedIp | undefined {
  const l4 = ip?.l4
  return l4 && (l4.kind === 'ipv4' || l4.kind === 'ipv6') ? l4 : undefined
}

/** The transport header of `ip`, asserting its kind. */
export function l4Of<K extends ParsedL4['kind']>(ip: ParsedIp | undefined, kind: K): Extract<ParsedL4, { kind: K }> {
  const l4 = ip?.l4
  if (!l4 || l4.kind !== kind) throw new PacketError(`expected ${kind}, found ${l4?.kind ?? 'nothing'}`)
  return l4 as Extract<ParsedL4, { kind: K }>
}

// --- the verifier's checksum: RFC 1071 again, written differently -------------------------------------

/**
 * The one's-complement sum of the concatenated parts, folded to 16 bits, NOT complemented. Written
 * apart from the builders' word loop: bytes at even and odd positions of the whole byte stream go to
 * two accumulators, joined as even * 256 + odd at the end (RFC 1071, "byte order independence").
 */
export function onesSum(...parts: Uint8Array[]): number {
  let even = 0
  let odd = 0
  let pos = 0
  for (const p of parts) {
    for (const byte of p) {
      if ((pos & 1) === 0) even += byte
      else odd += byte
      pos++
    }
  }
  let s = even * 256 + odd
  while (s > 0xffff) s = (s % 0x10000) + Math.floor(s / 0x10000)
  return s
}

export interface ChecksumCheck {
  /** Which checksum: "ipv4 header", "tcp", "inner ipv4 header", "quoted ipv4 header", ... */
  what: string
  ok: boolean
  /** The value in the packet. */
  stored: number
  /** The value the packet should carry (computed with the field zeroed). */
  expected: number
}

function check(what: string, stored: number, withField: Uint8Array[], zeroed: Uint8Array[]): ChecksumCheck {
  const total = onesSum(...withField)
  return { what, ok: total === 0xffff, stored, expected: ~onesSum(...zeroed) & 0xffff }
}

function zeroAt(b: Buffer, off: number): Buffer {
  const c = Buffer.from(b)
  c[off] = 0
  c[off + 1] = 0
  return c
}

function verifierPseudo(ip: ParsedIp, proto: number, length: number): Buffer {
  // Independent of pseudoHeader() above: built from the header bytes themselves.
  if (ip.kind === 'ipv4') {
    const b = Buffer.alloc(12)
    ip.header.copy(b, 0, 12, 20)
    b[9] = proto
    b[10] = length >> 8
    b[11] = length & 0xff
    return b
  }
  const b = Buffer.alloc(40)
  ip.header.copy(b, 0, 8, 40)
  b[32] = (length >>> 24) & 0xff; b[33] = (length >>> 16) & 0xff; b[34] = (length >>> 8) & 0xff; b[35] = length & 0xff
  b[39] = proto
  return b
}

function verifyIp(ip: ParsedIp, prefix: string, out: ChecksumCheck[], quoted: boolean): void {
  const name = `${prefix}${ip.kind}`
  if (ip.kind === 'ipv4' && ip.header.length >= 20) {
    out.push(check(`${name} header`, ip.checksum, [ip.header], [zeroAt(ip.header, 10)]))
  }
  // A quoted packet is cut short: only its IP header is whole. A fragment's transport checksum
  // covers the reassembled datagram: not checkable here.
  const fragment = ip.kind === 'ipv4' ? ip.mf || ip.fragOffset !== 0 : ip.ext.some((e) => e.type === IpProto.FRAGMENT)
  if (quoted || fragment || ip.truncated || ip.l4 === undefined) return
  const l4 = ip.l4
  const seg = l4.bytes
  switch (l4.kind) {
    case 'tcp': {
      const ph = verifierPseudo(ip, IpProto.TCP, seg.length)
      out.push(check(`${prefix}tcp`, l4.checksum, [ph, seg], [ph, zeroAt(seg, 16)]))
      break
    }
    case 'udp': {
      const ph = verifierPseudo(ip, IpProto.UDP, seg.length)
      if (l4.checksum === 0 && ip.kind === 'ipv4') {
        out.push({ what: `${prefix}udp (none)`, ok: true, stored: 0, expected: 0 })
      } else {
        out.push(check(`${prefix}udp`, l4.checksum, [ph, seg], [ph, zeroAt(seg, 6)]))
      }
      break
    }
    case 'icmp':
    case 'icmp6': {
      if (l4.kind === 'icmp') out.push(check(`${prefix}icmp`, l4.checksum, [seg], [zeroAt(seg, 2)]))
      else {
        const ph = verifierPseudo(ip, IpProto.ICMPV6, seg.length)
        out.push(check(`${prefix}icmp6`, l4.checksum, [ph, seg], [ph, zeroAt(seg, 2)]))
      }
      if (l4.quoted) verifyIp(l4.quoted, `${prefix}quoted `, out, true)
      break
    }
    case 'ipv4':
    case 'ipv6':
      verifyIp(l4, `${prefix}inner `, out, false)
      break
    case 'raw':
      break
  }
}

/**
 * Every checksum in `packet` — an Ethernet frame (a Buffer), a parsed frame, or a parsed IP packet
 * (parseIp) — checked with the verifier's own sum: IPv4 headers, TCP,
 * UDP (0 in IPv4: none, accepted), ICMP, ICMPv6, recursively through tunnels, and the IPv4 header an
 * ICMP error quotes. An empty list means the frame holds no checksum (ARP, a fragment's tail).
 */
export function verifyChecksums(packet: Buffer | ParsedFrame | ParsedIp): ChecksumCheck[] {
  const out: ChecksumCheck[] = []
  let ip: ParsedIp | undefined
  if (Buffer.isBuffer(packet)) ip = parseFrame(packet).ip
  else if ('eth' in packet) ip = packet.ip
  else ip = packet
  if (ip) verifyIp(ip, '', out, false)
  return out
}

// --- diagnostics -------------------------------------------------------------------------------------

/** Offset of the first byte where a and b differ (a length difference counts), or -1. */
export function firstDifference(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i
  return a.length === b.length ? -1 : n
}

/** One line about a frame, for test messages: "02:..>02:.. vlan 7 ipv4 10.0.0.1 > 10.0.0.10 tcp 40000 > 80 [S]". */
export function describeFrame(b: Buffer): string {
  let f: ParsedFrame
  try { f = parseFrame(b, { strict: false }) } catch (e) { return `unparsable (${(e as Error).message})` }
  const parts = [`${f.eth.src} > ${f.eth.dst}`]
  for (const v of f.eth.vlans) parts.push(`vlan ${v.id}`)
  let ip = f.ip
  if (!ip) parts.push(`ethertype 0x${f.eth.type.toString(16).padStart(4, '0')}`)
  while (ip) {
    parts.push(`${ip.kind} ${ip.src} > ${ip.dst} len ${ip.bytes.length}`)
    const l4 = ip.l4
    ip = undefined
    if (!l4) break
    if (l4.kind === 'ipv4' || l4.kind === 'ipv6') { ip = l4; continue }
    if (l4.kind === 'tcp') {
      const fl = [...FLAG_LETTERS].filter((_, i) => l4.flags & (1 << i)).join('')
      parts.push(`tcp ${l4.sport} > ${l4.dport} [${fl}]`)
    } else if (l4.kind === 'udp') parts.push(`udp ${l4.sport} > ${l4.dport}`)
    else if (l4.kind === 'raw') parts.push(`proto ${l4.proto}`)
    else parts.push(`${l4.kind} type ${l4.type} code ${l4.code}`)
  }
  return parts.join(' ')
}
