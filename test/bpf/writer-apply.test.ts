// SPDX-License-Identifier: GPL-2.0-only
// The writer at scale and across applies: more real servers than the old 4,095-id array held, only
// changed services get new tables, next hops are resolved only for what is new (reused from the maps
// otherwise), and xvs_reals is read only as far as it is in use.
import t, { type Test } from 'tap'
import { needsRoot } from '../helpers/root'
import { loadDetached, type Dataplane } from '../../src/dataplane/loader'
import { applyModel, type WriterOptions } from '../../src/dataplane/writer'
import { readReals, readRealsInUse } from '../../src/dataplane/reader'
import { Limits, Real, RealFlags } from '../../src/dataplane/abi'
import type { NextHop, ResolveOptions } from '../../src/dataplane/neigh'
import { parseConfig } from '../../src/config'

function dataplane(t: Test): Dataplane {
  const dp = loadDetached({ connTableSize: 4096 })
  t.teardown(() => dp.close())
  return dp
}

/** A resolver that counts its calls and answers with MAC `mac` (changeable between applies). */
function counting() {
  const calls: string[] = []
  let mac = '02:00:00:00:04:01'
  const resolve = (address: string, o: ResolveOptions): NextHop => {
    calls.push(`${o.requireOnLink ? 'dr' : 'tun'}|${address}`)
    return { address, ifname: 'lo', ifindex: 1, srcMac: '02:00:00:00:00:02', dstMac: mac, mtu: 1500, source: address.includes(':') ? 'fd00::fe' : '10.0.0.254' }
  }
  return { calls, resolve, setMac: (m: string) => { mac = m } }
}

const apply = (dp: Dataplane, yaml: string, opts: WriterOptions) => applyModel(dp, parseConfig(yaml, 'test.yaml', 'yaml').model, opts)

const rs = (n: number, extra = ''): string => Array.from({ length: n }, (_, j) => `      - { address: 10.9.${Math.floor(j / 250)}.${(j % 250) + 1}${extra} }`).join('\n')
function services(count: number, reals: number, sched = 'rr', bump?: number): string {
  let out = 'services:\n'
  for (let i = 0; i < count; i++) {
    out += `  - vip: 10.8.${Math.floor(i / 250)}.${(i % 250) + 1}\n    port: 80\n    scheduler: ${sched}\n    real_servers:\n${rs(reals, i === bump ? ', weight: 3' : '')}\n`
  }
  return out
}

t.test('the real-server limit: 1,000 services x 17 real servers fit, and re-applying touches nothing', needsRoot, async (t) => {
  const dp = dataplane(t)
  t.equal(dp.maps.reals.maxEntries, Limits.MAX_REALS, 'xvs_reals is sized by XVS_MAX_REALS')
  t.ok(Limits.MAX_REALS > 17000, 'room for 17,000 real servers')
  const h = counting()
  const first = apply(dp, services(1000, 17), { resolve: h.resolve })
  t.same(first.reals, { added: 17000, removed: 0, changed: 0 }, '17,000 real servers written')
  t.equal(first.tablesWritten, 1000, 'one table per service')
  t.equal(h.calls.length, 17, 'each address resolved once, however many services use it')
  const inUse = readRealsInUse(dp)
  t.equal(inUse.length, 17000, 'all of them read back')
  t.equal(Math.max(...inUse.map((r) => r.id)), 17000, 'ids 1..17000: the lowest free ids, in order')
  const again = apply(dp, services(1000, 17), { resolve: h.resolve })
  t.same([again.tablesWritten, again.services.unchanged, again.reals], [0, 1000, { added: 0, removed: 0, changed: 0 }], 'the same model again: nothing written')
  t.equal(h.calls.length, 17, 'and nothing resolved again')
  const bumped = apply(dp, services(1000, 17, 'rr', 500), { resolve: h.resolve })
  t.same([bumped.tablesWritten, bumped.services.changed, bumped.reals.changed], [1, 1, 17], 'weights of one service changed: its table alone is written')
})

