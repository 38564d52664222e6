// SPDX-License-Identifier: GPL-2.0-only
// The health engine with a manual clock and scripted checkers: rise/fall, alpha (initial down), re-entry,
// retries, timeouts, a checker that ignores its abort, drift-free scheduling and first-run spread, the
// in-flight bound, desired sets (quiesce/remove, sorry server, quorum with hysteresis, dynamic weight),
// remove/stop. Then the real thing: 2,000 TCP targets against one local server, with a silent target
// among them that does not hold the others up.
import net from 'node:net'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { SendExpectChecker } from '../../src/health/checkers/send-expect'
import { TcpChecker } from '../../src/health/checkers/tcp'
import { FakeClock } from '../../src/util/clock'
import type { DesiredService } from '../../src/health/desired'
import { HealthEngine } from '../../src/health/engine'
import type { CheckEvent, HealthEngineOptions, HealthTargetSpec, TransitionEvent } from '../../src/health/engine'
import type { Checker, CheckPolicy, CheckResult, CheckTarget } from '../../src/health/types'


/**
 * One step of a scripted checker: 'u' good, 'f' failed, 'h' hangs until aborted, 'd' deaf (ignores the
 * abort; settles only on release()), or a full step. The last step repeats.
 */
type Step = 'u' | 'f' | 'h' | 'd' | { ok: boolean; weight?: number; delayMs?: number }

class Scripted implements Checker {
  readonly type = 'tcp' as const
  /** Clock time of each call. */
  readonly calls: number[] = []
  readonly signals: AbortSignal[] = []
  active = 0
  peak = 0
  private deaf: Array<() => void> = []

  constructor(
    private readonly clock: FakeClock,
    private readonly script: string | Step[],
  ) {}

  run(_target: CheckTarget, signal: AbortSignal): Promise<CheckResult> {
    const n = this.calls.length
    this.calls.push(this.clock.now())
    this.signals.push(signal)
    const steps = typeof this.script === 'string' ? ([...this.script] as Step[]) : this.script
    const step = steps[Math.min(n, steps.length - 1)]!
    this.active++
    this.peak = Math.max(this.peak, this.active)
    const done = (r: CheckResult): CheckResult => {
      this.active--
      return r
    }
    if (step === 'h') {
      return new Promise((resolve) => signal.addEventListener('abort', () => resolve(done({ ok: false, detail: 'aborted', latencyMs: 0 })), { once: true }))
    }
    if (step === 'd') return new Promise((resolve) => this.deaf.push(() => resolve(done({ ok: true, detail: 'late', latencyMs: 0 }))))
    if (step === 'u' || step === 'f') return Promise.resolve(done({ ok: step === 'u', detail: step === 'u' ? 'fine' : 'broken', latencyMs: 0 }))
    const result: CheckResult = { ok: step.ok, detail: step.ok ? 'fine' : 'broken', latencyMs: step.delayMs ?? 0, ...(step.weight !== undefined ? { weight: step.weight } : {}) }
    if (step.delayMs === undefined) return Promise.resolve(done(result))
    // Takes delayMs of clock time, or ends early when aborted (as real checkers do).
    return new Promise((resolve) => {
      const timer = this.clock.setTimeout(() => {
        signal.removeEventListener('abort', onAbort)
        resolve(done(result))
      }, step.delayMs!)
      const onAbort = (): void => {
        this.clock.clearTimeout(timer)
        resolve(done({ ok: false, detail: 'aborted', latencyMs: 0 }))
      }
      signal.addEventListener('abort', onAbort, { once: true })
    })
  }

  /** Settles every deaf call. */
  release(): void {
    const deaf = this.deaf
    this.deaf = []
    for (const settle of deaf) settle()
  }
}

