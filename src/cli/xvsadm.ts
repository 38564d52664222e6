#!/usr/bin/env node
// SPDX-License-Identifier: GPL-2.0-only
// `xvsadm`: ipvsadm's command line, flag for flag, over xvs. Parsing is parseIpvsadmArgv's (shared
// with rules files); listings keep ipvsadm's layouts; errors keep ipvsadm's wording and exit
// statuses (2 for a bad command line, 255 for an operation the "kernel" refuses, 1 when a listed
// service does not exist). Like ipvsadm, which loads the ip_vs module on first use, the first
// command finding no data plane in this network namespace loads it on every up interface with an
// address except lo, and says so on stderr.
import { parseIpvsadmArgv, toIpvsadmRules, type IpvsadmCommand } from '../config'
import { tokenizeLine } from '../config/ipvsadm'
import { ConfigError, XvsError } from '../errors'
import { serviceKey } from '../model/diff'
import type { Model } from '../model/types'
import { StateError, type ApplyReport, type Backend, type Edit, type StateReason } from './backend'
import { DirectBackend } from './direct'
import { withDaemon } from './socket'
import { editOf } from './edits'
import { compareServers, compareServices, formatConns, formatList, formatTimeouts, numeric, rates, IPVS_VERSION } from './format'
import { cliLogger, packageVersion, processIo, type CliIo } from './io'
import { resolveNames } from './names'

/** ipvsadm's exit statuses. */
export const XVSADM_EXIT = {
  OK: 0,
  /** A service named to -L does not exist (ipvsadm's list_service). */
  LIST: 1,
  /** Bad command line; the data plane cannot be loaded (ipvsadm's fail(2)). */
  USAGE: 2,
  /** The operation was refused (ipvsadm returns -1 after ipvs_strerror). */
  REFUSED: 255,
} as const

/** libipvs's ipvs_strerror wording for each conflict. */
export const IPVSADM_STATE_MESSAGE: Record<StateReason, string> = {
  'service-exists': 'Service already exists',
  'no-service': 'No such service',
  'service-not-defined': 'Service not defined',
  'server-exists': 'Destination already exists',
  'no-server': 'No such destination',
}

/** How long --rate samples the counters (IPVS's estimator averages over 2 s; one sample pair here). */
export const RATE_INTERVAL_MS = 1000

export function usage(prog = 'xvsadm'): string {
  return `${version(prog)}Usage:
  ${prog} -A|E -t|u|f service-address [-s scheduler] [-p [timeout]] [-M netmask] [-b sched-flags]
  ${prog} -D -t|u|f service-address
  ${prog} -C
  ${prog} -R
  ${prog} -S [-n]
  ${prog} -a|e -t|u|f service-address -r server-address [options]
  ${prog} -d -t|u|f service-address -r server-address
  ${prog} -L|l [options]
  ${prog} -Z [-t|u|f service-address]
  ${prog} --set tcp tcpfin udp
  ${prog} -h

Commands:
Either long or short options are allowed.
  --add-service     -A        add virtual service with options
  --edit-service    -E        edit virtual service with options
  --delete-service  -D        delete virtual service
  --clear           -C        clear the whole table
  --restore         -R        restore rules from stdin
  --save            -S        save rules to stdout
  --add-server      -a        add real server with options
  --edit-server     -e        edit real server with options
  --delete-server   -d        delete real server
  --list            -L|-l     list the table
  --zero            -Z        zero counters in a service or all services
  --set tcp tcpfin udp        set connection timeout values
  --help            -h        display this help message
  --version         -v        display the version

Options:
  --tcp-service  -t service-address   service-address is host[:port]
  --udp-service  -u service-address   service-address is host[:port]
  --fwmark-service  -f fwmark         fwmark is an integer greater than zero (an xvs service group)
  --ipv6         -6                   fwmark entry uses IPv6
  --scheduler    -s scheduler         one of rr|wrr|lc|wlc|lblc|lblcr|dh|sh|sed|nq|mh|fo|ovf|twos,
                                      the default scheduler is wlc.
  --persistent   -p [timeout]         persistent service (default timeout 300)
  --netmask      -M netmask           persistent granularity mask
  --sched-flags  -b flags             scheduler flags: sh-fallback,sh-port,mh-fallback,mh-port (or flag-1,flag-2)
  --real-server  -r server-address    server-address is host (and port)
  --gatewaying   -g                   gatewaying (direct routing) (default)
  --ipip         -i                   ipip encapsulation (tunneling)
  --masquerading -m                   masquerading (NAT)
  --fullnat                           source and destination NAT (xvs)
  --weight       -w weight            capacity of real server
  --u-threshold  -x uthreshold        upper threshold of connections
  --l-threshold  -y lthreshold        lower threshold of connections
  --connection   -c                   output of current IPVS connections
  --timeout                           output of timeout (tcp tcpfin udp)
  --daemon                            output of daemon information
  --stats                             output of statistics information
  --rate                              output of rate information (sampled over 1 s)
  --exact                             expand numbers (display exact values)
  --thresholds                        output of thresholds information
  --persistent-conn                   output of persistent connection info
  --nosort                            disable sorting output of service/server entries
  --sort                              does nothing, for backwards compatibility
  --numeric      -n                   numeric output of addresses and ports

Examples (the LVS documentation's NAT example; xvs balances it like IPVS):
  ${prog} -A -t 172.16.100.67:80 -s wrr
  ${prog} -a -t 172.16.100.67:80 -r 192.168.12.21 -w 1 -m
  ${prog} -a -t 172.16.100.67:80 -r 192.168.12.22 -w 3 -m
  ${prog} -Ln
  ${prog} -S -n > rules; ${prog} -C; ${prog} -R < rules

xvs notes:
  State lives in the XDP data plane of the current network namespace (ip netns exec NS ${prog} ...);
  with none loaded, the first command loads it on every up interface with an address except lo.
  -R applies the whole file at once: on any error nothing is applied. -S always prints numeric rules.
  What the data plane does not run yet is refused with a message saying so.

Exit status:
  0    success
  1    the service given to -L does not exist
  2    bad command line, or the data plane could not be loaded
  255  the operation was refused (Service already exists, No such service, not in the data plane yet, ...)
`
}

