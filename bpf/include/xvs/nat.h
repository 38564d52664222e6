/* SPDX-License-Identifier: GPL-2.0 */
/*
 * nat (ipvsadm -m) and fullnat: translation in place, both ways.
 *
 *   client -> VIP:vport      nat:     client -> RIP:rport
 *                            fullnat: LIP:lport -> RIP:rport
 *   RIP:rport -> client      nat:     VIP:vport -> client
 *   RIP:rport -> LIP:lport   fullnat: VIP:vport -> client
 *
 * A new connection gets its xvs_conns entry (flags XVS_CONN_F_NAT, and
 * for fullnat FULLNAT with the local address and port it was given) and an
 * xvs_nat_rev entry under its replies' tuple, which leads a reply (a
 * packet for no service) back to the flow. Checksums are updated
 * incrementally (RFC 1624); a UDP datagram without a checksum keeps none.
 * ICMP errors quoting a translated packet are translated too, outer and
 * quoted headers, as IPVS does (ip_vs_nat_icmp): towards the real server
 * for errors about replies, towards the client for errors about what the
 * director sent the real server.
 *
 * The next hop comes from bpf_fib_lookup after translation: the kernel's
 * routes and neighbours, one interface (one-arm) or another (two-arm,
 * through the devmap). Without a neighbour entry the translated packet
 * goes to the kernel, which resolves the neighbour and forwards it (the
 * director forwards, and accepts local source addresses it did not send:
 * see the README); the next packets find the neighbour.
 */
#ifndef XVS_NAT_H
#define XVS_NAT_H

#include "xvs/abi.h"
#include "xvs/conntrack.h"
#include "xvs/csum.h"
#include "xvs/forward.h"
#include "xvs/icmp.h"
#include "xvs/maps.h"
#include "xvs/packet.h"
#include "xvs/realconns.h"
#include "xvs/settings.h"
#include "xvs/stats.h"

#define XVS_EEXIST 17
/* The deepest header offset translated (IPv4 options, IPv6 extension headers). */
#define XVS_NAT_OFF_MAX 512
/* CSUM_MANGLED_0: a computed UDP checksum of 0 is sent as all ones (RFC 768). */
#define XVS_UDP_CSUM_MANGLED ((__sum16)0xffff)

/* A nat connection's client side as the real server sees it, and the ids it was scheduled to. */
struct xvs_nat_src {
	union xvs_addr laddr;	/* fullnat: the local address; nat: unused */
	__be16 lport;		/* fullnat: the local port */
	__u16 pad0;
	__u32 real_id;
	__u32 service_id;
};

/* One translation: the packet's new addresses and ports. */
struct xvs_nat_rw {
	union xvs_addr saddr;	/* new source (outer source of an ICMP error) */
	union xvs_addr daddr;	/* new destination */
	union xvs_addr in_saddr; /* ICMP errors: the quoted packet's new source */
	union xvs_addr in_daddr; /* ICMP errors: its new destination */
	__be16 sport;		/* new ports; ICMP errors: the quoted packet's */
	__be16 dport;
	__u16 l2_len;
	__u16 l4_off;		/* TCP/UDP header, or the ICMP header */
	__u16 inner_off;	/* ICMP errors: quoted IP header */
	__u16 inner_l4_off;	/* ICMP errors: quoted ports */
	__u8 family;
	__u8 proto;		/* TCP/UDP; for an ICMP error the quoted packet's */
	__u8 icmp;		/* an ICMP error */
	__u8 keep_saddr;	/* leave the outer source as it is */
	__u8 dec_ttl;		/* routed here: TTL / hop limit - 1 */
	__u8 pad0[3];
};

/*
 * Per-CPU scratch space for the translation's larger structures: the
 * director's packet path already uses most of the 512-byte stack that it
 * and these functions share. XDP runs with preemption off, and no two of
 * the functions below hold the same member at once.
 */
struct xvs_nat_scratch {
	struct bpf_fib_lookup fib;
	struct xvs_nat_rw rw;
	struct xvs_conn conn;
	struct xvs_conn_key rk;
	struct xvs_conn_key want;
	struct xvs_conn_key flow;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xvs_nat_scratch);
} xvs_nat_scratch SEC(".maps");

static __always_inline struct xvs_nat_scratch *xvs_scratch(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&xvs_nat_scratch, &zero);
}

/*
 * The scratch translation, started afresh from the packet: its family,
 * protocol and header offsets, everything else zero. Scratch space is
 * reused across packets and paths (an ICMP error's keep_saddr must not
 * reach the next reply), so every path starts here.
 */
