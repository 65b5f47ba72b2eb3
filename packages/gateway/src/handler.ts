/**
 * One request through the gateway, in Aperture's order (`proxy/proxy.go` ServeHTTP):
 *
 * 1. the client address (the peer, or from `X-Forwarded-For` behind a trusted proxy); `blocklist` → 403;
 * 2. `OPTIONS` → 200 with Aperture's CORS headers, never proxied;
 * 3. a request target that is not a path (or hides dot segments, below) → 400; a declared body over `limits.maxbodybytes` → 413 (before any invoice is made for it);
 * 4. the service (`hostregexp`, `pathregexp`, in order); none → 404, where Aperture would hand the
 *    request to its static file server or answer 500;
 * 5. access: `open` services and whitelisted paths pass; `paid` ones pass with a valid token, else the
 *    Authority's decision is the answer, verbatim (402 challenge, 401 for skip-invoice paths, 503
 *    with `Retry-After` when Lightning is down, gRPC-shaped for gRPC clients); `freebie N` lets a
 *    request without a credential through while its network has free requests left, and judges
 *    everything else like `paid` (Aperture would also spend a freebie on a bad credential);
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
 * @example
 * const handler = Handler.create({ router, authority, proxy, grpc, upgrades, freebies, blocklist, trusted, maxbodybytes, encrypted: false, log });
 * http.createServer(handler.request).on('upgrade', handler.upgrade);
 */
import type { IncomingMessage } from 'node:http';
import type { Http2ServerResponse } from 'node:http2';
import type { Duplex } from 'node:stream';
import { Credential } from 'l402';
import type * as Authority from 'l402/server';
import { CORS_HEADERS } from 'l402/server';
import type { Freebies } from './freebies.js';
import { type GrpcProxy, isCall } from './grpc.js';
import { clientAddress, type IpList } from './internal/ip.js';
import type { Logger } from './Log.js';
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
import type { Router } from './router.js';
import { type Upgrades, writeReply } from './upgrade.js';

/** What the handler works with; each piece is built (and closed) by `Gateway.start`. */
export interface Options {
  readonly router: Router;
  /** Undefined when `authenticator.disable` is set (then every service is `auth: off`). */
  readonly authority: Authority.Authority | undefined;
  readonly proxy: ReverseProxy;
  readonly grpc: GrpcProxy;
  readonly upgrades: Upgrades;
  readonly freebies: Freebies;
  readonly blocklist: IpList;
  readonly trusted: IpList;
  readonly maxbodybytes: number | undefined;
  /** The listener serves TLS. */
  readonly encrypted: boolean;
  readonly log: Logger;
  /** The gateway's own routes (admin API, dashboard), tried before any service: true when it answered. */
  readonly local?: (request: Request, response: Response, client: string) => boolean;
  /** Told of each request once answered (the admin's live feed); paths only, as in the log. */
  readonly observe?: (event: Record<string, unknown>) => void;
}

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
  | { readonly kind: 'forward'; readonly target: Target; readonly outcome: Outcome };

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
  const { router, authority, proxy, grpc, upgrades, freebies, log } = options;

  /** Steps 1 to 5: whether, and to where, a request goes on. */
  async function admit(request: Request, client: string): Promise<Admission> {
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
    const freebie =
      target.access === 'freebie' &&
      credential === undefined &&
      service.auth.kind === 'freebie' &&
      freebies.take(service.name, client, service.auth.count);
    if (target.access !== 'open' && !freebie) {
      if (authority === undefined)
        throw new Error(`service ${service.name} needs payment but Lightning is disabled`);
      const decision = await authority.authorize(
        {
          method: request.method ?? 'GET',
          url: resolved.forward,
          headers: request.headers,
          remoteAddress: client,
        },
        target.route,
      );
      if (decision.kind === 'respond') {
        return {
          kind: 'answer',
          reply: decision,
          outcome: { service: service.name, outcome: decision.reason },
        };
      }
      forwarded = decision.token?.credential ?? forwarded;
      authorization = decision.token?.forwardedAuthorization;
      headers = decision.headers;
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
      },
      outcome: { service: service.name, outcome: freebie ? 'freebie' : target.access },
    };
  }

  /** The client's address: the peer, or from `X-Forwarded-For` behind a trusted proxy. */
  function clientOf(request: Request): string {
    const forwardedFor = request.headers['x-forwarded-for'];
    return clientAddress(
      request.socket.remoteAddress ?? '',
      Array.isArray(forwardedFor) ? forwardedFor.join(', ') : forwardedFor,
      options.trusted,
    );
  }

  /** One line per request; paths only, as query strings can carry API keys and other secrets. */
  function logged(request: Request, started: number, fields: Record<string, unknown>): void {
    const line = {
      method: request.method,
      path: (request.url ?? '').split('?')[0],
      ...fields,
      ms: Math.round(performance.now() - started),
    };
    log.info('request', line);
    options.observe?.(line);
  }

  return {
    request(request, response) {
      const started = performance.now();
      const client = clientOf(request);
      if (!options.blocklist(client) && options.local?.(request, response, client)) return;
      const handle = async (): Promise<Outcome | undefined> => {
        const admission = await admit(request, client);
        if (admission.kind === 'answer') {
          send(response, admission.reply);
          return admission.outcome;
        }
        if (isCall(request)) await grpc.forward(request, response as Http2ServerResponse, admission.target);
        else await proxy.forward(request, response, admission.target);
        return admission.outcome;
      };
      handle().then(
        (what) => logged(request, started, { status: response.statusCode, client, ...what }),
        (error: unknown) => {
          log.error('request failed', { error: error instanceof Error ? error.message : String(error) });
          if (response.headersSent) response.destroy();
          else answer(response, 500, 'internal error');
        },
      );
    },

    upgrade(request, socket, head) {
      const started = performance.now();
      // Node's HTTP server stops watching a connection it hands over.
      socket.on('error', () => socket.destroy());
      const client = clientOf(request);
      const handle = async (): Promise<{ status: number | undefined } & Partial<Outcome>> => {
        const admission = await admit(request, client);
        if (admission.kind === 'answer') {
          writeReply(socket, admission.reply);
          return { status: admission.reply.status, ...admission.outcome };
        }
        const status = await upgrades.relay(request, socket, head, admission.target);
        return { status, ...admission.outcome };
      };
      handle().then(
        (what) => logged(request, started, { upgrade: request.headers.upgrade, client, ...what }),
        (error: unknown) => {
          log.error('request failed', { error: error instanceof Error ? error.message : String(error) });
          writeReply(socket, failure(500, 'internal error', false));
        },
      );
    },
  };
}
