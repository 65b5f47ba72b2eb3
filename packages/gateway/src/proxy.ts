/**
 * Forwarding a let-in request to its service's backend and streaming the answer back, as Aperture's
 * `httputil.ReverseProxy` director does:
 *
 * - the path gets `rewrite.prefix` in front; `Host` becomes the backend's address;
 * - `Authorization` is rewritten to Aperture's two values, `LSAT …` then `L402 …`, whenever the request
 *   carried a credential (in any form);
 * - hop-by-hop headers are dropped (`Connection` and every header it names, `Keep-Alive`, `Proxy-*`,
 *   `TE` except gRPC's `te: trailers`, `Trailer`, `Transfer-Encoding`, `Upgrade`), and `Expect`, which
 *   Node has already answered;
 * - `X-Forwarded-For` gets the peer's address, appended to the incoming list only when the peer is a
 *   trusted proxy (`trustedproxies`), else replacing it; `X-Forwarded-Proto` and `-Host` are kept from
 *   a trusted proxy and set otherwise;
 * - the service's `headers` are set last, overwriting.
 *
 * Bodies stream both ways and are never buffered: each response chunk is written as it arrives, so
 * chunked and server-sent-event responses reach the client event by event. Request bodies over
 * `limits.maxbodybytes` end the exchange with 413. Each service has an undici `Pool` (keep-alive
 * connections reused across requests), verifying `https` backends against the system CAs plus the
 * service's `tlscertpath`. A backend that cannot be reached answers 502, one too slow to send its
 * headers (`limits.responsetimeout`) 504; a backend failing mid-body cuts the client's response short
 * rather than letting a truncated body look complete. Upstream bodies idle for `writetimeout` are
 * abandoned (Aperture's rolling write deadline).
 *
 * The exchange is one `forward(request, response, target)` call; gRPC calls over HTTP/2 (`grpc.ts`)
 * and WebSocket upgrades (`upgrade.ts`) sit beside it and share {@link upstreamHeaders},
 * {@link downstreamHeaders}, the gateway's own answers ({@link failure}, {@link send}) and the
 * service's TLS trust ({@link trustOf}).
 *
 * The gateway's own answers (400, 403, 404, 413, 502, 504, …) are plain text, except to gRPC clients
 * (`content-type: application/grpc…`), which get what they can read: HTTP 200 with the status in
 * `grpc-status` (gRPC's HTTP-to-gRPC mapping: 502, 503 and 504 are 14 UNAVAILABLE, 404 is 12
 * UNIMPLEMENTED, 403 is 7 PERMISSION_DENIED; 413 is 8 RESOURCE_EXHAUSTED) and the message in
 * `grpc-message`, sent trailers-only over HTTP/2.
 *
 * @example
 * const proxy = ReverseProxy.create({ services: config.services, limits: config.limits, writetimeout: 30_000, trusted, log });
 * await proxy.forward(req, res, { service, path: '/paid/x?y=1', credential, encrypted: false, headers: [] });
 * await proxy.close();
 */
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import { Transform, type TransformCallback } from 'node:stream';
import { rootCertificates } from 'node:tls';
import type { Credential } from 'l402';
import * as Authority from 'l402/server';
import { Pool } from 'undici';
import { formatHostPort, type Limits, type Service } from './Config.js';
import { StartError } from './Errors.js';
import { type IpList, plainAddress } from './internal/ip.js';
import type { Logger } from './Log.js';
import type { Recorder } from './metrics.js';

/** A request as both Node servers hand it over. */
export type Request = IncomingMessage | Http2ServerRequest;
/** A response as both Node servers hand it over. */
export type Response = ServerResponse | Http2ServerResponse;

/** The services to pool connections for, and the bounds and trust the proxy applies. */
export interface Options {
  readonly services: readonly Service[];
  readonly limits: Limits;
  /** Milliseconds an upstream body may go without a byte before it is abandoned; 0 for never. */
  readonly writetimeout: number;
  /** The peers whose `X-Forwarded-*` headers are believed. */
  readonly trusted: IpList;
  readonly log: Logger;
  /** Counts backend failures (`l402_upstream_errors_total`); none by default. */
  readonly metrics?: Recorder;
}