static __always_inline struct xvs_nat_rw *xvs_nat_rw_init(struct xvs_nat_scratch *sc,
							  const struct xvs_pkt *pkt)
{
	struct xvs_nat_rw *rw = &sc->rw;

	__builtin_memset(rw, 0, sizeof(*rw));
	rw->family = pkt->key.family;
	rw->proto = pkt->key.proto;
	rw->l2_len = pkt->l2_len;
	rw->l4_off = pkt->l4_off;
	if (pkt->icmp_error) {
		rw->icmp = 1;
		rw->inner_off = pkt->inner_off;
		rw->inner_l4_off = pkt->inner_l4_off;
	}
	return rw;
}

/* Accumulate RFC 1624 differences: ~old + new, per 16/32-bit word. */
static __always_inline __u64 csum_diff2(__u64 sum, __be16 old, __be16 new)
{
	return sum + (__u16)~old + new;
}

static __always_inline __u64 csum_diff4(__u64 sum, __be32 old, __be32 new)
{
	return sum + (__u32)~old + new;
}

static __always_inline __u64 csum_diff16(__u64 sum, const __be32 old[4], const __be32 new[4])
{
	return sum + (__u32)~old[0] + new[0] + (__u32)~old[1] + new[1] +
	       (__u32)~old[2] + new[2] + (__u32)~old[3] + new[3];
}

/* Apply accumulated differences to a checksum field. */
static __always_inline __sum16 csum_apply(__sum16 check, __u64 diff)
{
	return csum_fold64((__u16)~check + diff);
}

static __always_inline void *xvs_l3(void *data, __u16 l2_len)
{
	if (l2_len == XVS_ETH_VLAN_LEN)
		return data + XVS_ETH_VLAN_LEN;
	return data + sizeof(struct ethhdr);
}

/*
 * Rewrite the IP header's addresses (and TTL); returns the pseudo-header
 * difference for the transport checksum, or -1 (as all ones, which no sum
 * of differences reaches: callers test it with XVS_RW_FAILED).
 */
#define XVS_RW_FAILED ((__u64)-1)

static __always_inline __u64 xvs_rw_ip(void *data, void *data_end, const struct xvs_nat_rw *rw)
{
	__u64 ipsum = 0, pseudo = 0;

	if (rw->family == XVS_AF_INET) {
		struct iphdr *iph = xvs_l3(data, rw->l2_len);
		__be16 old_ttl_word;

		if ((void *)(iph + 1) > data_end)
			return XVS_RW_FAILED;
		if (!rw->keep_saddr) {
			ipsum = csum_diff4(ipsum, iph->saddr, rw->saddr.v4);
			iph->saddr = rw->saddr.v4;
		}
		ipsum = csum_diff4(ipsum, iph->daddr, rw->daddr.v4);
		iph->daddr = rw->daddr.v4;
		/* the pseudo-header holds the addresses only */
		pseudo = ipsum;
		if (rw->dec_ttl) {
			old_ttl_word = *(__be16 *)&iph->ttl;
			iph->ttl--;
			ipsum = csum_diff2(ipsum, old_ttl_word, *(__be16 *)&iph->ttl);
		}
		iph->check = csum_apply(iph->check, ipsum);
		return pseudo;
	}

	struct ipv6hdr *ip6h = xvs_l3(data, rw->l2_len);

	if ((void *)(ip6h + 1) > data_end)
		return XVS_RW_FAILED;
	if (!rw->keep_saddr) {
		pseudo = csum_diff16(pseudo, ip6h->saddr.in6_u.u6_addr32, rw->saddr.v6);
		__builtin_memcpy(&ip6h->saddr, rw->saddr.v6, 16);
	}
	pseudo = csum_diff16(pseudo, ip6h->daddr.in6_u.u6_addr32, rw->daddr.v6);
	__builtin_memcpy(&ip6h->daddr, rw->daddr.v6, 16);
	if (rw->dec_ttl)
		ip6h->hop_limit--;
	return pseudo;
}

/*
 * Translate a TCP or UDP packet in place. A global function: verified
 * once. Returns 0, or -1 when a header is out of reach.
 */
