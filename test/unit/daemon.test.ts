// SPDX-License-Identifier: GPL-2.0-only
// The daemon with a fake data plane, scripted health checkers and an injected clock: start applies the
// config; health transitions rewrite the desired state within fall x interval and back after rise (and
// re-entry); reloads touch only what changed and keep the health of unchanged checks; a broken file or
// a config the data plane refuses leaves the running config in force and reports where; `apply` over
// the socket handlers; an unreachable real server does not block the rest; adopting a running data
// plane starts from its state; stop leaves the data plane alone unless told to detach.
import t from 'tap'
import { ConfigError } from '../../src/errors'
import { parseConfig } from '../../src/config'
import { Daemon, type DaemonOptions } from '../../src/daemon/daemon'
import type { DataplaneHost, HostLoadRequest, KernelView } from '../../src/daemon/host'
import type { ConnTable } from '../../src/daemon/sweeper'
import { ResolveError, type NextHop } from '../../src/dataplane/neigh'
import type { ApplyResult, WriterOptions } from '../../src/dataplane/writer'
import { serviceKey, realServerKey } from '../../src/model/diff'
import type { Model, PortService } from '../../src/model/types'
import type { Checker, CheckResult, CheckSpec, CheckTarget } from '../../src/health/types'
import { FakeClock } from '../../src/util/clock'
import { parsePrometheus, sampleValue } from '../helpers/prom'

const RESULT: ApplyResult = { services: { added: 0, removed: 0, changed: 0, unchanged: 0 }, reals: { added: 0, removed: 0, changed: 0 }, tablesWritten: 0, slotsWritten: 0 }

class FakeHost implements DataplaneHost {
  applied: Model[] = []
  loads: HostLoadRequest[] = []
  detached: string[] = []
  running: string[] = []
  kernel: Model | undefined
  unloaded = false
  closed = false
  refuse: string | undefined
  private ifaces: string[] = []
  runningInterfaces(): string[] { return this.running }
  load(req: HostLoadRequest) {
    this.loads.push(req)
    const adopted = this.kernel !== undefined
    this.ifaces = [...req.ifaces]
    return { adopted, attached: req.ifaces.filter((i) => !this.running.includes(i)), replaced: req.ifaces.filter((i) => this.running.includes(i)), progId: 100 + this.loads.length }
  }
  detach(ifaces: string[]): void { this.detached.push(...ifaces); this.ifaces = this.ifaces.filter((i) => !ifaces.includes(i)) }
  apply(model: Model, opts: WriterOptions): ApplyResult {
    for (const s of model.services) {
      if (this.refuse && s.scheduler === this.refuse) throw new ConfigError(`scheduler ${s.scheduler} is not supported by the data plane yet`)
      for (const r of s.realServers) opts.resolve?.(r.address, {})
    }
    this.applied.push(structuredClone(model))
    return RESULT
  }
  get last(): Model { return this.applied[this.applied.length - 1]! }
  info() { return { progId: 100 + this.loads.length, connsMapId: 7, abiVersion: 1, connTableSize: 1024, attachments: this.ifaces.map((i) => ({ ifname: i, mode: 'native', via: 'link' })) } }
  view(): KernelView {
    // Before the first write: what a running data plane holds (when adopting one).
    const m = this.applied.length ? this.last : this.kernel
    if (!m) return { services: [], reals: [] }
    let id = 1
    return {
      services: m.services.map((s, i) => ({ id: i, key: serviceKey(s) })),
      reals: m.services.flatMap((s, i) => s.realServers.map((r) => ({ id: id++, serviceId: i, key: realServerKey(r), weight: r.weight, flags: 0 }))),
    }
  }
  stats() { return { services: new Map(), reals: new Map() } }
  counters() { return { rx: 5, drop_no_backend: 1 } }
  conns(): ConnTable { return { keySize: 40, valueBytes: 32, maxEntries: 16, lookupBatchRaw: () => ({ keys: Buffer.alloc(0), values: Buffer.alloc(0), count: 0, token: null }), lookup: () => null, deleteBatchRaw: () => 0 } }
  timeouts() { return { tcp_timeout_s: 0, tcp_fin_timeout_s: 0, udp_timeout_s: 0 } }
  serviceIndex() { return { ids: new Map<string, number>() } }
  unload(): void { this.unloaded = true }
  close(): void { this.closed = true }
}

