// SPDX-License-Identifier: GPL-2.0-only
// Gratuitous ARP and unsolicited NA frames field by field, the NA checksum against an independent
// RFC 1071 sum, and keepalived's garp_master_* repeat schedule.
import t from 'tap'
import { ArgumentError } from '../../src/errors'
import { buildGratuitousArp, buildUnsolicitedNa, garpSchedule, ipv6MulticastMac } from '../../src/ha/garp'

function rfc1071(bytes: number[]): number {
  let acc = 0
  for (let i = 0; i < bytes.length; i += 2) {
    acc += (bytes[i]! << 8) | (i + 1 < bytes.length ? bytes[i + 1]! : 0)
    if (acc > 0xffff) acc = (acc & 0xffff) + 1
  }
  return ~acc & 0xffff
}
const hex = (b: Buffer): string => b.toString('hex')
const MAC = '02:00:5e:10:20:30'

t.test('gratuitous ARP request, as keepalived and arping -U send it', async (t) => {
  const f = buildGratuitousArp({ ip: '192.0.2.10', mac: MAC })
  t.equal(f.length, 42, 'Ethernet 14 + ARP 28')
  t.equal(hex(f.subarray(0, 6)), 'ffffffffffff', 'Ethernet destination: broadcast')
  t.equal(hex(f.subarray(6, 12)), '02005e102030', 'Ethernet source: our MAC')
  t.equal(f.readUInt16BE(12), 0x0806, 'ethertype ARP')
  t.equal(f.readUInt16BE(14), 1, 'hardware type Ethernet')
  t.equal(f.readUInt16BE(16), 0x0800, 'protocol type IPv4')
  t.equal(f[18], 6, 'hardware length')
  t.equal(f[19], 4, 'protocol length')
  t.equal(f.readUInt16BE(20), 1, 'operation: request')
  t.equal(hex(f.subarray(22, 28)), '02005e102030', 'sender hardware address')
  t.same([...f.subarray(28, 32)], [192, 0, 2, 10], 'sender protocol address: the VIP')
  t.equal(hex(f.subarray(32, 38)), 'ffffffffffff', 'target hardware address: broadcast')
  t.same([...f.subarray(38, 42)], [192, 0, 2, 10], 'target protocol address: the VIP again (gratuitous)')
})

t.test('gratuitous ARP reply, as arping -A sends it', async (t) => {
  const f = buildGratuitousArp({ ip: '10.9.8.7', mac: Buffer.from([1, 2, 3, 4, 5, 6]), op: 'reply' })
  t.equal(hex(f.subarray(0, 6)), 'ffffffffffff', 'still broadcast')
  t.equal(f.readUInt16BE(20), 2, 'operation: reply')
  t.equal(hex(f.subarray(32, 38)), '010203040506', 'target hardware address: our own')
  t.same([...f.subarray(28, 32)], [10, 9, 8, 7])
  t.same([...f.subarray(38, 42)], [10, 9, 8, 7])
  const z = buildGratuitousArp({ ip: '10.9.8.7', mac: MAC, targetMac: '00:00:00:00:00:00' })
  t.equal(hex(z.subarray(32, 38)), '000000000000', 'RFC 5227 announcement style: target MAC zero, on request')
  t.throws(() => buildGratuitousArp({ ip: '2001:db8::1', mac: MAC }), ArgumentError, 'IPv6 VIP')
  t.throws(() => buildGratuitousArp({ ip: '10.0.0.1', mac: '02:00:5e:10:20' }), ArgumentError, 'short MAC')
})

t.test('unsolicited neighbour advertisement, every field', async (t) => {
  const f = buildUnsolicitedNa({ target: '2001:db8::10', mac: MAC, src: 'fe80::1' })
  t.equal(f.length, 86, 'Ethernet 14 + IPv6 40 + NA 24 + option 8')
  t.equal(hex(f.subarray(0, 6)), '333300000001', 'Ethernet destination: 33:33 + low 32 bits of ff02::1')
  t.equal(hex(f.subarray(6, 12)), '02005e102030', 'Ethernet source')
  t.equal(f.readUInt16BE(12), 0x86dd, 'ethertype IPv6')
  const ip = f.subarray(14, 54)
  t.equal(ip[0]! >> 4, 6, 'IP version 6')
  t.equal(ip.readUInt32BE(0) & 0x0fffffff, 0, 'traffic class and flow label 0')
  t.equal(ip.readUInt16BE(4), 32, 'payload length')
  t.equal(ip[6], 58, 'next header ICMPv6')
  t.equal(ip[7], 255, 'hop limit 255 (RFC 4861 §7.1.2: receivers drop anything else)')
  t.equal(hex(ip.subarray(8, 24)), 'fe800000000000000000000000000001', 'source: link-local')
  t.equal(hex(ip.subarray(24, 40)), 'ff020000000000000000000000000001', 'destination: all-nodes ff02::1')
  const na = f.subarray(54)
  t.equal(na[0], 136, 'ICMPv6 type 136 (Neighbor Advertisement)')
  t.equal(na[1], 0, 'code 0')
  t.equal(na[4], 0x20, 'flags: R=0, S=0 (unsolicited), O=1 (override)')
  t.same([...na.subarray(5, 8)], [0, 0, 0], 'reserved')
  t.equal(hex(na.subarray(8, 24)), '20010db8000000000000000000000010', 'target address: the VIP')
  t.equal(na[24], 2, 'option type 2: target link-layer address')
  t.equal(na[25], 1, 'option length 1 (8 octets)')
  t.equal(hex(na.subarray(26, 32)), '02005e102030', 'option: our MAC')
  const pseudo = [...ip.subarray(8, 24), ...ip.subarray(24, 40), 0, 0, 0, 32, 0, 0, 0, 58]
  const zeroed = [...na.subarray(0, 2), 0, 0, ...na.subarray(4)]
  t.equal(na.readUInt16BE(2), rfc1071([...pseudo, ...zeroed]), 'checksum over the RFC 2460 pseudo-header and the message')
  t.equal(rfc1071([...pseudo, ...na]), 0, 'the whole sums to zero')
})

