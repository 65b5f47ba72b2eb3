/**
 * l402: the L402 token core.
 *
 * @example
 * import { Caveat, Challenge, Credential, Invoice, Macaroon, Token } from 'l402';
 */
export * as Caveat from './Caveat.js';
export * as Challenge from './Challenge.js';
export * as Credential from './Credential.js';
export * as Errors from './Errors.js';
export * as Identifier from './Identifier.js';
export * as Invoice from './Invoice.js';
export * as Macaroon from './Macaroon.js';
export * as Token from './Token.js';
