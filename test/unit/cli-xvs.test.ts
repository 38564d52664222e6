// SPDX-License-Identifier: GPL-2.0-only
// xvs without a kernel (an in-memory backend): help that reads like a man page, option parsing into
// edits, errors as one line plus a hint, and exit statuses by error code.
import t from 'tap'
import type { Command } from 'commander'
import { buildXvs, main, type CliContext } from '../../src/cli/xvs'
import { EXIT, exitCodeOf } from '../../src/cli/exit'
import { NotLoadedError, StateError } from '../../src/cli/backend'
import { ConfigError, XvsError } from '../../src/errors'
import { BpfError } from '../../src/bpf/errors'
import { silentLogger } from '../../src/log'
import { MemoryBackend } from '../helpers/memory-backend'
import { captureIo } from '../helpers/cli-io'

async function xvs(line: string, b = new MemoryBackend(), opts: { stdin?: string; files?: Record<string, string> } = {}) {
  const io = captureIo(opts)
  const code = await main(line.split(' ').filter((w) => w !== ''), io, () => b)
  return { code, out: io.stdout, err: io.stderr, b }
}

function allCommands(c: Command, prefix = ''): string[] {
  return c.commands.flatMap((s) => {
    const name = `${prefix}${s.name()}`
    return s.commands.length ? allCommands(s, `${name} `) : [name]
  })
}

t.test('help: a synopsis, examples and the exit statuses', async (t) => {
  const top = await xvs('--help')
  t.equal(top.code, 0)
  t.match(top.out, /^Usage: xvs <command> \[options\]/)
  for (const s of ['Examples:', 'Exit status:', '  3  conflict with the current state', '  4  no xvs data plane is loaded', 'Environment:', 'State:']) {
    t.ok(top.out.includes(s), `xvs --help has ${JSON.stringify(s)}`)
  }
  const io = captureIo()
  const ctx: CliContext = { io, backend: () => new MemoryBackend(), log: silentLogger, exitCode: 0 }
  const names = allCommands(buildXvs(ctx)).filter((n) => n !== 'help')
  t.same(names, ['load', 'unload', 'status', 'reload', 'daemon', 'apply', 'service add', 'service edit', 'service del', 'server add', 'server edit', 'server del',
    'list', 'stats', 'rate', 'conns', 'zero', 'clear', 'save', 'restore', 'import', 'inspect', 'decap load', 'decap unload'], 'every command of the issue')
  for (const n of names) {
    const h = await xvs(`${n} --help`)
    t.equal(h.code, 0, `${n} --help exits 0`)
    t.match(h.out, new RegExp(`^Usage: xvs ${n}`), `${n}: synopsis`)
    t.match(h.out, /\nExamples:\n {2}xvs /, `${n}: examples`)
  }
  for (const group of ['service', 'server', 'decap']) t.match((await xvs(`${group} --help`)).out, /\nCommands:\n[\s\S]*\nExamples:\n/, `${group} --help`)
  t.match((await xvs('--version')).out, /^\d+\.\d+\.\d+\n$/)
})

t.test('errors: one line, a hint, a status by code', async (t) => {
  const unknown = await xvs('lsit')
  t.same([unknown.code, unknown.err], [1, "xvs: unknown command 'lsit' (Did you mean list?)\nhint: see xvs --help\n"], 'unknown command')
  const opt = await xvs('list --bogus')
  t.same([opt.code, opt.err], [1, "xvs: unknown option '--bogus'\nhint: see xvs list --help\n"])
  const sched = await xvs('service add -t 10.0.0.1:80 -s wrrr')
  t.same([sched.code, sched.err], [1, "xvs: 'wrrr' is not a scheduler; did you mean 'wrr'?\n"])
  const svc = await xvs('service add -s rr')
  t.same([svc.code, svc.err], [1, 'xvs: no service given\nhint: name it with -t VIP:PORT (TCP), -u VIP:PORT (UDP) or -f MARK (a service group)\n'])
  const both = await xvs('service del -t 10.0.0.1:80 -u 10.0.0.1:53')
  t.equal(both.err, 'xvs: give one service: -t and -u were both given\n')
  const addr = await xvs('service add -t 10.0.0.300:80')
  t.match(addr.err, /^xvs: service-address: illegal virtual server address\[:port\] specified: '10\.0\.0\.300:80'/)
  t.equal(addr.code, 1)
  const mask = await xvs('service add -t 10.0.0.1:80 -M 255.255.255.0')
  t.equal(mask.err, 'xvs: --netmask without --persistent\nhint: the netmask says which clients share persistence: give -p [SECONDS] too\n')
  const exists = new MemoryBackend()
  await xvs('service add -t 10.0.0.1:80', exists)
  const again = await xvs('service add -t 10.0.0.1:80', exists)
  t.same([again.code, again.err], [3, 'xvs: tcp 10.0.0.1:80: the service already exists\nhint: change it with edit (ipvsadm -E), or delete it first\n'])
  const noLoad = new MemoryBackend()
  noLoad.snapshot = async () => { throw new NotLoadedError() }
  const l = await xvs('list', noLoad)
  t.same([l.code, l.err.split('\n')[0]], [4, 'xvs: no xvs data plane is loaded in this network namespace'])
  t.equal(exitCodeOf(new BpfError('bpf_map_update_elem: E2BIG', { code: 'E2BIG' })), EXIT.RUNTIME, 'kernel errors: 2')
  t.equal(exitCodeOf(new ConfigError('x')), EXIT.USAGE)
  t.equal(exitCodeOf(new StateError('no-service', 'x')), EXIT.STATE)
  t.equal(exitCodeOf(new XvsError('EDATAPLANE', 'x')), EXIT.RUNTIME)
  t.equal(exitCodeOf(new Error('x')), EXIT.RUNTIME)
})

