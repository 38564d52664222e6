// SPDX-License-Identifier: GPL-2.0-only
// Control-plane apply times, through the code `xvs apply` runs (DirectBackend: parse, read the maps
// back, diff, resolve next hops, write): 1,000 mh services x 16 real servers from YAML (default
// table size), and one weight change in a service whose Maglev table has 65537 slots. Targets:
// under 1 s and under 20 ms. The director is a namespace of its own (a veth with the real servers
// as permanent neighbours, so next-hop resolution succeeds), deleted at the end whatever happens.
import { execFileSync, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { withNetns, projectRoot } from '../src/bpf'
import { parseConfig } from '../src/config'
import { DirectBackend } from '../src/cli/direct'
import { resolveNextHop, resolveNextHops, type NextHop, type ResolveOptions } from '../src/dataplane/neigh'
import { XvsError } from '../src/errors'
import { printRows, type Row } from './harness'

const REALS = 16
const rip = (i: number): string => `10.250.1.${i + 1}`
const vip = (i: number): string => `10.251.${Math.floor(i / 250)}.${(i % 250) + 1}`

/** `services` mh services on port 80, `reals` real servers each (the same RIPs everywhere). */
function servicesYaml(services: number, reals: number, extra = ''): string {
  const rs = Array.from({ length: reals }, (_, j) => `      - { address: ${rip(j)} }`).join('\n')
  let out = 'services:\n'
  for (let i = 0; i < services; i++) out += `  - vip: ${vip(i)}\n    port: 80\n    scheduler: mh\n    real_servers:\n${rs}\n`
  return out + extra
}

/** The 65537-slot service, with the first real server's weight `w`. */
function bigService(w: number): string {
  const rs = Array.from({ length: REALS }, (_, j) => `      - { address: ${rip(j)}, weight: ${j === 0 ? w : 1} }`).join('\n')
  return `  - vip: 10.252.0.1\n    port: 443\n    scheduler: mh\n    mh_table_size: 65537\n    real_servers:\n${rs}\n`
}

function sh(argv: string[]): void {
  execFileSync(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] })
}

function makeDirector(): string {
  const ns = `xvb-${process.pid.toString(36)}-${randomBytes(3).toString('hex')}`
  sh(['ip', 'netns', 'add', ns])
  try {
    sh(['ip', '-n', ns, 'link', 'add', 'veth0', 'type', 'veth', 'peer', 'name', 'veth1'])
    for (const dev of ['lo', 'veth0', 'veth1']) sh(['ip', '-n', ns, 'link', 'set', dev, 'up'])
    sh(['ip', '-n', ns, 'addr', 'add', '10.250.0.1/16', 'dev', 'veth0'])
    for (let j = 0; j < REALS; j++) {
      sh(['ip', '-n', ns, 'neigh', 'add', rip(j), 'lladdr', `02:00:00:00:01:${(j + 1).toString(16).padStart(2, '0')}`, 'dev', 'veth0', 'nud', 'permanent'])
    }
  } catch (e) {
    sh(['ip', 'netns', 'del', ns])
    throw e
  }
  return ns
}

const ms = (t0: bigint): number => Number(process.hrtime.bigint() - t0) / 1e6

/** Wall-clock ms of parse + apply, as `xvs apply FILE` does them. */
function timedApply(b: DirectBackend, yaml: string): number {
  const t0 = process.hrtime.bigint()
  b.applySync(parseConfig(yaml, 'bench.yaml', 'yaml').model)
  return ms(t0)
}

/** Median ms of parsing (and validating) the YAML alone. */
function parseMs(yaml: string): number {
  const times: number[] = []
  for (let i = 0; i < 3; i++) {
    const t0 = process.hrtime.bigint()
    parseConfig(yaml, 'bench.yaml', 'yaml')
    times.push(ms(t0))
  }
  return median(times)
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]!
}

/** A fresh data plane (new, empty maps) on veth0. */
function fresh(b: DirectBackend): void {
  b.unloadSync([])
  b.loadSync({ ifaces: ['veth0'], connTableSize: 65536 })
}

