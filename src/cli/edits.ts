// SPDX-License-Identifier: GPL-2.0-only
// Edits: the one-thing changes of ipvsadm's commands (-A -E -D -a -e -d -C --set) applied to a
// model. Pure: the backend reads the current model, applies the edits here, validates and writes.
import type { IpvsadmCommand, ServiceRef } from '../config'
import { DEFAULT_MH_TABLE_SIZE, DEFAULT_METHOD, DEFAULT_SCHEDULER, DEFAULT_WEIGHT, incompleteNote, portService, realServer, serviceGroup } from '../model/defaults'
import { formatHostPort } from '../model/addr'
import { realServerKey, serviceKey } from '../model/diff'
import type { Model, RealServer, Service } from '../model/types'
import { ConfigError } from '../errors'
import { StateError, type Edit, type ServerSettings, type ServiceSettings } from './backend'

/** "tcp 10.0.0.1:80", "udp [2001:db8::1]:53", "group 7". */
export function refText(ref: ServiceRef | Service): string {
  if (ref.kind === 'group') return `group ${ref.id}`
  return `${ref.kind} ${formatHostPort(ref.vip, ref.port)}`
}

function serviceWith(ref: ServiceRef, s: ServiceSettings, realServers: RealServer[]): Service {
  const scheduler = s.scheduler ?? DEFAULT_SCHEDULER
  const o = {
    scheduler,
    schedFlags: (s.schedFlags ?? []).filter((f) => f.startsWith(`${scheduler}-`)),
    ...(s.persistence ? { persistence: s.persistence } : {}),
    ...(scheduler === 'mh' ? { mhTableSize: s.mhTableSize ?? DEFAULT_MH_TABLE_SIZE } : {}),
    realServers,
  }
  return ref.kind === 'group'
    ? serviceGroup(ref.id, ref.family, [], { ...o, incomplete: incompleteNote(ref.id) })
    : portService(ref.kind, ref.vip, ref.port, o)
}

/** The settings of `s` merged with `change` (absent fields keep theirs). */
function merged(s: Service, change: ServiceSettings): ServiceSettings {
  const scheduler = change.scheduler ?? s.scheduler
  const keepFlags = change.scheduler === undefined || change.scheduler === s.scheduler
  const persistence = change.persistence === undefined ? s.persistence : change.persistence
  const mhTableSize = change.mhTableSize ?? s.mhTableSize
  return {
    scheduler,
    schedFlags: change.schedFlags ?? (keepFlags ? s.schedFlags : []),
    ...(persistence ? { persistence } : {}),
    ...(mhTableSize !== undefined ? { mhTableSize } : {}),
  }
}

function serverWith(ref: { address: string; port: number }, s: ServerSettings): RealServer {
  return realServer(ref.address, ref.port, {
    weight: s.weight ?? DEFAULT_WEIGHT, method: s.method ?? DEFAULT_METHOD,
    upperThreshold: s.upperThreshold ?? 0, lowerThreshold: s.lowerThreshold ?? 0,
  })
}

