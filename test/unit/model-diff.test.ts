// SPDX-License-Identifier: GPL-2.0-only
// serviceKey/realServerKey and diffModels: what the writer turns into map operations.
import t from 'tap'
import { deepEqual, diffModels, emptyModel, isEmptyDiff, portService, realServer, realServerKey, serviceGroup, serviceKey, type Model } from '../../src/model'

function model(): Model {
  const m = emptyModel()
  m.services.push(
    portService('tcp', '192.0.2.10', 80, { realServers: [realServer('10.0.1.11', 80), realServer('10.0.1.12', 80)] }),
    portService('udp', '2001:db8::53', 53, { scheduler: 'sh', realServers: [realServer('2001:db8:1::1', 53, { method: 'tun' })] }),
    serviceGroup(80, 4, [{ vip: '192.0.2.30', protocol: 'tcp', fromPort: 80, toPort: 80 }], { scheduler: 'rr' }),
  )
  return m
}

t.test('canonical keys', async (t) => {
  t.equal(serviceKey({ kind: 'tcp', vip: '192.0.2.10', port: 80 }), 'tcp:192.0.2.10:80')
  t.equal(serviceKey({ kind: 'udp', vip: '2001:DB8:0::53', port: 53 }), 'udp:[2001:db8::53]:53', 'IPv6 canonicalized')
  t.equal(serviceKey({ kind: 'group', id: 80 }), 'group:80')
  t.equal(realServerKey({ address: '2001:db8:1:0::1', port: 0 }), '[2001:db8:1::1]:0')
})

t.test('no change', async (t) => {
  const d = diffModels(model(), model())
  t.ok(isEmptyDiff(d))
  t.same(d, { settings: [], services: { added: [], removed: [], changed: [] } })
})

t.test('order does not matter', async (t) => {
  const b = model()
  b.services.reverse()
  b.services[2]!.realServers.reverse()
  t.ok(isEmptyDiff(diffModels(model(), b)))
})

t.test('services and real servers added, removed, changed', async (t) => {
  const a = model()
  const b = model()
  b.services.splice(1, 1) // remove the udp service
  b.services.push(portService('tcp', '192.0.2.10', 443))
  const web = b.services[0]!
  web.scheduler = 'wrr'
  web.realServers[0]!.weight = 5
  web.realServers.splice(1, 1)
  web.realServers.push(realServer('10.0.1.13', 80))
  b.settings.timeouts.tcp = 600
  const d = diffModels(a, b)
  t.same(d.settings, ['timeouts'])
  t.same(d.services.added.map(serviceKey), ['tcp:192.0.2.10:443'])
  t.same(d.services.removed.map(serviceKey), ['udp:[2001:db8::53]:53'])
  t.equal(d.services.changed.length, 1)
  const c = d.services.changed[0]!
  t.equal(c.key, 'tcp:192.0.2.10:80')
  t.same(c.fields, ['scheduler'])
  t.same(c.realServers.added.map(realServerKey), ['10.0.1.13:80'])
  t.same(c.realServers.removed.map(realServerKey), ['10.0.1.12:80'])
  t.same(c.realServers.changed.map((x) => [x.key, x.fields, x.before.weight, x.after.weight]), [['10.0.1.11:80', ['weight'], 1, 5]])
})

t.test('a group whose matches change is changed, not replaced', async (t) => {
  const b = model()
  const g = b.services[2]!
  if (g.kind === 'group') g.matches.push({ vip: '192.0.2.30', protocol: 'tcp', fromPort: 443, toPort: 443 })
  const d = diffModels(model(), b)
  t.same(d.services.changed.map((c) => [c.key, c.fields]), [['group:80', ['matches']]])
})

t.test('deepEqual treats undefined keys as absent', async (t) => {
  t.ok(deepEqual({ a: 1, b: undefined }, { a: 1 }))
  t.notOk(deepEqual({ a: [1, 2] }, { a: [2, 1] }))
  t.notOk(deepEqual({ a: null }, { a: {} }))
})
