// SPDX-License-Identifier: GPL-2.0-only
// Objects: load-time globals, test runs, BTF layouts, pinning across processes, error paths.
import t from 'tap'
import path from 'node:path'
import fs from 'node:fs'
import { spawnSync } from 'node:child_process'
import { BpfObject, BpfMap, BpfProgram, BpfError, btfStruct, btfEnum, isBpffs, projectRoot, unpin } from '../../src/bpf'
import { ArgumentError } from '../../src/errors'
import { needsRoot, fixture, tempBpffs } from '../helpers/root'

// Children run plain node, without the test runner's loader hooks.
const cleanEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin' }

const u32 = (n: number): Buffer => { const b = Buffer.alloc(4); b.writeUInt32LE(n); return b }

function ethPacket(len = 64): Buffer {
  const p = Buffer.alloc(len)
  Buffer.from('020000000001', 'hex').copy(p, 0) // dst
  Buffer.from('020000000002', 'hex').copy(p, 6) // src
  p.writeUInt16BE(0x0800, 12)
  return p
}

t.test('const volatile globals set before load change what the program does', needsRoot, async (t) => {
  const obj = BpfObject.open(fixture('maps'))
  t.teardown(() => obj.close())
  obj.setPinPath('fixture_pinned', null)
  obj.setGlobalU32('fixture_verdict', 1 /* XDP_DROP */)
  obj.setGlobal('fixture_mark', Buffer.from([0xab]))
  t.throws(() => obj.setGlobal('fixture_verdict', Buffer.alloc(2)), { name: 'BpfError', code: 'EINVAL' }, 'size mismatch refused')
  t.throws(() => obj.setGlobalU32('no_such_global', 1), { name: 'BpfError', code: 'ENOENT' }, 'unknown global refused')
  obj.load()
  t.throws(() => obj.setGlobalU32('fixture_verdict', 2), ArgumentError, 'globals are fixed after load')
  const verdict = obj.program('xdp_verdict')
  const swap = obj.program('xdp_swap_macs')
  t.teardown(() => { verdict.close(); swap.close() })

  const r = verdict.testRun(ethPacket(), { repeat: 1 })
  t.equal(r.action, 'drop', 'the verdict global was applied')
  const arr = obj.map('fixture_array')
  t.equal(arr.lookup(u32(1))?.readBigUInt64LE(), 64n, 'the program saw the 64-byte packet')
  arr.close()

  const pkt = ethPacket()
  const s = swap.testRun(pkt)
  t.equal(s.action, 'tx', 'swap returns XDP_TX')
  t.equal(s.data.length, 64, 'same length out')
  t.same(s.data.subarray(0, 6), pkt.subarray(6, 12), 'destination MAC := old source')
  t.same(s.data.subarray(6, 12), pkt.subarray(0, 6), 'source MAC := old destination')
  t.equal(s.data[14], 0xab, 'payload byte := the mark global')
  t.same(s.data.subarray(15), pkt.subarray(15), 'rest untouched')
  t.equal(swap.testRun(Buffer.alloc(14)).action, 'drop', 'a packet too short for the payload byte is dropped')

  const many = verdict.testRun(ethPacket(), { repeat: 1000 })
  t.ok(many.durationNs >= 0, `repeat 1000: ${many.durationNs} ns per run`)
  const info = verdict.info()
  t.equal(info.name, 'xdp_verdict', 'program info name')
  t.match(info.tag, /^[0-9a-f]{16}$/, 'program tag')
  t.ok(info.mapIds.length >= 3, 'program info lists its maps')
  const again = BpfProgram.fromId(info.id)
  t.equal(again.name, 'xdp_verdict', 'program by id')
  again.close()
})

t.test('BTF: struct layout and enum values from the object file', needsRoot, async (t) => {
  const s = btfStruct(fixture('maps'), 'fixture_key')
  t.equal(s.size, 16, 'struct size')
  t.same(s.members.map((m) => [m.name, m.offset, m.size]), [
    ['addr', 0, 4], ['port', 4, 2], ['proto', 6, 1], ['pad', 7, 1], ['cookie', 8, 8],
  ], 'member offsets and sizes')
  t.same(btfEnum(fixture('maps'), 'fixture_counter'), { FIXTURE_PACKETS: 0, FIXTURE_BYTES: 1, FIXTURE_COUNTER_MAX: 2 }, 'enum values')
  t.throws(() => btfStruct(fixture('maps'), 'no_such_struct'), { name: 'BpfError', code: 'ENOENT' }, 'missing struct')
})

