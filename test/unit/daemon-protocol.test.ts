// SPDX-License-Identifier: GPL-2.0-only
// The control socket's protocol and its server and client, over a real unix socket in a temp
// directory: requests are answered in order with their ids; bad lines (not JSON, not an object, no or
// unknown method, bad params, a handler that throws) get an error answer and the connection goes on;
// an over-long line is answered and the connection closed; the socket is 0600, a stale one is
// replaced, a live one refused; the file is removed on close.
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import t from 'tap'
import { ConfigError } from '../../src/errors'
import { ControlServer, socketAnswers, type Handlers } from '../../src/daemon/control'
import { DaemonClient, DaemonRequestError, DaemonUnreachableError, callDaemon } from '../../src/daemon/client'
import { LineSplitter, parseRequest, toWire, METHODS } from '../../src/daemon/protocol'

t.test('parseRequest: good requests and every kind of bad one, never a throw', async (t) => {
  t.same(parseRequest('{"id":1,"method":"status"}'), { request: { id: 1, method: 'status', params: {} } })
  t.same(parseRequest('{"id":"a","method":"apply","params":{"text":"x","format":"yaml"}}'),
    { request: { id: 'a', method: 'apply', params: { text: 'x', format: 'yaml' } } })
  const bad: [string, string | number | null, RegExp][] = [
    ['not json', null, /not JSON/],
    ['[1,2]', null, /JSON object/],
    ['"x"', null, /JSON object/],
    ['null', null, /JSON object/],
    ['{"id":2}', 2, /no method/],
    ['{"id":3,"method":"rm -rf"}', 3, /unknown method "rm -rf"/],
    ['{"id":4,"method":"__proto__"}', 4, /unknown method/],
    ['{"id":5,"method":"toString"}', 5, /unknown method/],
    ['{"id":6,"method":"status","params":[]}', 6, /params must be an object/],
    ['{"id":7,"method":"status","params":{"x":1}}', 7, /unexpected parameter x/],
    ['{"id":8,"method":"apply","params":{}}', 8, /params.text/],
    ['{"id":9,"method":"apply","params":{"text":"x","format":"toml"}}', 9, /format must be one of/],
    ['{"id":10,"method":"upgrade","params":{"object":5}}', 10, /must be a string/],
    ['{"id":{"x":1},"method":"status"}', null, /id must be/],
  ]
  for (const [line, id, why] of bad) {
    const r = parseRequest(line)
    t.ok('error' in r, `refused: ${line}`)
    if ('error' in r) {
      t.equal(r.id, id, `id ${String(id)}`)
      t.equal(r.error.code, 'EPROTO')
      t.match(r.error.message, why)
    }
  }
  t.ok(METHODS.includes('reload') && METHODS.includes('apply') && METHODS.includes('health'))
})

t.test('toWire keeps code, hint and the config error position', async (t) => {
  t.same(toWire(new ConfigError("services[0].port: must be 1..65535", { where: 'x.yaml:3:11', hint: 'fix it' })),
    { code: 'ECONFIG', message: 'x.yaml:3:11: services[0].port: must be 1..65535', hint: 'fix it', where: 'x.yaml:3:11' })
  t.same(toWire(new Error('boom')), { code: 'EINTERNAL', message: 'boom' })
  t.same(toWire('odd'), { code: 'EINTERNAL', message: 'odd' })
})

t.test('LineSplitter: lines across chunks, CRLF, blank lines, overflow', async (t) => {
  const s = new LineSplitter(10)
  t.same(s.push(Buffer.from('ab')), [])
  t.same(s.push(Buffer.from('c\r\n\nde\nf')), ['abc', 'de'])
  t.same(s.push(Buffer.from('g\n')), ['fg'])
  t.same(s.push(Buffer.from('0123456789AB')), [])
  t.equal(s.overflow, true)
  t.same(s.push(Buffer.from('x\n')), [], 'nothing after an overflow')
  const u = new LineSplitter()
  const euro = Buffer.from('{"€":1}\n')
  t.same([...u.push(euro.subarray(0, 3)), ...u.push(euro.subarray(3))], ['{"€":1}'], 'a UTF-8 character split across chunks')
})

