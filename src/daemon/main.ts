// SPDX-License-Identifier: GPL-2.0-only
// Entry point: `node dist/src/daemon/main.js --config FILE [options]`, the same daemon `xvs daemon`
// runs. The only place here that sets the exit status.
import { Command, Option } from 'commander'
import { createLogger, type Logger } from '../log'
import { XvsError } from '../errors'
import { DEFAULT_METRICS_ADDRESS } from './http'
import { DEFAULT_SOCKET } from './protocol'
import { runDaemon } from './run'
import type { ConfigFormat } from '../config'

const collect = (v: string, prev: string[]): string[] => [...prev, ...v.split(',').filter(Boolean)]

export function daemonCommand(): Command {
  return new Command('daemon')
    .description('run the director daemon in the foreground: apply the config, check health, serve the control socket and /metrics')
    .requiredOption('-c, --config <file>', 'config file (xvs YAML, ipvsadm rules, keepalived.conf or lvs.cf)')
    .addOption(new Option('--format <format>', 'config format, when the file name and content do not tell').choices(['yaml', 'ipvsadm', 'keepalived', 'lvs.cf']))
    .option('-i, --interface <name>', 'attach to this interface (repeatable; default: settings.interfaces)', collect, [])
    .addOption(new Option('--mode <mode>', 'XDP attach mode').choices(['native', 'generic']).default('native'))
    .option('--socket <path>', 'control socket path', process.env.XVS_SOCKET ?? DEFAULT_SOCKET)
    .option('--no-socket', 'serve no control socket')
    .option('--metrics <address>', 'Prometheus /metrics listen address, or "off"', DEFAULT_METRICS_ADDRESS)
    .option('--detach-on-exit', 'detach the data plane when the daemon stops (default: it keeps forwarding)', false)
    .option('--object <file>', 'director BPF object (default: the installed one)')
    .option('--sweep-interval <ms>', 'connection sweeper period in ms (0: no sweeper)', '2000')
    .option('--log-level <level>', 'pino log level', process.env.XVS_LOG_LEVEL ?? 'info')
}

/** The options daemonCommand() parses. */
export interface DaemonFlags {
  config: string; format?: ConfigFormat; interface: string[]; mode: 'native' | 'generic'; socket: string | false
  metrics: string; detachOnExit: boolean; object?: string; sweepInterval: string; logLevel: string
}

/**
 * Run the daemon as the parsed flags say, until SIGTERM/SIGINT. Rejects when it cannot start (the error
 * is logged through pino first). What `xvs daemon` and this file's main() call.
 */
export async function runDaemonWithFlags(f: DaemonFlags, log: Logger = createLogger({ name: 'xvs', level: f.logLevel })): Promise<void> {
  const sweep = Number(f.sweepInterval)
  try {
    await runDaemon({
      config: f.config, log, mode: f.mode,
      ...(f.format ? { format: f.format } : {}),
      ...(f.interface.length ? { interfaces: f.interface } : {}),
      socket: f.socket === false ? null : f.socket,
      metrics: f.metrics === 'off' ? null : f.metrics,
      detachOnExit: f.detachOnExit,
      ...(f.object ? { object: f.object } : {}),
      sweeper: Number.isFinite(sweep) && sweep > 0 ? { intervalMs: sweep } : false,
    })
  } catch (err) {
    log.fatal({ err, hint: (err as XvsError).hint }, 'daemon cannot run')
    throw err
  }
}

export async function main(argv: string[]): Promise<number> {
  const cmd = daemonCommand().name('xvs-daemon').exitOverride()
  try {
    cmd.parse(argv, { from: 'user' })
  } catch (e) {
    return (e as { exitCode?: number }).exitCode ?? 2
  }
  try {
    await runDaemonWithFlags(cmd.opts<DaemonFlags>())
    return 0
  } catch {
    return 1
  }
}

if (require.main === module) {
  void main(process.argv.slice(2)).then((code) => {
    process.exitCode = code
  })
}
