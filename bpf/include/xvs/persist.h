/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Persistence (ipvsadm -p, ip_vs_sched_persist): a client, its address
 * masked with the service's persist_mask, keeps going to one real server.
 * What remembers the server is a template, an xvs_conns entry of kind
 * XVS_CONN_K_TEMPLATE keyed by the masked client and the service's key
 * (abi.h), so that a port-0 service's ports, and a service group's ranges,
 * share one template per client as IPVS's port-zero and fwmark templates do.
 *
 * A template's life, as IPVS keeps it: each connection it sends to its
 * server restarts its timeout (last_seen_ns), and it does not expire while
 * a connection it sent there lives (ctl_until_s, pushed forward whenever
 * such a connection's entry is refreshed). A template whose server was
 * removed or is down is dropped and the client scheduled afresh
 * (ip_vs_check_template); a quiesced server keeps its persistent clients
 * (IPVS's default, expire_quiescent_template = 0), an overloaded one too.
 *
 * Not copied: IPVS's special case for port 21, whose templates drop the
 * port so that a port-0 service on the same VIP shares them (FTP data).
 * A service group says that explicitly: the control port and the passive
 * range in one group, one template per client.
 */
#ifndef XVS_PERSIST_H
#define XVS_PERSIST_H

#include "xvs/abi.h"
#include "xvs/maps.h"
#include "xvs/stats.h"
#include "xvs/conntrack.h"
#include "xvs/sched.h"

/* The key of the template for `flow` of service svc, found under service key skey. */
static __always_inline void xvs_tmpl_key(struct xvs_conn_key *t, const struct xvs_conn_key *flow,
					 const struct xvs_service_key *skey,
					 const struct xvs_service *svc)
{
	t->caddr.v6[0] = flow->caddr.v6[0] & svc->persist_mask.v6[0];
	t->caddr.v6[1] = flow->caddr.v6[1] & svc->persist_mask.v6[1];
	t->caddr.v6[2] = flow->caddr.v6[2] & svc->persist_mask.v6[2];
	t->caddr.v6[3] = flow->caddr.v6[3] & svc->persist_mask.v6[3];
	t->vaddr = skey->addr;
	t->cport = 0;
	t->vport = skey->port;
	t->proto = skey->proto;
	t->family = flow->family;
	t->kind = XVS_CONN_K_TEMPLATE;
	t->pad0 = 0;
}

/* A template of this service that has not expired. */
static __always_inline int xvs_tmpl_live(const struct xvs_conn *t, const struct xvs_service *svc,
					 __u64 now)
{
	if (!(t->flags & XVS_CONN_F_TEMPLATE) || t->service_id != svc->id)
		return 0;
	if (xvs_since(now, t->last_seen_ns) <= (__u64)svc->persist_timeout_s * XVS_NSEC_PER_SEC)
		return 1;
	return now / XVS_NSEC_PER_SEC <= t->ctl_until_s;
}

/*
 * A new connection of persistent service svc: the real id of its client's
 * live template (refreshed: IPVS restarts a template's timer each time it
 * is used, and the new connection, alive until second until_s, extends
 * it), or 0 when there is none and the scheduler must pick. A template
 * that expired, or whose server is removed or down, is dropped. (Lookup,
 * schedule and create are three calls from the packet path, not nested,
 * to keep the verifier's combined stack small.)
 */
__noinline int xvs_persist_lookup(const struct xvs_service *svc, const struct xvs_service_key *skey,
				  const struct xvs_conn_key *flow, __u64 now, __u32 until_s)
{
	struct xvs_conn_key tkey = {};
	struct xvs_conn *t;
	struct xvs_real *real;
	__u32 id;

	if (!svc || !skey || !flow)
		return 0;
	xvs_tmpl_key(&tkey, flow, skey, svc);
	t = bpf_map_lookup_elem(&xvs_conns, &tkey);
	if (!t)
		return 0;
	if (xvs_tmpl_live(t, svc, now)) {
		id = t->real_id;
		real = xvs_real_get(id);
		if (real && xvs_real_alive(real, svc->id)) {
			t->last_seen_ns = now;
			if (t->ctl_until_s < until_s)
				t->ctl_until_s = until_s;
			xvs_count(XVS_STAT_PERSIST_HIT);
			return id;
		}
	}
	xvs_conn_remove(&tkey, t, XVS_CONN_END_EXPIRED);
	return 0;
}

/*
 * Remember the scheduler's pick real_id for the client in a new template,
 * kept at least until second until_s (the new connection's life). Returns
 * the real id to use: real_id, or the server of a template another CPU
 * made for the same client meanwhile.
 */
__noinline int xvs_persist_create(const struct xvs_service *svc, const struct xvs_service_key *skey,
				  const struct xvs_conn_key *flow, __u32 real_id, __u32 until_s)
{
	struct xvs_conn_key tkey = {};
	struct xvs_conn tmpl = {};
	struct xvs_conn *t;
	__u64 now = xvs_now();

	if (!svc || !skey || !flow)
		return real_id;
	xvs_tmpl_key(&tkey, flow, skey, svc);
	tmpl.last_seen_ns = now;
	tmpl.created_ns = now;
	tmpl.real_id = real_id;
	tmpl.service_id = svc->id;
	tmpl.flags = XVS_CONN_F_TEMPLATE;
	tmpl.ctl_until_s = until_s;
	if (!bpf_map_update_elem(&xvs_conns, &tkey, &tmpl, BPF_NOEXIST)) {
		xvs_count(XVS_STAT_PERSIST_NEW);
		xvs_real_conn_bind(real_id, XVS_CONN_F_TEMPLATE, XVS_CONN_S_NONE);
		return real_id;
	}
	t = bpf_map_lookup_elem(&xvs_conns, &tkey);
	if (t && xvs_tmpl_live(t, svc, now) && t->real_id != XVS_REAL_NONE) {
		if (t->ctl_until_s < until_s)
			t->ctl_until_s = until_s;
		return t->real_id;
	}
	xvs_count(XVS_STAT_CONN_INSERT_FAILED);
	return real_id;
}

/*
 * A connection of persistent service svc was refreshed and lives until
 * second until_s: its template lives at least as long. (A connection that
 * closes early leaves the template its earlier, longer promise.)
 */
__noinline int xvs_persist_touch(const struct xvs_service *svc, const struct xvs_service_key *skey,
				 const struct xvs_conn_key *flow, __u32 until_s)
{
	struct xvs_conn_key tkey = {};
	struct xvs_conn *t;

	if (!svc || !skey || !flow)
		return 0;
	xvs_tmpl_key(&tkey, flow, skey, svc);
	t = bpf_map_lookup_elem(&xvs_conns, &tkey);
	if (!t || !(t->flags & XVS_CONN_F_TEMPLATE) || t->service_id != svc->id)
		return 0;
	if (t->ctl_until_s < until_s)
		t->ctl_until_s = until_s;
	return 1;
}

#endif /* XVS_PERSIST_H */
