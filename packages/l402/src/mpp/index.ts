/**
 * `l402/mpp`: the Payment HTTP authentication scheme (MPP) on the wire, and its client helpers. The
 * server is `l402/mpp/server`, so a client never loads it.
 *
 * @example
 * import { Client, Receipt } from 'l402/mpp';
 * const [charge] = Client.offers(response.headers.get('www-authenticate'));
 */
export * as Base64url from './Base64url.js';
export * as Challenge from './Challenge.js';
export * as Client from './Client.js';
export * as Credential from './Credential.js';
export * as Json from './Json.js';
export * as Problem from './Problem.js';
export * as Receipt from './Receipt.js';
export * as Request from './Request.js';
