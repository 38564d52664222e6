/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Locality-based schedulers (ip_vs_lblc.c, ip_vs_lblcr.c): a destination
 * address keeps going to the same real server (lblc) or to the least
 * loaded of a set of servers (lblcr), kept per (service, destination) in
 * xvs_locality, and falls back to wlc when its server is overloaded.
 *
 * The entries are a cache written without locks (IPVS takes its
 * sched_lock): two CPUs changing one entry at once may lose a member or
 * repeat one, so every member is checked again whenever it is used. LRU
 * eviction stands in for IPVS's garbage collection of a full table, and an
 * entry unused for XVS_TIMEOUT_LOCALITY_S is treated as gone (IPVS's
 * periodic full expiration check).
 */
#ifndef XVS_LOCALITY_H
#define XVS_LOCALITY_H

#include "xvs/abi.h"
#include "xvs/maps.h"
#include "xvs/settings.h"
#include "xvs/stats.h"
#include "xvs/sched_lc.h"

#define XVS_LOCALITY_EXPIRATION_NS ((__u64)XVS_TIMEOUT_LOCALITY_S * 1000000000ULL)

/* One lblc/lblcr decision: the service, where its table is, and the destination. */
struct xvs_locality_ctx {
	__u32 table_slot;
	__u32 service_id;
	__u32 n;		/* table size */
	__u32 pad;
	__u64 now;
	struct xvs_locality_key key;
};

/* An empty entry to insert from: a value on the stack would cost 88 bytes of it. */
static const struct xvs_locality xvs_locality_empty;

/* Make real_id the destination's only server, in en or in a new entry. */
static __always_inline void xvs_locality_write(struct xvs_locality_ctx *lc,
					       struct xvs_locality *en, __u32 real_id)
{
	if (!en) {
		bpf_map_update_elem(&xvs_locality, &lc->key, &xvs_locality_empty, BPF_ANY);
		en = bpf_map_lookup_elem(&xvs_locality, &lc->key);
		if (!en)
			return;
	}
	en->lastuse_ns = lc->now;
	en->lastmod_ns = lc->now;
	en->real_ids[0] = real_id;
	en->count = 1;
}

static __always_inline int xvs_locality_fresh(const struct xvs_locality *en, __u64 now)
{
	return xvs_since(now, en->lastuse_ns) <= XVS_LOCALITY_EXPIRATION_NS;
}

/*
 * lblc: the destination's server if it still takes connections (weight > 0,
 * in the service) and is not overloaded in lblc's sense; else wlc's pick,
 * which becomes the destination's server. Like IPVS, the cached server is
 * not checked against its connection thresholds, only the fallback is.
 */
static __always_inline int xvs_sched_lblc(struct xvs_locality_ctx *lc)
{
	struct xvs_locality *en = bpf_map_lookup_elem(&xvs_locality, &lc->key);
	struct xvs_cand c = {};
	int id;

	if (en && en->count && xvs_locality_fresh(en, lc->now)) {
		en->lastuse_ns = lc->now;
		if (xvs_cand_of(en->real_ids[0], lc->service_id, &c) && c.weight &&
		    !xvs_locality_overloaded(lc->table_slot, lc->service_id, lc->n, &c)) {
			xvs_count(XVS_STAT_LOCALITY_HIT);
			return c.real_id;
		}
	}
	id = xvs_sched_least(lc->table_slot, lc->service_id, XVS_SCHED_WLC, lc->n);
	if (id > 0)
		xvs_locality_write(lc, en, id);
	return id;
}

/* A walk over an lblcr set: its least and most loaded members. */
struct xvs_set_scan {
	const struct xvs_locality *en;
	__u32 count;
	__u32 service_id;
	/* ip_vs_dest_set_min: available, not overloaded, least overhead per weight */
	__u32 min_id, min_weight;
	__u64 min_overhead;
	/* ip_vs_dest_set_max: weight > 0, most overhead per weight */
	__u32 max_idx, max_weight;
	__u64 max_overhead;
	/* a member no longer in the service (removed, down, reassigned): dropped first */
	__u32 dead_idx;
	__u8 have_max;
	__u8 have_dead;
	__u8 pad[2];
};

