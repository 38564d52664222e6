// SPDX-License-Identifier: GPL-2.0
/*
 * xvs decap: runs on a tun real server, in place of the ipip/ip6_tunnel
 * modules this kernel kind lacks (TESTBED.md). An IPv4 packet with protocol
 * 4 (IPIP) or 41 (IPv6), or an IPv6 packet with next header 4 or 41,
 * addressed to one of our tunnel endpoints, loses its outer header: the
 * Ethernet header moves forward over it, the ethertype follows the inner
 * family, and XDP_PASS hands the inner packet to the stack, which delivers
 * it to the VIP held on lo. Everything else passes untouched.
 *
 * The real server needs rp_filter off (or loose) on the receiving
 * interface, as with IPVS tunnelling: the inner source is the client.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "xvs/abi.h"
#include "xvs/parsing.h"

/* Tunnel endpoints of this host: outer destinations to decapsulate. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, XVS_DECAP_ADDRS_MAX);
	__type(key, struct xvs_decap_key);
	__type(value, __u32); /* reserved, 0 */
} xvs_decap_addrs SEC(".maps");

/* Counters indexed by enum xvs_decap_stat. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XVS_DECAP_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} xvs_decap_ctrs SEC(".maps");

/* Read-only for the loader: the ABI the object was built with. */
const volatile __u32 xvs_abi_version SEC(".rodata.abi") = XVS_ABI_VERSION;

/* Puts the ABI enums into this object's BTF for userspace; never read. */
const volatile struct xvs_abi_enums xvs_abi_enums;

/*
 * 1: decapsulate whatever the outer destination (any tunnel packet that
 * reached this interface is ours: a lab or a host with one address);
 * 0: only destinations listed in xvs_decap_addrs.
 */
const volatile __u8 xvs_cfg_decap_any_dst = 0;

static __always_inline void decap_count(__u32 stat)
{
	__u64 *ctr = bpf_map_lookup_elem(&xvs_decap_ctrs, &stat);

	if (ctr)
		*ctr += 1;
}

static __always_inline int decap_verdict(__u32 stat, int action)
{
	decap_count(stat);
	return action;
}

static __always_inline int decap_is_local(struct xvs_decap_key *key)
{
	return xvs_cfg_decap_any_dst || bpf_map_lookup_elem(&xvs_decap_addrs, key);
}

/*
 * The inner packet starts at inner and must be of the family its outer
 * header announced; returns its ethertype (network order) or 0.
 */
static __always_inline __be16 decap_inner_proto(void *inner, void *data_end, __u8 proto)
{
	__u8 *version = inner;

	if ((void *)(version + 1) > data_end)
		return 0;
	if (proto == IPPROTO_IPIP && (*version >> 4) == 4)
		return bpf_htons(ETH_P_IP);
	if (proto == IPPROTO_IPV6 && (*version >> 4) == 6)
		return bpf_htons(ETH_P_IPV6);
	return 0;
}

/*
 * Move the L2 header (Ethernet, and the VLAN tag if any) forward over the
 * outer header and drop the bytes before it. l2_len is a constant per call
 * so the verifier sees fixed-size copies.
 */
static __always_inline int decap_strip(struct xdp_md *ctx, const __u32 l2_len,
				       __u32 outer_len, __be16 inner_proto)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr eth;
	struct vlan_hdr vlh;

	if (data + l2_len > data_end)
		return -1;
	/* saved on the stack: after bpf_xdp_adjust_head() the old front is out of reach */
	__builtin_memcpy(&eth, data, sizeof(eth));
	if (l2_len > sizeof(eth)) {
		__builtin_memcpy(&vlh, data + sizeof(eth), sizeof(vlh));
		vlh.h_vlan_encapsulated_proto = inner_proto;
	} else {
		eth.h_proto = inner_proto;
	}
	if (bpf_xdp_adjust_head(ctx, (int)outer_len))
		return -1;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (data + l2_len > data_end)
		return -1;
	__builtin_memcpy(data, &eth, sizeof(eth));
	if (l2_len > sizeof(eth))
		__builtin_memcpy(data + sizeof(eth), &vlh, sizeof(vlh));
	return 0;
}

