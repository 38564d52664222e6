// SPDX-License-Identifier: GPL-2.0-only
// The packet library (src/lab/packet.ts): both checksum sums against known answers and each other,
// every builder's bytes, parse(build(x)) field by field, and the verifier catching corruption.
import t, { type Test } from 'tap'
import {
  arp, describeFrame, ether, EtherType, firstDifference, icmp4, icmp6, innerIp, internetChecksum, ipBytes, ipString, ipv4,
  ipv6, IpProto, l4Of, macBytes, macString, onesSum, PacketError, parseFrame, parseIp, rawPayload, tcp, tcpFlags, TcpFlag,
  udp, verifyChecksums, type ChecksumCheck,
} from '../../src/lab/packet'

const MAC_A = '02:00:00:00:00:01'
const MAC_B = '02:00:00:00:00:02'

function allOk(t: Test, checks: ChecksumCheck[], n: number, label: string): void {
  t.equal(checks.length, n, `${label}: ${n} checksums found`)
  for (const c of checks) t.ok(c.ok, `${label}: ${c.what} checksum valid (stored 0x${c.stored.toString(16)}, expected 0x${c.expected.toString(16)})`)
}

/** A small deterministic PRNG (mulberry32) for the property checks. */
function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let x = a
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 2 ** 32
  }
}

t.test('addresses', async (t) => {
  t.same([...ipBytes('10.1.2.3')], [10, 1, 2, 3], 'IPv4 bytes')
  t.equal(ipBytes('fd00::1').length, 16, 'IPv6 is 16 bytes')
  t.equal(ipBytes('fd00::1').toString('hex'), 'fd000000000000000000000000000001', 'IPv6 bytes')
  t.equal(ipBytes('::ffff:10.0.0.1').toString('hex'), '00000000000000000000ffff0a000001', 'embedded IPv4 tail')
  for (const a of ['::', '::1', 'fd00:1::1', '2001:db8::1:0:0:1', '1:2:3:4:5:6:7:8', 'fd00:2::10', '1::'])
    t.equal(ipString(ipBytes(a)), a, `round trip ${a}`)
  t.equal(ipString(ipBytes('2001:db8:0:0:1:0:0:1')), '2001:db8::1:0:0:1', 'first longest zero run compressed (RFC 5952)')
  t.equal(ipString(ipBytes('1:0:2:3:4:5:6:7')), '1:0:2:3:4:5:6:7', 'a single zero group is not compressed')
  t.throws(() => ipBytes('10.0.0.300'), PacketError, 'bad IPv4 refused')
  t.equal(macString(macBytes('02:AB:cd:00:00:ff')), '02:ab:cd:00:00:ff', 'MAC round trip, lower case')
  t.throws(() => macBytes('02:00:00'), PacketError, 'short MAC refused')
})

t.test('checksums: known answers and the two sums agree', async (t) => {
  // RFC 1071 section 3: the sum of 0001 f203 f4f5 f6f7 is ddf2.
  const rfc = Buffer.from('0001f203f4f5f6f7', 'hex')
  t.equal(onesSum(rfc), 0xddf2, 'verifier sum: RFC 1071 example')
  t.equal(internetChecksum(rfc), 0x220d, 'builder checksum: RFC 1071 example complemented')
  // A classic IPv4 header (checksum b861), with and without the checksum field.
  const hdr = Buffer.from('450000730000400040110000c0a80001c0a800c7', 'hex')
  t.equal(internetChecksum(hdr), 0xb861, 'builder: IPv4 header example')
  hdr.writeUInt16BE(0xb861, 10)
  t.equal(onesSum(hdr), 0xffff, 'verifier: a correct header sums to all ones')
  // Odd lengths: the last byte is the high byte of a zero-padded word, also across parts.
  t.equal(internetChecksum(Buffer.from([0x01])), ~0x0100 & 0xffff, 'builder: odd single byte')
  t.equal(onesSum(Buffer.from([0x01])), 0x0100, 'verifier: odd single byte')
  t.equal(internetChecksum(Buffer.from([1, 2, 3]), Buffer.from([4, 5])), internetChecksum(Buffer.from([1, 2, 3, 4, 5])),
    'builder: parts split at an odd offset sum as one stream')
  t.equal(onesSum(Buffer.from([1]), Buffer.from([2, 3]), Buffer.from([4, 5])), onesSum(Buffer.from([1, 2, 3, 4, 5])),
    'verifier: parts split at odd offsets sum as one stream')
  const rnd = prng(1071)
  let agree = 0
  for (let i = 0; i < 300; i++) {
    const len = Math.floor(rnd() * 1600)
    const b = Buffer.alloc(len)
    for (let j = 0; j < len; j++) b[j] = Math.floor(rnd() * 256)
    const cut = Math.floor(rnd() * (len + 1))
    const c = internetChecksum(b.subarray(0, cut), b.subarray(cut))
    if ((~onesSum(b) & 0xffff) === c || (c === 0xffff && onesSum(b) === 0xffff) || (c === 0 && onesSum(b) === 0xffff)) agree++
  }
  t.equal(agree, 300, 'builder and verifier agree on 300 random buffers split at random offsets')
})

