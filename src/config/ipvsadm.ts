// SPDX-License-Identifier: GPL-2.0-only
// The ipvsadm command line, flag for flag, and rules files made of such lines (`ipvsadm -S -n`,
// `ipvsadm-save`, scripts of `ipvsadm -A ...` lines). One argument parser serves both this module and the
// later `xvsadm` command. Errors use ipvsadm's wording where ipvsadm has one, then say what would be right.
//
// xvs adds to ipvsadm's language:
//   --fullnat              the fourth forwarding method next to -g/-i/-m (no short form: ipvsadm's -b is
//                          taken by --sched-flags);
//   --add-laddr ADDRESS    add a local address to the fullnat LIP pool (settings.localAddresses);
//   --del-laddr ADDRESS    remove one.
import { formatHostPort, parseIp, parseNetmask, parsePort, parseUint, splitHostPort } from '../model/addr'
import {
  DEFAULT_PERSISTENCE_TIMEOUT,
  MAX_THRESHOLD,
  MAX_TIMEOUT,
  MAX_WEIGHT,
  defaultNetmask,
  defaultSettings,
  emptyModel,
  incompleteNote,
  portService,
  realServer,
  serviceGroup,
} from '../model/defaults'
import { realServerKey, serviceKey } from '../model/diff'
import { fail } from '../model/fail'
import { suggestion } from '../model/suggest'
import {
  SCHEDULERS,
  type Family,
  type Method,
  type Model,
  type Persistence,
  type SchedFlag,
  type Scheduler,
  type Service,
  type Timeouts,
} from '../model/types'
import { Locations, at, finish, type ConfigWarning, type ParsedConfig } from './source'

export type ServiceRef = { kind: 'tcp' | 'udp'; vip: string; port: number } | { kind: 'group'; id: number; family: Family }

export interface ServiceOptions {
  scheduler: Scheduler
  schedFlags: SchedFlag[]
  persistence?: Persistence
}

export interface ServerOptions {
  address: string
  port: number
  weight: number
  method: Method
  upperThreshold: number
  lowerThreshold: number
}

export interface ListOptions {
  numeric: boolean
  connections: boolean
  timeouts: boolean
  daemon: boolean
  stats: boolean
  rate: boolean
  thresholds: boolean
  persistentConn: boolean
  sort: boolean
  exact: boolean
}

/** One ipvsadm invocation. -E and -e replace every attribute, as in ipvsadm (unset ones take defaults). */
export type IpvsadmCommand =
  | { op: 'add-service' | 'edit-service'; service: ServiceRef; options: ServiceOptions }
  | { op: 'delete-service'; service: ServiceRef }
  | { op: 'add-server' | 'edit-server'; service: ServiceRef; server: ServerOptions }
  | { op: 'delete-server'; service: ServiceRef; server: { address: string; port: number } }
  | { op: 'clear' }
  | { op: 'list'; service?: ServiceRef; options: ListOptions }
  | { op: 'zero'; service?: ServiceRef }
  /** --set tcp tcpfin udp; 0 leaves a timeout unchanged. */
  | { op: 'set'; timeouts: Timeouts }
  | { op: 'save'; numeric: boolean }
  | { op: 'restore' }
  | { op: 'start-daemon' | 'stop-daemon'; state: 'master' | 'backup'; mcastInterface?: string; syncId?: number }
  /** xvs: the fullnat local address pool. */
  | { op: 'add-laddr' | 'del-laddr'; address: string }
  | { op: 'help' }
  | { op: 'version' }

export type Op = IpvsadmCommand['op']

/** A command-line word, with where it was read when it comes from a file. */
export interface Arg {
  text: string
  where?: string
}

// Option names as ipvsadm prints them in its messages.
type Opt =
  | 'service-address' | 'scheduler' | 'persistent' | 'netmask' | 'sched-flags' | 'real-server' | 'forwarding-method'
  | 'weight' | 'u-threshold' | 'l-threshold' | 'numeric' | 'connection' | 'mcast-interface' | 'syncid' | 'timeout'
  | 'daemon' | 'stats' | 'rate' | 'thresholds' | 'persistent-conn' | 'nosort' | 'sort' | 'exact' | 'ipv6' | 'ops'
  | 'pe' | 'tun-type' | 'tun-port' | 'tun-csum'

