// SPDX-License-Identifier: GPL-2.0-only
// wrr sequence builder: the LVS worked examples, hand-computed IPVS orders, and a comparison with a
// line-by-line model of the kernel's ip_vs_wrr_schedule over many seeded random weight sets.
import t from 'tap'
import { buildWrrSequence, WRR_MAX_PERIOD } from '../../src/sched/wrr'
import { mulberry32 as prng, intIn } from '../../src/util/random'

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b))
const letters = (seq: Int32Array): string => Array.from(seq, (i) => String.fromCharCode(65 + i)).join('')

/**
 * ip_vs_wrr.c as the kernel runs it (init_svc, then schedule once per new connection), without overload
 * flags. Position -1 is the list head. Returns the first `count` choices.
 */
function kernelWrr(weights: number[], count: number): number[] {
  const n = weights.length
  const HEAD = -1
  // ip_vs_wrr_gcd_weight / ip_vs_wrr_max_weight / ip_vs_wrr_init_svc
  let g = 0
  for (const w of weights) if (w > 0) g = g > 0 ? gcd(w, g) : w
  const di = g || 1
  const mw = Math.max(0, ...weights) - (di - 1)
  let cw = mw
  let cl = HEAD
  const out: number[] = []
  for (let c = 0; c < count; c++) {
    // ip_vs_wrr_schedule
    let dest = cl
    if (mw === 0) break // err_noavail
    const last = dest
    let stop: number | null = null
    let lastPass = false
    let restarted = false
    let found: number | null = null
    search: for (;;) {
      for (let p = dest + 1; p < n; p++) {
        // list_for_each_entry_continue_rcu
        dest = p
        if (weights[p]! >= cw) {
          found = p
          break search
        }
        if (dest === stop) break search // err_over
      }
      dest = HEAD
      cw -= di
      if (cw <= 0) {
        cw = mw
        if (lastPass || last === HEAD) break search // err_over
        restarted = true
      }
      lastPass = cw <= di
      if (lastPass && restarted && last !== HEAD) stop = last
    }
    if (found === null) throw new Error('kernel model found no server')
    cl = found
    out.push(found)
  }
  return out
}

t.test('LVS worked example: weights 1 and 3 send 1 of every 4 to the first', async (t) => {
  const seq = buildWrrSequence([1, 3])
  t.equal(letters(seq), 'BBAB', 'cw 3: B | cw 2: B | cw 1: A B')
  // Walk the sequence with a cursor over many cycles, as the data plane does.
  const picks = [0, 0]
  for (let i = 0; i < 4000; i++) picks[seq[i % seq.length]!]!++
  t.same(picks, [1000, 3000])
})

t.test('hand-computed IPVS orders', async (t) => {
  // LVS documentation: A, B, C with weights 4, 3, 2 give AABABCABC.
  t.equal(letters(buildWrrSequence([4, 3, 2])), 'AABABCABC')
  // gcd 2: mw = 4 - 1 = 3; cw 3: B; cw 1: A B.
  t.equal(letters(buildWrrSequence([2, 4])), 'BAB')
  // Equal weights: plain round robin.
  t.equal(letters(buildWrrSequence([5, 5, 5])), 'ABC')
  // cw 5: C | 4: C | 3: A C | 2: A C | 1: A B C (B weight 1, D quiesced).
  t.equal(letters(buildWrrSequence([3, 1, 5, 0])), 'CCACACABC')
  t.equal(letters(buildWrrSequence([7])), 'A')
  t.equal(letters(buildWrrSequence([0, 2, 0])), 'B', 'one live server, weight reduced to 1')
})

