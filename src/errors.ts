// SPDX-License-Identifier: GPL-2.0-only
// One error hierarchy for all of xvs. Every error carries a stable `code` that the CLI maps to an exit
// status and that tests assert on; the message is one line an operator can act on.

export interface XvsErrorOptions {
  cause?: unknown
  /** A short "what to do" line, printed after the message by the CLI. */
  hint?: string
}

export class XvsError extends Error {
  readonly code: string
  readonly hint: string | undefined

  constructor(code: string, message: string, opts: XvsErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause })
    this.name = new.target.name
    this.code = code
    this.hint = opts.hint
  }
}

/** Bad input from a user: a config file, a CLI argument, a control-socket message. */
export class ConfigError extends XvsError {
  /** Where the problem is: "file:line:column", or a field path such as "services[2].port". */
  readonly where: string | undefined
  readonly field: string | undefined

  constructor(message: string, opts: XvsErrorOptions & { where?: string; field?: string } = {}) {
    super('ECONFIG', opts.where ? `${opts.where}: ${message}` : message, opts)
    this.where = opts.where
    this.field = opts.field
  }
}

/** A function argument that fails validation before it reaches native code. */
export class ArgumentError extends XvsError {
  constructor(message: string, opts: XvsErrorOptions = {}) {
    super('EARG', message, opts)
  }
}

/** A system command (ip, ethtool, ...) that failed. */
export class CommandError extends XvsError {
  readonly argv: readonly string[]
  readonly status: number | null
  readonly stderr: string

  constructor(argv: readonly string[], status: number | null, stderr: string) {
    // status null: killed by a signal, timed out, or never started; stderr says which.
    super('ECOMMAND', `${argv.join(' ')} failed (${status === null ? 'no exit status' : `exit ${status}`}): ${stderr.trim().split('\n')[0] ?? ''}`)
    this.argv = argv
    this.status = status
    this.stderr = stderr
  }
}
