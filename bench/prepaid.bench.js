/**
 * What prepaid credit (`prepaid.credit`) costs per request: each request it admits first debits its
 * price from the token's balance with one durable store write (SQLite, WAL, synchronous=FULL: an fsync),
 * where a plain paid route only checks the token (cached) and forwards. Both routes on one gateway, the
 * same upstream, the same load; the plain paid route is the baseline.
 */

import { closeSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Challenge, Credential, Macaroon } from 'l402';
import { connect } from 'l402/lightning';
import { fmt } from './lib.js';
import { cpuTime, killLeftovers, load, median, startBackends, startServer, stopServers } from './load.js';

export const title = 'Prepaid credit (gateway, HTTP/1.1 over loopback, keep-alive)';

const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
const ROUNDS = Number(process.env.BENCH_GATEWAY_ROUNDS ?? 5);
const WARMUP_S = 1;
const ROUND_S = 1;
/** Enough credit for every request of the run at 1 sat each, and well within a devnet channel. */
const CREDIT = 2_000_000;

const ms = (n) => `${n.toFixed(2)} ms`;

export async function run() {
  const home = mkdtempSync(join(tmpdir(), 'l402-bench-prepaid-'));
  const wallets = [];
  process.on('exit', killLeftovers);
  try {
    const { devnet, target } = await startBackends(home);
    const services = `
  - name: credit
    pathregexp: '^/prepaid/'
    address: "${target}"
    protocol: http
    price: 1
    prepaid:
      credit: ${CREDIT}
`;
    // The request log goes to a file, as in the gateway bench.
    const logFd = openSync(join(home, 'gateway.log'), 'a');
    const gateway = await startServer(
      'gateway.js',
      { upstream: target, wallet: devnet.merchant, home, services },
      { stderr: logFd },
    );
    closeSync(logFd);
    const payer = await connect(devnet.payer);
    wallets.push(payer);

    /** Buys a token for `url` with the devnet payer's wallet; its `Authorization` value. */
    const buy = async (url) => {
      const unpaid = await fetch(url);
      await unpaid.text();
      if (unpaid.status !== 402) throw new Error(`${url}: the gateway answered ${unpaid.status}, not 402`);
      const offer = Challenge.l402(Challenge.parse(unpaid.headers.get('www-authenticate')));
      const { preimage } = await payer.pay(offer.invoice, { maxFeeMsat: 100_000n });
      return Credential.format({ macaroon: Macaroon.decode(offer.macaroon), preimage });
    };
    const base = `http://127.0.0.1:${gateway.port}`;
    const cases = {
      paid: { url: `${base}/paid/data`, headers: { authorization: await buy(`${base}/paid/data`) } },
      prepaid: { url: `${base}/prepaid/data`, headers: { authorization: await buy(`${base}/prepaid/data`) } },
    };

    for (const c of Object.values(cases)) {
      await load(c.url, { connections: CONNECTIONS, seconds: WARMUP_S, headers: c.headers });
    }
    const samples = { paid: { rps: [], cpu: [], p99: [] }, prepaid: { rps: [], cpu: [], p99: [] } };
    for (let r = 0; r < ROUNDS; r++) {
      for (const [name, c] of Object.entries(cases)) {
        const before = await cpuTime(gateway.child);
        const round = await load(c.url, { connections: CONNECTIONS, seconds: ROUND_S, headers: c.headers });
        samples[name].cpu.push(((await cpuTime(gateway.child)) - before) / round.count);
        samples[name].rps.push(round.rps);
        samples[name].p99.push(round.latency.percentile(99) / 1000);
      }
    }
    const figure = (name) => ({
      rps: median(samples[name].rps),
      cpu: median(samples[name].cpu),
      p99: median(samples[name].p99),
    });
    const paid = figure('paid');
    const prepaid = figure('prepaid');
    return {
      lines: [
        `setup: one gateway (SQLite store, WAL, synchronous=FULL) with a paid route and a prepaid route in ` +
          `front of the same upstream, autocannon in the bench process (${CONNECTIONS} connections, HTTP/1.1 ` +
          `keep-alive), all sharing the machine's ${cpus().length} cores; after a ${WARMUP_S} s warm-up, ` +
          `${ROUNDS} interleaved rounds of ${ROUND_S} s per route, each figure the median round's`,
        `baseline: paid route, cached L402 credential: ${fmt(paid.rps)} req/s, p99 ${ms(paid.p99)}, ` +
          `gateway ${fmt(paid.cpu)} µs CPU/req`,
        `prepaid route (cached credential + a debit per request, group-committed: one fsync per event-loop turn): ${fmt(prepaid.rps)} req/s ` +
          `(${(prepaid.rps / paid.rps).toFixed(2)}x the baseline), p99 ${ms(prepaid.p99)}, gateway ` +
          `${fmt(prepaid.cpu)} µs CPU/req (${(prepaid.cpu / paid.cpu).toFixed(2)}x the baseline's)`,
      ],
      results: { paid, prepaid },
    };
  } finally {
    await Promise.all(wallets.map((w) => w.close()));
    await stopServers();
    process.off('exit', killLeftovers);
    rmSync(home, { recursive: true, force: true });
  }
}
