/**
 * The middleware's cost in each framework: requests per second of a hello-world route in node:http,
 * Express 5, Fastify 5 and Hono 4, each without and with the L402 middleware in front of it (a valid
 * credential on every request, so the verified-credential cache answers after the first), all in one
 * run.
 *
 * How, so that the figures hold still on a small shared machine: the server under load has one core
 * to itself and the load generator the other (both pinned with `taskset`), so neither takes CPU from
 * the other and a request's cost shows as requests/s. The load comes from wrk when it is installed
 * (`apt-get install wrk`: a C client much lighter than the server it loads), else from autocannon in
 * this process. Each round starts every case's server afresh (a child process of its own, warmed up
 * for a second), because one Node process can settle into faster or slower compiled code than the
 * next; each figure is the median round's. Besides requests/s, each line gives the server's
 * user-space instructions per request when `perf` can count them (a count the rest of the machine
 * hardly moves, unlike time), else its CPU time per request. Nothing is asserted: the goal (the
 * middleware keeps at least 90% of the framework's own throughput) is printed as met or missed.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Challenge, Credential, Macaroon } from 'l402';
import { connect } from 'l402/lightning';
import { Middleware } from 'l402/server';
import { fmt, measure } from './lib.js';
import {
  command,
  cpuTicks,
  cpuTime,
  instructions,
  killLeftovers,
  load,
  median,
  othersLine,
  pin,
  startServer,
  stopServers,
  wrk,
} from './load.js';

export const title = 'Middleware (hello world, HTTP/1.1 over loopback, keep-alive)';

const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
const ROUNDS = Number(process.env.BENCH_MIDDLEWARE_ROUNDS ?? 3);
/** Seconds of each server's warm-up and of each measured round (both tools run whole seconds). */
const WARMUP_S = 1;
const ROUND_S = 2;
const GOAL = 0.9;
/** A browser's cross-origin request carries this; server-to-server calls carry none. */
const ORIGIN = 'https://shop.example';

/**
 * Per framework, the cases: the bare app, then the middleware (defaults) on a request without
 * `Origin`, and on a browser's request (with `Origin`, answered with Aperture's CORS headers).
 */
