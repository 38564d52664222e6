// SPDX-License-Identifier: GPL-2.0-only
// Helpers for the scheduler, persistence and service-group tests through BPF_PROG_TEST_RUN: the maps
// the fixture helper (director.ts) does not hand out, per-real connection counters, packets from
// many clients, and which real server a forwarded frame went to.
import type { Test } from 'tap'
import { BpfMap } from '../../src/bpf'
import {
  LocalityKey, Locality, RealConns, localityMembers, type Locality as LocalityValue, type RealConns as RealConnsValue,
} from '../../src/dataplane/abi'
import { ether, ipv4, ipv6, tcp, udp } from '../../src/lab/packet'
import { CLIENT_MAC, DIRECTOR_MAC, type Director } from './director'
import type { NextHop } from '../../src/dataplane/neigh'

export const VIP = '10.0.0.10'
export const VIP6 = 'fd00:10::10'

/** Real server `id`'s MAC: 02:00:00:00:04:<id>, so a forwarded frame names its real server. */
export const realMac = (id: number): string => `02:00:00:00:04:${id.toString(16).padStart(2, '0')}`

/** A dr real server spec for Director.addService: 10.1.<id/256>.<id%256>. */
export const real = (id: number, extra: Record<string, unknown> = {}): { id: number; addr: string; dst_mac: string } & Record<string, unknown> =>
  ({ id, addr: `10.1.${id >> 8}.${id & 255}`, dst_mac: realMac(id & 255), ...extra })

/** A next hop for writer runs outside any routed namespace: out of lo, to realMac(1). */
export const loHop = (address: string): NextHop =>
  ({ address, ifname: 'lo', ifindex: 1, srcMac: '02:00:00:00:00:02', dstMac: realMac(1), mtu: 1500 })

/** A nat service (VIP:80 -> 10.1.0.1:8080) and a fullnat one (VIP:81 -> 10.1.0.2:8081, local address 10.2.0.1). */
export const NAT_MODEL = `settings:
  local_addresses: [10.2.0.1]
services:
  - vip: ${VIP}
    port: 80
    scheduler: rr
    real_servers:
      - { address: 10.1.0.1, port: 8080, method: nat }
  - vip: ${VIP}
    port: 81
    scheduler: rr
    real_servers:
      - { address: 10.1.0.2, port: 8081, method: fullnat }
`

/** The real id (low byte) a forwarded frame went to, 0 when it was not forwarded to one. */
export const realOf = (frame: Buffer): number => (frame.subarray(0, 5).equals(Buffer.from([2, 0, 0, 0, 4])) ? frame[5]! : 0)

export interface PktOpts { src?: string; dst?: string; sport?: number; dport?: number; flags?: string }

/** A TCP segment client -> VIP (IPv4 or IPv6 by the addresses). */
export function tcpPkt(o: PktOpts = {}): Buffer {
  const src = o.src ?? '10.0.0.1'
  const dst = o.dst ?? VIP
  const l4 = tcp({ sport: o.sport ?? 40000, dport: o.dport ?? 80, flags: o.flags ?? 'S' })
  const ip = src.includes(':') ? ipv6({ src, dst }, l4) : ipv4({ src, dst }, l4)
  return ether({ dst: DIRECTOR_MAC, src: CLIENT_MAC }, ip)
}

export function udpPkt(o: PktOpts = {}): Buffer {
  const src = o.src ?? '10.0.0.1'
  const dst = o.dst ?? VIP
  const l4 = udp({ sport: o.sport ?? 40000, dport: o.dport ?? 53, payload: Buffer.from('q') })
  const ip = src.includes(':') ? ipv6({ src, dst }, l4) : ipv4({ src, dst }, l4)
  return ether({ dst: DIRECTOR_MAC, src: CLIENT_MAC }, ip)
}

const u32 = (n: number): Buffer => { const b = Buffer.alloc(4); b.writeUInt32LE(n >>> 0); return b }

/** The maps the fixture helper leaves out, opened by id from the loaded program; closed at teardown. */
export class SchedMaps {
  readonly realConns: BpfMap
  readonly groupRanges: BpfMap
  readonly locality: BpfMap

  constructor(t: Test, d: Director) {
    const found = new Map<string, BpfMap>()
    for (const id of d.prog.info().mapIds) {
      const m = BpfMap.fromId(id)
      if (['xvs_real_conns', 'xvs_grp_ranges', 'xvs_locality'].includes(m.name)) found.set(m.name, m)
      else m.close()
    }
    this.realConns = found.get('xvs_real_conns')!
    this.groupRanges = found.get('xvs_grp_ranges')!
    this.locality = found.get('xvs_locality')!
    t.teardown(() => { for (const m of found.values()) m.close() })
  }

  /** xvs_real_conns[id]. */
  conns(id: number): RealConnsValue {
    return RealConns.decode(this.realConns.lookup(u32(id))!)
  }

  /** Set a real server's counts (what lc-family rules read). */
  setConns(id: number, c: Partial<RealConnsValue>): void {
    this.realConns.update(u32(id), RealConns.encode(c))
  }

  /** [active, inactive, persistent] of a real server. */
  counts(id: number): [number, number, number] {
    const c = this.conns(id)
    return [c.active, c.inactive, c.persistent]
  }

  localityOf(serviceId: number, daddr: string): (LocalityValue & { members: number[] }) | null {
    const v = this.locality.lookup(LocalityKey.encode({ daddr, service_id: serviceId }))
    if (v === null) return null
    const l = Locality.decode(v)
    return { ...l, members: localityMembers(l) }
  }

  setLocality(serviceId: number, daddr: string, l: LocalityValue): void {
    this.locality.update(LocalityKey.encode({ daddr, service_id: serviceId }), Locality.encode(l))
  }
}

/** `real_ids` bytes of an xvs_locality value. */
export function memberBytes(ids: readonly number[]): Buffer {
  const b = Buffer.alloc(64)
  ids.forEach((id, i) => b.writeUInt32LE(id, 4 * i))
  return b
}

/** bpf_ktime_get_ns()'s clock: CLOCK_MONOTONIC. */
export const monoNow = (): bigint => process.hrtime.bigint()
