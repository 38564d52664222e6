// SPDX-License-Identifier: GPL-2.0-only
// Network-namespace topologies for lab tests, benchmarks and `make demo`.
//
// Everything lives in namespaces this module creates: veths are created directly inside them
// (`ip -n A link add ... peer ... netns B`), the L2 switch is a bridge in a namespace of its own, and the
// root namespace is never touched. Names carry a random lab id (`xl3fa9c1-dir`), so labs of parallel
// test processes never clash; interfaces live inside the namespaces, so their names (eth0, pub, priv,
// p-rs1) repeat between labs harmlessly. Addresses are fixed per shape for the same reason.
//
// Nothing may be left behind: destroy() is idempotent and also runs on process exit, on SIGINT/SIGTERM/
// SIGHUP and on an uncaught exception; a lab whose process was SIGKILLed is found by sweepStale() through
// its owner file /run/xvs-lab/<id>.pid (pid and process start time, so a recycled pid is not mistaken for
// the owner) and removed by the next createTopology().
import { randomBytes } from 'node:crypto'
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { ArgumentError, XvsError } from '../errors'
import { silentLogger, type Logger } from '../log'
import { inNetns, ipIn, run, runAsync, tryRun, type RunOptions } from './exec'
import { isBpffs, netnsCookie, withNetns } from '../bpf'

export type Shape = 'bridge' | 'routed' | 'onearm'
export type Role = 'client' | 'director' | 'real' | 'switch'

export interface IfAddr {
  readonly address: string
  readonly prefixLength: number
}

/** One end of a veth (or the bridge itself) inside a lab namespace. */
export interface LabInterface {
  /** Short name of the node that holds it: 'cli', 'dir', 'sw', 'rs1', ... */
  readonly node: string
  readonly ns: string
  readonly name: string
  /** ifindex inside ns (ifindexes are per namespace). */
  readonly ifindex: number
  readonly mac: string
  readonly mtu: number
  readonly ipv4: IfAddr | undefined
  readonly ipv6: IfAddr | undefined
  /** Further addresses on the interface (the one-arm director's gateway addresses for the real servers). */
  readonly secondary: readonly IfAddr[]
  /** The other end of this veth; undefined for the bridge device. */
  readonly peer: { readonly node: string; readonly ns: string; readonly name: string; readonly ifindex: number; readonly mac: string } | undefined
}

export interface LabNode {
  /** Short name: 'cli', 'dir', 'sw', 'rs1', ... */
  readonly name: string
  readonly role: Role
  readonly ns: string
  /** Interfaces other than lo. */
  readonly interfaces: readonly LabInterface[]
  /** The interface called name; throws ArgumentError if there is none. */
  iface(name: string): LabInterface
}

/** A node with addresses: its primary ones are on the interface that faces the director. */
export interface HostNode extends LabNode {
  readonly ipv4: string
  readonly ipv6: string
}

export interface DirectorNode extends HostNode {
  /** Faces the clients ('eth0' on bridge and onearm, 'pub' on routed); ipv4/ipv6 are its addresses. */
  readonly front: LabInterface
  /** Faces the real servers ('eth0' on bridge and onearm, the same interface as front; 'priv' on routed). */
  readonly back: LabInterface
}

export type NodeRef = LabNode | string

export interface Topology {
  /** Lab id, the common prefix of every namespace name ('xl' + 6 hex digits). */
  readonly id: string
  readonly shape: Shape
  /** Every namespace of the lab, in creation order. */
  readonly namespaces: readonly string[]
  readonly client: HostNode
  /** The first director ('dir'). */
  readonly director: DirectorNode
  /** Every director: 'dir', and 'dir2' in a failover lab (directors: 2). */
  readonly directors: readonly DirectorNode[]
  readonly reals: readonly HostNode[]
  /** The namespace that holds the bridge 'br0' and its ports 'p-<node>'. */
  readonly switch: LabNode
  readonly nodes: readonly LabNode[]
  /** Virtual IPs: on the director's lo (every shape) and the real servers' lo (bridge, for DR/TUN). */
  readonly vip: { readonly ipv4: string; readonly ipv6: string }
  readonly destroyed: boolean
  /** The node with this short name ('cli', 'dir', 'sw', 'rs1', ...). */
  node(name: string): LabNode
  /** Runs argv inside the node's namespace; returns stdout. */
  exec(node: NodeRef, argv: readonly string[], opts?: RunOptions): string
  execAsync(node: NodeRef, argv: readonly string[], opts?: RunOptions): Promise<string>
  /** Starts argv inside the node's namespace; the child is SIGKILLed by destroy(). */
  spawn(node: NodeRef, argv: readonly string[], opts?: LabSpawnOptions): ChildProcess
  /** Attaches an XDP object's section in native (driver) mode, replacing what is attached. */
  attachXdp(node: NodeRef, ifname: string, object: string, section?: string): void
  attachXdpPass(node: NodeRef, ifname: string): void
  /** Removes a native-mode XDP program (a generic-mode one needs `xdpgeneric off`). */
  detachXdp(node: NodeRef, ifname: string): void
  /** `ip -n <ns> link show` of the node, for humans. */
  linkShow(node: NodeRef): string
  /** The node's SNMP/netstat counters as absolute values (`nstat -asz`; no shared history file). */
  netstat(node: NodeRef): Record<string, number>
  /** Kills the lab's processes and deletes its namespaces (and with them every veth). Idempotent. */
  destroy(): void
}

export interface LabSpawnOptions {
  env?: NodeJS.ProcessEnv
  stdio?: StdioOptions
  cwd?: string
}

