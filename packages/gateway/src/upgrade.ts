/**
 * WebSocket upgrades through the gateway. The handler judges an HTTP/1.1 `Upgrade: websocket` request
 * as it judges any request (same routing, same Authority decision, the credential in the upgrade
 * request's headers); an answer instead of the backend's (the 402 challenge, 403, 404, …) is written
 * on the connection with {@link writeReply}, which then closes. A request let in is relayed here:
 *
 * - the backend gets the request on a connection of its own (never pooled: it becomes the tunnel),
 *   with the headers {@link upstreamHeaders} makes (hop-by-hop ones dropped, the credential
 *   rewritten) plus `Connection: upgrade` and the client's `Upgrade`; `Sec-WebSocket-*` pass as they are;
 * - a `101 Switching Protocols` from the backend is relayed (its `Upgrade`, `Connection` and
 *   `Sec-WebSocket-*` fields with it), then bytes flow both ways untouched, so frames, pings and the
 *   close handshake are the two ends' own;
 * - a backend refusing the upgrade (any other status) has its response relayed, after which the
 *   connection closes; one that cannot be reached gets 502, and one that does not answer within
 *   `limits.responsetimeout` 504, as in the HTTP proxy.
 *
 * Closing: an end (FIN) on one side ends the other once what it was sent has been written; an error
 * or an abrupt close on one side destroys the other, so a backend that dies is seen by the client as
 * an abnormal closure (1006), and a client that vanishes frees the backend's connection. A tunnel has
 * no idle timeout (WebSocket keeps its own pings); at shutdown the listener cuts it when the grace
 * period ends, and the backend's side goes with it.
 *
 * @example
 * const upgrades = Upgrade.create({ services: config.services, limits: config.limits, writetimeout: 30_000, trusted, log });
 * listener.on('upgrade', (request, socket, head) => void upgrades.relay(request, socket, head, target));
 */

import * as http from 'node:http';
import * as https from 'node:https';
import type { Duplex } from 'node:stream';
import type { Service } from './Config.js';
import {
  codeOf,
  downstreamHeaders,
  failure,
  type Options,
  type Reply,
  type Target,
  trustOf,
  upstreamHeaders,
} from './proxy.js';

/** Relays let-in upgrade requests to their backends (see {@link create}). */
export interface Upgrades {
  /**
   * Relays one upgrade request; resolves with the status the client got (101 when the tunnel is
   * open) once that status is out, `undefined` when the client left before, and never rejects.
   */
  relay(
    request: http.IncomingMessage,
    socket: Duplex,
    head: Buffer,
    target: Target,
  ): Promise<number | undefined>;
}

/** Response fields of a `101` that describe the new protocol: kept although they are hop-by-hop. */
const SWITCHING = new Set(['connection', 'upgrade']);

/** `Name: value` lines of a response head, CRLF-terminated. */
function headLines(status: number, message: string, fields: readonly (readonly [string, string])[]): string {
  let head = `HTTP/1.1 ${status} ${message}\r\n`;
  for (const [name, value] of fields) head += `${name}: ${value}\r\n`;
  return `${head}\r\n`;
}

/** Record-shaped headers as `[name, value]` pairs, one per field. */
function pairs(headers: Readonly<Record<string, string | string[]>>): [string, string][] {
  return Object.entries(headers).flatMap(([name, value]) =>
    [value].flat().map((v) => [name, v] as [string, string]),
  );
}

/**
 * Writes an answer of the gateway's own (or the Authority's) on a connection that asked to upgrade,
 * and closes it: the client reads a complete HTTP/1.1 response (a WebSocket client reports it as an
 * unexpected response with that status and those headers).
 *
 * @example
 * writeReply(socket, { status: 402, headers: decision.headers, body: decision.body });
 */
export function writeReply(socket: Duplex, reply: Reply): void {
  if (socket.destroyed || socket.writableEnded) return;
  const fields: (readonly [string, string])[] = [
    ...reply.headers.filter(([name]) => name !== 'connection'),
    ['content-length', String(Buffer.byteLength(reply.body))],
    ['connection', 'close'],
  ];
  socket.end(headLines(reply.status, http.STATUS_CODES[reply.status] ?? '', fields) + reply.body);
}

/**
 * Joins two connections: bytes both ways, an end passed on as an end, an error or an abrupt close
 * passed on as a destroy.
 */
function tunnel(a: Duplex, b: Duplex): void {
  for (const [from, to] of [
    [a, b],
    [b, a],
  ] as const) {
    from.pipe(to);
    from.on('error', () => to.destroy());
    from.on('close', () => {
      // Closed without having ended (destroyed, reset): nothing more will come, nothing may linger.
      if (!from.readableEnded) to.destroy();
    });
  }
}

