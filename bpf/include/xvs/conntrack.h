/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Connection table: TCP state as a dr/tun director sees it, timeouts, and
 * the entry's life. Expiry is shared with userspace: the sweeper deletes
 * entries past xvs_conn_timeout_s() (same rules), and the packet path
 * treats such an entry as absent even before the sweeper runs.
 */
#ifndef XVS_CONNTRACK_H
#define XVS_CONNTRACK_H

#include "xvs/abi.h"
#include "xvs/maps.h"
#include "xvs/packet.h"
#include "xvs/realconns.h"
#include "xvs/settings.h"

#define XVS_NSEC_PER_SEC 1000000000ULL

/* TCP events, in the order IPVS ranks them (tcp_state_idx): RST wins. */
enum xvs_tcp_event {
	XVS_TCP_EV_SYN = 0,
	XVS_TCP_EV_FIN = 1,
	XVS_TCP_EV_ACK = 2,
	XVS_TCP_EV_RST = 3,
	XVS_TCP_EV_MAX = 4,
};

#define sNO XVS_CONN_S_NONE
#define sES XVS_CONN_S_ESTABLISHED
#define sSS XVS_CONN_S_SYN_SENT
#define sSR XVS_CONN_S_SYN_RECV
#define sFW XVS_CONN_S_FIN_WAIT
#define sTW XVS_CONN_S_TIME_WAIT
#define sCL XVS_CONN_S_CLOSE
#define sCW XVS_CONN_S_CLOSE_WAIT
#define sLA XVS_CONN_S_LAST_ACK
#define sLI XVS_CONN_S_LISTEN
#define sSA XVS_CONN_S_SYNACK

/* Which IPVS table a packet drives (ip_vs_proto_tcp.c, tcp_state_off). */
enum xvs_tcp_dir {
	XVS_TCP_DIR_INPUT = 0,		/* client -> server of a nat/fullnat connection */
	XVS_TCP_DIR_OUTPUT = 1,		/* server -> client (a nat/fullnat reply) */
	XVS_TCP_DIR_INPUT_ONLY = 2,	/* client -> server, replies bypass the director (dr, tun) */
	XVS_TCP_DIR_MAX = 3,
};

/*
 * IPVS's TCP tables: INPUT and OUTPUT for connections whose replies the
 * director translates (nat, fullnat: IPVS masquerading connections, which
 * never carry IP_VS_CONN_F_NOOUTPUT), INPUT-ONLY for those whose replies
 * bypass it (dr, tun): only client packets drive those.
 */
static const __u8 xvs_tcp_states[XVS_TCP_DIR_MAX][XVS_TCP_EV_MAX][XVS_CONN_S_TCP_MAX] = {
	/* INPUT */
	{
	/*	   sNO, sES, sSS, sSR, sFW, sTW, sCL, sCW, sLA, sLI, sSA */
	/* syn */ { sSR, sES, sES, sSR, sSR, sSR, sSR, sSR, sSR, sSR, sSR },
	/* fin */ { sCL, sCW, sSS, sTW, sTW, sTW, sCL, sCW, sLA, sLI, sTW },
	/* ack */ { sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sCL, sLI, sES },
	/* rst */ { sCL, sCL, sCL, sSR, sCL, sCL, sCL, sCL, sLA, sLI, sSR },
	},
	/* OUTPUT */
	{
	/*	   sNO, sES, sSS, sSR, sFW, sTW, sCL, sCW, sLA, sLI, sSA */
	/* syn */ { sSS, sES, sSS, sSR, sSS, sSS, sSS, sSS, sSS, sLI, sSR },
	/* fin */ { sTW, sFW, sSS, sTW, sFW, sTW, sCL, sTW, sLA, sLI, sTW },
	/* ack */ { sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sLA, sES, sES },
	/* rst */ { sCL, sCL, sSS, sCL, sCL, sTW, sCL, sCL, sCL, sCL, sCL },
	},
	/* INPUT-ONLY */
	{
	/*	   sNO, sES, sSS, sSR, sFW, sTW, sCL, sCW, sLA, sLI, sSA */
	/* syn */ { sSR, sES, sES, sSR, sSR, sSR, sSR, sSR, sSR, sSR, sSR },
	/* fin */ { sCL, sFW, sSS, sTW, sFW, sTW, sCL, sCW, sLA, sLI, sTW },
	/* ack */ { sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sCL, sLI, sES },
	/* rst */ { sCL, sCL, sCL, sSR, sCL, sCL, sCL, sCL, sLA, sLI, sCL },
	},
};

