// SPDX-License-Identifier: GPL-2.0-only
// Test helpers shared by the root-only test files: a loud skip when not root, a private bpffs, and
// a throwaway network namespace with a veth pair. Each helper registers its own teardown, so
// nothing is left behind even when a test fails.
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { randomBytes } from 'node:crypto'

type Tap = { teardown(fn: () => void | Promise<void>): void }

export const isRoot = process.getuid?.() === 0

/** Pass as a test's options: skipped, with the reason printed, when not root. Never skips as root. */
export const needsRoot: { skip: string | false } = {
  skip: isRoot ? false : 'needs root (BPF, XDP and network namespaces); run as root: make test',
}

export function sh(argv: string[]): string {
  return execFileSync(argv[0]!, argv.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
}

/** A fresh bpffs mounted on a temporary directory, unmounted and removed at teardown. */
export function tempBpffs(t: Tap): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xvs-bpffs-'))
  sh(['mount', '-t', 'bpf', 'bpf', dir])
  t.teardown(() => {
    try { sh(['umount', dir]) } catch { /* not mounted */ }
    fs.rmSync(dir, { recursive: true, force: true })
  })
  return dir
}

export interface TempNetns { name: string; veth: string; peer: string }

/** A network namespace holding a veth pair (veth0 <-> veth1), both up; deleted at teardown. */
export function tempNetns(t: Tap): TempNetns {
  const name = `xvt-${process.pid.toString(36)}-${randomBytes(3).toString('hex')}`
  sh(['ip', 'netns', 'add', name])
  t.teardown(() => { try { sh(['ip', 'netns', 'del', name]) } catch { /* already gone */ } })
  sh(['ip', '-n', name, 'link', 'add', 'veth0', 'type', 'veth', 'peer', 'name', 'veth1'])
  sh(['ip', '-n', name, 'link', 'set', 'veth0', 'up'])
  sh(['ip', '-n', name, 'link', 'set', 'veth1', 'up'])
  return { name, veth: 'veth0', peer: 'veth1' }
}

export const fixture = (name: string): string => path.join(__dirname, '..', '..', 'out', 'fixtures', `${name}.bpf.o`)
