// SPDX-License-Identifier: GPL-2.0-only
// The namespace lab itself: topologies come up and carry TCP, the routed shape forwards, and nothing is
// ever left behind: not by destroy(), not when a test body throws, not when the process throws, is
// signalled or is SIGKILLed (then sweepStale() cleans up).
import t from 'tap'
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { CommandError, XvsError } from '../../src/errors'
import { inNetns, run, runAsync, tryRun } from '../../src/lab/exec'
import { httpRequests, startHttpServer, startHttpServers } from '../../src/lab/http'
import { needsRoot } from '../helpers/root'
import { LAB_RUN_DIR, createTopology, listNetns, sweepStale, withTopology, type Topology } from '../../src/lab/topology'


const labNamespaces = (id: string): string[] => listNetns().filter(ns => ns.startsWith(`${id}-`))

interface RootLink {
  ifname: string
  ifalias?: string
}

/** Links in the root namespace that carry the lab's alias: there must never be any. */
const rootLinksOf = (id: string): string[] =>
  (JSON.parse(run(['ip', '-j', '-d', 'link', 'show'])) as RootLink[]).filter(l => (l.ifalias ?? '').includes(id)).map(l => l.ifname)

const rootLinkNames = (): Set<string> => new Set((JSON.parse(run(['ip', '-j', 'link', 'show'])) as RootLink[]).map(l => l.ifname))

const processGone = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
  } catch {
    return true
  }
  // A zombie still answers kill(0); its /proc stat says Z.
  try {
    return /^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'))
  } catch {
    return true
  }
}