#undef sNO
#undef sES
#undef sSS
#undef sSR
#undef sFW
#undef sTW
#undef sCL
#undef sCW
#undef sLA
#undef sLI
#undef sSA

static __always_inline int xvs_tcp_event(__u8 flags)
{
	if (flags & XVS_TCP_RST)
		return XVS_TCP_EV_RST;
	if (flags & XVS_TCP_SYN)
		return XVS_TCP_EV_SYN;
	if (flags & XVS_TCP_FIN)
		return XVS_TCP_EV_FIN;
	if (flags & XVS_TCP_ACK)
		return XVS_TCP_EV_ACK;
	return -1;
}

static __always_inline __u8 xvs_tcp_next_state(__u8 state, __u8 flags, __u32 dir)
{
	int ev = xvs_tcp_event(flags);

	if (ev < 0 || ev >= XVS_TCP_EV_MAX || dir >= XVS_TCP_DIR_MAX)
		return state;
	if (state >= XVS_CONN_S_TCP_MAX)
		state = XVS_CONN_S_NONE;
	return xvs_tcp_states[dir][ev][state];
}

/* The table a client packet of this connection drives. */
static __always_inline __u32 xvs_tcp_in_dir(__u8 conn_flags)
{
	return (conn_flags & XVS_CONN_F_NAT) ? XVS_TCP_DIR_INPUT : XVS_TCP_DIR_INPUT_ONLY;
}

/* A SYN may open a connection (IPVS: syn && !rst; SYN+ACK too, for active FTP). */
static __always_inline int xvs_tcp_may_open(__u8 flags)
{
	return (flags & XVS_TCP_SYN) && !(flags & XVS_TCP_RST);
}

/* A new connection's first SYN (not a SYN+ACK). */
static __always_inline int xvs_tcp_is_initial_syn(__u8 flags)
{
	return (flags & (XVS_TCP_SYN | XVS_TCP_ACK | XVS_TCP_RST)) == XVS_TCP_SYN;
}

/* Seconds a connection in this state lives without packets (ipvsadm --set). */
static __always_inline __u32 xvs_conn_timeout_s(__u8 proto, __u8 state,
						const struct xvs_settings *set)
{
	if (proto != IPPROTO_TCP)
		return set->udp_timeout_s ?: XVS_TIMEOUT_UDP_S;
	switch (state) {
	case XVS_CONN_S_ESTABLISHED:
		return set->tcp_timeout_s ?: XVS_TIMEOUT_TCP_S;
	case XVS_CONN_S_FIN_WAIT:
		return set->tcp_fin_timeout_s ?: XVS_TIMEOUT_TCP_FIN_S;
	case XVS_CONN_S_SYN_SENT:
		return XVS_TIMEOUT_SYN_SENT_S;
	case XVS_CONN_S_SYN_RECV:
		return XVS_TIMEOUT_SYN_RECV_S;
	case XVS_CONN_S_TIME_WAIT:
		return XVS_TIMEOUT_TIME_WAIT_S;
	case XVS_CONN_S_CLOSE:
		return XVS_TIMEOUT_CLOSE_S;
	case XVS_CONN_S_CLOSE_WAIT:
		return XVS_TIMEOUT_CLOSE_WAIT_S;
	case XVS_CONN_S_LAST_ACK:
		return XVS_TIMEOUT_LAST_ACK_S;
	case XVS_CONN_S_LISTEN:
		return XVS_TIMEOUT_LISTEN_S;
	case XVS_CONN_S_SYNACK:
		return XVS_TIMEOUT_SYNACK_S;
	}
	return XVS_TIMEOUT_NONE_S;
}