t.test('NA flags and destinations', async (t) => {
  const r = buildUnsolicitedNa({ target: 'fe80::10', mac: MAC, src: 'fe80::1', router: true })
  t.equal(r[54 + 4], 0xa0, 'router + override')
  const n = buildUnsolicitedNa({ target: 'fe80::10', mac: MAC, src: 'fe80::1', override: false })
  t.equal(n[54 + 4], 0x00, 'neither')
  const d = buildUnsolicitedNa({ target: 'fe80::10', mac: MAC, src: 'fe80::1', dst: 'ff02::1:ff00:10' })
  t.equal(hex(d.subarray(0, 6)), '3333ff000010', 'solicited-node group maps to its MAC')
  const ip = d.subarray(14, 54)
  const na = d.subarray(54)
  t.equal(rfc1071([...ip.subarray(8, 40), 0, 0, 0, 32, 0, 0, 0, 58, ...na]), 0, 'checksum uses the given destination')
  t.equal(hex(ipv6MulticastMac('ff02::12')), '333300000012', 'VRRP group MAC')
  t.throws(() => buildUnsolicitedNa({ target: '10.0.0.1', mac: MAC, src: 'fe80::1' }), ArgumentError, 'IPv4 target')
  t.throws(() => buildUnsolicitedNa({ target: 'fe80::1', mac: 'nope', src: 'fe80::1' }), ArgumentError, 'bad MAC')
})

t.test('repeat schedule: keepalived defaults', async (t) => {
  const s = garpSchedule({}, 60_000)
  t.same(s.map((x) => [x.atMs, x.burst, x.repeat]), [
    [0, 'master', 0], [0, 'master', 1], [0, 'master', 2], [0, 'master', 3], [0, 'master', 4],
    [5000, 'master-delay', 0], [5000, 'master-delay', 1], [5000, 'master-delay', 2], [5000, 'master-delay', 3], [5000, 'master-delay', 4],
  ], 'garp_master_repeat 5 at once, again after garp_master_delay 5 s, no refresh')
})

t.test('repeat schedule: delay off, refresh on', async (t) => {
  const s = garpSchedule({ masterDelayMs: 0, masterRepeat: 1, masterRefreshMs: 10_000, masterRefreshRepeat: 2 }, 35_000)
  t.same(s.map((x) => [x.atMs, x.burst, x.repeat]), [
    [0, 'master', 0],
    [10_000, 'refresh', 0], [10_000, 'refresh', 1],
    [20_000, 'refresh', 0], [20_000, 'refresh', 1],
    [30_000, 'refresh', 0], [30_000, 'refresh', 1],
  ])
  t.same(garpSchedule({ masterDelayMs: 0, masterRepeat: 1, masterRefreshMs: 10_000 }, 20_000).map((x) => x.atMs), [0, 10_000], 'horizon is exclusive')
  t.same(garpSchedule({ masterRepeat: 0, masterDelayMs: 0 }, 1000), [], 'nothing to send')
})

t.test('repeat schedule: garp_interval spaces every message, per VIP', async (t) => {
  const s = garpSchedule({ masterRepeat: 2, masterDelayMs: 150, intervalMs: 100, addressCount: 2 }, 10_000)
  t.same(s.map((x) => [x.atMs, x.burst, x.repeat, x.address]), [
    [0, 'master', 0, 0], [100, 'master', 0, 1], [200, 'master', 1, 0], [300, 'master', 1, 1],
    // the delayed burst is due at 150 but queues behind the first one
    [400, 'master-delay', 0, 0], [500, 'master-delay', 0, 1], [600, 'master-delay', 1, 0], [700, 'master-delay', 1, 1],
  ])
  t.same(garpSchedule({ masterRepeat: 3, masterDelayMs: 0, intervalMs: 100 }, 250).map((x) => x.atMs), [0, 100, 200], 'cut at the horizon')
  t.throws(() => garpSchedule({ masterRepeat: -1 }, 1000), ArgumentError)
  t.throws(() => garpSchedule({ intervalMs: Number.NaN }, 1000), ArgumentError)
})