/** Where a let-in request goes and what the gateway learned about it. */
export interface Target {
  readonly service: Service;
  /** Path and query to forward, before `rewrite.prefix` (already resolved by the gateway). */
  readonly path: string;
  /** The credential the request carried, if any: forwarded as Aperture's `LSAT` + `L402` pair. */
  readonly credential: Credential.Credential | undefined;
  /** That pair already formatted (the Authority keeps it with a verified token), to skip re-encoding. */
  readonly authorization?: readonly string[] | undefined;
  /** Whether the client reached the gateway over TLS (`X-Forwarded-Proto`). */
  readonly encrypted: boolean;
  /** Headers the Authority's "pass" decision adds to the response, set over the backend's. */
  readonly headers: readonly Authority.Header[];
  /** The request's id, sent to the backend in `X-Request-Id`. */
  readonly requestId?: string | undefined;
}

/** Forwards let-in requests to their backends (see {@link create}). */
export interface ReverseProxy {
  /** Forwards one request and streams the response; resolves when the exchange is over, never rejects. */
  forward(request: Request, response: Response, target: Target): Promise<void>;
  /** Closes every backend connection. */
  close(): Promise<void>;
}

/** Request headers that describe the connection, not the message (RFC 9110 §7.6.1), and `Expect`. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'expect',
  'http2-settings',
  'host',
]);
const isHopByHop = (name: string, listed: ReadonlySet<string>) =>
  HOP_BY_HOP.has(name) || name.startsWith('proxy-') || listed.has(name);

/** The header names a `Connection` header lists: they too are for this hop only. */
function connectionTokens(values: readonly string[]): Set<string> {
  const tokens = new Set<string>();
  for (const value of values) {
    for (const token of value.split(',')) {
      const name = token.trim().toLowerCase();
      if (name !== '') tokens.add(name);
    }
  }
  return tokens;
}

/** What {@link upstreamHeaders} needs to know about the request. */
export interface HeaderContext {
  /** Node's `rawHeaders`: names and values alternating, as received (HTTP/2 pseudo-headers included). */
  readonly rawHeaders: readonly string[];
  /** The address the connection came from. */
  readonly peer: string;
  readonly encrypted: boolean;
  /** The `Host` (HTTP/1.1) or `:authority` (HTTP/2) the client asked for. */
  readonly host: string;
  readonly credential: Credential.Credential | undefined;
  /** The forwarded `Authorization` values, when already formatted. */
  readonly authorization?: readonly string[] | undefined;
  readonly service: Service;
  readonly trusted: IpList;
  /**
   * The protocol of an upgrade the gateway relays (`websocket`): `Upgrade` and `Connection: upgrade`
   * are hop-by-hop, so the request loses them with the rest, and the gateway asks the backend for
   * the same upgrade on its own connection.
   */
  readonly upgrade?: string;
  /** Set as `X-Request-Id`, replacing the client's. */
  readonly requestId?: string | undefined;
}

/**
 * The headers to send upstream, in the shape undici takes (lower-case names; repeated headers as
 * arrays, except `Cookie`, which HTTP/1.1 allows only once and is joined with "; ").
 *
 * @example
 * upstreamHeaders({ rawHeaders: req.rawHeaders, peer: '203.0.113.9', encrypted: false, host: 'api.example.com',
 *   credential, service, trusted: ipList([]) });
 * // { 'x-forwarded-for': '203.0.113.9', authorization: ['LSAT AgE…:ab…', 'L402 AgE…:ab…'], host: '127.0.0.1:3000', … }
 */
