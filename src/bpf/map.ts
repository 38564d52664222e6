// SPDX-License-Identifier: GPL-2.0-only
// A BPF map by fd: typed, size-checked operations over the addon's map calls.
import { native, type NativeMapInfo } from './native'
import { FdHolder } from './fd'
import { isPerCpuMapType, mapTypeName, updateFlag, type UpdateMode } from './constants'
import { checkBuffer, checkString, checkUint } from './validate'
import { ArgumentError } from '../errors'

let possibleCpus: number | undefined

/** Number of possible CPUs: the count of slots in a per-CPU map value. */
export function numPossibleCpus(): number {
  possibleCpus ??= native().numPossibleCpus()
  return possibleCpus
}

export interface MapEntry { key: Buffer; value: Buffer }

export interface CreateMapSpec {
  /** A MapType value. */
  type: number
  name?: string
  keySize: number
  valueSize: number
  maxEntries: number
  /** BPF_F_* map flags (e.g. BPF_F_INNER_MAP = 1 << 12, BPF_F_NO_PREALLOC = 1). */
  flags?: number
  /** For map-in-map types: a map of the inner kind, as a template. */
  innerMap?: BpfMap
}

export class BpfMap extends FdHolder {
  readonly info: Readonly<NativeMapInfo>
  readonly perCpu: boolean
  /** Bytes of one value as the syscalls see it: per-CPU maps hold one 8-byte-aligned slot per CPU. */
  readonly valueBytes: number
  /** Bytes of one CPU's slot in a per-CPU value (valueSize rounded up to 8). */
  readonly slotBytes: number

  /** Takes ownership of `fd`. */
  constructor(fd: number) {
    super(fd)
    this.info = Object.freeze(native().mapInfo(fd))
    this.perCpu = isPerCpuMapType(this.info.type)
    this.slotBytes = this.perCpu ? Math.ceil(this.info.valueSize / 8) * 8 : this.info.valueSize
    this.valueBytes = this.perCpu ? this.slotBytes * numPossibleCpus() : this.info.valueSize
  }

  /** Create a map outside any object (inner maps of a map-in-map, scratch maps). */
  static create(spec: CreateMapSpec): BpfMap {
    const name = spec.name ?? ''
    if (!/^[\w.]{0,15}$/.test(name)) throw new ArgumentError(`map name ${JSON.stringify(name)}: up to 15 of [A-Za-z0-9_.]`)
    const fd = native().mapCreate(checkUint('map type', spec.type), name, checkUint('key size', spec.keySize),
      checkUint('value size', spec.valueSize), checkUint('max entries', spec.maxEntries), checkUint('flags', spec.flags ?? 0),
      spec.innerMap?.fd)
    return new BpfMap(fd)
  }

  static fromId(id: number): BpfMap {
    return new BpfMap(native().mapFdById(checkUint('map id', id)))
  }

  static fromPin(path: string): BpfMap {
    return new BpfMap(native().objGet(checkString('pin path', path)))
  }

  get name(): string { return this.info.name }
  get id(): number { return this.info.id }
  get keySize(): number { return this.info.keySize }
  get valueSize(): number { return this.info.valueSize }
  get maxEntries(): number { return this.info.maxEntries }
  get typeName(): string { return mapTypeName(this.info.type) }

  protected describe(): string { return `map ${this.info.name} (id ${this.info.id})` }

  /** The value stored under `key`, or null. Per-CPU maps: all CPUs' slots, concatenated. */
  lookup(key: Buffer): Buffer | null {
    return native().mapLookup(this.fd, checkBuffer('key', key, this.keySize), this.valueBytes, 0)
  }

  /** Per-CPU maps: one Buffer per possible CPU (each valueSize bytes), or null. */
  lookupPerCpu(key: Buffer): Buffer[] | null {
    if (!this.perCpu) throw new ArgumentError(`${this.describe()} is a ${this.typeName} map, not per-CPU`)
    const all = this.lookup(key)
    return all === null ? null : this.splitSlots(all)
  }

