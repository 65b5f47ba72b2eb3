/**
 * Dynamic prices (`dynamicprice`): a pricer the gateway asks for the price of each request it must
 * charge for, instead of the service's fixed `price`.
 *
 * - gRPC (`grpcaddress`): Aperture's `pricesrpc.Prices` service (`proto/prices.proto`, verbatim from
 *   Aperture), so a pricer written for Aperture (meterd, or your own) works unchanged. TLS with the
 *   pricer's certificate at `tlscertpath`, or plaintext with `insecure: true`. `GetPrice` gets the
 *   path and the request as text (Go's `httputil.DumpRequest` shape: request line, `Host`, headers in
 *   canonical case and sorted order). With `metered: true` the pricer also gets Aperture's
 *   `ChallengeMinted`, `AuthorizeRequest` and `ReportUsage` calls (see `metered.ts`).
 * - HTTP (`httpurl`, l402's own): `POST <httpurl>` with the JSON summary
 *   `{ method, path, query, headers, service }` and the answer `{ "price": <sats> }` (status 200).
 *
 * Every call is bounded by `dynamicprice.timeout` (3 s by default). A pricer that is down, slow or
 * answers nonsense makes the call reject with a {@link PricerError}; the Authority turns that into
 * Aperture's `500 failure fetching resource price`, never a hanging request or a free pass.
 *
 * The gRPC pricer also gets the first 64 KiB of a request body, as Aperture sends them (meterd reads
 * the model from a JSON body): read only when the pricer is actually asked, and put back on the
 * request for the backend ({@link bodyPrefix}). What a pricer never sees: the request's credentials
 * (`Authorization`, `Macaroon`, `Grpc-Metadata-Macaroon`, `Cookie`, `Proxy-Authorization` are left out).
 *
 * @example
 * const pricer = await Pricing.connect(service.dynamicprice, service.name);
 * const route = { ...Router.routeOf(service), price: (request) => pricer.price(request), pathBound: true };
 * pricer.close();
 */
import { readFileSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type * as grpc from '@grpc/grpc-js';
import type { RequestView } from 'l402/server';
import { Agent, request as httpRequest } from 'undici';
import type { DynamicPrice } from './Config.js';
import { PricerError, StartError } from './Errors.js';

/** Aperture's `http_request_text` and the HTTP pricer's summary leave these out: they are credentials. */
const SECRET_HEADERS = new Set([
  'authorization',
  'proxy-authorization',
  'cookie',
  'macaroon',
  'grpc-metadata-macaroon',
  'token',
]);

/** The headers the HTTP pricer is sent: enough to price by content, nothing that authenticates. */
const SUMMARY_HEADERS = ['host', 'accept', 'content-type', 'content-length', 'user-agent'] as const;

/** The largest answer read from an HTTP pricer. */
const MAX_ANSWER_BYTES = 16_384;

/** How much of a request body the gRPC pricer is sent, as Aperture's `maxPricerBodyBytes`. */
export const MAX_BODY_PREFIX = 64 * 1024;

/** A request as a pricer sees it: the Authority's view, and (gateway requests) a way to its body's head. */
export interface PricedRequest extends RequestView {
  /** The first {@link MAX_BODY_PREFIX} bytes of the body, read once on first call and left on the stream. */
  readonly bodyPrefix?: () => Promise<Uint8Array>;
}

/**
 * A lazy reader of the first `max` bytes of a request body that leaves them on the stream, so the
 * backend still gets every byte. Only bodies with a `Content-Length` are read (the last read and the
 * put-back then happen in one tick, before the stream can end); a chunked body gives an empty prefix.
 * Waits at most `timeoutMs` for a slow client, then gives what has arrived.
 *
 * @example
 * const view = { method, url, headers, bodyPrefix: Pricing.bodyPrefix(request, 3_000) };
 */
export function bodyPrefix(
  stream: Readable & { readonly headers: Readonly<Record<string, string | string[] | undefined>> },
  timeoutMs: number,
  max = MAX_BODY_PREFIX,
): () => Promise<Uint8Array> {
  let read: Promise<Uint8Array> | undefined;
  return () => {
    read ??= readPrefix(stream, Math.min(max, Number(stream.headers['content-length'] ?? 0) || 0), timeoutMs);
    return read;
  };
}

async function readPrefix(stream: Readable, want: number, timeoutMs: number): Promise<Uint8Array> {
  if (want <= 0 || !Number.isSafeInteger(want)) return new Uint8Array(0);
  const chunks: Buffer[] = [];
  let size = 0;
  const deadline = Date.now() + timeoutMs;
  while (size < want) {
    const chunk = stream.read() as Buffer | null;
    if (chunk !== null) {
      chunks.push(chunk);
      size += chunk.length;
      continue;
    }
    const left = deadline - Date.now();
    if (stream.destroyed || left <= 0) break;
    const more = await new Promise<boolean>((resolve) => {
      const done = (value: boolean) => () => {
        clearTimeout(timer);
        for (const [event, listener] of listeners) stream.off(event, listener);
        resolve(value);
      };
      const listeners: [string, () => void][] = [
        ['readable', done(true)],
        ['end', done(false)],
        ['close', done(false)],
        ['error', done(false)],
      ];
      const timer = setTimeout(done(false), left);
      for (const [event, listener] of listeners) stream.on(event, listener);
    });
    if (!more) break;
  }
  const all = Buffer.concat(chunks);
  if (all.length > 0) {
    try {
      stream.unshift(all);
    } catch {
      // The client went away mid-body: nothing will be forwarded anyway.
    }
  }
  return all.subarray(0, want);
}

/** `AuthorizeRequest`'s answer. */
export interface Authorization {
  readonly allowed: boolean;
  /** When refused: the price of the fresh 402; 0 means "ask GetPrice". */
  readonly priceSats: number;
  readonly reason: string;
  /** Echoed back in the matching `ReportUsage`, so the pricer releases exactly what it reserved. */
  readonly reservedEstimate: string;
}

/** `ReportUsage`'s request. */
export interface Usage {
  readonly tokenId: string;
  readonly path: string;
  readonly serviceName: string;
  readonly httpStatus: number;
  readonly contentType: string;
  readonly complete: boolean;
  readonly responseTail: Uint8Array;
  readonly contentEncoding: string;
  readonly reservedEstimate: string;
}

/** Aperture's metered calls (`dynamicprice.metered: true`); the pricer keeps the balances. */
export interface MeteredCalls {
  challengeMinted(request: RequestView, tokenId: string, priceSats: number, service: string): Promise<void>;
  authorize(request: RequestView, tokenId: string, service: string): Promise<Authorization>;
  reportUsage(usage: Usage): Promise<void>;
}

/** A connected pricer. */
export interface Pricer {
  /** The price of one request in sats (0 lets it through, as Aperture); rejects with {@link PricerError}. */
  price(request: RequestView): Promise<number>;
  /** Present for a gRPC pricer with `metered: true`. */
  readonly metered: MeteredCalls | undefined;
  /** What it is, for logs: `grpc 127.0.0.1:10010` or `http http://…`. */
  readonly description: string;
  close(): Promise<void>;
}

type Entries = Iterable<readonly [string, string]>;

/** A request's headers as (lower-case name, value) pairs, multi-valued headers once per value. */
function entries(headers: RequestView['headers']): Entries {
  const out: [string, string][] = [];
  const each = (name: string, value: string | readonly string[] | undefined) => {
    if (value === undefined || name.startsWith(':')) return;
    for (const v of typeof value === 'string' ? [value] : value) out.push([name.toLowerCase(), v]);
  };
  if (typeof (headers as Headers).forEach === 'function' && typeof headers.get === 'function') {
    (headers as Headers).forEach((value, name) => {
      each(name, value);
    });
  } else {
    for (const [name, value] of Object.entries(headers)) each(name, value as string | readonly string[]);
  }
  return out;
}

/** Go's `CanonicalMIMEHeaderKey`: `content-type` → `Content-Type`. */
const canonical = (name: string) =>
  name.replace(/(^|-)([a-z])/g, (_, dash: string, c: string) => dash + c.toUpperCase());

const splitUrl = (url: string): { path: string; query: string } => {
  const q = url.indexOf('?');
  return q < 0 ? { path: url, query: '' } : { path: url.slice(0, q), query: url.slice(q + 1) };
};

/**
 * The request as Aperture's pricers read it (`httputil.DumpRequest(r, false)` and the body's head):
 * request line, `Host`, the other headers in canonical case, sorted, a blank line, then `body` as
 * UTF-8 (a proto3 string must be); credentials left out.
 *
 * @example
 * requestText({ method: 'GET', url: '/a?x=1', headers: { host: 'h', accept: '*' } });
 * // 'GET /a?x=1 HTTP/1.1\r\nHost: h\r\nAccept: *\r\n\r\n'
 */
export function requestText(request: RequestView, body: Uint8Array = new Uint8Array(0)): string {
  let host = '';
  const lines: [string, string][] = [];
  for (const [name, value] of entries(request.headers)) {
    if (name === 'host') host ||= value;
    else if (!SECRET_HEADERS.has(name) && name !== 'transfer-encoding' && name !== 'trailer')
      lines.push([canonical(name), value]);
  }
  if (host === '') {
    const authority = (request.headers as Record<string, unknown>)[':authority'];
    if (typeof authority === 'string') host = authority;
  }
  lines.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const head = `${request.method} ${request.url} HTTP/1.1\r\nHost: ${host}\r\n`;
  return `${head}${lines.map(([n, v]) => `${n}: ${v}\r\n`).join('')}\r\n${Buffer.from(body).toString('utf8')}`;
}

/** {@link requestText} with the body's head, when the request has a way to it. */
const dumped = async (request: PricedRequest) => requestText(request, await request.bodyPrefix?.());

/**
 * What the HTTP pricer is POSTed: method, path, query (without `?`), a few headers, the service.
 *
 * @example
 * summary({ method: 'GET', url: '/a?x=1', headers: { host: 'h' } }, 'api');
 * // { method: 'GET', path: '/a', query: 'x=1', headers: { host: 'h' }, service: 'api' }
 */
export function summary(request: RequestView, service: string) {
  const headers: Record<string, string> = {};
  const wanted = new Set<string>(SUMMARY_HEADERS);
  for (const [name, value] of entries(request.headers)) {
    if (wanted.has(name)) headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
  }
  return { method: request.method, ...splitUrl(request.url), headers, service };
}

/** A price as a pricer sent it (int64 arrives as a string): whole, non-negative, safe. */
function sats(value: unknown, what: string): number {
  const n = typeof value === 'string' && /^-?\d+$/.test(value) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) {
    throw new PricerError(
      'L402_PRICER_ANSWER',
      `the pricer answered ${what} ${JSON.stringify(value)}: not a whole, non-negative number of sats`,
    );
  }
  return n;
}

