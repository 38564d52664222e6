// SPDX-License-Identifier: GPL-2.0-only
// The ipvsadm command line (parseIpvsadmArgv), rules files (parseIpvsadmRules) and the printer
// (toIpvsadmRules): ipvsadm's defaults and wording, located errors, and the model -> rules -> model round trip.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { ConfigError } from '../../src/errors'
import { parseIpvsadmArgv, parseIpvsadmRules, toIpvsadmRules } from '../../src/config/ipvsadm'
import { emptyModel, portService, realServer, serviceGroup, incompleteNote, type Model } from '../../src/model'

const fixture = (name: string) => join(__dirname, '..', 'fixtures', 'config', name)
const argv = (line: string) => parseIpvsadmArgv(line.split(/\s+/))

t.test('service commands take ipvsadm defaults', async (t) => {
  t.same(argv('-A -t 192.0.2.10:80'), {
    op: 'add-service',
    service: { kind: 'tcp', vip: '192.0.2.10', port: 80 },
    options: { scheduler: 'wlc', schedFlags: [] },
  })
  t.same(argv('--add-service --udp-service [2001:DB8::53]:domain -s sh -b flag-2,flag-1'), {
    op: 'add-service',
    service: { kind: 'udp', vip: '2001:db8::53', port: 53 },
    options: { scheduler: 'sh', schedFlags: ['sh-fallback', 'sh-port'] },
  })
  t.same(argv('-E -f 80 -6 -s rr -p'), {
    op: 'edit-service',
    service: { kind: 'group', id: 80, family: 6 },
    options: { scheduler: 'rr', schedFlags: [], persistence: { timeout: 300, netmask: 128 } },
  })
  t.same(argv('-D -t 192.0.2.10:80'), { op: 'delete-service', service: { kind: 'tcp', vip: '192.0.2.10', port: 80 } })
})

t.test('-p takes an optional value, popt style', async (t) => {
  const p = (line: string) => (argv(line) as { options: { persistence?: unknown } }).options.persistence
  t.same(p('-A -t 192.0.2.10:80 -p'), { timeout: 300, netmask: '255.255.255.255' })
  t.same(p('-A -t 192.0.2.10:80 -p -s rr'), { timeout: 300, netmask: '255.255.255.255' }, 'next word is an option')
  t.same(p('-A -t 192.0.2.10:80 -p 60 -M 255.255.0.0'), { timeout: 60, netmask: '255.255.0.0' })
  t.same(p('-A -t 192.0.2.10:80 --persistent=60'), { timeout: 60, netmask: '255.255.255.255' })
  t.same(p('-A -t 192.0.2.10:80 -p60'), { timeout: 60, netmask: '255.255.255.255' }, 'attached value')
  t.same(p('-A -M 64 -t [2001:db8::1]:443 -p 60'), { timeout: 60, netmask: 64 }, '-M before -t still knows the family')
})

t.test('server commands', async (t) => {
  t.same(argv('-a -t 192.0.2.10:80 -r 10.0.1.11'), {
    op: 'add-server',
    service: { kind: 'tcp', vip: '192.0.2.10', port: 80 },
    server: { address: '10.0.1.11', port: 80, method: 'dr', weight: 1, upperThreshold: 0, lowerThreshold: 0 },
  })
  const nat = argv('-e -t 192.0.2.10:80 -r 10.0.1.11:8080 -m -w 0 -x 100 -y 50')
  t.same((nat as { server: unknown }).server, { address: '10.0.1.11', port: 8080, method: 'nat', weight: 0, upperThreshold: 100, lowerThreshold: 50 })
  const dr = argv('-a -t 192.0.2.10:80 -r 10.0.1.11:8080 -g')
  t.equal((dr as { server: { port: number } }).server.port, 80, 'dr keeps the service port, as ipvsadm does')
  const fn = argv('-a -t 192.0.2.10:80 -r 10.0.1.11:8080 --fullnat')
  t.same((fn as { server: { method: string; port: number } }).server, { address: '10.0.1.11', port: 8080, method: 'fullnat', weight: 1, upperThreshold: 0, lowerThreshold: 0 })
  t.same((argv('-a -f 7 -r 10.0.1.11 -i') as { server: { port: number } }).server.port, 0, 'fwmark: port 0')
  t.same(argv('-d -t 192.0.2.10:80 -r [2001:db8::1]:80'), {
    op: 'delete-server',
    service: { kind: 'tcp', vip: '192.0.2.10', port: 80 },
    server: { address: '2001:db8::1', port: 80 },
  })
})

