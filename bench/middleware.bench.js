/**
 * The middleware's cost in each framework: requests per second of a hello-world route in node:http,
 * Express 5, Fastify 5 and Hono 4, each without and with the L402 middleware in front of it (a valid
 * credential on every request, so the verified-credential cache answers after the first), all in one
 * run. Each server is a child process of its own (bench/servers/framework.js), the devnet another; the
 * load comes from autocannon in this process. The twelve cases (bare, with the middleware, with it and
 * `cors: false`) run in interleaved rounds, and each line
 * also gives the CPU time per request of the server under load, which a noisy machine disturbs far less
 * than requests per second. Nothing is asserted: the goal (the middleware keeps at least 90% of the
 * framework's own throughput) is printed as met or missed.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Challenge, Credential, Macaroon } from 'l402';
import { connect } from 'l402/lightning';
import { Middleware } from 'l402/server';
import { fmt, measure } from './lib.js';
import { cpuTicks, killLeftovers, othersLine, rounds, startServer, stopServers } from './load.js';

export const title = 'Middleware (hello world, HTTP/1.1 over loopback, keep-alive)';

const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
const ROUNDS = Number(process.env.BENCH_MIDDLEWARE_ROUNDS ?? 5);
/** Seconds of each warm-up and each round (autocannon runs whole seconds). */
const WARMUP_S = 1;
const ROUND_S = 1;
const GOAL = 0.9;
const FRAMEWORKS = { node: 'node:http', express: 'Express 5', fastify: 'Fastify 5', hono: 'Hono 4' };

/** A token for the `bench` service, bought from `url` with the devnet payer's wallet. */
async function buy(url, payerUri) {
  const unpaid = await fetch(url);
  await unpaid.text();
  if (unpaid.status !== 402) throw new Error(`${url} answered ${unpaid.status}, not 402`);
  const offer = Challenge.l402(Challenge.parse(unpaid.headers.get('www-authenticate')));
  const payer = await connect(payerUri);
  try {
    const { preimage } = await payer.pay(offer.invoice, { maxFeeMsat: 1_000n });
    return Credential.format({ macaroon: Macaroon.decode(offer.macaroon), preimage });
  } finally {
    await payer.close();
  }
}

export async function run() {
  const home = mkdtempSync(join(tmpdir(), 'l402-bench-middleware-'));
  process.on('exit', killLeftovers);
  try {
    const devnet = await startServer('devnet.js', { home: join(home, 'devnet') });
    const masterKey = randomBytes(32).toString('hex');
    const servers = {};
    const variants = {
      bare: { paid: false },
      l402: { paid: true, cors: true },
      'no cors': { paid: true, cors: false },
    };
    for (const framework of Object.keys(FRAMEWORKS)) {
      for (const [variant, settings] of Object.entries(variants)) {
        servers[`${framework} ${variant}`] = await startServer('framework.js', {
          framework,
          wallet: devnet.merchant,
          masterKey,
          ...settings,
        });
      }
    }
    const url = (name) => `http://127.0.0.1:${servers[name].port}/hello`;

    // Derived keys: a token bought from one server is valid on every server with the master key.
    const authorization = await buy(url('node l402'), devnet.payer);
    for (const name of Object.keys(servers)) {
      const reply = await fetch(url(name), { headers: { authorization } });
      const text = await reply.text();
      if (reply.status !== 200 || text !== 'hello world') throw new Error(`${name}: ${reply.status} ${text}`);
    }

    const cases = Object.fromEntries(
      Object.entries(servers).map(([name, { child }]) => [name, { url: url(name), server: child }]),
    );
    const pids = [process.pid, devnet.child.pid, ...Object.values(servers).map((s) => s.child.pid)];
    const started = performance.now();
    const before = cpuTicks(pids);
    const results = await rounds(cases, {
      rounds: ROUNDS,
      warmupS: WARMUP_S,
      roundS: ROUND_S,
      connections: CONNECTIONS,
      headers: { authorization },
    });
    const after = cpuTicks(pids);

    // The check alone, in this process: what every paid request costs before the handler runs.
    const paywall = Middleware.create({ backend: devnet.merchant, masterKey });
    const guard = paywall.protect({ service: 'bench', price: 1 });
    const request = { method: 'GET', url: '/hello', headers: { host: 'bench', authorization } };
    await guard(request); // verified once; from now on decided synchronously
    const alone = measure({
      'baseline: a header read': () => request.headers.authorization.length,
      'guard, cached credential': () => guard(request),
    });
    await paywall.close();

    const lines = Object.entries(FRAMEWORKS).map(([framework, label]) => {
      const bare = results[`${framework} bare`];
      const paid = results[`${framework} l402`];
      const plain = results[`${framework} no cors`];
      const share = paid.rps / bare.rps;
      const added = (r) => `${r.cpu >= bare.cpu ? '+' : '−'}${Math.abs(r.cpu - bare.cpu).toFixed(1)} µs`;
      return (
        `${label}: ${fmt(bare.rps)} req/s bare, ${fmt(paid.rps)} req/s with l402 ` +
        `(${share.toFixed(2)}x [goal ≥ ${GOAL.toFixed(2)}x: ${share >= GOAL ? 'met' : 'MISSED'}]), ` +
        `${fmt(plain.rps)} req/s with l402 and cors: false (${(plain.rps / bare.rps).toFixed(2)}x); ` +
        `CPU/req ${bare.cpu.toFixed(1)} µs bare, ${added(paid)} with l402, ${added(plain)} without CORS; ` +
        `p99 ${bare.p99.toFixed(2)} → ${paid.p99.toFixed(2)} ms`
      );
    });
    return {
      lines: [
        `setup: GET /hello answering "hello world", bare, behind the middleware (defaults: Aperture's CORS ` +
          `headers on every answer), and behind it with cors: false; ${CONNECTIONS} connections from autocannon in the bench ` +
          `process (HTTP/1.1 keep-alive, pipelining 1), every request with a valid L402 credential; each ` +
          `server a node process of its own, sharing the machine's ${cpus().length} cores with the load ` +
          `generator; after a ${WARMUP_S} s warm-up, ${ROUNDS} interleaved rounds of ${ROUND_S} s per case, ` +
          `each figure the median round's`,
        ...lines,
        `in this process, the check alone: ${fmt(alone['guard, cached credential'])} /s ` +
          `(${(1e6 / alone['guard, cached credential']).toFixed(2)} µs each, synchronous; a header read: ` +
          `${(1e6 / alone['baseline: a header read']).toFixed(3)} µs)`,
        ...othersLine(before, after, (performance.now() - started) / 1000),
      ],
      results,
    };
  } finally {
    await stopServers();
    process.off('exit', killLeftovers);
    rmSync(home, { recursive: true, force: true });
  }
}
