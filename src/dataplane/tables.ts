// SPDX-License-Identifier: GPL-2.0-only
// Per-service scheduler tables: an inner BPF array of chunks of 16-bit real ids (struct
// xvs_table_chunk) for one half of a service's slot pair in xvs_svc_tables. Writing the inactive half
// and then flipping xvs_service.active_table with one map update is what keeps any packet from seeing
// half a table.
import { BpfMap, MapType } from '../bpf'
import { Limits, svcTableSlot } from './abi'
import { ArgumentError } from '../errors'

const CHUNK = Limits.SVC_TABLE_CHUNK
/** Slots hold real ids in 16 bits (struct xvs_table_chunk). */
const MAX_ID = 0xffff

/** Keys 0 .. n-1 as __u32, host order: one buffer grown as needed and shared by every table write. */
let chunkKeys = new Uint32Array(0)
function keysUpTo(n: number): Buffer {
  if (chunkKeys.length < n) {
    chunkKeys = new Uint32Array(Math.max(n, 2 * chunkKeys.length))
    for (let i = 0; i < chunkKeys.length; i++) chunkKeys[i] = i
  }
  return Buffer.from(chunkKeys.buffer, 0, 4 * n)
}

/** The chunks (struct xvs_table_chunk) that hold `slots` slots. */
const tableChunks = (slots: number): number => Math.ceil(slots / CHUNK)

/** Values of one table's fill, reused: the kernel has copied them before the next table is made. */
let fill = new Uint16Array(0)

/**
 * Create an inner table holding `realIds` (0 = empty slot) for the service's `half`, filled, not yet
 * installed (installTables). The caller closes it; the kernel keeps it while the outer map holds it.
 */
export function createTable(serviceId: number, half: number, realIds: ArrayLike<number>): BpfMap {
  const n = realIds.length
  if (n === 0) throw new ArgumentError(`service ${serviceId}: a scheduler table needs at least one slot`)
  const chunks = tableChunks(n)
  const inner = BpfMap.create({
    type: MapType.ARRAY, name: `xvs_t${serviceId}_${half & 1}`, keySize: 4, valueSize: 2 * CHUNK, maxEntries: chunks,
    flags: Limits.SVC_TABLE_MAP_FLAGS,
  })
  try {
    if (fill.length < chunks * CHUNK) fill = new Uint16Array(Math.max(chunks * CHUNK, 2 * fill.length))
    const ids = fill.subarray(0, chunks * CHUNK)
    if (realIds instanceof Uint16Array) ids.set(realIds)
    else {
      for (let i = 0; i < n; i++) {
        const id = realIds[i]!
        if (id > MAX_ID) throw new ArgumentError(`service ${serviceId}: real id ${id} does not fit a table slot (at most ${MAX_ID})`)
        ids[i] = id < 0 ? Limits.REAL_NONE : id
      }
    }
    ids.fill(Limits.REAL_NONE, n)
    // Values are __u16 in host order, as a Uint16Array holds them.
    inner.updateBatchRaw(keysUpTo(chunks), Buffer.from(ids.buffer, ids.byteOffset, ids.byteLength), chunks)
    return inner
  } catch (e) {
    inner.close()
    throw e
  }
}

/** The first `slots` slots of an inner table (all of them by default), as real ids. */
export function readTable(inner: BpfMap, slots = inner.maxEntries * CHUNK): Uint16Array {
  const out = new Uint16Array(inner.maxEntries * CHUNK)
  for (const { key, value } of inner.lookupBatch(inner.maxEntries)) {
    const c = key.readUInt32LE()
    out.set(new Uint16Array(value.buffer.slice(value.byteOffset, value.byteOffset + value.length)), c * CHUNK)
  }
  return out.subarray(0, Math.min(slots, out.length))
}

/**
 * Put tables made by createTable at their services' halves of xvs_svc_tables: one batch update (an
 * update of a map-in-map waits for the programs running, once per call: one wait, not one per table).
 */
export function installTables(svcTables: BpfMap, tables: readonly { serviceId: number; half: number; table: BpfMap }[]): void {
  if (tables.length === 0) return
  const slots = Buffer.alloc(4 * tables.length)
  const fds = Buffer.alloc(4 * tables.length)
  tables.forEach((t, i) => {
    slots.writeUInt32LE(svcTableSlot(t.serviceId, t.half), 4 * i)
    fds.writeUInt32LE(t.table.fd, 4 * i)
  })
  if (tables.length === 1) svcTables.update(slots, fds)
  else svcTables.updateBatchRaw(slots, fds, tables.length)
}

/**
 * Create an inner table holding `realIds` (0 = empty slot) and install it at the service's `half`.
 * Returns the table's size. The inner map lives on in the kernel while the outer map holds it.
 */
export function installTable(svcTables: BpfMap, serviceId: number, half: number, realIds: ArrayLike<number>): number {
  const table = createTable(serviceId, half, realIds)
  try {
    installTables(svcTables, [{ serviceId, half, table }])
    return realIds.length
  } finally {
    table.close()
  }
}

/** Remove both halves of a service's table (when the service is deleted). */
export function removeTables(svcTables: BpfMap, serviceId: number): void {
  for (const half of [0, 1]) {
    const slot = Buffer.alloc(4)
    slot.writeUInt32LE(svcTableSlot(serviceId, half))
    svcTables.delete(slot)
  }
}