t.test('matches the kernel scheduler over several periods', async (t) => {
  const rnd = prng(1)
  let differ = 0
  for (let trial = 0; trial < 300; trial++) {
    const n = intIn(rnd, 1, 12)
    const scale = intIn(rnd, 1, 6) // a common factor, so gcd reduction is exercised
    const top = [3, 10, 50][intIn(rnd, 0, 2)]!
    const weights = Array.from({ length: n }, () => (rnd() < 0.2 ? 0 : intIn(rnd, 1, top) * scale))
    const seq = Array.from(buildWrrSequence(weights))
    const periods = 3
    const kernel = kernelWrr(weights, seq.length * periods)
    const ours = Array.from({ length: periods }, () => seq).flat()
    if (kernel.join() !== ours.join()) {
      differ++
      t.comment(`weights ${weights.join(',')}: kernel ${kernel.slice(0, 30).join(',')} ours ${ours.slice(0, 30).join(',')}`)
    }
  }
  t.equal(differ, 0, '300 random weight sets, 3 periods each')
})

t.test('period length, gcd reduction, shares, weight 0', async (t) => {
  const rnd = prng(2)
  let badLength = 0
  let badShare = 0
  let zeroChosen = 0
  let notReduced = 0
  for (let trial = 0; trial < 300; trial++) {
    const n = intIn(rnd, 1, 20)
    const weights = Array.from({ length: n }, () => (rnd() < 0.25 ? 0 : intIn(rnd, 1, 200)))
    const seq = buildWrrSequence(weights)
    const g = weights.reduce((a, w) => (w > 0 ? gcd(w, a) : a), 0)
    const sum = weights.reduce((a, w) => a + w, 0)
    if (seq.length !== (g === 0 ? 0 : sum / g)) badLength++
    const picks = new Array<number>(n).fill(0)
    for (const i of seq) picks[i]!++
    weights.forEach((w, i) => {
      if (w === 0 && picks[i]! > 0) zeroChosen++
      if (g > 0 && picks[i] !== w / g) badShare++
    })
    const k = intIn(rnd, 2, 7)
    const scaled = buildWrrSequence(weights.map((w) => w * Math.min(k, Math.floor(65535 / Math.max(1, ...weights)))))
    if (scaled.join() !== seq.join()) notReduced++
  }
  t.equal(badLength, 0, 'length = sum(weights) / gcd')
  t.equal(badShare, 0, 'each server appears weight / gcd times')
  t.equal(zeroChosen, 0, 'weight 0 never chosen')
  t.equal(notReduced, 0, 'multiplying every weight by a constant gives the same sequence')
})

t.test('no live server: empty sequence', async (t) => {
  t.equal(buildWrrSequence([]).length, 0)
  t.equal(buildWrrSequence([0, 0, 0]).length, 0)
  t.type(buildWrrSequence([1]), Int32Array)
})

t.test('period cap', async (t) => {
  t.equal(WRR_MAX_PERIOD, 65536)
  t.equal(buildWrrSequence([65535, 1]).length, 65536, 'exactly the cap is fine')
  t.equal(buildWrrSequence([65534, 65534]).length, 2, 'large weights with a large gcd are fine')
  t.throws(() => buildWrrSequence([65535, 2]), {
    name: 'ArgumentError',
    code: 'EARG',
    message: /period of 65537 connections .* more than the 65536/,
    hint: /divide them by 2/,
  })
  t.throws(() => buildWrrSequence([3, 2], { maxPeriod: 4 }), { message: /period of 5 .* more than the 4/ })
  t.equal(buildWrrSequence([3, 2], { maxPeriod: 5 }).length, 5)
  t.throws(() => buildWrrSequence([1], { maxPeriod: 0 }), { code: 'EARG', message: /maxPeriod is 0/ })
})

t.test('weight validation names the entry', async (t) => {
  const bad: [number, RegExp][] = [
    [-1, /weights\[1\] is -1/],
    [1.5, /weights\[1\] is 1\.5/],
    [65536, /weights\[1\] is 65536/],
    [NaN, /weights\[1\] is NaN/],
  ]
  for (const [w, message] of bad) {
    t.throws(() => buildWrrSequence([1, w]), { code: 'EARG', message, hint: /weights\[1\]/ }, `weight ${w}`)
  }
})
