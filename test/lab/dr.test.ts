// SPDX-License-Identifier: GPL-2.0-only
// Direct routing through real namespaces, real TCP and real HTTP servers: weights, quiesce,
// atomic program replacement under load, and the director's own traffic. Pins go to a private
// bpffs here (the bpf_link path); tun.test.ts covers the netlink path with no bpffs.
import t from 'tap'
import { needsRoot, tempBpffs } from '../helpers/root'
import { xvsLab, serviceYaml } from '../helpers/xvs-lab'
import { holdConnections } from '../helpers/held'
import { httpRequests, startHttpServer } from '../../src/lab/http'
import { withNetns } from '../../src/bpf'
import { findDataplane } from '../../src/dataplane/loader'
import { statCounterNames } from '../../src/dataplane/abi'

for (const fam of ['ipv4', 'ipv6'] as const) {
  t.test(`dr ${fam}: 1,000 connections follow the weights 1:3 (wrr)`, needsRoot, async (t) => {
    process.env.XVS_BPFFS = tempBpffs(t)
    const lab = await xvsLab(t)
    const { topo } = lab
    const loaded = lab.load()
    t.same(loaded.attached, [topo.director.front.name], 'attached to the director front interface')
    t.equal(loaded.adopted, false, 'a fresh data plane')
    const res = lab.apply(`services:\n${serviceYaml(topo.vip[fam], 80, 'wrr', [
      { address: topo.reals[0]![fam], weight: 1, method: 'dr' },
      { address: topo.reals[1]![fam], weight: 3, method: 'dr' },
    ])}`)
    t.same(res.services, { added: 1, removed: 0, changed: 0, unchanged: 0 }, 'one service added')
    t.equal(res.reals.added, 2, 'two real servers added')
    const r = await httpRequests(topo, topo.client, { host: topo.vip[fam], count: 1000, concurrency: 8, deadlineMs: 120_000 })
    t.equal(r.failed, 0, `no request failed ${JSON.stringify(r.errors)}`)
    t.equal(r.ok, 1000, 'all 1,000 answered')
    // Each CPU walks the IPVS sequence B B A B from its own cursor: at most one step off per CPU.
    const a = r.byResponder.rs1 ?? 0
    t.ok(Math.abs(a - 250) <= 4, `rs1 (weight 1) got ${a} of 1000, rs2 (weight 3) ${r.byResponder.rs2 ?? 0}`)
    const { svc, created } = lab.inDirector((dp) => {
      const key = Buffer.alloc(4)
      let conns = 0n
      for (const slot of dp.maps.svcStats.lookupPerCpu(key) ?? []) conns += slot.readBigUInt64LE(0)
      key.writeUInt32LE(statCounterNames().indexOf('conn_new'))
      const made = (dp.maps.counters.lookupPerCpu(key) ?? []).reduce((s, b) => s + b.readBigUInt64LE(0), 0n)
      return { svc: conns, created: made }
    })
    // A client port reused while the old entry is not yet TIME_WAIT/CLOSE joins that entry (IPVS
    // conn_reuse_mode 1), so a few of the 1,000 may not be new entries.
    t.ok(svc >= 950n && svc <= 1000n, `the service counted ${svc} new connections for 1,000 requests`)
    t.equal(svc, created, 'the same as the conn_new counter')
  })
}

t.test('dr: a quiesced server gets no new connection; one already open keeps working', needsRoot, async (t) => {
  process.env.XVS_BPFFS = tempBpffs(t)
  const lab = await xvsLab(t)
  const { topo } = lab
  lab.load()
  const svc = (w1: number): string => `services:\n${serviceYaml(topo.vip.ipv4, 80, 'rr', [
    { address: topo.reals[0]!.ipv4, weight: w1, method: 'dr' },
    { address: topo.reals[1]!.ipv4, weight: 1, method: 'dr' },
  ])}`
  lab.apply(svc(1))
  const held = await holdConnections(topo, topo.vip.ipv4, 80, 10)
  const res = lab.apply(svc(0))
  t.equal(res.services.changed, 1, 'the service table was rewritten')
  const r = await httpRequests(topo, topo.client, { host: topo.vip.ipv4, count: 200, concurrency: 4 })
  t.equal(r.failed, 0, 'no new request failed')
  t.same(r.byResponder, { rs2: 200 }, 'every new connection went to rs2')
  const answers = await held.release()
  // rr keeps a cursor per CPU, so the ten split about evenly but not exactly.
  const onRs1 = answers.filter((a) => a === 'rs1').length
  t.ok(onRs1 >= 2, `held connections on the quiesced rs1 finished there: ${answers.join(' ')}`)
  t.equal(answers.filter((a) => a === 'rs2').length, 10 - onRs1, 'and every other one on rs2, none failed')
})

