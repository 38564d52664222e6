// SPDX-License-Identifier: GPL-2.0-only
// Bulk transfers through the lab: an upload server on real servers that answers with the byte count
// and SHA-256 of what it received, and a client that POSTs a deterministic body and checks both.
// Large segments are what exercise tunnel MTU handling (ICMP too-big and path MTU discovery).
import type { Topology, HostNode } from '../../src/lab/topology'

const env = { PATH: process.env.PATH ?? '/usr/bin:/bin' }

const serverScript = `
const http = require('node:http'), crypto = require('node:crypto')
const [name, port] = process.argv.slice(1)
http.createServer((req, res) => {
  const h = crypto.createHash('sha256'); let n = 0
  req.on('data', (d) => { n += d.length; h.update(d) })
  req.on('end', () => { res.writeHead(200, { 'x-xvs-lab-server': name }); res.end(JSON.stringify({ name, bytes: n, sha256: h.digest('hex') })) })
}).listen({ host: '::', port: Number(port) }, () => process.stdout.write('ready\\n'))
process.stdin.on('end', () => process.exit(0)); process.stdin.resume()
`

const clientScript = `
const http = require('node:http'), crypto = require('node:crypto')
const [host, port, size] = process.argv.slice(1)
const body = Buffer.alloc(Number(size)); for (let i = 0; i < body.length; i++) body[i] = (i * 7 + (i >> 9)) & 0xff
const want = crypto.createHash('sha256').update(body).digest('hex')
const req = http.request({ host, port: Number(port), method: 'POST', path: '/', agent: false, timeout: 30000,
  headers: { 'content-length': body.length } }, (res) => {
  let d = ''; res.on('data', (c) => { d += c }); res.on('end', () => {
    const r = JSON.parse(d); process.stdout.write(JSON.stringify({ ...r, intact: r.bytes === body.length && r.sha256 === want }) + '\\n')
  })
})
req.on('timeout', () => req.destroy(new Error('timeout')))
req.on('error', (e) => { process.stdout.write(JSON.stringify({ error: e.message }) + '\\n') })
req.end(body)
`

export async function startUploadServers(topo: Topology, port: number): Promise<void> {
  await Promise.all(topo.reals.map((rs) => new Promise<void>((resolve, reject) => {
    const child = topo.spawn(rs, ['node', '-e', serverScript, rs.name, String(port)], { env })
    const timer = setTimeout(() => reject(new Error(`upload server on ${rs.name} not ready`)), 10_000)
    child.stdout!.on('data', (d: Buffer) => { if (d.toString().includes('ready')) { clearTimeout(timer); resolve() } })
  })))
}

export interface UploadResult { name?: string; bytes?: number; intact?: boolean; error?: string }

export async function upload(topo: Topology, from: HostNode, host: string, port: number, size: number): Promise<UploadResult> {
  const out = await topo.execAsync(from, ['node', '-e', clientScript, host, String(port), String(size)], { timeoutMs: 60_000, env })
  return JSON.parse(out.trim().split('\n').pop() ?? '{}') as UploadResult
}
