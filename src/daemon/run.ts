// SPDX-License-Identifier: GPL-2.0-only
// runDaemon(): the daemon as a foreground process, what `xvs daemon` and main.ts call. Signals: SIGHUP
// reloads (a refused config is logged and the running one stays), SIGTERM and SIGINT stop (the data
// plane keeps forwarding unless detachOnExit). A crash is not caught: Node exits, and since nothing
// here unloads on the way out, the pinned links or netlink attachments keep forwarding, and the next
// daemon adopts the maps. The fatal error is still logged through pino first (an exception monitor
// does not change how the process dies).
import { createLogger, type Logger } from '../log'
import { Daemon, type DaemonOptions } from './daemon'

export interface RunDaemonOptions extends DaemonOptions {
  /** Stops the daemon when aborted (in place of a signal). */
  signal?: AbortSignal
  /** Handle SIGHUP, SIGTERM and SIGINT; default true. */
  handleSignals?: boolean
  /** Called once the daemon serves (config applied, socket and metrics listening). */
  onReady?: (d: Daemon) => void
}

/** Runs until SIGTERM/SIGINT (or `signal`); rejects if the daemon cannot start (bad config, no data plane). */
export async function runDaemon(opts: RunDaemonOptions): Promise<void> {
  const log: Logger = opts.log ?? createLogger({ name: 'xvs' })
  const daemon = new Daemon({ ...opts, log })
  const onCrash = (err: Error, origin: string): void => {
    log.fatal({ err, origin }, 'daemon crashed; the data plane keeps forwarding')
  }
  process.on('uncaughtExceptionMonitor', onCrash)
  try {
    await daemon.start()
  } catch (err) {
    process.off('uncaughtExceptionMonitor', onCrash)
    await daemon.stop({ detach: false }).catch(() => undefined)
    throw err
  }
  log.info({ pid: process.pid, config: opts.config, socket: daemon.status().socket, metrics: daemon.metricsListen ?? null }, 'daemon ready')
  opts.onReady?.(daemon)

  await new Promise<void>((resolve) => {
    let stopping = false
    const handleSignals = opts.handleSignals ?? true
    const stop = (why: string): void => {
      if (stopping) return
      stopping = true
      log.info({ why }, 'stopping')
      cleanup()
      daemon.stop().catch((err: unknown) => log.error({ err }, 'stopping failed')).finally(resolve)
    }
    const onHup = (): void => {
      log.info('SIGHUP: reloading the config')
      try { daemon.reload() } catch { /* logged by reload(); the running config stays */ }
    }
    const onTerm = (): void => stop('SIGTERM')
    const onInt = (): void => stop('SIGINT')
    const onAbort = (): void => stop('aborted')
    const cleanup = (): void => {
      if (handleSignals) {
        process.off('SIGHUP', onHup)
        process.off('SIGTERM', onTerm)
        process.off('SIGINT', onInt)
      }
      opts.signal?.removeEventListener('abort', onAbort)
      process.off('uncaughtExceptionMonitor', onCrash)
    }
    if (handleSignals) {
      process.on('SIGHUP', onHup)
      process.on('SIGTERM', onTerm)
      process.on('SIGINT', onInt)
    }
    if (opts.signal?.aborted) stop('aborted')
    else opts.signal?.addEventListener('abort', onAbort, { once: true })
  })
}
