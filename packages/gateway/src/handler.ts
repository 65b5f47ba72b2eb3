/**
 * One request through the gateway, in Aperture's order (`proxy/proxy.go` ServeHTTP):
 *
 * 1. the client address (the peer, or from `X-Forwarded-For` behind a trusted proxy); `blocklist` → 403;
 * 2. `OPTIONS` → 200 with Aperture's CORS headers, never proxied;
 * 3. a request target that is not a path (or hides dot segments, below) → 400; a declared body over `limits.maxbodybytes` → 413 (before any invoice is made for it);
 * 4. the gateway's own endpoints (`/.well-known/l402.json`, and `/metrics` when Prometheus shares
 *    this listener) are answered here, ahead of every service; then
 *    the service (`hostregexp`, `pathregexp`, in order); none → 404, where Aperture would hand the
 *    request to its static file server or answer 500;
 * 5. access: `open` services and whitelisted paths pass; `paid` ones pass with a valid token, else the
 *    Authority's decision is the answer, verbatim (402 challenge, 401 for skip-invoice paths, 503
 *    with `Retry-After` when Lightning is down, gRPC-shaped for gRPC clients); `freebie N` lets a
 *    request without a credential through while its network has free requests left, and judges
 *    everything else like `paid` (Aperture would also spend a freebie on a bad credential); a metered
 *    service's meter (`metered.ts`) stands in front of the Authority and adds its balance check;
 * 5b. the service's `ratelimits` (`ratelimit.ts`), keyed by the verified token, else by the client's
 *    network: 429 with `Retry-After` (gRPC: `grpc-status: 8`); a credential-less request to a
 *    `freebie` service is limited before it spends a freebie;
 * 6. it is forwarded, with the credential rewritten to Aperture's `LSAT` + `L402` pair: a gRPC call
 *    over HTTP/2 to the backend over HTTP/2 (`grpc.ts`), an `Upgrade: websocket` request through a
 *    tunnel (`upgrade.ts`), everything else by the HTTP proxy (`proxy.ts`).
 *
 * Steps 1–5 are one function ({@link Handler}'s two entry points share it), so an upgrade request is
 * judged exactly as any other request; only how an answer is written differs (on the response, or
 * on the raw connection of an upgrade, which then closes).
 *
 * The path is resolved once (dot segments removed, as the WHATWG URL parser does) and that path is
 * both what the regexps see (percent-decoded, as Go's `URL.Path`) and what the backend gets, so no
 * rule judges one path while the backend serves another. A path whose decoded form still holds dot
 * segments (`/free%2F..%2Fpaid`) is refused with 400 for the same reason.
 *
 * Every request gets an id (the client's `X-Request-Id` when well formed, else a fresh UUID): it is
 * sent back in `X-Request-Id`, forwarded to the backend in the same header, and written on the
 * request's log line. Each outcome is counted in `metrics` (see `metrics.ts`).
 *
 * @example
 * const handler = Handler.create({ router, authority, proxy, grpc, upgrades, freebies, ratelimits, blocklist, trusted, maxbodybytes, encrypted: false, log });
 * http.createServer(handler.request).on('upgrade', handler.upgrade);
 */
import type { IncomingMessage } from 'node:http';
import type { Http2ServerResponse } from 'node:http2';
import type { Duplex } from 'node:stream';
import { Credential } from 'l402';
import type * as Authority from 'l402/server';
import { CORS_HEADERS } from 'l402/server';
import { clientIp } from './clientip.js';
import type { Freebies } from './freebies.js';
import { type GrpcProxy, isCall } from './grpc.js';
import type { IpList } from './internal/ip.js';
import { REQUEST_ID_HEADER, requestIdOf } from './internal/requestId.js';
import type { Logger } from './Log.js';
import type { Meter, UsageObserver } from './metered.js';
import { none, type Recorder } from './metrics.js';
import type { Payments } from './mpp.js';
import {
  answer,
  failure,
  isGrpc,
  type Reply,
  type Request,
  type Response,
  type ReverseProxy,
  send,
  type Target,
} from './proxy.js';
import * as RateLimit from './ratelimit.js';
import type { Router } from './router.js';
import { type Upgrades, writeReply } from './upgrade.js';

