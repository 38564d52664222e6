// SPDX-License-Identifier: GPL-2.0-only
// Piranha lvs.cf: virtual servers and their servers, network -> method, nanny checks, fwmark bundles,
// the director settings kept raw, and located errors.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { ConfigError } from '../../src/errors'
import { parseLvsCf } from '../../src/config/lvscf'

const file = join(__dirname, '..', 'fixtures', 'config', 'lvs.cf')

t.test('an lvs.cf with two virtual servers', async (t) => {
  const { model, format, raw, warnings } = parseLvsCf(readFileSync(file, 'utf8'), 'lvs.cf')
  t.equal(format, 'lvs.cf')
  t.same(warnings, [{ where: 'lvs.cf:45:6', message: 'server web3 in virtual HTTP is not active (active = 0); skipped' }])
  t.same(model.settings.interfaces, ['eth1', 'eth0'], 'nat_router device, then the VIP devices, aliases folded')
  t.equal(model.services.length, 2)
  const [http, dns] = model.services
  t.match(http, { name: 'HTTP', kind: 'tcp', vip: '198.51.100.100', port: 80, scheduler: 'wlc', persistence: { timeout: 300, netmask: '255.255.255.0' } })
  t.same(http!.realServers.map((r) => [r.name, r.address, r.port, r.weight, r.method]), [
    ['web1', '10.11.12.11', 80, 2, 'nat'],
    ['web2', '10.11.12.12', 80, 1, 'nat'],
  ])
  t.same(http!.realServers[0]!.check, {
    type: 'send-expect', send: 'GET / HTTP/1.0\r\n\r\n', expect: 'HTTP', regex: false,
    interval: 6, timeout: 6, rise: 1, fall: 1, retry: 0, retryDelay: 0, reentry: 15, onFailure: 'remove',
  }, 'send/expect with nanny escapes decoded')
  t.match(dns, { kind: 'udp', scheduler: 'rr' })
  t.same(dns!.realServers[1]!.check, {
    type: 'external', command: '/usr/local/bin/check_dns %h', expect: 'OK', dynamic: false,
    interval: 6, timeout: 10, rise: 1, fall: 1, retry: 0, retryDelay: 0, reentry: 30, onFailure: 'quiesce',
  }, 'send_program with %h; quiesce_server = 1')
  const primary = raw.find((b) => b.keyword === 'primary')
  t.same(primary, { keyword: 'primary', args: ['198.51.100.2'], where: 'lvs.cf:3:1' }, 'director settings kept for the HA parser')
  t.match(raw.find((b) => b.keyword === 'virtual'), { args: ['HTTP'], children: [{ keyword: 'active' }, { keyword: 'address', args: ['198.51.100.100 eth0:1'] }] })
})

const cf = (network: string, virtuals: string) => `network = ${network}\nkeepalive = 4\n${virtuals}`
const virtual = (name: string, body: string) => `virtual ${name} {\n  active = 1\n${body}}\n`

t.test('network picks the method; a missing check is a connect check', async (t) => {
  const v = virtual('WEB', '  address = 192.0.2.10 eth0:1\n  port = 80\n  server a {\n    address = 10.0.0.1\n  }\n')
  for (const [network, method] of [['direct', 'dr'], ['tunnel', 'tun'], ['nat', 'nat']]) {
    const rs = parseLvsCf(cf(network!, v), 'x.cf').model.services[0]!.realServers[0]!
    t.equal(rs.method, method, network)
    t.match(rs.check, { type: 'tcp', interval: 4 })
  }
})

