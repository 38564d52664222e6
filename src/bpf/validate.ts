// SPDX-License-Identifier: GPL-2.0-only
// Argument checks run before any native call, so that a bad argument is a clear ArgumentError
// and never reaches libbpf or the kernel.
import { ArgumentError } from '../errors'

export function checkUint(name: string, v: unknown, max = 0xffffffff): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max)
    throw new ArgumentError(`${name} must be an integer from 0 to ${max}, got ${String(v)}`)
  return v
}

export function checkBuffer(name: string, v: unknown, size?: number): Buffer {
  if (!Buffer.isBuffer(v)) throw new ArgumentError(`${name} must be a Buffer, got ${typeof v}`)
  if (size !== undefined && v.length !== size)
    throw new ArgumentError(`${name} is ${v.length} bytes; this map's ${name} size is ${size}`)
  return v
}

export function checkString(name: string, v: unknown): string {
  if (typeof v !== 'string' || v.length === 0 || v.includes('\0'))
    throw new ArgumentError(`${name} must be a non-empty string without NUL bytes`)
  return v
}

/** Interface names: 1..15 characters, none of '/', whitespace or ':' (IFNAMSIZ and dev_valid_name). */
export function checkIfname(v: unknown): string {
  if (typeof v !== 'string' || !/^[^\s/:]{1,15}$/.test(v) || v === '.' || v === '..')
    throw new ArgumentError(`bad interface name ${JSON.stringify(v)}: 1 to 15 characters, no '/', ':' or spaces`)
  return v
}
