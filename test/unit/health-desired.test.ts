// SPDX-License-Identifier: GPL-2.0-only
// computeDesired: remove vs quiesce, dynamic weights, sorry server, keepalived quorum with hysteresis.
import t from 'tap'
import { computeDesired } from '../../src/health/desired'
import type { ServerHealth, ServicePolicy } from '../../src/health/desired'

const server = (key: string, weight: number, health: 'up' | 'down', dynamicWeight?: number): ServerHealth => ({
  key,
  address: `10.0.0.${key.slice(1)}`,
  port: 80,
  weight,
  health,
  ...(dynamicWeight !== undefined ? { dynamicWeight } : {}),
})
const sorry = { address: '10.9.9.9', port: 8080 }
const summary = (d: ReturnType<typeof computeDesired>): string[] => d.backends.map((b) => `${b.key}=${b.weight}`)

t.test('remove drops down servers, quiesce keeps them at weight 0', async (t) => {
  const servers = [server('r1', 3, 'up'), server('r2', 2, 'down'), server('r3', 1, 'up')]
  const removed = computeDesired({ onFailure: 'remove' }, servers)
  t.same(summary(removed), ['r1=3', 'r3=1'])
  t.equal(removed.quorumUp, true)
  t.equal(removed.upWeight, 4)
  const quiesced = computeDesired({ onFailure: 'quiesce' }, servers)
  t.same(summary(quiesced), ['r1=3', 'r2=0', 'r3=1'])
  t.same(quiesced.backends[1], { kind: 'real', key: 'r2', address: '10.0.0.2', port: 80, weight: 0 })
})

t.test('a dynamic weight overrides the configured one', async (t) => {
  const d = computeDesired({ onFailure: 'remove' }, [server('r1', 5, 'up', 7), server('r2', 5, 'up', 0)])
  t.same(summary(d), ['r1=7', 'r2=0'])
  t.equal(d.upWeight, 7)
})

t.test('sorry server when every real server is down', async (t) => {
  const policy: ServicePolicy = { onFailure: 'remove', sorryServer: sorry }
  const allDown = computeDesired(policy, [server('r1', 1, 'down'), server('r2', 1, 'down')])
  t.equal(allDown.quorumUp, false)
  t.equal(allDown.sorryActive, true)
  t.same(allDown.backends, [{ kind: 'sorry', key: 'sorry', address: '10.9.9.9', port: 8080, weight: 1 }])
  const oneUp = computeDesired(policy, [server('r1', 1, 'down'), server('r2', 1, 'up')])
  t.equal(oneUp.sorryActive, false)
  t.same(summary(oneUp), ['r2=1'])
  const quiesce = computeDesired({ ...policy, onFailure: 'quiesce', sorryServer: { ...sorry, weight: 4 } }, [server('r1', 1, 'down')])
  t.same(summary(quiesce), ['r1=0', 'sorry=4'], 'quiesced servers keep their flows at weight 0 beside the sorry server')
  const empty = computeDesired(policy, [])
  t.same(summary(empty), ['sorry=1'], 'a service with no real servers gets the sorry server')
})

t.test('every up server at weight 0 is no quorum either', async (t) => {
  const d = computeDesired({ onFailure: 'remove', sorryServer: sorry }, [server('r1', 0, 'up')])
  t.equal(d.quorumUp, false)
  t.same(summary(d), ['sorry=1'])
})

t.test('quorum: up weights must reach it', async (t) => {
  const policy: ServicePolicy = { onFailure: 'remove', quorum: 5, sorryServer: sorry }
  const servers = [server('r1', 3, 'up'), server('r2', 3, 'down')]
  const lost = computeDesired(policy, servers)
  t.equal(lost.quorumUp, false, '3 < 5')
  t.same(summary(lost), ['sorry=1'], 'sorry server replaces the remaining up servers')
  const kept = computeDesired(policy, [server('r1', 3, 'up'), server('r2', 3, 'up')])
  t.equal(kept.quorumUp, true, '6 >= 5')
  t.same(summary(kept), ['r1=3', 'r2=3'])
  const noSorry = computeDesired({ onFailure: 'remove', quorum: 5 }, servers)
  t.equal(noSorry.quorumUp, false)
  t.same(summary(noSorry), ['r1=3'], 'without a sorry server the up servers stay')
})

t.test('hysteresis: gained at quorum + h, lost below quorum - h', async (t) => {
  const policy: ServicePolicy = { onFailure: 'remove', quorum: 4, hysteresis: 1 }
  const withUp = (w: number): ServerHealth[] => [server('r1', w, 'up')]
  // from down: needs 5
  t.equal(computeDesired(policy, withUp(4), false).quorumUp, false, 'down stays down at 4')
  t.equal(computeDesired(policy, withUp(5), false).quorumUp, true, 'down goes up at 5')
  // from up: lost only below 3
  t.equal(computeDesired(policy, withUp(3), true).quorumUp, true, 'up stays up at 3')
  t.equal(computeDesired(policy, withUp(2), true).quorumUp, false, 'up goes down at 2')
  // no previous state: plain quorum
  t.equal(computeDesired(policy, withUp(4)).quorumUp, true)
  t.equal(computeDesired(policy, withUp(3)).quorumUp, false)
  // a walk through the band
  let up: boolean | undefined
  const seen: boolean[] = []
  for (const w of [5, 4, 3, 2, 3, 4, 5, 4]) {
    up = computeDesired(policy, withUp(w), up).quorumUp
    seen.push(up)
  }
  t.same(seen, [true, true, true, false, false, false, true, true])
})

t.test('invalid policies are refused', async (t) => {
  t.throws(() => computeDesired({ onFailure: 'drop' as 'remove' }, []), { code: 'EARG' })
  t.throws(() => computeDesired({ onFailure: 'remove', quorum: 0 }, []), { code: 'EARG' })
  t.throws(() => computeDesired({ onFailure: 'remove', hysteresis: -1 }, []), { code: 'EARG' })
  t.throws(() => computeDesired({ onFailure: 'remove', sorryServer: { ...sorry, weight: 0 } }, []), { code: 'EARG' })
})
