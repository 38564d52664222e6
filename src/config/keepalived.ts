// SPDX-License-Identifier: GPL-2.0-only
// keepalived.conf: `virtual_server` and `virtual_server_group` blocks become the model; real servers'
// checkers (TCP_CHECK, HTTP_GET, SSL_GET, MISC_CHECK) become health-check data. global_defs, vrrp_* and
// the other non-LVS blocks are returned untouched in `raw`; vrrp_instance and vrrp_sync_group (with
// global_defs' vrrp settings) also become Model.vrrp (keepalived-vrrp.ts).
//
// xvs extensions: lb_kind/lvs_method also take FULLNAT (or FNAT).
import { readFileSync, readdirSync } from 'node:fs'
import { basename, dirname, isAbsolute, join, resolve } from 'node:path'
import { familyOf, parseIp, parseNetmask, parsePort } from '../model/addr'
import { compact, defaultNetmask, emptyModel, incompleteNote, portService, realServer, serviceGroup } from '../model/defaults'
import { fail } from '../model/fail'
import { suggestion } from '../model/suggest'
import type {
  Family, GroupMatch, HealthCheck, HttpUrl, Method, Protocol, RealServer, SchedFlag, Scheduler, Service, ServiceGroup,
} from '../model/types'
import { Locations, at, finish, type ConfigWarning, type ParsedConfig, type RawBlock } from './source'
import { keepalivedVrrp } from './keepalived-vrrp'

interface Tok {
  text: string
  where: string
  line: number
  /** Written in quotes: never a brace or a keyword of structure. */
  quoted: boolean
}

interface Stmt {
  kw: Tok
  args: Tok[]
  block?: Stmt[]
}

export interface KeepalivedOptions {
  /** Reads an included file; default fs.readFileSync. */
  readFile?: (path: string) => string
  /** Lists a directory for include globs; default fs.readdirSync. */
  readdir?: (dir: string) => string[]
}

// ---- tokens and statements ----

/** Words with positions. Comments start with # or ! anywhere outside quotes; braces are words of their own. */
function tokenize(text: string, file: string): Tok[] {
  const out: Tok[] = []
  text.split(/\r?\n/).forEach((line, i) => {
    const re = /"((?:[^"\\]|\\.)*)("?)|([#!].*)|[{}]|[^\s{}"#!]+/g
    for (let m = re.exec(line); m; m = re.exec(line)) {
      if (m[3] !== undefined) break
      const where = at(file, i + 1, m.index + 1)
      if (m[1] !== undefined && m[2] === '') fail('string', 'unterminated quoted string; close it with "', where)
      const quoted = m[1] !== undefined
      out.push({ text: quoted ? m[1]!.replace(/\\(.)/g, '$1') : m[0], where, line: i + 1, quoted })
    }
  })
  return out
}

class Reader {
  readonly warnings: ConfigWarning[] = []
  readonly locations = new Locations()
  private readonly readFile: (path: string) => string
  private readonly readdir: (dir: string) => string[]

  constructor(opts: KeepalivedOptions) {
    this.readFile = opts.readFile ?? ((p) => readFileSync(p, 'utf8'))
    this.readdir = opts.readdir ?? ((d) => readdirSync(d))
  }

  /** Statements of a file, includes spliced in. A statement is the words of one line up to a brace. */
  statements(text: string, file: string, stack: string[] = []): Stmt[] {
    const toks = tokenize(text, file)
    const root: Stmt[] = []
    const open: { list: Stmt[]; opener?: Stmt }[] = [{ list: root }]
    let i = 0
    while (i < toks.length) {
      const t = toks[i]!
      const level = open[open.length - 1]!
      if (t.text === '{' && !t.quoted) {
        const owner = level.list[level.list.length - 1]
        if (!owner || owner.block) fail('{', "'{' opens no block; put it after a keyword such as virtual_server", t.where)
        owner.block = []
        open.push({ list: owner.block, opener: owner })
        i++
        continue
      }
      if (t.text === '}' && !t.quoted) {
        if (open.length === 1) fail('}', "unexpected '}'; it closes no block", t.where)
        open.pop()
        i++
        continue
      }
      const st: Stmt = { kw: t, args: [] }
      for (i++; i < toks.length && toks[i]!.line === t.line && (toks[i]!.quoted || !'{}'.includes(toks[i]!.text)); i++) st.args.push(toks[i]!)
      if (st.kw.text === 'include') level.list.push(...this.include(st, file, stack))
      else level.list.push(st)
    }
    if (open.length > 1) {
      const o = open[open.length - 1]!.opener!
      fail(o.kw.text, `the block opened here is not closed; add '}'`, o.kw.where)
    }
    return root
  }

