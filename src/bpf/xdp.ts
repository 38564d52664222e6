// SPDX-License-Identifier: GPL-2.0-only
// Attaching XDP programs to interfaces, both ways the kernel offers:
//  - a bpf_link: owned by its fd or a pin; updated atomically to a new program; gone when the last
//    fd and pin are gone;
//  - the netlink attachment: outlives every fd and pin; atomic replace with XDP_FLAGS_REPLACE.
// Interfaces are resolved in the calling thread's network namespace (see netns.ts).
import { native, type NativeLinkInfo } from './native'
import { FdHolder } from './fd'
import { BpfProgram } from './prog'
import { XdpAttached, XdpFlags } from './constants'
import { checkIfname, checkString, checkUint } from './validate'

export type XdpMode = 'native' | 'generic'
export type Iface = string | number

export function ifindexOf(iface: Iface): number {
  return typeof iface === 'number' ? checkUint('ifindex', iface) : native().ifNameToIndex(checkIfname(iface))
}

export function ifnameOf(ifindex: number): string {
  return native().ifIndexToName(checkUint('ifindex', ifindex))
}

/** Every interface of the calling thread's network namespace. */
export function interfaces(): { ifindex: number; name: string }[] {
  return native().ifList()
}

function modeFlag(mode: XdpMode | undefined): number {
  return mode === 'generic' ? XdpFlags.SKB_MODE : mode === 'native' ? XdpFlags.DRV_MODE : 0
}

export class XdpLink extends FdHolder {
  /** Takes ownership of `fd`. */
  constructor(fd: number) {
    super(fd)
  }

  /** Attach `prog` to `iface` through a new bpf_link. Mode: 'native' (driver) or 'generic'. */
  static attach(prog: BpfProgram, iface: Iface, opts: { mode?: XdpMode } = {}): XdpLink {
    return new XdpLink(native().xdpLinkCreate(prog.fd, ifindexOf(iface), modeFlag(opts.mode)))
  }

  static fromPin(path: string): XdpLink {
    return new XdpLink(native().objGet(checkString('pin path', path)))
  }

  static fromId(id: number): XdpLink {
    return new XdpLink(native().linkFdById(checkUint('link id', id)))
  }

  protected describe(): string { return `XDP link fd ${this.closed ? -1 : this.fd}` }

  info(): NativeLinkInfo {
    return native().linkInfo(this.fd)
  }

  /** Swap in `prog` atomically; with `expected`, only if that program is still the attached one. */
  update(prog: BpfProgram, opts: { expected?: BpfProgram } = {}): void {
    native().linkUpdate(this.fd, prog.fd, opts.expected?.fd ?? 0)
  }

  /** Detach the program now (the link object stays until closed, defunct). */
  detach(): void {
    native().linkDetach(this.fd)
  }
}

/** Netlink attachment: persists without any fd or pin. `replace`: swap only if that one is attached. */
export function xdpAttach(iface: Iface, prog: BpfProgram, opts: { mode?: XdpMode; replace?: BpfProgram } = {}): void {
  let flags = modeFlag(opts.mode)
  if (opts.replace) flags |= XdpFlags.REPLACE
  else flags |= XdpFlags.UPDATE_IF_NOEXIST
  native().xdpAttach(ifindexOf(iface), prog.fd, flags, opts.replace?.fd)
}

/** Remove a netlink attachment. With `expected`, only if that program is the attached one. */
export function xdpDetach(iface: Iface, opts: { mode?: XdpMode; expected?: BpfProgram } = {}): void {
  let flags = modeFlag(opts.mode)
  if (opts.expected) flags |= XdpFlags.REPLACE
  native().xdpDetach(ifindexOf(iface), flags, opts.expected?.fd)
}

export interface XdpQueryResult {
  /** What is attached: none, native (driver), generic (skb), hw, or several. */
  mode: 'none' | 'native' | 'generic' | 'hw' | 'multi'
  /** The attached program's id (0 if none; with several modes, see the per-mode ids). */
  progId: number
  nativeProgId: number
  genericProgId: number
  hwProgId: number
}

export function xdpQuery(iface: Iface): XdpQueryResult {
  const q = native().xdpQuery(ifindexOf(iface))
  const modes = { [XdpAttached.NONE]: 'none', [XdpAttached.DRV]: 'native', [XdpAttached.SKB]: 'generic', [XdpAttached.HW]: 'hw', [XdpAttached.MULTI]: 'multi' } as const
  return {
    mode: modes[q.attachMode as keyof typeof modes] ?? 'multi',
    progId: q.progId || q.drvProgId || q.skbProgId || q.hwProgId,
    nativeProgId: q.drvProgId,
    genericProgId: q.skbProgId,
    hwProgId: q.hwProgId,
  }
}