/** Checkers whose answer per address the test sets: true, false, or 'hang' (until aborted). */
class Checks {
  readonly state = new Map<string, boolean | 'hang'>()
  readonly calls: string[] = []
  create = (spec: CheckSpec): Checker => ({
    type: spec.type,
    run: (target: CheckTarget, signal: AbortSignal): Promise<CheckResult> => {
      this.calls.push(target.address)
      const s = this.state.get(target.address) ?? true
      if (s === 'hang') return new Promise((resolve) => signal.addEventListener('abort', () => resolve({ ok: false, detail: 'aborted', latencyMs: 0 }), { once: true }))
      return Promise.resolve({ ok: s, detail: s ? 'fine' : 'connect ECONNREFUSED', latencyMs: 2 })
    },
  })
}

const CONFIG = (o: { w2?: number; check?: string; extra?: string; sched?: string; rs3?: boolean } = {}): string => `settings:
  interfaces: [eth0]
services:
  - vip: 10.0.0.100
    port: 80
    scheduler: ${o.sched ?? 'wrr'}
    check: ${o.check ?? '{ type: tcp, interval: 1, timeout: 0.5, fall: 3, rise: 2, retry: 0 }'}
${o.extra ?? ''}    real_servers:
      - { address: 10.0.0.11, method: dr, weight: 1 }
      - { address: 10.0.0.12, method: dr, weight: ${o.w2 ?? 2} }
${o.rs3 ? '      - { address: 10.0.0.13, method: dr, weight: 3 }\n' : ''}`

interface Rig { d: Daemon; host: FakeHost; clock: FakeClock; checks: Checks; files: Map<string, string> }

async function rig(t: { teardown(fn: () => unknown): void }, text = CONFIG(), over: Partial<DaemonOptions> & { host?: FakeHost } = {}): Promise<Rig> {
  const clock = new FakeClock(1000)
  const host = over.host ?? new FakeHost()
  const checks = new Checks()
  const files = new Map([['/etc/xvs/xvs.yaml', text]])
  const d = new Daemon({
    config: '/etc/xvs/xvs.yaml', clock, host, socket: null, metrics: null, sweeper: false, rateIntervalMs: 0,
    readFile: (p) => { const f = files.get(p); if (f === undefined) throw Object.assign(new Error('no such file'), { code: 'ENOENT' }); return f },
    createChecker: checks.create, health: { spreadMs: 0 }, resolve: (address) => hop(address),
    ...over,
  })
  t.teardown(() => d.stop())
  await d.start()
  return { d, host, clock, checks, files }
}

const hop = (address: string): NextHop => ({ address, ifname: 'eth0', ifindex: 2, srcMac: '02:00:00:00:00:01', dstMac: '02:00:00:00:00:02', mtu: 1500 })
const weights = (m: Model): Record<string, number> => Object.fromEntries((m.services[0] as PortService).realServers.map((r) => [r.address, r.weight]))

t.test('start: the config is applied on the configured interfaces, one health target per real server', async (t) => {
  const { d, host } = await rig(t)
  t.same(host.loads, [{ ifaces: ['eth0'], connTableSize: 1048576 }])
  t.equal(host.applied.length, 1)
  t.same(weights(host.last), { '10.0.0.11': 1, '10.0.0.12': 2 })
  t.same(d.health().map((h) => [h.key, h.health]), [['tcp:10.0.0.100:80/10.0.0.11:80', 'up'], ['tcp:10.0.0.100:80/10.0.0.12:80', 'up']])
  t.match(d.status(), { config: { generation: 1, format: 'yaml', lastReload: { ok: true } }, dataplane: { progId: 101, adopted: false }, health: { targets: 2, up: 2 } })
})