interface Spec {
  long: string
  short?: string
  /** 0: no value, 1: a value, '?': an optional value (ipvsadm -p). */
  arg: 0 | 1 | '?'
  op?: Op
  opt?: Opt
}

const SPECS: Spec[] = [
  { long: 'add-service', short: 'A', arg: 0, op: 'add-service' },
  { long: 'edit-service', short: 'E', arg: 0, op: 'edit-service' },
  { long: 'delete-service', short: 'D', arg: 0, op: 'delete-service' },
  { long: 'clear', short: 'C', arg: 0, op: 'clear' },
  { long: 'list', short: 'L', arg: 0, op: 'list' },
  { long: 'list', short: 'l', arg: 0, op: 'list' },
  { long: 'zero', short: 'Z', arg: 0, op: 'zero' },
  { long: 'add-server', short: 'a', arg: 0, op: 'add-server' },
  { long: 'edit-server', short: 'e', arg: 0, op: 'edit-server' },
  { long: 'delete-server', short: 'd', arg: 0, op: 'delete-server' },
  { long: 'set', arg: 0, op: 'set' },
  { long: 'restore', short: 'R', arg: 0, op: 'restore' },
  { long: 'save', short: 'S', arg: 0, op: 'save' },
  { long: 'start-daemon', arg: 1, op: 'start-daemon' },
  { long: 'stop-daemon', arg: 1, op: 'stop-daemon' },
  { long: 'add-laddr', arg: 1, op: 'add-laddr' },
  { long: 'del-laddr', arg: 1, op: 'del-laddr' },
  { long: 'help', short: 'h', arg: 0, op: 'help' },
  { long: 'version', short: 'v', arg: 0, op: 'version' },
  { long: 'tcp-service', short: 't', arg: 1, opt: 'service-address' },
  { long: 'udp-service', short: 'u', arg: 1, opt: 'service-address' },
  { long: 'fwmark-service', short: 'f', arg: 1, opt: 'service-address' },
  { long: 'scheduler', short: 's', arg: 1, opt: 'scheduler' },
  { long: 'persistent', short: 'p', arg: '?', opt: 'persistent' },
  { long: 'netmask', short: 'M', arg: 1, opt: 'netmask' },
  { long: 'sched-flags', short: 'b', arg: 1, opt: 'sched-flags' },
  { long: 'real-server', short: 'r', arg: 1, opt: 'real-server' },
  { long: 'gatewaying', short: 'g', arg: 0, opt: 'forwarding-method' },
  { long: 'ipip', short: 'i', arg: 0, opt: 'forwarding-method' },
  { long: 'masquerading', short: 'm', arg: 0, opt: 'forwarding-method' },
  { long: 'fullnat', arg: 0, opt: 'forwarding-method' },
  { long: 'weight', short: 'w', arg: 1, opt: 'weight' },
  { long: 'u-threshold', short: 'x', arg: 1, opt: 'u-threshold' },
  { long: 'l-threshold', short: 'y', arg: 1, opt: 'l-threshold' },
  { long: 'numeric', short: 'n', arg: 0, opt: 'numeric' },
  { long: 'connection', short: 'c', arg: 0, opt: 'connection' },
  { long: 'mcast-interface', arg: 1, opt: 'mcast-interface' },
  { long: 'syncid', arg: 1, opt: 'syncid' },
  { long: 'timeout', arg: 0, opt: 'timeout' },
  { long: 'daemon', arg: 0, opt: 'daemon' },
  { long: 'stats', arg: 0, opt: 'stats' },
  { long: 'rate', arg: 0, opt: 'rate' },
  { long: 'thresholds', arg: 0, opt: 'thresholds' },
  { long: 'persistent-conn', arg: 0, opt: 'persistent-conn' },
  { long: 'nosort', arg: 0, opt: 'nosort' },
  { long: 'sort', arg: 0, opt: 'sort' },
  { long: 'exact', short: 'X', arg: 0, opt: 'exact' },
  { long: 'ipv6', short: '6', arg: 0, opt: 'ipv6' },
  { long: 'ops', short: 'o', arg: 0, opt: 'ops' },
  { long: 'pe', arg: 1, opt: 'pe' },
  { long: 'tun-type', arg: 1, opt: 'tun-type' },
  { long: 'tun-port', arg: 1, opt: 'tun-port' },
  { long: 'tun-nocsum', arg: 0, opt: 'tun-csum' },
  { long: 'tun-csum', arg: 0, opt: 'tun-csum' },
  { long: 'tun-remcsum', arg: 0, opt: 'tun-csum' },
]

