// SPDX-License-Identifier: GPL-2.0-only
// keepalived.conf's VRRP half: vrrp_instance and vrrp_sync_group blocks (with the vrrp_* settings of
// global_defs) become Model.vrrp, so that `xvs import --from keepalived` migrates a director whole.
// The parser in keepalived.ts hands these blocks over raw; here they are read the way keepalived
// reads them: what keepalived corrects with a warning (advert_int rounding, a too-long auth_pass,
// authentication on VRRPv3, preempt_delay with nopreempt) is corrected with a warning; what xvs does
// not do (VMACs, track scripts) is a warning when harmless and an error when the director would
// behave differently without it.
import { parseIp } from '../model/addr'
import { fail } from '../model/fail'
import { suggestion } from '../model/suggest'
import type { GarpSettings, VirtualAddress, VrrpInstanceSpec, VrrpModel, VrrpNotify, VrrpSyncGroupSpec, VrrpTrackInterface } from '../model/types'
import { MAX_AUTH_PASS, emptyVrrp, instanceFamily, vrrpInstance } from '../model/vrrp'
import type { Locations, RawBlock } from './source'

type Warn = (where: string, message: string) => void

interface Kw {
  min: number
  max: number
  block?: true
  ignore?: string
  unsupported?: string
}

const one: Kw = { min: 1, max: 1 }
const flag: Kw = { min: 0, max: 0 }
const cmd: Kw = { min: 1, max: 64 }
const ign = (why: string): Kw => ({ min: 0, max: 64, ignore: why })

const INSTANCE_KW: Record<string, Kw> = {
  state: one, interface: one, virtual_router_id: one, priority: one, advert_int: one, nopreempt: flag, preempt: flag,
  preempt_delay: one, version: one, unicast_src_ip: one, mcast_src_ip: one,
  virtual_ipaddress: { min: 0, max: 0, block: true }, virtual_ipaddress_excluded: { min: 0, max: 0, block: true },
  unicast_peer: { min: 0, max: 0, block: true }, authentication: { min: 0, max: 0, block: true },
  track_interface: { min: 0, max: 0, block: true },
  notify_master: cmd, notify_backup: cmd, notify_fault: cmd, notify_stop: cmd, notify: cmd,
  garp_master_delay: one, garp_master_repeat: one, garp_master_refresh: one, garp_master_refresh_repeat: one, garp_interval: one,
  gna_interval: one,
  track_script: { min: 0, max: 0, block: true, ignore: 'track_script is not run by xvs (use track_services for real-server health)' },
  track_file: { min: 0, max: 0, block: true, ignore: 'track_file is not used by xvs' },
  track_process: { min: 0, max: 0, block: true, ignore: 'track_process is not used by xvs' },
  track_bfd: { min: 0, max: 0, block: true, ignore: 'track_bfd is not used by xvs' },
  virtual_routes: { min: 0, max: 0, block: true, ignore: 'virtual_routes are not installed by xvs' },
  virtual_rules: { min: 0, max: 0, block: true, ignore: 'virtual_rules are not installed by xvs' },
  dont_track_primary: ign('dont_track_primary is not used by xvs: an instance always faults when its interface is down'),
  smtp_alert: ign('smtp_alert is not used by xvs'), debug: ign('debug is not used by xvs'),
  lvs_sync_daemon_interface: ign('lvs_sync_daemon_interface is not used by xvs; see vrrp.conn_sync'),
  accept: ign('accept is implied: xvs does not filter traffic to VIPs'), no_accept: ign('no_accept is not used by xvs'),
  skip_check_adv_addr: ign('skip_check_adv_addr is not used by xvs'), strict_mode: ign('strict_mode is not used by xvs'),
  check_unicast_src: ign('check_unicast_src is not used by xvs'), native_ipv6: ign('native_ipv6 is implied for IPv6 instances'),
  lower_prio_no_advert: ign('lower_prio_no_advert is not used by xvs'), higher_prio_send_advert: ign('higher_prio_send_advert is not used by xvs'),
  garp_lower_prio_delay: ign('garp_lower_prio_delay is not used by xvs'), garp_lower_prio_repeat: ign('garp_lower_prio_repeat is not used by xvs'),
  notify_master_rx_lower_pri: ign('notify_master_rx_lower_pri is not run by xvs'), kernel_rx_buf_size: ign('kernel_rx_buf_size is not used by xvs'),
  linkbeat_use_polling: ign('linkbeat_use_polling is implied: xvs polls links'), old_unicast_checksum: ign('old_unicast_checksum is not used by xvs'),
  notify_deleted: ign('notify_deleted is not used by xvs'),
  use_vmac: { min: 0, max: 1, unsupported: 'use_vmac is not supported by xvs: VIPs go on the interface itself; remove it' },
  vmac_xmit_base: { min: 0, max: 0, unsupported: 'vmac_xmit_base is not supported by xvs; remove it' },
}

