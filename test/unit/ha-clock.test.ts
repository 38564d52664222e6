// SPDX-License-Identifier: GPL-2.0-only
// The fake clock the failover tests run on: ordering, cancellation, timers set from timers.
import t from 'tap'
import { FakeClock, systemClock } from '../../src/util/clock'

t.test('timers fire in due order, ties in the order they were set', async (t) => {
  const c = new FakeClock(100)
  const seen: string[] = []
  c.setTimeout(() => seen.push(`b@${c.now()}`), 20)
  c.setTimeout(() => seen.push(`a@${c.now()}`), 10)
  c.setTimeout(() => seen.push(`c@${c.now()}`), 20)
  c.setTimeout(() => seen.push(`frac@${c.now()}`), 0.375)
  t.equal(c.pending, 4)
  t.equal(c.nextDue(), 100.375)
  t.equal(c.advance(15), 2)
  t.same(seen, ['frac@100.375', 'a@110'])
  t.equal(c.now(), 115, 'time lands on the target')
  c.advance(100)
  t.same(seen, ['frac@100.375', 'a@110', 'b@120', 'c@120'])
  t.equal(c.pending, 0)
})

t.test('cancel, negative delays, and timers set while firing', async (t) => {
  const c = new FakeClock()
  const seen: number[] = []
  const h = c.setTimeout(() => seen.push(-1), 5)
  c.clearTimeout(h)
  c.clearTimeout(undefined)
  c.setTimeout(() => {
    seen.push(c.now())
    c.setTimeout(() => seen.push(c.now()), 0)
    c.setTimeout(() => seen.push(c.now()), 30)
    c.setTimeout(() => seen.push(c.now()), 100)
  }, 10)
  c.setTimeout(() => seen.push(c.now()), -5)
  c.advanceTo(50)
  t.same(seen, [0, 10, 10, 40], 'zero and in-window timers set from a timer run in the same advance')
  c.advanceTo(20)
  t.equal(c.now(), 50, 'never moves backwards')
  c.advance(60)
  t.same(seen, [0, 10, 10, 40, 110])
})

t.test('the system clock wraps Node timers', async (t) => {
  const start = systemClock.now()
  await new Promise<void>((resolve) => systemClock.setTimeout(resolve, 5))
  t.ok(systemClock.now() - start >= 4, 'monotonic milliseconds advanced')
  let fired = false
  const h = systemClock.setTimeout(() => (fired = true), 1)
  systemClock.clearTimeout(h)
  await new Promise<void>((resolve) => setTimeout(resolve, 10))
  t.notOk(fired, 'cleared')
})