t.test('checksums of built packets: known answers from an independent script', async (t) => {
  const syn = ipv4({ src: '10.0.0.1', dst: '10.0.0.10', id: 0x1234, df: true }, tcp({ sport: 40000, dport: 80, seq: 1000, flags: 'S' })).bytes()
  t.equal(syn.readUInt16BE(10), 0x1492, 'IPv4 header checksum')
  t.equal(syn.readUInt16BE(20 + 16), 0xfb5f, 'TCP checksum')
  const dns = ipv4({ src: '10.0.0.1', dst: '10.0.0.13' }, udp({ sport: 5353, dport: 53, payload: 'hello' })).bytes()
  t.equal(dns.readUInt16BE(20 + 6), 0x92d6, 'UDP checksum')
  const ping = ipv6({ src: 'fd00:1::1', dst: 'fd00:2::10' }, icmp6({ type: 128, id: 1, seq: 2, body: 'ping' })).bytes()
  t.equal(ping.readUInt16BE(40 + 2), 0xa6cf, 'ICMPv6 checksum')
})

t.test('Ethernet and VLAN tags', async (t) => {
  const p = ipv4({ src: '10.0.0.1', dst: '10.0.0.2' }, udp({ sport: 1, dport: 2 }))
  const f = ether({ dst: MAC_B, src: MAC_A }, p)
  t.equal(f.length, 14 + 28, 'untagged length')
  t.equal(f.readUInt16BE(12), EtherType.IPV4, 'ethertype from the payload')
  const v = ether({ dst: MAC_B, src: MAC_A, vlan: { id: 100, pcp: 5, dei: true } }, p)
  t.equal(v.readUInt16BE(12), 0x8100, 'TPID 802.1Q')
  t.equal(v.readUInt16BE(14), (5 << 13) | 0x1000 | 100, 'TCI: PCP, DEI, id')
  t.equal(v.readUInt16BE(16), EtherType.IPV4, 'inner ethertype after the tag')
  const q = ether({ dst: MAC_B, src: MAC_A, vlan: [{ id: 10, tpid: EtherType.QINQ }, 20] }, p)
  const pq = parseFrame(q)
  t.same(pq.eth.vlans.map((x) => [x.tpid, x.id]), [[0x88a8, 10], [0x8100, 20]], 'two tags parsed, outermost first')
  t.equal(pq.eth.headerLength, 22, 'header length with two tags')
  t.equal(pq.ip?.kind, 'ipv4', 'IP found behind two tags')
  const padded = ether({ dst: MAC_B, src: MAC_A, padTo: 60 }, p)
  t.equal(padded.length, 60, 'padded to the Ethernet minimum')
  t.equal(parseFrame(padded).trailer.length, 60 - 42, 'padding reported as trailer')
  const a = ether({ dst: 'ff:ff:ff:ff:ff:ff', src: MAC_A }, arp({ senderMac: MAC_A, senderIp: '10.0.0.1', targetIp: '10.0.0.10' }))
  t.equal(a.readUInt16BE(12), EtherType.ARP, 'ARP ethertype')
  t.equal(a.length, 42, 'ARP frame length')
  t.equal(parseFrame(a).ip, undefined, 'ARP has no IP layer')
  t.same(verifyChecksums(a), [], 'ARP has no checksum')
  t.throws(() => ether({ dst: MAC_B, src: MAC_A }, Buffer.alloc(4)), PacketError, 'raw payload without a type refused')
  t.throws(() => parseFrame(Buffer.alloc(10)), PacketError, 'a frame under 14 bytes refused')
})

