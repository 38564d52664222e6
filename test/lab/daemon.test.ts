// SPDX-License-Identifier: GPL-2.0-only
// The daemon as a process in a namespace lab, with real HTTP servers and a client that keeps
// requesting through the director (hundreds a second, every failure counted): a real server's HTTP
// process killed is out within fall x interval and back after re-entry; the sorry server takes over
// when every server is down; SIGHUP with a new weight under load fails no request and the
// distribution follows, SIGHUP or `reload` with a broken file changes nothing and reports where;
// `kill -9` of the daemon leaves traffic flowing and a new daemon adopts the same maps without a
// failed request; an upgrade through the link fails none either; /metrics parses as Prometheus text.
import t from 'tap'
import { httpRequests, startHttpServer } from '../../src/lab/http'
import { needsRoot, tempBpffs } from '../helpers/root'
import { daemonConfig, daemonLab, realFailures, xvsIn, type DaemonLab } from '../helpers/daemon-lab'
import { parsePrometheus, sampleValue } from '../helpers/prom'
import type { HealthView } from '../../src/daemon/daemon'

const opts = needsRoot

const CHECK = '{ type: http, urls: [{ path: "/" }], interval: 0.5, timeout: 0.4, fall: 2, rise: 2, retry: 0 }'
const up = (h: HealthView[], server: string): boolean => h.find((x) => x.server.startsWith(server))?.health === 'up'
const down = (h: HealthView[], server: string): boolean => h.find((x) => x.server.startsWith(server))?.health === 'down'

/** A request loop through the VIP for `ms`, at least `rate` requests a second expected. */
function load(lab: DaemonLab, ms: number) {
  return httpRequests(lab.topo, lab.topo.client, { host: lab.topo.vip.ipv4, count: 100_000, concurrency: 16, deadlineMs: ms, timeoutMs: 3000 })
}

t.test('health check failover: a killed HTTP server is out within fall x interval, back after re-entry', opts, async (t) => {
  const lab = await daemonLab(t, { reals: 3 })
  const { topo } = lab
  lab.writeConfig(daemonConfig(topo, {
    reals: [{ node: 0 }, { node: 1 }, { node: 2 }],
    check: CHECK.replace('retry: 0', 'retry: 0, reentry: 2'),
  }))
  await lab.start()
  await lab.waitHealth((h) => h.length === 3 && h.every((x) => x.health === 'up' && x.checks > 0), 10_000)
  const first = await httpRequests(topo, topo.client, { host: topo.vip.ipv4, count: 300, concurrency: 6 })
  t.equal(first.failed, 0, 'all answered before the failure')
  t.same(Object.keys(first.byResponder).sort(), ['rs1', 'rs2', 'rs3'], 'spread over the three')

  // Kill rs1's HTTP process while requests keep coming.
  const during = load(lab, 6000)
  await new Promise((r) => setTimeout(r, 500))
  const killedAt = Date.now()
  await lab.servers[0]!.stop()
  await lab.waitHealth((h) => down(h, topo.reals[0]!.ipv4), 5000)
  const outList = await lab.list()
  t.equal(outList[0]!.reals.find((r) => r.key.startsWith(topo.reals[0]!.ipv4))!.inService, false, 'taken out of the data plane')
  // fall (2) x interval (0.5 s), plus one timeout and one interval of phase: at most 2.4 s.
  const detected = Date.now() - killedAt
  // fall x interval, plus a timeout and an interval of phase, plus slack for a loaded machine.
  t.ok(detected <= 2 * 500 + 500 + 500 + 2000, `down ${detected} ms after the kill (fall x interval = 1000 ms)`)
  const r1 = await during
  t.comment(`during the failure: ${r1.ok} ok, ${realFailures(r1)} failed ${JSON.stringify(r1.errors)} in ${r1.elapsedMs} ms`)
  // The load really ran across the failure (a rate would be a benchmark, not a test).
  t.ok(r1.ok >= 100, `the request loop ran through the failure: ${r1.ok} answered`)

  const after = await httpRequests(topo, topo.client, { host: topo.vip.ipv4, count: 600, concurrency: 6 })
  t.equal(after.failed, 0, `no request fails after detection ${JSON.stringify(after.errors)}`)
  t.notOk(after.byResponder.rs1, 'none goes to rs1')

  // Back: healthy again, in after rise (2) good checks and the 2 s re-entry time, counted from when
  // the restarted server listens (its own start-up is no part of the re-entry time).
  lab.servers[0] = await startHttpServer(topo, topo.reals[0]!)
  const listening = Date.now()
  await lab.waitHealth((h) => up(h, topo.reals[0]!.ipv4), 10_000)
  const back = Date.now() - listening
  t.ok(back >= 2000, `not back before the re-entry time (${back} ms after it listens)`)
  t.comment(`back ${back} ms after it listens again (re-entry 2000 ms, rise 2 x 500 ms)`)
  const again = await httpRequests(topo, topo.client, { host: topo.vip.ipv4, count: 300, concurrency: 6 })
  t.equal(again.failed, 0)
  t.ok((again.byResponder.rs1 ?? 0) > 50, `rs1 gets requests again (${again.byResponder.rs1})`)

  const transitions = lab.daemon!.records().filter((r) => r.msg === 'real server health changed')
  t.same(transitions.map((r) => [r.from, r.to]), [['up', 'down'], ['down', 'up']], 'both transitions logged')
  t.ok(transitions.every((r) => r.component === 'health' && typeof r.cause === 'string'), 'by the health component, with a cause')
})

