// SPDX-License-Identifier: GPL-2.0-only
// nanny's escapes for send/expect strings (Piranha "Send" field, lvs.cf send = "..."):
//   \n newline, \r carriage return, \t tab, and a backslash before any other character stands for
//   that character itself (so \\ is one backslash and \" a quote).
// A backslash at the very end escapes nothing and is refused rather than guessed at.
import { ArgumentError } from '../errors'

const NAMED: Readonly<Record<string, string>> = { n: '\n', r: '\r', t: '\t' }

export function decodeEscapes(text: string): string {
  let out = ''
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!
    if (c !== '\\') {
      out += c
      continue
    }
    if (i + 1 >= text.length) {
      throw new ArgumentError(`send/expect string ends with a lone backslash: ${JSON.stringify(text)}`, {
        hint: 'write \\\\ for a backslash',
      })
    }
    const next = text[++i]!
    out += NAMED[next] ?? next
  }
  return out
}

/** The inverse, for showing a decoded string in the lvs.cf form: decodeEscapes(encodeEscapes(s)) === s. */
export function encodeEscapes(text: string): string {
  return text.replace(/[\\\n\r\t]/g, (c) => (c === '\n' ? '\\n' : c === '\r' ? '\\r' : c === '\t' ? '\\t' : '\\\\'))
}
