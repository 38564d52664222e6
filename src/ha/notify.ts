// SPDX-License-Identifier: GPL-2.0-only
// keepalived's notify scripts. On a state change an instance (or sync group) runs, in this order:
//   notify_master | notify_backup | notify_fault | notify_stop   as written, no arguments added
//   notify                                                      with TYPE NAME STATE PRIORITY appended
// TYPE is INSTANCE or GROUP, STATE is MASTER, BACKUP, FAULT or STOP, PRIORITY the instance's effective
// priority (0 for a group). Like keepalived, the command line is split into words (quotes and
// backslashes as in a shell) and executed directly, without a shell; scripts run in the background and
// their exit status is only logged.
import { spawn } from 'node:child_process'
import { ArgumentError } from '../errors'
import type { Logger } from '../log'
import type { VrrpNotify } from '../model/types'

export type NotifyState = 'MASTER' | 'BACKUP' | 'FAULT' | 'STOP'
export type NotifyType = 'INSTANCE' | 'GROUP'

/** Split a command line into words: '…' literal, "…" with \" \\ escapes, \x outside quotes. */
export function splitCommand(line: string): string[] {
  const words: string[] = []
  let cur = ''
  let inWord = false
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!
    if (c === "'") {
      const end = line.indexOf("'", i + 1)
      if (end < 0) throw new ArgumentError(`unterminated ' in ${JSON.stringify(line)}`)
      cur += line.slice(i + 1, end)
      i = end
      inWord = true
    } else if (c === '"') {
      let j = i + 1
      for (; j < line.length && line[j] !== '"'; j++) {
        if (line[j] === '\\' && (line[j + 1] === '"' || line[j + 1] === '\\')) j++
        cur += line[j]
      }
      if (j >= line.length) throw new ArgumentError(`unterminated " in ${JSON.stringify(line)}`)
      i = j
      inWord = true
    } else if (c === '\\' && i + 1 < line.length) {
      cur += line[++i]
      inWord = true
    } else if (/\s/.test(c)) {
      if (inWord) words.push(cur)
      cur = ''
      inWord = false
    } else {
      cur += c
      inWord = true
    }
  }
  if (inWord) words.push(cur)
  return words
}

/** The commands to run for one state change, as argv lists, in keepalived's order. */
export function notifyCommands(n: VrrpNotify, type: NotifyType, name: string, state: NotifyState, priority: number): string[][] {
  const out: string[][] = []
  const specific = { MASTER: n.master, BACKUP: n.backup, FAULT: n.fault, STOP: n.stop }[state]
  if (specific) out.push(splitCommand(specific))
  if (n.any) out.push([...splitCommand(n.any), type, name, state, String(priority)])
  return out.filter((argv) => argv.length > 0)
}

/** Runs one notify command; returns at once. */
export type ScriptRunner = (argv: readonly string[]) => void

/** Spawn detached from our stdio; log a failure to start or a non-zero exit. */
export function spawnRunner(log: Logger, timeoutMs = 60_000): ScriptRunner {
  return (argv) => {
    const started = Date.now()
    const child = spawn(argv[0]!, argv.slice(1), { stdio: 'ignore', timeout: timeoutMs })
    child.once('error', (err) => log.warn({ err, argv }, 'notify script failed to start'))
    child.once('exit', (code, signal) => {
      const ms = Date.now() - started
      if (code === 0) log.debug({ argv, ms }, 'notify script done')
      else log.warn({ argv, code, signal, ms }, 'notify script failed')
    })
  }
}