const SERVICE_OPTS: Opt[] = ['scheduler', 'persistent', 'netmask', 'sched-flags', 'ops', 'pe']
const SERVER_OPTS: Opt[] = ['forwarding-method', 'weight', 'u-threshold', 'l-threshold', 'tun-type', 'tun-port', 'tun-csum']
const LIST_OPTS: Opt[] = ['numeric', 'stats', 'rate', 'thresholds', 'persistent-conn', 'nosort', 'sort', 'exact']

/** Which options each command needs and takes (ipvsadm's commands_v_options table). `one`: at most one of these. */
const RULES: Record<Op, { need?: Opt[]; allow?: Opt[]; one?: Opt[] }> = {
  'add-service': { need: ['service-address'], allow: SERVICE_OPTS },
  'edit-service': { need: ['service-address'], allow: SERVICE_OPTS },
  'delete-service': { need: ['service-address'] },
  clear: {},
  list: { allow: LIST_OPTS, one: ['connection', 'service-address', 'timeout', 'daemon'] },
  'add-server': { need: ['service-address', 'real-server'], allow: SERVER_OPTS },
  'edit-server': { need: ['service-address', 'real-server'], allow: SERVER_OPTS },
  'delete-server': { need: ['service-address', 'real-server'] },
  set: {},
  'start-daemon': { allow: ['mcast-interface', 'syncid'] },
  'stop-daemon': { allow: ['syncid'] },
  'add-laddr': {},
  'del-laddr': {},
  restore: {},
  save: { allow: ['numeric'] },
  zero: { allow: ['service-address'] },
  help: {},
  version: {},
}

interface Given {
  spec: Spec
  /** The option word as written ("-t", "--weight"). */
  flag: Arg
  value?: Arg
}

/** Split words into command, options and positionals, as popt does (clustered short options, --long=value). */
function scan(args: Arg[]): { op?: Given; opts: Map<Opt, Given>; rest: Arg[] } {
  const opts = new Map<Opt, Given>()
  const rest: Arg[] = []
  let op: Given | undefined
  const take = (spec: Spec, flag: Arg, value?: Arg) => {
    const g: Given = { spec, flag, ...(value ? { value } : {}) }
    if (spec.op) {
      if (op) fail('command', `multiple commands specified (${op.flag.text} and ${flag.text}); give one command per line`, flag.where)
      op = g
    } else if (spec.opt) {
      if (opts.has(spec.opt)) fail(spec.opt, `multiple '${spec.opt}' options specified; give it once`, flag.where)
      opts.set(spec.opt, g)
    }
  }
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!
    const next = (): Arg | undefined => {
      const n = args[i + 1]
      if (n) i++
      return n
    }
    if (a.text.startsWith('--') && a.text.length > 2) {
      const [name, inline] = splitOnce(a.text.slice(2), '=')
      const spec = SPECS.find((s) => s.long === name)
      if (!spec) fail('option', `invalid option \`--${name}'${suggestion(name, [...new Set(SPECS.map((s) => s.long))])}`, a.where)
      if (spec.arg === 0 && inline !== undefined) fail(spec.opt ?? spec.long, `--${name} takes no value`, a.where)
      let value = inline !== undefined ? { text: inline, ...(a.where ? { where: a.where } : {}) } : undefined
      if (!value && spec.arg === 1) value = next() ?? fail(spec.opt ?? spec.long, `--${name}: missing argument`, a.where)
      if (!value && spec.arg === '?' && args[i + 1] && !args[i + 1]!.text.startsWith('-')) value = next()
      take(spec, a, value)
    } else if (a.text.startsWith('-') && a.text.length > 1) {
      for (let j = 1; j < a.text.length; j++) {
        const c = a.text[j]!
        const spec = SPECS.find((s) => s.short === c)
        if (!spec) fail('option', `invalid option \`-${c}'${suggestion(c, SPECS.flatMap((s) => (s.short ? [s.short] : [])))}`, a.where)
        const flag = { text: `-${c}`, ...(a.where ? { where: a.where } : {}) }
        if (spec.arg === 0) {
          take(spec, flag)
          continue
        }
        const attached = a.text.slice(j + 1)
        let value: Arg | undefined = attached ? { text: attached, ...(a.where ? { where: a.where } : {}) } : undefined
        if (!value && spec.arg === 1) value = next() ?? fail(spec.opt ?? spec.long, `-${c}: missing argument`, a.where)
        if (!value && spec.arg === '?' && args[i + 1] && !args[i + 1]!.text.startsWith('-')) value = next()
        take(spec, flag, value)
        break
      }
    } else {
      rest.push(a)
    }
  }
  return { ...(op ? { op } : {}), opts, rest }
}

