// SPDX-License-Identifier: GPL-2.0-only
// BTF of an object file: struct layouts and enum values as the compiler emitted them.
import { native, type NativeBtfStruct } from './native'
import { checkString } from './validate'

export type BtfStruct = NativeBtfStruct

export function btfStruct(objectPath: string, name: string): BtfStruct {
  return native().btfStruct(checkString('object path', objectPath), checkString('struct name', name))
}

export function btfEnum(objectPath: string, name: string): Record<string, number> {
  return native().btfEnum(checkString('object path', objectPath), checkString('enum name', name))
}