export interface TopologyOptions {
  /**
   * 'bridge' (one L2 segment: DR, TUN), 'routed' (director between two segments: two-arm NAT) or
   * 'onearm' (one L2 segment, two subnets: the client in the front one, the real servers in the back
   * one, the director on the segment with an address in each and the gateway of both: one-arm NAT).
   * Default bridge.
   */
  shape?: Shape
  /** Number of real servers, 1..16; default 2. */
  reals?: number
  /**
   * Directors on the bridge: 1 (default) or 2, a failover lab. With 2, 'dir2' is at .2, neither
   * director holds the VIP (VRRP adds it to eth0 on the master) and the client reaches the VIP on-link
   * (ARP / neighbour discovery), so a takeover is one gratuitous ARP away. Bridge shape only.
   */
  directors?: 1 | 2
  /** MTU of every lab interface, or per role ('switch' covers the bridge and its ports); default 1500. */
  mtu?: number | Partial<Record<Role, number>>
  /** Attach xdp_pass to every peer of a director interface (needed for XDP_TX/redirect); default true. */
  xdpPass?: boolean
  /** Keep TX checksum offload on the veths; default false (see TESTBED.md: XDP_TX needs full checksums). */
  checksumOffload?: boolean
  /** Lab id prefix, 1..4 lower-case letters; default 'xl'. */
  prefix?: string
  /** Remove labs of dead processes first (sweepStale(prefix)); default true. */
  sweep?: boolean
  log?: Logger
}

export const LAB_PREFIX = 'xl'
/** Owner files of live labs: <id>.pid holding "<pid> <process start time>". */
export const LAB_RUN_DIR = '/run/xvs-lab'

const MAX_REALS = 16
// 1280: the IPv6 minimum. 3506: the largest MTU a veth accepts while an XDP program is attached
// (TESTBED.md); every lab has XDP on some of its veths.
const MIN_MTU = 1280
const MAX_MTU = 3506
const PREFIX_PATTERN = /^[a-z]{1,4}$/

/** Fixed address plan (each lab is isolated, so every lab uses the same one). */
export const LAB_ADDRESSES = {
  /** client <-> director segment (bridge: the only segment). */
  front: { ipv4: '10.200.0.0/24', ipv6: 'fd00:200::/64' },
  /** director <-> real servers segment of the routed shape (the real servers' subnet of onearm). */
  back: { ipv4: '10.200.1.0/24', ipv6: 'fd00:201::/64' },
  vip: { ipv4: '10.200.99.1', ipv6: 'fd00:299::1' },
} as const

const v4 = (net: 0 | 1, host: number): IfAddr => ({ address: `10.200.${net}.${host}`, prefixLength: 24 })
const v6 = (net: 0 | 1, host: number): IfAddr => ({ address: `fd00:20${net}::${host}`, prefixLength: 64 })
const DIRECTOR_HOST = 1
const CLIENT_HOST = 10
const realHost = (i: number): number => 100 + i

// ---------------------------------------------------------------------------------------------------
// The plan: what to create, independent of how.

interface PlannedEnd {
  node: string
  name: string
  ipv4?: IfAddr
  ipv6?: IfAddr
  /** Added after ipv4/ipv6 (secondary addresses). */
  secondary?: IfAddr[]
}

interface PlannedLink {
  a: PlannedEnd
  b: PlannedEnd
}

interface PlannedNode {
  name: string
  role: Role
  sysctls: string[]
  /** Addresses on lo (/32 and /128). */
  loopback: { ipv4: string; ipv6: string } | undefined
  routes: { ipv4: string[][]; ipv6: string[][] }
}

interface Plan {
  nodes: PlannedNode[]
  links: PlannedLink[]
  /** Interfaces that peer a director interface: xdp_pass goes there. */
  directorPeers: { node: string; name: string }[]
  front: string
  back: string
}

// Sysctls set in every node namespace right after it is created, before its interfaces exist, so the
// `default` values reach them. IPv4 conf/all and conf/default are inherited from the root namespace
// (net.core.devconf_inherit_init_net=0): set rp_filter explicitly so the lab does not depend on the
// host's sysctl.conf. accept_dad=0: addresses (link-local ones too) are usable at once instead of after
// a second of duplicate address detection.
const COMMON_SYSCTLS = [
  'net.ipv4.conf.all.rp_filter=0',
  'net.ipv4.conf.default.rp_filter=0',
  'net.ipv6.conf.all.accept_dad=0',
  'net.ipv6.conf.default.accept_dad=0',
]

// The switch is pure L2: without IPv6 its ports send no router solicitations or MLD reports of their own.
const SWITCH_SYSCTLS = ['net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']

// The director forwards (routed shape; and bpf_fib_lookup answers FWD_DISABLED without it) and must not
// send ICMP redirects for what XDP passes back to the stack, or the client would learn to bypass it.
// accept_local: nat/fullnat hand the kernel translated packets from the director's own addresses (the
// VIP, a local address) while a neighbour is unresolved, for it to resolve and forward.
const DIRECTOR_SYSCTLS = [
  'net.ipv4.ip_forward=1',
  'net.ipv4.conf.all.accept_local=1',
  'net.ipv6.conf.all.forwarding=1',
  'net.ipv6.conf.default.forwarding=1',
  'net.ipv4.conf.all.send_redirects=0',
  'net.ipv4.conf.default.send_redirects=0',
]

// Belt and braces for the same reason (IPv6 has no send_redirects knob).
const CLIENT_SYSCTLS = [
  'net.ipv4.conf.all.accept_redirects=0',
  'net.ipv4.conf.default.accept_redirects=0',
  'net.ipv6.conf.all.accept_redirects=0',
  'net.ipv6.conf.default.accept_redirects=0',
]

