/**
 * A Nostr Wallet Connect (NIP-47) wallet service in front of a devnet node. It publishes the node's
 * info event (kind 13194: `make_invoice lookup_invoice pay_invoice get_balance get_info`, the
 * `payment_received payment_sent` notifications, NIP-44 v2 and NIP-04), answers kind 23194 requests
 * addressed to it (kind 23195, encrypted as the request was) and sends notifications (23197 under
 * NIP-44, 23196 under NIP-04). Only the client key of its URI is served; any other key is answered
 * UNAUTHORIZED. Amounts are msat, as NIP-47 says.
 *
 * It speaks the same NIP-47 as a real wallet service, over a real relay, so the `l402/lightning` NWC
 * backend and any other NWC client (Alby's SDK) use it unchanged. It does not reconnect: when its relay
 * goes away it stops answering, and serving again (with the same `walletSecret` and `clientSecret`, for
 * the same URI) brings it back.
 *
 * @example
 * const relay = await Relay.start();
 * const wallet = await Nwc.serve(net.node('merchant'), { relayUrl: relay.url });
 * const backend = await LightningNwc.connect(wallet.uri); // l402/lightning's Nwc
 * await backend.close();
 * await wallet.close();
 * await relay.close();
 */
import { Invoice } from 'l402';
import { Nostr, Nwc as Wire } from 'l402/lightning';
import { WebSocket } from 'ws';
import { ArgumentError, DevnetError, PeerError } from '../Errors.js';
import { fromHex, toHex } from '../internal/bytes.js';
import type { Node, Invoice as NodeInvoice, Payment } from '../Node.js';

/**
 * Where the wallet service listens, and with which keys and encryptions.
 *
 * @example
 * const options: Nwc.Options = { relayUrl: relay.url, encryptions: ['nip04'] };
 */
export interface Options {
  /** The relay to publish on and listen to, `ws://` or `wss://`. */
  readonly relayUrl: string;
  /** What the info event offers; both when omitted. `['nip04']` stands in for a wallet that predates NIP-44. */
  readonly encryptions?: readonly Nostr.Encryption[];
  /** The wallet service's key (32 bytes); random when omitted. */
  readonly walletSecret?: Uint8Array;
  /** The one client key served, whose secret goes in the URI (32 bytes); random when omitted. */
  readonly clientSecret?: Uint8Array;
  /** Wall clock in unix milliseconds, for event timestamps and request expiry. Defaults to `Date.now`. */
  readonly now?: () => number;
}

/**
 * A running wallet service. Start one with {@link serve}.
 *
 * @example
 * const wallet: Nwc.Nwc = await Nwc.serve(node, { relayUrl: relay.url });
 * wallet.uri; // hand it to any NWC client
 */
export interface Nwc {
  /** `nostr+walletconnect://<wallet pubkey>?relay=<url>&secret=<client secret>`: all a client needs. */
  readonly uri: string;
  /** Hex, x-only. */
  readonly walletPubkey: string;
  /** Hex, x-only: the only key this service answers. */
  readonly clientPubkey: string;
  /** Stops answering, unsubscribes from the node and disconnects from the relay. */
  close(): Promise<void>;
}

/**
 * The NIP-47 methods the service offers, in its info event and get_info.
 *
 * @example
 * Nwc.METHODS.includes('pay_invoice'); // true
 */
export const METHODS = ['make_invoice', 'lookup_invoice', 'pay_invoice', 'get_balance', 'get_info'] as const;

/**
 * The notifications the service sends.
 *
 * @example
 * Nwc.NOTIFICATIONS; // ['payment_received', 'payment_sent']
 */
export const NOTIFICATIONS = ['payment_received', 'payment_sent'] as const;

/** Request ids answered recently, so a request delivered twice (a relay resending it) never pays twice. */
const REMEMBERED_REQUESTS = 10_000;