static __always_inline int decap_finish(struct xdp_md *ctx, __u32 l2_len, __u32 outer_len,
					__be16 inner_proto, __u32 stat)
{
	int err;

	if (l2_len == sizeof(struct ethhdr) + sizeof(struct vlan_hdr))
		err = decap_strip(ctx, sizeof(struct ethhdr) + sizeof(struct vlan_hdr), outer_len,
				  inner_proto);
	else
		err = decap_strip(ctx, sizeof(struct ethhdr), outer_len, inner_proto);
	if (err)
		return decap_verdict(XVS_DECAP_STAT_DROP_ADJUST_FAILED, XDP_DROP);
	return decap_verdict(stat, XDP_PASS);
}

SEC("xdp")
int xvs_decap(struct xdp_md *ctx)
{
	void *data_end = (void *)(long)ctx->data_end;
	void *data = (void *)(long)ctx->data;
	struct hdr_cursor nh = { .pos = data };
	struct xvs_decap_key key = {};
	struct ipv6hdr *ip6h;
	struct ethhdr *eth;
	struct iphdr *iph;
	__u32 l2_len, outer_len, stat;
	int eth_type, proto;
	__be16 inner_proto;

	decap_count(XVS_DECAP_STAT_RX);
	eth_type = parse_ethhdr(&nh, data_end, &eth);
	if (eth_type < 0)
		return decap_verdict(XVS_DECAP_STAT_PASS_NOT_TUNNEL, XDP_PASS);
	l2_len = nh.pos - data;

	if (eth_type == bpf_htons(ETH_P_IP)) {
		iph = nh.pos;
		if ((void *)(iph + 1) > data_end)
			return decap_verdict(XVS_DECAP_STAT_DROP_BAD_OUTER, XDP_DROP);
		if (iph->protocol != IPPROTO_IPIP && iph->protocol != IPPROTO_IPV6)
			return decap_verdict(XVS_DECAP_STAT_PASS_NOT_TUNNEL, XDP_PASS);
		proto = parse_ipv4(&nh, data_end, &iph);
		if (proto == XVS_PARSE_FRAGMENT)
			return decap_verdict(XVS_DECAP_STAT_PASS_FRAGMENT, XDP_PASS);
		if (proto < 0)
			return decap_verdict(XVS_DECAP_STAT_DROP_BAD_OUTER, XDP_DROP);
		key.family = XVS_AF_INET;
		key.addr.v4 = iph->daddr;
		outer_len = iph->ihl * 4;
		stat = proto == IPPROTO_IPIP ? XVS_DECAP_STAT_DECAP_IPIP : XVS_DECAP_STAT_DECAP_IP6IP;
	} else if (eth_type == bpf_htons(ETH_P_IPV6)) {
		ip6h = nh.pos;
		if ((void *)(ip6h + 1) > data_end)
			return decap_verdict(XVS_DECAP_STAT_DROP_BAD_OUTER, XDP_DROP);
		/* only a tunnel header right after the fixed header */
		proto = ip6h->nexthdr;
		if (proto != IPPROTO_IPIP && proto != IPPROTO_IPV6)
			return decap_verdict(XVS_DECAP_STAT_PASS_NOT_TUNNEL, XDP_PASS);
		if ((void *)(ip6h + 1) + bpf_ntohs(ip6h->payload_len) > data_end)
			return decap_verdict(XVS_DECAP_STAT_DROP_BAD_OUTER, XDP_DROP);
		nh.pos = ip6h + 1;
		key.family = XVS_AF_INET6;
		__builtin_memcpy(key.addr.v6, &ip6h->daddr, 16);
		outer_len = sizeof(*ip6h);
		stat = proto == IPPROTO_IPIP ? XVS_DECAP_STAT_DECAP_IPIP6 : XVS_DECAP_STAT_DECAP_IP6IP6;
	} else {
		return decap_verdict(XVS_DECAP_STAT_PASS_NOT_TUNNEL, XDP_PASS);
	}

	if (!decap_is_local(&key))
		return decap_verdict(XVS_DECAP_STAT_PASS_NOT_LOCAL, XDP_PASS);
	inner_proto = decap_inner_proto(nh.pos, data_end, proto);
	if (!inner_proto)
		return decap_verdict(XVS_DECAP_STAT_PASS_BAD_INNER, XDP_PASS);
	return decap_finish(ctx, l2_len, outer_len, inner_proto, stat);
}

char LICENSE[] SEC("license") = "GPL";
