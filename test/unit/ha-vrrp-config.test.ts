// SPDX-License-Identifier: GPL-2.0-only
// VRRP instance configuration: timer formulas checked exactly against an independent BigInt
// computation of the RFC formulas, keepalived's corrections (as warnings) and refusals (ConfigError).
import t from 'tap'
import { ConfigError } from '../../src/errors'
import {
  effectivePriority,
  masterDownIntervalUs,
  minimumSkewUs,
  resolveVrrpConfig,
  skewTimeUs,
  type ResolvedTrack,
  type VrrpInstanceConfig,
} from '../../src/ha/vrrp-config'

// RFC 5798: Skew_Time = ((256 - Priority) * Master_Adver_Interval) / 256, interval in centiseconds;
// to microseconds (x 10000), truncated.
const v3SkewUs = (p: number, cs: number): number => Number((BigInt(256 - p) * BigInt(cs) * 10000n) / 256n)
// RFC 3768: Skew_Time = (256 - Priority) / 256 seconds.
const v2SkewUs = (p: number): number => Number((BigInt(256 - p) * 1000000n) / 256n)

t.test('Skew_Time and Master_Down_Interval, exactly', async (t) => {
  t.equal(skewTimeUs(3, 100, 1_000_000), 609_375, 'v3 priority 100, 1 s: 156 * 100 cs / 256 = 60.9375 cs')
  t.equal(masterDownIntervalUs(3, 100, 1_000_000), 3_609_375, 'v3 priority 100, 1 s: 3 s + 609.375 ms')
  t.equal(skewTimeUs(3, 200, 1_000_000), 218_750, 'v3 priority 200')
  t.equal(skewTimeUs(3, 254, 1_000_000), 7_812, 'v3 priority 254: 7812.5 us truncated')
  t.equal(skewTimeUs(3, 100, 2_000_000), 1_218_750, 'v3 scales with Master_Adver_Interval')
  t.equal(masterDownIntervalUs(3, 100, 2_000_000), 7_218_750)
  t.equal(skewTimeUs(3, 1, 40_950_000), 40_790_039, 'v3 extremes: priority 1, 4095 cs')
  t.equal(skewTimeUs(2, 100, 1_000_000), 609_375, 'v2 priority 100: 156/256 s')
  t.equal(skewTimeUs(2, 100, 3_000_000), 609_375, 'v2 skew does not depend on the interval (RFC 3768)')
  t.equal(masterDownIntervalUs(2, 100, 3_000_000), 9_609_375, 'v2: 3 x 3 s + 609.375 ms')
  t.equal(skewTimeUs(2, 254, 1_000_000), 7_812, 'v2 priority 254')
  t.equal(minimumSkewUs(3, 1_000_000), 3_906, 'keepalived VRRP_TIMER_SKEW_MIN, v3 1 s')
  t.equal(minimumSkewUs(2, 1_000_000), 3_906, 'v2')
  let mismatches = 0
  for (let p = 0; p <= 255; p++) {
    for (const cs of [1, 7, 10, 33, 100, 150, 999, 4095]) {
      if (skewTimeUs(3, p, cs * 10_000) !== v3SkewUs(p, cs)) mismatches++
      if (masterDownIntervalUs(3, p, cs * 10_000) !== 3 * cs * 10_000 + v3SkewUs(p, cs)) mismatches++
    }
    if (skewTimeUs(2, p, 1_000_000) !== v2SkewUs(p)) mismatches++
  }
  t.equal(mismatches, 0, 'all priorities and several intervals agree with the RFC formulas')
})

