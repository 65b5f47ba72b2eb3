/**
 * RFC 9457 problem details for refused Payment credentials, with the problem types of the Payment
 * scheme (`https://paymentauth.org/problems/…`) and of its Lightning method (`…/lightning/…`). Every
 * refusal is a 402 that also carries fresh challenges.
 *
 * @example
 * Problem.body('verification-failed', 'the preimage does not match the payment hash');
 * // '{"type":"https://paymentauth.org/problems/verification-failed","title":"Verification Failed","status":402,"detail":"…"}'
 */
import * as Json from './Json.js';

export const BASE = 'https://paymentauth.org/problems/';
export const CONTENT_TYPE = 'application/problem+json';

const TITLES = {
  'payment-required': 'Payment Required',
  'payment-insufficient': 'Payment Insufficient',
  'payment-expired': 'Payment Expired',
  'verification-failed': 'Verification Failed',
  'method-unsupported': 'Method Unsupported',
  'malformed-credential': 'Malformed Credential',
  'invalid-challenge': 'Invalid Challenge',
  'lightning/malformed-credential': 'Malformed Credential',
  'lightning/unknown-challenge': 'Unknown Challenge',
  'lightning/invalid-preimage': 'Invalid Preimage',
  'lightning/expired-invoice': 'Expired Invoice',
  'lightning/session-not-found': 'Session Not Found',
  'lightning/session-closed': 'Session Closed',
  'lightning/insufficient-balance': 'Insufficient Balance',
  'lightning/challenge-expired': 'Challenge Expired',
  'lightning/invalid-return-invoice': 'Invalid Return Invoice',
} as const;

/** A problem type, relative to {@link BASE}. */
export type Type = keyof typeof TITLES;

/** A problem details object as sent. */
export interface Problem {
  readonly type: string;
  readonly title: string;
  readonly status: number;
  readonly detail?: string;
  readonly challengeId?: string;
}

/**
 * The problem details object for `type`.
 *
 * @example
 * Problem.of('payment-required', 'Payment required for access.').type; // 'https://paymentauth.org/problems/payment-required'
 */
export function of(type: Type, detail?: string, challengeId?: string): Problem {
  return {
    type: `${BASE}${type}`,
    title: TITLES[type],
    status: 402,
    ...(detail === undefined ? {} : { detail }),
    ...(challengeId === undefined ? {} : { challengeId }),
  };
}

/** The problem as a response body (`Content-Type: application/problem+json`). */
export function body(type: Type, detail?: string, challengeId?: string): string {
  return Json.stringify({ ...of(type, detail, challengeId) });
}

/** Aperture's body for a 402 that offers Payment challenges and judged no credential. */
export const PAYMENT_REQUIRED = body('payment-required', 'Payment required for access.');