/*
 * last_seen_ns may lag the last packet by up to XVS_CONN_TOUCH_NS (see
 * xvs_conn_touch), so an entry expires only that much after its timeout: a
 * flow that keeps within its timeout is never expired early. The sweeper
 * applies the same slack.
 */
static __always_inline int xvs_conn_expired(const struct xvs_conn *conn, __u8 proto,
					    const struct xvs_settings *set, __u64 now)
{
	__u64 timeout = (__u64)xvs_conn_timeout_s(proto, conn->state, set) * XVS_NSEC_PER_SEC;

	return xvs_since(now, conn->last_seen_ns) > timeout + XVS_CONN_TOUCH_NS;
}

/*
 * The second of CLOCK_MONOTONIC until which a flow lives without more
 * packets: last_seen plus its state's timeout, the slack above, rounded up.
 */
static __always_inline __u32 xvs_conn_until_s(__u8 proto, __u8 state, __u64 last_seen_ns,
					      const struct xvs_settings *set)
{
	return (last_seen_ns + XVS_CONN_TOUCH_NS) / XVS_NSEC_PER_SEC +
	       xvs_conn_timeout_s(proto, state, set) + 1;
}

/* The state a flow's entry starts in. */
static __always_inline __u8 xvs_conn_initial_state(const struct xvs_pkt *pkt)
{
	if (pkt->key.proto != IPPROTO_TCP)
		return XVS_CONN_S_UDP;
	/* the INPUT and INPUT-ONLY tables agree on the first packet */
	return xvs_tcp_next_state(XVS_CONN_S_NONE, pkt->tcp_flags, XVS_TCP_DIR_INPUT_ONLY);
}

/*
 * A hit: advance the TCP state, refresh last_seen. The entry is written
 * only when the state changes or last_seen is XVS_CONN_TOUCH_NS old, so a
 * busy flow does not dirty its cache line on every packet. A state change
 * moves the flow between its server's active and inactive counts.
 * Returns 1 when the entry was written.
 */
static __always_inline int xvs_conn_touch(struct xvs_conn *conn, const struct xvs_pkt *pkt,
					  __u64 now, __u32 dir)
{
	__u8 old = conn->state;
	__u8 state = old;

	if (pkt->key.proto == IPPROTO_TCP)
		state = xvs_tcp_next_state(state, pkt->tcp_flags, dir);
	if (state != old) {
		conn->state = state;
		conn->last_seen_ns = now;
		xvs_real_conn_move(conn->real_id, old, state);
		return 1;
	}
	if (xvs_since(now, conn->last_seen_ns) >= XVS_CONN_TOUCH_NS) {
		conn->last_seen_ns = now;
		return 1;
	}
	return 0;
}

/*
 * The xvs_nat_rev key of a nat/fullnat connection: the tuple of its
 * replies, from the real server's address and port to the client's (nat)
 * or to the local address and port it was given (fullnat).
 */
static __always_inline void xvs_nat_rev_key(struct xvs_conn_key *rk,
					    const struct xvs_conn_key *flow,
					    const struct xvs_conn *conn,
					    const struct xvs_real *real)
{
	rk->caddr = real->addr;
	rk->cport = real->port ?: flow->vport;
	if (conn->flags & XVS_CONN_F_FULLNAT) {
		rk->vaddr = conn->laddr;
		rk->vport = conn->lport;
	} else {
		rk->vaddr = flow->caddr;
		rk->vport = flow->cport;
	}
	rk->proto = flow->proto;
	rk->family = flow->family;
	rk->kind = XVS_CONN_K_REPLY;
	rk->pad0 = 0;
}

/* Two connection keys are the same flow (5 x 8 bytes, pads included). */
static __always_inline int xvs_conn_key_eq(const struct xvs_conn_key *a,
					   const struct xvs_conn_key *b)
{
	const __u64 *x = (const __u64 *)a, *y = (const __u64 *)b;

	_Static_assert(sizeof(*a) == 40, "xvs_conn_key is five words");
	return !((x[0] ^ y[0]) | (x[1] ^ y[1]) | (x[2] ^ y[2]) | (x[3] ^ y[3]) | (x[4] ^ y[4]));
}