function setup(t: Test, opts: HealthEngineOptions = {}) {
  const clock = new FakeClock()
  const engine = new HealthEngine({ clock, spreadMs: 0, ...opts })
  const transitions: TransitionEvent[] = []
  const checks: CheckEvent[] = []
  const desired: Array<{ at: number; service: string; desired: DesiredService }> = []
  engine.on('transition', (e) => transitions.push(e))
  engine.on('check', (e) => checks.push(e))
  engine.on('desired', (e) => desired.push({ at: clock.now(), ...e }))
  t.teardown(() => engine.stop())
  const add = (key: string, script: string | Step[], policy: Partial<CheckPolicy> = {}, extra: Partial<HealthTargetSpec> = {}): Scripted => {
    const checker = new Scripted(clock, script)
    engine.add({ key, address: '10.0.0.1', port: 80, checker, policy: { intervalMs: 1000, timeoutMs: 500, ...policy }, ...extra })
    return checker
  }
  const moves = (key?: string) => transitions.filter((e) => key === undefined || e.key === key).map((e) => `${e.to}@${e.at}`)
  return { clock, engine, transitions, checks, desired, add, moves }
}

t.test('rise and fall count consecutive checks', async (t) => {
  const { clock, engine, add, moves, transitions } = setup(t)
  const c = add('r1', 'uuffufffuuu', { rise: 2, fall: 3 })
  engine.start()
  await clock.advanceAsync(10_500)
  t.same(c.calls, [0, 1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000, 9000, 10000], 'one check per interval')
  // checks 2,3 fail (streak 2 < 3); 4 good resets; 5,6,7 fail -> down at 7000 (the 8th check);
  // 8 good (1 < rise 2), 9 good -> up at 9000
  t.same(moves(), ['down@7000', 'up@9000'])
  t.match(transitions[0]!.cause, /^3 failed checks: broken/)
  t.match(transitions[1]!.cause, /^2 good checks: fine/)
  t.same([transitions[0]!.from, transitions[0]!.to], ['up', 'down'])
  const s = engine.status('r1')!
  t.equal(s.health, 'up')
  t.equal(s.checks, 11)
  t.equal(s.since, 9000)
})

t.test('initial down (alpha): down until the first good check, then up at once', async (t) => {
  const { clock, engine, add, moves } = setup(t)
  add('alpha', 'ffu', { initial: 'down', rise: 3 })
  add('beta', 'u', { initial: 'down', rise: 3, reentryMs: 10_000 })
  t.equal(engine.status('alpha')!.health, 'down', 'down before any check')
  engine.start()
  await clock.advanceAsync(2500)
  t.same(moves('alpha'), ['up@2000'], 'rise 3 does not apply to the first success')
  t.same(moves('beta'), ['up@0'], 'nor does reentry')
})

t.test('initial up needs fall failures to go down', async (t) => {
  const { clock, engine, add, moves } = setup(t)
  add('r1', 'f', { fall: 2 })
  engine.start()
  await clock.advanceAsync(1500)
  t.same(moves(), ['down@1000'])
})

t.test('re-entry: a failed server returns only after passing checks for reentryMs', async (t) => {
  const { clock, engine, add, moves, transitions } = setup(t)
  // down at 0; good from 1000..3000; fails at 4000 (streak reset); good from 5000 on -> up at 10000
  add('r1', 'fuuufu', { rise: 1, fall: 1, reentryMs: 5000 })
  engine.start()
  await clock.advanceAsync(12_500)
  t.same(moves(), ['down@0', 'up@10000'])
  t.match(transitions[1]!.cause, /^6 good checks over 5000 ms/)
})

t.test('re-entry and rise together: both must hold', async (t) => {
  const { clock, engine, add, moves } = setup(t)
  add('r1', 'fu', { rise: 4, reentryMs: 1500 })
  engine.start()
  await clock.advanceAsync(6500)
  // good from 1000: at 3000 reentry holds (2000 >= 1500) but rise needs the 4th good check, at 4000
  t.same(moves(), ['down@0', 'up@4000'])
})