function tempSocket(t: { teardown(fn: () => void): void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xvs-ctl-'))
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  return path.join(dir, 'sub', 'xvs.sock')
}

const handlers = (over: Partial<Handlers> = {}): Handlers => ({
  ping: () => ({ pid: process.pid, version: 'test', protocol: 1 }),
  status: () => ({ ok: true }),
  list: () => ({ services: [] }),
  health: () => ({ targets: [] }),
  stats: () => ({ counters: {} }),
  metrics: () => ({ text: '' }),
  config: () => ({ text: 'services: []\n' }),
  reload: () => { throw new ConfigError('bad thing', { where: 'f.yaml:2:3', hint: 'fix' }) },
  apply: (p) => ({ length: p.text.length }),
  upgrade: () => { throw new Error('not here') },
  sweep: async () => { await new Promise((r) => setTimeout(r, 20)); return { slow: true } },
  ...over,
})

t.test('server and client over a unix socket', async (t) => {
  const file = tempSocket(t)
  const server = new ControlServer(file, handlers(), { maxLine: 4096 })
  await server.listen()
  t.teardown(() => server.close())
  t.equal(fs.statSync(file).mode & 0o777, 0o600, 'the socket is 0600 (root only)')

  const c = await DaemonClient.connect({ socket: file })
  t.teardown(() => c.close())
  t.same(await c.request('status'), { ok: true })
  t.same(await c.request('apply', { text: 'hello' }), { length: 5 })
  const err = await c.request('reload').catch((e: unknown) => e)
  t.ok(err instanceof ConfigError, 'a config error comes back as a ConfigError')
  t.match(err, { code: 'ECONFIG', message: 'f.yaml:2:3: bad thing', where: 'f.yaml:2:3', hint: 'fix' })
  const err2 = await c.request('upgrade').catch((e: unknown) => e)
  t.ok(err2 instanceof DaemonRequestError)
  t.match(err2, { code: 'EINTERNAL', message: 'not here' })

  // Answers come in request order even when an earlier handler is slower.
  const order: string[] = []
  await Promise.all([c.request('sweep').then(() => order.push('sweep')), c.request('status').then(() => order.push('status'))])
  t.same(order, ['sweep', 'status'])

  // Garbage on the same connection: answered, and the connection still works.
  c.writeRaw('this is not json\n{"method":"nope"}\n[]\n')
  t.same(await c.request('list'), { services: [] }, 'still usable after bad lines')
  t.equal(c.unsolicited.length, 3, 'each bad line got an answer')
  t.ok(c.unsolicited.every((r) => !r.ok && r.error.code === 'EPROTO'))

  // An over-long line: answered, then the connection is closed; the server lives on.
  const raw = net.connect(file)
  const got = await new Promise<string>((resolve) => {
    let buf = ''
    raw.on('data', (d) => { buf += d.toString() })
    raw.on('close', () => resolve(buf))
    raw.write('x'.repeat(5000))
  })
  t.match(JSON.parse(got.trim()), { id: null, ok: false, error: { code: 'EPROTO', message: /longer than 4096/ } })
  t.same(await callDaemon('ping', {}, { socket: file }), { pid: process.pid, version: 'test', protocol: 1 }, 'the server still answers new connections')
})

t.test('a stale socket file is replaced, a live one refused, a non-socket refused; close removes it', async (t) => {
  const file = tempSocket(t)
  fs.mkdirSync(path.dirname(file), { recursive: true })
  // A stale socket file: bound by a server that is gone (moved aside while it closes, so nothing unlinks it).
  const s2 = net.createServer()
  await new Promise<void>((r) => s2.listen(file, r))
  fs.renameSync(file, `${file}.keep`)
  await new Promise<void>((r) => s2.close(() => r()))
  fs.renameSync(`${file}.keep`, file)
  t.equal(await socketAnswers(file), false, 'nobody answers on the stale socket')

  const a = new ControlServer(file, handlers())
  await a.listen()
  t.same(await callDaemon('status', {}, { socket: file }), { ok: true }, 'the stale socket was replaced')
  const b = new ControlServer(file, handlers())
  await t.rejects(b.listen(), { code: 'ECONTROL', message: /another xvs daemon answers/ })
  await a.close()
  t.notOk(fs.existsSync(file), 'close removed the socket file')
  await t.rejects(DaemonClient.connect({ socket: file }), DaemonUnreachableError)
  t.equal(await DaemonClient.tryConnect({ socket: file }), null, 'tryConnect: null when no daemon runs')

  fs.writeFileSync(file, 'not a socket')
  await t.rejects(new ControlServer(file, handlers()).listen(), { code: 'ECONTROL', message: /not a socket/ })
})
