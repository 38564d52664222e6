// SPDX-License-Identifier: GPL-2.0-only
// Next hops for the writer, cached. The writer resolves every real server's next hop on each apply
// (routes and neighbours through `ip`, a probe when the MAC is missing), which is right for a one-off
// command and too slow and too blocking for a daemon that applies on every health transition. Here a
// hop is reused for `ttlMs`; a failure is remembered for `failTtlMs` (so a dead real server costs one
// probe per period, not one per apply), and meanwhile a hop that once resolved is still used (its MAC
// has most likely not changed because it stopped answering ARP). A reload flushes everything.
import { resolveNextHop, ResolveError, type NextHop, type ResolveOptions } from '../dataplane/neigh'
import { systemClock, type Clock } from '../util/clock'

export interface NextHopCacheOptions {
  clock?: Clock
  ttlMs?: number
  failTtlMs?: number
  /** Probes before giving up on a missing neighbour entry; default 1 (each may block up to a second). */
  probes?: number
  resolve?: (address: string, opts: ResolveOptions) => NextHop
}

interface Entry { hop?: NextHop; at: number; failedAt?: number; error?: Error }

export class NextHopCache {
  private readonly entries = new Map<string, Entry>()
  private readonly clock: Clock
  private readonly ttlMs: number
  private readonly failTtlMs: number
  private readonly probes: number
  private readonly inner: (address: string, opts: ResolveOptions) => NextHop

  constructor(opts: NextHopCacheOptions = {}) {
    this.clock = opts.clock ?? systemClock
    this.ttlMs = opts.ttlMs ?? 30_000
    this.failTtlMs = opts.failTtlMs ?? 10_000
    this.probes = opts.probes ?? 1
    this.inner = opts.resolve ?? resolveNextHop
  }

  /** For WriterOptions.resolve. Throws (a ResolveError) only for an address never resolved. */
  readonly resolve = (address: string, opts: ResolveOptions): NextHop => {
    const key = `${opts.requireOnLink ? 'L' : '-'}|${address}`
    const now = this.clock.now()
    const e = this.entries.get(key)
    if (e?.hop && now - e.at < this.ttlMs) return e.hop
    if (e?.failedAt !== undefined && now - e.failedAt < this.failTtlMs) {
      if (e.hop) return e.hop
      throw e.error!
    }
    try {
      const hop = this.inner(address, { probes: this.probes, ...opts })
      this.entries.set(key, { hop, at: now })
      return hop
    } catch (err) {
      const error = err instanceof Error ? err : new ResolveError(String(err))
      this.entries.set(key, { ...(e?.hop ? { hop: e.hop } : {}), at: e?.at ?? now, failedAt: now, error })
      if (e?.hop) return e.hop
      throw error
    }
  }

  /** Addresses whose last resolution failed and that never resolved, with the error. */
  failures(): Map<string, Error> {
    const out = new Map<string, Error>()
    for (const [k, e] of this.entries) if (!e.hop && e.error) out.set(k.slice(2), e.error)
    return out
  }

  /** Try again the failed addresses whose failure is older than failTtlMs; true if one resolved. */
  retry(): boolean {
    let recovered = false
    for (const [k, e] of [...this.entries]) {
      if (e.hop || !e.error) continue
      try {
        this.resolve(k.slice(2), { requireOnLink: k[0] === 'L' })
        recovered = true
      } catch { /* still failing */ }
    }
    return recovered
  }

  flush(): void {
    this.entries.clear()
  }
}
