// SPDX-License-Identifier: GPL-2.0-only
// `make demo`: a namespace lab with a client, a director and three real servers; xvs loaded on the
// director balances real HTTP through an IPv4 direct-routing VIP and an IPv6 tunnel VIP, then a
// real server is quiesced; everything is removed at the end. An entry point, so it prints to stdout.
import { XvsError } from '../errors'
import { createLogger } from '../log'
import { httpRequests, startHttpServers } from './http'
import { createTopology, type LabInterface, type Topology } from './topology'
import { withNetns } from '../bpf'
import { findDataplane, loadDataplane, unloadDataplane } from '../dataplane/loader'
import { loadDecap } from '../dataplane/decap'
import { applyModel } from '../dataplane/writer'
import { statCounterNames } from '../dataplane/abi'
import { parseConfig } from '../config'

function heading(text: string): void {
  console.log(`\n== ${text}`)
}

/** Left-aligned columns, for tables of a dozen rows. */
function table(rows: string[][]): void {
  const widths = rows[0]!.map((_, col) => Math.max(...rows.map(r => (r[col] ?? '').length)))
  for (const row of rows) console.log(`  ${row.map((cell, col) => cell.padEnd(widths[col]!)).join('  ').trimEnd()}`)
}

function describeLab(topo: Topology): void {
  heading(`lab ${topo.id} (${topo.shape}): ${topo.namespaces.length} network namespaces`)
  const rows = [['node', 'namespace', 'interface', 'ifindex', 'MAC', 'IPv4', 'IPv6', 'peer']]
  const addr = (a: LabInterface['ipv4']): string => (a === undefined ? '-' : `${a.address}/${a.prefixLength}`)
  for (const node of topo.nodes) {
    for (const i of node.interfaces) {
      rows.push([node.name, node.ns, i.name, String(i.ifindex), i.mac, addr(i.ipv4), addr(i.ipv6), i.peer === undefined ? '-' : `${i.peer.node}/${i.peer.name}`])
    }
  }
  table(rows)
  console.log(`  VIP ${topo.vip.ipv4} and ${topo.vip.ipv6}: on lo of the director${topo.shape === 'bridge' ? ' and of every real server (DR)' : ''}`)
}

/** The xvs data plane: the director program on the director, decap on the real servers (for tun). */
function dataPlane(topo: Topology, config: string): void {
  const model = parseConfig(config, 'demo.yaml', 'yaml').model
  for (const rs of topo.reals) withNetns(rs.ns, () => loadDecap({ ifaces: [rs.iface('eth0').name] }))
  const res = withNetns(topo.director.ns, () => {
    const { dataplane, attached } = loadDataplane({ ifaces: [topo.director.front.name] })
    try {
      return { attached, applied: applyModel(dataplane, model) }
    } finally {
      dataplane.close()
    }
  })
  heading(`xvs loaded on dir/${res.attached.join(', ')}; decap on ${topo.reals.map((r) => `${r.name}/eth0`).join(', ')}`)
  console.log(config.trimEnd().split('\n').map((l) => `  ${l}`).join('\n'))
  console.log(`  applied: ${res.applied.services.added} services, ${res.applied.reals.added} real servers, ${res.applied.slotsWritten} table slots`)
}

/** What runs XDP where, read back from the kernel (`ip -n <ns> link show`). */
function describeAttachments(topo: Topology): void {
  heading('XDP attachments (ip -n <ns> link show)')
  for (const node of topo.nodes) {
    const lines = topo.linkShow(node).split('\n')
    for (let i = 0; i < lines.length; i++) {
      const prog = /prog\/xdp id (\d+) name (\S+)/.exec(lines[i]!)
      if (prog === null) continue
      // The interface line is the last one above that starts with "<ifindex>:".
      let j = i
      while (j > 0 && !/^\d+:/.test(lines[j]!)) j--
      const dev = /^\d+: ([^:@]+)/.exec(lines[j]!)?.[1] ?? '?'
      console.log(`  ${node.ns.padEnd(14)} ${dev.padEnd(6)} ${prog[2]} (prog id ${prog[1]})`)
    }
  }
  heading(`ip -n ${topo.director.ns} link show`)
  for (const line of topo.linkShow(topo.director).trimEnd().split('\n')) console.log(`  ${line}`)
}

