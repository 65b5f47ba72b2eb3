/**
 * What the wallet-facade tests share: loopback servers that fail the way a broken or wrong endpoint
 * does (never answering, answering something that is not HTTP, answering HTML), a free port with
 * nothing on it, a wall clock that can be moved forward, and a wait for channels to settle their HTLCs.
 *
 * @example
 * const silent = await harness.silentServer();
 * await expect(Cln.connect({ url: silent.url, rune, timeoutMs: 300 }).info()).rejects.toMatchObject({ code: 'L402_BACKEND_TIMEOUT' });
 * await silent.close();
 */
import { createServer as createHttpServer } from 'node:http';
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import { until } from '../internal/wait.js';
import type { Network } from '../Network.js';

export interface TestServer {
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  close(): Promise<void>;
}

async function serve(server: Server, sockets: Set<Socket>): Promise<TestServer> {
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/**
 * Accepts connections and reads requests but never answers: a hung daemon.
 *
 * @example
 * const { url, close } = await silentServer();
 */
export function silentServer(): Promise<TestServer> {
  return serve(createServer(), new Set());
}

/**
 * Answers every request with bytes that are not HTTP, then hangs up: the wrong service on that port.
 *
 * @example
 * const { url, close } = await garbageServer();
 */
export function garbageServer(): Promise<TestServer> {
  return serve(
    createServer((socket) => {
      // It answers once the whole request is in: a reply (and hang-up) while the client is still
      // sending would reach it as a lost connection instead of an unreadable answer.
      let received = '';
      socket.on('data', (chunk: Buffer) => {
        received += chunk.toString('latin1');
        const end = received.indexOf('\r\n\r\n');
        const length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(received)?.[1] ?? 0);
        if (end !== -1 && received.length >= end + 4 + length) {
          socket.end('\u0015\u0003\u0001\u0000\u0002\u0002P not http\r\n\r\n');
        }
      });
    }),
    new Set(),
  );
}

/**
 * Answers every request with HTTP 200 and an HTML page: a web server where an API was expected.
 *
 * @example
 * const { url, close } = await htmlServer();
 */
export function htmlServer(): Promise<TestServer> {
  const server = createHttpServer((_, response) => {
    response.writeHead(200, { 'content-type': 'text/html' });
    response.end('<html><body>It works!</body></html>');
  });
  return serve(server, new Set());
}

/**
 * A loopback port nothing listens on (it was free a moment ago): connections are refused.
 *
 * @example
 * const url = `http://127.0.0.1:${await closedPort()}`;
 */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A wall clock for the devnet and the backends that a test can move forward. */
export interface Clock {
  now(): number;
  /** Moves the clock `ms` milliseconds ahead of real time (cumulative). */
  advance(ms: number): void;
}

/**
 * Real time plus an offset the test controls: expiring an invoice takes no waiting.
 *
 * @example
 * const clock = movableClock();
 * const net = await Network.start({ nodes: ['a', 'b'], now: clock.now });
 * clock.advance(3_600_000); // an hour later, for the nodes and whoever else reads clock.now
 */
export function movableClock(): Clock {
  let offset = 0;
  return {
    now: () => Date.now() + offset,
    advance(ms) {
      offset += ms;
    },
  };
}

/**
 * Resolves once no node of `net` has an HTLC in flight, so channel balances are final.
 *
 * @example
 * await backend.pay(invoice);
 * await settled(net);
 */
export function settled(net: Network, timeoutMs = 10_000): Promise<void> {
  return until(
    () =>
      net.names.every((name) => {
        const balance = net.node(name).balance();
        return balance.unsettledLocalMsat === 0 && balance.unsettledRemoteMsat === 0;
      }),
    timeoutMs,
    'HTLCs to settle',
  );
}

/**
 * What `promise` rejects with; throws if it resolves instead.
 *
 * @example
 * const error = await rejection(backend.info());
 * expect(error.message).not.toContain(password);
 */
export async function rejection(promise: Promise<unknown>): Promise<Error & { readonly code?: string }> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected the promise to reject, but it resolved');
}
