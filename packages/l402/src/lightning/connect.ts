/**
 * One entry point for every backend: pick the implementation by the URI's scheme.
 *
 * | scheme | backend |
 * |---|---|
 * | `lnd://host:port?macaroon=<hex>&cert=<path or base64url PEM>`, `lndconnect://…` | LND REST |
 * | `cln://`, `cln+https://`, `cln+http://host:port?rune=…` | Core Lightning clnrest |
 * | `phoenixd://:password@host:port`, `phoenixd+https://…` | phoenixd |
 * | `lnbits://`, `lnbits+https://`, `lnbits+http://host:port?key=<admin key>` | LNbits |
 * | `nostr+walletconnect://<pubkey>?relay=…&secret=…` | NWC (NIP-47) |
 *
 * @example
 * const wallet = await Lightning.connect(process.env.L402_WALLET!);
 * const { preimage } = await wallet.pay(invoice, { maxFeeMsat: 10_000n });
 */
import type { Backend } from './Backend.js';
import * as Cln from './cln.js';
import * as Lnbits from './lnbits.js';
import * as Lnd from './lnd.js';
import * as Nwc from './nwc.js';
import * as Phoenixd from './phoenixd.js';
import { walletKind } from './schemes.js';

/** Connects to the wallet a URI names. Throws `L402_BACKEND_CONFIG` for a scheme it does not know. */
export async function connect(uri: string): Promise<Backend> {
  switch (walletKind(uri)) {
    case 'lnd':
      return Lnd.fromUri(uri);
    case 'cln':
      return Cln.fromUri(uri);
    case 'phoenixd':
      return Phoenixd.fromUri(uri);
    case 'lnbits':
      return Lnbits.fromUri(uri);
    case 'nwc':
      return Nwc.connect(uri);
  }
}
