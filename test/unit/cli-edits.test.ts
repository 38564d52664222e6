// SPDX-License-Identifier: GPL-2.0-only
// Edits: ipvsadm's one-thing changes applied to a model, with ipvsadm's reasons for refusing; the
// commands that make them; rules read back as edits (xvsadm -R); and save -> restore round trips.
import t from 'tap'
import { applyEdits, editOf, relocate } from '../../src/cli/edits'
import { restoreEdits, sortedModel } from '../../src/cli/xvsadm'
import { StateError, type Edit } from '../../src/cli/backend'
import { parseIpvsadmArgv, parseIpvsadmRules, toIpvsadmRules } from '../../src/config'
import { ConfigError } from '../../src/errors'
import { emptyModel, portService, realServer } from '../../src/model/defaults'
import { validate } from '../../src/model/validate'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'

const cmd = (line: string): Edit => editOf(parseIpvsadmArgv(line.split(' ')))!
const run = (...lines: string[]) => applyEdits(emptyModel(), lines.map(cmd))

t.test('the LVS example builds the model the rules file gives', async (t) => {
  const m = run('-A -t 172.16.100.67:80 -s wrr', '-a -t 172.16.100.67:80 -r 192.168.12.21 -w 1 -m', '-a -t 172.16.100.67:80 -r 192.168.12.22 -w 3 -m')
  const rules = '-A -t 172.16.100.67:80 -s wrr\n-a -t 172.16.100.67:80 -r 192.168.12.21 -m -w 1\n-a -t 172.16.100.67:80 -r 192.168.12.22 -m -w 3\n'
  t.same(validate(m), parseIpvsadmRules(rules, 'x').model)
})

t.test('conflicts carry ipvsadm\'s reasons', async (t) => {
  const base = ['-A -t 10.0.0.1:80 -s rr', '-a -t 10.0.0.1:80 -r 10.0.1.1']
  const reason = (line: string, r: string) => t.throws(() => run(...base, line), { constructor: StateError, reason: r, code: 'ESTATE' }, line)
  reason('-A -t 10.0.0.1:80', 'service-exists')
  reason('-E -t 10.0.0.2:80', 'no-service')
  reason('-D -t 10.0.0.2:80', 'no-service')
  reason('-a -t 10.0.0.2:80 -r 10.0.1.1', 'service-not-defined')
  reason('-e -t 10.0.0.2:80 -r 10.0.1.1', 'service-not-defined')
  reason('-a -t 10.0.0.1:80 -r 10.0.1.1', 'server-exists')
  reason('-e -t 10.0.0.1:80 -r 10.0.1.9', 'no-server')
  reason('-d -t 10.0.0.1:80 -r 10.0.1.9', 'no-server')
  t.throws(() => run(...base, '-A -t 10.0.0.1:80'), { message: 'tcp 10.0.0.1:80: the service already exists' })
})

t.test('-E and -e reset what they do not give (ipvsadm); xvs edits keep it', async (t) => {
  const m = run('-A -t 10.0.0.1:80 -s sh -b sh-port -p 60 -M 255.255.0.0', '-a -t 10.0.0.1:80 -r 10.0.1.1:8080 -m -w 5 -x 10')
  const e = applyEdits(m, [cmd('-E -t 10.0.0.1:80 -s rr')])
  t.same(e.services[0], portService('tcp', '10.0.0.1', 80, { scheduler: 'rr', realServers: m.services[0]!.realServers }), '-E: not persistent, no flags; real servers kept')
  const r = applyEdits(m, [cmd('-e -t 10.0.0.1:80 -r 10.0.1.1:8080 -m')])
  t.same(r.services[0]!.realServers[0], realServer('10.0.1.1', 8080, { method: 'nat' }), '-e: weight 1, no threshold')
  const keep = applyEdits(m, [{ op: 'edit-service', service: { kind: 'tcp', vip: '10.0.0.1', port: 80 }, settings: { scheduler: 'mh' } }])
  t.match(keep.services[0], { scheduler: 'mh', schedFlags: [], mhTableSize: 16381, persistence: { timeout: 60, netmask: '255.255.0.0' } }, 'partial: persistence kept, sh flags dropped')
  const flags = applyEdits(m, [{ op: 'edit-service', service: { kind: 'tcp', vip: '10.0.0.1', port: 80 }, settings: { persistence: null } }])
  t.notOk(flags.services[0]!.persistence, 'persistence: null removes it')
  t.same(flags.services[0]!.schedFlags, ['sh-port'], 'flags of the same scheduler kept')
  const w = applyEdits(m, [{ op: 'edit-server', service: { kind: 'tcp', vip: '10.0.0.1', port: 80 }, server: { address: '10.0.1.1', port: 8080 }, settings: { weight: 0 } }])
  t.same(w.services[0]!.realServers[0], realServer('10.0.1.1', 8080, { method: 'nat', weight: 0, upperThreshold: 10 }), 'partial: only the weight')
  const mh = run('-A -t 10.0.0.1:80 -s mh')
  mh.services[0]!.mhTableSize = 65537
  t.equal(applyEdits(mh, [cmd('-E -t 10.0.0.1:80 -s mh -b mh-port')]).services[0]!.mhTableSize, 65537, '-E keeps the Maglev table size ipvsadm cannot say')
})

