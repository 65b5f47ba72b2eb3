/**
 * The gateway's one listening port, speaking every protocol a client may open it with:
 *
 * - TLS: ALPN offers `h2` and `http/1.1`; each connection goes to Node's HTTP/2 or HTTP/1.1 server
 *   by what the client chose (as Aperture's Go server does on one port).
 * - Plain (`insecure`): HTTP/1.1, and HTTP/2 with prior knowledge (h2c, how gRPC clients speak
 *   without TLS), told apart by the connection's first bytes: an HTTP/2 client opens with the fixed
 *   preface `PRI * HTTP/2.0…`, which no HTTP/1.1 request starts with.
 *
 * Both servers call one request handler with Node's compatible request/response objects. With an
 * `upgrade` hook, HTTP/1.1 `Upgrade: websocket` requests go to it; other upgrades (`Upgrade: h2c`
 * from `curl --http2`, …) are declined, as RFC 9110 §7.8 lets a server do: the request is served
 * as the ordinary HTTP/1.1 request it also is. Limits: request heads
 * over `maxheaderbytes` get 431 (HTTP/2: the stream is refused), a head not received within
 * `headerstimeout` or a request not received within `readtimeout` gets 408 (HTTP/2: a stream whose
 * body is still coming after `readtimeout` is reset), idle keep-alive connections close after `idletimeout`.
 *
 * `close(graceMs)` stops accepting at once, lets requests in flight finish (HTTP/1.1 connections
 * close as their response ends; HTTP/2 sessions get GOAWAY), and after `graceMs` cuts whatever is left.
 *
 * @example
 * const listener = await listen({ address: { host: '127.0.0.1', port: 0 }, tls: undefined, limits,
 *   timeouts, handler: (req, res) => res.end('ok'), log });
 * listener.url; // 'http://127.0.0.1:41234'
 * await listener.close(10_000);
 */
import { once } from 'node:events';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as https from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { formatHostPort, type HostPort } from './Config.js';
import { StartError } from './Errors.js';
import type { Logger } from './Log.js';
import type { Request, Response } from './proxy.js';

/** Where to listen, with which certificate and limits, and who answers requests. */
export interface Options {
  /** Port 0 picks a free port. An empty host listens on every interface. */
  readonly address: HostPort;
  /** Serve TLS with this pair; plain HTTP (and h2c) when undefined. */
  readonly tls: { readonly cert: Buffer; readonly key: Buffer } | undefined;
  readonly limits: { readonly maxheaderbytes: number; readonly headerstimeout: number };
  /** Milliseconds, 0 for none: Aperture's `readtimeout` and `idletimeout`. */
  readonly timeouts: { readonly read: number; readonly idle: number };
  readonly handler: (request: Request, response: Response) => void;
  /**
   * HTTP/1.1 `Upgrade: websocket` requests, with the connection and the bytes read past the head;
   * without it they are ordinary requests (and the proxy drops `Upgrade`).
   */
  readonly upgrade?: (request: http.IncomingMessage, socket: Duplex, head: Buffer) => void;
  readonly log: Logger;
}

/** A listening port (see {@link listen}). */
export interface Listener {
  /** Where it listens, with the port actually bound. */
  readonly address: HostPort;
  /** `http://host:port` or `https://host:port`. */
  readonly url: string;
  /** Stops accepting, waits up to `graceMs` for requests in flight, then closes every connection. */
  close(graceMs: number): Promise<void>;
}

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
const DRAIN_POLL_MS = 50;

/**
 * Listens on `options.address`.
 *
 * @example
 * const listener = await listen({ ...options, tls: { cert, key } }); // h2 and http/1.1 by ALPN
 */
