/**
 * `l402/lightning`: the {@link Backend} interface and its implementations for LND, Core Lightning,
 * phoenixd, LNbits and NWC.
 *
 * @example
 * import type { Backend } from 'l402/lightning';
 */
export * from './Backend.js';
