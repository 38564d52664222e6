// SPDX-License-Identifier: GPL-2.0-only
// MurmurHash3 x86_32 against published test vectors (the reference implementation's outputs), so the
// Maglev hash is known to be the real algorithm and to agree on every machine.
import t from 'tap'
import { murmur3_32 } from '../../src/sched/murmur3'

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s)

t.test('reference vectors', async (t) => {
  const vectors: [string, number, number][] = [
    ['', 0, 0x00000000],
    ['', 1, 0x514e28b7],
    ['', 0xffffffff, 0x81f16f39],
    ['\0\0\0\0', 0, 0x2362f9de],
    ['a', 0x9747b28c, 0x7fa09ea6],
    ['aaaa', 0x9747b28c, 0x5a97808a],
    ['abc', 0, 0xb3dd93fa],
    ['hello', 0, 0x248bfa47],
    ['Hello, world!', 0x9747b28c, 0x24884cba],
    ['The quick brown fox jumps over the lazy dog', 0, 0x2e4ff723],
    ['The quick brown fox jumps over the lazy dog', 0x9747b28c, 0x2fa826cd],
  ]
  for (const [input, seed, expected] of vectors) {
    t.equal(murmur3_32(bytes(input), seed), expected, `${JSON.stringify(input)} seed 0x${seed.toString(16)}`)
  }
})

t.test('every tail length, unsigned output, seed default 0', async (t) => {
  const data = bytes('0123456789abcdef')
  const seen = new Set<number>()
  for (let len = 0; len <= data.length; len++) {
    const h = murmur3_32(data.subarray(0, len), 7)
    t.ok(Number.isInteger(h) && h >= 0 && h <= 0xffffffff, `length ${len}: unsigned 32-bit`)
    seen.add(h)
  }
  t.equal(seen.size, data.length + 1, 'each prefix hashes differently')
  t.equal(murmur3_32(bytes('hello')), 0x248bfa47)
  t.equal(murmur3_32(bytes('hello'), -1), murmur3_32(bytes('hello'), 0xffffffff), 'seed taken as uint32')
})