  include(st: Stmt, file: string, stack: string[]): Stmt[] {
    const pattern = st.args[0]?.text
    if (!pattern || st.args.length > 1) fail('include', 'takes one file name or glob', st.kw.where)
    const full = isAbsolute(pattern) ? pattern : resolve(dirname(file), pattern)
    let files = [full]
    if (/[*?[]/.test(basename(full))) {
      const glob = new RegExp(`^${basename(full).replace(/[.+^${}()|\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`)
      try {
        files = this.readdir(dirname(full)).filter((n) => glob.test(n)).sort().map((n) => join(dirname(full), n))
      } catch (e) {
        fail('include', `cannot read directory ${dirname(full)} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); fix the path`, st.args[0]!.where)
      }
      if (files.length === 0) this.warn(st.args[0]!, `include ${pattern}: no file matches; nothing included`)
    }
    return files.flatMap((f) => {
      if (stack.includes(f) || f === file) {
        fail('include', `${f} includes itself (through ${[...stack, file].join(' -> ')}); remove the loop`, st.args[0]!.where)
      }
      let text: string
      try {
        text = this.readFile(f)
      } catch (e) {
        return fail('include', `cannot read ${f} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); fix the path (relative paths are relative to ${dirname(file)})`, st.args[0]!.where)
      }
      return this.statements(text, f, [...stack, file])
    })
  }

  warn(t: Tok, message: string): void {
    this.warnings.push({ where: t.where, message })
  }
}

function toRaw(st: Stmt): RawBlock {
  return { keyword: st.kw.text, args: st.args.map((a) => a.text), where: st.kw.where, ...(st.block ? { children: st.block.map(toRaw) } : {}) }
}

// ---- keyword tables ----

/** min/max arguments; `block`: takes a { } block; `ignore`: accepted, no meaning in xvs; `unsupported`: an error. */
interface Kw {
  min?: number
  max?: number
  block?: true
  ignore?: string
  unsupported?: string
  many?: true
}

const n1: Kw = { min: 1, max: 1 }
const flag: Kw = { min: 0, max: 1 }
const ign = (why: string, max = 9): Kw => ({ min: 0, max, ignore: why })
const UNSUPPORTED_CHECK = 'is not supported by xvs; use TCP_CHECK, HTTP_GET, SSL_GET or MISC_CHECK'

const TIMING: Record<string, Kw> = {
  delay_loop: n1, connect_timeout: n1, retry: n1, delay_before_retry: n1, warmup: ign('warmup is not used by xvs'),
}

const METHOD_KW: Kw = { min: 1, max: 9 }
const BARE: Kw = { max: 0 }

const VS_KW: Record<string, Kw> = {
  ...TIMING,
  lb_algo: n1, lvs_sched: n1, lb_kind: METHOD_KW, lvs_method: METHOD_KW,
  persistence_timeout: flag, persistence_granularity: n1, protocol: n1, virtualhost: n1, ip_family: n1,
  sorry_server: { min: 1, max: 2 }, sorry_server_lvs_method: METHOD_KW,
  sorry_server_inhibit: ign('sorry_server_inhibit is not used by xvs', 0),
  inhibit_on_failure: flag, quorum: n1, hysteresis: n1,
  'sh-port': BARE, 'sh-fallback': BARE, 'mh-port': BARE, 'mh-fallback': BARE, 'flag-1': BARE, 'flag-2': BARE,
  'flag-3': { unsupported: 'flag-3 has no meaning for xvs schedulers; remove it' },
  ops: { unsupported: 'one-packet scheduling (ops) is not supported by xvs; remove it' },
  persistence_engine: { unsupported: 'persistence engines are not supported by xvs; remove it' },
  hashed: ign('hashed is not used by xvs', 0), alpha: ign('alpha is not used by xvs', 0), omega: ign('omega is not used by xvs', 0),
  quorum_up: ign('quorum_up scripts are not run by xvs'), quorum_down: ign('quorum_down scripts are not run by xvs'),
  ha_suspend: ign('ha_suspend is not used by xvs', 0), smtp_alert: ign('smtp_alert is not used by xvs'),
  snmp_name: ign('snmp_name is not used by xvs'), weight: ign('virtual_server weight is not used by xvs'),
  nat_mask: ign('nat_mask is not used by xvs'),
  real_server: { min: 1, max: 2, block: true, many: true },
}

const RS_KW: Record<string, Kw> = {
  ...TIMING,
  weight: n1, lb_kind: METHOD_KW, lvs_method: METHOD_KW, uthreshold: n1, lthreshold: n1, inhibit_on_failure: flag, virtualhost: n1,
  notify_up: ign('notify_up scripts are not run by xvs'), notify_down: ign('notify_down scripts are not run by xvs'),
  alpha: ign('alpha is not used by xvs'), smtp_alert: ign('smtp_alert is not used by xvs'), snmp_name: ign('snmp_name is not used by xvs'),
  TCP_CHECK: { block: true }, HTTP_GET: { block: true }, SSL_GET: { block: true }, MISC_CHECK: { block: true },
  SMTP_CHECK: { unsupported: `SMTP_CHECK ${UNSUPPORTED_CHECK}` }, DNS_CHECK: { unsupported: `DNS_CHECK ${UNSUPPORTED_CHECK}` },
  UDP_CHECK: { unsupported: `UDP_CHECK ${UNSUPPORTED_CHECK}` }, PING_CHECK: { unsupported: `PING_CHECK ${UNSUPPORTED_CHECK}` },
  BFD_CHECK: { unsupported: `BFD_CHECK ${UNSUPPORTED_CHECK}` }, FILE_CHECK: { unsupported: `FILE_CHECK ${UNSUPPORTED_CHECK}` },
}

const CHECKER_KW: Record<string, Kw> = {
  ...TIMING,
  connect_port: n1, nb_get_retry: n1,
  connect_ip: { unsupported: 'connect_ip is not supported by xvs; checks probe the real server address' },
  bindto: ign('bindto is not used by xvs'), bind_port: ign('bind_port is not used by xvs'), bind_if: ign('bind_if is not used by xvs'),
  fwmark: ign('checker fwmark is not used by xvs'), alpha: ign('alpha is not used by xvs'),
  log_all_failures: ign('log_all_failures is not used by xvs'),
}
const HTTP_KW: Record<string, Kw> = {
  ...CHECKER_KW,
  url: { block: true, many: true }, virtualhost: n1,
  http_protocol: ign('http_protocol is not used by xvs'), enable_sni: ign('enable_sni is implied by virtualhost in xvs'),
  tls_compliant: ign('tls_compliant is not used by xvs'), fast_recovery: ign('fast_recovery is not used by xvs'),
}
const URL_KW: Record<string, Kw> = {
  path: n1, digest: n1, status_code: n1, regex: n1, virtualhost: n1,
  regex_no_match: { unsupported: 'regex_no_match is not supported by xvs; write a regex that must match' },
  regex_options: ign('regex_options is not used by xvs'), regex_stack: ign('regex_stack is not used by xvs'),
  regex_min_offset: ign('regex offsets are not used by xvs'), regex_max_offset: ign('regex offsets are not used by xvs'),
}
const MISC_KW: Record<string, Kw> = {
  ...CHECKER_KW,
  misc_path: n1, misc_timeout: n1, misc_dynamic: BARE, user: ign('user is not used by xvs; checks run as the daemon user'),
}
const CHECKER_TABLE: Record<string, Record<string, Kw>> = { TCP_CHECK: CHECKER_KW, HTTP_GET: HTTP_KW, SSL_GET: HTTP_KW, MISC_CHECK: MISC_KW }

/** Top-level blocks left for the HA parser; any vrrp_* keyword is too. */
const RAW_TOP = [
  'global_defs', 'static_ipaddress', 'static_routes', 'static_rules', 'linkbeat_interfaces', 'track_file', 'garp_group',
  'bfd_instance', 'SSL', 'net_namespace', 'net_namespace_ipvs', 'namespace_with_ipsets', 'instance', 'use_pid_dir',
]

/** A block's statements by keyword, checked against `table`. */
type Props = Map<string, Stmt[]>

function props(r: Reader, owner: string, stmts: Stmt[] | undefined, table: Record<string, Kw>): Props {
  const out: Props = new Map()
  for (const st of stmts ?? []) {
    const kw = st.kw.text
    const spec = table[kw]
    const field = `${owner}.${kw}`
    if (!spec) fail(field, `unknown keyword '${kw}' in ${owner}${suggestion(kw, Object.keys(table))}`, st.kw.where)
    if (spec.unsupported) fail(field, spec.unsupported, st.kw.where)
    if (spec.ignore) {
      r.warn(st.kw, `${spec.ignore}; ignored`)
      continue
    }
    const [min, max] = [spec.min ?? 0, spec.max ?? 0]
    if (st.args.length < min || st.args.length > max) {
      fail(field, `takes ${min === max ? min : `${min} to ${max}`} argument${max === 1 ? '' : 's'}, found ${st.args.length}`, (st.args[max] ?? st.kw).where)
    }
    if (spec.block && !st.block) fail(field, `needs a { } block`, st.kw.where)
    if (!spec.block && st.block) fail(field, 'takes no { } block', st.kw.where)
    if (out.has(kw) && !spec.many) fail(field, `is given twice (first at ${out.get(kw)![0]!.kw.where}); keep one`, st.kw.where)
    out.set(kw, [...(out.get(kw) ?? []), st])
  }
  return out
}

const arg = (p: Props, kw: string, i = 0): Tok | undefined => p.get(kw)?.[0]?.args[i]
const has = (p: Props, kw: string): boolean => p.has(kw)

function num(t: Tok, field: string): number {
  if (!/^\d+(\.\d+)?$/.test(t.text)) fail(field, `'${t.text}' is not a number of seconds`, t.where)
  return Number(t.text)
}

function int(t: Tok, field: string): number {
  if (!/^\d+$/.test(t.text)) fail(field, `'${t.text}' is not a whole number`, t.where)
  return Number(t.text)
}

/** keepalived's true/false words; a keyword alone means true. */
function onOff(p: Props, kw: string): boolean | undefined {
  if (!has(p, kw)) return undefined
  const t = arg(p, kw)
  if (!t) return true
  const v = t.text.toLowerCase()
  if (['true', 'on', 'yes'].includes(v)) return true
  if (['false', 'off', 'no'].includes(v)) return false
  return fail(kw, `'${t.text}' is not true or false`, t.where)
}

function ip(t: Tok, field: string): string {
  const p = parseIp(t.text)
  if (!p) fail(field, `'${t.text}' is not an IP address; keepalived.conf for xvs takes numeric IPv4 or IPv6 addresses`, t.where)
  return p.address
}

function port(t: Tok | undefined, field: string, dflt: number): number {
  if (!t) return dflt
  const n = parsePort(t.text)
  if (n === undefined) fail(field, `'${t.text}' is not a port; use 0..65535`, t.where)
  return n
}

const METHODS: Record<string, Method> = { NAT: 'nat', DR: 'dr', TUN: 'tun', FULLNAT: 'fullnat', FNAT: 'fullnat' }

function method(p: Props, kws: string[], field: string): Method | undefined {
  const st = kws.map((k) => p.get(k)?.[0]).find(Boolean)
  if (!st) return undefined
  const m = METHODS[st.args[0]!.text.toUpperCase()]
  if (!m) fail(field, `unknown [${st.args[0]!.text}] routing method; use NAT, DR or TUN (xvs: also FULLNAT)`, st.args[0]!.where)
  const extra = st.args.slice(1).map((a) => a.text)
  if (extra.length > 0 && !(m === 'tun' && extra.join(' ') === 'type ipip')) {
    fail(field, `tunnel options '${extra.join(' ')}' are not supported; xvs tunnels are ipip`, st.args[1]!.where)
  }
  return m
}

// ---- services ----

interface Vsg {
  st: Stmt
  name: string
}

/** A keepalived range "10.0.0.1-10" (last IPv4 octet) or "2001:db8::1-ff" (last IPv6 group, hex). */
function expandRange(t: Tok, field: string): string[] {
  const m = /^(.*?)-([0-9a-fA-F]+)$/.exec(t.text)
  if (!m || parseIp(t.text)) return [ip(t, field)]
  const first = parseIp(m[1]!)
  if (!first) fail(field, `'${t.text}' is not an address or address range; use 10.0.0.1 or 10.0.0.1-10`, t.where)
  const v6 = first.family === 6
  const sep = v6 ? ':' : '.'
  const parts = m[1]!.split(sep)
  const lo = parseInt(parts[parts.length - 1]!, v6 ? 16 : 10)
  const hi = parseInt(m[2]!, v6 ? 16 : 10)
  if (!(hi >= lo) || hi > (v6 ? 0xffff : 255) || hi - lo > 255) {
    fail(
      field,
      `'${t.text}' is not a range of at most 256 addresses; give low-high in the last ${v6 ? 'group' : 'octet'}`,
      t.where,
    )
  }
  const nth = (k: number) => [...parts.slice(0, -1), (lo + k).toString(v6 ? 16 : 10)].join(sep)
  return Array.from({ length: hi - lo + 1 }, (_, k) => ip({ ...t, text: nth(k) }, field))
}

class Builder {
  private readonly usedIds = new Set<number>()
  /** Groups from a virtual_server_group without fwmark: they get an id once all fwmarks are known. */
  private readonly pending: ServiceGroup[] = []