__noinline int xvs_nat_rewrite(struct xdp_md *ctx, const struct xvs_nat_rw *rw)
{
	void *data, *data_end;
	__sum16 *check;
	__be16 *ports;
	__u64 sum;
	__u32 off;

	if (!ctx || !rw)
		return -1;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	off = rw->l4_off;
	if (off > XVS_NAT_OFF_MAX)
		return -1;

	if (rw->proto == IPPROTO_TCP) {
		struct tcphdr *th = data + off;

		if ((void *)(th + 1) > data_end)
			return -1;
		ports = (__be16 *)th;
		check = &th->check;
	} else if (rw->proto == IPPROTO_UDP) {
		struct udphdr *uh = data + off;

		if ((void *)(uh + 1) > data_end)
			return -1;
		ports = (__be16 *)uh;
		check = &uh->check;
	} else {
		return -1;
	}

	sum = xvs_rw_ip(data, data_end, rw);
	if (sum == XVS_RW_FAILED)
		return -1;
	/* source and destination port lead both headers */
	sum = csum_diff2(sum, ports[0], rw->sport);
	sum = csum_diff2(sum, ports[1], rw->dport);
	ports[0] = rw->sport;
	ports[1] = rw->dport;
	if (rw->proto == IPPROTO_TCP) {
		*check = csum_apply(*check, sum);
	} else if (*check) {
		/* UDP: 0 was sent without a checksum (IPv4), which stays so */
		*check = csum_apply(*check, sum);
		if (!*check)
			*check = XVS_UDP_CSUM_MANGLED;
	}
	return 0;
}

/*
 * Translate an ICMP error in place: the outer header as any packet, the
 * quoted header and ports to what the receiver sent or will recognise,
 * the quoted IPv4 header checksum, and the ICMP checksum (over the quoted
 * bytes, plus for ICMPv6 the outer pseudo-header). The quoted transport
 * checksum is left alone, as IPVS does: nobody verifies it.
 */
__noinline int xvs_nat_rewrite_icmp(struct xdp_md *ctx, const struct xvs_nat_rw *rw)
{
	void *data, *data_end;
	__u32 off, in_off, ports_off;
	__be16 *ports;
	__u64 sum;

	if (!ctx || !rw)
		return -1;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	off = rw->l4_off;
	in_off = rw->inner_off;
	ports_off = rw->inner_l4_off;
	if (off > XVS_NAT_OFF_MAX || in_off > XVS_NAT_OFF_MAX || ports_off > XVS_NAT_OFF_MAX)
		return -1;
	ports = data + ports_off;
	if ((void *)(ports + 2) > data_end)
		return -1;

	if (rw->family == XVS_AF_INET) {
		struct icmphdr *icmph = data + off;
		struct iphdr *inner = data + in_off;
		__u64 isum = 0;
		__sum16 old_check;

		if ((void *)(icmph + 1) > data_end || (void *)(inner + 1) > data_end)
			return -1;
		if (xvs_rw_ip(data, data_end, rw) == XVS_RW_FAILED)
			return -1;
		isum = csum_diff4(isum, inner->saddr, rw->in_saddr.v4);
		isum = csum_diff4(isum, inner->daddr, rw->in_daddr.v4);
		inner->saddr = rw->in_saddr.v4;
		inner->daddr = rw->in_daddr.v4;
		old_check = inner->check;
		inner->check = csum_apply(old_check, isum);
		/* the ICMP checksum sums those same bytes */
		sum = csum_diff2(isum, old_check, inner->check);
		sum = csum_diff2(sum, ports[0], rw->sport);
		sum = csum_diff2(sum, ports[1], rw->dport);
		ports[0] = rw->sport;
		ports[1] = rw->dport;
		icmph->checksum = csum_apply(icmph->checksum, sum);
		return 0;
	}

	struct icmp6hdr *icmp6h = data + off;
	struct ipv6hdr *inner6 = data + in_off;

	if ((void *)(icmp6h + 1) > data_end || (void *)(inner6 + 1) > data_end)
		return -1;
	/* the ICMPv6 checksum covers the outer pseudo-header too */
	sum = xvs_rw_ip(data, data_end, rw);
	if (sum == XVS_RW_FAILED)
		return -1;
	sum = csum_diff16(sum, inner6->saddr.in6_u.u6_addr32, rw->in_saddr.v6);
	sum = csum_diff16(sum, inner6->daddr.in6_u.u6_addr32, rw->in_daddr.v6);
	__builtin_memcpy(&inner6->saddr, rw->in_saddr.v6, 16);
	__builtin_memcpy(&inner6->daddr, rw->in_daddr.v6, 16);
	sum = csum_diff2(sum, ports[0], rw->sport);
	sum = csum_diff2(sum, ports[1], rw->dport);
	ports[0] = rw->sport;
	ports[1] = rw->dport;
	icmp6h->icmp6_cksum = csum_apply(icmp6h->icmp6_cksum, sum);
	return 0;
}