t.test('IPv4: header fields, options, overrides', async (t) => {
  const p = ipv4({ src: '10.0.0.1', dst: '10.0.0.10', tos: 0x10, id: 7, df: true, ttl: 50, options: [{ type: 1 }, { type: 7, data: Buffer.from([4, 0, 0, 0, 0]) }] },
    tcp({ sport: 1234, dport: 80, flags: 'S' })).bytes()
  t.equal(p[0], 0x45 + 2, 'version 4, ihl 7 (8 option bytes after padding)')
  t.equal(p.readUInt16BE(2), 28 + 20, 'total length')
  const ip = parseIp(p)
  if (ip.kind !== 'ipv4') throw new Error('not ipv4')
  t.equal(ip.headerLength, 28, 'parsed header length')
  t.same([...ip.options], [1, 7, 7, 4, 0, 0, 0, 0], 'options in order, padded with end-of-options')
  t.same([ip.tos, ip.id, ip.df, ip.mf, ip.ttl, ip.protocol, ip.src, ip.dst], [0x10, 7, true, false, 50, 6, '10.0.0.1', '10.0.0.10'], 'fields')
  allOk(t, verifyChecksums(ip), 2, 'IPv4 with options')
  const frag = parseIp(ipv4({ src: '10.0.0.1', dst: '10.0.0.2', mf: true, fragOffset: 0 }, udp({ sport: 1, dport: 2, payload: 'x' })).bytes())
  if (frag.kind !== 'ipv4') throw new Error('not ipv4')
  t.same([frag.mf, frag.fragOffset], [true, 0], 'first fragment flags')
  t.equal(verifyChecksums(frag).length, 1, 'a fragment: only the IP header checksum is checkable')
  const tail = parseIp(ipv4({ src: '10.0.0.1', dst: '10.0.0.2', fragOffset: 3, proto: IpProto.UDP }, Buffer.alloc(8)).bytes())
  t.equal(tail.l4, undefined, 'a non-first fragment has no transport header')
  const bad = ipv4({ src: '10.0.0.1', dst: '10.0.0.2', ihl: 4, totalLength: 1000, version: 6, checksum: 0xbeef }, udp({ sport: 1, dport: 2 })).bytes()
  t.same([bad[0], bad.readUInt16BE(2), bad.readUInt16BE(10)], [0x64, 1000, 0xbeef], 'overrides written as given')
  t.throws(() => parseIp(Buffer.concat([Buffer.from([0x45]), bad.subarray(1)])), PacketError, 'strict parse: total length past the end')
  const lenient = parseIp(Buffer.concat([Buffer.from([0x45]), bad.subarray(1)]), { strict: false })
  t.equal(lenient.truncated, true, 'lenient parse: truncated flagged')
  t.throws(() => ipv4({ src: 'fd00::1', dst: '10.0.0.1' }, udp({ sport: 1, dport: 2 })).bytes(), PacketError, 'IPv6 address in IPv4 refused')
  t.throws(() => ipv4({ src: '10.0.0.1', dst: '10.0.0.2' }, Buffer.alloc(4)).bytes(), PacketError, 'raw payload without proto refused')
})

