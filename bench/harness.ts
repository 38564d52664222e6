// SPDX-License-Identifier: GPL-2.0-only
// Benchmark helpers. Figures are reported net of a baseline measured in the same run, because
// these machines are shared and noisy: only ratios and differences travel between runs.
import path from 'node:path'
import { BpfObject, BpfProgram, projectRoot } from '../src/bpf'

export interface Row { name: string; value: number; unit: string; net?: number; note?: string }

export const outDir = (...p: string[]): string => path.join(projectRoot(), 'out', ...p)

/**
 * Median of `rounds` test runs of `repeat` iterations each: average ns per run of the program.
 * `ctxIn`: the struct xdp_md to run with (ingress_ifindex: run inside that interface's namespace).
 */
export function nsPerRun(prog: BpfProgram, packet: Buffer, repeat = 200_000, rounds = 5, ctxIn?: Buffer): number {
  const samples: number[] = []
  for (let i = 0; i < rounds; i++) samples.push(prog.testRun(packet, { repeat, ...(ctxIn ? { ctxIn } : {}) }).durationNs)
  samples.sort((a, b) => a - b)
  return samples[Math.floor(samples.length / 2)]!
}

/** Wall-clock ms of `fn`, median of `rounds`. */
export function msOf(fn: () => void, rounds = 5): number {
  const samples: number[] = []
  for (let i = 0; i < rounds; i++) {
    const t0 = process.hrtime.bigint()
    fn()
    samples.push(Number(process.hrtime.bigint() - t0) / 1e6)
  }
  samples.sort((a, b) => a - b)
  return samples[Math.floor(samples.length / 2)]!
}

/** The XDP_PASS fixture, loaded: the baseline every per-packet figure is reported against. */
export function loadPassProgram(): BpfProgram {
  const obj = BpfObject.open(outDir('fixtures', 'xdp_pass.bpf.o')).load()
  const name = obj.programs()[0]!.name
  const prog = obj.program(name)
  obj.close()
  return prog
}

export function printRows(title: string, rows: Row[]): void {
  const w = Math.max(...rows.map((r) => r.name.length), 10)
  process.stdout.write(`\n${title}\n`)
  for (const r of rows) {
    const net = r.net === undefined ? '' : `   net ${r.net.toFixed(1)} ${r.unit}`
    process.stdout.write(`  ${r.name.padEnd(w)}  ${r.value.toFixed(1).padStart(10)} ${r.unit}${net}${r.note ? `   (${r.note})` : ''}\n`)
  }
}
