// SPDX-License-Identifier: GPL-2.0
/*
 * Benchmark driver for BPF_PROG_TEST_RUN with a repeat count. `repeat`
 * re-runs the program on the buffer the previous run left behind, so a
 * forwarding program would see its own output. This driver restores the
 * packet from a template before every run, writes a per-run value into it
 * (a new client address: a new flow each run, or one of N known flows),
 * then tail-calls the program under test. Measure the same driver with an
 * XDP_PASS target as the baseline and report the difference.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define BENCH_TMPL_MAX 256

struct bench_tmpl {
	__u32 len;		/* template bytes */
	__u32 vary_off;		/* offset of a 4-byte big-endian field to vary; 0 = none */
	__u32 vary_base;	/* value of that field for run 0 (host order) */
	__u32 vary_mod;		/* field = vary_base + run % vary_mod; 0 = never varies */
	__u8 data[BENCH_TMPL_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bench_tmpl);
} bench_tmpl SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} bench_run SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} bench_target SEC(".maps");

SEC("xdp")
int bench_driver(struct xdp_md *ctx)
{
	__u32 key = 0, len, v;
	struct bench_tmpl *t = bpf_map_lookup_elem(&bench_tmpl, &key);
	__u32 *run = bpf_map_lookup_elem(&bench_run, &key);
	long cur;

	if (!t || !run)
		return XDP_ABORTED;
	len = t->len;
	if (len < 14 || len > BENCH_TMPL_MAX)
		return XDP_ABORTED;
	/* Undo what the last run did to the length (pushed or popped headers). */
	cur = (long)ctx->data_end - (long)ctx->data;
	if (cur != len && bpf_xdp_adjust_head(ctx, (int)(cur - (long)len)))
		return XDP_ABORTED;
	if (bpf_xdp_store_bytes(ctx, 0, t->data, len))
		return XDP_ABORTED;
	if (t->vary_mod && t->vary_off + 4 <= len) {
		v = __builtin_bswap32(t->vary_base + *run % t->vary_mod);
		if (bpf_xdp_store_bytes(ctx, t->vary_off, &v, 4))
			return XDP_ABORTED;
	}
	*run += 1;
	bpf_tail_call(ctx, &bench_target, 0);
	return XDP_ABORTED;
}

char LICENSE[] SEC("license") = "GPL";
