// SPDX-License-Identifier: GPL-2.0
/*
 * xvs director: the XDP packet path (DESIGN.md, "The data plane").
 *
 *   parse -> ICMP error? follow its connection
 *         -> service lookup: (VIP, proto, port), then (VIP, proto, 0),
 *            then the service groups' port ranges of (VIP, proto)
 *         -> not a service: a nat/fullnat reply? translate it back;
 *            else XDP_PASS, untouched
 *         -> connection lookup: a hit keeps its real server
 *         -> miss: persistence template or scheduler (TCP only on a SYN),
 *            create the entry, count it on its real server
 *         -> forward (dr, tun, nat, fullnat) -> count
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "xvs/abi.h"
#include "xvs/maps.h"
#include "xvs/settings.h"
#include "xvs/stats.h"
#include "xvs/packet.h"
#include "xvs/conntrack.h"
#include "xvs/sched.h"
#include "xvs/persist.h"
#include "xvs/forward.h"
#include "xvs/nat.h"

static __always_inline int xvs_is_nat(const struct xvs_real *real)
{
	return real->method == XVS_FWD_NAT || real->method == XVS_FWD_FULLNAT;
}

/* Puts the ABI enums into this object's BTF for userspace; never read. */
const volatile struct xvs_abi_enums xvs_abi_enums;

/* Forwarded packets count for their service and real server; replies don't. */
static __always_inline int xvs_account(int action, __u32 service_id, __u32 real_id,
				       const struct xvs_pkt *pkt, int new_conn)
{
	if (action & XVS_ACT_REPLIED)
		return action & ~XVS_ACT_REPLIED;
	if (action != XDP_TX && action != XDP_REDIRECT)
		return action;
	xvs_stats_in(&xvs_svc_stats, service_id, pkt->l3_len, new_conn);
	xvs_stats_in(&xvs_real_stats, real_id, pkt->l3_len, new_conn);
	if (pkt->ip_options)
		xvs_count(pkt->key.family == XVS_AF_INET ? XVS_STAT_IPV4_OPTIONS
							 : XVS_STAT_IPV6_EXT_SKIPPED);
	return action;
}

/*
 * An ICMP error whose quoted packet is a reply of one of our connections
 * goes to that connection's real server (ip_vs_in_icmp): the server's
 * stack is the one that must learn about it. It neither creates nor
 * refreshes the entry.
 */
static __always_inline int xvs_handle_icmp_error(struct xdp_md *ctx, struct xvs_pkt *pkt)
{
	const struct xvs_settings *set;
	struct xvs_real *real;
	struct xvs_conn *conn;
	__u32 real_id, service_id;
	int action;

	set = xvs_settings_get();
	if (!set)
		return XDP_ABORTED;
	conn = bpf_map_lookup_elem(&xvs_conns, &pkt->key);
	if (!conn && set->nat) {
		/* about a packet the director translated towards a real server? */
		action = xvs_nat_icmp_out(ctx, pkt);
		if (action >= 0)
			return action;
	}
	/* an expired entry is no connection, whether or not the sweeper has removed it */
	if (!conn || xvs_conn_expired(conn, pkt->key.proto, set, xvs_now()))
		return xvs_verdict(XVS_STAT_PASS_ICMP_NO_CONN, XDP_PASS);
	real_id = conn->real_id;
	service_id = conn->service_id;
	real = xvs_real_get(real_id);
	if (!real || !xvs_real_alive(real, service_id))
		return xvs_verdict(XVS_STAT_DROP_REAL_UNAVAILABLE, XDP_DROP);

	if (conn->flags & XVS_CONN_F_NAT) {
		struct xvs_nat_src st = {
			.laddr = conn->laddr, .lport = conn->lport,
			.real_id = real_id, .service_id = service_id,
		};

		if (!xvs_is_nat(real))
			return xvs_verdict(XVS_STAT_DROP_BAD_REAL, XDP_DROP);
		return xvs_account(xvs_nat_icmp_in(ctx, real, pkt, &st), service_id, real_id, pkt, 0);
	}
	action = xvs_forward(ctx, real, pkt);
	if (action == XDP_TX || action == XDP_REDIRECT)
		xvs_count(XVS_STAT_ICMP_FORWARDED);
	return xvs_account(action, service_id, real_id, pkt, 0);
}

/* Binary search steps over XVS_GROUP_RANGES_MAX ranges: 2^steps > ranges. */
#define XVS_GROUP_SEARCH_STEPS 7
_Static_assert((1 << XVS_GROUP_SEARCH_STEPS) > XVS_GROUP_RANGES_MAX, "group search too short");

/*
 * The id of the service group matching the flow, 0 if none (group ids
 * start at 1): the (VIP, protocol)'s sorted ranges, binary-searched for
 * the last one starting at or below the port. A global function, so that
 * the search's branches are verified once, not on every path after it.
 */