  constructor(
    private readonly r: Reader,
    private readonly vsgs: Map<string, Vsg>,
  ) {}

  service(st: Stmt): Service {
    const loc = this.r.locations
    const p = props(this.r, 'virtual_server', st.block, VS_KW)
    const [a0, a1] = st.args
    if (!a0 || !a1 || st.args.length !== 2) fail('virtual_server', 'takes IP PORT, fwmark N or group NAME', (st.args[2] ?? st.kw).where)
    const proto = this.protocol(arg(p, 'protocol'))
    const vsMethod = method(p, ['lb_kind', 'lvs_method'], 'virtual_server.lb_kind') ?? 'nat'
    const rsList = (p.get('real_server') ?? []).map((rs) => ({ st: rs, p: props(this.r, 'real_server', rs.block, RS_KW) }))

    // What the service is: a port service, a fwmark group (matches unknown) or a virtual_server_group.
    let head: { kind: Protocol; vip: string; port: number } | { kind: 'group'; id?: number; matches: GroupMatch[]; name?: string }
    if (a0.text === 'fwmark') {
      head = { kind: 'group', id: int(a1, 'virtual_server.fwmark'), matches: [] }
    } else if (a0.text === 'group') {
      const vsg = this.vsgs.get(a1.text)
      if (!vsg) fail('virtual_server.group', `virtual_server_group '${a1.text}' is not defined${suggestion(a1.text, [...this.vsgs.keys()])}`, a1.where)
      head = { kind: 'group', ...this.groupEntries(vsg, proto), name: vsg.name }
    } else {
      head = { kind: proto, vip: ip(a0, 'virtual_server'), port: port(a1, 'virtual_server', 0) }
    }
    const servicePort = head.kind === 'group' ? 0 : head.port
    const family = head.kind === 'group' ? this.groupFamily(p, head.matches, rsList.map((x) => x.st)) : familyOf(head.vip)!

    const schedTok = arg(p, 'lb_algo') ?? arg(p, 'lvs_sched')
    const scheduler = (schedTok?.text ?? 'wlc') as Scheduler
    const flagStmts = ['sh-port', 'sh-fallback', 'mh-port', 'mh-fallback', 'flag-1', 'flag-2'].flatMap((f) => p.get(f) ?? [])
    const schedFlags = flagStmts.map((f) => {
      const name = f.kw.text
      if (!name.startsWith('flag-')) return name as SchedFlag
      if (scheduler !== 'sh' && scheduler !== 'mh') {
        fail(`virtual_server.${name}`, `applies to the sh and mh schedulers, not ${scheduler}; remove it`, f.kw.where)
      }
      return `${scheduler}-${name === 'flag-1' ? 'fallback' : 'port'}` as SchedFlag
    })

    const pto = p.get('persistence_timeout')?.[0]
    const pgr = p.get('persistence_granularity')?.[0]
    // keepalived's timeout when persistence_timeout has no value, or only the granularity is given: 6 minutes.
    const persistence = pto || pgr
      ? {
          timeout: pto?.args[0] ? int(pto.args[0], 'persistence_timeout') : 360,
          netmask: pgr ? (parseNetmask(pgr.args[0]!.text, family) ?? pgr.args[0]!.text) : defaultNetmask(family),
        }
      : undefined

    const q = arg(p, 'quorum')
    const h = arg(p, 'hysteresis')
    if (h && !q) this.r.warn(h, 'hysteresis without quorum has no effect; ignored')
    const quorum = q ? { weight: int(q, 'quorum'), hysteresis: h ? int(h, 'hysteresis') : 0 } : undefined

    const sorry = p.get('sorry_server')?.[0]
    const sorryServer = sorry
      ? {
          address: ip(sorry.args[0]!, 'sorry_server'),
          port: port(sorry.args[1], 'sorry_server', servicePort),
          method: method(p, ['sorry_server_lvs_method'], 'virtual_server.sorry_server_lvs_method') ?? vsMethod,
        }
      : undefined

    const opts = {
      scheduler, schedFlags, persistence, quorum, sorryServer,
      realServers: rsList.map(({ st: rs, p: rp }) => this.realServer(rs, rp, p, servicePort, vsMethod)),
    }
    let s: Service
    if (head.kind === 'group') {
      const g = serviceGroup(head.id ?? 0, family, head.matches, {
        ...opts,
        ...(head.name ? { name: head.name } : {}),
        ...(head.matches.length === 0 ? { incomplete: incompleteNote(head.id!) } : {}),
      })
      if (head.id === undefined) this.pending.push(g)
      else this.usedIds.add(head.id)
      s = g
    } else {
      s = portService(head.kind, head.vip, head.port, opts)
    }

    loc.mark(s, st.kw.where)
    loc.mark(s, a1.where, head.kind === 'group' ? 'id' : 'port')
    loc.mark(s, a0.where, 'vip')
    loc.mark(s, schedTok?.where, 'scheduler')
    flagStmts.forEach((f, i) => loc.mark(s.schedFlags, f.kw.where, String(s.schedFlags.indexOf(schedFlags[i]!))))
    if (s.persistence) {
      loc.mark(s, (pto ?? pgr)!.kw.where, 'persistence')
      loc.mark(s.persistence, pto?.args[0]?.where, 'timeout')
      loc.mark(s.persistence, pgr?.args[0]?.where, 'netmask')
    }
    if (s.quorum) {
      loc.mark(s.quorum, q!.where, 'weight')
      loc.mark(s.quorum, h?.where, 'hysteresis')
    }
    if (s.sorryServer) {
      loc.mark(s.sorryServer, sorry!.kw.where)
      loc.mark(s.sorryServer, sorry!.args[1]?.where, 'port')
    }
    return s
  }