export function run(): void {
  const rows: Row[] = []
  const ns = makeDirector()
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'xvs-bench-'))
  try {
    withNetns(ns, () => {
      const b = new DirectBackend({ autoLoad: 'never' })
      // The same next hops, resolved once: what the writer costs without its `ip` processes.
      const hops = new Map<string, NextHop>()
      const cached = new DirectBackend({
        autoLoad: 'never',
        resolve: (address: string, o: ResolveOptions) => {
          let h = hops.get(address)
          if (!h) hops.set(address, (h = resolveNextHop(address, o)))
          return h
        },
      })
      try {
        const t0 = process.hrtime.bigint()
        for (let j = 0; j < REALS; j++) resolveNextHop(rip(j), { requireOnLink: true })
        rows.push({ name: `next-hop resolution of ${REALS} real servers, one by one`, value: ms(t0), unit: 'ms', note: 'one ip process each' })
        const t1 = process.hrtime.bigint()
        resolveNextHops(Array.from({ length: REALS }, (_, j) => ({ address: rip(j), requireOnLink: true })))
        rows.push({ name: `  the same in bulk (resolveNextHops)`, value: ms(t1), unit: 'ms', note: 'what an apply runs, for new servers only' })
        // 1,000 services x 16 real servers, from an empty data plane: the first apply of this process
        // (its code not yet compiled, its heap not yet grown, as in a fresh `xvs apply`), then the
        // median of three more, each onto a fresh data plane.
        let full: number | undefined
        try {
          fresh(b)
          full = timedApply(b, servicesYaml(1000, REALS))
          rows.push({ name: '1,000 mh services x 16 reals (16,381 slots each): first in this process', value: full, unit: 'ms', note: 'target < 1000 ms' })
          const again: number[] = []
          for (let i = 0; i < 3; i++) {
            fresh(b)
            again.push(timedApply(b, servicesYaml(1000, REALS)))
          }
          rows.push({ name: '  the same again, median of 3 fresh data planes', value: median(again), unit: 'ms', note: 'target < 1000 ms' })
          rows.push({ name: '  of which YAML parse + validate', value: parseMs(servicesYaml(1000, REALS)), unit: 'ms', note: 'median of 3' })
          const model = parseConfig(servicesYaml(1000, REALS), 'bench.yaml', 'yaml').model
          fresh(b)
          const t2 = process.hrtime.bigint()
          b.applySync(model)
          rows.push({ name: '  the same from a parsed model (read, diff, next hops, write)', value: ms(t2), unit: 'ms' })
        } catch (e) {
          if (!(e instanceof XvsError)) throw e
          rows.push({ name: '1,000 mh services x 16 reals', value: NaN, unit: 'ms', note: `refused: ${e.message}` })
        }
        // What fits when the full size does not (the data plane's real-id space is XVS_MAX_REALS).
        const variants: [number, number][] = full === undefined ? [[1000, 4], [255, 16]] : []
        for (const [services, reals] of variants) {
          const times: number[] = []
          for (let i = 0; i < 3; i++) {
            fresh(b)
            times.push(timedApply(b, servicesYaml(services, reals)))
          }
          rows.push({ name: `${services.toLocaleString('en')} mh services x ${reals} reals, median of 3`, value: median(times), unit: 'ms', note: 'target < 1000 ms' })
          rows.push({ name: '  of which YAML parse + validate', value: parseMs(servicesYaml(services, reals)), unit: 'ms' })
        }

        // One weight change in a 65537-slot service: alone, then beside 1,000 services.
        for (const [label, others] of [['alone', ''], ['beside 1,000 services', full === undefined ? servicesYaml(1000, 4) : servicesYaml(1000, REALS)]] as const) {
          fresh(b)
          const base = others === '' ? 'services:\n' : others
          timedApply(b, base + bigService(1))
          const times: number[] = []
          for (let i = 0; i < 5; i++) times.push(timedApply(b, base + bigService(i % 2 === 0 ? 2 : 1)))
          rows.push({ name: `weight change, 65537-slot table, ${label}`, value: median(times), unit: 'ms', note: 'target < 20 ms; median of 5' })
          const model = (w: number) => parseConfig(base + bigService(w), 'bench.yaml', 'yaml').model
          const pre = [model(1), model(2)]
          const writer: number[] = []
          for (let i = 0; i < 5; i++) {
            const t0 = process.hrtime.bigint()
            cached.applySync(pre[i % 2]!)
            writer.push(ms(t0))
          }
          cached.closeDataplane()
          rows.push({ name: '  same, model parsed and next hops known', value: median(writer), unit: 'ms', note: 'read back + diff + write' })
        }

        // The same through the command line, end to end (a new node process, ip netns exec), net of
        // what the same process costs to start and exit (`xvs --version`, measured here too).
        const cli = path.join(projectRoot(), 'dist', 'src', 'cli', 'xvs.js')
        if (fs.existsSync(cli)) {
          const file = path.join(tmp, 'apply.yaml')
          const size = full === undefined ? [1000, 4] : [1000, REALS]
          const run = (args: string[]): { ms: number; ok: boolean; err: string } => {
            const t0 = process.hrtime.bigint()
            const r = spawnSync('ip', ['netns', 'exec', ns, process.execPath, cli, ...args], { encoding: 'utf8' })
            return { ms: ms(t0), ok: r.status === 0, err: r.stderr }
          }
          const startup = median([0, 1, 2].map(() => run(['--version']).ms))
          rows.push({ name: 'xvs --version (process start-up and exit: the baseline)', value: startup, unit: 'ms', note: 'median of 3' })
          const firsts: number[] = []
          const seconds: number[] = []
          let failed = ''
          for (let i = 0; i < 3; i++) {
            fresh(b)
            fs.writeFileSync(file, servicesYaml(size[0]!, size[1]!) + bigService(1))
            const r1 = run(['apply', file])
            fs.writeFileSync(file, servicesYaml(size[0]!, size[1]!) + bigService(2))
            const r2 = run(['apply', file])
            if (!r1.ok || !r2.ok) failed ||= r1.err || r2.err
            firsts.push(r1.ms)
            seconds.push(r2.ms)
          }
          const note = (v: number): string => (failed ? `failed: ${failed}` : `net ${Math.round(v - startup)} ms of start-up; median of 3`)
          rows.push({ name: `xvs apply (process): ${size[0]} x ${size[1]} + the 65537-slot service`, value: median(firsts), unit: 'ms', note: note(median(firsts)) })
          rows.push({ name: 'xvs apply (process): then one weight change', value: median(seconds), unit: 'ms', note: note(median(seconds)) })
        }
      } finally {
        cached.close()
        try { b.unloadSync([]) } finally { b.close() }
      }
    })
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true })
    sh(['ip', 'netns', 'del', ns])
  }
  printRows('control plane: xvs apply (parse + read back + diff + next hops + write)', rows)
}
