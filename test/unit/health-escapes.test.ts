// SPDX-License-Identifier: GPL-2.0-only
// nanny's send/expect escapes: \n \r \t, a backslash before anything else is that character, a lone
// trailing backslash is refused.
import t from 'tap'
import { decodeEscapes, encodeEscapes } from '../../src/health/escapes'

t.test('named escapes', async (t) => {
  t.equal(decodeEscapes('GET / HTTP/1.0\\r\\n\\r\\n'), 'GET / HTTP/1.0\r\n\r\n', 'CRLF pairs')
  t.equal(decodeEscapes('a\\tb'), 'a\tb', 'tab')
  t.equal(decodeEscapes('quit\\n'), 'quit\n', 'newline')
})

t.test('backslash escapes the next character', async (t) => {
  t.equal(decodeEscapes('a\\\\b'), 'a\\b', '\\\\ is one backslash')
  t.equal(decodeEscapes('\\\\n'), '\\n', 'escaped backslash then a plain n')
  t.equal(decodeEscapes('say \\"hi\\"'), 'say "hi"', 'escaped quote')
  t.equal(decodeEscapes('\\x'), 'x', 'unknown letter stands for itself')
})

t.test('plain text is unchanged', async (t) => {
  t.equal(decodeEscapes(''), '')
  t.equal(decodeEscapes('HEAD / HTTP/1.0'), 'HEAD / HTTP/1.0')
  t.equal(decodeEscapes('naïve ✓'), 'naïve ✓', 'non-ASCII passes through')
})

t.test('lone trailing backslash is refused', async (t) => {
  t.throws(() => decodeEscapes('abc\\'), { code: 'EARG' })
  t.throws(() => decodeEscapes('\\'), { code: 'EARG' })
  t.equal(decodeEscapes('abc\\\\'), 'abc\\', 'an escaped one at the end is fine')
})

t.test('encode is the inverse of decode', async (t) => {
  for (const s of ['', 'a\r\n', '\t\\n', 'back\\slash', 'x\\', '\n\n\r\t\\']) {
    t.equal(decodeEscapes(encodeEscapes(s)), s, JSON.stringify(s))
  }
  t.equal(encodeEscapes('GET /\r\n'), 'GET /\\r\\n')
})
