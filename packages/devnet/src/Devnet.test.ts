import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'l402/lightning';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as Devnet from './Devnet.js';

describe('Devnet.start', () => {
  const home = mkdtempSync(join(tmpdir(), 'l402-devnet-'));
  let devnet: Devnet.Devnet;
  beforeAll(async () => {
    devnet = await Devnet.start({ home });
  }, 60_000);
  afterAll(async () => {
    await devnet?.close();
    rmSync(home, { recursive: true, force: true });
  });

  it('publishes devnet.json, private to its owner, found while the devnet runs', () => {
    expect(devnet.file).toBe(join(home, 'devnet.json'));
    expect(statSync(devnet.file as string).mode & 0o777).toBe(0o600);
    const found = Devnet.find(home);
    expect(found?.pid).toBe(process.pid);
    expect(Object.keys(found?.nodes ?? {})).toEqual(['merchant', 'payer']);
    expect(found?.nodes.payer?.uris.lnd).toMatch(/^lnd:\/\/127\.0\.0\.1:\d+\?macaroon=[0-9a-f]+&cert=/);
  });

  it.each(['lnd', 'cln', 'phoenixd', 'lnbits', 'nwc'] as const)(
    'the %s URIs in the document reach real wallets: the payer pays the merchant',
    async (kind) => {
      const { merchant, payer } = devnet.document.nodes as Record<string, Devnet.NodeApis>;
      const receive = await connect((merchant as Devnet.NodeApis).uris[kind]);
      const send = await connect((payer as Devnet.NodeApis).uris[kind]);
      try {
        const invoice = await receive.createInvoice({ amountMsat: 21_000n, memo: `via ${kind}` });
        const paid = await send.pay(invoice.paymentRequest, { maxFeeMsat: 1_000n, timeoutMs: 20_000 });
        expect(createHash('sha256').update(paid.preimage).digest()).toEqual(Buffer.from(invoice.paymentHash));
        const settled = await receive.waitInvoice(invoice.paymentHash, { timeoutMs: 20_000 });
        expect(settled.state).toBe('settled');
      } finally {
        await send.close();
        await receive.close();
      }
    },
    60_000,
  );

  it('removes devnet.json when it closes', async () => {
    const other = await Devnet.start({ home: join(home, 'second'), nodes: ['solo'] });
    expect(Devnet.find(join(home, 'second'))?.nodes.solo).toBeDefined();
    await other.close();
    await other.close(); // idempotent
    expect(Devnet.find(join(home, 'second'))).toBeUndefined();
  }, 60_000);
});
