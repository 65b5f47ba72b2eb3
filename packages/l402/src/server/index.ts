/**
 * `l402/server`: the framework-agnostic authority that prices, mints, verifies and challenges, and the
 * store interface it keeps root keys, transactions and revocations in. Stores: `l402/stores/memory`,
 * `l402/stores/sqlite`, `l402/stores/postgres`.
 *
 * @example
 * import * as Authority from 'l402/server';
 * const authority = await Authority.create({ backend, store });
 */
export * from './Authority.js';
export type * from './Store.js';
