/* SPDX-License-Identifier: GPL-2.0 */
/*
 * xvs data-plane ABI: every map key and value, enum and constant that the
 * XDP programs and userspace both see. This is the only definition; the
 * TypeScript codecs name fields by these C names and are checked against
 * the BTF of the built objects, so change a layout here and bump
 * XVS_ABI_VERSION (pinned maps are versioned by it).
 *
 * Rules: fixed-width types only, no bitfields, every hole is an explicit
 * pad field (userspace must write zeroes there: keys are hashed bytewise),
 * byte order and unit stated per field. "network order" = big endian
 * (__be*); everything else is host order.
 *
 * Addresses: union xvs_addr is 16 bytes. IPv6 fills it; IPv4 sits in the
 * first 4 bytes (v4, network order) and the other 12 bytes are zero. It is
 * not the IPv4-mapped form (::ffff:a.b.c.d) so that the packet path copies
 * 4 bytes for IPv4; a family field (XVS_AF_*) next to each address says
 * which one it is.
 *
 * Maps (defined in xvs/maps.h and decap.bpf.c; names fit the kernel's 15
 * characters), key -> value, default max_entries:
 *   xvs_settings     ARRAY          0 -> struct xvs_settings, 1
 *   xvs_services     HASH           struct xvs_service_key -> struct xvs_service,
 *                                   XVS_MAX_SERVICES, BPF_F_NO_PREALLOC
 *   xvs_reals        ARRAY          real id -> struct xvs_real, XVS_MAX_REALS
 *   xvs_svc_tables   ARRAY_OF_MAPS  XVS_SVC_TABLE_SLOT() -> inner ARRAY
 *                                   (slot -> __u32 real id), 2 * XVS_MAX_SERVICES
 *   xvs_rr_cursor    PERCPU_ARRAY   service id -> __u32 next slot, XVS_MAX_SERVICES
 *   xvs_conns        LRU_HASH       struct xvs_conn_key -> struct xvs_conn,
 *                                   XVS_CONNS_DEFAULT; flows and persistence templates
 *   xvs_real_conns   ARRAY          real id -> struct xvs_real_conns, XVS_MAX_REALS
 *   xvs_grp_ranges   HASH           struct xvs_group_key -> struct xvs_group_ranges,
 *                                   XVS_MAX_SERVICES, BPF_F_NO_PREALLOC
 *   xvs_locality     LRU_HASH       struct xvs_locality_key -> struct xvs_locality,
 *                                   XVS_LOCALITY_ENTRIES
 *   xvs_svc_stats    PERCPU_ARRAY   service id -> struct xvs_stats, XVS_MAX_SERVICES
 *   xvs_real_stats   PERCPU_ARRAY   real id -> struct xvs_stats, XVS_MAX_REALS
 *   xvs_counters     PERCPU_ARRAY   enum xvs_stat -> __u64, XVS_STAT_MAX
 *   xvs_tx_ports     DEVMAP_HASH    ifindex -> __u32 ifindex, XVS_TX_PORTS_MAX
 *   xvs_nat_rev      HASH           struct xvs_conn_key (a reply, kind XVS_CONN_K_REPLY)
 *                                   -> struct xvs_conn_key (its flow), sized as xvs_conns,
 *                                   BPF_F_NO_PREALLOC
 *   xvs_laddrs       ARRAY          index -> union xvs_addr, XVS_LADDRS_MAX (fullnat LIP pool)
 *   xvs_decap_addrs  HASH           struct xvs_decap_key -> __u32 0 (reserved),
 *                                   XVS_DECAP_ADDRS_MAX
 *   xvs_decap_ctrs   PERCPU_ARRAY   enum xvs_decap_stat -> __u64, XVS_DECAP_STAT_MAX
 * Keys and values shown without a struct are __u32 (host order).
 */
#ifndef XVS_ABI_H
#define XVS_ABI_H

#include <linux/types.h>

#define XVS_ABI_VERSION 3

/*
 * Constants are enums, not #defines, wherever they can be: an enum reaches
 * the objects' BTF (through struct xvs_abi_enums below), so userspace checks
 * its copies of the values against the built object like the layouts.
 */