export async function listen(options: Options): Promise<Listener> {
  const { limits, timeouts, log } = options;
  const inFlight = new Set<http.ServerResponse>();
  let closing = false;
  const handler = (request: Request, response: Response) => {
    if (response instanceof http.ServerResponse) {
      // Once draining, every HTTP/1.1 response ends its connection so the drain can finish.
      if (closing) response.shouldKeepAlive = false;
      inFlight.add(response);
      response.once('close', () => inFlight.delete(response));
    } else if (timeouts.read > 0) readDeadline(request as http2.Http2ServerRequest, timeouts.read);
    options.handler(request, response);
  };

  const h2 = http2.createServer({ settings: { maxHeaderListSize: limits.maxheaderbytes } }, handler);
  const sessions = new Set<http2.ServerHttp2Session>();
  h2.on('session', (session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
    if (closing) session.close();
  });
  if (timeouts.idle > 0) {
    h2.setTimeout(timeouts.idle);
    // Close, not destroy: a session idle at the connection level may still have a quiet stream open.
    h2.on('timeout', (session: http2.ServerHttp2Session) => session.close());
  }

  const headersTimeout =
    timeouts.read > 0 ? Math.min(limits.headerstimeout, timeouts.read) : limits.headerstimeout;
  const http1Options: http.ServerOptions = {
    maxHeaderSize: limits.maxheaderbytes,
    headersTimeout,
    requestTimeout: timeouts.read,
    keepAliveTimeout: timeouts.idle,
    // Node only looks for heads and requests over their time every `connectionsCheckingInterval`
    // (30 s by default), which would let a slowloris client hold a connection up to 30 s past
    // `headerstimeout`; look often enough that the configured times are what clients get.
    connectionsCheckingInterval: Math.max(50, Math.min(1_000, Math.floor(headersTimeout / 4))),
  };
  let server: http.Server;
  /** Node's HTTP/1.1 connection listener: it parses requests from a connection handed to it. */
  let http1Connection: (socket: Socket) => void;
  if (options.tls !== undefined) {
    server = https.createServer(
      { ...http1Options, cert: options.tls.cert, key: options.tls.key, ALPNProtocols: ['h2', 'http/1.1'] },
      handler,
    );
    http1Connection = (server.listeners('secureConnection') as ((socket: Socket) => void)[])[0]!;
    server.removeAllListeners('secureConnection');
    server.on('secureConnection', (socket: TLSSocket) => {
      if (socket.alpnProtocol === 'h2') h2.emit('connection', socket);
      else http1Connection.call(server, socket);
    });
  } else {
    server = http.createServer(http1Options, handler);
    http1Connection = (server.listeners('connection') as ((socket: Socket) => void)[])[0]!;
    server.removeAllListeners('connection');
    server.on('connection', (socket: Socket) =>
      sniff(socket, headersTimeout, (isH2) => {
        if (isH2) h2.emit('connection', socket);
        else {
          http1Connection.call(server, socket);
          // The bytes read to decide were put back; let Node's parser have them.
          socket.resume();
        }
      }),
    );
  }
  const upgrade = options.upgrade;
  if (upgrade !== undefined) {
    server.on('upgrade', (request: http.IncomingMessage, socket: Socket, head: Buffer) => {
      if (isWebSocket(request)) upgrade(request, socket, head);
      else {
        socket.unshift(Buffer.concat([withoutUpgrade(request), head]));
        http1Connection.call(server, socket);
        socket.resume();
      }
    });
  }
  // Every TCP connection, whatever it turned out to speak (or before it said anything): what is
  // left of them when the grace period ends is cut.
  const sockets = new Set<Socket>();
  server.prependListener('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  try {
    server.listen(options.address.port, options.address.host || undefined);
    await once(server, 'listening');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new StartError(
      'L402_GATEWAY_LISTEN',
      `cannot listen on ${formatHostPort(options.address)} (${code ?? error}): ${
        code === 'EADDRINUSE'
          ? 'another program uses that port; pick another listen address'
          : 'check the listen address'
      }`,
      { cause: error },
    );
  }
  const bound = server.address();
  const port = typeof bound === 'object' && bound !== null ? bound.port : options.address.port;
  const address = { host: options.address.host, port };
  const urlHost =
    address.host === '' || address.host === '0.0.0.0' || address.host === '::' ? '127.0.0.1' : address.host;
  const url = `${options.tls ? 'https' : 'http'}://${formatHostPort({ host: urlHost, port })}`;

  let closed: Promise<void> | undefined;
  const close = (graceMs: number) => {
    closed ??= (async () => {
      closing = true;
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const session of sessions) session.close();
      for (const response of inFlight) if (!response.headersSent) response.shouldKeepAlive = false;
      const deadline = Date.now() + graceMs;
      // Keep-alive connections become idle as their last response ends: close each as it does.
      const poll = setInterval(() => server.closeIdleConnections(), DRAIN_POLL_MS);
      server.closeIdleConnections();
      const timer = new Promise<'timeout'>((resolve) =>
        setTimeout(resolve, Math.max(0, deadline - Date.now()), 'timeout').unref(),
      );
      const outcome = await Promise.race([stopped.then(() => 'done' as const), timer]);
      clearInterval(poll);
      if (outcome === 'timeout') {
        log.warn('shutdown grace period over: closing connections with requests in flight', {
          requests: inFlight.size,
          sessions: sessions.size,
        });
        for (const session of sessions) session.destroy();
        server.closeAllConnections();
        for (const socket of sockets) socket.destroy();
        await stopped;
      }
    })();
    return closed;
  };
  return { address, url, close };
}

