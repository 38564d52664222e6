/* SPDX-License-Identifier: GPL-2.0 */
/*
 * ICMP errors the director itself sends: "fragmentation needed" (ICMP type
 * 3 code 4, RFC 1191) and ICMPv6 "packet too big" (RFC 4443), turned around
 * in place and sent back out of the ingress interface with XDP_TX, when a
 * tunnelled packet would exceed the path MTU to its real server. Without
 * them the client's PMTU discovery would stall on a silent drop.
 */
#ifndef XVS_ICMP_H
#define XVS_ICMP_H

#include "xvs/abi.h"
#include "xvs/csum.h"
#include "xvs/parsing.h"
#include "xvs/stats.h"

/* The whole error may not exceed 576 bytes (RFC 1812 4.3.2.3) / 1280 (RFC 4443 2.4(c)). */
#define XVS_ICMP4_ERR_MAX	576
#define XVS_ICMP6_ERR_MAX	1280
#define XVS_ICMP4_QUOTE_MAX	(XVS_ICMP4_ERR_MAX - sizeof(struct iphdr) - sizeof(struct icmphdr))
#define XVS_ICMP6_QUOTE_MAX	(XVS_ICMP6_ERR_MAX - sizeof(struct ipv6hdr) - sizeof(struct icmp6hdr))
#define XVS_IPV6_MIN_MTU	1280
#define XVS_IPV4_MIN_MTU	68

/* Marks a verdict that answered the client instead of forwarding. */
#define XVS_ACT_REPLIED		(1 << 8)

#define XVS_ETH_VLAN_LEN	(sizeof(struct ethhdr) + sizeof(struct vlan_hdr))

/*
 * Hide a pointer's value from the compiler. After the checksum loop clang
 * would store the checksum through the loop's first bounds-check pointer
 * (same address), whose range the verifier forgot on the impossible
 * "packet shorter than its checked header" path; through the header
 * pointer itself the store verifies.
 */
#define xvs_barrier_var(var) asm volatile("" : "+r"(var))

static __always_inline void xvs_eth_swap(struct ethhdr *eth)
{
	__u8 tmp[ETH_ALEN];

	__builtin_memcpy(tmp, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, tmp, ETH_ALEN);
}

/*
 * Keep l2_len + quote bytes of the packet, then grow the head by grow
 * bytes and move the L2 header (Ethernet and VLAN tag, kept: the answer
 * goes back on the client's VLAN) to the new front. Returns 0 or -1.
 */
static __always_inline int xvs_icmp_reframe(struct xdp_md *ctx, const __u32 l2_len,
					    __u32 quote, const __u32 grow)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	int trim = (int)(data_end - data) - (int)(l2_len + quote);

	if (trim > 0 && bpf_xdp_adjust_tail(ctx, -trim))
		return -1;
	if (bpf_xdp_adjust_head(ctx, -(int)grow))
		return -1;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (data + grow + l2_len > data_end)
		return -1;
	/* no overlap: grow (28 or 48) is larger than any l2_len (14 or 18) */
	__builtin_memcpy(data, data + grow, l2_len);
	xvs_eth_swap(data);
	return 0;
}

static __always_inline int xvs_icmp4_too_big_l2(struct xdp_md *ctx, const __u32 l2_len,
						__u32 mtu)
{
	const __u32 grow = sizeof(struct iphdr) + sizeof(struct icmphdr);
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct icmphdr *icmph;
	__be32 client, vip;
	struct iphdr *iph;
	__u32 quote;
	__u64 sum;

	iph = data + l2_len;
	if ((void *)(iph + 1) > data_end)
		return XDP_DROP;
	client = iph->saddr;
	vip = iph->daddr;
	quote = bpf_ntohs(iph->tot_len);
	if (quote > (__u32)(data_end - (void *)iph))
		quote = data_end - (void *)iph;
	if (quote > XVS_ICMP4_QUOTE_MAX)
		quote = XVS_ICMP4_QUOTE_MAX;

	if (xvs_icmp_reframe(ctx, l2_len, quote, grow))
		return xvs_verdict(XVS_STAT_DROP_ADJUST_FAILED, XDP_DROP);
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	iph = data + l2_len;
	icmph = (void *)(iph + 1);
	if ((void *)(icmph + 1) > data_end)
		return XDP_DROP;

	iph->version = 4;
	iph->ihl = 5;
	iph->tos = 0xc0; /* internetwork control, as the kernel's own ICMP errors */
	iph->tot_len = bpf_htons(grow + quote);
	iph->id = bpf_get_prandom_u32();
	iph->frag_off = 0;
	iph->ttl = 64;
	iph->protocol = IPPROTO_ICMP;
	iph->check = 0;
	iph->saddr = vip;
	iph->daddr = client;
	iph->check = ipv4_hdr_csum(iph);

	if (mtu < XVS_IPV4_MIN_MTU)
		mtu = XVS_IPV4_MIN_MTU;
	icmph->type = ICMP_DEST_UNREACH;
	icmph->code = ICMP_FRAG_NEEDED;
	icmph->checksum = 0;
	icmph->un.frag.__unused = 0;
	icmph->un.frag.mtu = bpf_htons(mtu);
	sum = csum_add_to_end(0, icmph, data_end,
			      sizeof(struct icmphdr) + XVS_ICMP4_QUOTE_MAX);
	xvs_barrier_var(icmph);
	icmph->checksum = csum_fold64(sum);

	xvs_count(XVS_STAT_TX_TOO_BIG_ICMP);
	return XDP_TX | XVS_ACT_REPLIED;
}