/* Default map sizes (max_entries); userspace may resize before load. */
enum xvs_limits {
	XVS_MAX_SERVICES = 1024,	/* service ids are 0 .. max_entries-1 */
	XVS_MAX_REALS = 65536,		/* real ids are 1 .. max_entries-1 */
	XVS_CONNS_DEFAULT = 262144,	/* xvs_conns; set with bpf_map__set_max_entries */
	XVS_TX_PORTS_MAX = 64,		/* xvs_tx_ports: egress interfaces */
	XVS_DECAP_ADDRS_MAX = 64,	/* xvs_decap_addrs: local tunnel endpoints */
	/*
	 * Real id 0 is never a real server: a scheduler-table slot holding 0
	 * is an empty bucket (sh/dh), and xvs_reals[0] stays unused.
	 */
	XVS_REAL_NONE = 0,
	/*
	 * Per-service scheduler tables (xvs_svc_tables). Each service owns
	 * two slots of the outer array, XVS_SVC_TABLE_SLOT(id, half):
	 * userspace fills the half that is not live, then flips
	 * xvs_service.active_table with one xvs_services update. An inner
	 * table is a BPF_MAP_TYPE_ARRAY, key __u32 chunk, value struct
	 * xvs_table_chunk: slot s is real_id[s % XVS_SVC_TABLE_CHUNK] of
	 * chunk s / XVS_SVC_TABLE_CHUNK (real ids fit 16 bits: they are
	 * below XVS_MAX_REALS). Created with map_flags
	 * XVS_SVC_TABLE_MAP_FLAGS (BPF_F_INNER_MAP: inner tables of
	 * different sizes) and max_entries >= the chunks of
	 * xvs_service.table_size slots. Page-sized chunks make a table's
	 * fill a few large copies instead of one kernel update per slot.
	 */
	XVS_SVC_TABLE_MAP_FLAGS = 1 << 12,	/* BPF_F_INNER_MAP */
	XVS_SVC_TABLE_CHUNK = 2048,	/* slots per chunk, a power of 2 */
	XVS_MH_DEFAULT_SIZE = 16381,	/* prime, the IPVS mh default */
	XVS_MH_MAX_SIZE = 131071,	/* prime */
	XVS_SH_TABLE_SIZE = 256,	/* sh/dh buckets (IPVS) */
	/* mh-fallback rehashes at most this often (rr/wrr walk a whole table). */
	XVS_SCHED_SCAN_MAX = 256,
	/* L3 bytes, when xvs_real.mtu and xvs_settings.default_mtu are 0 */
	XVS_DEFAULT_MTU = 1500,
	/* Port ranges of service groups per (VIP, protocol): struct xvs_group_ranges. */
	XVS_GROUP_RANGES_MAX = 64,
	/* Real servers in one lblcr destination set (struct xvs_locality). */
	XVS_LOCALITY_SET_MAX = 16,
	/* xvs_locality entries, all services together (IPVS: 16 * 1024 per service). */
	XVS_LOCALITY_ENTRIES = 16384,
	/*
	 * fullnat local addresses (xvs_laddrs): IPv4 ones at indexes
	 * 0 .. xvs_settings.laddrs_v4 - 1, IPv6 ones from
	 * XVS_LADDRS_PER_FAMILY on, xvs_settings.laddrs_v6 of them.
	 */
	XVS_LADDRS_PER_FAMILY = 32,
	XVS_LADDRS_MAX = 64,
	/*
	 * fullnat local ports, host order, when xvs_settings leaves them 0:
	 * below Linux's default ip_local_port_range (32768-60999), so the
	 * director's own connections from a local address never meet one.
	 */
	XVS_FNAT_PORT_MIN = 1024,
	XVS_FNAT_PORT_MAX = 32767,
	/* Ports a new fullnat connection tries before it counts exhaustion. */
	XVS_FNAT_PORT_TRIES = 16,
};

_Static_assert(XVS_MAX_REALS <= 65536, "scheduler-table slots hold real ids in 16 bits");

#define XVS_SVC_TABLE_SLOT(svc_id, half)	((svc_id) * 2 + ((half) & 1))

/* Connection timeouts, seconds: the IPVS defaults (ipvsadm --set tcp tcpfin udp). */
enum xvs_timeouts {
	XVS_TIMEOUT_TCP_S = 900,	/* ESTABLISHED; xvs_settings.tcp_timeout_s */
	XVS_TIMEOUT_TCP_FIN_S = 120,	/* FIN_WAIT; xvs_settings.tcp_fin_timeout_s */
	XVS_TIMEOUT_UDP_S = 300,	/* UDP; xvs_settings.udp_timeout_s */
	/* The other TCP states are not settable in IPVS either (ip_vs_proto_tcp.c). */
	XVS_TIMEOUT_NONE_S = 2,
	XVS_TIMEOUT_SYN_SENT_S = 120,
	XVS_TIMEOUT_SYN_RECV_S = 60,
	XVS_TIMEOUT_TIME_WAIT_S = 120,
	XVS_TIMEOUT_CLOSE_S = 10,
	XVS_TIMEOUT_CLOSE_WAIT_S = 60,
	XVS_TIMEOUT_LAST_ACK_S = 30,
	XVS_TIMEOUT_LISTEN_S = 120,
	XVS_TIMEOUT_SYNACK_S = 120,
	/*
	 * lblc/lblcr: an entry unused this long is gone, and an lblcr set not
	 * changed this long sheds its most loaded member (the IPVS sysctls
	 * lblc_expiration / lblcr_expiration, default 24 hours).
	 */
	XVS_TIMEOUT_LOCALITY_S = 86400,
	/*
	 * ns: a connection's last_seen_ns is rewritten at most this often
	 * (unless its state changes), so a busy flow does not dirty its
	 * entry on every packet.
	 */
	XVS_CONN_TOUCH_NS = 1000000000,
};