function splitOnce(s: string, sep: string): [string, string | undefined] {
  const i = s.indexOf(sep)
  return i < 0 ? [s, undefined] : [s.slice(0, i), s.slice(i + 1)]
}

/** ipvsadm's generic_opt_check: needed, illegal and mutually exclusive options. */
function checkOptions(op: Op, opts: Map<Opt, Given>, where?: string): void {
  const rule = RULES[op]
  for (const need of rule.need ?? []) {
    if (!opts.has(need)) fail(need, `You need to supply the '${need}' option for the '${op}' command`, where)
  }
  const allowed = new Set<Opt>([...(rule.need ?? []), ...(rule.allow ?? []), ...(rule.one ?? [])])
  if (allowed.has('service-address')) allowed.add('ipv6')
  let exclusive: Opt | undefined
  for (const [opt, g] of opts) {
    if (!allowed.has(opt)) fail(opt, `Illegal '${opt}' option with the '${op}' command`, g.flag.where)
    if (rule.one?.includes(opt)) {
      if (exclusive) fail(opt, `The option '${opt}' conflicts with the '${exclusive}' option in the '${op}' command`, g.flag.where)
      exclusive = opt
    }
  }
}

/** Where a Given's value (or flag) was written. */
const whereOf = (g: Given | undefined): string | undefined => g?.value?.where ?? g?.flag.where

function parseServiceRef(g: Given, ipv6: Given | undefined): ServiceRef {
  const text = g.value!.text
  const where = whereOf(g)
  if (g.spec.short === 'f') {
    const id = parseUint(text, 2 ** 32 - 1)
    if (!id) fail('service-address', `invalid fwmark value \`${text}' specified; use 1..4294967295`, where)
    return { kind: 'group', id, family: ipv6 ? 6 : 4 }
  }
  if (ipv6) fail('ipv6', '-6 used without -f; -6 marks an IPv6 fwmark service, -t/-u take the family from the address', ipv6.flag.where)
  const hp = splitHostPort(text)
  const ip = hp && parseIp(hp.host)
  const port = hp?.port === undefined ? 0 : parsePort(hp.port, true)
  if (!ip || port === undefined) {
    fail('service-address', `illegal virtual server address[:port] specified: '${text}'; use VIP:PORT or [IPv6]:PORT with a numeric address (ipvsadm -S -n)`, where)
  }
  return { kind: g.spec.short === 't' ? 'tcp' : 'udp', vip: ip.address, port }
}

function parseServer(g: Given, service: ServiceRef): { address: string; port: number } {
  const text = g.value!.text
  const hp = splitHostPort(text)
  const ip = hp && parseIp(hp.host)
  const port = hp?.port === undefined ? (service.kind === 'group' ? 0 : service.port) : parsePort(hp.port, true)
  if (!ip || port === undefined) {
    fail('real-server', `illegal real server address[:port] specified: '${text}'; use RIP[:PORT] or [IPv6]:PORT with a numeric address`, whereOf(g))
  }
  return { address: ip.address, port }
}

function number(g: Given | undefined, name: Opt, max: number, wording: string, min = 0): number | undefined {
  if (!g) return undefined
  const text = g.value!.text
  const n = parseUint(text, max)
  if (n === undefined || n < min) fail(name, `${wording}: '${text}'; use ${min}..${max}`, whereOf(g))
  return n
}

function schedulerOf(g: Given | undefined): Scheduler {
  if (!g) return 'wlc'
  const name = g.value!.text
  if (!(SCHEDULERS as readonly string[]).includes(name)) {
    fail('scheduler', `Scheduler not found: '${name}'${suggestion(name, SCHEDULERS)}`, whereOf(g))
  }
  return name as Scheduler
}

