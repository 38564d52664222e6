// SPDX-License-Identifier: GPL-2.0-only
// Maglev hashing (Eisenbud et al., "Maglev: A Fast and Reliable Software Network Load Balancer",
// NSDI 2016, section 3.4), the table behind the `mh` scheduler. The data plane hashes a flow to a slot
// and the slot names the real server; every director that builds the table from the same backends gets
// the same table, so directors agree on a flow's server without sharing state.
//
// Permutations. Each backend's key (its stable identity, e.g. "10.0.0.1:80") gives
//   offset = murmur3_32(key, MAGLEV_OFFSET_SEED) mod M
//   skip   = murmur3_32(key, MAGLEV_SKIP_SEED) mod (M - 1) + 1
// and its preference list is offset, offset + skip, offset + 2*skip, ... (mod M). M is prime and
// 1 <= skip < M, so the list visits every slot exactly once. MurmurHash3 x86_32 (murmur3.ts) is
// defined on bytes with 32-bit arithmetic only, so the result does not depend on the machine; string
// keys are hashed as their UTF-8 bytes.
//
// Population, weighted as Katran's MaglevHashV2 does it: rounds over the backends; in each round a
// backend adds its weight to a running credit, and when the credit reaches the largest weight it pays
// that much and takes one turn: the next slot of its preference list that is still empty. With equal
// weights every backend takes a turn every round (the paper's algorithm, slot counts within 1 of each
// other). With unequal weights backend i takes a turn in a fraction w_i / max_w of the rounds, so its
// slot count is within 1 + N*w_i/W of M*w_i/W (W the sum of the N positive weights). (IPVS mh instead
// gives a backend weight/gcd consecutive turns per round, with large weights shifted down to a few
// bits: coarser shares.)
//
// Disruption. Removing a backend hands its slots to the others and, as in any Maglev, moves some of
// theirs too; that churn grows with N/M (paper, figure 12), hence its advice M >= 100*N. The tests
// measure it: under 0.5/N of the table for M >= 1000*N, under 4/N for M >= 100*N.
//
// Fill order. Backends are visited in the byte order of their keys, not in the order given, so the
// table is a function of the set of (key, weight) pairs: two directors whose configs list the same real
// servers in different orders still build the same table. Slots hold indices into the array given.
//
// Weight 0 (quiesced) backends take no slot; -1 fills the table only when no weight is positive.
import { ArgumentError } from '../errors'
import { murmur3_32 } from './murmur3'
import { checkWeight } from './weights'

/** The default table size (a prime; ~1000 slots per backend for 16 backends). */
export const MAGLEV_DEFAULT_SIZE = 16381
/** The largest table size (a prime; the largest size IPVS mh offers too). */
export const MAGLEV_MAX_SIZE = 131071
/** The smallest table size. */
export const MAGLEV_MIN_SIZE = 2

/** murmur3 seed for a backend's offset. Part of the table's definition: changing it moves flows. */
export const MAGLEV_OFFSET_SEED = 0
/** murmur3 seed for a backend's skip. Part of the table's definition: changing it moves flows. */
export const MAGLEV_SKIP_SEED = 0x9e3779b9

export interface MaglevBackend {
  /** Stable identity of the backend, e.g. "10.0.0.1:80"; a string is hashed as its UTF-8 bytes. */
  key: string | Uint8Array
  /** 0 (quiesced: no slot) to MAX_WEIGHT. */
  weight: number
}

/** True when `n` is a prime integer. Trial division: meant for table sizes, not for huge numbers. */
export function isPrime(n: number): boolean {
  if (!Number.isSafeInteger(n) || n < 2) return false
  if (n < 4) return true
  if (n % 2 === 0 || n % 3 === 0) return false
  for (let d = 5; d * d <= n; d += 6) {
    if (n % d === 0 || n % (d + 2) === 0) return false
  }
  return true
}

/**
 * Why `size` cannot be a Maglev table size, with the fix, or undefined when it can. For validators
 * (the model) that want to raise their own error naming their own field.
 */
