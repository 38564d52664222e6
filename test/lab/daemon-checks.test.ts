// SPDX-License-Identifier: GPL-2.0-only
// Every kind of health check, as the daemon runs it from the director against a real server in the
// lab, passes or fails for the right reason: TCP connect (and a closed port), send/expect (and a
// wrong expect string), HTTP status, body regex and MD5 digest (and a wrong status, a body mismatch),
// HTTPS with TLS (and a TLS error: HTTPS to a plain HTTP port), an external program (and exit 1),
// and a server that accepts but never answers (a timeout). Each check is one service of its own on
// the VIP, so the daemon's health view shows each result with its detail line.
import crypto from 'node:crypto'
import path from 'node:path'
import t from 'tap'
import { needsRoot } from '../helpers/root'
import { daemonLab } from '../helpers/daemon-lab'
import type { HealthView } from '../../src/daemon/daemon'

const opts = needsRoot
const TLS = path.join(__dirname, '..', 'fixtures', 'tls')

/** Servers next to the lab's HTTP one: HTTPS on 443, a PING/+PONG responder on 7001, a silent acceptor on 7000. */
const extraServers = `
const fs = require('node:fs'), net = require('node:net'), https = require('node:https')
const [key, cert] = process.argv.slice(1)
https.createServer({ key: fs.readFileSync(key), cert: fs.readFileSync(cert) }, (req, res) => { res.writeHead(200, { connection: 'close' }); res.end('rs1 over tls\\n') }).listen(443, '::')
net.createServer((s) => s.on('data', (d) => { if (String(d).includes('PING')) s.write('+PONG\\r\\n') })).listen(7001, '::')
const held = []
net.createServer((s) => { held.push(s); s.on('error', () => {}) }).listen(7000, '::', () => process.stdout.write('ready\\n'))
process.stdin.on('end', () => process.exit(0)); process.stdin.resume()
`

interface Case { name: string; check: string; up: boolean; detail: RegExp }

t.test('each kind of check passes and fails for the right reason against a real server', opts, async (t) => {
  const lab = await daemonLab(t, { reals: 1 })
  const { topo } = lab
  const rs = topo.reals[0]!
  const child = topo.spawn(rs, [process.execPath, '-e', extraServers, path.join(TLS, 'lab.key'), path.join(TLS, 'lab.crt')], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } })
  await new Promise<void>((resolve, reject) => {
    let out = ''
    child.stdout!.on('data', (d: Buffer) => { out += String(d); if (out.includes('ready')) resolve() })
    child.once('exit', (code) => reject(new Error(`extra servers exited ${code}`)))
  })
  const md5 = crypto.createHash('md5').update('rs1\n').digest('hex')
  const common = 'interval: 1, timeout: 1, fall: 1, rise: 1, retry: 0'
  const cases: Case[] = [
    { name: 'tcp', check: `{ type: tcp, port: 80, ${common} }`, up: true, detail: /connected/ },
    { name: 'tcp, closed port', check: `{ type: tcp, port: 81, ${common} }`, up: false, detail: /ECONNREFUSED/ },
    { name: 'send/expect', check: `{ type: send-expect, port: 7001, send: "PING\\r\\n", expect: "+PONG", ${common} }`, up: true, detail: /got .*\+PONG/ },
    { name: 'send/expect, wrong expect string', check: `{ type: send-expect, port: 7001, send: "PING\\r\\n", expect: "+PANG", ${common} }`, up: false, detail: /timed out after 900 ms waiting for "\+PANG", got "\+PONG/ },
    { name: 'http status', check: `{ type: http, port: 80, urls: [{ path: / }], ${common} }`, up: true, detail: /HTTP 200/ },
    { name: 'http, wrong status', check: `{ type: http, port: 80, urls: [{ path: /, status: 404 }], ${common} }`, up: false, detail: /HTTP 200, expected 404/ },
    { name: 'http body regex', check: `{ type: http, port: 80, urls: [{ path: /, regex: "^rs1\\n$" }], ${common} }`, up: true, detail: /body ok/ },
    { name: 'http, body mismatch', check: `{ type: http, port: 80, urls: [{ path: /, regex: "^rs2\\n$" }], ${common} }`, up: false, detail: /does not match/ },
    { name: 'http body digest', check: `{ type: http, port: 80, urls: [{ path: /, digest: ${md5} }], ${common} }`, up: true, detail: /body ok/ },
    { name: 'http, wrong digest', check: `{ type: http, port: 80, urls: [{ path: /, digest: ${'0'.repeat(32)} }], ${common} }`, up: false, detail: /body MD5 .* expected 0{32}/ },
    { name: 'https (TLS, no verification)', check: `{ type: https, port: 443, virtualhost: www.lab.example, urls: [{ path: /, regex: "over tls" }], ${common} }`, up: true, detail: /HTTP 200/ },
    { name: 'https, TLS error', check: `{ type: https, port: 80, urls: [{ path: / }], ${common} }`, up: false, detail: /SSL|TLS|wrong version|EPROTO/i },
    { name: 'external program', check: `{ type: external, command: "test %h = ${rs.ipv4} && test %p = 1013", ${common} }`, up: true, detail: /exit 0|exited 0|status 0/ },
    { name: 'external program, exit 1', check: `{ type: external, command: "exit 1", ${common} }`, up: false, detail: /exit(ed)? (status )?1/ },
    { name: 'a server that never answers: timeout', check: `{ type: send-expect, port: 7000, send: "", expect: "hello", interval: 2, timeout: 0.5, fall: 1, rise: 1, retry: 0 }`, up: false, detail: /timed out after 450 ms waiting for "hello", got ""/ },
  ]
  const services = cases.map((c, i) => `  - name: "${c.name}"
    vip: ${topo.vip.ipv4}
    port: ${1001 + i}
    scheduler: rr
    check: ${c.check}
    real_servers:
      - { address: ${rs.ipv4}, method: dr }
`).join('')
  lab.writeConfig(`settings:\n  interfaces: [${topo.director.front.name}]\nservices:\n${services}`)
  // Every check reaches the real server directly from the director, not through the VIP.
  await lab.start()
  const health = new Map<string, HealthView>()
  await lab.waitHealth((h) => {
    for (const x of h) health.set(x.service, x)
    return h.length === cases.length && h.every((x) => x.checks >= 2)
  }, 20_000)
  cases.forEach((c, i) => {
    const h = health.get(`tcp:${topo.vip.ipv4}:${1001 + i}`)!
    t.equal(h.health, c.up ? 'up' : 'down', `${c.name}: ${c.up ? 'passes' : 'fails'} (${h.last?.detail})`)
    t.match(h.last?.detail, c.detail, `${c.name}: for the right reason`)
  })
})
