// SPDX-License-Identifier: GPL-2.0-only
// The one place the native addon is loaded, and the one typed description of what it exports.
// Everything here is called only through the classes of src/bpf/, which validate arguments first.
import path from 'node:path'
import fs from 'node:fs'

export interface NativeProgramDesc { name: string; section: string; type: number; insnCount?: number }
export interface NativeMapDesc {
  name: string; type: number; keySize: number; valueSize: number; maxEntries: number
  internal: boolean; pinPath?: string; reused: boolean
}
export interface NativeMapInfo {
  id: number; name: string; type: number; keySize: number; valueSize: number; maxEntries: number
  flags: number; btfId: number
}
export interface NativeProgInfo {
  id: number; name: string; type: number; tag: string; xlatedLen: number; jitedLen: number
  verifiedInsns: number; btfId: number; loadTime: number; runTimeNs: number; runCount: number; mapIds: number[]
}
export interface NativeLinkInfo { id: number; type: number; progId: number; ifindex?: number }
export interface NativeXdpQuery { attachMode: number; progId: number; drvProgId: number; skbProgId: number; hwProgId: number }
export interface NativeTestRunOpts {
  repeat?: number; dataSizeOut?: number; ctxIn?: Buffer; ctxSizeOut?: number; flags?: number; cpu?: number
  batchSize?: number
}
export interface NativeTestRunResult { retval: number; duration: number; dataOut: Buffer; ctxOut?: Buffer }
export interface NativeRawPacket {
  data: Buffer; truncated: boolean; src: Buffer | null; dst: Buffer | null; hops: number; ifindex: number
}
/** An opaque uv_poll_t handle (pollStart). */
export type NativePollHandle = { readonly __brand: 'NativePollHandle' }
export interface NativeBtfStruct { size: number; members: { name: string; offset: number; size: number; bitSize: number }[] }

export interface NativeObject {
  programs(): NativeProgramDesc[]
  maps(): NativeMapDesc[]
  setMaxEntries(map: string, n: number): void
  setPinPath(map: string, path: string | null): void
  reuseMapFd(map: string, fd: number): void
  setGlobal(name: string, value: Buffer): void
  load(): void
  programFd(name: string): number
  mapFd(name: string): number
  close(): void
}

export interface NativeBinding {
  setErrorClass(cls: new (message: string, props: Record<string, unknown>) => Error): void
  NativeObject: new (path: string, opts: { pinRoot?: string }) => NativeObject
  mapCreate(type: number, name: string, keySize: number, valueSize: number, maxEntries: number, flags: number,
    innerMapFd?: number): number
  mapInfo(fd: number): NativeMapInfo
  mapLookup(fd: number, key: Buffer, valueSize: number, flags: number): Buffer | null
  mapUpdate(fd: number, key: Buffer, value: Buffer, flags: number): void
  mapDelete(fd: number, key: Buffer): boolean
  mapNextKey(fd: number, key: Buffer | null, keySize: number): Buffer | null
  mapLookupBatch(fd: number, token: Buffer | null, tokenSize: number, keySize: number, valueSize: number,
    maxCount: number): { keys: Buffer; values: Buffer; count: number; token: Buffer | null }
  mapUpdateBatch(fd: number, keys: Buffer, values: Buffer, count: number, flags: number): number
  mapDeleteBatch(fd: number, keys: Buffer, count: number): number
  progTestRun(fd: number, data: Buffer, opts: NativeTestRunOpts): NativeTestRunResult
  progInfo(fd: number): NativeProgInfo
  progFdById(id: number): number
  mapFdById(id: number): number
  linkFdById(id: number): number
  objPin(fd: number, path: string): void
  objGet(path: string): number
  closeFd(fd: number): void
  numPossibleCpus(): number
  isBpffs(path: string): boolean
  xdpLinkCreate(progFd: number, ifindex: number, flags: number): number
  linkUpdate(linkFd: number, progFd: number, oldProgFd: number): void
  linkDetach(linkFd: number): void
  linkInfo(linkFd: number): NativeLinkInfo
  xdpAttach(ifindex: number, progFd: number, flags: number, oldProgFd?: number): void
  xdpDetach(ifindex: number, flags: number, oldProgFd?: number): void
  xdpQuery(ifindex: number): NativeXdpQuery
  ifList(): { ifindex: number; name: string }[]
  ifNameToIndex(name: string): number
  ifIndexToName(ifindex: number): string
  btfStruct(path: string, name: string): NativeBtfStruct
  btfEnum(path: string, name: string): Record<string, number>
  netnsOpen(path: string): number
  netnsCookie(): string
  netnsSet(fd: number): void
  rawOpen(family: number, protocol: number, ifname: string): number
  rawSend(fd: number, family: number, data: Buffer, dst: Buffer, src: Buffer | null, ifindex: number): number
  rawRecv(fd: number, family: number, maxLen: number): NativeRawPacket | null
  sockSetInt(fd: number, level: number, name: number, value: number): void
  mcastMembership(fd: number, family: number, group: Buffer, ifindex: number, join: boolean): void
  packetOpen(ifindex: number): number
  packetSend(fd: number, ifindex: number, frame: Buffer): number
  pollStart(fd: number, callback: (status: number, events: number) => void): NativePollHandle
  pollStop(handle: NativePollHandle): void
}

/** The repository root: dist/src/bpf/ when compiled, src/bpf/ when run from source. */
export function projectRoot(): string {
  let dir = __dirname
  for (let i = 0; i < 6; i++) {
    if (fs.existsSync(path.join(dir, 'package.json')) && fs.existsSync(path.join(dir, 'binding.gyp'))) return dir
    dir = path.dirname(dir)
  }
  throw new Error(`cannot find the xvs project root above ${__dirname}`)
}

let loaded: NativeBinding | undefined

export function native(): NativeBinding {
  if (loaded) return loaded
  const file = path.join(projectRoot(), 'build', 'Release', 'xvs_native.node')
  if (!fs.existsSync(file)) throw new Error(`${file} is missing: build it with 'make'`)
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  loaded = require(file) as NativeBinding
  // Imported lazily to avoid a cycle: errors.ts does not need the addon.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  loaded.setErrorClass((require('./errors') as typeof import('./errors')).BpfError)
  return loaded
}
