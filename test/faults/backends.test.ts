/**
 * The gateway under traffic while what it depends on fails and comes back, without restarting it:
 *
 * - the Lightning backend (the devnet merchant's clnrest API behind a proxy that misbehaves on
 *   demand): down, slow, resetting, answering bytes that are not HTTP, 500 pages, JSON of the wrong
 *   shape;
 * - the upstream: down, slower than `responsetimeout`, resetting connections, answering garbage;
 * - PostgreSQL (a private server this test stops and starts; never the machine's shared one).
 *
 * Throughout, clients keep sending unpaid requests, requests with an already paid token and requests
 * with a forged one. What must hold: a clear status for every request (never a dropped connection:
 * the gateway does not crash), never 200 without a valid token (fail closed), paid tokens keep
 * working where the failing part is not needed to check them, every 402 that left the gateway names
 * a token that works once paid, and everything works again once the fault is gone.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Devnet } from '@l402/devnet';
import { Config, Gateway, Log } from '@l402/gateway';
import { Credential } from 'l402';
import { type Backend, connect } from 'l402/lightning';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buy,
  cleanup,
  type Fault,
  type FaultProxy,
  faultProxy,
  havePostgres,
  privatePostgres,
  tempDir,
  type Upstream,
  upstream,
} from './harness.js';

let devnet: Devnet.Devnet;
let payer: Backend;
let up: Upstream;
let lightning: FaultProxy;
const gateways: Gateway.Gateway[] = [];

beforeAll(async () => {
  devnet = await Devnet.start({ home: tempDir(), publish: false });
  payer = await connect(devnet.document.nodes.payer!.uris.lnd);
  up = await upstream();
  const cln = new URL(devnet.document.nodes.merchant!.uris.cln);
  lightning = await faultProxy(`127.0.0.1:${cln.port}`);
}, 120_000);

afterAll(async () => {
  await Promise.all(gateways.map((g) => g.close({ graceMs: 100 })));
  await lightning?.close();
  await payer?.close();
  await devnet?.close();
  await up?.close();
  cleanup();
});

function wallet(): string {
  const cln = new URL(devnet.document.nodes.merchant!.uris.cln);
  cln.port = String(lightning.port);
  return cln.href;
}

async function start(extra = ''): Promise<Gateway.Gateway> {
  const dir = tempDir();
  const text = `listenaddr: "127.0.0.1:8081"
insecure: true
basedir: ${JSON.stringify(dir)}
debuglevel: error
authenticator:
  uri: ${JSON.stringify(wallet())}
limits:
  responsetimeout: 1s
  connecttimeout: 1s
${extra}
services:
  - name: api
    pathregexp: '^/api/'
    address: "${up.address}"
    price: 1
`;
  writeFileSync(join(dir, 'aperture.yaml'), text);
  const { config } = Config.parse(text, join(dir, 'aperture.yaml'), { env: {} });
  const gateway = await Gateway.start(config, { log: Log.silent, listen: { host: '127.0.0.1', port: 0 } });
  gateways.push(gateway);
  return gateway;
}

async function purchase(gateway: Gateway.Gateway) {
  const reply = await fetch(`${gateway.url}/api/x`);
  expect(reply.status).toBe(402);
  await reply.arrayBuffer();
  return buy(reply, payer);
}

/** A token with a valid-looking shape whose signature is wrong. */
function forge(authorization: string): string {
  const { macaroon, preimage } = Credential.parse(authorization)!;
  const signature = new Uint8Array(macaroon.signature);
  signature[0]! ^= 0xff;
  return Credential.format({ macaroon: { ...macaroon, signature }, preimage });
}

interface Traffic {
  /** Status → count, per kind of request. */
  readonly unpaid: Map<number, number>;
  readonly paid: Map<number, number>;
  readonly forged: Map<number, number>;
  /** Requests that got no HTTP answer at all. */
  readonly dropped: string[];
  /** `WWW-Authenticate` values of every 402 an unpaid request got. */
  readonly challenges: Headers[];
}

