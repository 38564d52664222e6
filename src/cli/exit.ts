// SPDX-License-Identifier: GPL-2.0-only
// Error codes to exit statuses, and the lines an error prints. Only the entry points (xvs.ts,
// xvsadm.ts) call process.exit; everything else throws XvsErrors with stable codes.
import { XvsError } from '../errors'

/** xvs exit statuses (documented in `xvs --help`). */
export const EXIT = {
  OK: 0,
  /** Bad command line, or a configuration that does not validate. */
  USAGE: 1,
  /** The kernel or the system refused: BPF calls, loading, attaching, next-hop resolution. */
  RUNTIME: 2,
  /** The request conflicts with the current state: the service already exists, the server does not. */
  STATE: 3,
  /** No data plane is loaded in this network namespace. */
  NOT_LOADED: 4,
} as const

export const EXIT_HELP = `Exit status:
  0  success
  1  usage or configuration error (bad option, invalid config; nothing was applied)
  2  runtime or kernel error (BPF, XDP attach, next-hop resolution, a failed system command)
  3  conflict with the current state (service already exists, no such service or real server)
  4  no xvs data plane is loaded in this network namespace (xvs load)`

/** A command-line mistake found by the entry point itself (commander's errors become these too). */
export class UsageError extends XvsError {
  constructor(message: string, hint?: string) {
    super('EUSAGE', message, hint === undefined ? {} : { hint })
  }
}

export function exitCodeOf(e: unknown): number {
  if (!(e instanceof XvsError)) return EXIT.RUNTIME
  switch (e.code) {
    case 'EUSAGE': case 'EARG': case 'ECONFIG': return EXIT.USAGE
    case 'ESTATE': return EXIT.STATE
    case 'ENOTLOADED': return EXIT.NOT_LOADED
    default: return EXIT.RUNTIME
  }
}

/** "<prog>: <message>" and, when the error has one, "hint: <hint>"; each one line. */
export function errorText(prog: string, e: unknown): string {
  const oneLine = (s: string): string => s.replace(/\s*\n\s*/g, ' ').trim()
  if (e instanceof XvsError) {
    return `${prog}: ${oneLine(e.message)}\n${e.hint ? `hint: ${oneLine(e.hint)}\n` : ''}`
  }
  const err = e as Error
  return `${prog}: internal error: ${oneLine(err?.message ?? String(e))}\nhint: this is a bug in xvs; rerun with XVS_DEBUG=1 for the stack\n`
}