/* The kernel's route and neighbour for the translated packet, from its ingress interface. */
static __always_inline int xvs_nat_fib(struct xdp_md *ctx, struct bpf_fib_lookup *fib,
				       const struct xvs_nat_rw *rw, __u32 l3_len)
{
	__builtin_memset(fib, 0, sizeof(*fib));
	fib->ifindex = ctx->ingress_ifindex;
	fib->l4_protocol = rw->icmp ? (rw->family == XVS_AF_INET ? IPPROTO_ICMP : IPPROTO_ICMPV6)
				    : rw->proto;
	fib->tot_len = l3_len;
	if (rw->family == XVS_AF_INET) {
		fib->family = XVS_AF_INET;
		fib->ipv4_src = rw->saddr.v4;
		fib->ipv4_dst = rw->daddr.v4;
	} else {
		fib->family = XVS_AF_INET6;
		__builtin_memcpy(fib->ipv6_src, rw->saddr.v6, 16);
		__builtin_memcpy(fib->ipv6_dst, rw->daddr.v6, 16);
	}
	return bpf_fib_lookup(ctx, fib, sizeof(*fib), 0);
}

/*
 * Send a translated packet: to the FIB's next hop; else to the real
 * server's next hop as userspace resolved it (client -> server only);
 * else to the kernel, which resolves the neighbour (or has no route) and
 * forwards it.
 */
static __always_inline int xvs_nat_out(struct xdp_md *ctx, const struct bpf_fib_lookup *fib,
				       int rc, const struct xvs_real *real)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end)
		return xvs_verdict(XVS_STAT_DROP_TRUNCATED, XDP_DROP);
	if (rc == BPF_FIB_LKUP_RET_SUCCESS) {
		__builtin_memcpy(eth->h_dest, fib->dmac, ETH_ALEN);
		__builtin_memcpy(eth->h_source, fib->smac, ETH_ALEN);
		return xvs_xmit(ctx, fib->ifindex);
	}
	if (real && (real->dst_mac[0] | real->dst_mac[1] | real->dst_mac[2] |
		     real->dst_mac[3] | real->dst_mac[4] | real->dst_mac[5])) {
		xvs_eth_to_real(eth, real);
		return xvs_xmit(ctx, real->ifindex);
	}
	if (rc == BPF_FIB_LKUP_RET_NO_NEIGH)
		return xvs_verdict(XVS_STAT_PASS_NAT_NO_NEIGH, XDP_PASS);
	return xvs_verdict(XVS_STAT_PASS_NAT_NO_ROUTE, XDP_PASS);
}

/*
 * The reply tuple rk is held by a connection past its timeout that the
 * sweeper has not removed yet: remove it (with its reply entry), as the
 * packet path treats such an entry as absent. Returns 1 if it did. A tuple
 * whose entry is gone altogether (LRU eviction) is left to the sweeper: a
 * new fullnat connection holds its tuple a moment before its entry exists.
 */
static __always_inline int xvs_fnat_reclaim(const struct xvs_conn_key *rk,
					    const struct xvs_settings *set, __u64 now)
{
	struct xvs_nat_scratch *sc = xvs_scratch();
	struct xvs_conn_key *owner;
	struct xvs_conn *conn;

	if (!sc)
		return 0;
	owner = bpf_map_lookup_elem(&xvs_nat_rev, rk);
	if (!owner)
		return 0;
	sc->flow = *owner;
	conn = bpf_map_lookup_elem(&xvs_conns, &sc->flow);
	if (!conn || !(conn->flags & XVS_CONN_F_NAT) ||
	    !xvs_conn_expired(conn, sc->flow.proto, set, now))
		return 0;
	xvs_conn_remove(&sc->flow, conn, XVS_CONN_END_EXPIRED);
	xvs_count(XVS_STAT_CONN_EXPIRED);
	return 1;
}

/*
 * fullnat: give a new connection a local address and port whose reply
 * tuple (RIP, rport, LIP, lport, protocol) no live connection holds, and
 * claim it with its xvs_nat_rev entry (an insert that fails if the tuple
 * is taken, so two CPUs never share one). Random tries, a bounded number;
 * if all are taken, the last one's holder may have expired unswept.
 * Returns 0 or the xvs_stat of the failure.
 */
static __always_inline int xvs_fnat_alloc(const struct xvs_pkt *pkt, const struct xvs_real *real,
					  struct xvs_conn *conn, struct xvs_conn_key *rk)
{
	const struct xvs_settings *set = xvs_settings_get();
	union xvs_addr *laddr;
	__u32 n, base, pmin, pmax, range, r, idx;
	int i, err;

