/**
 * `l402/server`: the framework-agnostic authority that prices, mints, verifies and challenges, and the
 * store interface it keeps root keys, transactions and revocations in. Stores: `l402/stores/memory`,
 * `l402/stores/sqlite`, `l402/stores/postgres`. `Middleware` is what the framework adapters (`l402/node`,
 * `l402/express`, `l402/fastify`, `l402/hono`) share, for writing an adapter of one's own.
 *
 * @example
 * import * as Authority from 'l402/server';
 * const authority = await Authority.create({ backend, store });
 */
export * from './Authority.js';
export * as Middleware from './middleware.js';
export type * from './Store.js';
