// SPDX-License-Identifier: GPL-2.0-only
// ha: VRRP (v2 and v3, keepalived-compatible) for active/backup directors, and the gratuitous ARP /
// unsolicited NA that move VIPs. Protocol logic only: raw sockets come from the native addon through
// the VrrpTransport interface.
export * from '../util/clock'
export * from './garp'
export * from './inet'
export * from './vrrp-config'
export * from './vrrp-host'
export * from './vrrp-instance'
export * from './vrrp-packet'
export * from './vrrp-transport'
export * from './failover'
export * from './notify'
export * from './raw-transport'
export * from './system'
export * from './sync'
export * from './director'
export * from './status'
