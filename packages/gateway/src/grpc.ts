/**
 * gRPC through the gateway. A call reaches it over HTTP/2 (h2 over TLS, or h2c with prior knowledge)
 * with `content-type: application/grpc` (or `application/grpc+proto`, `…;params`); once the handler
 * has let it in, it goes to the service's backend over HTTP/2 too: h2c with prior knowledge for
 * `protocol: http`, h2 over TLS for `https` (verified as the HTTP proxy verifies). Every call to a
 * service shares one HTTP/2 session, as gRPC clients share theirs; a session that closes, fails, is
 * sent GOAWAY or runs out of stream ids is replaced on the next call. grpc-web is plain HTTP, with its trailers in the body,
 * and takes the ordinary path.
 *
 * What crosses, and how:
 * - request headers as {@link upstreamHeaders} makes them (`te: trailers` kept, the credential
 *   rewritten), with `:authority` set to the backend's address. Node's HTTP/2 client sends one
 *   `Authorization` field at most, so of Aperture's `LSAT` + `L402` pair the backend gets the first,
 *   `LSAT …`: what every reader of a single value (Go's `Header.Get`, Node's servers) gets from
 *   Aperture's pair too;
 * - messages both ways as they come, under HTTP/2 flow control end to end: a slow reader holds the
 *   writer back, nothing is buffered whole;
 * - response headers at once (a server stream is seen to start before its first message), then the
 *   trailers (`grpc-status`, `grpc-message`, `grpc-status-details-bin`, custom trailing metadata) as
 *   HTTP/2 trailers;
 * - a trailers-only response (one HEADERS frame ending the stream: how servers report an error
 *   without messages) as trailers-only, so its metadata stays trailing metadata;
 * - as Aperture's `trailerFixingTransport`: a backend that puts `grpc-status` in its headers and then
 *   ends without trailers has the status fields moved to the trailers, where clients read a status.
 *
 * What the client gets when the backend does not answer (the gRPC way: HTTP 200 and `grpc-status`,
 * with the same messages as the HTTP proxy): 14 UNAVAILABLE "upstream unavailable" when the backend
 * cannot be reached or its session fails, 14 "upstream timed out" when no response headers come within
 * `limits.responsetimeout` or the call carries nothing either way for `writetimeout`, 8
 * RESOURCE_EXHAUSTED when the request stream goes over `limits.maxbodybytes`; after the response
 * headers the same status comes as trailers. A backend resetting the call is relayed as the same
 * RST_STREAM code (gRPC clients read CANCEL as CANCELLED, REFUSED_STREAM as UNAVAILABLE); a client
 * cancelling cancels the backend's stream.
 *
 * @example
 * const grpc = Grpc.create({ services: config.services, limits: config.limits, writetimeout: 30_000, trusted, log });
 * if (Grpc.isCall(request)) await grpc.forward(request, response, target);
 * await grpc.close();
 */
import * as http2 from 'node:http2';
import { formatHostPort, type Service } from './Config.js';
import {
  answer,
  BodyTooLarge,
  codeOf,
  downstreamHeaders,
  grpcStatus,
  limited,
  type Options,
  type Request,
  type Target,
  trustOf,
  upstreamHeaders,
} from './proxy.js';

/** Forwards gRPC calls to their backends (see {@link create}). */
export interface GrpcProxy {
  /** Forwards one call; resolves when it is over (either side closed), never rejects. */
  forward(
    request: http2.Http2ServerRequest,
    response: http2.Http2ServerResponse,
    target: Target,
  ): Promise<void>;
  /** Closes every backend session. */
  close(): Promise<void>;
}

const { NGHTTP2_CANCEL, NGHTTP2_NO_ERROR, NGHTTP2_FLAG_END_STREAM } = http2.constants;

/** The fields a gRPC status is made of: moved together from headers to trailers. */
const STATUS_FIELDS = ['grpc-status', 'grpc-message', 'grpc-status-details-bin'];

const GRPC_CONTENT_TYPE = /^application\/grpc(?:$|[+;])/i;

