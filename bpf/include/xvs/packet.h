/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The director's view of a packet: parse it once into struct xvs_pkt
 * (offsets and values, no packet pointers, since the forwarders move the
 * packet with bpf_xdp_adjust_head), and decide early what cannot be ours.
 */
#ifndef XVS_PACKET_H
#define XVS_PACKET_H

#include "xvs/abi.h"
#include "xvs/parsing.h"
#include "xvs/stats.h"

struct xvs_pkt {
	/*
	 * The flow as the client sends it. For an ICMP error this is the
	 * quoted (reply) packet's tuple reversed, i.e. the connection's key.
	 */
	struct xvs_conn_key key;
	__u32 l3_len;		/* IP datagram length from its header, bytes */
	__u16 l2_len;		/* Ethernet header and VLAN tag, bytes: 14 or 18 */
	__u8 tcp_flags;		/* TCP flag byte, 0 for UDP/ICMP */
	__u8 tos;		/* IPv4 TOS / IPv6 traffic class */
	__u8 ttl;		/* IPv4 TTL / IPv6 hop limit */
	__u8 df;		/* may not be fragmented: IPv4 DF, or any IPv6 */
	__u8 icmp_error;	/* an ICMP error quoting one of our connections */
	__u8 ip_options;	/* IPv4 options / IPv6 extension headers skipped */
	/* Offsets from the frame's start, bytes (nat translates in place): */
	__u16 l4_off;		/* the TCP/UDP header; for an ICMP error, the ICMP header */
	__u16 inner_off;	/* ICMP errors: the quoted IP header */
	__u16 inner_l4_off;	/* ICMP errors: the quoted ports */
};

/* Results of xvs_parse_packet() besides an XDP verdict (>= 0). */
#define XVS_PKT_FLOW		(-1)	/* TCP/UDP: look for a service */
#define XVS_PKT_ICMP_ERROR	(-2)	/* ICMP error: look for the quoted connection */

static __always_inline int xvs_parse_failed(int err)
{
	switch (err) {
	case XVS_PARSE_FRAGMENT:
		return xvs_verdict(XVS_STAT_PASS_FRAGMENT, XDP_PASS);
	case XVS_PARSE_UNHANDLED:
		return xvs_verdict(XVS_STAT_PASS_IPV6_EXT, XDP_PASS);
	case XVS_PARSE_MALFORMED:
		return xvs_verdict(XVS_STAT_DROP_MALFORMED, XDP_DROP);
	default:
		return xvs_verdict(XVS_STAT_DROP_TRUNCATED, XDP_DROP);
	}
}

/* TCP or UDP ports into the key; anything else is not for a service. */
static __always_inline int xvs_parse_ports(struct hdr_cursor *nh, void *data_end,
					   struct xvs_pkt *pkt, int proto)
{
	struct tcphdr *th;
	struct udphdr *uh;
	int ret;

	switch (proto) {
	case IPPROTO_TCP:
		ret = parse_tcphdr(nh, data_end, &th);
		if (ret < 0)
			return xvs_parse_failed(ret);
		pkt->key.cport = th->source;
		pkt->key.vport = th->dest;
		pkt->tcp_flags = tcp_flag_byte(th);
		return XVS_PKT_FLOW;
	case IPPROTO_UDP:
		ret = parse_udphdr(nh, data_end, &uh);
		if (ret < 0)
			return xvs_parse_failed(ret);
		pkt->key.cport = uh->source;
		pkt->key.vport = uh->dest;
		return XVS_PKT_FLOW;
	}
	return xvs_verdict(XVS_STAT_PASS_NOT_SERVICE, XDP_PASS);
}

/*
 * The first 8 bytes of the quoted transport header, reversed into the key:
 * the quoted packet went server (VIP) -> client, the connection is keyed
 * client -> VIP. Returns XVS_PKT_ICMP_ERROR or a verdict.
 */
