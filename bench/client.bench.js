/**
 * The paying fetch's overhead for a request that reuses a cached token: `createFetch` (memory store, and
 * the file store under a temporary `$L402_HOME`) against plain `fetch` sending the same
 * `Authorization` header by hand, to the same paid route of the node:http middleware on loopback, in
 * this process, sequential requests, rounds interleaved. The server does the same work in every case
 * (a verified-credential cache hit), so the difference is the client's: store lookup, header, bookkeeping.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import * as http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Devnet } from '@l402/devnet';
import { createFetch, Ledger, TokenStore } from 'l402/client';
import { FileLedger, FileTokenStore } from 'l402/client/node';
import { connect } from 'l402/lightning';
import * as NodeL402 from 'l402/node';
import { fmt, measureAsync } from './lib.js';

export const title = 'Client: paying fetch with a cached token vs plain fetch';

export async function run() {
  const home = mkdtempSync(join(tmpdir(), 'l402-bench-client-'));
  const devnet = await Devnet.start({ home, publish: false });
  const payer = await connect(devnet.document.nodes.payer.uris.lnd);
  const paywall = NodeL402.l402({
    backend: devnet.document.nodes.merchant.uris.lnd,
    masterKey: 'be'.repeat(32),
  });
  const server = http
    .createServer(paywall.protect({ service: 'bench', price: 1 }, (_req, res) => res.end('ok')))
    .listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const url = `http://127.0.0.1:${server.address().port}/data`;
  try {
    const memory = createFetch({ wallet: payer, store: TokenStore.memory(), ledger: Ledger.memory() });
    const files = createFetch({
      wallet: payer,
      store: FileTokenStore.open(home),
      ledger: FileLedger.open(home),
    });
    await (await memory(url)).text();
    await (await files(url)).text();
    // The same token, sent by hand: what a client that already has it costs at least.
    const [token] = await memory.store.list();
    const { Credential, Macaroon } = await import('l402');
    const authorization = Credential.format({
      macaroon: Macaroon.decode(token.macaroon),
      preimage: Uint8Array.from(Buffer.from(token.preimage, 'hex')),
    });
    const drain = async (res) => {
      if (res.status !== 200) throw new Error(`unexpected ${res.status}`);
      await res.text();
    };
    const results = await measureAsync(
      {
        'baseline: fetch with the Authorization header by hand': async () =>
          drain(await fetch(url, { headers: { authorization } })),
        'createFetch, memory store': async () => drain(await memory(url)),
        'createFetch, file store ($L402_HOME)': async () => drain(await files(url)),
      },
      { ms: Number(process.env.BENCH_CLIENT_MS ?? 3000), rounds: Number(process.env.BENCH_ROUNDS ?? 5) },
    );
    const [[baseName, base]] = Object.entries(results);
    const lines = Object.entries(results).map(([name, ops]) =>
      name === baseName
        ? `${name}: ${fmt(ops)} req/s`
        : `${name}: ${fmt(ops)} req/s (${(base / ops).toFixed(2)}x the baseline's time per request, +${((1 / ops - 1 / base) * 1e6).toFixed(0)} µs)`,
    );
    const payments = (await memory.ledger.payments()).length + (await files.ledger.payments()).length;
    lines.push(`payments made while measuring: ${payments - 2} (2 tokens bought before)`);
    return { lines, results };
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    await paywall.close();
    await payer.close();
    await devnet.close();
    rmSync(home, { recursive: true, force: true });
  }
}
