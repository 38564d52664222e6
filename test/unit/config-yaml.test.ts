// SPDX-License-Identifier: GPL-2.0-only
// The xvs YAML format: the commented example, yaml -> model -> yaml round trips, defaults and the
// service-level method/check, and errors located at file:line:column with the key path.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { ConfigError } from '../../src/errors'
import { parseYaml, toYaml } from '../../src/config/yaml'
import { CHECK_DEFAULTS, defaultSettings, portService, realServer } from '../../src/model'

const root = join(__dirname, '..', '..')
const read = (...p: string[]) => readFileSync(join(root, ...p), 'utf8')

t.test('examples/xvs.yaml: every field, valid, and it round-trips', async (t) => {
  const { model, format, warnings } = parseYaml(read('examples', 'xvs.yaml'), 'examples/xvs.yaml')
  t.equal(format, 'yaml')
  t.same(warnings, [])
  t.equal(model.services.length, 6)
  t.same(model.settings.localAddresses, ['10.0.0.2', '10.0.0.3', '2001:db8:ffff::2'])
  const web = model.services[0]!
  t.match(web, { name: 'web', kind: 'tcp', sorryServer: { address: '10.0.9.9', port: 80, method: 'dr' }, quorum: { weight: 2, hysteresis: 1 } })
  t.match(web.realServers[1], { port: 80, method: 'dr', upperThreshold: 2000, lowerThreshold: 1500, check: { type: 'http', rise: 3, fall: 3, port: 8080 } })
  t.equal(web.realServers[0]!.check!.rise, 2, 'the service check, unchanged')
  const mysql = model.services[1]!
  t.same(mysql.realServers[1]!.check, { type: 'send-expect', ...CHECK_DEFAULTS, send: 'PING\r\n', expect: '^\\+PONG', regex: true })
  t.match(model.services[5], { kind: 'group', id: 7, family: 6, matches: [], incomplete: /firewall mark 7/ })
  const text = toYaml(model)
  t.same(parseYaml(text, 'printed.yaml').model, model, 'model -> yaml -> model')
  t.equal(toYaml(parseYaml(text, 'printed.yaml').model), text, 'yaml -> model -> yaml is stable')
})

t.test('yaml -> model -> yaml on the equivalence fixture', async (t) => {
  const { model } = parseYaml(read('test', 'fixtures', 'config', 'equiv.yaml'), 'equiv.yaml')
  const text = toYaml(model)
  t.same(parseYaml(text, 'printed.yaml').model, model)
  t.match(text, /- group: 80\n {4}match: \[\]\n {4}incomplete: firewall mark 80/)
})

t.test('defaults', async (t) => {
  const { model } = parseYaml('services:\n  - vip: 192.0.2.10\n    port: 80\n    real_servers:\n      - address: 10.0.1.11\n', 'min.yaml')
  t.same(model, { settings: defaultSettings(), services: [portService('tcp', '192.0.2.10', 80, { realServers: [realServer('10.0.1.11', 80)] })] })
  t.same(parseYaml('', 'empty.yaml').model, { settings: defaultSettings(), services: [] }, 'an empty file is an empty model')
  const p = parseYaml('services:\n  - { vip: "2001:db8::1", port: 0, persistence: true }\n', 'p.yaml').model.services[0]!
  t.same(p.persistence, { timeout: 300, netmask: 128 }, 'persistence: true takes ipvsadm defaults')
})

t.test('a server check overrides the service check key by key, or replaces it', async (t) => {
  const text = `services:
  - vip: 192.0.2.10
    port: 80
    check: { type: http, urls: [{ path: /healthz }], interval: 2 }
    real_servers:
      - { address: 10.0.1.11, check: { fall: 3 } }
      - { address: 10.0.1.12, check: { type: tcp, port: 8080 } }
`
  const [a, b] = parseYaml(text, 'c.yaml').model.services[0]!.realServers
  t.same(a!.check, { type: 'http', ...CHECK_DEFAULTS, interval: 2, fall: 3, urls: [{ path: '/healthz' }] })
  t.same(b!.check, { type: 'tcp', ...CHECK_DEFAULTS, port: 8080 })
})

/** Expect parseYaml(text) to fail at `where` on `field`. */
function rejects(t: tap.Test, text: string, where: string, field: string, message: RegExp): void {
  const err = t.throws(() => parseYaml(text, 'bad.yaml'), { constructor: ConfigError, where, field, message }, `${where} ${field}`) as ConfigError
  t.ok(err.message.startsWith(`${where}: ${field}: `), `message starts with place and field: ${err.message}`)
}

