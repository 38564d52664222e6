// SPDX-License-Identifier: GPL-2.0-only
// settings.tunnel_sources: the configurable outer source of tun packets.
import t from 'tap'
import { parseConfig, toYaml } from '../../src/config'

const cfg = (sources: string): string => `settings:\n  tunnel_sources: ${sources}\nservices: []\n`

t.test('parsed, canonicalised and printed back', async (t) => {
  const m = parseConfig(cfg('[10.0.0.1, "2001:DB8::0:1"]'), 'x.yaml', 'yaml').model
  t.same(m.settings.tunnelSources, ['10.0.0.1', '2001:db8::1'], 'one per family, canonical')
  const again = parseConfig(toYaml(m), 'y.yaml', 'yaml').model
  t.same(again, m, 'round trip through toYaml')
  t.same(parseConfig('services: []\n', 'z.yaml', 'yaml').model.settings.tunnelSources, [], 'default none')
})

t.test('errors are located and say what to do', async (t) => {
  t.throws(() => parseConfig(cfg('[10.0.0.1, 10.0.0.2]'), 'x.yaml', 'yaml'), { code: 'ECONFIG', message: /x\.yaml:2:.*tunnelSources\[1\].*at most one per family/ }, 'two IPv4 sources')
  t.throws(() => parseConfig(cfg('[eth0]'), 'x.yaml', 'yaml'), { code: 'ECONFIG', message: /x\.yaml:2:/ }, 'not an address')
})
