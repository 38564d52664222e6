// SPDX-License-Identifier: GPL-2.0-only
// sh and dh bucket tables: hand-computed layouts, bucket counts, and a line-by-line model of the
// kernel's ip_vs_sh_reassign over many seeded random weight sets.
import t from 'tap'
import { buildDhTable, buildShTable, HASH_TABLE_SIZE } from '../../src/sched/hash'
import { mulberry32 as prng, intIn } from '../../src/util/random'


function counts(table: Int32Array, n: number): number[] {
  const c = new Array<number>(n).fill(0)
  for (const v of table) if (v >= 0) c[v]!++
  return c
}

/**
 * ip_vs_sh_reassign as the kernel runs it: the server each bucket points at (even a weight-0 one), or
 * -1 for an empty list. Position -1 is the list head.
 */
function kernelSh(weights: number[]): number[] {
  const n = weights.length
  const HEAD = -1
  const buckets: number[] = []
  let p = HEAD
  let dCount = 0
  for (let i = 0; i < 256; i++) {
    if (n === 0) {
      buckets.push(-1)
      continue
    }
    if (p === HEAD) p = 0
    buckets.push(p)
    if (++dCount >= weights[p]!) {
      p = p + 1 === n ? HEAD : p + 1
      dCount = 0
    }
  }
  return buckets
}

t.test('sh: hand-computed layouts', async (t) => {
  t.equal(HASH_TABLE_SIZE, 256)
  const pattern = (table: Int32Array, len: number) => Array.from(table.subarray(0, len))
  t.same(pattern(buildShTable([1, 3]), 8), [0, 1, 1, 1, 0, 1, 1, 1], 'A, then B B B, repeat')
  t.same(counts(buildShTable([1, 3]), 2), [64, 192], 'weights 1 and 3: 64 and 192 buckets')
  t.same(pattern(buildShTable([2, 1, 1]), 8), [0, 0, 1, 2, 0, 0, 1, 2])
  t.same(
    pattern(buildShTable([1, 0, 2]), 8),
    [0, -1, 2, 2, 0, -1, 2, 2],
    'a quiesced server still takes one bucket per visit (kernel "++count >= weight"), which yields no server',
  )
  t.same(counts(buildShTable([1, 1, 1]), 3), [86, 85, 85], 'equal weights: within one bucket')
  t.same(counts(buildShTable([300, 1]), 2), [256, 0], 'weight >= 256 fills the table before the next server')
  t.same(counts(buildShTable([100, 100, 100]), 3), [100, 100, 56], 'consecutive runs of `weight` buckets')
  t.same(Array.from(new Set(buildShTable([]))), [-1], 'no server: every bucket -1')
  t.same(Array.from(new Set(buildShTable([0, 0]))), [-1], 'every server quiesced: every bucket -1')
  t.type(buildShTable([1]), Int32Array)
  t.equal(buildShTable([1]).length, 256)
})

t.test('sh: matches the kernel layout bucket for bucket', async (t) => {
  const rnd = prng(1)
  let differ = 0
  for (let trial = 0; trial < 300; trial++) {
    const n = intIn(rnd, 0, 40)
    const top = [1, 4, 20, 300][intIn(rnd, 0, 3)]!
    const weights = Array.from({ length: n }, () => (rnd() < 0.2 ? 0 : intIn(rnd, 1, top)))
    const kernel = kernelSh(weights).map((server) => (server >= 0 && weights[server]! > 0 ? server : -1))
    if (Array.from(buildShTable(weights)).join() !== kernel.join()) differ++
  }
  t.equal(differ, 0, '300 random weight sets')
})

t.test('sh: bucket counts follow the weights when they divide the table', async (t) => {
  const rnd = prng(2)
  let bad = 0
  for (let trial = 0; trial < 200; trial++) {
    // Weights summing to a divisor of 256: every server gets exactly 256 * w / sum buckets.
    const sum = [1, 2, 4, 8, 16, 32, 64, 128, 256][intIn(rnd, 0, 8)]!
    const weights: number[] = []
    let left = sum
    while (left > 0) {
      const w = intIn(rnd, 1, left)
      weights.push(w)
      left -= w
    }
    const c = counts(buildShTable(weights), weights.length)
    if (weights.some((w, i) => c[i] !== (256 * w) / sum)) bad++
  }
  t.equal(bad, 0)
})

t.test('sh: weight validation names the entry', async (t) => {
  t.throws(() => buildShTable([1, -2]), { name: 'ArgumentError', code: 'EARG', message: /weights\[1\] is -2/ })
  t.throws(() => buildShTable([0.5]), { code: 'EARG', message: /weights\[0\] is 0\.5/ })
  t.throws(() => buildShTable([70000]), { code: 'EARG', message: /weights\[0\] is 70000/ })
})

t.test('dh: servers dealt round-robin into the buckets', async (t) => {
  t.same(Array.from(buildDhTable(3).subarray(0, 7)), [0, 1, 2, 0, 1, 2, 0])
  t.same(counts(buildDhTable(3), 3), [86, 85, 85], 'within one bucket of each other')
  t.same(counts(buildDhTable(4), 4), [64, 64, 64, 64])
  t.same(Array.from(buildDhTable(1)), new Array(256).fill(0))
  t.same(Array.from(new Set(buildDhTable(0))), [-1], 'no server: every bucket -1')
  const many = buildDhTable(300)
  t.same(Array.from(many), Array.from({ length: 256 }, (_, i) => i), 'more servers than buckets: the first 256')
  for (let n = 1; n <= 300; n++) {
    const c = counts(buildDhTable(n), n)
    if (Math.max(...c) - Math.min(...c) > 1 || buildDhTable(n).some((v, i) => v !== i % n)) {
      t.fail(`n = ${n}`)
    }
  }
  t.throws(() => buildDhTable(-1), { name: 'ArgumentError', code: 'EARG', message: /serverCount is -1/ })
  t.throws(() => buildDhTable(2.5), { code: 'EARG', message: /serverCount is 2\.5/ })
})
