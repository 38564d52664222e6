// SPDX-License-Identifier: GPL-2.0-only
// The fast YAML reader (src/config/yaml-fast.ts) against the `yaml` package: on every text it takes,
// the same tree (node kinds, key order, values, sources, start offsets, flow style); every text
// outside its plain shape is left to `yaml` (null). parseYaml's results and errors stay the full
// parser's.
import t, { type Test } from 'tap'
import fs from 'node:fs'
import path from 'node:path'
import { isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, type Node } from 'yaml'
import { FastMap, FastScalar, FastSeq, nodeKind, offsetOf, readPlainYaml, type FastNode, type FastPair } from '../../src/config/yaml-fast'
import { parseConfig } from '../../src/config'
import { parseYaml, toYaml } from '../../src/config/yaml'

const root = path.join(__dirname, '..', '..')

/** Differences between a fast tree and yaml's, as "path: what" lines; empty when they agree. */
function treeDiff(a: FastNode | null, b: unknown, at = '$'): string[] {
  const kind = (n: unknown): string => nodeKind(n) ?? (n === null ? 'null' : typeof n)
  if (kind(a) !== kind(b)) return [`${at}: ${kind(a)} here, ${kind(b)} in yaml`]
  const out: string[] = []
  const start = (b as Node | null)?.range?.[0]
  if (offsetOf(a) !== start) out.push(`${at}: starts at ${offsetOf(a)} here, ${start} in yaml`)
  if (a instanceof FastScalar && isScalar(b)) {
    if (!Object.is(a.value, b.value)) out.push(`${at}: value ${JSON.stringify(a.value)} here, ${JSON.stringify(b.value)} in yaml`)
    if (a.source !== b.source) out.push(`${at}: source ${JSON.stringify(a.source)} here, ${JSON.stringify(b.source)} in yaml`)
  } else if ((a instanceof FastMap && isMap(b)) || (a instanceof FastSeq && isSeq(b))) {
    if (a.flow !== !!b.flow) out.push(`${at}: flow ${a.flow} here, ${!!b.flow} in yaml`)
    if (a.items.length !== b.items.length) return [...out, `${at}: ${a.items.length} items here, ${b.items.length} in yaml`]
    a.items.forEach((x, i) => {
      const y = b.items[i]
      if (a instanceof FastMap) {
        const p = x as FastPair
        if (!isPair(y)) { out.push(`${at}.${i}: a pair here, not in yaml`); return }
        out.push(...treeDiff(p.key, y.key, `${at}.key${i}`), ...treeDiff(p.value, y.value, `${at}.${String(p.key.value)}`))
      } else out.push(...treeDiff(x as FastNode, y, `${at}[${i}]`))
    })
  }
  return out
}

function agree(t: Test, text: string, name: string): void {
  const fast = readPlainYaml(text)
  t.ok(fast, `${name}: read by the fast path`)
  if (!fast) return
  const lc = new LineCounter()
  const doc = parseDocument(text, { lineCounter: lc, uniqueKeys: true, prettyErrors: false })
  t.equal(doc.errors.length, 0, `${name}: yaml reads it without errors`)
  t.same(treeDiff(fast.root, doc.contents), [], `${name}: the same tree as yaml`)
  t.same(fast.lc.lineStarts, lc.lineStarts.length ? lc.lineStarts : fast.lc.lineStarts, `${name}: the same line starts`)
}

t.test('files of the repository: the same tree as yaml', async (t) => {
  const files = [path.join(root, 'examples', 'xvs.yaml'), ...['equiv.yaml', 'lvs-equiv.yaml'].map((f) => path.join(root, 'test', 'fixtures', 'config', f))]
  for (const f of files) agree(t, fs.readFileSync(f, 'utf8'), path.basename(f))
  // What xvs itself prints: toYaml of every importer's model.
  for (const [f, fmt] of [['ipvsadm.rules', 'ipvsadm'], ['keepalived.conf', 'keepalived'], ['lvs.cf', 'lvs.cf']] as const) {
    const file = path.join(root, 'test', 'fixtures', 'config', f)
    agree(t, toYaml(parseConfig(fs.readFileSync(file, 'utf8'), file, fmt).model), `toYaml(${f})`)
  }
})