  /** keepalived: ip_family if given, else the group's addresses, else its (non-tunnelled) real servers, else IPv4. */
  groupFamily(p: Props, matches: GroupMatch[], servers: Stmt[]): Family {
    const t = arg(p, 'ip_family')
    if (t && t.text !== 'inet' && t.text !== 'inet6') {
      fail('virtual_server.ip_family', `unknown address family ${t.text}; use inet or inet6`, t.where)
    }
    if (t) return t.text === 'inet6' ? 6 : 4
    return familyOf(matches[0]?.vip ?? '') ?? servers.map((rs) => familyOf(rs.args[0]?.text ?? '')).find((f) => f !== undefined) ?? 4
  }

  protocol(t: Tok | undefined): Protocol {
    if (!t) return 'tcp'
    const v = t.text.toLowerCase()
    if (v === 'tcp' || v === 'udp') return v
    if (v === 'sctp') fail('virtual_server.protocol', 'SCTP is not supported by xvs; use TCP or UDP', t.where)
    return fail('virtual_server.protocol', `unknown protocol ${t.text}; use TCP or UDP`, t.where)
  }

  groupEntries(vsg: Vsg, protocol: Protocol): { id?: number; matches: GroupMatch[] } {
    let id: number | undefined
    const matches: GroupMatch[] = []
    for (const e of vsg.st.block ?? []) {
      const field = `virtual_server_group.${vsg.name}`
      if (e.kw.text === 'fwmark') {
        if (id !== undefined) fail(field, 'has two fwmark entries; xvs maps a group to one id, so keep one', e.kw.where)
        id = int(e.args[0] ?? e.kw, `${field}.fwmark`)
        continue
      }
      if (e.args.length !== 1) fail(field, 'entries are "IP PORT", "IP-RANGE PORT" or "fwmark N"', e.kw.where)
      const p = port(e.args[0], field, 0)
      for (const vip of expandRange(e.kw, field)) {
        const m = { vip, protocol, fromPort: p, toPort: p }
        this.r.locations.mark(m, e.kw.where)
        matches.push(m)
      }
    }
    if (id === undefined && matches.length === 0) {
      fail(`virtual_server_group.${vsg.name}`, 'has no entries; list "IP PORT" lines', vsg.st.kw.where)
    }
    return { ...(id !== undefined ? { id } : {}), matches }
  }

