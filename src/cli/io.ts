// SPDX-License-Identifier: GPL-2.0-only
// The command lines' contact with the outside: output streams, stdin, files and the logger. Tests
// pass their own to capture what a command prints.
import { readFileSync } from 'node:fs'
import path from 'node:path'
import pino from 'pino'
import type { Logger } from '../log'
import { projectRoot } from '../bpf/native'

export interface CliIo {
  out(text: string): void
  err(text: string): void
  readStdin(): Promise<string>
  readFile(path: string): string
  /** Monotonic milliseconds and a sleep, for `rate` (tests fake them). */
  sleep(ms: number): Promise<void>
}

export function processIo(): CliIo {
  return {
    out: (t) => { process.stdout.write(t) },
    err: (t) => { process.stderr.write(t) },
    readStdin: async () => {
      const chunks: Buffer[] = []
      for await (const c of process.stdin) chunks.push(c as Buffer)
      return Buffer.concat(chunks).toString('utf8')
    },
    readFile: (p) => readFileSync(p, 'utf8'),
    sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
  }
}

/** The root logger of a command-line run: JSON lines on stderr (stdout is the command's output), warn and up unless XVS_LOG_LEVEL. */
export function cliLogger(name: string): Logger {
  return pino({ name, level: process.env.XVS_LOG_LEVEL ?? 'warn' }, pino.destination({ fd: 2, sync: true }))
}

/** xvs's version, from package.json. */
export function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(path.join(projectRoot(), 'package.json'), 'utf8')) as { version: string }).version
  } catch {
    return 'unknown'
  }
}
