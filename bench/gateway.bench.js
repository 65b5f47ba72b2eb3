/**
 * The gateway under load, on loopback with keep-alive: requests per second and p50/p99 latency with a
 * valid cached credential, beside the same upstream reached directly and through a bare Node reverse
 * proxy with no auth; then 402 challenges per second beside raw invoice creations through the same LND
 * facade. Everything is measured in this run; nothing is asserted (the goals are printed as met or
 * missed).
 *
 * Each server is a child process of its own (bench/servers/): the upstream, the bare proxy, the gateway
 * (from packages/gateway/dist) and the devnet, so none shares an event loop with another or with the
 * load generator (autocannon, in this process). They do share the machine's cores: on a small machine
 * the load generator, a proxy and the upstream compete for them, which caps every figure (the direct
 * one included) below what a dedicated machine would show. The cases run in interleaved rounds so a
 * drift in the machine's speed touches every case alike, and each line also gives the CPU time per
 * request of the process under test (its own `process.cpuUsage()`, asked over IPC around each round),
 * which a busy or throttled machine disturbs far less than requests per second. The last line says how
 * much CPU processes outside the bench took meanwhile (Linux only).
 *
 * Latency: autocannon's own percentiles are whole milliseconds, too coarse for the sub-millisecond
 * differences in question, so each response's time (which autocannon measures with `hrtime`) is
 * recorded here in microseconds. Under load, latency is mostly queueing (connections ÷ throughput), so
 * the unloaded case (one connection) is the one that shows what a proxy adds to a single request.
 *
 * `BENCH_CPU_PROF=<dir>` runs the gateway child with `--cpu-prof`, writing its profile into `<dir>`.
 */
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHistogram } from 'node:perf_hooks';
import { Challenge, Credential, Macaroon } from 'l402';
import { connect } from 'l402/lightning';
import { fmt } from './lib.js';
import {
  cpuTicks,
  cpuTime,
  killLeftovers,
  load,
  median,
  othersLine,
  rounds,
  startBackends,
  startServer,
  stopServers,
} from './load.js';

export const title = 'Gateway (HTTP/1.1 over loopback, keep-alive)';

const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
const CHALLENGE_CONNECTIONS = Number(process.env.BENCH_CHALLENGE_CONNECTIONS ?? 8);
const ROUNDS = Number(process.env.BENCH_GATEWAY_ROUNDS ?? 5);
/** Seconds of each warm-up and each round (autocannon runs whole seconds). */
const WARMUP_S = 1;
const ROUND_S = 1;
const PATH = '/paid/data';

/** `fn` from `inFlight` loops at once for `seconds`; completions per second. */
async function concurrently(inFlight, seconds, fn) {
  let done = 0;
  const start = performance.now();
  const end = start + seconds * 1000;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (performance.now() < end) {
        await fn();
        done++;
      }
    }),
  );
  return done / ((performance.now() - start) / 1000);
}

// ——— figures ———

const ms = (n) => `${n.toFixed(2)} ms`;
const added = (n) => `${n >= 0 ? '+' : '−'}${Math.abs(n).toFixed(2)} ms`;

/**
 * The three proxy cases as lines: direct is the bare proxy's baseline, the bare proxy the gateway's.
 * CPU is per request, of the process the load generator talks to (the upstream's own is left out).
 */
function proxyLines(label, { direct, bare, gateway }, withGoals) {
  const verdict = (met) => (met ? 'met' : 'MISSED');
  const share = gateway.rps / bare.rps;
  const p99 = gateway.p99 - bare.p99;
  const goals = withGoals
    ? [` [goal ≥ 0.85x: ${verdict(share >= 0.85)}]`, ` [goal < 1 ms added: ${verdict(p99 < 1)}]`]
    : ['', ''];
  const cpu = (n) => `${fmt(n)} µs CPU/req`;
  return [
    `${label} baseline: direct to the upstream: ${fmt(direct.rps)} req/s, p50 ${ms(direct.p50)}, ` +
      `p99 ${ms(direct.p99)}, upstream ${cpu(direct.cpu)}`,
    `${label} bare Node proxy (node:http + undici Pool, no auth): ${fmt(bare.rps)} req/s ` +
      `(${(bare.rps / direct.rps).toFixed(2)}x direct), p50 ${ms(bare.p50)} (${added(bare.p50 - direct.p50)}), ` +
      `p99 ${ms(bare.p99)} (${added(bare.p99 - direct.p99)}) vs direct, proxy ${cpu(bare.cpu)}`,
    `${label} gateway, cached L402 credential: ${fmt(gateway.rps)} req/s ` +
      `(${share.toFixed(2)}x the bare proxy${goals[0]}; ${(gateway.rps / direct.rps).toFixed(2)}x direct), ` +
      `p50 ${ms(gateway.p50)} (${added(gateway.p50 - bare.p50)} vs bare, ${added(gateway.p50 - direct.p50)} vs direct), ` +
      `p99 ${ms(gateway.p99)} (${added(p99)} vs bare${goals[1]}, ${added(gateway.p99 - direct.p99)} vs direct), ` +
      `gateway ${cpu(gateway.cpu)} (${(gateway.cpu / bare.cpu).toFixed(2)}x the bare proxy's)`,
  ];
}

