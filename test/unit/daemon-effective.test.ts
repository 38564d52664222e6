// SPDX-License-Identifier: GPL-2.0-only
// The desired state with health applied: remove vs quiesce per server, unchecked servers, sorry server
// when every server is down (and out again), quorum with hysteresis across calls, dynamic weights,
// servers the daemon cannot program.
import t from 'tap'
import { parseConfig } from '../../src/config'
import { effectiveModel, type ServerState } from '../../src/daemon/effective'
import type { Model, PortService } from '../../src/model/types'

const model = (extra = '', checks = '{ type: tcp, on_failure: remove }', rs3check = ''): Model => parseConfig(`services:
  - vip: 10.0.0.100
    port: 80
    scheduler: wrr
    check: ${checks}
${extra}    real_servers:
      - { address: 10.0.0.11, method: dr, weight: 1 }
      - { address: 10.0.0.12, method: dr, weight: 2, check: { on_failure: quiesce } }
      - { address: 10.0.0.13, method: dr, weight: 3${rs3check} }
`, 'e.yaml').model

const K = (last: number): string => `tcp:10.0.0.100:80/10.0.0.${last}:80`
const weights = (m: Model): Record<string, number> => Object.fromEntries((m.services[0] as PortService).realServers.map((r) => [r.address, r.weight]))
const st = (health: 'up' | 'down', onFailure: 'quiesce' | 'remove' = 'remove', dynamicWeight?: number): ServerState =>
  ({ health, onFailure, ...(dynamicWeight !== undefined ? { dynamicWeight } : {}) })

t.test('all up: the configured model, unchanged', async (t) => {
  const m = model()
  const r = effectiveModel(m, { health: new Map() })
  t.same(r.model, m)
  t.same(r.services[0], { key: 'tcp:10.0.0.100:80', quorumUp: true, sorryActive: false, upWeight: 6, removed: [], quiesced: [] })
})

t.test('a down server is removed or quiesced as its check says', async (t) => {
  const m = model()
  const r = effectiveModel(m, { health: new Map([[K(11), st('down')], [K(12), st('down', 'quiesce')]]) })
  t.same(weights(r.model), { '10.0.0.12': 0, '10.0.0.13': 3 })
  t.same(r.services[0]!.removed, ['10.0.0.11:80'])
  t.same(r.services[0]!.quiesced, ['10.0.0.12:80'])
  t.equal(r.services[0]!.upWeight, 3)
  t.same(weights(m), { '10.0.0.11': 1, '10.0.0.12': 2, '10.0.0.13': 3 }, 'the config model is not touched')
})

t.test('a dynamic check weight replaces the configured one', async (t) => {
  const r = effectiveModel(model(), { health: new Map([[K(11), st('up', 'remove', 7)]]) })
  t.same(weights(r.model), { '10.0.0.11': 7, '10.0.0.12': 2, '10.0.0.13': 3 })
  t.equal(r.services[0]!.upWeight, 12)
})

t.test('every server down: the sorry server takes over, quiesced servers stay at 0; back when one is up', async (t) => {
  const m = model('    sorry_server: { address: 10.0.0.99, port: 80, method: dr }\n')
  const down = new Map([[K(11), st('down')], [K(12), st('down', 'quiesce')], [K(13), st('down')]])
  const r = effectiveModel(m, { health: down })
  t.same(weights(r.model), { '10.0.0.12': 0, '10.0.0.99': 1 })
  t.match(r.services[0], { sorryActive: true, quorumUp: false, upWeight: 0 })
  const sorry = (r.model.services[0] as PortService).realServers.find((x) => x.address === '10.0.0.99')!
  t.same(sorry, { address: '10.0.0.99', port: 80, weight: 1, method: 'dr', upperThreshold: 0, lowerThreshold: 0 })
  const back = effectiveModel(m, { health: new Map([...down, [K(13), st('up')]]), quorum: r.quorum })
  t.same(weights(back.model), { '10.0.0.12': 0, '10.0.0.13': 3 }, 'sorry server out as soon as one server is up')
  t.equal(back.services[0]!.sorryActive, false)
})

t.test('every server down without a sorry server: an empty pool (new connections are dropped)', async (t) => {
  const r = effectiveModel(model(), { health: new Map([[K(11), st('down')], [K(12), st('down')], [K(13), st('down')]]) })
  t.same(weights(r.model), {})
  t.equal(r.services[0]!.quorumUp, false)
})

t.test('quorum with hysteresis: lost below quorum - h, regained only at quorum + h', async (t) => {
  const m = model('    sorry_server: { address: 10.0.0.99, port: 80, method: dr }\n    quorum: { weight: 4, hysteresis: 1 }\n')
  let q: Map<string, boolean> | undefined
  const step = (h: Map<string, ServerState>) => {
    const r = effectiveModel(m, { health: h, ...(q ? { quorum: q } : {}) })
    q = r.quorum
    return r.services[0]!
  }
  t.match(step(new Map()), { quorumUp: true, upWeight: 6 })
  t.match(step(new Map([[K(11), st('down')], [K(12), st('down')]])), { quorumUp: true, upWeight: 3 }, 'at 3 (>= 4 - 1) it holds')
  t.match(step(new Map([[K(13), st('down')], [K(12), st('down')]])), { quorumUp: false, sorryActive: true, upWeight: 1 }, 'at 1 it is lost')
  t.match(step(new Map([[K(12), st('down')]])), { quorumUp: false, upWeight: 4 }, 'at 4 (< 4 + 1) still lost')
  t.match(step(new Map()), { quorumUp: true, sorryActive: false, upWeight: 6 }, 'at 6 regained')
})

t.test('servers without a check are always up; servers the daemon cannot program are left out', async (t) => {
  const text = `services:
  - vip: 10.0.0.100
    port: 80
    scheduler: rr
    real_servers:
      - { address: 10.0.0.11, method: dr }
      - { address: 10.0.0.12, method: dr }
`
  const m = parseConfig(text, 'n.yaml').model
  const r = effectiveModel(m, { health: new Map(), exclude: new Set([K(12)]) })
  t.same(weights(r.model), { '10.0.0.11': 1 })
  t.same(r.services[0]!.removed, ['10.0.0.12:80'])
})
