/**
 * Which backend a wallet URI names, by its scheme alone: no I/O and no backend code loaded, so options
 * that take a wallet URI (the middleware's `backend`) can be refused at once, before anything connects.
 *
 * @example
 * walletKind('lnd://127.0.0.1:8080?macaroon=…'); // 'lnd'
 * walletKind('http://example.com');              // throws BackendError L402_BACKEND_CONFIG
 */
import { BackendError } from '../Errors.js';

export type WalletKind = 'lnd' | 'cln' | 'phoenixd' | 'lnbits' | 'nwc';

const KINDS: Readonly<Record<string, WalletKind>> = {
  lnd: 'lnd',
  lndconnect: 'lnd',
  cln: 'cln',
  'cln+https': 'cln',
  'cln+http': 'cln',
  phoenixd: 'phoenixd',
  'phoenixd+https': 'phoenixd',
  'phoenixd+http': 'phoenixd',
  lnbits: 'lnbits',
  'lnbits+https': 'lnbits',
  'lnbits+http': 'lnbits',
  'nostr+walletconnect': 'nwc',
};

/** The backend for `uri`'s scheme. Throws `L402_BACKEND_CONFIG` for a scheme no backend speaks. */
export function walletKind(uri: string): WalletKind {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(uri)?.[1]?.toLowerCase();
  const kind = scheme === undefined ? undefined : KINDS[scheme];
  if (kind === undefined) {
    throw new BackendError(
      'L402_BACKEND_CONFIG',
      'wallet',
      `unknown wallet URI scheme ${scheme === undefined ? '(none)' : `"${scheme}"`}: use lnd://, cln://, phoenixd://, lnbits:// or nostr+walletconnect://`,
    );
  }
  return kind;
}
