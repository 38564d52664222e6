// SPDX-License-Identifier: GPL-2.0-only
// Address bytes, canonical text, byte-wise comparison and the RFC 1071 sum used by the HA packets.
import t from 'tap'
import {
  bytesToIp,
  bytesToMac,
  canonicalIp,
  compareIp,
  internetChecksum,
  ipFamily,
  ipToBytes,
  isLinkLocalV6,
  isMulticast,
  macToBytes,
  onesComplementSum,
} from '../../src/ha/inet'

t.test('IP text to bytes and back', async (t) => {
  t.same([...ipToBytes('192.168.1.254')!], [192, 168, 1, 254])
  t.equal(ipToBytes('2001:db8::1')!.toString('hex'), '20010db8000000000000000000000001')
  t.equal(ipToBytes('::')!.toString('hex'), '0'.repeat(32))
  t.equal(ipToBytes('::ffff:10.1.2.3')!.toString('hex'), '00000000000000000000ffff0a010203', 'trailing dotted quad')
  t.equal(ipToBytes('1:2:3:4:5:6:7:8')!.toString('hex'), '00010002000300040005000600070008')
  for (const bad of ['', '1.2.3', '1.2.3.4.5', '256.1.1.1', '01.1.1.1', '1.2.3.-1', ':::', '1::2::3', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7::8', 'fe80::1%eth0', 'g::1', '12345::']) {
    t.equal(ipToBytes(bad), undefined, `rejects '${bad}'`)
  }
  t.equal(ipFamily('10.0.0.1'), 4)
  t.equal(ipFamily('fe80::1'), 6)
  t.equal(ipFamily('nope'), undefined)
  t.equal(canonicalIp('2001:0DB8:0:0:0:0:0:1'), '2001:db8::1', 'RFC 5952: lower case, zeros compressed')
  t.equal(canonicalIp('2001:db8:0:1:0:0:0:1'), '2001:db8:0:1::1', 'the longest zero run')
  t.equal(canonicalIp('2001:0:0:1:0:0:1:1'), '2001::1:0:0:1:1', 'the first of equal runs')
  t.equal(canonicalIp('2001:db8:0:1:1:1:1:1'), '2001:db8:0:1:1:1:1:1', 'a single zero group is not compressed')
  t.equal(canonicalIp('::1'), '::1')
  t.equal(canonicalIp('1::'), '1::')
  t.equal(canonicalIp('::'), '::')
  t.equal(bytesToIp(Buffer.from([9, 0, 0, 10, 1, 2]), 2, 4), '0.10.1.2', 'at an offset')
})

t.test('comparison is unsigned, network order (the VRRP tie-break)', async (t) => {
  t.ok(compareIp('10.0.0.2', '10.0.0.1') > 0)
  t.ok(compareIp('10.0.0.10', '10.0.0.9') > 0, 'numeric, not textual')
  t.ok(compareIp('200.0.0.1', '100.255.255.255') > 0, 'high bit set is larger (unsigned)')
  t.equal(compareIp('fe80::1', 'FE80:0::1'), 0)
  t.ok(compareIp('fe80::1:0', 'fe80::ffff') > 0)
})

t.test('multicast, link-local, MAC', async (t) => {
  t.ok(isMulticast('224.0.0.18'))
  t.ok(isMulticast('239.255.255.255'))
  t.notOk(isMulticast('223.255.255.255'))
  t.notOk(isMulticast('240.0.0.1'))
  t.ok(isMulticast('ff02::12'))
  t.notOk(isMulticast('fe80::1'))
  t.ok(isLinkLocalV6('fe80::1'))
  t.ok(isLinkLocalV6('febf::1'))
  t.notOk(isLinkLocalV6('fec0::1'))
  t.notOk(isLinkLocalV6('10.0.0.1'))
  t.same([...macToBytes('00:1A:2b:3c:4d:5e')!], [0, 0x1a, 0x2b, 0x3c, 0x4d, 0x5e])
  t.same([...macToBytes('00-1a-2b-3c-4d-5e')!], [0, 0x1a, 0x2b, 0x3c, 0x4d, 0x5e])
  t.equal(macToBytes('00:1a:2b:3c:4d'), undefined)
  t.equal(macToBytes('00:1a:2b:3c:4d:5g'), undefined)
  t.equal(bytesToMac(Buffer.from([0, 0x1a, 0x2b, 0x3c, 0x4d, 0x5e])), '00:1a:2b:3c:4d:5e')
})

t.test('RFC 1071 sum', async (t) => {
  // RFC 1071 §3's example: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2.
  t.equal(onesComplementSum([Buffer.from('0001f203f4f5f6f7', 'hex')]), 0xddf2, 'the RFC 1071 worked example')
  t.equal(onesComplementSum([Buffer.from('0001f203', 'hex'), Buffer.from('f4f5f6f7', 'hex')]), 0xddf2, 'split across buffers')
  t.equal(onesComplementSum([Buffer.from('0001f2', 'hex'), Buffer.from('03f4f5f6f7', 'hex')]), 0xddf2, 'split at an odd byte')
  t.equal(onesComplementSum([Buffer.from('ff', 'hex')]), 0xff00, 'odd length pads with zero')
  t.equal(internetChecksum([Buffer.from('0001f203f4f5f6f7', 'hex')]), 0x220d)
  t.equal(onesComplementSum([Buffer.alloc(0)]), 0)
  t.equal(onesComplementSum([Buffer.alloc(70000, 0xff)]), 0xffff, 'long runs fold')
})