// LVS-DR real servers hold the VIP on lo and must neither answer ARP for it (arp_ignore=1: only for
// addresses of the receiving interface) nor use it as the source of their own ARP requests
// (arp_announce=2). The kernel uses max(all, interface), so `all` covers every interface.
const DR_REAL_SYSCTLS = ['net.ipv4.conf.all.arp_ignore=1', 'net.ipv4.conf.all.arp_announce=2']

function planBridge(reals: number, directors: 1 | 2 = 1): Plan {
  const vip = { ipv4: LAB_ADDRESSES.vip.ipv4, ipv6: LAB_ADDRESSES.vip.ipv6 }
  const failover = directors === 2
  const nodes: PlannedNode[] = [
    { name: 'sw', role: 'switch', sysctls: SWITCH_SYSCTLS, loopback: undefined, routes: { ipv4: [], ipv6: [] } },
    {
      name: 'cli',
      role: 'client',
      sysctls: [...COMMON_SYSCTLS, ...CLIENT_SYSCTLS],
      loopback: undefined,
      // Only the VIP goes through the director; real servers are reached on the segment. With two
      // directors the VIP is on-link: whoever answers ARP for it (the VRRP master) gets the traffic.
      routes: failover
        ? { ipv4: [[`${vip.ipv4}/32`, 'dev', 'eth0']], ipv6: [[`${vip.ipv6}/128`, 'dev', 'eth0']] }
        : {
            ipv4: [[`${vip.ipv4}/32`, 'via', v4(0, DIRECTOR_HOST).address]],
            ipv6: [[`${vip.ipv6}/128`, 'via', v6(0, DIRECTOR_HOST).address]],
          },
    },
    { name: 'dir', role: 'director', sysctls: [...COMMON_SYSCTLS, ...DIRECTOR_SYSCTLS], loopback: failover ? undefined : vip, routes: { ipv4: [], ipv6: [] } },
  ]
  const links: PlannedLink[] = [
    { a: { node: 'cli', name: 'eth0', ipv4: v4(0, CLIENT_HOST), ipv6: v6(0, CLIENT_HOST) }, b: { node: 'sw', name: 'p-cli' } },
    { a: { node: 'dir', name: 'eth0', ipv4: v4(0, DIRECTOR_HOST), ipv6: v6(0, DIRECTOR_HOST) }, b: { node: 'sw', name: 'p-dir' } },
  ]
  const directorPeers = [{ node: 'sw', name: 'p-dir' }]
  if (failover) {
    nodes.push({ name: 'dir2', role: 'director', sysctls: [...COMMON_SYSCTLS, ...DIRECTOR_SYSCTLS], loopback: undefined, routes: { ipv4: [], ipv6: [] } })
    links.push({ a: { node: 'dir2', name: 'eth0', ipv4: v4(0, DIRECTOR_HOST + 1), ipv6: v6(0, DIRECTOR_HOST + 1) }, b: { node: 'sw', name: 'p-dir2' } })
    directorPeers.push({ node: 'sw', name: 'p-dir2' })
  }
  for (let i = 1; i <= reals; i++) {
    const name = `rs${i}`
    nodes.push({ name, role: 'real', sysctls: [...COMMON_SYSCTLS, ...DR_REAL_SYSCTLS], loopback: vip, routes: { ipv4: [], ipv6: [] } })
    links.push({ a: { node: name, name: 'eth0', ipv4: v4(0, realHost(i)), ipv6: v6(0, realHost(i)) }, b: { node: 'sw', name: `p-${name}` } })
  }
  return { nodes, links, directorPeers, front: 'eth0', back: 'eth0' }
}

/**
 * The nodes both NAT shapes have: the switch, a client whose default gateway is the director's front
 * address, the director holding the VIP, and `reals` real servers in the back subnet whose default
 * gateway is the director's back address (NAT replies come back through it), each on a switch port.
 */
function natNodes(reals: number): { nodes: PlannedNode[]; realLinks: PlannedLink[] } {
  const vip = { ipv4: LAB_ADDRESSES.vip.ipv4, ipv6: LAB_ADDRESSES.vip.ipv6 }
  const via = (net: 0 | 1) => ({ ipv4: [['default', 'via', v4(net, DIRECTOR_HOST).address]], ipv6: [['default', 'via', v6(net, DIRECTOR_HOST).address]] })
  const nodes: PlannedNode[] = [
    { name: 'sw', role: 'switch', sysctls: SWITCH_SYSCTLS, loopback: undefined, routes: { ipv4: [], ipv6: [] } },
    { name: 'cli', role: 'client', sysctls: [...COMMON_SYSCTLS, ...CLIENT_SYSCTLS], loopback: undefined, routes: via(0) },
    { name: 'dir', role: 'director', sysctls: [...COMMON_SYSCTLS, ...DIRECTOR_SYSCTLS], loopback: vip, routes: { ipv4: [], ipv6: [] } },
  ]
  const realLinks: PlannedLink[] = []
  for (let i = 1; i <= reals; i++) {
    const name = `rs${i}`
    nodes.push({ name, role: 'real', sysctls: COMMON_SYSCTLS, loopback: undefined, routes: via(1) })
    realLinks.push({ a: { node: name, name: 'eth0', ipv4: v4(1, realHost(i)), ipv6: v6(1, realHost(i)) }, b: { node: 'sw', name: `p-${name}` } })
  }
  return { nodes, realLinks }
}