function schedFlagsOf(g: Given | undefined, scheduler: Scheduler): SchedFlag[] {
  if (!g) return []
  return g.value!.text.split(',').map((flag) => {
    // flag-1 and flag-2 are the generic names of the sh/mh fallback and port flags.
    const generic: Record<string, string> = { 'flag-1': 'fallback', 'flag-2': 'port' }
    const named = generic[flag] ? `${scheduler}-${generic[flag]}` : flag
    const known = ['sh-fallback', 'sh-port', 'mh-fallback', 'mh-port']
    if (!known.includes(named)) {
      fail('sched-flags', `invalid scheduler flag \`${flag}'${suggestion(flag, [...known, 'flag-1', 'flag-2'])}`, whereOf(g))
    }
    return named as SchedFlag
  })
}

function persistenceOf(p: Given | undefined, m: Given | undefined, family: Family): Persistence | undefined {
  if (!p) return undefined
  const timeout = p.value ? number(p, 'persistent', MAX_TIMEOUT, `invalid timeout value \`${p.value.text}' specified`, 1)! : DEFAULT_PERSISTENCE_TIMEOUT
  if (!m) return { timeout, netmask: defaultNetmask(family) }
  const netmask = parseNetmask(m.value!.text, family)
  if (netmask === undefined) {
    fail(
      'netmask',
      family === 4
        ? `illegal virtual server persistent mask specified: '${m.value!.text}'; use a contiguous dotted mask such as 255.255.255.0`
        : `illegal ipv6 netmask specified: '${m.value!.text}'; use a prefix length 1..128`,
      whereOf(m),
    )
  }
  return { timeout, netmask }
}

const METHOD_OF: Record<string, Method> = { gatewaying: 'dr', ipip: 'tun', masquerading: 'nat', fullnat: 'fullnat' }

const UNSUPPORTED: Partial<Record<Opt, string>> = {
  ops: 'one-packet scheduling (--ops) is not supported by xvs; remove it',
  pe: 'persistence engines (--pe) are not supported by xvs; remove it',
  'tun-port': 'applies to gue tunnels; xvs tunnels are ipip (IPv4/IPv6 in IP), so remove it',
  'tun-csum': 'applies to gue and gre tunnels; xvs tunnels are ipip (IPv4/IPv6 in IP), so remove it',
}

