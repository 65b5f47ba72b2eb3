/**
 * HTTP for the wallet backends that speak JSON over plain HTTP(S) (Core Lightning's clnrest, phoenixd,
 * LNbits), on the global `fetch`. It turns every way a call can go wrong into a {@link BackendError}
 * with the right code (no answer in time, nobody listening, an answer that is not HTTP or not JSON, a
 * closed backend), keeps credentials out of every message, reads answer fields with checks, and polls
 * with backoff where a daemon has no blocking call.
 */
import * as platform from '#platform';
import { type BackendCode, BackendError } from '../Errors.js';
import * as Invoice from '../Invoice.js';
import type { PayRequest } from '../lightning/Backend.js';
import { equalBytes, fromHex } from './bytes.js';

export interface Call {
  readonly method: 'GET' | 'POST';
  /** Path and query, appended to the base URL: `/v1/getinfo`. */
  readonly path: string;
  readonly headers?: Record<string, string>;
  readonly body?: string;
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
}

export interface Reply {
  readonly status: number;
  readonly text: string;
}

/** Socket-level failures that mean nothing is listening there, or the connection was lost. */
const UNREACHABLE = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ETIMEDOUT',
  'EPIPE',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_CLOSED',
]);
const TLS =
  /^(?:ERR_TLS_|CERT_|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_(?:VERIFY|GET)_)/;
/** How much of an unreadable answer goes into an error message. */
const SNIPPET = 120;

/**
 * One backend's HTTP client: its base URL, its credentials (never shown), and a switch that aborts
 * every call in flight when the backend is closed.
 *
 * @example
 * const client = new RestClient('phoenixd', 'http://127.0.0.1:9740', [password]);
 * const reply = await client.send({ method: 'GET', path: '/getbalance', timeoutMs: 10_000 });
 */
export class RestClient {
  readonly kind: string;
  readonly base: string;
  private readonly secrets: readonly string[];
  private readonly closing = new AbortController();

  constructor(kind: string, base: string, secrets: readonly string[]) {
    this.kind = kind;
    this.base = base.replace(/\/+$/, '');
    this.secrets = secrets.filter((secret) => secret.length > 0);
  }

  /** A {@link BackendError} whose message has every credential blanked out. */
  error(code: BackendCode, message: string, cause?: unknown): BackendError {
    return new BackendError(
      code,
      this.kind,
      this.redact(message),
      cause === undefined ? undefined : { cause },
    );
  }

  /** `text` with credentials replaced by `***`, cut to a readable length. */
  redact(text: string, limit = Number.POSITIVE_INFINITY): string {
    let out = text;
    for (const secret of this.secrets) out = out.split(secret).join('***');
    return out.length > limit ? `${out.slice(0, limit)}…` : out;
  }

  /** Sends one request and reads the whole answer, whatever its status. */
  async send(call: Call): Promise<Reply> {
    if (this.closing.signal.aborted) throw this.closed();
    const timeout = AbortSignal.timeout(call.timeoutMs);
    const signals = [timeout, this.closing.signal, ...(call.signal ? [call.signal] : [])];
    const origin = new URL(this.base).host;
    try {
      const response = await fetch(`${this.base}${call.path}`, {
        method: call.method,
        headers: call.headers,
        body: call.body,
        redirect: 'manual',
        signal: AbortSignal.any(signals),
      });
      return { status: response.status, text: await response.text() };
    } catch (error) {
      if (this.closing.signal.aborted) throw this.closed();
      if (timeout.aborted) {
        throw this.error(
          'L402_BACKEND_TIMEOUT',
          `no answer from ${origin} within ${call.timeoutMs} ms`,
          error,
        );
      }
      if (call.signal?.aborted)
        throw this.error('L402_BACKEND_TIMEOUT', 'the call was aborted by its caller', error);
      // fetch wraps the socket's or the parser's error, sometimes more than once.
      let code = '';
      let parser = false;
      for (let e: unknown = error; e && typeof e === 'object'; e = (e as { cause?: unknown }).cause) {
        code ||= String((e as { code?: unknown }).code ?? '');
        // Node's bundled undici marks a parser error by its code; undici from npm (when it is the
        // global dispatcher) sometimes only by its name.
        parser ||= (e as { name?: unknown }).name === 'HTTPParserError';
      }
      if (code.startsWith('HPE_') || parser) {
        throw this.error(
          'L402_BACKEND_PROTOCOL',
          `${origin} answered with something that is not HTTP`,
          error,
        );
      }
      if (TLS.test(code)) {
        throw this.error(
          'L402_BACKEND_UNREACHABLE',
          `${origin}'s TLS certificate is not trusted (${code})`,
          error,
        );
      }
      const why = UNREACHABLE.has(code) ? code : (error as Error).message;
      throw this.error('L402_BACKEND_UNREACHABLE', `cannot reach ${origin} (${why})`, error);
    }
  }

  /** What a call of a closed backend rejects with (as the LND backend does). */
  private closed(): BackendError {
    return this.error('L402_BACKEND_UNREACHABLE', `this ${this.kind} backend was closed`);
  }

