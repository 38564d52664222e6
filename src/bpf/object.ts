// SPDX-License-Identifier: GPL-2.0-only
// A BPF object file: open, adjust before load, load, then take programs and maps out of it.
import { native, type NativeObject, type NativeProgramDesc, type NativeMapDesc } from './native'
import { BpfMap } from './map'
import { BpfProgram } from './prog'
import { checkBuffer, checkString, checkUint } from './validate'
import { ArgumentError } from '../errors'

export interface OpenOptions {
  /**
   * A bpffs directory: maps declared with `__uint(pinning, LIBBPF_PIN_BY_NAME)` are reused from
   * `<pinRoot>/<map name>` when a compatible one is pinned there, and pinned there otherwise.
   */
  pinRoot?: string
}

export class BpfObject {
  readonly path: string
  #obj: NativeObject | null
  #loaded = false

  private constructor(path: string, obj: NativeObject) {
    this.path = path
    this.#obj = obj
  }

  static open(path: string, opts: OpenOptions = {}): BpfObject {
    checkString('object path', path)
    const o = opts.pinRoot === undefined ? {} : { pinRoot: checkString('pinRoot', opts.pinRoot) }
    const N = native().NativeObject
    return new BpfObject(path, new N(path, o))
  }

  private get obj(): NativeObject {
    if (!this.#obj) throw new ArgumentError(`BPF object ${this.path} is closed`)
    return this.#obj
  }

  get loaded(): boolean { return this.#loaded }

  programs(): NativeProgramDesc[] { return this.obj.programs() }
  maps(): NativeMapDesc[] { return this.obj.maps() }

  private beforeLoad(what: string): NativeObject {
    if (this.#loaded) throw new ArgumentError(`${what}: ${this.path} is already loaded`)
    return this.obj
  }

  setMaxEntries(map: string, n: number): this {
    this.beforeLoad('setMaxEntries').setMaxEntries(checkString('map name', map), checkUint('max entries', n))
    return this
  }

  /** Reuse the map pinned at `path` if compatible (else create and pin it there at load). */
  setPinPath(map: string, path: string | null): this {
    this.beforeLoad('setPinPath').setPinPath(checkString('map name', map), path === null ? null : checkString('pin path', path))
    return this
  }

  /** Use an existing map (e.g. found by id) in place of the one the object declares. */
  reuseMap(name: string, map: BpfMap): this {
    this.beforeLoad('reuseMap').reuseMapFd(checkString('map name', name), map.fd)
    return this
  }

  /** Set a global (`const volatile` in .rodata, or .data/.bss) before load; size must match. */
  setGlobal(name: string, value: Buffer): this {
    this.beforeLoad('setGlobal').setGlobal(checkString('variable name', name), checkBuffer('value', value))
    return this
  }

  setGlobalU32(name: string, v: number): this {
    const b = Buffer.alloc(4)
    b.writeUInt32LE(checkUint(name, v))
    return this.setGlobal(name, b)
  }

  setGlobalU64(name: string, v: bigint): this {
    const b = Buffer.alloc(8)
    b.writeBigUInt64LE(v)
    return this.setGlobal(name, b)
  }

  /** Load every program into the kernel; a verifier rejection throws BpfError with `log`. */
  load(): this {
    this.beforeLoad('load').load()
    this.#loaded = true
    return this
  }

  /** A program of the loaded object, with its own fd (valid after close()). */
  program(name: string): BpfProgram {
    return new BpfProgram(this.obj.programFd(checkString('program name', name)), name)
  }

  /** A map of the loaded object, with its own fd (valid after close()). */
  map(name: string): BpfMap {
    return new BpfMap(this.obj.mapFd(checkString('map name', name)))
  }

  /** Release libbpf's object; programs and maps taken out of it stay valid until their close(). */
  close(): void {
    this.#obj?.close()
    this.#obj = null
  }
}
