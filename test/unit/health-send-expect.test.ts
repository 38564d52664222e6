// SPDX-License-Identifier: GPL-2.0-only
// send/expect checker against real servers on 127.0.0.1 and ::1: match, mismatch, escapes on the wire,
// banners, regex, replies split over packets, read limit, and a silent server that times out without
// holding up a check running beside it.
import net from 'node:net'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { SendExpectChecker } from '../../src/health/checkers/send-expect'
import type { SendExpectCheckSpec } from '../../src/health/types'


interface Served {
  port: number
  /** Bytes each connection sent, in connection order. */
  received: Buffer[]
}

/** A server running `onConnection` per client; every socket and the server closed in teardown. */
async function serve(t: Test, host: string, onConnection: (socket: net.Socket, received: () => Buffer) => void): Promise<Served> {
  const received: Buffer[] = []
  const sockets = new Set<net.Socket>()
  const server = net.createServer((socket) => {
    const index = received.push(Buffer.alloc(0)) - 1
    sockets.add(socket)
    socket.on('error', () => {})
    socket.on('close', () => sockets.delete(socket))
    socket.on('data', (chunk: Buffer) => {
      received[index] = Buffer.concat([received[index]!, chunk])
    })
    onConnection(socket, () => received[index]!)
  })
  await new Promise<void>((resolve) => server.listen(0, host, resolve))
  t.teardown(async () => {
    for (const s of sockets) s.destroy()
    await new Promise((resolve) => server.close(resolve))
  })
  return { port: (server.address() as AddressInfo).port, received }
}

/** Answers PONG\r\n once it has read PING\r\n, then keeps the connection open. */
const pingPong = (socket: net.Socket, received: () => Buffer): void => {
  socket.on('data', () => {
    if (received().toString().includes('PING\r\n')) socket.write('PONG\r\n')
  })
}

const run = (spec: Omit<SendExpectCheckSpec, 'type'>, address: string, port: number, signal = new AbortController().signal) =>
  new SendExpectChecker({ type: 'send-expect', ...spec }).run({ address, port }, signal)

t.test('send with escapes, expect the reply (IPv4 and IPv6)', async (t) => {
  for (const host of ['127.0.0.1', '::1']) {
    const server = await serve(t, host, pingPong)
    const r = await run({ send: 'PING\\r\\n', expect: 'PONG', timeoutMs: 2000 }, host, server.port)
    t.equal(r.ok, true, `${host}: ${r.detail}`)
    t.equal(server.received[0]!.toString('latin1'), 'PING\r\n', 'escapes were decoded on the wire')
  }
})

t.test('escapes: false sends the string as it is', async (t) => {
  const server = await serve(t, '127.0.0.1', pingPong)
  const r = await run({ send: 'PING\r\n', expect: 'PONG\r\n', escapes: false, timeoutMs: 2000 }, '127.0.0.1', server.port)
  t.equal(r.ok, true, r.detail)
  const raw = await run({ send: 'a\\tb', escapes: false, timeoutMs: 2000 }, '127.0.0.1', server.port)
  t.equal(raw.ok, true)
  for (let i = 0; i < 100 && server.received[1]?.length !== 4; i++) await new Promise((r) => setTimeout(r, 10))
  t.equal(server.received[1]!.toString('latin1'), 'a\\tb', 'backslash-t left alone')
})

