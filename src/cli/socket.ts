// SPDX-License-Identifier: GPL-2.0-only
// SocketBackend: the command lines' state when an xvs daemon runs. The daemon owns the desired state
// (its config, with health applied), so changes go through its control socket instead of being
// written into the maps behind its back, where its next health-driven write would undo them:
// - apply: the model goes to the daemon as its running config (`apply`), until it re-reads its file;
// - edits (xvsadm -a/-e/-d, xvs service/server ...): applied to the daemon's running config (not to
//   the maps, which hold it with health applied), then sent the same way;
// - load: the daemon loads the program again and swaps it in (`upgrade`); unload is refused while it
//   runs (stop it, or run it with --detach-on-exit).
// Reads (status, listings, statistics, connections, inspect) come from the maps directly, as
// DirectBackend reads them: the kernel is the source of truth for what runs. When no daemon answers
// (the socket is stale), or the one that answers serves another network namespace (a socket path is
// shared by every namespace of the host: `ip netns exec lb2 xvs ...` must not reach lb1's daemon),
// everything goes to the DirectBackend as it would without a daemon.
import { parseConfig, toYaml } from '../config'
import { diffModels } from '../model/diff'
import { validate } from '../model/validate'
import type { Model } from '../model/types'
import { ConfigError, XvsError } from '../errors'
import { DaemonClient, socketPath } from '../daemon/client'
import type { DaemonStatus, ReloadReport } from '../daemon/daemon'
import type { ServiceRef } from '../config'
import { netnsId } from '../dataplane/loader'
import fs from 'node:fs'
import type { ApplyReport, Backend, ConnRow, Edit, InspectResult, LoadReport, LoadRequest, MapKind, Snapshot, Status } from './backend'
import { DirectBackend } from './direct'
import { applyEdits, relocate } from './edits'

/** The daemon manages this data plane, and the request would go behind its back. */
export class DaemonManagedError extends XvsError {
  constructor(message: string, hint: string) {
    super('EDAEMON', message, { hint })
  }
}

export interface SocketBackendOptions {
  /** The daemon's socket; default $XVS_SOCKET or /run/xvs/xvs.sock. */
  socket?: string
  /** For reads, and for everything when no daemon answers. */
  direct: DirectBackend
  /** This network namespace's identity; default the loader's netnsId (tests). */
  netns?: () => string
}

export class SocketBackend implements Backend {
  readonly socket: string
  readonly #direct: DirectBackend
  #client: Promise<DaemonClient | null> | undefined

  constructor(opts: SocketBackendOptions) {
    this.socket = socketPath(opts.socket)
    this.#direct = opts.direct
    this.#absent = `no xvs daemon answers on ${this.socket}`
    this.#netns = opts.netns ?? netnsId
  }

  /** Why daemon() is null: nobody answers, or the daemon that does serves another network namespace. */
  #absent = `no xvs daemon answers on ${socketPath()}`

