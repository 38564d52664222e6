// SPDX-License-Identifier: GPL-2.0-only
// Long transfers through the lab, both ways, checked end to end. A server on each real server streams a
// deterministic body (GET /bytes/<n>: the AES-128-CTR keystream of a fixed key, so every byte depends on
// its offset and a reordered, lost or duplicated segment changes the digest) and hashes what is POSTed to
// it; the client hashes while it receives (nothing is held in memory) and computes the digest it expects
// from the same keystream. Both run as `node -e` children of the lab, so destroy() kills them.
import type { HostNode, Topology } from '../../src/lab/topology'

const env = { PATH: process.env.PATH ?? '/usr/bin:/bin' }

// Shared by both scripts: the keystream, in chunks of at most 64 KiB, and writing `total` bytes of it
// to a stream (a response or a request body) as fast as the stream drains.
const keystream = `
const crypto = require('node:crypto')
const keystream = () => {
  const c = crypto.createCipheriv('aes-128-ctr', Buffer.alloc(16, 0x5a), Buffer.alloc(16, 0))
  const zeros = Buffer.alloc(65536)
  return (len) => c.update(len === zeros.length ? zeros : zeros.subarray(0, len))
}
const stream = (out, total) => {
  let left = total; const next = keystream()
  const pump = () => {
    while (left > 0) {
      const len = Math.min(65536, left); left -= len
      if (!out.write(next(len))) { out.once('drain', pump); return }
    }
    out.end()
  }
  pump()
}
`

const serverScript = `${keystream}
const http = require('node:http')
const [name, port] = process.argv.slice(1)
http.createServer((req, res) => {
  const peer = (req.socket.remoteAddress ?? '').replace(/^::ffff:(?=\\d+\\.)/, '')
  const m = /^\\/bytes\\/(\\d+)$/.exec(req.url ?? '')
  if (req.method === 'GET' && m) {
    res.writeHead(200, { 'content-length': Number(m[1]), 'x-xvs-lab-server': name, 'x-xvs-lab-peer': peer })
    stream(res, Number(m[1]))
    return
  }
  const h = crypto.createHash('sha256'); let n = 0
  req.on('data', (d) => { n += d.length; h.update(d) })
  req.on('end', () => { res.writeHead(200, { 'x-xvs-lab-server': name }); res.end(JSON.stringify({ name, peer, bytes: n, sha256: h.digest('hex') })) })
}).listen({ host: '::', port: Number(port) }, () => process.stdout.write('ready\\n'))
process.stdin.on('end', () => process.exit(0)); process.stdin.resume()
`

const clientScript = `${keystream}
const http = require('node:http')
const [mode, host, port, size] = process.argv.slice(1)
const total = Number(size)
const expected = () => { const h = crypto.createHash('sha256'), next = keystream(); for (let left = total; left > 0; left -= 65536) h.update(next(Math.min(65536, left))); return h.digest('hex') }
const done = (r) => process.stdout.write(JSON.stringify(r) + '\\n', () => process.exit(0))
const fail = (e) => done({ error: e.message })
if (mode === 'download') {
  const req = http.get({ host, port: Number(port), path: '/bytes/' + total, agent: false, timeout: 30000 }, (res) => {
    const h = crypto.createHash('sha256'); let n = 0
    res.on('data', (d) => { n += d.length; h.update(d) })
    res.on('error', fail)
    res.on('end', () => {
      const got = h.digest('hex'), want = expected()
      done({ name: res.headers['x-xvs-lab-server'], peer: res.headers['x-xvs-lab-peer'], bytes: n, sha256: got, intact: n === total && got === want })
    })
  })
  req.on('timeout', () => req.destroy(new Error('timeout')))
  req.on('error', fail)
} else {
  const want = expected()
  const req = http.request({ host, port: Number(port), method: 'POST', path: '/', agent: false, timeout: 30000,
    headers: { 'content-length': total } }, (res) => {
    let d = ''; res.on('data', (c) => { d += c }); res.on('error', fail)
    res.on('end', () => {
      try { const r = JSON.parse(d); done({ ...r, intact: r.bytes === total && r.sha256 === want }) } catch (e) { fail(e) }
    })
  })
  req.on('timeout', () => req.destroy(new Error('timeout')))
  req.on('error', fail)
  stream(req, total)
}
`

/** Starts the bulk server on every real server (port on every address); resolves once all listen. */
export async function startBulkServers(topo: Topology, port: number): Promise<void> {
  await Promise.all(topo.reals.map((rs) => new Promise<void>((resolve, reject) => {
    const child = topo.spawn(rs, ['node', '-e', serverScript, rs.name, String(port)], { env })
    const timer = setTimeout(() => reject(new Error(`bulk server on ${rs.name} not ready after 10 s`)), 10_000)
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`bulk server on ${rs.name} exited (${code})`)) })
    child.stdout!.on('data', (d: Buffer) => { if (d.toString().includes('ready')) { clearTimeout(timer); resolve() } })
    child.stderr!.resume()
  })))
}

export interface BulkResult {
  /** The real server that answered, and the client address it saw. */
  name?: string
  peer?: string
  /** Bytes that arrived (at the client for a download, at the server for an upload). */
  bytes?: number
  sha256?: string
  /** Every byte arrived, in order: the count and the digest are the expected ones. */
  intact?: boolean
  error?: string
}

/** Downloads (GET) or uploads (POST) `size` bytes through host:port from `from`; at most timeoutMs. */
export async function bulkTransfer(topo: Topology, from: HostNode, mode: 'download' | 'upload', host: string, port: number, size: number, timeoutMs = 120_000): Promise<BulkResult> {
  const out = await topo.execAsync(from, ['node', '-e', clientScript, mode, host, String(port), String(size)], { timeoutMs, env })
  return JSON.parse(out.trim().split('\n').pop() ?? '{}') as BulkResult
}
