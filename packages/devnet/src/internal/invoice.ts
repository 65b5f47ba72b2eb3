/**
 * Re-dating LDK's BOLT11 invoices. LDK's WebAssembly build has no clock (no-std): it dates an invoice
 * with the newest block time it has seen, which on an idle devnet lags the wall clock by however long
 * nobody mined, so wallets would see fresh invoices as created, or even expired, in the past. This
 * re-signs LDK's invoice with the node's key and the real timestamp and expiry; every other field
 * (payment secret, route hints, features, CLTV) stays as LDK wrote it.
 */
import { Invoice } from 'l402';

export function redate(
  paymentRequest: string,
  timestamp: number,
  expirySeconds: number,
  nodeSecret: Uint8Array,
): string {
  const invoice = Invoice.decode(paymentRequest, { network: 'regtest' });
  return Invoice.encode({ ...invoice, timestamp, expiry: expirySeconds }, nodeSecret);
}
