// SPDX-License-Identifier: GPL-2.0-only
// FakeClock: timers fire in due order at their own time, promise callbacks run between them, and
// cleared timers never fire.
import t from 'tap'
import { FakeClock, systemClock } from '../../src/util/clock'

t.test('fires timers in due order, each at its own time', async (t) => {
  const clock = new FakeClock(1000)
  const seen: Array<[string, number]> = []
  clock.setTimeout(() => seen.push(['b', clock.now()]), 20)
  clock.setTimeout(() => seen.push(['a', clock.now()]), 10)
  clock.setTimeout(() => seen.push(['c', clock.now()]), 20)
  await clock.advanceAsync(15)
  t.same(seen, [['a', 1010]])
  t.equal(clock.now(), 1015)
  await clock.advanceAsync(100)
  t.same(seen, [['a', 1010], ['b', 1020], ['c', 1020]], 'ties in creation order')
  t.equal(clock.pending, 0)
})

t.test('timers set while advancing fire in the same advance', async (t) => {
  const clock = new FakeClock()
  const seen: number[] = []
  const tick = (): void => {
    seen.push(clock.now())
    if (seen.length < 5) clock.setTimeout(tick, 10)
  }
  clock.setTimeout(tick, 10)
  await clock.advanceAsync(100)
  t.same(seen, [10, 20, 30, 40, 50])
})

t.test('promise callbacks run before the next timer', async (t) => {
  const clock = new FakeClock()
  const seen: string[] = []
  clock.setTimeout(() => {
    void Promise.resolve()
      .then(() => Promise.resolve())
      .then(() => {
        seen.push(`then@${clock.now()}`)
        clock.setTimeout(() => seen.push(`timer@${clock.now()}`), 0)
      })
  }, 5)
  clock.setTimeout(() => seen.push(`late@${clock.now()}`), 6)
  await clock.advanceAsync(10)
  t.same(seen, ['then@5', 'timer@5', 'late@6'])
})

t.test('cleared timers do not fire', async (t) => {
  const clock = new FakeClock()
  let fired = false
  const h = clock.setTimeout(() => (fired = true), 5)
  clock.clearTimeout(h)
  clock.clearTimeout(12345) // unknown handle: ignored
  await clock.advanceAsync(10)
  t.equal(fired, false)
})

t.test('system clock is monotonic and its timers run', async (t) => {
  const a = systemClock.now()
  await new Promise<void>((resolve) => systemClock.setTimeout(resolve, 5))
  t.ok(systemClock.now() >= a)
  let fired = false
  const h = systemClock.setTimeout(() => (fired = true), 1)
  systemClock.clearTimeout(h)
  await new Promise((resolve) => setTimeout(resolve, 10))
  t.equal(fired, false)
})
