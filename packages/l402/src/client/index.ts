/**
 * `l402/client`: pay for HTTP APIs that answer 402 (L402, LSAT, MPP Lightning charge). Browser and edge
 * safe: no `node:` import here; files, locks across processes, devnet discovery and wallet URIs are in
 * `l402/client/node`.
 *
 * @example
 * import { createFetch, TokenStore, Ledger } from 'l402/client';
 * const fetch402 = createFetch({ wallet, store: TokenStore.memory(), ledger: Ledger.memory({ perDaySats: 1000 }) });
 */
export {
  BudgetError,
  type BudgetLimit,
  ClientError,
  InsecureTransportError,
  type InvoiceRefusal,
  InvoiceRefusedError,
  PaymentFailedError,
  ReplayError,
} from '../Errors.js';
export * as Delegate from './delegate.js';
export {
  type ClientEvent,
  type CreateFetchOptions,
  checkTransport,
  createFetch,
  type FetchLike,
  type PayingFetch,
  type PaymentInfo,
  type Quote,
} from './fetch.js';
export type { Budget, PaymentRecord } from './Ledger.js';
export * as Ledger from './Ledger.js';
export * as Offers from './offers.js';
export * as Space from './Space.js';
export type { StoredToken } from './TokenStore.js';
export * as TokenStore from './TokenStore.js';
export * as Wallet from './Wallet.js';
