/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The schedulers that compare real servers' connection counts, decided per
 * new connection over the service's table of real ids (one slot per server,
 * in the service's order): lc, wlc, sed, nq, fo, ovf and twos, with the
 * rules of the Linux IPVS modules of the same names (ip_vs_lc.c, ...).
 *
 * The walk over the servers runs in bpf_loop(): the callback is verified
 * once, so a service of 256 (or 4096) servers costs no verifier states,
 * only time, and services of other schedulers never enter it.
 *
 * Every rule skips servers that may not take a new connection: weight 0 or
 * quiesced, removed, down, and overloaded by their thresholds
 * (IP_VS_DEST_F_OVERLOAD, see realconns.h). Ties go to the server listed
 * first, because IPVS replaces its pick only when another is strictly
 * better. Counts are compared cross-multiplied in 64 bits, as IPVS does
 * ((__s64)loh * dw > (__s64)doh * lw), so no division and no rounding.
 */
#ifndef XVS_SCHED_LC_H
#define XVS_SCHED_LC_H

#include "xvs/abi.h"
#include "xvs/maps.h"
#include "xvs/realconns.h"

/* A real server as the counting schedulers see it. */
struct xvs_cand {
	__u32 real_id;
	__u32 weight;		/* 0 when quiesced */
	__u32 active;		/* never negative */
	__u32 inactive;
	__u8 available;		/* may take a new connection: weight > 0, not overloaded */
	__u8 pad[3];
};

/*
 * Real server real_id as a candidate of service service_id. Returns 1 when
 * it is in the service (IPVS: on the destination list: not removed, not
 * down) and *c is filled in, else 0.
 */
static __always_inline int xvs_cand_of(__u32 real_id, __u32 service_id, struct xvs_cand *c)
{
	struct xvs_real_conns *rc;
	struct xvs_real *real;

	if (real_id == XVS_REAL_NONE)
		return 0;
	real = bpf_map_lookup_elem(&xvs_reals, &real_id);
	rc = bpf_map_lookup_elem(&xvs_real_conns, &real_id);
	if (!real || !rc || real->service_id != service_id ||
	    (real->flags & (XVS_REAL_F_REMOVED | XVS_REAL_F_DOWN)))
		return 0;
	c->real_id = real_id;
	c->weight = (real->flags & XVS_REAL_F_QUIESCED) ? 0 : real->weight;
	c->active = xvs_count_of(rc->active);
	c->inactive = xvs_count_of(rc->inactive);
	c->available = c->weight && !xvs_real_overloaded(real, rc);
	return 1;
}

/* The server in slot `slot` of the live table: as xvs_cand_of, or -1 when the table is gone. */
static __always_inline int xvs_cand_get(__u32 table_slot, __u32 service_id, __u32 slot,
					struct xvs_cand *c)
{
	void *table = bpf_map_lookup_elem(&xvs_svc_tables, &table_slot);

	if (!table)
		return -1;
	return xvs_cand_of(xvs_table_get(table, slot), service_id, c);
}

/* ip_vs_dest_conn_overhead: an active connection weighs 256 inactive ones. */
static __always_inline __u64 xvs_lc_overhead(const struct xvs_cand *c)
{
	return ((__u64)c->active << 8) + c->inactive;
}

/* The state of one walk: the rule, and the best server so far. */
struct xvs_least {
	__u32 table_slot;
	__u32 service_id;
	__u32 sched;		/* enum xvs_sched: which rule */
	__u32 best_id;		/* XVS_REAL_NONE until one is found */
	__u32 best_weight;
	__u32 pad;
	__u64 best_overhead;
};

static __always_inline void xvs_least_take(struct xvs_least *s, const struct xvs_cand *c,
					   __u64 overhead)
{
	s->best_id = c->real_id;
	s->best_weight = c->weight;
	s->best_overhead = overhead;
}

/* bpf_loop callback: look at slot i. */
static long xvs_least_step(__u64 i, void *arg)
{
	struct xvs_least *s = arg;
	struct xvs_cand c = {};
	__u64 oh;
	int r;

	r = xvs_cand_get(s->table_slot, s->service_id, (__u32)i, &c);
	if (r < 0)
		return 1;
	if (!r || !c.available)
		return 0;

	switch (s->sched) {
	case XVS_SCHED_LC:
		/* ip_vs_lc: least overhead, weights aside */
		oh = xvs_lc_overhead(&c);
		if (!s->best_id || oh < s->best_overhead)
			xvs_least_take(s, &c, oh);
		return 0;
	case XVS_SCHED_FO:
		/* ip_vs_fo: the highest weight */
		if (c.weight > s->best_weight)
			xvs_least_take(s, &c, 0);
		return 0;
	case XVS_SCHED_OVF:
		/* ip_vs_ovf: the highest weight among servers with active <= weight */
		if (c.active <= c.weight && c.weight > s->best_weight)
			xvs_least_take(s, &c, 0);
		return 0;
	case XVS_SCHED_NQ:
		/* ip_vs_nq: the first idle server, at once */
		if (!c.active) {
			xvs_least_take(s, &c, 1);
			return 1;
		}
		oh = c.active + 1;
		break;
	case XVS_SCHED_SED:
		/* ip_vs_sed: (active + 1) / weight */
		oh = c.active + 1;
		break;
	default:
		/* ip_vs_wlc (and lblc/lblcr's fallback): overhead / weight */
		oh = xvs_lc_overhead(&c);
		break;
	}
	/* best_overhead / best_weight > oh / weight, cross-multiplied */
	if (!s->best_id || s->best_overhead * c.weight > oh * s->best_weight)
		xvs_least_take(s, &c, oh);
	return 0;
}

