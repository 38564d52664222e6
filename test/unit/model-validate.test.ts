// SPDX-License-Identifier: GPL-2.0-only
// validate(): each rule, with the field it names and the fix it offers.
import t from 'tap'
import { ConfigError } from '../../src/errors'
import { emptyModel, isPrime, nearestPrime, portService, realServer, serviceGroup, validate, type Model } from '../../src/model'

/** A small valid model: one DR web service with two servers. */
function base(): Model {
  const m = emptyModel()
  m.services.push(
    portService('tcp', '192.0.2.10', 80, {
      realServers: [realServer('10.0.1.11', 80, { weight: 3 }), realServer('10.0.1.12', 80)],
    }),
  )
  return m
}

/** Expect validate(m) to fail on `field` with a message matching `text`. */
function rejects(t: tap.Test, m: Model, field: string, text: RegExp): void {
  t.throws(() => validate(m), { constructor: ConfigError, code: 'ECONFIG', field, where: field, message: text }, field)
}

t.test('a valid model is returned as is', async (t) => {
  const m = base()
  t.equal(validate(m), m)
})

t.test('weight range', async (t) => {
  const m = base()
  m.services[0]!.realServers[0]!.weight = 70000
  t.throws(() => validate(m), { message: 'services[0].realServers[0].weight: 70000 is out of range; use 0..65535' })
  m.services[0]!.realServers[0]!.weight = 1.5
  rejects(t, m, 'services[0].realServers[0].weight', /1.5 is not a whole number; use 0..65535/)
})

t.test('addresses', async (t) => {
  const m = base()
  m.services[0]!.realServers[1]!.address = '10.0.1.300'
  rejects(t, m, 'services[0].realServers[1].address', /'10.0.1.300' is not an IP address; use an IPv4/)
  const v = base()
  ;(v.services[0] as { vip: string }).vip = 'www.example.com'
  rejects(t, v, 'services[0].vip', /not an IP address/)
  const f = base()
  f.services[0]!.realServers[1]!.address = '2001:db8::12'
  rejects(t, f, 'services[0].realServers[1].address', /2001:db8::12 is IPv6 but the service is IPv4; only tun can forward across families/)
  f.services[0]!.realServers.forEach((rs) => (rs.method = 'tun'))
  t.ok(validate(f), 'tun may cross families')
})

t.test('scheduler, with a suggestion', async (t) => {
  const m = base()
  ;(m.services[0] as { scheduler: string }).scheduler = 'wrrr'
  rejects(t, m, 'services[0].scheduler', /'wrrr' is not a scheduler; did you mean 'wrr'\?/)
  ;(m.services[0] as { scheduler: string }).scheduler = 'maglev'
  rejects(t, m, 'services[0].scheduler', /use one of rr, wrr, lc, wlc, sed, nq, lblc, lblcr, dh, sh, mh, fo, ovf, twos/)
})

t.test('scheduler flags belong to their scheduler', async (t) => {
  const m = base()
  m.services[0]!.schedFlags = ['sh-port']
  rejects(t, m, 'services[0].schedFlags[0]', /sh-port is a flag of the sh scheduler, not wlc; remove it or use scheduler sh/)
  m.services[0]!.scheduler = 'sh'
  t.ok(validate(m))
})

t.test('mh table size', async (t) => {
  t.ok(isPrime(16381) && isPrime(131071) && !isPrime(16380) && !isPrime(1))
  t.equal(nearestPrime(16380), 16381)
  t.equal(nearestPrime(1000000), 131071)
  const m = base()
  m.services[0]!.scheduler = 'mh'
  m.services[0]!.mhTableSize = 16380
  rejects(t, m, 'services[0].mhTableSize', /16380 is not prime; use a prime such as 16381/)
  m.services[0]!.mhTableSize = 262139
  rejects(t, m, 'services[0].mhTableSize', /262139 is out of range; use a prime up to 131071/)
  m.services[0]!.mhTableSize = 2
  rejects(t, m, 'services[0].mhTableSize', /too small for 2 real servers/)
  m.services[0]!.mhTableSize = 16381
  t.ok(validate(m))
  m.services[0]!.scheduler = 'wlc'
  rejects(t, m, 'services[0].mhTableSize', /applies only to the mh scheduler, not wlc/)
})

t.test('duplicates', async (t) => {
  const m = base()
  m.services[0]!.realServers.push(realServer('10.0.1.11', 80, { weight: 9 }))
  rejects(t, m, 'services[0].realServers[2]', /duplicate of realServers\[0\] \(10.0.1.11:80\); remove one, or change its address or port/)
  const s = base()
  s.services.push(portService('tcp', '192.0.2.10', 80))
  rejects(t, s, 'services[1]', /duplicate of services\[0\] \(tcp:192.0.2.10:80\)/)
  const u = base()
  u.services.push(portService('udp', '192.0.2.10', 80))
  t.ok(validate(u), 'same vip and port, other protocol')
  const g = base()
  g.services.push(serviceGroup(5, 4, [], { incomplete: 'x' }), serviceGroup(5, 6, [], { incomplete: 'y' }))
  rejects(t, g, 'services[2]', /group id 5 is also used by services\[1\]/)
})

t.test('port 0 needs persistence', async (t) => {
  const m = emptyModel()
  m.services.push(portService('tcp', '192.0.2.10', 0, { realServers: [realServer('10.0.1.11', 0)] }))
  rejects(t, m, 'services[0].port', /0 \(all ports\) needs persistence/)
  m.services[0]!.persistence = { timeout: 300, netmask: '255.255.255.255' }
  t.ok(validate(m))
})

