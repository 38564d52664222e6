#!/usr/bin/env node
// SPDX-License-Identifier: GPL-2.0-only
// `xvs`: the director's command line. Load and unload the data plane, apply a config, change one
// service or real server, list, count, watch rates, save and restore, import other formats, and
// decode any map. State lives where the Backend says (backend.ts): without a daemon, in this
// network namespace's maps, found through the kernel.
import { Command, CommanderError, Option } from 'commander'
import { FORMATS, parseConfig, parseIpvsadmArgv, toIpvsadmRules, toYaml, type ConfigFormat, type ServiceRef } from '../config'
import { familyOf, parseNetmask, parseUint } from '../model/addr'
import { DEFAULT_PERSISTENCE_TIMEOUT, MAX_TIMEOUT, MAX_WEIGHT, MAX_THRESHOLD, defaultNetmask } from '../model/defaults'
import { suggestion } from '../model/suggest'
import { METHODS, SCHEDULERS, SCHED_FLAGS, type Method, type Persistence, type SchedFlag, type Scheduler } from '../model/types'
import { serviceKey } from '../model/diff'
import { loadDecap, unloadDecap } from '../dataplane/decap'
import { MAP_KINDS, StateError, type Backend, type Edit, type MapKind, type ServerSettings, type ServiceSettings } from './backend'
import { DirectBackend } from './direct'
import { XvsError } from '../errors'
import { SocketBackend, withDaemon } from './socket'
import { daemonCommand, runDaemonWithFlags, type DaemonFlags } from '../daemon/main'
import { socketPath } from '../daemon/client'
import { refText } from './edits'
import { EXIT, EXIT_HELP, UsageError, errorText, exitCodeOf } from './exit'
import { formatApply, formatConns, formatCounters, formatDiff, formatList, formatStatus, numeric, rates, table, type NameOf } from './format'
import { cliLogger, packageVersion, processIo, type CliIo } from './io'
import { resolveNames } from './names'
import type { Logger } from '../log'
import { formatFailoverStatus } from '../ha/status'

export interface CliContext {
  io: CliIo
  /** The backend commands use (created on first use). */
  backend(): Backend
  log: Logger
  /** Set by a command that ends with a non-zero status without an error (status: not loaded). */
  exitCode: number
}

const collect = (v: string, prev: string[]): string[] => [...prev, v]
const json = (v: unknown): string => `${JSON.stringify(v, null, 2)}\n`

type ServiceArgs = { tcp?: string; udp?: string; fwmark?: string }

/** The one -t / -u / -f given, as ipvsadm's flag and its text. */
function serviceArg(o: ServiceArgs, required: boolean): [string, string] | undefined {
  const given = ([['-t', o.tcp], ['-u', o.udp], ['-f', o.fwmark]] as const).filter(([, v]) => v !== undefined)
  if (given.length > 1) throw new UsageError(`give one service: ${given.map(([f]) => f).join(' and ')} were both given`)
  if (given.length === 0) {
    if (required) throw new UsageError('no service given', 'name it with -t VIP:PORT (TCP), -u VIP:PORT (UDP) or -f MARK (a service group)')
    return undefined
  }
  return [given[0]![0], given[0]![1]!]
}

/** -t / -u / -f as a ServiceRef, with ipvsadm's parsing and wording. */
function serviceRefOf(o: ServiceArgs, required: true): ServiceRef
function serviceRefOf(o: ServiceArgs, required: false): ServiceRef | undefined
function serviceRefOf(o: ServiceArgs, required: boolean): ServiceRef | undefined {
  const arg = serviceArg(o, required)
  return arg && (parseIpvsadmArgv(['-D', ...arg]) as { service: ServiceRef }).service
}

function familyOfRef(ref: ServiceRef): 4 | 6 {
  return ref.kind === 'group' ? ref.family : (familyOf(ref.vip) ?? 4)
}

function number(text: string, what: string, min: number, max: number): number {
  const n = parseUint(text, max)
  if (n === undefined || n < min) throw new UsageError(`${what} '${text}' is not a whole number in ${min}..${max}`)
  return n
}

function schedulerOf(name: string): Scheduler {
  if (!(SCHEDULERS as readonly string[]).includes(name)) throw new UsageError(`'${name}' is not a scheduler${suggestion(name, SCHEDULERS)}`)
  return name as Scheduler
}

interface ServiceOpts extends ServiceArgs {
  scheduler?: string; persistent?: string | boolean; netmask?: string
  schedFlags?: string; mhTableSize?: string
}