/** A NIP-47 error answer. */
class WalletError extends Error {
  readonly code: Wire.ErrorCode;
  constructor(code: Wire.ErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

/** Devnet payment failures as NIP-47 error codes. */
function walletError(error: unknown): WalletError {
  if (error instanceof WalletError) return error;
  if (!(error instanceof DevnetError)) {
    return new WalletError('INTERNAL', String((error as Error)?.message ?? error));
  }
  switch (error.code) {
    case 'DEVNET_INSUFFICIENT_BALANCE':
      return new WalletError('INSUFFICIENT_BALANCE', error.message);
    case 'DEVNET_NO_ROUTE':
    case 'DEVNET_PAYMENT_REJECTED':
    case 'DEVNET_INVOICE_EXPIRED':
    case 'DEVNET_SELF_PAYMENT':
    case 'DEVNET_ALREADY_PAID':
    case 'DEVNET_PAYMENT_FAILED':
      return new WalletError('PAYMENT_FAILED', error.message);
    case 'DEVNET_NOT_FOUND':
      return new WalletError('NOT_FOUND', error.message);
    case 'DEVNET_INVALID_INVOICE':
    case 'DEVNET_AMOUNT_REQUIRED':
    case 'DEVNET_WRONG_AMOUNT':
    case 'DEVNET_INVALID_ARGUMENT':
    case 'DEVNET_INVOICE_EXISTS':
      return new WalletError('OTHER', error.message);
    default:
      // In flight, timed out (and abandoned, yet possibly delivered), closed: the outcome is not known
      // to be a failure, so not PAYMENT_FAILED; a careful client asks lookup_invoice.
      return new WalletError('INTERNAL', error.message);
  }
}

function amountParam(value: unknown, what: string, required: boolean): number | undefined {
  if (value === undefined || value === null) {
    if (required) throw new WalletError('OTHER', `${what} is required (msat)`);
    return undefined;
  }
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new WalletError('OTHER', `${what} must be a whole number of msat`);
  }
  return value;
}

function stringParam(value: unknown, what: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw new WalletError('OTHER', `${what} must be a string`);
  return value;
}

function incoming(invoice: NodeInvoice): Wire.Transaction {
  const settled = invoice.state === 'settled';
  const state = settled
    ? 'settled'
    : invoice.state === 'open'
      ? 'pending'
      : invoice.state === 'expired'
        ? 'expired'
        : 'failed';
  return {
    type: 'incoming',
    state,
    invoice: invoice.paymentRequest,
    ...(invoice.description === undefined ? {} : { description: invoice.description }),
    ...(invoice.descriptionHash === undefined ? {} : { description_hash: invoice.descriptionHash }),
    // The preimage is the payer's proof of payment: it leaves the wallet once paid, not before.
    ...(settled ? { preimage: invoice.preimage } : {}),
    payment_hash: invoice.paymentHash,
    amount: settled ? invoice.receivedMsat : (invoice.amountMsat ?? 0),
    fees_paid: 0,
    created_at: invoice.createdAt,
    expires_at: invoice.expiresAt,
    ...(invoice.settledAt === undefined ? {} : { settled_at: invoice.settledAt }),
    metadata: {},
  };
}

function outgoing(payment: Payment): Wire.Transaction {
  let details: Invoice.Invoice | undefined;
  try {
    details = Invoice.decode(payment.paymentRequest);
  } catch {
    details = undefined; // The node paid it, so it parsed there; without details the transaction is still whole.
  }
  const state = payment.state === 'succeeded' ? 'settled' : payment.state === 'failed' ? 'failed' : 'pending';
  return {
    type: 'outgoing',
    state,
    invoice: payment.paymentRequest,
    ...(details?.description === undefined ? {} : { description: details.description }),
    ...(details?.descriptionHash === undefined ? {} : { description_hash: toHex(details.descriptionHash) }),
    ...(payment.preimage === undefined ? {} : { preimage: payment.preimage }),
    payment_hash: payment.paymentHash,
    amount: payment.amountMsat,
    fees_paid: payment.feeMsat ?? 0,
    created_at: payment.createdAt,
    ...(details === undefined ? {} : { expires_at: Invoice.expiresAt(details) }),
    ...(payment.settledAt === undefined ? {} : { settled_at: payment.settledAt }),
    metadata: {},
  };
}

class Service implements Nwc {
  readonly uri: string;
  readonly walletPubkey: string;
  readonly clientPubkey: string;
  private readonly node: Node;
  private readonly relay: Nostr.Connection;
  private readonly walletSecret: Uint8Array;
  private readonly encryptions: readonly Nostr.Encryption[];
  private readonly now: () => number;
  private readonly answered = new Set<string>();
  private readonly stops: (() => void)[] = [];
  private closed = false;

  constructor(
    node: Node,
    relay: Nostr.Connection,
    options: Options,
    walletSecret: Uint8Array,
    clientSecret: Uint8Array,
  ) {
    this.node = node;
    this.relay = relay;
    this.walletSecret = walletSecret;
    this.encryptions = options.encryptions ?? ['nip44_v2', 'nip04'];
    this.now = options.now ?? Date.now;
    this.walletPubkey = toHex(Nostr.publicKey(walletSecret));
    this.clientPubkey = toHex(Nostr.publicKey(clientSecret));
    this.uri = Wire.formatUri({
      walletPubkey: Nostr.publicKey(walletSecret),
      relays: [options.relayUrl],
      secret: clientSecret,
    });
  }