/* Address family of an xvs_addr: the Linux AF_* numbers. */
enum xvs_family {
	XVS_AF_INET = 2,
	XVS_AF_INET6 = 10,
};

/* Scheduler of a service (xvs_service.sched): IPVS names and semantics. */
enum xvs_sched {
	XVS_SCHED_NONE = 0,	/* no scheduler: new connections are dropped */
	XVS_SCHED_RR = 1,	/* table: real ids in turn; per-CPU cursor */
	XVS_SCHED_WRR = 2,	/* table: IPVS interleaved wrr sequence; per-CPU cursor */
	/*
	 * lc, wlc, sed, nq, lblc, lblcr, fo, ovf and twos read the per-server
	 * connection counters (xvs_real_conns); their table lists the
	 * service's real ids once each, in the service's order (IPVS walks its
	 * destination list the same way), and they skip overloaded servers.
	 */
	XVS_SCHED_LC = 3,	/* least active * 256 + inactive */
	XVS_SCHED_WLC = 4,	/* least (active * 256 + inactive) / weight (the IPVS default) */
	XVS_SCHED_SED = 5,	/* least (active + 1) / weight */
	XVS_SCHED_NQ = 6,	/* an idle server first, else sed */
	XVS_SCHED_LBLC = 7,	/* destination locality (xvs_locality), else wlc */
	XVS_SCHED_LBLCR = 8,	/* a set per destination (xvs_locality), else wlc */
	XVS_SCHED_DH = 9,	/* table of XVS_SH_TABLE_SIZE buckets over the destination */
	XVS_SCHED_SH = 10,	/* table of XVS_SH_TABLE_SIZE buckets over the source */
	XVS_SCHED_MH = 11,	/* table: maglev ring of prime size */
	XVS_SCHED_FO = 12,	/* weighted failover: the highest weight */
	XVS_SCHED_OVF = 13,	/* overflow: highest weight with active <= weight */
	XVS_SCHED_TWOS = 14,	/* two weighted random choices, the less loaded */
	XVS_SCHED_MAX,
};

/* Forwarding method of a real server (xvs_real.method). */
enum xvs_fwd_method {
	XVS_FWD_DR = 0,		/* direct routing: MAC rewrite (ipvsadm -g, the default) */
	XVS_FWD_TUN = 1,	/* IP-in-IP / IP-in-IPv6 (ipvsadm -i) */
	XVS_FWD_NAT = 2,	/* masquerading (ipvsadm -m): VIP:vport -> RIP:rport, replies back */
	/* and client address:port -> a local address and port (xvs_laddrs) */
	XVS_FWD_FULLNAT = 3,
	XVS_FWD_MAX,
};

/* xvs_service.flags */
enum xvs_service_flags {
	/* sh/mh: when the chosen server is unavailable, rehash (IPVS sh-fallback/mh-fallback). */
	XVS_SVC_F_SCHED_FALLBACK = 1 << 0,
	/*
	 * Hash input for mh and sh (dh always hashes the destination address).
	 * Default: the whole 5-tuple, so a client's connections spread and
	 * every director agrees on a flow. HASH_SRC_ADDR: the client address
	 * only (ipvsadm -s mh / sh); with HASH_SRC_PORT also the client port
	 * (mh-port / sh-port).
	 */
	XVS_SVC_F_HASH_SRC_ADDR = 1 << 1,
	XVS_SVC_F_HASH_SRC_PORT = 1 << 2,
	/* UDP one-packet scheduling (ipvsadm -o): every datagram is scheduled, no conn entry. */
	XVS_SVC_F_ONE_PACKET = 1 << 3,
	/*
	 * Persistent service (ipvsadm -p): a new connection follows its
	 * client's template (xvs_conns entry of kind XVS_CONN_K_TEMPLATE) while
	 * one lives; xvs_service.persist_timeout_s and persist_mask apply.
	 */
	XVS_SVC_F_PERSISTENT = 1 << 4,
};

/* xvs_real.flags */
enum xvs_real_flags {
	/* No new connections, existing ones continue (same effect as weight 0). */
	XVS_REAL_F_QUIESCED = 1 << 0,
	/* Deleted from its service: existing flows drop or reschedule (expire_nodest_conn). */
	XVS_REAL_F_REMOVED = 1 << 1,
	/* Failed its health check and configured to be taken out: as REMOVED. */
	XVS_REAL_F_DOWN = 1 << 2,
};