t.test('virtual servers sharing a fwmark become one group', async (t) => {
  const server = (n: string) => `  server s${n} {\n    address = 10.0.0.${n}\n  }\n`
  const text = cf('direct', [
    virtual('HTTP', `  address = 192.0.2.10 eth0:1\n  port = 80\n  fwmark = 80\n  persistent = 600\n${server('1')}${server('2')}`),
    virtual('HTTPS', `  address = 192.0.2.10 eth0:1\n  port = 443\n  fwmark = 80\n  persistent = 600\n${server('2')}${server('3')}`),
  ].join(''))
  const { model } = parseLvsCf(text, 'x.cf')
  t.equal(model.services.length, 1)
  t.match(model.services[0], {
    kind: 'group', id: 80, name: 'HTTP', family: 4,
    matches: [{ vip: '192.0.2.10', protocol: 'tcp', fromPort: 80, toPort: 80 }, { vip: '192.0.2.10', protocol: 'tcp', fromPort: 443, toPort: 443 }],
  })
  t.same(model.services[0]!.realServers.map((r) => r.address), ['10.0.0.1', '10.0.0.2', '10.0.0.3'])
})

t.test('service = fos loads no virtual servers', async (t) => {
  const { model, warnings } = parseLvsCf(`service = fos\n${virtual('X', '  address = 192.0.2.1\n  port = 1\n')}`, 'x.cf')
  t.same(model.services, [])
  t.match(warnings, [{ where: 'x.cf:1:1', message: /failover services/ }])
})

function rejects(t: tap.Test, text: string, where: string, field: string, message: RegExp): void {
  const err = t.throws(() => parseLvsCf(text, 'bad.cf'), { constructor: ConfigError, where, field, message }, `${where} ${field}`) as ConfigError | undefined
  if (err) t.ok(err.message.startsWith(`${where}: ${field}: `), err.message)
}

t.test('malformed lvs.cf: place and field', async (t) => {
  const ok = '  address = 192.0.2.10 eth0:1\n  port = 80\n'
  rejects(t, cf('nat', virtual('WEB', `${ok}  schedular = rr\n`)), 'bad.cf:7:3', 'virtual WEB.schedular', /unknown key 'schedular' in virtual WEB; did you mean 'scheduler'\?/)
  rejects(t, 'serail_no = 3\n', 'bad.cf:1:1', 'lvs.cf.serail_no', /did you mean 'serial_no'\?/)
  rejects(t, cf('nat', virtual('WEB', `${ok}  port 80\n`)), 'bad.cf:7:3', 'line', /'port 80' is neither "key = value" nor "name NAME \{"/)
  rejects(t, cf('nat', `virtual WEB {\n${ok}`), 'bad.cf:3:1', 'virtual', /the block opened here is not closed/)
  rejects(t, cf('bridge', virtual('WEB', ok)), 'bad.cf:1:11', 'lvs.cf.network', /'bridge' is not a network type; use direct, nat or tunnel/)
  rejects(t, cf('nat', virtual('WEB', `${ok}  persistent = long\n`)), 'bad.cf:7:16', 'virtual WEB.persistent', /'long' is not a whole number/)
  rejects(t, cf('nat', virtual('WEB', `${ok}  send = "GET /\n`)), 'bad.cf:7:10', 'send', /unterminated quoted string/)
  rejects(t, cf('nat', virtual('WEB', '  port = 80\n')), 'bad.cf:3:1', 'virtual WEB', /has no address/)
})

t.test('validation errors point at the lvs.cf value', async (t) => {
  const ok = '  address = 192.0.2.10 eth0:1\n  port = 80\n'
  rejects(t, cf('nat', virtual('WEB', `${ok}  server a {\n    address = 10.0.0.1\n    weight = 70000\n  }\n`)), 'bad.cf:9:14', 'services[0].realServers[0].weight', /70000 is out of range; use 0..65535/)
  rejects(t, cf('nat', virtual('WEB', `${ok}  scheduler = wrrr\n`)), 'bad.cf:7:15', 'services[0].scheduler', /did you mean 'wrr'\?/)
  rejects(t, cf('nat', virtual('WEB', `${ok}  server a {\n    address = 10.0.0.300\n  }\n`)), 'bad.cf:8:15', 'services[0].realServers[0].address', /is not an IP address/)
})
