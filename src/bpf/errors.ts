// SPDX-License-Identifier: GPL-2.0-only
// BpfError: every libbpf or syscall failure of the binding, with a stable code (EPERM, ENOENT,
// E2BIG, ...), the errno, the operation and its target, the verifier log where there is one, and
// a hint an operator can act on.
import { XvsError } from '../errors'

export interface BpfErrorProps {
  code?: string
  errno?: number
  op?: string
  target?: string
  log?: string
}

function hintFor(p: BpfErrorProps): string | undefined {
  const op = p.op ?? ''
  // The verifier answers EACCES or EINVAL; its log, not the errno, is what matters then.
  if (op === 'bpf_object__load' && p.log?.includes('PROG LOAD LOG'))
    return 'the verifier rejected a program: err.log has its log'
  switch (p.code) {
    case 'EPERM':
    case 'EACCES':
      return 'run as root (BPF and XDP need CAP_BPF, CAP_NET_ADMIN and CAP_SYS_ADMIN)'
    case 'ENOENT':
      if (op === 'bpf_obj_get' || op === 'bpf_obj_pin')
        return 'nothing is pinned there: is a bpffs mounted? (mount -t bpf bpf /sys/fs/bpf)'
      if (op === 'bpf_object__open_file') return "the object file is missing: build it with 'make'"
      return undefined
    case 'ENODEV':
      return 'no such interface in this network namespace (ip link show)'
    case 'EEXIST':
    case 'EBUSY':
      if (op.startsWith('bpf_xdp') || op === 'bpf_link_create')
        return 'another XDP program is attached to this interface: detach it first, or replace it'
      return undefined
    case 'E2BIG':
      return 'the map is full, or a size exceeds a limit: raise max entries or shrink the request'
    default:
      if (op === 'bpf_object__load') return 'the kernel rejected the object; err.log has the verifier log'
      return undefined
  }
}

export class BpfError extends XvsError {
  readonly errno: number
  readonly op: string
  readonly target: string
  readonly log: string | undefined

  constructor(message: string, props: BpfErrorProps = {}) {
    const hint = hintFor(props)
    super(props.code ?? 'EBPF', message, hint === undefined ? {} : { hint })
    this.errno = props.errno ?? 0
    this.op = props.op ?? ''
    this.target = props.target ?? ''
    this.log = props.log
  }
}
