// SPDX-License-Identifier: GPL-2.0-only
// What every parser returns, and how it remembers where each part of the model came from so that a
// validation error points at the file:line:column the operator wrote.
import { validate, type Locate } from '../model/validate'
import type { Model } from '../model/types'

export type ConfigFormat = 'yaml' | 'ipvsadm' | 'keepalived' | 'lvs.cf'

/** "file:line:column", 1-based. */
export function at(file: string, line: number, col: number): string {
  return `${file}:${line}:${col}`
}

/**
 * A statement a parser did not turn into the model but a later parser may want, kept as a tree: keepalived's
 * global_defs and vrrp_* blocks, lvs.cf's director settings (primary, backup, heartbeat, ...).
 */
export interface RawBlock {
  keyword: string
  args: string[]
  where: string
  children?: RawBlock[]
}

export interface ConfigWarning {
  where: string
  message: string
}

export interface ParsedConfig {
  format: ConfigFormat
  /** Validated. */
  model: Model
  locations: Locations
  /** Accepted but not used by xvs (a keepalived keyword with no xvs meaning, an inactive lvs.cf server, ...). */
  warnings: ConfigWarning[]
  raw: RawBlock[]
}

/**
 * Source positions of model objects and their fields. Keyed by object, not by path, so a parser may reorder
 * or delete (ipvsadm -D) after marking.
 */
export class Locations {
  /**
   * Per object, where each field was written. Plain objects: the marks of like objects (every real
   * server) share one hidden class, far lighter than a Map each.
   */
  private readonly marks = new Map<object, Record<string, string | number>>()

  /**
   * `resolve` turns an offset into the source into "file:line:column": a parser that knows offsets
   * marks them, and only positions an error reports are ever worked out.
   */
  constructor(private readonly resolve?: (offset: number) => string) {}

  /** `where` the object (field '') or one of its fields was written: a position, or an offset to resolve. */
  mark(obj: object, where: string | number | undefined, field = ''): void {
    if (where === undefined) return
    const m = this.marks.get(obj)
    if (m) m[field] = where
    else this.marks.set(obj, { [field]: where })
  }

  private get(obj: object, field: string): string | number | undefined {
    const w = this.marks.get(obj)?.[field]
    // only own marks, never something of Object.prototype
    return typeof w === 'string' || typeof w === 'number' ? w : undefined
  }

  /** The most specific known position for a model path such as "services[1].realServers[0].weight". */
  locator(model: Model): Locate {
    return (path) => {
      const steps = path.match(/[^.[\]]+/g) ?? []
      let cur: unknown = model
      let best: string | number | undefined
      for (const step of steps) {
        if (typeof cur !== 'object' || cur === null) break
        best = this.get(cur, step) ?? best
        cur = (cur as Record<string, unknown>)[step]
        if (typeof cur === 'object' && cur !== null) best = this.get(cur, '') ?? best
      }
      return typeof best === 'number' ? this.resolve?.(best) : best
    }
  }
}

/** Validate with locations, and wrap up. */
export function finish(format: ConfigFormat, model: Model, locations: Locations, warnings: ConfigWarning[] = [], raw: RawBlock[] = []): ParsedConfig {
  validate(model, { locate: locations.locator(model) })
  return { format, model, locations, warnings, raw }
}
