/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Header parsing with a cursor, after xdp-tools' parsing_helpers.h: each
 * parse_* checks the bounds right before it reads, advances the cursor past
 * the header, and returns the next protocol (or a length) — or one of the
 * negative XVS_PARSE_* results, which callers turn into a counted verdict.
 * Shared by the director and the decap program; no maps here.
 */
#ifndef XVS_PARSING_H
#define XVS_PARSING_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/in6.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <linux/icmp.h>
#include <linux/icmpv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

/* Negative results of the parse_* helpers. */
enum xvs_parse_result {
	XVS_PARSE_TRUNCATED = -1,	/* the header runs past data_end */
	XVS_PARSE_MALFORMED = -2,	/* a length or version no sender may use */
	XVS_PARSE_FRAGMENT = -3,	/* a fragment: ports are not (all) here */
	XVS_PARSE_UNHANDLED = -4,	/* valid, but not a case the fast path handles */
};

/* net/ip.h is kernel-internal; the IPv4 frag_off bits, host order. */
#define XVS_IP_DF	0x4000
#define XVS_IP_MF	0x2000
#define XVS_IP_OFFSET	0x1fff

/* TCP flag bits in byte 13 of the TCP header. */
#define XVS_TCP_FIN	0x01
#define XVS_TCP_SYN	0x02
#define XVS_TCP_RST	0x04
#define XVS_TCP_ACK	0x10

/* How many IPv6 extension headers the director walks before giving up. */
#define XVS_IPV6_EXT_MAX 4

/* if_vlan.h's struct vlan_hdr is kernel-internal. */
struct vlan_hdr {
	__be16 h_vlan_TCI;
	__be16 h_vlan_encapsulated_proto;
};

struct hdr_cursor {
	void *pos;
};

/*
 * Ethernet plus at most one 802.1Q/802.1ad tag. Returns the ethertype of the
 * payload in network order (so compare with bpf_htons(ETH_P_*)); a second
 * tag comes back as ETH_P_8021Q, which callers pass as "not IP".
 */
static __always_inline int parse_ethhdr(struct hdr_cursor *nh, void *data_end,
					struct ethhdr **ethhdr)
{
	struct ethhdr *eth = nh->pos;
	struct vlan_hdr *vlh;
	__be16 h_proto;

	if ((void *)(eth + 1) > data_end)
		return XVS_PARSE_TRUNCATED;
	nh->pos = eth + 1;
	*ethhdr = eth;
	h_proto = eth->h_proto;

	if (h_proto == bpf_htons(ETH_P_8021Q) || h_proto == bpf_htons(ETH_P_8021AD)) {
		vlh = nh->pos;
		if ((void *)(vlh + 1) > data_end)
			return XVS_PARSE_TRUNCATED;
		nh->pos = vlh + 1;
		h_proto = vlh->h_vlan_encapsulated_proto;
	}
	return h_proto;
}

/*
 * IPv4 with options: the cursor moves past ihl * 4 bytes, and the whole
 * datagram (tot_len) must be in the packet, as ip_rcv() demands. A fragment
 * returns XVS_PARSE_FRAGMENT with *iphdr set, so callers may still read the
 * addresses.
 */
static __always_inline int parse_ipv4(struct hdr_cursor *nh, void *data_end,
				      struct iphdr **iphdr)
{
	struct iphdr *iph = nh->pos;
	__u32 hdr_len, tot_len;

	if ((void *)(iph + 1) > data_end)
		return XVS_PARSE_TRUNCATED;
	if (iph->version != 4 || iph->ihl < 5)
		return XVS_PARSE_MALFORMED;
	hdr_len = iph->ihl * 4;
	tot_len = bpf_ntohs(iph->tot_len);
	if (tot_len < hdr_len)
		return XVS_PARSE_MALFORMED;
	if (nh->pos + tot_len > data_end)
		return XVS_PARSE_TRUNCATED;
	*iphdr = iph;
	if (iph->frag_off & bpf_htons(XVS_IP_MF | XVS_IP_OFFSET))
		return XVS_PARSE_FRAGMENT;
	nh->pos += hdr_len;
	return iph->protocol;
}

/*
 * IPv6 and the extension headers a final destination may skip: hop-by-hop,
 * destination options, and a routing header with no segments left. A
 * routing header still to be followed means the packet is not for the
 * address it carries now: UNHANDLED, like jumbograms and chains longer than
 * XVS_IPV6_EXT_MAX. *ext_skipped says whether any header was skipped.
 */
