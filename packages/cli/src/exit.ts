/**
 * The exit codes of the paying commands (`l402 get`, `l402 wallet pay`), and which one an error means.
 * They are part of the command's interface: scripts branch on them, so they never change meaning.
 *
 * | code | meaning |
 * |---|---|
 * | 0 | done: a 2xx/3xx answer (paid, reused a token, or free) |
 * | 2 | bad input (options, config.yaml, `L402_*` variables, a URL l402 will not send to) |
 * | 3 | HTTP error: the server answered 4xx/5xx (the body is still written) |
 * | 4 | payment refused by l402: over `--max-cost`, `--max-fee` or a budget, or an invoice it will not pay |
 * | 5 | payment failed: the wallet could not pay (no route, no funds, unreachable); nothing was paid |
 * | 6 | network error: the server could not be reached (refused, DNS, TLS, timeout) |
 * | 70 | internal error |
 *
 * @example
 * run.exitCode = Exit.HTTP_ERROR;
 */
export const OK = 0;
export const USAGE = 2;
export const HTTP_ERROR = 3;
export const REFUSED = 4;
export const PAYMENT_FAILED = 5;
export const NETWORK = 6;
export const INTERNAL = 70;

/** Error codes of a network failure as Node's fetch (undici) and `node:net` report them. */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ETIMEDOUT',
  'EPIPE',
  'CERT_HAS_EXPIRED',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

const codeOf = (error: unknown): string | undefined => {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
};

/** The innermost cause of `error`, and every error on the way, outermost first. */
function chain(error: unknown): unknown[] {
  const list: unknown[] = [];
  for (
    let e = error;
    e !== undefined && e !== null && list.length < 8;
    e = (e as { cause?: unknown }).cause
  ) {
    list.push(e);
  }
  return list;
}

/** A one-line reason: the message, with the innermost cause's when the outer one is generic. */
export function reason(error: unknown): string {
  const all = chain(error);
  const outer = all[0] instanceof Error ? all[0].message : String(all[0]);
  const inner = all[all.length - 1];
  if (all.length > 1 && inner instanceof Error && inner.message !== '' && !outer.includes(inner.message)) {
    return `${outer}: ${inner.message}`;
  }
  return outer;
}

/**
 * The exit code an error thrown while fetching or paying means, or `undefined` when it is not one of
 * those outcomes (then `main` reports it as bad input or an internal error).
 *
 * @example
 * classify(new Errors.BudgetError('maxCost', 21, 10, 'over --max-cost')); // 4
 */
export function classify(error: unknown): number | undefined {
  switch (codeOf(error)) {
    case 'L402_BUDGET':
    case 'L402_INVOICE_REFUSED':
      return REFUSED;
    case 'L402_PAYMENT_FAILED':
      return PAYMENT_FAILED;
    case 'L402_INSECURE_TRANSPORT':
    case 'L402_REPLAY':
    case 'L402_CLIENT_CONFIG':
      return USAGE;
    case 'L402_NO_CHALLENGE':
      return HTTP_ERROR;
  }
  const code = codeOf(error);
  // A wallet URI that cannot work (unknown scheme, missing credential) is the user's to fix.
  if (code === 'L402_BACKEND_CONFIG') return USAGE;
  if (code?.startsWith('L402_BACKEND') || code?.startsWith('L402_PAYMENT')) return PAYMENT_FAILED;
  for (const e of chain(error)) {
    const c = codeOf(e);
    if (c !== undefined && (NETWORK_CODES.has(c) || c.startsWith('UND_ERR'))) return NETWORK;
    const name = (e as { name?: unknown } | null)?.name;
    if (name === 'TimeoutError') return NETWORK;
  }
  if (error instanceof TypeError && error.message === 'fetch failed') return NETWORK;
  return undefined;
}
