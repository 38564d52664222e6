// SPDX-License-Identifier: GPL-2.0-only
// Real-server id allocation: a removed server's id is neither handed to a newcomer while fresh ids
// remain (its old flows would follow the id) nor given away when that server comes back.
import t from 'tap'
import { IdPool } from '../../src/dataplane/writer'

t.test('fresh ids first; a returning server keeps its id', async (t) => {
  // Ids 1 and 2 are present; 2 belongs to a removed server.
  const pool = new IdPool(1, 8, [1, 2], [2])
  t.equal(pool.claim(2), 2, 'the removed server comes back with its own id')
  t.equal(pool.take('real servers'), 3, 'a newcomer gets a never-used id, not 2')
  t.equal(pool.take('real servers'), 4, 'and the next one the next')
})

t.test('removed ids are reused only when nothing fresh is left', async (t) => {
  const pool = new IdPool(1, 4, [1, 2, 3], [2])
  t.equal(pool.take('real servers'), 2, 'the removed id, as the last resort')
  t.throws(() => pool.take('real servers'), { code: 'ECONFIG', message: /too many real servers: the data plane holds at most 3/ }, 'then a clear refusal')
})
