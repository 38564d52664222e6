// SPDX-License-Identifier: GPL-2.0-only
// A Backend over a model in memory, for command-line tests without a kernel: edits and applies go
// through the same applyEdits/validate/diff as DirectBackend, and every call is recorded.
import type { ServiceRef } from '../../src/config'
import { diffModels, serviceKey } from '../../src/model/diff'
import { emptyModel } from '../../src/model/defaults'
import { validate } from '../../src/model/validate'
import type { Model } from '../../src/model/types'
import { ZERO_STATS } from '../../src/dataplane/reader'
import {
  StateError, type ApplyReport, type Backend, type ConnRow, type Edit, type InspectResult, type LoadReport, type LoadRequest,
  type MapKind, type Snapshot, type Status,
} from '../../src/cli/backend'
import { applyEdits, refText } from '../../src/cli/edits'

export class MemoryBackend implements Backend {
  model: Model
  isLoaded: boolean
  calls: string[] = []
  connRows: ConnRow[] = []
  /** Thrown by the next edit/apply after validation (a writer refusal). */
  refuse?: Error

  constructor(model: Model = emptyModel(), loaded = true) {
    this.model = model
    this.isLoaded = loaded
  }

  async loaded(): Promise<boolean> { this.calls.push('loaded'); return this.isLoaded }
  async status(): Promise<Status | null> {
    this.calls.push('status')
    return this.isLoaded ? {
      abiVersion: 1, prog: { id: 7, name: 'xvs_director', tag: '0123456789abcdef', runCount: 0, runTimeNs: 0 },
      attachments: [{ ifname: 'eth0', ifindex: 2, mode: 'native', via: 'netlink', progId: 7 }], pins: null,
      maps: [{ name: 'xvs_services', entries: this.model.services.length, max: 1024 }],
    } : null
  }
  async load(req: LoadRequest): Promise<LoadReport> {
    this.calls.push(`load ${JSON.stringify(req)}`)
    this.isLoaded = true
    return { ifaces: req.ifaces.length ? req.ifaces : ['eth0'], mode: req.mode ?? 'native', adopted: false, attached: ['eth0'], replaced: [], progId: 7, connTableSize: 1048576 }
  }
  async unload(ifaces: string[]): Promise<string[]> { this.calls.push(`unload ${ifaces.join(',')}`); this.isLoaded = false; return ['eth0'] }
  async current(): Promise<Model> { this.calls.push('current'); return this.model }
  async apply(model: Model, opts: { dryRun?: boolean } = {}): Promise<ApplyReport> {
    this.calls.push('apply')
    validate(model)
    const diff = diffModels(this.model, model)
    if (this.refuse) throw this.refuse
    if (!opts.dryRun) this.model = model
    return { diff, notes: [] }
  }
  async edit(edits: Edit[]): Promise<ApplyReport> {
    this.calls.push(`edit ${edits.map((e) => e.op).join(',')}`)
    const next = validate(applyEdits(this.model, edits))
    if (this.refuse) throw this.refuse
    const diff = diffModels(this.model, next)
    this.model = next
    return { diff, notes: [] }
  }
  async snapshot(): Promise<Snapshot> {
    this.calls.push('snapshot')
    return {
      takenAtMs: 0, connTableSize: 4096, timeouts: this.model.settings.timeouts, counters: { rx: 10 },
      services: this.model.services.map((service, i) => ({
        id: i, service, stats: { ...ZERO_STATS },
        reals: service.realServers.map((server, j) => ({ id: 1 + i * 16 + j, server, flags: 0, stats: { ...ZERO_STATS }, active: 0, inactive: 0, persistent: 0 })),
      })),
    }
  }
  async conns(): Promise<ConnRow[]> { this.calls.push('conns'); return this.connRows }
  async zero(service?: ServiceRef): Promise<void> {
    this.calls.push(`zero ${service ? serviceKey(service) : 'all'}`)
    if (service && !this.model.services.some((s) => serviceKey(s) === serviceKey(service))) {
      throw new StateError('no-service', `${refText(service)}: no such service`)
    }
  }
  async inspect(map: MapKind): Promise<InspectResult> { this.calls.push(`inspect ${map}`); return { map, sources: ['xvs_x'], rows: [{ a: 1 }] } }
  close(): void { this.calls.push('close') }
}