function planRouted(reals: number): Plan {
  const { nodes, realLinks } = natNodes(reals)
  // The client has the director to itself: a plain veth, no switch on the public side.
  const links: PlannedLink[] = [
    {
      a: { node: 'cli', name: 'eth0', ipv4: v4(0, CLIENT_HOST), ipv6: v6(0, CLIENT_HOST) },
      b: { node: 'dir', name: 'pub', ipv4: v4(0, DIRECTOR_HOST), ipv6: v6(0, DIRECTOR_HOST) },
    },
    { a: { node: 'dir', name: 'priv', ipv4: v4(1, DIRECTOR_HOST), ipv6: v6(1, DIRECTOR_HOST) }, b: { node: 'sw', name: 'p-dir' } },
    ...realLinks,
  ]
  return {
    nodes,
    links,
    directorPeers: [
      { node: 'cli', name: 'eth0' },
      { node: 'sw', name: 'p-dir' },
    ],
    front: 'pub',
    back: 'priv',
  }
}

// One segment (the bridge), two subnets: the client in front (10.200.0.0/24), the real servers in back
// (10.200.1.0/24), the director's one interface in both. The client and the real servers share the
// wire but not a subnet, so everything between them goes through the director, in and out of the same
// interface: a one-arm NAT director (XDP_TX both ways).
function planOneArm(reals: number): Plan {
  const { nodes, realLinks } = natNodes(reals)
  const links: PlannedLink[] = [
    { a: { node: 'cli', name: 'eth0', ipv4: v4(0, CLIENT_HOST), ipv6: v6(0, CLIENT_HOST) }, b: { node: 'sw', name: 'p-cli' } },
    {
      a: { node: 'dir', name: 'eth0', ipv4: v4(0, DIRECTOR_HOST), ipv6: v6(0, DIRECTOR_HOST), secondary: [v4(1, DIRECTOR_HOST), v6(1, DIRECTOR_HOST)] },
      b: { node: 'sw', name: 'p-dir' },
    },
    ...realLinks,
  ]
  return { nodes, links, directorPeers: [{ node: 'sw', name: 'p-dir' }], front: 'eth0', back: 'eth0' }
}

// ---------------------------------------------------------------------------------------------------
// Owner files and stale labs.

/** The process start time (clock ticks since boot, /proc/<pid>/stat field 22), or undefined if gone. */
function processStartTime(pid: number): string | undefined {
  let stat: string
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
  } catch {
    return undefined
  }
  // Field 2 (comm) may contain spaces and parentheses: count fields from the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return fields[19]
}

function pidFile(id: string): string {
  return path.join(LAB_RUN_DIR, `${id}.pid`)
}

/** Whether the process that created lab id still runs. */
function ownerAlive(id: string): boolean {
  let text: string
  try {
    text = fs.readFileSync(pidFile(id), 'utf8')
  } catch {
    return false
  }
  const [pidText, start] = text.trim().split(/\s+/)
  const pid = Number(pidText)
  if (!Number.isInteger(pid) || pid <= 0) return false
  const actual = processStartTime(pid)
  return actual !== undefined && actual === start
}

/** Names of all network namespaces (`ip netns list` prints "name (id: N)" for namespaces with an id). */
export function listNetns(): string[] {
  const out = run(['ip', 'netns', 'list'])
  return out
    .split('\n')
    .map(line => line.trim().split(/\s+/)[0] ?? '')
    .filter(name => name !== '')
}

function namespaceExists(ns: string): boolean {
  return fs.existsSync(path.join('/run/netns', ns))
}

/** SIGKILLs every process inside ns: a process left inside would keep the namespace (and its veths) alive. */
function killNamespaceProcesses(ns: string): void {
  const res = tryRun(['ip', 'netns', 'pids', ns])
  for (const word of res.stdout.split(/\s+/)) {
    const pid = Number(word)
    if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) continue
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      // Already gone.
    }
  }
}

/** Deletes ns after killing what runs inside; returns an error text if it is still there afterwards. */
/**
 * xvs pins a data plane under <bpffs>/xvs/ns<cookie>/ (src/dataplane/loader.ts), and a daemon that
 * exits leaves it there on purpose; a lab's namespace dies with the lab, so its pins go too. The
 * cookie is only known from inside the namespace, so this runs before the namespace is deleted.
 */
function removeXvsPins(ns: string): void {
  let cookie: string
  try {
    cookie = withNetns(ns, () => netnsCookie())
  } catch {
    return // no addon built, or the namespace is already gone: nothing of ours can be pinned
  }
  for (const root of new Set([process.env.XVS_BPFFS ?? '/sys/fs/bpf', '/sys/fs/bpf'])) {
    const dir = path.join(root, 'xvs', `ns${cookie}`)
    if (isBpffs(root) && fs.existsSync(dir)) fs.rmSync(dir, { recursive: true, force: true })
  }
}

function deleteNamespace(ns: string): string | undefined {
  if (!namespaceExists(ns)) return undefined
  killNamespaceProcesses(ns)
  removeXvsPins(ns)
  const res = tryRun(['ip', 'netns', 'del', ns])
  if (namespaceExists(ns)) return `ip netns del ${ns}: ${res.stderr.trim() || 'still present'}`
  return undefined
}

function checkPrefix(prefix: string): void {
  if (!PREFIX_PATTERN.test(prefix)) throw new ArgumentError(`lab prefix must be 1 to 4 lower-case letters, got ${JSON.stringify(prefix)}`)
}

/**
 * Removes labs (namespaces and owner files) with the given id prefix whose creating process is gone,
 * for instance a test run that was SIGKILLed. Labs of live processes are left alone. Returns the
 * namespaces it deleted.
 */
