// SPDX-License-Identifier: GPL-2.0-only
// Run a synchronous function with the JS thread inside a network namespace, then come back.
// Every binding call is synchronous on this thread, so attachments, interface lookups and devmap
// writes made inside `fn` happen in that namespace. Asynchronous work started inside `fn` does not.
import path from 'node:path'
import { native } from './native'
import { checkString } from './validate'
import { ArgumentError } from '../errors'

/** `name` is a namespace from `ip netns` (/run/netns/NAME) or an absolute path to an nsfs file. */
export function withNetns<T>(name: string, fn: () => T): T {
  checkString('netns', name)
  if (!path.isAbsolute(name) && !/^[\w.-]{1,64}$/.test(name)) throw new ArgumentError(`bad network namespace name ${JSON.stringify(name)}`)
  const n = native()
  const target = n.netnsOpen(path.isAbsolute(name) ? name : `/run/netns/${name}`)
  let home = -1
  try {
    home = n.netnsOpen('/proc/thread-self/ns/net')
    n.netnsSet(target)
    try {
      return fn()
    } finally {
      n.netnsSet(home)
    }
  } finally {
    n.closeFd(target)
    if (home >= 0) n.closeFd(home)
  }
}

/** The calling thread's network namespace cookie: unique for the boot, never reused. */
export function netnsCookie(): string {
  return native().netnsCookie()
}