  update(key: Buffer, value: Buffer, mode: UpdateMode = 'any'): void {
    native().mapUpdate(this.fd, checkBuffer('key', key, this.keySize), checkBuffer('value', value, this.valueBytes), updateFlag(mode))
  }

  /** Per-CPU maps: write one value per possible CPU (each valueSize bytes). */
  updatePerCpu(key: Buffer, values: readonly Buffer[], mode: UpdateMode = 'any'): void {
    const n = numPossibleCpus()
    if (!this.perCpu) throw new ArgumentError(`${this.describe()} is a ${this.typeName} map, not per-CPU`)
    if (values.length !== n) throw new ArgumentError(`need ${n} per-CPU values, got ${values.length}`)
    const all = Buffer.alloc(this.valueBytes)
    values.forEach((v, i) => checkBuffer('value', v, this.valueSize).copy(all, i * this.slotBytes))
    this.update(key, all, mode)
  }

  /** True if the key was there. */
  delete(key: Buffer): boolean {
    return native().mapDelete(this.fd, checkBuffer('key', key, this.keySize))
  }

  /** The key after `key` (the first with null), or null at the end. */
  nextKey(key: Buffer | null): Buffer | null {
    return native().mapNextKey(this.fd, key === null ? null : checkBuffer('key', key, this.keySize), this.keySize)
  }

  /** Iterate keys with get_next_key. Entries deleted meanwhile may restart a hash walk. */
  *keys(): Generator<Buffer> {
    let key = this.nextKey(null)
    for (let i = 0; key !== null && i <= this.maxEntries; i++) {
      yield key
      key = this.nextKey(key)
    }
  }

  *entries(): Generator<MapEntry> {
    for (const key of this.keys()) {
      const value = this.lookup(key)
      if (value !== null) yield { key, value }
    }
  }

  /** Every entry, read with BPF_MAP_LOOKUP_BATCH in chunks of `chunk` elements. */
  lookupBatch(chunk = 4096): MapEntry[] {
    checkUint('chunk', chunk, 1 << 20)
    if (chunk === 0) throw new ArgumentError('chunk must be at least 1')
    const out: MapEntry[] = []
    const tokenSize = Math.max(this.keySize, 8)
    let token: Buffer | null = null
    for (let rounds = 0; rounds <= this.maxEntries + 1; rounds++) {
      const r: { keys: Buffer; values: Buffer; count: number; token: Buffer | null } =
        native().mapLookupBatch(this.fd, token, tokenSize, this.keySize, this.valueBytes, chunk)
      for (let i = 0; i < r.count; i++) {
        out.push({
          key: Buffer.from(r.keys.subarray(i * this.keySize, (i + 1) * this.keySize)),
          value: Buffer.from(r.values.subarray(i * this.valueBytes, (i + 1) * this.valueBytes)),
        })
      }
      if (r.token === null) return out
      token = r.token
    }
    return out
  }

  /**
   * The entries whose value is not all zero bytes, read with BPF_MAP_LOOKUP_BATCH in chunks of
   * `chunk` elements: for array maps, which hold every index and are mostly empty. Keys and values
   * are views into the chunk's buffers (no copy per entry).
   */
  nonZeroEntries(chunk = 16384): MapEntry[] {
    const out: MapEntry[] = []
    for (const entries of this.nonZeroChunks(chunk)) for (const e of entries) out.push(e)
    return out
  }

