// SPDX-License-Identifier: GPL-2.0-only
// VRRP advertisements: every byte of v3 (IPv4, IPv6) and v2 messages from the RFC field layouts,
// checksums against an independent RFC 1071 sum, three vectors computed by hand, round trips, and each
// malformed input mapped to its drop reason.
import t from 'tap'
import { ArgumentError } from '../../src/errors'
import {
  buildAdvert,
  buildIpv4,
  checkAdvert,
  decodeAdvert,
  parseIpv4,
  vrrpChecksum,
  vrrpPassword,
  vrrpPseudoHeader,
  VRRP_MULTICAST_V4,
  VRRP_MULTICAST_V6,
  type VrrpAdvert,
  type VrrpExpectation,
  type VrrpV2Advert,
  type VrrpV3Advert,
} from '../../src/ha/vrrp-packet'

/**
 * RFC 1071 §4.1, written independently of src/ha/inet.ts: add 16-bit big-endian words with the
 * end-around carry applied after every addition, pad an odd byte with zero, complement at the end.
 */
function rfc1071(bytes: number[]): number {
  let acc = 0
  for (let i = 0; i < bytes.length; i += 2) {
    const word = (bytes[i]! << 8) | (i + 1 < bytes.length ? bytes[i + 1]! : 0)
    acc += word
    if (acc > 0xffff) acc = (acc & 0xffff) + 1
  }
  return ~acc & 0xffff
}
const b = (...xs: number[]): number[] => xs
const hex = (buf: Buffer): string => buf.toString('hex')

const v4ad: VrrpV3Advert = { version: 3, family: 4, vrid: 1, priority: 100, maxAdverIntCs: 100, addresses: ['192.168.1.254'] }
const v4ends = { src: '192.168.1.1', dst: VRRP_MULTICAST_V4 }
const v6ad: VrrpV3Advert = { version: 3, family: 6, vrid: 1, priority: 100, maxAdverIntCs: 100, addresses: ['2001:db8::1'] }
const v6ends = { src: 'fe80::1', dst: VRRP_MULTICAST_V6 }
const v2ad: VrrpV2Advert = {
  version: 2, family: 4, vrid: 51, priority: 150, adverIntSec: 1, authType: 1, authData: vrrpPassword('secret'),
  addresses: ['10.0.0.100'],
}

t.test('v3 over IPv4: every byte from the RFC 5798 §5.1 layout', async (t) => {
  const ad: VrrpV3Advert = { version: 3, family: 4, vrid: 0xab, priority: 0xcd, maxAdverIntCs: 0xfff, addresses: ['10.1.2.3', '172.16.254.1'] }
  const m = buildAdvert(ad, { src: '10.0.0.1', dst: VRRP_MULTICAST_V4 })
  t.equal(m.length, 8 + 2 * 4, 'length: 8 fixed + 4 per address')
  t.equal(m[0], 0x31, 'version 3 in the high nibble, type 1 (ADVERTISEMENT) in the low')
  t.equal(m[1], 0xab, 'Virtual Rtr ID')
  t.equal(m[2], 0xcd, 'Priority')
  t.equal(m[3], 2, 'Count IPvX Addr')
  t.equal(m[4]! >> 4, 0, 'rsvd: 4 zero bits')
  t.equal(m.readUInt16BE(4) & 0x0fff, 0xfff, 'Max Adver Int: 12 bits of centiseconds')
  t.same([...m.subarray(8, 12)], [10, 1, 2, 3], 'first address, network order')
  t.same([...m.subarray(12, 16)], [172, 16, 254, 1], 'second address')
  const pseudo = b(10, 0, 0, 1, 224, 0, 0, 18, 0, 112, 0, 16)
  const zeroed = [...m.subarray(0, 6), 0, 0, ...m.subarray(8)]
  t.equal(m.readUInt16BE(6), rfc1071([...pseudo, ...zeroed]), 'checksum over IPv4 pseudo-header (src, dst, 0, 112, len) + message')
  t.equal(rfc1071([...pseudo, ...m]), 0, 'a correct checksum sums the whole to zero')
})