t.test('service and server commands become edits', async (t) => {
  const b = new MemoryBackend()
  t.equal((await xvs('service add -t 192.0.2.10:80 -s mh --mh-table-size 65537 -b mh-port', b)).code, 0)
  const add = await xvs('server add -t 192.0.2.10:80 -r 10.0.0.11 -w 3', b)
  t.same([add.code, add.out], [0, '~ tcp 192.0.2.10:80: + 10.0.0.11:80 (dr, weight 3)\n'], 'prints what changed')
  await xvs('server add -t 192.0.2.10:80 -r 10.0.0.12:8080 -m', b)
  t.match(b.model.services[0], {
    kind: 'tcp', vip: '192.0.2.10', port: 80, scheduler: 'mh', mhTableSize: 65537, schedFlags: ['mh-port'],
    realServers: [{ address: '10.0.0.11', port: 80, weight: 3, method: 'dr' }, { address: '10.0.0.12', port: 8080, weight: 1, method: 'nat' }],
  })
  const edit = await xvs('server edit -t 192.0.2.10:80 -r 10.0.0.12:8080 -w 0', b)
  t.equal(edit.out, '~ tcp 192.0.2.10:80: 10.0.0.12:8080: weight 1 -> 0\n', 'xvs edit changes only what is given (method stays nat)')
  const p = await xvs('service edit -t 192.0.2.10:80 -p 120 -M 255.255.0.0', b)
  t.equal(p.code, 0)
  t.same(b.model.services[0]!.persistence, { timeout: 120, netmask: '255.255.0.0' })
  t.equal(b.model.services[0]!.scheduler, 'mh', 'scheduler kept')
  await xvs('service edit -t 192.0.2.10:80 --no-persistent', b)
  t.notOk(b.model.services[0]!.persistence, '--no-persistent')
  const two = await xvs('server add -t 192.0.2.10:80 -r 10.0.0.13 -g --method tun', b)
  t.same([two.code, two.err], [1, 'xvs: give one forwarding method, not tun and dr\n'])
  const port = await xvs('server add -t 192.0.2.10:80 -r 10.0.0.13:81', b)
  t.equal(port.code, 1, 'dr cannot change the port: a validation error')
  t.match(port.err, /differs from the service port 80; dr cannot change the port/)
  await xvs('server del -t 192.0.2.10:80 -r 10.0.0.11', b)
  t.same(b.model.services[0]!.realServers.map((r) => r.address), ['10.0.0.12'])
  await xvs('service del -t 192.0.2.10:80', b)
  t.same(b.model.services, [])
  await xvs('service add -u [2001:db8::53]:53 -s rr -p', b)
  t.same(b.model.services[0]!.persistence, { timeout: 300, netmask: 128 }, 'IPv6: prefix length, -p without a value: 300 s')
  await xvs('clear', b)
  t.same(b.model.services, [])
})

