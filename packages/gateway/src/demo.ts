/**
 * The demo backend `l402 gateway` proxies to when it runs without a config, and the command that
 * pays for one of its paid URLs with the devnet payer's wallet.
 *
 * Routes (any method): `/free/…` and `/paid/…` answer JSON saying which they are, the path, and for
 * paid requests the token id the gateway forwarded (read from the `Authorization` it rewrites, as a
 * backend behind Aperture would); a path ending in `/events` is a server-sent-event stream of
 * `count` ticks `interval` ms apart (defaults 5 and 1000). Anything else is 404.
 *
 * @example
 * const demo = await Demo.start();
 * const config = Config.defaults(home, { upstream: demo.address });
 * console.log(Demo.payCommand({ url: `${gateway.url}/paid/hello`, devnetFile: gateway.devnet!.file }));
 * await demo.close();
 */
import { once } from 'node:events';
import * as http from 'node:http';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Credential, Identifier } from 'l402';
import type { HostPort } from './Config.js';

/** The running demo backend. */
export interface Demo {
  readonly address: HostPort;
  readonly url: string;
  close(): Promise<void>;
}

/** The demo URLs' paths, under the gateway's URL. */
export const PATHS = { free: '/free/hello', paid: '/paid/hello', events: '/free/events' } as const;

function json(response: http.ServerResponse, status: number, body: unknown): void {
  const text = `${JSON.stringify(body)}\n`;
  response.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
  });
  response.end(text);
}

/** The token id in a forwarded `Authorization`, without verifying it: the gateway already did. */
function tokenId(request: http.IncomingMessage): string | undefined {
  try {
    const credential = Credential.parse(request.headers.authorization);
    return (
      credential && Buffer.from(Identifier.decode(credential.macaroon.identifier).tokenId).toString('hex')
    );
  } catch {
    return undefined;
  }
}

const bounded = (text: string | null, min: number, max: number, fallback: number) => {
  const n = text === null ? Number.NaN : Number(text);
  return Number.isInteger(n) ? Math.min(max, Math.max(min, n)) : fallback;
};

function events(request: http.IncomingMessage, response: http.ServerResponse, url: URL): void {
  const count = bounded(url.searchParams.get('count'), 1, 100, 5);
  const interval = bounded(url.searchParams.get('interval'), 10, 10_000, 1_000);
  response.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  let n = 0;
  const tick = () => {
    n++;
    response.write(
      `event: tick\nid: ${n}\ndata: ${JSON.stringify({ n, of: count, time: new Date().toISOString() })}\n\n`,
    );
    if (n >= count) {
      clearInterval(timer);
      response.end();
    }
  };
  const timer = setInterval(tick, interval);
  request.socket.once('close', () => clearInterval(timer));
  tick();
}

/**
 * Starts the demo backend on loopback (a free port unless one is given).
 *
 * @example
 * const demo = await Demo.start({ port: 0 }); // demo.address: { host: '127.0.0.1', port: 39211 }
 */
export async function start(options: { readonly host?: string; readonly port?: number } = {}): Promise<Demo> {
  const host = options.host ?? '127.0.0.1';
  const server = http.createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://demo.invalid');
    const section = /^\/(free|paid)(?:\/|$)/.exec(url.pathname)?.[1];
    if (section === undefined) return json(response, 404, { error: 'not found', path: url.pathname });
    if (url.pathname.endsWith('/events')) return events(request, response, url);
    const paid = section === 'paid';
    json(response, 200, {
      service: section,
      method: request.method,
      path: url.pathname,
      message: paid ? 'paid content: thank you for the sats' : 'free content',
      ...(paid ? { tokenId: tokenId(request) } : {}),
      time: new Date().toISOString(),
    });
  });
  server.listen(options.port ?? 0, host);
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  return {
    address: { host, port },
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** `text` as one shell word (POSIX sh): single quotes, with each `'` written as `'\''`. */
function shellWord(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

/**
 * A shell command that buys `url` with the devnet payer's wallet: it requests the URL, pays the
 * invoice of the 402 with the payer's LND API (its URI read from `devnetFile` when the command runs,
 * so no credential is printed), retries with `Authorization: L402 <macaroon>:<preimage>`, and prints
 * the status and body. It imports l402 from where this gateway found it, so it runs from any directory.
 *
 * @example
 * Demo.payCommand({ url: 'http://127.0.0.1:8080/paid/hello', devnetFile: '/home/me/.l402/devnet.json' });
 * // "node --input-type=module -e 'const { Challenge, Credential, Macaroon } = await import(…"
 */
export function payCommand(options: { readonly url: string; readonly devnetFile: string }): string {
  const require = createRequire(import.meta.url);
  const l402 = pathToFileURL(require.resolve('l402')).href;
  const lightning = pathToFileURL(require.resolve('l402/lightning')).href;
  const q = JSON.stringify;
  const script = [
    `const { Challenge, Credential, Macaroon } = await import(${q(l402)});`,
    `const { connect } = await import(${q(lightning)});`,
    `const { readFileSync } = await import("node:fs");`,
    `const url = ${q(options.url)};`,
    `const offer = Challenge.l402(Challenge.parse((await fetch(url)).headers.get("www-authenticate")));`,
    `const wallet = await connect(JSON.parse(readFileSync(${q(options.devnetFile)}, "utf8")).nodes.payer.uris.lnd);`,
    `const { preimage } = await wallet.pay(offer.invoice, { maxFeeMsat: 1000n });`,
    `await wallet.close();`,
    `const paid = await fetch(url, { headers: { authorization: Credential.format({ macaroon: Macaroon.decode(offer.macaroon), preimage }) } });`,
    `console.log(paid.status, (await paid.text()).trim());`,
    `process.exitCode = paid.ok ? 0 : 1;`,
  ].join(' ');
  return `node --input-type=module -e ${shellWord(script)}`;
}
