// SPDX-License-Identifier: GPL-2.0-only
// Kernel UAPI numbers the binding needs (linux/bpf.h, linux/if_link.h), named once.

/** enum bpf_map_type */
export const MapType = {
  HASH: 1, ARRAY: 2, PROG_ARRAY: 3, PERF_EVENT_ARRAY: 4, PERCPU_HASH: 5, PERCPU_ARRAY: 6,
  STACK_TRACE: 7, CGROUP_ARRAY: 8, LRU_HASH: 9, LRU_PERCPU_HASH: 10, LPM_TRIE: 11, ARRAY_OF_MAPS: 12,
  HASH_OF_MAPS: 13, DEVMAP: 14, SOCKMAP: 15, CPUMAP: 16, XSKMAP: 17, SOCKHASH: 18, CGROUP_STORAGE: 19,
  REUSEPORT_SOCKARRAY: 20, PERCPU_CGROUP_STORAGE: 21, QUEUE: 22, STACK: 23, SK_STORAGE: 24,
  DEVMAP_HASH: 25, STRUCT_OPS: 26, RINGBUF: 27, INODE_STORAGE: 28, TASK_STORAGE: 29, BLOOM_FILTER: 30,
} as const

const PERCPU_TYPES: ReadonlySet<number> = new Set([
  MapType.PERCPU_HASH, MapType.PERCPU_ARRAY, MapType.LRU_PERCPU_HASH, MapType.PERCPU_CGROUP_STORAGE,
])

export function isPerCpuMapType(type: number): boolean {
  return PERCPU_TYPES.has(type)
}

export function mapTypeName(type: number): string {
  for (const [k, v] of Object.entries(MapType)) if (v === type) return k.toLowerCase()
  return `type ${type}`
}

/** Flags of map updates (BPF_ANY / BPF_NOEXIST / BPF_EXIST). */
export const UpdateFlags = { ANY: 0, NOEXIST: 1, EXIST: 2 } as const
export type UpdateMode = 'any' | 'noexist' | 'exist'
export function updateFlag(mode: UpdateMode): number {
  return mode === 'any' ? UpdateFlags.ANY : mode === 'noexist' ? UpdateFlags.NOEXIST : UpdateFlags.EXIST
}

/** enum bpf_prog_type (the ones xvs meets) */
export const ProgType = { SOCKET_FILTER: 1, SCHED_CLS: 3, SCHED_ACT: 4, XDP: 6 } as const

/** XDP_FLAGS_* (linux/if_link.h) */
export const XdpFlags = { UPDATE_IF_NOEXIST: 1, SKB_MODE: 2, DRV_MODE: 4, HW_MODE: 8, REPLACE: 16 } as const

/** XDP_ATTACHED_* as returned by bpf_xdp_query */
export const XdpAttached = { NONE: 0, DRV: 1, SKB: 2, HW: 3, MULTI: 4 } as const

/** enum xdp_action */
export const XdpAction = { ABORTED: 0, DROP: 1, PASS: 2, TX: 3, REDIRECT: 4 } as const
export type XdpActionName = 'aborted' | 'drop' | 'pass' | 'tx' | 'redirect'
export function xdpActionName(v: number): XdpActionName | `unknown(${number})` {
  const names: XdpActionName[] = ['aborted', 'drop', 'pass', 'tx', 'redirect']
  return names[v] ?? `unknown(${v})`
}

/** BPF_F_TEST_XDP_LIVE_FRAMES: test runs whose packets really leave through XDP_TX/redirect. */
export const BPF_F_TEST_XDP_LIVE_FRAMES = 1 << 1

/** enum bpf_link_type */
export const LinkType = { XDP: 6 } as const