/** What the handler works with; each piece is built (and closed) by `Gateway.start`. */
export interface Options {
  readonly router: Router;
  /** Undefined when `authenticator.disable` is set (then every service is `auth: off`). */
  readonly authority: Authority.Authority | undefined;
  /** MPP (`Payment` scheme) for services whose authscheme includes it; undefined without enablempp. */
  readonly payments?: Payments | undefined;
  readonly proxy: ReverseProxy;
  readonly grpc: GrpcProxy;
  readonly upgrades: Upgrades;
  readonly freebies: Freebies;
  readonly ratelimits: RateLimit.RateLimiter;
  /** Metered services (prepaid credit, Aperture's metered pricer) by name: decided in place of the Authority. */
  readonly meters?: ReadonlyMap<string, Meter>;
  /** Extras for a service's request view (a gRPC pricer's lazy body-prefix reader). */
  readonly view?: (service: string, request: Request) => object | undefined;
  readonly blocklist: IpList;
  readonly trusted: IpList;
  readonly maxbodybytes: number | undefined;
  /** The listener serves TLS. */
  readonly encrypted: boolean;
  readonly log: Logger;
  /** Counters and histograms; none by default. */
  readonly metrics?: Recorder;
  /** Paths (decoded) the gateway answers itself, ahead of every service. */
  readonly endpoints?: ReadonlyMap<string, Endpoint>;
  /** The gateway's own routes (admin API, dashboard), tried before any service: true when it answered. */
  readonly local?: (request: Request, response: Response, client: string) => boolean;
  /** Told of each request once answered (the admin's live feed); paths only, as in the log. */
  readonly observe?: (event: Record<string, unknown>) => void;
}

/** One of the gateway's own endpoints: the answer to a request for its path. */
export type Endpoint = (request: Request) => Reply | Promise<Reply>;

/** The request target resolved: what the regexps see, and what is forwarded. */
interface Resolved {
  /** Percent-decoded path, for matching. */
  readonly decoded: string;
  /** Path and query as forwarded (and as the Authority sees the request). */
  readonly forward: string;
  /** The authority of an absolute-form request target (`GET http://host/x`), which overrides `Host`. */
  readonly host: string | undefined;
}

const BASE = 'http://gateway.invalid';
const DOT_SEGMENT = /(?:^|\/)\.{1,2}(?:\/|$)/;

/** Percent-decodes a path as Go's URL.Path does; bytes that are not UTF-8 decode one character each. */
function decodePath(path: string): string {
  try {
    return decodeURIComponent(path);
  } catch {
    return path.replace(/%([0-9A-Fa-f]{2})/g, (_, hex: string) =>
      String.fromCharCode(Number.parseInt(hex, 16)),
    );
  }
}

/** `undefined` for a target that is not a path (or an absolute URL) or that hides dot segments. */
function resolve(target: string): Resolved | undefined {
  let url: URL;
  let host: string | undefined;
  try {
    if (target.startsWith('/')) url = new URL(`${BASE}${target}`);
    else {
      url = new URL(target);
      if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined;
      host = url.host;
    }
  } catch {
    return undefined;
  }
  const decoded = decodePath(url.pathname);
  if (DOT_SEGMENT.test(decoded)) return undefined;
  return { decoded, forward: `${url.pathname}${url.search}`, host };
}

/** Whether the request carries something meant as an L402 credential (valid or not). */
function presented(request: Request): Credential.Credential | 'malformed' | undefined {
  try {
    return Credential.fromHeaders(request.headers);
  } catch {
    return 'malformed';
  }
}

const CORS: Record<string, string> = Object.fromEntries(CORS_HEADERS);

/** Where a request went: the service, and `open`, `paid`, `freebie` or the Authority's reason for answering. */
interface Outcome {
  readonly service: string;
  readonly outcome: string;
}

/** What the gateway does with a request: answer it itself, or forward it to `target`. */
type Admission =
  | { readonly kind: 'answer'; readonly reply: Reply; readonly outcome?: Outcome }
  | {
      readonly kind: 'forward';
      readonly target: Target;
      readonly outcome: Outcome;
      readonly usage?: UsageObserver | undefined;
    };