t.test('next hops: reused from the maps unless the address or method is new', needsRoot, async (t) => {
  const dp = dataplane(t)
  const h = counting()
  const yaml = (extra = '', method = 'dr') => `services:
  - { vip: 10.0.0.1, port: 80, scheduler: rr, real_servers: [{ address: 10.1.0.1, method: ${method} }, { address: 10.1.0.2, method: dr }${extra}] }
  - { vip: 10.0.0.2, port: 80, scheduler: rr, real_servers: [{ address: 10.1.0.2, method: dr }] }
`
  apply(dp, yaml(), { resolve: h.resolve })
  t.same(h.calls.sort(), ['dr|10.1.0.1', 'dr|10.1.0.2'], 'first apply: every address once')
  h.calls.length = 0
  h.setMac('02:00:00:00:04:99')
  apply(dp, yaml(', { address: 10.1.0.3, method: dr, weight: 2 }'), { resolve: h.resolve })
  t.same(h.calls, ['dr|10.1.0.3'], 'a new address alone is resolved')
  const byAddr = new Map(readReals(dp).map((r) => [r.value.addr, r.value]))
  t.equal(byAddr.get('10.1.0.1')!.dst_mac, '02:00:00:00:04:01', 'a kept server keeps the hop the maps hold')
  t.equal(byAddr.get('10.1.0.3')!.dst_mac, '02:00:00:00:04:99', 'the new one has the hop just resolved')
  h.calls.length = 0
  apply(dp, `services:
  - { vip: 10.0.0.3, port: 80, scheduler: rr, real_servers: [{ address: 10.1.0.2, method: dr }] }
`, { resolve: h.resolve })
  t.same(h.calls, [], 'a new service of known real servers resolves nothing')
  apply(dp, yaml('', 'tun'), { resolve: h.resolve })
  t.same(h.calls, ['tun|10.1.0.1'], 'a changed method is resolved again (tun does not need the server on-link)')
  h.calls.length = 0
  apply(dp, yaml('', 'tun'), { resolve: h.resolve, reuseHops: false })
  t.same(h.calls.sort(), ['dr|10.1.0.2', 'tun|10.1.0.1'], 'reuseHops: false resolves every address (the daemon\'s cache decides)')
})

t.test('next hops: a tunnel whose configured source goes is resolved for the route\'s source', needsRoot, async (t) => {
  const dp = dataplane(t)
  const h = counting()
  const svc = `services:
  - { vip: 10.0.0.1, port: 80, scheduler: rr, real_servers: [{ address: 10.1.0.1, method: tun }] }
`
  apply(dp, `settings:\n  tunnel_sources: [10.0.0.77]\n${svc}`, { resolve: h.resolve })
  t.equal(readReals(dp)[0]!.value.tun_src, '10.0.0.77', 'the configured source')
  apply(dp, `settings:\n  tunnel_sources: [10.0.0.78]\n${svc}`, { resolve: h.resolve })
  t.equal(h.calls.length, 1, 'another configured source: the hop is reused')
  t.equal(readReals(dp)[0]!.value.tun_src, '10.0.0.78', 'with the new source')
  apply(dp, svc, { resolve: h.resolve })
  t.equal(h.calls.length, 2, 'no configured source any more: resolved again')
  t.equal(readReals(dp)[0]!.value.tun_src, '10.0.0.254', 'for the route\'s source')
  apply(dp, svc.replace('real_servers: [', 'real_servers: [{ address: 10.1.0.2, method: tun }, '), { resolve: h.resolve })
  t.equal(h.calls.length, 3, 'then reused again (only the new server resolved)')
  t.equal(readReals(dp).find((r) => r.value.addr === '10.1.0.1')!.value.tun_src, '10.0.0.254', 'the route\'s source kept')
})

t.test('readRealsInUse: what readReals sees, without walking the whole array', needsRoot, async (t) => {
  const dp = dataplane(t)
  const h = counting()
  apply(dp, services(3, 1500), { resolve: h.resolve })
  apply(dp, services(1, 1500), { resolve: h.resolve })
  const all = readReals(dp, { removed: true })
  t.equal(all.filter((r) => r.value.flags & RealFlags.REMOVED).length, 3000, 'two services\' servers removed')
  const key = (r: { id: number; value: object }) => `${r.id} ${JSON.stringify(r.value)}`
  t.same(readRealsInUse(dp).map(key), all.map(key), 'removed ones included, same entries, same order')
  // An entry far past the ones in use (not something the writer does): the first service now counts
  // more live servers than the walk meets before its first empty chunk, so the walk goes on.
  const stray = readReals(dp)[0]!
  const u32 = (n: number): Buffer => { const b = Buffer.alloc(4); b.writeUInt32LE(n); return b }
  dp.maps.reals.update(u32(stray.id), Real.encode({ ...stray.value, flags: RealFlags.REMOVED }))
  dp.maps.reals.update(u32(60000), Real.encode({ ...stray.value, flags: 0 }))
  t.ok(readRealsInUse(dp).some((r) => r.id === 60000), 'an entry past a gap is still found when the services count it')
})
