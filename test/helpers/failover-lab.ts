// SPDX-License-Identifier: GPL-2.0-only
// A failover lab: one segment with a client, two directors ('dir' at .1, 'dir2' at .2) and real
// servers; on each director an xvs daemon (dist/src/daemon/main.js, what `make` builds) or Debian's
// keepalived, each with its own control socket / pid files in a private directory. Teardown kills
// what runs, unloads both data planes, destroys the lab and removes the directory.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { execFileSync, type ChildProcess } from 'node:child_process'
import { createTopology, type DirectorNode, type Topology } from '../../src/lab/topology'
import { startHttpServers, type HttpServer } from '../../src/lab/http'
import { withNetns } from '../../src/bpf'
import { findDataplane, unloadDataplane } from '../../src/dataplane/loader'
import { DaemonClient } from '../../src/daemon/client'
import type { DaemonStatus } from '../../src/daemon/daemon'
import type { VrrpInstanceStatus } from '../../src/ha/failover'
import { DAEMON_MAIN } from './daemon-lab'

type Tap = { teardown(fn: () => void | Promise<void>): void }

export const SYNC_KEY = '6f0c1d8a4b2e9f7305a1c4d2e8b6f0a9'

export type DirName = 'dir' | 'dir2'

export interface Proc {
  child: ChildProcess
  log(): string
  records(): Record<string, unknown>[]
  exited: Promise<number | null>
}

export interface FailoverLab {
  topo: Topology
  servers: HttpServer[]
  dir: string
  node(name: DirName): DirectorNode
  /** Start an xvs daemon on a director with this YAML; resolves once it answers on its socket. */
  startXvs(name: DirName, yaml: string): Promise<Proc>
  /** Start keepalived (VRRP only) on a director with this keepalived.conf. */
  startKeepalived(name: DirName, conf: string): Proc
  /** Signal what runs on a director and wait for it to exit. */
  stop(name: DirName, signal: NodeJS.Signals): Promise<number | null>
  status(name: DirName): Promise<DaemonStatus>
  vrrp(name: DirName): Promise<VrrpInstanceStatus>
  /** Poll until the xvs instance on `name` is in `state`; returns how long it took. */
  waitState(name: DirName, state: string, timeoutMs: number): Promise<number>
  waitFor(what: string, cond: () => boolean | Promise<boolean>, timeoutMs: number): Promise<number>
  /** Whether the director's eth0 holds this address. */
  holds(name: DirName, address: string): boolean
  /** The MAC the client's neighbour table has for an address. */
  clientMac(address: string): string | undefined
  /** xvs_conns entries on a director. */
  conns(name: DirName): number
}

export function failoverConfig(topo: Topology, o: {
  priority: number
  peer: string
  state?: 'MASTER' | 'BACKUP'
  scheduler?: string
  schedFlags?: string[]
  sync?: boolean
  advert?: number
  version?: 2 | 3
  authPass?: string
}): string {
  const rs = (fam: 'ipv4' | 'ipv6') => topo.reals.map((r) => `      - { address: "${r[fam]}", method: dr }`).join('\n')
  return `settings:
  interfaces: [eth0]
  expire_nodest_conn: true
services:
  - name: web
    vip: "${topo.vip.ipv4}"
    port: 80
    scheduler: ${o.scheduler ?? 'rr'}
${o.schedFlags ? `    sched_flags: [${o.schedFlags.join(', ')}]\n` : ''}    real_servers:
${rs('ipv4')}
  - name: web6
    vip: "${topo.vip.ipv6}"
    port: 80
    scheduler: ${o.scheduler ?? 'rr'}
${o.schedFlags ? `    sched_flags: [${o.schedFlags.join(', ')}]\n` : ''}    real_servers:
${rs('ipv6')}
vrrp:
  version: ${o.version ?? 3}
  garp: { master_delay: 1, master_repeat: 2 }
  instances:
    - name: VI_1
      interface: eth0
      vrid: 51
      priority: ${o.priority}
      state: ${o.state ?? 'BACKUP'}
      advert_interval: ${o.advert ?? 0.5}
      virtual_addresses: [${topo.vip.ipv4}/32]
      excluded_addresses: [${topo.vip.ipv6}/128]
${o.authPass ? `      auth_pass: ${o.authPass}\n` : ''}${o.sync === false ? '' : `  conn_sync: { instance: VI_1, peers: [${o.peer}], key: ${SYNC_KEY}, interval: 0.2 }\n`}`
}