t.test('v3 over IPv6: every byte, checksum over the RFC 2460 §8.1 pseudo-header', async (t) => {
  const ad: VrrpV3Advert = { version: 3, family: 6, vrid: 7, priority: 254, maxAdverIntCs: 25, addresses: ['fe80::7', '2001:db8:0:1::42'] }
  const m = buildAdvert(ad, { src: 'fe80::2', dst: VRRP_MULTICAST_V6 })
  t.equal(m.length, 8 + 2 * 16, 'length: 8 fixed + 16 per address')
  t.same([...m.subarray(0, 6)], [0x31, 7, 254, 2, 0x00, 25], 'version/type, VRID, priority, count, rsvd + interval')
  t.equal(hex(m.subarray(8, 24)), 'fe800000000000000000000000000007', 'first address')
  t.equal(hex(m.subarray(24, 40)), '20010db8000000010000000000000042', 'second address')
  const src = [...Buffer.from('fe800000000000000000000000000002', 'hex')]
  const dst = [...Buffer.from('ff020000000000000000000000000012', 'hex')]
  const pseudo = [...src, ...dst, 0, 0, 0, 40, 0, 0, 0, 112]
  const zeroed = [...m.subarray(0, 6), 0, 0, ...m.subarray(8)]
  t.equal(m.readUInt16BE(6), rfc1071([...pseudo, ...zeroed]), 'checksum')
})

t.test('v2: every byte from the RFC 3768 §5.1 layout, checksum over the message alone', async (t) => {
  const ad: VrrpV2Advert = {
    version: 2, family: 4, vrid: 200, priority: 1, adverIntSec: 255, authType: 1, authData: vrrpPassword('pa55'),
    addresses: ['192.0.2.1', '192.0.2.2', '192.0.2.3'],
  }
  const m = buildAdvert(ad)
  t.equal(m.length, 8 + 3 * 4 + 8, 'length: 8 fixed + 4 per address + 8 auth data')
  t.same([...m.subarray(0, 6)], [0x21, 200, 1, 3, 1, 255], 'version 2/type 1, VRID, priority, count, auth type, Adver Int (s)')
  t.same([...m.subarray(8, 20)], [192, 0, 2, 1, 192, 0, 2, 2, 192, 0, 2, 3], 'addresses')
  t.same([...m.subarray(20, 28)], [0x70, 0x61, 0x35, 0x35, 0, 0, 0, 0], 'auth data: the password, zero padded to 8')
  const zeroed = [...m.subarray(0, 6), 0, 0, ...m.subarray(8)]
  t.equal(m.readUInt16BE(6), rfc1071(zeroed), 'checksum over the VRRP message only, auth data included')
  t.equal(vrrpChecksum(m, { src: '1.1.1.1', dst: '2.2.2.2' }), m.readUInt16BE(6), 'v2 ignores any pseudo-header')
  t.same([...vrrpPassword('0123456789')], [...Buffer.from('01234567')], 'passwords longer than 8 are truncated (keepalived)')
  t.same([...buildAdvert({ ...ad, authType: 0, authData: Buffer.alloc(0) }).subarray(20)], [0, 0, 0, 0, 0, 0, 0, 0], 'no auth: 8 zero bytes')
})

t.test('known vector: IPv4 v3, computed by hand', async (t) => {
  // 192.168.1.1 -> 224.0.0.18, VRID 1, priority 100, Max Adver Int 100 cs (1 s), address 192.168.1.254.
  // Message: 31 01 64 01 | 00 64 CS CS | c0 a8 01 fe  (12 bytes)
  // Pseudo-header words: c0a8 0101 e000 0012 0070 000c
  //   c0a8+0101+e000+0012+0070+000c = 0x1a237
  // Message words (checksum 0): 3101 6401 0064 0000 c0a8 01fe
  //   3101+6401+0064+c0a8+01fe = 0x1580c
  // 0x1a237 + 0x1580c = 0x2fa43 -> fold: 0xfa43 + 0x2 = 0xfa45 -> complement 0x05ba.
  const m = buildAdvert(v4ad, v4ends)
  t.equal(hex(m), '3101640100' + '6405ba' + 'c0a801fe')
  // RFC 5798 §5.2.8 names the RFC 2460 pseudo-header; laid out that way with IPv4 addresses
  // (src, dst, 32-bit length, 3 zero bytes, next header) it has the same words, so the same sum.
  const ph2460 = [192, 168, 1, 1, 224, 0, 0, 18, 0, 0, 0, 12, 0, 0, 0, 112]
  const zeroed = [...m.subarray(0, 6), 0, 0, ...m.subarray(8)]
  t.equal(rfc1071([...ph2460, ...zeroed]), 0x05ba, 'RFC 2460-style pseudo-header gives the same checksum')
  t.equal(hex(vrrpPseudoHeader(v4ends, 12)!), 'c0a80101e00000120070000c', 'pseudo-header bytes')
})