/** `model` with `edits` applied in order; a StateError (ipvsadm's reasons) for one that does not fit. Not validated. */
export function applyEdits(model: Model, edits: readonly Edit[]): Model {
  let services = model.services.slice()
  const settings = { ...model.settings, timeouts: { ...model.settings.timeouts } }
  for (const e of edits) {
    if (e.op === 'clear') { services = []; continue }
    if (e.op === 'set-timeouts') {
      for (const k of ['tcp', 'tcpfin', 'udp'] as const) if (e.timeouts[k] !== 0) settings.timeouts[k] = e.timeouts[k]
      continue
    }
    const key = serviceKey(e.service)
    const i = services.findIndex((s) => serviceKey(s) === key)
    const svc = services[i]
    const what = refText(e.service)
    switch (e.op) {
      case 'add-service':
        if (svc) throw new StateError('service-exists', `${what}: the service already exists`, { hint: 'change it with edit (ipvsadm -E), or delete it first' })
        services.push(serviceWith(e.service, e.settings, []))
        continue
      case 'edit-service':
        if (!svc) throw new StateError('no-service', `${what}: no such service`, { hint: 'add it first (ipvsadm -A)' })
        services[i] = serviceWith(e.service, e.replace
          ? { ...e.settings, ...(e.settings.mhTableSize === undefined && svc.mhTableSize ? { mhTableSize: svc.mhTableSize } : {}) }
          : merged(svc, e.settings), svc.realServers)
        for (const k of ['name', 'sorryServer', 'quorum'] as const) if (svc[k] !== undefined) (services[i] as unknown as Record<string, unknown>)[k] = svc[k]
        continue
      case 'delete-service':
        if (!svc) throw new StateError('no-service', `${what}: no such service`)
        services.splice(i, 1)
        continue
    }
    if (!svc) throw new StateError('service-not-defined', `${what}: no such service`, { hint: 'add the service first (ipvsadm -A)' })
    const rkey = realServerKey(e.server)
    const j = svc.realServers.findIndex((r) => realServerKey(r) === rkey)
    const old = svc.realServers[j]
    const rwhat = `${what}: real server ${formatHostPort(e.server.address, e.server.port)}`
    const reals = svc.realServers.slice()
    switch (e.op) {
      case 'add-server':
        if (old) throw new StateError('server-exists', `${rwhat} already exists`, { hint: 'change it with edit (ipvsadm -e)' })
        reals.push(serverWith(e.server, e.settings))
        break
      case 'edit-server': {
        if (!old) throw new StateError('no-server', `${rwhat}: no such real server`, { hint: 'add it first (ipvsadm -a)' })
        const next = serverWith(e.server, e.replace ? e.settings : {
          weight: e.settings.weight ?? old.weight, method: e.settings.method ?? old.method,
          upperThreshold: e.settings.upperThreshold ?? old.upperThreshold, lowerThreshold: e.settings.lowerThreshold ?? old.lowerThreshold,
        })
        reals[j] = { ...next, ...(old.name ? { name: old.name } : {}), ...(old.check ? { check: old.check } : {}) }
        break
      }
      case 'delete-server':
        if (!old) throw new StateError('no-server', `${rwhat}: no such real server`)
        reals.splice(j, 1)
        break
    }
    services[i] = { ...svc, realServers: reals }
  }
  return { settings, services }
}

/** The edit an ipvsadm command makes, or null for commands that change nothing (-L, -S, -Z, ...). */
export function editOf(cmd: IpvsadmCommand): Edit | null {
  switch (cmd.op) {
    case 'add-service':
      return { op: 'add-service', service: cmd.service, settings: cmd.options }
    case 'edit-service':
      // ipvsadm -E sets every attribute: persistence left out means not persistent.
      return { op: 'edit-service', service: cmd.service, settings: { ...cmd.options, persistence: cmd.options.persistence ?? null }, replace: true }
    case 'delete-service':
      return { op: 'delete-service', service: cmd.service }
    case 'add-server':
    case 'edit-server': {
      const { address, port, ...settings } = cmd.server
      return cmd.op === 'add-server'
        ? { op: 'add-server', service: cmd.service, server: { address, port }, settings }
        : { op: 'edit-server', service: cmd.service, server: { address, port }, settings, replace: true }
    }
    case 'delete-server':
      return { op: 'delete-server', service: cmd.service, server: cmd.server }
    case 'clear':
      return { op: 'clear' }
    case 'set':
      return { op: 'set-timeouts', timeouts: cmd.timeouts }
    default:
      return null
  }
}

/**
 * A validation error of an edited model names model paths ("services[0].realServers[2].port"), which
 * mean nothing to someone who typed one command: name the service and real server instead.
 */
export function relocate(e: ConfigError, model: Model): ConfigError {
  const m = /^services\[(\d+)\](?:\.realServers\[(\d+)\])?(?:\.(.+))?$/.exec(e.where ?? '')
  const s = m ? model.services[Number(m[1])] : undefined
  if (!m || !s || !e.message.startsWith(`${e.where}: `)) return e
  const r = m[2] !== undefined ? s.realServers[Number(m[2])] : undefined
  const place = `${refText(s)}${r ? `: real server ${formatHostPort(r.address, r.port)}` : ''}`
  const text = e.message.slice(e.where!.length + 2)
  return new ConfigError(`${m[3] ? `${m[3]}: ` : ''}${text}`, { where: place, ...(e.field ? { field: e.field } : {}), ...(e.hint ? { hint: e.hint } : {}) })
}
