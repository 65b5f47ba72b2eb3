/**
 * The admin API and dashboard, on the gateway's own listener, answered before any service is matched
 * (Aperture's "priority local services"). Routes and JSON are Aperture's REST gateway's
 * (`adminrpc/admin.yaml`, proto field names, int64 values as decimal strings):
 *
 * | route | what |
 * |---|---|
 * | `GET /api/admin/health` | `{"status":"ok"}`, no macaroon needed |
 * | `GET /api/admin/info` | network, listen address, TLS, MPP settings (+ store, lightning) |
 * | `GET /api/admin/services`, `POST …/services`, `PUT|DELETE …/services/{name}` | the services, changed at once and persisted |
 * | `GET /api/admin/transactions?service&state&start_date&end_date&limit&offset` | transactions, newest first, with `total_count` |
 * | `GET /api/admin/tokens?limit&offset`, `DELETE …/tokens/{token_id}` | paid tokens; revoking is refused at once by the Authority |
 * | `GET /api/admin/stats?from&to&bucket` | revenue and counts, per service and per time bucket |
 * | `GET /api/admin/events` | (ours) server-sent events: one `request` event per request the gateway answered |
 * | `GET /api/admin/openapi.json` | (ours) the OpenAPI 3.1 document of all this |
 * | `POST /api/admin/login` | (ours) trades the one-time code printed at start for the macaroon, once |
 * | `GET /dashboard` | (ours) the dashboard page, when `dashboard.enabled`, to loopback clients only |
 *
 * Every route but health, openapi.json, login and the page needs the admin macaroon
 * (`credentials.ts`); without it the answer is 401 JSON. Errors are grpc-gateway's shape
 * (`{"code": <gRPC code>, "message": "…", "details": []}`) plus our stable `error` code. Bodies must be
 * `application/json` and at most 64 KiB. Cross-origin browsers are let in only from
 * `admin.corsorigin`.
 *
 * @example
 * const admin = await Admin.start({ config, authority, store, catalogue, address: () => gateway.address });
 * Handler.create({ …, router: catalogue.router, local: admin.serve, observe: admin.observe });
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Writable } from 'node:stream';
import type * as Authority from 'l402/server';
import type { Store, Transaction, TransactionFilter } from 'l402/server';
import type { Config, HostPort } from '../Config.js';
import { formatHostPort } from '../Config.js';
import type { Request, Response } from '../proxy.js';
import * as Credentials from './credentials.js';
import { page } from './dashboard.js';
import { AdminError } from './errors.js';
import { document } from './openapi.js';
import * as Schemas from './schemas.js';
import type { Catalogue, ServiceSpec } from './services.js';

const PREFIX = '/api/admin/';
const DASHBOARD = '/dashboard';
/** Largest request body accepted (a service is a few hundred bytes). */
export const MAX_BODY = 64 * 1024;
/** Live-feed subscribers at once. */
const MAX_SUBSCRIBERS = 16;
/** A subscriber this far behind is dropped rather than buffered without end. */
const MAX_BACKLOG = 1 << 20;
const HEARTBEAT_MS = 15_000;
/** How long the one-time dashboard code printed at start stays usable. */
const LOGIN_TTL_MS = 15 * 60_000;

/** Bucket widths chosen when none is asked: the narrowest giving at most 100 buckets. */
const BUCKETS = [60, 300, 900, 3600, 6 * 3600, 86_400, 7 * 86_400];

/** gRPC status codes, for grpc-gateway's error body. */
const GRPC_CODE: Readonly<Record<number, number>> = {
  400: 3,
  401: 16,
  403: 7,
  404: 5,
  405: 12,
  409: 6,
  413: 8,
  415: 3,
  503: 14,
  500: 13,
};

/** What the admin needs from the running gateway. */
export interface Options {
  readonly config: Config;
  readonly store: Store;
  /** Undefined when Lightning is disabled: then tokens cannot be revoked through it. */
  readonly authority: Authority.Authority | undefined;
  readonly catalogue: Catalogue;
  /** The address actually bound (known once listening). */
  readonly address: () => HostPort;
  readonly encrypted: boolean;
  readonly store_description: string;
  readonly lightning: string;
  readonly now?: () => number;
}

