// SPDX-License-Identifier: GPL-2.0-only
// Piranha's lvs.cf (/etc/sysconfig/ha/lvs.cf): `key = value` lines and `virtual NAME { ... server NAME {
// ... } }` blocks. Virtual servers become services; `network` gives every real server its forwarding
// method; nanny's send/expect or send_program becomes the health check. The director settings (primary,
// backup, heartbeat, ...) and failover blocks are returned in `raw` for the HA parser.
//
// Virtual servers sharing a `fwmark` become one service group whose matches are their (address, protocol,
// port), which is what the mark bundled in Piranha.
import { parseIp, parseNetmask, parsePort, parseUint } from '../model/addr'
import { defaultNetmask, emptyModel, portService, realServer, serviceGroup } from '../model/defaults'
import { realServerKey } from '../model/diff'
import { fail } from '../model/fail'
import { suggestion } from '../model/suggest'
import type { Family, HealthCheck, Method, Protocol, Scheduler, Service, ServiceGroup } from '../model/types'
import { Locations, at, finish, type ConfigWarning, type ParsedConfig, type RawBlock } from './source'

interface Line {
  key: string
  /** `virtual NAME {`: the name. */
  name?: string
  /** `key = value`: the value, unquoted but with escapes as written. */
  value?: string
  where: string
  valueWhere: string
  children?: Line[]
}

/** The statement tree: `key = value`, `word NAME {`, `}`; '#' starts a comment outside quotes. */
function tokenize(text: string, file: string): Line[] {
  const root: Line[] = []
  const stack: { list: Line[]; opener?: Line }[] = [{ list: root }]
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = stripComment(raw)
    const trimmed = line.trim()
    if (trimmed === '') return
    const col = line.indexOf(trimmed) + 1
    const where = at(file, i + 1, col)
    const top = stack[stack.length - 1]!
    if (trimmed === '}') {
      if (stack.length === 1) fail('}', "unexpected '}'; it closes no block", where)
      stack.pop()
      return
    }
    const block = /^(\w+)(?:\s+(\S+))?\s*\{$/.exec(trimmed)
    if (block) {
      const l: Line = { key: block[1]!, ...(block[2] ? { name: block[2] } : {}), where, valueWhere: where, children: [] }
      top.list.push(l)
      stack.push({ list: l.children!, opener: l })
      return
    }
    const kv = /^(\w+)\s*=\s*(.*)$/.exec(trimmed)
    if (!kv) fail('line', `'${trimmed}' is neither "key = value" nor "name NAME {"`, where)
    const valueCol = col + trimmed.length - kv[2]!.length
    let value = kv[2]!.trim()
    if (value.startsWith('"')) {
      if (value.length < 2 || !value.endsWith('"')) fail(kv[1]!, 'unterminated quoted string; close it with "', at(file, i + 1, valueCol))
      value = value.slice(1, -1)
    }
    top.list.push({ key: kv[1]!, value, where, valueWhere: at(file, i + 1, valueCol) })
  })
  if (stack.length > 1) {
    const o = stack[stack.length - 1]!.opener!
    fail(o.key, `the block opened here is not closed; add '}'`, o.where)
  }
  return root
}

function stripComment(line: string): string {
  let quoted = false
  for (let i = 0; i < line.length; i++) {
    if (line[i] === '\\') i++
    else if (line[i] === '"') quoted = !quoted
    else if (line[i] === '#' && !quoted) return line.slice(0, i)
  }
  return line
}

/** nanny's escapes in send/expect: \n \r \t, and \ before any other character quotes it. */
function unescape(s: string): string {
  return s.replace(/\\(.)/g, (_, c: string) => ({ n: '\n', r: '\r', t: '\t' })[c] ?? c)
}

function toRaw(l: Line): RawBlock {
  const args = l.name !== undefined ? [l.name] : l.value !== undefined ? [l.value] : []
  return { keyword: l.key, args, where: l.where, ...(l.children ? { children: l.children.map(toRaw) } : {}) }
}

const TOP_KEYS = [
  'serial_no', 'primary', 'primary_private', 'primary_shared', 'service', 'backup_active', 'backup', 'backup_private',
  'backup_shared', 'heartbeat', 'heartbeat_port', 'keepalive', 'deadtime', 'network', 'nat_router', 'nat_nmask',
  'debug_level', 'monitor_links', 'syncdaemon', 'syncd_iface', 'syncd_id', 'tcp_timeout', 'tcpfin_timeout', 'udp_timeout',
  'rsh_command', 'hard_shutdown', 'reservation_conflict_action', 'virtual', 'failover',
]
const VIRTUAL_KEYS = [
  'active', 'address', 'vip_nmask', 'fwmark', 'port', 'persistent', 'pmask', 'send', 'expect', 'use_regex', 'send_program',
  'load_monitor', 'scheduler', 'protocol', 'timeout', 'reentry', 'quiesce_server', 'server',
]
const SERVER_KEYS = ['address', 'active', 'weight', 'port']
const NETWORK: Record<string, Method> = { direct: 'dr', nat: 'nat', tunnel: 'tun' }