static __always_inline int xvs_parse_quoted_ports(void *l4, void *data_end,
						  struct xvs_pkt *pkt, __u8 proto, void *data)
{
	__be16 *ports = l4;

	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return xvs_verdict(XVS_STAT_PASS_ICMP_NO_CONN, XDP_PASS);
	if ((void *)(ports + 2) > data_end)
		return xvs_verdict(XVS_STAT_DROP_TRUNCATED, XDP_DROP);
	pkt->key.vport = ports[0];
	pkt->key.cport = ports[1];
	pkt->key.proto = proto;
	pkt->icmp_error = 1;
	pkt->inner_l4_off = l4 - data;
	return XVS_PKT_ICMP_ERROR;
}

/*
 * ICMP errors that IPVS relays (ip_vs_in_icmp): destination unreachable,
 * source quench, time exceeded, parameter problem. They must be addressed
 * to the source of the quoted packet (the VIP).
 */
static __always_inline int xvs_parse_icmp4_error(struct hdr_cursor *nh, void *data_end,
						 struct xvs_pkt *pkt, __be32 outer_daddr, void *data)
{
	struct icmphdr *icmph;
	struct iphdr *inner;
	int type;

	type = parse_icmphdr(nh, data_end, &icmph);
	if (type < 0)
		return xvs_parse_failed(type);
	if (type != ICMP_DEST_UNREACH && type != ICMP_SOURCE_QUENCH &&
	    type != ICMP_TIME_EXCEEDED && type != ICMP_PARAMETERPROB)
		return xvs_verdict(XVS_STAT_PASS_NOT_SERVICE, XDP_PASS);

	inner = nh->pos;
	if ((void *)(inner + 1) > data_end)
		return xvs_verdict(XVS_STAT_DROP_TRUNCATED, XDP_DROP);
	if (inner->version != 4 || inner->ihl < 5)
		return xvs_verdict(XVS_STAT_PASS_ICMP_NO_CONN, XDP_PASS);
	/* a non-first fragment quotes no ports */
	if (inner->frag_off & bpf_htons(XVS_IP_OFFSET))
		return xvs_verdict(XVS_STAT_PASS_ICMP_NO_CONN, XDP_PASS);
	if (inner->saddr != outer_daddr)
		return xvs_verdict(XVS_STAT_PASS_ICMP_NO_CONN, XDP_PASS);

	pkt->key.caddr.v4 = inner->daddr;
	pkt->key.vaddr.v4 = inner->saddr;
	pkt->inner_off = (void *)inner - data;
	return xvs_parse_quoted_ports(nh->pos + inner->ihl * 4, data_end, pkt,
				      inner->protocol, data);
}

/* ICMPv6 errors (types below 128); the quoted header's own extension
 * headers are not walked: such errors pass to the stack. */
static __always_inline int xvs_parse_icmp6_error(struct hdr_cursor *nh, void *data_end,
						 struct xvs_pkt *pkt,
						 const struct in6_addr *outer_daddr, void *data)
{
	struct icmp6hdr *icmp6h;
	struct ipv6hdr *inner;
	int type;

	type = parse_icmp6hdr(nh, data_end, &icmp6h);
	if (type < 0)
		return xvs_parse_failed(type);
	if (type != ICMPV6_DEST_UNREACH && type != ICMPV6_PKT_TOOBIG &&
	    type != ICMPV6_TIME_EXCEED && type != ICMPV6_PARAMPROB)
		return xvs_verdict(XVS_STAT_PASS_NOT_SERVICE, XDP_PASS);

	inner = nh->pos;
	if ((void *)(inner + 1) > data_end)
		return xvs_verdict(XVS_STAT_DROP_TRUNCATED, XDP_DROP);
	if (inner->version != 6)
		return xvs_verdict(XVS_STAT_PASS_ICMP_NO_CONN, XDP_PASS);
	if (inner->saddr.in6_u.u6_addr32[0] != outer_daddr->in6_u.u6_addr32[0] ||
	    inner->saddr.in6_u.u6_addr32[1] != outer_daddr->in6_u.u6_addr32[1] ||
	    inner->saddr.in6_u.u6_addr32[2] != outer_daddr->in6_u.u6_addr32[2] ||
	    inner->saddr.in6_u.u6_addr32[3] != outer_daddr->in6_u.u6_addr32[3])
		return xvs_verdict(XVS_STAT_PASS_ICMP_NO_CONN, XDP_PASS);

	__builtin_memcpy(pkt->key.caddr.v6, &inner->daddr, 16);
	__builtin_memcpy(pkt->key.vaddr.v6, &inner->saddr, 16);
	pkt->inner_off = (void *)inner - data;
	return xvs_parse_quoted_ports(inner + 1, data_end, pkt, inner->nexthdr, data);
}

