// SPDX-License-Identifier: GPL-2.0-only
// Running system commands (ip, ethtool, sysctl, ...) for the lab. Always execFile with an argv array and
// never a shell, so a namespace or interface name can never be interpreted as shell syntax. Every call
// has a timeout: a wedged command must fail a test, not hang it.
import { execFile, execFileSync, type ExecFileSyncOptions } from 'node:child_process'
import { ArgumentError, CommandError } from '../errors'

export interface RunOptions {
  /** Kill the command after this long; default 10 s (ip/ethtool/sysctl finish in milliseconds). */
  timeoutMs?: number
  /** Written to the command's stdin. */
  input?: string
  /** Environment; default the caller's. */
  env?: NodeJS.ProcessEnv
  cwd?: string
}

export interface RunResult {
  /** Exit status, or null when a signal (for example the timeout) ended the command. */
  status: number | null
  stdout: string
  stderr: string
}

const DEFAULT_TIMEOUT_MS = 10_000
// `ip -j link show` of a busy namespace and `nstat --json` are a few tens of KB; leave room.
const MAX_BUFFER = 16 * 1024 * 1024

function checkArgv(argv: readonly string[]): void {
  if (argv.length === 0 || argv[0] === '') throw new ArgumentError('run: empty command line')
}

function timeoutOf(opts: RunOptions): number {
  const ms = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS
  if (!Number.isFinite(ms) || ms <= 0) throw new ArgumentError(`run: timeoutMs must be a positive number, got ${ms}`)
  return ms
}

interface ExecErrorShape {
  status?: number | null
  code?: string | number
  signal?: string | null
  stderr?: string | Buffer | null
  stdout?: string | Buffer | null
  killed?: boolean
}

/** The stderr to report: the command's own, or why it never ran / was killed. */
function describeFailure(e: ExecErrorShape, timeoutMs: number, message: string): string {
  const stderr = e.stderr == null ? '' : e.stderr.toString()
  if (e.code === 'ENOENT') return `command not found (${message})`
  if (e.code === 'EACCES' || e.code === 'EPERM') return `cannot execute (${message})`
  // execFileSync reports its timeout as ETIMEDOUT, execFile as killed.
  if (e.code === 'ETIMEDOUT' || e.killed === true) {
    return `timed out after ${timeoutMs} ms${stderr ? `; stderr: ${stderr}` : ''}`
  }
  if (e.code === 'ERR_CHILD_PROCESS_STDIO_MAXBUFFER' || e.code === 'ENOBUFS') return `output exceeded ${MAX_BUFFER} bytes`
  return stderr !== '' ? stderr : message
}

/** Runs argv synchronously and returns its stdout; throws CommandError (with stderr) on failure. */
export function run(argv: readonly string[], opts: RunOptions = {}): string {
  checkArgv(argv)
  const timeoutMs = timeoutOf(opts)
  const options: ExecFileSyncOptions = {
    encoding: 'utf8',
    timeout: timeoutMs,
    killSignal: 'SIGKILL',
    maxBuffer: MAX_BUFFER,
    stdio: ['pipe', 'pipe', 'pipe'],
    env: opts.env ?? process.env,
    ...(opts.input !== undefined ? { input: opts.input } : {}),
    ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}),
  }
  try {
    return execFileSync(argv[0]!, argv.slice(1), options) as string
  } catch (err) {
    const e = err as ExecErrorShape & Error
    throw new CommandError(argv, typeof e.status === 'number' ? e.status : null, describeFailure(e, timeoutMs, e.message))
  }
}

/** Like run(), but never throws: for teardown paths that must go on after a failure. */
export function tryRun(argv: readonly string[], opts: RunOptions = {}): RunResult {
  try {
    return { status: 0, stdout: run(argv, opts), stderr: '' }
  } catch (err) {
    if (err instanceof CommandError) return { status: err.status, stdout: '', stderr: err.stderr }
    return { status: null, stdout: '', stderr: err instanceof Error ? err.message : String(err) }
  }
}

/** Runs argv asynchronously and resolves to its stdout; rejects with CommandError (with stderr). */
export function runAsync(argv: readonly string[], opts: RunOptions = {}): Promise<string> {
  checkArgv(argv)
  const timeoutMs = timeoutOf(opts)
  return new Promise((resolve, reject) => {
    const child = execFile(
      argv[0]!,
      argv.slice(1),
      {
        encoding: 'utf8',
        timeout: timeoutMs,
        killSignal: 'SIGKILL',
        maxBuffer: MAX_BUFFER,
        env: opts.env ?? process.env,
        ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}),
      },
      (err, stdout, stderr) => {
        if (err === null) {
          resolve(stdout)
          return
        }
        const e = err as ExecErrorShape & Error
        const status = typeof e.code === 'number' ? e.code : null
        reject(new CommandError(argv, status, describeFailure({ ...e, stderr }, timeoutMs, e.message)))
      },
    )
    if (opts.input !== undefined) child.stdin?.end(opts.input)
    else child.stdin?.end()
  })
}

// Namespace names go into argv and into /run/netns/<name>: keep them to what `ip netns add` accepts
// and what is safe as a file name.
const NETNS_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/

export function checkNetnsName(ns: string): void {
  if (!NETNS_NAME.test(ns)) throw new ArgumentError(`invalid network namespace name ${JSON.stringify(ns)}`)
}

/** argv run inside network namespace ns: `ip netns exec ns ...argv`. */
export function inNetns(ns: string, argv: readonly string[]): string[] {
  checkNetnsName(ns)
  checkArgv(argv)
  return ['ip', 'netns', 'exec', ns, ...argv]
}

/** argv of an `ip` command aimed at namespace ns (`ip -n ns ...`); cheaper than `ip netns exec ns ip ...`. */
export function ipIn(ns: string, args: readonly string[]): string[] {
  checkNetnsName(ns)
  return ['ip', '-n', ns, ...args]
}
