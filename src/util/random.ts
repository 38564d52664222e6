// SPDX-License-Identifier: GPL-2.0-only
// A small seeded PRNG (mulberry32): property tests and simulated packet loss replay the same run.

/** Uniform floats in [0, 1), the same sequence for the same seed on every machine. */
export function mulberry32(seed: number): () => number {
  let s = seed | 0
  return () => {
    s = (s + 0x6d2b79f5) | 0
    let x = Math.imul(s ^ (s >>> 15), 1 | s)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

/** An integer in [lo, hi] from `rnd`. */
export const intIn = (rnd: () => number, lo: number, hi: number): number => lo + Math.floor(rnd() * (hi - lo + 1))
