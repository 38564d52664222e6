// SPDX-License-Identifier: GPL-2.0
/*
 * Benchmark probe: the kernel's own cost of a connection-table miss and
 * insert (an LRU hash with xvs_conns' key and value sizes), so the director's
 * new-flow figure can be read against what the map alone costs on this
 * machine. The client address in the packet makes the key.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct probe_key { __u8 bytes[40]; };	/* sizeof(struct xvs_conn_key) */
struct probe_val { __u8 bytes[32]; };	/* sizeof(struct xvs_conn) */

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 262144);	/* set to the director's table size before load */
	__type(key, struct probe_key);
	__type(value, struct probe_val);
} probe_conns SEC(".maps");

SEC("xdp")
int probe_insert(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct probe_key key = {};
	struct probe_val val = {};

	if (data + 34 > end)
		return XDP_DROP;
	__builtin_memcpy(key.bytes, data + 26, 4);	/* IPv4 source address */
	if (!bpf_map_lookup_elem(&probe_conns, &key))
		bpf_map_update_elem(&probe_conns, &key, &val, BPF_NOEXIST);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
