// SPDX-License-Identifier: GPL-2.0-only
// Persistence with real TCP through namespaces (dr): HTTP and HTTPS ports bundled in one persistent
// service group send each client's connections to both ports to the same real server, though the
// scheduler underneath is rr; a plain persistent service keeps a client on one server across many
// connections.
import t from 'tap'
import { needsRoot } from '../helpers/root'
import { xvsLab } from '../helpers/xvs-lab'
import { httpRequests, startHttpServers } from '../../src/lab/http'
import { ConnKey, ConnKind } from '../../src/dataplane/abi'

t.test('a persistent HTTP/HTTPS group: each client\'s two connections go to one server', needsRoot, async (t) => {
  const lab = await xvsLab(t, { reals: 3 })
  const { topo } = lab
  await startHttpServers(topo, topo.reals, { port: 443 }) // the "HTTPS" port: plain HTTP is enough to see who answers
  lab.load()
  lab.apply(`services:
  - group: 80443
    scheduler: rr
    persistence: { timeout: 300 }
    match:
      - { vip: ${topo.vip.ipv4}, protocol: tcp, ports: "80" }
      - { vip: ${topo.vip.ipv4}, protocol: tcp, ports: "443" }
    real_servers:
${topo.reals.map((r) => `      - { address: ${r.ipv4}, method: dr }`).join('\n')}
`)
  const dev = topo.client.interfaces[0]!.name
  const clients = Array.from({ length: 6 }, (_, i) => `10.200.0.${50 + i}`)
  for (const c of clients) topo.exec(topo.client, ['ip', 'addr', 'add', `${c}/24`, 'dev', dev])
  const servers = new Set<string>()
  for (const c of clients) {
    const http = await httpRequests(topo, topo.client, { host: topo.vip.ipv4, port: 80, count: 3, localAddress: c })
    const https = await httpRequests(topo, topo.client, { host: topo.vip.ipv4, port: 443, count: 3, localAddress: c })
    const who = new Set([...Object.keys(http.byResponder), ...Object.keys(https.byResponder)])
    t.same([http.ok, https.ok], [3, 3], `${c}: 3 requests to :80 and 3 to :443 answered`)
    t.equal(who.size, 1, `${c}: all six to one server (${[...who].join(',')})`)
    for (const s of who) servers.add(s)
  }
  t.ok(servers.size >= 2, `the clients were spread by rr over ${servers.size} servers`)
  const templates = lab.inDirector((dp) => dp.maps.conns.lookupBatch(8192).filter((e) => ConnKey.decode(e.key).kind === ConnKind.TEMPLATE).length)
  t.equal(templates, clients.length, 'one template per client, shared by both ports')
})

t.test('a persistent service with a /24 netmask: clients of one network share a server', needsRoot, async (t) => {
  const lab = await xvsLab(t, { reals: 2 })
  const { topo } = lab
  lab.load()
  lab.apply(`services:
  - vip: ${topo.vip.ipv4}
    port: 80
    scheduler: rr
    persistence: { timeout: 300, netmask: 255.255.255.0 }
    real_servers:
${topo.reals.map((r) => `      - { address: ${r.ipv4}, method: dr }`).join('\n')}
`)
  const dev = topo.client.interfaces[0]!.name
  for (const c of ['10.200.0.70', '10.200.0.71']) topo.exec(topo.client, ['ip', 'addr', 'add', `${c}/24`, 'dev', dev])
  const all = new Set<string>()
  for (const c of [topo.client.ipv4, '10.200.0.70', '10.200.0.71']) {
    const r = await httpRequests(topo, topo.client, { host: topo.vip.ipv4, count: 10, concurrency: 2, localAddress: c })
    t.equal(r.ok, 10, `${c}: 10 answered`)
    for (const s of Object.keys(r.byResponder)) all.add(s)
  }
  t.equal(all.size, 1, `30 connections from three clients of 10.200.0.0/24: one server (${[...all].join(',')})`)
})
