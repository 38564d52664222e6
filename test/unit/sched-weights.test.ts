// SPDX-License-Identifier: GPL-2.0-only
import t from 'tap'
import { checkWeight, checkWeights, gcd, gcdOfPositive, MAX_WEIGHT } from '../../src/sched/weights'

t.test('weight range is ipvsadm\'s', async (t) => {
  t.equal(MAX_WEIGHT, 65535)
  t.doesNotThrow(() => checkWeight(0, 'w'))
  t.doesNotThrow(() => checkWeight(65535, 'w'))
  for (const bad of [-1, 65536, 1.5, NaN, Infinity, '3', null]) {
    t.throws(() => checkWeight(bad, 'servers[2].weight'), {
      name: 'ArgumentError',
      code: 'EARG',
      message: /^servers\[2\]\.weight is .*: a weight must be an integer from 0 to 65535$/,
      hint: /servers\[2\]\.weight/,
    }, `rejects ${String(bad)}`)
  }
  t.throws(() => checkWeights([1, 2, -3], 'weights'), { message: /weights\[2\] is -3/ })
  t.throws(() => checkWeights('1,2' as unknown as number[], 'weights'), { message: /weights must be an array/ })
})

t.test('gcd', async (t) => {
  t.equal(gcd(12, 18), 6)
  t.equal(gcd(0, 5), 5)
  t.equal(gcd(7, 0), 7)
  t.equal(gcd(65535, 65534), 1)
  t.equal(gcdOfPositive([0, 4, 6, 0, 10]), 2)
  t.equal(gcdOfPositive([0, 0]), 0)
  t.equal(gcdOfPositive([]), 0)
})