  /** The connection to this network namespace's daemon, or null when there is none. */
  daemon(): Promise<DaemonClient | null> {
    this.#client ??= (async () => {
      const c = await DaemonClient.tryConnect({ socket: this.socket })
      if (!c) return null
      const ping = (await c.request('ping')) as { pid: number; netns?: string | null }
      if (ping.netns && ping.netns !== this.#netns()) {
        c.close()
        this.#absent = `the xvs daemon on ${this.socket} (pid ${ping.pid}) serves another network namespace`
        return null
      }
      return c
    })()
    return this.#client
  }

  readonly #netns: () => string

  /** Why there is no daemon for this namespace (for `xvs reload`'s error). */
  get absentReason(): string {
    return this.#absent
  }

  async #call(method: Parameters<DaemonClient['request']>[0], params?: object): Promise<unknown> {
    const c = await this.daemon()
    if (!c) throw new XvsError('ENODAEMON', this.#absent)
    return c.request(method, params as never)
  }

  /** The daemon's own status, or null without a daemon. */
  async daemonStatus(): Promise<DaemonStatus | null> {
    return (await this.daemon()) ? (await this.#call('status')) as DaemonStatus : null
  }

  /** Make the daemon re-read its config file; its error (a ConfigError with the position) when refused. */
  async reload(): Promise<ReloadReport> {
    return (await this.#call('reload')) as ReloadReport
  }

  async loaded(): Promise<boolean> { return this.#direct.loaded() }
  async status(): Promise<Status | null> { return this.#direct.status() }
  async current(): Promise<Model> { return this.#direct.current() }
  async snapshot(): Promise<Snapshot> { return this.#direct.snapshot() }
  async conns(): Promise<ConnRow[]> { return this.#direct.conns() }
  async zero(service?: ServiceRef): Promise<void> { return this.#direct.zero(service) }
  async inspect(map: MapKind, opts: { service?: ServiceRef; all?: boolean } = {}): Promise<InspectResult> { return this.#direct.inspect(map, opts) }

  async load(req: LoadRequest): Promise<LoadReport> {
    if (!(await this.daemon())) return this.#direct.load(req)
    const st = (await this.daemonStatus())!
    const current = st.dataplane?.attachments.map((a) => a.ifname) ?? []
    const asked = req.ifaces.filter((i) => !current.includes(i))
    if (asked.length) {
      throw new DaemonManagedError(`the xvs daemon (pid ${st.pid}) decides the interfaces; ${asked.join(', ')} is not one of them`,
        'list it in settings.interfaces of the daemon\'s config and run `xvs reload`')
    }
    const up = (await this.#call('upgrade')) as { progId: number; replaced: string[] }
    const after = (await this.daemonStatus())!
    return {
      ifaces: current, mode: (after.dataplane?.attachments[0]?.mode as 'native' | 'generic' | undefined) ?? 'native', adopted: true,
      attached: [], replaced: up.replaced, progId: up.progId, connTableSize: after.dataplane?.connTableSize ?? 0,
    }
  }

  async unload(ifaces: string[]): Promise<string[]> {
    const c = await this.daemon()
    if (!c) return this.#direct.unload(ifaces)
    const st = (await this.daemonStatus())!
    throw new DaemonManagedError(`the xvs daemon (pid ${st.pid}) runs this data plane; unloading it behind the daemon's back would leave it writing maps nothing reads`,
      'stop the daemon first (systemctl stop xvs); run it with --detach-on-exit to unload when it stops')
  }

  async apply(model: Model, opts: { dryRun?: boolean } = {}): Promise<ApplyReport> {
    if (!(await this.daemon()) || opts.dryRun) return this.#direct.apply(model, opts)
    return this.#send(model, 'xvs apply')
  }

  async edit(edits: Edit[], opts: { dryRun?: boolean } = {}): Promise<ApplyReport> {
    if (!(await this.daemon())) return this.#direct.edit(edits, opts)
    const running = (await this.#call('config')) as { text: string; file: string }
    const config = parseConfig(running.text, running.file, 'yaml').model
    const next = applyEdits(config, edits)
    try {
      validate(next)
    } catch (e) {
      throw e instanceof ConfigError ? relocate(e, next) : e
    }
    if (opts.dryRun) return { diff: diffModels(config, next), notes: [] }
    return this.#send(next, 'an xvs edit')
  }

  /** Run `model` as the daemon's config; the difference is what the maps ran before and after. */
  async #send(model: Model, what: string): Promise<ApplyReport> {
    const before = await this.#direct.current().catch(() => undefined)
    const r = (await this.#call('apply', { text: toYaml(model), format: 'yaml', file: `<${what}>` })) as ReloadReport
    this.#direct.closeDataplane() // read the maps afresh
    const after = await this.#direct.current()
    return {
      diff: diffModels(before ?? { ...after, services: [] }, after),
      ...(r.result ? { result: r.result } : {}),
      notes: [...r.warnings, `the xvs daemon runs this config now (generation ${r.generation}); \`xvs reload\` goes back to its file`],
    }
  }

  close(): void {
    void this.#client?.then((c) => c?.close())
    this.#direct.close()
  }
}

/** Through the daemon's control socket when one may run (its socket exists; SocketBackend falls back when none answers). */
export function withDaemon(direct: DirectBackend): Backend {
  return fs.existsSync(socketPath()) ? new SocketBackend({ direct }) : direct
}