  async start(): Promise<void> {
    await this.relay.publish(
      Nostr.sign(
        {
          kind: Wire.KIND.info,
          tags: [
            ['encryption', this.encryptions.join(' ')],
            ['notifications', NOTIFICATIONS.join(' ')],
          ],
          content: [...METHODS, 'notifications'].join(' '),
        },
        this.walletSecret,
        this.now,
      ),
    );
    const sub = this.relay.subscribe([{ kinds: [Wire.KIND.request], '#p': [this.walletPubkey] }], {
      event: (event) => {
        this.handle(event).catch(() => {
          // Answering failed (the relay went away): the client times out, as with any lost answer.
        });
      },
    });
    this.stops.push(() => sub.close());
    await sub.stored;
    this.stops.push(
      this.node.onInvoice((invoice) => {
        if (invoice.state === 'settled') this.notify('payment_received', incoming(invoice));
      }),
      this.node.onPayment((payment) => {
        if (payment.state === 'succeeded') this.notify('payment_sent', outgoing(payment));
      }),
    );
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const stop of this.stops) stop();
    this.relay.close();
  }

  private async handle(event: Nostr.Event): Promise<void> {
    if (this.closed || this.answered.has(event.id)) return;
    const expiration = Number(event.tags.find((t) => t[0] === 'expiration')?.[1]);
    // NIP-47: a request received after its expiration is ignored; for pay_invoice that is what keeps a
    // client that gave up from paying after all.
    if (Number.isFinite(expiration) && expiration * 1000 <= this.now()) return;
    const scheme = event.tags.find((t) => t[0] === 'encryption')?.[1] ?? 'nip04';
    // An unknown scheme cannot be answered in a way the client could read.
    if (scheme !== 'nip44_v2' && scheme !== 'nip04') return;
    const client = fromHex(event.pubkey, 32, 'request pubkey');
    let request: { method?: unknown; params?: unknown };
    try {
      request = JSON.parse(Nostr.decrypt(scheme, event.content, this.walletSecret, client));
    } catch {
      return; // Not encrypted to us: nothing to answer.
    }
    this.answered.add(event.id);
    if (this.answered.size > REMEMBERED_REQUESTS) this.answered.delete(this.answered.values().next().value!);
    const method = typeof request?.method === 'string' ? request.method : '';
    let body: { result: unknown; error: { code: string; message: string } | null };
    try {
      if (event.pubkey !== this.clientPubkey) {
        throw new WalletError('UNAUTHORIZED', 'no wallet is connected to this key');
      }
      if (!this.encryptions.includes(scheme)) {
        throw new WalletError(
          'UNSUPPORTED_ENCRYPTION',
          `this wallet service speaks ${this.encryptions.join(' ')}`,
        );
      }
      const params = typeof request.params === 'object' && request.params !== null ? request.params : {};
      body = { result: await this.execute(method, params as Record<string, unknown>), error: null };
    } catch (error) {
      const { code, message } = walletError(error);
      body = { result: null, error: { code, message } };
    }
    if (this.closed) return;
    await this.relay.publish(
      Nostr.sign(
        {
          kind: Wire.KIND.response,
          tags: [
            ['p', event.pubkey],
            ['e', event.id],
          ],
          content: Nostr.encrypt(
            scheme,
            JSON.stringify({ result_type: method, ...body }),
            this.walletSecret,
            client,
          ),
        },
        this.walletSecret,
        this.now,
      ),
    );
  }

  private async execute(method: string, params: Record<string, unknown>): Promise<unknown> {
    switch (method) {
      case 'get_info': {
        const info = this.node.info();
        return {
          alias: info.alias,
          color: '#000000',
          pubkey: info.nodeId,
          network: info.network,
          block_height: info.blockHeight,
          block_hash: info.blockHash,
          methods: [...METHODS],
          notifications: [...NOTIFICATIONS],
        };
      }
      case 'get_balance':
        return { balance: this.node.balance().localMsat };
      case 'make_invoice': {
        const amountMsat = amountParam(params.amount, 'amount', true);
        const expirySeconds = amountParam(params.expiry, 'expiry', false);
        const invoice = await this.node.createInvoice({
          amountMsat,
          description: stringParam(params.description, 'description'),
          descriptionHash: stringParam(params.description_hash, 'description_hash'),
          expirySeconds,
        });
        return incoming(invoice);
      }
      case 'lookup_invoice': {
        const paymentHash = this.hashParam(params);
        const invoice = this.node.lookupInvoice(paymentHash);
        if (invoice) return incoming(invoice);
        const payment = this.node.lookupPayment(paymentHash);
        if (payment) return outgoing(payment);
        throw new WalletError('NOT_FOUND', `no invoice or payment with payment hash ${paymentHash}`);
      }
      case 'pay_invoice': {
        const invoice = stringParam(params.invoice, 'invoice');
        if (invoice === undefined) throw new WalletError('OTHER', 'invoice is required');
        const amountMsat = amountParam(params.amount, 'amount', false);
        const paid = await this.node.payInvoice(invoice, { amountMsat });
        return { preimage: paid.preimage, fees_paid: paid.feeMsat };
      }
      default:
        throw new WalletError(
          'NOT_IMPLEMENTED',
          `${method || 'a request without a method'} is not offered here`,
        );
    }
  }