function serviceSettingsOf(o: ServiceOpts, ref: ServiceRef): ServiceSettings {
  const s: ServiceSettings = {}
  if (o.scheduler !== undefined) s.scheduler = schedulerOf(o.scheduler)
  if (o.schedFlags !== undefined) {
    s.schedFlags = o.schedFlags.split(',').map((f) => {
      if (!(SCHED_FLAGS as readonly string[]).includes(f)) throw new UsageError(`'${f}' is not a scheduler flag${suggestion(f, SCHED_FLAGS)}`)
      return f as SchedFlag
    })
  }
  if (o.persistent === false) {
    if (o.netmask !== undefined) throw new UsageError('--netmask with --no-persistent', 'a netmask belongs to persistence; drop one of them')
    s.persistence = null
  } else if (o.persistent !== undefined) {
    const timeout = o.persistent === true ? DEFAULT_PERSISTENCE_TIMEOUT : number(o.persistent, 'persistence timeout', 1, MAX_TIMEOUT)
    const family = familyOfRef(ref)
    let netmask = defaultNetmask(family)
    if (o.netmask !== undefined) {
      const m = parseNetmask(o.netmask, family)
      if (m === undefined) {
        throw new UsageError(`'${o.netmask}' is not a persistence netmask for an IPv${family} service`,
          family === 4 ? 'use a contiguous dotted mask such as 255.255.255.0 (or /24)' : 'use a prefix length 1..128 such as 64')
      }
      netmask = m
    }
    s.persistence = { timeout, netmask } satisfies Persistence
  } else if (o.netmask !== undefined) {
    throw new UsageError('--netmask without --persistent', 'the netmask says which clients share persistence: give -p [SECONDS] too')
  }
  if (o.mhTableSize !== undefined) s.mhTableSize = number(o.mhTableSize, '--mh-table-size', 2, 131071)
  return s
}

interface ServerOpts extends ServiceArgs {
  realServer?: string; weight?: string; method?: string
  gatewaying?: boolean; ipip?: boolean; masquerading?: boolean; fullnat?: boolean; uThreshold?: string; lThreshold?: string
}

function serverOf(o: ServerOpts): { service: ServiceRef; server: { address: string; port: number }; settings: ServerSettings } {
  const arg = serviceArg(o, true)!
  if (o.realServer === undefined) throw new UsageError('no real server given', 'name it with -r RIP[:PORT]')
  // As ipvsadm -d reads it: the port as written, else the service's.
  const { service, server } = parseIpvsadmArgv(['-d', ...arg, '-r', o.realServer]) as { service: ServiceRef; server: { address: string; port: number } }
  const methods: Method[] = o.method !== undefined ? [o.method as Method] : [] // commander checked the choice
  if (o.gatewaying) methods.push('dr')
  if (o.ipip) methods.push('tun')
  if (o.masquerading) methods.push('nat')
  if (o.fullnat) methods.push('fullnat')
  if (methods.length > 1) throw new UsageError(`give one forwarding method, not ${methods.join(' and ')}`)
  const settings: ServerSettings = {}
  if (methods[0]) settings.method = methods[0]
  if (o.weight !== undefined) settings.weight = number(o.weight, 'weight', 0, MAX_WEIGHT)
  if (o.uThreshold !== undefined) settings.upperThreshold = number(o.uThreshold, 'upper threshold', 0, MAX_THRESHOLD)
  if (o.lThreshold !== undefined) settings.lowerThreshold = number(o.lThreshold, 'lower threshold', 0, MAX_THRESHOLD)
  return { service, server, settings }
}

function serviceOptions(c: Command, required = true): Command {
  const t = required ? '' : ' (optional)'
  return c
    .option('-t, --tcp <vip:port>', `a TCP service: VIP:PORT or [IPv6]:PORT${t}`)
    .option('-u, --udp <vip:port>', `a UDP service${t}`)
    .option('-f, --fwmark <mark>', `a service group (ipvsadm's firewall-mark service)${t}`)
}

async function namesFor(numericOnly: boolean, addresses: () => string[]): Promise<NameOf> {
  return numericOnly ? numeric : resolveNames(addresses())
}

function snapshotAddresses(s: Awaited<ReturnType<Backend['snapshot']>>): string[] {
  return s.services.flatMap((r) => [...(r.service.kind === 'group' ? [] : [r.service.vip]), ...r.reals.map((x) => x.server.address)])
}

