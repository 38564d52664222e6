/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Connections per real server (struct xvs_real_conns) and the overload
 * they mark: what the IPVS schedulers call activeconns, inactconns and
 * IP_VS_DEST_F_OVERLOAD. Every CPU changes the same entry, with atomic
 * adds; a count may be briefly off (see abi.h) and userspace rewrites it
 * from the connection table.
 */
#ifndef XVS_REALCONNS_H
#define XVS_REALCONNS_H

#include "xvs/abi.h"
#include "xvs/maps.h"

static __always_inline struct xvs_real_conns *xvs_real_conns_get(__u32 real_id)
{
	return bpf_map_lookup_elem(&xvs_real_conns, &real_id);
}

/* A count as the schedulers use it: never negative (see abi.h). */
static __always_inline __u32 xvs_count_of(__s32 n)
{
	return n > 0 ? (__u32)n : 0;
}

/* active + inactive: what the thresholds compare with (ip_vs_dest_totalconns). */
static __always_inline __u32 xvs_real_total(const struct xvs_real_conns *rc)
{
	return xvs_count_of(rc->active) + xvs_count_of(rc->inactive);
}

/*
 * IP_VS_DEST_F_OVERLOAD. The flag is stored as the upper threshold it was
 * set under, so that raising or clearing the threshold ends the overload
 * at once, as ipvsadm -e does in IPVS (__ip_vs_update_dest clears the flag
 * when the new upper threshold is 0 or above the old one).
 */
static __always_inline int xvs_real_overloaded(const struct xvs_real *real,
					       const struct xvs_real_conns *rc)
{
	return rc->overload_upper && real->upper_threshold &&
	       real->upper_threshold <= rc->overload_upper;
}

/* Which counter an entry adds to: templates, ESTABLISHED flows, the rest. */
static __always_inline __s32 *xvs_conn_counter(struct xvs_real_conns *rc, __u32 flags, __u32 state)
{
	if (flags & XVS_CONN_F_TEMPLATE)
		return &rc->persistent;
	if (state == XVS_CONN_S_ESTABLISHED)
		return &rc->active;
	return &rc->inactive;
}

/*
 * An entry naming real_id was created (ip_vs_bind_dest): count it, and
 * mark the server overloaded once active + inactive reach its upper
 * threshold.
 */
static __always_inline int xvs_real_conn_bind(__u32 real_id, __u32 flags, __u32 state)
{
	struct xvs_real_conns *rc = xvs_real_conns_get(real_id);
	struct xvs_real *real;
	__u32 upper;

	if (!rc)
		return 0;
	__sync_fetch_and_add(xvs_conn_counter(rc, flags, state), 1);
	real = bpf_map_lookup_elem(&xvs_reals, &real_id);
	if (!real)
		return 0;
	upper = real->upper_threshold;
	if (upper && xvs_real_total(rc) >= upper)
		rc->overload_upper = upper;
	else if (rc->overload_upper && !xvs_real_overloaded(real, rc))
		rc->overload_upper = 0;	/* ended by a raised threshold: forget it */
	return 0;
}

/*
 * An entry naming real_id was deleted (ip_vs_unbind_dest): uncount it.
 * The overload ends below the lower threshold; with none, below three
 * quarters of the upper one; with neither, at once.
 */
static __always_inline int xvs_real_conn_unbind(__u32 real_id, __u32 flags, __u32 state)
{
	struct xvs_real_conns *rc = xvs_real_conns_get(real_id);
	struct xvs_real *real;
	__u32 total;

	if (!rc)
		return 0;
	__sync_fetch_and_add(xvs_conn_counter(rc, flags, state), -1);
	if (!rc->overload_upper)
		return 0;
	real = bpf_map_lookup_elem(&xvs_reals, &real_id);
	if (!real)
		return 0;
	total = xvs_real_total(rc);
	if (real->lower_threshold) {
		if (total < real->lower_threshold)
			rc->overload_upper = 0;
	} else if (real->upper_threshold) {
		if ((__u64)total * 4 < (__u64)real->upper_threshold * 3)
			rc->overload_upper = 0;
	} else {
		rc->overload_upper = 0;
	}
	return 0;
}

/*
 * A TCP flow changed state: it moves between active and inactive when it
 * enters or leaves ESTABLISHED (set_tcp_state in ip_vs_proto_tcp.c). The
 * total does not change, so neither does the overload.
 */
static __always_inline int xvs_real_conn_move(__u32 real_id, __u32 old_state, __u32 new_state)
{
	struct xvs_real_conns *rc;
	int was = old_state == XVS_CONN_S_ESTABLISHED;
	int is = new_state == XVS_CONN_S_ESTABLISHED;

	if (was == is)
		return 0;
	rc = xvs_real_conns_get(real_id);
	if (!rc)
		return 0;
	__sync_fetch_and_add(&rc->active, is ? 1 : -1);
	__sync_fetch_and_add(&rc->inactive, is ? -1 : 1);
	return 0;
}

#endif /* XVS_REALCONNS_H */
