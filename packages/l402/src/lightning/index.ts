/**
 * `l402/lightning`: the {@link Backend} interface and its implementations for LND, Core Lightning,
 * phoenixd, LNbits and NWC.
 *
 * @example
 * import type { Backend } from 'l402/lightning';
 */
export * from './Backend.js';
export * as Cln from './cln.js';
export { connect } from './connect.js';
export * as Lnbits from './lnbits.js';
export * as Lnd from './lnd.js';
export * as Nostr from './nostr.js';
export * as Nwc from './nwc.js';
export * as Phoenixd from './phoenixd.js';
export { type WalletKind, walletKind } from './schemes.js';
