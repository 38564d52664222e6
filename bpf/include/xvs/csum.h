/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Internet checksums (RFC 1071) and their incremental update (RFC 1624).
 *
 * Words are summed as they sit in memory (network order loaded on any
 * host): the one's complement sum is byte-order independent, so the folded
 * result can be stored back as it is.
 */
#ifndef XVS_CSUM_H
#define XVS_CSUM_H

#include <linux/types.h>
#include <linux/ip.h>
#include <bpf/bpf_endian.h>

/* Fold a 64-bit accumulator of 16/32-bit words into the 16-bit checksum. */
static __always_inline __sum16 csum_fold64(__u64 sum)
{
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__sum16)~sum;
}

/* Full checksum of an option-less IPv4 header; iph->check must be 0. */
static __always_inline __sum16 ipv4_hdr_csum(const struct iphdr *iph)
{
	const __u16 *w = (const __u16 *)iph;
	__u64 sum = 0;
	int i;

#pragma clang loop unroll(full)
	for (i = 0; i < (int)(sizeof(*iph) / 2); i++)
		sum += w[i];
	return csum_fold64(sum);
}

/* Add a 16-byte address (IPv6 pseudo-header) to an accumulator. */
static __always_inline __u64 csum_add_addr6(__u64 sum, const __be32 a[4])
{
	return sum + a[0] + a[1] + a[2] + a[3];
}

/*
 * Sum the bytes from start to data_end, at most max_len of them (a
 * constant, so the verifier sees a bounded loop). Used on packets just
 * trimmed to the exact length to be summed.
 */
static __always_inline __u64 csum_add_to_end(__u64 sum, const void *start,
					     const void *data_end, const __u32 max_len)
{
	const __u16 *w = start;
	const __u8 *b;
	__u32 i;

	for (i = 0; i < max_len / 2; i++) {
		if ((const void *)(w + 1) > data_end)
			break;
		sum += *w;
		w++;
	}
	b = (const __u8 *)w;
	/* an odd last byte counts as the high byte of a zero-padded word */
	if ((const void *)(b + 1) <= data_end)
		sum += bpf_htons((__u16)*b << 8);
	return sum;
}

/*
 * RFC 1624 eqn. 3, HC' = ~(~HC + ~m + m'): update a checksum for a 16-bit
 * field that changed from old to new. Safe for every checksum value,
 * unlike eqn. 2 (RFC 1624 section 3).
 */
static __always_inline __sum16 csum_replace2(__sum16 check, __be16 old, __be16 new)
{
	__u64 sum = (__u16)~check;

	sum += (__u16)~old;
	sum += new;
	return csum_fold64(sum);
}

/* As csum_replace2 for a 32-bit field (an IPv4 address, two ports). */
static __always_inline __sum16 csum_replace4(__sum16 check, __be32 old, __be32 new)
{
	__u64 sum = (__u16)~check;

	sum += (__u32)~old;
	sum += new;
	return csum_fold64(sum);
}

/* As csum_replace2 for a 128-bit field (an IPv6 address). */
static __always_inline __sum16 csum_replace16(__sum16 check, const __be32 old[4],
					      const __be32 new[4])
{
	__u64 sum = (__u16)~check;
	int i;

#pragma clang loop unroll(full)
	for (i = 0; i < 4; i++) {
		sum += (__u32)~old[i];
		sum += new[i];
	}
	return csum_fold64(sum);
}

#endif /* XVS_CSUM_H */
