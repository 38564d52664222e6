// SPDX-License-Identifier: GPL-2.0-only
// Model checks -> health-engine specs and policies: each check type, the escapes and status ranges the
// model implies, seconds to milliseconds, lvs.cf programs as argv and keepalived's through the shell;
// targets per real server with identities that change exactly when the check does. The mapped specs
// are accepted by the real checkers (createChecker validates).
import t from 'tap'
import { parseConfig } from '../../src/config'
import { checkPolicy, checkSpec, checkerDeadlineMs, healthTargets, ANY_2XX } from '../../src/daemon/checks'
import { createChecker } from '../../src/health'
import type { HealthCheck } from '../../src/model/types'

const common = { interval: 6, timeout: 3, rise: 2, fall: 3, retry: 1, retryDelay: 1.5, reentry: 15, onFailure: 'quiesce' as const }

t.test('tcp and send/expect: decoded strings are sent as they are', async (t) => {
  t.same(checkSpec({ type: 'tcp', ...common }), { type: 'tcp', timeoutMs: 2900 })
  const se = checkSpec({ type: 'send-expect', ...common, send: 'GET / HTTP/1.0\r\n\r\n', expect: 'HTTP', regex: false })
  t.same(se, { type: 'send-expect', send: 'GET / HTTP/1.0\r\n\r\n', expect: 'HTTP', regex: false, escapes: false, timeoutMs: 2900 })
  t.doesNotThrow(() => createChecker(se))
})

t.test('http/https: absent status means any 2xx, Host header from virtualhost', async (t) => {
  const spec = checkSpec({
    type: 'https', ...common, virtualhost: 'www.example.com',
    urls: [{ path: '/healthz' }, { path: '/index.html', status: 301, digest: '9b3a0c85a887a256d6939da88aabd8cd', regex: '<title>' }],
  })
  t.same(spec, {
    type: 'https', host: 'www.example.com', timeoutMs: 2900,
    urls: [
      { path: '/healthz', statuses: [ANY_2XX] },
      { path: '/index.html', statuses: [301], regex: '<title>', digest: '9b3a0c85a887a256d6939da88aabd8cd' },
    ],
  })
  t.same(ANY_2XX, [200, 299])
  t.doesNotThrow(() => createChecker(spec))
})

t.test('external: lvs.cf programs run as argv, keepalived and YAML commands through the shell', async (t) => {
  const c: HealthCheck = { type: 'external', ...common, command: '/usr/local/bin/check_dns  %h %p', expect: 'OK', dynamic: false }
  t.same(checkSpec(c, 'lvs.cf'), { type: 'external', argv: ['/usr/local/bin/check_dns', '%h', '%p'], expect: 'OK', timeoutMs: 2900 })
  t.same(checkSpec(c, 'keepalived'), { type: 'external', shell: '/usr/local/bin/check_dns  %h %p', expect: 'OK', timeoutMs: 2900 })
  t.same(checkSpec({ ...c, expect: undefined, dynamic: true } as HealthCheck, 'yaml'), { type: 'external', shell: '/usr/local/bin/check_dns  %h %p', dynamic: true, timeoutMs: 2900 })
  for (const f of ['lvs.cf', 'keepalived'] as const) t.doesNotThrow(() => createChecker(checkSpec(c, f)))
})

t.test('the checker\'s own deadline is a little inside the engine\'s, so a timeout says what it waited for', async (t) => {
  t.equal(checkerDeadlineMs(3), 2900)
  t.equal(checkerDeadlineMs(0.5), 450)
  t.equal(checkerDeadlineMs(0.001), 1)
})

t.test('policy: seconds become milliseconds, counts carry over', async (t) => {
  t.same(checkPolicy({ type: 'tcp', ...common }), {
    intervalMs: 6000, timeoutMs: 3000, rise: 2, fall: 3, retries: 1, retryDelayMs: 1500, reentryMs: 15000, initial: 'up',
  })
  t.equal(checkPolicy({ type: 'tcp', ...common, interval: 0.25 }, 'down').intervalMs, 250)
  t.equal(checkPolicy({ type: 'tcp', ...common }, 'down').initial, 'down')
})

const yaml = (check: string, port = 80): string => `services:
  - vip: 10.0.0.100
    port: ${port}
    scheduler: rr
    check: ${check}
    real_servers:
      - { address: 10.0.0.11, method: dr }
      - { address: 10.0.0.12, method: dr, weight: 3, check: { rise: 4 } }
`

t.test('targets: one per checked real server, keyed service/server, identities follow the check', async (t) => {
  const a = healthTargets(parseConfig(yaml('{ type: tcp, interval: 2 }'), 'a.yaml').model.services)
  t.same(a.targets.map((x) => x.key), ['tcp:10.0.0.100:80/10.0.0.11:80', 'tcp:10.0.0.100:80/10.0.0.12:80'])
  t.same(a.targets.map((x) => [x.address, x.port, x.policy.rise, x.policy.intervalMs]), [['10.0.0.11', 80, 1, 2000], ['10.0.0.12', 80, 4, 2000]])
  t.same(a.targets.map((x) => x.path), ['services[0].realServers[0].check', 'services[0].realServers[1].check'])
  const b = healthTargets(parseConfig(yaml('{ type: tcp, interval: 3 }'), 'b.yaml').model.services)
  t.not(a.targets[0]!.identity, b.targets[0]!.identity, 'a changed interval is another check')
  const c = healthTargets(parseConfig(yaml('{ type: tcp, interval: 2 }').replace('weight: 3', 'weight: 5'), 'c.yaml').model.services)
  t.equal(a.targets[1]!.identity, c.targets[1]!.identity, 'a weight change is the same check (its state is kept)')
  const p = healthTargets(parseConfig(yaml('{ type: tcp, port: 8080 }'), 'p.yaml').model.services)
  t.same(p.targets.map((x) => x.port), [8080, 8080], 'the check port is probed instead of the real server port')
})

t.test('a check with nothing to probe (port 0, no check port) is skipped with the reason', async (t) => {
  const text = `services:
  - vip: 10.0.0.100
    port: 0
    persistence: 300
    scheduler: rr
    real_servers:
      - { address: 10.0.0.11, method: dr, check: { type: tcp } }
      - { address: 10.0.0.12, method: dr, check: { type: tcp, port: 22 } }
`
  const r = healthTargets(parseConfig(text, 'w.yaml').model.services)
  t.same(r.targets.map((x) => `${x.key}@${x.port}`), ['tcp:10.0.0.100:0/10.0.0.12:0@22'])
  t.equal(r.skipped.length, 1)
  t.match(r.skipped[0]!, { key: 'tcp:10.0.0.100:0/10.0.0.11:0', reason: /port 0/ })
})

t.test('every check of the example configs maps onto a spec the checkers accept', async (t) => {
  const fs = await import('node:fs')
  const path = await import('node:path')
  const dir = path.join(__dirname, '..', 'fixtures', 'config')
  let n = 0
  for (const f of ['lvs.cf', 'keepalived.conf', 'equiv.yaml']) {
    const parsed = parseConfig(fs.readFileSync(path.join(dir, f), 'utf8'), path.join(dir, f), undefined, { readFile: (p: string) => fs.readFileSync(path.resolve(dir, p), 'utf8') } as never)
    for (const x of healthTargets(parsed.model.services, parsed.format).targets) {
      t.doesNotThrow(() => createChecker(x.spec), `${f} ${x.key} (${x.spec.type})`)
      n++
    }
  }
  t.ok(n > 3, `${n} checks mapped`)
})