export function upstreamHeaders(context: HeaderContext): Record<string, string | string[]> {
  const raw = context.rawHeaders;
  const connection: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    if (raw[i]!.toLowerCase() === 'connection') connection.push(raw[i + 1]!);
  }
  const listed = connectionTokens(connection);
  const headers: Record<string, string | string[]> = Object.create(null);
  const add = (name: string, value: string) => {
    const existing = headers[name];
    if (existing === undefined) headers[name] = value;
    else if (name === 'cookie') headers[name] = `${existing}; ${value}`;
    else headers[name] = Array.isArray(existing) ? [...existing, value] : [existing, value];
  };
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    const value = raw[i + 1]!;
    if (name.startsWith(':')) continue;
    // gRPC needs `te: trailers` end to end; Go's ReverseProxy keeps it for the same reason.
    if (name === 'te' && value.trim().toLowerCase() === 'trailers' && !listed.has('te')) {
      headers.te = 'trailers';
      continue;
    }
    if (isHopByHop(name, listed)) continue;
    add(name, value);
  }

  const peer = plainAddress(context.peer);
  const trusted = context.trusted(peer);
  const forwardedFor = headers['x-forwarded-for'];
  const priorHops = forwardedFor === undefined ? [] : [forwardedFor].flat();
  headers['x-forwarded-for'] = trusted && priorHops.length > 0 ? `${priorHops.join(', ')}, ${peer}` : peer;
  const single = (name: string) => {
    const value = headers[name];
    return typeof value === 'string' ? value : undefined;
  };
  headers['x-forwarded-proto'] =
    (trusted ? single('x-forwarded-proto') : undefined) ?? (context.encrypted ? 'https' : 'http');
  headers['x-forwarded-host'] = (trusted ? single('x-forwarded-host') : undefined) ?? context.host;

  if (context.authorization !== undefined) headers.authorization = [...context.authorization];
  else if (context.credential !== undefined) {
    headers.authorization = Authority.forwardedAuthorization(context.credential);
  }
  if (context.requestId !== undefined) headers['x-request-id'] = context.requestId;
  headers.host = formatHostPort(context.service.address);
  if (context.upgrade !== undefined) {
    headers.connection = 'upgrade';
    headers.upgrade = context.upgrade;
  }
  for (const [name, value] of Object.entries(context.service.headers)) headers[name] = value;
  return headers;
}

/** Response headers that must not be copied to the client (and that HTTP/2 forbids outright). */
const RESPONSE_HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/**
 * The upstream response's headers as the client gets them: hop-by-hop ones dropped, and Aperture's
 * CORS headers merged in (`Access-Control-Allow-Origin: *` replaces the backend's; the list headers
 * keep the backend's entries and add Aperture's).
 *
 * @example
 * downstreamHeaders({ 'content-type': 'application/json', 'access-control-allow-methods': 'PUT' });
 * // { 'content-type': 'application/json', 'access-control-allow-methods': 'PUT, GET, POST, OPTIONS', … }
 */
export function downstreamHeaders(
  upstream: Readonly<Record<string, string | string[] | undefined>>,
): Record<string, string | string[]> {
  const listed = connectionTokens([upstream.connection ?? []].flat());
  const headers: Record<string, string | string[]> = Object.create(null);
  for (const [name, value] of Object.entries(upstream)) {
    if (value === undefined || RESPONSE_HOP_BY_HOP.has(name) || name.startsWith('proxy-') || listed.has(name))
      continue;
    headers[name] = value;
  }
  for (const [name, value] of Authority.CORS_HEADERS) {
    const existing = headers[name];
    if (name === 'access-control-allow-origin' || existing === undefined) {
      headers[name] = value;
      continue;
    }
    const entries = [existing].flat().flatMap((v) => v.split(','));
    const seen = new Set(entries.map((e) => e.trim().toLowerCase()));
    const added = value.split(',').filter((e) => !seen.has(e.trim().toLowerCase()));
    headers[name] = [...entries, ...added].map((e) => e.trim()).join(', ');
  }
  return headers;
}

/** The request body went over `limits.maxbodybytes`. */
export class BodyTooLarge extends Error {
  override name = 'BodyTooLarge';
}

