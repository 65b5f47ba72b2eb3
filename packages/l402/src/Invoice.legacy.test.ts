import { describe, expect, it } from 'vitest';
import { InvoiceError } from './Errors.js';
import vectors from './fixtures/bolt11-legacy-vectors.json' with { type: 'json' };
import * as Invoice from './Invoice.js';
import { toHex } from './internal/bytes.js';

// The examples of an earlier BOLT 11 revision: legacy invoices without a payment secret, which real
// wallets still meet, and that revision's invalid strings.
describe(`BOLT 11 examples, ${vectors.source}`, () => {
  it.each(vectors.valid)('decodes and verifies: $name', (v) => {
    const inv = Invoice.decode(v.invoice);
    expect(toHex(inv.payeeNodeKey)).toBe(vectors.payee);
    expect(inv.amountMsat).toBe(v.amountMsat === null ? undefined : BigInt(v.amountMsat));
    expect(toHex(inv.paymentHash)).toBe(
      'paymentHash' in v ? v.paymentHash : '0001020304050607080900010203040506070809000102030405060708090102',
    );
    if ('description' in v) expect(inv.description).toBe(v.description);
    if ('expiry' in v) expect(inv.expiry).toBe(v.expiry);
    if ('minFinalCltvExpiry' in v) expect(inv.minFinalCltvExpiry).toBe(v.minFinalCltvExpiry);
    if ('network' in v) expect(inv.network).toBe(v.network);
    if ('routeHops' in v) expect(inv.routeHints.flat()).toHaveLength(v.routeHops as number);
    if ('features' in v) for (const bit of v.features as number[]) expect(inv.features?.bits).toContain(bit);
  });

  it('skips the fields a reader must ignore and keeps the first valid payment hash, secret and description', () => {
    const v = vectors.valid.find((x) => x.name.includes('ignored')) as (typeof vectors.valid)[number];
    const inv = Invoice.decode(v.invoice);
    expect(toHex(inv.paymentSecret as Uint8Array)).toBe('11'.repeat(32));
    expect(inv.descriptionHash).toBeUndefined();
    expect(inv.fallbackAddresses).toEqual([]);
  });

  it.each(vectors.invalid)('refuses: $name', (v) => {
    expect(() => Invoice.decode(v.invoice)).toThrow(InvoiceError);
  });
});
