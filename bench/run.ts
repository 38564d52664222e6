// SPDX-License-Identifier: GPL-2.0-only
// make bench: every benchmark, one after another, in one process (needs root).
import * as apply from './apply.bench'
import * as binding from './binding.bench'
import * as dataplane from './dataplane.bench'
import * as health from './health.bench'

const suites: Record<string, { run(): void }> = { binding, dataplane, apply, health }

function main(): void {
  if (process.getuid?.() !== 0) {
    process.stderr.write('make bench: needs root (BPF test runs and namespaces); run as root or with sudo\n')
    process.exitCode = 1
    return
  }
  const only = process.argv.slice(2)
  for (const [name, s] of Object.entries(suites)) if (only.length === 0 || only.includes(name)) s.run()
}

main()
