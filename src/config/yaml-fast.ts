// SPDX-License-Identifier: GPL-2.0-only
// A fast reader for the plain shape xvs YAML files have: block mappings and sequences, one-line flow
// collections, plain and one-line quoted scalars, comments. It builds light nodes (FastMap, FastSeq,
// FastScalar: the values, sources and start offsets the `yaml` package's nodes would carry), where
// `yaml` spends ~0.5 s and ~3x the memory on a 1,000-service file. Anything outside that shape
// (anchors, tags, block or multi-line scalars, empty values, duplicate keys, tabs, directives,
// anything malformed) returns null, and parseYaml reads the text with `yaml` instead: the fast path
// never decides what a file means on its own, and every error is reported by the full parser.
import { LineCounter, isMap, isScalar, isSeq, type Node } from 'yaml'

/** A scalar as the YAML 1.2 core schema resolves it; `source` is the text (unquoted) it came from. */
export class FastScalar {
  constructor(readonly value: unknown, readonly source: string, readonly offset: number) {}
}
export interface FastPair { key: FastScalar; value: FastNode }
export class FastMap {
  readonly items: FastPair[] = []
  constructor(readonly offset: number, readonly flow: boolean) {}
}
export class FastSeq {
  readonly items: FastNode[] = []
  constructor(readonly offset: number, readonly flow: boolean) {}
}
export type FastNode = FastScalar | FastMap | FastSeq

/** A node of either reader: the yaml package's, or the fast reader's lighter one of the same meaning. */
export type AnyNode = Node | FastNode

export function nodeKind(n: unknown): 'map' | 'seq' | 'scalar' | undefined {
  if (n instanceof FastMap || isMap(n)) return 'map'
  if (n instanceof FastSeq || isSeq(n)) return 'seq'
  if (n instanceof FastScalar || isScalar(n)) return 'scalar'
  return undefined
}

/** Where a node starts in the text. */
export function offsetOf(n: AnyNode | null | undefined): number | undefined {
  return n instanceof FastScalar || n instanceof FastMap || n instanceof FastSeq ? n.offset : n?.range?.[0]
}

/** Thrown inside the reader when the text leaves the plain shape; caught at the top. */
class NotPlain extends Error {}
const bail = (): never => { throw new NotPlain() }

interface Line {
  /** Column of the content (spaces before it). */
  indent: number
  /** Offset of the content, and of the line's end (before its newline). */
  start: number
  end: number
}

const KEY_RE = /[A-Za-z_][A-Za-z0-9_-]*/y
const INT_RE = /^-?(?:0|[1-9][0-9]*)$/
const FLOAT_RE = /^-?(?:0|[1-9][0-9]*)\.[0-9]+$/
/** The YAML 1.2 core schema's tests for plain scalars that are not strings (yaml/dist/schema/core). */
const CORE_RES = [
  /^(?:~|[Nn]ull|NULL)?$/, /^(?:[Tt]rue|TRUE|[Ff]alse|FALSE)$/, /^0o[0-7]+$/, /^[-+]?[0-9]+$/, /^0x[0-9a-fA-F]+$/,
  /^(?:[-+]?\.(?:inf|Inf|INF)|\.nan|\.NaN|\.NAN)$/, /^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+$/,
  /^[-+]?(?:\.[0-9]+|[0-9]+\.[0-9]*)$/,
]

const [SP, HASH, COMMA, COLON, RBRACKET, RBRACE] = [' ', '#', ',', ':', ']', '}'].map((c) => c.charCodeAt(0)) as [number, number, number, number, number, number]

/** A mapping's keys are few: a scan finds a duplicate without a set per mapping. */
function hasKey(map: FastMap, name: string): boolean {
  for (const p of map.items) if (p.key.value === name) return true
  return false
}

/** A plain scalar resolved as the YAML 1.2 core schema does, for the cases it is sure of. */
function plain(text: string, offset: number): FastScalar {
  if (INT_RE.test(text)) return new FastScalar(parseInt(text, 10), text, offset)
  if (FLOAT_RE.test(text)) return new FastScalar(parseFloat(text), text, offset)
  switch (text) {
    case 'true': case 'True': case 'TRUE': return new FastScalar(true, text, offset)
    case 'false': case 'False': case 'FALSE': return new FastScalar(false, text, offset)
    case '~': case 'null': case 'Null': case 'NULL': return new FastScalar(null, text, offset)
  }
  // hex, octal, exponents, infinities, signs and leading zeros are left to the full parser; only
  // texts starting with one of these can be any of them
  if (!'~nNtTfF0123456789+-.'.includes(text[0] ?? '~')) return new FastScalar(text, text, offset)
  return CORE_RES.some((re) => re.test(text)) ? bail() : new FastScalar(text, text, offset)
}

class FastReader {
  readonly lines: Line[] = []
  i = 0
  /** Where the last quoted, flow or flow-item value ended. */
  after = 0