t.test('known vector: IPv6 v3, computed by hand', async (t) => {
  // fe80::1 -> ff02::12, VRID 1, priority 100, 100 cs, address 2001:db8::1; message length 24 (0x18).
  // Pseudo-header words: fe80 0 0 0 0 0 0 0001 | ff02 0 0 0 0 0 0 0012 | 0000 0018 | 0000 0070
  //   fe80+0001+ff02+0012+0018+0070 = 0x1fe1d
  // Message words: 3101 6401 0064 0000 | 2001 0db8 0 0 0 0 0 0001
  //   3101+6401+0064+2001+0db8+0001 = 0xc320
  // 0x1fe1d + 0xc320 = 0x2c13d -> fold: 0xc13d + 0x2 = 0xc13f -> complement 0x3ec0.
  const m = buildAdvert(v6ad, v6ends)
  t.equal(hex(m), '31016401' + '00643ec0' + '20010db8000000000000000000000001')
})

t.test('known vector: v2 with a password, computed by hand', async (t) => {
  // VRID 51 (0x33), priority 150 (0x96), 1 address 10.0.0.100, auth type 1, Adver Int 1 s,
  // password "secret" -> 73 65 63 72 65 74 00 00.
  // Words: 2133 9601 0101 0000 0a00 0064 7365 6372 6574 0000
  //   2133+9601 = b734; +0101 = b835; +0a00 = c235; +0064 = c299; +7365 = 135fe; +6372 = 19970;
  //   +6574 = 1fee4 -> fold: fee4 + 1 = fee5 -> complement 0x011a.
  const m = buildAdvert(v2ad)
  t.equal(hex(m), '21339601' + '0101011a' + '0a000064' + '7365637265740000')
})

t.test('checksums agree with the independent sum on many random messages', async (t) => {
  let seed = 12345
  const rnd = (n: number): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0
    return (seed >>> 8) % n
  }
  let bad = 0
  for (let i = 0; i < 300; i++) {
    const family = rnd(2) === 0 ? 4 : 6
    const count = rnd(6)
    const addrs = Array.from({ length: count }, () =>
      family === 4 ? `${rnd(256)}.${rnd(256)}.${rnd(256)}.${rnd(256)}` : `2001:db8:${rnd(65536).toString(16)}::${rnd(65536).toString(16)}`)
    const ends = family === 4 ? { src: `10.0.${rnd(256)}.${rnd(256)}`, dst: VRRP_MULTICAST_V4 } : { src: `fe80::${rnd(65536).toString(16)}`, dst: VRRP_MULTICAST_V6 }
    const m = buildAdvert({ version: 3, family, vrid: 1 + rnd(255), priority: rnd(256), maxAdverIntCs: 1 + rnd(4095), addresses: addrs }, ends)
    const ph = [...vrrpPseudoHeader(ends, m.length)!]
    if (rfc1071([...ph, ...m]) !== 0) bad++
  }
  t.equal(bad, 0, 'every message sums to zero with its pseudo-header')
})

t.test('round trips: build then decode gives the fields back', async (t) => {
  const cases: VrrpAdvert[] = [
    v4ad,
    v6ad,
    v2ad,
    { version: 3, family: 4, vrid: 255, priority: 0, maxAdverIntCs: 1, addresses: [] },
    { version: 3, family: 6, vrid: 9, priority: 255, maxAdverIntCs: 4095, addresses: ['fe80::1', '::', 'ff02::1:ff00:1'] },
  ]
  for (const ad of cases) {
    const m = ad.version === 3 ? buildAdvert(ad, ad.family === 4 ? v4ends : v6ends) : buildAdvert(ad)
    const d = decodeAdvert(m, ad.family)
    t.ok(d.ok, `v${ad.version} IPv${ad.family} decodes`)
    if (d.ok) {
      t.same(d.advert, ad, 'same fields')
      t.equal(d.checksum, m.readUInt16BE(6), 'checksum reported')
    }
  }
  const d = decodeAdvert(Buffer.from('3101640100f005ba' + 'c0a801fe', 'hex'), 4)
  t.ok(d.ok && d.advert.version === 3 && d.advert.maxAdverIntCs === 0x0f0 && true, 'reserved bits above the interval are ignored on receipt')
})