/** The gateway's request listener and upgrade hook (see {@link create}). */
export interface Handler {
  /** For Node's HTTP/1.1 and HTTP/2 servers alike: answers or forwards; never throws. */
  readonly request: (request: Request, response: Response) => void;
  /** For the listener's `upgrade` hook (`Upgrade: websocket`): answers on the socket or relays; never throws. */
  readonly upgrade: (request: IncomingMessage, socket: Duplex, head: Buffer) => void;
}

/**
 * The gateway's request handler and upgrade hook.
 *
 * @example
 * const handler = Handler.create(options);
 * handler.request(req, res); // answers or proxies; never throws
 */
export function create(options: Options): Handler {
  const { router, authority, proxy, grpc, upgrades, freebies, ratelimits, log } = options;
  const metrics = options.metrics ?? none;
  const endpoints = options.endpoints ?? new Map<string, Endpoint>();

  /** Steps 1 to 5: whether, and to where, a request goes on. */
  async function admit(request: Request, client: string, requestId: string): Promise<Admission> {
    const grpcClient = isGrpc(request.headers);
    const refuse = (status: number, message: string, headers: Record<string, string> = {}): Admission => ({
      kind: 'answer',
      reply: failure(status, message, grpcClient, headers),
    });
    if (options.blocklist(client)) return refuse(403, 'access denied');
    if (request.method === 'OPTIONS')
      return { kind: 'answer', reply: { status: 200, headers: CORS_HEADERS, body: '' } };
    const resolved = resolve(request.url ?? '');
    if (resolved === undefined) return refuse(400, 'bad request: the request target is not a valid path');
    const length = Number(request.headers['content-length'] ?? 0);
    if (options.maxbodybytes !== undefined && length > options.maxbodybytes) {
      return refuse(413, 'request body too large', 'stream' in request ? {} : { connection: 'close' });
    }
    const endpoint = endpoints.get(resolved.decoded);
    if (endpoint !== undefined) {
      return { kind: 'answer', reply: await endpoint(request), outcome: { service: '', outcome: 'gateway' } };
    }
    const host =
      resolved.host ?? request.headers.host ?? (request.headers[':authority'] as string | undefined) ?? '';
    const target = router.match({ host, path: resolved.decoded });
    if (target === undefined) return refuse(404, 'not found: no service matches this request', CORS);
    const { service } = target;
    // Paid routes: the Authority parses (or recalls) the credential. Only open and freebie routes read
    // it here, to forward it and to spend freebies on credential-less requests only.
    const credential = target.access === 'paid' ? undefined : presented(request);
    let forwarded = credential === 'malformed' ? undefined : credential;
    let authorization: readonly string[] | undefined;
    let headers: readonly Authority.Header[] = [];
    // Rate limits apply once the client is known (Aperture: after authentication): by verified token,
    // else by network. A request that may be free is limited before it spends a freebie.
    const limited = async (tokenId: string | undefined): Promise<Admission | undefined> => {
      const waitMs = await ratelimits.check(service, resolved.decoded, RateLimit.clientKey(tokenId, client));
      if (waitMs === undefined) return undefined;
      return {
        kind: 'answer',
        reply: RateLimit.reply(waitMs, grpcClient),
        outcome: { service: service.name, outcome: 'rate-limited' },
      };
    };
    const mayBeFree =
      target.access === 'freebie' && credential === undefined && service.auth.kind === 'freebie';
    if (mayBeFree && service.ratelimits.length > 0) {
      const refused = await limited(undefined);
      if (refused !== undefined) return refused;
    }
    let usage: UsageObserver | undefined;
    const freebie =
      mayBeFree &&
      service.auth.kind === 'freebie' &&
      (await freebies.take(service.name, client, service.auth.count));
    let tokenId: string | undefined;
    if (target.access !== 'open' && !freebie) {
      if (authority === undefined)
        throw new Error(`service ${service.name} needs payment but Lightning is disabled`);
      const view = {
        method: request.method ?? 'GET',
        url: resolved.forward,
        headers: request.headers,
        remoteAddress: client,
        ...options.view?.(service.name, request),
      };
      const meter = options.meters?.get(service.name);
      const metered =
        options.payments !== undefined && service.authscheme !== 'l402'
          ? { decision: await options.payments.authorize(view, target) }
          : meter
            ? await meter.authorize(authority, view, target.route)
            : { decision: await authority.authorize(view, target.route) };
      const { decision } = metered;
      usage = metered.usage;
      if (decision.kind === 'respond') {
        metrics.decided(service.name, decision);
        return {
          kind: 'answer',
          reply: decision,
          outcome: { service: service.name, outcome: decision.reason },
        };
      }
      tokenId = decision.token?.tokenId;
      if (decision.token !== undefined) metrics.accepted(service.name);
      forwarded = decision.token?.credential ?? forwarded;
      authorization = decision.token?.forwardedAuthorization;
      headers = decision.headers;
    }
    if (!mayBeFree && service.ratelimits.length > 0) {
      const refused = await limited(tokenId);
      if (refused !== undefined) {
        usage?.release(429);
        return refused;
      }
    }
    return {
      kind: 'forward',
      target: {
        service,
        path: resolved.forward,
        credential: forwarded,
        authorization,
        encrypted: options.encrypted,
        headers,
        requestId,
      },
      outcome: { service: service.name, outcome: freebie ? 'freebie' : target.access },
      usage,
    };
  }

  /** The client's address: the peer, or from `X-Forwarded-For` behind a trusted proxy. */
  const clientOf = (request: Request): string => clientIp(request, options.trusted);

  /**
   * One line per request, and its metrics; paths only, as query strings can carry API keys and
   * other secrets.
   */
  function done(
    request: Request,
    requestId: string,
    started: number,
    status: number | undefined,
    fields: Record<string, unknown>,
    outcome: Outcome | undefined,
  ): void {
    const ms = performance.now() - started;
    metrics.completed(outcome, status, ms / 1000);
    const line = {
      requestId,
      method: request.method,
      path: (request.url ?? '').split('?')[0],
      status,
      ...fields,
      ...outcome,
      ms: Math.round(ms),
    };
    log.info('request', line);
    options.observe?.(line);
  }

  function failed(requestId: string, error: unknown): void {
    log.error('request failed', {
      requestId,
      error: error instanceof Error ? error.message : String(error),
    });
  }

  return {
    request(request, response) {
      const started = performance.now();
      const requestId = requestIdOf(request.headers[REQUEST_ID_HEADER]);
      response.setHeader(REQUEST_ID_HEADER, requestId);
      const client = clientOf(request);
      if (!options.blocklist(client) && options.local?.(request, response, client)) return;
      const handle = async (): Promise<Outcome | undefined> => {
        const admission = await admit(request, client, requestId);
        if (admission.kind === 'answer') {
          send(response, admission.reply);
          return admission.outcome;
        }
        admission.usage?.attach(request, response);
        if (isCall(request)) await grpc.forward(request, response as Http2ServerResponse, admission.target);
        else await proxy.forward(request, response, admission.target);
        return admission.outcome;
      };
      handle().then(
        (what) => done(request, requestId, started, response.statusCode, { client }, what),
        (error: unknown) => {
          failed(requestId, error);
          if (response.headersSent) response.destroy();
          else answer(response, 500, 'internal error');
          done(request, requestId, started, 500, { client }, undefined);
        },
      );
    },

    upgrade(request, socket, head) {
      const started = performance.now();
      const requestId = requestIdOf(request.headers[REQUEST_ID_HEADER]);
      // Node's HTTP server stops watching a connection it hands over.
      socket.on('error', () => socket.destroy());
      const client = clientOf(request);
      const handle = async (): Promise<{ status: number | undefined; outcome: Outcome | undefined }> => {
        const admission = await admit(request, client, requestId);
        if (admission.kind === 'answer') {
          writeReply(socket, {
            ...admission.reply,
            headers: [...admission.reply.headers, [REQUEST_ID_HEADER, requestId]],
          });
          return { status: admission.reply.status, outcome: admission.outcome };
        }
        const status = await upgrades.relay(request, socket, head, admission.target);
        admission.usage?.release(status ?? 502);
        return { status, outcome: admission.outcome };
      };
      const upgrade = request.headers.upgrade;
      handle().then(
        ({ status, outcome }) => done(request, requestId, started, status, { upgrade, client }, outcome),
        (error: unknown) => {
          failed(requestId, error);
          writeReply(socket, failure(500, 'internal error', false, { [REQUEST_ID_HEADER]: requestId }));
          done(request, requestId, started, 500, { upgrade, client }, undefined);
        },
      );
    },
  };
}
