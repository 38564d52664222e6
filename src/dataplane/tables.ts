// SPDX-License-Identifier: GPL-2.0-only
// Per-service scheduler tables: an inner BPF array of real ids for one half of a service's slot
// pair in xvs_svc_tables. Writing the inactive half and then flipping xvs_service.active_table with
// one map update is what keeps any packet from seeing half a table.
import { BpfMap, MapType } from '../bpf'
import { Limits, svcTableSlot } from './abi'
import { ArgumentError } from '../errors'

/**
 * Create an inner table holding `realIds` (0 = empty slot) and install it at the service's `half`.
 * Returns the table's size. The inner map lives on in the kernel while the outer map holds it.
 */
export function installTable(svcTables: BpfMap, serviceId: number, half: number, realIds: ArrayLike<number>): number {
  const n = realIds.length
  if (n === 0) throw new ArgumentError(`service ${serviceId}: a scheduler table needs at least one slot`)
  const inner = BpfMap.create({
    type: MapType.ARRAY, name: `xvs_t${serviceId}_${half & 1}`, keySize: 4, valueSize: 4, maxEntries: n,
    flags: Limits.SVC_TABLE_MAP_FLAGS,
  })
  try {
    const keys = Buffer.alloc(4 * n)
    const values = Buffer.alloc(4 * n)
    for (let i = 0; i < n; i++) {
      keys.writeUInt32LE(i, 4 * i)
      const id = realIds[i]!
      values.writeUInt32LE(id < 0 ? Limits.REAL_NONE : id, 4 * i)
    }
    inner.updateBatchRaw(keys, values, n)
    const slot = Buffer.alloc(4)
    slot.writeUInt32LE(svcTableSlot(serviceId, half))
    const fd = Buffer.alloc(4)
    fd.writeUInt32LE(inner.fd)
    svcTables.update(slot, fd)
    return n
  } finally {
    inner.close()
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