  realServer(st: Stmt, p: Props, vs: Props, servicePort: number, vsMethod: Method): RealServer {
    const address = ip(st.args[0]!, 'real_server')
    const w = arg(p, 'weight')
    const u = arg(p, 'uthreshold')
    const l = arg(p, 'lthreshold')
    const checkers = [...p.keys()].filter((k) => k in CHECKER_TABLE)
    const all = checkers.flatMap((k) => p.get(k)!)
    if (all.length > 1) {
      fail(
        'real_server',
        `has ${all.map((c) => c.kw.text).join(' and ')}; xvs runs one checker per real server, so keep one`,
        all[1]!.kw.where,
      )
    }
    const rs = realServer(address, port(st.args[1], 'real_server', servicePort), {
      weight: w && int(w, 'real_server.weight'),
      method: method(p, ['lb_kind', 'lvs_method'], 'real_server.lvs_method') ?? vsMethod,
      upperThreshold: u && int(u, 'real_server.uthreshold'),
      lowerThreshold: l && int(l, 'real_server.lthreshold'),
      check: all[0] && this.check(all[0], p, vs),
    })
    const loc = this.r.locations
    loc.mark(rs, st.kw.where)
    loc.mark(rs, st.args[1]?.where, 'port')
    loc.mark(rs, w?.where, 'weight')
    loc.mark(rs, (arg(p, 'lb_kind') ?? arg(p, 'lvs_method'))?.where, 'method')
    loc.mark(rs, u?.where, 'upperThreshold')
    loc.mark(rs, l?.where, 'lowerThreshold')
    return rs
  }

