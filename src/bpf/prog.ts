// SPDX-License-Identifier: GPL-2.0-only
// A loaded BPF program by fd: info, pinning, and BPF_PROG_TEST_RUN.
import { native, type NativeProgInfo } from './native'
import { FdHolder } from './fd'
import { BPF_F_TEST_XDP_LIVE_FRAMES, xdpActionName } from './constants'
import { checkBuffer, checkString, checkUint } from './validate'

export interface TestRunOptions {
  /** Run the program this many times on the same buffer (the average time is reported). */
  repeat?: number
  /** Room for the output packet; default: input length + 256 (enough for pushed headers). */
  dataSizeOut?: number
  /** struct xdp_md for XDP programs (ingress_ifindex, rx_queue_index, ...). */
  ctxIn?: Buffer
  /** XDP live-frames mode: XDP_TX and redirects really transmit (packet generators). */
  liveFrames?: boolean
  /** Live frames: packets per batch. */
  batchSize?: number
}

export interface TestRunResult {
  /** The program's return value (for XDP, the action). */
  retval: number
  /** For XDP programs, the action's name: 'pass', 'tx', 'drop', ... */
  action: string
  /** The packet as the program left it (empty in live-frames mode). */
  data: Buffer
  /** Average nanoseconds per run, as the kernel measured it. */
  durationNs: number
}

export class BpfProgram extends FdHolder {
  readonly name: string

  /** Takes ownership of `fd`. */
  constructor(fd: number, name?: string) {
    super(fd)
    this.name = name ?? native().progInfo(fd).name
  }

  static fromId(id: number): BpfProgram {
    return new BpfProgram(native().progFdById(checkUint('program id', id)))
  }

  static fromPin(path: string): BpfProgram {
    return new BpfProgram(native().objGet(checkString('pin path', path)))
  }

  protected describe(): string { return `program ${this.name}` }

  info(): NativeProgInfo {
    return native().progInfo(this.fd)
  }

  get id(): number { return this.info().id }

  testRun(data: Buffer, opts: TestRunOptions = {}): TestRunResult {
    checkBuffer('packet', data)
    const repeat = checkUint('repeat', opts.repeat ?? 1, 1 << 30)
    const r = native().progTestRun(this.fd, data, {
      repeat,
      dataSizeOut: opts.liveFrames ? 0 : checkUint('dataSizeOut', opts.dataSizeOut ?? data.length + 256, 1 << 20),
      ...(opts.ctxIn ? { ctxIn: checkBuffer('ctxIn', opts.ctxIn) } : {}),
      flags: opts.liveFrames ? BPF_F_TEST_XDP_LIVE_FRAMES : 0,
      batchSize: checkUint('batchSize', opts.batchSize ?? 0, 1 << 16),
    })
    return { retval: r.retval, action: xdpActionName(r.retval), data: r.dataOut, durationNs: r.duration }
  }
}