export function maglevSizeProblem(size: number): { message: string; hint: string } | undefined {
  const range = `a prime from ${MAGLEV_MIN_SIZE} to ${MAGLEV_MAX_SIZE}`
  if (typeof size !== 'number' || !Number.isInteger(size)) {
    return {
      message: `maglev table size ${String(size)} is not an integer`,
      hint: `use ${range}, e.g. ${MAGLEV_DEFAULT_SIZE} (the default)`,
    }
  }
  if (size < MAGLEV_MIN_SIZE) {
    return { message: `maglev table size ${size} is below ${MAGLEV_MIN_SIZE}`, hint: `use ${range}, e.g. ${MAGLEV_DEFAULT_SIZE} (the default)` }
  }
  if (size > MAGLEV_MAX_SIZE) {
    return {
      message: `maglev table size ${size} is above the maximum ${MAGLEV_MAX_SIZE}`,
      hint: `use ${MAGLEV_MAX_SIZE}, the largest allowed (it is prime)`,
    }
  }
  if (!isPrime(size)) {
    const below = primeBelow(size)
    const above = primeAbove(size)
    const near = above <= MAGLEV_MAX_SIZE ? `${below} or ${above}` : `${below}`
    return { message: `maglev table size ${size} is not prime`, hint: `use the nearest prime: ${near}` }
  }
  return undefined
}

/** The largest prime < n (n > 2). */
function primeBelow(n: number): number {
  let p = n - 1
  while (!isPrime(p)) p--
  return p
}

/** The smallest prime > n. */
function primeAbove(n: number): number {
  let p = n + 1
  while (!isPrime(p)) p++
  return p
}

/** A backend's Maglev preference list: slot offset + j*skip (mod tableSize) is its j-th choice. */
export function maglevPermutation(key: string | Uint8Array, tableSize: number): { offset: number; skip: number } {
  const bytes = keyBytes(key)
  return {
    offset: murmur3_32(bytes, MAGLEV_OFFSET_SEED) % tableSize,
    skip: (murmur3_32(bytes, MAGLEV_SKIP_SEED) % (tableSize - 1)) + 1,
  }
}

/**
 * The Maglev lookup table: `tableSize` slots, each the index in `backends` of the backend that owns
 * it, or all -1 when no backend has a positive weight. Throws ArgumentError on a size that is not an
 * allowed prime, a bad weight, an empty or duplicate key, or more positive-weight backends than slots.
 */
export function buildMaglev(backends: readonly MaglevBackend[], tableSize: number = MAGLEV_DEFAULT_SIZE): Int32Array {
  const problem = maglevSizeProblem(tableSize)
  if (problem) throw new ArgumentError(problem.message, { hint: problem.hint })
  if (!Array.isArray(backends)) throw new ArgumentError(`backends must be an array, got ${typeof backends}`)

  // Check every backend, then order the positive-weight ones canonically by key bytes.
  const entries: { index: number; bytes: Uint8Array; weight: number }[] = []
  for (let i = 0; i < backends.length; i++) {
    const b = backends[i]
    const bytes = keyBytes(b?.key, `backends[${i}].key`)
    checkWeight(b!.weight, `backends[${i}].weight`)
    entries.push({ index: i, bytes, weight: b!.weight })
  }
  entries.sort((a, b) => compareBytes(a.bytes, b.bytes))
  for (let e = 1; e < entries.length; e++) {
    if (compareBytes(entries[e - 1]!.bytes, entries[e]!.bytes) === 0) {
      const [first, second] = [entries[e - 1]!.index, entries[e]!.index].sort((a, b) => a - b)
      throw new ArgumentError(
        `backends[${first}] and backends[${second}] have the same key ${showKey(backends[first]!.key)}: keys must be unique`,
        { hint: 'give each backend its own stable key, e.g. "address:port"' },
      )
    }
  }
  const active = entries.filter((e) => e.weight > 0)

  const m = tableSize
  const table = new Int32Array(m).fill(-1)
  const k = active.length
  if (k === 0) return table
  if (k > m) {
    throw new ArgumentError(`${k} backends with weight > 0 do not fit a maglev table of ${m} slots`, {
      hint: `use a larger prime table size, ideally 100 or more slots per backend (up to ${MAGLEV_MAX_SIZE})`,
    })
  }
  if (k === 1) return table.fill(active[0]!.index)

  const fill = new MaglevFill(table, active, maxWeightOf(active))
  // Speed only, same table: see MaglevTail.
  const tailSize = Math.min(TAIL_SLOTS, Math.floor(TAIL_RANKS / k))
  if (tailSize >= 8 && m >= 4 * tailSize) {
    fill.walk(m - tailSize)
    fill.finishInTail()
  } else {
    fill.walk(m)
  }
  return table
}