const GROUP_KW: Record<string, Kw> = {
  group: { min: 0, max: 0, block: true }, notify_master: cmd, notify_backup: cmd, notify_fault: cmd, notify_stop: cmd, notify: cmd,
  smtp_alert: ign('smtp_alert is not used by xvs'), global_tracking: ign('global_tracking is not used by xvs'),
  sync_group_tracking_weight: ign('sync_group_tracking_weight is not used by xvs'),
  track_script: { min: 0, max: 0, block: true, ignore: 'track_script is not run by xvs' },
  track_interface: { min: 0, max: 0, block: true, ignore: 'track_interface of a sync group is not used by xvs; track on the instances' },
}

const GLOBAL_GARP: Record<string, keyof GarpSettings> = {
  vrrp_garp_master_delay: 'masterDelay', vrrp_garp_master_repeat: 'masterRepeat', vrrp_garp_master_refresh: 'masterRefresh',
  vrrp_garp_master_refresh_repeat: 'masterRefreshRepeat', vrrp_garp_interval: 'interval', vrrp_gna_interval: 'interval',
}
const INSTANCE_GARP: Record<string, keyof GarpSettings> = {
  garp_master_delay: 'masterDelay', garp_master_repeat: 'masterRepeat', garp_master_refresh: 'masterRefresh',
  garp_master_refresh_repeat: 'masterRefreshRepeat', garp_interval: 'interval', gna_interval: 'interval',
}

class VrrpReader {
  constructor(
    private readonly locations: Locations,
    private readonly warn: Warn,
  ) {}

  props(owner: string, block: RawBlock, table: Record<string, Kw>): Map<string, RawBlock> {
    const out = new Map<string, RawBlock>()
    for (const st of block.children ?? []) {
      const kw = st.keyword
      const spec = table[kw]
      const field = `${owner}.${kw}`
      if (!spec) fail(field, `unknown keyword '${kw}' in ${owner}${suggestion(kw, Object.keys(table))}`, st.where)
      if (spec.unsupported) fail(field, spec.unsupported, st.where)
      if (spec.ignore) {
        this.warn(st.where, `${spec.ignore}; ignored`)
        continue
      }
      if (st.args.length < spec.min || st.args.length > spec.max) {
        fail(field, `takes ${spec.min === spec.max ? spec.min : `${spec.min} to ${spec.max}`} argument${spec.max === 1 ? '' : 's'}, found ${st.args.length}`, st.where)
      }
      if (spec.block && !st.children) fail(field, 'needs a { } block', st.where)
      if (!spec.block && st.children) fail(field, 'takes no { } block', st.where)
      if (out.has(kw)) fail(field, `is given twice (first at ${out.get(kw)!.where}); keep one`, st.where)
      out.set(kw, st)
    }
    return out
  }

  int(st: RawBlock, field: string, min: number, max: number, i = 0): number {
    const t = st.args[i] ?? ''
    if (!/^\d+$/.test(t) || Number(t) < min || Number(t) > max) fail(field, `'${t}' is not a whole number ${min}..${max}`, st.where)
    return Number(t)
  }

  secs(st: RawBlock, field: string): number {
    const t = st.args[0] ?? ''
    if (!/^\d+(\.\d+)?$/.test(t)) fail(field, `'${t}' is not a number of seconds`, st.where)
    return Number(t)
  }

  ip(text: string, field: string, where: string): string {
    const p = parseIp(text)
    if (!p) fail(field, `'${text}' is not an IP address`, where)
    return p.address
  }