t.test('buildAdvert refuses what it cannot encode', async (t) => {
  t.throws(() => buildAdvert({ ...v4ad, vrid: 0 }, v4ends), ArgumentError, 'VRID 0')
  t.throws(() => buildAdvert({ ...v4ad, priority: 256 }, v4ends), ArgumentError, 'priority 256')
  t.throws(() => buildAdvert({ ...v4ad, maxAdverIntCs: 4096 }, v4ends), ArgumentError, 'interval beyond 12 bits')
  t.throws(() => buildAdvert({ ...v4ad, maxAdverIntCs: 0 }, v4ends), ArgumentError, 'interval 0')
  t.throws(() => buildAdvert(v4ad), ArgumentError, 'v3 without endpoints')
  t.throws(() => buildAdvert(v4ad, v6ends), ArgumentError, 'endpoints of the other family')
  t.throws(() => buildAdvert({ ...v4ad, addresses: ['fe80::1'] }, v4ends), ArgumentError, 'address of the other family')
  t.throws(() => buildAdvert({ ...v2ad, family: 6 as 4 }), ArgumentError, 'v2 over IPv6')
  t.throws(() => buildAdvert({ ...v2ad, adverIntSec: 0 }), ArgumentError, 'v2 interval 0')
  t.throws(() => buildAdvert({ ...v2ad, authData: Buffer.alloc(9) }), ArgumentError, 'auth data over 8 bytes')
  t.throws(() => buildAdvert({ ...v4ad, addresses: new Array<string>(256).fill('1.2.3.4') }, v4ends), ArgumentError, '256 addresses')
})

const expectV3: VrrpExpectation = {
  version: 3, family: 4, vrid: 1, localPriority: 100, addresses: ['192.168.1.254'], localDestination: VRRP_MULTICAST_V4, checkTtl: true,
}
const expectV2: VrrpExpectation = {
  version: 2, family: 4, vrid: 51, localPriority: 100, addresses: ['10.0.0.100'], localDestination: VRRP_MULTICAST_V4, checkTtl: true,
  authType: 1, authData: vrrpPassword('secret'), adverIntSec: 1,
}
const rx4 = { src: '192.168.1.1', ttl: 255 }

t.test('a good advertisement passes', async (t) => {
  const r = checkAdvert(buildAdvert(v4ad, v4ends), rx4, expectV3)
  t.ok(r.ok, 'v3 IPv4')
  t.ok(r.ok && r.addressListMatches, 'address list matches')
  const r6 = checkAdvert(buildAdvert(v6ad, v6ends), { src: 'fe80::1', ttl: 255, dst: 'ff02::12' }, {
    ...expectV3, family: 6, addresses: ['2001:db8::1'], localDestination: VRRP_MULTICAST_V6,
  })
  t.ok(r6.ok, 'v3 IPv6 with the destination reported')
  t.ok(checkAdvert(buildAdvert(v2ad), { src: '10.0.0.1', ttl: 255 }, expectV2).ok, 'v2 with the right password')
  const uni = buildAdvert(v4ad, { src: '192.168.1.1', dst: '192.168.1.2' })
  const ru = checkAdvert(uni, { src: '192.168.1.1', ttl: 60 }, {
    ...expectV3, localDestination: '192.168.1.2', checkTtl: false, unicastPeers: ['192.168.1.1'], checkSourceIsPeer: true,
  })
  t.ok(ru.ok, 'unicast: checksum over our own address as destination, TTL not checked')
})