t.test('IPv6: extension headers', async (t) => {
  const p = ipv6({ src: 'fd00:1::1', dst: 'fd00:2::10', trafficClass: 0xb8, flowLabel: 0x12345, hopLimit: 33,
    ext: [{ type: 'hopopts' }, { type: 'dstopts', options: Buffer.from([0x1e, 2, 0, 0]) }, { type: 'routing', segmentsLeft: 0 }, { type: 'fragment', id: 9 }] },
  tcp({ sport: 40000, dport: 443, flags: TcpFlag.SYN })).bytes()
  t.equal(p[6], IpProto.HOPOPTS, 'fixed header: next header is hop-by-hop')
  t.equal(p.readUInt16BE(4), 8 + 8 + 8 + 8 + 20, 'payload length counts the extension headers')
  t.equal(p.readUInt32BE(0), (6 << 28 | 0xb8 << 20 | 0x12345) >>> 0, 'version, traffic class, flow label')
  const ip = parseIp(p)
  if (ip.kind !== 'ipv6') throw new Error('not ipv6')
  t.same(ip.ext.map((e) => [e.type, e.bytes.length]), [[0, 8], [60, 8], [43, 8], [44, 8]], 'chain: types and lengths')
  t.same([ip.ext[0]!.bytes[0], ip.ext[1]!.bytes[0], ip.ext[2]!.bytes[0], ip.ext[3]!.bytes[0]], [60, 43, 44, 6], 'each header names the next')
  t.same([...ip.ext[0]!.bytes.subarray(2)], [1, 4, 0, 0, 0, 0], 'hop-by-hop padded with PadN')
  t.equal(ip.ext[2]!.segmentsLeft, 0, 'routing: segments left')
  t.same([ip.ext[3]!.fragOffset, ip.ext[3]!.more, ip.ext[3]!.id], [0, false, 9], 'fragment header fields')
  t.same([ip.protocol, ip.trafficClass, ip.flowLabel, ip.hopLimit], [6, 0xb8, 0x12345, 33], 'fields')
  t.equal(l4Of(ip, 'tcp').dport, 443, 'TCP behind four extension headers')
  t.same(verifyChecksums(ip), [], 'atomic fragment header: the transport checksum is not checked')
  const hbh = parseIp(ipv6({ src: 'fd00:1::1', dst: 'fd00:2::10', ext: [{ type: 'hopopts' }] }, tcp({ sport: 1, dport: 2, payload: 'abc' })).bytes())
  allOk(t, verifyChecksums(hbh), 1, 'TCP behind hop-by-hop')
  t.equal(l4Of(hbh, 'tcp').bytes.length, 23, 'pseudo-header length is the upper-layer length only')
  const rt = parseIp(ipv6({ src: 'fd00:1::1', dst: 'fd00:2::10', ext: [{ type: 'routing', segmentsLeft: 1, routingType: 4, data: Buffer.alloc(20) }] }, udp({ sport: 1, dport: 2 })).bytes())
  if (rt.kind !== 'ipv6') throw new Error('not ipv6')
  t.same([rt.ext[0]!.bytes.length, rt.ext[0]!.bytes[1], rt.ext[0]!.bytes[2], rt.ext[0]!.segmentsLeft], [24, 2, 4, 1], 'routing header: length, hdrlen, type, segments left')
  const jumbo = ipv6({ src: 'fd00:1::1', dst: 'fd00:2::10', payloadLength: 0 }, udp({ sport: 1, dport: 2 })).bytes()
  t.equal(jumbo.readUInt16BE(4), 0, 'payload length override')
})

