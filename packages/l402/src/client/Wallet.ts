/**
 * What the client pays with. Every `l402/lightning` backend (LND, Core Lightning, phoenixd, LNbits, NWC)
 * is a {@link Wallet} as it is; {@link webln} adapts a browser's WebLN provider and {@link fallback}
 * tries a list in order.
 *
 * @example
 * const wallet = Wallet.fallback([await connect(process.env.WALLET_A!), Wallet.webln(window.webln)]);
 */
import { PaymentFailedError } from '../Errors.js';
import * as Invoice from '../Invoice.js';
import { fromHex, toHex } from '../internal/bytes.js';
import {
  type Network,
  type NodeInfo,
  type PaymentResult,
  type PaymentStatus,
  unknownPayment,
} from '../lightning/Backend.js';

export type { Network, NodeInfo, PaymentResult, PaymentStatus };

/** What one payment may cost on top of the invoice, and how long it may take. */
export interface PayOptions {
  readonly maxFeeMsat?: bigint;
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

/**
 * A wallet the client can pay with. `pay` must not pay the same invoice twice (the `l402/lightning`
 * backends ask the node by payment hash first); `lookupPayment` lets a client that crashed after paying
 * recover the preimage instead of paying again.
 *
 * @example
 * const wallet: Wallet = await connect('lnd://127.0.0.1:8080?macaroon=…');
 */
export interface Wallet {
  readonly kind: string;
  /** The network invoices must be for; asked through `info()` when absent. */
  readonly network?: Network;
  /**
   * True when `lookupPayment` knows only payments made through this very object (WebLN): after a
   * restart, `unknown` then means "cannot tell", not "never sent".
   */
  readonly forgets?: boolean;
  pay(paymentRequest: string, options?: PayOptions): Promise<PaymentResult>;
  lookupPayment(paymentHash: Uint8Array): Promise<PaymentStatus>;
  info?(): Promise<NodeInfo>;
  close?(): Promise<void>;
}

/** The network a wallet pays on: its `network`, else `info().network`, else `undefined` (unknown). */
export async function networkOf(wallet: Wallet): Promise<Network | undefined> {
  if (wallet.network !== undefined) return wallet.network;
  if (wallet.info === undefined) return undefined;
  return (await wallet.info()).network;
}

/**
 * `wallet` declared to pay on `network` (for a backend that cannot say, such as LNbits).
 *
 * @example
 * const wallet = Wallet.onNetwork(await connect('lnbits+http://127.0.0.1:5000?key=…'), 'regtest');
 */
export function onNetwork(wallet: Wallet, network: Network): Wallet {
  return {
    kind: wallet.kind,
    network,
    ...(wallet.forgets ? { forgets: true } : {}),
    pay: (paymentRequest, options) => wallet.pay(paymentRequest, options),
    lookupPayment: (paymentHash) => wallet.lookupPayment(paymentHash),
    ...(wallet.info ? { info: () => (wallet.info as () => Promise<NodeInfo>)() } : {}),
    close: async () => {
      await wallet.close?.();
    },
  };
}

/**
 * A wallet that pays with the first of `wallets` that succeeds. A definite failure (no route, no
 * balance, a refusal) moves on to the next; a payment that may be in flight stops the list, so one
 * invoice is never paid by two wallets. `lookupPayment` asks each until one knows the hash.
 *
 * @example
 * const wallet = Wallet.fallback([primary, backup]);
 */
export function fallback(wallets: readonly Wallet[]): Wallet {
  if (wallets.length === 0) throw new PaymentFailedError('a fallback wallet needs at least one wallet');
  if (wallets.length === 1) return wallets[0] as Wallet;
  const first = wallets[0] as Wallet;
  const wallet: Wallet = {
    kind: `fallback(${wallets.map((w) => w.kind).join(',')})`,
    async pay(paymentRequest, options) {
      const hash = Invoice.decode(paymentRequest).paymentHash;
      let last: unknown;
      for (const w of wallets) {
        // A wallet that cannot even be asked about the payment is down: nothing was sent through it,
        // so the next one may pay. Asked first, so "unreachable" is never confused with "sent, then lost".
        try {
          const status = await w.lookupPayment(hash);
          if (status.state === 'succeeded' || status.state === 'in-flight')
            return await w.pay(paymentRequest, options);
        } catch (error) {
          last = error;
          continue;
        }
        try {
          return await w.pay(paymentRequest, options);
        } catch (error) {
          last = error;
          const code = (error as { code?: string }).code ?? '';
          // Only a definite refusal lets another wallet try; anything else may be in flight here.
          if (!DEFINITE.has(code) || options?.signal?.aborted) throw error;
        }
      }
      throw last;
    },
    async lookupPayment(paymentHash) {
      let status: PaymentStatus | undefined;
      for (const w of wallets) {
        try {
          status = await w.lookupPayment(paymentHash);
          if (status.state !== 'unknown') return status;
        } catch {
          // A wallet that cannot answer does not know about this payment; ask the next.
        }
      }
      return status ?? unknownPayment(paymentHash);
    },
    info: first.info ? () => (first.info as () => Promise<NodeInfo>)() : undefined,
    async close() {
      for (const w of wallets) await w.close?.();
    },
  };
  const forgets = wallets.some((w) => w.forgets) ? { forgets: true } : {};
  if (first.network !== undefined) return { ...wallet, ...forgets, network: first.network };
  return { ...wallet, ...forgets };
}

/** The part of a WebLN provider (`window.webln`, WebLN spec) the client uses. */
export interface WebLNProvider {
  enable?(): Promise<void>;
  sendPayment(paymentRequest: string): Promise<{ preimage: string }>;
  getInfo?(): Promise<{ node?: { pubkey?: string; alias?: string }; network?: string }>;
}

/** Wallet error codes that mean this wallet paid nothing and will not. */
const DEFINITE = new Set([
  'L402_PAYMENT_FAILED',
  'L402_PAYMENT_NO_ROUTE',
  'L402_PAYMENT_INSUFFICIENT_BALANCE',
  'L402_BACKEND_AUTH',
  'L402_BACKEND_CONFIG',
]);

const NETWORKS: readonly Network[] = ['mainnet', 'testnet', 'signet', 'regtest', 'simnet'];

/**
 * A wallet over WebLN (Alby and other browser wallets). WebLN cannot look a payment up by hash, so the
 * adapter remembers the payments it made in this page; a payment it never saw is `unknown`. The
 * network is `options.network`, else what `getInfo()` says, else unknown (then invoices of any network
 * are paid: say the network when you know it).
 *
 * @example
 * const wallet = Wallet.webln(window.webln, { network: 'mainnet' });
 */
export function webln(provider: WebLNProvider, options: { network?: Network } = {}): Wallet {
  const paid = new Map<string, PaymentResult>();
  let enabled: Promise<void> | undefined;
  const wallet: Wallet = {
    kind: 'webln',
    forgets: true,
    async pay(paymentRequest) {
      enabled ??= provider.enable?.() ?? Promise.resolve();
      await enabled;
      const invoice = Invoice.decode(paymentRequest);
      const key = toHex(invoice.paymentHash);
      const done = paid.get(key);
      if (done !== undefined) return done;
      let preimage: Uint8Array;
      try {
        const reply = await provider.sendPayment(paymentRequest);
        preimage = fromHex(reply.preimage, 'WebLN preimage');
      } catch (error) {
        throw new PaymentFailedError(`webln: ${(error as Error).message ?? 'payment refused'}`, {
          cause: error,
        });
      }
      const result: PaymentResult = {
        paymentHash: invoice.paymentHash,
        preimage,
        amountMsat: invoice.amountMsat ?? 0n,
        feeMsat: 0n,
      };
      paid.set(key, result);
      return result;
    },
    async lookupPayment(paymentHash) {
      const done = paid.get(toHex(paymentHash));
      return done === undefined
        ? unknownPayment(paymentHash)
        : {
            paymentHash,
            state: 'succeeded',
            preimage: done.preimage,
            amountMsat: done.amountMsat,
            feeMsat: done.feeMsat,
            failure: undefined,
          };
    },
    async info() {
      const info = await provider.getInfo?.();
      const network = NETWORKS.find((n) => n === info?.network) ?? options.network ?? 'mainnet';
      return { pubkey: info?.node?.pubkey, alias: info?.node?.alias, network, blockHeight: undefined };
    },
  };
  if (options.network !== undefined) return { ...wallet, network: options.network };
  // Without a declared network and without getInfo there is nothing to check against.
  if (provider.getInfo === undefined) return { ...wallet, info: undefined };
  return wallet;
}
