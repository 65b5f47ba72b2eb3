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
 * 6. the proxy forwards it, with the credential rewritten to Aperture's `LSAT` + `L402` pair.
 *
 * The path is resolved once (dot segments removed, as the WHATWG URL parser does) and that path is
 * both what the regexps see (percent-decoded, as Go's `URL.Path`) and what the backend gets, so no
 * rule judges one path while the backend serves another. A path whose decoded form still holds dot
 * segments (`/free%2F..%2Fpaid`) is refused with 400 for the same reason.
 *
 * @example
 * const handle = Handler.create({ router, authority, proxy, freebies, blocklist, trusted, maxbodybytes, encrypted: false, log });
 * http.createServer(handle);
 */
import { Credential } from 'l402';
import type * as Authority from 'l402/server';
import { CORS_HEADERS } from 'l402/server';
import type { Freebies } from './freebies.js';
import { clientAddress, type IpList } from './internal/ip.js';
import type { Logger } from './Log.js';
import { answer, type Request, type Response, type ReverseProxy } from './proxy.js';
import type { Router } from './router.js';

/** What the handler works with; each piece is built (and closed) by `Gateway.start`. */
export interface Options {
  readonly router: Router;
  /** Undefined when `authenticator.disable` is set (then every service is `auth: off`). */
  readonly authority: Authority.Authority | undefined;
  readonly proxy: ReverseProxy;
  readonly freebies: Freebies;
  readonly blocklist: IpList;
  readonly trusted: IpList;
  readonly maxbodybytes: number | undefined;
  /** The listener serves TLS. */
  readonly encrypted: boolean;
  readonly log: Logger;
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

function send(response: Response, status: number, headers: readonly Authority.Header[], body: string): void {
  if (response.headersSent || response.destroyed) return;
  const grouped = new Map<string, string[]>();
  for (const [name, value] of headers) grouped.set(name, [...(grouped.get(name) ?? []), value]);
  for (const [name, values] of grouped) response.setHeader(name, values.length === 1 ? values[0]! : values);
  response.setHeader('content-length', Buffer.byteLength(body));
  response.writeHead(status);
  response.end(body);
}

const CORS: Record<string, string> = Object.fromEntries(CORS_HEADERS);

/** Where a request went: the service, and `open`, `paid`, `freebie` or the Authority's reason for answering. */
interface Outcome {
  readonly service: string;
  readonly outcome: string;
}

/**
 * The gateway's request handler, for Node's HTTP/1.1 and HTTP/2 servers alike.
 *
 * @example
 * const handle = Handler.create(options);
 * handle(req, res); // answers or proxies; never throws
 */
export function create(options: Options): (request: Request, response: Response) => void {
  const { router, authority, proxy, freebies, log } = options;

  /** Answers or forwards; returns which service the request went to and how it was let in, for the log. */
  async function handle(request: Request, response: Response, client: string): Promise<Outcome | undefined> {
    if (options.blocklist(client)) {
      answer(response, 403, 'access denied');
      return undefined;
    }
    if (request.method === 'OPTIONS') {
      send(response, 200, CORS_HEADERS, '');
      return undefined;
    }
    const resolved = resolve(request.url ?? '');
    if (resolved === undefined) {
      answer(response, 400, 'bad request: the request target is not a valid path');
      return undefined;
    }
    const length = Number(request.headers['content-length'] ?? 0);
    if (options.maxbodybytes !== undefined && length > options.maxbodybytes) {
      answer(response, 413, 'request body too large', 'stream' in response ? {} : { connection: 'close' });
      return undefined;
    }
    const host =
      resolved.host ?? request.headers.host ?? (request.headers[':authority'] as string | undefined) ?? '';
    const target = router.match({ host, path: resolved.decoded });
    if (target === undefined) {
      answer(response, 404, 'not found: no service matches this request', CORS);
      return undefined;
    }
    const { service } = target;
    const credential = presented(request);
    let forwarded = credential === 'malformed' ? undefined : credential;
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
        send(response, decision.status, decision.headers, decision.body);
        return { service: service.name, outcome: decision.reason };
      }
      forwarded = decision.token?.credential ?? forwarded;
      headers = decision.headers;
    }
    await proxy.forward(request, response, {
      service,
      path: resolved.forward,
      credential: forwarded,
      encrypted: options.encrypted,
      headers,
    });
    return { service: service.name, outcome: freebie ? 'freebie' : target.access };
  }

  return (request, response) => {
    const started = performance.now();
    const peer = request.socket.remoteAddress ?? '';
    const forwardedFor = request.headers['x-forwarded-for'];
    const client = clientAddress(
      peer,
      Array.isArray(forwardedFor) ? forwardedFor.join(', ') : forwardedFor,
      options.trusted,
    );
    handle(request, response, client).then(
      (what) => {
        const path = (request.url ?? '').split('?')[0];
        // Paths only: query strings can carry API keys and other secrets.
        log.info('request', {
          method: request.method,
          path,
          status: response.statusCode,
          client,
          ...what,
          ms: Math.round(performance.now() - started),
        });
      },
      (error: unknown) => {
        log.error('request failed', { error: error instanceof Error ? error.message : String(error) });
        if (response.headersSent) response.destroy();
        else answer(response, 500, 'internal error');
      },
    );
  };
}