/*
 * Delete a nat/fullnat connection's reply entry, if it is still this
 * flow's (a nat reply tuple is shared by every flow that would produce it,
 * and the newest flow owns it).
 */
static __always_inline void xvs_nat_rev_remove(const struct xvs_conn_key *flow,
					       const struct xvs_conn *conn)
{
	struct xvs_conn_key rk;
	struct xvs_conn_key *owner;
	struct xvs_real *real;
	__u32 real_id = conn->real_id;

	real = bpf_map_lookup_elem(&xvs_reals, &real_id);
	if (!real)
		return;
	xvs_nat_rev_key(&rk, flow, conn, real);
	owner = bpf_map_lookup_elem(&xvs_nat_rev, &rk);
	if (owner && xvs_conn_key_eq(owner, flow))
		bpf_map_delete_elem(&xvs_nat_rev, &rk);
}

/* Why the packet path removes an entry: its timeout passed, or it ended early. */
enum xvs_conn_end {
	XVS_CONN_END_EXPIRED = 0,
	/*
	 * Reused ports, a replaced service, a gone server, a changed method.
	 * A fullnat connection's local port then stays claimed (its reply
	 * entry is left, an orphan the sweeper removes after the real
	 * server's TIME_WAIT): the real server may still hold the old
	 * connection on it, and another client's SYN on that tuple would
	 * meet it with timestamps of its own (PAWS) and be refused.
	 */
	XVS_CONN_END_EARLY = 1,
};

/*
 * Delete an entry the packet path found (stale, expired, reused, its
 * server gone) and uncount it; a nat connection's reply entry goes with
 * it (a fullnat one only when it expired: see enum xvs_conn_end). Only
 * the CPU whose delete succeeds uncounts, so two CPUs dropping the same
 * entry count it once.
 */
static __always_inline void xvs_conn_remove(const struct xvs_conn_key *key,
					    const struct xvs_conn *conn, int end)
{
	__u32 real_id = conn->real_id;
	__u8 flags = conn->flags;
	__u8 state = conn->state;

	if ((flags & XVS_CONN_F_NAT) &&
	    (end == XVS_CONN_END_EXPIRED || !(flags & XVS_CONN_F_FULLNAT)))
		xvs_nat_rev_remove(key, conn);
	if (!bpf_map_delete_elem(&xvs_conns, key))
		xvs_real_conn_unbind(real_id, flags, state);
}

/*
 * Insert a new entry. If another CPU inserted the same flow first (a SYN
 * retransmitted onto another queue), its choice wins: returns the real id
 * to use.
 */
static __always_inline __u32 xvs_conn_create(const struct xvs_pkt *pkt, __u32 service_id,
					     __u32 real_id, __u64 now)
{
	struct xvs_conn conn = {
		.last_seen_ns = now,
		.created_ns = now,
		.real_id = real_id,
		.service_id = service_id,
		.state = xvs_conn_initial_state(pkt),
	};
	struct xvs_conn *other;

	if (pkt->key.proto == IPPROTO_TCP && !xvs_tcp_may_open(pkt->tcp_flags))
		conn.flags |= XVS_CONN_F_SLOPPY;

	if (!bpf_map_update_elem(&xvs_conns, &pkt->key, &conn, BPF_NOEXIST)) {
		xvs_count(XVS_STAT_CONN_NEW);
		xvs_real_conn_bind(real_id, conn.flags, conn.state);
		return real_id;
	}
	other = bpf_map_lookup_elem(&xvs_conns, &pkt->key);
	if (other && other->service_id == service_id && other->real_id != XVS_REAL_NONE)
		return other->real_id;
	xvs_count(XVS_STAT_CONN_INSERT_FAILED);
	return real_id;
}

#endif /* XVS_CONNTRACK_H */
