// SPDX-License-Identifier: GPL-2.0-only
// Schedulers with real TCP through namespaces (dr): lc and wlc with long-lived and short connections
// mixed, where the long-lived ones must spread instead of piling up on one server (the connection
// counters the data plane keeps are what decides), and sh, where each client address stays on one
// server.
import t, { type Test } from 'tap'
import { needsRoot } from '../helpers/root'
import { xvsLab, serviceYaml, type XvsLab } from '../helpers/xvs-lab'
import { httpRequests } from '../../src/lab/http'
import { readConnCounters } from '../../src/dataplane/conncount'
import { Real } from '../../src/dataplane/abi'

/**
 * In the client: for each of `n` rounds open a long-lived connection (request started, not finished)
 * and then make one short request; finally finish the long ones. Prints, as JSON, the server that
 * answered each long and each short one.
 */
const MIXED = `
const net = require('node:net')
const [host, n] = [process.argv[1], Number(process.argv[2])]
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
const server = (data) => (/x-xvs-lab-server: (\\S+)/i.exec(data) || [])[1] || 'none'
function open() {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port: 80 }, () => { s.write('GET / HTTP/1.1\\r\\nHost: long\\r\\n'); resolve(s) })
    s.data = ''
    s.on('data', (d) => { s.data += d })
    s.on('error', reject)
  })
}
function short() {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port: 80 }, () => s.write('GET / HTTP/1.1\\r\\nHost: short\\r\\nConnection: close\\r\\n\\r\\n'))
    let data = ''
    s.on('data', (d) => { data += d })
    s.on('end', () => { s.end(); resolve(server(data)) })
    s.on('error', reject)
  })
}
;(async () => {
  const longs = []
  const shorts = []
  for (let i = 0; i < n; i++) {
    longs.push(await open())
    await sleep(60)
    shorts.push(await short())
    await sleep(60)
  }
  process.stdout.write('held ' + JSON.stringify(shorts) + '\\n')
  await new Promise((r) => process.stdin.once('data', r))
  const answers = await Promise.all(longs.map((s) => new Promise((resolve) => {
    s.on('end', () => resolve(server(s.data)))
    s.write('\\r\\n')
  })))
  process.stdout.write('done ' + JSON.stringify(answers) + '\\n', () => process.exit(0))
})().catch((e) => { process.stdout.write('error ' + e.message + '\\n'); process.exit(1) })
setTimeout(() => process.exit(2), 60000)
`

interface Mixed { shorts: string[]; release(): Promise<string[]> }

async function mixed(lab: XvsLab, n: number): Promise<Mixed> {
  const child = lab.topo.spawn(lab.topo.client, ['node', '-e', MIXED, lab.topo.vip.ipv4, String(n)], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } })
  let out = ''
  child.stdout!.on('data', (d: Buffer) => { out += d.toString() })
  const line = (tag: string): Promise<string> => new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`mixed client: no '${tag}' after 30 s: ${out}`)), 30_000)
    const check = (): void => {
      const l = out.split('\n').find((x) => x.startsWith(`${tag} `) || x.startsWith('error '))
      if (!l) return
      clearTimeout(timer)
      if (l.startsWith('error ')) reject(new Error(l))
      else resolve(l.slice(tag.length + 1))
    }
    child.stdout!.on('data', check)
    check()
  })
  const shorts = JSON.parse(await line('held')) as string[]
  return {
    shorts,
    release: async () => {
      child.stdin!.write('go\n')
      return JSON.parse(await line('done')) as string[]
    },
  }
}

const count = (xs: string[], x: string): number => xs.filter((y) => y === x).length

/** Active/inactive per real server name (rs1, rs2, ...) from the data plane's counters. */
function activeByServer(lab: XvsLab): Record<string, number> {
  return lab.inDirector((dp) => {
    const c = readConnCounters(dp)
    const out: Record<string, number> = {}
    for (const { key, value } of dp.maps.reals.lookupBatch(4096)) {
      if (value.every((x) => x === 0)) continue
      const r = Real.decode(value)
      const name = `rs${lab.topo.reals.findIndex((h) => h.ipv4 === r.addr) + 1}`
      out[name] = c.get(key.readUInt32LE())?.active ?? 0
    }
    return out
  })
}

for (const sched of ['lc', 'wlc'] as const) {
  t.test(`${sched}: long-lived connections mixed with short ones spread, none piles up`, needsRoot, async (t: Test) => {
    const lab = await xvsLab(t)
    const { topo } = lab
    lab.load()
    lab.apply(`services:\n${serviceYaml(topo.vip.ipv4, 80, sched, [
      { address: topo.reals[0]!.ipv4, method: 'dr' }, { address: topo.reals[1]!.ipv4, method: 'dr' },
    ])}`)
    const m = await mixed(lab, 8)
    t.same(m.shorts.filter((x) => x !== 'rs1' && x !== 'rs2'), [], `every short request answered (${m.shorts.join(' ')})`)
    const active = activeByServer(lab)
    t.same(active, { rs1: 4, rs2: 4 }, 'the data plane counts 4 ESTABLISHED connections on each server')
    const longs = await m.release()
    t.same([count(longs, 'rs1'), count(longs, 'rs2')], [4, 4], `8 long-lived connections, 4 on each server (${longs.join(' ')})`)
    // Each short one went where the long ones were not: rr would have put every long one on one server.
    t.ok(count(m.shorts, 'rs1') >= 2 && count(m.shorts, 'rs2') >= 2, `short ones on both servers (${m.shorts.join(' ')})`)
  })
}

t.test('wlc: long-lived connections follow the weights', needsRoot, async (t: Test) => {
  const lab = await xvsLab(t)
  const { topo } = lab
  lab.load()
  lab.apply(`services:\n${serviceYaml(topo.vip.ipv4, 80, 'wlc', [
    { address: topo.reals[0]!.ipv4, weight: 1, method: 'dr' }, { address: topo.reals[1]!.ipv4, weight: 3, method: 'dr' },
  ])}`)
  const m = await mixed(lab, 8)
  const longs = await m.release()
  const a = count(longs, 'rs1')
  t.ok(a >= 1 && a <= 3, `weight 1 held ${a} of 8 long-lived connections, weight 3 held ${count(longs, 'rs2')}`)
})

t.test('sh: each client address stays on one server', needsRoot, async (t: Test) => {
  const lab = await xvsLab(t, { reals: 3 })
  const { topo } = lab
  lab.load()
  lab.apply(`services:\n${serviceYaml(topo.vip.ipv4, 80, 'sh', topo.reals.map((r) => ({ address: r.ipv4, method: 'dr' })))}`)
  const dev = topo.client.interfaces[0]!.name
  const clients = Array.from({ length: 10 }, (_, i) => `10.200.0.${30 + i}`)
  for (const c of clients) topo.exec(topo.client, ['ip', 'addr', 'add', `${c}/24`, 'dev', dev])
  const servers = new Set<string>()
  for (const c of clients) {
    const r = await httpRequests(topo, topo.client, { host: topo.vip.ipv4, count: 8, concurrency: 2, localAddress: c })
    t.equal(r.ok, 8, `${c}: 8 answered`)
    t.equal(Object.keys(r.byResponder).length, 1, `${c}: all to one server ${JSON.stringify(r.byResponder)}`)
    for (const s of Object.keys(r.byResponder)) servers.add(s)
  }
  t.ok(servers.size >= 2, `the 10 clients spread over ${servers.size} servers`)
})
