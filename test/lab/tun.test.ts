// SPDX-License-Identifier: GPL-2.0-only
// IP tunnelling through real namespaces: every inner/outer family combination, the real servers
// decapsulating with xvs's decap program, weights over 1,000 connections, and path MTU discovery
// through xvs's ICMP too-big answers. No bpffs here: the netlink attachment path.
import t from 'tap'
import { needsRoot } from '../helpers/root'
import { xvsLab, serviceYaml } from '../helpers/xvs-lab'
import { startUploadServers, upload } from '../helpers/upload'
import { httpRequests } from '../../src/lab/http'
import { Real, Settings, statCounterNames } from '../../src/dataplane/abi'
import type { BpfMap } from '../../src/bpf'

process.env.XVS_BPFFS = '/nonexistent-bpffs' // force the no-pin (netlink) path

const combos = [
  { inner: 'ipv4', outer: 'ipv4' }, { inner: 'ipv6', outer: 'ipv6' },
  { inner: 'ipv4', outer: 'ipv6' }, { inner: 'ipv6', outer: 'ipv4' },
] as const

t.test('tun: every inner/outer family combination balances real HTTP', needsRoot, async (t) => {
  const lab = await xvsLab(t, { decap: true })
  const { topo } = lab
  const loaded = lab.load()
  t.equal(loaded.adopted, false, 'fresh data plane')
  for (const c of combos) {
    lab.apply(`services:\n${serviceYaml(topo.vip[c.inner], 80, 'wrr', [
      { address: topo.reals[0]![c.outer], weight: 1, method: 'tun' },
      { address: topo.reals[1]![c.outer], weight: 3, method: 'tun' },
    ])}`)
    const r = await httpRequests(topo, topo.client, { host: topo.vip[c.inner], count: c.inner === c.outer ? 1000 : 200, concurrency: 8, deadlineMs: 120_000 })
    const n = r.ok + r.failed
    t.equal(r.failed, 0, `${c.inner} in ${c.outer}: no request failed ${JSON.stringify(r.errors)}`)
    const a = r.byResponder.rs1 ?? 0
    t.ok(Math.abs(a - n / 4) <= 4, `${c.inner} in ${c.outer}: rs1 (weight 1) got ${a} of ${n}`)
  }
  const via = lab.inDirector((dp) => dp.attachments().map((a) => a.via))
  t.same(via, ['netlink'], 'attached through netlink (no bpffs visible)')
})

t.test('tun: full-size segments get ICMP too-big and the transfer completes intact', needsRoot, async (t) => {
  const lab = await xvsLab(t, { decap: true })
  const { topo } = lab
  lab.load()
  await startUploadServers(topo, 8080)
  for (const fam of ['ipv4', 'ipv6'] as const) {
    lab.apply(`services:\n${serviceYaml(topo.vip[fam], 8080, 'rr', [{ address: topo.reals[0]![fam], method: 'tun' }])}`)
    const before = lab.inDirector((dp) => counter(dp.maps.counters, 'tx_too_big_icmp'))
    const r = await upload(topo, topo.client, topo.vip[fam], 8080, 2 * 1024 * 1024)
    t.same({ name: r.name, intact: r.intact, error: r.error }, { name: 'rs1', intact: true, error: undefined }, `${fam}: 2 MiB upload arrived intact at rs1`)
    const after = lab.inDirector((dp) => counter(dp.maps.counters, 'tx_too_big_icmp'))
    t.ok(after > before, `${fam}: the director answered too-big ${after - before} time(s)`)
  }
})

function counter(m: BpfMap, name: string): bigint {
  const idx = statCounterNames().indexOf(name)
  const key = Buffer.alloc(4)
  key.writeUInt32LE(idx)
  return (m.lookupPerCpu(key) ?? []).reduce((s, b) => s + b.readBigUInt64LE(0), 0n)
}

t.test('tun: the outer source is configurable (settings.tunnel_sources)', needsRoot, async (t) => {
  const lab = await xvsLab(t, { decap: true })
  const { topo } = lab
  lab.load()
  // A second director address, used only as the tunnels' outer source.
  topo.exec(topo.director, ['ip', 'addr', 'add', '10.200.0.2/24', 'dev', topo.director.front.name])
  lab.apply(`settings:\n  tunnel_sources: [10.200.0.2]\nservices:\n${serviceYaml(topo.vip.ipv4, 80, 'rr', [
    { address: topo.reals[0]!.ipv4, method: 'tun' }, { address: topo.reals[1]!.ipv6, method: 'tun' },
  ])}`)
  const srcs = lab.inDirector((dp) => [...dp.maps.reals.entries()]
    .map((e) => Real.decode(e.value)).filter((r) => r.family !== 0).map((r) => `${r.addr} from ${r.tun_src}`).sort())
  t.same(srcs, [`${topo.reals[0]!.ipv4} from 10.200.0.2`, `${topo.reals[1]!.ipv6} from ${topo.director.ipv6}`],
    'IPv4 tunnels leave from the configured source; IPv6 (none configured) from the route\'s preferred source')
  const set = lab.inDirector((dp) => Settings.decode(dp.maps.settings.lookup(Buffer.alloc(4))!))
  t.same([set.tun_src_v4, set.tun_src_v6], ['10.200.0.2', ''], 'xvs_settings keeps the configured sources, for readers of the maps')
  const r = await httpRequests(topo, topo.client, { host: topo.vip.ipv4, count: 100, concurrency: 4 })
  t.equal(r.ok, 100, `all requests answered ${JSON.stringify(r.errors)}`)
  // rr runs a cursor per CPU: each CPU alternates, so the split is 50:50 within a step per CPU.
  t.ok(Math.abs((r.byResponder.rs1 ?? 0) - 50) <= 4, `traffic flows through both tunnels: ${JSON.stringify(r.byResponder)}`)
})