static __always_inline int xvs_icmp6_too_big_l2(struct xdp_md *ctx, const __u32 l2_len,
						__u32 mtu)
{
	const __u32 grow = sizeof(struct ipv6hdr) + sizeof(struct icmp6hdr);
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct in6_addr client, vip;
	struct icmp6hdr *icmp6h;
	struct ipv6hdr *ip6h;
	__u32 quote, len;
	__u64 sum;

	ip6h = data + l2_len;
	if ((void *)(ip6h + 1) > data_end)
		return XDP_DROP;
	client = ip6h->saddr;
	vip = ip6h->daddr;
	quote = sizeof(*ip6h) + bpf_ntohs(ip6h->payload_len);
	if (quote > (__u32)(data_end - (void *)ip6h))
		quote = data_end - (void *)ip6h;
	if (quote > XVS_ICMP6_QUOTE_MAX)
		quote = XVS_ICMP6_QUOTE_MAX;

	if (xvs_icmp_reframe(ctx, l2_len, quote, grow))
		return xvs_verdict(XVS_STAT_DROP_ADJUST_FAILED, XDP_DROP);
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	ip6h = data + l2_len;
	icmp6h = (void *)(ip6h + 1);
	if ((void *)(icmp6h + 1) > data_end)
		return XDP_DROP;

	len = sizeof(*icmp6h) + quote;
	*(__be32 *)ip6h = bpf_htonl(6 << 28); /* version 6, class 0, no flow label */
	ip6h->payload_len = bpf_htons(len);
	ip6h->nexthdr = IPPROTO_ICMPV6;
	ip6h->hop_limit = 64;
	ip6h->saddr = vip;
	ip6h->daddr = client;

	/* a path that cannot carry 1280 bytes is the tunnel's problem, not the client's */
	if (mtu < XVS_IPV6_MIN_MTU)
		mtu = XVS_IPV6_MIN_MTU;
	icmp6h->icmp6_type = ICMPV6_PKT_TOOBIG;
	icmp6h->icmp6_code = 0;
	icmp6h->icmp6_cksum = 0;
	icmp6h->icmp6_mtu = bpf_htonl(mtu);

	/* pseudo-header: source, destination, upper-layer length, next header */
	sum = csum_add_addr6(0, vip.in6_u.u6_addr32);
	sum = csum_add_addr6(sum, client.in6_u.u6_addr32);
	sum += bpf_htonl(len);
	sum += bpf_htonl(IPPROTO_ICMPV6);
	sum = csum_add_to_end(sum, icmp6h, data_end,
			      sizeof(struct icmp6hdr) + XVS_ICMP6_QUOTE_MAX);
	xvs_barrier_var(icmp6h);
	icmp6h->icmp6_cksum = csum_fold64(sum);

	xvs_count(XVS_STAT_TX_TOO_BIG_ICMP);
	return XDP_TX | XVS_ACT_REPLIED;
}

/*
 * Answer the client's IPv4 packet with "fragmentation needed", next-hop MTU
 * mtu. Global functions: verified once, the checksum loops are long.
 * Returns XDP_TX | XVS_ACT_REPLIED or XDP_DROP.
 */
__noinline int xvs_icmp4_too_big(struct xdp_md *ctx, __u32 l2_len, __u32 mtu)
{
	if (l2_len == XVS_ETH_VLAN_LEN)
		return xvs_icmp4_too_big_l2(ctx, XVS_ETH_VLAN_LEN, mtu);
	return xvs_icmp4_too_big_l2(ctx, sizeof(struct ethhdr), mtu);
}

/* Answer the client's IPv6 packet with "packet too big", MTU mtu. */
__noinline int xvs_icmp6_too_big(struct xdp_md *ctx, __u32 l2_len, __u32 mtu)
{
	if (l2_len == XVS_ETH_VLAN_LEN)
		return xvs_icmp6_too_big_l2(ctx, XVS_ETH_VLAN_LEN, mtu);
	return xvs_icmp6_too_big_l2(ctx, sizeof(struct ethhdr), mtu);
}

#endif /* XVS_ICMP_H */