t.test('sorry server: takes every new connection when all real servers are down, leaves when one is back', opts, async (t) => {
  const lab = await daemonLab(t, { reals: 3 })
  const { topo } = lab
  lab.writeConfig(daemonConfig(topo, {
    reals: [{ node: 0 }, { node: 1 }],
    check: CHECK.replace('fall: 2, rise: 2', 'fall: 1, rise: 1'),
    extra: `    sorry_server: { address: "${topo.reals[2]!.ipv4}", port: 80, method: dr }\n`,
  }))
  await lab.start()
  await lab.waitHealth((h) => h.length === 2 && h.every((x) => x.health === 'up' && x.checks > 0), 10_000)
  const before = await httpRequests(topo, topo.client, { host: topo.vip.ipv4, count: 200, concurrency: 4 })
  t.same(Object.keys(before.byResponder).sort(), ['rs1', 'rs2'], 'the sorry server gets nothing while real servers are up')
  await Promise.all([lab.servers[0]!.stop(), lab.servers[1]!.stop()])
  await lab.waitHealth((h) => h.every((x) => x.health === 'down'), 5000)
  const list = await lab.list()
  t.match(list[0], { sorryActive: true, quorumUp: false })
  const sorry = await httpRequests(topo, topo.client, { host: topo.vip.ipv4, count: 200, concurrency: 4 })
  t.same(sorry.byResponder, { rs3: 200 }, `every request answered by the sorry server ${JSON.stringify(sorry.errors)}`)
  lab.servers[1] = await startHttpServer(topo, topo.reals[1]!)
  await lab.waitHealth((h) => up(h, topo.reals[1]!.ipv4), 5000)
  await new Promise((r) => setTimeout(r, 200))
  const back = await httpRequests(topo, topo.client, { host: topo.vip.ipv4, count: 200, concurrency: 4 })
  t.same(back.byResponder, { rs2: 200 }, 'the sorry server is out again')
  t.ok(lab.daemon!.records().some((r) => r.msg === 'sorry server takes the service: no real server is available'), 'logged')
})

t.test('reload under load: SIGHUP with a new weight fails no request; a broken file changes nothing', opts, async (t) => {
  const lab = await daemonLab(t)
  const { topo } = lab
  const cfg = (w2: number) => daemonConfig(topo, { reals: [{ node: 0, weight: 1 }, { node: 1, weight: w2 }], check: CHECK })
  lab.writeConfig(cfg(1))
  const d = await lab.start()
  await lab.waitHealth((h) => h.length === 2 && h.every((x) => x.checks > 0), 10_000)
  const loop = load(lab, 5000)
  await new Promise((r) => setTimeout(r, 1500))
  lab.writeConfig(cfg(3))
  process.kill(d.pid, 'SIGHUP')
  const r = await loop
  t.equal(realFailures(r), 0, `no request failed across the reload (${r.ok} answered, ${JSON.stringify(r.errors)})`)
  t.ok(r.ok >= 100, `the request loop ran throughout: ${r.ok} answered`)
  const st = await lab.status()
  t.match(st.config, { generation: 2, lastReload: { ok: true } }, 'the reload was applied')
  const dist = await httpRequests(topo, topo.client, { host: topo.vip.ipv4, count: 800, concurrency: 8 })
  t.equal(dist.failed, 0)
  const share = (dist.byResponder.rs1 ?? 0) / 800
  t.ok(Math.abs(share - 0.25) < 0.03, `rs1 gets ${(share * 100).toFixed(1)} % at weights 1:3`)
  t.ok(d.records().some((x) => x.msg === 'config reloaded' && x.component === 'daemon'), 'the reload is logged')

  // A broken file: SIGHUP logs the located error, nothing changes.
  const before = await lab.list()
  const idsBefore = lab.ids()
  lab.writeConfig(cfg(3).replace('weight: 3', 'weight: lots'))
  process.kill(d.pid, 'SIGHUP')
  for (let i = 0; i < 50 && !d.records().some((x) => x.msg === 'reload refused; the running config stays in force'); i++) await new Promise((r) => setTimeout(r, 100))
  const refused = d.records().find((x) => x.msg === 'reload refused; the running config stays in force')
  t.ok(refused, 'the refusal is logged')
  t.match((refused as { where?: string }).where, new RegExp(`^${lab.configFile}:\\d+:\\d+$`), 'with file:line:column')
  t.match(refused, { level: 50, err: { code: 'ECONFIG' } })
  // The same through the control socket: an error answer carrying the position.
  const err = await lab.call('reload').catch((e: unknown) => e)
  t.match(err, { code: 'ECONFIG', where: new RegExp(`^${lab.configFile}:\\d+:\\d+$`) }, 'reload over the socket returns the located error')
  const after = await lab.list()
  t.same(after[0]!.reals.map((x) => [x.key, x.weight]), before[0]!.reals.map((x) => [x.key, x.weight]), 'the weights in force did not change')
  t.same(lab.ids(), idsBefore, 'same program, same maps')
  t.match((await lab.status()).config, { generation: 2, lastReload: { ok: false, error: { code: 'ECONFIG' } } })
  const still = await httpRequests(topo, topo.client, { host: topo.vip.ipv4, count: 400, concurrency: 8 })
  t.equal(still.failed, 0, 'traffic still flows on the old config')
})

