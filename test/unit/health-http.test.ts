// SPDX-License-Identifier: GPL-2.0-only
// HTTP/HTTPS GET checker against real servers on 127.0.0.1 and ::1: statuses (lists, ranges),
// redirects checked as their 3xx status, Host header, body regex and MD5 digest, body limit, several
// urls, read and whole-check timeouts; HTTPS with a self-signed certificate made by openssl at test
// time: verification off and on, CA, names, and the SNI the server sees.
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import http from 'node:http'
import https from 'node:https'
import type { AddressInfo } from 'node:net'
import type net from 'node:net'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { formatStatuses, HttpChecker, parseStatusList, statusMatches } from '../../src/health/checkers/http'
import type { HttpCheckSpec } from '../../src/health/types'


interface Seen {
  path: string
  host: string | undefined
  userAgent: string | undefined
  /** TLS server name the client sent; false without SNI, undefined for plain HTTP. */
  sni: string | false | undefined
}

const BODY = 'hello from the real server\n'
const BIG = Buffer.concat([Buffer.alloc(2 * 1024 * 1024 - 4, 'a'), Buffer.from('TAIL')])

function handler(seen: Seen[]): http.RequestListener {
  return (req, res) => {
    const socket = req.socket as net.Socket & { servername?: string | false }
    seen.push({ path: req.url ?? '', host: req.headers.host, userAgent: req.headers['user-agent'], sni: socket.servername })
    res.on('error', () => {})
    switch (req.url) {
      case '/ok':
        res.end(BODY)
        return
      case '/created':
        res.writeHead(201).end('made')
        return
      case '/down':
        res.writeHead(503).end('maintenance')
        return
      case '/redirect':
        res.writeHead(302, { Location: '/ok' }).end()
        return
      case '/big':
        res.writeHead(200, { 'Content-Length': BIG.length }).end(BIG)
        return
      case '/hang':
        return // never answers
      case '/stall':
        res.writeHead(200, { 'Content-Length': 100 })
        res.write('only part of it') // and never the rest
        return
      default:
        res.writeHead(404).end('no')
    }
  }
}

async function closeAll(server: http.Server): Promise<void> {
  server.closeAllConnections()
  await new Promise((resolve) => server.close(resolve))
}

async function httpServer(t: Test, host: string): Promise<{ port: number; seen: Seen[] }> {
  const seen: Seen[] = []
  const server = http.createServer(handler(seen))
  await new Promise<void>((resolve) => server.listen(0, host, resolve))
  t.teardown(() => closeAll(server))
  return { port: (server.address() as AddressInfo).port, seen }
}

const run = (spec: Omit<HttpCheckSpec, 'type'> & { type?: 'http' | 'https' }, address: string, port: number) =>
  new HttpChecker({ type: 'http', ...spec }).run({ address, port }, new AbortController().signal)

t.test('status lists', async (t) => {
  t.same(parseStatusList('200'), [200])
  t.same(parseStatusList('200-299, 301 404'), [[200, 299], 301, 404])
  t.throws(() => parseStatusList(''), { code: 'EARG' })
  t.throws(() => parseStatusList('2xx'), { code: 'EARG' })
  t.throws(() => parseStatusList('299-200'), { code: 'EARG' })
  t.throws(() => parseStatusList('700'), { code: 'EARG' })
  t.equal(statusMatches(204, [[200, 299]]), true)
  t.equal(statusMatches(302, [200, [300, 301]]), false)
  t.equal(formatStatuses([200, [300, 399]]), '200,300-399')
})

t.test('200 by default, over IPv4 and IPv6, one GET with our user agent', async (t) => {
  for (const host of ['127.0.0.1', '::1']) {
    const server = await httpServer(t, host)
    const r = await run({ urls: [{ path: '/ok' }], timeoutMs: 2000 }, host, server.port)
    t.equal(r.ok, true, `${host}: ${r.detail}`)
    t.equal(r.detail, 'GET /ok: HTTP 200')
    t.equal(server.seen.length, 1)
    t.equal(server.seen[0]!.userAgent, 'xvs-healthcheck')
    const expectedHost = host.includes(':') ? `[${host}]:${server.port}` : `${host}:${server.port}`
    t.equal(server.seen[0]!.host, expectedHost, 'default Host header is address:port')
  }
})