export function version(prog = 'xvsadm'): string {
  return `${prog} v${packageVersion()} (xvs; ipvsadm-compatible, IPVS v${IPVS_VERSION} semantics)\n`
}

/** A parse error as ipvsadm prints it: its one-line message, then xvs's advice on a hint line. */
export function parseErrorText(e: ConfigError): string {
  let text = e.message
  // The option's name ("weight: ...") is not ipvsadm's wording; a place in a file ("stdin:2: ...") is kept.
  if (e.where !== undefined && !/:\d+$/.test(e.where) && text.startsWith(`${e.where}: `)) text = text.slice(e.where.length + 2)
  const i = text.indexOf('; ')
  return i < 0 ? `${text}\n` : `${text.slice(0, i)}\n${hintLine(text.slice(i + 2))}`
}

const hintLine = (h: string | undefined): string => (h ? `hint: ${h}\n` : '')

/** An error raised while carrying out a command, and the status ipvsadm would exit with. */
export function refusalText(e: unknown): { text: string; code: number } {
  if (e instanceof StateError) return { text: `${IPVSADM_STATE_MESSAGE[e.reason]}\n`, code: XVSADM_EXIT.REFUSED }
  if (e instanceof ConfigError) {
    // Model paths (services[0].port) mean nothing on a command line; file positions and service names do.
    const modelPath = e.where !== undefined && /^(services|settings)[.[]/.test(e.where)
    const text = modelPath && e.message.startsWith(`${e.where}: `) ? e.message.slice(e.where!.length + 2) : e.message
    return { text: `${text}\n${hintLine(e.hint)}`, code: XVSADM_EXIT.REFUSED }
  }
  if (e instanceof XvsError) return { text: `${e.message}\n${hintLine(e.hint)}`, code: XVSADM_EXIT.REFUSED }
  return { text: `internal error: ${(e as Error)?.message ?? String(e)}\nhint: this is a bug in xvs; rerun with XVS_DEBUG=1 for the stack\n`, code: XVSADM_EXIT.USAGE }
}

/** Services and real servers in ipvsadm's order (what -S prints). */
export function sortedModel(m: Model): Model {
  return {
    ...m,
    services: [...m.services].sort(compareServices).map((s) => ({ ...s, realServers: [...s.realServers].sort(compareServers) })),
  }
}

/** The edits of a rules text (ipvsadm -R input); a located ConfigError for a bad line. */
export function restoreEdits(text: string, file = 'stdin'): Edit[] {
  const edits: Edit[] = []
  text.split(/\r?\n/).forEach((line, i) => {
    const words = tokenizeLine(line, i + 1, file).map((a) => a.text)
    if (words[0] && /(^|\/)(ipvsadm|xvsadm)$/.test(words[0])) words.shift()
    if (words.length === 0) return
    let cmd: IpvsadmCommand
    try {
      cmd = parseIpvsadmArgv(words)
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e
      const msg = e.where !== undefined && e.message.startsWith(`${e.where}: `) ? e.message.slice(e.where.length + 2) : e.message
      throw new ConfigError(msg, { where: `${file}:${i + 1}`, ...(e.field ? { field: e.field } : {}) })
    }
    const edit = editOf(cmd)
    if (edit) edits.push(edit)
    else if (cmd.op === 'add-laddr' || cmd.op === 'del-laddr') {
      throw new ConfigError(`--${cmd.op}: fullnat local addresses are not in the data plane yet`, { where: `${file}:${i + 1}` })
    } else if (cmd.op !== 'zero') {
      throw new ConfigError(`'${words.join(' ')}' is not a rule; a rules file holds -A -E -D -a -e -d -C and --set lines`, { where: `${file}:${i + 1}` })
    }
  })
  return edits
}

/** Run `xvsadm` with argv (without node and script); returns the exit status. */
export async function xvsadm(argv: readonly string[], io: CliIo = processIo(), backend?: () => Backend): Promise<number> {
  let cmd: IpvsadmCommand
  try {
    cmd = parseIpvsadmArgv(argv)
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e
    io.err(parseErrorText(e))
    return XVSADM_EXIT.USAGE
  }
  switch (cmd.op) {
    case 'help': io.out(usage()); return XVSADM_EXIT.OK
    case 'version': io.out(version()); return XVSADM_EXIT.OK
    case 'start-daemon': case 'stop-daemon':
      io.err('connection synchronisation daemons are not supported by xvs\nhint: directors agree on flows through Maglev (-s mh) instead\n')
      return XVSADM_EXIT.USAGE
    case 'list': {
      const o = cmd.options
      if ((o.connections || o.timeouts || o.daemon) && (o.stats || o.persistentConn || o.rate || o.thresholds)) {
        io.err('options conflicts in the list command\n')
        return XVSADM_EXIT.USAGE
      }
    }
  }
  let restore: Edit[] | undefined
  if (cmd.op === 'restore') {
    try {
      restore = restoreEdits(await io.readStdin())
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e
      io.err(parseErrorText(e))
      return XVSADM_EXIT.USAGE
    }
  }

  const log = cliLogger('xvsadm')
  // While a daemon runs it owns the desired state: changes go through its control socket.
  const b = backend?.() ?? withDaemon(new DirectBackend({ log, autoLoad: 'never' }))
  try {
    if (!(await b.loaded())) {
      try {
        const r = await b.load({ ifaces: [], fallback: true })
        io.err(`xvsadm: no xvs data plane was loaded in this network namespace; loaded it on ${r.ifaces.join(', ')} (${r.mode} XDP, connection table ${r.connTableSize} entries)\n`)
      } catch (e) {
        const m = e instanceof XvsError ? e : undefined
        io.err(`Can't initialize xvs: ${m?.message ?? (e as Error).message}\n${hintLine(m?.hint)}`)
        return XVSADM_EXIT.USAGE
      }
    }
    return await run(cmd, b, io, restore)
  } catch (e) {
    const r = refusalText(e)
    io.err(r.text)
    if (process.env.XVS_DEBUG && e instanceof Error) io.err(`${e.stack}\n`)
    return r.code
  } finally {
    b.close()
  }
}

async function run(cmd: IpvsadmCommand, b: Backend, io: CliIo, restore?: Edit[]): Promise<number> {
  switch (cmd.op) {
    case 'list': {
      const o = cmd.options
      if (o.daemon) return XVSADM_EXIT.OK // no sync daemon runs: ipvsadm prints nothing either
      if (o.timeouts) {
        io.out(formatTimeouts((await b.current()).settings.timeouts))
        return XVSADM_EXIT.OK
      }
      if (o.connections) {
        const rows = await b.conns()
        const names = o.numeric ? numeric : await resolveNames(rows.flatMap((c) => [c.client.address, c.virtual.address, ...(c.real ? [c.real.address] : [])]))
        io.out(formatConns(rows, names))
        return XVSADM_EXIT.OK
      }
      let snap = await b.snapshot()
      if (o.rate) {
        await io.sleep(RATE_INTERVAL_MS)
        snap = rates(snap, await b.snapshot())
      }
      const ref = cmd.service
      const only = ref ? snap.services.find((s) => serviceKey(s.service) === serviceKey(ref)) : undefined
      if (ref && !only) {
        io.err(`${IPVSADM_STATE_MESSAGE['no-service']}\n`)
        return XVSADM_EXIT.LIST
      }
      const names = o.numeric ? numeric
        : await resolveNames(snap.services.flatMap((r) => [...(r.service.kind === 'group' ? [] : [r.service.vip]), ...r.reals.map((x) => x.server.address)]))
      io.out(formatList(snap, { names, sort: o.sort, exact: o.exact, stats: o.stats, rate: o.rate, thresholds: o.thresholds, persistentConn: o.persistentConn }, only))
      return XVSADM_EXIT.OK
    }
    case 'save':
      io.out(toIpvsadmRules(sortedModel(await b.current())))
      return XVSADM_EXIT.OK
    case 'restore':
      if (restore && restore.length) notes(io, await b.edit(restore))
      return XVSADM_EXIT.OK
    case 'zero':
      await b.zero(cmd.service)
      return XVSADM_EXIT.OK
    case 'add-laddr':
    case 'del-laddr':
      io.err(`--${cmd.op}: fullnat local addresses are not in the data plane yet\n`)
      return XVSADM_EXIT.REFUSED
    default: {
      const edit = editOf(cmd)
      if (!edit) return XVSADM_EXIT.OK
      notes(io, await b.edit([edit]))
      return XVSADM_EXIT.OK
    }
  }
}

function notes(io: CliIo, r: ApplyReport): void {
  for (const n of r.notes) io.err(`xvsadm: note: ${n}\n`)
}

if (require.main === module) {
  void xvsadm(process.argv.slice(2)).then((code) => { process.exitCode = code })
}
