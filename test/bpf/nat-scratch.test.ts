// SPDX-License-Identifier: GPL-2.0-only
// The translation's scratch space is per CPU and shared by every nat path: a path must never inherit
// what the previous packet's left there. An ICMP error from the client's side of a nat connection
// keeps its outer source (keep_saddr); the replies that follow on the same CPU must still get the
// VIP as their source. Alternating the two many times puts both on one CPU whatever the scheduler
// does. No routes here: replies and errors go to the stack, translated all the same.
import t from 'tap'
import { needsRoot } from '../helpers/root'
import { loadDetached } from '../../src/dataplane/loader'
import { applyModel } from '../../src/dataplane/writer'
import { readCounters } from '../../src/dataplane/reader'
import { parseConfig } from '../../src/config'
import { ether, icmp4, ipv4, parseFrame, tcp } from '../../src/lab/packet'
import { CLIENT_MAC, DIRECTOR_MAC } from '../helpers/director'
import { loHop, tcpPkt } from '../helpers/sched'

const VIP = '10.0.0.10'
const CIP = '10.0.0.1'
const RIP = '10.1.0.1'
const ROUTER = '10.0.0.254'

t.test('a reply after an ICMP error on the same CPU: source still the VIP', needsRoot, async (t) => {
  const dp = loadDetached({ connTableSize: 4096 })
  t.teardown(() => dp.close())
  applyModel(dp, parseConfig(`services:
  - vip: ${VIP}
    port: 80
    scheduler: rr
    real_servers:
      - { address: ${RIP}, port: 8080, method: nat }
`, 'm.yaml', 'yaml').model, { resolve: loHop })
  t.equal(dp.prog.testRun(tcpPkt({ src: CIP, dst: VIP, sport: 40000, dport: 80, flags: 'S' })).action, 'tx', 'SYN translated, sent to the real server\'s resolved next hop')
  // a router on the client's side reports our reply VIP:80 -> client as undeliverable
  const quoted = ipv4({ src: VIP, dst: CIP }, tcp({ sport: 80, dport: 40000, flags: 'SA' }))
  const err = ether({ dst: DIRECTOR_MAC, src: CLIENT_MAC }, ipv4({ src: ROUTER, dst: VIP, ttl: 60 }, icmp4({ type: 3, code: 1, body: quoted, bodyLength: 28 })))
  const reply = ether({ dst: DIRECTOR_MAC, src: CLIENT_MAC }, ipv4({ src: RIP, dst: CIP, ttl: 63 }, tcp({ sport: 8080, dport: 40000, flags: 'SA' })))
  const sources = new Set<string>()
  let errorsKept = 0
  for (let i = 0; i < 40; i++) {
    const e = parseFrame(dp.prog.testRun(err).data).ip!
    if (e.src === ROUTER && e.dst === RIP) errorsKept++
    sources.add(parseFrame(dp.prog.testRun(reply).data).ip!.src)
  }
  t.equal(errorsKept, 40, 'each error goes to the real server, its outer source kept')
  t.same([...sources], [VIP], 'every reply leaves from the VIP')
  const c = readCounters(dp)
  t.same([c.nat_icmp, c.nat_reply], [40, 40], 'forty of each translated')
})