t.test('mismatch: the server closes without the expected text', async (t) => {
  const server = await serve(t, '127.0.0.1', (socket) => socket.end('500 go away\r\n'))
  const r = await run({ send: 'HELLO\\n', expect: '200', timeoutMs: 2000 }, '127.0.0.1', server.port)
  t.equal(r.ok, false)
  t.match(r.detail, /connection closed waiting for "200", got "500 go away/)
})

t.test('mismatch: the server answers something else and stays open until the timeout', async (t) => {
  const server = await serve(t, '127.0.0.1', (socket) => socket.on('data', () => socket.write('PANG\r\n')))
  const r = await run({ send: 'PING\\r\\n', expect: 'PONG', timeoutMs: 300 }, '127.0.0.1', server.port)
  t.equal(r.ok, false)
  t.match(r.detail, /timed out after 300 ms waiting for "PONG", got "PANG/)
})

t.test('banner: empty send reads what the server says first (FTP 220)', async (t) => {
  const server = await serve(t, '127.0.0.1', (socket) => socket.write('220 ftp.example ready\r\n'))
  t.equal((await run({ expect: '220', timeoutMs: 2000 }, '127.0.0.1', server.port)).ok, true)
  const re = await run({ expect: '^220 [a-z.]+ ready\\r\\n$', regex: true, timeoutMs: 2000 }, '127.0.0.1', server.port)
  t.equal(re.ok, true, `regex: ${re.detail}`)
  const reMiss = await run({ expect: '^530', regex: true, timeoutMs: 300 }, '127.0.0.1', server.port)
  t.equal(reMiss.ok, false)
  t.match(reMiss.detail, /waiting for \/\^530\//)
})

t.test('expected text split over several packets', async (t) => {
  const server = await serve(t, '127.0.0.1', (socket) => {
    socket.write('OK wai')
    setTimeout(() => !socket.destroyed && socket.write('ting for PO'), 20)
    setTimeout(() => !socket.destroyed && socket.write('NG done'), 40)
  })
  const r = await run({ expect: 'PONG', timeoutMs: 2000 }, '127.0.0.1', server.port)
  t.equal(r.ok, true, r.detail)
})

t.test('empty expect: healthy once sent; both empty: a plain connect', async (t) => {
  const server = await serve(t, '127.0.0.1', () => {})
  const sent = await run({ send: 'quit\\n', timeoutMs: 2000 }, '127.0.0.1', server.port)
  t.equal(sent.ok, true)
  t.match(sent.detail, /sent 5 bytes/)
  const plain = await run({ timeoutMs: 2000 }, '127.0.0.1', server.port)
  t.equal(plain.ok, true)
  t.equal(plain.detail, 'connected')
})

t.test('refused port fails', async (t) => {
  const server = net.createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  await new Promise((resolve) => server.close(resolve))
  const r = await run({ send: 'x', expect: 'y', timeoutMs: 2000 }, '127.0.0.1', port)
  t.equal(r.ok, false)
  t.match(r.detail, /ECONNREFUSED/)
})

t.test('read limit', async (t) => {
  const server = await serve(t, '127.0.0.1', (socket) => socket.write(Buffer.alloc(10000, 'x')))
  const r = await run({ expect: 'PONG', maxReadBytes: 4096, timeoutMs: 2000 }, '127.0.0.1', server.port)
  t.equal(r.ok, false)
  t.match(r.detail, /^read \d+ bytes waiting for "PONG"/)
})

t.test('a silent server times out without holding up a parallel check', async (t) => {
  const silent = await serve(t, '127.0.0.1', () => {})
  const chatty = await serve(t, '127.0.0.1', pingPong)
  const order: string[] = []
  const slow = run({ send: 'PING\\r\\n', expect: 'PONG', timeoutMs: 1500 }, '127.0.0.1', silent.port).then((r) => {
    order.push('silent')
    return r
  })
  const fast = run({ send: 'PING\\r\\n', expect: 'PONG', timeoutMs: 1500 }, '127.0.0.1', chatty.port).then((r) => {
    order.push('chatty')
    return r
  })
  const [s, f] = await Promise.all([slow, fast])
  t.equal(f.ok, true, 'the answering server passed')
  t.equal(s.ok, false)
  t.match(s.detail, /timed out after 1500 ms/)
  t.same(order, ['chatty', 'silent'], 'the answering server finished first')
})

t.test('an abort ends the wait at once, with its reason', async (t) => {
  const silent = await serve(t, '127.0.0.1', () => {})
  const controller = new AbortController()
  setTimeout(() => controller.abort(new Error('stopping')), 50)
  const r = await run({ expect: 'PONG' }, '127.0.0.1', silent.port, controller.signal)
  t.equal(r.ok, false)
  t.match(r.detail, /^stopping waiting for "PONG"/)
})

t.test('bad specs throw', async (t) => {
  t.throws(() => new SendExpectChecker({ type: 'send-expect', send: 'trailing\\' }), { code: 'EARG' })
  t.throws(() => new SendExpectChecker({ type: 'send-expect', expect: '(', regex: true }), { code: 'EARG' })
  t.throws(() => new SendExpectChecker({ type: 'send-expect', maxReadBytes: 0 }), { code: 'EARG' })
})