t.test('dr: replacing the program through the link during a request loop fails no request', needsRoot, async (t) => {
  process.env.XVS_BPFFS = tempBpffs(t)
  const lab = await xvsLab(t)
  const { topo } = lab
  lab.load()
  lab.apply(`services:\n${serviceYaml(topo.vip.ipv4, 80, 'mh', [
    { address: topo.reals[0]!.ipv4, method: 'dr' }, { address: topo.reals[1]!.ipv4, method: 'dr' },
  ])}`)
  const before = lab.inDirector((dp) => ({ prog: dp.prog.id, conns: dp.maps.conns.id }))
  const loop = httpRequests(topo, topo.client, { host: topo.vip.ipv4, count: 10_000, concurrency: 4, deadlineMs: 180_000 })
  let loopDone = false
  void loop.then(() => { loopDone = true }, () => { loopDone = true })
  let reloads = 0
  let duringLoop = 0
  const ids = new Set<number>()
  for (let i = 0; i < 10; i++) {
    await new Promise((r) => setTimeout(r, 100))
    const l = lab.load()
    if (l.adopted && l.replaced.length === 1) reloads++
    if (!loopDone) duringLoop++
    ids.add(l.progId)
  }
  // How many fall inside the loop depends on the machine's load; most do, and several must.
  t.ok(duringLoop >= 3, `replacements made while requests were in flight: ${duringLoop} of 10`)
  const r = await loop
  t.equal(reloads, 10, 'ten atomic replacements, each adopting the running maps')
  t.equal(ids.size, 10, 'ten distinct programs')
  t.equal(r.failed, 0, `no request failed ${JSON.stringify(r.errors)}`)
  t.equal(r.ok, 10_000, 'all 10,000 answered')
  const after = lab.inDirector((dp) => ({ prog: dp.prog.id, conns: dp.maps.conns.id, via: dp.attachments().map((a) => a.via) }))
  t.not(after.prog, before.prog, 'a new program is attached')
  t.equal(after.conns, before.conns, 'the connection table is the same map')
  t.same(after.via, ['link'], 'held by a pinned bpf_link')
})

t.test("dr: the director's own traffic is untouched", needsRoot, async (t) => {
  process.env.XVS_BPFFS = tempBpffs(t)
  const lab = await xvsLab(t)
  const { topo } = lab
  lab.load()
  lab.apply(`services:\n${serviceYaml(topo.vip.ipv4, 80, 'rr', [{ address: topo.reals[0]!.ipv4, method: 'dr' }])}`)
  // An ssh-like TCP service on the director's own address, and on the VIP at a port that is no service.
  await startHttpServer(topo, topo.director, { name: 'director', port: 22 })
  for (const host of [topo.director.ipv4, topo.director.ipv6, topo.vip.ipv4]) {
    const r = await httpRequests(topo, topo.client, { host, port: 22, count: 50, concurrency: 2 })
    t.same({ ok: r.ok, by: r.byResponder }, { ok: 50, by: { director: 50 } }, `TCP to ${host}:22 reaches the director itself`)
  }
  const ping = topo.exec(topo.client, ['ping', '-c', '3', '-i', '0.2', '-W', '2', topo.director.ipv4])
  t.match(ping, /3 received/, 'ping to the director answers')
  const passed = lab.inDirector((dp) => {
    const key = Buffer.alloc(4)
    key.writeUInt32LE(2) // XVS_STAT_PASS_NOT_SERVICE
    return (dp.maps.counters.lookupPerCpu(key) ?? []).reduce((s, b) => s + b.readBigUInt64LE(0), 0n)
  })
  t.ok(passed > 0n, `counted as not-a-service and passed: ${passed}`)
  t.ok(withNetns(topo.director.ns, () => findDataplane() !== null), 'data plane still attached')
})