function maxWeightOf(backends: readonly { weight: number }[]): number {
  let max = 0
  for (const b of backends) if (b.weight > max) max = b.weight
  return max
}

/**
 * The population loop: round-robin turns with weight credits. The two phases are separate methods so
 * that V8 compiles each hot loop with full type feedback; with both in one function the optimized code
 * was thrown away on reaching the second phase, and a first call cost several times a later one.
 */
class MaglevFill {
  private readonly table: Int32Array
  private readonly index: Int32Array // backend j's index in the caller's array
  private readonly weight: Int32Array
  private readonly offset: Int32Array
  private readonly skip: Int32Array
  private readonly pos: Int32Array // where backend j's walk of its preference list stands
  private readonly credit: Int32Array
  private readonly used: Uint8Array
  private readonly maxWeight: number
  private filled = 0
  private next = 0 // the backend whose turn comes next

  constructor(table: Int32Array, backends: readonly { index: number; bytes: Uint8Array; weight: number }[], maxWeight: number) {
    const k = backends.length
    const m = table.length
    this.table = table
    this.index = new Int32Array(k)
    this.weight = new Int32Array(k)
    this.offset = new Int32Array(k)
    this.skip = new Int32Array(k)
    this.credit = new Int32Array(k)
    this.used = new Uint8Array(m)
    this.maxWeight = maxWeight
    for (let j = 0; j < k; j++) {
      const b = backends[j]!
      this.index[j] = b.index
      this.weight[j] = b.weight
      this.offset[j] = murmur3_32(b.bytes, MAGLEV_OFFSET_SEED) % m
      this.skip[j] = (murmur3_32(b.bytes, MAGLEV_SKIP_SEED) % (m - 1)) + 1
    }
    this.pos = this.offset.slice()
  }

  /** Takes turns, each walking the backend's preference list to its next empty slot, until `stop` slots are filled. */
  walk(stop: number): void {
    const { table, index, weight, skip, pos, credit, used, maxWeight } = this
    const k = index.length
    const m = table.length
    let filled = this.filled
    let j = this.next
    while (filled < stop) {
      const c = credit[j]! + weight[j]!
      if (c < maxWeight) {
        credit[j] = c
      } else {
        credit[j] = c - maxWeight
        // pos stays on the slot just taken; the next turn steps past it.
        let slot = pos[j]!
        const step = skip[j]!
        while (used[slot] !== 0) {
          slot += step
          slot -= m & ((m - 1 - slot) >> 31) // if (slot >= m) slot -= m, without a branch to mispredict
        }
        used[slot] = 1
        pos[j] = slot
        table[slot] = index[j]!
        filled++
      }
      if (++j === k) j = 0
    }
    this.filled = filled
    this.next = j
  }

  /** Takes the remaining turns, each computing the slot the walk would reach (MaglevTail). */
  finishInTail(): void {
    const { table, index, weight, credit, maxWeight } = this
    const k = index.length
    const m = table.length
    const tail = new MaglevTail(this.used, m - this.filled, this.offset, this.skip)
    let filled = this.filled
    let j = this.next
    while (filled < m) {
      const c = credit[j]! + weight[j]!
      if (c < maxWeight) {
        credit[j] = c
      } else {
        credit[j] = c - maxWeight
        table[tail.take(j)] = index[j]!
        filled++
      }
      if (++j === k) j = 0
    }
    this.filled = filled
    this.next = j
  }
}