  /** A checker block, timing from the checker, else the real server, else the virtual server, else keepalived's defaults. */
  check(st: Stmt, rs: Props, vs: Props): HealthCheck {
    const kind = st.kw.text
    const c = props(this.r, kind, st.block, CHECKER_TABLE[kind]!)
    const pick = (kw: string) => arg(c, kw) ?? arg(rs, kw) ?? arg(vs, kw)
    const secs = (kw: string, dflt: number, t = pick(kw)) => (t ? num(t, `${kind}.${kw}`) : dflt)
    const retry = arg(c, 'retry') ?? arg(c, 'nb_get_retry') ?? arg(rs, 'retry') ?? arg(vs, 'retry')
    const inhibit = onOff(rs, 'inhibit_on_failure') ?? onOff(vs, 'inhibit_on_failure') ?? false
    const cp = arg(c, 'connect_port')
    const common = {
      port: cp && port(cp, `${kind}.connect_port`, 0),
      interval: secs('delay_loop', 60),
      timeout: secs('connect_timeout', 5, kind === 'MISC_CHECK' ? (arg(c, 'misc_timeout') ?? pick('connect_timeout')) : undefined),
      rise: 1,
      fall: 1,
      retry: retry ? int(retry, `${kind}.retry`) : 1,
      retryDelay: secs('delay_before_retry', 1),
      reentry: 0,
      onFailure: inhibit ? ('quiesce' as const) : ('remove' as const),
    }
    let check: HealthCheck
    if (kind === 'HTTP_GET' || kind === 'SSL_GET') {
      const urls = (c.get('url') ?? []).map((u) => this.url(u))
      if (urls.length === 0) fail(kind, 'has no url block; add url { path /healthz }', st.kw.where)
      const vh = pick('virtualhost')
      check = { type: kind === 'HTTP_GET' ? 'http' : 'https', ...common, urls, ...(vh ? { virtualhost: vh.text } : {}) }
    } else if (kind === 'MISC_CHECK') {
      const path = arg(c, 'misc_path') ?? fail('MISC_CHECK', 'has no misc_path; give the program to run', st.kw.where)
      check = { type: 'external', ...common, command: path.text, dynamic: has(c, 'misc_dynamic') }
    } else {
      check = { type: 'tcp', ...common }
    }
    compact(check)
    this.r.locations.mark(check, st.kw.where)
    this.r.locations.mark(check, cp?.where, 'port')
    for (const [field, kw] of [['interval', 'delay_loop'], ['timeout', 'connect_timeout'], ['retryDelay', 'delay_before_retry']] as const) {
      this.r.locations.mark(check, pick(kw)?.where, field)
    }
    return check
  }

