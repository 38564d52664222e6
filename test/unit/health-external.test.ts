// SPDX-License-Identifier: GPL-2.0-only
// External program checker: %h/%p substitution (argv and shell), exit statuses, misc_dynamic weights,
// Piranha-style expected output, timeouts and aborts that kill the whole process group (checked by pid),
// spawn failures, and targets that could smuggle shell syntax.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { ExternalChecker, substituteTokens } from '../../src/health/checkers/external'
import type { ExternalCheckSpec } from '../../src/health/types'

const target = { address: '127.0.0.1', port: 8080 }
const run = (spec: Omit<ExternalCheckSpec, 'type'>, tgt = target, signal = new AbortController().signal) =>
  new ExternalChecker({ type: 'external', ...spec }).run(tgt, signal)

/** True while `pid` names a live process (a zombie counts as gone). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z'
  } catch {
    return false
  }
}

async function waitGone(pid: number): Promise<boolean> {
  for (let i = 0; i < 200; i++) {
    if (!alive(pid)) return true
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  return false
}

function readPid(file: string): number {
  return Number(readFileSync(file, 'utf8').trim())
}

t.test('token substitution', async (t) => {
  t.equal(substituteTokens('check %h %p', '10.0.0.1', 80), 'check 10.0.0.1 80')
  t.equal(substituteTokens('%h:%p %% 100%% %s %', '::1', 443), '::1:443 % 100% %s %', '%% is one %, others stay')
  t.equal(substituteTokens('%%h', '10.0.0.1', 80), '%h', '%%h is a literal %h')
})

t.test('argv: %h and %p substituted per argument, no shell', async (t) => {
  const r = await run({ argv: ['/bin/sh', '-c', 'printf "%s|%s|%s" "$1" "$2" "$3"', 'sh', '%h', 'port=%p', '$HOME;x'], expect: '127.0.0.1|port=8080|$HOME;x' })
  t.equal(r.ok, true, r.detail)
})

t.test('exit status decides without expect', async (t) => {
  const ok = await run({ argv: ['/bin/sh', '-c', 'exit 0'] })
  t.equal(ok.ok, true)
  t.equal(ok.detail, 'exit 0')
  const bad = await run({ argv: ['/bin/sh', '-c', 'echo "backend says no" >&2; exit 3'] })
  t.equal(bad.ok, false)
  t.equal(bad.detail, 'exit 3: "backend says no"')
  const seven = await run({ argv: ['/bin/sh', '-c', 'exit 7'] })
  t.equal(seven.ok, false, 'without dynamic, 7 is a failure')
})

t.test('misc_dynamic: exit 2..255 sets weight = status - 2', async (t) => {
  const w5 = await run({ argv: ['/bin/sh', '-c', 'exit 7'], dynamic: true })
  t.equal(w5.ok, true)
  t.equal(w5.weight, 5)
  const w0 = await run({ argv: ['/bin/sh', '-c', 'exit 2'], dynamic: true })
  t.same([w0.ok, w0.weight], [true, 0], 'exit 2 is weight 0 (quiesced but up)')
  const w253 = await run({ argv: ['/bin/sh', '-c', 'exit 255'], dynamic: true })
  t.equal(w253.weight, 253)
  const zero = await run({ argv: ['/bin/sh', '-c', 'exit 0'], dynamic: true })
  t.same([zero.ok, zero.weight], [true, undefined], 'exit 0 keeps the weight')
  const one = await run({ argv: ['/bin/sh', '-c', 'exit 1'], dynamic: true })
  t.equal(one.ok, false)
})

t.test('shell string (misc_path): substituted verbatim, also in the environment', async (t) => {
  const r = await run({ shell: 'test "%h" = 127.0.0.1 && test %p -eq 8080 && test "$XVS_HOST:$XVS_PORT" = "127.0.0.1:8080"' })
  t.equal(r.ok, true, r.detail)
  const v6 = await run({ shell: 'echo "[%h]:%p 100%%"', expect: '[::1]:80 100%' }, { address: '::1', port: 80 })
  t.equal(v6.ok, true, v6.detail)
  const env = await run({ shell: 'test "$CHECK_MODE" = strict', env: { CHECK_MODE: 'strict' } })
  t.equal(env.ok, true, 'extra environment')
  const port = await run({ shell: 'test %p -eq 9090', port: 9090 })
  t.equal(port.ok, true, 'spec port replaces the target port in %p')
})

t.test('expected output (Piranha sending program): output decides, not the status', async (t) => {
  const okFail = await run({ argv: ['/bin/sh', '-c', 'echo FAIL'], expect: 'OK' })
  t.equal(okFail.ok, false)
  t.match(okFail.detail, /output "FAIL" lacks "OK" \(exit 0\)/)
  const okOne = await run({ argv: ['/bin/sh', '-c', 'echo OK; exit 1'], expect: 'OK' })
  t.equal(okOne.ok, true, 'the exit status is ignored when expect is set')
  const re = await run({ argv: ['/bin/sh', '-c', 'echo "serial 2024010101"'], expect: '^serial \\d{10}\\n$', regex: true })
  t.equal(re.ok, true, re.detail)
  const big = await run({ argv: ['/bin/sh', '-c', 'head -c 200000 /dev/zero | tr "\\0" x; echo OK'], expect: 'OK', maxOutputBytes: 1000 })
  t.equal(big.ok, false, 'output past maxOutputBytes is not kept')
})

t.test('a timeout kills the whole process group', async (t) => {
  const dir = t.testdir({})
  const shPid = join(dir, 'sh.pid')
  const sleepPid = join(dir, 'sleep.pid')
  const r = await run({ shell: `echo $$ > ${shPid}; sleep 30 & echo $! > ${sleepPid}; wait`, timeoutMs: 300 })
  t.equal(r.ok, false)
  t.match(r.detail, /timed out after 300 ms, killed process group/)
  t.equal(await waitGone(readPid(shPid)), true, 'the shell is gone')
  t.equal(await waitGone(readPid(sleepPid)), true, 'its sleep child is gone')
})

t.test('an abort kills it too', async (t) => {
  const dir = t.testdir({})
  const sleepPid = join(dir, 'sleep.pid')
  const controller = new AbortController()
  const pending = run({ argv: ['/bin/sh', '-c', `sleep 30 & echo $! > ${sleepPid}; wait`] }, target, controller.signal)
  // Abort once the sleep is running (bounded wait for its pid file).
  for (let i = 0; i < 200; i++) {
    try {
      if (readFileSync(sleepPid, 'utf8').trim() !== '') break
    } catch {
      // not written yet
    }
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  controller.abort(new Error('engine stopped'))
  const r = await pending
  t.equal(r.ok, false)
  t.match(r.detail, /^engine stopped, killed process group/)
  t.equal(await waitGone(readPid(sleepPid)), true, 'the sleep is gone')
})

t.test('a background child holding the output does not hold the check', async (t) => {
  const dir = t.testdir({})
  const sleepPid = join(dir, 'sleep.pid')
  t.teardown(() => {
    try {
      process.kill(readPid(sleepPid), 'SIGKILL')
    } catch {
      // already gone
    }
  })
  const r = await run({ shell: `sleep 30 & echo $! > ${sleepPid}; exit 0`, timeoutMs: 10_000 })
  t.equal(r.ok, true, r.detail)
  t.equal(alive(readPid(sleepPid)), true, 'the check returned while the background sleep still held the pipe')
})

t.test('a program that cannot run fails', async (t) => {
  const r = await run({ argv: ['/nonexistent/check-script', '%h'] })
  t.equal(r.ok, false)
  t.match(r.detail, /cannot run \/nonexistent\/check-script: .*ENOENT/)
})

t.test('a target that is not an IP literal never reaches the shell', async (t) => {
  const dir = t.testdir({})
  const marker = join(dir, 'pwned')
  const r = await run({ shell: 'echo %h' }, { address: `1.2.3.4; touch ${marker}`, port: 80 })
  t.equal(r.ok, false)
  t.match(r.detail, /IPv4 or IPv6 literal/)
  t.throws(() => readFileSync(marker), 'nothing ran')
  const zone = await run({ shell: 'echo %h' }, { address: 'fe80::1%eth0;id', port: 80 })
  t.equal(zone.ok, false, 'a zone id with shell syntax is refused')
})

t.test('bad specs throw', async (t) => {
  t.throws(() => new ExternalChecker({ type: 'external' }), { code: 'EARG' })
  t.throws(() => new ExternalChecker({ type: 'external', argv: ['true'], shell: 'true' }), { code: 'EARG' })
  t.throws(() => new ExternalChecker({ type: 'external', argv: [] }), { code: 'EARG' })
  t.throws(() => new ExternalChecker({ type: 'external', shell: '  ' }), { code: 'EARG' })
  t.throws(() => new ExternalChecker({ type: 'external', shell: 'true', dynamic: true, expect: 'OK' }), { code: 'EARG' })
  t.throws(() => new ExternalChecker({ type: 'external', shell: 'true', expect: '(', regex: true }), { code: 'EARG' })
})