t.test('a failing server is out after fall x interval, back after rise; a hanging check blocks no other', async (t) => {
  const { d, host, clock, checks } = await rig(t, CONFIG({ rs3: true }))
  checks.state.set('10.0.0.13', 'hang')
  await clock.advanceAsync(0)
  checks.state.set('10.0.0.12', false)
  const applies = host.applied.length
  await clock.advanceAsync(1000) // 1st failure (and 10.0.0.13's hang times out at +500 ms)
  await clock.advanceAsync(1000) // 2nd
  t.same(weights(host.last), { '10.0.0.11': 1, '10.0.0.12': 2, '10.0.0.13': 3 }, 'still in after two failures')
  await clock.advanceAsync(1000) // 3rd: fall
  // 10.0.0.13's checks hung and were aborted at their 0.5 s timeout: it went down on its own schedule
  // (its third failure came half a second before 10.0.0.12's), and 10.0.0.11 was checked every second.
  t.same(weights(host.last), { '10.0.0.11': 1 }, 'both removed after 3 failed checks at 1 s: within fall x interval')
  t.equal(d.health().find((h) => h.server === '10.0.0.12:80')!.health, 'down')
  t.equal(d.health().find((h) => h.server === '10.0.0.13:80')!.health, 'down')
  t.equal(host.applied.length, applies + 2, 'one write per transition')
  t.ok(checks.calls.filter((a) => a === '10.0.0.11').length >= 4, '10.0.0.11 kept being checked')
  checks.state.set('10.0.0.12', true)
  checks.state.set('10.0.0.13', true)
  await clock.advanceAsync(1000)
  t.notOk('10.0.0.12' in weights(host.last), 'one good check is not enough (rise 2)')
  await clock.advanceAsync(1000)
  t.same(weights(host.last), { '10.0.0.11': 1, '10.0.0.12': 2, '10.0.0.13': 3 }, 'back after 2 good checks')
})

t.test('quiesce keeps a failed server at weight 0; re-entry keeps it out until healthy that long', async (t) => {
  const { host, clock, checks } = await rig(t, CONFIG({ check: '{ type: tcp, interval: 1, timeout: 0.5, fall: 1, rise: 1, retry: 0, reentry: 5, on_failure: quiesce }' }))
  await clock.advanceAsync(0)
  checks.state.set('10.0.0.11', false)
  await clock.advanceAsync(1000)
  t.same(weights(host.last), { '10.0.0.11': 0, '10.0.0.12': 2 }, 'quiesced, not removed')
  checks.state.set('10.0.0.11', true)
  await clock.advanceAsync(5000) // good checks at +1 .. +5 s: healthy from the first for 4 s
  t.equal(weights(host.last)['10.0.0.11'], 0, 'healthy for 4 s of a 5 s re-entry: still out')
  await clock.advanceAsync(1000)
  t.equal(weights(host.last)['10.0.0.11'], 1, 'healthy for 5 s: back')
})

t.test('every server down: the sorry server takes the service, and leaves when one is back', async (t) => {
  const { d, host, clock, checks } = await rig(t, CONFIG({ check: '{ type: tcp, interval: 1, timeout: 0.5, fall: 1, rise: 1, retry: 0 }', extra: '    sorry_server: { address: 10.0.0.99, port: 80, method: dr }\n' }))
  await clock.advanceAsync(0)
  checks.state.set('10.0.0.11', false)
  checks.state.set('10.0.0.12', false)
  await clock.advanceAsync(1000)
  t.same(weights(host.last), { '10.0.0.99': 1 })
  const svc = d.list()[0]!
  t.match(svc, { sorryActive: true, quorumUp: false })
  t.match(svc.reals.find((r) => r.key === '10.0.0.99:80'), { health: 'sorry', inService: true })
  checks.state.set('10.0.0.12', true)
  await clock.advanceAsync(1000)
  t.same(weights(host.last), { '10.0.0.12': 2 })
  t.equal(d.list()[0]!.sorryActive, false)
})

