// SPDX-License-Identifier: GPL-2.0-only
// Struct codecs: byte layout, address forms, range checks, and the BTF comparison.
import t from 'tap'
import { defineStruct, u8, u16, u32, u64, be16, be32, mac, addr, pad, bytes, encodeAddr, decodeAddr, AF_INET, AF_INET6 } from '../../src/dataplane/codec'
import { ArgumentError } from '../../src/errors'
import { fixture } from '../helpers/root'

interface Sample { a: string; fam: number; port: number; w: number; big: bigint; m: string; raw: Buffer; n: number; s: number }
const Sample = defineStruct<Sample>('sample', [
  ['a', addr('fam')], ['fam', u8], ['pad0', pad(1)], ['port', be16], ['w', u32], ['big', u64], ['m', mac],
  ['raw', bytes(2)], ['n', be32], ['s', u16],
])

t.test('layout and round trip', async (t) => {
  t.equal(Sample.size, 16 + 1 + 1 + 2 + 4 + 8 + 6 + 2 + 4 + 2, 'size is the sum of fields')
  const v: Sample = { a: '10.1.2.3', fam: AF_INET, port: 8080, w: 7, big: 2n ** 40n, m: '02:00:0a:0b:0c:0d', raw: Buffer.from([1, 2]), n: 0x01020304, s: 513 }
  const b = Sample.encode(v)
  t.same([...b.subarray(0, 4)], [10, 1, 2, 3], 'IPv4 in the first four bytes')
  t.ok(b.subarray(4, 16).every((x) => x === 0), 'rest of the address zero')
  t.equal(b[16], AF_INET, 'family')
  t.equal(b[17], 0, 'pad is zero')
  t.same([...b.subarray(18, 20)], [0x1f, 0x90], 'be16 port in network order')
  t.equal(b.readUInt32LE(20), 7, 'u32 host order')
  t.same(Sample.decode(b), v, 'decode(encode(v)) = v')
  const six = Sample.encode({ a: 'fd00::1:2', port: 80 })
  t.equal(six[16], AF_INET6, 'family filled in from the address when left out')
  t.equal(Sample.decode(six).a, 'fd00::1:2', 'IPv6 decoded')
  t.same([Sample.offsetOf('a'), Sample.offsetOf('port'), Sample.offsetOf('s')], [0, 18, 44], 'offsetOf: where a field starts')
  t.throws(() => Sample.offsetOf('nope' as 'a'), { code: 'EABI', message: /sample has no field nope/ }, 'offsetOf: an unknown field is an error')
})

t.test('addresses', async (t) => {
  for (const a of ['::', '::1', 'fd00::', 'fd00:1:2:3:4:5:6:7', '2001:db8::1:0:0:1', '1:0:0:1::', '::ffff:10.0.0.1'])
    t.equal(decodeAddr(encodeAddr(a).bytes, AF_INET6), a === '::ffff:10.0.0.1' ? '::ffff:a00:1' : a, `round trip ${a}`)
  t.equal(decodeAddr(encodeAddr('2001:db8:0:0:1:0:0:1').bytes, AF_INET6), '2001:db8::1:0:0:1', 'longest zero run compressed, first on a tie')
  t.throws(() => encodeAddr('10.0.0.256'), ArgumentError, 'bad IPv4')
  t.throws(() => encodeAddr('vip'), ArgumentError, 'not an address')
})

t.test('range checks', async (t) => {
  t.throws(() => Sample.encode({ port: 70000 }), ArgumentError, 'be16 overflow')
  t.throws(() => Sample.encode({ w: -1 }), ArgumentError, 'negative')
  t.throws(() => Sample.encode({ m: '02:00' }), ArgumentError, 'short MAC')
  t.throws(() => Sample.encode({ raw: Buffer.alloc(3) }), ArgumentError, 'bytes too long')
  t.throws(() => Sample.decode(Buffer.alloc(3)), { code: 'EABI' }, 'short buffer')
})

t.test('BTF comparison catches every kind of drift', async (t) => {
  const good = defineStruct('fixture_key', [['addr', be32], ['port', be16], ['proto', u8], ['pad', pad(1)], ['cookie', u64]])
  t.same(good.diffAgainstBtf(fixture('maps')), [], 'matching layout: no difference')
  const missingPad = defineStruct('fixture_key', [['addr', be32], ['port', be16], ['proto', u8], ['cookie', u64]])
  const d1 = missingPad.diffAgainstBtf(fixture('maps'))
  t.ok(d1.some((d) => /size 15 here, 16 in BTF/.test(d)), 'size drift reported')
  t.ok(d1.some((d) => /cookie: offset 7 here, 8 in BTF/.test(d)), 'offset drift reported')
  const renamed = defineStruct('fixture_key', [['address', be32], ['port', be16], ['proto', u8], ['pad', pad(1)], ['cookie', u64]])
  t.ok(renamed.diffAgainstBtf(fixture('maps')).some((d) => /fields/.test(d)), 'name drift reported')
  const wide = defineStruct('fixture_key', [['addr', be32], ['port', u32], ['proto', u8], ['pad', pad(1)], ['cookie', u64]])
  t.ok(wide.diffAgainstBtf(fixture('maps')).some((d) => /port: size 4 here, 2 in BTF/.test(d)), 'field size drift reported')
})
