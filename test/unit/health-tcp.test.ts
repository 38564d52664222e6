// SPDX-License-Identifier: GPL-2.0-only
// TCP connect checker against real listeners on 127.0.0.1 and ::1: up, refused, connect timeout (a
// listener whose accept queue is full drops further SYNs), abort, bad targets and specs.
import { spawn } from 'node:child_process'
import net from 'node:net'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { TcpChecker } from '../../src/health/checkers/tcp'


/** A listener that counts accepted connections; closed in teardown. */
async function listen(t: Test, host: string): Promise<{ port: number; accepted: () => number }> {
  let accepted = 0
  const sockets = new Set<net.Socket>()
  const server = net.createServer((socket) => {
    accepted++
    sockets.add(socket)
    socket.on('error', () => {})
    socket.on('close', () => sockets.delete(socket))
  })
  await new Promise<void>((resolve) => server.listen(0, host, resolve))
  t.teardown(async () => {
    for (const s of sockets) s.destroy()
    await new Promise((resolve) => server.close(resolve))
  })
  return { port: (server.address() as AddressInfo).port, accepted: () => accepted }
}

/** A port nothing listens on: bound, then closed. */
async function closedPort(host: string): Promise<number> {
  const server = net.createServer()
  await new Promise<void>((resolve) => server.listen(0, host, resolve))
  const port = (server.address() as AddressInfo).port
  await new Promise((resolve) => server.close(resolve))
  return port
}

/**
 * A listener that never accepts: a child node process listening with backlog 1, stopped with SIGSTOP.
 * Once its accept queue is full the kernel drops new SYNs, so a connect hangs until it times out.
 */
async function blackhole(t: Test): Promise<number> {
  const child = spawn(process.execPath, ['-e', "require('net').createServer().listen({ host: '127.0.0.1', port: 0, backlog: 1 }, function () { process.stdout.write(this.address().port + '\\n') })"], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  t.teardown(() => {
    child.kill('SIGKILL')
  })
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.once('data', (d: Buffer) => resolve(Number(String(d).trim())))
    child.once('exit', () => reject(new Error('listener exited')))
  })
  child.kill('SIGSTOP')
  const fillers: net.Socket[] = []
  t.teardown(() => fillers.forEach((s) => s.destroy()))
  // Fill the accept queue: connect until one connection does not complete within 300 ms (bounded).
  for (let i = 0; i < 8; i++) {
    const s = net.connect({ host: '127.0.0.1', port })
    s.on('error', () => {})
    fillers.push(s)
    const connected = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 300)
      s.once('connect', () => {
        clearTimeout(timer)
        resolve(true)
      })
    })
    if (!connected) return port
  }
  throw new Error('could not fill the accept queue')
}

const signal = (): AbortSignal => new AbortController().signal

t.test('connects over IPv4 and IPv6', async (t) => {
  for (const host of ['127.0.0.1', '::1']) {
    const server = await listen(t, host)
    const r = await new TcpChecker({ type: 'tcp' }).run({ address: host, port: server.port }, signal())
    t.equal(r.ok, true, `${host}: ${r.detail}`)
    t.match(r.detail, /connected/)
    t.ok(r.latencyMs >= 0)
  }
})

t.test('the server sees the connection', async (t) => {
  const server = await listen(t, '127.0.0.1')
  await new TcpChecker({ type: 'tcp' }).run({ address: '127.0.0.1', port: server.port }, signal())
  for (let i = 0; i < 100 && server.accepted() === 0; i++) await new Promise((r) => setTimeout(r, 10))
  t.equal(server.accepted(), 1)
})

t.test('spec port overrides the target port (connect_port)', async (t) => {
  const server = await listen(t, '127.0.0.1')
  const down = await closedPort('127.0.0.1')
  const r = await new TcpChecker({ type: 'tcp', port: server.port }).run({ address: '127.0.0.1', port: down }, signal())
  t.equal(r.ok, true, r.detail)
})

t.test('a closed port is refused', async (t) => {
  for (const host of ['127.0.0.1', '::1']) {
    const port = await closedPort(host)
    const r = await new TcpChecker({ type: 'tcp' }).run({ address: host, port }, signal())
    t.equal(r.ok, false)
    t.match(r.detail, /ECONNREFUSED/, `${host}: ${r.detail}`)
  }
})

t.test('connect timeout against a listener that never answers', async (t) => {
  const port = await blackhole(t)
  const r1 = await new TcpChecker({ type: 'tcp', connectTimeoutMs: 200 }).run({ address: '127.0.0.1', port }, signal())
  t.equal(r1.ok, false)
  t.match(r1.detail, /connect timed out after 200 ms/)
  const r2 = await new TcpChecker({ type: 'tcp', timeoutMs: 200 }).run({ address: '127.0.0.1', port }, signal())
  t.equal(r2.ok, false)
  t.match(r2.detail, /timed out after 200 ms/, 'the whole-attempt limit too')
  const controller = new AbortController()
  setTimeout(() => controller.abort(new Error('engine says stop')), 100)
  const r3 = await new TcpChecker({ type: 'tcp' }).run({ address: '127.0.0.1', port }, controller.signal)
  t.equal(r3.ok, false)
  t.equal(r3.detail, 'engine says stop', 'an abort ends a hanging connect with its reason')
})

t.test('an already aborted signal fails without connecting', async (t) => {
  const server = await listen(t, '127.0.0.1')
  const r = await new TcpChecker({ type: 'tcp' }).run({ address: '127.0.0.1', port: server.port }, AbortSignal.abort())
  t.equal(r.ok, false)
  await new Promise((resolve) => setTimeout(resolve, 50))
  t.equal(server.accepted(), 0)
})

t.test('a bad target is a failed result, a bad spec throws', async (t) => {
  const checker = new TcpChecker({ type: 'tcp' })
  const r1 = await checker.run({ address: 'localhost', port: 80 }, signal())
  t.equal(r1.ok, false)
  t.match(r1.detail, /IPv4 or IPv6 literal/)
  const r2 = await checker.run({ address: '127.0.0.1', port: 0 }, signal())
  t.equal(r2.ok, false)
  t.throws(() => new TcpChecker({ type: 'tcp', port: 70000 }), { code: 'EARG' })
  t.throws(() => new TcpChecker({ type: 'tcp', connectTimeoutMs: -1 }), { code: 'EARG' })
})