t.test('reload: only the changed weight is new; an unchanged check keeps its state', async (t) => {
  const { d, host, clock, checks, files } = await rig(t, CONFIG({ rs3: true }))
  await clock.advanceAsync(0)
  checks.state.set('10.0.0.11', false)
  await clock.advanceAsync(3000)
  t.notOk('10.0.0.11' in weights(host.last), '10.0.0.11 is down and out')
  files.set('/etc/xvs/xvs.yaml', CONFIG({ rs3: true, w2: 5 }))
  const r = d.reload()
  t.match(r, { generation: 2, health: { added: 0, removed: 0, kept: 3 }, interfaces: { attached: [], detached: [] } })
  t.same(weights(host.last), { '10.0.0.12': 5, '10.0.0.13': 3 }, 'the new weight, and the down server still out')
  t.equal(d.health().find((h) => h.server === '10.0.0.11:80')!.health, 'down', 'its state survived the reload')
  // A changed check definition is a new check: it starts afresh (up).
  files.set('/etc/xvs/xvs.yaml', CONFIG({ rs3: true, w2: 5, check: '{ type: tcp, interval: 2, timeout: 0.5, fall: 3, rise: 2, retry: 0 }' }))
  t.match(d.reload(), { health: { added: 3, removed: 0, kept: 0 } })
  // Removing a real server removes its check.
  files.set('/etc/xvs/xvs.yaml', CONFIG({ w2: 5, check: '{ type: tcp, interval: 2, timeout: 0.5, fall: 3, rise: 2, retry: 0 }' }))
  t.match(d.reload(), { health: { added: 0, removed: 1, kept: 2 } })
  t.equal(d.health().length, 2)
})

t.test('reload of a broken file: refused with its position, the running config stays in force', async (t) => {
  const { d, host, files } = await rig(t)
  const before = host.applied.length
  files.set('/etc/xvs/xvs.yaml', CONFIG().replace('weight: 2', 'weight: -2'))
  const err = (() => { try { d.reload(); return undefined } catch (e) { return e } })()
  t.ok(err instanceof ConfigError, 'a ConfigError')
  t.match(err, { code: 'ECONFIG', where: /^\/etc\/xvs\/xvs\.yaml:\d+:\d+$/ })
  t.equal(host.applied.length, before, 'nothing was written')
  t.match(d.status().config, { generation: 1, lastReload: { ok: false, error: { code: 'ECONFIG', where: /xvs\.yaml:\d+:\d+/ } }, reloads: { ok: 0, failed: 1 } })
  const m = parsePrometheus(d.metricsText())
  t.equal(sampleValue(m, 'xvs_config_last_reload_success'), 0)
  t.equal(sampleValue(m, 'xvs_config_reloads_total', { result: 'failed' }), 1)
  files.delete('/etc/xvs/xvs.yaml')
  t.throws(() => d.reload(), { code: 'ECONFIG', message: /cannot read/ }, 'a missing file too')
  files.set('/etc/xvs/xvs.yaml', CONFIG({ w2: 7 }))
  d.reload()
  t.same(weights(host.last), { '10.0.0.11': 1, '10.0.0.12': 7 }, 'a good file afterwards applies')
  t.equal(d.status().config.lastReload!.ok, true)
})

t.test('reload refused by the data plane (writer error): nothing changes, checks included', async (t) => {
  const host = new FakeHost()
  host.refuse = 'lc'
  const { d, files } = await rig(t, CONFIG(), { host })
  files.set('/etc/xvs/xvs.yaml', CONFIG({ sched: 'lc', check: '{ type: tcp, interval: 9 }' }))
  t.throws(() => d.reload(), { code: 'ECONFIG', message: /not supported/ })
  t.equal(d.status().config.generation, 1)
  t.same(d.health().map((h) => h.key).length, 2)
  t.equal(weights(host.last)['10.0.0.12'], 2)
})

