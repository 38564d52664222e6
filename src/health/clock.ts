// SPDX-License-Identifier: GPL-2.0-only
// Clocks for the health engine: the system clock for the daemon, and a manual clock that tests (and any
// other component's tests) step by hand. Only the engine's scheduling uses the clock; checkers talk to
// real sockets and processes in real time.
import { performance } from 'node:perf_hooks'
import { setImmediate as nextMacrotask } from 'node:timers/promises'
import type { Clock } from './types'

/** performance.now() and the global timers. */
export const systemClock: Clock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
}

interface ManualTimer {
  id: number
  due: number
  fn: () => void
}

/**
 * Time that moves only when `advance` is called. Timers fire in due order (ties in creation order), each
 * at its own due time, and pending promise callbacks run between two timers, so code that awaits a
 * promise and then sets the next timer behaves as it would in real time.
 */
export class ManualClock implements Clock {
  private current: number
  private seq = 0
  private timers: ManualTimer[] = []

  constructor(start = 0) {
    this.current = start
  }

  now(): number {
    return this.current
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const timer: ManualTimer = { id: ++this.seq, due: this.current + Math.max(0, ms), fn }
    // Keep the list sorted by (due, id): insert after every timer due at or before this one.
    let i = this.timers.length
    while (i > 0 && this.timers[i - 1]!.due > timer.due) i--
    this.timers.splice(i, 0, timer)
    return timer.id
  }

  clearTimeout(handle: unknown): void {
    const i = this.timers.findIndex((timer) => timer.id === handle)
    if (i >= 0) this.timers.splice(i, 1)
  }

  /** Timers not yet fired. */
  get pending(): number {
    return this.timers.length
  }

  /** Moves time forward by `ms`, firing every timer that falls due on the way (also ones set meanwhile). */
  async advance(ms: number): Promise<void> {
    const end = this.current + ms
    await nextMacrotask()
    for (;;) {
      const next = this.timers[0]
      if (next === undefined || next.due > end) break
      this.timers.shift()
      this.current = next.due
      next.fn()
      await nextMacrotask()
    }
    this.current = end
    await nextMacrotask()
  }
}
