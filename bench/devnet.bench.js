/**
 * The devnet: start time, and payments and invoice creations per second, each beside its in-process
 * baseline (the devnet node's own API) so the figure shows what the LND REST facade and l402's LND
 * backend (HTTPS, macaroon check, JSON) add.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Devnet } from '@l402/devnet';
import { connect } from 'l402/lightning';
import { measureAsync, ratioLines } from './lib.js';

export const title = 'Devnet (2 LDK nodes, one channel)';

export async function run() {
  const home = mkdtempSync(join(tmpdir(), 'l402-bench-'));
  const lines = [];
  const starts = [];
  for (let i = 0; i < 3; i++) {
    const t = performance.now();
    const d = await Devnet.start({ home, publish: false });
    starts.push(performance.now() - t);
    await d.close();
  }
  starts.sort((a, b) => a - b);
  lines.push(
    `devnet start with every API (2 nodes, channel open, median of 3): ${starts[1].toFixed(0)} ms (goal < 3000 ms)`,
  );

  const devnet = await Devnet.start({ home, publish: false });
  const merchant = devnet.network.node('merchant');
  const payer = devnet.network.node('payer');
  const lndMerchant = await connect(devnet.document.nodes.merchant.uris.lnd);
  const lndPayer = await connect(devnet.document.nodes.payer.uris.lnd);
  try {
    lines.push(
      ...ratioLines(
        await measureAsync({
          'baseline: invoice creation, devnet node API': () => merchant.createInvoice({ amountMsat: 1_000 }),
          'invoice creation through the LND facade (l402 Lnd backend)': () =>
            lndMerchant.createInvoice({ amountMsat: 1_000n }),
        }),
      ),
    );
    lines.push(
      ...ratioLines(
        await measureAsync({
          'baseline: payment payer→merchant, devnet node API': async () => {
            const inv = await merchant.createInvoice({ amountMsat: 1_000 });
            await payer.payInvoice(inv.paymentRequest);
          },
          'payment payer→merchant through the LND facade (l402 Lnd backend)': async () => {
            const inv = await merchant.createInvoice({ amountMsat: 1_000 });
            await lndPayer.pay(inv.paymentRequest, { maxFeeMsat: 1_000n });
          },
        }),
      ),
    );
  } finally {
    await lndMerchant.close();
    await lndPayer.close();
    await devnet.close();
    rmSync(home, { recursive: true, force: true });
  }
  return { lines };
}