t.test('retries: failed attempts are retried while up before the check counts', async (t) => {
  const { clock, engine, add, moves, checks } = setup(t)
  const c = add('r1', 'ffuffff', { retries: 2, retryDelayMs: 100, fall: 1 })
  engine.start()
  await clock.advanceAsync(3500)
  // check 1: f@0 f@100 u@200 -> good; check 2: f@1000 f@1100 f@1200 -> down;
  // down: no retries, one attempt per interval
  t.same(c.calls, [0, 100, 200, 1000, 1100, 1200, 2000, 3000])
  t.same(moves(), ['down@1200'])
  t.same(
    checks.slice(0, 3).map((e) => [e.attempt, e.final]),
    [[1, false], [2, false], [3, true]],
  )
})

t.test('a hanging check times out, is aborted, and the next one starts on time', async (t) => {
  const { clock, engine, add, moves, checks } = setup(t)
  const c = add('r1', 'hhu', { timeoutMs: 500 })
  engine.start()
  await clock.advanceAsync(2500)
  t.same(c.calls, [0, 1000, 2000])
  t.same(moves(), ['down@500', 'up@2000'])
  t.equal(checks[0]!.result.detail, 'timed out after 500 ms')
  t.equal(c.signals[0]!.aborted, true)
  t.equal((c.signals[0]!.reason as { code?: string }).code, 'ECHECKTIMEOUT')
  t.equal(c.peak, 1, 'never two in flight')
})

t.test('a hanging target does not delay the others', async (t) => {
  const { clock, engine, add, checks } = setup(t)
  const hung = add('hung', 'h', { timeoutMs: 900 })
  const others = Array.from({ length: 20 }, (_, i) => add(`ok${i}`, 'u'))
  engine.start()
  await clock.advanceAsync(2100)
  for (const c of others) t.same(c.calls, [0, 1000, 2000])
  t.same(hung.calls, [0, 1000, 2000])
  const firstRound = checks.filter((e) => e.at === 0).map((e) => e.key)
  t.equal(firstRound.length, 20, 'every other target finished at once while hung was still running')
  t.notOk(firstRound.includes('hung'))
})

t.test('a checker that ignores its abort never gets a second attempt in flight', async (t) => {
  t.test('released while the next attempt waits: that attempt then runs', async (t) => {
    const { clock, engine, add, moves } = setup(t)
    const c = add('r1', 'du', { timeoutMs: 500 })
    engine.start()
    await clock.advanceAsync(1200) // timed out at 500; attempt due at 1000 waits for the deaf one
    t.same(c.calls, [0])
    c.release()
    await clock.advanceAsync(0)
    t.same(c.calls, [0, 1200], 'the waiting attempt ran as soon as the slot freed')
    t.same(moves(), ['down@500', 'up@1200'])
    t.equal(c.peak, 1)
  })
  t.test('never released: each due check fails without starting another', async (t) => {
    const { clock, engine, add, checks } = setup(t)
    const c = add('r1', 'du', { timeoutMs: 500 })
    engine.start()
    await clock.advanceAsync(3900)
    t.same(c.calls, [0])
    t.same(
      checks.map((e) => [e.at, e.result.detail]),
      [
        [500, 'timed out after 500 ms'],
        [1500, 'previous check still running (its checker ignored the abort)'],
        [2500, 'previous check still running (its checker ignored the abort)'],
        [3500, 'previous check still running (its checker ignored the abort)'],
      ],
    )
    t.equal(engine.inFlight, 1)
    t.equal(c.peak, 1)
    c.release()
    await clock.advanceAsync(200)
    t.same(c.calls, [0, 4000], 'the next due check runs normally once the old one settled')
    t.equal(engine.inFlight, 0)
    t.equal(engine.status('r1')!.health, 'up')
  })
})

t.test('checks start on a fixed grid: no drift, overruns skip missed points', async (t) => {
  const { clock, engine, add } = setup(t)
  const slow = add('slow', [{ ok: true, delayMs: 300 }], { timeoutMs: 900 })
  const overrun = add('overrun', [{ ok: true, delayMs: 2500 }], { timeoutMs: 5000 })
  engine.start()
  await clock.advanceAsync(6500)
  t.same(slow.calls, [0, 1000, 2000, 3000, 4000, 5000, 6000], 'latency does not push later checks back')
  t.same(overrun.calls, [0, 3000, 6000], 'the points passed during a 2.5 s check are skipped')
})