export function sweepStale(prefix: string = LAB_PREFIX): string[] {
  checkPrefix(prefix)
  const nsPattern = new RegExp(`^(${prefix}[0-9a-f]{6})-[a-z0-9]+$`)
  const idPattern = new RegExp(`^(${prefix}[0-9a-f]{6})\\.pid$`)
  const byId = new Map<string, string[]>()
  for (const ns of listNetns()) {
    const m = nsPattern.exec(ns)
    if (m === null) continue
    const list = byId.get(m[1]!) ?? []
    list.push(ns)
    byId.set(m[1]!, list)
  }
  let files: string[] = []
  try {
    files = fs.readdirSync(LAB_RUN_DIR)
  } catch {
    // No labs were ever created on this boot.
  }
  for (const file of files) {
    const m = idPattern.exec(file)
    if (m !== null && !byId.has(m[1]!)) byId.set(m[1]!, [])
  }
  const removed: string[] = []
  for (const [id, namespaces] of byId) {
    // The owner file is written before the first namespace and removed after the last: a lab without
    // a live owner is stale.
    if (ownerAlive(id)) continue
    for (const ns of namespaces) {
      if (deleteNamespace(ns) === undefined) removed.push(ns)
    }
    fs.rmSync(pidFile(id), { force: true })
  }
  return removed
}

// ---------------------------------------------------------------------------------------------------
// Teardown on exit.

const live = new Set<LabTopology>()
let handlersInstalled = false

/** Destroys every lab of this process that is still up. Never throws (it runs from exit handlers). */
export function destroyAllTopologies(): void {
  for (const topo of [...live]) {
    try {
      topo.destroy()
    } catch {
      // Best effort: an exit handler cannot report; sweepStale() catches what is left.
    }
  }
}

/** The labs of this process that are still up. */
export function liveTopologies(): readonly Topology[] {
  return [...live]
}

function installExitHandlers(): void {
  if (handlersInstalled) return
  handlersInstalled = true
  // 'exit' listeners must be synchronous: destroy() is, by design.
  process.on('exit', destroyAllTopologies)
  // The monitor runs before Node's default handling of an uncaught exception (or an unhandled
  // rejection turned into one) without changing it: the process still dies as it would have.
  process.on('uncaughtExceptionMonitor', destroyAllTopologies)
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      destroyAllTopologies()
      // Re-raise so the signal does what it did before we listened: the default action (terminate)
      // if nobody else listens, or the other listeners' handling.
      process.removeListener(sig, onSignal)
      process.kill(process.pid, sig)
    }
    process.on(sig, onSignal)
  }
}

// ---------------------------------------------------------------------------------------------------
// The xdp_pass fixture.

function repoRoot(): string {
  // src/lab (run as TypeScript) or dist/src/lab (compiled): climb to the package.json of xvs.
  let dir = __dirname
  for (let i = 0; i < 8; i++) {
    const pkg = path.join(dir, 'package.json')
    if (fs.existsSync(pkg)) {
      try {
        if ((JSON.parse(fs.readFileSync(pkg, 'utf8')) as { name?: string }).name === 'xvs') return dir
      } catch {
        // Not ours; keep climbing.
      }
    }
    const up = path.dirname(dir)
    if (up === dir) break
    dir = up
  }
  throw new XvsError('ELAB', `cannot find the xvs repository root above ${__dirname}`)
}

function mtimeMs(file: string): number | undefined {
  try {
    return fs.statSync(file).mtimeMs
  } catch {
    return undefined
  }
}

/**
 * Path of out/fixtures/xdp_pass.bpf.o (where `make bpf` puts it; not build/, which node-gyp wipes),
 * compiled on demand with the Makefile's clang line when it is missing or older than its source, so lab
 * tests work without a prior `make`.
 */
export function xdpPassObject(): string {
  const root = repoRoot()
  const src = path.join(root, 'test/fixtures/xdp_pass.bpf.c')
  const obj = path.join(root, 'out/fixtures/xdp_pass.bpf.o')
  const objTime = mtimeMs(obj)
  const srcTime = mtimeMs(src)
  if (objTime !== undefined && (srcTime === undefined || objTime >= srcTime)) return obj
  if (srcTime === undefined) {
    throw new XvsError('ELAB', `${obj} is missing and so is its source ${src}`, { hint: 'run make bpf' })
  }
  const triple = tryRun(['gcc', '-dumpmachine']).stdout.trim() || `${process.arch === 'arm64' ? 'aarch64' : 'x86_64'}-linux-gnu`
  fs.mkdirSync(path.dirname(obj), { recursive: true })
  // Parallel test processes may compile at once: each writes its own file and renames it into place.
  const tmp = `${obj}.${process.pid}.tmp`
  try {
    run(
      ['clang', '-O2', '-g', '-target', 'bpf', '-mcpu=v3', '-Wall', '-Werror', '-Wno-unused-function', '-Ibpf/include', `-I/usr/include/${triple}`, '-c', src, '-o', tmp],
      { cwd: root, timeoutMs: 60_000 },
    )
    fs.renameSync(tmp, obj)
  } finally {
    fs.rmSync(tmp, { force: true })
  }
  return obj
}

// ---------------------------------------------------------------------------------------------------
// The topology.

interface IpLink {
  ifindex: number
  ifname: string
  address?: string
  mtu: number
}

class Node implements LabNode {
  interfaces: LabInterface[] = []
  constructor(
    readonly name: string,
    readonly role: Role,
    readonly ns: string,
  ) {}