export async function failoverLab(t: Tap): Promise<FailoverLab> {
  const topo = await createTopology({ shape: 'bridge', reals: 2, directors: 2 })
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xvs-failover-'))
  const procs = new Map<DirName, Proc>()
  const all: Proc[] = []
  t.teardown(async () => {
    for (const p of all) {
      if (p.child.exitCode === null && p.child.signalCode === null) {
        p.child.kill('SIGKILL')
        await p.exited
      }
    }
    for (const d of topo.directors) {
      try { withNetns(d.ns, () => unloadDataplane()) } catch { /* lab already gone */ }
    }
    topo.destroy()
    fs.rmSync(dir, { recursive: true, force: true })
  })
  const servers = await startHttpServers(topo)
  const node = (name: DirName): DirectorNode => topo.directors.find((d) => d.name === name)!
  const sock = (name: DirName): string => path.join(dir, `${name}.sock`)

  const track = (name: DirName, child: ChildProcess): Proc => {
    let out = ''
    child.stdout?.setEncoding('utf8')
    child.stderr?.setEncoding('utf8')
    child.stdout?.on('data', (d: string) => { out += d })
    child.stderr?.on('data', (d: string) => { out += d })
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
    const p: Proc = {
      child, exited, log: () => out,
      records: () => out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>),
    }
    procs.set(name, p)
    all.push(p)
    return p
  }

  const lab: FailoverLab = {
    topo, servers, dir, node,
    startXvs: async (name, yaml) => {
      const file = path.join(dir, `${name}.yaml`)
      fs.writeFileSync(file, yaml)
      const env: NodeJS.ProcessEnv = { ...process.env, XVS_LOG_LEVEL: 'info' }
      delete env.NODE_OPTIONS
      delete env.XVS_BPFFS
      const p = track(name, topo.spawn(node(name), [process.execPath, DAEMON_MAIN, '--config', file, '--socket', sock(name), '--metrics', 'off', '--sweep-interval', '1000'], { env }))
      let dead = false
      void p.exited.then(() => { dead = true })
      const deadline = Date.now() + 30_000
      for (;;) {
        if (dead) throw new Error(`the ${name} daemon exited: ${p.log().slice(-3000)}`)
        const c = await DaemonClient.tryConnect({ socket: sock(name), timeoutMs: 5000 })
        if (c) {
          try { await c.request('ping'); return p } catch { /* not yet */ } finally { c.close() }
        }
        if (Date.now() > deadline) throw new Error(`the ${name} daemon did not answer: ${p.log().slice(-3000)}`)
        await new Promise((r) => setTimeout(r, 100))
      }
    },
    startKeepalived: (name, conf) => {
      const file = path.join(dir, `${name}-keepalived.conf`)
      fs.writeFileSync(file, conf)
      const pid = (k: string) => path.join(dir, `${name}-${k}.pid`)
      return track(name, topo.spawn(node(name), ['keepalived', '--dont-fork', '--log-console', '--log-detail', '--vrrp', '--use-file', file,
        '--pid', pid('main'), '--vrrp_pid', pid('vrrp'), '--checkers_pid', pid('checkers'), '--bfd_pid', pid('bfd')]))
    },
    stop: async (name, signal) => {
      const p = procs.get(name)
      if (!p || p.child.exitCode !== null || p.child.signalCode !== null) return null
      p.child.kill(signal)
      return p.exited
    },
    status: async (name) => {
      const c = await DaemonClient.connect({ socket: sock(name), timeoutMs: 10_000 })
      try { return (await c.request('status')) as DaemonStatus } finally { c.close() }
    },
    vrrp: async (name) => (await lab.status(name)).vrrp!.instances[0]!,
    waitState: async (name, state, timeoutMs) => lab.waitFor(`${name} ${state}`, async () => (await lab.vrrp(name)).state === state, timeoutMs),
    waitFor: async (what, cond, timeoutMs) => {
      const start = Date.now()
      for (;;) {
        if (await cond()) return Date.now() - start
        if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
        await new Promise((r) => setTimeout(r, 20))
      }
    },
    holds: (name, address) => {
      const j = JSON.parse(execFileSync('ip', ['-n', node(name).ns, '-j', 'addr', 'show', 'dev', 'eth0'], { encoding: 'utf8' })) as Array<{ addr_info: Array<{ local: string }> }>
      return j[0]!.addr_info.some((a) => a.local === address)
    },
    clientMac: (address) => {
      const j = JSON.parse(execFileSync('ip', ['-n', topo.client.ns, '-j', 'neigh', 'show', address], { encoding: 'utf8' })) as Array<{ lladdr?: string }>
      return j[0]?.lladdr
    },
    conns: (name) => withNetns(node(name).ns, () => {
      const dp = findDataplane()
      if (!dp) return 0
      try { return dp.maps.conns.lookupBatch(4096).length } finally { dp.close() }
    }),
  }
  return lab
}