t.test('first runs are spread over min(interval, spreadMs)', async (t) => {
  const draws = [0.25, 0.75, 0.5]
  const { clock, engine, add } = setup(t, { spreadMs: 1000, random: () => draws.shift() ?? 0 })
  const a = add('a', 'u', { intervalMs: 5000 })
  const b = add('b', 'u', { intervalMs: 5000 })
  const c = add('c', 'u', { intervalMs: 400 })
  engine.start()
  await clock.advanceAsync(1000)
  t.same(a.calls, [250])
  t.same(b.calls, [750])
  t.same(c.calls, [200, 600, 1000], 'spread within its own 400 ms interval')
})

t.test('a target added while running is scheduled at once', async (t) => {
  const { clock, engine, add } = setup(t)
  engine.start()
  await clock.advanceAsync(300)
  const c = add('late', 'u')
  await clock.advanceAsync(1000)
  t.same(c.calls, [300, 1300])
})

t.test('maxInFlight bounds attempts across targets; timeouts start when an attempt starts', async (t) => {
  const { clock, engine, checks } = setup(t, { maxInFlight: 3 })
  const shared = new Scripted(clock, [{ ok: true, delayMs: 100 }])
  for (let i = 0; i < 10; i++) engine.add({ key: `r${i}`, address: '10.0.0.1', port: 80, checker: shared, policy: { intervalMs: 10_000, timeoutMs: 150 } })
  engine.start()
  await clock.advanceAsync(1000)
  t.equal(shared.calls.length, 10, 'all ran')
  t.equal(shared.peak, 3, 'at most 3 at once')
  t.same(shared.calls, [0, 0, 0, 100, 100, 100, 200, 200, 200, 300])
  t.ok(checks.every((e) => e.result.ok), 'queued attempts did not time out while waiting')
})

t.test('desired set: quiesce keeps a down server at weight 0, remove drops it', async (t) => {
  for (const onFailure of ['quiesce', 'remove'] as const) {
    const { clock, engine, add, desired } = setup(t)
    engine.setService('web', { onFailure })
    add('r1', 'u', {}, { service: 'web', weight: 3 })
    add('r2', 'uf', {}, { service: 'web', weight: 2 })
    engine.start()
    await clock.advanceAsync(500)
    t.same(engine.desired('web').backends.map((b) => `${b.key}=${b.weight}`), ['r1=3', 'r2=2'], `${onFailure}: both in`)
    await clock.advanceAsync(1000)
    const last = desired.at(-1)!
    t.equal(last.at, 1000, `${onFailure}: a new desired set when r2 went down`)
    t.same(
      last.desired.backends.map((b) => `${b.key}=${b.weight}`),
      onFailure === 'quiesce' ? ['r1=3', 'r2=0'] : ['r1=3'],
    )
    t.same(engine.desired('web'), last.desired)
  }
})

t.test('desired set: sorry server when every real server is down, gone when one returns', async (t) => {
  const { clock, engine, add, desired } = setup(t)
  engine.setService('web', { onFailure: 'remove', sorryServer: { address: '10.9.9.9', port: 80 } })
  add('r1', 'uffu', {}, { service: 'web' })
  add('r2', 'ufff', {}, { service: 'web' })
  engine.start()
  await clock.advanceAsync(3500)
  const states = desired.map((d) => `${d.at}:${d.desired.backends.map((b) => b.key).join('+')}`)
  // add r1 (t=0), add r2, then r1 and r2 down at 1000 (one set each), r1 back at 3000
  t.same(states.slice(-3), ['1000:r2', '1000:sorry', '3000:r1'])
  t.equal(engine.desired('web').sorryActive, false)
})

