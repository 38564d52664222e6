// SPDX-License-Identifier: GPL-2.0-only
// The TypeScript codecs and enum values agree with abi.h as compiled: checked against the BTF of
// the built director and decap objects. (Reads object files only; no root needed.)
import t from 'tap'
import fs from 'node:fs'
import { abiDiff, objectPath, DIRECTOR_STRUCTS, DECAP_STRUCTS, statCounterNames, ABI_VERSION, Settings, Real, ConnKey } from '../../src/dataplane/abi'

t.test('every struct and enum matches the director object', async (t) => {
  t.ok(fs.existsSync(objectPath()), 'director object built')
  t.same(abiDiff(objectPath()), [], 'no difference between abi.ts and the BTF of xvs.bpf.o')
})

t.test('the decap object shares the ABI', async (t) => {
  t.same(abiDiff(objectPath('decap'), DECAP_STRUCTS), [], 'no difference with the BTF of decap.bpf.o')
})

t.test('sizes the maps were created with', async (t) => {
  const sizes = Object.fromEntries([...DIRECTOR_STRUCTS, ...DECAP_STRUCTS].map((s) => [s.cName, s.size]))
  t.same(sizes, {
    xvs_service_key: 20, xvs_service: 40, xvs_real: 76, xvs_conn_key: 40, xvs_conn: 48, xvs_stats: 40,
    xvs_settings: 64, xvs_real_conns: 16, xvs_group_key: 20, xvs_port_range: 8, xvs_group_ranges: 520,
    xvs_locality_key: 24, xvs_locality: 88, xvs_decap_key: 20,
  }, 'struct sizes')
})

t.test('counter names come from BTF', async (t) => {
  const names = statCounterNames()
  t.equal(names[0], 'rx', 'first counter')
  t.ok(names.includes('pass_not_service'), 'pass_not_service')
  t.ok(names.every((n) => /^[a-z0-9_]+$/.test(n)), 'names are clean')
  t.equal(ABI_VERSION, 3, 'ABI version')
})

t.test('codecs of the ABI', async (t) => {
  const s = Settings.decode(Settings.encode({ tcp_timeout_s: 900, tun_src_v4: '10.0.0.1', tun_src_v6: 'fd00::1' }))
  t.equal(s.tun_src_v4, '10.0.0.1', 'fixed-family IPv4 field')
  t.equal(s.tun_src_v6, 'fd00::1', 'fixed-family IPv6 field')
  t.equal(Settings.decode(Buffer.alloc(Settings.size)).tun_src_v4, '', 'zero means unset')
  t.throws(() => Settings.encode({ tun_src_v4: 'fd00::1' }), { code: 'EARG' }, 'wrong family refused')
  const r = Real.decode(Real.encode({ addr: 'fd00::5', port: 80, method: 1, weight: 3, dst_mac: '02:00:00:00:00:05', src_mac: '02:00:00:00:00:01' }))
  t.equal(r.family, 10, 'family from the address')
  t.equal(r.addr, 'fd00::5', 'address')
  const k = ConnKey.encode({ caddr: '10.0.0.1', vaddr: '10.0.0.2', cport: 1234, vport: 80, proto: 6 })
  t.equal(k.length, 40, 'conn key size')
  t.equal(k[37], 2, 'conn key family (offset 37)')
})
