// SPDX-License-Identifier: GPL-2.0-only
// External program check (lvs.cf send_program with %h, keepalived MISC_CHECK with misc_dynamic).
// The program runs in its own process group (a new session), so a timeout or abort can kill it and
// everything it started with one signal to the group. Rules for argv vs. shell, substitution and
// success are on ExternalCheckSpec in ../types.ts.
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { ArgumentError } from '../../errors'
import type { Checker, CheckResult, CheckTarget, ExternalCheckSpec } from '../types'
import { abortDetail, assertOptionalMs, assertOptionalSize, assertPort, beginCheck, compileRegex, describeError, excerpt, Stopwatch } from './common'

const DEFAULT_MAX_OUTPUT = 65536
/** After the program exits, how long to wait for its output pipes to close (a background child may hold them). */
const PIPE_GRACE_MS = 250
/** After killing the group, how long to wait for the pipes to close before giving up on them. */
const KILL_GRACE_MS = 1000
const SHELL = '/bin/sh'

/** Replaces %h with `address`, %p with `port` and %% with '%'; any other '%' is kept. */
export function substituteTokens(template: string, address: string, port: number): string {
  return template.replace(/%([hp%])/g, (_m, token: string) => (token === 'h' ? address : token === 'p' ? String(port) : '%'))
}

export class ExternalChecker implements Checker {
  readonly type = 'external'
  private readonly spec: ExternalCheckSpec
  private readonly expect: string | RegExp | undefined
  private readonly maxOutput: number

  constructor(spec: ExternalCheckSpec) {
    if (spec.port !== undefined) assertPort(spec.port, 'external check port')
    assertOptionalMs(spec.timeoutMs, 'external check timeoutMs')
    assertOptionalSize(spec.maxOutputBytes, 'external check maxOutputBytes')
    const hasArgv = spec.argv !== undefined
    const hasShell = spec.shell !== undefined
    if (hasArgv === hasShell) throw new ArgumentError('external check needs exactly one of argv and shell')
    if (hasArgv && (spec.argv!.length === 0 || spec.argv![0] === '')) throw new ArgumentError('external check argv needs a program name')
    if (hasShell && spec.shell!.trim() === '') throw new ArgumentError('external check shell command is empty')
    if (spec.dynamic && spec.expect !== undefined) {
      throw new ArgumentError('external check cannot be dynamic (exit status sets the weight) and expect output at once')
    }
    if (spec.expect === undefined || spec.expect === '') this.expect = undefined
    else this.expect = spec.regex ? compileRegex(spec.expect, 'external check expect') : spec.expect
    this.maxOutput = spec.maxOutputBytes ?? DEFAULT_MAX_OUTPUT
    this.spec = { ...spec, ...(spec.argv ? { argv: [...spec.argv] } : {}) }
  }

  /** The program and arguments for a target, after substitution. */
  command(target: CheckTarget): { file: string; args: string[] } {
    const port = this.spec.port ?? target.port
    if (this.spec.shell !== undefined) return { file: SHELL, args: ['-c', substituteTokens(this.spec.shell, target.address, port)] }
    const [file, ...args] = this.spec.argv!.map((arg) => substituteTokens(arg, target.address, port))
    return { file: file!, args }
  }

  async run(target: CheckTarget, signal: AbortSignal): Promise<CheckResult> {
    const start = beginCheck(target, this.spec, signal, 'program')
    if ('refused' in start) return start.refused
    const { watch, port, limit } = start
    try {
      const outcome = await this.execute(this.command(target), target.address, port, limit.signal)
      return this.judge(watch, outcome)
    } finally {
      limit.dispose()
    }
  }

  private judge(watch: Stopwatch, outcome: Outcome): CheckResult {
    if (outcome.error !== undefined) return watch.result(false, outcome.error)
    const status = outcome.status
    const how = status !== null ? `exit ${status}` : `killed by ${outcome.signal ?? 'a signal'}`
    const stderrLine = outcome.stderr.split('\n').find((line) => line.trim() !== '')
    const why = stderrLine !== undefined ? `: ${excerpt(stderrLine.trim())}` : ''
    if (this.expect !== undefined) {
      const expect = this.expect
      const ok = expect instanceof RegExp ? expect.test(outcome.stdout) : outcome.stdout.includes(expect)
      const wanted = expect instanceof RegExp ? `/${expect.source}/` : excerpt(expect)
      return ok ? watch.result(true, `output has ${wanted} (${how})`) : watch.result(false, `output ${excerpt(outcome.stdout.trim())} lacks ${wanted} (${how})`)
    }
    if (status === 0) return watch.result(true, how)
    if (this.spec.dynamic && status !== null && status >= 2 && status <= 255) {
      return watch.result(true, `${how}: weight ${status - 2}`, { weight: status - 2 })
    }
    return watch.result(false, `${how}${why}`)
  }