t.test('desired set: quorum with hysteresis across transitions', async (t) => {
  const { clock, engine, add, desired } = setup(t)
  engine.setService('web', { onFailure: 'remove', quorum: 4, hysteresis: 1 })
  add('r1', 'uufu', {}, { service: 'web', weight: 3 })
  add('r2', 'ufffu', {}, { service: 'web', weight: 2 })
  engine.start()
  await clock.advanceAsync(4500)
  // 0: 5 up; 1000: r2 down, 3 >= 4-1 keeps quorum; 2000: r1 down, 0 loses it;
  // 3000: r1 back, 3 < 4+1 not regained; 4000: r2 back, 5 regains it
  const byTime = new Map(desired.map((d) => [d.at, d.desired] as const))
  t.same([1000, 2000, 3000, 4000].map((at) => [byTime.get(at)?.upWeight, byTime.get(at)?.quorumUp]), [
    [3, true],
    [0, false],
    [3, false],
    [5, true],
  ])
})

t.test('dynamic weights from checks change the desired set', async (t) => {
  const { clock, engine, add, desired } = setup(t)
  engine.setService('web', { onFailure: 'remove' })
  add('r1', [{ ok: true, weight: 5 }, { ok: true, weight: 5 }, { ok: true, weight: 0 }], {}, { service: 'web', weight: 1 })
  engine.start()
  await clock.advanceAsync(2500)
  t.same(
    desired.map((d) => `${d.at}:${d.desired.backends.map((b) => b.weight).join(',')}`).slice(-3),
    ['0:1', '0:5', '2000:0'],
    'weight 1 configured, 5 from the first check, 0 from the third; no event when unchanged',
  )
  t.equal(engine.status('r1')!.dynamicWeight, 0)
})

t.test('remove aborts the check in flight and forgets the target', async (t) => {
  const { clock, engine, add, transitions } = setup(t)
  const c = add('r1', 'h')
  engine.start()
  await clock.advanceAsync(100)
  engine.remove('r1')
  t.equal(c.signals[0]!.aborted, true)
  await clock.advanceAsync(5000)
  t.same(c.calls, [0])
  t.same(transitions, [])
  t.equal(engine.status('r1'), undefined)
  t.equal(engine.has('r1'), false)
})

t.test('stop aborts checks in flight, waits for them, and stops all timers', async (t) => {
  const { clock, engine, add, checks } = setup(t)
  const c = add('r1', 'h')
  engine.start()
  await clock.advanceAsync(100)
  await engine.stop()
  t.equal(c.signals[0]!.aborted, true)
  t.equal(engine.inFlight, 0)
  t.equal(clock.pending, 0, 'no timer left')
  await clock.advanceAsync(5000)
  t.same(c.calls, [0])
  t.same(checks, [], 'no result delivered after stop')
})

t.test('a checker that throws or rejects is a failed check', async (t) => {
  const { clock, engine, checks } = setup(t)
  const throws: Checker = {
    type: 'tcp',
    run: () => {
      throw new Error('boom')
    },
  }
  const rejects: Checker = { type: 'tcp', run: () => Promise.reject(new Error('bang')) }
  engine.add({ key: 'a', address: '10.0.0.1', port: 80, checker: throws })
  engine.add({ key: 'b', address: '10.0.0.2', port: 80, checker: rejects })
  engine.start()
  await clock.advanceAsync(0)
  t.same(checks.map((e) => [e.key, e.result.ok, e.result.detail]), [
    ['a', false, 'checker failed: boom'],
    ['b', false, 'checker failed: bang'],
  ])
  t.equal(engine.status('a')!.health, 'down')
})

t.test('a listener that throws does not wedge the engine', async (t) => {
  const { clock, engine, add } = setup(t)
  engine.on('transition', () => {
    throw new Error('listener bug')
  })
  const c = add('r1', 'fu')
  engine.start()
  await clock.advanceAsync(2500)
  t.same(c.calls, [0, 1000, 2000])
  t.equal(engine.status('r1')!.health, 'up')
})

