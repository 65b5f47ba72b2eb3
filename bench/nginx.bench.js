/**
 * The gateway beside nginx: the same upstream reached directly, through nginx `proxy_pass` (keep-alive
 * to the upstream, one worker, no access log), through the bare Node proxy and through the gateway with
 * a cached L402 credential, at `BENCH_CONNECTIONS` (50) connections, in interleaved rounds like the
 * gateway bench. The baseline is nginx. Runs only where `/usr/sbin/nginx` exists (`apt-get install
 * nginx-light`); CI does not install it.
 *
 * nginx's CPU per request is read from /proc for its master and worker (10 ms ticks: coarse, so read it
 * over the median of the rounds only as a rough figure).
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Challenge, Credential, Macaroon } from 'l402';
import { connect } from 'l402/lightning';
import { fmt } from './lib.js';
import { killLeftovers, rounds, startBackends, startServer, stopServers } from './load.js';

export const title = 'Gateway vs nginx proxy_pass (HTTP/1.1 over loopback, keep-alive)';

const NGINX = '/usr/sbin/nginx';
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
const ROUNDS = Number(process.env.BENCH_GATEWAY_ROUNDS ?? 5);
const PATH = '/paid/data';

export async function run() {
  if (!existsSync(NGINX)) return { lines: [`skipped: no ${NGINX} (apt-get install nginx-light to compare)`] };
  const home = mkdtempSync(join(tmpdir(), 'l402-bench-nginx-'));
  const wallets = [];
  process.on('exit', killLeftovers);
  try {
    const { upstream, devnet, target } = await startBackends(home);
    const [nginx, bare, gateway] = await Promise.all([
      startServer('nginx.js', { upstream: target, binary: NGINX }),
      startServer('bare-proxy.js', { upstream: target }),
      startServer('gateway.js', { upstream: target, wallet: devnet.merchant, home }, { stderr: 'ignore' }),
    ]);
    const gatewayUrl = `http://127.0.0.1:${gateway.port}${PATH}`;
    const payer = await connect(devnet.payer);
    wallets.push(payer);
    const unpaid = await fetch(gatewayUrl);
    await unpaid.text();
    const offer = Challenge.l402(Challenge.parse(unpaid.headers.get('www-authenticate')));
    const { preimage } = await payer.pay(offer.invoice, { maxFeeMsat: 1_000n });
    const headers = {
      authorization: Credential.format({ macaroon: Macaroon.decode(offer.macaroon), preimage }),
    };
    const cases = {
      direct: { url: `http://${target}${PATH}`, server: upstream.child },
      nginx: { url: `http://127.0.0.1:${nginx.port}${PATH}`, server: nginx.child },
      bare: { url: `http://127.0.0.1:${bare.port}${PATH}`, server: bare.child },
      gateway: { url: gatewayUrl, server: gateway.child },
    };
    const r = await rounds(cases, {
      rounds: ROUNDS,
      warmupS: 1,
      roundS: 1,
      connections: CONNECTIONS,
      headers,
    });
    const ms = (n) => `${n.toFixed(2)} ms`;
    const line = (label, x) =>
      `${label}: ${fmt(x.rps)} req/s (${(x.rps / r.nginx.rps).toFixed(2)}x nginx), p50 ${ms(x.p50)}, p99 ${ms(x.p99)} ` +
      `(${(x.p99 - r.nginx.p99 >= 0 ? '+' : '−') + Math.abs(x.p99 - r.nginx.p99).toFixed(2)} ms vs nginx), ` +
      `${fmt(x.cpu)} µs CPU/req (${(x.cpu / r.nginx.cpu).toFixed(2)}x nginx's)`;
    return {
      lines: [
        `setup: ${CONNECTIONS} keep-alive connections from autocannon in the bench process; upstream, nginx ` +
          `(1 worker), bare Node proxy, gateway (SQLite, info log) and devnet each a process of their own on ` +
          `${cpus().length} cores; ${ROUNDS} interleaved rounds of 1 s after a 1 s warm-up, medians`,
        `direct to the upstream: ${fmt(r.direct.rps)} req/s, p50 ${ms(r.direct.p50)}, p99 ${ms(r.direct.p99)}`,
        `baseline: nginx proxy_pass: ${fmt(r.nginx.rps)} req/s (${(r.nginx.rps / r.direct.rps).toFixed(2)}x direct), ` +
          `p50 ${ms(r.nginx.p50)}, p99 ${ms(r.nginx.p99)}, ${fmt(r.nginx.cpu)} µs CPU/req`,
        line('bare Node proxy', r.bare),
        line('gateway, cached L402 credential', r.gateway),
      ],
      results: r,
    };
  } finally {
    await Promise.all(wallets.map((w) => w.close()));
    await stopServers();
    process.off('exit', killLeftovers);
    rmSync(home, { recursive: true, force: true });
  }
}
