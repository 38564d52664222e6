/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Director settings. Load-time choices are const volatile globals in
 * .rodata, set by the loader before load (libbpf-bootstrap style) and
 * frozen after; everything an operator may change while traffic flows is in
 * the xvs_settings map (struct xvs_settings, abi.h).
 */
#ifndef XVS_SETTINGS_H
#define XVS_SETTINGS_H

#include "xvs/abi.h"
#include "xvs/maps.h"

/*
 * The ABI the object was built with, alone in its own section: libbpf makes
 * it a 4-byte map of its own ("xvs.rodata.abi"), so a later loader that
 * finds a running program by id reads the version at offset 0 without
 * needing that program's BTF.
 */
const volatile __u32 xvs_abi_version SEC(".rodata.abi") = XVS_ABI_VERSION;

/*
 * 1: redirect through xvs_tx_ports when the egress interface is in it
 * (bulked), else bpf_redirect(); 0: always bpf_redirect(). XDP_TX is used
 * whenever the egress interface is the ingress one, whatever this says.
 */
const volatile __u8 xvs_cfg_tx_via_devmap = 1;

static __always_inline const struct xvs_settings *xvs_settings_get(void)
{
	__u32 key = 0;

	return bpf_map_lookup_elem(&xvs_settings, &key);
}

/*
 * The packet path's clock: CLOCK_MONOTONIC at the last tick (coarse, a
 * jiffy's resolution, ~3 ns to read where bpf_ktime_get_ns costs ~20 on a
 * VM's kvm-clock). Timeouts are seconds. Userspace writes times read from
 * the precise clock (connection sync, tools), which may be up to a tick
 * ahead of this one: every "how long ago" below is taken as 0 when the
 * stored time is ahead of now.
 */
static __always_inline __u64 xvs_now(void)
{
	return bpf_ktime_get_coarse_ns();
}

/*
 * now - then, or 0 when then is ahead by less than a second (see
 * xvs_now). Further ahead is modular arithmetic's business: a time written
 * as "a day ago" on a machine up for less than that wraps around, and the
 * difference still comes out a day.
 */
static __always_inline __u64 xvs_since(__u64 now, __u64 then)
{
	if (then > now && then - now < 1000000000ULL)
		return 0;
	return now - then;
}

static __always_inline __u16 xvs_real_mtu(const struct xvs_settings *set, __u16 real_mtu)
{
	if (real_mtu)
		return real_mtu;
	if (set->default_mtu)
		return set->default_mtu;
	return XVS_DEFAULT_MTU;
}

#endif /* XVS_SETTINGS_H */
