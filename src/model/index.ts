// SPDX-License-Identifier: GPL-2.0-only
// The desired state of a director: types, defaults, validation, keys and diff.
export * from './types'
export * from './defaults'
export { validate, isPrime, nearestPrime, METHOD_ALIASES, type Locate } from './validate'
export { serviceKey, realServerKey, diffModels, isEmptyDiff, deepEqual, type ModelDiff, type ServiceChange, type Change } from './diff'
export * as addr from './addr'
export * from './vrrp'
