// SPDX-License-Identifier: GPL-2.0-only
// Map operations of the binding on the fixture object: every call, every map type, batches.
import t from 'tap'
import { BpfObject, BpfMap, MapType, numPossibleCpus } from '../../src/bpf'
import { ArgumentError } from '../../src/errors'
import { needsRoot, fixture } from '../helpers/root'

const u32 = (n: number): Buffer => { const b = Buffer.alloc(4); b.writeUInt32LE(n); return b }
const u64 = (n: bigint): Buffer => { const b = Buffer.alloc(8); b.writeBigUInt64LE(n); return b }

function loadFixture(): { obj: BpfObject; map: (n: string) => BpfMap } {
  const obj = BpfObject.open(fixture('maps'))
  obj.setPinPath('fixture_pinned', null) // no pinning in these tests
  obj.load()
  return { obj, map: (n) => obj.map(n) }
}

t.test('hash map: update modes, lookup, delete, iteration', needsRoot, async (t) => {
  const { obj, map } = loadFixture()
  const h = map('fixture_hash')
  obj.close() // maps taken out of the object outlive it
  t.teardown(() => h.close())
  t.equal(h.typeName, 'hash', 'type')
  t.equal(h.keySize, 4, 'key size')
  t.equal(h.valueSize, 8, 'value size')
  t.equal(h.maxEntries, 200000, 'max entries')
  t.equal(h.lookup(u32(1)), null, 'absent key reads null')
  h.update(u32(1), u64(10n), 'noexist')
  t.same(h.lookup(u32(1)), u64(10n), 'value written')
  t.throws(() => h.update(u32(1), u64(11n), 'noexist'), { name: 'BpfError', code: 'EEXIST' }, 'noexist on an existing key: EEXIST')
  t.throws(() => h.update(u32(2), u64(11n), 'exist'), { name: 'BpfError', code: 'ENOENT' }, 'exist on a missing key: ENOENT')
  h.update(u32(1), u64(12n), 'exist')
  t.same(h.lookup(u32(1)), u64(12n), 'exist on an existing key overwrites')
  h.update(u32(2), u64(20n))
  h.update(u32(3), u64(30n))
  const keys = [...h.keys()].map((k) => k.readUInt32LE()).sort()
  t.same(keys, [1, 2, 3], 'keys() walks every key once')
  const entries = [...h.entries()].map((e) => [e.key.readUInt32LE(), e.value.readBigUInt64LE()]).sort()
  t.same(entries, [[1, 12n], [2, 20n], [3, 30n]], 'entries()')
  t.equal(h.delete(u32(2)), true, 'delete present key')
  t.equal(h.delete(u32(2)), false, 'delete absent key')
  t.equal(h.nextKey(null)?.length, 4, 'nextKey(null) gives a first key')
  t.throws(() => h.lookup(Buffer.alloc(3)), ArgumentError, 'wrong key size rejected before native code')
  t.throws(() => h.update(u32(1), Buffer.alloc(4)), ArgumentError, 'wrong value size rejected')
  t.throws(() => h.lookup('x' as unknown as Buffer), ArgumentError, 'non-Buffer key rejected')
})

t.test('array, LRU and per-CPU maps', needsRoot, async (t) => {
  const { obj, map } = loadFixture()
  t.teardown(() => obj.close())
  const a = map('fixture_array')
  t.equal(a.typeName, 'array')
  t.same(a.lookup(u32(3)), u64(0n), 'array slots exist, zeroed')
  a.update(u32(3), u64(33n))
  t.same(a.lookup(u32(3)), u64(33n), 'array update')
  t.throws(() => a.update(u32(16), u64(1n)), { name: 'BpfError', code: 'E2BIG' }, 'index past max_entries: E2BIG')
  t.equal([...a.keys()].length, 16, 'array iterates all slots')

  const lru = map('fixture_lru')
  t.equal(lru.typeName, 'lru_hash')
  const key = Buffer.alloc(16)
  key.writeUInt32BE(0x0a000001, 0)
  key.writeUInt16BE(80, 4)
  key[6] = 6
  key.writeBigUInt64LE(7n, 8)
  lru.update(key, u32(42))
  t.same(lru.lookup(key), u32(42), 'LRU struct key round-trip')

  const pc = map('fixture_counters')
  const n = numPossibleCpus()
  t.ok(n >= 1, `possible CPUs: ${n}`)
  t.ok(pc.perCpu, 'per-CPU map recognised')
  t.equal(pc.valueBytes, 8 * n, 'per-CPU value holds one 8-byte slot per CPU')
  pc.updatePerCpu(u32(1), Array.from({ length: n }, (_, i) => u64(BigInt(i + 100))))
  const slots = pc.lookupPerCpu(u32(1))
  t.same(slots?.map((s) => s.readBigUInt64LE()), Array.from({ length: n }, (_, i) => BigInt(i + 100)), 'per-CPU values per CPU')
  t.throws(() => pc.updatePerCpu(u32(1), [u64(1n)].slice(0, n - 1 || 0)), ArgumentError, 'wrong number of per-CPU values')
  t.throws(() => a.lookupPerCpu(u32(0)), ArgumentError, 'lookupPerCpu on a plain array')
  for (const m of [a, lru, pc]) m.close()
})