t.test('TCP: flags, options, payload', async (t) => {
  t.equal(tcpFlags('SA'), 0x12, 'letters SA')
  t.equal(tcpFlags('FSRPAUEC'), 0xff, 'every letter')
  t.throws(() => tcpFlags('X'), PacketError, 'unknown letter refused')
  const seg = parseIp(ipv4({ src: '10.0.0.1', dst: '10.0.0.2' }, tcp({
    sport: 1, dport: 2, seq: 0xfffffffe, ack: 5, flags: 'PA', window: 512, urgent: 3, payload: 'data',
    options: [{ kind: 'mss', value: 1460 }, { kind: 'sackOk' }, { kind: 'timestamp', value: 1, echo: 2 }, { kind: 'nop' }, { kind: 'wscale', shift: 7 }],
  })).bytes())
  const th = l4Of(seg, 'tcp')
  t.equal(th.dataOffset, 5 + 5, 'data offset: 20 option bytes')
  t.same([...th.options.subarray(0, 4)], [2, 4, 0x05, 0xb4], 'MSS option')
  t.same([...th.options.subarray(4, 6)], [4, 2], 'SACK permitted')
  t.same([...th.options.subarray(6, 16)], [8, 10, 0, 0, 0, 1, 0, 0, 0, 2], 'timestamps')
  t.same([...th.options.subarray(16, 20)], [1, 3, 3, 7], 'NOP and window scale')
  t.same([th.seq, th.ack, th.flags, th.window, th.urgent], [0xfffffffe, 5, 0x18, 512, 3], 'fields')
  t.equal(th.payload.toString(), 'data', 'payload')
  allOk(t, verifyChecksums(seg), 2, 'TCP with options and payload')
  const short = ipv4({ src: '10.0.0.1', dst: '10.0.0.2' }, tcp({ sport: 1, dport: 2, dataOffset: 3 })).bytes()
  t.throws(() => parseIp(short), PacketError, 'strict: data offset 3 refused')
  t.equal(l4Of(parseIp(short, { strict: false }), 'tcp').dataOffset, 3, 'lenient: data offset 3 reported')
})

t.test('UDP: length and checksum rules', async (t) => {
  const u = parseIp(ipv4({ src: '10.0.0.1', dst: '10.0.0.2' }, udp({ sport: 7, dport: 9, payload: 'abc' })).bytes())
  const uh = l4Of(u, 'udp')
  t.same([uh.sport, uh.dport, uh.length, uh.payload.toString()], [7, 9, 11, 'abc'], 'fields')
  allOk(t, verifyChecksums(u), 2, 'UDP over IPv4')
  const none = verifyChecksums(parseIp(ipv4({ src: '10.0.0.1', dst: '10.0.0.2' }, udp({ sport: 7, dport: 9, checksum: 'none' })).bytes()))
  t.same(none.map((c) => [c.what, c.ok]), [['ipv4 header', true], ['udp (none)', true]], 'IPv4: checksum 0 means none')
  const none6 = verifyChecksums(parseIp(ipv6({ src: 'fd00::1', dst: 'fd00::2' }, udp({ sport: 7, dport: 9, checksum: 'none' })).bytes()))
  t.same(none6.map((c) => [c.what, c.ok]), [['udp', false]], 'IPv6: checksum 0 is invalid')
  // Find a payload whose checksum computes to 0: it must be sent as 0xffff.
  let found = false
  for (let i = 0; i < 70000 && !found; i++) {
    const payload = Buffer.alloc(2)
    payload.writeUInt16BE(i)
    const b = ipv4({ src: '10.0.0.1', dst: '10.0.0.2' }, udp({ sport: 7, dport: 9, payload })).bytes()
    const sum = internetChecksum(Buffer.from([10, 0, 0, 1, 10, 0, 0, 2, 0, 17, 0, 10]), Buffer.concat([b.subarray(20, 26), Buffer.alloc(2), payload]))
    if (sum === 0) {
      found = true
      t.equal(b.readUInt16BE(26), 0xffff, 'a computed 0 is sent as 0xffff (RFC 768)')
      allOk(t, verifyChecksums(parseIp(b)), 2, 'all-ones UDP checksum')
    }
  }
  t.ok(found, 'a payload with a zero checksum exists')
  t.throws(() => parseIp(ipv4({ src: '10.0.0.1', dst: '10.0.0.2' }, udp({ sport: 7, dport: 9, length: 30 })).bytes()), PacketError, 'strict: UDP length past the end')
})

