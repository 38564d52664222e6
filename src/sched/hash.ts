// SPDX-License-Identifier: GPL-2.0-only
// Bucket tables for the IPVS hashing schedulers: sh (source hashing, ip_vs_sh.c) and dh (destination
// hashing, ip_vs_dh.c). Both map a 256-bucket hash of an address to a server index; the data plane does
// the hashing and the per-packet availability checks, these functions only lay out the buckets.
//
// Index i of the input is the i-th destination in the kernel's walk of svc->destinations (see wrr.ts
// on list order). A bucket holds a server index, or -1 for "no server".
import { ArgumentError } from '../errors'
import { checkWeights } from './weights'

/** Buckets in an sh or dh table (IP_VS_SH_TAB_BITS / IP_VS_DH_TAB_BITS default 8). */
export const HASH_TABLE_SIZE = 256

/**
 * The sh table, as ip_vs_sh_reassign lays it out: walk the servers in list order, cycling, and give each
 * server `weight` consecutive buckets before moving to the next, until all 256 are filled. A server with
 * weight >= 256 therefore fills the table on its own.
 *
 * The kernel's rule is "++count >= weight, move on", so a weight-0 (quiesced) server still takes one
 * bucket per visit; at lookup ip_vs_sh treats that bucket's server as unavailable (no server, or the
 * fallback flag walks on). Here that bucket holds -1, which the data plane treats the same way, so the
 * layout of every other server matches the kernel bucket for bucket. All buckets are -1 when there is
 * no server or every weight is 0.
 */
export function buildShTable(weights: readonly number[]): Int32Array {
  checkWeights(weights, 'weights')
  const table = new Int32Array(HASH_TABLE_SIZE).fill(-1)
  const n = weights.length
  if (n === 0) return table

  let server = 0
  let taken = 0
  for (let bucket = 0; bucket < HASH_TABLE_SIZE; bucket++) {
    const weight = weights[server]!
    table[bucket] = weight > 0 ? server : -1
    if (++taken >= weight) {
      server = (server + 1) % n
      taken = 0
    }
  }
  return table
}

/**
 * The dh table, as ip_vs_dh_reassign lays it out: deal the servers round-robin into the buckets, bucket
 * i -> server i mod n, whatever their weights (the weight is checked per packet: a bucket whose server is
 * quiesced or overloaded yields no server). All buckets are -1 when there is no server.
 */
export function buildDhTable(serverCount: number): Int32Array {
  if (!Number.isInteger(serverCount) || serverCount < 0) {
    throw new ArgumentError(`serverCount is ${String(serverCount)}: it must be a non-negative integer`)
  }
  const table = new Int32Array(HASH_TABLE_SIZE)
  for (let bucket = 0; bucket < HASH_TABLE_SIZE; bucket++) table[bucket] = serverCount === 0 ? -1 : bucket % serverCount
  return table
}
