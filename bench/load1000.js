/**
 * 1,000 concurrent keep-alive connections through the gateway, from this process (autocannon), for
 * 60 s: the gateway (packages/gateway/dist), its upstream and the devnet each a child process of their
 * own (bench/servers/), every request carrying a paid L402 credential. Prints requests/s, latency,
 * errors, and the gateway's resident memory sampled every second (after warm-up, peak, end, and the
 * drift between the first and last thirds of the run), beside the same 1,000 connections through the
 * bare Node proxy (the baseline: what holding that many connections costs any Node proxy).
 *
 * ```sh
 * npx tsc -b && node bench/load1000.js                  # 60 s, 1,000 connections
 * node bench/load1000.js --seconds 10 --json            # what the CI test runs; one JSON line
 * node bench/load1000.js --connections 500 --no-baseline
 * ```
 *
 * Exits 1 when any request failed (an error, a timeout or an answer other than 200). Nothing about
 * time is judged: the figures are printed.
 *
 * @example
 * import { measure } from './load1000.js';
 * const { gateway, bare } = await measure({ seconds: 10, connections: 1000 });
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { Challenge, Credential, Macaroon } from 'l402';
import { connect } from 'l402/lightning';
import { fmt, machine } from './lib.js';
import { killLeftovers, startBackends, startServer, stopServers } from './load.js';

const PATH = '/paid/data';

/** Resident set size of `pid` in MiB (Linux /proc; undefined elsewhere). */
export function rssMiB(pid) {
  try {
    return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024;
  } catch {
    return undefined;
  }
}

/** One autocannon run at `url` with RSS of `pid` sampled every second; every figure of it. */
async function hold(url, pid, { connections, seconds, headers }) {
  const samples = [];
  const before = rssMiB(pid);
  const timer = setInterval(() => samples.push(rssMiB(pid)), 1_000);
  let non200 = 0;
  const run = autocannon({ url, connections, pipelining: 1, duration: seconds, headers, timeout: 30 });
  run.on('response', (_client, status) => {
    if (status !== 200) non200++;
  });
  const result = await run;
  clearInterval(timer);
  const end = rssMiB(pid);
  const known = samples.filter((s) => s !== undefined);
  const third = Math.max(1, Math.floor(known.length / 3));
  const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
  return {
    requests: result.requests.total,
    rps: result.requests.average,
    p50ms: result.latency.p50,
    p99ms: result.latency.p99,
    errors: result.errors,
    timeouts: result.timeouts,
    non200,
    rss: {
      before,
      // After the first samples, once every connection is open.
      warm: known[Math.min(2, known.length - 1)],
      peak: known.length > 0 ? Math.max(...known) : undefined,
      end,
      // Mean of the last third minus mean of the first third: growth while the load stays the same.
      drift: known.length >= 3 ? mean(known.slice(-third)) - mean(known.slice(0, third)) : undefined,
    },
  };
}

/**
 * Starts the children, buys a token, holds `connections` for `seconds` through the gateway (and, with
 * `baseline`, through the bare proxy), stops everything.
 */
export async function measure({ seconds = 60, connections = 1_000, baseline = true } = {}) {
  const home = mkdtempSync(join(tmpdir(), 'l402-load1000-'));
  const wallets = [];
  process.on('exit', killLeftovers);
  try {
    const { devnet, target } = await startBackends(home);
    const [gateway, bare] = await Promise.all([
      startServer('gateway.js', { upstream: target, wallet: devnet.merchant, home }, { stderr: 'ignore' }),
      baseline ? startServer('bare-proxy.js', { upstream: target }) : undefined,
    ]);
    const url = `http://127.0.0.1:${gateway.port}${PATH}`;
    const payer = await connect(devnet.payer);
    wallets.push(payer);
    const unpaid = await fetch(url);
    await unpaid.text();
    if (unpaid.status !== 402) throw new Error(`the gateway answered ${unpaid.status}, not 402`);
    const offer = Challenge.l402(Challenge.parse(unpaid.headers.get('www-authenticate')));
    const { preimage } = await payer.pay(offer.invoice, { maxFeeMsat: 1_000n });
    const headers = {
      authorization: Credential.format({ macaroon: Macaroon.decode(offer.macaroon), preimage }),
    };
    const result = { connections, seconds };
    if (bare !== undefined) {
      result.bare = await hold(`http://127.0.0.1:${bare.port}${PATH}`, bare.child.pid, {
        connections,
        seconds,
        headers,
      });
    }
    result.gateway = await hold(url, gateway.child.pid, { connections, seconds, headers });
    return result;
  } finally {
    await Promise.all(wallets.map((w) => w.close()));
    await stopServers();
    process.off('exit', killLeftovers);
    rmSync(home, { recursive: true, force: true });
  }
}

const mib = (n) => (n === undefined ? 'n/a' : `${n.toFixed(1)} MiB`);

/** Human lines for a {@link measure} result. */
export function lines(result) {
  const one = (label, r) =>
    `${label}: ${fmt(r.rps)} req/s over ${fmt(r.requests)} requests, p50 ${r.p50ms} ms, p99 ${r.p99ms} ms; ` +
    `${r.errors} errors, ${r.timeouts} timeouts, ${r.non200} answers other than 200; RSS ${mib(r.rss.before)} idle, ` +
    `${mib(r.rss.warm)} with every connection open, peak ${mib(r.rss.peak)}, end ${mib(r.rss.end)}, drift ${
      r.rss.drift === undefined
        ? 'n/a'
        : `${r.rss.drift >= 0 ? '+' : '−'}${Math.abs(r.rss.drift).toFixed(1)} MiB`
    } (last third vs first third)`;
  const out = [
    `setup: ${result.connections} keep-alive connections (autocannon, pipelining 1) for ${result.seconds} s, ` +
      `every request with a paid L402 credential; gateway (SQLite, info log), bare proxy, upstream and devnet ` +
      `each a node process of their own on ${cpus().length} cores`,
  ];
  if (result.bare) out.push(one('baseline: bare Node proxy', result.bare));
  out.push(one('gateway', result.gateway));
  if (result.bare) {
    const g = result.gateway;
    const b = result.bare;
    out.push(
      `gateway vs bare proxy at ${result.connections} connections: ${(g.rps / b.rps).toFixed(2)}x the requests/s, ` +
        `${(g.rss.peak / b.rss.peak).toFixed(2)}x the peak RSS (${mib(g.rss.peak - g.rss.before)} vs ` +
        `${mib(b.rss.peak - b.rss.before)} above idle)`,
    );
  }
  return out;
}

/** Whether every request of every run got its 200. */
export const clean = (result) =>
  [result.gateway, result.bare].every(
    (r) => r === undefined || (r.errors === 0 && r.timeouts === 0 && r.non200 === 0),
  );

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '60' },
      connections: { type: 'string', default: '1000' },
      json: { type: 'boolean', default: false },
      'no-baseline': { type: 'boolean', default: false },
    },
  });
  const result = await measure({
    seconds: Number(values.seconds),
    connections: Number(values.connections),
    baseline: !values['no-baseline'],
  });
  if (values.json) console.log(JSON.stringify(result));
  else {
    console.log(`machine: ${machine()}`);
    for (const line of lines(result)) console.log(line);
  }
  process.exitCode = clean(result) ? 0 : 1;
}