  /** The answer as JSON; an answer that is not JSON is L402_BACKEND_PROTOCOL. */
  json(reply: Reply): unknown {
    try {
      return JSON.parse(reply.text);
    } catch {
      throw this.error(
        'L402_BACKEND_PROTOCOL',
        `answered ${reply.status} with something that is not JSON: ${JSON.stringify(this.redact(reply.text, SNIPPET))}`,
      );
    }
  }

  /** An object answer, read field by field with {@link Fields}. */
  fields(value: unknown, what: string): Fields {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw this.error('L402_BACKEND_PROTOCOL', `${what} is not a JSON object`);
    }
    return new Fields(this, value as Record<string, unknown>, what);
  }

  /** Aborts calls in flight (they reject with L402_BACKEND_UNREACHABLE) and refuses new ones. */
  close(): void {
    this.closing.abort();
  }

  /**
   * Calls `check` until it returns a value, waiting 100 ms, then 1.5 times longer each time up to 2 s;
   * rejects with L402_BACKEND_TIMEOUT once `timeoutMs` pass, or when `signal` aborts.
   */
  async poll<T>(
    check: () => Promise<T | undefined>,
    options: { timeoutMs: number; signal?: AbortSignal; what: string },
  ): Promise<T> {
    const deadline = Date.now() + options.timeoutMs;
    for (let delay = 100; ; delay = Math.min(2000, delay * 1.5)) {
      const done = await check();
      if (done !== undefined) return done;
      const left = deadline - Date.now();
      if (left <= 0)
        throw this.error('L402_BACKEND_TIMEOUT', `${options.what} after ${options.timeoutMs} ms`);
      await this.sleep(Math.min(delay, left), options.signal);
    }
  }

  private sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
    const stop = AbortSignal.any([this.closing.signal, ...(signal ? [signal] : [])]);
    return new Promise((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        reject(
          this.closing.signal.aborted
            ? this.closed()
            : this.error('L402_BACKEND_TIMEOUT', 'the call was aborted by its caller'),
        );
      };
      const timer = setTimeout(() => {
        stop.removeEventListener('abort', done);
        resolve();
      }, ms);
      if (stop.aborted) done();
      else stop.addEventListener('abort', done, { once: true });
    });
  }
}

/**
 * Typed reads of an answer's fields: a missing or ill-typed field is L402_BACKEND_PROTOCOL naming it.
 *
 * @example
 * const info = client.fields(client.json(reply), 'getinfo');
 * info.string('id'); info.optionalNumber('blockheight');
 */
export class Fields {
  private readonly client: RestClient;
  readonly value: Record<string, unknown>;
  private readonly what: string;

  constructor(client: RestClient, value: Record<string, unknown>, what: string) {
    this.client = client;
    this.value = value;
    this.what = what;
  }

  has(key: string): boolean {
    return this.value[key] !== undefined && this.value[key] !== null;
  }

  private bad(key: string, expected: string): never {
    const got = this.has(key)
      ? JSON.stringify(this.client.redact(String(JSON.stringify(this.value[key])), 40))
      : 'nothing';
    throw this.client.error('L402_BACKEND_PROTOCOL', `${this.what}.${key}: expected ${expected}, got ${got}`);
  }

  string(key: string): string {
    const value = this.value[key];
    return typeof value === 'string' ? value : this.bad(key, 'a string');
  }

  optionalString(key: string): string | undefined {
    return this.has(key) ? this.string(key) : undefined;
  }

  boolean(key: string): boolean {
    const value = this.value[key];
    return typeof value === 'boolean' ? value : this.bad(key, 'true or false');
  }

  /** A whole number (JSON number within 2^53, or a string of digits), as bigint. */
  integer(key: string): bigint {
    const value = this.value[key];
    if (typeof value === 'number' && Number.isSafeInteger(value)) return BigInt(value);
    if (typeof value === 'string' && /^-?\d+$/.test(value)) return BigInt(value);
    return this.bad(key, 'a whole number');
  }

  optionalInteger(key: string): bigint | undefined {
    return this.has(key) ? this.integer(key) : undefined;
  }

  /** 32 bytes of hex: a payment hash or preimage. */
  bytes32(key: string): Uint8Array {
    const value = this.value[key];
    return typeof value === 'string' && /^[0-9a-fA-F]{64}$/.test(value)
      ? fromHex(value)
      : this.bad(key, '32 bytes of hex');
  }

  optionalBytes32(key: string): Uint8Array | undefined {
    return this.has(key) ? this.bytes32(key) : undefined;
  }

  /** An array of objects, each read with {@link Fields}. */
  list(key: string): Fields[] {
    const value = this.value[key];
    if (!Array.isArray(value)) return this.bad(key, 'an array');
    return value.map((item, i) => this.client.fields(item, `${this.what}.${key}[${i}]`));
  }

  object(key: string): Fields {
    return this.has(key)
      ? this.client.fields(this.value[key], `${this.what}.${key}`)
      : this.bad(key, 'an object');
  }
}