t.test('unknown keys, with a suggestion', async (t) => {
  const svc = 'services:\n  - vip: 192.0.2.10\n    port: 80\n'
  rejects(t, `${svc}    real_servers:\n      - address: 10.0.1.11\n        wieght: 3\n`, 'bad.yaml:6:9', 'services[0].real_servers[0].wieght', /unknown key 'wieght'; did you mean 'weight'\?/)
  rejects(t, `${svc}    sheduler: rr\n`, 'bad.yaml:4:5', 'services[0].sheduler', /did you mean 'scheduler'\?/)
  rejects(t, 'setings: {}\n', 'bad.yaml:1:1', 'setings', /unknown key 'setings'; did you mean 'settings'\?/)
  rejects(t, `${svc}    check: { type: tcp, urls: [] }\n`, 'bad.yaml:4:31', 'services[0].check.urls', /does not apply to a tcp check/)
})

t.test('wrong shapes and types', async (t) => {
  rejects(t, 'services:\n  - vip: 192.0.2.10\n    port: eighty\n', 'bad.yaml:3:11', 'services[0].port', /'eighty' is not a number|"eighty" is not a number/)
  rejects(t, 'services:\n  vip: 192.0.2.10\n', 'bad.yaml:2:3', 'services', /is not a list/)
  rejects(t, 'services:\n  - port: 80\n', 'bad.yaml:2:5', 'services[0]', /has neither vip nor group/)
  rejects(t, 'services:\n  - { group: 5, vip: 192.0.2.1 }\n', 'bad.yaml:2:22', 'services[0].vip', /does not go with group/)
  rejects(t, 'services:\n  - { group: 5, match: [{ vip: 192.0.2.1, ports: 80-x }] }\n', 'bad.yaml:2:50', 'services[0].match[0].ports', /'80-x' is not a port or port range/)
  rejects(t, 'settings:\n  expire_nodest_conn: maybe\n', 'bad.yaml:2:23', 'settings.expire_nodest_conn', /is not true or false/)
})

t.test('YAML syntax errors are located', async (t) => {
  rejects(t, 'services:\n  - vip: 192.0.2.10\n    port: 80\n    port: 81\n', 'bad.yaml:4:5', 'yaml', /Map keys must be unique/)
  rejects(t, 'services:\n  - vip: [192.0.2.10\n', 'bad.yaml:3:1', 'yaml', /flow sequence|Expected|Missing/i)
})

t.test('validation errors point at the value in the file', async (t) => {
  const head = 'services:\n  - vip: 192.0.2.10\n    port: 80\n'
  rejects(t, `${head}    real_servers:\n      - address: 10.0.1.11\n        weight: 70000\n`, 'bad.yaml:6:17', 'services[0].realServers[0].weight', /70000 is out of range; use 0..65535/)
  rejects(t, `${head}    scheduler: wrrr\n`, 'bad.yaml:4:16', 'services[0].scheduler', /'wrrr' is not a scheduler; did you mean 'wrr'\?/)
  rejects(t, `${head}    real_servers:\n      - address: 10.0.1.300\n`, 'bad.yaml:5:18', 'services[0].realServers[0].address', /is not an IP address/)
  rejects(t, `${head}    scheduler: mh\n    mh_table_size: 1000\n`, 'bad.yaml:5:20', 'services[0].mhTableSize', /1000 is not prime; use a prime such as 997/)
  rejects(t, `${head}    real_servers:\n      - address: 10.0.1.11\n      - address: 10.0.1.11\n`, 'bad.yaml:6:9', 'services[0].realServers[1]', /duplicate of realServers\[0\]/)
  rejects(t, `${head}    method: masquerading\n    real_servers: [{ address: 10.0.1.11 }]\n`, 'bad.yaml:4:13', 'services[0].realServers[0].method', /'masquerading' is not a forwarding method; did you mean 'nat'\?/)
  rejects(t, `${head}    persistence: { timeout: 60, netmask: 255.0.255.0 }\n`, 'bad.yaml:4:42', 'services[0].persistence.netmask', /contiguous dotted mask/)
  rejects(t, 'settings:\n  interfaces: [eth0, eth0]\n', 'bad.yaml:2:22', 'settings.interfaces[1]', /already listed/)
})