  private execute(cmd: { file: string; args: string[] }, address: string, port: number, signal: AbortSignal): Promise<Outcome> {
    return new Promise((resolve) => {
      if (signal.aborted) {
        resolve({ error: abortDetail(signal), status: null, signal: null, stdout: '', stderr: '' })
        return
      }
      let child: ChildProcess
      try {
        child = spawn(cmd.file, cmd.args, {
          detached: true, // setsid(): the child leads a new process group we can kill as a whole
          stdio: ['ignore', 'pipe', 'pipe'],
          env: { ...process.env, ...this.spec.env, XVS_HOST: address, XVS_PORT: String(port) },
        })
      } catch (err) {
        resolve({ error: `cannot run ${cmd.file}: ${describeError(err)}`, status: null, signal: null, stdout: '', stderr: '' })
        return
      }
      const stdout = new Collector(this.maxOutput)
      const stderr = new Collector(this.maxOutput)
      child.stdout!.on('data', (chunk: Buffer) => stdout.add(chunk))
      child.stderr!.on('data', (chunk: Buffer) => stderr.add(chunk))
      let done = false
      let killedFor: string | undefined
      let graceTimer: NodeJS.Timeout | undefined
      const finish = (outcome: Omit<Outcome, 'stdout' | 'stderr'>): void => {
        if (done) return
        done = true
        if (graceTimer !== undefined) clearTimeout(graceTimer)
        signal.removeEventListener('abort', onAbort)
        child.stdout!.destroy()
        child.stderr!.destroy()
        resolve({ ...outcome, stdout: stdout.text(), stderr: stderr.text() })
      }
      let exited: { status: number | null; signal: NodeJS.Signals | null } | undefined
      const onAbort = (): void => {
        if (exited !== undefined) {
          // It finished in time; only its output pipes were still open.
          finish(exited)
          return
        }
        killedFor = abortDetail(signal)
        killGroup(child)
        // 'close' normally follows the kill; a process that left the group may still hold the pipes.
        graceTimer = setTimeout(() => finish({ error: `${killedFor}, killed process group`, status: null, signal: null }), KILL_GRACE_MS)
      }
      signal.addEventListener('abort', onAbort, { once: true })
      child.once('error', (err) => {
        // spawn failures (ENOENT, EACCES) arrive here; no 'close' follows for a process that never ran
        finish({ error: `cannot run ${cmd.file}: ${describeError(err)}`, status: null, signal: null })
      })
      child.once('exit', (code, sig) => {
        exited = { status: code, signal: sig }
        if (killedFor !== undefined) return
        // Normally 'close' follows at once; a background child holding the pipes must not hold the check.
        graceTimer = setTimeout(() => finish({ status: code, signal: sig }), PIPE_GRACE_MS)
      })
      child.once('close', (code: number | null, sig: NodeJS.Signals | null) => {
        if (killedFor !== undefined) finish({ error: `${killedFor}, killed process group`, status: code, signal: sig })
        else finish({ status: code, signal: sig })
      })
    })
  }
}

interface Outcome {
  /** Set when the program did not run or was killed: the result is a failure with this detail. */
  error?: string
  status: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

function killGroup(child: ChildProcess): void {
  if (child.pid === undefined) return
  try {
    process.kill(-child.pid, 'SIGKILL')
  } catch {
    // ESRCH: the group is already gone
    child.kill('SIGKILL')
  }
}

/** Keeps the first `max` bytes of a stream. */
class Collector {
  private readonly chunks: Buffer[] = []
  private size = 0
  constructor(private readonly max: number) {}
  add(chunk: Buffer): void {
    const room = this.max - this.size
    if (room <= 0) return
    const part = chunk.length > room ? chunk.subarray(0, room) : chunk
    this.chunks.push(part)
    this.size += part.length
  }
  text(): string {
    return Buffer.concat(this.chunks).toString('utf8')
  }
}