t.test('pin root: a second object reuses the pinned map', needsRoot, async (t) => {
  const bpffs = tempBpffs(t)
  t.ok(isBpffs(bpffs), 'temporary bpffs mounted')
  const a = BpfObject.open(fixture('maps'), { pinRoot: bpffs }).load()
  t.ok(fs.existsSync(path.join(bpffs, 'fixture_pinned')), 'map pinned by name under the pin root')
  const m1 = a.map('fixture_pinned')
  m1.update(u32(1), u32(1234))
  a.close()
  const b = BpfObject.open(fixture('maps'), { pinRoot: bpffs }).load()
  const m2 = b.map('fixture_pinned')
  t.equal(m2.id, m1.id, 'the same kernel map (same id)')
  t.same(m2.lookup(u32(1)), u32(1234), 'contents kept')
  t.ok(b.maps().find((m) => m.name === 'fixture_pinned')?.reused, 'reported as reused')
  m1.close(); m2.close(); b.close()
})

t.test('pin in one process, reopen from another', needsRoot, async (t) => {
  const bpffs = tempBpffs(t)
  const obj = BpfObject.open(fixture('maps'))
  obj.setPinPath('fixture_pinned', null)
  obj.load()
  const h = obj.map('fixture_hash')
  obj.close()
  h.update(u32(5), Buffer.from('0807060504030201', 'hex'))
  const pin = path.join(bpffs, 'shared_hash')
  h.pin(pin)
  h.close()
  // Another node process opens the pin through the addon, reads, and writes a new key.
  const addon = path.join(projectRoot(), 'build', 'Release', 'xvs_native.node')
  const script = `
    const n = require(${JSON.stringify(addon)});
    const fd = n.objGet(${JSON.stringify(pin)});
    const k = Buffer.alloc(4); k.writeUInt32LE(5);
    const v = n.mapLookup(fd, k, 8, 0);
    const k2 = Buffer.alloc(4); k2.writeUInt32LE(6);
    n.mapUpdate(fd, k2, Buffer.from('1111111111111111', 'hex'), 0);
    process.stdout.write(v.toString('hex'));`
  const child = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 20_000, env: cleanEnv })
  t.equal(child.status, 0, `child exits 0 ${child.stderr}`)
  t.equal(child.stdout, '0807060504030201', 'the child read what this process wrote')
  const back = BpfMap.fromPin(pin)
  t.same(back.lookup(u32(6)), Buffer.from('1111111111111111', 'hex'), 'this process reads what the child wrote')
  back.close()
  t.throws(() => unpin('/tmp/not-a-pin'), ArgumentError, 'unpin refuses paths outside a bpffs')
  unpin(pin)
  t.throws(() => BpfMap.fromPin(pin), { name: 'BpfError', code: 'ENOENT', hint: /bpffs/ }, 'unpinned: ENOENT with a hint')
})

t.test('errors: missing file, verifier rejection, bad arguments', needsRoot, async (t) => {
  t.throws(() => BpfObject.open('/nonexistent/x.bpf.o'), { name: 'BpfError', code: 'ENOENT', op: 'bpf_object__open_file', hint: /make/ }, 'missing object file')
  const bad = BpfObject.open(fixture('bad'))
  t.teardown(() => bad.close())
  let err: unknown
  try { bad.load() } catch (e) { err = e }
  t.ok(err instanceof BpfError, 'verifier rejection is a BpfError')
  const be = err as BpfError
  t.equal(be.op, 'bpf_object__load', 'operation named')
  t.match(be.log ?? '', /invalid access to packet|R\d+ offset is outside of the packet/, 'the verifier log is attached')
  t.match(be.hint ?? '', /verifier/, 'hint points at the log')
  t.throws(() => BpfObject.open(''), ArgumentError, 'empty path')
  t.throws(() => BpfObject.open(fixture('maps')).setMaxEntries('fixture_hash', -1), ArgumentError, 'negative max entries')
})

t.test('not root: EPERM with a hint', needsRoot, async (t) => {
  // Drop to nobody in a child: the kernel refuses unprivileged BPF (unprivileged_bpf_disabled).
  const addon = path.join(projectRoot(), 'build', 'Release', 'xvs_native.node')
  const script = `
    const n = require(${JSON.stringify(addon)});
    class E extends Error { constructor(m, p) { super(m); Object.assign(this, p) } }
    n.setErrorClass(E);
    try { const o = new n.NativeObject(${JSON.stringify(fixture('maps'))}, {}); o.setPinPath('fixture_pinned', null); o.load(); process.stdout.write('loaded') }
    catch (e) { process.stdout.write(JSON.stringify({ code: e.code, op: e.op })) }`
  const child = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 20_000, uid: 65534, gid: 65534, cwd: '/', env: cleanEnv })
  t.equal(child.status, 0, `child ran ${child.stderr}`)
  const r = JSON.parse(child.stdout) as { code: string; op: string }
  t.equal(r.code, 'EPERM', 'unprivileged load fails with EPERM')
  const e = new BpfError('x', { code: 'EPERM', op: r.op })
  t.match(e.hint ?? '', /run as root/, 'and the hint says to run as root')
})
