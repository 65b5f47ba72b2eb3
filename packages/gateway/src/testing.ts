/**
 * Test harness of the gateway's end-to-end tests (not built into dist/): a devnet in the test process
 * (the merchant's LND API for invoices, the payer's for paying), a backend on loopback, gateways
 * started from YAML on an ephemeral port, a client that shows every header line, and a PostgreSQL
 * database of a test's own. Everything it starts is closed after the file's tests.
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import * as http from 'node:http';
import type * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Devnet } from '@l402/devnet';
import { Redis } from 'ioredis';
import { Challenge, Credential, Identifier, Macaroon } from 'l402';
import { type Backend, connect } from 'l402/lightning';
import postgres from 'postgres';
import { afterAll, beforeAll } from 'vitest';
import * as Config from './Config.js';
import * as Gateway from './Gateway.js';
import * as Log from './Log.js';

// ——— a client that shows every header line ———

export interface Reply {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  /** Header lines as received, names lower-cased, repeats kept. */
  readonly lines: readonly (readonly [string, string])[];
  readonly body: string;
}

export interface Send {
  readonly method?: string;
  readonly headers?: http.OutgoingHttpHeaders;
  readonly body?: string | Buffer;
  /** Send the body in chunks of this many bytes, without a length. */
  readonly chunk?: number;
  /** The local (loopback) address to send from. */
  readonly from?: string;
}

/** Header lines of `raw` (`rawHeaders`), names lower-cased. */
export function headerLines(raw: readonly string[]): [string, string][] {
  const lines: [string, string][] = [];
  for (let i = 0; i < raw.length; i += 2) lines.push([raw[i]!.toLowerCase(), raw[i + 1]!]);
  return lines;
}

/** The values of the header lines named `name`, in order. */
export const headerValues = (lines: readonly (readonly [string, string])[], name: string): string[] =>
  lines.filter(([n]) => n === name).map(([, v]) => v);

/**
 * One request on a connection of its own; resolves with the whole response.
 *
 * @example
 * const reply = await send(`${gateway.url}/api/x`, { headers: { authorization } });
 */
export function send(url: string, options: Send = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const request = http.request(
      url,
      {
        method: options.method ?? 'GET',
        headers: options.headers,
        agent: false,
        ...(options.from !== undefined ? { localAddress: options.from } : {}),
      },
      async (response) => {
        let body = '';
        for await (const chunk of response) body += chunk;
        const lines = headerLines(response.rawHeaders);
        resolve({ status: response.statusCode!, headers: response.headers, lines, body });
      },
    );
    request.on('error', reject);
    if (options.chunk !== undefined && options.body !== undefined) {
      const body = Buffer.from(options.body);
      for (let i = 0; i < body.length; i += options.chunk) request.write(body.subarray(i, i + options.chunk));
      request.end();
    } else request.end(options.body);
  });
}

// ——— servers on loopback ———

/** Listens on an ephemeral loopback port; resolves with the port. */
export async function listen(server: net.Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as net.AddressInfo).port;
}

/** Closes `server` and every connection it still holds. */
export async function closeServer(server: http.Server): Promise<void> {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
}

