// SPDX-License-Identifier: GPL-2.0-only
// xvs's binding of the system libbpf: objects, programs, maps, XDP attachment, BTF, test runs.
// Free of load-balancer policy; it could be published on its own.
export { BpfError } from './errors'
export { BpfObject, type OpenOptions } from './object'
export { BpfMap, numPossibleCpus, type MapEntry, type CreateMapSpec } from './map'
export { BpfProgram, type TestRunOptions, type TestRunResult } from './prog'
export { XdpLink, xdpAttach, xdpDetach, xdpQuery, ifindexOf, ifnameOf, interfaces, type XdpMode, type XdpQueryResult, type Iface } from './xdp'
export { btfStruct, btfEnum, type BtfStruct } from './btf'
export { withNetns, netnsCookie } from './netns'
export { MapType, XdpAction, XdpFlags, mapTypeName, xdpActionName, type UpdateMode } from './constants'
export { native, projectRoot } from './native'

import fs from 'node:fs'
import nodePath from 'node:path'
import { native } from './native'
import { ArgumentError } from '../errors'

/** True if `path` is on a bpf filesystem. */
export function isBpffs(path: string): boolean {
  return native().isBpffs(path)
}

/** Remove a pin (a program, map or link stays alive while anything else holds it). */
export function unpin(path: string): void {
  if (!isBpffs(nodePath.dirname(path))) throw new ArgumentError(`${path} is not on a bpffs: refusing to unlink it as a pin`)
  fs.unlinkSync(path)
}
