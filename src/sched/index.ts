// SPDX-License-Identifier: GPL-2.0-only
// sched: pure table builders for the table-driven schedulers (mh, wrr, sh, dh). No I/O: backends in,
// typed arrays of server indices out.
export {
  buildMaglev,
  isPrime,
  maglevPermutation,
  maglevSizeProblem,
  MAGLEV_DEFAULT_SIZE,
  MAGLEV_MAX_SIZE,
  MAGLEV_MIN_SIZE,
  MAGLEV_OFFSET_SEED,
  MAGLEV_SKIP_SEED,
} from './maglev'
export type { MaglevBackend } from './maglev'
export { buildWrrSequence, WRR_MAX_PERIOD } from './wrr'
export type { WrrOptions } from './wrr'
export { buildShTable, buildDhTable, HASH_TABLE_SIZE } from './hash'
export { murmur3_32 } from './murmur3'
export { MAX_WEIGHT } from './weights'
