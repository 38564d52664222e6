/* SPDX-License-Identifier: GPL-2.0 */
/* Counting: global reasons (xvs_counters) and per service / real traffic. */
#ifndef XVS_STATS_H
#define XVS_STATS_H

#include "xvs/abi.h"
#include "xvs/maps.h"

static __always_inline void xvs_count(__u32 stat)
{
	__u64 *ctr = bpf_map_lookup_elem(&xvs_counters, &stat);

	if (ctr)
		*ctr += 1;
}

/* Count why, and return the verdict: `return xvs_verdict(STAT, XDP_PASS);` */
static __always_inline int xvs_verdict(__u32 stat, int action)
{
	xvs_count(stat);
	return action;
}

/* Per-CPU values: plain adds, no atomics needed. */
static __always_inline void xvs_stats_in(void *map, __u32 id, __u32 bytes, int new_conn)
{
	struct xvs_stats *st = bpf_map_lookup_elem(map, &id);

	if (!st)
		return;
	if (new_conn)
		st->conns++;
	st->packets_in++;
	st->bytes_in += bytes;
}

#endif /* XVS_STATS_H */