/** Traffic: new HTTP connections to each VIP, and who answered them. */
async function traffic(topo: Topology, title: string, expect: Record<string, Record<string, number>>): Promise<boolean> {
  heading(title)
  let allOk = true
  const rows = [['VIP', 'requests', ...topo.reals.map((r) => `${r.name} (want)`), 'errors']]
  for (const [vip, want] of Object.entries(expect)) {
    const total = Object.values(want).reduce((a, b) => a + b, 0)
    const res = await httpRequests(topo, topo.client, { host: vip, count: total, concurrency: 4, deadlineMs: 60_000 })
    const errors = Object.entries(res.errors).map(([why, n]) => `${why} x${n}`).join(', ') || '-'
    rows.push([vip, String(total), ...topo.reals.map((r) => `${res.byResponder[r.name] ?? 0} (${want[r.name] ?? 0})`), errors])
    // Per-CPU cursors may each be a step apart from the exact sequence: allow 2% either way.
    for (const r of topo.reals) if (Math.abs((res.byResponder[r.name] ?? 0) - (want[r.name] ?? 0)) > Math.max(2, total * 0.02)) allOk = false
    if (res.failed > 0) allOk = false
  }
  table(rows)
  return allOk
}

/** What the data plane counted, read back from its maps. */
function describeStats(topo: Topology): void {
  withNetns(topo.director.ns, () => {
    const dp = findDataplane()
    if (!dp) return
    try {
      heading('counters (xvs_counters, non-zero)')
      const names = statCounterNames()
      const rows = [['counter', 'value']]
      for (const [i, name] of names.entries()) {
        const key = Buffer.alloc(4)
        key.writeUInt32LE(i)
        const v = (dp.maps.counters.lookupPerCpu(key) ?? []).reduce((s, b) => s + b.readBigUInt64LE(0), 0n)
        if (v > 0n) rows.push([name, String(v)])
      }
      table(rows)
    } finally {
      dp.close()
    }
  })
}

async function main(): Promise<number> {
  const log = createLogger({ name: 'xvs-demo', level: process.env.XVS_LOG_LEVEL ?? 'warn' })
  const topo = await createTopology({ shape: 'bridge', reals: 3, log })
  try {
    describeLab(topo)
    await startHttpServers(topo)
    const [r1, r2, r3] = topo.reals.map((r) => r.ipv4)
    const [s1, s2, s3] = topo.reals.map((r) => r.ipv6)
    const config = (w3: number): string => `services:
  - vip: ${topo.vip.ipv4}             # direct routing, IPVS weighted round robin
    port: 80
    scheduler: wrr
    real_servers:
      - { address: ${r1}, weight: 1, method: dr }
      - { address: ${r2}, weight: 2, method: dr }
      - { address: ${r3}, weight: ${w3}, method: dr }
  - vip: "${topo.vip.ipv6}"             # IPv6-in-IPv6 tunnel, round robin
    port: 80
    scheduler: rr
    real_servers:
      - { address: "${s1}", method: tun }
      - { address: "${s2}", method: tun }
      - { address: "${s3}", method: tun }
`
    dataPlane(topo, config(3))
    describeAttachments(topo)
    let ok = await traffic(topo, `HTTP from ${topo.client.ns} through the VIPs: 600 new connections each`, {
      [topo.vip.ipv4]: { rs1: 100, rs2: 200, rs3: 300 },
      [topo.vip.ipv6]: { rs1: 200, rs2: 200, rs3: 200 },
    })
    withNetns(topo.director.ns, () => {
      const dp = findDataplane()!
      try { applyModel(dp, parseConfig(config(0), 'demo.yaml', 'yaml').model) } finally { dp.close() }
    })
    heading('rs3 quiesced (weight 0): no new connections for it')
    ok = (await traffic(topo, `HTTP through ${topo.vip.ipv4} again: 300 new connections`, {
      [topo.vip.ipv4]: { rs1: 100, rs2: 200, rs3: 0 },
    })) && ok
    describeStats(topo)
    heading(ok ? 'xvs balanced every request as configured' : 'some requests failed or strayed')
    return ok ? 0 : 1
  } finally {
    try { withNetns(topo.director.ns, () => unloadDataplane()) } catch { /* the lab goes anyway */ }
    topo.destroy()
    console.log(`\nlab ${topo.id} removed (${topo.namespaces.length} namespaces deleted)`)
  }
}

main().then(
  code => {
    process.exitCode = code
  },
  (err: unknown) => {
    const hint = err instanceof XvsError && err.hint !== undefined ? `\n  hint: ${err.hint}` : ''
    console.error(`demo failed: ${err instanceof Error ? err.message : String(err)}${hint}`)
    process.exitCode = 1
  },
)