/**
 * Passes a body through, failing with {@link BodyTooLarge} once it exceeds `max` bytes.
 *
 * @example
 * request.pipe(limited(1_000_000)).pipe(upstream);
 */
export function limited(max: number): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
      seen += chunk.length;
      if (seen > max) callback(new BodyTooLarge(`the request body is over ${max} bytes`));
      else callback(null, chunk);
    },
  });
}

/** Whether a request has a body to forward: a length, a chunked one, or an HTTP/2 stream still open. */
function hasBody(request: Request): boolean {
  const length = request.headers['content-length'];
  if (length !== undefined) return length !== '0';
  if (request.headers['transfer-encoding'] !== undefined) return true;
  return 'stream' in request && !request.stream.endAfterHeaders;
}

const UPSTREAM_TIMEOUT = new Set(['UND_ERR_HEADERS_TIMEOUT']);

/**
 * Why an exchange failed, as the code of the error or of its cause (for the log).
 *
 * @example
 * codeOf(new TypeError('fetch failed', { cause: { code: 'ECONNREFUSED' } })); // 'ECONNREFUSED'
 */
export function codeOf(error: unknown): string {
  const e = error as { code?: unknown; cause?: { code?: unknown } } | undefined;
  const code = e?.code ?? e?.cause?.code;
  return typeof code === 'string' ? code : error instanceof Error ? error.name : 'unknown';
}

/** An answer the gateway gives instead of the backend's: its own, or the Authority's decision. */
export interface Reply {
  readonly status: number;
  /** Repeated names are separate fields (the two `WWW-Authenticate` challenges). */
  readonly headers: readonly Authority.Header[];
  readonly body: string;
}

/**
 * Whether a request comes from a gRPC client (gRPC over HTTP/2, or grpc-web), which reads the outcome
 * of a call from `grpc-status`, never from the HTTP status. The Authority tells them apart the same way.
 *
 * @example
 * isGrpc({ 'content-type': 'application/grpc+proto' }); // true
 */
export function isGrpc(headers: Readonly<Record<string, string | string[] | undefined>>): boolean {
  const type = headers['content-type'];
  return typeof type === 'string' && type.toLowerCase().startsWith('application/grpc');
}

/** gRPC's HTTP-to-gRPC status mapping (`doc/http-grpc-status-mapping.md`), plus 413 and 500. */
const GRPC_STATUS: Readonly<Record<number, number>> = {
  400: 13,
  401: 16,
  403: 7,
  404: 12,
  413: 8,
  429: 14,
  500: 13,
  502: 14,
  503: 14,
  504: 14,
};

/**
 * The gRPC status code a client of the gateway gets for one of its HTTP statuses; 2 UNKNOWN for any other.
 *
 * @example
 * grpcStatus(502); // 14 (UNAVAILABLE)
 */
export function grpcStatus(httpStatus: number): number {
  return GRPC_STATUS[httpStatus] ?? 2;
}

/**
 * A short answer of the gateway's own: plain text, or for a gRPC client HTTP 200 carrying the mapped
 * `grpc-status` and the message in `grpc-message`, without a body.
 *
 * @example
 * failure(502, 'upstream unavailable', false); // { status: 502, body: 'upstream unavailable\n', … }
 * failure(502, 'upstream unavailable', true);  // { status: 200, headers: [['grpc-status', '14'], …], body: '' }
 */
export function failure(
  status: number,
  message: string,
  grpc: boolean,
  headers: Readonly<Record<string, string>> = {},
): Reply {
  const extra = Object.entries(headers);
  if (grpc) {
    return {
      status: 200,
      headers: [
        ...extra,
        ['content-type', 'application/grpc'],
        ['grpc-status', String(grpcStatus(status))],
        ['grpc-message', message],
      ],
      body: '',
    };
  }
  return {
    status,
    headers: [...extra, ['content-type', 'text/plain; charset=utf-8'], ['x-content-type-options', 'nosniff']],
    body: `${message}\n`,
  };
}