t.test('apply over the control handlers: text in any format; a later reload goes back to the file', async (t) => {
  const { d, host } = await rig(t)
  const h = d.handlers()
  const r = await h.apply({ text: '-A -t 10.0.0.100:80 -s rr\n-a -t 10.0.0.100:80 -r 10.0.0.21 -g -w 4\n', format: 'ipvsadm', file: 'rules' })
  t.match(r, { format: 'ipvsadm', file: 'rules', generation: 2 })
  t.same(weights(host.last), { '10.0.0.21': 4 })
  t.equal(d.health().length, 0, 'ipvsadm rules carry no checks: the old ones are gone')
  const cfg = h.config({}) as { text: string; format: string; source: string }
  t.match(cfg, { format: 'ipvsadm', source: 'text' })
  t.same(parseConfig(cfg.text, 'back.yaml').model, parseConfig('-A -t 10.0.0.100:80 -s rr\n-a -t 10.0.0.100:80 -r 10.0.0.21 -g -w 4\n', 'r', 'ipvsadm').model,
    'config returns the running config as YAML that parses back to the same model')
  t.throws(() => h.apply({ text: 'services: [', file: 'bad.yaml' }), { code: 'ECONFIG', where: /^bad\.yaml:/ })
  t.same(weights(host.last), { '10.0.0.21': 4 }, 'a bad text changes nothing')
  d.reload()
  t.same(weights(host.last), { '10.0.0.11': 1, '10.0.0.12': 2 })
  t.equal(d.status().config.source, 'file')
})

t.test('reload with other interfaces: new ones attached (program replaced, maps kept), old ones detached', async (t) => {
  const { d, host, files } = await rig(t)
  files.set('/etc/xvs/xvs.yaml', CONFIG().replace('[eth0]', '[eth1]'))
  const r = d.reload()
  t.same(r.interfaces.detached, ['eth0'])
  t.same(host.loads.map((l) => l.ifaces), [['eth0'], ['eth1']])
  t.same(host.detached, ['eth0'])
})

t.test('a real server whose next hop cannot be resolved is left out; the others are applied; it is retried', async (t) => {
  let broken = true
  const h2 = new FakeHost()
  const clock2 = new FakeClock(0)
  const files = new Map([['/c.yaml', CONFIG({ rs3: true })]])
  let lookups = 0
  const d2 = new Daemon({
    config: '/c.yaml', clock: clock2, host: h2, socket: null, metrics: null, sweeper: false, rateIntervalMs: 0, health: { spreadMs: 0 },
    readFile: (p) => files.get(p)!, createChecker: new Checks().create,
    resolve: (a) => {
      lookups++
      if (a === '10.0.0.12' && broken) throw new ResolveError(`cannot resolve the MAC address of ${a} on eth0: no ARP/neighbour reply`)
      return hop(a)
    },
  })
  t.teardown(() => d2.stop())
  await d2.start()
  t.same(weights(h2.last), { '10.0.0.11': 1, '10.0.0.13': 3 }, 'applied without the unresolvable server')
  t.match(d2.status().unresolved, [{ address: '10.0.0.12', error: /no ARP/ }])
  t.equal(d2.list()[0]!.reals.find((r) => r.key === '10.0.0.12:80')!.inService, false)
  const before = lookups
  await clock2.advanceAsync(5000)
  t.equal(lookups, before, 'health-driven writes meanwhile use cached hops and do not probe the failed one again')
  broken = false
  await clock2.advanceAsync(10_000)
  t.same(weights(h2.last), { '10.0.0.11': 1, '10.0.0.12': 2, '10.0.0.13': 3 }, 'back once it resolves')
  t.same(d2.status().unresolved, [])
})

t.test('adopting a running data plane: servers it had taken out start down (and come back on a good check)', async (t) => {
  const host = new FakeHost()
  host.running = ['eth0']
  const kernel = parseConfig(CONFIG({ rs3: true }), 'k.yaml').model
  const svc = kernel.services[0] as PortService
  svc.realServers = svc.realServers.filter((r) => r.address !== '10.0.0.12') // removed by the previous daemon
  svc.realServers.find((r) => r.address === '10.0.0.13')!.weight = 0 // quiesced by it
  host.kernel = kernel
  const { d, clock } = await rig(t, CONFIG({ rs3: true }), { host })
  t.match(d.status().dataplane, { adopted: true })
  t.same(d.health().map((h) => [h.server, h.health]), [['10.0.0.11:80', 'up'], ['10.0.0.12:80', 'down'], ['10.0.0.13:80', 'down']])
  t.same(weights(host.applied[0]!), { '10.0.0.11': 1 }, 'the first write keeps them out: no flap')
  await clock.advanceAsync(0)
  t.same(weights(host.last), { '10.0.0.11': 1, '10.0.0.12': 2, '10.0.0.13': 3 }, 'their first good check brings them back')
})