/** A block's lines by key, unknown and repeated keys rejected. */
class Fields {
  private readonly m = new Map<string, Line>()

  constructor(
    readonly owner: string,
    lines: Line[],
    keys: readonly string[],
    private readonly many: readonly string[] = [],
  ) {
    for (const l of lines) {
      const field = `${owner}.${l.key}`
      if (!keys.includes(l.key)) fail(field, `unknown key '${l.key}' in ${owner}${suggestion(l.key, keys)}`, l.where)
      const isBlock = l.children !== undefined
      if (isBlock !== this.many.includes(l.key)) {
        fail(field, isBlock ? 'is a setting, not a block; write key = value' : 'is a block; write NAME { ... }', l.where)
      }
      if (!isBlock && this.m.has(l.key)) fail(field, `is given twice (first at ${this.m.get(l.key)!.where}); keep one`, l.where)
      this.m.set(l.key, l)
    }
  }

  line(key: string): Line | undefined {
    return this.m.get(key)
  }

  str(key: string): string | undefined {
    return this.m.get(key)?.value
  }

  int(key: string): number | undefined {
    const l = this.m.get(key)
    if (!l) return undefined
    const n = parseUint(l.value ?? '')
    if (n === undefined) fail(`${this.owner}.${key}`, `'${l.value}' is not a whole number`, l.valueWhere)
    return n
  }

  bool(key: string): boolean | undefined {
    const n = this.int(key)
    if (n !== undefined && n > 1) fail(`${this.owner}.${key}`, `'${n}' is not 0 or 1`, this.m.get(key)!.valueWhere)
    return n === undefined ? undefined : n === 1
  }
}

