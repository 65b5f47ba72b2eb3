/**
 * WebSocket through the gateway, end to end: a real `ws` client, a real `ws` server behind the
 * gateway, the gateway's invoices paid on the devnet.
 */
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import * as http from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RawData, WebSocket, WebSocketServer } from 'ws';
import type * as Gateway from './Gateway.js';
import * as Testing from './testing.js';

// ——— a backend that echoes, and records what reached it ———

/** The upgrade requests that reached the backend: header lines, names lower-cased. */
const upgrades: (readonly [string, string])[][] = [];
/** Plain requests that reached the backend. */
const requests: { url: string; headers: http.IncomingHttpHeaders; bodyBytes: number }[] = [];
/** How each backend-side WebSocket closed. */
const closes: { code: number; reason: string }[] = [];

const backend = http.createServer(async (request, response) => {
  let bodyBytes = 0;
  for await (const chunk of request) bodyBytes += (chunk as Buffer).length;
  requests.push({ url: request.url!, headers: request.headers, bodyBytes });
  response.end(`plain ${request.url}`);
});
const echo = new WebSocketServer({ noServer: true });
backend.on('upgrade', (request: http.IncomingMessage, socket, head) => {
  upgrades.push(Testing.headerLines(request.rawHeaders));
  if (request.url!.endsWith('/refuse')) {
    socket.end('HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\ncontent-length: 7\r\n\r\nno way\n');
    return;
  }
  echo.handleUpgrade(request, socket, head, (ws) => {
    ws.on('message', (data: RawData, isBinary: boolean) => {
      const text = isBinary ? undefined : data.toString();
      if (text === 'close me') ws.close(4001, 'bye');
      else if (text === 'die') ws.terminate();
      else ws.send(data, { binary: isBinary });
    });
    ws.on('close', (code: number, reason: Buffer) => closes.push({ code, reason: reason.toString() }));
  });
});

const values = Testing.headerValues;

// ——— clients ———

/** Opens a WebSocket; rejects with the response when the server answers anything but 101. */
function open(url: string, options: WebSocket.ClientOptions = {}): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, options);
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (request, response) => {
      void refusal(response).then(reject, reject);
      request.on('error', () => {});
    });
    ws.once('error', reject);
  });
}

interface Refusal {
  readonly status: number;
  readonly lines: readonly (readonly [string, string])[];
  readonly body: string;
  /** Whether the gateway closed the connection after the response. */
  readonly closed: boolean;
}

async function refusal(response: http.IncomingMessage): Promise<Refusal> {
  let body = '';
  for await (const chunk of response) body += chunk;
  const lines = Testing.headerLines(response.rawHeaders);
  const socket = response.socket;
  const closed = socket.destroyed || (await once(socket, 'close').then(() => true));
  return { status: response.statusCode!, lines, body, closed };
}

/** The next message, as text or bytes. */
async function next(ws: WebSocket): Promise<{ data: Buffer; binary: boolean }> {
  const [data, binary] = (await once(ws, 'message')) as [Buffer, boolean];
  return { data, binary };
}

async function closed(ws: WebSocket): Promise<{ code: number; reason: string }> {
  const [code, reason] = (await once(ws, 'close')) as [number, Buffer];
  return { code, reason: reason.toString() };
}

// ——— the network and the gateway ———

const world = Testing.useWorld({ name: 'l402-ws-', backend });
let gateway: Gateway.Gateway;
let wsUrl: string;
/** The base directory of the gateway `start()` made last. */
let lastBasedir = '';

async function start(tls = false): Promise<Gateway.Gateway> {
  lastBasedir = world.basedir();
  const services = `
  - name: chat
    pathregexp: '^/ws/'
    address: "${world.upstream}"
    price: 21
    authwhitelistpaths: ['^/ws/public/']
  - name: free
    pathregexp: '^/free/'
    address: "${world.upstream}"
    auth: off
  - name: down
    pathregexp: '^/down/'
    address: "127.0.0.1:${world.closedPort}"
    auth: off
`;
  return world.start(world.config(services, { basedir: lastBasedir, tls }));
}

