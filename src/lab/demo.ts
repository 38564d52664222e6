// SPDX-License-Identifier: GPL-2.0-only
// `make demo`: a namespace lab, shown working, then removed. This is an entry point, so it prints to
// stdout. The shape stays: build the lab -> bring up the data plane -> show it -> drive traffic -> tear
// down. For now the data plane is a stand-in (xdp_pass on the director) and the traffic goes to each
// real server directly; a later change replaces dataPlane() and traffic() with "load xvs, add a service,
// balance requests through the VIP".
import { XvsError } from '../errors'
import { createLogger } from '../log'
import { httpRequests, startHttpServers } from './http'
import { createTopology, xdpPassObject, type LabInterface, type Topology } from './topology'

const REQUESTS_PER_TARGET = 5

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

/** Stand-in for the xvs data plane: the trivial XDP program on the director's interface(s). */
function dataPlane(topo: Topology): void {
  const object = xdpPassObject()
  const devices = new Set([topo.director.front.name, topo.director.back.name])
  for (const dev of devices) topo.attachXdp(topo.director, dev, object, 'xdp')
  heading(`data plane: ${object} attached to ${[...devices].map(d => `dir/${d}`).join(', ')}`)
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

/** Traffic: for now, HTTP from the client to each real server's own addresses. */
async function traffic(topo: Topology): Promise<boolean> {
  await startHttpServers(topo)
  heading(`HTTP from ${topo.client.ns}: ${REQUESTS_PER_TARGET} new connections per address`)
  let allOk = true
  const rows = [['target', 'answered by', 'errors']]
  for (const rs of topo.reals) {
    for (const host of [rs.ipv4, rs.ipv6]) {
      const res = await httpRequests(topo, topo.client, { host, count: REQUESTS_PER_TARGET, timeoutMs: 2000, deadlineMs: 10_000 })
      const answered = Object.entries(res.byResponder).map(([name, n]) => `${name} x${n}`).join(', ') || '-'
      const errors = Object.entries(res.errors).map(([why, n]) => `${why} x${n}`).join(', ') || '-'
      rows.push([`${rs.name} ${host}`, answered, errors])
      if (res.failed > 0 || res.byResponder[rs.name] !== REQUESTS_PER_TARGET) allOk = false
    }
  }
  table(rows)
  return allOk
}

async function main(): Promise<number> {
  const log = createLogger({ name: 'xvs-demo', level: process.env.XVS_LOG_LEVEL ?? 'warn' })
  const topo = await createTopology({ shape: 'bridge', reals: 2, log })
  try {
    describeLab(topo)
    dataPlane(topo)
    describeAttachments(topo)
    const ok = await traffic(topo)
    heading(ok ? 'the lab works' : 'some requests failed')
    return ok ? 0 : 1
  } finally {
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