/*
 * lc, wlc, sed, nq, fo, ovf (and wlc for lblc/lblcr): one walk over the
 * table. Returns the real id or -XVS_STAT_DROP_NO_BACKEND.
 */
static __always_inline int xvs_sched_least(__u32 table_slot, __u32 service_id, __u32 sched,
					   __u32 n)
{
	struct xvs_least s = {
		.table_slot = table_slot,
		.service_id = service_id,
		.sched = sched,
	};

	bpf_loop(n, xvs_least_step, &s, 0);
	return s.best_id ? (int)s.best_id : -XVS_STAT_DROP_NO_BACKEND;
}

/*
 * twos (ip_vs_twos.c): two servers drawn at random in proportion to their
 * weights, then the one with the lower overhead per weight (the first
 * draw on a tie). Two walks: the total weight, then the draws.
 */
struct xvs_twos {
	__u32 table_slot;
	__u32 service_id;
	__u32 total;		/* walk 1: sum of available weights */
	__u32 last_id;		/* walk 1: the last available server */
	__s64 left1;		/* walk 2: draw 1, minus the weights walked so far */
	__s64 left2;
	__u32 id1, weight1;
	__u32 id2, weight2;
	__u64 overhead1, overhead2;
};

static long xvs_twos_total_step(__u64 i, void *arg)
{
	struct xvs_twos *s = arg;
	struct xvs_cand c = {};
	int r = xvs_cand_get(s->table_slot, s->service_id, (__u32)i, &c);

	if (r < 0)
		return 1;
	if (r && c.available) {
		s->total += c.weight;
		s->last_id = c.real_id;
	}
	return 0;
}

static long xvs_twos_draw_step(__u64 i, void *arg)
{
	struct xvs_twos *s = arg;
	struct xvs_cand c = {};
	int r = xvs_cand_get(s->table_slot, s->service_id, (__u32)i, &c);

	if (r < 0)
		return 1;
	if (!r || !c.available)
		return 0;
	s->left1 -= c.weight;
	s->left2 -= c.weight;
	if (s->left1 <= 0 && !s->id1) {
		s->id1 = c.real_id;
		s->weight1 = c.weight;
		s->overhead1 = xvs_lc_overhead(&c);
	}
	if (s->left2 <= 0 && !s->id2) {
		s->id2 = c.real_id;
		s->weight2 = c.weight;
		s->overhead2 = xvs_lc_overhead(&c);
	}
	return s->id1 && s->id2;
}

static __always_inline int xvs_sched_twos(__u32 table_slot, __u32 service_id, __u32 n)
{
	struct xvs_twos s = {
		.table_slot = table_slot,
		.service_id = service_id,
	};

	bpf_loop(n, xvs_twos_total_step, &s, 0);
	if (!s.last_id)
		return -XVS_STAT_DROP_NO_BACKEND;
	/* draws in [0, total], inclusive as in IPVS (total + 1 values) */
	s.left1 = bpf_get_prandom_u32() % (s.total + 1);
	s.left2 = bpf_get_prandom_u32() % (s.total + 1);
	bpf_loop(n, xvs_twos_draw_step, &s, 0);
	if (!s.id1)
		return s.last_id;	/* the table changed under us */
	if (s.id2 && (__u64)s.weight2 * s.overhead1 > (__u64)s.weight1 * s.overhead2)
		return s.id2;
	return s.id1;
}

/*
 * lblc/lblcr's is_overloaded(): a server with more active connections
 * than its weight counts as overloaded when some server of the service
 * has fewer than half its weight active (weight-0 ones never do).
 */
struct xvs_light {
	__u32 table_slot;
	__u32 service_id;
	__u8 found;
	__u8 pad[7];
};

static long xvs_light_step(__u64 i, void *arg)
{
	struct xvs_light *s = arg;
	struct xvs_cand c = {};
	int r = xvs_cand_get(s->table_slot, s->service_id, (__u32)i, &c);

	if (r < 0)
		return 1;
	if (r && (__u64)c.active * 2 < c.weight) {
		s->found = 1;
		return 1;
	}
	return 0;
}

static __always_inline int xvs_locality_overloaded(__u32 table_slot, __u32 service_id, __u32 n,
						   const struct xvs_cand *c)
{
	struct xvs_light s = { .table_slot = table_slot, .service_id = service_id };

	if (c->active <= c->weight)
		return 0;
	bpf_loop(n, xvs_light_step, &s, 0);
	return s.found;
}

/*
 * lc, wlc, sed, nq, fo, ovf and twos for a new connection of svc. Returns
 * the real id or -reason (enum xvs_stat). A global function: verified
 * once, and its stack is not stacked on the table schedulers'.
 */
__noinline int xvs_sched_counts(const struct xvs_service *svc)
{
	__u32 table_slot;

	if (!svc || !svc->table_size)
		return -XVS_STAT_DROP_NO_BACKEND;
	table_slot = XVS_SVC_TABLE_SLOT(svc->id, svc->active_table);
	if (svc->sched == XVS_SCHED_TWOS)
		return xvs_sched_twos(table_slot, svc->id, svc->table_size);
	return xvs_sched_least(table_slot, svc->id, svc->sched, svc->table_size);
}

#endif /* XVS_SCHED_LC_H */
