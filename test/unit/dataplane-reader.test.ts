// SPDX-License-Identifier: GPL-2.0-only
// The reader's pure parts: map values back to model services and real servers, connection
// counting as IPVS counts (ESTABLISHED active, the rest inactive, expired and stale left out), and
// the part of a desired model the maps can hold.
import t from 'tap'
import { countConns, heldPart, modelService, secondsLeft, stateTimeout, type ConnEntry, type RealEntry } from '../../src/dataplane/reader'
import { ConnFlags, ConnState, FwdMethod, Proto, Real, Sched, Service, ServiceFlags, ServiceKey, type Conn } from '../../src/dataplane/abi'
import { emptyModel, portService, realServer } from '../../src/model/defaults'

const T = { tcp: 900, tcpfin: 120, udp: 300 }
const real = (id: number, service_id: number, addr: string, extra: Partial<Real> = {}): RealEntry =>
  ({ id, value: Real.decode(Real.encode({ addr, port: 80, method: FwdMethod.DR, weight: 1, service_id, ...extra })) })
const conn = (real_id: number, service_id: number, state: number, ageS: number, flags = 0): ConnEntry => ({
  key: { caddr: '10.0.0.10', vaddr: '10.0.0.1', cport: 1, vport: 80, proto: Proto.TCP, family: 2 },
  value: { last_seen_ns: BigInt(1_000_000e9 - ageS * 1e9), created_ns: 0n, real_id, service_id, state, flags },
})
const NOW = BigInt(1_000_000e9)

t.test('services and real servers read back as the model writes them', async (t) => {
  const key = ServiceKey.decode(ServiceKey.encode({ addr: '2001:db8::1', port: 443, proto: Proto.TCP }))
  const value = Service.decode(Service.encode({ id: 4, sched: Sched.MH, flags: ServiceFlags.HASH_SRC_ADDR | ServiceFlags.HASH_SRC_PORT | ServiceFlags.SCHED_FALLBACK, table_size: 65537, num_reals: 2 }))
  const reals = [real(1, 4, '2001:db8::10', { weight: 3, method: FwdMethod.TUN }), real(2, 5, '2001:db8::11'), real(3, 4, '2001:db8:0:0::12', { weight: 0 })]
  t.same(modelService({ key, value }, reals), portService('tcp', '2001:db8::1', 443, {
    scheduler: 'mh', schedFlags: ['mh-fallback', 'mh-port'], mhTableSize: 65537,
    realServers: [realServer('2001:db8::10', 80, { weight: 3, method: 'tun' }), realServer('2001:db8::12', 80, { weight: 0 })],
  }), 'flags, table size, its own real servers in id order, canonical addresses')
  const p = Service.decode(Service.encode({ id: 1, sched: Sched.RR, persist_timeout_s: 600, persist_mask: Buffer.from([255, 255, 255, 0]) }))
  const k4 = ServiceKey.decode(ServiceKey.encode({ addr: '10.0.0.1', port: 0, proto: Proto.UDP }))
  t.same(modelService({ key: k4, value: p }, []).persistence, { timeout: 600, netmask: '255.255.255.0' }, 'persistence and its mask')
  // A service group's key: protocol 0, its id in the address's first four bytes (abi.h).
  const g6 = ServiceKey.decode(Buffer.concat([Buffer.from([0, 0, 1, 44]), Buffer.alloc(12), Buffer.from([0, 0, 0, 10])]))
  t.match(modelService({ key: g6, value: p }, []), { kind: 'group', id: 300, family: 6, matches: [] }, 'a group: id and family back')
})

t.test('connections per real server, as IPVS counts them', async (t) => {
  const reals = [real(1, 0, '10.0.1.1'), real(2, 0, '10.0.1.2'), real(3, 1, '10.0.1.3')]
  const conns = [
    conn(1, 0, ConnState.ESTABLISHED, 10), conn(1, 0, ConnState.ESTABLISHED, 899),
    conn(1, 0, ConnState.FIN_WAIT, 5), conn(1, 0, ConnState.TIME_WAIT, 119), conn(2, 0, ConnState.SYN_RECV, 1),
    conn(2, 0, ConnState.ESTABLISHED, 901), // expired
    conn(3, 0, ConnState.ESTABLISHED, 1), // stale: real 3 now belongs to service 1
    conn(2, 0, ConnState.NONE, 1, ConnFlags.TEMPLATE),
    { ...conn(1, 0, ConnState.UDP, 299), key: { caddr: '10.0.0.11', vaddr: '10.0.0.1', cport: 1, vport: 53, proto: Proto.UDP, family: 2 } },
  ]
  const c = countConns(conns, reals, NOW, T, new Map([[0, 300]]))
  t.same(c.get(1), { active: 2, inactive: 3, persistent: 0 }, 'ESTABLISHED active; FIN_WAIT, TIME_WAIT and UDP inactive')
  t.same(c.get(2), { active: 0, inactive: 1, persistent: 1 }, 'expired left out; the template (its service persists 300 s) counted apart')
  t.notOk(c.get(3), 'stale entries not counted')
  t.equal(stateTimeout(ConnState.CLOSE, T), 10)
  t.equal(Math.round(secondsLeft(conn(1, 0, ConnState.ESTABLISHED, 100).value as Conn, NOW, T)), 800)
})

t.test('the part of a model the maps hold', async (t) => {
  const desired = emptyModel()
  desired.settings.interfaces = ['eth9']
  desired.settings.connTableSize = 5
  desired.services = [portService('tcp', '10.0.0.1', 80, {
    name: 'web', scheduler: 'rr', sorryServer: { address: '10.0.9.9', port: 80, method: 'dr' },
    realServers: [realServer('10.0.1.1', 80, { name: 'a', weight: 2, check: { type: 'tcp', interval: 1, timeout: 1, rise: 1, fall: 1, retry: 1, retryDelay: 1, reentry: 0, onFailure: 'remove' } })],
  })]
  const current = emptyModel()
  current.settings.interfaces = ['eth0']
  const held = heldPart(desired, current)
  t.same(held.services, [portService('tcp', '10.0.0.1', 80, { scheduler: 'rr', realServers: [realServer('10.0.1.1', 80, { weight: 2 })] })], 'names, checks, sorry server left out')
  t.same([held.settings.interfaces, held.settings.connTableSize], [['eth0'], current.settings.connTableSize], 'what the data plane keeps itself')
})