/**
 * The last stream id of a session (RFC 9113 §5.1.1). A busy gateway uses up a session's ids in hours,
 * and Node then fails each new call on it while the session itself stays open, so a session is
 * retired before that and replaced.
 */
const LAST_STREAM_ID = 2 ** 31 - 1;

/**
 * Whether a request is a gRPC call over HTTP/2, which this module forwards (the content type is
 * gRPC's own, not grpc-web's).
 *
 * @example
 * isCall(request); // true for an HTTP/2 request with content-type application/grpc+proto
 */
export function isCall(request: Request): request is http2.Http2ServerRequest {
  return 'stream' in request && GRPC_CONTENT_TYPE.test(request.headers['content-type'] ?? '');
}

/** Headers without the pseudo-headers (`:status`) Node puts among them. */
function fields(headers: http2.IncomingHttpHeaders): Record<string, string | string[] | undefined> {
  const out: Record<string, string | string[] | undefined> = Object.create(null);
  for (const [name, value] of Object.entries(headers)) if (!name.startsWith(':')) out[name] = value;
  return out;
}

/**
 * The gRPC proxy, with one HTTP/2 session per service, made on the first call.
 *
 * @example
 * const grpc = create({ services, limits, writetimeout: 30_000, trusted: ipList([]), log });
 */