static long xvs_set_step(__u64 i, void *arg)
{
	struct xvs_set_scan *s = arg;
	struct xvs_cand c = {};
	__u32 idx = (__u32)i;
	__u64 oh;

	if (idx >= s->count || idx >= XVS_LOCALITY_SET_MAX)
		return 1;
	/* keep the bounded copy of the index: clang would index with the 64-bit i */
	asm volatile("" : "+r"(idx));
	idx &= XVS_LOCALITY_SET_MAX - 1;
	if (!xvs_cand_of(s->en->real_ids[idx], s->service_id, &c)) {
		s->dead_idx = idx;
		s->have_dead = 1;
		return 0;
	}
	oh = xvs_lc_overhead(&c);
	if (c.weight && (!s->have_max || s->max_overhead * c.weight < oh * s->max_weight)) {
		s->max_idx = idx;
		s->max_weight = c.weight;
		s->max_overhead = oh;
		s->have_max = 1;
	}
	if (c.available && (!s->min_id || s->min_overhead * c.weight > oh * s->min_weight)) {
		s->min_id = c.real_id;
		s->min_weight = c.weight;
		s->min_overhead = oh;
	}
	return 0;
}

/* Drop member idx: the last one takes its place. */
static __always_inline void xvs_set_erase(struct xvs_locality *en, __u32 idx, __u32 count, __u64 now)
{
	__u32 last = count - 1;

	if (idx >= XVS_LOCALITY_SET_MAX || last >= XVS_LOCALITY_SET_MAX || idx > last)
		return;
	en->real_ids[idx] = en->real_ids[last];
	en->count = last;
	en->lastmod_ns = now;
}

/*
 * lblcr: the least loaded member of the destination's set unless it is
 * overloaded in lblc's sense; else wlc's pick, which joins the set. A set
 * of more than one server not changed for XVS_TIMEOUT_LOCALITY_S loses its
 * most loaded member (IPVS's lblcr_expiration).
 */
static __always_inline int xvs_sched_lblcr(struct xvs_locality_ctx *lc)
{
	struct xvs_locality *en = bpf_map_lookup_elem(&xvs_locality, &lc->key);
	struct xvs_set_scan s = {};
	struct xvs_cand c = {};
	__u32 count, j;
	int id;

	if (!en || !xvs_locality_fresh(en, lc->now)) {
		id = xvs_sched_least(lc->table_slot, lc->service_id, XVS_SCHED_WLC, lc->n);
		if (id > 0)
			xvs_locality_write(lc, en, id);
		return id;
	}

	en->lastuse_ns = lc->now;
	count = en->count;
	if (count > XVS_LOCALITY_SET_MAX)
		count = XVS_LOCALITY_SET_MAX;
	s.en = en;
	s.count = count;
	s.service_id = lc->service_id;
	bpf_loop(XVS_LOCALITY_SET_MAX, xvs_set_step, &s, 0);

	if (count > 1 && xvs_since(lc->now, en->lastmod_ns) > XVS_LOCALITY_EXPIRATION_NS) {
		if (s.have_dead)
			xvs_set_erase(en, s.dead_idx, count, lc->now);
		else if (s.have_max)
			xvs_set_erase(en, s.max_idx, count, lc->now);
	}

	if (s.min_id && xvs_cand_of(s.min_id, lc->service_id, &c) &&
	    !xvs_locality_overloaded(lc->table_slot, lc->service_id, lc->n, &c)) {
		xvs_count(XVS_STAT_LOCALITY_HIT);
		return s.min_id;
	}

	id = xvs_sched_least(lc->table_slot, lc->service_id, XVS_SCHED_WLC, lc->n);
	if (id <= 0)
		return id;
	/* join the set, unless it is there (ip_vs_dest_set_insert with check) */
	count = en->count;
	for (j = 0; j < XVS_LOCALITY_SET_MAX; j++) {
		if (j >= count)
			break;
		if (en->real_ids[j] == (__u32)id)
			return id;
	}
	if (count < XVS_LOCALITY_SET_MAX) {
		en->real_ids[count] = id;
		en->count = count + 1;
		en->lastmod_ns = lc->now;
	} else if (s.have_dead && s.dead_idx < XVS_LOCALITY_SET_MAX) {
		en->real_ids[s.dead_idx] = id;
		en->lastmod_ns = lc->now;
	}
	return id;
}

/* lblc and lblcr for a new connection of svc (a global function, as xvs_sched_counts). */
__noinline int xvs_sched_locality(const struct xvs_service *svc, const struct xvs_conn_key *key)
{
	struct xvs_locality_ctx lc = {};

	if (!svc || !key || !svc->table_size)
		return -XVS_STAT_DROP_NO_BACKEND;
	lc.table_slot = XVS_SVC_TABLE_SLOT(svc->id, svc->active_table);
	lc.service_id = svc->id;
	lc.n = svc->table_size;
	lc.now = xvs_now();
	lc.key.daddr = key->vaddr;
	lc.key.service_id = svc->id;
	lc.key.family = key->family;
	if (svc->sched == XVS_SCHED_LBLC)
		return xvs_sched_lblc(&lc);
	return xvs_sched_lblcr(&lc);
}

#endif /* XVS_LOCALITY_H */