t.test('batch update, lookup and delete of 100,000 entries', needsRoot, async (t) => {
  const { obj, map } = loadFixture()
  t.teardown(() => obj.close())
  const h = map('fixture_hash')
  t.teardown(() => h.close())
  const N = 100_000
  const entries = Array.from({ length: N }, (_, i) => ({ key: u32(i), value: u64(BigInt(i) * 3n + 1n) }))
  t.equal(h.updateBatch(entries), N, 'all written')
  const back = h.lookupBatch(8192)
  t.equal(back.length, N, 'all read back')
  let ok = 0
  for (const e of back) if (e.value.readBigUInt64LE() === BigInt(e.key.readUInt32LE()) * 3n + 1n) ok++
  t.equal(ok, N, 'every value matches its key')
  t.equal(h.deleteBatch(entries.slice(0, 50_000).map((e) => e.key)), 50_000, 'half deleted')
  t.equal(h.lookupBatch().length, N - 50_000, 'the other half remains')
  t.equal(h.lookup(u32(1)), null, 'a deleted key is gone')
  t.same(h.lookup(u32(99_999)), u64(99_999n * 3n + 1n), 'a kept key is intact')
  t.throws(() => h.updateBatch([{ key: Buffer.alloc(2), value: u64(1n) }]), ArgumentError, 'batch with a wrong key size')
})

t.test('maps by id', needsRoot, async (t) => {
  const { obj, map } = loadFixture()
  t.teardown(() => obj.close())
  const h = map('fixture_hash')
  h.update(u32(77), u64(7n))
  const again = BpfMap.fromId(h.id)
  t.equal(again.name, 'fixture_hash', 'same map by id')
  t.same(again.lookup(u32(77)), u64(7n), 'same contents')
  again.close()
  h.close()
  t.throws(() => h.lookup(u32(1)), ArgumentError, 'a closed map refuses calls')
  t.throws(() => BpfMap.fromId(0x7ffffff0), { name: 'BpfError', code: 'ENOENT' }, 'unknown id: ENOENT')
})

t.test('maps created outside an object, and map-in-map', needsRoot, async (t) => {
  const inner = BpfMap.create({ type: MapType.ARRAY, name: 'xvs_t_inner', keySize: 4, valueSize: 4, maxEntries: 8, flags: 1 << 12 })
  const outer = BpfMap.create({ type: MapType.ARRAY_OF_MAPS, name: 'xvs_t_outer', keySize: 4, valueSize: 4, maxEntries: 2, innerMap: inner })
  t.teardown(() => { inner.close(); outer.close() })
  t.equal(outer.typeName, 'array_of_maps', 'outer type')
  const bigger = BpfMap.create({ type: MapType.ARRAY, name: 'xvs_t_big', keySize: 4, valueSize: 4, maxEntries: 64, flags: 1 << 12 })
  bigger.update(u32(63), u32(0xfeed))
  outer.update(u32(1), u32(bigger.fd)) // the value written is an fd; the kernel stores the map
  t.equal(outer.lookup(u32(1))?.readUInt32LE(), bigger.id, 'reading an outer slot gives the inner map id')
  bigger.close()
  const again = BpfMap.fromId(outer.lookup(u32(1))!.readUInt32LE())
  t.equal(again.lookup(u32(63))?.readUInt32LE(), 0xfeed, 'the inner map lives on while the outer holds it')
  again.close()
  t.throws(() => BpfMap.create({ type: MapType.HASH, name: 'bad name!', keySize: 4, valueSize: 4, maxEntries: 1 }), ArgumentError, 'bad map name')
  t.throws(() => BpfMap.create({ type: MapType.HASH, keySize: 0, valueSize: 4, maxEntries: 1 }), { name: 'BpfError', code: 'EINVAL' }, 'zero key size: EINVAL')
})