t.test('-C, --set, -D, -d', async (t) => {
  const m = run('-A -t 10.0.0.1:80', '-A -u 10.0.0.1:53', '-a -u 10.0.0.1:53 -r 10.0.1.1', '-a -u 10.0.0.1:53 -r 10.0.1.2', '--set 0 60 0')
  t.same(m.settings.timeouts, { tcp: 900, tcpfin: 60, udp: 300 }, '--set: 0 leaves a timeout as it was')
  t.same(applyEdits(m, [cmd('-d -u 10.0.0.1:53 -r 10.0.1.1')]).services[1]!.realServers.map((r) => r.address), ['10.0.1.2'])
  t.same(applyEdits(m, [cmd('-D -t 10.0.0.1:80')]).services.map((s) => s.kind), ['udp'])
  const c = applyEdits(m, [cmd('-C')])
  t.same([c.services, c.settings.timeouts.tcpfin], [[], 60], '-C deletes services, keeps settings')
  t.equal(m.services.length, 2, 'the input model is not modified')
  t.equal(editOf(parseIpvsadmArgv(['-L', '-n'])), null, 'a listing edits nothing')
})

t.test('validation errors of an edited model name the service and server, not model paths', async (t) => {
  const m = applyEdits(run('-A -t 10.0.0.1:80'), [{ op: 'add-server', service: { kind: 'tcp', vip: '10.0.0.1', port: 80 }, server: { address: '10.0.1.1', port: 8080 }, settings: {} }])
  let err: unknown
  try { validate(m) } catch (e) { err = e }
  const r = relocate(err as ConfigError, m)
  t.equal(r.message, 'tcp 10.0.0.1:80: real server 10.0.1.1:8080: port: 8080 differs from the service port 80; dr cannot change the port (use nat or fullnat, or port 80)')
  const other = new ConfigError('x', { where: 'file.yaml:1:2' })
  t.equal(relocate(other, m), other, 'file positions are kept')
})

t.test('restore: rules as edits, located errors, save -> restore round trip', async (t) => {
  const rules = readFileSync(join(__dirname, '..', 'fixtures', 'config', 'ipvsadm.rules'), 'utf8')
  const parsed = parseIpvsadmRules(rules, 'ipvsadm.rules').model
  const text = toIpvsadmRules(sortedModel(parsed))
  const back = applyEdits(emptyModel(), restoreEdits(text))
  t.same(sortedModel(back), sortedModel(parsed), 'toIpvsadmRules -> restoreEdits -> applyEdits gives the model back')
  t.same(restoreEdits('# comment\n\nipvsadm -A -t 10.0.0.1:80 -s rr\n/sbin/xvsadm -Z\n'), [
    { op: 'add-service', service: { kind: 'tcp', vip: '10.0.0.1', port: 80 }, settings: { scheduler: 'rr', schedFlags: [] } },
  ], 'comments, blank lines, a leading ipvsadm word; -Z ignored')
  t.throws(() => restoreEdits('-A -t 10.0.0.1:80\n-a -t 10.0.0.1:80 -r 10.0.1.1 -w x\n'), { constructor: ConfigError, message: /^stdin:2: illegal weight specified: 'x'/ })
  t.throws(() => restoreEdits('-L -n\n'), { message: /^stdin:1: '-L -n' is not a rule/ })
  t.throws(() => restoreEdits('--add-laddr 10.0.0.9\n'), { message: /not in the data plane yet/ })
})