t.test('apply, restore, save, import', async (t) => {
  const yaml = 'services:\n  - vip: 10.0.0.1\n    port: 80\n    scheduler: rr\n    real_servers:\n      - { address: 10.0.1.1 }\n'
  const b = new MemoryBackend()
  const dry = await xvs('apply --dry-run /etc/xvs.yaml', b, { files: { '/etc/xvs.yaml': yaml } })
  t.same([dry.code, dry.out], [0, '+ tcp 10.0.0.1:80 rr, 1 real server\ndry run: nothing applied\n'])
  t.same(b.model.services, [], 'dry run: nothing applied')
  t.equal((await xvs('apply /etc/xvs.yaml', b, { files: { '/etc/xvs.yaml': yaml } })).code, 0)
  t.equal(b.model.services.length, 1)
  const bad = await xvs('apply /etc/bad.yaml', b, { files: { '/etc/bad.yaml': yaml.replace('rr', 'wrrr') } })
  t.same([bad.code, bad.err], [1, "xvs: /etc/bad.yaml:4:16: services[0].scheduler: 'wrrr' is not a scheduler; did you mean 'wrr'?\n"], 'located, exit 1')
  t.same(b.calls.filter((c) => c === 'apply').length, 2, 'an invalid file never reaches the backend')
  const missing = await xvs('apply /nope.yaml', b)
  t.same([missing.code, missing.err], [1, 'xvs: cannot read /nope.yaml (ENOENT)\nhint: check the path\n'])
  const saved = await xvs('save', b)
  t.equal(saved.out, '-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.0.1.1:80 -g -w 1\n')
  t.match((await xvs('save --format yaml', b)).out, /^# xvs configuration/)
  const fresh = new MemoryBackend()
  const r = await xvs('restore', fresh, { stdin: saved.out })
  t.same([r.code, fresh.model.services], [0, b.model.services], 'restore from stdin: the same model')
  const imp = await xvs('import - --from ipvsadm', b, { stdin: '-A -t 10.0.0.9:80 -s sh\n' })
  t.match(imp.out, /vip: 10\.0\.0\.9\n {4}port: 80\n {4}protocol: tcp\n {4}scheduler: sh\n/, 'YAML out')
  t.match(b.model.services[0], { vip: '10.0.0.1' }, 'import applies nothing')
  const fmt = await xvs('import x --from nginx', b, { files: { x: '' } })
  t.equal(fmt.err, "xvs: 'nginx' is not a config format; use one of yaml, ipvsadm, keepalived, lvs.cf\n")
})

t.test('status, listings and inspect', async (t) => {
  const none = await xvs('status', new MemoryBackend(undefined, false))
  t.same([none.code, none.out], [4, 'xvs data plane: not loaded in this network namespace\n'], 'not loaded: exit 4')
  t.same(JSON.parse((await xvs('status --json', new MemoryBackend(undefined, false))).out), { loaded: false })
  const b = new MemoryBackend()
  await xvs('service add -t 10.0.0.1:80 -s rr', b)
  t.match((await xvs('list -n', b)).out, /^IP Virtual Server version 1\.2\.1 \(size=4096\)\nProt LocalAddress:Port Scheduler Flags\n.*\nTCP {2}10\.0\.0\.1:80 rr\n$/)
  t.equal((await xvs('list -n -t 10.0.0.2:80', b)).code, 3, 'list of an unknown service: exit 3')
  t.match(JSON.parse((await xvs('list --json', b)).out), { connTableSize: 4096, services: [{ service: { vip: '10.0.0.1' } }] })
  t.match((await xvs('stats -n', b)).out, /Conns {3}InPkts {2}OutPkts {2}InBytes OutBytes[\s\S]*\nCounters:\n {2}rx +10\n$/)
  const rate = await xvs('rate -n --interval 2', b)
  t.match(rate.out, /CPS {4}InPPS/)
  t.equal((await xvs('rate --interval 0', b)).code, 1)
  t.equal((await xvs('inspect services', b)).out, '# xvs_x\na\n1\n')
  t.equal((await xvs('inspect reels', b)).err, "xvs: 'reels' is not a map xvs decodes; did you mean 'reals'?\n")
  t.same((await xvs('zero -t 10.0.0.1:80', b)).code, 0)
  t.same(await xvs('zero -t 10.0.0.9:80', b).then((r) => [r.code, r.err]), [3, 'xvs: tcp 10.0.0.9:80: no such service\n'])
  t.match((await xvs('conns -n', b)).out, /^IPVS connection entries\n/)
  t.equal((await xvs('unload', b)).out, 'detached from eth0\n')
  const load = await xvs('load -i eth0 --mode generic --conn-table-size 4096', b)
  t.equal(load.code, 0)
  t.ok(b.calls.includes('load {"ifaces":["eth0"],"mode":"generic","connTableSize":4096}'), 'load request')
  t.equal((await xvs('load --mode turbo', b)).code, 1)
})