t.test('dr and tun keep the port', async (t) => {
  const m = base()
  m.services[0]!.realServers[0]!.port = 8080
  rejects(t, m, 'services[0].realServers[0].port', /8080 differs from the service port 80; dr cannot change the port \(use nat or fullnat, or port 80\)/)
  m.services[0]!.realServers[0]!.method = 'nat'
  t.ok(validate(m))
})

t.test('fullnat needs a local address of the family', async (t) => {
  const m = base()
  m.services[0]!.realServers[0]!.method = 'fullnat'
  rejects(t, m, 'services[0].realServers[0].method', /fullnat needs an IPv4 local address.*settings.localAddresses/)
  m.settings.localAddresses = ['2001:db8::2']
  rejects(t, m, 'services[0].realServers[0].method', /IPv4 local address/)
  m.settings.localAddresses.push('10.0.0.2')
  t.ok(validate(m))
})

t.test('persistence netmask matches the family', async (t) => {
  const m = base()
  m.services[0]!.persistence = { timeout: 300, netmask: 64 }
  rejects(t, m, 'services[0].persistence.netmask', /64 is not a netmask for an IPv4 service; use a contiguous dotted mask/)
  m.services[0]!.persistence = { timeout: 0, netmask: '255.255.255.0' }
  rejects(t, m, 'services[0].persistence.timeout', /0 is out of range; use 1..2678400 seconds/)
})

t.test('thresholds', async (t) => {
  const m = base()
  Object.assign(m.services[0]!.realServers[0]!, { upperThreshold: 10, lowerThreshold: 20 })
  rejects(t, m, 'services[0].realServers[0].lowerThreshold', /20 is above upperThreshold 10/)
})

t.test('groups', async (t) => {
  const m = emptyModel()
  m.services.push(serviceGroup(1, 4, []))
  rejects(t, m, 'services[0].matches', /is empty; a group needs at least one/)
  m.services[0] = serviceGroup(1, 4, [{ vip: '2001:db8::1', protocol: 'tcp', fromPort: 80, toPort: 80 }])
  rejects(t, m, 'services[0].matches[0].vip', /2001:db8::1 is IPv6 but the group is IPv4/)
  m.services[0] = serviceGroup(1, 4, [{ vip: '192.0.2.1', protocol: 'tcp', fromPort: 90, toPort: 80 }])
  rejects(t, m, 'services[0].matches[0].toPort', /80 is below fromPort 90/)
  m.services[0] = serviceGroup(1, 4, [{ vip: '192.0.2.1', protocol: 'tcp', fromPort: 80, toPort: 90 }])
  m.services.push(serviceGroup(2, 4, [{ vip: '192.0.2.1', protocol: 'tcp', fromPort: 85, toPort: 85 }]))
  rejects(t, m, 'services[1].matches[0]', /tcp 192.0.2.1:85-85 overlaps services\[0\].matches\[0\]/)
  m.services[1] = serviceGroup(2, 4, [{ vip: '192.0.2.1', protocol: 'udp', fromPort: 85, toPort: 85 }])
  t.ok(validate(m), 'other protocol does not overlap')
  m.services.push(serviceGroup(3, 4, [{ vip: '192.0.2.1', protocol: 'udp', fromPort: 1, toPort: 2 }], { incomplete: 'x' }))
  rejects(t, m, 'services[2].incomplete', /is set but the group has matches/)
})

t.test('health checks', async (t) => {
  const m = base()
  const common = { interval: 6, timeout: 5, rise: 1, fall: 1, retry: 1, retryDelay: 1, reentry: 0, onFailure: 'remove' as const }
  const rs = m.services[0]!.realServers[0]!
  rs.check = { type: 'http', ...common, urls: [] }
  rejects(t, m, 'services[0].realServers[0].check.urls', /is empty; an http check needs at least one url/)
  rs.check = { type: 'http', ...common, urls: [{ path: '/x', digest: 'nope' }] }
  rejects(t, m, 'services[0].realServers[0].check.urls[0].digest', /is not an MD5 digest/)
  rs.check = { type: 'send-expect', ...common, send: '', expect: '(', regex: true }
  rejects(t, m, 'services[0].realServers[0].check.expect', /is not a regular expression/)
  rs.check = { type: 'tcp', ...common, interval: 0 }
  rejects(t, m, 'services[0].realServers[0].check.interval', /use a number of seconds above 0/)
  ;(rs.check as { type: string }).type = 'ping'
  rejects(t, m, 'services[0].realServers[0].check.type', /'ping' is not a check type/)
})

t.test('settings', async (t) => {
  const m = base()
  m.settings.timeouts.tcp = 0
  rejects(t, m, 'settings.timeouts.tcp', /0 is out of range; use 1..2678400 seconds/)
  const i = base()
  i.settings.interfaces = ['eth0', 'eth0']
  rejects(t, i, 'settings.interfaces[1]', /already listed at settings.interfaces\[0\]/)
  i.settings.interfaces = ['a-very-long-interface-name']
  rejects(t, i, 'settings.interfaces[0]', /is not an interface name/)
})

t.test('a locator puts file:line:column in front', async (t) => {
  const m = base()
  m.services[0]!.realServers[1]!.weight = -1
  const err = t.throws(() => validate(m, { locate: (p) => (p.endsWith('weight') ? 'web.yaml:12:17' : undefined) })) as ConfigError
  t.equal(err.message, 'web.yaml:12:17: services[0].realServers[1].weight: -1 is out of range; use 0..65535')
  t.equal(err.where, 'web.yaml:12:17')
  t.equal(err.field, 'services[0].realServers[1].weight')
})
