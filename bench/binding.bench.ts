// SPDX-License-Identifier: GPL-2.0-only
// The binding's own costs: a test run of an XDP_PASS program (the per-packet baseline) and
// userspace map operations, single and batched.
import { BpfMap, MapType } from '../src/bpf'
import { loadPassProgram, msOf, nsPerRun, printRows, type Row } from './harness'

export function run(): void {
  const rows: Row[] = []
  const pass = loadPassProgram()
  const pkt = Buffer.alloc(64)
  const base = nsPerRun(pass, pkt)
  rows.push({ name: 'XDP_PASS, prog_test_run repeat 200k', value: base, unit: 'ns/pkt', note: 'baseline' })
  rows.push({ name: 'one test run call (repeat 1)', value: msOf(() => { for (let i = 0; i < 1000; i++) pass.testRun(pkt) }) * 1000, unit: 'ns/call' })
  pass.close()

  const h = BpfMap.create({ type: MapType.HASH, name: 'xvs_bench', keySize: 4, valueSize: 8, maxEntries: 200_000 })
  const N = 100_000
  const entries = Array.from({ length: N }, (_, i) => {
    const key = Buffer.alloc(4); key.writeUInt32LE(i)
    return { key, value: Buffer.alloc(8, i & 0xff) }
  })
  const single = msOf(() => { for (const e of entries) h.update(e.key, e.value) }, 3)
  const batch = msOf(() => { h.updateBatch(entries) }, 3)
  const read = msOf(() => { h.lookupBatch(8192) }, 3)
  rows.push({ name: `update ${N} one by one`, value: (single * 1e6) / N, unit: 'ns/entry' })
  rows.push({ name: `update ${N} batched`, value: (batch * 1e6) / N, unit: 'ns/entry', note: `${(single / batch).toFixed(1)}x faster than one by one` })
  rows.push({ name: `lookup ${N} batched`, value: (read * 1e6) / N, unit: 'ns/entry' })
  h.close()
  printRows('binding', rows)
}