t.test('every malformed input kind gives its reason, never an exception', async (t) => {
  const good3 = buildAdvert(v4ad, v4ends)
  const good2 = buildAdvert(v2ad)
  const mutate = (m: Buffer, f: (c: Buffer) => void): Buffer => {
    const c = Buffer.from(m)
    f(c)
    return c
  }
  // Re-checksum after a field change, so the field's own check is what fails.
  const resum3 = (m: Buffer): Buffer => mutate(m, (c) => c.writeUInt16BE(vrrpChecksum(c, v4ends)!, 6))
  const resum2 = (m: Buffer): Buffer => mutate(m, (c) => c.writeUInt16BE(vrrpChecksum(c)!, 6))
  const rx2 = { src: '10.0.0.1', ttl: 255 }
  const cases: Array<[string, Buffer, { src: string; ttl: number; dst?: string }, VrrpExpectation, string]> = [
    ['TTL 254', good3, { ...rx4, ttl: 254 }, expectV3, 'bad-ttl'],
    ['hop limit 1', good3, { ...rx4, ttl: 1 }, expectV3, 'bad-ttl'],
    ['7 bytes', good3.subarray(0, 7), rx4, expectV3, 'too-short'],
    ['empty', Buffer.alloc(0), rx4, expectV3, 'too-short'],
    ['version 4', resum3(mutate(good3, (c) => (c[0] = 0x41))), rx4, expectV3, 'bad-version'],
    ['v2 message to a v3 router', good2, rx2, { ...expectV3, vrid: 51 }, 'bad-version'],
    ['v3 message to a v2 router', buildAdvert({ ...v4ad, vrid: 51, addresses: ['10.0.0.100'] }, { src: '10.0.0.1', dst: VRRP_MULTICAST_V4 }), rx2, expectV2, 'bad-version'],
    ['type 2', resum3(mutate(good3, (c) => (c[0] = 0x32))), rx4, expectV3, 'bad-type'],
    ['count 2, one address', resum3(mutate(good3, (c) => (c[3] = 2))), rx4, expectV3, 'length-mismatch'],
    ['trailing byte', Buffer.concat([good3, Buffer.alloc(1)]), rx4, expectV3, 'length-mismatch'],
    ['v2 without auth data', good2.subarray(0, 12), rx2, expectV2, 'length-mismatch'],
    ['IPv6 source on IPv4', good3, { src: 'fe80::1', ttl: 255 }, expectV3, 'bad-source'],
    ['unparsable source', good3, { src: 'router-a', ttl: 255 }, expectV3, 'bad-source'],
    ['flipped priority bit', mutate(good3, (c) => (c[2] ^= 1)), rx4, expectV3, 'bad-checksum'],
    ['wrong source in pseudo-header', good3, { src: '192.168.1.9', ttl: 255 }, expectV3, 'bad-checksum'],
    ['unicast checksum against the multicast group', buildAdvert(v4ad, v4ends), { ...rx4, dst: '192.168.1.2' }, { ...expectV3, unicastPeers: ['192.168.1.1'], localDestination: '192.168.1.2' }, 'bad-checksum'],
    ['v2 checksum (last auth byte)', mutate(good2, (c) => (c[19] ^= 0x80)), rx2, expectV2, 'bad-checksum'],
    ['other VRID', buildAdvert({ ...v4ad, vrid: 2 }, v4ends), rx4, expectV3, 'vrid-mismatch'],
    ['we are the owner', good3, rx4, { ...expectV3, localPriority: 255 }, 'local-is-owner'],
    ['auth type 3', resum2(mutate(good2, (c) => (c[4] = 3))), rx2, expectV2, 'invalid-auth-type'],
    ['no auth against PASS', buildAdvert({ ...v2ad, authType: 0, authData: Buffer.alloc(8) }), rx2, expectV2, 'auth-type-mismatch'],
    ['PASS against no auth', good2, rx2, { ...expectV2, authType: 0 }, 'auth-type-mismatch'],
    ['AH against PASS', resum2(mutate(good2, (c) => (c[4] = 2))), rx2, expectV2, 'auth-type-mismatch'],
    ['wrong password', buildAdvert({ ...v2ad, authData: vrrpPassword('secreT') }), rx2, expectV2, 'auth-failure'],
    ['other addresses', buildAdvert({ ...v4ad, addresses: ['192.168.1.253'] }, v4ends), rx4, expectV3, 'address-list-mismatch'],
    ['an address missing', buildAdvert({ ...v4ad, addresses: [] }, v4ends), rx4, expectV3, 'address-list-mismatch'],
    ['v2 interval 2 s against 1 s', buildAdvert({ ...v2ad, adverIntSec: 2 }), rx2, expectV2, 'interval-mismatch'],
    ['v3 interval 0', resum3(mutate(good3, (c) => c.writeUInt16BE(0, 4))), rx4, expectV3, 'bad-interval'],
    ['multicast where peers are configured', good3, { ...rx4, dst: VRRP_MULTICAST_V4 }, { ...expectV3, unicastPeers: ['192.168.1.1'] }, 'destination-mismatch'],
    ['unicast where none are', buildAdvert(v4ad, { src: '192.168.1.1', dst: '192.168.1.2' }), { ...rx4, dst: '192.168.1.2' }, expectV3, 'destination-mismatch'],
    ['unicast from a stranger', buildAdvert(v4ad, { src: '192.168.1.1', dst: '192.168.1.2' }), rx4, { ...expectV3, localDestination: '192.168.1.2', unicastPeers: ['192.168.1.3'], checkSourceIsPeer: true }, 'source-not-peer'],
  ]
  for (const [name, m, rx, exp, reason] of cases) {
    const r = checkAdvert(m, rx, exp)
    t.equal(r.ok ? 'ok' : r.reason, reason, name)
    if (!r.ok) t.ok(r.detail.length > 0, `${name}: has a detail`)
  }
  const owner = checkAdvert(buildAdvert({ ...v4ad, priority: 255, addresses: ['192.168.1.253'] }, v4ends), rx4, expectV3)
  t.ok(owner.ok && !owner.addressListMatches, 'address list mismatch from the owner (255) is accepted and flagged')
  const reordered = checkAdvert(
    buildAdvert({ ...v4ad, addresses: ['10.0.0.2', '10.0.0.1'] }, v4ends), rx4, { ...expectV3, addresses: ['10.0.0.1', '10.0.0.2'] })
  t.ok(reordered.ok && reordered.addressListMatches, 'address order does not matter')
  t.equal(decodeAdvert(good2, 6).ok ? 'ok' : (decodeAdvert(good2, 6) as { reason: string }).reason, 'bad-version', 'v2 over IPv6 does not decode')
})