  iface(name: string): LabInterface {
    const found = this.interfaces.find(i => i.name === name)
    if (found === undefined) throw new ArgumentError(`lab node ${this.name} has no interface ${name} (has ${this.interfaces.map(i => i.name).join(', ')})`)
    return found
  }

  get ipv4(): string | undefined {
    return this.interfaces.find(i => i.ipv4 !== undefined)?.ipv4?.address
  }

  get ipv6(): string | undefined {
    return this.interfaces.find(i => i.ipv6 !== undefined)?.ipv6?.address
  }
}

class Director extends Node implements DirectorNode {
  constructor(
    name: string,
    ns: string,
    private readonly frontName: string,
    private readonly backName: string,
  ) {
    super(name, 'director', ns)
  }

  get front(): LabInterface {
    return this.iface(this.frontName)
  }

  get back(): LabInterface {
    return this.iface(this.backName)
  }

  override get ipv4(): string {
    return this.front.ipv4!.address
  }

  override get ipv6(): string {
    return this.front.ipv6!.address
  }
}

/** Awaits every task, then rethrows the first failure: no command may still run when teardown starts. */
async function settleAll(tasks: Promise<unknown>[]): Promise<void> {
  const results = await Promise.allSettled(tasks)
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')
  if (failed !== undefined) throw failed.reason
}

class LabTopology implements Topology {
  readonly namespaces: string[] = []
  readonly nodes: Node[] = []
  readonly vip = { ipv4: LAB_ADDRESSES.vip.ipv4, ipv6: LAB_ADDRESSES.vip.ipv6 }
  private readonly children = new Set<ChildProcess>()
  private isDestroyed = false
  private ownsPidFile = false

  constructor(
    readonly id: string,
    readonly shape: Shape,
    private readonly log: Logger,
  ) {}

  get destroyed(): boolean {
    return this.isDestroyed
  }

  get client(): HostNode {
    return this.node('cli') as HostNode
  }

  get director(): DirectorNode {
    return this.node('dir') as Director
  }

  get directors(): DirectorNode[] {
    return this.nodes.filter(n => n.role === 'director') as Director[]
  }

  get reals(): HostNode[] {
    return this.nodes.filter(n => n.role === 'real') as HostNode[]
  }

  get switch(): LabNode {
    return this.node('sw')
  }

  node(name: string): Node {
    const found = this.nodes.find(n => n.name === name)
    if (found === undefined) throw new ArgumentError(`lab ${this.id} has no node ${name} (has ${this.nodes.map(n => n.name).join(', ')})`)
    return found
  }

  private nsOf(node: NodeRef): string {
    this.checkLive()
    return typeof node === 'string' ? this.node(node).ns : node.ns
  }

  private checkLive(): void {
    if (this.isDestroyed) throw new XvsError('ELAB', `lab ${this.id} is already destroyed`)
  }

  exec(node: NodeRef, argv: readonly string[], opts?: RunOptions): string {
    return run(inNetns(this.nsOf(node), argv), opts)
  }

  execAsync(node: NodeRef, argv: readonly string[], opts?: RunOptions): Promise<string> {
    return runAsync(inNetns(this.nsOf(node), argv), opts)
  }