  garp(p: Map<string, RawBlock>, table: Record<string, keyof GarpSettings>): Partial<GarpSettings> {
    const g: Partial<GarpSettings> = {}
    for (const [kw, key] of Object.entries(table)) {
      const st = p.get(kw)
      if (!st) continue
      g[key] = key === 'masterRepeat' || key === 'masterRefreshRepeat' ? this.int(st, kw, 0, 1000) : this.secs(st, kw)
      this.locations.mark(g, st.where, key)
    }
    return g
  }

  notify(p: Map<string, RawBlock>): VrrpNotify {
    const n: VrrpNotify = {}
    const words: Array<[string, keyof VrrpNotify]> = [
      ['notify_master', 'master'], ['notify_backup', 'backup'], ['notify_fault', 'fault'], ['notify_stop', 'stop'], ['notify', 'any'],
    ]
    for (const [kw, key] of words) {
      const st = p.get(kw)
      if (!st) continue
      n[key] = st.args.join(' ')
      this.locations.mark(n, st.where, key)
    }
    return n
  }

  /** keepalived virtual_ipaddress lines: ADDRESS[/PREFIX] [dev DEV] [label LABEL] [brd X] [scope S] ... */
  addresses(block: RawBlock | undefined, what: string): VirtualAddress[] {
    const out: VirtualAddress[] = []
    for (const line of block?.children ?? []) {
      const words = [line.keyword, ...line.args]
      const m = /^([^/]+)(?:\/(\d{1,3}))?$/.exec(words[0]!)
      const ip = m ? parseIp(m[1]!) : undefined
      if (!m || !ip) fail(what, `'${words[0]}' is not an address; write ADDRESS[/PREFIX] such as 10.0.0.100/24`, line.where)
      const a: VirtualAddress = { address: ip.address, prefix: m[2] !== undefined ? Number(m[2]) : ip.family === 4 ? 32 : 128 }
      for (let i = 1; i < words.length; i++) {
        const w = words[i]!
        if (w === 'dev' || w === 'label') {
          const v = words[++i]
          if (v === undefined) fail(what, `${w} needs a value`, line.where)
          a[w] = v
        } else if (['brd', 'broadcast', 'scope', 'preferred_lft', 'track_group'].includes(w)) {
          this.warn(line.where, `virtual address option ${w} ${words[i + 1] ?? ''} is not used by xvs; ignored`)
          i++
        } else if (['no_track', 'nodad', '-nodad', 'noprefixroute', 'home', 'autojoin'].includes(w)) {
          this.warn(line.where, `virtual address option ${w} is not used by xvs; ignored`)
        } else {
          fail(what, `unknown virtual address option '${w}'; xvs takes ADDRESS[/PREFIX] [dev DEV] [label LABEL]`, line.where)
        }
      }
      this.locations.mark(a, line.where)
      out.push(a)
    }
    return out
  }