/**
 * The upgrade relay; it opens one backend connection per upgrade.
 *
 * @example
 * const upgrades = create({ services, limits, writetimeout: 30_000, trusted: ipList([]), log });
 */
export function create(options: Options): Upgrades {
  const { limits, log } = options;
  const trust = new Map(options.services.map((service) => [service, trustOf(service)]));

  function connect(service: Service, path: string, method: string, headers: http.OutgoingHttpHeaders) {
    const ca = trust.has(service) ? trust.get(service) : trustOf(service);
    const request = (service.protocol === 'https' ? https : http).request({
      host: service.address.host,
      port: service.address.port,
      method,
      path,
      headers,
      agent: false,
      timeout: limits.connecttimeout,
      ...(ca !== undefined ? { ca } : {}),
    });
    // The connect timeout, then the wait for the answer (none when responsetimeout is not set).
    request.once('socket', (socket) =>
      socket.once('connect', () => request.setTimeout(limits.responsetimeout ?? 0)),
    );
    return request;
  }

  function relay(
    request: http.IncomingMessage,
    socket: Duplex,
    head: Buffer,
    target: Target,
  ): Promise<number | undefined> {
    const { service } = target;
    const prefix = service.rewrite.prefix?.replace(/\/+$/, '') ?? '';
    const outgoing = connect(
      service,
      `${prefix}${target.path}`,
      request.method ?? 'GET',
      upstreamHeaders({
        rawHeaders: request.rawHeaders,
        peer: request.socket.remoteAddress ?? '',
        encrypted: target.encrypted,
        host: request.headers.host ?? '',
        credential: target.credential,
        service,
        trusted: options.trusted,
        upgrade: 'websocket',
      }),
    );
    return new Promise<number | undefined>((resolve) => {
      let connected = false;
      const gone = () => {
        outgoing.destroy();
        resolve(undefined);
      };
      socket.once('close', gone);
      /** The Authority's "pass" headers, set over the backend's as the HTTP proxy sets them. */
      const withPass = (fields: readonly (readonly [string, string])[]) => {
        const names = new Set(target.headers.map(([name]) => name));
        return [...fields.filter(([name]) => !names.has(name.toLowerCase())), ...target.headers];
      };
      const refuse = (status: number, message: string, code: string) => {
        log.warn('upstream failed', { service: service.name, code });
        writeReply(socket, failure(status, message, false));
        resolve(status);
      };

      outgoing.on('upgrade', (answer, upstream, upstreamHead) => {
        connected = true;
        socket.off('close', gone);
        upstream.setTimeout(0);
        const fields: [string, string][] = [];
        const kept = downstreamHeaders(answer.headers);
        for (let i = 0; i + 1 < answer.rawHeaders.length; i += 2) {
          const name = answer.rawHeaders[i]!.toLowerCase();
          if (SWITCHING.has(name) || name in kept)
            fields.push([answer.rawHeaders[i]!, answer.rawHeaders[i + 1]!]);
        }
        socket.write(
          headLines(
            answer.statusCode ?? 101,
            answer.statusMessage ?? 'Switching Protocols',
            withPass(fields),
          ),
        );
        if (upstreamHead.length > 0) socket.write(upstreamHead);
        if (head.length > 0) upstream.write(head);
        tunnel(socket, upstream);
        resolve(answer.statusCode ?? 101);
      });

      outgoing.on('response', (answer) => {
        connected = true;
        socket.off('close', gone);
        outgoing.setTimeout(0);
        const status = answer.statusCode ?? 502;
        // Without a length (the backend's was chunked) the body runs to the end of the connection.
        const fields = [
          ...pairs(downstreamHeaders(answer.headers)),
          ['connection', 'close'] as [string, string],
        ];
        socket.write(
          headLines(status, answer.statusMessage ?? http.STATUS_CODES[status] ?? '', withPass(fields)),
        );
        answer.pipe(socket);
        answer.on('error', () => socket.destroy());
        resolve(status);
      });

      outgoing.on('timeout', () => {
        const error = Object.assign(new Error('upstream timed out'), {
          code: outgoing.socket?.connecting === false ? 'UND_ERR_HEADERS_TIMEOUT' : 'UND_ERR_CONNECT_TIMEOUT',
        });
        outgoing.destroy(error);
      });
      outgoing.on('error', (error) => {
        if (connected || socket.destroyed) return;
        const code = codeOf(error);
        if (code === 'UND_ERR_HEADERS_TIMEOUT') refuse(504, 'upstream timed out', code);
        else refuse(502, 'upstream unavailable', code);
      });
      outgoing.end();
    });
  }

  return { relay };
}