/**
 * Millisatoshis as whole sats, for APIs that take satoshis; anything finer is L402_BACKEND_CONFIG.
 *
 * @example
 * wholeSats(client, 21_000n, 'amountMsat'); // 21n
 */
export function wholeSats(client: RestClient, amountMsat: bigint, what: string): bigint {
  if (amountMsat < 0n || amountMsat % 1000n !== 0n) {
    throw client.error(
      'L402_BACKEND_CONFIG',
      `${what} must be a whole number of satoshis (got ${amountMsat} msat)`,
    );
  }
  return amountMsat / 1000n;
}

/**
 * The base URL of a backend URI such as `cln+http://host:port?rune=…`: the scheme picks http or https
 * (from `schemes`), the path is kept, userinfo and query are left to the caller. Messages never echo
 * the URI, which carries credentials.
 *
 * @example
 * const { url, base } = parseUri('cln', uri, { cln: 'https', 'cln+http': 'http' });
 * base; // "http://127.0.0.1:3010"
 * url.searchParams.get('rune');
 */
export function parseUri(
  kind: string,
  uri: string,
  schemes: Record<string, 'http' | 'https'>,
): { readonly url: URL; readonly base: string } {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    throw new BackendError('L402_BACKEND_CONFIG', kind, 'the connection URI is not a valid URI');
  }
  const scheme = url.protocol.slice(0, -1);
  const transport = Object.hasOwn(schemes, scheme) ? schemes[scheme] : undefined;
  if (transport === undefined) {
    const known = Object.keys(schemes).map((s) => `${s}://`);
    throw new BackendError(
      'L402_BACKEND_CONFIG',
      kind,
      `the URI must start with ${known.join(', ')} (got ${scheme}://)`,
    );
  }
  if (url.hostname === '') throw new BackendError('L402_BACKEND_CONFIG', kind, 'the URI has no host');
  const path = url.pathname === '/' ? '' : url.pathname;
  return { url, base: `${transport}://${url.host}${path}` };
}

/**
 * A base URL given as an option, checked: http or https, no credentials or query in it.
 *
 * @example
 * checkBase('lnbits', 'https://lnbits.example.com/'); // "https://lnbits.example.com"
 */
export function checkBase(kind: string, base: string): string {
  let url: URL;
  try {
    url = new URL(base);
  } catch {
    throw new BackendError('L402_BACKEND_CONFIG', kind, 'url is not a valid URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new BackendError(
      'L402_BACKEND_CONFIG',
      kind,
      `url must be http:// or https:// (got ${url.protocol}//)`,
    );
  }
  if (url.username !== '' || url.password !== '' || url.search !== '') {
    throw new BackendError(
      'L402_BACKEND_CONFIG',
      kind,
      'url must not carry credentials or a query: pass them as options',
    );
  }
  return `${url.protocol}//${url.host}${url.pathname === '/' ? '' : url.pathname}`;
}

/**
 * The invoice `pay` is asked to pay, decoded (a malformed one throws InvoiceError) and checked before
 * any request: not expired by `nowMs` (L402_PAYMENT_EXPIRED; some nodes only report a rejection), and
 * with an amount, from the invoice or from `request.amountMsat` (L402_BACKEND_CONFIG otherwise).
 *
 * @example
 * const invoice = payable(client, paymentRequest, request, Date.now());
 * return payOnce(steps, paymentRequest, invoice.paymentHash, request);
 */
export function payable(
  client: RestClient,
  paymentRequest: string,
  request: PayRequest,
  nowMs: number,
): Invoice.Invoice {
  const invoice = Invoice.decode(paymentRequest);
  if (Invoice.isExpired(invoice, nowMs / 1000)) {
    const at = new Date(Invoice.expiresAt(invoice) * 1000).toISOString();
    throw client.error('L402_PAYMENT_EXPIRED', `the invoice expired at ${at}; ask the payee for a new one`);
  }
  if (invoice.amountMsat === undefined && request.amountMsat === undefined) {
    throw client.error('L402_BACKEND_CONFIG', 'the invoice has no amount: pass amountMsat');
  }
  if (
    invoice.amountMsat !== undefined &&
    request.amountMsat !== undefined &&
    request.amountMsat !== invoice.amountMsat
  ) {
    throw client.error(
      'L402_BACKEND_CONFIG',
      `amountMsat is for zero-amount invoices; this one asks for ${invoice.amountMsat} msat`,
    );
  }
  return invoice;
}

/**
 * `preimage`, once checked to hash to `paymentHash`: a node claiming success must prove it
 * (L402_BACKEND_PROTOCOL otherwise).
 *
 * @example
 * const preimage = proven(client, paymentHash, answer.bytes32('payment_preimage'));
 */
export function proven(client: RestClient, paymentHash: Uint8Array, preimage: Uint8Array): Uint8Array {
  if (!equalBytes(platform.sha256(preimage), paymentHash)) {
    throw client.error(
      'L402_BACKEND_PROTOCOL',
      'the node reported a preimage that does not match the payment hash',
    );
  }
  return preimage;
}
