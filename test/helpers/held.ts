// SPDX-License-Identifier: GPL-2.0-only
// Connections held open mid-request: each sends the first lines of an HTTP request, waits, and
// finishes it on release. The answer names the real server the connection was scheduled to, so a
// test can change the backend set in between and see old connections keep their server.
import type { Topology } from '../../src/lab/topology'

const script = `
const net = require('node:net')
const [host, port, n] = process.argv.slice(1)
const socks = []
let connected = 0
for (let i = 0; i < Number(n); i++) {
  const s = net.connect({ host, port: Number(port) }, () => {
    s.write('GET / HTTP/1.1\\r\\nHost: held\\r\\n')
    if (++connected === Number(n)) process.stdout.write('connected\\n')
  })
  s.setTimeout(20000, () => s.destroy(new Error('timeout')))
  let data = ''
  s.on('data', (d) => { data += d })
  s.on('error', (e) => { s.result = 'error ' + e.code })
  s.on('close', () => { s.result = s.result || (/x-xvs-lab-server: (\\S+)/i.exec(data) || [])[1] || 'no answer'; done() })
  socks.push(s)
}
let closed = 0
function done() { if (++closed === socks.length) process.stdout.write(JSON.stringify(socks.map((s) => s.result)) + '\\n', () => process.exit(0)) }
process.stdin.on('data', () => { for (const s of socks) s.write('\\r\\n') })
setTimeout(() => process.exit(2), 60000)
`

export interface Held {
  /** Finish every request; resolves to the server that answered each (or 'error …'). */
  release(): Promise<string[]>
}

export async function holdConnections(topo: Topology, host: string, port: number, n: number): Promise<Held> {
  const child = topo.spawn(topo.client, ['node', '-e', script, host, String(port), String(n)], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } })
  let out = ''
  child.stdout!.on('data', (d: Buffer) => { out += d.toString() })
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`held connections: not connected after 10 s (${out})`)), 10_000)
    const check = (): void => { if (out.includes('connected\n')) { clearTimeout(timer); resolve() } }
    child.stdout!.on('data', check)
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`held connections exited ${code}: ${out}`)) })
    check()
  })
  return {
    release: () => new Promise((resolve, reject) => {
      child.removeAllListeners('exit')
      child.on('exit', () => {
        const line = out.split('\n').find((l) => l.startsWith('['))
        if (line) resolve(JSON.parse(line) as string[])
        else reject(new Error(`held connections: no result (${out})`))
      })
      child.stdin!.write('go\n')
    }),
  }
}
