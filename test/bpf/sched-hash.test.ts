// SPDX-License-Identifier: GPL-2.0-only
// sh and dh through BPF_PROG_TEST_RUN: 256-bucket tables from src/sched (sh: each server `weight`
// consecutive buckets; dh: servers dealt round-robin), the bucket predicted flow by flow from a mirror
// of the data plane's hash, sh's port flag, and an unavailable bucket: no server, unless sh's fallback
// flag walks on.
import t, { type Test } from 'tap'
import { needsRoot } from '../helpers/root'
import { Director, flowHash, fmix, runRow } from '../helpers/director'
import { SchedMaps, VIP, real, realOf, tcpPkt } from '../helpers/sched'
import { ConnKey, Proto, RealFlags, Sched, ServiceFlags } from '../../src/dataplane/abi'
import { buildDhTable, buildShTable } from '../../src/sched'

const SEED = 0x5eed
const SH = ServiceFlags.HASH_SRC_ADDR

function shService(t: Test, weights: number[], flags: number): { d: Director; m: SchedMaps; table: number[] } {
  const d = Director.load(t)
  d.settings({ hash_seed: SEED })
  const table = [...buildShTable(weights)].map((i) => (i < 0 ? 0 : i + 1))
  d.addService({ id: 0, vip: VIP, port: 80, sched: Sched.SH, flags, reals: weights.map((w, i) => real(i + 1, { weight: w })), table })
  return { d, m: new SchedMaps(t, d), table }
}

const bucketOf = (src: string, sport: number, flags: number): number =>
  flowHash({ caddr: src, vaddr: VIP, cport: sport, vport: 80, proto: Proto.TCP }, flags, SEED) % 256

const pick = (d: Director, src: string, sport: number): number => {
  const r = d.run(tcpPkt({ src, sport }))
  return r.action === 'tx' ? realOf(r.data) : 0
}

t.test('sh: every client where its bucket says, all its connections to one server', needsRoot, async (t) => {
  const { d, table } = shService(t, [1, 2, 3], SH)
  t.same([table.slice(0, 6), table.filter((x) => x === 3).length], [[1, 2, 2, 3, 3, 3], 127], 'the table: 1 2 2 3 3 3 ..., server 3 in 127 of 256 buckets')
  let predicted = 0
  const seen = new Set<number>()
  for (let c = 1; c <= 40; c++) {
    const src = `10.7.${c}.${c}`
    const want = table[bucketOf(src, 0, SH)]!
    const got = [0, 1, 2, 3].map((i) => pick(d, src, 30000 + 2 * i))
    if (got.every((x) => x === want)) predicted++
    seen.add(want)
  }
  t.equal(predicted, 40, 'each of 40 clients: its four connections to its bucket\'s server')
  t.equal(seen.size, 3, 'the clients spread over all three servers')
})

t.test('sh-port: the source port picks the bucket too', needsRoot, async (t) => {
  const flags = SH | ServiceFlags.HASH_SRC_PORT
  const { d, table } = shService(t, [1, 1, 1, 1], flags)
  let predicted = 0
  const servers = new Set<number>()
  for (let i = 0; i < 32; i++) {
    const sport = 40000 + 2 * i // even, as Linux picks them
    const got = pick(d, '10.7.0.1', sport)
    if (got === table[bucketOf('10.7.0.1', sport, flags)]) predicted++
    servers.add(got)
  }
  t.equal(predicted, 32, 'every connection where the (address, port) bucket says')
  t.ok(servers.size >= 3, `one client's connections spread over ${servers.size} servers`)
})

