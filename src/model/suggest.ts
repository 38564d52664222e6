// SPDX-License-Identifier: GPL-2.0-only
// "Did you mean" for every unknown key, keyword, option and name, so a typo gets the right word back.

/** Optimal string alignment distance (Levenshtein plus adjacent transpositions). */
function distance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)])
  for (let j = 1; j <= b.length; j++) d[0]![j] = j
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1)
      d[i]![j] = v
    }
  }
  return d[a.length]![b.length]!
}

/**
 * The closest candidate to `word`, if close enough to be a typo. `aliases` maps words an operator might use
 * for the same thing ("masquerading") to the candidate they mean ("nat").
 */
export function closest(word: string, candidates: readonly string[], aliases: Record<string, string> = {}): string | undefined {
  const lower = word.toLowerCase()
  const alias = aliases[lower]
  if (alias !== undefined) return alias
  let best: string | undefined
  let bestD = Infinity
  for (const c of candidates) {
    const dist = c.toLowerCase() === lower ? 0 : distance(lower, c.toLowerCase())
    if (dist < bestD) [best, bestD] = [c, dist]
  }
  return best !== undefined && bestD <= Math.max(1, Math.floor(word.length / 3)) ? best : undefined
}

/** "; did you mean 'x'?", or "; use one of a, b, c" when nothing is close and the list is short enough to read. */
export function suggestion(word: string, candidates: readonly string[], aliases?: Record<string, string>): string {
  const c = closest(word, candidates, aliases)
  if (c !== undefined) return `; did you mean '${c}'?`
  return candidates.length <= 16 ? `; use one of ${candidates.join(', ')}` : ''
}