t.test('effective priority: weights, reverse, clamping, owner', async (t) => {
  const tr = (name: string, weight: number, reverse = false): ResolvedTrack => ({ kind: 'script', name, weight, reverse })
  const tracks = [tr('plus', 20), tr('minus', -30), tr('fault', 0), tr('rev', -5, true)]
  const up = (states: Record<string, boolean>) => (x: ResolvedTrack): boolean => states[x.name] ?? true
  t.equal(effectivePriority(100, tracks, up({ rev: false })), 120, 'positive weight adds while up; reversed object good while down')
  t.equal(effectivePriority(100, tracks, up({ plus: false, minus: false, rev: false })), 70, 'negative weight subtracts while down')
  t.equal(effectivePriority(100, tracks, up({ rev: true })), 115, 'reverse: up counts as bad')
  t.equal(effectivePriority(100, tracks, up({ fault: false, rev: false })), 120, 'weight 0 does not change priority (it faults instead)')
  t.equal(effectivePriority(250, [tr('a', 100)], up({})), 254, 'clamped to 254')
  t.equal(effectivePriority(10, [tr('a', -100)], up({ a: false })), 1, 'clamped to 1')
  t.equal(effectivePriority(255, [tr('a', -100)], up({ a: false })), 255, 'the owner stays 255')
})

const base: VrrpInstanceConfig = { name: 'VI_1', interface: 'eth0', vrid: 51, primaryAddress: '10.0.0.1', virtualAddresses: ['10.0.0.100'] }

t.test('defaults are keepalived defaults', async (t) => {
  const { config: c, warnings } = resolveVrrpConfig(base)
  t.same(warnings, [])
  t.equal(c.family, 4)
  t.equal(c.version, 2, 'vrrp_version 2 by default for IPv4')
  t.equal(c.priority, 100)
  t.equal(c.advertIntervalUs, 1_000_000)
  t.equal(c.initialState, 'BACKUP')
  t.equal(c.preempt, true)
  t.equal(c.preemptDelayUs, 0)
  t.equal(c.group, '224.0.0.18')
  t.equal(c.authType, 0)
  t.same(c.track, [{ kind: 'interface', name: 'eth0', weight: 0, reverse: false }], 'own interface tracked')
  const v6 = resolveVrrpConfig({ ...base, primaryAddress: 'FE80::0001', virtualAddresses: ['fe80::100', '2001:DB8::1'] })
  t.equal(v6.config.version, 3, 'IPv6 defaults to version 3')
  t.equal(v6.config.group, 'ff02::12')
  t.equal(v6.config.primaryAddress, 'fe80::1', 'addresses are canonicalised')
  t.same(v6.config.virtualAddresses, ['fe80::100', '2001:db8::1'])
  t.same(v6.warnings, [])
  t.same(resolveVrrpConfig({ ...base, trackOwnInterface: false }).config.track, [], 'dont_track_primary')
})

t.test('keepalived corrections come back as warnings', async (t) => {
  const w = (c: Partial<VrrpInstanceConfig>): { warnings: string[]; config: ReturnType<typeof resolveVrrpConfig>['config'] } => resolveVrrpConfig({ ...base, ...c })
  let r = w({ version: 2, primaryAddress: 'fe80::1', virtualAddresses: ['fe80::100'] })
  t.equal(r.config.version, 3, 'v2 over IPv6 becomes v3')
  t.match(r.warnings[0], /IPv4 only/)
  r = w({ advertIntervalMs: 1500 })
  t.equal(r.config.advertIntervalUs, 2_000_000, 'v2 rounds to whole seconds')
  t.match(r.warnings[0], /whole seconds/)
  r = w({ version: 3, advertIntervalMs: 1234 })
  t.equal(r.config.advertIntervalUs, 1_230_000, 'v3 rounds to centiseconds')
  r = w({ version: 3, advertIntervalMs: 50_000 })
  t.equal(r.config.advertIntervalUs, 40_950_000, 'v3 clamps to 40.95 s')
  r = w({ advertIntervalMs: 300_000 })
  t.equal(r.config.advertIntervalUs, 255_000_000, 'v2 clamps to 255 s')
  r = w({ version: 3, advertIntervalMs: 4 })
  t.equal(r.config.advertIntervalUs, 10_000, 'at least one unit')
  r = w({ initialState: 'MASTER', nopreempt: true })
  t.equal(r.config.preempt, true, 'nopreempt is only valid with initial state BACKUP: cleared')
  t.match(r.warnings, [/nopreempt will not work with initial state MASTER/])
  r = w({ initialState: 'MASTER', preemptDelayMs: 5000 })
  t.equal(r.config.preemptDelayUs, 0)
  t.match(r.warnings, [/preempt delay will not work/])
  r = w({ nopreempt: true, preemptDelayMs: 5000 })
  t.equal(r.config.preemptDelayUs, 0)
  t.equal(r.config.preempt, false)
  t.match(r.warnings, [/incompatible with nopreempt/])
  r = w({ priority: 255, nopreempt: true })
  t.equal(r.config.preempt, true)
  t.equal(r.config.initialState, 'MASTER', 'the owner acts as state MASTER')
  r = w({ nopreempt: true })
  t.equal(r.config.preempt, false, 'nopreempt with state BACKUP is kept')
  t.same(r.warnings, [])
  r = w({ preemptDelayMs: 2500 })
  t.equal(r.config.preemptDelayUs, 2_500_000)
  r = w({ version: 3, auth: { type: 'pass', password: 'x' } })
  t.equal(r.config.authType, 0, 'no authentication with v3')
  t.match(r.warnings, [/not supported with VRRPv3/])
  r = w({ auth: { type: 'pass', password: 'longpassword' } })
  t.equal(r.config.authType, 1)
  t.equal(r.config.authData.toString('latin1'), 'longpass', 'truncated to 8')
  t.match(r.warnings, [/truncating/])
  r = w({ track: [{ kind: 'interface', name: 'eth0', weight: -10 }] })
  t.match(r.warnings, [/own interface/])
  t.equal(r.config.track.length, 1)
  r = w({ priority: 255, track: [{ kind: 'script', name: 'chk', weight: -10 }] })
  t.match(r.warnings, [/address owner/])
  r = w({ primaryAddress: '2001:db8::1', virtualAddresses: ['2001:db8::100'] })
  t.equal(r.warnings.length, 2, 'IPv6 multicast: source and first VIP should be link-local')
})