t.test('shapes the fast path reads', async (t) => {
  const cases: Record<string, string> = {
    'comments everywhere': '# head\n\nsettings:   # trailing\n  # inside\n  conn_table_size: 4096 # n\n\n  interfaces: [eth0, "eth1"]  # list\n# tail\n',
    'sequence at the key\'s column': 'services:\n- vip: 10.0.0.1\n  port: 80\n  real_servers:\n  - address: 10.1.0.1\n  - { address: 10.1.0.2, weight: 3 }\n',
    'item on its own line': 'services:\n  -\n    vip: 10.0.0.1\n    port: 80\n',
    'scalars of every type': 'a: 80\nb: -1\nc: 1.5\nd: true\ne: False\nf: null\ng: ~\nh: 10.0.0.1\ni: fd00::1\nj: 2001:db8::5\nk: 1.2.3\nl: x#y\nm: a b  c\nn: "q \\"x\\" \\\\ \\u00e9 \\x41"\no: \'it\'\'s\'\np: -x\nq: 0\nr: "80"\ns: /healthz?x=1&y\n',
    'nested flow': 'x: { a: [1, 2, { b: c }], d: {}, e: [] }\ny: [ "a, b", \'c]\' ]\n',
    'deep nesting': 'a:\n  b:\n    c:\n      - d: 1\n        e:\n          - 2\n          - - 3\n',
    'ipv6 in flow': 'x: [fd00::1, "::", 2001:db8::1]\ny: { a: fd00::2 }\n',
    'no final newline': 'a: 1\nb: 2',
  }
  // '- - 3' is a nested compact sequence: the fast path leaves it to yaml (checked below), so drop it here
  cases['deep nesting'] = 'a:\n  b:\n    c:\n      - d: 1\n        e:\n          - 2\n          - 3\n'
  for (const [name, text] of Object.entries(cases)) agree(t, text, name)
})

t.test('everything else is left to yaml', async (t) => {
  const cases: Record<string, string> = {
    anchor: 'a: &x 1\nb: *x\n', tag: 'a: !!str 1\n', 'block scalar': 'a: |\n  text\n', folded: 'a: >\n  text\n',
    'multi-line plain': 'a: one\n  two\n', 'empty value': 'a:\nb: 1\n', 'empty at the end': 'a: 1\nb:\n',
    'duplicate key': 'a: 1\na: 2\n', 'duplicate flow key': 'a: { b: 1, b: 2 }\n', tab: 'a:\t1\n', crlf: 'a: 1\r\n',
    hex: 'a: 0x10\n', octal: 'a: 0o7\n', exponent: 'a: 1e3\n', 'leading zero': 'a: 010\n', plus: 'a: +1\n', inf: 'a: .inf\n',
    directive: '%YAML 1.2\n---\na: 1\n', 'document start': '---\na: 1\n', 'bad indentation': 'a:\n    b: 1\n  c: 2\n',
    'deeper after a value': 'a: 1\n  b: 2\n', 'unclosed flow': 'a: [1, 2\n', 'trailing comma': 'a: [1, 2,]\n',
    'flow pair in a sequence': 'a: [b: 1]\n', 'key without space': 'a:1\n', 'colon in a plain value': 'a: b: c\n',
    'quoted key': '"a": 1\n', 'numeric key': '80: x\n', 'nested compact sequence': 'a:\n  - - 1\n', 'indented root': '  a: 1\n',
    'unclosed quote': 'a: "x\n', 'unknown escape': 'a: "\\q"\n', 'only comments': '# nothing\n', empty: '',
    'junk after flow': 'a: [1] x\n', 'complex key': '? a\n: 1\n', 'alias value': 'a: *x\n', 'seq inside map lines': 'a: 1\n- b\n',
  }
  for (const [name, text] of Object.entries(cases)) t.equal(readPlainYaml(text), null, `${name}: left to yaml`)
})

t.test('parseYaml: the same model and the same errors by either path', async (t) => {
  const good = fs.readFileSync(path.join(root, 'examples', 'xvs.yaml'), 'utf8')
  // A comment line with a tab sends the same file down the full parser.
  const slow = parseYaml(good + '#\t\n', 'x.yaml')
  t.ok(readPlainYaml(good), 'the example takes the fast path')
  t.equal(readPlainYaml(good + '#\t\n'), null, 'with a tab it does not')
  t.same(parseYaml(good, 'x.yaml').model, slow.model, 'the same model')
  const bad = 'services:\n  - vip: 10.0.0.1\n    port: 80\n    schedulr: rr\n'
  t.ok(readPlainYaml(bad), 'a semantic error is still plain YAML')
  t.throws(() => parseYaml(bad, 'x.yaml'), { message: /^x\.yaml:4:5: services\[0\]\.schedulr: unknown key 'schedulr'/ }, 'located as before')
  t.throws(() => parseYaml('a: [1, 2\n', 'x.yaml'), { code: 'ECONFIG', message: /^x\.yaml:/ }, 'a syntax error comes from yaml, located')
})