const FRAMEWORKS = {
  node: { label: 'node:http', extra: { 'CORS by hand': { paid: false, form: 'cors', origin: true } } },
  express: { label: 'Express 5', extra: {} },
  fastify: { label: 'Fastify 5', extra: {} },
  hono: {
    label: 'Hono 4',
    extra: { 'no-op middleware': { paid: false, form: 'noop' }, wrapped: { paid: true, form: 'wrap' } },
  },
};
const COMMON = {
  bare: { paid: false },
  l402: { paid: true },
  browser: { paid: true, origin: true },
};

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
  const useWrk = command('wrk') !== undefined;
  // Core 0 for the load generator (this process, or wrk), core 1 for the server under load.
  const pinned = pin(process.pid, 0);
  const serverCpu = pinned ? 1 : undefined;
  try {
    const devnet = await startServer('devnet.js', { home: join(home, 'devnet') });
    const masterKey = randomBytes(32).toString('hex');
    const cases = {};
    for (const [framework, { extra }] of Object.entries(FRAMEWORKS)) {
      for (const [variant, settings] of Object.entries({ ...COMMON, ...extra })) {
        cases[`${framework} ${variant}`] = { framework, ...settings };
      }
    }

    /** A fresh server for `name`, on its own core; stopped by the caller. */
    const start = async (name) => {
      const { origin: _origin, ...settings } = cases[name];
      const server = await startServer('framework.js', { wallet: devnet.merchant, masterKey, ...settings });
      if (serverCpu !== undefined) pin(server.child.pid, serverCpu);
      return { ...server, url: `http://127.0.0.1:${server.port}/hello` };
    };
    const stop = (server) =>
      new Promise((resolve) => {
        server.child.once('exit', resolve);
        server.child.kill('SIGTERM');
      });

    // Derived keys: a token bought from one server is valid on every server with the master key.
    const seller = await start('node l402');
    const authorization = await buy(seller.url, devnet.payer);
    await stop(seller);

    const drive = (url, seconds, origin) => {
      const headers = origin ? { authorization, origin: ORIGIN } : { authorization };
      return useWrk
        ? wrk(url, { connections: CONNECTIONS, seconds, headers, cpu: pinned ? 0 : undefined })
        : load(url, { connections: CONNECTIONS, seconds, headers }).then((r) => ({
            ...r,
            p50: r.latency.percentile(50) / 1000,
            p99: r.latency.percentile(99) / 1000,
          }));
    };

    const samples = Object.fromEntries(Object.keys(cases).map((n) => [n, []]));
    // The servers and wrk are this process's children: once exited, their CPU counts as its own.
    const pids = [process.pid, devnet.child.pid];
    const started = performance.now();
    const before = cpuTicks(pids);
    for (let round = 0; round < ROUNDS; round++) {
      for (const name of Object.keys(cases)) {
        const server = await start(name);
        try {
          const check = await fetch(server.url, {
            headers: cases[name].origin ? { authorization, origin: ORIGIN } : { authorization },
          });
          const text = await check.text();
          if (check.status !== 200 || text !== 'hello world') {
            throw new Error(`${name}: ${check.status} ${text}`);
          }
          const cors = check.headers.get('access-control-allow-origin') !== null;
          if (cors !== (cases[name].origin === true)) {
            throw new Error(`${name}: CORS headers ${cors ? 'sent' : 'missing'}`);
          }
          await drive(server.url, WARMUP_S, cases[name].origin);
          const cpu0 = await cpuTime(server.child);
          const [result, counted] = await Promise.all([
            drive(server.url, ROUND_S, cases[name].origin),
            instructions(server.child.pid, ROUND_S),
          ]);
          const cpu1 = await cpuTime(server.child);
          samples[name].push({
            rps: result.rps,
            p99: result.p99,
            cpu: (cpu1 - cpu0) / result.count,
            instructions: counted === undefined ? undefined : counted / result.count,
          });
        } finally {
          await stop(server);
        }
      }
    }
    const after = cpuTicks(pids);
    const results = Object.fromEntries(
      Object.entries(samples).map(([name, list]) => [
        name,
        Object.fromEntries(
          ['rps', 'p99', 'cpu', 'instructions'].map((key) => [
            key,
            list[0][key] === undefined ? undefined : median(list.map((s) => s[key])),
          ]),
        ),
      ]),
    );

    // The check alone, in this process: what every paid request costs before the handler runs.
    const paywall = Middleware.create({ backend: devnet.merchant, masterKey });
    const guard = paywall.protect({ service: 'bench', price: 1 });
    // As a server sees it: every request's header a new string (whose hash nobody has computed yet).
    const bytes = Buffer.from(authorization, 'latin1');
    const fresh = () => ({
      method: 'GET',
      url: '/hello',
      headers: { host: 'bench', authorization: bytes.toString('latin1') },
    });
    await guard(fresh()); // verified once; from now on decided synchronously
    const alone = measure({
      'baseline: a request view with a new header string': fresh,
      'guard, cached credential': () => guard(fresh()),
    });
    await paywall.close();

    const counting = Object.values(results).every((r) => r.instructions !== undefined);
    const cost = (r, bare) =>
      counting
        ? `${fmt(r.instructions)} instructions/req (${(bare.instructions / r.instructions).toFixed(2)}x)`
        : `${r.cpu.toFixed(1)} µs CPU/req (${(bare.cpu / r.cpu).toFixed(2)}x)`;
    const lines = Object.entries(FRAMEWORKS).map(([framework, { label, extra }]) => {
      const bare = results[`${framework} bare`];
      const paid = results[`${framework} l402`];
      const share = paid.rps / bare.rps;
      const others = ['browser', ...Object.keys(extra)].map((variant) => {
        const r = results[`${framework} ${variant}`];
        return `${variant}: ${fmt(r.rps)} req/s (${(r.rps / bare.rps).toFixed(2)}x), ${cost(r, bare)}`;
      });
      return (
        `${label}: ${fmt(bare.rps)} req/s bare, ${fmt(paid.rps)} req/s with l402 ` +
        `(${share.toFixed(2)}x [goal ≥ ${GOAL.toFixed(2)}x: ${share >= GOAL ? 'met' : 'MISSED'}]); ` +
        `${counting ? 'instructions' : 'CPU'} per request ${counting ? fmt(bare.instructions) : bare.cpu.toFixed(1)} bare, ` +
        `${cost(paid, bare)} with l402; p99 ${bare.p99.toFixed(2)} → ${paid.p99.toFixed(2)} ms; ${others.join('; ')}`
      );
    });
    const seconds = (performance.now() - started) / 1000;
    return {
      lines: [
        `setup: GET /hello answering "hello world" (11 bytes), bare and behind the middleware (defaults), every ` +
          `request with a valid L402 credential; ${CONNECTIONS} keep-alive connections from ` +
          `${useWrk ? 'wrk (1 thread)' : 'autocannon in the bench process (wrk not installed)'}, pipelining 1; ` +
          `${pinned ? `the server pinned to core 1 and the load generator to core 0 (${cpus().length} cores)` : `server and load generator sharing ${cpus().length} cores (taskset unavailable)`}; ` +
          `${ROUNDS} rounds, each starting every case's server afresh, ${WARMUP_S} s warm-up and ${ROUND_S} s measured; ` +
          `each figure the median round's; ${counting ? 'instructions counted by perf (user space)' : 'CPU time from the server'}`,
        `"browser": the same request with an Origin header, so the middleware adds Aperture's four CORS ` +
          `header lines; "CORS by hand": the bare node:http app setting those four lines itself` +
          `; "no-op middleware": the bare Hono app with \`async (c, next) => { await next() }\` before its ` +
          `handler (what any Hono middleware costs: Hono calls a lone handler directly, and composes a chain ` +
          `of promises for more); "wrapped": paywall.protect(route, handler), one Hono handler instead of a ` +
          `middleware and a handler`,
        ...lines,
        `in this process, the check alone (synchronous): ` +
          `${(1e6 / alone['guard, cached credential'] - 1e6 / alone['baseline: a request view with a new header string']).toFixed(2)} µs ` +
          `a request, over making a request view with a new ${authorization.length}-character header string ` +
          `(${(1e6 / alone['baseline: a request view with a new header string']).toFixed(2)} µs)`,
        ...othersLine(before, after, seconds),
      ],
      results,
    };
  } finally {
    await stopServers();
    process.off('exit', killLeftovers);
    rmSync(home, { recursive: true, force: true });
  }
}