/** Parse and validate an lvs.cf file. */
export function parseLvsCf(text: string, file: string): ParsedConfig {
  const lines = tokenize(text, file)
  const locations = new Locations()
  const warnings: ConfigWarning[] = []
  const model = emptyModel()
  const top = new Fields('lvs.cf', lines.filter((l) => !l.children), TOP_KEYS)
  const blocks = lines.filter((l) => l.children)
  for (const b of blocks) {
    if (b.key !== 'virtual' && b.key !== 'failover') fail(b.key, `unknown block '${b.key}'${suggestion(b.key, ['virtual', 'failover'])}`, b.where)
  }

  const networkLine = top.line('network')
  const network = networkLine?.value ?? 'nat'
  const method = NETWORK[network] ?? fail('lvs.cf.network', `'${network}' is not a network type; use direct, nat or tunnel`, networkLine!.valueWhere)

  for (const [key, k] of [['tcp_timeout', 'tcp'], ['tcpfin_timeout', 'tcpfin'], ['udp_timeout', 'udp']] as const) {
    const v = top.int(key)
    if (v !== undefined && v !== 0) model.settings.timeouts[k] = v
    locations.mark(model.settings.timeouts, top.line(key)?.valueWhere, k)
  }
  const natRouter = top.str('nat_router')?.split(/\s+/)
  const interfaces: string[] = []
  const addInterface = (device: string | undefined) => {
    const dev = device?.split(':')[0] // eth0:1 is an alias of eth0
    if (dev && !interfaces.includes(dev)) interfaces.push(dev)
  }
  if (method === 'nat') addInterface(natRouter?.[1])

  const service = top.str('service') ?? 'lvs'
  const virtuals = service === 'fos' ? [] : blocks.filter((b) => b.key === 'virtual')
  if (service === 'fos') warnings.push({ where: top.line('service')!.where, message: 'service = fos runs failover services, not virtual servers; no services loaded' })
  const keepalive = top.int('keepalive') ?? 6
  const groups = new Map<number, ServiceGroup>()

  for (const v of virtuals) {
    const f = new Fields(`virtual ${v.name ?? ''}`.trim(), v.children!, VIRTUAL_KEYS, ['server'])
    const owner = f.owner
    if (f.bool('active') === false) {
      warnings.push({ where: v.where, message: `${owner} is not active (active = 0); skipped` })
      continue
    }
    const addrLine = f.line('address') ?? fail(owner, 'has no address; add address = VIP DEVICE', v.where)
    const [vipText, device] = (addrLine.value ?? '').split(/\s+/)
    const vip = parseIp(vipText ?? '') ?? fail(`${owner}.address`, `'${vipText}' is not an IP address`, addrLine.valueWhere)
    addInterface(device)
    const portLine = f.line('port') ?? fail(owner, 'has no port; add port = N', v.where)
    const port = parsePort(portLine.value ?? '') ?? fail(`${owner}.port`, `'${portLine.value}' is not a port; use 0..65535`, portLine.valueWhere)
    const protocol = (f.str('protocol') ?? 'tcp') as Protocol
    if (protocol !== 'tcp' && protocol !== 'udp') {
      fail(`${owner}.protocol`, `'${protocol}' is not tcp or udp`, f.line('protocol')!.valueWhere)
    }
    const scheduler = (f.str('scheduler') ?? 'wlc') as Scheduler
    const persistent = f.int('persistent') ?? 0
    const pmask = f.line('pmask')
    const netmask = pmask ? (parseNetmask(pmask.value ?? '', vip.family) ?? pmask.value ?? '') : defaultNetmask(vip.family)
    const persistence = persistent > 0 ? { timeout: persistent, netmask } : undefined
    if (f.str('load_monitor') && f.str('load_monitor') !== 'none') {
      warnings.push({ where: f.line('load_monitor')!.where, message: 'load_monitor (rup/ruptime) is not used by xvs; weights stay as configured' })
    }
    const check = healthCheck(f, keepalive)
    const fwmark = f.int('fwmark')
    // Real servers of a mark keep the client's destination port, as ipvsadm -f gives them port 0.
    const rsDefaultPort = fwmark ? 0 : port
    const servers = (v.children ?? []).filter((l) => l.key === 'server').flatMap((s) => {
      const sf = new Fields(`server ${s.name ?? ''}`.trim(), s.children!, SERVER_KEYS)
      if (sf.bool('active') === false) {
        warnings.push({ where: s.where, message: `${sf.owner} in ${owner} is not active (active = 0); skipped` })
        return []
      }
      const a = sf.line('address') ?? fail(sf.owner, 'has no address; add address = RIP', s.where)
      const rsPort = sf.line('port')
      const portNumber = rsPort && (parsePort(rsPort.value ?? '') ?? fail(`${sf.owner}.port`, `'${rsPort.value}' is not a port`, rsPort.valueWhere))
      const rs = realServer(parseIp(a.value ?? '')?.address ?? a.value ?? '', portNumber ?? rsDefaultPort, {
        ...(s.name ? { name: s.name } : {}),
        weight: sf.int('weight'),
        method,
        check: structuredClone(check),
      })
      locations.mark(rs, s.where)
      locations.mark(rs, a.valueWhere, 'address')
      locations.mark(rs, sf.line('weight')?.valueWhere, 'weight')
      locations.mark(rs, rsPort?.valueWhere, 'port')
      return [rs]
    })

    const opts = { ...(v.name ? { name: v.name } : {}), scheduler, ...(persistence ? { persistence } : {}) }
    let svc: Service
    if (fwmark) {
      const match = { vip: vip.address, protocol, fromPort: port, toPort: port }
      locations.mark(match, addrLine.where)
      const g = groups.get(fwmark)
      if (g) {
        // Another virtual server with the same mark: its address/port joins the group, its servers the pool.
        g.matches.push(match)
        for (const rs of servers) if (!g.realServers.some((x) => realServerKey(x) === realServerKey(rs))) g.realServers.push(rs)
        continue
      }
      svc = serviceGroup(fwmark, vip.family as Family, [match], { ...opts, realServers: servers })
      groups.set(fwmark, svc)
      locations.mark(svc, f.line('fwmark')!.valueWhere, 'id')
    } else {
      svc = portService(protocol, vip.address, port, { ...opts, realServers: servers })
      locations.mark(svc, addrLine.valueWhere, 'vip')
      locations.mark(svc, portLine.valueWhere, 'port')
    }
    locations.mark(svc, v.where)
    locations.mark(svc, f.line('scheduler')?.valueWhere, 'scheduler')
    locations.mark(svc, f.line('persistent')?.valueWhere, 'persistence')
    if (svc.persistence) locations.mark(svc.persistence, pmask?.valueWhere, 'netmask')
    model.services.push(svc)
  }
  model.settings.interfaces = interfaces
  // All of it, virtual blocks too: the HA parser needs each VIP's device and netmask.
  return finish('lvs.cf', model, locations, warnings, lines.map(toRaw))
}

/** nanny's check: send_program, else send/expect, else a plain connect. */
function healthCheck(f: Fields, keepalive: number): HealthCheck {
  const common = {
    interval: keepalive,
    timeout: f.int('timeout') ?? 6,
    rise: 1,
    fall: 1,
    retry: 0,
    retryDelay: 0,
    reentry: f.int('reentry') ?? 15,
    onFailure: f.bool('quiesce_server') ? ('quiesce' as const) : ('remove' as const),
  }
  const program = f.str('send_program')
  const expect = f.str('expect')
  if (program) return { type: 'external', ...common, command: program, ...(expect ? { expect: unescape(expect) } : {}), dynamic: false }
  const send = f.str('send')
  if (send || expect) return { type: 'send-expect', ...common, send: unescape(send ?? ''), expect: unescape(expect ?? ''), regex: f.bool('use_regex') ?? false }
  return { type: 'tcp', ...common }
}
