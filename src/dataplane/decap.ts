// SPDX-License-Identifier: GPL-2.0-only
// The decap program for real servers of tun services: strips the outer IPv4/IPv6 header of tunnel
// packets addressed to this host so the inner packet reaches the VIP held on lo (this kernel has
// no ipip module, and XDP is faster anyway). Loaded and found like the director, per namespace.
import fs from 'node:fs'
import path from 'node:path'
import { execFileSync } from 'node:child_process'
import { BpfMap, BpfObject, BpfProgram, interfaces, xdpQuery, type XdpMode } from '../bpf'
import { ABI_VERSION, DECAP_STRUCTS, DecapKey, abiDiff, objectPath } from './abi'
import { attach, bpffsRoot, detachOne, pinDir, replaceAttachment, DataplaneError, type Attachment } from './loader'
import { silentLogger, type Logger } from '../log'

export const DECAP_PROGRAM = 'xvs_decap'

export interface DecapOptions {
  ifaces: string[]
  /** Outer destinations to decapsulate; default every global address of the interfaces. */
  addresses?: string[]
  mode?: XdpMode
  log?: Logger
}

function decapPins(): string | null {
  const root = bpffsRoot()
  return root ? path.join(pinDir(root), 'decap') : null
}

/** Global (non-link-local) addresses of an interface, from the kernel. */
export function interfaceAddresses(ifname: string): string[] {
  const out = execFileSync('ip', ['-j', 'addr', 'show', 'dev', ifname], { encoding: 'utf8', timeout: 5000 })
  const rows = JSON.parse(out) as { addr_info?: { local: string; scope: string }[] }[]
  return (rows[0]?.addr_info ?? []).filter((a) => a.scope === 'global').map((a) => a.local)
}

function attachedDecap(): { att: Attachment; prog: BpfProgram }[] {
  const out: { att: Attachment; prog: BpfProgram }[] = []
  const pins = decapPins()
  for (const i of interfaces()) {
    const q = xdpQuery(i.ifindex)
    const id = q.nativeProgId || q.genericProgId
    if (!id) continue
    const p = BpfProgram.fromId(id)
    if (p.name !== DECAP_PROGRAM) { p.close(); continue }
    const via = pins && fs.existsSync(path.join(pins, `link_${i.name}`)) ? 'link' : 'netlink'
    out.push({ att: { ifname: i.name, ifindex: i.ifindex, mode: q.nativeProgId ? 'native' : 'generic', via, progId: id }, prog: p })
  }
  return out
}

/** Load decap on `ifaces` (replacing a running decap atomically, keeping its address map). */
export function loadDecap(opts: DecapOptions): { attached: string[]; replaced: string[]; addresses: string[] } {
  const log = (opts.log ?? silentLogger).child({ component: 'decap' })
  const file = objectPath('decap')
  const drift = abiDiff(file, DECAP_STRUCTS)
  if (drift.length) throw new DataplaneError(`decap.bpf.o does not match this xvs: ${drift[0]}`, { hint: "rebuild with 'make'" })
  const addresses = opts.addresses ?? [...new Set(opts.ifaces.flatMap(interfaceAddresses))]
  if (addresses.length === 0) throw new DataplaneError(`no address on ${opts.ifaces.join(', ')} to decapsulate for`, { hint: 'name one with --address' })
  const running = attachedDecap()
  const pins = decapPins()
  if (pins) fs.mkdirSync(pins, { recursive: true })
  const obj = BpfObject.open(file)
  let prog: BpfProgram
  let addrMap: BpfMap
  try {
    if (running[0]) {
      const keep = running[0].prog.info().mapIds.map((id) => BpfMap.fromId(id))
      for (const m of keep) if (m.name === 'xvs_decap_addrs' || m.name === 'xvs_decap_ctrs') obj.reuseMap(m.name, m)
      obj.load()
      keep.forEach((m) => m.close())
    } else {
      obj.load()
    }
    prog = obj.program(DECAP_PROGRAM)
    addrMap = obj.map('xvs_decap_addrs')
  } finally {
    obj.close()
  }
  const zero = Buffer.alloc(4)
  try {
    for (const a of addresses) addrMap.update(DecapKey.encode({ addr: a }), zero)
  } finally {
    addrMap.close()
  }
  const attached: string[] = []
  const replaced: string[] = []
  for (const ifname of opts.ifaces) {
    const old = running.find((r) => r.att.ifname === ifname)
    if (old) { replaceAttachment(ifname, old.att, prog, old.prog, pins); replaced.push(ifname) }
    else { attach(ifname, prog, opts.mode ?? 'native', pins); attached.push(ifname) }
  }
  for (const r of running) r.prog.close()
  prog.close()
  log.info({ attached, replaced, addresses, abi: ABI_VERSION }, 'decap loaded')
  return { attached, replaced, addresses }
}

/** Detach decap from `ifaces` (default: everywhere in this namespace). */
export function unloadDecap(opts: { ifaces?: string[] } = {}): string[] {
  const pins = decapPins()
  const done: string[] = []
  for (const r of attachedDecap()) {
    if (!opts.ifaces || opts.ifaces.includes(r.att.ifname)) {
      detachOne(r.att.ifname, pins)
      done.push(r.att.ifname)
    }
    r.prog.close()
  }
  const left = attachedDecap()
  left.forEach((r) => r.prog.close())
  if (pins && left.length === 0 && fs.existsSync(pins)) fs.rmSync(pins, { recursive: true, force: true })
  return done
}