  instance(st: RawBlock, globalVersion: 2 | 3): VrrpInstanceSpec {
    const name = st.args[0] ?? fail('vrrp_instance', 'needs a name', st.where)
    const owner = `vrrp_instance ${name}`
    const p = this.props(owner, st, INSTANCE_KW)
    const need = (kw: string): RawBlock => p.get(kw) ?? fail(`${owner}.${kw}`, `is missing; a vrrp_instance needs interface and virtual_router_id`, st.where)
    const iface = need('interface').args[0]!
    const vrid = this.int(need('virtual_router_id'), 'virtual_router_id', 1, 255)

    const stateSt = p.get('state')
    const stateWord = stateSt?.args[0]?.toUpperCase()
    if (stateWord !== undefined && stateWord !== 'MASTER' && stateWord !== 'BACKUP') {
      fail(`${owner}.state`, `'${stateSt!.args[0]}' is not MASTER or BACKUP`, stateSt!.where)
    }
    const versionSt = p.get('version')
    let version: 2 | 3 | undefined = versionSt ? (this.int(versionSt, 'version', 2, 3) as 2 | 3) : undefined

    const virtualAddresses = this.addresses(p.get('virtual_ipaddress'), `${owner}.virtual_ipaddress`)
    const excludedAddresses = this.addresses(p.get('virtual_ipaddress_excluded'), `${owner}.virtual_ipaddress_excluded`)
    const srcSt = p.get('unicast_src_ip') ?? p.get('mcast_src_ip')
    const unicastSrcIp = srcSt && this.ip(srcSt.args[0]!, `${owner}.${srcSt.keyword}`, srcSt.where)
    const family = instanceFamily({ virtualAddresses, unicastSrcIp })
    if (family === 6 && (version ?? globalVersion) === 2) {
      if (version === 2) this.warn(versionSt!.where, 'VRRP version 2 is IPv4 only (RFC 3768) - using version 3')
      version = 3
    }
    const effective = version ?? globalVersion

    const unicastPeers = (p.get('unicast_peer')?.children ?? []).map((line) => {
      if (line.args.length > 0) this.warn(line.where, `unicast_peer options '${line.args.join(' ')}' are not used by xvs; ignored`)
      return this.ip(line.keyword, `${owner}.unicast_peer`, line.where)
    })

    let advertInterval: number | undefined
    const adv = p.get('advert_int')
    if (adv) {
      const secs = this.secs(adv, 'advert_int')
      if (effective === 2) {
        advertInterval = Math.min(255, Math.max(1, Math.round(secs)))
        if (advertInterval !== secs) this.warn(adv.where, `VRRPv2 advert_int ${secs}s must be whole seconds 1..255 - using ${advertInterval}s`)
      } else {
        advertInterval = Math.min(40.95, Math.max(0.01, Math.round(secs * 100) / 100))
        if (advertInterval !== secs) this.warn(adv.where, `VRRPv3 advert_int ${secs}s must be in units of 10ms, at most 40.95s - using ${advertInterval}s`)
      }
    }

    let preempt = !p.has('nopreempt')
    if (p.has('preempt')) preempt = true
    let preemptDelay: number | undefined
    const pd = p.get('preempt_delay')
    if (pd) {
      preemptDelay = this.secs(pd, 'preempt_delay')
      if (!preempt) {
        this.warn(pd.where, 'preempt_delay is incompatible with nopreempt mode - resetting')
        preemptDelay = undefined
      }
    }

    let authPass: string | undefined
    const auth = p.get('authentication')
    if (auth) {
      const a = this.props(`${owner}.authentication`, auth, { auth_type: one, auth_pass: one })
      const type = a.get('auth_type')?.args[0]?.toUpperCase()
      if (type === 'AH') fail(`${owner}.authentication.auth_type`, 'auth_type AH is not supported; use PASS, or no authentication (RFC 3768 removed both)', a.get('auth_type')!.where)
      if (type !== undefined && type !== 'PASS') fail(`${owner}.authentication.auth_type`, `'${type}' is not PASS or AH`, a.get('auth_type')!.where)
      const pass = a.get('auth_pass')
      if (effective !== 2) {
        this.warn(auth.where, 'authentication is not supported with VRRPv3 - ignoring')
      } else if (pass) {
        authPass = pass.args[0]!
        if (Buffer.byteLength(authPass, 'latin1') > MAX_AUTH_PASS) {
          this.warn(pass.where, `auth_pass is longer than ${MAX_AUTH_PASS} characters - truncating`)
          authPass = authPass.slice(0, MAX_AUTH_PASS)
        }
      }
    }

    const trackInterfaces: VrrpTrackInterface[] = (p.get('track_interface')?.children ?? []).map((line) => {
      let weight = 0
      if (line.args.length > 0) {
        if (line.args[0] !== 'weight' || line.args.length !== 2 || !/^-?\d+$/.test(line.args[1]!)) {
          fail(`${owner}.track_interface`, `'${line.args.join(' ')}' is not understood; write IFNAME [weight N]`, line.where)
        }
        weight = Number(line.args[1])
      }
      const ti = { name: line.keyword, weight }
      this.locations.mark(ti, line.where)
      return ti
    })

    const garp = this.garp(p, INSTANCE_GARP)
    const inst = vrrpInstance(name, iface, vrid, {
      priority: p.get('priority') && this.int(p.get('priority')!, 'priority', 1, 255),
      advertInterval,
      state: stateWord as 'MASTER' | 'BACKUP' | undefined,
      preempt,
      preemptDelay,
      version,
      virtualAddresses,
      excludedAddresses,
      unicastSrcIp,
      unicastPeers,
      authPass,
      trackInterfaces,
      notify: this.notify(p),
      garp,
    })
    const loc = this.locations
    loc.mark(inst, st.where)
    const fields: Record<string, string | undefined> = {
      interface: p.get('interface')?.where, vrid: p.get('virtual_router_id')?.where, priority: p.get('priority')?.where,
      advertInterval: adv?.where, state: stateSt?.where, preempt: (p.get('nopreempt') ?? p.get('preempt'))?.where, preemptDelay: pd?.where,
      version: versionSt?.where, virtualAddresses: p.get('virtual_ipaddress')?.where, excludedAddresses: p.get('virtual_ipaddress_excluded')?.where,
      unicastSrcIp: srcSt?.where, unicastPeers: p.get('unicast_peer')?.where, authPass: auth?.where, trackInterfaces: p.get('track_interface')?.where,
    }
    for (const [k, w] of Object.entries(fields)) loc.mark(inst, w, k)
    ;(p.get('unicast_peer')?.children ?? []).forEach((line, i) => loc.mark(inst.unicastPeers, line.where, String(i)))
    return inst
  }