t.test('kill -9 of the daemon: traffic keeps flowing; a new daemon adopts the same maps without a failed request', opts, async (t) => {
  const bpffs = tempBpffs(t)
  const lab = await daemonLab(t, { bpffs })
  const { topo } = lab
  lab.writeConfig(daemonConfig(topo, { reals: [{ node: 0 }, { node: 1 }], check: CHECK }))
  await lab.start()
  await lab.waitHealth((h) => h.length === 2 && h.every((x) => x.checks > 0), 10_000)
  const ids = lab.ids()!
  const st0 = await lab.status()
  t.same(st0.dataplane?.attachments.map((a) => a.via), ['link'], 'held by a pinned bpf_link (a bpffs is visible)')

  const loop = load(lab, 8000)
  await new Promise((r) => setTimeout(r, 1000))
  const code = await lab.kill('SIGKILL')
  t.equal(code, null, 'killed by the signal')
  await new Promise((r) => setTimeout(r, 1500)) // traffic with no daemon at all
  t.same(lab.ids(), ids, 'the data plane is still attached, same program and maps')
  await lab.start()
  const st = await lab.status()
  t.match(st.dataplane, { adopted: true, connsMapId: ids.conns }, 'the new daemon adopted the running connection table')
  t.not(st.dataplane!.progId, ids.prog, 'and replaced the program atomically')
  const r = await loop
  t.equal(realFailures(r), 0, `zero failed requests across kill -9 and restart (${r.ok} answered, ${JSON.stringify(r.errors)})`)
  t.ok(r.ok >= 100, `the request loop ran throughout: ${r.ok} answered`)

  // Upgrade through the link under load: new program, same maps, nothing lost.
  const loop2 = load(lab, 4000)
  await new Promise((r) => setTimeout(r, 1000))
  const up1 = await lab.call('upgrade') as { previousProgId: number; progId: number; replaced: string[] }
  const r2 = await loop2
  t.not(up1.progId, up1.previousProgId, 'a new program')
  t.same(up1.replaced, [topo.director.front.name])
  t.equal(lab.ids()!.conns, ids.conns, 'the same connection table')
  t.equal(realFailures(r2), 0, `zero failed requests across the upgrade (${r2.ok} answered)`)

  // SIGTERM: the daemon goes, the data plane stays.
  t.equal(await lab.kill('SIGTERM'), 0, 'exits 0 on SIGTERM')
  t.ok(lab.ids(), 'the data plane is still there after SIGTERM')
  const noDaemon = await httpRequests(topo, topo.client, { host: topo.vip.ipv4, count: 200, concurrency: 4 })
  t.equal(noDaemon.failed, 0, 'and forwards with no daemon')
})

