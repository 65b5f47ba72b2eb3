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
import { BackendError } from '../Errors.js';
import type { Backend } from './Backend.js';
import * as Cln from './cln.js';
import * as Lnbits from './lnbits.js';
import * as Lnd from './lnd.js';
import * as Nwc from './nwc.js';
import * as Phoenixd from './phoenixd.js';

/** Connects to the wallet a URI names. Throws `L402_BACKEND_CONFIG` for a scheme it does not know. */
export async function connect(uri: string): Promise<Backend> {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(uri)?.[1]?.toLowerCase();
  switch (scheme) {
    case 'lnd':
    case 'lndconnect':
      return Lnd.fromUri(uri);
    case 'cln':
    case 'cln+https':
    case 'cln+http':
      return Cln.fromUri(uri);
    case 'phoenixd':
    case 'phoenixd+https':
    case 'phoenixd+http':
      return Phoenixd.fromUri(uri);
    case 'lnbits':
    case 'lnbits+https':
    case 'lnbits+http':
      return Lnbits.fromUri(uri);
    case 'nostr+walletconnect':
      return Nwc.connect(uri);
    default:
      throw new BackendError(
        'L402_BACKEND_CONFIG',
        'wallet',
        `unknown wallet URI scheme ${scheme === undefined ? '(none)' : `"${scheme}"`}: use lnd://, cln://, phoenixd://, lnbits:// or nostr+walletconnect://`,
      );
  }
}
