// SPDX-License-Identifier: GPL-2.0-only
// A lab takes the xvs pins of its namespaces with it: a daemon leaves its data plane pinned on
// purpose when it exits, but a deleted namespace's pins would only leak kernel objects.
import t, { type Test } from 'tap'
import fs from 'node:fs'
import path from 'node:path'
import { needsRoot, tempBpffs } from '../helpers/root'
import { createTopology } from '../../src/lab/topology'
import { withNetns, netnsCookie } from '../../src/bpf'
import { loadDataplane, unloadDataplane } from '../../src/dataplane/loader'
import { ABI_VERSION } from '../../src/dataplane/abi'

/** A bridge lab with xvs loaded (pinned, in a bpffs of the test's own) on the director; its pin directory. */
async function pinnedLab(t: Test): Promise<{ topo: Awaited<ReturnType<typeof createTopology>>; dir: string }> {
  const bpffs = tempBpffs(t)
  process.env.XVS_BPFFS = bpffs
  const topo = await createTopology({ shape: 'bridge', reals: 1 })
  t.teardown(() => topo.destroy())
  const dir = withNetns(topo.director.ns, () => {
    loadDataplane({ ifaces: [topo.director.front.name] }).dataplane.close()
    return path.join(bpffs, 'xvs', `ns${netnsCookie()}`)
  })
  return { topo, dir }
}

t.test('destroying a lab removes the xvs pins of its namespaces', needsRoot, async (t) => {
  const { topo, dir } = await pinnedLab(t)
  const v = `v${ABI_VERSION}`
  t.ok(fs.existsSync(path.join(dir, v, 'prog')), 'the data plane is pinned under the namespace cookie and ABI version')
  t.ok(fs.existsSync(path.join(dir, v, 'link_eth0')), 'and its link')
  topo.destroy()
  t.notOk(fs.existsSync(dir), 'gone with the lab')
})

t.test('unloading removes the pins and the namespace\'s directory', needsRoot, async (t) => {
  const { topo, dir } = await pinnedLab(t)
  t.ok(fs.existsSync(path.join(dir, `v${ABI_VERSION}`, 'prog')), 'pinned')
  t.same(withNetns(topo.director.ns, () => unloadDataplane()), [topo.director.front.name], 'detached')
  t.notOk(fs.existsSync(dir), 'no empty directory left behind')
})

t.test('a load that fails leaves no pins behind', needsRoot, async (t) => {
  const { topo, dir } = await pinnedLab(t)
  withNetns(topo.director.ns, () => unloadDataplane())
  t.notOk(fs.existsSync(dir), 'nothing pinned before the failing load')
  // eth0 attaches, then the interface that does not exist fails: eth0 is detached again and the
  // maps pinned for the fresh data plane go with it
  const err = withNetns(topo.director.ns, () => {
    try {
      loadDataplane({ ifaces: [topo.director.front.name, 'xvsnosuch0'] }).dataplane.close()
      return null
    } catch (e) {
      return e as Error
    }
  })
  t.match(err?.message, /xvsnosuch0/, 'the load fails, naming the interface')
  t.notOk(fs.existsSync(dir), 'no pin directory left behind')
  t.same(withNetns(topo.director.ns, () => unloadDataplane()), [], 'and nothing attached')
})