/**
 * Writes a reply, if nothing was sent yet. One without a body goes out as a single HEADERS frame
 * that ends the stream over HTTP/2: for a gRPC client that is a trailers-only response, the only
 * place it reads a status from when no message comes (headers followed by an empty DATA frame would
 * be read as metadata and then "call ended without gRPC status").
 *
 * @example
 * send(response, { status: 402, headers: decision.headers, body: decision.body });
 */
export function send(response: Response, reply: Reply): void {
  if (response.headersSent || response.destroyed) return;
  const grouped = new Map<string, string[]>();
  for (const [name, value] of reply.headers) grouped.set(name, [...(grouped.get(name) ?? []), value]);
  for (const [name, values] of grouped) response.setHeader(name, values.length === 1 ? values[0]! : values);
  // A 304 keeps the length of what it stands for, or says none.
  if (reply.status !== 304) response.setHeader('content-length', Buffer.byteLength(reply.body));
  response.statusCode = reply.status;
  // `end('')` would send the headers first and end the stream with an empty DATA frame.
  if (reply.body === '') response.end();
  else response.end(reply.body);
}

/**
 * Writes a short answer of the gateway's own ({@link failure}, shaped for the request's client), if
 * nothing was sent yet.
 *
 * @example
 * answer(response, 502, 'upstream unavailable'); // 502, "upstream unavailable\n", text/plain
 */
export function answer(
  response: Response,
  status: number,
  message: string,
  headers: Record<string, string> = {},
): void {
  send(response, failure(status, message, isGrpc(response.req.headers), headers));
}

/**
 * The CAs a service's `https` backend is verified against: the system's plus its `tlscertpath`;
 * `undefined` (the system's alone) without one.
 *
 * @example
 * https.request({ host, port, ca: trustOf(service) });
 */
export function trustOf(service: Service): string[] | undefined {
  if (service.protocol !== 'https' || service.tlscertpath === undefined) return undefined;
  try {
    return [...rootCertificates, readFileSync(service.tlscertpath, 'utf8')];
  } catch (error) {
    throw new StartError(
      'L402_GATEWAY_UPSTREAM',
      `cannot read the CA ${service.tlscertpath} of service ${service.name} (${codeOf(error)})`,
      { cause: error },
    );
  }
}

/** Resolves once the response can take more data, or has closed. */
function drained(response: Response): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      response.off('drain', done);
      response.off('close', done);
      resolve();
    };
    response.on('drain', done);
    response.on('close', done);
  });
}

/**
 * A proxy with one connection pool per backend (made on first use for services added at run time).
 *
 * @example
 * const proxy = ReverseProxy.create({ services, limits, writetimeout: 30_000, trusted: ipList([]), log });
 */