/** A loopback port nothing listens on (bound, then closed). */
export async function deadPort(): Promise<number> {
  const probe = http.createServer();
  const port = await listen(probe);
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

// ——— PostgreSQL ———

export interface Database {
  readonly name: string;
  /** The server's `host:port`. */
  readonly address: string;
  /** The gateway config keys (`dbbackend`, `postgres`) that use it. */
  readonly yaml: string;
  /** Drops the database, closing whatever still uses it. */
  drop(): Promise<void>;
}

/**
 * A fresh database named `<prefix>_<random>` on the test server (`L402_TEST_POSTGRES_URL`).
 *
 * @example
 * const db = await database('l402_limits');
 * try { await start(yaml(db.yaml)); } finally { await db.drop(); }
 */
export async function database(prefix: string): Promise<Database> {
  const url = new URL(process.env.L402_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test');
  const admin = postgres(url.href, { max: 1, onnotice: () => {} });
  const name = `${prefix}_${randomBytes(4).toString('hex')}`;
  await admin.unsafe(`CREATE DATABASE ${name}`);
  const password = url.password ? `\n  password: ${JSON.stringify(decodeURIComponent(url.password))}` : '';
  const yaml = `dbbackend: postgres
postgres:
  host: ${JSON.stringify(url.hostname)}
  port: ${url.port || 5432}
  user: ${JSON.stringify(decodeURIComponent(url.username))}
  dbname: ${name}${password}`;
  return {
    name,
    address: `${url.hostname}:${url.port || 5432}`,
    yaml,
    async drop() {
      await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.end();
    },
  };
}

// ——— Redis ———

/** Removes the keys under `prefix` from the Redis server `redis` talks to. */
export async function dropKeys(redis: Redis, prefix: string): Promise<void> {
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length > 0) await redis.del(...keys);
}

/** A Redis client of a server that is not there: every command rejects at once, no retry. */
export function deadRedis(): Redis {
  const down = new Redis({
    host: '127.0.0.1',
    port: 1,
    lazyConnect: true,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  down.on('error', () => {});
  return down;
}

// ——— the network and the gateways ———

/** A token bought by paying a gateway's L402 challenge. */
export interface Bought {
  readonly offer: Challenge.L402Challenge;
  readonly macaroon: Macaroon.Macaroon;
  readonly preimage: Uint8Array;
  /** Its token id, hex. */
  readonly tokenId: string;
  /** The `Authorization` value. */
  readonly authorization: string;
}

export interface World {
  /** A temp directory removed after the tests. */
  readonly home: string;
  readonly devnet: Devnet.Devnet;
  /** The payer node's LND API. */
  readonly payer: Backend;
  /** `127.0.0.1:port` of the backend, when one was given. */
  readonly upstream: string;
  /** A loopback port nothing listens on. */
  readonly closedPort: number;
  /** The devnet merchant's LND URI, for `authenticator.uri`. */
  readonly merchant: string;
  /** A fresh base directory under `home`. */
  basedir(): string;
  /**
   * Config text of a gateway on the devnet merchant, on 127.0.0.1:8080 without TLS unless `tls`, in a
   * fresh base directory unless given: `authenticator` lines after its `uri`, `extra` top-level keys,
   * then `services` (YAML list items).
   */
  config(services: string, options?: ConfigOptions): string;
  /** Starts a gateway from config text on an ephemeral loopback port (silent log unless given); closed after the tests. */
  start(text: string, options?: Gateway.StartOptions): Promise<Gateway.Gateway>;
  /** Pays the L402 challenge among `challenges` (the WWW-Authenticate value or lines) with the payer. */
  pay(challenges: string | readonly string[] | null): Promise<Bought>;
}

export interface ConfigOptions {
  readonly extra?: string;
  readonly basedir?: string;
  /** `authenticator.uri`: the devnet merchant's LND by default. */
  readonly wallet?: string;
  /** More `authenticator` keys, each line indented by two spaces and ended by a newline. */
  readonly authenticator?: string;
  readonly tls?: boolean;
}

export interface WorldOptions {
  /** The temp directory's name prefix. */
  readonly name: string;
  /** The backend the services proxy to. */
  readonly backend?: http.Server;
  /** More devnet options (e.g. `pushSat`). */
  readonly devnet?: Omit<Devnet.Options, 'home' | 'publish'>;
  /** How long closing gateways waits for requests in flight. */
  readonly graceMs?: number;
}

/**
 * Starts the devnet and the backend before the file's tests and closes them, and every gateway
 * started through it, after; the handle reads the running world, so use it inside tests and hooks.
 *
 * @example
 * const world = useWorld({ name: 'l402-limits-', backend });
 * it('pays', async () => { const gateway = await world.start(yaml()); … });
 */
export function useWorld(options: WorldOptions): World {
  const home = mkdtempSync(join(tmpdir(), options.name));
  const gateways: Gateway.Gateway[] = [];
  let running: { devnet: Devnet.Devnet; payer: Backend; upstream: string; closedPort: number } | undefined;
  let devnet: Devnet.Devnet | undefined;
  let payer: Backend | undefined;
  let dirs = 0;
  beforeAll(async () => {
    devnet = await Devnet.start({ home, publish: false, ...options.devnet });
    payer = await connect(devnet.document.nodes.payer!.uris.lnd);
    const upstream = options.backend === undefined ? '' : `127.0.0.1:${await listen(options.backend)}`;
    running = { devnet, payer, upstream, closedPort: await deadPort() };
  }, 60_000);
  afterAll(async () => {
    await Promise.all(gateways.map((g) => g.close({ graceMs: options.graceMs ?? 1_000 })));
    await payer?.close();
    await devnet?.close();
    if (options.backend?.listening) await closeServer(options.backend);
    rmSync(home, { recursive: true, force: true });
  });
  const basedir = () => join(home, `gw${++dirs}`);
  const now = () => {
    if (running === undefined) throw new Error('the world runs only inside tests and hooks');
    return running;
  };
  return {
    home,
    get devnet() {
      return now().devnet;
    },
    get payer() {
      return now().payer;
    },
    get upstream() {
      return now().upstream;
    },
    get closedPort() {
      return now().closedPort;
    },
    get merchant() {
      return now().devnet.document.nodes.merchant!.uris.lnd;
    },
    basedir,
    config(services, o = {}) {
      return `
listenaddr: "127.0.0.1:8080"
insecure: ${o.tls !== true}
basedir: ${JSON.stringify(o.basedir ?? basedir())}
authenticator:
  uri: ${JSON.stringify(o.wallet ?? now().devnet.document.nodes.merchant!.uris.lnd)}
${o.authenticator ?? ''}${o.extra ?? ''}
services:
${services}`;
    },
    async start(text, startOptions = {}) {
      const { config } = Config.parse(text, 'test.yaml', { env: {} });
      const gateway = await Gateway.start(config, {
        log: Log.silent,
        listen: { host: '127.0.0.1', port: 0 },
        ...startOptions,
      });
      gateways.push(gateway);
      return gateway;
    },
    async pay(challenges) {
      const offer = Challenge.l402(Challenge.parse(challenges));
      if (offer === undefined) throw new Error(`no L402 challenge in ${JSON.stringify(challenges)}`);
      const macaroon = Macaroon.decode(offer.macaroon);
      const { preimage } = await now().payer.pay(offer.invoice, { maxFeeMsat: 1_000n });
      const tokenId = Buffer.from(Identifier.decode(macaroon.identifier).tokenId).toString('hex');
      return { offer, macaroon, preimage, tokenId, authorization: Credential.format({ macaroon, preimage }) };
    },
  };
}