/** Empty slots left when population switches to MaglevTail (about sqrt of the default size). */
const TAIL_SLOTS = 128
/** Upper bound on backends x tail slots, the size of MaglevTail's rank matrix (1 MiB of Int32). */
const TAIL_RANKS = 1 << 18

/**
 * The last few empty slots, found without walking. Walking a preference list costs about M/e probes
 * per turn when e slots are empty, so the last ~sqrt(M) turns cost a third of the whole fill. But the
 * walk's answer can be computed: slot s is at place rank_j(s) = (s - offset_j) * skip_j^-1 (mod M) of
 * backend j's list, every slot at an earlier place than j's current one is full (the walk only passes
 * full slots), so the slot j's walk would stop at is the empty slot of lowest rank_j. Ranks of the
 * remaining empty slots are computed once per backend; a turn is a scan of at most TAIL_SLOTS numbers.
 */
class MaglevTail {
  private readonly empty: Int32Array
  private readonly rank: Int32Array // rank[j * width + i] = rank_j(empty[i])
  private readonly width: number
  private readonly backends: number
  private count: number

  /** `used` marks the full slots, `count` of them are empty. */
  constructor(used: Uint8Array, count: number, offset: Int32Array, skip: Int32Array) {
    const m = used.length
    this.empty = new Int32Array(count)
    this.width = count
    this.count = count
    this.backends = offset.length
    this.rank = new Int32Array(this.backends * count)
    for (let s = 0, i = 0; s < m; s++) if (used[s] === 0) this.empty[i++] = s
    for (let j = 0; j < this.backends; j++) {
      const inverse = modInverse(skip[j]!, m)
      for (let i = 0; i < count; i++) {
        const d = (this.empty[i]! - offset[j]! + m) % m
        this.rank[j * count + i] = (d * inverse) % m // < 2^34: exact in a double
      }
    }
  }

  /** Takes and returns the empty slot backend j's walk would reach first. */
  take(j: number): number {
    const row = j * this.width
    let best = 0
    let bestRank = this.rank[row]!
    for (let i = 1; i < this.count; i++) {
      const r = this.rank[row + i]!
      if (r < bestRank) {
        bestRank = r
        best = i
      }
    }
    const slot = this.empty[best]!
    // Remove column `best` by moving the last column into it, in every backend's row.
    const last = --this.count
    this.empty[best] = this.empty[last]!
    for (let b = 0, r = 0; b < this.backends; b++, r += this.width) this.rank[r + best] = this.rank[r + last]!
    return slot
  }
}

/** a^-1 mod m, for prime m and 0 < a < m (extended Euclid). */
function modInverse(a: number, m: number): number {
  let [r0, r1] = [m, a]
  let [t0, t1] = [0, 1]
  while (r1 !== 0) {
    const q = Math.floor(r0 / r1)
    ;[r0, r1] = [r1, r0 - q * r1]
    ;[t0, t1] = [t1, t0 - q * t1]
  }
  return ((t0 % m) + m) % m
}

const utf8 = new TextEncoder()

function keyBytes(key: unknown, where = 'key'): Uint8Array {
  let bytes: Uint8Array
  if (typeof key === 'string') bytes = utf8.encode(key)
  else if (key instanceof Uint8Array) bytes = key
  else throw new ArgumentError(`${where} must be a string or a Uint8Array, got ${key === null ? 'null' : typeof key}`)
  if (bytes.length === 0) {
    throw new ArgumentError(`${where} is empty`, { hint: 'give each backend a stable key, e.g. "address:port"' })
  }
  return bytes
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!
  return a.length - b.length
}

function showKey(key: string | Uint8Array): string {
  return typeof key === 'string' ? JSON.stringify(key) : `0x${Buffer.from(key).toString('hex')}`
}