t.test('random bytes never throw', async (t) => {
  let seed = 99
  const rnd = (): number => {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0
    return seed >>> 24
  }
  let threw = 0
  for (let i = 0; i < 2000; i++) {
    const m = Buffer.from(Array.from({ length: rnd() % 48 }, rnd))
    if (i % 3 === 0 && m.length > 0) m[0] = 0x31
    try {
      checkAdvert(m, rx4, expectV3)
      checkAdvert(m, { src: '10.0.0.1', ttl: 255 }, expectV2)
      decodeAdvert(m, 6)
    } catch {
      threw++
    }
  }
  t.equal(threw, 0)
})

t.test('IPv4 header for IP_HDRINCL sockets, and splitting one off', async (t) => {
  const m = buildAdvert(v4ad, v4ends)
  const d = buildIpv4(m, v4ends, 0x1234)
  t.equal(d.length, 20 + m.length)
  t.equal(d[0], 0x45, 'version 4, IHL 5')
  t.equal(d[1], 0xc0, 'TOS internetwork control (keepalived)')
  t.equal(d.readUInt16BE(2), 32, 'total length')
  t.equal(d.readUInt16BE(4), 0x1234, 'id')
  t.equal(d.readUInt16BE(6), 0, 'no DF, no fragment offset')
  t.equal(d[8], 255, 'TTL 255')
  t.equal(d[9], 112, 'protocol 112')
  t.equal(rfc1071([...d.subarray(0, 20)]), 0, 'header checksum')
  t.same([...d.subarray(12, 20)], [192, 168, 1, 1, 224, 0, 0, 18], 'addresses')
  const p = parseIpv4(d)
  t.ok(p)
  t.same(p && { src: p.src, dst: p.dst, ttl: p.ttl, protocol: p.protocol, tos: p.tos }, { src: '192.168.1.1', dst: '224.0.0.18', ttl: 255, protocol: 112, tos: 0xc0 })
  t.ok(p?.payload.equals(m), 'payload is the VRRP message')
  t.equal(parseIpv4(Buffer.concat([d, Buffer.alloc(4)]))?.payload.length, m.length, 'link-layer padding after total length is cut off')
  const broken = Buffer.from(d)
  broken[8] = 254
  t.equal(parseIpv4(broken), undefined, 'bad header checksum')
  t.equal(parseIpv4(d.subarray(0, 19)), undefined, 'short')
  t.equal(parseIpv4(Buffer.concat([Buffer.from([0x65]), d.subarray(1)])), undefined, 'not version 4')
  t.throws(() => buildIpv4(m, v6ends), ArgumentError)
})