t.test('ICMP and ICMPv6, errors quoting a packet', async (t) => {
  const inner = ipv4({ src: '10.0.0.10', dst: '10.0.0.1', df: true }, tcp({ sport: 80, dport: 40000, flags: 'A', payload: Buffer.alloc(100) }))
  const err = parseIp(ipv4({ src: '10.9.9.9', dst: '10.0.0.10' }, icmp4({ type: 3, code: 4, mtu: 1400, body: inner, bodyLength: 28 })).bytes())
  const ih = l4Of(err, 'icmp')
  t.same([ih.type, ih.code, ih.mtu], [3, 4, 1400], 'frag-needed type, code, MTU')
  t.same([...ih.rest], [0, 0, 0x05, 0x78], 'MTU in bytes 6-7')
  t.equal(ih.body.length, 28, 'quote cut to 28 bytes')
  t.same(ih.body, inner.bytes().subarray(0, 28), 'quote is the start of the packet')
  t.equal(ih.quoted?.kind, 'ipv4', 'quoted packet parsed')
  t.same([ih.quoted?.src, ih.quoted?.dst, ih.quoted?.truncated], ['10.0.0.10', '10.0.0.1', true], 'quoted addresses, flagged truncated')
  t.equal(l4Of(ih.quoted, 'raw').bytes.length, 8, 'quoted transport: the 8 bytes there are (lenient)')
  const checks = verifyChecksums(err)
  t.same(checks.map((c) => c.what), ['ipv4 header', 'icmp', 'quoted ipv4 header'], 'checked: outer header, ICMP, quoted header')
  allOk(t, checks, 3, 'ICMP error')
  const echo = l4Of(parseIp(ipv4({ src: '10.0.0.1', dst: '10.0.0.2' }, icmp4({ type: 8, id: 5, seq: 6, body: 'abc' })).bytes()), 'icmp')
  t.same([echo.id, echo.seq, echo.quoted], [5, 6, undefined], 'echo id and sequence, nothing quoted')
  const inner6 = ipv6({ src: 'fd00:2::10', dst: 'fd00:1::1' }, tcp({ sport: 443, dport: 40000, flags: 'A' }))
  const ptb = parseIp(ipv6({ src: 'fd00:9::1', dst: 'fd00:2::10' }, icmp6({ type: 2, mtu: 1280, body: inner6 })).bytes())
  const p6 = l4Of(ptb, 'icmp6')
  t.same([p6.type, p6.code, p6.mtu, [...p6.rest]], [2, 0, 1280, [0, 0, 5, 0]], 'packet too big: 32-bit MTU')
  t.equal(p6.quoted?.kind, 'ipv6', 'quoted IPv6 parsed')
  allOk(t, verifyChecksums(ptb), 1, 'ICMPv6 error')
  t.throws(() => ipv4({ src: '10.0.0.1', dst: '10.0.0.2' }, icmp6({ type: 128 })).bytes(), PacketError, 'ICMPv6 in IPv4 refused')
  t.throws(() => ipv6({ src: 'fd00::1', dst: 'fd00::2' }, icmp4({ type: 8 })).bytes(), PacketError, 'ICMP in IPv6 refused')
})