/*
 * Connection states (xvs_conn.state). The TCP values are the IPVS ones
 * (IP_VS_TCP_S_*), driven by the IPVS "input only" table for dr/tun, whose
 * director sees only client -> server packets, and by the IPVS input and
 * output tables for nat/fullnat (XVS_CONN_F_NAT), whose replies it sees.
 */
enum xvs_conn_state {
	XVS_CONN_S_NONE = 0,
	XVS_CONN_S_ESTABLISHED = 1,
	XVS_CONN_S_SYN_SENT = 2,
	XVS_CONN_S_SYN_RECV = 3,
	XVS_CONN_S_FIN_WAIT = 4,
	XVS_CONN_S_TIME_WAIT = 5,
	XVS_CONN_S_CLOSE = 6,
	XVS_CONN_S_CLOSE_WAIT = 7,
	XVS_CONN_S_LAST_ACK = 8,
	XVS_CONN_S_LISTEN = 9,
	XVS_CONN_S_SYNACK = 10,
	XVS_CONN_S_TCP_MAX = 11,	/* number of TCP states */
	XVS_CONN_S_UDP = 16,		/* a UDP flow: one state, udp timeout */
};

/* xvs_conn.flags */
enum xvs_conn_flags {
	/* Created from a TCP packet other than a SYN (xvs_settings.sloppy_tcp). */
	XVS_CONN_F_SLOPPY = 1 << 0,
	/* A persistence template, not a flow (its key has kind XVS_CONN_K_TEMPLATE). */
	XVS_CONN_F_TEMPLATE = 1 << 1,
	/*
	 * nat or fullnat: translated, with an xvs_nat_rev entry for its
	 * replies (real server address and port from xvs_reals, then the
	 * client's address and port, or laddr/lport with FULLNAT).
	 */
	XVS_CONN_F_NAT = 1 << 2,
	/* fullnat: laddr and lport hold the client's local address and port. */
	XVS_CONN_F_FULLNAT = 1 << 3,
};

/*
 * xvs_conn_key.kind. A persistence template (IPVS: a connection template)
 * is keyed by the client address masked with persist_mask and by the key
 * of the service it belongs to: vaddr = xvs_service_key.addr (the VIP, or
 * a group's id), vport = xvs_service_key.port (0 for port-0 services and
 * groups), proto = xvs_service_key.proto (0 for groups, as IPVS fwmark
 * templates), cport = 0.
 */
enum xvs_conn_kind {
	XVS_CONN_K_FLOW = 0,		/* a connection as the client sends it */
	XVS_CONN_K_TEMPLATE = 1,	/* a persistence template */
	/*
	 * A reply, the key of xvs_nat_rev: caddr/cport = the real server's
	 * address and port (the reply's source), vaddr/vport = the reply's
	 * destination (nat: the client; fullnat: the local address and port).
	 */
	XVS_CONN_K_REPLY = 2,
};

/*
 * Global counters: index into xvs_counters (PERCPU_ARRAY of __u64, summed
 * over CPUs by userspace). PASS_* went to the kernel stack untouched,
 * DROP_* were dropped, the rest count events on the way.
 */