t.test('other commands', async (t) => {
  t.same(argv('-C'), { op: 'clear' })
  t.same(argv('--set 900 120 300'), { op: 'set', timeouts: { tcp: 900, tcpfin: 120, udp: 300 } })
  t.same(argv('-S -n'), { op: 'save', numeric: true })
  t.same(argv('-R'), { op: 'restore' })
  t.same(argv('-Z -t 192.0.2.10:80'), { op: 'zero', service: { kind: 'tcp', vip: '192.0.2.10', port: 80 } })
  t.same(argv('--start-daemon master --mcast-interface eth1 --syncid 7'), { op: 'start-daemon', state: 'master', mcastInterface: 'eth1', syncId: 7 })
  t.same(argv('--add-laddr 10.0.0.2'), { op: 'add-laddr', address: '10.0.0.2' })
  const list = argv('-Ln --stats')
  t.match(list, { op: 'list', options: { numeric: true, stats: true, rate: false, sort: true } })
  t.same(parseIpvsadmArgv([]), argv('-L'), 'no arguments lists, as ipvsadm')
  t.match(argv('-At 192.0.2.10:80'), { op: 'add-service', service: { port: 80 } }, 'clustered short options')
})

t.test('errors are worded like ipvsadm', async (t) => {
  const bad = (line: string, field: string, message: RegExp) =>
    t.throws(() => argv(line), { constructor: ConfigError, field, message }, line)
  bad('-A -a -t 192.0.2.10:80', 'command', /multiple commands specified/)
  bad('-A -s rr', 'service-address', /You need to supply the 'service-address' option for the 'add-service' command/)
  bad('-a -t 192.0.2.10:80 -r 10.0.1.1 -s rr', 'scheduler', /Illegal 'scheduler' option with the 'add-server' command/)
  bad('-L -c -t 192.0.2.10:80', 'service-address', /The option 'service-address' conflicts with the 'connection' option in the 'list' command/)
  bad('-a -t 192.0.2.10:80 -r 10.0.1.1 -w 70000', 'weight', /illegal weight specified: '70000'; use 0..65535/)
  bad('-a -t 192.0.2.10:80 -r 10.0.1.1 -w 1 -w 2', 'weight', /multiple 'weight' options specified/)
  bad('-a -t 192.0.2.10:80 -r 10.0.1.1 -g -m', 'forwarding-method', /multiple 'forwarding-method' options specified/)
  bad('-A -t 192.0.2.10:80 --schedular rr', 'option', /invalid option `--schedular'; did you mean 'scheduler'\?/)
  bad('-A -t 192.0.2.10:80 -s wrrr', 'scheduler', /Scheduler not found: 'wrrr'; did you mean 'wrr'\?/)
  bad('-A -t 192.0.2.10', 'service-address', /Zero port specified for non-persistent service/)
  bad('-A -t www.example.com:80', 'service-address', /illegal virtual server address\[:port\] specified/)
  bad('-A -f 0', 'service-address', /invalid fwmark value `0' specified/)
  bad('-A -t 192.0.2.10:80 -6', 'ipv6', /-6 used without -f/)
  bad('-A -t 192.0.2.10:80 -p 0', 'persistent', /invalid timeout value `0' specified/)
  bad('-A -t 192.0.2.10:80 -p -M 255.0.255.0', 'netmask', /illegal virtual server persistent mask specified/)
  bad('-A -t [2001:db8::1]:80 -p -M 255.255.255.0', 'netmask', /illegal ipv6 netmask specified/)
  bad('-A -t 192.0.2.10:80 -s sh -b sh-prot', 'sched-flags', /invalid scheduler flag `sh-prot'; did you mean 'sh-port'\?/)
  bad('--set 900 120', 'set', /--set option requires 3 timeout values/)
  bad('-C extra', 'clear', /unexpected argument extra/)
  bad('-A -u 192.0.2.10:53 --ops', 'ops', /one-packet scheduling \(--ops\) is not supported by xvs/)
  bad('-a -t 192.0.2.10:80 -r 10.0.1.1 -i --tun-type gue', 'tun-type', /'gue' tunnels are not supported/)
  bad('-s rr', 'command', /no command specified/)
})

t.test('ipvsadm-save output with fwmark, persistence, thresholds, all methods and IPv6', async (t) => {
  const { model, format, warnings } = parseIpvsadmRules(readFileSync(fixture('ipvsadm.rules'), 'utf8'), 'ipvsadm.rules')
  t.equal(format, 'ipvsadm')
  t.same(warnings, [])
  t.equal(model.services.length, 6)
  const [web, db, dns, mark, api6, mark6] = model.services
  t.match(web, { kind: 'tcp', vip: '192.0.2.10', port: 80, scheduler: 'wlc', persistence: { timeout: 600, netmask: '255.255.255.0' } })
  t.same(web!.realServers[1], { address: '10.0.1.12', port: 80, weight: 1, method: 'dr', upperThreshold: 2000, lowerThreshold: 1500 })
  t.same(db!.realServers.map((r) => [r.port, r.method, r.weight]), [[13306, 'nat', 2], [13306, 'nat', 1]])
  t.same(dns!.schedFlags, ['sh-port'])
  t.same(dns!.realServers.map((r) => r.method), ['tun', 'tun'])
  t.same(mark, serviceGroup(80, 4, [], {
    scheduler: 'rr',
    persistence: { timeout: 300, netmask: '255.255.255.255' },
    incomplete: incompleteNote(80),
    realServers: [realServer('10.0.1.11', 0), realServer('10.0.1.12', 0)],
  }), '-f without matches: an incomplete group with a note')
  t.match(api6, { vip: '2001:db8::10', port: 443, scheduler: 'mh', mhTableSize: 16381, schedFlags: ['mh-fallback', 'mh-port'], persistence: { timeout: 3600, netmask: 64 } })
  t.equal(api6!.realServers[1]!.weight, 0)
  t.match(mark6, { kind: 'group', id: 7, family: 6, realServers: [{ address: '2001:db8:1::21', method: 'tun', weight: 5 }] })
})

t.test('rules apply in order: -E, -e, -d, -D, -C, --set', async (t) => {
  const text = [
    '-A -t 192.0.2.10:80 -s rr',
    '-a -t 192.0.2.10:80 -r 10.0.1.11 -w 2',
    '-a -t 192.0.2.10:80 -r 10.0.1.12',
    '-E -t 192.0.2.10:80 -s wlc -p 60',
    '-e -t 192.0.2.10:80 -r 10.0.1.11 -w 7',
    '-d -t 192.0.2.10:80 -r 10.0.1.12',
    '-A -t 192.0.2.11:80',
    '-D -t 192.0.2.11:80',
    '--set 1200 0 600',
    '-Z',
  ].join('\n')
  const { model, warnings } = parseIpvsadmRules(text, 'seq.rules')
  t.same(model.services, [portService('tcp', '192.0.2.10', 80, { persistence: { timeout: 60, netmask: '255.255.255.255' }, realServers: [realServer('10.0.1.11', 80, { weight: 7 })] })])
  t.same(model.settings.timeouts, { tcp: 1200, tcpfin: 120, udp: 600 }, '0 leaves a timeout unchanged')
  t.match(warnings, [{ where: 'seq.rules:10:1', message: /zero counters/ }])
  const cleared = parseIpvsadmRules(`${text}\n-C\n`, 'seq.rules')
  t.same(cleared.model.services, [])
})

t.test('xvs extension: the fullnat LIP pool', async (t) => {
  const text = '--add-laddr 10.0.0.2\n--add-laddr 10.0.0.3\n--del-laddr 10.0.0.2\n-A -t 192.0.2.10:80\n-a -t 192.0.2.10:80 -r 10.0.1.11:8080 --fullnat\n'
  const { model } = parseIpvsadmRules(text, 'lip.rules')
  t.same(model.settings.localAddresses, ['10.0.0.3'])
  t.match(model.services[0]!.realServers[0], { port: 8080, method: 'fullnat' })
  t.throws(() => parseIpvsadmRules('--add-laddr 10.0.0.2\n--add-laddr 10.0.0.2\n', 'lip.rules'), { where: 'lip.rules:2:13', field: 'add-laddr', message: /Local address already exists/ })
  t.throws(() => parseIpvsadmRules('--del-laddr 10.0.0.9\n', 'lip.rules'), { where: 'lip.rules:1:13', field: 'del-laddr', message: /No such local address/ })
  t.throws(() => argv('--add-laddr 10.0.0'), { field: 'add-laddr', message: /illegal local address specified/ })
})

/** Every part of the model ipvsadm rules can say. */
function representable(): Model {
  const m = emptyModel()
  m.settings.timeouts = { tcp: 1200, tcpfin: 60, udp: 300 }
  m.settings.localAddresses = ['10.0.0.2', '2001:db8:ffff::2']
  m.services.push(
    portService('tcp', '192.0.2.10', 80, {
      persistence: { timeout: 600, netmask: '255.255.255.0' },
      realServers: [realServer('10.0.1.11', 80, { weight: 3 }), realServer('10.0.1.12', 80, { upperThreshold: 2000, lowerThreshold: 1500 })],
    }),
    portService('tcp', '192.0.2.20', 3306, {
      scheduler: 'wrr',
      realServers: [realServer('10.0.2.21', 13306, { method: 'nat', weight: 2 }), realServer('10.0.2.22', 3306, { method: 'fullnat', weight: 0 })],
    }),
    portService('udp', '2001:db8::53', 53, { scheduler: 'sh', schedFlags: ['sh-fallback', 'sh-port'], realServers: [realServer('10.0.3.31', 53, { method: 'tun' })] }),
    portService('tcp', '2001:db8::10', 0, {
      scheduler: 'mh',
      schedFlags: ['mh-port'],
      persistence: { timeout: 30, netmask: 48 },
      realServers: [realServer('2001:db8:1::11', 0), realServer('2001:db8:1::12', 8443, { method: 'fullnat' })],
    }),
    serviceGroup(80, 4, [], { scheduler: 'lblcr', incomplete: incompleteNote(80), realServers: [realServer('10.0.1.11', 0)] }),
    serviceGroup(7, 6, [], { scheduler: 'twos', incomplete: incompleteNote(7), persistence: { timeout: 300, netmask: 128 } }),
  )
  return m
}

t.test('model -> rules -> model', async (t) => {
  const m = representable()
  const rules = toIpvsadmRules(m)
  t.equal(
    rules,
    [
      '--set 1200 60 300',
      '--add-laddr 10.0.0.2',
      '--add-laddr 2001:db8:ffff::2',
      '-A -t 192.0.2.10:80 -s wlc -p 600 -M 255.255.255.0',
      '-a -t 192.0.2.10:80 -r 10.0.1.11:80 -g -w 3',
      '-a -t 192.0.2.10:80 -r 10.0.1.12:80 -g -w 1 -x 2000 -y 1500',
      '-A -t 192.0.2.20:3306 -s wrr',
      '-a -t 192.0.2.20:3306 -r 10.0.2.21:13306 -m -w 2',
      '-a -t 192.0.2.20:3306 -r 10.0.2.22:3306 --fullnat -w 0',
      '-A -u [2001:db8::53]:53 -s sh -b sh-fallback,sh-port',
      '-a -u [2001:db8::53]:53 -r 10.0.3.31:53 -i -w 1',
      '-A -t [2001:db8::10]:0 -s mh -p 30 -M 48 -b mh-port',
      '-a -t [2001:db8::10]:0 -r [2001:db8:1::11]:0 -g -w 1',
      '-a -t [2001:db8::10]:0 -r [2001:db8:1::12]:8443 --fullnat -w 1',
      '-A -f 80 -s lblcr',
      '-a -f 80 -r 10.0.1.11:0 -g -w 1',
      '-A -f 7 -6 -s twos -p 300',
      '',
    ].join('\n'),
  )
  t.same(parseIpvsadmRules(rules, 'printed.rules').model, m)
  const again = parseIpvsadmRules(readFileSync(fixture('ipvsadm.rules'), 'utf8'), 'ipvsadm.rules').model
  t.same(parseIpvsadmRules(toIpvsadmRules(again), 'printed.rules').model, again, 'the fixture round-trips too')
})

t.test('a group with matches prints them as a comment', async (t) => {
  const m = emptyModel()
  m.services.push(serviceGroup(9, 4, [{ vip: '192.0.2.30', protocol: 'tcp', fromPort: 8000, toPort: 8099 }], { name: 'web-all', realServers: [realServer('10.0.1.11', 0)] }))
  const rules = toIpvsadmRules(m)
  t.match(rules, /^# group 9 \(web-all\) matches tcp 192.0.2.30:8000-8099; ipvsadm needs packets marked 9 by netfilter\n-A -f 9 -s wlc\n/)
})

t.test('malformed rules: errors carry file:line:column and the field', async (t) => {
  const bad = (text: string, where: string, field: string, message: RegExp) =>
    t.throws(() => parseIpvsadmRules(text, 'bad.rules'), { constructor: ConfigError, where, field, message }, `${where} ${field}`)
  const head = '# lb1\n-A -t 192.0.2.10:80 -s rr\n'
  bad(`${head}-a -t 192.0.2.10:80 -r 10.0.1.11 -w 70000\n`, 'bad.rules:3:37', 'weight', /^bad.rules:3:37: weight: illegal weight specified: '70000'/)
  bad(`${head}-a -t 192.0.2.99:80 -r 10.0.1.11\n`, 'bad.rules:3:7', 'service-address', /Service not defined \(tcp:192.0.2.99:80\); add it with -A first/)
  bad(`${head}-a -t 192.0.2.10:80 -r 10.0.1.11\n-a -t 192.0.2.10:80 -r 10.0.1.11\n`, 'bad.rules:4:24', 'real-server', /Destination already exists/)
  bad(`${head}-A -t 192.0.2.10:80\n`, 'bad.rules:3:7', 'service-address', /Service already exists/)
  bad(`${head}  -e -t 192.0.2.10:80 -r 10.0.1.99\n`, 'bad.rules:3:26', 'real-server', /No such destination/)
  bad(`${head}-L -n\n`, 'bad.rules:3:1', 'command', /'list' is not a rule/)
  bad(`${head}-a -t 192.0.2.10:80 -r 10.0.1.11 -x 10 -y 20\n`, 'bad.rules:3:43', 'services[0].realServers[0].lowerThreshold', /20 is above upperThreshold 10/)
  bad('-A -t 192.0.2.10:80 -s wlc -b sh-port\n', 'bad.rules:1:31', 'services[0].schedFlags[0]', /sh-port is a flag of the sh scheduler, not wlc/)
  bad('-A -t 192.0.2.10:80\n-a -t 192.0.2.10:80 -r 10.0.1.11 --fullnat\n', 'bad.rules:2:34', 'services[0].realServers[0].method', /fullnat needs an IPv4 local address/)
})