static __always_inline int parse_ipv6(struct hdr_cursor *nh, void *data_end,
				      struct ipv6hdr **ip6hdr, __u8 *ext_skipped)
{
	struct ipv6hdr *ip6h = nh->pos;
	struct ipv6_opt_hdr *opt;
	struct ipv6_rt_hdr *rt;
	__u32 payload_len;
	__u8 nexthdr;
	int i;

	if ((void *)(ip6h + 1) > data_end)
		return XVS_PARSE_TRUNCATED;
	if (ip6h->version != 6)
		return XVS_PARSE_MALFORMED;
	payload_len = bpf_ntohs(ip6h->payload_len);
	if (payload_len == 0)
		return XVS_PARSE_UNHANDLED; /* jumbogram (or nothing to balance) */
	if ((void *)(ip6h + 1) + payload_len > data_end)
		return XVS_PARSE_TRUNCATED;
	*ip6hdr = ip6h;
	nh->pos = ip6h + 1;
	nexthdr = ip6h->nexthdr;
	*ext_skipped = 0;

	for (i = 0; i < XVS_IPV6_EXT_MAX; i++) {
		switch (nexthdr) {
		case IPPROTO_ROUTING:
			rt = nh->pos;
			if ((void *)(rt + 1) > data_end)
				return XVS_PARSE_TRUNCATED;
			if (rt->segments_left)
				return XVS_PARSE_UNHANDLED;
			/* fall through */
		case IPPROTO_HOPOPTS:
		case IPPROTO_DSTOPTS:
			opt = nh->pos;
			if ((void *)(opt + 1) > data_end)
				return XVS_PARSE_TRUNCATED;
			nexthdr = opt->nexthdr;
			nh->pos += (opt->hdrlen + 1) * 8;
			*ext_skipped = 1;
			break;
		case IPPROTO_FRAGMENT:
			return XVS_PARSE_FRAGMENT;
		default:
			return nexthdr;
		}
	}
	/* XVS_IPV6_EXT_MAX headers walked: fine if what follows is no further one. */
	switch (nexthdr) {
	case IPPROTO_ROUTING:
	case IPPROTO_HOPOPTS:
	case IPPROTO_DSTOPTS:
		return XVS_PARSE_UNHANDLED;
	case IPPROTO_FRAGMENT:
		return XVS_PARSE_FRAGMENT;
	}
	return nexthdr;
}

/* TCP with options; returns the header length in bytes. */
static __always_inline int parse_tcphdr(struct hdr_cursor *nh, void *data_end,
					struct tcphdr **tcphdr)
{
	struct tcphdr *th = nh->pos;
	__u32 len;

	if ((void *)(th + 1) > data_end)
		return XVS_PARSE_TRUNCATED;
	len = th->doff * 4;
	if (len < sizeof(*th))
		return XVS_PARSE_MALFORMED;
	if (nh->pos + len > data_end)
		return XVS_PARSE_TRUNCATED;
	nh->pos += len;
	*tcphdr = th;
	return len;
}

/* The byte holding FIN/SYN/RST/PSH/ACK/URG/ECE/CWR. */
static __always_inline __u8 tcp_flag_byte(const struct tcphdr *th)
{
	return ((const __u8 *)th)[13];
}

/* UDP; returns the header length (8). */
static __always_inline int parse_udphdr(struct hdr_cursor *nh, void *data_end,
					struct udphdr **udphdr)
{
	struct udphdr *uh = nh->pos;

	if ((void *)(uh + 1) > data_end)
		return XVS_PARSE_TRUNCATED;
	nh->pos = uh + 1;
	*udphdr = uh;
	return sizeof(*uh);
}

/* ICMP; returns the type. */
static __always_inline int parse_icmphdr(struct hdr_cursor *nh, void *data_end,
					 struct icmphdr **icmphdr)
{
	struct icmphdr *icmph = nh->pos;

	if ((void *)(icmph + 1) > data_end)
		return XVS_PARSE_TRUNCATED;
	nh->pos = icmph + 1;
	*icmphdr = icmph;
	return icmph->type;
}

/* ICMPv6; returns the type. */
static __always_inline int parse_icmp6hdr(struct hdr_cursor *nh, void *data_end,
					  struct icmp6hdr **icmp6hdr)
{
	struct icmp6hdr *icmp6h = nh->pos;

	if ((void *)(icmp6h + 1) > data_end)
		return XVS_PARSE_TRUNCATED;
	nh->pos = icmp6h + 1;
	*icmp6hdr = icmp6h;
	return icmp6h->icmp6_type;
}

#endif /* XVS_PARSING_H */
