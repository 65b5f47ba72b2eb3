/**
 * What the paying commands share: the token store and the payment ledger under `$L402_HOME`, and the
 * wallet, connected only when something must be paid (a cached token, `--no-pay` or `tokens list`
 * never touch it). The wallet is the `--wallet`/`L402_WALLET`/config.yaml URIs in fallback order, else
 * the payer node of the devnet published in `$L402_HOME/devnet.json`.
 *
 * @example
 * const session = await Session.open(settings);
 * try { … session.wallet … } finally { await session.close(); }
 */
import type { Ledger, TokenStore, Wallet } from 'l402/client';
import { devnetUri, FileLedger, FileTokenStore, openWallet } from 'l402/client/node';
import { type Backend, connect as connectBackend } from 'l402/lightning';
import { UsageError } from './cli.js';
import type { Settings } from './config.js';

type Opened = Wallet.Wallet;

/** The store, ledger and (lazily connected) wallet of one command run. */
export interface Session {
  readonly store: TokenStore.TokenStore;
  readonly ledger: Ledger.Ledger;
  /** Connects on the first call that needs the wallet; the same connection afterwards. */
  readonly wallet: Wallet.Wallet;
  /** The connected wallet, connecting now. */
  connect(): Promise<Opened>;
  /**
   * The first wallet URI (or the devnet payer) as a full Lightning backend, which can also tell its
   * balance and create invoices (`l402 wallet`); closed with the session.
   */
  backend(): Promise<Backend>;
  close(): Promise<void>;
}

/**
 * Opens the store and the ledger in `settings.home`; the wallet waits until it is used.
 *
 * @example
 * const { store } = await open(Config.load());
 */
export async function open(settings: Settings): Promise<Session> {
  const store = FileTokenStore.open(settings.home);
  const ledger = FileLedger.open(settings.home);
  let connecting: Promise<Opened> | undefined;
  const connect = () => {
    connecting ??= openWallet(settings.wallets.length > 0 ? settings.wallets : 'devnet', {
      home: settings.home,
    });
    return connecting;
  };
  let backend: Promise<Backend> | undefined;
  const openBackend = async (): Promise<Backend> => {
    const uri = settings.wallets[0] ?? 'devnet';
    if (uri !== 'devnet' && !uri.startsWith('devnet:')) return connectBackend(uri);
    const [, node, kind] = uri.split(':');
    const found = await devnetUri({
      home: settings.home,
      ...(node ? { node } : {}),
      ...(kind ? { kind } : {}),
    });
    if (found === undefined) {
      throw new UsageError(
        `no wallet: give --wallet, set L402_WALLET or wallet in ${settings.home}/config.yaml, or run \`l402 devnet\` (no live devnet${node ? ` with node ${node}` : ''} in ${settings.home}/devnet.json)`,
      );
    }
    return connectBackend(found);
  };
  const wallet: Wallet.Wallet = {
    kind: settings.wallets.length > 0 ? 'wallet' : 'devnet',
    pay: async (paymentRequest, options) => (await connect()).pay(paymentRequest, options),
    lookupPayment: async (paymentHash) => (await connect()).lookupPayment(paymentHash),
    info: async () => {
      const w = await connect();
      if (w.info === undefined) throw new Error('this wallet cannot tell its network');
      return w.info();
    },
  };
  return {
    store,
    ledger,
    wallet,
    connect,
    backend: () => {
      backend ??= openBackend();
      return backend;
    },
    async close() {
      if (backend !== undefined) await (await backend.catch(() => undefined))?.close();
      const opened = connecting;
      connecting = undefined;
      if (opened !== undefined) await (await opened.catch(() => undefined))?.close?.();
    },
  };
}
