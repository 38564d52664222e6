// SPDX-License-Identifier: GPL-2.0-only
// Address, port and netmask helpers every parser shares.
import t from 'tap'
import { familyOf, formatHostPort, maskToPrefix, parseIp, parseNetmask, parsePort, prefixToMask, splitHostPort } from '../../src/model/addr'

t.test('parseIp canonicalizes', async (t) => {
  t.same(parseIp('192.0.2.1'), { address: '192.0.2.1', family: 4 })
  t.same(parseIp('2001:DB8:0:0:0::1'), { address: '2001:db8::1', family: 6 })
  t.same(parseIp('::ffff:192.0.2.1'), { address: '::ffff:c000:201', family: 6 })
  for (const bad of ['192.0.2', '192.0.2.256', '01.2.3.4', 'fe80::1%eth0', 'www.example.com', '']) t.equal(parseIp(bad), undefined, bad)
  t.equal(familyOf('2001:db8::1'), 6)
})

t.test('host:port as ipvsadm writes it', async (t) => {
  t.same(splitHostPort('192.0.2.1:80'), { host: '192.0.2.1', port: '80' })
  t.same(splitHostPort('192.0.2.1'), { host: '192.0.2.1' })
  t.same(splitHostPort('[2001:db8::1]:443'), { host: '2001:db8::1', port: '443' })
  t.same(splitHostPort('2001:db8::1'), { host: '2001:db8::1' })
  t.equal(splitHostPort('[2001:db8::1'), undefined)
  t.equal(formatHostPort('2001:db8::1', 80), '[2001:db8::1]:80')
  t.equal(formatHostPort('192.0.2.1', 0), '192.0.2.1:0')
})

t.test('ports', async (t) => {
  t.equal(parsePort('0'), 0)
  t.equal(parsePort('65535'), 65535)
  t.equal(parsePort('65536'), undefined)
  t.equal(parsePort('http'), undefined)
  t.equal(parsePort('http', true), 80)
  t.equal(parsePort('-1'), undefined)
})

t.test('netmasks', async (t) => {
  t.equal(maskToPrefix('255.255.255.0'), 24)
  t.equal(maskToPrefix('255.0.255.0'), undefined, 'not contiguous')
  t.equal(prefixToMask(0), '0.0.0.0')
  t.equal(prefixToMask(20), '255.255.240.0')
  t.equal(parseNetmask('255.255.255.0', 4), '255.255.255.0')
  t.equal(parseNetmask('/24', 4), '255.255.255.0')
  t.equal(parseNetmask('255.0.255.0', 4), undefined)
  t.equal(parseNetmask('64', 6), 64)
  t.equal(parseNetmask('/48', 6), 48)
  t.equal(parseNetmask('129', 6), undefined)
  t.equal(parseNetmask('255.255.255.0', 6), undefined)
})