t.test('sh: an unavailable bucket gives no server; sh-fallback walks on', needsRoot, async (t) => {
  for (const [how, extra, conns] of [
    ['weight 0', { weight: 0 }, undefined], ['quiesced', { flags: RealFlags.QUIESCED }, undefined],
    ['overloaded', { upper_threshold: 2 }, { overload_upper: 2 }],
  ] as const) {
    for (const fallback of [false, true]) {
      const flags = SH | (fallback ? ServiceFlags.SCHED_FALLBACK : 0)
      const { d, m, table } = shService(t, [1, 1, 1], flags)
      const src = [...Array(50).keys()].map((i) => `10.8.0.${i + 1}`).find((s) => table[bucketOf(s, 0, flags)] === 2)!
      d.setReal({ service_id: 0, ...real(2), ...extra })
      if (conns) m.setConns(2, conns)
      const b = bucketOf(src, 0, flags)
      // the walk goes on from the next bucket round the table
      let next = 0
      for (let i = 1; i < 256 && !next; i++) if (table[(b + i) % 256] !== 2) next = table[(b + i) % 256]!
      if (fallback) t.equal(pick(d, src, 1000), next, `${how}, sh-fallback: the next bucket's server (${next})`)
      else runRow(t, d, { description: `${how}, no fallback: no server`, input: tcpPkt({ src, sport: 1000 }), verdict: 'drop', counters: { drop_no_backend: 1 } })
    }
  }
  // Weight 0 in the table itself (the builder's empty buckets) and the walk over all of them.
  const { d, table } = shService(t, [0, 0, 1], SH | ServiceFlags.SCHED_FALLBACK)
  const empty = table.filter((x) => x === 0).length
  t.ok(empty > 100, `two weight-0 servers: ${empty} buckets of 256 empty (the kernel's layout gives them a bucket per turn)`)
  const got = new Set([...Array(20).keys()].map((i) => pick(d, `10.9.0.${i + 1}`, 1000)))
  t.same([...got], [3], 'with the fallback, every client reaches the one server left')
})

/** The data plane's dh hash (xvs_dest_hash): murmur3 over the destination address. */
function destHash(vaddr: string, seed: number): number {
  const k = ConnKey.encode({ caddr: '0.0.0.0', vaddr, cport: 0, vport: 0, proto: Proto.TCP })
  const rol = (x: number, r: number): number => ((x << r) | (x >>> (32 - r))) >>> 0
  let w = Math.imul(k.readUInt32LE(16), 0xcc9e2d51)
  w = Math.imul(rol(w, 15), 0x1b873593)
  let h = (seed ^ w) >>> 0
  h = (Math.imul(rol(h, 13), 5) + 0xe6546b64) >>> 0
  return fmix((h ^ k[37]!) >>> 0)
}

t.test('dh: the destination address picks the bucket; an unavailable server gives none', needsRoot, async (t) => {
  const d = Director.load(t)
  d.settings({ hash_seed: SEED })
  const table = [...buildDhTable(3)].map((i) => i + 1)
  t.same(table.slice(0, 7), [1, 2, 3, 1, 2, 3, 1], 'servers dealt round-robin')
  // A port-0 service on a /32 per VIP: the destination varies with the VIP.
  const vips = ['10.0.5.1', '10.0.5.2', '10.0.5.3', '10.0.5.4', '10.0.5.5', '10.0.5.6']
  d.addService({ id: 0, vip: vips[0]!, port: 80, sched: Sched.DH, reals: [real(1), real(2), real(3)], table })
  vips.slice(1).forEach((v) => d.setService(v, 80, Proto.TCP, { id: 0, sched: Sched.DH, table_size: 256 }))
  let predicted = 0
  for (const v of vips) {
    const want = table[destHash(v, SEED) % 256]!
    const got = [1, 2, 3].map((i) => realOf(d.run(tcpPkt({ src: `10.6.0.${i}`, dst: v, sport: 2000 + i })).data))
    if (got.every((x) => x === want)) predicted++
  }
  t.equal(predicted, vips.length, 'every client of a destination goes to its bucket\'s server')
  const v = vips.find((x) => table[destHash(x, SEED) % 256] === 2)!
  d.setReal({ service_id: 0, ...real(2), flags: RealFlags.QUIESCED })
  runRow(t, d, { description: 'dh: the bucket\'s server quiesced: none (dh has no fallback)', input: tcpPkt({ dst: v, sport: 9000 }), verdict: 'drop', counters: { drop_no_backend: 1 } })
})