enum xvs_stat {
	/* packets seen by the director program */
	XVS_STAT_RX = 0,
	/* neither IPv4 nor IPv6 (ARP, LLDP, a second VLAN tag, ...) */
	XVS_STAT_PASS_NOT_IP,
	/* no service (daddr, proto, dport) nor (daddr, proto, 0); ICMP that is no error */
	XVS_STAT_PASS_NOT_SERVICE,
	/* IPv4 fragment or IPv6 fragment header */
	XVS_STAT_PASS_FRAGMENT,
	/* IPv6 chain not handled: routing header with segments left, too long, jumbogram */
	XVS_STAT_PASS_IPV6_EXT,
	/* TCP miss that is not a SYN (IPVS schedules only SYNs unless sloppy_tcp) */
	XVS_STAT_PASS_TCP_NOT_SYN,
	/* ICMP error quoting no known connection */
	XVS_STAT_PASS_ICMP_NO_CONN,
	/* a reply whose xvs_nat_rev entry names no live nat connection (entry dropped) */
	XVS_STAT_PASS_NAT_STALE,
	/* nat/fullnat: translated, then to the stack to resolve the next hop's MAC */
	XVS_STAT_PASS_NAT_NO_NEIGH,
	/* nat/fullnat: translated, then to the stack: bpf_fib_lookup found no route (or forwarding is off) */
	XVS_STAT_PASS_NAT_NO_ROUTE,
	/* nat/fullnat reply too big for the egress MTU: to the stack untranslated (it tells the real server) */
	XVS_STAT_PASS_NAT_TOO_BIG,
	/* nat/fullnat reply with TTL / hop limit 1: to the stack untranslated (time exceeded) */
	XVS_STAT_PASS_NAT_TTL,
	/* a header runs past the end of the packet (the stack would drop it too) */
	XVS_STAT_DROP_TRUNCATED,
	/* impossible header values: IPv4 ihl < 5 or tot_len < ihl, TCP doff < 5 */
	XVS_STAT_DROP_MALFORMED,
	/* the scheduler found no available real server */
	XVS_STAT_DROP_NO_BACKEND,
	/* the service's live scheduler table is not in xvs_svc_tables */
	XVS_STAT_DROP_NO_TABLE,
	/* the service has no scheduler (XVS_SCHED_NONE) or an unknown one */
	XVS_STAT_DROP_SCHED_UNSUPPORTED,
	/* the connection's real server is removed/down, expire_nodest_conn 0 */
	XVS_STAT_DROP_REAL_UNAVAILABLE,
	/* real id without an entry, or an unknown method or family */
	XVS_STAT_DROP_BAD_REAL,
	/* tun: no outer source address (neither xvs_real.tun_src nor xvs_settings) */
	XVS_STAT_DROP_NO_TUN_SRC,
	/* tun: too big, and no answer allowed (no DF, or it is an ICMP error) */
	XVS_STAT_DROP_TOO_BIG,
	/* bpf_xdp_adjust_head/tail failed (no headroom) */
	XVS_STAT_DROP_ADJUST_FAILED,
	/* fullnat: every local port tried was in use towards that real server */
	XVS_STAT_DROP_FNAT_NO_PORT,
	/* fullnat: no local address of the connection's family (xvs_laddrs) */
	XVS_STAT_DROP_FNAT_NO_LADDR,
	/* nat/fullnat: the reply entry could not be inserted (xvs_nat_rev full) */
	XVS_STAT_DROP_NAT_REV_FULL,
	/* nat/fullnat: a header to translate lies beyond what the program can reach */
	XVS_STAT_DROP_NAT_UNREACHABLE,
	/* connection entries created */
	XVS_STAT_CONN_NEW,
	/* xvs_conns update failed; the packet is still forwarded */
	XVS_STAT_CONN_INSERT_FAILED,
	/* hit an entry past its timeout (or of a replaced service): a miss */
	XVS_STAT_CONN_EXPIRED,
	/* SYN on an entry in TIME_WAIT/CLOSE: scheduled afresh (conn_reuse_mode) */
	XVS_STAT_CONN_REUSED,
	/* real server removed/down, expire_nodest_conn 1: entry dropped, a miss */
	XVS_STAT_CONN_NODEST_EXPIRED,
	/* UDP datagram scheduled without a conn entry (one-packet scheduling) */
	XVS_STAT_ONE_PACKET,
	/* ICMP error sent after its connection to the real server */
	XVS_STAT_ICMP_FORWARDED,
	/* forwarded IPv4 packets that carried options */
	XVS_STAT_IPV4_OPTIONS,
	/* forwarded IPv6 packets whose extension headers were skipped */
	XVS_STAT_IPV6_EXT_SKIPPED,
	/* forwarded with dr */
	XVS_STAT_FWD_DR,
	/* forwarded with tun */
	XVS_STAT_FWD_TUN,
	/* forwarded with nat (client -> real server) */
	XVS_STAT_FWD_NAT,
	/* forwarded with fullnat (client -> real server) */
	XVS_STAT_FWD_FULLNAT,
	/* nat/fullnat replies translated back (real server -> client) */
	XVS_STAT_NAT_REPLY,
	/* ICMP errors translated for a nat/fullnat connection, either way */
	XVS_STAT_NAT_ICMP,
	/* tun: ICMP frag-needed / ICMPv6 packet-too-big sent to the client */
	XVS_STAT_TX_TOO_BIG_ICMP,
	/* verdict XDP_TX: out of the ingress interface */
	XVS_STAT_XDP_TX,
	/* verdict XDP_REDIRECT: to another interface */
	XVS_STAT_XDP_REDIRECT,
	/* persistent service: a new connection followed its client's template */
	XVS_STAT_PERSIST_HIT,
	/* persistent service: a template created (none, or it had expired) */
	XVS_STAT_PERSIST_NEW,
	/* lblc/lblcr: a new connection followed its destination's entry */
	XVS_STAT_LOCALITY_HIT,
	XVS_STAT_MAX,
};

