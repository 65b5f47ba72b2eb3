/**
 * A soak: the gateway (packages/gateway/dist, in a child process with its upstream and the devnet, as
 * bench/servers/ runs them) under a steady mixed load for 10 minutes (`--minutes`), reporting every
 * `--every` seconds its resident memory and the latency of that window, then the drift: RSS and p50/p99
 * of the last window against the first one after warm-up. Not part of CI.
 *
 * The load: `--connections` (50) keep-alive connections with one paid credential (the verified-token
 * cache), plus a trickle of unpaid requests (each a 402 with a fresh invoice and a durable insert) and
 * of new purchases (402 → pay → first use), so the store, the caches and the Lightning backend all
 * keep working through the run. Every answer other than the expected one is counted as an error.
 *
 * ```sh
 * npx tsc -b && node scripts/soak.js                 # 10 minutes
 * node scripts/soak.js --minutes 1 --every 10        # a quick look
 * ```
 *
 * Exits 1 when any request failed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { Challenge, Credential, Macaroon } from 'l402';
import { connect } from 'l402/lightning';
import { machine } from '../bench/lib.js';
import { killLeftovers, startServer, stopServers } from '../bench/load.js';
import { rssMiB } from '../bench/load1000.js';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    every: { type: 'string', default: '30' },
    connections: { type: 'string', default: '50' },
  },
});
const MINUTES = Number(values.minutes);
const EVERY_S = Number(values.every);
const CONNECTIONS = Number(values.connections);
const PATH = '/paid/data';

const home = mkdtempSync(join(tmpdir(), 'l402-soak-'));
process.on('exit', killLeftovers);
const wallets = [];
let failures = 0;
try {
  console.log(`machine: ${machine()}`);
  const [upstream, devnet] = await Promise.all([
    startServer('upstream.js', {}),
    startServer('devnet.js', { home: join(home, 'devnet') }),
  ]);
  const gateway = await startServer(
    'gateway.js',
    { upstream: `127.0.0.1:${upstream.port}`, wallet: devnet.merchant, home },
    { stderr: 'ignore' },
  );
  const url = `http://127.0.0.1:${gateway.port}${PATH}`;
  const payer = await connect(devnet.payer);
  wallets.push(payer);

  /** 402 → pay → first use; returns the Authorization value. */
  const purchase = async () => {
    const unpaid = await fetch(url);
    await unpaid.arrayBuffer();
    if (unpaid.status !== 402) throw new Error(`unpaid request answered ${unpaid.status}`);
    const offer = Challenge.l402(Challenge.parse(unpaid.headers.get('www-authenticate')));
    const { preimage } = await payer.pay(offer.invoice, { maxFeeMsat: 1_000n });
    const authorization = Credential.format({ macaroon: Macaroon.decode(offer.macaroon), preimage });
    const first = await fetch(url, { headers: { authorization } });
    await first.arrayBuffer();
    if (first.status !== 200) throw new Error(`a new token's first use answered ${first.status}`);
    return authorization;
  };
  const authorization = await purchase();

  // The trickle: a purchase every 2 s, an unpaid request every 200 ms.
  let stopping = false;
  let purchases = 0;
  let challenges = 0;
  const trickles = [
    (async () => {
      while (!stopping) {
        try {
          await purchase();
          purchases++;
        } catch (error) {
          failures++;
          console.log(`purchase failed: ${error.message}`);
        }
        await new Promise((r) => setTimeout(r, 2_000));
      }
    })(),
    (async () => {
      while (!stopping) {
        const reply = await fetch(url).catch(() => undefined);
        await reply?.arrayBuffer();
        if (reply?.status === 402) challenges++;
        else failures++;
        await new Promise((r) => setTimeout(r, 200));
      }
    })(),
  ];

  console.log(
    `soak: ${MINUTES} min, ${CONNECTIONS} keep-alive connections with a paid credential + a purchase every 2 s ` +
      `+ an unpaid request every 200 ms; a line every ${EVERY_S} s`,
  );
  const windows = [];
  let elapsed = 0;
  const end = Date.now() + MINUTES * 60_000;
  while (Date.now() < end) {
    const seconds = Math.max(1, Math.min(EVERY_S, Math.round((end - Date.now()) / 1000)));
    let other = 0;
    const run = autocannon({ url, connections: CONNECTIONS, duration: seconds, headers: { authorization } });
    run.on('response', (_c, status) => {
      if (status !== 200) other++;
    });
    const r = await run;
    failures += other + r.errors + r.timeouts;
    elapsed += seconds;
    const w = {
      at: elapsed,
      rps: r.requests.average,
      p50: r.latency.p50,
      p99: r.latency.p99,
      rss: rssMiB(gateway.child.pid),
      errors: other + r.errors + r.timeouts,
    };
    windows.push(w);
    console.log(
      `t=${String(w.at).padStart(4)} s  ${Math.round(w.rps)} req/s  p50 ${w.p50} ms  p99 ${w.p99} ms  ` +
        `RSS ${w.rss?.toFixed(1)} MiB  errors ${w.errors}  (purchases ${purchases}, 402s ${challenges})`,
    );
  }
  stopping = true;
  await Promise.all(trickles);
  // Drift: the last window against the first after warm-up (the second, when there are three or more).
  const first = windows[windows.length >= 3 ? 1 : 0];
  const last = windows[windows.length - 1];
  const ratio = (a, b) => (b > 0 ? `${(a / b).toFixed(2)}x` : 'n/a');
  console.log(
    `drift (t=${last.at} s vs t=${first.at} s): RSS ${last.rss.toFixed(1)} vs ${first.rss.toFixed(1)} MiB ` +
      `(${last.rss - first.rss >= 0 ? '+' : '−'}${Math.abs(last.rss - first.rss).toFixed(1)} MiB), ` +
      `p50 ${ratio(last.p50, first.p50)}, p99 ${ratio(last.p99, first.p99)}, req/s ${ratio(last.rps, first.rps)}; ` +
      `${purchases} purchases, ${challenges} challenges, ${failures} failed requests`,
  );
} finally {
  await Promise.all(wallets.map((w) => w.close()));
  await stopServers();
  process.off('exit', killLeftovers);
  rmSync(home, { recursive: true, force: true });
}
process.exitCode = failures > 0 ? 1 : 0;
