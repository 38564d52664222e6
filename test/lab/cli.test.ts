// SPDX-License-Identifier: GPL-2.0-only
// The command lines as an operator uses them: separate `ip netns exec <director> xvsadm ...` and
// `xvs ...` processes in a namespace lab, meeting one state that each finds through the kernel (no
// bpffs is visible there). The LVS documentation's ipvsadm example typed verbatim with the lab's
// addresses: with -m (nat, not in the data plane yet) refused with state unchanged, with -g
// balancing real HTTP 1:3; the -Ln layout with live counters; xvs save | xvsadm -R round trip.
import t from 'tap'
import { needsRoot } from '../helpers/root'
import { xvsLab } from '../helpers/xvs-lab'
import { holdConnections } from '../helpers/held'
import { cliCommands, runIn } from '../helpers/cli'
import { httpRequests } from '../../src/lab/http'
import { parseIpvsadmRules } from '../../src/config'
import { IPVS_VERSION } from '../../src/cli/format'

process.env.XVS_BPFFS = '/nonexistent-bpffs' // as under ip netns exec: no pins anywhere

t.test('xvsadm and xvs in separate processes meet one state', needsRoot, async (t) => {
  const lab = await xvsLab(t)
  const { topo } = lab
  const ns = topo.director.ns
  const cmds = cliCommands()
  t.comment(`running the command lines from ${cmds.via}`)
  const xvsadm = (args: string, input?: string) => runIn(ns, [...cmds.xvsadm, ...args.split(' ')], input)
  const xvs = (args: string, input?: string) => runIn(ns, [...cmds.xvs, ...args.split(' ')], input)
  const vip = topo.vip.ipv4
  const [rs1, rs2] = [topo.reals[0]!.ipv4, topo.reals[1]!.ipv4]

  await t.test('the first command loads the data plane, and says so', async (t) => {
    t.equal(xvs('status').status, 4, 'xvs status: nothing loaded yet (exit 4)')
    const r = xvsadm(`-A -t ${vip}:80 -s wrr`)
    t.equal(r.status, 0, `xvsadm -A exit 0 ${r.stderr}`)
    t.match(r.stderr, /^xvsadm: no xvs data plane was loaded in this network namespace; loaded it on eth0 \(native XDP/, 'announced on stderr')
    const st = xvs('status --json')
    t.equal(st.status, 0, 'xvs status: loaded')
    const s = JSON.parse(st.stdout) as { attachments: { ifname: string; via: string }[] }
    t.same(s.attachments.map((a) => [a.ifname, a.via]), [['eth0', 'netlink']], 'on eth0 only, through netlink (no bpffs here)')
    const again = xvsadm(`-A -t ${vip}:80 -s wrr`)
    t.same([again.status, again.stderr], [255, 'Service already exists\n'], 'a second process finds the service: ipvsadm\'s error and status')
  })

  await t.test('-m (nat) is taken and shown as -m; -d takes it out again', async (t) => {
    const before = xvsadm('-S -n')
    t.equal(before.stdout, `-A -t ${vip}:80 -s wrr\n`, 'the service, with no real server')
    for (const [rs, w] of [[rs1, 1], [rs2, 3]] as const) {
      const r = xvsadm(`-a -t ${vip}:80 -r ${rs}:8080 -w ${w} -m`)
      t.same([r.status, r.stderr], [0, ''], `-a -r ${rs}:8080 -w ${w} -m`)
    }
    const saved = xvsadm('-S -n').stdout
    t.match(saved, new RegExp(`-a -t ${vip.replace(/\./g, '\\.')}:80 -r ${rs1.replace(/\./g, '\\.')}:8080 -m -w 1`), 'saved as -m, with the mapped port')
    const cross = xvsadm(`-a -t ${vip}:80 -r [fd00::1]:8080 -m`)
    t.equal(cross.status, 255, 'a real server of the other family: refused')
    t.match(cross.stderr, /famil/, 'saying why')
    for (const rs of [rs1, rs2]) t.equal(xvsadm(`-d -t ${vip}:80 -r ${rs}:8080`).status, 0, `-d ${rs}:8080`)
    t.equal(xvsadm('-S -n').stdout, before.stdout, 'back to the service alone')
  })

  await t.test('the example with -g balances real HTTP 1:3', async (t) => {
    for (const [rs, w] of [[rs1, 1], [rs2, 3]] as const) {
      const r = xvsadm(`-a -t ${vip}:80 -r ${rs} -w ${w} -g`)
      t.same([r.status, r.stderr], [0, ''], `-a -r ${rs} -w ${w} -g`)
    }
    const r = await httpRequests(topo, topo.client, { host: vip, count: 400, concurrency: 4, deadlineMs: 120_000 })
    t.equal(r.failed, 0, `no request failed ${JSON.stringify(r.errors)}`)
    const a = r.byResponder.rs1 ?? 0
    // Each CPU walks the IPVS sequence from its own cursor: at most one step off per CPU.
    t.ok(Math.abs(a - 100) <= 4, `rs1 (weight 1) answered ${a} of 400, rs2 (weight 3) ${r.byResponder.rs2 ?? 0}`)
  })

  await t.test('-Ln: ipvsadm\'s layout with live connection counts', async (t) => {
    const held = await holdConnections(topo, vip, 80, 8)
    let conns: { real: { address: string } | null; state: string }[] = []
    const count = (rs: string, active: boolean) => conns.filter((c) => c.real?.address === rs && (c.state === 'ESTABLISHED') === active).length
    const expected = () => `IP Virtual Server version ${IPVS_VERSION} (size=1048576)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  ${vip}:80 wrr
${[[rs1, 1], [rs2, 3]].map(([rs, w]) => `  -> ${`${rs}:80`.padEnd(28)} ${'Route'.padEnd(7)} ${String(w).padEnd(6)} ${String(count(rs as string, true)).padEnd(10)} ${String(count(rs as string, false)).padEnd(10)}\n`).join('')}`
    // Entries may expire between the two commands (closing states live seconds): then take both again.
    let ln = { status: null as number | null, stdout: '' }
    for (let i = 0; i < 3; i++) {
      conns = JSON.parse(xvs('conns --json').stdout) as typeof conns
      ln = xvsadm('-Ln')
      if (ln.stdout === expected()) break
    }
    const answers = await held.release()
    t.equal(answers.filter((x) => x.startsWith('rs')).length, 8, 'held connections answered')
    t.equal(ln.status, 0)
    t.equal(ln.stdout, expected(), 'counts per real server as the connection table holds them')
    t.equal(count(rs1, true) + count(rs2, true), 8, 'the 8 held connections are active')
    t.ok(count(rs1, false) + count(rs2, false) >= 390, 'the 400 finished ones are inactive (closing states)')
    const stats = xvsadm('-Ln --stats --exact')
    t.match(stats.stdout, new RegExp(`^TCP  ${vip.replace(/\./g, '\\.')}:80 +408 `, 'm'), 'the service counted 408 connections')
    const c = xvsadm('-Lnc')
    t.match(c.stdout, /^IPVS connection entries\npro expire state       source             virtual            destination\n/, '-Lnc header')
    t.match(c.stdout, new RegExp(`^TCP \\d\\d:\\d\\d  \\w+ +${topo.client.ipv4.replace(/\./g, '\\.')}:\\d+ +${vip.replace(/\./g, '\\.')}:80 +10\\.200\\.0\\.10[12]:80$`, 'm'), '-Lnc rows')
  })

  await t.test('xvs save | xvsadm -R round-trips to the same model', async (t) => {
    const xvsadmSet = xvsadm('--set 800 100 250')
    t.equal(xvsadmSet.status, 0, '--set')
    const saved = xvs('save')
    t.equal(saved.status, 0)
    const yaml = xvs('save --format yaml').stdout
    t.equal(xvsadm('-C').status, 0, 'xvsadm -C')
    t.equal(xvsadm('-Sn').stdout, '--set 800 100 250\n', 'cleared: only the timeouts remain')
    const restored = xvsadm('-R', saved.stdout)
    t.same([restored.status, restored.stderr], [0, ''], 'xvsadm -R reads what xvs save printed')
    t.equal(xvs('save').stdout, saved.stdout, 'the same rules')
    t.equal(xvs('save --format yaml').stdout, yaml, 'the same model (YAML, settings included)')
    t.same(parseIpvsadmRules(saved.stdout, 'saved').model.services, parseIpvsadmRules(xvsadm('-S -n').stdout, 'again').model.services, 'xvsadm -S agrees')
    const r = await httpRequests(topo, topo.client, { host: vip, count: 40, concurrency: 2 })
    t.equal(r.ok, 40, 'still forwarding after the round trip')
  })

  await t.test('xvs changes one thing at a time, and errors exit with their codes', async (t) => {
    const edit = xvs(`server edit -t ${vip}:80 -r ${rs1} -w 0`)
    t.same([edit.status, edit.stdout], [0, `~ tcp ${vip}:80: ${rs1}:80: weight 1 -> 0\n`], 'quiesce rs1')
    const r = await httpRequests(topo, topo.client, { host: vip, count: 40, concurrency: 2 })
    t.same(r.byResponder, { rs2: 40 }, 'every new connection goes to rs2')
    const dup = xvs(`server add -t ${vip}:80 -r ${rs1}`)
    t.equal(dup.status, 3, 'already there: exit 3')
    t.match(dup.stderr, /^xvs: tcp 10\.200\.99\.1:80: real server 10\.200\.0\.101:80 already exists\nhint: /)
    const bad = xvs(`service add -t ${vip}:81 -s wrrr`)
    t.same([bad.status, bad.stderr], [1, "xvs: 'wrrr' is not a scheduler; did you mean 'wrr'?\n"], 'usage error: exit 1')
    const table = JSON.parse(xvs(`inspect tables -t ${vip}:80 --json`).stdout) as { rows: { live: boolean; share: Record<string, number> }[] }
    const live = table.rows.find((x) => x.live)!
    t.same(Object.keys(live.share).length, 1, 'the live wrr table holds only rs2')
    t.equal(xvs('unload').stdout, 'detached from eth0\n', 'xvs unload')
    t.equal(xvsadm('-Ln').stderr.split('\n')[0]!.startsWith('xvsadm: no xvs data plane was loaded'), true, 'the next xvsadm loads a fresh one')
    t.equal(xvsadm('-S -n').stdout, '', 'with nothing in it')
  })
})