__noinline int xvs_group_find(const struct xvs_conn_key *flow)
{
	struct xvs_group_key gkey = {};
	struct xvs_group_ranges *gr;
	struct xvs_port_range *r;
	__u32 lo = 0, hi, mid;
	__u16 port;
	int i;

	if (!flow)
		return 0;
	gkey.addr = flow->vaddr;
	gkey.proto = flow->proto;
	gkey.family = flow->family;
	gr = bpf_map_lookup_elem(&xvs_grp_ranges, &gkey);
	if (!gr)
		return 0;
	port = bpf_ntohs(flow->vport);
	hi = gr->count;
	if (hi > XVS_GROUP_RANGES_MAX)
		hi = XVS_GROUP_RANGES_MAX;

	for (i = 0; i < XVS_GROUP_SEARCH_STEPS; i++) {
		if (lo >= hi)
			break;
		mid = (lo + hi) / 2;
		if (mid >= XVS_GROUP_RANGES_MAX)
			return 0;
		if (gr->ranges[mid].first <= port)
			lo = mid + 1;
		else
			hi = mid;
	}
	/* lo ranges start at or below port; the last of them may hold it */
	if (lo == 0 || lo > XVS_GROUP_RANGES_MAX)
		return 0;
	r = &gr->ranges[lo - 1];
	if (port > r->last)
		return 0;
	return r->group_id;
}

/* The flow's service, and in *key the key it was found under. */
static __always_inline struct xvs_service *xvs_service_lookup(const struct xvs_conn_key *flow,
							      struct xvs_service_key *key,
							      const struct xvs_settings *set)
{
	struct xvs_service *svc;
	__u32 group;

	key->addr = flow->vaddr;
	key->port = flow->vport;
	key->proto = flow->proto;
	key->family = flow->family;
	svc = bpf_map_lookup_elem(&xvs_services, key);
	if (svc)
		return svc;
	if (set->port0_services) {
		key->port = 0;
		svc = bpf_map_lookup_elem(&xvs_services, key);
		if (svc)
			return svc;
	}
	if (!set->service_groups)
		return NULL;
	group = xvs_group_find(flow);
	if (!group)
		return NULL;
	/* a group's entry: its id where the VIP goes, port 0, proto 0 (abi.h) */
	__builtin_memset(&key->addr, 0, sizeof(key->addr));
	key->addr.v4 = bpf_htonl(group);
	key->port = 0;
	key->proto = 0;
	return bpf_map_lookup_elem(&xvs_services, key);
}

