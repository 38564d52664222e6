// SPDX-License-Identifier: GPL-2.0-only
// loadConfig: format detection, and the same model from equivalent inputs in different formats.
import { join } from 'node:path'
import t from 'tap'
import { ConfigError } from '../../src/errors'
import { detectFormat, loadConfig, parseConfig, toIpvsadmRules, toYaml } from '../../src/config'
import { deepEqual, diffModels, isEmptyDiff } from '../../src/model'

const fx = (name: string) => join(__dirname, '..', 'fixtures', 'config', name)

t.test('the format is told by name, else by content', async (t) => {
  t.equal(detectFormat('a.yml', ''), 'yaml')
  t.equal(detectFormat('/etc/sysconfig/ha/lvs.cf', ''), 'lvs.cf')
  t.equal(detectFormat('rules', '# saved\n-A -t 192.0.2.1:80 -s rr\n'), 'ipvsadm')
  t.equal(detectFormat('rules.sh', 'ipvsadm -C\nipvsadm -A -t 192.0.2.1:80\n'), 'ipvsadm')
  t.equal(detectFormat('lb.conf', '! keepalived\nglobal_defs {\n}\n'), 'keepalived')
  t.equal(detectFormat('old.conf', 'serial_no = 3\nvirtual web {\n}\n'), 'lvs.cf')
  t.equal(detectFormat('xvs.conf', 'services:\n  - vip: 192.0.2.1\n'), 'yaml')
  t.equal(detectFormat('what', 'hello\n'), undefined)
  for (const [name, format] of [['keepalived.conf', 'keepalived'], ['ipvsadm.rules', 'ipvsadm'], ['lvs.cf', 'lvs.cf'], ['equiv.yaml', 'yaml']] as const) {
    t.equal(loadConfig(fx(name)).format, format, name)
  }
})

t.test('the same model from yaml, ipvsadm rules and keepalived.conf', async (t) => {
  const yaml = loadConfig(fx('equiv.yaml')).model
  const rules = loadConfig(fx('equiv.rules')).model
  const keepalived = loadConfig(fx('equiv.keepalived.conf')).model
  t.same(rules, yaml, 'ipvsadm == yaml')
  t.same(keepalived, yaml, 'keepalived == yaml')
  t.ok(isEmptyDiff(diffModels(rules, keepalived)))
})

t.test('the same model from lvs.cf and yaml', async (t) => {
  t.same(loadConfig(fx('lvs.cf')).model, loadConfig(fx('lvs-equiv.yaml')).model)
})

t.test('every format converts to yaml and back', async (t) => {
  for (const name of ['keepalived.conf', 'ipvsadm.rules', 'lvs.cf', 'equiv.rules']) {
    const { model } = loadConfig(fx(name))
    t.ok(deepEqual(parseConfig(toYaml(model), 'converted.yaml').model, model), `${name} -> yaml -> model`)
  }
  const { model } = loadConfig(fx('ipvsadm.rules'))
  t.same(parseConfig(toIpvsadmRules(model), 'again.rules', 'ipvsadm').model, model, 'ipvsadm.rules -> model -> rules -> model')
})

t.test('errors from each format carry file:line:column and the field', async (t) => {
  const cases = [
    ['bad.yaml', 'services:\n  - vip: 192.0.2.1\n    port: 80\n    real_servers: [{ address: 10.0.0.1, weight: 70000 }]\n', 'bad.yaml:4:49', 'services[0].realServers[0].weight'],
    ['bad.rules', '-A -t 192.0.2.1:80\n-a -t 192.0.2.1:80 -r 10.0.0.1 -w 70000\n', 'bad.rules:2:35', 'weight'],
    ['bad.conf', 'virtual_server 192.0.2.1 80 {\n  lb_kind NAT\n  real_server 10.0.0.1 80 {\n    weight 70000\n  }\n}\n', 'bad.conf:4:12', 'services[0].realServers[0].weight'],
    ['lvs.cf', 'virtual WEB {\n  address = 192.0.2.1 eth0\n  port = 80\n  server a {\n    address = 10.0.0.1\n    weight = 70000\n  }\n}\n', 'lvs.cf:6:14', 'services[0].realServers[0].weight'],
  ] as const
  for (const [file, text, where, field] of cases) {
    t.throws(() => parseConfig(text, file), { constructor: ConfigError, where, field, message: new RegExp(`^${where}: ${field.replace(/[[\]]/g, '\\$&')}: .*70000`) }, file)
  }
})

t.test('loadConfig errors', async (t) => {
  t.throws(() => loadConfig(fx('nope.yaml')), { constructor: ConfigError, field: 'path', message: /cannot read .*nope.yaml \(ENOENT\); check the path/ })
  t.throws(() => parseConfig('hello\n', 'what'), { constructor: ConfigError, field: 'from', message: /cannot tell the format of what; give from: yaml \| ipvsadm \| keepalived \| lvs.cf/ })
  t.throws(() => loadConfig(fx('equiv.yaml'), { from: 'json' as never }), { field: 'from', message: /'json' is not a config format/ })
  t.throws(() => loadConfig(fx('equiv.yaml'), { from: 'ipvsadm' }), { constructor: ConfigError, message: /equiv.yaml:1:1: command: no command specified|equiv.yaml:2:1/ }, 'from overrides detection')
})