  constructor(readonly text: string, lc: LineCounter) {
    const t = text
    let pos = 0
    while (pos <= t.length) {
      lc.addNewLine(pos)
      let end = t.indexOf('\n', pos)
      if (end < 0) end = t.length
      let c = pos
      while (c < end && t.charCodeAt(c) === SP) c++
      // blank and comment-only lines carry nothing
      if (c < end && t[c] !== '#') {
        if (c === pos && (t.startsWith('---', c) || t.startsWith('...', c) || t[c] === '%')) bail()
        this.lines.push({ indent: c - pos, start: c, end })
      }
      pos = end + 1
    }
  }

  get line(): Line | undefined { return this.lines[this.i] }

  /** The node whose lines start at the current line, all at `indent`. */
  block(indent: number): FastNode {
    const l = this.line!
    if (l.indent !== indent) bail()
    return this.isSeqItem(l) ? this.blockSeq(indent) : this.blockMap(indent)
  }

  isSeqItem(l: Line): boolean {
    return this.text[l.start] === '-' && (l.start + 1 === l.end || this.text.charCodeAt(l.start + 1) === SP)
  }

  blockMap(indent: number): FastMap {
    const first = this.line!
    const map = new FastMap(first.start, false)
    for (let l = this.line; l && l.indent === indent; l = this.line) {
      if (this.isSeqItem(l)) bail()
      KEY_RE.lastIndex = l.start
      if (!KEY_RE.test(this.text)) bail()
      const keyEnd = KEY_RE.lastIndex
      if (this.text[keyEnd] !== ':') bail()
      const name = this.text.slice(l.start, keyEnd)
      if (hasKey(map, name)) bail()
      const key = plain(name, l.start)
      if (typeof key.value !== 'string') bail()
      const after = keyEnd + 1
      if (after < l.end && this.text.charCodeAt(after) !== SP) bail()
      const rest = this.skipSpaces(after, l.end)
      let value: FastNode
      if (rest === l.end || this.text[rest] === '#') {
        // the value is the block below: deeper, or a sequence at the key's own column
        this.i++
        const next = this.line
        if (!next) bail()
        if (next!.indent > indent) value = this.block(next!.indent)
        else if (next!.indent === indent && this.isSeqItem(next!)) value = this.blockSeq(indent)
        else value = bail()
      } else {
        value = this.inlineToEnd(rest, l)
        this.i++
        this.noDeeper(indent)
      }
      map.items.push({ key, value })
    }
    if (this.line && this.line.indent > indent) bail()
    return map
  }

  blockSeq(indent: number): FastSeq {
    const seq = new FastSeq(this.line!.start, false)
    for (let l = this.line; l && l.indent === indent && this.isSeqItem(l); l = this.line) {
      const rest = this.skipSpaces(l.start + 1, l.end)
      if (rest === l.end || this.text[rest] === '#') {
        this.i++
        const next = this.line
        if (!next || next.indent <= indent) bail()
        seq.items.push(this.block(next!.indent))
        continue
      }
      const c = this.text[rest]!
      if (c === '-' && (rest + 1 === l.end || this.text.charCodeAt(rest + 1) === SP)) bail()
      KEY_RE.lastIndex = rest
      if (c !== '[' && c !== '{' && KEY_RE.test(this.text) && this.text[KEY_RE.lastIndex] === ':') {
        // "- key: value": a mapping whose lines stand at the key's column
        const col = indent + (rest - l.start)
        this.lines[this.i] = { indent: col, start: rest, end: l.end }
        seq.items.push(this.blockMap(col))
        continue
      }
      seq.items.push(this.inlineToEnd(rest, l))
      this.i++
      this.noDeeper(indent)
    }
    if (this.line && this.line.indent > indent) bail()
    return seq
  }

  /** After a one-line value, nothing may continue it on deeper lines (a multi-line scalar, or an error). */
  noDeeper(indent: number): void {
    const next = this.line
    if (next && next.indent > indent) bail()
  }

  skipSpaces(pos: number, end: number): number {
    while (pos < end && this.text.charCodeAt(pos) === SP) pos++
    return pos
  }

  /** A value from `pos` to the end of line `l`, where only a comment may follow it. */
  inlineToEnd(pos: number, l: Line): FastNode {
    const c = this.text[pos]!
    if (c === '[' || c === '{' || c === '"' || c === "'") {
      const node = c === '[' || c === '{' ? this.flow(pos, l.end) : this.quoted(pos, l.end)
      const end = this.after
      const after = this.skipSpaces(end, l.end)
      if (after < l.end && !(this.text[after] === '#' && after > end)) bail()
      return node
    }
    if ('&*!|>%@`?:,]}#'.includes(c)) bail()
    // a plain scalar runs to a comment (" #") or the end of the line
    let stop = pos
    while (stop < l.end && !(this.text[stop] === '#' && this.text.charCodeAt(stop - 1) === SP)) stop++
    let end = stop
    while (end > pos && this.text.charCodeAt(end - 1) === SP) end--
    const text = this.text.slice(pos, end)
    if (text.includes(': ') || text.endsWith(':') || text.includes('\t')) bail()
    return plain(text, pos)
  }