/**
 * `readtimeout` for an HTTP/2 stream, which Node does not apply (its `requestTimeout` is HTTP/1.1's):
 * a stream whose request body has not ended `ms` after it opened is reset (RST_STREAM CANCEL), as Go's
 * HTTP/2 server (Aperture's) cuts a stream's body at `ReadTimeout`. Without it a client dribbling a
 * body over h2c holds a stream, and what the gateway opened for it upstream, for as long as it likes.
 */
function readDeadline(request: http2.Http2ServerRequest, ms: number): void {
  const stream = request.stream;
  const timer = setTimeout(() => {
    if (!request.complete && !stream.destroyed) stream.close(http2.constants.NGHTTP2_CANCEL);
  }, ms).unref();
  const clear = () => clearTimeout(timer);
  request.once('end', clear);
  stream.once('close', clear);
}

/**
 * Whether an upgrade request asks for WebSocket.
 *
 * @example
 * isWebSocket(request); // true for `Upgrade: websocket`
 */
function isWebSocket(request: http.IncomingMessage): boolean {
  return (request.headers.upgrade ?? '').split(',').some((p) => p.trim().toLowerCase() === 'websocket');
}

/**
 * The head of an upgrade request written again without `Upgrade` and without the `upgrade` token of
 * `Connection`, for Node's parser to read as an ordinary request (its body and any later requests
 * follow it on the connection). Names, values and order stay as received.
 */
function withoutUpgrade(request: http.IncomingMessage): Buffer {
  let head = `${request.method} ${request.url} HTTP/${request.httpVersion}\r\n`;
  const raw = request.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!;
    let value = raw[i + 1]!;
    if (name.toLowerCase() === 'upgrade') continue;
    if (name.toLowerCase() === 'connection') {
      value = value
        .split(',')
        .map((token) => token.trim())
        .filter((token) => token !== '' && token.toLowerCase() !== 'upgrade')
        .join(', ');
      if (value === '') continue;
    }
    head += `${name}: ${value}\r\n`;
  }
  // Node reads header bytes as latin1; written back the same way, every byte is what the client sent.
  return Buffer.from(`${head}\r\n`, 'latin1');
}

/**
 * Reads the first bytes of a plain connection and calls `route(true)` for the HTTP/2 preface,
 * `route(false)` for anything else, with the bytes read put back. A connection that sends nothing
 * within `timeoutMs` is closed.
 */
function sniff(socket: Socket, timeoutMs: number, route: (isH2: boolean) => void): void {
  let seen = Buffer.alloc(0);
  const timer = setTimeout(() => socket.destroy(), timeoutMs).unref();
  const cleanup = () => {
    clearTimeout(timer);
    socket.off('data', onData);
    socket.off('close', cleanup);
  };
  const onData = (chunk: Buffer) => {
    seen = Buffer.concat([seen, chunk]);
    const n = Math.min(seen.length, PREFACE.length);
    const isH2 = seen.subarray(0, n).equals(PREFACE.subarray(0, n));
    if (isH2 && seen.length < PREFACE.length) return;
    cleanup();
    socket.pause();
    socket.unshift(seen);
    route(isH2);
  };
  socket.on('data', onData);
  socket.on('close', cleanup);
  socket.on('error', () => socket.destroy());
}