  spawn(node: NodeRef, argv: readonly string[], opts: LabSpawnOptions = {}): ChildProcess {
    const full = inNetns(this.nsOf(node), argv)
    // `ip netns exec` execs the command in place (no fork), so child.pid is the command itself.
    const child = spawn(full[0]!, full.slice(1), {
      stdio: opts.stdio ?? ['pipe', 'pipe', 'pipe'],
      env: opts.env ?? process.env,
      ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}),
    })
    this.children.add(child)
    child.once('exit', () => this.children.delete(child))
    // A spawn failure (ENOENT) is reported through 'error'; without a listener it would crash the process.
    child.once('error', err => this.log.warn({ err, argv }, 'lab child failed'))
    return child
  }

  attachXdp(node: NodeRef, ifname: string, object: string, section = 'xdp'): void {
    run(ipIn(this.nsOf(node), ['link', 'set', 'dev', ifname, 'xdpdrv', 'obj', object, 'sec', section]), { timeoutMs: 30_000 })
  }

  attachXdpPass(node: NodeRef, ifname: string): void {
    this.attachXdp(node, ifname, xdpPassObject(), 'xdp')
  }

  detachXdp(node: NodeRef, ifname: string): void {
    run(ipIn(this.nsOf(node), ['link', 'set', 'dev', ifname, 'xdpdrv', 'off']))
  }

  linkShow(node: NodeRef): string {
    return run(ipIn(this.nsOf(node), ['link', 'show']))
  }

  netstat(node: NodeRef): Record<string, number> {
    const out = this.exec(node, ['nstat', '-asz', '--json'])
    const parsed = JSON.parse(out) as { kernel?: Record<string, number> }
    return parsed.kernel ?? {}
  }

  destroy(): void {
    if (this.isDestroyed) return
    this.isDestroyed = true
    for (const child of this.children) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    }
    this.children.clear()
    const failures: string[] = []
    for (const ns of [...this.namespaces].reverse()) {
      const failure = deleteNamespace(ns)
      if (failure !== undefined) failures.push(failure)
    }
    // Keep the owner file (and the registration) while a namespace survives, so this process's exit
    // handler retries and a later sweepStale() finds it once we are gone.
    if (failures.length > 0) {
      this.isDestroyed = false
      this.namespaces.splice(0, this.namespaces.length, ...this.namespaces.filter(namespaceExists))
      throw new XvsError('ELAB', `lab ${this.id}: ${failures.length} namespace(s) could not be deleted: ${failures[0]}`)
    }
    if (this.ownsPidFile) fs.rmSync(pidFile(this.id), { force: true })
    live.delete(this)
    this.log.debug({ lab: this.id }, 'lab destroyed')
  }

  // --- creation ---------------------------------------------------------------------------------

  /** Claims the id by creating its owner file; false if another lab already has it. */
  claim(): boolean {
    fs.mkdirSync(LAB_RUN_DIR, { recursive: true })
    const start = processStartTime(process.pid) ?? '0'
    // Written aside and hard-linked into place: link() is atomic and fails if the name exists, so a
    // concurrent sweepStale() never reads a half-written file (and takes the lab for dead).
    const tmp = `${pidFile(this.id)}.${process.pid}.tmp`
    try {
      fs.writeFileSync(tmp, `${process.pid} ${start}\n`)
      fs.linkSync(tmp, pidFile(this.id))
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false
      throw err
    } finally {
      fs.rmSync(tmp, { force: true })
    }
    this.ownsPidFile = true
    live.add(this)
    return true
  }

  async build(plan: Plan, opts: Required<Pick<TopologyOptions, 'xdpPass' | 'checksumOffload'>> & { mtu: Record<Role, number> }): Promise<void> {
    const nsName = (node: string): string => `${this.id}-${node}`
    const ip = (node: string, args: string[]): Promise<string> => runAsync(ipIn(nsName(node), args))
    const alias = `xvs-lab ${this.id}`

    // 1. Namespaces, one by one so that destroy() knows exactly what exists.
    for (const p of plan.nodes) {
      const ns = nsName(p.name)
      if (namespaceExists(ns)) throw new XvsError('ELAB', `network namespace ${ns} already exists`)
      await runAsync(['ip', 'netns', 'add', ns])
      this.namespaces.push(ns)
      this.nodes.push(p.role === 'director' ? new Director(p.name, ns, plan.front, plan.back) : new Node(p.name, p.role, ns))
    }
    await settleAll(
      plan.nodes.map(async p => {
        await ip(p.name, ['link', 'set', 'dev', 'lo', 'up'])
        if (p.sysctls.length > 0) await runAsync(inNetns(nsName(p.name), ['sysctl', '-q', '-w', ...p.sysctls]))
      }),
    )

    // 2. The bridge, then the veths, each created with both ends already in their namespaces.
    const sw = plan.nodes.find(n => n.role === 'switch')
    if (sw !== undefined) {
      await ip(sw.name, ['link', 'add', 'name', 'br0', 'type', 'bridge', 'stp_state', '0', 'mcast_snooping', '0'])
    }
    for (const link of plan.links) {
      await ip(link.a.node, ['link', 'add', 'name', link.a.name, 'type', 'veth', 'peer', 'name', link.b.name, 'netns', nsName(link.b.node)])
    }
    const ends = plan.links.flatMap(l => [l.a, l.b])

    // 3. Per namespace, in order: bridge ports, MTU/alias/up, checksums, addresses, routes.
    await settleAll(
      plan.nodes.map(async p => {
        const mine = ends.filter(e => e.node === p.name)
        const mtu = String(opts.mtu[p.role])
        if (p.role === 'switch') {
          for (const e of mine) await ip(p.name, ['link', 'set', 'dev', e.name, 'master', 'br0'])
          // Set after the ports join: a bridge otherwise follows the smallest port MTU.
          await ip(p.name, ['link', 'set', 'dev', 'br0', 'mtu', mtu, 'alias', alias, 'up'])
        }
        for (const e of mine) {
          await ip(p.name, ['link', 'set', 'dev', e.name, 'mtu', mtu, 'alias', alias, 'up'])
          // veth senders leave TCP/UDP checksums partial; after XDP_TX or a redirect that metadata is
          // lost and the receiver drops the packet (TESTBED.md). With tx off, every checksum is complete.
          if (!opts.checksumOffload) await runAsync(inNetns(nsName(p.name), ['ethtool', '-K', e.name, 'tx', 'off']))
          if (e.ipv4 !== undefined) await ip(p.name, ['addr', 'add', `${e.ipv4.address}/${e.ipv4.prefixLength}`, 'dev', e.name])
          if (e.ipv6 !== undefined) await ip(p.name, ['-6', 'addr', 'add', `${e.ipv6.address}/${e.ipv6.prefixLength}`, 'dev', e.name, 'nodad'])
          for (const a of e.secondary ?? []) {
            await ip(p.name, a.address.includes(':') ? ['-6', 'addr', 'add', `${a.address}/${a.prefixLength}`, 'dev', e.name, 'nodad'] : ['addr', 'add', `${a.address}/${a.prefixLength}`, 'dev', e.name])
          }
        }
        if (p.loopback !== undefined) {
          await ip(p.name, ['addr', 'add', `${p.loopback.ipv4}/32`, 'dev', 'lo'])
          await ip(p.name, ['-6', 'addr', 'add', `${p.loopback.ipv6}/128`, 'dev', 'lo'])
        }
      }),
    )
    // Routes need their gateways' prefixes, which exist once every address is in place.
    await settleAll(
      plan.nodes.map(async p => {
        for (const r of p.routes.ipv4) await ip(p.name, ['route', 'add', ...r])
        for (const r of p.routes.ipv6) await ip(p.name, ['-6', 'route', 'add', ...r])
      }),
    )

    // 4. XDP_TX and redirects into a veth are delivered only if its peer runs an XDP program.
    if (opts.xdpPass) {
      const object = xdpPassObject()
      for (const target of plan.directorPeers) await ip(target.node, ['link', 'set', 'dev', target.name, 'xdpdrv', 'obj', object, 'sec', 'xdp'])
    }

    // 5. Read back what the kernel assigned: ifindexes and MACs.
    const links = new Map<string, IpLink[]>()
    await settleAll(
      plan.nodes.map(async p => {
        links.set(p.name, JSON.parse(await ip(p.name, ['-j', 'link', 'show'])) as IpLink[])
      }),
    )
    const kernelLink = (node: string, name: string): IpLink => {
      const found = links.get(node)?.find(l => l.ifname === name)
      if (found === undefined) throw new XvsError('ELAB', `lab ${this.id}: ${name} missing in ${nsName(node)} after creation`)
      return found
    }
    const toIface = (end: PlannedEnd, peer: PlannedEnd | undefined): LabInterface => {
      const k = kernelLink(end.node, end.name)
      const pk = peer === undefined ? undefined : kernelLink(peer.node, peer.name)
      return {
        node: end.node,
        ns: nsName(end.node),
        name: end.name,
        ifindex: k.ifindex,
        mac: k.address ?? '',
        mtu: k.mtu,
        ipv4: end.ipv4,
        ipv6: end.ipv6,
        secondary: end.secondary ?? [],
        peer: peer === undefined || pk === undefined ? undefined : { node: peer.node, ns: nsName(peer.node), name: peer.name, ifindex: pk.ifindex, mac: pk.address ?? '' },
      }
    }
    for (const link of plan.links) {
      this.node(link.a.node).interfaces.push(toIface(link.a, link.b))
      this.node(link.b.node).interfaces.push(toIface(link.b, link.a))
    }
    if (sw !== undefined) this.node(sw.name).interfaces.push(toIface({ node: sw.name, name: 'br0' }, undefined))
  }
}