/*
 * The transport header must end inside the IP datagram, not just inside the
 * frame (trailing bytes after tot_len / payload_len are not part of it): a
 * datagram that ends inside its TCP header is truncated, as the kernel says.
 */
static __always_inline int xvs_parse_ports_within(struct hdr_cursor *nh, void *data_end,
						  struct xvs_pkt *pkt, int proto, void *l3)
{
	int ret = xvs_parse_ports(nh, data_end, pkt, proto);

	if (ret == XVS_PKT_FLOW && nh->pos - l3 > pkt->l3_len)
		return xvs_verdict(XVS_STAT_DROP_TRUNCATED, XDP_DROP);
	return ret;
}

/*
 * Fill *pkt. Returns XVS_PKT_FLOW, XVS_PKT_ICMP_ERROR, or an XDP verdict
 * already counted (not IP, not TCP/UDP, fragments, broken headers).
 */
static __always_inline int xvs_parse_packet(struct xdp_md *ctx, struct xvs_pkt *pkt)
{
	void *data_end = (void *)(long)ctx->data_end;
	void *data = (void *)(long)ctx->data;
	struct hdr_cursor nh = { .pos = data };
	struct ipv6hdr *ip6h;
	struct ethhdr *eth;
	struct iphdr *iph;
	int eth_type, proto;
	__u8 ext = 0;
	void *l3;

	eth_type = parse_ethhdr(&nh, data_end, &eth);
	if (eth_type < 0)
		return xvs_verdict(XVS_STAT_DROP_TRUNCATED, XDP_DROP);
	pkt->l2_len = nh.pos - data;
	l3 = nh.pos;

	if (eth_type == bpf_htons(ETH_P_IP)) {
		proto = parse_ipv4(&nh, data_end, &iph);
		if (proto < 0)
			return xvs_parse_failed(proto);
		pkt->key.family = XVS_AF_INET;
		pkt->key.caddr.v4 = iph->saddr;
		pkt->key.vaddr.v4 = iph->daddr;
		pkt->key.proto = proto;
		pkt->l3_len = bpf_ntohs(iph->tot_len);
		pkt->tos = iph->tos;
		pkt->ttl = iph->ttl;
		pkt->df = !!(iph->frag_off & bpf_htons(XVS_IP_DF));
		pkt->ip_options = iph->ihl > 5;
		pkt->l4_off = nh.pos - data;
		if (proto == IPPROTO_ICMP)
			return xvs_parse_icmp4_error(&nh, data_end, pkt, iph->daddr, data);
		return xvs_parse_ports_within(&nh, data_end, pkt, proto, l3);
	}

	if (eth_type == bpf_htons(ETH_P_IPV6)) {
		proto = parse_ipv6(&nh, data_end, &ip6h, &ext);
		if (proto < 0)
			return xvs_parse_failed(proto);
		pkt->key.family = XVS_AF_INET6;
		__builtin_memcpy(pkt->key.caddr.v6, &ip6h->saddr, 16);
		__builtin_memcpy(pkt->key.vaddr.v6, &ip6h->daddr, 16);
		pkt->key.proto = proto;
		pkt->l3_len = sizeof(*ip6h) + bpf_ntohs(ip6h->payload_len);
		pkt->tos = (ip6h->priority << 4) | (ip6h->flow_lbl[0] >> 4);
		pkt->ttl = ip6h->hop_limit;
		pkt->df = 1;
		pkt->ip_options = ext;
		pkt->l4_off = nh.pos - data;
		if (proto == IPPROTO_ICMPV6)
			return xvs_parse_icmp6_error(&nh, data_end, pkt, &ip6h->daddr, data);
		return xvs_parse_ports_within(&nh, data_end, pkt, proto, l3);
	}

	return xvs_verdict(XVS_STAT_PASS_NOT_IP, XDP_PASS);
}

#endif /* XVS_PACKET_H */