/** Polls cond every 50 ms for at most timeoutMs. */
async function eventually(cond: () => boolean, timeoutMs = 5000): Promise<boolean> {
  const until = Date.now() + timeoutMs
  for (let i = 0; i < 1000 && Date.now() < until; i++) {
    if (cond()) return true
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  return cond()
}

/** The name of the XDP program on a lab node's interface, if any. */
function xdpOn(topo: Topology, node: string, dev: string): string | undefined {
  return (JSON.parse(topo.exec(node, ['ip', '-j', 'link', 'show', 'dev', dev])) as { xdp?: { prog?: { name?: string } } }[])[0]?.xdp?.prog?.name
}

/**
 * 10 HTTP requests from the client to each real server's addresses, kernel-routed by the director:
 * each reaches its server (and passes `check`), and the director's forwarding counters account for
 * them (each request is at least SYN, ACK+request, ACK and FIN one way: 20 connections per family).
 */
async function forwardsEveryRequest(t: tap.Test, topo: Topology,
  check: (res: Awaited<ReturnType<typeof httpRequests>>, host: string) => void): Promise<void> {
  await startHttpServers(topo)
  const before = topo.netstat('dir')
  for (const rs of topo.reals) {
    for (const host of [rs.ipv4, rs.ipv6]) {
      const res = await httpRequests(topo, 'cli', { host, count: 10, concurrency: 2 })
      t.same(res.byResponder, { [rs.name]: 10 }, `client -> ${host} through the director reaches ${rs.name}`)
      check(res, host)
    }
  }
  const after = topo.netstat('dir')
  t.ok((after.IpForwDatagrams ?? 0) - (before.IpForwDatagrams ?? 0) >= 80, 'the director forwarded the IPv4 traffic')
  t.ok((after.Ip6OutForwDatagrams ?? 0) - (before.Ip6OutForwDatagrams ?? 0) >= 80, 'and the IPv6 traffic')
}

/** Everything destroy() promises, asserted. */
async function assertGone(t: tap.Test, topo: { id: string; namespaces: readonly string[] }, pids: number[] = []): Promise<void> {
  t.same(labNamespaces(topo.id), [], `no namespace of ${topo.id} is left in ip netns list`)
  for (const ns of topo.namespaces) t.notOk(fs.existsSync(`/run/netns/${ns}`), `/run/netns/${ns} is gone`)
  t.same(rootLinksOf(topo.id), [], 'no link of the lab appeared in the root namespace')
  t.notOk(fs.existsSync(path.join(LAB_RUN_DIR, `${topo.id}.pid`)), 'the owner file is gone')
  for (const pid of pids) t.ok(await eventually(() => processGone(pid)), `lab process ${pid} is gone`)
}

t.test('exec: commands run without a shell and fail with CommandError', async t => {
  t.equal(run(['printf', '%s', 'a b']), 'a b', 'argv is passed as is')
  t.same(inNetns('xl000000-cli', ['ip', 'link']), ['ip', 'netns', 'exec', 'xl000000-cli', 'ip', 'link'])
  t.throws(() => inNetns('bad name;', ['true']), { code: 'EARG' }, 'namespace names are checked')
  const err = t.throws(() => run(['ls', '/nonexistent-xvs-lab'])) as CommandError
  t.type(err, CommandError)
  t.equal(err.code, 'ECOMMAND')
  t.equal(err.status, 2, 'exit status kept')
  t.match(err.stderr, /No such file/, 'stderr kept')
  t.match(err.message, /^ls \/nonexistent-xvs-lab failed \(exit 2\): /, 'one-line message names the command')
  t.throws(() => run(['sleep', '5'], { timeoutMs: 200 }), { code: 'ECOMMAND', message: /timed out after 200 ms/ })
  t.throws(() => run(['/nonexistent-xvs-lab/cmd']), { code: 'ECOMMAND', message: /command not found/ })
  t.equal(await runAsync(['printf', '%s', 'x']), 'x')
  await t.rejects(runAsync(['ls', '/nonexistent-xvs-lab']), { code: 'ECOMMAND', status: 2, stderr: /No such file/ })
  await t.rejects(runAsync(['sleep', '5'], { timeoutMs: 200 }), { message: /timed out after 200 ms/ })
  t.equal(tryRun(['ls', '/nonexistent-xvs-lab']).status, 2, 'tryRun reports instead of throwing')
})

t.test('bridge topology: comes up, carries TCP to each real server, leaves nothing behind', needsRoot, async t => {
  const rootBefore = rootLinkNames()
  const topo = await createTopology({ shape: 'bridge', reals: 2 })
  t.teardown(() => topo.destroy())

  t.match(topo.id, /^xl[0-9a-f]{6}$/)
  t.same(topo.namespaces, ['sw', 'cli', 'dir', 'rs1', 'rs2'].map(n => `${topo.id}-${n}`))
  for (const ns of topo.namespaces) t.ok(ns.length <= 15, `${ns} fits IFNAMSIZ`)
  t.same(labNamespaces(topo.id).sort(), [...topo.namespaces].sort(), 'every namespace is in ip netns list')

  // The typed view matches the kernel.
  const dir = topo.director
  t.equal(dir.front, dir.back, 'one segment: front and back are the same interface')
  t.equal(dir.front.name, 'eth0')
  t.equal(dir.ipv4, '10.200.0.1')
  t.equal(dir.ipv6, 'fd00:200::1')
  t.same(topo.reals.map(r => [r.name, r.ipv4, r.ipv6]), [
    ['rs1', '10.200.0.101', 'fd00:200::101'],
    ['rs2', '10.200.0.102', 'fd00:200::102'],
  ])
  for (const node of topo.nodes) {
    for (const i of node.interfaces) {
      t.ok(i.ifindex > 0, `${node.name}/${i.name} has an ifindex`)
      t.match(i.mac, /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/, `${node.name}/${i.name} has a MAC`)
      t.equal(i.mtu, 1500)
      if (i.peer !== undefined) t.equal(topo.node(i.peer.node).iface(i.peer.name).peer?.ifindex, i.ifindex, `${node.name}/${i.name} and its peer point at each other`)
    }
  }
  const link = JSON.parse(topo.exec('dir', ['ip', '-j', 'link', 'show', 'dev', 'eth0'])) as { ifindex: number; address: string }[]
  t.equal(link[0]?.ifindex, dir.front.ifindex, 'ifindex as the kernel has it')
  t.equal(link[0]?.address, dir.front.mac, 'MAC as the kernel has it')
  t.equal(dir.front.peer?.name, 'p-dir')

  // TESTBED facts applied: xdp_pass on the director's peer, full checksums from every veth.
  const pdir = JSON.parse(topo.exec('sw', ['ip', '-j', 'link', 'show', 'dev', 'p-dir'])) as { xdp?: { prog?: { name?: string } } }[]
  t.equal(pdir[0]?.xdp?.prog?.name, 'xdp_pass', 'xdp_pass is attached to the bridge port facing the director')
  for (const [node, dev] of [['sw', 'p-dir'], ['sw', 'p-rs1'], ['cli', 'eth0'], ['rs1', 'eth0']] as const) {
    t.match(topo.exec(node, ['ethtool', '-k', dev]), /^tx-checksumming: off/m, `tx checksumming off on ${node}/${dev}`)
  }

  // DR setup: VIP on the real servers' lo, no ARP for it; the client reaches the VIP via the director.
  for (const rs of topo.reals) {
    t.match(topo.exec(rs, ['ip', 'addr', 'show', 'dev', 'lo']), new RegExp(`inet ${topo.vip.ipv4.replace(/\./g, '\\.')}/32`), `${rs.name} holds the VIP on lo`)
    t.match(topo.exec(rs, ['ip', '-6', 'addr', 'show', 'dev', 'lo']), `inet6 ${topo.vip.ipv6}/128`, `${rs.name} holds the IPv6 VIP on lo`)
    t.equal(topo.exec(rs, ['sysctl', '-n', 'net.ipv4.conf.all.arp_ignore']).trim(), '1')
    t.equal(topo.exec(rs, ['sysctl', '-n', 'net.ipv4.conf.all.arp_announce']).trim(), '2')
  }
  t.match(topo.exec('cli', ['ip', 'route', 'get', topo.vip.ipv4]), /via 10\.200\.0\.1 dev eth0/, 'client routes the VIP via the director')
  t.match(topo.exec('cli', ['ip', '-6', 'route', 'get', topo.vip.ipv6]), /via fd00:200::1 dev eth0/, 'and the IPv6 VIP too')
  t.match(topo.exec('dir', ['ip', 'addr', 'show', 'dev', 'lo']), `inet ${topo.vip.ipv4}/32`, 'the director holds the VIP')

  // TCP across the switch: each real server answers on its own addresses, with its own name.
  const servers = await startHttpServers(topo)
  t.same(servers.map(s => [s.name, s.port]), [
    ['rs1', 80],
    ['rs2', 80],
  ])
  for (const rs of topo.reals) {
    for (const host of [rs.ipv4, rs.ipv6]) {
      const res = await httpRequests(topo, topo.client, { host, count: 10, concurrency: 2 })
      t.same(res.byResponder, { [rs.name]: 10 }, `10 connections to ${host} answered by ${rs.name}`)
      t.same(res.errors, {}, 'without errors')
    }
  }
  const refused = await httpRequests(topo, 'cli', { host: topo.reals[0]!.ipv4, port: 81, count: 2 })
  t.match(refused, { ok: 0, failed: 2, byResponder: {}, errors: { ECONNREFUSED: 2 } }, 'failures are counted by reason')

  const pids = servers.map(s => s.pid)
  topo.destroy()
  t.ok(topo.destroyed)
  t.doesNotThrow(() => topo.destroy(), 'destroy is idempotent')
  t.throws(() => topo.exec('cli', ['true']), { code: 'ELAB' }, 'a destroyed lab refuses work')
  await assertGone(t, topo, pids)
  const appeared = [...rootLinkNames()].filter(n => !rootBefore.has(n) && topo.nodes.some(node => node.interfaces.some(i => i.name === n)))
  t.same(appeared, [], 'no interface name of the lab appeared in the root namespace')
})

t.test('routed topology: the director forwards client <-> real servers (kernel routing)', needsRoot, async t => {
  const topo = await createTopology({ shape: 'routed', reals: 2 })
  t.teardown(() => topo.destroy())

  const dir = topo.director
  t.equal(dir.front.name, 'pub')
  t.equal(dir.back.name, 'priv')
  t.equal(dir.front.peer?.node, 'cli', 'the client is wired to the public interface directly')
  t.equal(dir.back.peer?.name, 'p-dir', 'the private interface goes to the switch')
  t.same(topo.reals.map(r => r.ipv4), ['10.200.1.101', '10.200.1.102'])
  t.equal(topo.exec('dir', ['sysctl', '-n', 'net.ipv4.ip_forward']).trim(), '1')
  t.equal(topo.exec('dir', ['sysctl', '-n', 'net.ipv6.conf.all.forwarding']).trim(), '1')
  for (const rs of topo.reals) {
    t.match(topo.exec(rs, ['ip', 'route', 'show', 'default']), /via 10\.200\.1\.1 dev eth0/, `${rs.name}'s gateway is the director`)
    t.match(topo.exec(rs, ['ip', '-6', 'route', 'show', 'default']), /via fd00:201::1 dev eth0/)
  }
  t.equal(xdpOn(topo, 'cli', 'eth0'), 'xdp_pass', 'xdp_pass on the peer of pub')
  t.equal(xdpOn(topo, 'sw', 'p-dir'), 'xdp_pass', 'xdp_pass on the peer of priv')

  await forwardsEveryRequest(t, topo, (res) => t.same(res.errors, {}))

  topo.destroy()
  await assertGone(t, topo)
})

t.test('onearm topology: one director interface in two subnets carries client <-> real servers (kernel routing)', needsRoot, async t => {
  const topo = await createTopology({ shape: 'onearm', reals: 2 })
  t.teardown(() => topo.destroy())

  t.same(topo.namespaces, ['sw', 'cli', 'dir', 'rs1', 'rs2'].map(n => `${topo.id}-${n}`))
  const dir = topo.director
  t.equal(dir.front, dir.back, 'one interface: front and back are the same')
  t.equal(dir.front.name, 'eth0')
  t.equal(dir.front.peer?.name, 'p-dir', 'on the switch, like the client and the real servers')
  t.same([dir.ipv4, dir.ipv6], ['10.200.0.1', 'fd00:200::1'])
  t.same(dir.front.secondary, [{ address: '10.200.1.1', prefixLength: 24 }, { address: 'fd00:201::1', prefixLength: 64 }], 'and the real servers\' gateway addresses')
  const kernelAddrs = (JSON.parse(topo.exec('dir', ['ip', '-j', 'addr', 'show', 'dev', 'eth0'])) as { addr_info: { local: string; scope: string }[] }[])[0]!.addr_info
    .filter(a => a.scope === 'global').map(a => a.local).sort()
  t.same(kernelAddrs, ['10.200.0.1', '10.200.1.1', 'fd00:200::1', 'fd00:201::1'], 'the kernel has all four on eth0')
  t.same([topo.client.ipv4, topo.client.ipv6], ['10.200.0.10', 'fd00:200::10'])
  t.same(topo.reals.map(r => [r.ipv4, r.ipv6]), [['10.200.1.101', 'fd00:201::101'], ['10.200.1.102', 'fd00:201::102']])
  t.same(topo.switch.interfaces.map(i => i.name).sort(), ['br0', 'p-cli', 'p-dir', 'p-rs1', 'p-rs2'], 'one segment for everyone')
  t.equal(xdpOn(topo, 'sw', 'p-dir'), 'xdp_pass', 'xdp_pass on the peer of the director interface')
  t.match(topo.exec('dir', ['ip', 'addr', 'show', 'dev', 'lo']), `inet ${topo.vip.ipv4}/32`, 'the director holds the VIP')
  t.notMatch(topo.exec('rs1', ['ip', 'addr', 'show', 'dev', 'lo']), topo.vip.ipv4, 'the real servers do not')
  // Same wire, different subnets: each side reaches the other only through the director.
  for (const rs of topo.reals) {
    t.match(topo.exec(rs, ['ip', 'route', 'get', topo.client.ipv4]), /via 10\.200\.1\.1 dev eth0/, `${rs.name} reaches the client via the director`)
    t.match(topo.exec(rs, ['ip', '-6', 'route', 'get', topo.client.ipv6]), /via fd00:201::1 dev eth0/)
  }
  t.match(topo.exec('cli', ['ip', 'route', 'get', topo.reals[0]!.ipv4]), /via 10\.200\.0\.1 dev eth0/, 'the client reaches the real servers via the director')
  t.match(topo.exec('cli', ['ip', '-6', 'route', 'get', topo.reals[0]!.ipv6]), /via fd00:200::1 dev eth0/)

  await forwardsEveryRequest(t, topo, (res, host) =>
    t.same(res.byPeer, { [host.includes(':') ? topo.client.ipv6 : topo.client.ipv4]: 10 }, 'from the client\'s own address'))

  topo.destroy()
  await assertGone(t, topo)
})

t.test('destroy runs when the test body throws', needsRoot, async t => {
  let seen: Topology | undefined
  let serverPid = -1
  await t.rejects(
    withTopology({ reals: 1 }, async topo => {
      seen = topo
      serverPid = (await startHttpServer(topo, 'rs1')).pid
      t.equal(labNamespaces(topo.id).length, 4, 'the lab was up inside the body')
      throw new Error('boom from the test body')
    }),
    { message: 'boom from the test body' },
    'the body error reaches the caller unchanged',
  )
  t.ok(seen?.destroyed, 'the lab was destroyed')
  if (seen !== undefined) await assertGone(t, seen, [serverPid])
})

// Labs of the child processes below use their own prefix ('t' is not a hex digit, so the default
// sweep of concurrent test processes never matches them): only this file sweeps them, when it means to.
const CHILD_PREFIX = 'xlt'

// A child process creates a lab (and a server in it), reports it, and then dies as `mode` says.
const LAB_CHILD = `
const { createTopology } = require(${JSON.stringify(require.resolve('../../src/lab/topology'))})
const { startHttpServer } = require(${JSON.stringify(require.resolve('../../src/lab/http'))})
const mode = process.argv[1]
createTopology({ reals: 1, prefix: '${CHILD_PREFIX}' }).then(async topo => {
  const server = await startHttpServer(topo, 'rs1')
  process.stdout.write(JSON.stringify({ id: topo.id, namespaces: topo.namespaces, pid: process.pid, serverPid: server.pid }) + '\\n')
  if (mode === 'throw') setTimeout(() => { throw new Error('uncaught in lab child') }, 100)
  setTimeout(() => process.exit(3), 60000)
})
`

interface ChildReport {
  id: string
  namespaces: string[]
  pid: number
  serverPid: number
}

/** Runs LAB_CHILD in mode; resolves with its report and a promise of its exit. Bounded by timeouts. */
async function labChild(mode: 'throw' | 'wait'): Promise<{ report: ChildReport; kill: (sig: NodeJS.Signals) => void; exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }> }> {
  // process.execArgv carries tap's TypeScript loader, so the child can require the .ts sources.
  const child = spawn(process.execPath, [...process.execArgv, '-e', LAB_CHILD, mode], { stdio: ['ignore', 'pipe', 'pipe'] })
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>(resolve => child.once('exit', (code, signal) => resolve({ code, signal })))
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c))
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c))
  const report = await new Promise<ChildReport>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`lab child gave no report in 60 s: ${stderr}`))
    }, 60_000)
    const check = (): void => {
      const line = stdout.split('\n').find(l => l.startsWith('{'))
      if (line !== undefined) {
        clearTimeout(timer)
        resolve(JSON.parse(line) as ChildReport)
      }
    }
    child.stdout.on('data', check)
    void exited.then(() => {
      clearTimeout(timer)
      reject(new Error(`lab child exited without a report: ${stderr}`))
    })
  })
  return { report, kill: sig => child.kill(sig), exited }
}

