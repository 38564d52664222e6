// SPDX-License-Identifier: GPL-2.0-only
// Load a director's configuration in any of the four formats into a validated model.
import { readFileSync } from 'node:fs'
import { basename, extname } from 'node:path'
import { fail } from '../model/fail'
import { parseIpvsadmRules } from './ipvsadm'
import { parseKeepalived, type KeepalivedOptions } from './keepalived'
import { parseLvsCf } from './lvscf'
import type { ConfigFormat, ParsedConfig } from './source'
import { parseYaml } from './yaml'

export type { ConfigFormat, ConfigWarning, ParsedConfig, RawBlock } from './source'
export { Locations } from './source'
export { parseYaml, toYaml } from './yaml'
export { parseIpvsadmArgv, parseIpvsadmRules, toIpvsadmRules, type IpvsadmCommand, type ServiceRef } from './ipvsadm'
export { parseKeepalived } from './keepalived'
export { parseLvsCf } from './lvscf'

export const FORMATS: readonly ConfigFormat[] = ['yaml', 'ipvsadm', 'keepalived', 'lvs.cf']

/** The format of a file, from its name when that is unambiguous, else from its first meaningful lines. */
export function detectFormat(path: string, text: string): ConfigFormat | undefined {
  const ext = extname(path).toLowerCase()
  if (ext === '.yaml' || ext === '.yml') return 'yaml'
  if (basename(path) === 'lvs.cf' || ext === '.cf') return 'lvs.cf'
  const body = text.replace(/^\s*[#!].*$/gm, '')
  if (/^\s*(ipvsadm\s+)?(-[AaEeDdCS]\b|--(set|add-service|add-server)\b)/m.test(body)) return 'ipvsadm'
  if (/^\s*(virtual_server(_group)?|global_defs|vrrp_\w+|include)\b/m.test(body)) return 'keepalived'
  if (/^\s*(serial_no|primary|service|network)\s*=|^\s*virtual\s+\S+\s*\{/m.test(body)) return 'lvs.cf'
  if (/^\s*(services|settings)\s*:/m.test(body)) return 'yaml'
  return undefined
}

/** Parse (and validate) text in a given format; `file` names it in error positions. */
export function parseConfig(text: string, file: string, from?: ConfigFormat, opts: KeepalivedOptions = {}): ParsedConfig {
  const format = from ?? detectFormat(file, text)
  switch (format) {
    case 'yaml':
      return parseYaml(text, file)
    case 'ipvsadm':
      return parseIpvsadmRules(text, file)
    case 'keepalived':
      return parseKeepalived(text, file, opts)
    case 'lvs.cf':
      return parseLvsCf(text, file)
    default:
      return fail('from', `cannot tell the format of ${file}; give from: ${FORMATS.join(' | ')}`, file)
  }
}

/** Read, parse and validate a config file. Synchronous: config is read once at start and on reload. */
export function loadConfig(path: string, opts: { from?: ConfigFormat } & KeepalivedOptions = {}): ParsedConfig {
  if (opts.from !== undefined && !FORMATS.includes(opts.from)) {
    fail('from', `'${opts.from}' is not a config format; use ${FORMATS.join(', ')}`)
  }
  let text: string
  try {
    text = (opts.readFile ?? ((p: string) => readFileSync(p, 'utf8')))(path)
  } catch (e) {
    return fail('path', `cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); check the path`, path)
  }
  return parseConfig(text, path, opts.from, opts)
}
