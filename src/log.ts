// SPDX-License-Identifier: GPL-2.0-only
// The root logger. Library code never writes to the console: it takes a logger (usually
// `log.child({ component })`) from its caller. Entry points create the root here.
import pino from 'pino'

export type Logger = pino.Logger

export function createLogger(opts: { level?: string; name?: string } = {}): Logger {
  return pino({ name: opts.name ?? 'xvs', level: opts.level ?? process.env.XVS_LOG_LEVEL ?? 'info' })
}

/** A logger that drops everything: the default for library calls and unit tests. */
export const silentLogger: Logger = pino({ level: 'silent' })
