// SPDX-License-Identifier: GPL-2.0-only
// xvsadm without a kernel (an in-memory backend): ipvsadm's messages and exit statuses for the same
// mistakes, the automatic load and its note, listings, save and restore.
import t from 'tap'
import { xvsadm, usage } from '../../src/cli/xvsadm'
import { MemoryBackend } from '../helpers/memory-backend'
import { captureIo } from '../helpers/cli-io'
import { ConfigError } from '../../src/errors'

async function run(line: string, b = new MemoryBackend(), stdin?: string) {
  const io = captureIo(stdin === undefined ? {} : { stdin })
  const code = await xvsadm(line === '' ? [] : line.split(' '), io, () => b)
  return { code, out: io.stdout, err: io.stderr, b, slept: io.slept }
}

t.test('command-line mistakes: ipvsadm\'s message first, exit 2, nothing touched', async (t) => {
  const cases: [string, string][] = [
    ['-A -a -t 10.0.0.1:80', 'multiple commands specified (-A and -a)'],
    ['-A -t 10.0.0.1', 'Zero port specified for non-persistent service'],
    ['-a -t 10.0.0.1:80 -r 10.0.1.1 -w 70000', "illegal weight specified: '70000'"],
    ['-a -t 10.0.0.1:80', "You need to supply the 'real-server' option for the 'add-server' command"],
    ['-A -t 10.0.0.1:80 -r 10.0.1.1', "Illegal 'real-server' option with the 'add-service' command"],
    ['-A -t nowhere:80', "illegal virtual server address[:port] specified: 'nowhere:80'"],
    ['-A -t 10.0.0.1:80 -s fastest', "Scheduler not found: 'fastest'"],
    ['-L -c -t 10.0.0.1:80', "The option 'service-address' conflicts with the 'connection' option in the 'list' command"],
    ['-L -c --stats', 'options conflicts in the list command'],
    ['-Q', "invalid option `-Q'"],
    ['--set 1 2', '--set option requires 3 timeout values (tcp tcpfin udp)'],
  ]
  for (const [line, first] of cases) {
    const r = await run(line)
    t.equal(r.code, 2, `${line}: exit 2`)
    t.equal(r.err.split('\n')[0], first, `${line}: ${first}`)
    t.same(r.b.calls, [], `${line}: no backend call`)
  }
  const hinted = await run('-A -t 10.0.0.1')
  t.equal(hinted.err, 'Zero port specified for non-persistent service\nhint: add -p, or give a port\n', 'xvs\'s advice on a second line')
})

t.test('refused operations: ipvsadm\'s ipvs_strerror wording, exit 255', async (t) => {
  const b = new MemoryBackend()
  t.equal((await run('-A -t 10.0.0.1:80 -s wrr', b)).code, 0)
  const cases: [string, string][] = [
    ['-A -t 10.0.0.1:80', 'Service already exists'],
    ['-E -t 10.0.0.2:80', 'No such service'],
    ['-D -t 10.0.0.2:80', 'No such service'],
    ['-a -t 10.0.0.2:80 -r 10.0.1.1', 'Service not defined'],
    ['-d -t 10.0.0.1:80 -r 10.0.1.1', 'No such destination'],
    ['-Z -t 10.0.0.9:80', 'No such service'],
  ]
  for (const [line, msg] of cases) {
    const r = await run(line, b)
    t.same([r.code, r.err], [255, `${msg}\n`], line)
  }
  t.equal((await run('-a -t 10.0.0.1:80 -r 10.0.1.1', b)).code, 0)
  t.same(await run('-a -t 10.0.0.1:80 -r 10.0.1.1', b).then((r) => [r.code, r.err]), [255, 'Destination already exists\n'])
  b.refuse = new ConfigError('tcp 10.0.0.1:80: real server 10.0.1.2: method nat is not in the data plane yet', { field: 'method', hint: 'use dr (-g) or tun (-i) for now' })
  const nat = await run('-a -t 10.0.0.1:80 -r 10.0.1.2 -w 3 -m', b)
  t.same([nat.code, nat.err], [255, 'tcp 10.0.0.1:80: real server 10.0.1.2: method nat is not in the data plane yet\nhint: use dr (-g) or tun (-i) for now\n'], 'a writer refusal: its message and hint, exit 255')
  t.equal(b.model.services[0]!.realServers.length, 1, 'state unchanged')
})