/* Decap program counters: index into xvs_decap_ctrs (PERCPU_ARRAY of __u64). */
enum xvs_decap_stat {
	/* packets seen */
	XVS_DECAP_STAT_RX = 0,
	/* not IPv4 protocol 4/41 nor IPv6 next header 4/41 */
	XVS_DECAP_STAT_PASS_NOT_TUNNEL,
	/* tunnel packet for an address not in xvs_decap_addrs */
	XVS_DECAP_STAT_PASS_NOT_LOCAL,
	/* outer fragment: left to the stack (which cannot decapsulate it) */
	XVS_DECAP_STAT_PASS_FRAGMENT,
	/* inner header missing or of the wrong version */
	XVS_DECAP_STAT_PASS_BAD_INNER,
	/* outer header truncated or malformed (the stack would drop it too) */
	XVS_DECAP_STAT_DROP_BAD_OUTER,
	/* bpf_xdp_adjust_head failed */
	XVS_DECAP_STAT_DROP_ADJUST_FAILED,
	/* IPv4 in IPv4 decapsulated */
	XVS_DECAP_STAT_DECAP_IPIP,
	/* IPv6 in IPv4 decapsulated */
	XVS_DECAP_STAT_DECAP_IP6IP,
	/* IPv4 in IPv6 decapsulated */
	XVS_DECAP_STAT_DECAP_IPIP6,
	/* IPv6 in IPv6 decapsulated */
	XVS_DECAP_STAT_DECAP_IP6IP6,
	XVS_DECAP_STAT_MAX,
};

/* IPv4 in v4 (first 4 bytes, rest zero) or IPv6; network order. */
union xvs_addr {
	__be32 v4;
	__be32 v6[4];
	__u8 bytes[16];
};

/*
 * xvs_services key: one virtual service. 20 bytes. A service group
 * (ipvsadm -f) has the key addr = its id (the fwmark number, network
 * order, in the first 4 bytes), port 0, proto 0 and the group's family:
 * no packet has proto 0, so only xvs_grp_ranges leads there.
 */
struct xvs_service_key {
	union xvs_addr addr;	/* VIP, network order; a group: its id */
	__be16 port;		/* network order; 0 = all ports (wildcard service) */
	__u8 proto;		/* IPPROTO_TCP or IPPROTO_UDP; 0 = a service group */
	__u8 family;		/* enum xvs_family of addr */
};

/* xvs_services value. 40 bytes. */
struct xvs_service {
	/* Index of xvs_svc_stats, xvs_rr_cursor; tables at XVS_SVC_TABLE_SLOT(id, half). */
	__u32 id;
	__u32 flags;		/* enum xvs_service_flags */
	__u8 sched;		/* enum xvs_sched */
	__u8 active_table;	/* 0 or 1: the live half of the scheduler table */
	__u8 pad0[2];
	/* Slots in the live table (rr/wrr: sequence length, mh: prime, sh/dh: 256). */
	__u32 table_size;
	__u32 num_reals;	/* real servers in the service (informational) */
	/* Persistence: seconds a template lives after its last use (ipvsadm -p). */
	__u32 persist_timeout_s;
	/*
	 * Persistence: the client address is ANDed with this before it keys a
	 * template (ipvsadm -M; an IPv6 prefix as a mask). Network order, the
	 * service's family; all ones = one template per client address.
	 */
	union xvs_addr persist_mask;
};

/*
 * Inner scheduler-table value: XVS_SVC_TABLE_CHUNK consecutive slots, each
 * a real id (host order; XVS_REAL_NONE = empty). 4096 bytes, a page: a
 * 16,381-slot maglev table is 8 of them.
 */
struct xvs_table_chunk {
	__u16 real_id[XVS_SVC_TABLE_CHUNK];
};

/* xvs_reals value, indexed by real id. 76 bytes. */
struct xvs_real {
	union xvs_addr addr;	/* RIP, network order, family below */
	/* tun outer source, network order, family of addr; 0 = xvs_settings.tun_src_v4/v6 */
	union xvs_addr tun_src;
	/* Network order; nat/fullnat only: dr and tun keep the VIP's port, as IPVS. */
	__be16 port;
	__u8 family;		/* enum xvs_family of addr; for tun the outer family */
	__u8 method;		/* enum xvs_fwd_method */
	__u32 weight;		/* IPVS weight; 0 = quiesced: no new connections */
	__u32 flags;		/* enum xvs_real_flags */
	__u32 service_id;	/* the service this real server belongs to */
	/* Egress ifindex, director's netns; 0 or the ingress ifindex = XDP_TX. */
	__u32 ifindex;
	__u16 mtu;		/* L3 path MTU to it, bytes; 0 = xvs_settings.default_mtu */
	__u8 dst_mac[6];	/* next hop MAC (the real server's for dr) */
	__u8 src_mac[6];	/* director's MAC on the egress interface */
	__u8 pad0[2];
	/*
	 * ipvsadm -x / -y, connections (active + inactive); 0 = none. See
	 * struct xvs_real_conns for when the server counts as overloaded.
	 */
	__u32 upper_threshold;
	__u32 lower_threshold;
};

