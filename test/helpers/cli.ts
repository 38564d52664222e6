// SPDX-License-Identifier: GPL-2.0-only
// Running xvs and xvsadm as separate processes, the way an operator does: the compiled entry
// points in dist/ when they are at least as new as every source (after `make`), else the sources
// through ts-node (slower, but never a stale build).
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'

const root = path.join(__dirname, '..', '..')

/** Source hashes tsc recorded at its last build (dist/.tsbuildinfo): path under the repo -> sha256. */
function builtVersions(): Map<string, string> {
  const out = new Map<string, string>()
  try {
    type Info = { fileNames: string[]; fileInfos: ({ version?: string } | string)[] }
    const info = JSON.parse(fs.readFileSync(path.join(root, 'dist', '.tsbuildinfo'), 'utf8')) as Info & { program?: Info }
    const p = info.program ?? info
    p?.fileNames.forEach((f, i) => {
      const v = p.fileInfos[i]
      const version = typeof v === 'string' ? v : v?.version
      if (version) out.set(path.resolve(root, 'dist', f), version)
    })
  } catch { /* no incremental build info: mtimes decide */ }
  return out
}

/**
 * Whether a compiled entry point is older than a source it runs: walks the relative requires of
 * dist/src/cli/<entry>.js and checks each file's .ts under src/, by the hash tsc built it from (an
 * incremental build leaves unchanged outputs alone, so mtimes alone would mislead), else by mtime.
 * Only what the command lines load counts, so an unrelated edit elsewhere does not matter.
 */
function distStale(entries: string[]): boolean {
  const versions = builtVersions()
  const seen = new Set<string>()
  const todo = [...entries]
  while (todo.length) {
    const js = todo.pop()!
    if (seen.has(js)) continue
    seen.add(js)
    if (!fs.existsSync(js)) return true
    const ts = path.join(root, path.relative(path.join(root, 'dist'), js)).replace(/\.js$/, '.ts')
    if (fs.existsSync(ts)) {
      const built = versions.get(ts)
      const same = built !== undefined && createHash('sha256').update(fs.readFileSync(ts, 'utf8')).digest('hex') === built
      if (!same && fs.statSync(js).mtimeMs < fs.statSync(ts).mtimeMs) return true
    }
    for (const m of fs.readFileSync(js, 'utf8').matchAll(/require\("(\.{1,2}\/[^"]+)"\)/g)) {
      const dep = path.resolve(path.dirname(js), m[1]!)
      todo.push(fs.existsSync(`${dep}.js`) ? `${dep}.js` : path.join(dep, 'index.js'))
    }
  }
  return false
}

let cached: { xvs: string[]; xvsadm: string[]; via: string } | undefined

/** argv prefixes that run each command line, and which build they use. */
export function cliCommands(): { xvs: string[]; xvsadm: string[]; via: string } {
  if (cached) return cached
  const dist = (n: string): string => path.join(root, 'dist', 'src', 'cli', `${n}.js`)
  if (!distStale([dist('xvs'), dist('xvsadm')])) {
    cached = { xvs: [process.execPath, dist('xvs')], xvsadm: [process.execPath, dist('xvsadm')], via: 'dist (compiled)' }
  } else {
    const register = require.resolve('@isaacs/ts-node-temp-fork-for-pr-2009/register/transpile-only', { paths: [root] })
    const src = (n: string): string => path.join(root, 'src', 'cli', `${n}.ts`)
    cached = { xvs: [process.execPath, '-r', register, src('xvs')], xvsadm: [process.execPath, '-r', register, src('xvsadm')], via: 'sources (ts-node; dist is older than src)' }
  }
  return cached
}

export interface CliResult { status: number | null; stdout: string; stderr: string }

/** Run `argv` in network namespace `ns` (ip netns exec), with `input` on stdin. */
export function runIn(ns: string, argv: readonly string[], input = ''): CliResult {
  // Without tap's NODE_OPTIONS (its process-info hooks, which it adds to every child it sees
  // spawned): they belong to the test process, not to the program under test.
  const r = spawnSync('ip', ['netns', 'exec', ns, 'env', '-u', 'NODE_OPTIONS', ...argv], { input, encoding: 'utf8', timeout: 60_000 })
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? (r.error ? String(r.error) : '') }
}
