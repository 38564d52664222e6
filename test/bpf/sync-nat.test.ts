// SPDX-License-Identifier: GPL-2.0-only
// Connection sync carries nat and fullnat connections whole: director A's entries (made by its packet
// path) travel through the wire format to director B, which installs them with their reply entries
// built from its own real server entries, so B translates the replies of A's connections: the
// failover case. Two loaded (unattached) directors with the same model; packets through
// BPF_PROG_TEST_RUN (no routes here: translated packets go to the stack, translated all the same).
import t from 'tap'
import { needsRoot } from '../helpers/root'
import { ConnFlags, ConnKey, Proto } from '../../src/dataplane/abi'
import { loadDetached, type Dataplane } from '../../src/dataplane/loader'
import { applyModel } from '../../src/dataplane/writer'
import { readCounters } from '../../src/dataplane/reader'
import { parseConfig } from '../../src/config'
import { DataplaneConnTable, decodeMessage, encodeMessage, fromSyncEntry, MsgType, toSyncEntry } from '../../src/ha/sync'
import { ether, ipv4, parseFrame, tcp } from '../../src/lab/packet'
import { CLIENT_MAC, DIRECTOR_MAC } from '../helpers/director'
import { loHop, NAT_MODEL, tcpPkt } from '../helpers/sched'

// B lists the services the other way round (and one more first): its real ids differ from A's, and
// the sync maps them by name.
const MODEL_B = `settings:
  local_addresses: [10.2.0.1]
services:
  - vip: 10.0.0.99
    port: 80
    scheduler: rr
    real_servers:
      - { address: 10.1.0.9, method: dr }
  - vip: 10.0.0.10
    port: 81
    scheduler: rr
    real_servers:
      - { address: 10.1.0.2, port: 8081, method: fullnat }
  - vip: 10.0.0.10
    port: 80
    scheduler: rr
    real_servers:
      - { address: 10.1.0.1, port: 8080, method: nat }
`
const KEY = Buffer.alloc(32, 7)

function director(t: { teardown(fn: () => void): void }, model: string): Dataplane {
  const dp = loadDetached({ connTableSize: 4096 })
  t.teardown(() => dp.close())
  applyModel(dp, parseConfig(model, 'm.yaml', 'yaml').model, { resolve: loHop })
  return dp
}

const reply = (src: string, sport: number, dst: string, dport: number): Buffer =>
  ether({ dst: DIRECTOR_MAC, src: CLIENT_MAC }, ipv4({ src, dst, ttl: 63 }, tcp({ sport, dport, flags: 'SA' })))

t.test('nat and fullnat connections synced to another director: its replies are translated there', needsRoot, async (t) => {
  const a = director(t, NAT_MODEL)
  const b = director(t, MODEL_B)
  a.prog.testRun(tcpPkt({ sport: 40000, dport: 80, flags: 'S' }))
  a.prog.testRun(tcpPkt({ sport: 40001, dport: 81, flags: 'S' }))
  const ta = new DataplaneConnTable(() => a)
  const tb = new DataplaneConnTable(() => b)
  const now = process.hrtime.bigint()
  const entries = ta.entries().map((e) => toSyncEntry(e, ta.idMap(), now)!)
  t.equal(entries.length, 2, 'two connections on A')
  const full = entries.find((e) => e.vport === 81)!
  t.ok(full.flags & ConnFlags.FULLNAT, 'the fullnat one says so')
  t.equal(full.laddr, '10.2.0.1', 'with its local address')
  t.ok(full.lport! >= 1024 && full.lport! <= 32767, `and a local port in the default range (${full.lport})`)

  const wire = encodeMessage({ type: MsgType.DELTA, flags: 0, senderId: 1, seq: 1n, nonce: 1n, part: 0, snapshotId: 0, entries }, KEY)
  const d = decodeMessage(wire, KEY)
  if (!d.ok) throw new Error(`decode: ${d.reason}`)
  const raw = d.msg.entries.map((e) => fromSyncEntry(e, tb.idMap(), process.hrtime.bigint())!)
  t.equal(tb.install(raw), 2, 'B installs both')
  const revB = [...b.maps.natRev.entries()].map((e) => ({ key: ConnKey.decode(e.key), flow: ConnKey.decode(e.value) }))
  const revA = [...a.maps.natRev.entries()].map((e) => ({ key: ConnKey.decode(e.key), flow: ConnKey.decode(e.value) }))
  const order = (x: typeof revA) => [...x].sort((p, q) => p.flow.cport - q.flow.cport)
  t.same(order(revB), order(revA), 'with the same reply entries as A')
  const realOf = (dp: Dataplane, cport: number) => dp.maps.conns.lookup(ConnKey.encode({ caddr: '10.0.0.1', vaddr: '10.0.0.10', cport, vport: cport === 40000 ? 80 : 81, proto: Proto.TCP }))!.readUInt32LE(16)
  t.not(realOf(a, 40000), realOf(b, 40000), 'under B\'s own real ids')

  // Replies arriving at B: translated back to VIP:vport -> client.
  const r1 = b.prog.testRun(reply('10.1.0.1', 8080, '10.0.0.1', 40000))
  const r2 = b.prog.testRun(reply('10.1.0.2', 8081, '10.2.0.1', full.lport!))
  t.same(readCounters(b).nat_reply, 2, 'B translated both replies')
  const p1 = parseFrame(r1.data).ip!
  const p2 = parseFrame(r2.data).ip!
  t.same([p1.src, p1.dst, (p1.l4 as { sport: number }).sport, (p1.l4 as { dport: number }).dport], ['10.0.0.10', '10.0.0.1', 80, 40000], 'nat reply: VIP:80 -> client')
  t.same([p2.src, p2.dst, (p2.l4 as { sport: number }).sport, (p2.l4 as { dport: number }).dport], ['10.0.0.10', '10.0.0.1', 81, 40001], 'fullnat reply: VIP:81 -> client:cport')
})