	if (!set)
		return XVS_STAT_DROP_FNAT_NO_LADDR;
	if (pkt->key.family == XVS_AF_INET) {
		n = set->laddrs_v4;
		base = 0;
	} else {
		n = set->laddrs_v6;
		base = XVS_LADDRS_PER_FAMILY;
	}
	if (n > XVS_LADDRS_PER_FAMILY)
		n = XVS_LADDRS_PER_FAMILY;
	if (!n)
		return XVS_STAT_DROP_FNAT_NO_LADDR;
	pmin = set->fnat_port_min ?: XVS_FNAT_PORT_MIN;
	pmax = set->fnat_port_max ?: XVS_FNAT_PORT_MAX;
	if (pmax < pmin || !pmin) {
		pmin = XVS_FNAT_PORT_MIN;
		pmax = XVS_FNAT_PORT_MAX;
	}
	range = pmax - pmin + 1;

	for (i = 0; i < XVS_FNAT_PORT_TRIES; i++) {
		r = bpf_get_prandom_u32();
		idx = base + (r >> 16) % n;
		laddr = bpf_map_lookup_elem(&xvs_laddrs, &idx);
		if (!laddr)
			return XVS_STAT_DROP_FNAT_NO_LADDR;
		conn->laddr = *laddr;
		conn->lport = bpf_htons(pmin + (r & 0xffff) % range);
		xvs_nat_rev_key(rk, &pkt->key, conn, real);
		err = bpf_map_update_elem(&xvs_nat_rev, rk, &pkt->key, BPF_NOEXIST);
		if (!err)
			return 0;
		if (err != -XVS_EEXIST)
			return XVS_STAT_DROP_NAT_REV_FULL;
	}
	/* rk and conn->laddr/lport still hold the last tuple tried */
	if (xvs_fnat_reclaim(rk, set, conn->created_ns) &&
	    !bpf_map_update_elem(&xvs_nat_rev, rk, &pkt->key, BPF_NOEXIST))
		return 0;
	return XVS_STAT_DROP_FNAT_NO_PORT;
}

/*
 * Open a nat/fullnat connection to st->real_id: its entry and its reply
 * entry, or neither. If another CPU opened the same flow first (a
 * retransmitted SYN on another queue), its choice wins. Returns the real
 * id to use, with the client side in *st, or minus the xvs_stat of why
 * the packet must be dropped. A global function: verified once.
 */
__noinline int xvs_nat_conn_create(const struct xvs_pkt *pkt, const struct xvs_real *real,
				   __u64 now, struct xvs_nat_src *st)
{
	struct xvs_nat_scratch *sc = xvs_scratch();
	struct xvs_conn *conn, *other;
	struct xvs_conn_key *rk;
	int err;

	if (!pkt || !real || !st || !sc)
		return -XVS_STAT_DROP_BAD_REAL;
	conn = &sc->conn;
	rk = &sc->rk;
	__builtin_memset(conn, 0, sizeof(*conn));
	conn->last_seen_ns = now;
	conn->created_ns = now;
	conn->real_id = st->real_id;
	conn->service_id = st->service_id;
	conn->state = xvs_conn_initial_state(pkt);
	conn->flags = XVS_CONN_F_NAT;
	if (pkt->key.proto == IPPROTO_TCP && !xvs_tcp_may_open(pkt->tcp_flags))
		conn->flags |= XVS_CONN_F_SLOPPY;
	if (real->method == XVS_FWD_FULLNAT) {
		conn->flags |= XVS_CONN_F_FULLNAT;
		err = xvs_fnat_alloc(pkt, real, conn, rk);
		if (err)
			return -err;
	}

	if (!bpf_map_update_elem(&xvs_conns, &pkt->key, conn, BPF_NOEXIST)) {
		if (!(conn->flags & XVS_CONN_F_FULLNAT)) {
			/* the newest flow owns a nat reply tuple (xvs_nat_rev_remove) */
			xvs_nat_rev_key(rk, &pkt->key, conn, real);
			if (bpf_map_update_elem(&xvs_nat_rev, rk, &pkt->key, BPF_ANY)) {
				bpf_map_delete_elem(&xvs_conns, &pkt->key);
				return -XVS_STAT_DROP_NAT_REV_FULL;
			}
		}
		xvs_count(XVS_STAT_CONN_NEW);
		xvs_real_conn_bind(conn->real_id, conn->flags, conn->state);
		st->laddr = conn->laddr;
		st->lport = conn->lport;
		return conn->real_id;
	}

	/* the local port claimed above is nobody's now */
	if (conn->flags & XVS_CONN_F_FULLNAT) {
		xvs_nat_rev_key(rk, &pkt->key, conn, real);
		bpf_map_delete_elem(&xvs_nat_rev, rk);
	}
	other = bpf_map_lookup_elem(&xvs_conns, &pkt->key);
	if (other && other->service_id == st->service_id && other->real_id != XVS_REAL_NONE) {
		st->laddr = other->laddr;
		st->lport = other->lport;
		return other->real_id;
	}
	return -XVS_STAT_CONN_INSERT_FAILED;
}