/** Three clients (unpaid, paid, forged) sending requests one after another until `stop` resolves. */
async function traffic(gateway: Gateway.Gateway, token: string, stop: Promise<unknown>): Promise<Traffic> {
  const result: Traffic = {
    unpaid: new Map(),
    paid: new Map(),
    forged: new Map(),
    dropped: [],
    challenges: [],
  };
  let stopped = false;
  void stop.then(() => {
    stopped = true;
  });
  const client = async (kind: 'unpaid' | 'paid' | 'forged', headers: Record<string, string>) => {
    while (!stopped) {
      try {
        const reply = await fetch(`${gateway.url}/api/x`, { headers, signal: AbortSignal.timeout(45_000) });
        await reply.arrayBuffer();
        result[kind].set(reply.status, (result[kind].get(reply.status) ?? 0) + 1);
        if (kind === 'unpaid' && reply.status === 402) result.challenges.push(reply.headers);
      } catch (error) {
        result.dropped.push(`${kind}: ${(error as Error).cause ?? error}`);
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  await Promise.all([
    client('unpaid', {}),
    client('paid', { authorization: token }),
    client('forged', { authorization: forge(token) }),
  ]);
  return result;
}

const statuses = (m: Map<number, number>) => [...m.keys()].sort();

/** Pays up to `n` of the challenges and expects each bought token to work. */
async function expectChallengesHonoured(gateway: Gateway.Gateway, challenges: Headers[], n: number) {
  const sample = challenges.slice(-n);
  for (const headers of sample) {
    const token = await buy({ headers }, payer);
    const reply = await fetch(`${gateway.url}/api/x`, { headers: { authorization: token.authorization } });
    expect(reply.status).toBe(200);
    await reply.arrayBuffer();
  }
}

describe('Lightning backend faults', () => {
  const cases: [Fault, string][] = [
    ['down', 'connection refused'],
    ['reset', 'connections reset'],
    ['garbage', 'bytes that are not HTTP'],
    ['html500', 'a 500 HTML page'],
    ['badjson', 'JSON of the wrong shape'],
    ['slow', 'answers slowly'],
  ];
  for (const [fault, what] of cases) {
    it(`${what}: 503 (or a slow 402) for new challenges, paid tokens still served, recovery without restart`, async () => {
      const gateway = await start();
      const token = await purchase(gateway);
      await lightning.set(fault);
      let during: Traffic;
      try {
        during = await traffic(gateway, token.authorization, new Promise((r) => setTimeout(r, 1_500)));
      } finally {
        await lightning.set('pass');
      }
      expect(during.dropped).toEqual([]);
      expect(statuses(during.paid)).toEqual([200]);
      // A bad credential is answered with a fresh challenge, which needs an invoice: 503 meanwhile.
      expect(statuses(during.forged).every((s) => s === 401 || s === 402 || s === 503)).toBe(true);
      if (fault === 'slow') expect(statuses(during.unpaid)).toEqual([402]);
      else expect(statuses(during.unpaid)).toEqual([503]);
      // Back: challenges again, and what they sell works.
      const after = await purchase(gateway);
      const reply = await fetch(`${gateway.url}/api/x`, { headers: { authorization: after.authorization } });
      expect(reply.status).toBe(200);
      await expectChallengesHonoured(gateway, during.challenges, 2);
    }, 60_000);
  }

  it('says why in the 503: Retry-After and a message naming the Lightning backend', async () => {
    const gateway = await start();
    await lightning.set('down');
    try {
      const reply = await fetch(`${gateway.url}/api/x`);
      expect(reply.status).toBe(503);
      expect(Number(reply.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(await reply.text()).toMatch(/lightning backend is unavailable/i);
    } finally {
      await lightning.set('pass');
    }
  }, 30_000);
});

describe('upstream faults', () => {
  const cases: [Upstream['mode'] | 'down', number][] = [
    ['down', 502],
    ['slow', 504],
    ['reset', 502],
    ['garbage', 502],
  ];
  for (const [mode, status] of cases) {
    it(`${mode}: ${status} for paid requests, 402 for unpaid ones, recovery without restart`, async () => {
      const gateway = await start();
      const token = await purchase(gateway);
      if (mode === 'down') await up.close();
      else up.mode = mode;
      let during: Traffic;
      try {
        during = await traffic(gateway, token.authorization, new Promise((r) => setTimeout(r, 1_500)));
      } finally {
        if (mode === 'down') {
          up.server.listen(Number(up.address.split(':')[1]), '127.0.0.1');
          await new Promise((r) => up.server.once('listening', r));
        } else up.mode = 'ok';
      }
      expect(during.dropped).toEqual([]);
      expect(statuses(during.paid)).toEqual([status]);
      expect(statuses(during.unpaid)).toEqual([402]);
      expect(statuses(during.forged).every((s) => s === 401 || s === 402)).toBe(true);
      const reply = await fetch(`${gateway.url}/api/x`, { headers: { authorization: token.authorization } });
      expect(reply.status).toBe(200);
      await reply.arrayBuffer();
    }, 60_000);
  }
});

describe.runIf(havePostgres)('PostgreSQL restarted under traffic', () => {
  it('answers 503 while it is down, never a 402 it could forget, and recovers by itself', async () => {
    const pg = await privatePostgres();
    const gateway = await start(`dbbackend: postgres
postgres:
  host: "127.0.0.1"
  port: ${pg.port}
  user: postgres
  dbname: postgres`);
    const token = await purchase(gateway);
    // A token paid but never shown before the outage: its root key must come from the database.
    const unseen = await purchase(gateway);
    const outage = (async () => {
      await new Promise((r) => setTimeout(r, 800));
      await pg.stop();
      const firstUse = await fetch(`${gateway.url}/api/x`, {
        headers: { authorization: unseen.authorization },
      });
      await new Promise((r) => setTimeout(r, 2_000));
      await pg.start();
      await new Promise((r) => setTimeout(r, 2_000));
      return firstUse.status;
    })();
    const during = await traffic(gateway, token.authorization, outage);
    const firstUse = await outage;
    expect(during.dropped).toEqual([]);
    // A verified token is cached: served while the database is down.
    expect(statuses(during.paid)).toEqual([200]);
    // New challenges need a durable insert: 503 while down, 402 otherwise.
    expect(statuses(during.unpaid)).toEqual([402, 503]);
    expect(statuses(during.forged).every((s) => s === 401 || s === 402 || s === 503)).toBe(true);
    // An unseen token cannot be checked without its root key: 503, not 200 and not "pay again".
    expect(firstUse).toBe(503);
    // Recovered without a restart: the unseen token now works, and so do new purchases.
    const reply = await fetch(`${gateway.url}/api/x`, { headers: { authorization: unseen.authorization } });
    expect(reply.status).toBe(200);
    await expectChallengesHonoured(gateway, during.challenges, 3);
    await pg.stop();
  }, 90_000);
});
