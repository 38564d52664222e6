/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Forwarding methods: dr (MAC rewrite) and tun (IP-in-IP / IP-in-IPv6),
 * and the transmit step they share with nat and fullnat (xvs/nat.h).
 */
#ifndef XVS_FORWARD_H
#define XVS_FORWARD_H

#include "xvs/abi.h"
#include "xvs/csum.h"
#include "xvs/hash.h"
#include "xvs/icmp.h"
#include "xvs/maps.h"
#include "xvs/packet.h"
#include "xvs/settings.h"
#include "xvs/stats.h"

/*
 * Out of the ingress interface (XDP_TX), or to another one: through the
 * devmap if the interface is in it (bulked flushes), else bpf_redirect().
 */
static __always_inline int xvs_xmit(struct xdp_md *ctx, __u32 ifindex)
{
	int action;

	if (!ifindex || ifindex == ctx->ingress_ifindex)
		return xvs_verdict(XVS_STAT_XDP_TX, XDP_TX);
	if (xvs_cfg_tx_via_devmap) {
		/* a missing key returns the flags' action, XDP_PASS: fall back */
		action = bpf_redirect_map(&xvs_tx_ports, ifindex, XDP_PASS);
		if (action == XDP_REDIRECT)
			return xvs_verdict(XVS_STAT_XDP_REDIRECT, action);
	}
	return xvs_verdict(XVS_STAT_XDP_REDIRECT, bpf_redirect(ifindex, 0));
}

/* Destination MAC := the real server's (next hop's), source := the director's. */
static __always_inline void xvs_eth_to_real(struct ethhdr *eth, const struct xvs_real *real)
{
	__builtin_memcpy(eth->h_dest, real->dst_mac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, real->src_mac, ETH_ALEN);
}

/*
 * dr: the IP packet is untouched (the real server holds the VIP on a
 * non-ARPing interface); only the frame is readdressed.
 */
static __always_inline int xvs_fwd_dr(struct xdp_md *ctx, const struct xvs_real *real)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end)
		return xvs_verdict(XVS_STAT_DROP_TRUNCATED, XDP_DROP);
	xvs_eth_to_real(eth, real);
	xvs_count(XVS_STAT_FWD_DR);
	return xvs_xmit(ctx, real->ifindex);
}

/* The ethertype field that precedes the IP header: after the VLAN tag if any. */
static __always_inline void xvs_l2_set_proto(void *l2, const __u32 l2_len, __be16 proto)
{
	if (l2_len == XVS_ETH_VLAN_LEN)
		((struct vlan_hdr *)(l2 + sizeof(struct ethhdr)))->h_vlan_encapsulated_proto = proto;
	else
		((struct ethhdr *)l2)->h_proto = proto;
}

/*
 * Make room for an outer header of outer_len bytes between the L2 header
 * and the inner packet: grow the head and move the L2 header to the new
 * front. Returns the new start of the frame or NULL.
 */
static __always_inline void *xvs_tun_push(struct xdp_md *ctx, const __u32 l2_len,
					  const __u32 outer_len, void **data_end)
{
	void *data;

	if (bpf_xdp_adjust_head(ctx, -(int)outer_len))
		return NULL;
	data = (void *)(long)ctx->data;
	*data_end = (void *)(long)ctx->data_end;
	if (data + outer_len + l2_len > *data_end)
		return NULL;
	/* no overlap: outer_len (20 or 40) >= l2_len (14 or 18) */
	__builtin_memcpy(data, data + outer_len, l2_len);
	return data;
}

/*
 * Outer header fields taken from the inner packet, as IPVS does
 * (ip_vs_prepare_tunneled_skb): TOS/traffic class, TTL/hop limit (unless
 * xvs_settings.tun_ttl), and DF (always for an IPv6 inner packet).
 */
static __always_inline int xvs_tun_push_ipv4(struct xdp_md *ctx, const __u32 l2_len,
					     const struct xvs_real *real,
					     const struct xvs_pkt *pkt, __be32 saddr, __u8 ttl)
{
	void *data, *data_end;
	struct iphdr *iph;

	data = xvs_tun_push(ctx, l2_len, sizeof(*iph), &data_end);
	if (!data)
		return xvs_verdict(XVS_STAT_DROP_ADJUST_FAILED, XDP_DROP);
	xvs_l2_set_proto(data, l2_len, bpf_htons(ETH_P_IP));
	iph = data + l2_len;

	iph->version = 4;
	iph->ihl = 5;
	iph->tos = pkt->tos;
	iph->tot_len = bpf_htons(sizeof(*iph) + pkt->l3_len);
	iph->id = bpf_get_prandom_u32();
	iph->frag_off = pkt->df ? bpf_htons(XVS_IP_DF) : 0;
	iph->ttl = ttl;
	iph->protocol = pkt->key.family == XVS_AF_INET ? IPPROTO_IPIP : IPPROTO_IPV6;
	iph->check = 0;
	iph->saddr = saddr;
	iph->daddr = real->addr.v4;
	iph->check = ipv4_hdr_csum(iph);

	xvs_eth_to_real(data, real);
	xvs_count(XVS_STAT_FWD_TUN);
	return xvs_xmit(ctx, real->ifindex);
}