/** Parse one command, keeping where each option was written (for located errors in rules files). */
function parseArgs(args: Arg[]): { cmd: IpvsadmCommand; opts: Map<Opt, Given>; opGiven?: Given } {
  const { op: opGiven, opts, rest } = scan(args)
  const done = (cmd: IpvsadmCommand) => ({ cmd, opts, ...(opGiven ? { opGiven } : {}) })
  if (!opGiven) {
    if (args.length === 0) return done({ op: 'list', options: listOptions(opts) })
    fail('command', 'no command specified; give one of -A -E -D -C -a -e -d -L -Z -S -R --set', args[0]!.where)
  }
  const op = opGiven.spec.op!
  const where = opGiven.flag.where
  checkOptions(op, opts, where)
  for (const [opt, g] of opts) if (UNSUPPORTED[opt]) fail(opt, UNSUPPORTED[opt]!, g.flag.where)
  const tunType = opts.get('tun-type')
  if (tunType && tunType.value!.text !== 'ipip') {
    fail('tun-type', `'${tunType.value!.text}' tunnels are not supported; xvs tunnels are ipip`, whereOf(tunType))
  }

  if (op === 'set') {
    if (rest.length < 3) fail('set', '--set option requires 3 timeout values (tcp tcpfin udp)', where)
    const [tcp, tcpfin, udp] = rest.slice(0, 3).map((a) => {
      const n = parseUint(a.text, MAX_TIMEOUT)
      return n ?? fail('timeout', `invalid timeout value \`${a.text}' specified; use 0..${MAX_TIMEOUT} seconds (0: unchanged)`, a.where)
    }) as [number, number, number]
    rest.splice(0, 3)
    if (rest[0]) fail('set', `unexpected argument ${rest[0].text}`, rest[0].where)
    return done({ op, timeouts: { tcp, tcpfin, udp } })
  }
  if (op === 'start-daemon' || op === 'stop-daemon') {
    const state = opGiven.value!.text
    if (state !== 'master' && state !== 'backup') {
      fail(op, `illegal ${op} parameter specified: '${state}'; use master or backup`, whereOf(opGiven))
    }
    const mcast = opts.get('mcast-interface')?.value?.text
    const syncId = number(opts.get('syncid'), 'syncid', 255, 'illegal syncid specified')
    if (rest[0]) fail(op, `unexpected argument ${rest[0].text}`, rest[0].where)
    return done({ op, state, ...(mcast ? { mcastInterface: mcast } : {}), ...(syncId !== undefined ? { syncId } : {}) })
  }
  if (rest[0]) fail(op, `unexpected argument ${rest[0].text}`, rest[0].where)
  if (op === 'add-laddr' || op === 'del-laddr') {
    const ip = parseIp(opGiven.value!.text)
    if (!ip) fail(op, `illegal local address specified: '${opGiven.value!.text}'; use an IPv4 or IPv6 address`, whereOf(opGiven))
    return done({ op, address: ip.address })
  }

  const svcGiven = opts.get('service-address')
  const service = svcGiven ? parseServiceRef(svcGiven, opts.get('ipv6')) : undefined
  switch (op) {
    case 'add-service':
    case 'edit-service': {
      const scheduler = schedulerOf(opts.get('scheduler'))
      const family: Family = service!.kind === 'group' ? service!.family : (parseIp(service!.vip)!.family)
      const persistence = persistenceOf(opts.get('persistent'), opts.get('netmask'), family)
      if (service!.kind !== 'group' && service!.port === 0 && !persistence) {
        fail('service-address', 'Zero port specified for non-persistent service; add -p, or give a port', whereOf(svcGiven))
      }
      const options: ServiceOptions = { scheduler, schedFlags: schedFlagsOf(opts.get('sched-flags'), scheduler).sort(), ...(persistence ? { persistence } : {}) }
      return done({ op, service: service!, options })
    }
    case 'delete-service':
      return done({ op, service: service! })
    case 'add-server':
    case 'edit-server': {
      const fwd = opts.get('forwarding-method')
      const method: Method = fwd ? METHOD_OF[fwd.spec.long]! : 'dr'
      let { address, port } = parseServer(opts.get('real-server')!, service!)
      // As ipvsadm: dr and tun cannot map ports, so the server port is the service port.
      if (service!.kind !== 'group' && (method === 'dr' || method === 'tun')) port = service!.port
      const server: ServerOptions = {
        address,
        port,
        method,
        weight: number(opts.get('weight'), 'weight', MAX_WEIGHT, 'illegal weight specified') ?? 1,
        upperThreshold: number(opts.get('u-threshold'), 'u-threshold', MAX_THRESHOLD, 'illegal u_threshold specified') ?? 0,
        lowerThreshold: number(opts.get('l-threshold'), 'l-threshold', MAX_THRESHOLD, 'illegal l_threshold specified') ?? 0,
      }
      return done({ op, service: service!, server })
    }
    case 'delete-server':
      return done({ op, service: service!, server: parseServer(opts.get('real-server')!, service!) })
    case 'list':
      return done({ op, ...(service ? { service } : {}), options: listOptions(opts) })
    case 'zero':
      return done({ op, ...(service ? { service } : {}) })
    case 'save':
      return done({ op, numeric: opts.has('numeric') })
    case 'clear':
    case 'restore':
    case 'help':
    case 'version':
      return done({ op })
  }
}

function listOptions(opts: Map<Opt, Given>): ListOptions {
  return {
    numeric: opts.has('numeric'),
    connections: opts.has('connection'),
    timeouts: opts.has('timeout'),
    daemon: opts.has('daemon'),
    stats: opts.has('stats'),
    rate: opts.has('rate'),
    thresholds: opts.has('thresholds'),
    persistentConn: opts.has('persistent-conn'),
    sort: !opts.has('nosort'),
    exact: opts.has('exact'),
  }
}

/** Parse an ipvsadm command line (without the program name), e.g. ['-A', '-t', '10.0.0.1:80', '-s', 'rr']. */
export function parseIpvsadmArgv(argv: readonly string[]): IpvsadmCommand {
  return parseArgs(argv.map((text) => ({ text }))).cmd
}

