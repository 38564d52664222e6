// SPDX-License-Identifier: GPL-2.0-only
// MurmurHash3, x86 32-bit variant (Austin Appleby's MurmurHash3_x86_32, public domain), written
// here from the reference algorithm. Only 32-bit integer arithmetic (Math.imul, >>> 0) is used, so
// the result is the same on every machine, Node version and byte order: the bytes are read as
// little-endian words by hand, never through a typed-array view of the buffer.
//
// xvs uses it where a hash must agree across directors and restarts (Maglev offset and skip), so
// the function and the seeds that callers pass are part of the on-the-wire behaviour: changing
// either reshuffles every Maglev table and moves flows.

const C1 = 0xcc9e2d51
const C2 = 0x1b873593

/** MurmurHash3_x86_32 of `data` with `seed`; an unsigned 32-bit integer. */
export function murmur3_32(data: Uint8Array, seed = 0): number {
  const len = data.length
  const tail = len & ~3
  let h = seed >>> 0

  for (let i = 0; i < tail; i += 4) {
    let k = data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24)
    k = Math.imul(k, C1)
    k = (k << 15) | (k >>> 17)
    k = Math.imul(k, C2)
    h ^= k
    h = (h << 13) | (h >>> 19)
    h = (Math.imul(h, 5) + 0xe6546b64) | 0
  }

  const rest = len & 3
  if (rest > 0) {
    let k = data[tail]!
    if (rest > 1) k ^= data[tail + 1]! << 8
    if (rest > 2) k ^= data[tail + 2]! << 16
    k = Math.imul(k, C1)
    k = (k << 15) | (k >>> 17)
    k = Math.imul(k, C2)
    h ^= k
  }

  h ^= len
  return fmix32(h)
}

/** The MurmurHash3 finalizer: every input bit affects every output bit. */
function fmix32(h: number): number {
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}