/*
 * Client -> real server: destination VIP:vport := RIP:rport, and for
 * fullnat source := the connection's local address and port. Too big for
 * the egress MTU with DF: ICMP "fragmentation needed" to the client (from
 * the VIP), as for tun.
 */
__noinline int xvs_fwd_nat(struct xdp_md *ctx, const struct xvs_real *real,
			   const struct xvs_pkt *pkt, const struct xvs_nat_src *st)
{
	struct xvs_nat_scratch *sc = xvs_scratch();
	struct xvs_nat_rw *rw;
	int rc;

	if (!ctx || !real || !pkt || !st || !sc)
		return XDP_DROP;
	rw = xvs_nat_rw_init(sc, pkt);
	if (real->family != pkt->key.family)
		return xvs_verdict(XVS_STAT_DROP_BAD_REAL, XDP_DROP);
	rw->daddr = real->addr;
	rw->dport = real->port ?: pkt->key.vport;
	if (real->method == XVS_FWD_FULLNAT) {
		rw->saddr = st->laddr;
		rw->sport = st->lport;
	} else {
		rw->saddr = pkt->key.caddr;
		rw->sport = pkt->key.cport;
	}

	rc = xvs_nat_fib(ctx, &sc->fib, rw, pkt->l3_len);
	if (rc == BPF_FIB_LKUP_RET_FRAG_NEEDED) {
		if (!pkt->df)
			return xvs_verdict(XVS_STAT_DROP_TOO_BIG, XDP_DROP);
		if (pkt->key.family == XVS_AF_INET)
			return xvs_icmp4_too_big(ctx, pkt->l2_len, sc->fib.mtu_result);
		return xvs_icmp6_too_big(ctx, pkt->l2_len, sc->fib.mtu_result);
	}
	if (xvs_nat_rewrite(ctx, rw))
		return xvs_verdict(XVS_STAT_DROP_NAT_UNREACHABLE, XDP_DROP);
	xvs_count(real->method == XVS_FWD_FULLNAT ? XVS_STAT_FWD_FULLNAT : XVS_STAT_FWD_NAT);
	return xvs_nat_out(ctx, &sc->fib, rc, real);
}

/*
 * ICMP error from the client's side about a reply (quoted VIP:vport ->
 * client): to the real server, as if about what it sent (RIP:rport ->
 * client, or -> LIP:lport for fullnat, whose error also comes from the LIP).
 */
__noinline int xvs_nat_icmp_in(struct xdp_md *ctx, const struct xvs_real *real,
			       const struct xvs_pkt *pkt, const struct xvs_nat_src *st)
{
	struct xvs_nat_scratch *sc = xvs_scratch();
	struct xvs_nat_rw *rw;
	int fullnat, rc;

	if (!ctx || !real || !pkt || !st || !sc)
		return XDP_DROP;
	rw = xvs_nat_rw_init(sc, pkt);
	if (real->family != pkt->key.family)
		return xvs_verdict(XVS_STAT_DROP_BAD_REAL, XDP_DROP);
	fullnat = real->method == XVS_FWD_FULLNAT;
	rw->daddr = real->addr;
	rw->in_saddr = real->addr;
	rw->sport = real->port ?: pkt->key.vport;
	if (fullnat) {
		rw->saddr = st->laddr;
		rw->in_daddr = st->laddr;
		rw->dport = st->lport;
	} else {
		/* from whoever sent it (the client, a router); routed as from the client */
		rw->keep_saddr = 1;
		rw->saddr = pkt->key.caddr;
		rw->in_daddr = pkt->key.caddr;
		rw->dport = pkt->key.cport;
	}
	rc = xvs_nat_fib(ctx, &sc->fib, rw, pkt->l3_len);
	/* never an ICMP error about an ICMP error */
	if (rc == BPF_FIB_LKUP_RET_FRAG_NEEDED)
		return xvs_verdict(XVS_STAT_DROP_TOO_BIG, XDP_DROP);
	if (xvs_nat_rewrite_icmp(ctx, rw))
		return xvs_verdict(XVS_STAT_DROP_NAT_UNREACHABLE, XDP_DROP);
	xvs_count(XVS_STAT_NAT_ICMP);
	return xvs_nat_out(ctx, &sc->fib, rc, real);
}

