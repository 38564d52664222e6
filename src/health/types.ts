// SPDX-License-Identifier: GPL-2.0-only
// Health checks as plain data, and the contract every checker keeps.
//
// These types are the health engine's own: the model (src/model) describes checks the way config files
// do (seconds, keepalived/lvs.cf names); a later step maps a model check onto a `CheckSpec` (what to
// probe) and a `CheckPolicy` (when, how often, how many results make a transition). Times here are
// milliseconds. Optional fields are simply left out.

/** Where a check goes: a real server's address (an IPv4 or IPv6 literal, no brackets) and a port. */
export interface CheckTarget {
  address: string
  port: number
}

/** The outcome of one check attempt. A checker never rejects: every failure is `ok: false`. */
export interface CheckResult {
  ok: boolean
  /** One line for logs and `xvs` listings: "connected", "HTTP 503 not in 200", "exit 1", ... */
  detail: string
  /** Wall time the attempt took, in milliseconds. */
  latencyMs: number
  /** keepalived misc_dynamic: the weight the program asked for (exit status - 2). */
  weight?: number
}

export interface Checker {
  /** The spec's `type`, for logs. */
  readonly type: CheckSpec['type']
  /**
   * Runs one attempt. Resolves (never rejects) after destroying every socket it opened and seeing its
   * program exit. An abort of `signal` ends the attempt at once: sockets destroyed, the program's process
   * group killed.
   */
  run(target: CheckTarget, signal: AbortSignal): Promise<CheckResult>
}

interface SpecCommon {
  /** Port to probe instead of the real server's (keepalived connect_port). */
  port?: number
  /**
   * The checker's own limit for a whole attempt, in ms. Absent: only the caller's AbortSignal bounds it
   * (the engine always passes one that fires at the policy's `timeoutMs`).
   */
  timeoutMs?: number
}

interface SocketSpecCommon extends SpecCommon {
  /** Limit for the TCP (and TLS) handshake alone, in ms. */
  connectTimeoutMs?: number
  /** Source address to bind (keepalived bindto). */
  localAddress?: string
}

/** Healthy when a TCP connection opens (keepalived TCP_CHECK; lvs.cf with neither send nor expect). */
export interface TcpCheckSpec extends SocketSpecCommon {
  type: 'tcp'
}

/**
 * nanny's send/expect (lvs.cf send, expect, use_regex): connect, write `send`, read until `expect`
 * appears. Empty `send`: write nothing (read a banner, e.g. FTP's "220"). Empty `expect`: healthy once
 * `send` is written. Both empty: a plain connect.
 */
export interface SendExpectCheckSpec extends SocketSpecCommon {
  type: 'send-expect'
  send?: string
  expect?: string
  /** `expect` is a JavaScript regular expression tried against everything read so far (lvs.cf use_regex). */
  regex?: boolean
  /**
   * `send` (and a literal `expect`) are written as in lvs.cf, with `\n` `\r` `\t` `\\` escapes
   * (see escapes.ts); default true. Set false when the strings already hold the real characters
   * (the model stores them decoded). A regex `expect` is never decoded: RegExp knows `\n` itself.
   */
  escapes?: boolean
  /** Stop reading (and fail) after this many bytes without a match; default 65536. */
  maxReadBytes?: number
}

/** An expected status: one code, or an inclusive range [low, high]. */
export type StatusMatch = number | readonly [number, number]

export interface HttpUrlSpec {
  /** Request path with query, starting with '/'. */
  path: string
  /** Expected statuses; default [200]. A redirect is never followed: it is checked as its 3xx status. */
  statuses?: readonly StatusMatch[]
  /** The body (UTF-8, at most `maxBodyBytes` of it) must match this regular expression. */
  regex?: string
  /** MD5 of the whole body, hex (keepalived HTTP_GET digest, as `genhash` prints it). */
  digest?: string
}