t.test('a process that dies leaves nothing behind', needsRoot, async t => {
  t.test('uncaught exception', async t => {
    const c = await labChild('throw')
    t.equal(labNamespaces(c.report.id).length, 4, 'the lab was up')
    t.match(c.report.id, /^xlt[0-9a-f]{6}$/, 'the child lab has its own prefix')
    const { code } = await c.exited
    t.equal(code, 1, 'the process still died of its exception')
    await assertGone(t, c.report, [c.report.serverPid])
  })
  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    t.test(sig, async t => {
      const c = await labChild('wait')
      t.equal(labNamespaces(c.report.id).length, 4, 'the lab was up')
      c.kill(sig)
      const { signal } = await c.exited
      t.equal(signal, sig, `the process still died of ${sig}`)
      await assertGone(t, c.report, [c.report.serverPid])
    })
  }
  t.test('SIGKILL, then sweepStale()', async t => {
    const c = await labChild('wait')
    c.kill('SIGKILL')
    await c.exited
    t.same(labNamespaces(c.report.id).sort(), [...c.report.namespaces].sort(), 'nothing can run on SIGKILL: the namespaces survive')
    // Another process (a concurrent test file) may sweep first; either way they must be gone now.
    const swept = sweepStale(CHILD_PREFIX)
    t.same(swept.sort(), [...c.report.namespaces].sort(), 'sweepStale removes exactly the dead lab')
    await assertGone(t, c.report, [c.report.serverPid])
  })
  t.test('sweepStale leaves the labs of live processes alone', async t => {
    const topo = await createTopology({ reals: 1 })
    t.teardown(() => topo.destroy())
    const c = await labChild('wait')
    sweepStale()
    sweepStale(CHILD_PREFIX)
    t.equal(labNamespaces(topo.id).length, 4, 'our own lab survives the sweep')
    t.equal(labNamespaces(c.report.id).length, 4, "a live process's lab survives the sweep")
    c.kill('SIGTERM')
    await c.exited
    topo.destroy()
    await assertGone(t, c.report)
    await assertGone(t, topo)
  })
})