export function create(options: Options): GrpcProxy {
  const { limits, log } = options;
  const trust = new Map(options.services.map((service) => [service, trustOf(service)]));
  const sessions = new Map<Service, http2.ClientHttp2Session>();

  function sessionFor(service: Service): http2.ClientHttp2Session {
    const current = sessions.get(service);
    if (current !== undefined && !current.closed && !current.destroyed) {
      if ((current.state.nextStreamID ?? 1) <= LAST_STREAM_ID) return current;
      // Its calls in flight finish; new ones go to a new session.
      current.close();
    }
    const ca = trust.has(service) ? trust.get(service) : trustOf(service);
    const session = http2.connect(`${service.protocol}://${formatHostPort(service.address)}`, {
      ...(ca !== undefined ? { ca } : {}),
    });
    const connecting = setTimeout(() => {
      const error = Object.assign(new Error(`no connection within ${limits.connecttimeout} ms`), {
        code: 'UND_ERR_CONNECT_TIMEOUT',
      });
      session.destroy(error);
    }, limits.connecttimeout);
    session.once('connect', () => clearTimeout(connecting));
    // Every call on a failed session fails with it and is answered and logged on its own.
    session.on('error', () => {});
    session.once('close', () => {
      clearTimeout(connecting);
      if (sessions.get(service) === session) sessions.delete(service);
    });
    sessions.set(service, session);
    return session;
  }

  function forward(
    request: http2.Http2ServerRequest,
    response: http2.Http2ServerResponse,
    target: Target,
  ): Promise<void> {
    const { service } = target;
    const prefix = service.rewrite.prefix?.replace(/\/+$/, '') ?? '';
    const { host, authorization, ...headers } = upstreamHeaders({
      rawHeaders: request.rawHeaders,
      peer: request.socket.remoteAddress ?? '',
      encrypted: target.encrypted,
      host: (request.headers[':authority'] as string | undefined) ?? request.headers.host ?? '',
      credential: target.credential,
      service,
      trusted: options.trusted,
    });
    const outgoing: http2.OutgoingHttpHeaders = {
      ...headers,
      ...(authorization !== undefined ? { authorization: [authorization].flat()[0] } : {}),
      ':method': request.method,
      ':path': `${prefix}${target.path}`,
      ':authority': host,
    };

    return new Promise<void>((resolve) => {
      let upstream: http2.ClientHttp2Stream;
      try {
        upstream = sessionFor(service).request(outgoing);
      } catch (error) {
        log.warn('upstream failed', { service: service.name, code: codeOf(error) });
        answer(response, 502, 'upstream unavailable');
        resolve();
        return;
      }
      let trailers: Record<string, string | string[]> | undefined;
      let moved: Record<string, string | string[]> | undefined;
      /** The client has its outcome (or is gone): whatever happens next upstream is not relayed. */
      let over = false;
      const conclude = (outcome: () => void) => {
        if (over) return;
        over = true;
        clearTimeout(waiting);
        upstream.unpipe();
        if (!response.destroyed && !response.writableEnded) outcome();
      };

      /** Ends the call with the gateway's own status: a whole answer, or trailers once headers are out. */
      const fail = (status: number, message: string, code: string) =>
        conclude(() => {
          log.warn('upstream failed', { service: service.name, code });
          if (!upstream.closed) upstream.close(NGHTTP2_CANCEL);
          if (!response.headersSent) answer(response, status, message);
          else {
            response.addTrailers({ 'grpc-status': String(grpcStatus(status)), 'grpc-message': message });
            response.end();
          }
        });
      /** The backend reset the call: the client's stream is reset with the same code. */
      const reset = () =>
        conclude(() => {
          log.warn('upstream reset the call', { service: service.name, code: upstream.rstCode });
          response.stream.close(upstream.rstCode);
        });

      const waiting =
        limits.responsetimeout === undefined
          ? undefined
          : setTimeout(
              () => fail(504, 'upstream timed out', 'UND_ERR_HEADERS_TIMEOUT'),
              limits.responsetimeout,
            );

      upstream.on('response', (received, flags) => {
        clearTimeout(waiting);
        if (over || response.destroyed) return;
        const out = downstreamHeaders(fields(received));
        for (const [name] of target.headers) delete out[name];
        for (const [name, value] of target.headers) {
          const existing = out[name];
          out[name] = existing === undefined ? value : [existing, value].flat();
        }
        const status = received[':status'] ?? 200;
        if (flags & NGHTTP2_FLAG_END_STREAM) {
          // Trailers-only: all of it is trailing metadata, and stays so.
          conclude(() => {
            for (const [name, value] of Object.entries(out)) response.setHeader(name, value);
            response.statusCode = status;
            response.end();
          });
          return;
        }
        if (out['grpc-status'] !== undefined) {
          moved = {};
          for (const name of STATUS_FIELDS) {
            const value = out[name];
            delete out[name];
            if (value !== undefined) moved[name] = value;
          }
        }
        response.writeHead(status, out);
        if (options.writetimeout > 0) {
          upstream.setTimeout(options.writetimeout, () =>
            fail(504, 'upstream timed out', 'UND_ERR_BODY_TIMEOUT'),
          );
        }
      });
      upstream.on('trailers', (received) => {
        trailers = fields(received) as Record<string, string | string[]>;
      });
      upstream.pipe(response as unknown as NodeJS.WritableStream, { end: false });
      upstream.on('end', () =>
        conclude(() => {
          response.addTrailers(trailers ?? moved ?? {});
          response.end();
        }),
      );
      upstream.on('error', (error) => {
        if ((error as { code?: unknown }).code === 'ERR_HTTP2_STREAM_ERROR') reset();
        // A stream cancelled with its session says why in its cause (ECONNREFUSED, …).
        else fail(502, 'upstream unavailable', codeOf((error as { cause?: unknown }).cause ?? error));
      });
      // A reset with CANCEL closes the stream without an error; every other ending was seen above.
      upstream.on('close', () => {
        if (upstream.rstCode !== undefined && upstream.rstCode !== NGHTTP2_NO_ERROR) reset();
        else fail(502, 'upstream unavailable', 'ERR_HTTP2_STREAM_CLOSED');
      });

      const body = limits.maxbodybytes === undefined ? request : request.pipe(limited(limits.maxbodybytes));
      body.on('error', (error) => {
        if (error instanceof BodyTooLarge) fail(413, 'request body too large', 'BodyTooLarge');
      });
      body.pipe(upstream);

      response.once('close', () => {
        over = true;
        clearTimeout(waiting);
        if (!upstream.closed) upstream.close(NGHTTP2_CANCEL);
        resolve();
      });
    });
  }

  return {
    forward,
    async close() {
      for (const session of sessions.values()) session.destroy();
      sessions.clear();
    },
  };
}