t.test('nothing loaded: the first command loads and says so; a load failure is "Can\'t initialize", exit 2', async (t) => {
  const b = new MemoryBackend(undefined, false)
  const r = await run('-Ln', b)
  t.equal(r.code, 0)
  t.equal(r.err, 'xvsadm: no xvs data plane was loaded in this network namespace; loaded it on eth0 (native XDP, connection table 1048576 entries)\n')
  t.same(b.calls.slice(0, 2), ['loaded', 'load {"ifaces":[],"fallback":true}'], 'every up interface with an address, falling back to generic XDP')
  const again = await run('-Ln', b)
  t.equal(again.err, '', 'loaded now: no note')
  const broken = new MemoryBackend(undefined, false)
  broken.load = async () => { throw new ConfigError('no up interface with an address to attach to in this network namespace', { hint: 'name one with -i IFACE' }) }
  const f = await run('-A -t 10.0.0.1:80', broken)
  t.same([f.code, f.err], [2, "Can't initialize xvs: no up interface with an address to attach to in this network namespace\nhint: name one with -i IFACE\n"])
})

t.test('listings', async (t) => {
  const b = new MemoryBackend()
  await run('-A -t 172.16.100.67:80 -s wrr', b)
  await run('-a -t 172.16.100.67:80 -r 192.168.12.22 -w 3 -g', b)
  await run('-a -t 172.16.100.67:80 -r 192.168.12.21 -w 1 -g', b)
  const ln = await run('-Ln', b)
  t.equal(ln.out, [
    'IP Virtual Server version 1.2.1 (size=4096)',
    'Prot LocalAddress:Port Scheduler Flags',
    '  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn',
    'TCP  172.16.100.67:80 wrr',
    '  -> 192.168.12.21:80             Route   1      0          0         ',
    '  -> 192.168.12.22:80             Route   3      0          0         ',
    '',
  ].join('\n'))
  const named = (await run('', b)).out
  t.match(named, /^TCP {2}\S+:http wrr\n {2}-> \S+:http +Route {3}1 /m, 'no arguments: -L, with names (no -n)')
  const one = await run('-L -n -t 172.16.100.67:80', b)
  t.match(one.out, /^Prot LocalAddress:Port Scheduler Flags\n.*\nTCP {2}172\.16\.100\.67:80 wrr\n/, '-L -t: that service, no version line')
  const none = await run('-L -n -t 172.16.100.68:80', b)
  t.same([none.code, none.err], [1, 'No such service\n'], 'an unknown service: exit 1, as list_service')
  t.equal((await run('-L --timeout', b)).out, 'Timeout (tcp tcpfin udp): 900 120 300\n')
  t.same(await run('-L --daemon', b).then((r) => [r.code, r.out]), [0, ''], 'no sync daemon: nothing to print')
  const rate = await run('-Ln --rate', b)
  t.same(rate.slept, [1000], '--rate samples over one second')
  t.match(rate.out, /CPS {4}InPPS {3}OutPPS {4}InBPS {3}OutBPS/)
  t.match((await run('-Lnc', b)).out, /^IPVS connection entries\npro expire state {7}source {13}virtual {12}destination\n$/)
  t.match((await run('-h', b)).out, /^xvsadm v\S+ \(xvs; ipvsadm-compatible, IPVS v1\.2\.1 semantics\)\nUsage:\n {2}xvsadm -A\|E -t\|u\|f service-address/)
  t.match((await run('-v', b)).out, /^xvsadm v/)
})

t.test('save and restore', async (t) => {
  const b = new MemoryBackend()
  await run('-A -t 10.0.0.2:80 -s rr', b)
  await run('-A -t 10.0.0.1:80 -s wrr -p 60', b)
  await run('-a -t 10.0.0.1:80 -r 10.0.1.2 -w 2', b)
  await run('-a -t 10.0.0.1:80 -r 10.0.1.1 -w 1', b)
  const saved = (await run('-S -n', b)).out
  t.equal(saved, [
    '-A -t 10.0.0.1:80 -s wrr -p 60',
    '-a -t 10.0.0.1:80 -r 10.0.1.1:80 -g -w 1',
    '-a -t 10.0.0.1:80 -r 10.0.1.2:80 -g -w 2',
    '-A -t 10.0.0.2:80 -s rr',
    '',
  ].join('\n'), 'sorted as ipvsadm -S sorts')
  const fresh = new MemoryBackend()
  const r = await run('-R', fresh, saved)
  t.same([r.code, r.err], [0, ''])
  t.equal((await run('-S -n', fresh)).out, saved, 'round trip')
  t.same(fresh.calls.filter((c) => c.startsWith('edit')), ['edit add-service,add-server,add-server,add-service'], 'one edit: all or nothing')
  const bad = await run('-R', new MemoryBackend(), '-A -t 10.0.0.1:80\n-a -t 10.0.0.1:80 -r 10.0.1.1 -w heavy\n')
  t.same([bad.code, bad.err.split('\n')[0]], [2, "stdin:2: illegal weight specified: 'heavy'"], 'a bad line: located, exit 2, nothing applied')
  const dup = await run('-R', fresh, saved)
  t.same([dup.code, dup.err], [255, 'Service already exists\n'], 'restoring on top of the same services: ipvsadm\'s refusal')
  t.match(usage(), /Exit status:\n {2}0 {4}success\n {2}1 {4}the service given to -L does not exist\n {2}2 {4}bad command line/)
})