/* xvs_conns key: a flow as the client sends it. 40 bytes. */
struct xvs_conn_key {
	union xvs_addr caddr;	/* client address (packet source), network order */
	union xvs_addr vaddr;	/* VIP (packet destination), network order */
	__be16 cport;		/* client port, network order */
	__be16 vport;		/* VIP port, network order */
	__u8 proto;		/* IPPROTO_TCP or IPPROTO_UDP; templates: see enum xvs_conn_kind */
	__u8 family;		/* enum xvs_family of both addresses */
	__u8 kind;		/* enum xvs_conn_kind */
	__u8 pad0;
};

/* xvs_conns value. 48 bytes. */
struct xvs_conn {
	/* CLOCK_MONOTONIC of the last packet, ns (bpf_ktime_get_coarse_ns); see XVS_CONN_TOUCH_NS. */
	__u64 last_seen_ns;
	__u64 created_ns;	/* CLOCK_MONOTONIC (coarse) at creation, ns */
	__u32 real_id;		/* index into xvs_reals */
	__u32 service_id;	/* xvs_service.id at creation; another id now = stale */
	__u8 state;		/* enum xvs_conn_state; templates: XVS_CONN_S_NONE */
	__u8 flags;		/* enum xvs_conn_flags */
	/* fullnat: the local port the client's port became (network order) */
	__be16 lport;
	/*
	 * Templates only (0 for flows): a connection this template sent to its
	 * real server lives until at least this second of CLOCK_MONOTONIC
	 * (its last packet plus its state's timeout). A template expires when
	 * both this and last_seen_ns + persist_timeout_s have passed: IPVS
	 * keeps a template while it controls connections, then its timeout.
	 */
	__u32 ctl_until_s;
	/* fullnat: the local address the client's became, network order, family of the key */
	union xvs_addr laddr;
};

/*
 * xvs_real_conns value, indexed by real id: connections per real server,
 * as IPVS counts them (ip_vs_dest activeconns, inactconns, persistconns).
 * The data plane keeps them with atomic adds: +1 when it creates an entry,
 * a move when a TCP entry enters or leaves ESTABLISHED, -1 when it deletes
 * one (expired, reused, real server gone). Entries that leave without the
 * data plane seeing them (timeouts with no more packets, LRU eviction)
 * are accounted by userspace, which counts xvs_conns and rewrites these
 * (src/dataplane/conncount.ts); a count may dip below zero in between,
 * and the schedulers read a negative count as 0. 16 bytes.
 *
 * Overload (IPVS IP_VS_DEST_F_OVERLOAD, ip_vs_bind_dest/ip_vs_unbind_dest):
 * when an entry is created and active + inactive >= upper_threshold, the
 * server is overloaded; when an entry is deleted it stops being so once
 * active + inactive < lower_threshold, or, with no lower threshold,
 * (active + inactive) * 4 < upper_threshold * 3, or at once with no upper
 * threshold. Raising upper_threshold (or clearing it) ends an overload at
 * once, as editing the server does in IPVS: the flag is kept as the
 * threshold it was set under, and counts only while the server's
 * upper_threshold is non-zero and not above it.
 */
struct xvs_real_conns {
	__s32 active;		/* entries in ESTABLISHED */
	__s32 inactive;		/* other flows: TCP in any other state, UDP */
	__s32 persistent;	/* persistence templates naming this server */
	/* upper_threshold when the overload began; 0 = not overloaded */
	__u32 overload_upper;
};

/* xvs_grp_ranges key: the (VIP, protocol) some service group matches. 20 bytes. */
struct xvs_group_key {
	union xvs_addr addr;	/* VIP, network order */
	__u8 proto;		/* IPPROTO_TCP or IPPROTO_UDP */
	__u8 family;		/* enum xvs_family of addr */
	__u8 pad0[2];
};

/* One destination port range of a service group. 8 bytes. */
struct xvs_port_range {
	__u16 first;		/* host order, inclusive */
	__u16 last;		/* host order, inclusive, >= first */
	__u32 group_id;		/* the group (its xvs_services key holds this id) */
};

/*
 * xvs_grp_ranges value: every port range of this (VIP, protocol) that
 * belongs to a service group, sorted by first, not overlapping (adjacent
 * ranges of one group may be merged). The data plane binary-searches it
 * after the exact and wildcard service lookups miss. 520 bytes.
 */
struct xvs_group_ranges {
	__u32 count;		/* ranges in use, <= XVS_GROUP_RANGES_MAX */
	__u32 pad0;
	struct xvs_port_range ranges[XVS_GROUP_RANGES_MAX];
};

/* xvs_locality key: a destination address of an lblc/lblcr service. 24 bytes. */
struct xvs_locality_key {
	union xvs_addr daddr;	/* packet destination, network order */
	__u32 service_id;	/* xvs_service.id */
	__u8 family;		/* enum xvs_family of daddr */
	__u8 pad0[3];
};

