// SPDX-License-Identifier: GPL-2.0-only
// Where the command lines' state lives. Every command talks to a Backend: without a daemon that is
// DirectBackend (direct.ts), which writes the maps of this network namespace itself, as ipvsadm
// writes IPVS; with a daemon it will be a SocketBackend speaking the daemon's control socket, so
// the two never fight over the maps. Everything that crosses this seam is plain JSON-able data.
import type { ServiceRef } from '../config'
import { XvsError, type XvsErrorOptions } from '../errors'
import type { Method, Model, Persistence, RealServer, SchedFlag, Scheduler, Service, Timeouts } from '../model/types'
import type { ModelDiff } from '../model/diff'
import type { ApplyResult } from '../dataplane/writer'
import type { StatTotals } from '../dataplane/reader'
import type { Attachment } from '../dataplane/loader'

/** Why a change does not fit the current state; xvsadm maps each to ipvsadm's wording. */
export type StateReason = 'service-exists' | 'no-service' | 'service-not-defined' | 'server-exists' | 'no-server'

/** A request that conflicts with the current state: the service already exists, the real server does not. */
export class StateError extends XvsError {
  readonly reason: StateReason
  constructor(reason: StateReason, message: string, opts: XvsErrorOptions = {}) {
    super('ESTATE', message, opts)
    this.reason = reason
  }
}

/** A command that needs a running data plane found none in this network namespace. */
export class NotLoadedError extends XvsError {
  constructor(opts: XvsErrorOptions = {}) {
    super('ENOTLOADED', 'no xvs data plane is loaded in this network namespace', {
      hint: 'load it with `xvs load` (every up interface with an address) or `xvs load -i IFACE`', ...opts,
    })
  }
}

/** Service attributes an edit sets; absent ones keep their value (or, with `replace`, take the default). */
export interface ServiceSettings {
  scheduler?: Scheduler
  schedFlags?: SchedFlag[]
  /** null: not persistent. */
  persistence?: Persistence | null
  mhTableSize?: number
}

export interface ServerSettings {
  weight?: number
  method?: Method
  upperThreshold?: number
  lowerThreshold?: number
}

export interface ServerRef { address: string; port: number }

/**
 * One change to the current state, as ipvsadm's commands make them. `replace`: attributes not given
 * take their defaults (ipvsadm -E / -e); otherwise they keep their current value (xvs service edit).
 */
export type Edit =
  | { op: 'add-service'; service: ServiceRef; settings: ServiceSettings }
  | { op: 'edit-service'; service: ServiceRef; settings: ServiceSettings; replace?: boolean }
  | { op: 'delete-service'; service: ServiceRef }
  | { op: 'add-server'; service: ServiceRef; server: ServerRef; settings: ServerSettings }
  | { op: 'edit-server'; service: ServiceRef; server: ServerRef; settings: ServerSettings; replace?: boolean }
  | { op: 'delete-server'; service: ServiceRef; server: ServerRef }
  | { op: 'clear' }
  /** ipvsadm --set: 0 leaves a timeout unchanged. */
  | { op: 'set-timeouts'; timeouts: Timeouts }

export interface LoadRequest {
  /** Interfaces to attach to; empty: every up interface with a global address except lo. */
  ifaces: string[]
  mode?: 'native' | 'generic'
  connTableSize?: number
  /** Fall back to generic mode where the driver has no native XDP (automatic loads do). */
  fallback?: boolean
}

export interface LoadReport {
  ifaces: string[]
  mode: 'native' | 'generic'
  /** A running data plane's maps were kept (its program replaced atomically). */
  adopted: boolean
  attached: string[]
  replaced: string[]
  progId: number
  connTableSize: number
}

export interface ApplyReport {
  /** From what the data plane ran to what it runs now. */
  diff: ModelDiff
  /** What the writer did; absent on a dry run. */
  result?: ApplyResult
  /** Things the data plane does not do with this model (yet); printed as warnings. */
  notes: string[]
}

export interface MapFill { name: string; entries: number; max: number }

export interface Status {
  abiVersion: number
  prog: { id: number; name: string; tag: string; runCount: number; runTimeNs: number }
  attachments: Attachment[]
  pins: string | null
  maps: MapFill[]
}

export interface RealRow {
  id: number
  server: RealServer
  flags: number
  stats: StatTotals
  active: number
  inactive: number
  persistent: number
}

export interface ServiceRow {
  id: number
  service: Service
  stats: StatTotals
  reals: RealRow[]
}

/** Services, real servers, their statistics and connection counts: what listings print. */
export interface Snapshot {
  /** CLOCK_MONOTONIC milliseconds when it was taken (rates divide by differences of these). */
  takenAtMs: number
  connTableSize: number
  timeouts: Timeouts
  services: ServiceRow[]
  counters: Record<string, number>
}

export interface ConnRow {
  proto: 'tcp' | 'udp' | string
  client: { address: string; port: number }
  virtual: { address: string; port: number }
  /** The real server; null when its entry is gone or reused. */
  real: { address: string; port: number } | null
  state: string
  /** Seconds left before it expires. */
  expires: number
  template: boolean
  serviceId: number
  realId: number
  /** fullnat: the local address and port the client's became towards the real server. */
  local?: { address: string; port: number }
}

export const MAP_KINDS = ['services', 'reals', 'tables', 'conns', 'counters', 'settings', 'stats', 'rr-cursor', 'tx-ports', 'nat-rev', 'laddrs'] as const
export type MapKind = (typeof MAP_KINDS)[number]

export interface InspectResult {
  map: MapKind
  /** The kernel's map names read. */
  sources: string[]
  rows: Record<string, unknown>[]
}

export interface Backend {
  /** Whether a data plane runs here (cheap, unlike status()). */
  loaded(): Promise<boolean>
  /** The running data plane, or null. */
  status(): Promise<Status | null>
  load(req: LoadRequest): Promise<LoadReport>
  /** Detach (everywhere when `ifaces` is empty); returns the interfaces detached from. */
  unload(ifaces: string[]): Promise<string[]>
  /** What the data plane runs, as a model. */
  current(): Promise<Model>
  /** Make the data plane run `model` (validated), atomically: on an error nothing is applied. */
  apply(model: Model, opts?: { dryRun?: boolean }): Promise<ApplyReport>
  /** Change the current state by `edits`, all or none. */
  edit(edits: Edit[], opts?: { dryRun?: boolean }): Promise<ApplyReport>
  snapshot(): Promise<Snapshot>
  conns(): Promise<ConnRow[]>
  /** Zero the statistics of one service and its real servers, or of everything. */
  zero(service?: ServiceRef): Promise<void>
  inspect(map: MapKind, opts?: { service?: ServiceRef; all?: boolean }): Promise<InspectResult>
  close(): void
}