static __always_inline int xvs_handle_flow(struct xdp_md *ctx, struct xvs_pkt *pkt)
{
	const struct xvs_settings *set;
	struct xvs_service_key skey;
	struct xvs_service *found;
	struct xvs_service svc;
	struct xvs_conn *conn = NULL;
	struct xvs_real *real = NULL;
	struct xvs_nat_src st = {};
	__u32 real_id = XVS_REAL_NONE;
	int one_packet, is_tcp, sched, persistent, action;
	int new_conn = 0;
	__u32 until_s = 0;
	__u64 now;

	set = xvs_settings_get();
	if (!set)
		return XDP_ABORTED;
	found = xvs_service_lookup(&pkt->key, &skey, set);
	if (!found) {
		/* only while some real server uses nat: the director's own traffic pays nothing */
		if (set->nat) {
			action = xvs_nat_reply(ctx, pkt);
			if (action >= 0)
				return action;
		}
		return xvs_verdict(XVS_STAT_PASS_NOT_SERVICE, XDP_PASS);
	}
	/* one consistent copy: userspace may replace the entry (a table flip) meanwhile */
	svc = *found;

	now = xvs_now();
	is_tcp = pkt->key.proto == IPPROTO_TCP;
	one_packet = !is_tcp && (svc.flags & XVS_SVC_F_ONE_PACKET);
	persistent = svc.flags & XVS_SVC_F_PERSISTENT;

	if (!one_packet)
		conn = bpf_map_lookup_elem(&xvs_conns, &pkt->key);
	if (conn) {
		if (xvs_conn_expired(conn, pkt->key.proto, set, now)) {
			/* whatever the sweeper has not removed yet */
			xvs_conn_remove(&pkt->key, conn, XVS_CONN_END_EXPIRED);
			xvs_count(XVS_STAT_CONN_EXPIRED);
		} else if (conn->service_id != svc.id) {
			/* of a service since replaced: stale */
			xvs_conn_remove(&pkt->key, conn, XVS_CONN_END_EARLY);
			xvs_count(XVS_STAT_CONN_EXPIRED);
		} else if (is_tcp && xvs_tcp_is_initial_syn(pkt->tcp_flags) &&
			   (conn->state == XVS_CONN_S_TIME_WAIT ||
			    conn->state == XVS_CONN_S_CLOSE ||
			    (conn->state == XVS_CONN_S_FIN_WAIT && !(conn->flags & XVS_CONN_F_NAT)))) {
			/*
			 * A new connection reusing the ports of a closed one: schedule it
			 * afresh. For dr/tun FIN_WAIT counts as closed because this
			 * director sees only the client's side, where a cleanly closed
			 * connection stays in FIN_WAIT (IPVS conn_reuse_mode bit 2, for
			 * connections without output); otherwise a client reusing a port
			 * within tcpfin seconds would join its old connection's server.
			 */
			xvs_conn_remove(&pkt->key, conn, XVS_CONN_END_EARLY);
			xvs_count(XVS_STAT_CONN_REUSED);
		} else {
			real = xvs_real_get(conn->real_id);
			if (real && !(conn->flags & XVS_CONN_F_NAT) != !xvs_is_nat(real)) {
				/* the server's method changed under the flow: a stale entry */
				xvs_conn_remove(&pkt->key, conn, XVS_CONN_END_EARLY);
				xvs_count(XVS_STAT_CONN_EXPIRED);
				real = NULL;
			} else if (real && xvs_real_alive(real, svc.id)) {
				real_id = conn->real_id;
				st.laddr = conn->laddr;
				st.lport = conn->lport;
				/* a refreshed flow keeps its persistence template alive */
				if (xvs_conn_touch(conn, pkt, now, xvs_tcp_in_dir(conn->flags)) && persistent)
					xvs_persist_touch(&svc, &skey, &pkt->key,
							  xvs_conn_until_s(pkt->key.proto, conn->state,
									   now, set));
			} else if (set->expire_nodest_conn) {
				xvs_conn_remove(&pkt->key, conn, XVS_CONN_END_EARLY);
				xvs_count(XVS_STAT_CONN_NODEST_EXPIRED);
			} else {
				return xvs_verdict(XVS_STAT_DROP_REAL_UNAVAILABLE, XDP_DROP);
			}
		}
	}

	if (real_id == XVS_REAL_NONE) {
		/*
		 * IPVS opens TCP connections only on a SYN: anything else
		 * without an entry goes to the stack, which (holding the VIP)
		 * resets it. sloppy_tcp schedules it anyway, for directors
		 * that take over flows (mh scale-out, failover).
		 */
		if (is_tcp && !xvs_tcp_may_open(pkt->tcp_flags) &&
		    (!set->sloppy_tcp || (pkt->tcp_flags & XVS_TCP_RST)))
			return xvs_verdict(XVS_STAT_PASS_TCP_NOT_SYN, XDP_PASS);
		sched = 0;
		if (persistent) {
			/* the template lives at least as long as the connection it now makes */
			until_s = one_packet ? 0 : xvs_conn_until_s(pkt->key.proto,
								     xvs_conn_initial_state(pkt),
								     now, set);
			sched = xvs_persist_lookup(&svc, &skey, &pkt->key, now, until_s);
		}
		if (sched <= 0) {
			sched = xvs_schedule(&svc, &pkt->key);
			if (sched <= 0)
				return xvs_verdict(sched ? -sched : XVS_STAT_DROP_NO_BACKEND,
						   XDP_DROP);
			if (persistent)
				sched = xvs_persist_create(&svc, &skey, &pkt->key, sched, until_s);
		}
		real_id = sched;
		real = xvs_real_get(real_id);
		if (!real)
			return xvs_verdict(XVS_STAT_DROP_BAD_REAL, XDP_DROP);
		if (xvs_is_nat(real)) {
			/* replies need the entry: no one-packet scheduling (the writer refuses it) */
			if (one_packet)
				return xvs_verdict(XVS_STAT_DROP_BAD_REAL, XDP_DROP);
			st.real_id = real_id;
			st.service_id = svc.id;
			sched = xvs_nat_conn_create(pkt, real, now, &st);
			if (sched <= 0)
				return xvs_verdict(sched ? -sched : XVS_STAT_DROP_BAD_REAL, XDP_DROP);
			real_id = sched;
		} else if (one_packet) {
			xvs_count(XVS_STAT_ONE_PACKET);
		} else {
			real_id = xvs_conn_create(pkt, svc.id, real_id, now);
		}
		real = xvs_real_get(real_id);
		new_conn = 1;
	}
	if (!real)
		return xvs_verdict(XVS_STAT_DROP_BAD_REAL, XDP_DROP);

	if (xvs_is_nat(real))
		action = xvs_fwd_nat(ctx, real, pkt, &st);
	else
		action = xvs_forward(ctx, real, pkt);
	return xvs_account(action, svc.id, real_id, pkt, new_conn);
}

SEC("xdp")
int xvs_director(struct xdp_md *ctx)
{
	struct xvs_pkt pkt = {};
	int ret;

	xvs_count(XVS_STAT_RX);
	ret = xvs_parse_packet(ctx, &pkt);
	if (ret == XVS_PKT_ICMP_ERROR)
		return xvs_handle_icmp_error(ctx, &pkt);
	if (ret == XVS_PKT_FLOW)
		return xvs_handle_flow(ctx, &pkt);
	return ret;
}

char LICENSE[] SEC("license") = "GPL";