/** keepalived HTTP_GET / SSL_GET: a GET per url on a new connection; every url must pass. */
export interface HttpCheckSpec extends SocketSpecCommon {
  type: 'http' | 'https'
  urls: readonly HttpUrlSpec[]
  /** Host header (keepalived virtualhost); default the target's "address:port" as Node writes it. */
  host?: string
  /**
   * https: the TLS server name (SNI). Default: `host` without its port, unless that is an IP literal;
   * false sends none.
   */
  sni?: string | false
  /**
   * https: verify the certificate chain and name. Default false (as keepalived SSL_GET without `ca`),
   * or true when `ca` is given.
   */
  verify?: boolean
  /** https: trusted CA certificates (PEM) for `verify`, instead of the system store. */
  ca?: string | Buffer
  /** Limit for the gap between two reads of the response, in ms. */
  readTimeoutMs?: number
  /** Read at most this much body; default 1 MiB. A digest check fails on a longer body. */
  maxBodyBytes?: number
}

/**
 * An external program (lvs.cf send_program, keepalived MISC_CHECK). `%h` becomes the real server's
 * address, `%p` the port, `%%` a single '%'; any other '%' stays as it is.
 *
 * Exactly one of:
 * - `argv`: run argv[0] with the rest as arguments, no shell; tokens are substituted inside each argument.
 * - `shell`: run `/bin/sh -c <shell>` (keepalived misc_path). Tokens are substituted into the text before
 *   the shell sees it, verbatim: an address is an IP literal (digits, hex letters, '.', ':', and for a
 *   scoped IPv6 address '%' and a zone of [A-Za-z0-9_.-]) and a port is decimal, so neither holds a
 *   character special to sh; they may stand bare or inside quotes. The address and port are also in the
 *   environment as XVS_HOST and XVS_PORT.
 *
 * Healthy: with `expect`, when the program's standard output contains it (matches it, with `regex`),
 * whatever the exit status (nanny); without, when it exits 0. With `dynamic` (keepalived misc_dynamic):
 * exit 0 healthy, 1 failed, 2..255 healthy with weight = status - 2.
 * A timeout or abort kills the program's whole process group (SIGKILL).
 */
export interface ExternalCheckSpec extends SpecCommon {
  type: 'external'
  argv?: readonly string[]
  shell?: string
  expect?: string
  regex?: boolean
  dynamic?: boolean
  /** Added to the daemon's environment. */
  env?: Readonly<Record<string, string>>
  /** Keep at most this much standard output (and standard error) each; default 65536. */
  maxOutputBytes?: number
}

export type CheckSpec = TcpCheckSpec | SendExpectCheckSpec | HttpCheckSpec | ExternalCheckSpec
export type CheckType = CheckSpec['type']

/** When and how a target is checked, and how results become up/down. Milliseconds. */
export interface CheckPolicy {
  /** Between the starts of two checks (keepalived delay_loop, lvs.cf interval). */
  intervalMs: number
  /** One attempt may take this long; then it is aborted and counts as failed (connect_timeout, lvs.cf timeout). */
  timeoutMs: number
  /** Consecutive good checks before a down server comes back. */
  rise: number
  /** Consecutive failed checks before an up server goes down. */
  fall: number
  /**
   * Extra attempts inside one check while the server is up, before the check counts as failed
   * (keepalived retry / nb_get_retry). A down server is not retried: failing is what it already does.
   */
  retries: number
  /** Pause before each of those extra attempts (keepalived delay_before_retry). */
  retryDelayMs: number
  /**
   * lvs.cf reentry: a server that went down comes back only after its checks have passed continuously for
   * this long (and at least `rise` of them), so it stays out at least this long. 0: as soon as `rise` is met.
   */
  reentryMs: number
  /**
   * State before the first check. 'down' (keepalived alpha): down until the first good check, which
   * brings it up at once (rise and reentry apply only after a failure).
   */
  initial: 'up' | 'down'
}

export type Health = 'up' | 'down'

/** Injected time, so tests drive the engine deterministically (src/util/clock.ts). */
export type { Clock } from '../util/clock'
