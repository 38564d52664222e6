/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The director's maps. Keys and values are the abi.h structs; names stay
 * within the kernel's 15 characters (BPF_OBJ_NAME_LEN) so that userspace
 * finding maps by id (bpf_map_info.name) sees the same names as libbpf.
 */
#ifndef XVS_MAPS_H
#define XVS_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "xvs/abi.h"

/* Runtime settings: one entry, key 0. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xvs_settings);
} xvs_settings SEC(".maps");

/*
 * Virtual services. No preallocation: a preallocated hash recycles the
 * replaced element at once, so a CPU still reading the old value could see
 * it rewritten by the next update; without it, old values are freed after
 * an RCU grace period and a table flip is seen whole.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, XVS_MAX_SERVICES);
	__type(key, struct xvs_service_key);
	__type(value, struct xvs_service);
} xvs_services SEC(".maps");

/* Real servers by real id (0 unused). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, XVS_MAX_REALS);
	__type(key, __u32);
	__type(value, struct xvs_real);
} xvs_reals SEC(".maps");

/*
 * Scheduler tables: slot XVS_SVC_TABLE_SLOT(service id, half) holds an
 * array of chunks of real ids (struct xvs_table_chunk). BPF_F_INNER_MAP
 * lets each inner table have its own size (a maglev prime, a wrr sequence
 * length); this definition is only the template userspace's tables must
 * match (type, key/value size, flags).
 */
struct xvs_svc_table {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_INNER_MAP);
	__uint(max_entries, (XVS_MH_DEFAULT_SIZE + XVS_SVC_TABLE_CHUNK - 1) / XVS_SVC_TABLE_CHUNK);
	__type(key, __u32);
	/*
	 * By size: clang puts only a forward declaration of a struct that
	 * nothing holds by value into BTF, which libbpf cannot size.
	 */
	__uint(value_size, sizeof(struct xvs_table_chunk));
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, XVS_MAX_SERVICES * 2);
	__type(key, __u32);
	__array(values, struct xvs_svc_table);
} xvs_svc_tables SEC(".maps");

/* The real id in slot `slot` of an inner table of xvs_svc_tables; XVS_REAL_NONE past its end. */
static __always_inline __u32 xvs_table_get(void *table, __u32 slot)
{
	__u32 chunk = slot / XVS_SVC_TABLE_CHUNK;
	struct xvs_table_chunk *c = bpf_map_lookup_elem(table, &chunk);

	return c ? c->real_id[slot & (XVS_SVC_TABLE_CHUNK - 1)] : XVS_REAL_NONE;
}

/* rr/wrr: per CPU, per service id, the table slot to try next. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XVS_MAX_SERVICES);
	__type(key, __u32);
	__type(value, __u32);
} xvs_rr_cursor SEC(".maps");

/* Connections; userspace sizes it (bpf_map__set_max_entries) before load. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, XVS_CONNS_DEFAULT);
	__type(key, struct xvs_conn_key);
	__type(value, struct xvs_conn);
} xvs_conns SEC(".maps");

/*
 * Connections per real server (struct xvs_real_conns): shared by all CPUs
 * and changed with atomic adds, because the lc family compares servers'
 * totals per packet (a per-CPU array would need a sum over CPUs per server).
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, XVS_MAX_REALS);
	__type(key, __u32);
	__type(value, struct xvs_real_conns);
} xvs_real_conns SEC(".maps");

/*
 * Service groups: per (VIP, protocol), the sorted port ranges that belong
 * to a group. A hash keyed by (VIP, protocol) rather than an LPM trie over
 * (VIP, protocol, port): any range is one entry (a trie needs a prefix per
 * power-of-two block, up to 30 for one range), the director's own traffic
 * pays one hash miss instead of a trie walk, and one update replaces a
 * VIP's whole list, so a changed group is never seen half-written (no
 * preallocation, as for xvs_services).
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, XVS_MAX_SERVICES);
	__type(key, struct xvs_group_key);
	__type(value, struct xvs_group_ranges);
} xvs_grp_ranges SEC(".maps");

/* lblc/lblcr: destination address -> its real server(s). LRU: a bounded cache. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, XVS_LOCALITY_ENTRIES);
	__type(key, struct xvs_locality_key);
	__type(value, struct xvs_locality);
} xvs_locality SEC(".maps");

/* Per-service and per-real-server traffic, per CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XVS_MAX_SERVICES);
	__type(key, __u32);
	__type(value, struct xvs_stats);
} xvs_svc_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XVS_MAX_REALS);
	__type(key, __u32);
	__type(value, struct xvs_stats);
} xvs_real_stats SEC(".maps");

/* Global counters indexed by enum xvs_stat. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XVS_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} xvs_counters SEC(".maps");

/*
 * Egress interfaces for redirect, key and value the ifindex. A devmap
 * bulks transmits per NAPI poll; an egress ifindex missing here falls back
 * to bpf_redirect(). Write it from inside the director's netns (TESTBED).
 */
struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
	__uint(max_entries, XVS_TX_PORTS_MAX);
	__type(key, __u32);
	__type(value, __u32);
} xvs_tx_ports SEC(".maps");

/*
 * nat/fullnat replies: the reply's tuple -> the flow's key in xvs_conns.
 * A plain hash, not an LRU: an evicted entry would free a fullnat local
 * port while its connection lives, and the next client given it would
 * receive the other's replies. Full, it refuses new nat connections
 * (counted); entries go with their connection (packet path, sweeper). No
 * preallocation: a deleted entry is freed after an RCU grace period, so
 * a CPU holding it never reads another flow's key.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, XVS_CONNS_DEFAULT);
	__type(key, struct xvs_conn_key);
	__type(value, struct xvs_conn_key);
} xvs_nat_rev SEC(".maps");

/* fullnat local addresses (LIP pool): see XVS_LADDRS_PER_FAMILY. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, XVS_LADDRS_MAX);
	__type(key, __u32);
	__type(value, union xvs_addr);
} xvs_laddrs SEC(".maps");

#endif /* XVS_MAPS_H */