t.test('two labs at once do not clash', needsRoot, async t => {
  const [a, b] = await Promise.all([createTopology({ shape: 'bridge' }), createTopology({ shape: 'bridge' })])
  t.teardown(() => {
    a.destroy()
    b.destroy()
  })
  t.not(a.id, b.id, 'distinct lab ids')
  t.same(
    a.namespaces.filter(ns => b.namespaces.includes(ns)),
    [],
    'disjoint namespaces',
  )
  t.equal(a.reals[0]!.ipv4, b.reals[0]!.ipv4, 'the same addresses, isolated by their namespaces')
  // Each server answers with its namespace name, so a crossed wire would show.
  await Promise.all(
    [a, b].flatMap(topo => topo.reals.map(rs => startHttpServer(topo, rs, { name: rs.ns }))),
  )
  const results = await Promise.all(
    [a, b].flatMap(topo => topo.reals.map(async rs => ({ rs, res: await httpRequests(topo, 'cli', { host: rs.ipv4, count: 10, concurrency: 2 }) }))),
  )
  for (const { rs, res } of results) t.same(res.byResponder, { [rs.ns]: 10 }, `${rs.ns} answered its own lab's client`)
  a.destroy()
  t.equal(labNamespaces(b.id).length, 5, "destroying one lab leaves the other's alone")
  const again = await httpRequests(b, 'cli', { host: b.reals[1]!.ipv6, count: 3 })
  t.same(again.byResponder, { [b.reals[1]!.ns]: 3 }, 'and it keeps working')
  b.destroy()
  await assertGone(t, a)
  await assertGone(t, b)
})

t.test('bad options fail with one-line errors before touching the system', async t => {
  await t.rejects(createTopology({ reals: 0 }), { code: 'EARG', message: /reals must be an integer from 1 to 16/ })
  await t.rejects(createTopology({ mtu: 9000 }), { code: 'EARG', message: /mtu for client must be an integer from 1280 to 3506/ })
  await t.rejects(createTopology({ prefix: 'XL-' }), { code: 'EARG' })
  await t.rejects(createTopology({ shape: 'ring' as 'bridge' }), { code: 'EARG', message: /'bridge', 'routed' or 'onearm'/ })
  t.type(new XvsError('ELAB', 'x'), Error)
})