t.test('refusals are ConfigErrors naming the keyword', async (t) => {
  const bad: Array<[string, Partial<VrrpInstanceConfig>, string]> = [
    ['VRID 0', { vrid: 0 }, 'virtual_router_id'],
    ['VRID 256', { vrid: 256 }, 'virtual_router_id'],
    ['priority 0', { priority: 0 }, 'priority'],
    ['priority 256', { priority: 256 }, 'priority'],
    ['priority 1.5', { priority: 1.5 }, 'priority'],
    ['bad source', { primaryAddress: '10.0.0' }, 'unicast_src_ip'],
    ['VIP of the other family', { virtualAddresses: ['fe80::1'] }, 'virtual_ipaddress[0]'],
    ['bad VIP', { virtualAddresses: ['10.0.0.1', 'x'] }, 'virtual_ipaddress[1]'],
    ['peer of the other family', { unicastPeers: ['::1'] }, 'unicast_peer[0]'],
    ['256 VIPs', { virtualAddresses: Array.from({ length: 256 }, (_, i) => `10.1.${i >> 8}.${i & 255}`) }, 'virtual_ipaddress'],
    ['interface with a slash', { interface: 'eth/0' }, 'interface'],
    ['no name', { name: '' }, 'name'],
    ['version 4', { version: 4 as 3 }, 'vrrp_version'],
    ['interval 0', { advertIntervalMs: 0 }, 'advert_int'],
    ['preempt_delay 1001 s', { preemptDelayMs: 1_001_000 }, 'preempt_delay'],
    ['auth AH', { auth: { type: 'ah', password: 'x' } }, 'auth_type'],
    ['empty password', { auth: { type: 'pass', password: '' } }, 'auth_pass'],
    ['weight 254', { track: [{ kind: 'script', name: 'chk', weight: 254 }] }, 'track[0].weight'],
    ['tracked twice', { track: [{ kind: 'script', name: 'chk' }, { kind: 'script', name: 'chk' }] }, 'track[1]'],
    ['state FAULT', { initialState: 'FAULT' as 'MASTER' }, 'state'],
  ]
  for (const [name, c, field] of bad) {
    t.throws(() => resolveVrrpConfig({ ...base, ...c }), ConfigError, name)
    try {
      resolveVrrpConfig({ ...base, ...c })
    } catch (err) {
      t.equal((err as ConfigError).field, field, `${name}: field`)
      t.equal((err as ConfigError).code, 'ECONFIG', `${name}: code`)
    }
  }
})