/** The pricer's certificate (or CA); a file that cannot be read stops the gateway at start. */
function certificate(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new StartError(
      'L402_GATEWAY_UPSTREAM',
      `dynamicprice.tlscertpath ${path} cannot be read: ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }
}

const PROTO = fileURLToPath(new URL('../proto/prices.proto', import.meta.url));

type Unary = (
  request: object,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  callback: (error: grpc.ServiceError | null, response?: Record<string, unknown>) => void,
) => void;

type PricesClient = grpc.Client &
  Record<'GetPrice' | 'ChallengeMinted' | 'AuthorizeRequest' | 'ReportUsage', Unary>;

/** grpc-js and the proto, loaded on first use: a gateway without a gRPC pricer never pays for them at start. */
let loaded: Promise<{ grpc: typeof grpc; Prices: grpc.ServiceClientConstructor }> | undefined;

function loadGrpc(): Promise<{ grpc: typeof grpc; Prices: grpc.ServiceClientConstructor }> {
  loaded ??= (async () => {
    const [grpcJs, protoLoader] = await Promise.all([import('@grpc/grpc-js'), import('@grpc/proto-loader')]);
    const definition = protoLoader.loadSync(PROTO, { keepCase: true, longs: String, defaults: true });
    const pkg = grpcJs.loadPackageDefinition(definition).pricesrpc as grpc.GrpcObject;
    return { grpc: grpcJs, Prices: pkg.Prices as grpc.ServiceClientConstructor };
  })();
  return loaded;
}

/**
 * The `pricesrpc.Prices` service definition loaded from the vendored proto (int64 as decimal strings,
 * field names as in the proto), for clients and for test pricers.
 *
 * @example
 * const server = new grpc.Server();
 * server.addService((await Pricing.pricesService()).service, { GetPrice: (call, done) => done(null, { price_sats: 21 }) });
 */
export async function pricesService(): Promise<grpc.ServiceClientConstructor> {
  return (await loadGrpc()).Prices;
}

const hostPort = (a: { host: string; port: number }) =>
  a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;

function grpcFailure(
  status: typeof grpc.status,
  error: grpc.ServiceError,
  call: string,
  timeoutMs: number,
): PricerError {
  if (error.code === status.DEADLINE_EXCEEDED) {
    return new PricerError(
      'L402_PRICER_TIMEOUT',
      `the pricer did not answer ${call} within ${timeoutMs} ms`,
      { cause: error },
    );
  }
  return new PricerError(
    'L402_PRICER_UNAVAILABLE',
    `the pricer failed ${call}: ${error.details || error.message}`,
    {
      cause: error,
    },
  );
}

async function connectGrpc(
  config: Extract<DynamicPrice, { enabled: true }>,
  address: { host: string; port: number },
): Promise<Pricer> {
  const cert = config.insecure ? undefined : certificate(config.tlscertpath as string);
  const { grpc, Prices: Client } = await loadGrpc();
  const credentials =
    cert === undefined ? grpc.credentials.createInsecure() : grpc.credentials.createSsl(cert);
  const client = new Client(hostPort(address), credentials) as unknown as PricesClient;
  const timeoutMs = config.timeout;
  const call = (
    name: 'GetPrice' | 'ChallengeMinted' | 'AuthorizeRequest' | 'ReportUsage',
    request: object,
    ms = timeoutMs,
  ) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      client[name].call(
        client,
        request,
        new grpc.Metadata(),
        { deadline: Date.now() + ms },
        (error, response) => {
          if (error) reject(grpcFailure(grpc.status, error, name, ms));
          else resolve(response ?? {});
        },
      );
    });
  const path = (request: RequestView) => splitUrl(request.url).path;
  const metered: MeteredCalls | undefined = config.metered
    ? {
        async challengeMinted(request, tokenId, priceSats, service) {
          await call('ChallengeMinted', {
            path: path(request),
            http_request_text: await dumped(request),
            token_id: tokenId,
            price_sats: String(priceSats),
            service_name: service,
          });
        },
        async authorize(request, tokenId, service) {
          const answer = await call('AuthorizeRequest', {
            path: path(request),
            http_request_text: await dumped(request),
            token_id: tokenId,
            service_name: service,
          });
          const reserved = answer.reserved_estimate;
          return {
            allowed: answer.allowed === true,
            priceSats: sats(answer.price_sats ?? '0', 'AuthorizeRequest price_sats'),
            reason: typeof answer.reason === 'string' ? answer.reason : '',
            reservedEstimate: typeof reserved === 'string' && /^-?\d+$/.test(reserved) ? reserved : '0',
          };
        },
        async reportUsage(usage) {
          await call('ReportUsage', {
            token_id: usage.tokenId,
            path: usage.path,
            service_name: usage.serviceName,
            http_status: usage.httpStatus,
            content_type: usage.contentType,
            complete: usage.complete,
            response_tail: Buffer.from(usage.responseTail),
            content_encoding: usage.contentEncoding,
            reserved_estimate: usage.reservedEstimate,
          });
        },
      }
    : undefined;
  return {
    async price(request) {
      const answer = await call('GetPrice', {
        path: path(request),
        http_request_text: await dumped(request),
      });
      return sats(answer.price_sats ?? '0', 'GetPrice price_sats');
    },
    metered,
    description: `grpc ${hostPort(address)}`,
    async close() {
      client.close();
    },
  };
}

function connectHttp(config: Extract<DynamicPrice, { enabled: true }>, url: URL, service: string): Pricer {
  const dispatcher = new Agent({
    connections: 16,
    ...(config.tlscertpath !== undefined ? { connect: { ca: certificate(config.tlscertpath) } } : {}),
  });
  const timeoutMs = config.timeout;
  return {
    async price(request) {
      const signal = AbortSignal.timeout(timeoutMs);
      let body: Buffer;
      try {
        const response = await httpRequest(url, {
          method: 'POST',
          dispatcher,
          signal,
          headers: { 'content-type': 'application/json', accept: 'application/json' },
          body: JSON.stringify(summary(request, service)),
        });
        const chunks: Buffer[] = [];
        let size = 0;
        for await (const chunk of response.body) {
          size += (chunk as Buffer).length;
          if (size > MAX_ANSWER_BYTES) {
            response.body.destroy();
            throw new PricerError(
              'L402_PRICER_ANSWER',
              `the pricer's answer is larger than ${MAX_ANSWER_BYTES} bytes`,
            );
          }
          chunks.push(chunk as Buffer);
        }
        body = Buffer.concat(chunks);
        if (response.statusCode !== 200) {
          throw new PricerError('L402_PRICER_UNAVAILABLE', `the pricer answered HTTP ${response.statusCode}`);
        }
      } catch (error) {
        if (error instanceof PricerError) throw error;
        if (signal.aborted) {
          throw new PricerError('L402_PRICER_TIMEOUT', `the pricer did not answer within ${timeoutMs} ms`, {
            cause: error,
          });
        }
        const code = (error as { code?: unknown }).code;
        throw new PricerError(
          'L402_PRICER_UNAVAILABLE',
          `the pricer cannot be reached: ${typeof code === 'string' ? code : (error as Error).message}`,
          {
            cause: error,
          },
        );
      }
      let answer: unknown;
      try {
        answer = JSON.parse(body.toString('utf8'));
      } catch {
        throw new PricerError('L402_PRICER_ANSWER', 'the pricer answered something that is not JSON');
      }
      if (typeof answer !== 'object' || answer === null || !('price' in answer)) {
        throw new PricerError('L402_PRICER_ANSWER', 'the pricer answered JSON without a "price"');
      }
      return sats((answer as { price: unknown }).price, 'price');
    },
    metered: undefined,
    description: `http ${url.origin}${url.pathname}`,
    async close() {
      await dispatcher.close();
    },
  };
}

/**
 * The pricer a service's `dynamicprice` names (grpc-js loads here; the channel connects on the first call).
 *
 * @example
 * const pricer = await Pricing.connect(service.dynamicprice, service.name);
 * await pricer.price({ method: 'GET', url: '/a', headers: {} }); // 21
 */
export async function connect(
  config: Extract<DynamicPrice, { enabled: true }>,
  service: string,
): Promise<Pricer> {
  if (config.httpurl !== undefined) return connectHttp(config, config.httpurl, service);
  if (config.grpcaddress === undefined) throw new TypeError('dynamicprice needs grpcaddress or httpurl');
  return connectGrpc(config, config.grpcaddress);
}
