// SPDX-License-Identifier: GPL-2.0-only
// A namespace lab with xvs loaded on the director: what the forwarding lab tests share. Each call
// builds its own lab and registers teardown (data plane unloaded, pins removed, lab destroyed).
import { createTopology, type Topology, type TopologyOptions } from '../../src/lab/topology'
import { startHttpServers, type HttpServer } from '../../src/lab/http'
import { withNetns } from '../../src/bpf'
import { findDataplane, loadDataplane, unloadDataplane, type LoadResult } from '../../src/dataplane/loader'
import { loadDecap } from '../../src/dataplane/decap'
import { applyModel, type ApplyResult } from '../../src/dataplane/writer'
import { parseConfig } from '../../src/config'

type Tap = { teardown(fn: () => void | Promise<void>): void }

export interface XvsLab {
  topo: Topology
  servers: HttpServer[]
  /**
   * Load (or reload: atomic replace, maps kept) the director on its front interface, and on its back
   * interface where that is another one (routed shape: two-arm NAT).
   */
  load(): Omit<LoadResult, 'dataplane'> & { progId: number }
  /** Apply a YAML config in the director's namespace. */
  apply(yaml: string): ApplyResult
  /** Run fn in the director's namespace with the running data plane. */
  inDirector<T>(fn: (dp: NonNullable<ReturnType<typeof findDataplane>>) => T): T
}

export interface XvsLabOptions extends TopologyOptions {
  /** Load xvs's decapsulation program on the real servers (tun). */
  decap?: boolean
  /** Port of the real servers' HTTP servers; default 80. */
  httpPort?: number
}

export async function xvsLab(t: Tap, opts: XvsLabOptions = {}): Promise<XvsLab> {
  const topo = await createTopology({ shape: 'bridge', reals: 2, ...opts })
  t.teardown(() => {
    try { withNetns(topo.director.ns, () => unloadDataplane()) } catch { /* lab already gone */ }
    topo.destroy()
  })
  const servers = await startHttpServers(topo, topo.reals, { port: opts.httpPort ?? 80 })
  if (opts.decap) for (const rs of topo.reals) withNetns(rs.ns, () => loadDecap({ ifaces: [rs.iface('eth0').name] }))
  const lab: XvsLab = {
    topo,
    servers,
    load: () => withNetns(topo.director.ns, () => {
      const ifaces = [...new Set([topo.director.front.name, topo.director.back.name])]
      const { dataplane, ...r } = loadDataplane({ ifaces })
      const progId = dataplane.prog.id
      dataplane.close()
      return { ...r, progId }
    }),
    apply: (yaml) => {
      const model = parseConfig(yaml, 'lab.yaml', 'yaml').model
      return lab.inDirector((dp) => applyModel(dp, model))
    },
    inDirector: (fn) => withNetns(topo.director.ns, () => {
      const dp = findDataplane()
      if (!dp) throw new Error('no data plane in the director namespace')
      try { return fn(dp) } finally { dp.close() }
    }),
  }
  return lab
}

/** A YAML service block. */
export function serviceYaml(vip: string, port: number, scheduler: string, reals: { address: string; weight?: number; method: string; port?: number }[]): string {
  const rs = reals.map((r) => `      - { address: "${r.address}", weight: ${r.weight ?? 1}, method: ${r.method}${r.port ? `, port: ${r.port}` : ''} }`).join('\n')
  return `  - vip: "${vip}"\n    port: ${port}\n    scheduler: ${scheduler}\n    real_servers:\n${rs}\n`
}
