// SPDX-License-Identifier: GPL-2.0-only
// One way to report bad input, shared by validation and every parser: the message always names the field,
// and starts with "file:line:column" when the place is known.
import { ConfigError } from '../errors'

/**
 * Throw a ConfigError for `field` (a model path such as "services[1].realServers[0].weight", or a key path of
 * the source format). `text` says what is wrong and what would be right.
 */
export function fail(field: string, text: string, where?: string): never {
  if (where !== undefined) throw new ConfigError(`${field}: ${text}`, { where, field })
  throw new ConfigError(text, { where: field, field })
}