beforeAll(async () => {
  gateway = await start();
  wsUrl = gateway.url.replace(/^http/, 'ws');
}, 60_000);

afterAll(() => {
  echo.close();
});

let bought: Promise<string> | undefined;

/** An `Authorization` value for the `chat` service, bought once from a refused upgrade's challenge. */
function authorization(): Promise<string> {
  bought ??= (async () => {
    const refused = (await open(`${wsUrl}/ws/room`).catch((e: unknown) => e)) as Refusal;
    return (await world.pay(values(refused.lines, 'www-authenticate'))).authorization;
  })();
  return bought;
}

describe('WebSocket through the gateway', () => {
  it("refuses an unpaid upgrade with Aperture's 402 pair, written on the connection, which then closes", async () => {
    const refused = (await open(`${wsUrl}/ws/room`).catch((e: unknown) => e)) as Refusal;
    expect(refused.status).toBe(402);
    expect(refused.body).toBe('payment required\n');
    const challenges = values(refused.lines, 'www-authenticate');
    expect(challenges).toHaveLength(2);
    expect(challenges[0]).toMatch(/^LSAT macaroon="[A-Za-z0-9+/]+={0,2}", invoice="lnbcrt210n1[a-z0-9]+"$/);
    expect(challenges[1]).toBe(`L402${challenges[0]!.slice(4)}`);
    expect(values(refused.lines, 'connection')).toEqual(['close']);
    expect(refused.closed).toBe(true);
  });

  it('opens a paid upgrade and echoes text and binary messages both ways', async () => {
    const paid = await authorization();
    const ws = await open(`${wsUrl}/ws/room?x=1`, { headers: { authorization: paid } });
    const seen = upgrades[upgrades.length - 1]!;
    expect(values(seen, 'authorization').map((v) => v.split(' ')[0])).toEqual(['LSAT', 'L402']);
    expect(values(seen, 'authorization')[1]).toBe(paid);
    expect(values(seen, 'upgrade')).toEqual(['websocket']);
    expect(values(seen, 'connection')).toEqual(['upgrade']);
    expect(values(seen, 'sec-websocket-key')).toHaveLength(1);
    expect(values(seen, 'sec-websocket-version')).toEqual(['13']);
    expect(values(seen, 'x-forwarded-for')).toEqual(['127.0.0.1']);

    ws.send('hello');
    expect(await next(ws)).toEqual({ data: Buffer.from('hello'), binary: false });
    const bytes = randomBytes(1000);
    ws.send(bytes);
    expect(await next(ws)).toEqual({ data: bytes, binary: true });
    ws.close();
    await closed(ws);
  });

  it('passes a close from either side to the other, code and reason included', async () => {
    const paid = await authorization();
    const byClient = await open(`${wsUrl}/ws/room`, { headers: { authorization: paid } });
    const before = closes.length;
    byClient.close(4000, 'done');
    expect(await closed(byClient)).toEqual({ code: 4000, reason: 'done' });
    await expect.poll(() => closes.slice(before)).toEqual([{ code: 4000, reason: 'done' }]);

    const byServer = await open(`${wsUrl}/ws/room`, { headers: { authorization: paid } });
    byServer.send('close me');
    expect(await closed(byServer)).toEqual({ code: 4001, reason: 'bye' });
  });

  it('cuts the other side when one side vanishes without a close', async () => {
    const paid = await authorization();
    const dying = await open(`${wsUrl}/ws/room`, { headers: { authorization: paid } });
    dying.send('die');
    expect((await closed(dying)).code).toBe(1006);

    const vanishing = await open(`${wsUrl}/ws/room`, { headers: { authorization: paid } });
    const before = closes.length;
    vanishing.terminate();
    await expect.poll(() => closes.slice(before).map((c) => c.code)).toEqual([1006]);
  });

  it('streams large messages and many messages in order', async () => {
    const ws = await open(`${wsUrl}/ws/room`, {
      headers: { authorization: await authorization() },
      maxPayload: 64 * 1024 * 1024,
    });
    const big = randomBytes(16 * 1024 * 1024);
    ws.send(big);
    const { data } = await next(ws);
    expect(createHash('sha256').update(data).digest('hex')).toBe(
      createHash('sha256').update(big).digest('hex'),
    );

    const count = 200;
    const received: number[] = [];
    const all = new Promise<void>((resolve) =>
      ws.on('message', (message: Buffer) => {
        received.push(message.readUInt32BE(0));
        if (received.length === count) resolve();
      }),
    );
    for (let i = 0; i < count; i++) {
      const message = randomBytes(64 * 1024);
      message.writeUInt32BE(i, 0);
      ws.send(message);
    }
    await all;
    expect(received).toEqual([...Array(count).keys()]);
    ws.close();
  });

  it('upgrades a whitelisted path without payment', async () => {
    const ws = await open(`${wsUrl}/ws/public/lobby`);
    ws.send('hi');
    expect((await next(ws)).data.toString()).toBe('hi');
    expect(values(upgrades[upgrades.length - 1]!, 'authorization')).toEqual([]);
    ws.close();
  });

  it("relays the backend's refusal of the upgrade, and answers 502 when the backend is down", async () => {
    const refused = (await open(`${wsUrl}/ws/public/refuse`).catch((e: unknown) => e)) as Refusal;
    expect(refused).toMatchObject({ status: 403, body: 'no way\n', closed: true });
    expect(values(refused.lines, 'access-control-allow-origin')).toEqual(['*']);
    const down = (await open(`${wsUrl}/down/x`).catch((e: unknown) => e)) as Refusal;
    expect(down).toMatchObject({ status: 502, body: 'upstream unavailable\n', closed: true });
  });

  it('serves other upgrades (h2c) as the ordinary HTTP/1.1 requests they also are, body included', async () => {
    const reply = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const request = http.request(`${gateway.url}/free/h2c`, {
        method: 'POST',
        agent: false,
        headers: {
          connection: 'Upgrade, HTTP2-Settings',
          upgrade: 'h2c',
          'http2-settings': 'AAMAAABkAAQCAAAAAAIAAAAA',
          'content-length': '5',
        },
      });
      request.on('response', async (response) => {
        let body = '';
        for await (const chunk of response) body += chunk;
        resolve({ status: response.statusCode!, body });
      });
      request.on('upgrade', () => reject(new Error('the gateway switched protocols')));
      request.on('error', reject);
      request.end('hello');
    });
    expect(reply).toEqual({ status: 200, body: 'plain /free/h2c' });
    const seen = requests[requests.length - 1]!;
    expect(seen.bodyBytes).toBe(5);
    expect(seen.headers.upgrade).toBeUndefined();
    expect(seen.headers['http2-settings']).toBeUndefined();
  });

  it('cuts open tunnels when the shutdown grace period ends', async () => {
    const closing = await start();
    const ws = await open(`${closing.url.replace(/^http/, 'ws')}/ws/public/x`);
    const before = closes.length;
    const cut = closed(ws);
    const started = Date.now();
    await closing.close({ graceMs: 200 });
    expect(Date.now() - started).toBeLessThan(1_000);
    expect((await cut).code).toBe(1006);
    await expect.poll(() => closes.slice(before).map((c) => c.code)).toEqual([1006]);
  });

  it('relays wss:// through a TLS listener', async () => {
    const tls = await start(true);
    const ca = readFileSync(join(lastBasedir, 'tls.cert'));
    const ws = await open(`${tls.url.replace(/^https/, 'wss')}/ws/public/x`, { ca });
    ws.send('secure');
    expect((await next(ws)).data.toString()).toBe('secure');
    ws.close();
  });
});
