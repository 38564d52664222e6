/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Schedulers: pick a real server for a new connection. Tables are built by
 * userspace (src/sched) and read here: rr/wrr/mh/sh/dh read only their
 * table (and a server's counters only when it has thresholds); the
 * counting schedulers are in sched_lc.h, lblc/lblcr in locality.h.
 */
#ifndef XVS_SCHED_H
#define XVS_SCHED_H

#include "xvs/abi.h"
#include "xvs/maps.h"
#include "xvs/hash.h"
#include "xvs/settings.h"
#include "xvs/realconns.h"
#include "xvs/sched_lc.h"
#include "xvs/locality.h"

static __always_inline struct xvs_real *xvs_real_get(__u32 real_id)
{
	if (real_id == XVS_REAL_NONE)
		return NULL;
	return bpf_map_lookup_elem(&xvs_reals, &real_id);
}

/* May take new connections: in this service, weight > 0, not quiesced/removed/down. */
static __always_inline int xvs_real_available(const struct xvs_real *real, __u32 service_id)
{
	return real->weight && real->service_id == service_id &&
	       !(real->flags & (XVS_REAL_F_QUIESCED | XVS_REAL_F_REMOVED | XVS_REAL_F_DOWN));
}

/*
 * Still serves its existing connections: in this service and neither
 * removed nor down. Quiesced (weight 0) servers keep their flows.
 */
static __always_inline int xvs_real_alive(const struct xvs_real *real, __u32 service_id)
{
	return real->service_id == service_id &&
	       !(real->flags & (XVS_REAL_F_REMOVED | XVS_REAL_F_DOWN));
}

/*
 * The real id in a slot if that server may take a new connection, else 0.
 * Every IPVS scheduler skips overloaded servers; only a server with an
 * upper threshold can be one, so only such a server costs a counter read.
 */
static __always_inline __u32 xvs_slot_real(void *table, __u32 slot, __u32 service_id)
{
	struct xvs_real_conns *rc;
	struct xvs_real *real;
	__u32 id = xvs_table_get(table, slot);

	real = xvs_real_get(id);
	if (!real || !xvs_real_available(real, service_id))
		return XVS_REAL_NONE;
	if (real->upper_threshold) {
		rc = xvs_real_conns_get(id);
		if (rc && xvs_real_overloaded(real, rc))
			return XVS_REAL_NONE;
	}
	return id;
}

/*
 * A scan of a service's table for an available server, run by bpf_loop()
 * when the first slot looked at cannot take the connection: the callback is
 * verified once, so a scan may cover a whole table (a wrr sequence where a
 * heavy server that went down holds a long run of slots) at no verifier
 * cost per slot.
 */
struct xvs_scan {
	__u32 table_slot;	/* index in xvs_svc_tables */
	__u32 service_id;
	__u32 n;		/* table size, > 0 */
	__u32 start;		/* rr/wrr: the cursor slot; mh/sh/dh: the flow hash */
	__u32 pos;		/* out: the slot that gave real_id */
	__u32 real_id;		/* out: XVS_REAL_NONE until found */
};

static __always_inline long xvs_scan_try(struct xvs_scan *scan, __u32 pos)
{
	void *table = bpf_map_lookup_elem(&xvs_svc_tables, &scan->table_slot);

	if (!table)
		return 1; /* stop: the table went away */
	scan->real_id = xvs_slot_real(table, pos, scan->service_id);
	scan->pos = pos;
	return scan->real_id != XVS_REAL_NONE;
}

/* bpf_loop callback: the slot i + 1 places after the cursor. */
static long xvs_walk_step(__u64 i, void *arg)
{
	struct xvs_scan *scan = arg;

	return xvs_scan_try(scan, (scan->start + (__u32)i + 1) % scan->n);
}

/* bpf_loop callback: the (i + 1)th rehash of the flow hash. */
static long xvs_rehash_step(__u64 i, void *arg)
{
	struct xvs_scan *scan = arg;

	return xvs_scan_try(scan, xvs_murmur3_fmix(scan->start + (__u32)i + 1) % scan->n);
}

/*
 * rr and wrr: walk the table from this CPU's cursor to the next available
 * server, at most once round. rr's table lists the servers once; wrr's is
 * the IPVS interleaved sequence (each server as often as its weight/gcd,
 * built in userspace), so the same walk gives both. Per-CPU cursors keep
 * the IPVS proportions over time without a shared cache line.
 */
static __always_inline int xvs_sched_walk(struct xvs_scan *scan)
{
	__u32 *cursor;

	cursor = bpf_map_lookup_elem(&xvs_rr_cursor, &scan->service_id);
	if (!cursor)
		return -XVS_STAT_DROP_NO_TABLE;
	scan->start = *cursor % scan->n;
	if (!xvs_scan_try(scan, scan->start) && scan->n > 1)
		bpf_loop(scan->n - 1, xvs_walk_step, scan, 0);
	if (scan->real_id == XVS_REAL_NONE)
		return -XVS_STAT_DROP_NO_BACKEND;
	*cursor = scan->pos + 1 < scan->n ? scan->pos + 1 : 0;
	return scan->real_id;
}

/*
 * mh: the maglev ring. Slot = flow hash mod the (prime) table size. With
 * XVS_SVC_F_SCHED_FALLBACK an unavailable server's flows rehash, up to
 * XVS_SCHED_SCAN_MAX times (IPVS mh-fallback); without it they find no
 * server, as in IPVS, until userspace rebuilds the ring without it.
 */
static __always_inline int xvs_sched_mh(struct xvs_scan *scan, __u32 flags)
{
	if (!xvs_scan_try(scan, scan->start % scan->n) && (flags & XVS_SVC_F_SCHED_FALLBACK))
		bpf_loop(XVS_SCHED_SCAN_MAX, xvs_rehash_step, scan, 0);
	if (scan->real_id == XVS_REAL_NONE)
		return -XVS_STAT_DROP_NO_BACKEND;
	return scan->real_id;
}

/*
 * sh and dh: 256 buckets over the source (sh) or destination (dh) address.
 * A bucket whose server cannot take the connection (quiesced, overloaded,
 * a weight-0 server's empty bucket) gives none, unless sh's fallback flag
 * walks on round the table (ip_vs_sh_get_fallback).
 */
static __always_inline int xvs_sched_buckets(struct xvs_scan *scan, int fallback)
{
	if (!xvs_scan_try(scan, scan->start % scan->n) && fallback && scan->n > 1) {
		scan->start %= scan->n;
		bpf_loop(scan->n - 1, xvs_walk_step, scan, 0);
	}
	if (scan->real_id == XVS_REAL_NONE)
		return -XVS_STAT_DROP_NO_BACKEND;
	return scan->real_id;
}

/*
 * Schedule a new connection of service svc. Returns the real id (> 0) or
 * -reason (enum xvs_stat). A global function: the verifier checks it once,
 * not once per path into it.
 */
__noinline int xvs_schedule(const struct xvs_service *svc, const struct xvs_conn_key *key)
{
	const struct xvs_settings *set = xvs_settings_get();
	struct xvs_scan scan = {};
	__u8 sched;

	if (!svc || !key || !set)
		return -XVS_STAT_DROP_NO_BACKEND;
	sched = svc->sched;
	if (sched == XVS_SCHED_NONE || sched >= XVS_SCHED_MAX)
		return -XVS_STAT_DROP_SCHED_UNSUPPORTED;
	if (!svc->table_size)
		return -XVS_STAT_DROP_NO_BACKEND;

	scan.table_slot = XVS_SVC_TABLE_SLOT(svc->id, svc->active_table);
	scan.service_id = svc->id;
	scan.n = svc->table_size;
	if (!bpf_map_lookup_elem(&xvs_svc_tables, &scan.table_slot))
		return -XVS_STAT_DROP_NO_TABLE;

	switch (sched) {
	case XVS_SCHED_RR:
	case XVS_SCHED_WRR:
		return xvs_sched_walk(&scan);
	case XVS_SCHED_MH:
		scan.start = xvs_flow_hash(key, svc->flags, set->hash_seed);
		return xvs_sched_mh(&scan, svc->flags);
	case XVS_SCHED_SH:
		scan.start = xvs_flow_hash(key, svc->flags, set->hash_seed);
		return xvs_sched_buckets(&scan, svc->flags & XVS_SVC_F_SCHED_FALLBACK);
	case XVS_SCHED_DH:
		scan.start = xvs_dest_hash(key, set->hash_seed);
		return xvs_sched_buckets(&scan, 0);
	case XVS_SCHED_LBLC:
	case XVS_SCHED_LBLCR:
		return xvs_sched_locality(svc, key);
	default:
		/* lc, wlc, sed, nq, fo, ovf, twos */
		return xvs_sched_counts(svc);
	}
}

#endif /* XVS_SCHED_H */