/*
 * The live nat connection a reply tuple leads to: its flow key in
 * sc->flow, its entry and real server, and the time (read only after a
 * hit: packets for no service pay no clock). Returns 0, -1 when the tuple
 * is nobody's, or the xvs_stat of a stale entry. A stale nat entry is
 * dropped here; a fullnat one is left for the sweeper, which frees the
 * local port after the real server's TIME_WAIT (enum xvs_conn_end).
 */
static __always_inline int xvs_nat_find(const struct xvs_conn_key *reply,
					struct xvs_nat_scratch *sc,
					struct xvs_conn **connp, struct xvs_real **realp,
					const struct xvs_settings *set, __u64 *nowp)
{
	struct xvs_conn_key *rk = &sc->rk, *flow = &sc->flow;
	struct xvs_conn_key *rev;
	struct xvs_conn *conn;
	struct xvs_real *real;
	__u32 real_id;

	*rk = *reply;
	rk->kind = XVS_CONN_K_REPLY;
	rev = bpf_map_lookup_elem(&xvs_nat_rev, rk);
	if (!rev)
		return -1;
	*flow = *rev;
	conn = bpf_map_lookup_elem(&xvs_conns, flow);
	if (!conn || !(conn->flags & XVS_CONN_F_NAT))
		goto orphan;
	real_id = conn->real_id;
	real = bpf_map_lookup_elem(&xvs_reals, &real_id);
	if (!real)
		goto orphan;
	/* the flow may since have become another connection, with another reply tuple */
	xvs_nat_rev_key(&sc->want, flow, conn, real);
	if (!xvs_conn_key_eq(&sc->want, rk))
		goto orphan;
	*nowp = xvs_now();
	if (xvs_conn_expired(conn, flow->proto, set, *nowp)) {
		xvs_conn_remove(flow, conn, XVS_CONN_END_EXPIRED);
		xvs_count(XVS_STAT_CONN_EXPIRED);
		return XVS_STAT_PASS_NAT_STALE;
	}
	*connp = conn;
	*realp = real;
	return 0;
orphan:
	/* a nat tuple is the client's own; a fullnat one is a local port to keep a while */
	if (!(rk->vport != flow->cport || rk->vaddr.v6[0] != flow->caddr.v6[0] ||
	      rk->vaddr.v6[1] != flow->caddr.v6[1] || rk->vaddr.v6[2] != flow->caddr.v6[2] ||
	      rk->vaddr.v6[3] != flow->caddr.v6[3]))
		bpf_map_delete_elem(&xvs_nat_rev, rk);
	return XVS_STAT_PASS_NAT_STALE;
}

/* xvs_nat_from_real: the packet is a live connection's, translate it */
#define XVS_NAT_GO (-2)

/*
 * The start of both paths for packets from a real server's side (a reply;
 * an ICMP error about what the director sent it): the translation started
 * afresh, the live connection its tuple leads to (flow key in sc->flow),
 * and the TTL left to route it. Returns XVS_NAT_GO, -1 when the tuple is
 * nobody's, or a verdict.
 */
static __always_inline int xvs_nat_from_real(const struct xvs_pkt *pkt, struct xvs_nat_scratch *sc,
					     const struct xvs_settings *set, struct xvs_conn **connp,
					     struct xvs_real **realp, __u64 *nowp)
{
	int rc;

	xvs_nat_rw_init(sc, pkt);
	rc = xvs_nat_find(&pkt->key, sc, connp, realp, set, nowp);
	if (rc)
		return rc < 0 ? -1 : xvs_verdict(rc, XDP_PASS);
	/* the kernel answers "time exceeded" to the real server; not ours to translate */
	if (pkt->ttl <= 1)
		return xvs_verdict(XVS_STAT_PASS_NAT_TTL, XDP_PASS);
	return XVS_NAT_GO;
}

static __always_inline void xvs_stats_out(void *map, __u32 id, __u32 bytes)
{
	struct xvs_stats *st = bpf_map_lookup_elem(map, &id);

	if (!st)
		return;
	st->packets_out++;
	st->bytes_out += bytes;
}