t.test('start fails on a bad config or no interface; a fresh data plane loaded for it is unloaded', async (t) => {
  const clock = new FakeClock()
  const mk = (text: string, host = new FakeHost()) => new Daemon({ config: '/c', clock, host, socket: null, metrics: null, sweeper: false, rateIntervalMs: 0, readFile: () => text, createChecker: new Checks().create, resolve: hop })
  await t.rejects(mk('services: [').start(), { code: 'ECONFIG' })
  await t.rejects(mk(CONFIG().replace('settings:\n  interfaces: [eth0]\n', '')).start(), { code: 'ECONFIG', message: /no interface/ })
  const host = new FakeHost()
  host.refuse = 'lc'
  await t.rejects(mk(CONFIG({ sched: 'lc' }), host).start(), { code: 'ECONFIG' })
  t.equal(host.unloaded, true, 'the data plane loaded for the failed start was unloaded')
})

t.test('stop leaves the data plane running; with detachOnExit it is unloaded', async (t) => {
  const a = await rig(t)
  await a.d.stop()
  t.same({ closed: a.host.closed, unloaded: a.host.unloaded }, { closed: true, unloaded: false })
  t.equal(a.clock.pending, 0, 'no timer left behind')
  const b = await rig(t, CONFIG(), { detachOnExit: true })
  await b.d.stop()
  t.equal(b.host.unloaded, true)
})

t.test('the sweeper runs on the clock and hands its counts to the data plane with the counters read as it began', async (t) => {
  const host = new FakeHost()
  const calls: unknown[] = []
  Object.assign(host, {
    connCounters: () => ({ taken: calls.length }),
    reconcile: (counts: ReadonlyMap<number, unknown>, since: unknown) => calls.push({ counts: counts.size, since }),
  })
  const { d, clock } = await rig(t, CONFIG(), { host, sweeper: { intervalMs: 1000, nowNs: () => 0n } })
  await clock.advanceAsync(0)
  await clock.advanceAsync(2000)
  t.same(calls, [{ counts: 0, since: { taken: 0 } }, { counts: 0, since: { taken: 1 } }, { counts: 0, since: { taken: 2 } }])
  t.match(d.status().sweeper, { passes: 3, errors: 0 })
})

t.test('metrics from the daemon: health, weights, counters, check latency', async (t) => {
  const { d, clock, checks } = await rig(t)
  await clock.advanceAsync(0)
  checks.state.set('10.0.0.12', false)
  await clock.advanceAsync(3000)
  const m = parsePrometheus(d.metricsText())
  const rs = (a: string) => ({ service: 'tcp:10.0.0.100:80', real: `${a}:80` })
  t.equal(sampleValue(m, 'xvs_real_health', rs('10.0.0.11')), 1)
  t.equal(sampleValue(m, 'xvs_real_health', rs('10.0.0.12')), 0)
  t.equal(sampleValue(m, 'xvs_real_in_service', rs('10.0.0.12')), 0)
  t.equal(sampleValue(m, 'xvs_real_checks_total', { ...rs('10.0.0.12'), result: 'failed' }), 3)
  t.equal(sampleValue(m, 'xvs_real_health_transitions_total', rs('10.0.0.12')), 1)
  t.equal(sampleValue(m, 'xvs_real_check_latency_seconds', rs('10.0.0.11')), 0.002)
  t.equal(sampleValue(m, 'xvs_dataplane_events_total', { event: 'drop_no_backend' }), 1)
  t.ok(sampleValue(m, 'xvs_health_check_duration_seconds', {}, 'xvs_health_check_duration_seconds_count')! >= 8)
  t.equal(sampleValue(m, 'xvs_config_generation'), 1)
})