// ---- rules files ----

/** Words of one line, with positions; '#' starts a comment, quotes group words (as ipvsadm's config_stream). */
export function tokenizeLine(line: string, lineNo: number, file: string): Arg[] {
  const out: Arg[] = []
  const re = /"((?:[^"\\]|\\.)*)"|'([^']*)'|(#.*)|(\S+)/g
  for (let m = re.exec(line); m; m = re.exec(line)) {
    if (m[3] !== undefined) break
    out.push({ text: m[1] ?? m[2] ?? m[4]!, where: at(file, lineNo, m.index + 1) })
  }
  return out
}

/** The model service a ServiceRef names, built with the given options. */
function makeService(ref: ServiceRef, o: ServiceOptions): Service {
  return ref.kind === 'group'
    ? serviceGroup(ref.id, ref.family, [], { ...o, incomplete: incompleteNote(ref.id) })
    : portService(ref.kind, ref.vip, ref.port, o)
}

/** Parse and validate a rules file: each line one ipvsadm command (optionally starting with "ipvsadm"). */
export function parseIpvsadmRules(text: string, file: string): ParsedConfig {
  const model: Model = emptyModel()
  const locations = new Locations()
  const warnings: ConfigWarning[] = []
  const find = (ref: ServiceRef) => model.services.find((s) => serviceKey(s) === serviceKey(ref))
  text.split(/\r?\n/).forEach((line, i) => {
    const args = tokenizeLine(line, i + 1, file)
    if (args[0] && /(^|\/)ipvsadm$/.test(args[0].text)) args.shift()
    if (args.length === 0) return
    const { cmd, opts, opGiven } = parseArgs(args)
    const svcWhere = whereOf(opts.get('service-address'))
    const rsWhere = whereOf(opts.get('real-server'))
    const svc = 'service' in cmd && cmd.service ? find(cmd.service) : undefined
    switch (cmd.op) {
      case 'add-service':
      case 'edit-service': {
        if (cmd.op === 'add-service' && svc) {
          fail('service-address', `Service already exists (${serviceKey(cmd.service)}); use -E to change it`, svcWhere)
        }
        if (cmd.op === 'edit-service' && !svc) {
          fail('service-address', `No such service (${serviceKey(cmd.service)}); use -A to add it`, svcWhere)
        }
        const s = makeService(cmd.service, cmd.options)
        if (svc) s.realServers = svc.realServers
        locations.mark(s, svcWhere)
        locations.mark(s, whereOf(opts.get('scheduler')), 'scheduler')
        locations.mark(s, whereOf(opts.get('sched-flags')), 'schedFlags')
        locations.mark(s, whereOf(opts.get('persistent')), 'persistence')
        if (s.persistence) locations.mark(s.persistence, whereOf(opts.get('netmask')), 'netmask')
        model.services = svc ? model.services.map((x) => (x === svc ? s : x)) : [...model.services, s]
        return
      }
      case 'delete-service':
        if (!svc) fail('service-address', `No such service (${serviceKey(cmd.service)})`, svcWhere)
        model.services = model.services.filter((x) => x !== svc)
        return
      case 'add-server':
      case 'edit-server':
      case 'delete-server': {
        if (!svc) fail('service-address', `Service not defined (${serviceKey(cmd.service)}); add it with -A first`, svcWhere)
        const key = realServerKey(cmd.server)
        const old = svc.realServers.find((rs) => realServerKey(rs) === key)
        if (cmd.op === 'add-server' && old) {
          fail('real-server', `Destination already exists (${key} in ${serviceKey(svc)}); use -e to change it`, rsWhere)
        }
        if (cmd.op !== 'add-server' && !old) fail('real-server', `No such destination (${key} in ${serviceKey(svc)})`, rsWhere)
        if (cmd.op === 'delete-server') {
          svc.realServers = svc.realServers.filter((rs) => rs !== old)
          return
        }
        const { address, port, ...rest } = cmd.server
        const rs = realServer(address, port, rest)
        locations.mark(rs, rsWhere)
        locations.mark(rs, whereOf(opts.get('weight')), 'weight')
        locations.mark(rs, whereOf(opts.get('forwarding-method')), 'method')
        locations.mark(rs, whereOf(opts.get('u-threshold')), 'upperThreshold')
        locations.mark(rs, whereOf(opts.get('l-threshold')), 'lowerThreshold')
        svc.realServers = old ? svc.realServers.map((x) => (x === old ? rs : x)) : [...svc.realServers, rs]
        return
      }
      case 'clear':
        model.services = []
        return
      case 'set':
        for (const k of ['tcp', 'tcpfin', 'udp'] as const) if (cmd.timeouts[k] !== 0) model.settings.timeouts[k] = cmd.timeouts[k]
        locations.mark(model.settings, args[0]!.where, 'timeouts')
        return
      case 'add-laddr':
      case 'del-laddr': {
        const pool = model.settings.localAddresses
        const i = pool.indexOf(cmd.address)
        if (cmd.op === 'add-laddr' && i >= 0) fail('add-laddr', `Local address already exists (${cmd.address})`, whereOf(opGiven))
        if (cmd.op === 'del-laddr' && i < 0) fail('del-laddr', `No such local address (${cmd.address})`, whereOf(opGiven))
        if (i >= 0) pool.splice(i, 1)
        else locations.mark(pool, whereOf(opGiven), String(pool.push(cmd.address) - 1))
        return
      }
      case 'zero':
        warnings.push({ where: args[0]!.where!, message: 'ipvsadm -Z (zero counters) has no meaning in a rules file; ignored' })
        return
      default:
        fail('command', `'${cmd.op}' is not a rule; a rules file holds -A -E -D -a -e -d -C, --set and --add-laddr/--del-laddr lines`, args[0]!.where)
    }
  })
  return finish('ipvsadm', model, locations, warnings)
}