  url(st: Stmt): HttpUrl {
    const u = props(this.r, 'url', st.block, URL_KW)
    const path = arg(u, 'path') ?? fail('url', 'has no path; add path /healthz', st.kw.where)
    const status = arg(u, 'status_code')
    const url = compact({
      path: path.text,
      status: status && int(status, 'url.status_code'),
      digest: arg(u, 'digest')?.text.toLowerCase(),
      regex: arg(u, 'regex')?.text,
    })
    this.r.locations.mark(url, st.kw.where)
    this.r.locations.mark(url, status?.where, 'status')
    this.r.locations.mark(url, arg(u, 'digest')?.where, 'digest')
    return url
  }

  /** Give groups without a fwmark the lowest ids no other group uses. */
  assignIds(): void {
    let next = 1
    for (const s of this.pending) {
      while (this.usedIds.has(next)) next++
      s.id = next
      this.usedIds.add(next)
    }
  }
}

/** Parse and validate keepalived.conf; includes are read relative to the including file. */
export function parseKeepalived(text: string, file: string, opts: KeepalivedOptions = {}): ParsedConfig {
  const r = new Reader(opts)
  const stmts = r.statements(text, file)
  const raw: RawBlock[] = []
  const vsgs = new Map<string, Vsg>()
  const vss: Stmt[] = []
  for (const st of stmts) {
    const kw = st.kw.text
    if (kw === 'virtual_server_group') {
      const name = st.args[0]?.text ?? fail(kw, 'needs a name', st.kw.where)
      if (vsgs.has(name)) fail(kw, `'${name}' is defined twice; keep one`, st.kw.where)
      vsgs.set(name, { st, name })
    } else if (kw === 'virtual_server') {
      vss.push(st)
    } else if (kw.startsWith('vrrp_') || RAW_TOP.includes(kw)) {
      raw.push(toRaw(st))
    } else {
      const known = ['virtual_server', 'virtual_server_group', 'vrrp_instance', 'vrrp_sync_group', 'vrrp_script', ...RAW_TOP]
      fail(kw, `unknown keyword '${kw}' at top level${suggestion(kw, known)}`, st.kw.where)
    }
  }
  const b = new Builder(r, vsgs)
  const model = emptyModel()
  model.services = vss.map((st) => b.service(st))
  b.assignIds()
  const vrrp = keepalivedVrrp(raw, r.locations, (where, message) => r.warnings.push({ where, message }))
  if (vrrp) model.vrrp = vrrp
  return finish('keepalived', model, r.locations, r.warnings, raw)
}
