/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Flow hashing for the hash-based schedulers (mh, sh, dh).
 *
 * MurmurHash3 (x86_32) over the flow's 32-bit words with its finaliser.
 * The mixing matters: Linux connect() picks even source ports, so a weak
 * hash on the port (or one that only xors words) sends every connection of
 * a client to the same slot. Every director must run the same function
 * with the same seed (xvs_settings.hash_seed) to agree on a flow.
 */
#ifndef XVS_HASH_H
#define XVS_HASH_H

#include "xvs/abi.h"

static __always_inline __u32 xvs_rol32(__u32 word, unsigned int shift)
{
	return (word << shift) | (word >> (32 - shift));
}

/* One murmur3 block step: mix word k into state h. */
static __always_inline __u32 xvs_murmur3_mix(__u32 h, __u32 k)
{
	k *= 0xcc9e2d51;
	k = xvs_rol32(k, 15);
	k *= 0x1b873593;
	h ^= k;
	h = xvs_rol32(h, 13);
	return h * 5 + 0xe6546b64;
}

/* murmur3 fmix32: every input bit affects every output bit. */
static __always_inline __u32 xvs_murmur3_fmix(__u32 h)
{
	h ^= h >> 16;
	h *= 0x85ebca6b;
	h ^= h >> 13;
	h *= 0xc2b2ae35;
	h ^= h >> 16;
	return h;
}

static __always_inline __u32 xvs_hash_addr(__u32 h, const union xvs_addr *a, __u8 family)
{
	if (family == XVS_AF_INET)
		return xvs_murmur3_mix(h, a->v4);
	h = xvs_murmur3_mix(h, a->v6[0]);
	h = xvs_murmur3_mix(h, a->v6[1]);
	h = xvs_murmur3_mix(h, a->v6[2]);
	return xvs_murmur3_mix(h, a->v6[3]);
}

/*
 * Hash of a flow. flags (enum xvs_service_flags) choose the input: the
 * whole 5-tuple by default, else the client address, plus the client port
 * with XVS_SVC_F_HASH_SRC_PORT (IPVS mh/sh and their -port flag).
 */
static __always_inline __u32 xvs_flow_hash(const struct xvs_conn_key *key, __u32 flags,
					   __u32 seed)
{
	__u32 h = seed;

	h = xvs_hash_addr(h, &key->caddr, key->family);
	if (!(flags & XVS_SVC_F_HASH_SRC_ADDR)) {
		h = xvs_hash_addr(h, &key->vaddr, key->family);
		h = xvs_murmur3_mix(h, ((__u32)key->cport << 16) | key->vport);
		h = xvs_murmur3_mix(h, key->proto);
	} else if (flags & XVS_SVC_F_HASH_SRC_PORT) {
		h = xvs_murmur3_mix(h, key->cport);
	}
	return xvs_murmur3_fmix(h ^ key->family);
}

/* Hash of a flow's destination address alone (dh). */
static __always_inline __u32 xvs_dest_hash(const struct xvs_conn_key *key, __u32 seed)
{
	return xvs_murmur3_fmix(xvs_hash_addr(seed, &key->vaddr, key->family) ^ key->family);
}

#endif /* XVS_HASH_H */