/*
 * A packet for no service: a reply of a nat/fullnat connection? Then
 * source := VIP:vport (and for fullnat destination := the client), routed
 * by the director (TTL - 1). Returns a verdict, or -1 when it is nobody's
 * reply. A global function: verified once, only where nat is in use.
 */
__noinline int xvs_nat_reply(struct xdp_md *ctx, const struct xvs_pkt *pkt)
{
	const struct xvs_settings *set = xvs_settings_get();
	struct xvs_nat_scratch *sc = xvs_scratch();
	struct xvs_conn_key *flow;
	struct xvs_nat_rw *rw;
	struct xvs_conn *conn = NULL;
	struct xvs_real *real = NULL;
	__u32 service_id, real_id;
	__u64 now = 0;
	int rc;

	if (!ctx || !pkt || !set || !sc)
		return -1;
	rc = xvs_nat_from_real(pkt, sc, set, &conn, &real, &now);
	if (rc != XVS_NAT_GO)
		return rc;
	if (!conn || !real)
		return -1;
	flow = &sc->flow;
	rw = &sc->rw;

	rw->saddr = flow->vaddr;
	rw->sport = flow->vport;
	rw->daddr = flow->caddr;
	rw->dport = flow->cport;
	rc = xvs_nat_fib(ctx, &sc->fib, rw, pkt->l3_len);
	if (rc == BPF_FIB_LKUP_RET_FRAG_NEEDED) {
		/* untranslated, the kernel tells the real server the path MTU */
		if (pkt->df)
			return xvs_verdict(XVS_STAT_PASS_NAT_TOO_BIG, XDP_PASS);
		return xvs_verdict(XVS_STAT_DROP_TOO_BIG, XDP_DROP);
	}
	/* what goes to the kernel is routed there, which counts the hop itself */
	rw->dec_ttl = rc == BPF_FIB_LKUP_RET_SUCCESS;

	service_id = conn->service_id;
	real_id = conn->real_id;
	xvs_conn_touch(conn, pkt, now, XVS_TCP_DIR_OUTPUT);
	if (xvs_nat_rewrite(ctx, rw))
		return xvs_verdict(XVS_STAT_DROP_NAT_UNREACHABLE, XDP_DROP);
	xvs_count(XVS_STAT_NAT_REPLY);
	xvs_stats_out(&xvs_svc_stats, service_id, pkt->l3_len);
	xvs_stats_out(&xvs_real_stats, real_id, pkt->l3_len);
	return xvs_nat_out(ctx, &sc->fib, rc, NULL);
}

/*
 * An ICMP error about what the director sent a real server (quoted
 * client or LIP:lport -> RIP:rport): to the client, from the VIP, about
 * what the client sent (client -> VIP:vport). Returns a verdict, or -1
 * when the quoted packet is no nat connection's.
 */
__noinline int xvs_nat_icmp_out(struct xdp_md *ctx, const struct xvs_pkt *pkt)
{
	const struct xvs_settings *set = xvs_settings_get();
	struct xvs_nat_scratch *sc = xvs_scratch();
	struct xvs_conn_key *flow;
	struct xvs_nat_rw *rw;
	struct xvs_conn *conn = NULL;
	struct xvs_real *real = NULL;
	__u64 now = 0;
	int rc;

	if (!ctx || !pkt || !set || !sc)
		return -1;
	rc = xvs_nat_from_real(pkt, sc, set, &conn, &real, &now);
	if (rc != XVS_NAT_GO)
		return rc;
	flow = &sc->flow;
	rw = &sc->rw;

	rw->saddr = flow->vaddr;
	rw->daddr = flow->caddr;
	rw->in_saddr = flow->caddr;
	rw->in_daddr = flow->vaddr;
	rw->sport = flow->cport;
	rw->dport = flow->vport;
	rc = xvs_nat_fib(ctx, &sc->fib, rw, pkt->l3_len);
	if (rc == BPF_FIB_LKUP_RET_FRAG_NEEDED)
		return xvs_verdict(XVS_STAT_DROP_TOO_BIG, XDP_DROP);
	rw->dec_ttl = rc == BPF_FIB_LKUP_RET_SUCCESS;
	if (xvs_nat_rewrite_icmp(ctx, rw))
		return xvs_verdict(XVS_STAT_DROP_NAT_UNREACHABLE, XDP_DROP);
	xvs_count(XVS_STAT_NAT_ICMP);
	return xvs_nat_out(ctx, &sc->fib, rc, NULL);
}

#endif /* XVS_NAT_H */