t.test('/metrics: scraped from the director and parsed as Prometheus text', opts, async (t) => {
  const lab = await daemonLab(t)
  const { topo } = lab
  lab.writeConfig(daemonConfig(topo, { reals: [{ node: 0 }, { node: 1 }], check: CHECK }))
  await lab.start()
  await lab.waitHealth((h) => h.length === 2 && h.every((x) => x.checks > 2), 10_000)
  const r = await httpRequests(topo, topo.client, { host: topo.vip.ipv4, count: 400, concurrency: 4 })
  t.equal(r.failed, 0)
  await new Promise((r) => setTimeout(r, 2500)) // a sweep and a rate sample
  const text = await lab.scrape()
  const m = parsePrometheus(text)
  const svc = { service: `tcp:${topo.vip.ipv4}:80` }
  t.equal(sampleValue(m, 'xvs_service_connections_total', svc), 400, 'the service counted 400 connections')
  const perReal = [0, 1].map((i) => sampleValue(m, 'xvs_real_connections_total', { ...svc, real: `${topo.reals[i]!.ipv4}:80` }) ?? 0)
  t.equal(perReal[0]! + perReal[1]!, 400, `split ${perReal.join('/')}`)
  t.ok(sampleValue(m, 'xvs_service_packets_total', { ...svc, direction: 'in' })! >= 400 * 4, 'packets counted')
  t.equal(sampleValue(m, 'xvs_real_health', { ...svc, real: `${topo.reals[0]!.ipv4}:80` }), 1)
  t.ok(sampleValue(m, 'xvs_real_check_latency_seconds', { ...svc, real: `${topo.reals[0]!.ipv4}:80` })! > 0, 'check latency')
  t.ok(sampleValue(m, 'xvs_dataplane_events_total', { event: 'rx' })! > 400 * 4, 'data-plane counters by name')
  t.equal(typeof sampleValue(m, 'xvs_dataplane_events_total', { event: 'drop_no_backend' }), 'number')
  t.ok(sampleValue(m, 'xvs_sweeper_passes_total')! >= 1, 'the sweeper ran')
  t.ok(sampleValue(m, 'xvs_conn_table_entries')! >= 1, `it saw ${sampleValue(m, 'xvs_conn_table_entries')} connections`)
  t.equal(sampleValue(m, 'xvs_real_active_connections', { ...svc, real: `${topo.reals[0]!.ipv4}:80` }), 0, 'finished connections are not active')
  t.ok(sampleValue(m, 'xvs_service_connection_rate', svc)! > 0, 'a connection rate')
  const viaSocket = ((await lab.call('metrics')) as { text: string }).text
  t.doesNotThrow(() => parsePrometheus(viaSocket), 'the socket serves the same page')
})

t.test('the command line through the socket: status shows the daemon, reload reports a refused file, edits go through the daemon, other namespaces are not its', opts, async (t) => {
  const lab = await daemonLab(t)
  const { topo } = lab
  const cfg = (w1: number) => daemonConfig(topo, { reals: [{ node: 0, weight: w1 }, { node: 1 }], check: CHECK })
  lab.writeConfig(cfg(1))
  await lab.start()
  const xvs = (...args: string[]) => xvsIn(topo, lab.socket, args)

  const st = xvs('status')
  t.equal(st.status, 0, `xvs status exits 0 ${st.stderr}`)
  t.match(st.stdout, /^xvs data plane: loaded/m)
  t.match(st.stdout, new RegExp(`^daemon: pid ${lab.daemon!.pid}`, 'm'), 'and shows the daemon')
  t.match(st.stdout, /^config: .*generation 1/m)
  t.match(st.stdout, /^health: 2 checks/m)
  t.match(JSON.parse(xvs('status', '--json').stdout), { loaded: true, daemon: { pid: lab.daemon!.pid } })

  lab.writeConfig(cfg(4))
  const ok = xvs('reload')
  t.equal(ok.status, 0, `xvs reload exits 0 ${ok.stderr}`)
  t.match(ok.stdout, /config reloaded from .* generation 2/)

  lab.writeConfig(cfg(4).replace('weight: 4', 'weight: four'))
  const bad = xvs('reload')
  t.equal(bad.status, 1, 'a refused file: exit 1')
  t.match(bad.stderr, new RegExp(`^xvs: ${lab.configFile}:\\d+:\\d+: `, 'm'), `with the file:line:column (${bad.stderr.trim()})`)
  t.match((await lab.status()).config, { generation: 2 }, 'nothing changed')

  const edit = xvs('server', 'edit', '-t', `${topo.vip.ipv4}:80`, '-r', topo.reals[1]!.ipv4, '-w', '3')
  t.equal(edit.status, 0, `an edit goes through the daemon ${edit.stderr}`)
  const st2 = await lab.status()
  t.match(st2.config, { source: 'text', generation: 3 }, 'the daemon runs the edited config')
  t.same((await lab.list())[0]!.reals.map((r) => r.configuredWeight), [4, 3], 'with the new weight, the other kept')
  t.equal((await lab.health()).length, 2, 'and its health checks (the maps hold none of that)')

  // The socket path is the host's, not the namespace's: from another namespace it is not this daemon.
  const elsewhere = xvsIn(topo, lab.socket, ['reload'], topo.client.ns)
  t.equal(elsewhere.status, 2, 'xvs reload from another network namespace: exit 2')
  t.match(elsewhere.stderr, /serves another network namespace/)

  const unload = xvs('unload')
  t.not(unload.status, 0, 'unload is refused while the daemon runs')
  t.match(unload.stderr, /the xvs daemon .* runs this data plane/)
  t.ok(lab.ids(), 'the data plane is still there')
})
