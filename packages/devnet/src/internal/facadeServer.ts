/**
 * The HTTP plumbing the wallet-API facades (clnrest, phoenixd, LNbits) share: a loopback server whose
 * `close()` also cuts open connections (a client blocked in CLN's `waitinvoice` must not keep it alive),
 * request bodies read with a size limit, and replies with an exact status, content type and body.
 */
import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Request bodies above this are refused with 413: every facade call fits in a few kilobytes. */
const MAX_BODY_BYTES = 1 << 20;

export type Handler = (request: IncomingMessage, response: ServerResponse) => Promise<void>;

export interface Listening {
  /** `http://host:port`, without a trailing slash. */
  readonly url: string;
  close(): Promise<void>;
}

/** A body over {@link MAX_BODY_BYTES}; each facade answers it in its own shape. */
export class BodyTooLargeError extends Error {
  override name = 'BodyTooLargeError';
}

/**
 * Serves `handler` on `host:port` (127.0.0.1 and an ephemeral port by default). A handler that throws
 * gets a bare 500, so a facade bug shows as a failed call rather than a hung one.
 *
 * @example
 * const server = await listen(async (request, response) => reply(response, 200, 'text/plain', 'ok'));
 * await fetch(server.url); // 200 "ok"
 * await server.close();
 */
export async function listen(
  handler: Handler,
  options: { host?: string; port?: number } = {},
): Promise<Listening> {
  const host = options.host ?? '127.0.0.1';
  const server = createServer((request, response) => {
    handler(request, response).catch((error: unknown) => {
      if (!response.headersSent)
        reply(response, 500, 'text/plain; charset=utf-8', `devnet facade error: ${error}`);
      else response.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

/**
 * The request body as text; rejects with {@link BodyTooLargeError} past the limit.
 *
 * @example
 * const params = new URLSearchParams(await readBody(request));
 */
export function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        request.removeAllListeners('data');
        request.resume();
        reject(new BodyTooLargeError(`request body over ${MAX_BODY_BYTES} bytes`));
      } else chunks.push(chunk);
    });
    request.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    request.on('error', reject);
  });
}

/**
 * Sends a complete reply, unless the client already hung up.
 *
 * @example
 * reply(response, 201, 'application/json', JSON.stringify(result));
 */
export function reply(
  response: ServerResponse,
  status: number,
  contentType: string,
  body: string,
  headers: Record<string, string> = {},
): void {
  if (response.destroyed) return;
  response.writeHead(status, {
    'content-type': contentType,
    'content-length': Buffer.byteLength(body),
    ...headers,
  });
  response.end(body);
}

/**
 * Calls `listener` once the client goes away before its reply was sent (a long poll given up, or the
 * facade closing); returns the function that stops watching.
 *
 * @example
 * const stop = onHangUp(response, () => unsubscribe());
 */
export function onHangUp(response: ServerResponse, listener: () => void): () => void {
  const closed = () => {
    if (!response.writableEnded) listener();
  };
  response.once('close', closed);
  return () => response.off('close', closed);
}

/**
 * Constant-time comparison of a presented credential with the expected one.
 *
 * @example
 * if (!sameSecret(presented, password)) return reply(response, 401, 'text/plain', 'unauthorized');
 */
export function sameSecret(presented: string, expected: string): boolean {
  const a = Buffer.from(presented, 'utf8');
  const b = Buffer.from(expected, 'utf8');
  return a.length === b.length && timingSafeEqual(a, b);
}