/*
 * xvs_locality value: the real servers a destination goes to (lblc: one,
 * lblcr: a set). Written by the data plane without locks: it is a cache,
 * and every member is checked again before it is used. 88 bytes.
 */
struct xvs_locality {
	__u64 lastuse_ns;	/* CLOCK_MONOTONIC (coarse) of the last lookup */
	__u64 lastmod_ns;	/* CLOCK_MONOTONIC (coarse) of the last change of the set */
	__u32 count;		/* members in real_ids, <= XVS_LOCALITY_SET_MAX */
	__u32 pad0;
	__u32 real_ids[XVS_LOCALITY_SET_MAX];
};

/* xvs_svc_stats and xvs_real_stats value (PERCPU_ARRAY; userspace sums CPUs). 40 bytes. */
struct xvs_stats {
	__u64 conns;		/* connections scheduled (one-packet UDP: datagrams) */
	__u64 packets_in;	/* client -> server packets forwarded */
	__u64 bytes_in;		/* their IP bytes, before encapsulation (as IPVS) */
	__u64 packets_out;	/* server -> client replies; nat/fullnat only */
	__u64 bytes_out;	/* their IP bytes */
};

/*
 * xvs_settings value (ARRAY, 1 entry, key 0): settings userspace may change
 * at any time. A zero field means the documented default, so an unwritten
 * entry is a working configuration. 64 bytes.
 */
struct xvs_settings {
	__u32 tcp_timeout_s;	/* ESTABLISHED, seconds; 0 = XVS_TIMEOUT_TCP_S */
	__u32 tcp_fin_timeout_s; /* FIN_WAIT, seconds; 0 = XVS_TIMEOUT_TCP_FIN_S */
	__u32 udp_timeout_s;	/* seconds; 0 = XVS_TIMEOUT_UDP_S */
	__u32 hash_seed;	/* flow hash seed (mh); equal on directors that must agree */
	/* 1: flows of a removed/down real server are rescheduled; 0: they drop. */
	__u8 expire_nodest_conn;
	/* 1: TCP misses other than SYN are scheduled too (IPVS sloppy_tcp). */
	__u8 sloppy_tcp;
	__u8 tun_ttl;		/* tun outer TTL / hop limit; 0 = the inner one (IPVS) */
	/*
	 * 1 while xvs_grp_ranges has entries (the writer keeps it): only then
	 * does a packet that is no (VIP, proto, port) or port-0 service cost a
	 * look for a service group, so the director's own traffic does not.
	 */
	__u8 service_groups;
	__u16 default_mtu;	/* bytes, for real servers with mtu 0; 0 = XVS_DEFAULT_MTU */
	/*
	 * 1 while some real server uses nat or fullnat (the writer keeps it):
	 * only then is a packet for no service looked up as a reply.
	 */
	__u8 nat;
	/*
	 * 1 while some service has port 0 (all ports; the writer keeps it):
	 * only then does a packet that matches no (VIP, proto, port) cost a
	 * second lookup under port 0.
	 */
	__u8 port0_services;
	union xvs_addr tun_src_v4; /* default tun outer IPv4 source, network order */
	union xvs_addr tun_src_v6; /* default tun outer IPv6 source, network order */
	/* fullnat local ports, host order, inclusive; 0 = XVS_FNAT_PORT_MIN / _MAX */
	__u16 fnat_port_min;
	__u16 fnat_port_max;
	__u8 laddrs_v4;		/* IPv4 local addresses in xvs_laddrs, from index 0 */
	__u8 laddrs_v6;		/* IPv6 ones, from index XVS_LADDRS_PER_FAMILY */
	__u8 pad2[2];
};

/* xvs_decap_addrs key: a local address that terminates tunnels. 20 bytes. */
struct xvs_decap_key {
	union xvs_addr addr;	/* outer destination, network order */
	__u8 family;		/* enum xvs_family */
	__u8 pad0[3];
};

/*
 * Not a map value: one field of each ABI enum. Each object defines a
 * .rodata variable of this type (xvs_abi_enums) only so that these enums
 * are in its BTF (BTF carries only types something uses), where userspace
 * reads and checks their values.
 */
struct xvs_abi_enums {
	enum xvs_limits limits;
	enum xvs_timeouts timeouts;
	enum xvs_family family;
	enum xvs_sched sched;
	enum xvs_fwd_method fwd_method;
	enum xvs_service_flags service_flags;
	enum xvs_real_flags real_flags;
	enum xvs_conn_state conn_state;
	enum xvs_conn_flags conn_flags;
	enum xvs_conn_kind conn_kind;
	enum xvs_stat stat;
	enum xvs_decap_stat decap_stat;
};

#endif /* XVS_ABI_H */