function resolveMtu(mtu: TopologyOptions['mtu']): Record<Role, number> {
  const base = typeof mtu === 'number' ? mtu : 1500
  const per = typeof mtu === 'object' ? mtu : {}
  const out: Record<Role, number> = {
    client: per.client ?? base,
    director: per.director ?? base,
    real: per.real ?? base,
    switch: per.switch ?? base,
  }
  for (const [role, value] of Object.entries(out)) {
    if (!Number.isInteger(value) || value < MIN_MTU || value > MAX_MTU) {
      throw new ArgumentError(`lab mtu for ${role} must be an integer from ${MIN_MTU} to ${MAX_MTU} (the veth limit with XDP attached), got ${value}`)
    }
  }
  return out
}

/** Creates a lab; on any failure, removes whatever it had created and rethrows. */
export async function createTopology(opts: TopologyOptions = {}): Promise<Topology> {
  const shape = opts.shape ?? 'bridge'
  if (shape !== 'bridge' && shape !== 'routed' && shape !== 'onearm') throw new ArgumentError(`lab shape must be 'bridge', 'routed' or 'onearm', got ${JSON.stringify(shape)}`)
  const reals = opts.reals ?? 2
  if (!Number.isInteger(reals) || reals < 1 || reals > MAX_REALS) throw new ArgumentError(`lab reals must be an integer from 1 to ${MAX_REALS}, got ${reals}`)
  const directors = opts.directors ?? 1
  if (directors !== 1 && directors !== 2) throw new ArgumentError(`lab directors must be 1 or 2, got ${JSON.stringify(directors)}`)
  if (directors === 2 && shape !== 'bridge') throw new ArgumentError('a lab with two directors is of the bridge shape')
  const mtu = resolveMtu(opts.mtu)
  const prefix = opts.prefix ?? LAB_PREFIX
  checkPrefix(prefix)
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    throw new XvsError('EPERM', 'the lab needs root: it creates network namespaces, veths and XDP attachments')
  }
  const log = (opts.log ?? silentLogger).child({ component: 'lab' })
  if (opts.sweep ?? true) {
    const swept = sweepStale(prefix)
    if (swept.length > 0) log.info({ namespaces: swept }, 'removed stale lab namespaces')
  }
  installExitHandlers()

  let topo: LabTopology | undefined
  for (let attempt = 0; attempt < 8 && topo === undefined; attempt++) {
    const candidate = new LabTopology(`${prefix}${randomBytes(3).toString('hex')}`, shape, log)
    if (candidate.claim()) topo = candidate
  }
  if (topo === undefined) throw new XvsError('ELAB', `could not claim a free lab id under ${LAB_RUN_DIR}`)

  const plan = shape === 'bridge' ? planBridge(reals, directors) : shape === 'routed' ? planRouted(reals) : planOneArm(reals)
  try {
    await topo.build(plan, { xdpPass: opts.xdpPass ?? true, checksumOffload: opts.checksumOffload ?? false, mtu })
  } catch (err) {
    try {
      topo.destroy()
    } catch (cleanupErr) {
      log.error({ err: cleanupErr, lab: topo.id }, 'lab cleanup after a failed creation failed')
    }
    if (err instanceof XvsError) throw err
    throw new XvsError('ELAB', `lab ${topo.id} (${shape}) could not be created: ${err instanceof Error ? err.message : String(err)}`, { cause: err })
  }
  log.debug({ lab: topo.id, shape, namespaces: topo.namespaces }, 'lab up')
  return topo
}

/** Runs fn with a fresh lab and destroys it afterwards, whether fn returns or throws. */
export async function withTopology<T>(opts: TopologyOptions, fn: (topo: Topology) => Promise<T> | T): Promise<T> {
  const topo = await createTopology(opts)
  try {
    return await fn(topo)
  } finally {
    topo.destroy()
  }
}