export function create(options: Options): ReverseProxy {
  const { limits } = options;
  /** One pool per backend (origin and trust), so a service changed at run time reuses its backend's pool. */
  const pools = new Map<string, Pool>();
  /** Per service object, its pool: the backend key is worked out once, not per request. */
  const byService = new WeakMap<Service, Pool>();
  function poolFor(service: Service): Pool {
    const known = byService.get(service);
    if (known !== undefined) return known;
    const pool = backendPool(service);
    byService.set(service, pool);
    return pool;
  }
  function backendPool(service: Service): Pool {
    const origin = `${service.protocol}://${formatHostPort(service.address)}`;
    const key = `${origin} ${service.tlscertpath ?? ''}`;
    let pool = pools.get(key);
    if (pool !== undefined) return pool;
    const ca = trustOf(service);
    pool = new Pool(origin, {
      connect: { timeout: limits.connecttimeout, ...(ca !== undefined ? { ca } : {}) },
      headersTimeout: limits.responsetimeout ?? 0,
      bodyTimeout: options.writetimeout,
    });
    pools.set(key, pool);
    return pool;
  }
  for (const service of options.services) poolFor(service);

  async function forward(request: Request, response: Response, target: Target): Promise<void> {
    const { service } = target;
    const pool = poolFor(service);
    const prefix = service.rewrite.prefix?.replace(/\/+$/, '') ?? '';
    const aborter = new AbortController();
    const onClose = () => {
      if (!response.writableEnded) aborter.abort();
    };
    response.on('close', onClose);
    let body: Transform | undefined;
    if (hasBody(request)) {
      // Always through a stream of our own: undici destroys a body it gives up on, and destroying
      // Node's request would take the client connection, and the 502 or 413 for it, down too.
      const through = limited(limits.maxbodybytes ?? Number.POSITIVE_INFINITY);
      request.on('error', (error) => through.destroy(error));
      body = request.pipe(through);
    }
    let upstream: Awaited<ReturnType<Pool['request']>>;
    try {
      upstream = await pool.request({
        method: request.method as 'GET',
        path: `${prefix}${target.path}`,
        headers: upstreamHeaders({
          rawHeaders: request.rawHeaders,
          peer: request.socket.remoteAddress ?? '',
          encrypted: target.encrypted,
          host: request.headers.host ?? (request.headers[':authority'] as string | undefined) ?? '',
          credential: target.credential,
          authorization: target.authorization,
          service,
          trusted: options.trusted,
          requestId: target.requestId,
        }),
        body: body ?? null,
        signal: aborter.signal,
      });
    } catch (error) {
      response.off('close', onClose);
      if (aborter.signal.aborted) return;
      if (error instanceof BodyTooLarge || (error as { cause?: unknown }).cause instanceof BodyTooLarge) {
        answer(response, 413, 'request body too large', closeAfter(response));
        return;
      }
      const code = codeOf(error);
      upstreamFailed(options, service, code);
      if (UPSTREAM_TIMEOUT.has(code)) answer(response, 504, 'upstream timed out');
      else answer(response, 502, 'upstream unavailable');
      return;
    }
    try {
      if (response.destroyed) {
        upstream.body.destroy();
        return;
      }
      const headers = downstreamHeaders(upstream.headers);
      for (const [name] of target.headers) delete headers[name];
      for (const [name, value] of target.headers) {
        const existing = headers[name];
        headers[name] = existing === undefined ? value : [existing, value].flat();
      }
      for (const [name, value] of Object.entries(headers)) response.setHeader(name, value);
      response.writeHead(upstream.statusCode);
      // A body of unknown length (SSE, chunked streams) may start slowly: send the headers now so the
      // client sees the response begin. With a content-length they go out with the first chunk, which
      // saves a write per response. (Http2ServerResponse has flushHeaders too; @types/node 20 lacks it.)
      if (upstream.headers['content-length'] === undefined) (response as ServerResponse).flushHeaders();
      const sink = response as NodeJS.WritableStream;
      for await (const chunk of upstream.body) {
        if (!sink.write(chunk as Uint8Array)) await drained(response);
        if (response.destroyed) break;
      }
      if (!response.destroyed) response.end();
    } catch (error) {
      if (!aborter.signal.aborted) upstreamFailed(options, service, codeOf(error), 'upstream body failed');
      upstream.body.destroy();
      // The status line is out: only cutting the connection tells the client the body is incomplete.
      response.destroy();
    } finally {
      response.off('close', onClose);
    }
  }

  return {
    forward,
    async close() {
      await Promise.all([...pools.values()].map((pool) => pool.close()));
    },
  };
}

/**
 * Logs a backend's failure and counts it.
 *
 * @example
 * upstreamFailed(options, service, 'ECONNREFUSED'); // warn "upstream failed", l402_upstream_errors_total +1
 */
export function upstreamFailed(
  options: Options,
  service: Service,
  code: string,
  message = 'upstream failed',
): void {
  options.log.warn(message, { service: service.name, code });
  options.metrics?.upstreamError(service.name, code);
}

/** HTTP/1.1 answers that leave a request body unread end the connection, so the rest is never read. */
function closeAfter(response: Response): Record<string, string> {
  return 'stream' in response ? {} : { connection: 'close' };
}
