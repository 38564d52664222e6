// SPDX-License-Identifier: GPL-2.0-only
// Ownership of the file descriptors the addon hands out: one holder per fd, closed once, by
// close() or, if its owner forgot, when the holder is garbage-collected.
import { native } from './native'
import { ArgumentError } from '../errors'

const registry = new FinalizationRegistry<number>((fd) => {
  try { native().closeFd(fd) } catch { /* already gone with the addon */ }
})

export abstract class FdHolder {
  #fd: number
  readonly #token = {}

  protected constructor(fd: number) {
    this.#fd = fd
    registry.register(this, fd, this.#token)
  }

  /** The file descriptor; throws once closed. */
  get fd(): number {
    if (this.#fd < 0) throw new ArgumentError(`${this.describe()} is closed`)
    return this.#fd
  }

  get closed(): boolean {
    return this.#fd < 0
  }

  close(): void {
    if (this.#fd < 0) return
    registry.unregister(this.#token)
    native().closeFd(this.#fd)
    this.#fd = -1
  }

  /** Pin into a bpffs (the path's directory must be on one). */
  pin(path: string): void {
    native().objPin(this.fd, path)
  }

  protected abstract describe(): string
}