  syncGroup(st: RawBlock): VrrpSyncGroupSpec {
    const name = st.args[0] ?? fail('vrrp_sync_group', 'needs a name', st.where)
    const owner = `vrrp_sync_group ${name}`
    const p = this.props(owner, st, GROUP_KW)
    const group = p.get('group') ?? fail(`${owner}.group`, 'is missing; list the instances in group { VI_1 VI_2 }', st.where)
    // keepalived allows one instance per line or several on a line.
    const lines = group.children ?? []
    const instances = lines.flatMap((l) => [l.keyword, ...l.args])
    const g = { name, instances, notify: this.notify(p) }
    this.locations.mark(g, st.where)
    this.locations.mark(g, group.where, 'instances')
    let k = 0
    for (const l of lines) for (let j = 0; j <= l.args.length; j++) this.locations.mark(g.instances, l.where, String(k++))
    return g
  }
}

/** Model.vrrp from keepalived's raw top-level blocks, or undefined when there is no vrrp_instance. */
export function keepalivedVrrp(raw: readonly RawBlock[], locations: Locations, warn: Warn): VrrpModel | undefined {
  const r = new VrrpReader(locations, warn)
  const instances = raw.filter((b) => b.keyword === 'vrrp_instance')
  const groups = raw.filter((b) => b.keyword === 'vrrp_sync_group')
  if (instances.length === 0) {
    for (const g of groups) warn(g.where, 'vrrp_sync_group without any vrrp_instance; ignored')
    return undefined
  }
  const v = emptyVrrp()
  for (const g of raw.filter((b) => b.keyword === 'global_defs')) {
    const kids = new Map((g.children ?? []).map((c) => [c.keyword, c]))
    const ver = kids.get('vrrp_version')
    if (ver) {
      v.version = r.int(ver, 'vrrp_version', 2, 3) as 2 | 3
      locations.mark(v, ver.where, 'version')
    }
    Object.assign(v.garp, r.garp(kids, GLOBAL_GARP))
    const sync = kids.get('lvs_sync_daemon')
    if (sync) {
      warn(sync.where, 'lvs_sync_daemon: xvs syncs connections itself, authenticated with a shared key; add vrrp.conn_sync (instance, peers, key_file) to the imported YAML')
    }
  }
  for (const b of raw.filter((x) => x.keyword === 'vrrp_script')) {
    warn(b.where, `vrrp_script ${b.args[0] ?? ''} is not run by xvs; ignored`)
  }
  v.instances = instances.map((st) => r.instance(st, v.version))
  v.syncGroups = groups.map((st) => r.syncGroup(st))
  const first = instances[0]!
  locations.mark(v, first.where)
  locations.mark(v, first.where, 'instances')
  if (groups[0]) locations.mark(v, groups[0].where, 'syncGroups')
  return v
}