  /** A one-line quoted scalar at `pos`; `after` is left at the offset after its closing quote. */
  quoted(pos: number, lineEnd: number): FastScalar {
    const q = this.text[pos]
    let out = ''
    let i = pos + 1
    for (;;) {
      if (i >= lineEnd) bail()
      const c = this.text[i]!
      if (c === q) {
        if (q === "'" && this.text[i + 1] === "'") { out += "'"; i += 2; continue }
        break
      }
      if (c === '\\' && q === '"') {
        const e = this.text[i + 1]
        const simple: Record<string, string> = { '\\': '\\', '"': '"', '/': '/', n: '\n', t: '\t', r: '\r', '0': '\0', ' ': ' ' }
        if (e !== undefined && e in simple) { out += simple[e]; i += 2; continue }
        const hex = e === 'x' ? 2 : e === 'u' ? 4 : 0
        const digits = this.text.slice(i + 2, i + 2 + hex)
        if (!hex || !new RegExp(`^[0-9a-fA-F]{${hex}}$`).test(digits)) bail()
        out += String.fromCharCode(parseInt(digits, 16))
        i += 2 + hex
        continue
      }
      out += c
      i++
    }
    this.after = i + 1
    return new FastScalar(out, out, pos)
  }

  /** A one-line flow collection at `pos`; `after` is left at the offset after its closing bracket. */
  flow(pos: number, lineEnd: number): FastMap | FastSeq {
    const isMap = this.text[pos] === '{'
    const close = isMap ? '}' : ']'
    const coll = isMap ? new FastMap(pos, true) : new FastSeq(pos, true)
    let i = this.skipSpaces(pos + 1, lineEnd)
    if (this.text[i] !== close) {
      for (;;) {
        if (isMap) {
          KEY_RE.lastIndex = i
          if (!KEY_RE.test(this.text)) bail()
          const keyEnd = KEY_RE.lastIndex
          if (this.text[keyEnd] !== ':' || this.text.charCodeAt(keyEnd + 1) !== SP) bail()
          const name = this.text.slice(i, keyEnd)
          if (hasKey(coll as FastMap, name)) bail()
          const key = plain(name, i)
          if (typeof key.value !== 'string') bail()
          const value = this.flowItem(this.skipSpaces(keyEnd + 1, lineEnd), lineEnd)
          ;(coll as FastMap).items.push({ key, value })
          i = this.after
        } else {
          ;(coll as FastSeq).items.push(this.flowItem(i, lineEnd))
          i = this.after
        }
        i = this.skipSpaces(i, lineEnd)
        const c = this.text[i]
        if (c === close) break
        if (c !== ',') bail()
        i = this.skipSpaces(i + 1, lineEnd)
        if (this.text[i] === close || i >= lineEnd) bail()
      }
    }
    this.after = i + 1
    return coll
  }

  /** A value inside a flow collection: nested flow, quoted or plain (up to , ] } or a comment). */
  flowItem(pos: number, lineEnd: number): FastNode {
    const c = this.text[pos]
    if (c === undefined || pos >= lineEnd) return bail()
    if (c === '[' || c === '{') return this.flow(pos, lineEnd)
    if (c === '"' || c === "'") return this.quoted(pos, lineEnd)
    if ('&*!|>%@`?:,]}#-'.includes(c) && !(c === '-' && /[0-9]/.test(this.text[pos + 1] ?? ''))) bail()
    let end = pos
    for (; end < lineEnd; end++) {
      const ch = this.text.charCodeAt(end)
      if (ch === COMMA || ch === RBRACKET || ch === RBRACE) break
      if (ch === COLON) {
        const next = this.text.charCodeAt(end + 1)
        if (next === SP || next === COMMA || next === RBRACKET || next === RBRACE) bail()
      }
      if (ch === HASH && this.text.charCodeAt(end - 1) === SP) bail()
    }
    let last = end
    while (last > pos && this.text.charCodeAt(last - 1) === SP) last--
    this.after = end
    return plain(this.text.slice(pos, last), pos)
  }
}

/**
 * The document's root node and its line counter, read the fast way; null when the text is not of
 * the plain shape (the caller reads it with the `yaml` package then).
 */
export function readPlainYaml(text: string): { root: FastNode; lc: LineCounter } | null {
  if (text.includes('\t') || text.includes('\r')) return null
  const lc = new LineCounter()
  try {
    const r = new FastReader(text, lc)
    if (r.lines.length === 0 || r.lines[0]!.indent !== 0) return null
    const root = r.block(0)
    if (r.i !== r.lines.length) return null
    return { root, lc }
  } catch (e) {
    if (e instanceof NotPlain) return null
    throw e
  }
}