t.test('bad input is refused', async (t) => {
  const { engine, add } = setup(t)
  add('r1', 'u')
  t.throws(() => add('r1', 'u'), { code: 'EARG' }, 'duplicate key')
  t.throws(() => add('r2', 'u', {}, { service: 'nope' }), { code: 'EARG' }, 'unknown service')
  t.throws(() => add('r3', 'u', { rise: 0 }), { code: 'EARG' })
  t.throws(() => add('r4', 'u', { intervalMs: 0 }), { code: 'EARG' })
  t.throws(() => add('r5', 'u', { initial: 'maybe' as 'up' }), { code: 'EARG' })
  t.throws(() => add('r6', 'u', {}, { address: 'example.com' }), { code: 'EARG' })
  t.throws(() => add('r7', 'u', {}, { weight: -1 }), { code: 'EARG' })
  t.throws(() => new HealthEngine({ maxInFlight: 0 }), { code: 'EARG' })
  engine.setService('web', { onFailure: 'remove' })
  add('r8', 'u', {}, { service: 'web' })
  t.throws(() => engine.removeService('web'), { code: 'EARG' }, 'service still in use')
  engine.remove('r8')
  engine.removeService('web')
  t.throws(() => engine.desired('web'), { code: 'EARG' })
})

t.test('2,000 TCP targets against one local server complete a round; a silent target holds nobody up', async (t) => {
  const COUNT = 2000
  let accepted = 0
  const sockets = new Set<net.Socket>()
  const track = (socket: net.Socket): void => {
    sockets.add(socket)
    socket.on('error', () => {})
    socket.on('close', () => sockets.delete(socket))
  }
  const server = net.createServer((socket) => {
    accepted++
    track(socket)
    socket.destroy()
  })
  const silent = net.createServer(track) // accepts and never says a word
  for (const s of [server, silent]) await new Promise<void>((resolve) => s.listen({ host: '127.0.0.1', port: 0, backlog: 4096 }, resolve))
  t.teardown(async () => {
    for (const s of sockets) s.destroy()
    await Promise.all([server, silent].map((s) => new Promise((resolve) => s.close(resolve))))
  })
  const port = (server.address() as AddressInfo).port
  const silentPort = (silent.address() as AddressInfo).port

  const engine = new HealthEngine({ spreadMs: 500 }) // the system clock: real sockets, real time
  t.teardown(() => engine.stop())
  const done = new Map<string, CheckResult>()
  let peakInFlight = 0
  engine.on('check', (e) => {
    if (e.final && !done.has(e.key)) done.set(e.key, e.result)
    peakInFlight = Math.max(peakInFlight, engine.inFlight)
  })
  const tcp = new TcpChecker({ type: 'tcp' })
  const policy = { intervalMs: 600_000, timeoutMs: 20_000 } // one round within the test
  for (let i = 0; i < COUNT; i++) engine.add({ key: `rs${i}`, address: '127.0.0.1', port, checker: tcp, policy })
  engine.add({
    key: 'silent',
    address: '127.0.0.1',
    port: silentPort,
    checker: new SendExpectChecker({ type: 'send-expect', send: 'PING\\r\\n', expect: 'PONG' }),
    policy: { intervalMs: 600_000, timeoutMs: 600_000 },
  })
  engine.start()
  // Bounded wait (no timing assertion): poll until every TCP target reported, at most 120 s.
  for (let i = 0; i < 2400; i++) {
    let n = 0
    for (const key of done.keys()) if (key !== 'silent') n++
    if (n === COUNT) break
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  const tcpResults = [...done].filter(([key]) => key !== 'silent')
  t.equal(tcpResults.length, COUNT, 'every TCP target completed its first check')
  t.equal(tcpResults.filter(([, r]) => r.ok).length, COUNT, 'all of them healthy')
  t.equal(done.has('silent'), false, 'the silent target is still waiting, and nobody waited for it')
  t.ok(engine.statuses().filter((s) => s.key !== 'silent').every((s) => s.checks === 1 && s.health === 'up'))
  t.ok(peakInFlight <= 1024, `in flight stayed within maxInFlight (peak ${peakInFlight})`)
  for (let i = 0; i < 100 && accepted < COUNT; i++) await new Promise((resolve) => setTimeout(resolve, 20))
  t.equal(accepted, COUNT, 'the server saw every connection')
  await engine.stop()
  t.equal(engine.inFlight, 0, 'stop aborted the silent check')
})