// ---- printing ----

function refText(s: Service): string {
  if (s.kind === 'group') return `-f ${s.id}${s.family === 6 ? ' -6' : ''}`
  return `${s.kind === 'tcp' ? '-t' : '-u'} ${formatHostPort(s.vip, s.port)}`
}

const METHOD_FLAG: Record<Method, string> = { dr: '-g', tun: '-i', nat: '-m', fullnat: '--fullnat' }

/**
 * Rules in `ipvsadm -S -n` layout that parseIpvsadmRules reads back, and `ipvsadm -R` too unless they use
 * the xvs extensions (--fullnat, --add-laddr). What ipvsadm cannot say (checks, sorry servers, quorum,
 * names, group matches, mh table size, interfaces and the other settings) is left out; group matches are
 * noted in a comment.
 */
export function toIpvsadmRules(model: Model): string {
  const lines: string[] = []
  const t = model.settings.timeouts
  const d = defaultSettings().timeouts
  if (t.tcp !== d.tcp || t.tcpfin !== d.tcpfin || t.udp !== d.udp) lines.push(`--set ${t.tcp} ${t.tcpfin} ${t.udp}`)
  for (const a of model.settings.localAddresses) lines.push(`--add-laddr ${a}`)
  for (const s of model.services) {
    const ref = refText(s)
    if (s.kind === 'group' && s.matches.length > 0) {
      const m = s.matches.map((x) => `${x.protocol} ${formatHostPort(x.vip, x.fromPort)}${x.toPort !== x.fromPort ? `-${x.toPort}` : ''}`)
      lines.push(`# group ${s.id}${s.name ? ` (${s.name})` : ''} matches ${m.join(', ')}; ipvsadm needs packets marked ${s.id} by netfilter`)
    }
    let line = `-A ${ref} -s ${s.scheduler}`
    if (s.persistence) {
      line += ` -p ${s.persistence.timeout}`
      if (s.persistence.netmask !== defaultNetmask(s.kind === 'group' ? s.family : (parseIp(s.vip)?.family ?? 4))) line += ` -M ${s.persistence.netmask}`
    }
    if (s.schedFlags.length > 0) line += ` -b ${s.schedFlags.join(',')}`
    lines.push(line)
    for (const rs of s.realServers) {
      let l = `-a ${ref} -r ${formatHostPort(rs.address, rs.port)} ${METHOD_FLAG[rs.method]} -w ${rs.weight}`
      if (rs.upperThreshold) l += ` -x ${rs.upperThreshold}`
      if (rs.lowerThreshold) l += ` -y ${rs.lowerThreshold}`
      lines.push(l)
    }
  }
  return lines.map((l) => `${l}\n`).join('')
}