static __always_inline int xvs_tun_push_ipv6(struct xdp_md *ctx, const __u32 l2_len,
					     const struct xvs_real *real,
					     const struct xvs_pkt *pkt,
					     const union xvs_addr *saddr, __u8 ttl, __u32 flow_hash)
{
	void *data, *data_end;
	struct ipv6hdr *ip6h;

	data = xvs_tun_push(ctx, l2_len, sizeof(*ip6h), &data_end);
	if (!data)
		return xvs_verdict(XVS_STAT_DROP_ADJUST_FAILED, XDP_DROP);
	xvs_l2_set_proto(data, l2_len, bpf_htons(ETH_P_IPV6));
	ip6h = data + l2_len;

	/* the flow label spreads tunnels of different flows over ECMP paths (RFC 6438) */
	*(__be32 *)ip6h = bpf_htonl((6 << 28) | ((__u32)pkt->tos << 20) | (flow_hash & 0xfffff));
	ip6h->payload_len = bpf_htons(pkt->l3_len);
	ip6h->nexthdr = pkt->key.family == XVS_AF_INET ? IPPROTO_IPIP : IPPROTO_IPV6;
	ip6h->hop_limit = ttl;
	__builtin_memcpy(&ip6h->saddr, saddr->v6, 16);
	__builtin_memcpy(&ip6h->daddr, real->addr.v6, 16);

	xvs_eth_to_real(data, real);
	xvs_count(XVS_STAT_FWD_TUN);
	return xvs_xmit(ctx, real->ifindex);
}

static __always_inline int xvs_addr_is_zero(const union xvs_addr *a)
{
	return !(a->v6[0] | a->v6[1] | a->v6[2] | a->v6[3]);
}

/*
 * tun: encapsulate towards the real server, or, when the result would
 * exceed the path MTU and the client's packet may not be fragmented, answer
 * the client with ICMP too-big (its next-hop MTU leaves room for the outer
 * header). A packet that may be fragmented cannot be: XDP has no
 * fragmentation; it is dropped and counted. A global function: verified
 * once, whatever path led here.
 */
__noinline int xvs_fwd_tun(struct xdp_md *ctx, const struct xvs_real *real,
			   const struct xvs_pkt *pkt)
{
	const struct xvs_settings *set = xvs_settings_get();
	const union xvs_addr *saddr;
	__u32 outer_len, mtu, hash;
	__u8 ttl;

	if (!real || !pkt || !set)
		return XDP_DROP;

	outer_len = real->family == XVS_AF_INET6 ? sizeof(struct ipv6hdr) : sizeof(struct iphdr);
	mtu = xvs_real_mtu(set, real->mtu);
	if (pkt->l3_len + outer_len > mtu) {
		/* never an ICMP error about an ICMP error */
		if (pkt->icmp_error || !pkt->df)
			return xvs_verdict(XVS_STAT_DROP_TOO_BIG, XDP_DROP);
		if (mtu < outer_len)
			return xvs_verdict(XVS_STAT_DROP_TOO_BIG, XDP_DROP);
		if (pkt->key.family == XVS_AF_INET)
			return xvs_icmp4_too_big(ctx, pkt->l2_len, mtu - outer_len);
		return xvs_icmp6_too_big(ctx, pkt->l2_len, mtu - outer_len);
	}

	saddr = &real->tun_src;
	if (xvs_addr_is_zero(saddr))
		saddr = real->family == XVS_AF_INET6 ? &set->tun_src_v6 : &set->tun_src_v4;
	if (xvs_addr_is_zero(saddr))
		return xvs_verdict(XVS_STAT_DROP_NO_TUN_SRC, XDP_DROP);
	ttl = set->tun_ttl ?: pkt->ttl;

	if (real->family == XVS_AF_INET6) {
		hash = xvs_flow_hash(&pkt->key, 0, set->hash_seed);
		if (pkt->l2_len == XVS_ETH_VLAN_LEN)
			return xvs_tun_push_ipv6(ctx, XVS_ETH_VLAN_LEN, real, pkt, saddr, ttl, hash);
		return xvs_tun_push_ipv6(ctx, sizeof(struct ethhdr), real, pkt, saddr, ttl, hash);
	}
	if (real->family != XVS_AF_INET)
		return xvs_verdict(XVS_STAT_DROP_BAD_REAL, XDP_DROP);
	if (pkt->l2_len == XVS_ETH_VLAN_LEN)
		return xvs_tun_push_ipv4(ctx, XVS_ETH_VLAN_LEN, real, pkt, saddr->v4, ttl);
	return xvs_tun_push_ipv4(ctx, sizeof(struct ethhdr), real, pkt, saddr->v4, ttl);
}

/*
 * The forwarding switch for dr and tun (nat and fullnat need their
 * connection's state: xvs_fwd_nat). Returns an XDP verdict, with
 * XVS_ACT_REPLIED set when the packet became an answer to the client instead.
 */
static __always_inline int xvs_forward(struct xdp_md *ctx, const struct xvs_real *real,
				       const struct xvs_pkt *pkt)
{
	switch (real->method) {
	case XVS_FWD_DR:
		return xvs_fwd_dr(ctx, real);
	case XVS_FWD_TUN:
		return xvs_fwd_tun(ctx, real, pkt);
	}
	return xvs_verdict(XVS_STAT_DROP_BAD_REAL, XDP_DROP);
}

#endif /* XVS_FORWARD_H */