  /** The payment hash a lookup_invoice names, directly or through its invoice. */
  private hashParam(params: Record<string, unknown>): string {
    const hash = stringParam(params.payment_hash, 'payment_hash');
    if (hash !== undefined) {
      if (!/^[0-9a-fA-F]{64}$/.test(hash)) {
        throw new WalletError('OTHER', 'payment_hash must be 32 bytes of hex');
      }
      return hash.toLowerCase();
    }
    const invoice = stringParam(params.invoice, 'invoice');
    if (invoice === undefined) throw new WalletError('OTHER', 'give payment_hash or invoice');
    try {
      return toHex(Invoice.decode(invoice).paymentHash);
    } catch (error) {
      throw new WalletError('OTHER', `invoice does not decode: ${(error as Error).message}`);
    }
  }

  /** One notification per offered scheme: 23197 under NIP-44, 23196 under NIP-04 (NIP-47 "Notification events"). */
  private notify(type: (typeof NOTIFICATIONS)[number], transaction: Wire.Transaction): void {
    if (this.closed) return;
    const content = JSON.stringify({ notification_type: type, notification: transaction });
    for (const scheme of this.encryptions) {
      const event = Nostr.sign(
        {
          kind: scheme === 'nip44_v2' ? Wire.KIND.notification : Wire.KIND.notificationNip04,
          tags: [['p', this.clientPubkey]],
          content: Nostr.encrypt(
            scheme,
            content,
            this.walletSecret,
            fromHex(this.clientPubkey, 32, 'client pubkey'),
          ),
        },
        this.walletSecret,
        this.now,
      );
      this.relay.publish(event).catch(() => {
        // A lost notification is what NIP-47 clients poll lookup_invoice for.
      });
    }
  }
}

function secretOption(value: Uint8Array | undefined, what: string): Uint8Array {
  if (value === undefined) return Nostr.randomSecretKey();
  if (!(value instanceof Uint8Array) || value.length !== 32) {
    throw new ArgumentError(`${what} must be 32 bytes`);
  }
  try {
    Nostr.publicKey(value);
  } catch {
    throw new ArgumentError(`${what} is not a valid secp256k1 secret key`);
  }
  return value;
}

/**
 * Starts a wallet service for `node` on a relay: resolves once its info event is published and it
 * listens for requests. Throws a PeerError when the relay cannot be reached or refuses the info event.
 *
 * @example
 * const wallet = await Nwc.serve(net.node('payer'), { relayUrl: relay.url });
 * wallet.uri; // "nostr+walletconnect://3bf0…?relay=ws%3A%2F%2F127.0.0.1%3A41873&secret=71a8…"
 * const legacy = await Nwc.serve(net.node('payer'), { relayUrl: relay.url, encryptions: ['nip04'] });
 */
export async function serve(node: Node, options: Options): Promise<Nwc> {
  if (typeof options?.relayUrl !== 'string' || !/^wss?:\/\/./i.test(options.relayUrl)) {
    throw new ArgumentError('relayUrl must be a ws:// or wss:// URL');
  }
  const encryptions = options.encryptions ?? ['nip44_v2', 'nip04'];
  if (encryptions.length === 0 || !encryptions.every((e) => e === 'nip44_v2' || e === 'nip04')) {
    throw new ArgumentError("encryptions must list 'nip44_v2', 'nip04' or both");
  }
  const walletSecret = secretOption(options.walletSecret, 'walletSecret');
  const clientSecret = secretOption(options.clientSecret, 'clientSecret');
  let relay: Nostr.Connection;
  try {
    relay = await Nostr.connect(options.relayUrl, { WebSocket, name: 'devnet nwc' });
  } catch (error) {
    throw new PeerError(`cannot connect to relay ${options.relayUrl}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  const service = new Service(node, relay, { ...options, encryptions }, walletSecret, clientSecret);
  try {
    await service.start();
  } catch (error) {
    await service.close();
    throw new PeerError(`the relay refused the wallet service: ${(error as Error).message}`, {
      cause: error,
    });
  }
  return service;
}