/** One request the gateway answered, as the live feed shows it. */
export type RequestEvent = Readonly<Record<string, unknown>>;

/** The admin API as the handler uses it. */
export interface Admin {
  /** The admin macaroon file. */
  readonly macaroonPath: string;
  /** `/dashboard#code=…`: opens the dashboard signed in, once, within 15 minutes of start. */
  readonly dashboardPath: string | undefined;
  /** Answers the request when it is the admin's (returns true), else leaves it alone (false). */
  serve(request: Request, response: Response, client: string): boolean;
  /** Hands one answered request to the live feed. */
  observe(event: RequestEvent): void;
  close(): void;
}

/** Node's two response classes type `write` apart; both are Writables. */
const write = (response: Response, text: string) => (response as unknown as Writable).write(text);
const iso = (seconds: number) => new Date(seconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');
const sats = (msat: bigint) => (msat / 1000n).toString();

/** A transaction in Aperture's `adminrpc.Transaction` JSON (+ `revoked`). */
function transactionJson(t: Transaction) {
  return {
    token_id: hex(t.tokenId),
    payment_hash: hex(t.paymentHash),
    service_name: t.service,
    price_sats: sats(t.priceMsat),
    state: t.state,
    created_at: iso(t.createdAt),
    settled_at: t.settledAt === undefined ? '' : iso(t.settledAt),
    revoked: t.revoked,
  };
}

function serviceJson(spec: ServiceSpec) {
  return {
    name: spec.name,
    address: spec.address,
    protocol: spec.protocol,
    host_regexp: spec.host_regexp,
    path_regexp: spec.path_regexp,
    price: String(spec.price),
    auth: spec.auth,
    auth_scheme: Schemas.schemeName(spec.auth_scheme),
  };
}

function isLoopback(address: string): boolean {
  return address === '::1' || /^(?:::ffff:)?127\./.test(address);
}

/**
 * The admin API over a running gateway's store, Authority and service catalogue; makes the admin
 * macaroon on first start.
 *
 * @example
 * const admin = create({ config, store, authority, catalogue, address: () => listener.address, encrypted: false, store_description: 'sqlite …', lightning: 'devnet' });
 */
export function create(options: Options): Admin {
  const { config, store, authority, catalogue } = options;
  const now = options.now ?? Date.now;
  const credentials = Credentials.ensure(config.admin.macaroonpath);
  const cors = new Set(config.admin.corsorigin);
  const subscribers = new Set<Response>();
  let login: { code: Buffer; until: number } | undefined = config.dashboard.enabled
    ? { code: randomBytes(16), until: now() + LOGIN_TTL_MS }
    : undefined;
  const dashboardPath = login === undefined ? undefined : `${DASHBOARD}#code=${login.code.toString('hex')}`;
  const heartbeat = setInterval(() => {
    for (const response of subscribers) write(response, ': keepalive\n\n');
  }, HEARTBEAT_MS);
  heartbeat.unref();

  function json(
    response: Response,
    status: number,
    body: unknown,
    headers: Record<string, string> = {},
  ): void {
    const text = `${JSON.stringify(body)}\n`;
    response.writeHead(status, {
      'content-type': 'application/json',
      'content-length': String(Buffer.byteLength(text)),
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      ...headers,
    });
    response.end(text);
  }

  function fail(response: Response, error: unknown): void {
    if (response.headersSent) {
      response.destroy();
      return;
    }
    const status = error instanceof AdminError ? error.status : 500;
    const message = error instanceof AdminError ? error.message : 'internal error';
    const code = error instanceof AdminError ? error.code : 'L402_ADMIN_INTERNAL';
    json(response, status, { code: GRPC_CODE[status] ?? 2, message, details: [], error: code });
  }

  async function body(request: Request): Promise<unknown> {
    const type = String(request.headers['content-type'] ?? '');
    if (!/^application\/json\s*(?:;|$)/i.test(type)) {
      throw new AdminError(
        'L402_ADMIN_UNSUPPORTED_MEDIA',
        'the body must be JSON (Content-Type: application/json)',
      );
    }
    if (Number(request.headers['content-length'] ?? 0) > MAX_BODY) {
      throw new AdminError('L402_ADMIN_TOO_LARGE', `the body must be at most ${MAX_BODY} bytes`);
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of request as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > MAX_BODY)
        throw new AdminError('L402_ADMIN_TOO_LARGE', `the body must be at most ${MAX_BODY} bytes`);
      chunks.push(chunk);
    }
    try {
      return JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      throw new AdminError('L402_ADMIN_BAD_REQUEST', 'the body is not valid JSON');
    }
  }

  function query(url: URL): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [key, value] of url.searchParams) {
      if (key in out) throw new AdminError('L402_ADMIN_BAD_REQUEST', `${key}: given more than once`);
      out[key] = value;
    }
    return out;
  }

  /** One page of the transactions `filter` selects, and how many it selects: the page's rows and a count. */
  async function paged(filter: TransactionFilter, q: { limit: number; offset: number }) {
    const [rows, total] = await Promise.all([
      store.transactions({ ...filter, limit: q.limit, offset: q.offset }),
      store.countTransactions(filter),
    ]);
    return { rows: rows.map(transactionJson), total_count: String(total) };
  }

  async function transactions(url: URL) {
    const q = Schemas.parse(Schemas.ListTransactions, query(url));
    const { rows, total_count } = await paged(
      {
        ...(q.service !== undefined ? { service: q.service } : {}),
        ...(q.state !== undefined ? { state: q.state } : {}),
        ...(q.start_date !== undefined ? { since: q.start_date } : {}),
        ...(q.end_date !== undefined ? { until: q.end_date } : {}),
      },
      q,
    );
    return { transactions: rows, total_count };
  }

  async function tokens(url: URL) {
    const q = Schemas.parse(Schemas.ListTokens, query(url));
    const { rows, total_count } = await paged(
      { state: 'settled', ...(q.service !== undefined ? { service: q.service } : {}) },
      q,
    );
    return { tokens: rows, total_count };
  }

  async function revoke(tokenIdHex: string) {
    if (!/^[0-9a-fA-F]{64}$/.test(tokenIdHex)) {
      throw new AdminError('L402_ADMIN_BAD_REQUEST', 'token_id must be 32 bytes in hex (64 digits)');
    }
    const tokenId = new Uint8Array(Buffer.from(tokenIdHex, 'hex'));
    const done =
      authority !== undefined ? await authority.revoke({ tokenId }) : await store.revoke({ tokenId });
    if (!done) throw new AdminError('L402_ADMIN_NOT_FOUND', 'token not found (or already revoked)');
    return { status: 'revoked' };
  }

  async function stats(url: URL) {
    const q = Schemas.parse(Schemas.Stats, query(url));
    const to = q.to ?? Math.floor(now() / 1000);
    const from = q.from ?? to - 86_400;
    const span = to - from + 1;
    const width = q.bucket ?? BUCKETS.find((w) => span / w <= 100) ?? Math.ceil(span / 100);
    const n = Math.ceil((to - from + 1) / width);
    if (n > 1000)
      throw new AdminError('L402_ADMIN_BAD_REQUEST', 'bucket: at most 1000 buckets per range; widen it');
    // The totals are over the range asked (all time when none was); the buckets cover [from, from + n ×
    // width) of it, the last day when no range was asked. Both are the database's sums, not rows.
    const asked: TransactionFilter = {
      ...(q.from !== undefined ? { since: q.from } : {}),
      ...(q.to !== undefined ? { until: q.to } : {}),
    };
    const cut = { width, origin: from };
    const same = q.from !== undefined && q.to !== undefined;
    const asking = store.summarizeTransactions(asked, same ? cut : undefined);
    const [whole, timed] = await Promise.all([
      asking,
      same ? asking : store.summarizeTransactions({ since: from, until: q.to ?? from + n * width - 1 }, cut),
    ]);
    const byStart = new Map(timed.buckets.map((b) => [b.start, b]));
    return {
      total_revenue_sats: sats(whole.settledMsat),
      transaction_count: String(whole.settledCount),
      challenge_count: String(whole.count),
      service_breakdown: whole.services.map((s) => ({
        service_name: s.service,
        total_revenue_sats: sats(s.settledMsat),
        transaction_count: String(s.settledCount),
        challenge_count: String(s.count),
      })),
      bucket_seconds: String(width),
      buckets: Array.from({ length: n }, (_, i) => {
        const start = from + i * width;
        const b = byStart.get(start);
        return {
          start: iso(start),
          revenue_sats: sats(b?.settledMsat ?? 0n),
          transaction_count: String(b?.settledCount ?? 0),
          challenge_count: String(b?.count ?? 0),
        };
      }),
    };
  }

  function info() {
    const a = config.authenticator;
    return {
      network: a.network ?? '',
      listen_addr: formatHostPort(options.address()),
      insecure: !options.encrypted,
      mpp_enabled: a.enablempp,
      sessions_enabled: a.enablesessions,
      mpp_realm: a.mpprealm,
      store: options.store_description,
      lightning: options.lightning,
    };
  }

  function events(request: Request, response: Response): void {
    if (subscribers.size >= MAX_SUBSCRIBERS) {
      throw new AdminError('L402_ADMIN_UNAVAILABLE', `at most ${MAX_SUBSCRIBERS} live feeds at once`);
    }
    response.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
      ...corsHeaders(request),
    });
    write(response, `event: hello\ndata: ${JSON.stringify({ time: new Date(now()).toISOString() })}\n\n`);
    subscribers.add(response);
    response.on('close', () => subscribers.delete(response));
  }

  function exchange(input: unknown) {
    const { code } = Schemas.parse(Schemas.Login, input);
    const given = Buffer.from(code, 'hex');
    const current = login;
    if (current === undefined || now() > current.until || !timingSafeEqual(given, current.code)) {
      throw new AdminError(
        'L402_ADMIN_UNAUTHENTICATED',
        'this sign-in code is wrong, used or expired; paste the admin macaroon instead',
      );
    }
    login = undefined;
    return { macaroon: credentials.macaroonHex };
  }

  function corsHeaders(request: Request): Record<string, string> {
    const origin = request.headers.origin;
    if (typeof origin !== 'string' || !cors.has(origin)) return {};
    return {
      'access-control-allow-origin': origin,
      'access-control-allow-methods': 'GET, POST, PUT, DELETE, OPTIONS',
      'access-control-allow-headers': 'Content-Type, Grpc-Metadata-Macaroon, Authorization',
      'access-control-max-age': '600',
      vary: 'Origin',
    };
  }

  /** Routes an admin request; resolves with the JSON to answer, or `undefined` when already answered. */
  async function route(request: Request, response: Response, url: URL): Promise<unknown> {
    const method = request.method ?? 'GET';
    const rest = url.pathname.slice(PREFIX.length);
    const parts = rest.split('/').map((p) => {
      try {
        return decodeURIComponent(p);
      } catch {
        throw new AdminError('L402_ADMIN_BAD_REQUEST', 'bad percent-encoding in the path');
      }
    });
    const allow = (...methods: string[]) => {
      if (!methods.includes(method)) {
        throw new AdminError('L402_ADMIN_METHOD', `${method} is not allowed here (${methods.join(', ')})`);
      }
    };
    const [first, second, extra] = parts;
    if (extra !== undefined) throw new AdminError('L402_ADMIN_NOT_FOUND', `no admin route ${url.pathname}`);
    // Unauthenticated routes.
    if (first === 'health' && second === undefined) {
      allow('GET');
      return { status: 'ok' };
    }
    if (first === 'openapi.json' && second === undefined) {
      allow('GET');
      return document;
    }
    if (first === 'login' && second === undefined) {
      allow('POST');
      return exchange(await body(request));
    }
    credentials.check(request.headers);
    switch (first) {
      case 'info':
        if (second !== undefined) break;
        allow('GET');
        return info();
      case 'services':
        if (second === undefined) {
          allow('GET', 'POST');
          if (method === 'GET') return { services: catalogue.list().map(serviceJson) };
          const spec = Schemas.parse(Schemas.CreateService, await body(request));
          return serviceJson(await catalogue.create(spec));
        }
        allow('PUT', 'DELETE');
        if (method === 'DELETE') {
          await catalogue.remove(second);
          return { status: 'deleted' };
        }
        {
          const patch = Schemas.parse(Schemas.UpdateService, await body(request));
          if (patch.name !== undefined && patch.name !== second) {
            throw new AdminError(
              'L402_ADMIN_BAD_REQUEST',
              'name: a service cannot be renamed; delete and create it',
            );
          }
          const { name: _, ...changes } = patch;
          return serviceJson(await catalogue.update(second, changes));
        }
      case 'transactions':
        if (second !== undefined) break;
        allow('GET');
        return transactions(url);
      case 'tokens':
        if (second === undefined) {
          allow('GET');
          return tokens(url);
        }
        allow('DELETE');
        return revoke(second);
      case 'stats':
        if (second !== undefined) break;
        allow('GET');
        return stats(url);
      case 'events':
        if (second !== undefined) break;
        allow('GET');
        events(request, response);
        return undefined;
    }
    throw new AdminError('L402_ADMIN_NOT_FOUND', `no admin route ${url.pathname}`);
  }

  function dashboard(request: Request, response: Response, client: string): void {
    if (!config.dashboard.enabled)
      throw new AdminError('L402_ADMIN_NOT_FOUND', 'the dashboard is not enabled (dashboard.enabled)');
    if (!isLoopback(client))
      throw new AdminError('L402_ADMIN_FORBIDDEN', 'the dashboard is served to loopback clients only');
    if (request.method !== 'GET' && request.method !== 'HEAD')
      throw new AdminError('L402_ADMIN_METHOD', 'GET only');
    const nonce = randomBytes(16).toString('base64');
    const html = page(nonce);
    response.writeHead(200, {
      'content-type': 'text/html; charset=utf-8',
      'content-length': String(Buffer.byteLength(html)),
      'cache-control': 'no-store',
      'content-security-policy': `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'nonce-${nonce}'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`,
      'referrer-policy': 'no-referrer',
      'x-content-type-options': 'nosniff',
      'x-frame-options': 'DENY',
    });
    if (request.method === 'HEAD') response.end();
    else response.end(html);
  }

  return {
    macaroonPath: credentials.macaroonPath,
    dashboardPath,
    serve(request, response, client) {
      const target = request.url ?? '';
      if (!target.startsWith(PREFIX) && target !== DASHBOARD && !target.startsWith(`${DASHBOARD}?`))
        return false;
      const url = new URL(target, 'http://gateway.invalid');
      if (url.pathname === DASHBOARD) {
        try {
          dashboard(request, response, client);
        } catch (error) {
          fail(response, error);
        }
        return true;
      }
      const headers = corsHeaders(request);
      if (request.method === 'OPTIONS') {
        response.writeHead(204, headers);
        response.end();
        return true;
      }
      route(request, response, url).then(
        (result) => {
          if (result !== undefined) json(response, 200, result, headers);
        },
        (error: unknown) => fail(response, error),
      );
      return true;
    },
    observe(event) {
      if (subscribers.size === 0) return;
      const frame = `event: request\ndata: ${JSON.stringify({ time: new Date(now()).toISOString(), ...event })}\n\n`;
      for (const response of subscribers) {
        if (response.writableLength > MAX_BACKLOG) response.destroy();
        else write(response, frame);
      }
    },
    close() {
      clearInterval(heartbeat);
      for (const response of subscribers) response.end();
      subscribers.clear();
    },
  };
}