  /**
   * nonZeroEntries one chunk at a time (an array map's chunks in index order), for walks that may
   * stop early; a chunk with no such entry yields an empty array.
   */
  *nonZeroChunks(chunk = 16384): Generator<MapEntry[]> {
    checkUint('chunk', chunk, 1 << 20)
    if (chunk === 0) throw new ArgumentError('chunk must be at least 1')
    const ks = this.keySize
    const vb = this.valueBytes
    let token: Buffer | null = null
    for (let rounds = 0; rounds <= this.maxEntries + 1; rounds++) {
      const r = this.lookupBatchRaw(token, Math.min(chunk, Math.max(1, this.maxEntries)))
      const v = r.values
      const out: MapEntry[] = []
      // Whole words where the layout allows, else bytes.
      let words: Uint32Array | null = null
      if (vb % 4 === 0) {
        const a = v.byteOffset % 4 === 0 ? v : new Uint8Array(v)
        words = new Uint32Array(a.buffer, a.byteOffset, (r.count * vb) / 4)
      }
      for (let i = 0; i < r.count; i++) {
        let nonZero = false
        if (words) {
          for (let w = (i * vb) / 4, end = w + vb / 4; w < end; w++) if (words[w] !== 0) { nonZero = true; break }
        } else {
          for (let b = i * vb, end = b + vb; b < end; b++) if (v[b] !== 0) { nonZero = true; break }
        }
        if (nonZero) out.push({ key: r.keys.subarray(i * ks, (i + 1) * ks), value: v.subarray(i * vb, (i + 1) * vb) })
      }
      yield out
      if (r.token === null) return
      token = r.token
    }
  }

  /**
   * One step of a BPF_MAP_LOOKUP_BATCH walk, for walks that yield between steps (the daemon's
   * sweeper): up to `chunk` entries after `token` (null: from the start), laid out back to back
   * (count × keySize, count × valueBytes) without a Buffer per entry, and the token to go on from
   * (null when the walk is complete).
   */
  lookupBatchRaw(token: Buffer | null, chunk: number): { keys: Buffer; values: Buffer; count: number; token: Buffer | null } {
    checkUint('chunk', chunk, 1 << 20)
    if (chunk === 0) throw new ArgumentError('chunk must be at least 1')
    const r: { keys: Buffer; values: Buffer; count: number; token: Buffer | null } =
      native().mapLookupBatch(this.fd, token, Math.max(this.keySize, 8), this.keySize, this.valueBytes, chunk)
    return r
  }

  /** Delete keys laid out back to back (count × keySize) with BPF_MAP_DELETE_BATCH; stops at a missing key. */
  deleteBatchRaw(keys: Buffer, count: number): number {
    checkUint('count', count)
    checkBuffer('keys', keys, count * this.keySize)
    return count === 0 ? 0 : native().mapDeleteBatch(this.fd, keys, count)
  }

  /** Write many entries with BPF_MAP_UPDATE_BATCH; returns the number written. */
  updateBatch(entries: readonly MapEntry[], mode: UpdateMode = 'any'): number {
    if (entries.length === 0) return 0
    const keys = Buffer.alloc(entries.length * this.keySize)
    const values = Buffer.alloc(entries.length * this.valueBytes)
    entries.forEach((e, i) => {
      checkBuffer('key', e.key, this.keySize).copy(keys, i * this.keySize)
      checkBuffer('value', e.value, this.valueBytes).copy(values, i * this.valueBytes)
    })
    return native().mapUpdateBatch(this.fd, keys, values, entries.length, updateFlag(mode))
  }

  /** Batch update from keys and values already laid out back to back (count × keySize, count × valueBytes). */
  updateBatchRaw(keys: Buffer, values: Buffer, count: number, mode: UpdateMode = 'any'): number {
    checkUint('count', count)
    checkBuffer('keys', keys, count * this.keySize)
    checkBuffer('values', values, count * this.valueBytes)
    return count === 0 ? 0 : native().mapUpdateBatch(this.fd, keys, values, count, updateFlag(mode))
  }

  /** Delete many keys with BPF_MAP_DELETE_BATCH; returns the number deleted (stops at a missing key). */
  deleteBatch(keys: readonly Buffer[]): number {
    if (keys.length === 0) return 0
    const all = Buffer.alloc(keys.length * this.keySize)
    keys.forEach((k, i) => checkBuffer('key', k, this.keySize).copy(all, i * this.keySize))
    return native().mapDeleteBatch(this.fd, all, keys.length)
  }

  /** Split a per-CPU value into one Buffer per CPU. */
  splitSlots(all: Buffer): Buffer[] {
    const out: Buffer[] = []
    for (let off = 0; off + this.valueSize <= all.length; off += this.slotBytes)
      out.push(Buffer.from(all.subarray(off, off + this.valueSize)))
    return out
  }
}
