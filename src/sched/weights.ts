// SPDX-License-Identifier: GPL-2.0-only
// Weight checks and arithmetic shared by the table builders. A builder is the last guard before a
// table reaches the data plane, so it re-checks what the model should already have rejected.
import { ArgumentError } from '../errors'

/** The largest real-server weight, as in ipvsadm ("-w 0 through to 65535"). */
export const MAX_WEIGHT = 65535

/** Throws unless `weight` is an integer from 0 to MAX_WEIGHT; `where` names it ("weights[3]"). */
export function checkWeight(weight: unknown, where: string): asserts weight is number {
  if (typeof weight !== 'number' || !Number.isInteger(weight) || weight < 0 || weight > MAX_WEIGHT) {
    throw new ArgumentError(`${where} is ${String(weight)}: a weight must be an integer from 0 to ${MAX_WEIGHT}`, {
      hint: `set ${where} to an integer from 0 (quiesced) to ${MAX_WEIGHT}`,
    })
  }
}

/** Checks every entry of `weights` with checkWeight; `name` is the argument's name in messages. */
export function checkWeights(weights: readonly number[], name: string): void {
  if (!Array.isArray(weights)) {
    throw new ArgumentError(`${name} must be an array of weights, got ${typeof weights}`)
  }
  for (let i = 0; i < weights.length; i++) checkWeight(weights[i], `${name}[${i}]`)
}

/** Greatest common divisor of two non-negative integers; gcd(0, b) = b. */
export function gcd(a: number, b: number): number {
  while (b !== 0) {
    const r = a % b
    a = b
    b = r
  }
  return a
}

/** The gcd of the positive weights, or 0 when none is positive (as ip_vs_wrr_gcd_weight, less its "or 1"). */
export function gcdOfPositive(weights: readonly number[]): number {
  let g = 0
  for (const w of weights) if (w > 0) g = gcd(w, g)
  return g
}