t.test('tunnels: the four IP-in-IP combinations', async (t) => {
  const in4 = ipv4({ src: '10.0.0.1', dst: '10.0.0.11', ttl: 50 }, tcp({ sport: 40000, dport: 8080, flags: 'S' }))
  const in6 = ipv6({ src: 'fd00:1::1', dst: 'fd00:2::10' }, udp({ sport: 5353, dport: 53, payload: 'q' }))
  const rows: Array<[string, Buffer, number, number, number]> = [
    ['IPv4 in IPv4', ipv4({ src: '192.168.0.1', dst: '10.1.0.2' }, in4).bytes(), 4, IpProto.IPIP, 4],
    ['IPv6 in IPv4', ipv4({ src: '192.168.0.1', dst: '10.1.0.2' }, in6).bytes(), 4, IpProto.IPV6, 6],
    ['IPv4 in IPv6', ipv6({ src: 'fd00::1', dst: 'fd00:3::5' }, in4).bytes(), 6, IpProto.IPIP, 4],
    ['IPv6 in IPv6', ipv6({ src: 'fd00::1', dst: 'fd00:3::5' }, in6).bytes(), 6, IpProto.IPV6, 6],
  ]
  for (const [name, bytes, outerFam, proto, innerFam] of rows) {
    const outer = parseIp(bytes)
    t.equal(outer.family, outerFam, `${name}: outer family`)
    t.equal(outer.kind === 'ipv4' ? outer.protocol : outer.nextHeader, proto, `${name}: outer protocol ${proto}`)
    const inner = innerIp(outer)
    t.equal(inner?.family, innerFam, `${name}: inner family`)
    t.same(inner?.bytes, (innerFam === 4 ? in4 : in6).bytes(), `${name}: inner packet byte-identical`)
    allOk(t, verifyChecksums(outer), (outerFam === 4 ? 1 : 0) + (innerFam === 4 ? 2 : 1), name)
  }
  const frame = ether({ dst: MAC_B, src: MAC_A }, ipv4({ src: '192.168.0.1', dst: '10.1.0.2' }, in4))
  t.match(describeFrame(frame), /ipv4 192\.168\.0\.1 > 10\.1\.0\.2 len 60 ipv4 10\.0\.0\.1 > 10\.0\.0\.11 len 40 tcp 40000 > 8080 \[S\]/, 'describeFrame walks the tunnel')
})

t.test('the verifier catches corruption everywhere', async (t) => {
  const frame = ether({ dst: MAC_B, src: MAC_A, vlan: 7 }, ipv4({ src: '192.168.0.1', dst: '10.1.0.2' },
    ipv4({ src: '10.0.0.1', dst: '10.0.0.11', options: [{ type: 1 }] }, tcp({ sport: 1, dport: 2, flags: 'S', payload: 'hello' }))))
  allOk(t, verifyChecksums(frame), 3, 'clean tunnelled frame')
  const at = (name: string, off: number): void => {
    const bad = Buffer.from(frame)
    bad[off]! ^= 0x01
    const failed = verifyChecksums(parseFrame(bad, { strict: false })).filter((c) => !c.ok).map((c) => c.what)
    t.same(failed, [name], `a bit flipped at ${off} fails only "${name}"`)
  }
  at('ipv4 header', 18 + 8) // outer TTL
  at('inner ipv4 header', 18 + 20 + 8) // inner TTL
  at('inner tcp', 18 + 20 + 24 + 4) // sequence number
  at('inner tcp', frame.length - 1) // payload
  // An address is in both the header and the TCP pseudo-header.
  const bad = Buffer.from(frame)
  bad[18 + 20 + 12]! ^= 0x01
  t.same(verifyChecksums(bad).filter((c) => !c.ok).map((c) => c.what), ['inner ipv4 header', 'inner tcp'], 'an inner source address flip fails header and TCP')
  const c = verifyChecksums(bad).find((x) => x.what === 'inner tcp')!
  const fixed = Buffer.from(bad)
  fixed.writeUInt16BE(c.expected, 18 + 20 + 24 + 16)
  t.ok(verifyChecksums(fixed).find((x) => x.what === 'inner tcp')!.ok, 'the reported expected value is the right checksum')
})

t.test('diagnostics', async (t) => {
  t.equal(firstDifference(Buffer.from([1, 2, 3]), Buffer.from([1, 2, 3])), -1, 'equal buffers')
  t.equal(firstDifference(Buffer.from([1, 2, 3]), Buffer.from([1, 9, 3])), 1, 'first differing byte')
  t.equal(firstDifference(Buffer.from([1, 2]), Buffer.from([1, 2, 3])), 2, 'a length difference')
  t.match(describeFrame(Buffer.alloc(5)), /unparsable/, 'a runt frame is described, not thrown')
  const raw = ether({ dst: MAC_B, src: MAC_A }, ipv4({ src: '10.0.0.1', dst: '10.0.0.2' }, rawPayload(47, Buffer.alloc(4))))
  t.match(describeFrame(raw), /proto 47/, 'unknown protocols described by number')
})