export async function run() {
  const home = mkdtempSync(join(tmpdir(), 'l402-bench-gateway-'));
  const gatewayLog = join(home, 'gateway.log');
  const profile = process.env.BENCH_CPU_PROF;
  const wallets = [];
  process.on('exit', killLeftovers);
  try {
    const { upstream, devnet, target } = await startBackends(home);
    const logFd = openSync(gatewayLog, 'a');
    const [bare, gateway] = await Promise.all([
      startServer('bare-proxy.js', { upstream: target }),
      startServer(
        'gateway.js',
        { upstream: target, wallet: devnet.merchant, home },
        { stderr: logFd, execArgv: profile ? ['--cpu-prof', '--cpu-prof-dir', profile] : [] },
      ),
    ]);
    closeSync(logFd);
    const gatewayUrl = `http://127.0.0.1:${gateway.port}${PATH}`;

    // A valid credential, bought once with the devnet payer's wallet and cached by the gateway from
    // its first use on.
    const merchant = await connect(devnet.merchant);
    const payer = await connect(devnet.payer);
    wallets.push(merchant, payer);
    const unpaid = await fetch(gatewayUrl);
    await unpaid.text();
    if (unpaid.status !== 402) throw new Error(`the gateway answered ${unpaid.status}, not 402`);
    const offer = Challenge.l402(Challenge.parse(unpaid.headers.get('www-authenticate')));
    const { preimage } = await payer.pay(offer.invoice, { maxFeeMsat: 1_000n });
    const authorization = Credential.format({ macaroon: Macaroon.decode(offer.macaroon), preimage });
    const paid = await fetch(gatewayUrl, { headers: { authorization } });
    await paid.text();
    if (paid.status !== 200) throw new Error(`the gateway answered ${paid.status} to the paid credential`);

    // The same request, credential included, to all three: the bare proxy and the upstream ignore it.
    const cases = {
      direct: { url: `http://${target}${PATH}`, server: upstream.child },
      bare: { url: `http://127.0.0.1:${bare.port}${PATH}`, server: bare.child },
      gateway: { url: gatewayUrl, server: gateway.child },
    };
    const headers = { authorization };
    const pids = [process.pid, upstream.child.pid, bare.child.pid, gateway.child.pid, devnet.child.pid];
    const measuring = performance.now();
    const before = cpuTicks(pids);
    const timing = { rounds: ROUNDS, warmupS: WARMUP_S, roundS: ROUND_S };
    const loaded = await rounds(cases, { ...timing, connections: CONNECTIONS, headers });
    const unloaded = await rounds(cases, { ...timing, connections: 1, headers, warm: true });

    // Challenges: every 402 is an invoice from the merchant's LND facade, a minted macaroon and a
    // durable (fsynced) SQLite insert; the baseline is the invoice alone, as many in flight.
    const invoice = () => merchant.createInvoice({ amountMsat: 1_000n });
    await concurrently(CHALLENGE_CONNECTIONS, WARMUP_S / 2, invoice);
    await load(gatewayUrl, { connections: CHALLENGE_CONNECTIONS, seconds: WARMUP_S, status: 402 });
    const invoices = [];
    const challenges = [];
    const challengeCpu = [];
    const challengeLatency = createHistogram();
    for (let r = 0; r < ROUNDS; r++) {
      invoices.push(await concurrently(CHALLENGE_CONNECTIONS, ROUND_S, invoice));
      const cpuBefore = await cpuTime(gateway.child);
      const round = await load(gatewayUrl, {
        connections: CHALLENGE_CONNECTIONS,
        seconds: ROUND_S,
        status: 402,
      });
      challengeCpu.push(((await cpuTime(gateway.child)) - cpuBefore) / round.count);
      challenges.push(round.rps);
      challengeLatency.add(round.latency);
    }
    const after = cpuTicks(pids);
    const measured = (performance.now() - measuring) / 1000;
    const invoiceRate = median(invoices);
    const challengeRate = median(challenges);

    return {
      lines: [
        `setup: load from autocannon in the bench process (HTTP/1.1 keep-alive, pipelining 1); the upstream ` +
          `(512-byte JSON), the bare proxy, the gateway (SQLite store, info-level request log to a file) and the ` +
          `devnet each a node process of its own, all sharing the machine's ${cpus().length} cores with the load ` +
          `generator; after a ${WARMUP_S} s warm-up, ${ROUNDS} interleaved rounds of ${ROUND_S} s per case, ` +
          `each figure the median round's (challenge latency: over all rounds' responses)`,
        ...proxyLines(`[${CONNECTIONS} connections]`, loaded, true),
        ...proxyLines('[1 connection, unloaded]', unloaded, false),
        `baseline: invoice creation through the devnet merchant's LND facade (l402 Lnd backend, ` +
          `${CHALLENGE_CONNECTIONS} in flight): ${fmt(invoiceRate)} ops/s`,
        `402 challenges through the gateway (${CHALLENGE_CONNECTIONS} connections; invoice + mint + fsynced ` +
          `SQLite insert): ${fmt(challengeRate)} /s (${(invoiceRate / challengeRate).toFixed(2)}x the baseline's ` +
          `time), p50 ${ms(challengeLatency.percentile(50) / 1000)}, p99 ${ms(challengeLatency.percentile(99) / 1000)}, ` +
          `gateway CPU ${fmt(median(challengeCpu))} µs per 402`,
        ...othersLine(before, after, measured),
      ],
      results: { loaded, unloaded, invoiceRate, challengeRate },
    };
  } catch (error) {
    let log = '';
    try {
      log = readFileSync(gatewayLog, 'utf8').trim().split('\n').slice(-20).join('\n');
    } catch {}
    if (log !== '') error.message += `\nlast lines of the gateway's log:\n${log}`;
    throw error;
  } finally {
    await Promise.all(wallets.map((w) => w.close()));
    await stopServers();
    process.off('exit', killLeftovers);
    rmSync(home, { recursive: true, force: true });
  }
}
