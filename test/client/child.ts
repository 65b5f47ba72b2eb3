/**
 * A client process for the cross-process tests of test/client.test.ts (bundled with esbuild from the
 * sources, run with node). Env: L402_HOME, URL, WALLET (a wallet URI), MODE (`fetch` | `crash` | `crash-before`), N
 * (requests in parallel). Prints one JSON line per response. In `crash` mode it prints `PAID` once the
 * wallet reports the payment sent and then blocks (before the preimage is written), for the test to
 * `kill -9` it; in `crash-before` it prints `PAYING` and blocks once the pending token is written,
 * before the wallet is asked.
 */
import { createFetch } from '../../packages/l402/src/client/index.js';
import { FileLedger, FileTokenStore, openWallet } from '../../packages/l402/src/client/node.js';

const env = process.env;
const wallet = await openWallet(env.WALLET as string);
const fetch402 = createFetch({
  wallet,
  store: FileTokenStore.open(env.L402_HOME),
  ledger: FileLedger.open(env.L402_HOME),
  onEvent(event) {
    if (event.type === 'pay' && env.MODE === 'crash-before') {
      process.stdout.write('PAYING\n');
      // The pending token and the reservation are written; the wallet has not been asked yet.
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 600_000);
    }
    if (event.type === 'paid' && env.MODE === 'crash') {
      process.stdout.write('PAID\n');
      // Blocks this thread for good: nothing after the payment (the preimage write, the retry) runs.
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 600_000);
    }
  },
});
const n = Number(env.N ?? 1);
const results = await Promise.all(
  Array.from({ length: n }, async () => {
    const res = await fetch402(env.URL as string);
    return { status: res.status, body: await res.text(), payment: createFetch.payment(res) ?? null };
  }),
);
for (const r of results) process.stdout.write(`${JSON.stringify(r)}\n`);
await wallet.close?.();
process.exit(0);
