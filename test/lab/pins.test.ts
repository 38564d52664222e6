// SPDX-License-Identifier: GPL-2.0-only
// A lab takes the xvs pins of its namespaces with it: a daemon leaves its data plane pinned on
// purpose when it exits, but a deleted namespace's pins would only leak kernel objects.
import t from 'tap'
import fs from 'node:fs'
import path from 'node:path'
import { needsRoot, tempBpffs } from '../helpers/root'
import { createTopology } from '../../src/lab/topology'
import { withNetns, netnsCookie } from '../../src/bpf'
import { loadDataplane } from '../../src/dataplane/loader'

t.test('destroying a lab removes the xvs pins of its namespaces', needsRoot, async (t) => {
  const bpffs = tempBpffs(t)
  process.env.XVS_BPFFS = bpffs
  const topo = await createTopology({ shape: 'bridge', reals: 1 })
  t.teardown(() => topo.destroy())
  const dir = withNetns(topo.director.ns, () => {
    loadDataplane({ ifaces: [topo.director.front.name] }).dataplane.close()
    return path.join(bpffs, 'xvs', `ns${netnsCookie()}`)
  })
  t.ok(fs.existsSync(path.join(dir, 'v1', 'prog')), 'the data plane is pinned under the namespace cookie')
  t.ok(fs.existsSync(path.join(dir, 'v1', 'link_eth0')), 'and its link')
  topo.destroy()
  t.notOk(fs.existsSync(dir), 'gone with the lab')
})
