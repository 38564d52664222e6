// SPDX-License-Identifier: GPL-2.0-only
// Weighted round-robin: one period of the sequence the Linux IPVS wrr scheduler emits
// (net/netfilter/ipvs/ip_vs_wrr.c). The data plane walks it with a per-CPU cursor.
//
// What the kernel does. ip_vs_wrr_init_svc sets, over the service's destination list:
//   di = gcd of the positive weights (1 if none)
//   mw = max weight - (di - 1)
//   cw = mw            (current weight)
//   cl = list head     (current position)
// and each ip_vs_wrr_schedule call walks on from cl to the next destination with
// weight >= cw (and not overloaded), makes it cl and returns it. On reaching the end of the list it
// does cw -= di; if cw <= 0 then cw = mw; and carries on from the head. (The last_pass/stop logic
// only ends the search when every destination is overloaded; the static sequence has no
// overload, which the data plane checks per packet.) So from the initial state the kernel emits,
// pass after pass, for cw = mw, mw - di, mw - 2*di, ... while cw > 0, every destination with
// weight >= cw in list order, and then starts over: one period.
//
// The same sequence from weights reduced by the gcd. Write w = di * r and max = di * R. The passes
// run for k = 0 .. R-1 with cw = di*(R - 1 - k) + 1, and di*r >= di*(R - 1 - k) + 1 holds exactly
// when r >= R - k. So pass k emits, in list order, the servers whose reduced weight r >= R - k:
// levels R, R-1, ..., 1. A server with reduced weight r is in r passes, so the period is
// sum(r) = sum(w) / gcd, and weight 0 is never emitted (cw >= 1 always).
//
// Worked examples. Weights A=1, B=3: levels 3, 2, 1 emit B | B | A B, so the period is B B A B and
// A takes 1 of every 4 (the LVS documentation's example). Weights A=4, B=3, C=2: levels 4..1 emit
// A | A B | A B C | A B C = A A B A B C A B C, the sequence the LVS documentation gives.
// Weights 2 and 4 reduce to 1 and 2: B | A B.
//
// List order: index i of `weights` is the i-th destination of the walk. (The kernel puts each newly
// added destination at the head of svc->destinations, list_add_rcu, so its walk order is the reverse of
// `ipvsadm -a` order; the caller decides which order it hands in.)
//
// Length cap: the period must fit a BPF array, so it is at most WRR_MAX_PERIOD entries. Longer periods
// are rejected, not scaled: scaling would no longer be the IPVS sequence, and the remedy (smaller
// weights with the same ratios) belongs to the operator.
import { ArgumentError } from '../errors'
import { checkWeights, gcdOfPositive } from './weights'

/** The longest wrr period (sum of the weights divided by their gcd) a table may hold. */
export const WRR_MAX_PERIOD = 65536

export interface WrrOptions {
  /** The longest period accepted; default WRR_MAX_PERIOD. */
  maxPeriod?: number
}

/**
 * One period of the IPVS wrr sequence: server indices into `weights`, in the order the kernel would
 * schedule them from a fresh service. Length sum(weights)/gcd(positive weights); empty when no weight is
 * positive (no server available). Weight-0 servers never appear.
 *
 * Int32Array, like every sched table, so the writer handles one element type.
 */
export function buildWrrSequence(weights: readonly number[], opts: WrrOptions = {}): Int32Array {
  checkWeights(weights, 'weights')
  const maxPeriod = opts.maxPeriod ?? WRR_MAX_PERIOD
  if (!Number.isInteger(maxPeriod) || maxPeriod < 1) {
    throw new ArgumentError(`maxPeriod is ${String(maxPeriod)}: it must be a positive integer`)
  }

  const g = gcdOfPositive(weights)
  if (g === 0) return new Int32Array(0)

  // Reduced weights, their sum (the period) and maximum (the number of passes).
  let period = 0
  let levels = 0
  const reduced = weights.map((w) => w / g)
  for (const r of reduced) {
    period += r
    if (r > levels) levels = r
  }
  if (period > maxPeriod) {
    throw new ArgumentError(
      `wrr weights give a period of ${period} connections (sum of weights / their gcd ${g}), more than the ${maxPeriod} a table holds`,
      { hint: `use smaller weights with the same ratios, e.g. divide them by ${Math.ceil(period / maxPeriod)}` },
    )
  }

  // Servers by reduced weight, heaviest first: at level L the servers with r >= L are "in". The set only
  // grows as L falls, so keep it as an index-ordered list and insert the newcomers of each level.
  const byWeight = [...reduced.keys()].filter((i) => reduced[i]! > 0).sort((a, b) => reduced[b]! - reduced[a]! || a - b)
  const inPass: number[] = []
  const seq = new Int32Array(period)
  let next = 0 // next newcomer in byWeight
  let n = 0
  for (let level = levels; level >= 1; level--) {
    while (next < byWeight.length && reduced[byWeight[next]!]! >= level) {
      const server = byWeight[next++]!
      let at = inPass.length
      while (at > 0 && inPass[at - 1]! > server) at--
      inPass.splice(at, 0, server)
    }
    for (const server of inPass) seq[n++] = server
  }
  return seq
}