async function readConfigText(ctx: CliContext, file: string | undefined): Promise<{ text: string; name: string }> {
  if (file === undefined || file === '-') return { text: await ctx.io.readStdin(), name: 'stdin' }
  try {
    return { text: ctx.io.readFile(file), name: file }
  } catch (e) {
    throw new UsageError(`cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, 'check the path')
  }
}

function formatOf(from: string | undefined): ConfigFormat | undefined {
  if (from === undefined) return undefined
  if (!(FORMATS as readonly string[]).includes(from)) throw new UsageError(`'${from}' is not a config format${suggestion(from, FORMATS)}`)
  return from as ConfigFormat
}

const EXAMPLES = (lines: string[]): string => `\nExamples:\n${lines.map((l) => `  ${l}`).join('\n')}\n`

/** The `xvs` program. Parsing and help need no root; actions reach the kernel through ctx.backend(). */
export function buildXvs(ctx: CliContext): Command {
  const program = new Command('xvs')
  program
    .description('xvs, the XDP Virtual Server: an LVS/IPVS-compatible layer-4 load balancer with its packet path in XDP')
    .usage('<command> [options]')
    .version(packageVersion(), '-V, --version', 'print the version')
    .helpOption('-h, --help', 'show help for xvs or a command (xvs help COMMAND)')
    .configureOutput({ writeOut: (s) => ctx.io.out(s), writeErr: (s) => ctx.io.err(s), outputError: () => {} })
    .exitOverride()
    .showSuggestionAfterError(true)
    .addHelpText('after', `
State:
  Commands act on the data plane of the current network namespace (under \`ip netns exec NS\` on NS's).
  Separate invocations meet the same state: it is found through the kernel (the program attached to the
  namespace's interfaces and its maps by id), so no daemon and no bpffs are needed.
  Commands that change state load the data plane on every up interface with an address when none runs.
${EXAMPLES([
      'xvs load -i eth0                          attach the director to eth0',
      'xvs apply /etc/xvs/xvs.yaml               make the maps match a config (a diff; no flow lost)',
      'xvs service add -t 192.0.2.10:80 -s wrr   one service; then its real servers:',
      'xvs server add -t 192.0.2.10:80 -r 10.0.0.11 -w 3',
      'xvs list -n                               ipvsadm -Ln layout',
      'xvs save > rules; xvs restore rules       ipvsadm rules out and back in',
      'xvs inspect tables -t 192.0.2.10:80       a service\'s scheduler table, decoded',
    ])}
${EXIT_HELP}

Environment:
  XVS_LOG_LEVEL   pino level of the log written to stderr (default warn)
  XVS_BPFFS       bpffs to pin under (default /sys/fs/bpf when it is one)

See also: xvsadm --help (ipvsadm's command line, flag for flag).
`)

  // ---- load / unload / status ----
  program.command('load')
    .description('load the director program and attach it; a running one is replaced atomically, keeping its maps and flows')
    .option('-i, --iface <name>', 'interface to attach to (repeat for more); default every up interface with an address except lo', collect, [])
    .addOption(new Option('--mode <mode>', 'XDP mode').choices(['native', 'generic']).default('native'))
    .option('--conn-table-size <n>', 'connection table entries (a new data plane only)', '1048576')
    .addHelpText('after', EXAMPLES(['xvs load', 'xvs load -i eth0 -i eth1 --mode generic', 'xvs load --conn-table-size 4194304']))
    .action(async (o: { iface: string[]; mode: 'native' | 'generic'; connTableSize: string }) => {
      const r = await ctx.backend().load({ ifaces: o.iface, mode: o.mode, connTableSize: number(o.connTableSize, '--conn-table-size', 1, 2 ** 28) })
      if (r.attached.length) ctx.io.out(`attached to ${r.attached.join(', ')} (${r.mode})\n`)
      if (r.replaced.length) ctx.io.out(`replaced the program on ${r.replaced.join(', ')} atomically\n`)
      ctx.io.out(`program id ${r.progId}; ${r.adopted ? 'kept the running maps' : 'new maps'}; connection table ${r.connTableSize} entries\n`)
    })

  program.command('unload')
    .description('detach the director; when it is attached nowhere the kernel frees it and its maps (flows are lost)')
    .option('-i, --iface <name>', 'detach only from this interface (repeatable)', collect, [])
    .addHelpText('after', EXAMPLES(['xvs unload', 'xvs unload -i eth1']))
    .action(async (o: { iface: string[] }) => {
      const done = await ctx.backend().unload(o.iface)
      ctx.io.out(done.length ? `detached from ${done.join(', ')}\n` : 'no xvs data plane was attached here\n')
    })

  program.command('status')
    .description('what is attached where, the program and ABI version, and how full the maps are; exit status 4 when nothing is loaded')
    .option('--json', 'print JSON')
    .addHelpText('after', EXAMPLES(['xvs status', 'ip netns exec lb1 xvs status --json']))
    .action(async (o: { json?: boolean }) => {
      const b = ctx.backend()
      const s = await b.status()
      // With a daemon running, its own state too (config generation, last reload, health).
      const d = b instanceof SocketBackend ? await b.daemonStatus() : null
      ctx.io.out(o.json ? json({ ...(s ? { loaded: true, ...s } : { loaded: false }), ...(d ? { daemon: d } : {}) }) : formatStatus(s) + (d ? formatDaemonStatus(d) : ''))
      if (!s) ctx.exitCode = EXIT.NOT_LOADED
    })

  program.command('reload')
    .description('make the running xvs daemon re-read its config file; a file it refuses leaves its config in force (exit 1, with the position)')
    .option('--json', 'print the daemon\'s report as JSON')
    .addHelpText('after', EXAMPLES(['xvs reload', 'XVS_SOCKET=/run/xvs/lb1.sock xvs reload']))
    .action(async (o: { json?: boolean }) => {
      const b = ctx.backend()
      if (!(b instanceof SocketBackend) || !(await b.daemon())) {
        const why = b instanceof SocketBackend ? b.absentReason : `no xvs daemon answers on ${socketPath()}`
        throw new XvsError('ENODAEMON', why, { hint: 'start it (systemctl start xvs, or xvs daemon --config FILE); without a daemon, xvs apply FILE' })
      }
      const r = await b.reload()
      for (const w of r.warnings) ctx.io.err(`xvs: warning: ${w}\n`)
      ctx.io.out(o.json ? json(r) : `config reloaded from ${r.file} (${r.format}): generation ${r.generation}` +
        `${r.result ? `; services +${r.result.services.added} -${r.result.services.removed} ~${r.result.services.changed}, real servers +${r.result.reals.added} -${r.result.reals.removed} ~${r.result.reals.changed}` : ''}` +
        `; health checks +${r.health.added} -${r.health.removed} =${r.health.kept}\n`)
    })

  program.addCommand(daemonCommand().copyInheritedSettings(program)
    .addHelpText('after', EXAMPLES(['xvs daemon --config /etc/xvs/xvs.yaml', 'xvs daemon -c /etc/xvs/keepalived.conf --metrics off --socket /run/xvs/lb1.sock']))
    .action(async (o: DaemonFlags) => { await runDaemonWithFlags(o) }))

  // ---- config ----
  program.command('apply')
    .description('make the data plane run a config: validated first (nothing applied on error), then only the difference is written')
    .argument('<file>', 'config file (xvs YAML, ipvsadm rules, keepalived.conf or lvs.cf); - for stdin')
    .option('--from <format>', `format of the file: ${FORMATS.join(', ')} (default: from its name and content)`)
    .option('--dry-run', 'print what would change, apply nothing')
    .option('--json', 'print the difference as JSON')
    .addHelpText('after', EXAMPLES(['xvs apply /etc/xvs/xvs.yaml', 'xvs apply --dry-run /etc/keepalived/keepalived.conf', 'ipvsadm-save -n | xvs apply --from ipvsadm -']))
    .action(async (file: string, o: { from?: string; dryRun?: boolean; json?: boolean }) => {
      const { text, name } = await readConfigText(ctx, file)
      const parsed = parseConfig(text, name, formatOf(o.from))
      for (const w of parsed.warnings) ctx.io.err(`xvs: warning: ${w.where}: ${w.message}\n`)
      const r = await ctx.backend().apply(parsed.model, { dryRun: o.dryRun ?? false })
      for (const n of r.notes) ctx.io.err(`xvs: note: ${n}\n`)
      ctx.io.out(o.json ? json(r) : formatApply(r, { dryRun: o.dryRun ?? false }))
    })

  // ---- services and real servers ----
  const service = program.command('service').description('add, change or delete one virtual service (ipvsadm -A -E -D)')
    .addHelpText('after', EXAMPLES(['xvs service add -t 192.0.2.10:80 -s wrr', 'xvs service edit -t 192.0.2.10:80 -s mh', 'xvs service del -t 192.0.2.10:80']))
  const serviceAttrs = (c: Command): Command => serviceOptions(c)
    .option('-s, --scheduler <name>', `${SCHEDULERS.join(' ')} (default wlc)`)
    .option('-p, --persistent [seconds]', `persistent service: a client sticks to its real server (default ${DEFAULT_PERSISTENCE_TIMEOUT} s)`)
    .option('-M, --netmask <mask>', 'persistence granularity: a dotted mask (IPv4) or a prefix length (IPv6)')
    .option('-b, --sched-flags <list>', `scheduler flags, comma-separated: ${SCHED_FLAGS.join(', ')}`)
    .option('--mh-table-size <prime>', 'Maglev table size for mh (a prime up to 131071; default 16381)')
  serviceAttrs(service.command('add'))
    .description('add a virtual service (ipvsadm -A); it has no real servers until `xvs server add`')
    .addHelpText('after', EXAMPLES(['xvs service add -t 192.0.2.10:80 -s wrr', 'xvs service add -u [2001:db8::53]:53 -s mh --mh-table-size 65537', 'xvs service add -t 192.0.2.10:443 -s rr -p 600 -M 255.255.255.0']))
    .action(async (o: ServiceOpts) => {
      const ref = serviceRefOf(o, true)
      await runEdit(ctx, { op: 'add-service', service: ref, settings: serviceSettingsOf(o, ref) })
    })
  serviceAttrs(service.command('edit'))
    .option('--no-persistent', 'make the service not persistent')
    .description('change a service; attributes not given keep their values (unlike ipvsadm -E, which resets them)')
    .addHelpText('after', EXAMPLES(['xvs service edit -t 192.0.2.10:80 -s mh', 'xvs service edit -t 192.0.2.10:80 --no-persistent']))
    .action(async (o: ServiceOpts) => {
      const ref = serviceRefOf(o, true)
      await runEdit(ctx, { op: 'edit-service', service: ref, settings: serviceSettingsOf(o, ref) })
    })
  serviceOptions(service.command('del'))
    .alias('delete')
    .description('delete a service and its real servers (ipvsadm -D); its flows stop being forwarded')
    .addHelpText('after', EXAMPLES(['xvs service del -t 192.0.2.10:80']))
    .action(async (o: ServiceOpts) => runEdit(ctx, { op: 'delete-service', service: serviceRefOf(o, true) }))

  const server = program.command('server').description('add, change or delete one real server of a service (ipvsadm -a -e -d)')
    .addHelpText('after', EXAMPLES(['xvs server add -t 192.0.2.10:80 -r 10.0.0.11 -w 3', 'xvs server edit -t 192.0.2.10:80 -r 10.0.0.11 -w 0', 'xvs server del -t 192.0.2.10:80 -r 10.0.0.11']))
  const serverAttrs = (c: Command): Command => serviceOptions(c)
    .option('-r, --real-server <rip[:port]>', 'the real server; the port defaults to the service port (dr and tun cannot change it)')
    .option('-w, --weight <n>', 'weight 0..65535 (0 quiesces: no new connections; default 1)')
    .addOption(new Option('--method <method>', 'forwarding method (default dr)').choices([...METHODS]))
    .option('-g, --gatewaying', 'direct routing (--method dr)')
    .option('-i, --ipip', 'IP-in-IP tunnelling (--method tun)')
    .option('-m, --masquerading', 'NAT (--method nat)')
    .option('--fullnat', 'source and destination NAT (--method fullnat)')
    .option('-x, --u-threshold <n>', 'stop new connections above this many (0: no limit)')
    .option('-y, --l-threshold <n>', 'resume below this many (0: no limit)')
  serverAttrs(server.command('add'))
    .description('add a real server to a service (ipvsadm -a)')
    .addHelpText('after', EXAMPLES(['xvs server add -t 192.0.2.10:80 -r 10.0.0.11 -w 3', 'xvs server add -t 192.0.2.10:80 -r 10.0.0.12 --method tun']))
    .action(async (o: ServerOpts) => {
      const s = serverOf(o)
      await runEdit(ctx, { op: 'add-server', ...s })
    })
  serverAttrs(server.command('edit'))
    .description('change a real server; attributes not given keep their values (unlike ipvsadm -e)')
    .addHelpText('after', EXAMPLES(['xvs server edit -t 192.0.2.10:80 -r 10.0.0.11 -w 0      quiesce it']))
    .action(async (o: ServerOpts) => {
      const s = serverOf(o)
      await runEdit(ctx, { op: 'edit-server', ...s })
    })
  serviceOptions(server.command('del'))
    .alias('delete')
    .option('-r, --real-server <rip[:port]>', 'the real server')
    .description('remove a real server (ipvsadm -d); its flows drop or move per expire_nodest_conn')
    .addHelpText('after', EXAMPLES(['xvs server del -t 192.0.2.10:80 -r 10.0.0.11']))
    .action(async (o: ServerOpts) => {
      const { service: ref, server: srv } = serverOf(o)
      await runEdit(ctx, { op: 'delete-server', service: ref, server: srv })
    })

  // ---- listings ----
  serviceOptions(program.command('list'), false)
    .description('list services and real servers with their connection counts (ipvsadm -L layout)')
    .option('-n, --numeric', 'numeric addresses and ports (no name lookups)')
    .option('--nosort', 'in the data plane\'s order instead of sorted')
    .option('--json', 'print JSON')
    .addHelpText('after', EXAMPLES(['xvs list -n', 'xvs list -n -t 192.0.2.10:80', 'xvs list --json']))
    .action(async (o: ServiceOpts & { numeric?: boolean; nosort?: boolean; json?: boolean }) => {
      const ref = serviceRefOf(o, false)
      const snap = await ctx.backend().snapshot()
      const only = ref ? snap.services.find((s) => serviceKey(s.service) === serviceKey(ref)) : undefined
      if (ref && !only) throw new StateError('no-service', `${refText(ref)}: no such service`)
      if (o.json) return ctx.io.out(json(only ?? snap))
      const names = await namesFor(o.numeric ?? false, () => snapshotAddresses(snap))
      ctx.io.out(formatList(snap, { names, sort: !o.nosort }, only))
    })

  program.command('stats')
    .description('per-service and per-real-server totals (ipvsadm -L --stats layout), then the global counters')
    .option('-n, --numeric', 'numeric addresses and ports')
    .option('--exact', 'exact numbers instead of K/M/G/T')
    .option('--all', 'also counters that are zero')
    .option('--json', 'print JSON')
    .addHelpText('after', EXAMPLES(['xvs stats -n', 'xvs stats --exact --all']))
    .action(async (o: { numeric?: boolean; exact?: boolean; all?: boolean; json?: boolean }) => {
      const snap = await ctx.backend().snapshot()
      if (o.json) return ctx.io.out(json(snap))
      const names = await namesFor(o.numeric ?? false, () => snapshotAddresses(snap))
      ctx.io.out(`${formatList(snap, { stats: true, exact: o.exact ?? false, names })}\nCounters:\n${formatCounters(snap.counters, { all: o.all ?? false })}`)
    })

  program.command('rate')
    .description('rates per second (ipvsadm -L --rate layout): the counters sampled twice, --interval apart')
    .option('--interval <seconds>', 'time between the two samples', '1')
    .option('-n, --numeric', 'numeric addresses and ports')
    .option('--exact', 'exact numbers')
    .option('--json', 'print JSON')
    .addHelpText('after', EXAMPLES(['xvs rate -n', 'xvs rate --interval 5 --json']))
    .action(async (o: { interval: string; numeric?: boolean; exact?: boolean; json?: boolean }) => {
      const seconds = Number(o.interval)
      if (!Number.isFinite(seconds) || seconds <= 0 || seconds > 3600) throw new UsageError(`--interval '${o.interval}' is not a number of seconds in (0, 3600]`)
      const a = await ctx.backend().snapshot()
      await ctx.io.sleep(seconds * 1000)
      const r = rates(a, await ctx.backend().snapshot())
      if (o.json) return ctx.io.out(json(r))
      const names = await namesFor(o.numeric ?? false, () => snapshotAddresses(r))
      ctx.io.out(`${formatList(r, { rate: true, exact: o.exact ?? false, names })}\nCounters per second:\n${formatCounters(r.counters)}`)
    })

  program.command('conns')
    .description('the connection table (ipvsadm -L -c layout): expired entries are left out')
    .option('-n, --numeric', 'numeric addresses and ports')
    .option('--json', 'print JSON')
    .addHelpText('after', EXAMPLES(['xvs conns -n', 'xvs conns --json']))
    .action(async (o: { numeric?: boolean; json?: boolean }) => {
      const rows = await ctx.backend().conns()
      if (o.json) return ctx.io.out(json(rows))
      const names = await namesFor(o.numeric ?? false, () => rows.flatMap((c) => [c.client.address, c.virtual.address, ...(c.real ? [c.real.address] : [])]))
      ctx.io.out(formatConns(rows, names))
    })

  serviceOptions(program.command('zero'), false)
    .description('zero the statistics of one service and its real servers, or of everything (ipvsadm -Z)')
    .addHelpText('after', EXAMPLES(['xvs zero', 'xvs zero -t 192.0.2.10:80']))
    .action(async (o: ServiceOpts) => ctx.backend().zero(serviceRefOf(o, false)))

  program.command('clear')
    .description('delete every service (ipvsadm -C); the data plane stays loaded')
    .addHelpText('after', EXAMPLES(['xvs clear']))
    .action(async () => runEdit(ctx, { op: 'clear' }))

  // ---- save / restore / import ----
  program.command('save')
    .description('print what the data plane runs as rules `ipvsadm -R` and `xvsadm -R` accept (or as xvs YAML)')
    .addOption(new Option('--format <format>', 'output format').choices(['ipvsadm', 'yaml']).default('ipvsadm'))
    .addHelpText('after', EXAMPLES(['xvs save > /etc/xvs/rules', 'xvs save --format yaml > /etc/xvs/xvs.yaml', 'xvs save | ip netns exec lb2 xvsadm -R']))
    .action(async (o: { format: 'ipvsadm' | 'yaml' }) => {
      const m = await ctx.backend().current()
      ctx.io.out(o.format === 'yaml' ? toYaml(m) : toIpvsadmRules(m))
    })

  program.command('restore')
    .description('make the data plane run saved rules (replacing what runs; a diff, like apply); reads stdin without FILE')
    .argument('[file]', 'rules file; default stdin')
    .option('--from <format>', `format: ${FORMATS.join(', ')} (default ipvsadm)`)
    .addHelpText('after', EXAMPLES(['xvs restore < /etc/xvs/rules', 'xvs restore /etc/xvs/xvs.yaml --from yaml']))
    .action(async (file: string | undefined, o: { from?: string }) => {
      const { text, name } = await readConfigText(ctx, file)
      // Empty rules (everything deleted) have no format to detect: stdin defaults to ipvsadm rules.
      const parsed = parseConfig(text, name, formatOf(o.from) ?? (name === 'stdin' ? 'ipvsadm' : undefined))
      for (const w of parsed.warnings) ctx.io.err(`xvs: warning: ${w.where}: ${w.message}\n`)
      const r = await ctx.backend().apply(parsed.model)
      for (const n of r.notes) ctx.io.err(`xvs: note: ${n}\n`)
      ctx.io.out(formatApply(r))
    })

  program.command('import')
    .description('translate a config of another format to xvs YAML (prints it; applies nothing)')
    .argument('<file>', 'the file; - for stdin')
    .requiredOption('--from <format>', `its format: ${FORMATS.filter((f) => f !== 'yaml').join(', ')}`)
    .addHelpText('after', EXAMPLES(['xvs import /etc/keepalived/keepalived.conf --from keepalived > xvs.yaml', 'ipvsadm-save -n | xvs import - --from ipvsadm']))
    .action(async (file: string, o: { from: string }) => {
      const { text, name } = await readConfigText(ctx, file)
      const parsed = parseConfig(text, name, formatOf(o.from))
      for (const w of parsed.warnings) ctx.io.err(`xvs: warning: ${w.where}: ${w.message}\n`)
      ctx.io.out(toYaml(parsed.model))
    })

  // ---- inspect ----
  serviceOptions(program.command('inspect'), false)
    .description('decode a map of the running data plane')
    .argument('<map>', MAP_KINDS.join(' | '))
    .option('--all', 'reals: removed entries too; tables: every slot; counters: zero ones too')
    .option('--json', 'print JSON')
    .addHelpText('after', `
Maps:
  services    xvs_services: service key -> id, scheduler, flags, live table half and size
  reals       xvs_reals: real id -> address, port, method, weight, flags, next hop
  tables      xvs_svc_tables: each service's scheduler tables (both halves), slots per real id
  conns       xvs_conns: flows (and persistence templates) with state, time left, fullnat local address
  counters    xvs_counters: global counters by name (from the object's BTF), summed over CPUs
  settings    xvs_settings: timeouts, expire_nodest_conn, tunnel defaults, nat switch, fullnat ports
  stats       xvs_svc_stats and xvs_real_stats, summed over CPUs
  rr-cursor   xvs_rr_cursor: each service's per-CPU rr/wrr position
  tx-ports    xvs_tx_ports: egress interfaces for redirects
  nat-rev     xvs_nat_rev: nat/fullnat reply tuples -> the client flow they are translated to
  laddrs      xvs_laddrs: the fullnat local address pool
${EXAMPLES(['xvs inspect services', 'xvs inspect tables -t 192.0.2.10:80 --json', 'xvs inspect counters --all'])}`)
    .action(async (map: string, o: ServiceOpts & { all?: boolean; json?: boolean }) => {
      if (!(MAP_KINDS as readonly string[]).includes(map)) throw new UsageError(`'${map}' is not a map xvs decodes${suggestion(map, MAP_KINDS)}`)
      const service = serviceRefOf(o, false)
      const r = await ctx.backend().inspect(map as MapKind, { ...(service ? { service } : {}), all: o.all ?? false })
      ctx.io.out(o.json ? json(r) : `# ${r.sources.join(', ')}\n${table(r.rows)}`)
    })

  // ---- decap (real servers of tun services) ----
  const decap = program.command('decap').description('the tunnel decapsulation program for real servers of tun services')
    .addHelpText('after', EXAMPLES(['xvs decap load -i eth0', 'xvs decap unload']))
  decap.command('load')
    .description('attach decap to interfaces; it strips the outer header of tunnel packets addressed to this host')
    .option('-i, --iface <name>', 'interface (repeatable; required)', collect, [])
    .option('--address <ip>', 'outer destination to decapsulate (repeatable; default every global address of the interfaces)', collect, [])
    .addOption(new Option('--mode <mode>', 'XDP mode').choices(['native', 'generic']).default('native'))
    .addHelpText('after', EXAMPLES(['xvs decap load -i eth0', 'xvs decap load -i eth0 --address 10.0.0.11']))
    .action(async (o: { iface: string[]; address: string[]; mode: 'native' | 'generic' }) => {
      if (o.iface.length === 0) throw new UsageError('no interface given', 'name it with -i IFACE')
      const r = loadDecap({ ifaces: o.iface, mode: o.mode, log: ctx.log, ...(o.address.length ? { addresses: o.address } : {}) })
      ctx.io.out(`decap on ${[...r.attached, ...r.replaced].join(', ')} for ${r.addresses.join(', ')}\n`)
    })
  decap.command('unload')
    .description('detach decap')
    .option('-i, --iface <name>', 'only from this interface (repeatable)', collect, [])
    .addHelpText('after', EXAMPLES(['xvs decap unload']))
    .action(async (o: { iface: string[] }) => {
      const done = unloadDecap(o.iface.length ? { ifaces: o.iface } : {})
      ctx.io.out(done.length ? `decap detached from ${done.join(', ')}\n` : 'no decap program was attached here\n')
    })

  return program
}

async function runEdit(ctx: CliContext, edit: Edit): Promise<void> {
  const r = await ctx.backend().edit([edit])
  for (const n of r.notes) ctx.io.err(`xvs: note: ${n}\n`)
  ctx.io.out(formatDiff(r.diff))
}


/** Commander's own errors as UsageErrors: "xvs: unknown option '--x'" plus where to read more. */
function usageFromCommander(e: CommanderError, argv: readonly string[]): UsageError {
  const msg = e.message.replace(/^error:\s*/, '')
  if (e.code === 'commander.unknownCommand') return new UsageError(msg, 'see xvs --help')
  const words = argv.filter((a) => !a.startsWith('-')).slice(0, 2)
  return new UsageError(msg, `see xvs ${words.length ? `${words.join(' ')} ` : ''}--help`)
}


function formatDaemonStatus(d: NonNullable<Awaited<ReturnType<SocketBackend['daemonStatus']>>>): string {
  const r = d.config.lastReload
  return [
    `daemon: pid ${d.pid}, up ${d.uptimeS} s, version ${d.version}; control socket ${d.socket ?? '-'}; metrics ${d.metrics ? `${d.metrics.host}:${d.metrics.port}` : 'off'}`,
    `config: ${d.config.file} (${d.config.format ?? '?'}, from ${d.config.source}), generation ${d.config.generation}` +
      (r ? `; last reload ${r.ok ? 'applied' : `refused: ${r.error?.message ?? ''}`} at ${r.at}` : ''),
    `health: ${d.health.targets} checks, ${d.health.up} up, ${d.health.down} down` + (d.unresolved.length ? `; unresolved next hops: ${d.unresolved.map((u) => u.address).join(', ')}` : ''),
    ...(d.sweeper ? [`sweeper: ${d.sweeper.passes} passes, ${d.sweeper.expired} expired and ${d.sweeper.stale} stale entries deleted; last pass ${d.sweeper.lastEntries ?? 0} entries in ${d.sweeper.lastDurationMs ?? 0} ms`] : []),
    ...(d.vrrp ? formatFailoverStatus(d.vrrp) : []),
  ].join('\n') + '\n'
}

/** Run `xvs` with argv (without node and script); returns the exit status. */
export async function main(argv: readonly string[], io: CliIo = processIo(), backend?: () => Backend): Promise<number> {
  const log = cliLogger('xvs')
  let made: Backend | undefined
  const ctx: CliContext = {
    io,
    log,
    exitCode: EXIT.OK,
    backend: () => (made ??= backend?.() ?? withDaemon(new DirectBackend({
      log,
      autoLoad: 'writes',
      onAutoLoad: (r) => io.err(`xvs: no data plane was loaded in this network namespace; loaded it on ${r.ifaces.join(', ')} (${r.mode}, connection table ${r.connTableSize} entries)\n`),
    }))),
  }
  try {
    await buildXvs(ctx).parseAsync([...argv], { from: 'user' })
    return ctx.exitCode
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.exitCode === 0) return EXIT.OK // --help, --version
      const u = usageFromCommander(e, argv)
      io.err(errorText('xvs', u))
      return exitCodeOf(u)
    }
    io.err(errorText('xvs', e))
    if (process.env.XVS_DEBUG && e instanceof Error) io.err(`${e.stack}\n`)
    return exitCodeOf(e)
  } finally {
    made?.close()
  }
}

if (require.main === module) {
  void main(process.argv.slice(2)).then((code) => { process.exitCode = code })
}

