// SPDX-License-Identifier: GPL-2.0-only
// A strict parser of the Prometheus text exposition format (0.0.4), for tests: it throws on anything a
// Prometheus server would reject (bad names, label syntax or escapes, values, a family split in two, a
// sample before its TYPE, histogram buckets that are not cumulative or lack +Inf).

export interface Sample { name: string; labels: Record<string, string>; value: number }
export interface MetricFamily { name: string; type: string; help: string; samples: Sample[] }

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*/

function parseValue(s: string, where: string): number {
  if (s === 'NaN') return NaN
  if (s === '+Inf' || s === 'Inf') return Infinity
  if (s === '-Inf') return -Infinity
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(s)) throw new Error(`${where}: bad value ${JSON.stringify(s)}`)
  return Number(s)
}

function parseLabels(text: string, where: string): { labels: Record<string, string>; rest: string } {
  const labels: Record<string, string> = {}
  let i = 1 // after '{'
  for (;;) {
    while (text[i] === ' ') i++
    if (text[i] === '}') return { labels, rest: text.slice(i + 1) }
    const m = LABEL.exec(text.slice(i))
    if (!m) throw new Error(`${where}: bad label name at ${JSON.stringify(text.slice(i, i + 20))}`)
    const name = m[0]
    i += name.length
    if (text[i] !== '=' || text[i + 1] !== '"') throw new Error(`${where}: expected =" after label ${name}`)
    i += 2
    let v = ''
    for (;;) {
      const c = text[i]
      if (c === undefined) throw new Error(`${where}: unterminated label value`)
      if (c === '"') break
      if (c === '\\') {
        const n = text[i + 1]
        if (n === 'n') v += '\n'
        else if (n === '\\' || n === '"') v += n
        else throw new Error(`${where}: bad escape \\${n ?? ''} in label ${name}`)
        i += 2
        continue
      }
      if (c === '\n') throw new Error(`${where}: newline in label value`)
      v += c
      i++
    }
    i++
    if (name in labels) throw new Error(`${where}: label ${name} twice`)
    labels[name] = v
    while (text[i] === ' ') i++
    if (text[i] === ',') { i++; continue }
    if (text[i] === '}') return { labels, rest: text.slice(i + 1) }
    throw new Error(`${where}: expected , or } after label ${name}`)
  }
}

function familyOf(sample: string, families: Map<string, MetricFamily>): MetricFamily | undefined {
  if (families.has(sample)) return families.get(sample)
  for (const suffix of ['_bucket', '_sum', '_count']) {
    if (!sample.endsWith(suffix)) continue
    const f = families.get(sample.slice(0, -suffix.length))
    if (f && (f.type === 'histogram' || f.type === 'summary')) return f
  }
  return undefined
}

export function parsePrometheus(text: string): Map<string, MetricFamily> {
  const families = new Map<string, MetricFamily>()
  const closed = new Set<string>()
  let current: string | undefined
  if (text !== '' && !text.endsWith('\n')) throw new Error('the page does not end with a newline')
  text.split('\n').forEach((line, n) => {
    const where = `line ${n + 1}`
    if (line === '') return
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line)
      if (!m) return // a comment
      const [, kind, name, rest] = m as unknown as [string, string, string, string]
      if (!NAME.test(name) || NAME.exec(name)![0] !== name) throw new Error(`${where}: bad metric name ${name}`)
      if (closed.has(name)) throw new Error(`${where}: family ${name} appears twice`)
      if (current !== undefined && current !== name) closed.add(current)
      current = name
      let f = families.get(name)
      if (!f) families.set(name, (f = { name, type: 'untyped', help: '', samples: [] }))
      if (kind === 'TYPE') {
        if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(rest)) throw new Error(`${where}: bad type ${rest}`)
        if (f.samples.length) throw new Error(`${where}: TYPE of ${name} after its samples`)
        f.type = rest
      } else {
        f.help = rest.replace(/\\(n|\\)/g, (_m, c: string) => (c === 'n' ? '\n' : '\\'))
      }
      return
    }
    const m = NAME.exec(line)
    if (!m) throw new Error(`${where}: bad sample ${JSON.stringify(line.slice(0, 40))}`)
    const name = m[0]
    let rest = line.slice(name.length)
    let labels: Record<string, string> = {}
    if (rest.startsWith('{')) ({ labels, rest } = parseLabels(rest, where))
    const parts = rest.trim().split(/\s+/)
    if (parts.length < 1 || parts.length > 2 || !rest.startsWith(' ')) throw new Error(`${where}: expected a value after ${name}`)
    const value = parseValue(parts[0]!, where)
    if (parts[1] !== undefined && !/^-?\d+$/.test(parts[1])) throw new Error(`${where}: bad timestamp`)
    const f = familyOf(name, families)
    if (!f) throw new Error(`${where}: sample ${name} without a TYPE line`)
    if (closed.has(f.name) || (current !== undefined && current !== f.name)) throw new Error(`${where}: samples of ${f.name} are not together`)
    current = f.name
    f.samples.push({ name, labels, value })
  })
  for (const f of families.values()) if (f.type === 'histogram') checkHistogram(f)
  return families
}

function checkHistogram(f: MetricFamily): void {
  const groups = new Map<string, Sample[]>()
  for (const s of f.samples) {
    if (s.name !== `${f.name}_bucket`) continue
    const { le, ...rest } = s.labels
    if (le === undefined) throw new Error(`${f.name}: bucket without le`)
    const k = JSON.stringify(rest)
    groups.set(k, [...(groups.get(k) ?? []), s])
  }
  for (const [k, buckets] of groups) {
    let prev = -Infinity
    let prevCount = 0
    for (const b of buckets) {
      const le = parseValue(b.labels.le!, f.name)
      if (le <= prev) throw new Error(`${f.name}${k}: buckets not ascending`)
      if (b.value < prevCount) throw new Error(`${f.name}${k}: buckets not cumulative`)
      prev = le
      prevCount = b.value
    }
    if (prev !== Infinity) throw new Error(`${f.name}${k}: no +Inf bucket`)
    const count = f.samples.find((s) => s.name === `${f.name}_count` && JSON.stringify(s.labels) === k)
    if (!count || count.value !== prevCount) throw new Error(`${f.name}${k}: _count differs from the +Inf bucket`)
  }
}

/** The value of the one sample of `family` whose labels include `labels`. */
export function sampleValue(families: Map<string, MetricFamily>, family: string, labels: Record<string, string> = {}, name = family): number | undefined {
  const f = families.get(family)
  const hits = (f?.samples ?? []).filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
  if (hits.length > 1) throw new Error(`${family} ${JSON.stringify(labels)}: ${hits.length} samples`)
  return hits[0]?.value
}