t.test('Host header (virtualhost)', async (t) => {
  const server = await httpServer(t, '127.0.0.1')
  const r = await run({ urls: [{ path: '/ok' }], host: 'www.example.com', timeoutMs: 2000 }, '127.0.0.1', server.port)
  t.equal(r.ok, true)
  t.equal(server.seen[0]!.host, 'www.example.com')
})

t.test('status mismatch, lists and ranges', async (t) => {
  const server = await httpServer(t, '127.0.0.1')
  const down = await run({ urls: [{ path: '/down' }], timeoutMs: 2000 }, '127.0.0.1', server.port)
  t.equal(down.ok, false)
  t.equal(down.detail, 'GET /down: HTTP 503, expected 200')
  t.equal((await run({ urls: [{ path: '/down', statuses: [[500, 599]] }], timeoutMs: 2000 }, '127.0.0.1', server.port)).ok, true)
  t.equal((await run({ urls: [{ path: '/created', statuses: parseStatusList('200-299') }], timeoutMs: 2000 }, '127.0.0.1', server.port)).ok, true)
  t.equal((await run({ urls: [{ path: '/created' }], timeoutMs: 2000 }, '127.0.0.1', server.port)).ok, false, '201 is not the default 200')
  t.equal((await run({ urls: [{ path: '/nowhere' }], timeoutMs: 2000 }, '127.0.0.1', server.port)).ok, false)
})

t.test('a redirect is not followed: it counts as its 3xx status', async (t) => {
  const server = await httpServer(t, '127.0.0.1')
  const r = await run({ urls: [{ path: '/redirect' }], timeoutMs: 2000 }, '127.0.0.1', server.port)
  t.equal(r.ok, false)
  t.match(r.detail, /HTTP 302, expected 200/)
  const accepted = await run({ urls: [{ path: '/redirect', statuses: [302] }], timeoutMs: 2000 }, '127.0.0.1', server.port)
  t.equal(accepted.ok, true)
  t.same(
    server.seen.map((s) => s.path),
    ['/redirect', '/redirect'],
    'the Location was never fetched',
  )
})

