// SPDX-License-Identifier: GPL-2.0-only
// The clock timers run on (health checks, failover). Library code never calls setTimeout or Date.now
// directly: it takes a Clock, so tests drive time with FakeClock and check timer arithmetic exactly.
// Times are milliseconds and may be fractional (VRRP's Skew_Time is 609.375 ms at priority 100).
import { setImmediate as nextMacrotask } from 'node:timers/promises'

export type TimerHandle = unknown

export interface Clock {
  /** Monotonic milliseconds. */
  now(): number
  setTimeout(fn: () => void, ms: number): TimerHandle
  clearTimeout(handle: TimerHandle): void
}

/** The process's monotonic clock and Node timers (millisecond resolution). */
export const systemClock: Clock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, Math.max(0, ms)),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
}

interface FakeTimer {
  due: number
  seq: number
  fn: () => void
}

/**
 * A deterministic clock for tests. Time moves only through advance()/advanceTo(); timers fire in order
 * of due time, and timers due at the same instant fire in the order they were set. A timer set while
 * others fire runs in the same advance if it falls due within it.
 */
export class FakeClock implements Clock {
  private time: number
  private seq = 0
  private readonly timers = new Map<number, FakeTimer>()

  constructor(start = 0) {
    this.time = start
  }

  now(): number {
    return this.time
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const id = ++this.seq
    const delay = Number.isFinite(ms) && ms > 0 ? ms : 0
    this.timers.set(id, { due: this.time + delay, seq: id, fn })
    return id
  }

  clearTimeout(handle: TimerHandle): void {
    if (typeof handle === 'number') this.timers.delete(handle)
  }

  /** Timers still pending. */
  get pending(): number {
    return this.timers.size
  }

  /** Due time of the next pending timer. */
  nextDue(): number | undefined {
    return this.peek()?.due
  }

  /** Move time forward by `ms`, firing every timer that falls due; returns how many fired. */
  advance(ms: number): number {
    return this.advanceTo(this.time + ms)
  }

  /** Move time to `target` (never backwards), firing every timer due at or before it. */
  advanceTo(target: number): number {
    let fired = 0
    for (;;) {
      const next = this.peek()
      if (!next || next.due > target) break
      this.timers.delete(next.seq)
      if (next.due > this.time) this.time = next.due
      fired++
      next.fn()
    }
    if (target > this.time) this.time = target
    return fired
  }

  /**
   * Like advance(), for code driven by promises: pending promise callbacks run before the first
   * timer, between two timers and at the end, so code that awaits and then sets its next timer
   * behaves as it would in real time.
   */
  async advanceAsync(ms: number): Promise<void> {
    const end = this.time + ms
    await nextMacrotask()
    for (;;) {
      const next = this.peek()
      if (!next || next.due > end) break
      this.advanceTo(next.due)
      await nextMacrotask()
    }
    this.advanceTo(end)
    await nextMacrotask()
  }

  private peek(): FakeTimer | undefined {
    let best: FakeTimer | undefined
    for (const t of this.timers.values()) {
      if (!best || t.due < best.due || (t.due === best.due && t.seq < best.seq)) best = t
    }
    return best
  }
}
