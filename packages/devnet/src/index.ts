/**
 * @l402/devnet: a real Lightning network in one process. LDK nodes (WebAssembly) talk BOLT 8 to each
 * other over memory or loopback TCP, on an emulated regtest chain, with real channels, gossip, BOLT11
 * invoices and HTLC payments.
 *
 * @example
 * import { Network } from '@l402/devnet';
 *
 * const net = await Network.line(['payer', 'hop', 'merchant']);
 * const invoice = await net.node('merchant').createInvoice({ amountMsat: 21_000, description: 'coffee' });
 * const { preimage, feeMsat } = await net.node('payer').payInvoice(invoice.paymentRequest);
 * await net.close();
 *
 * Each node can answer the wallet APIs of LND, Core Lightning, phoenixd, LNbits and NWC (the facades),
 * and `Devnet.start()` runs all of it and publishes `$L402_HOME/devnet.json`.
 */
export * as Chain from './Chain.js';
export * as Devnet from './Devnet.js';
export * as Errors from './Errors.js';
export * as Cln from './facades/cln.js';
export * as Lnbits from './facades/lnbits.js';
export * as Lnd from './facades/lnd.js';
export * as Nwc from './facades/nwc.js';
export * as Phoenixd from './facades/phoenixd.js';
export * as Relay from './facades/relay.js';
/** Self-signed TLS certificates shaped like LND's (the gateway serves one when none is configured). */
export * as Tls from './internal/tls.js';
export * as Network from './Network.js';
export * as Node from './Node.js';