t.test('body regex', async (t) => {
  const server = await httpServer(t, '127.0.0.1')
  const hit = await run({ urls: [{ path: '/ok', regex: 'from the (real|fake) server' }], timeoutMs: 2000 }, '127.0.0.1', server.port)
  t.equal(hit.ok, true, hit.detail)
  t.match(hit.detail, /body ok/)
  const miss = await run({ urls: [{ path: '/ok', regex: '^maintenance' }], timeoutMs: 2000 }, '127.0.0.1', server.port)
  t.equal(miss.ok, false)
  t.match(miss.detail, /body does not match \/\^maintenance\//)
})

t.test('body MD5 digest (keepalived genhash)', async (t) => {
  const server = await httpServer(t, '127.0.0.1')
  const md5 = createHash('md5').update(BODY).digest('hex')
  t.equal((await run({ urls: [{ path: '/ok', digest: md5 }], timeoutMs: 2000 }, '127.0.0.1', server.port)).ok, true)
  t.equal((await run({ urls: [{ path: '/ok', digest: md5.toUpperCase() }], timeoutMs: 2000 }, '127.0.0.1', server.port)).ok, true, 'hex case does not matter')
  const wrong = await run({ urls: [{ path: '/ok', digest: '0'.repeat(32) }], timeoutMs: 2000 }, '127.0.0.1', server.port)
  t.equal(wrong.ok, false)
  t.match(wrong.detail, new RegExp(`body MD5 ${md5}, expected 0{32}`))
  const bigMd5 = createHash('md5').update(BIG).digest('hex')
  t.equal((await run({ urls: [{ path: '/big', digest: bigMd5 }], maxBodyBytes: 4 * 1024 * 1024, timeoutMs: 5000 }, '127.0.0.1', server.port)).ok, true, 'a 2 MiB body within the limit')
})

t.test('body limit', async (t) => {
  const server = await httpServer(t, '127.0.0.1')
  const digest = await run({ urls: [{ path: '/big', digest: '0'.repeat(32) }], maxBodyBytes: 65536, timeoutMs: 5000 }, '127.0.0.1', server.port)
  t.equal(digest.ok, false)
  t.match(digest.detail, /body longer than 65536 bytes/)
  const head = await run({ urls: [{ path: '/big', regex: '^a{100}' }], maxBodyBytes: 65536, timeoutMs: 5000 }, '127.0.0.1', server.port)
  t.equal(head.ok, true, 'a regex is tried on the first maxBodyBytes')
  const tail = await run({ urls: [{ path: '/big', regex: 'TAIL' }], maxBodyBytes: 65536, timeoutMs: 5000 }, '127.0.0.1', server.port)
  t.equal(tail.ok, false, 'text past the limit is not seen')
  t.match(tail.detail, /body \(first 65536 bytes\) does not match \/TAIL\//)
  const whole = await run({ urls: [{ path: '/big', regex: 'TAIL$' }], maxBodyBytes: 4 * 1024 * 1024, timeoutMs: 5000 }, '127.0.0.1', server.port)
  t.equal(whole.ok, true, 'with a larger limit it is')
})

t.test('every url must pass', async (t) => {
  const server = await httpServer(t, '127.0.0.1')
  const both = await run({ urls: [{ path: '/ok' }, { path: '/created', statuses: [201] }], timeoutMs: 2000 }, '127.0.0.1', server.port)
  t.equal(both.ok, true)
  t.equal(both.detail, '2 urls ok')
  const one = await run({ urls: [{ path: '/ok' }, { path: '/down' }], timeoutMs: 2000 }, '127.0.0.1', server.port)
  t.equal(one.ok, false)
  t.match(one.detail, /^GET \/down: HTTP 503/)
})

t.test('timeouts: read, whole check; refused', async (t) => {
  const server = await httpServer(t, '127.0.0.1')
  const read = await run({ urls: [{ path: '/hang' }], readTimeoutMs: 200, timeoutMs: 5000 }, '127.0.0.1', server.port)
  t.equal(read.ok, false)
  t.match(read.detail, /read timed out after 200 ms/)
  const stall = await run({ urls: [{ path: '/stall', regex: 'x' }], readTimeoutMs: 200, timeoutMs: 5000 }, '127.0.0.1', server.port)
  t.equal(stall.ok, false)
  t.match(stall.detail, /read timed out after 200 ms/, 'a body that stops mid-way')
  const whole = await run({ urls: [{ path: '/hang' }], timeoutMs: 300 }, '127.0.0.1', server.port)
  t.equal(whole.ok, false)
  t.match(whole.detail, /timed out after 300 ms/)
  const gone = http.createServer()
  await new Promise<void>((resolve) => gone.listen(0, '127.0.0.1', resolve))
  const port = (gone.address() as AddressInfo).port
  await new Promise((resolve) => gone.close(resolve))
  const refused = await run({ urls: [{ path: '/ok' }], timeoutMs: 2000 }, '127.0.0.1', port)
  t.equal(refused.ok, false)
  t.match(refused.detail, /ECONNREFUSED/)
})

t.test('bad specs throw', async (t) => {
  t.throws(() => new HttpChecker({ type: 'http', urls: [] }), { code: 'EARG' })
  t.throws(() => new HttpChecker({ type: 'http', urls: [{ path: 'ok' }] }), { code: 'EARG' })
  t.throws(() => new HttpChecker({ type: 'http', urls: [{ path: '/', digest: 'abc' }] }), { code: 'EARG' })
  t.throws(() => new HttpChecker({ type: 'http', urls: [{ path: '/', regex: '[' }] }), { code: 'EARG' })
  t.throws(() => new HttpChecker({ type: 'http', urls: [{ path: '/', statuses: [] }] }), { code: 'EARG' })
  t.throws(() => new HttpChecker({ type: 'https', urls: [{ path: '/' }], sni: '10.0.0.1' }), { code: 'EARG' })
})

function haveOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

t.test('https', { skip: haveOpenssl() ? false : 'openssl is not installed: cannot make a test certificate' }, async (t) => {
  const dir = t.testdir({})
  const keyFile = join(dir, 'key.pem')
  const certFile = join(dir, 'cert.pem')
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', '/CN=health.test',
    '-addext', 'subjectAltName=DNS:health.test,IP:127.0.0.1,IP:::1',
  ], { stdio: 'ignore' })
  const cert = readFileSync(certFile)
  const key = readFileSync(keyFile)

  const serve = async (host: string): Promise<{ port: number; seen: Seen[] }> => {
    const seen: Seen[] = []
    const server = https.createServer({ key, cert }, handler(seen))
    server.on('tlsClientError', () => {})
    await new Promise<void>((resolve) => server.listen(0, host, resolve))
    t.teardown(() => closeAll(server))
    return { port: (server.address() as AddressInfo).port, seen }
  }
  const server = await serve('127.0.0.1')
  const get = (spec: Partial<HttpCheckSpec>) => run({ type: 'https', urls: [{ path: '/ok' }], timeoutMs: 3000, ...spec }, '127.0.0.1', server.port)

  t.test('verification off accepts the self-signed certificate', async (t) => {
    const r = await get({})
    t.equal(r.ok, true, r.detail)
    t.equal(server.seen.at(-1)!.sni, false, 'no SNI for a bare IP target')
  })

  t.test('verification on rejects it', async (t) => {
    const r = await get({ verify: true })
    t.equal(r.ok, false)
    t.match(r.detail, /self.signed/i)
  })

  t.test('verification on with the certificate as CA, name from SNI', async (t) => {
    const r = await get({ ca: cert, sni: 'health.test' })
    t.equal(r.ok, true, r.detail)
    t.equal(server.seen.at(-1)!.sni, 'health.test')
    const wrongName = await get({ ca: cert, sni: 'other.test' })
    t.equal(wrongName.ok, false, 'a name the certificate does not hold')
    t.match(wrongName.detail, /ERR_TLS_CERT_ALTNAME_INVALID|does not match/)
    const byIp = await get({ ca: cert })
    t.equal(byIp.ok, true, `IP SAN: ${byIp.detail}`)
  })

  t.test('SNI follows the Host header unless told otherwise', async (t) => {
    await get({ host: 'health.test:8443' })
    t.equal(server.seen.at(-1)!.sni, 'health.test', 'host name from Host, port dropped')
    t.equal(server.seen.at(-1)!.host, 'health.test:8443')
    await get({ host: 'health.test', sni: 'sni.example' })
    t.equal(server.seen.at(-1)!.sni, 'sni.example', 'explicit sni wins')
    await get({ host: 'health.test', sni: false })
    t.equal(server.seen.at(-1)!.sni, false, 'sni: false sends none')
    await get({ host: '127.0.0.1:443' })
    t.equal(server.seen.at(-1)!.sni, false, 'an IP Host header gives no SNI')
  })

  t.test('IPv6 with verification against the IP SAN', async (t) => {
    const v6 = await serve('::1')
    const r = await run({ type: 'https', urls: [{ path: '/ok', regex: 'real server' }], ca: cert, timeoutMs: 3000 }, '::1', v6.port)
    t.equal(r.ok, true, r.detail)
  })

  t.test('plain HTTP to a TLS port fails', async (t) => {
    const r = await run({ urls: [{ path: '/ok' }], timeoutMs: 1000, readTimeoutMs: 500 }, '127.0.0.1', server.port)
    t.equal(r.ok, false)
  })
})
