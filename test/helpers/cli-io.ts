// SPDX-License-Identifier: GPL-2.0-only
// A CliIo that captures what a command prints, for command-line tests without processes.
import type { CliIo } from '../../src/cli/io'

export interface CapturedIo extends CliIo {
  stdout: string
  stderr: string
  slept: number[]
}

export function captureIo(opts: { stdin?: string; files?: Record<string, string> } = {}): CapturedIo {
  const io: CapturedIo = {
    stdout: '',
    stderr: '',
    slept: [],
    out: (s) => { io.stdout += s },
    err: (s) => { io.stderr += s },
    readStdin: async () => opts.stdin ?? '',
    readFile: (p) => {
      const f = opts.files?.[p]
      if (f === undefined) throw Object.assign(new Error(`ENOENT: ${p}`), { code: 'ENOENT' })
      return f
    },
    sleep: async (ms) => { io.slept.push(ms) },
  }
  return io
}
