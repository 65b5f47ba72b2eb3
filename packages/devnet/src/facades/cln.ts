/**
 * Core Lightning's REST API (clnrest, v24.08+) in front of a devnet node, over plain HTTP on loopback
 * (`clnrest-protocol=http`). Every call is `POST /v1/<method>` with a `Rune` header and the method's
 * parameters as a JSON object (or a positional array, or a form body); success is 201 with the RPC
 * result, failure is `{code, message}` with lightningd's numeric code: 500 for RPC errors, 404 for an
 * unknown method, 403 for a missing rune and 401 for a bad one, as `plugins/rest-plugin` answers.
 *
 * Methods: `getinfo`, `invoice`, `listinvoices`, `waitinvoice`, `pay`, `xpay`, `listpays` and
 * `listpeerchannels`. Amounts are msat numbers, hashes and preimages lower-case hex, invoices carry the
 * caller's unique `label`. The facade mints one unrestricted rune (restriction `=0`, unique id 0) keyed
 * by its own secret; runes from elsewhere, or attenuated ones, are refused as not derived from master.
 * Parameters that change what lightningd does and that the devnet cannot honour (`fallbacks`, `cltv`,
 * `exposeprivatechannels`, `exclude`, `layers`, `partial_msat`, `localinvreqid`) are refused with
 * -32602 instead of being ignored.
 *
 * @example
 * const clnrest = await Cln.serve(net.node('merchant'));
 * const res = await fetch(`${clnrest.url}/v1/invoice`, {
 *   method: 'POST',
 *   headers: { Rune: clnrest.rune, 'Content-Type': 'application/json' },
 *   body: JSON.stringify({ amount_msat: 21_000, label: 'order-1', description: 'coffee' }),
 * });
 * res.status; // 201
 * await clnrest.close();
 */
import { createHmac, randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Invoice } from 'l402';
import { ClosedError, InvoiceError, PaymentError } from '../Errors.js';
import { sha256, toHex } from '../internal/bytes.js';
import {
  BodyTooLargeError,
  listen,
  onHangUp,
  readBody,
  reply,
  sameSecret,
} from '../internal/facadeServer.js';
import type { Node, Invoice as NodeInvoice, Payment } from '../Node.js';

export interface Options {
  /** Defaults to 127.0.0.1. */
  readonly host?: string;
  /** Defaults to an ephemeral port. */
  readonly port?: number;
}

export interface Facade {
  /** `http://127.0.0.1:<port>`: methods are under `${url}/v1/`. */
  readonly url: string;
  /** Goes in the `Rune` header of every call. */
  readonly rune: string;
  /** Stops listening and cuts open connections (blocked `waitinvoice` calls included). */
  close(): Promise<void>;
}

/** What `getinfo` reports; the suffix tells a client it is not a real lightningd. */
const VERSION = 'v26.06-devnet';
const DEFAULT_INVOICE_EXPIRY = 604_800; // one week, lightningd's default
const DEFAULT_RETRY_FOR = 60;
const UNIQUE_ID = '=0';

/** JSON-RPC and lightningd error codes this facade answers with (common/jsonrpc_errors.h). */
const RPC = {
  methodNotFound: -32601,
  invalidParams: -32602,
  lightningd: -1,
  payInProgress: 200,
  payDestinationPermFail: 203,
  payRouteNotFound: 205,
  payInvoiceExpired: 207,
  payStoppedRetrying: 210,
  xpayFailed: 209,
  xpayAlreadyPaid: 219,
  labelExists: 900,
  preimageExists: 901,
  expiredDuringWait: 903,
  runeNotAuthorized: 1501,
} as const;

/** A failed call, answered as CLN's `{code, message, data?}`. */
class RpcError extends Error {
  override name = 'RpcError';
  readonly code: number;
  readonly data: unknown;
  constructor(code: number, message: string, data?: unknown) {
    super(message);
    this.code = code;
    this.data = data;
  }
}

type Params = Record<string, unknown>;

interface Method {
  /** Every accepted parameter, in lightningd's positional order. */
  readonly params: readonly string[];
  readonly required: readonly string[];
  run(params: Params, hangUp: AbortSignal): Promise<unknown>;
}

/** What the facade knows about an invoice beyond the node's record. */
interface Labelled {
  readonly label: string;
  readonly description: string | undefined;
  updatedIndex: number | undefined;
}

const base64url = (bytes: Uint8Array) => {
  const text = Buffer.from(bytes).toString('base64url');
  return text + '='.repeat((4 - (text.length % 4)) % 4);
};

/**
 * Serves clnrest for `node` on loopback. Invoices made through it get labels; payments made by the node
 * through any facade show in `listpays`.
 *
 * @example
 * const { url, rune, close } = await Cln.serve(net.node('payer'), { port: 3010 });
 */
export async function serve(node: Node, options: Options = {}): Promise<Facade> {
  const secret = randomBytes(32);
  const authcode = (restrictions: string) => createHmac('sha256', secret).update(restrictions).digest();
  const rune = base64url(Buffer.concat([authcode(UNIQUE_ID), Buffer.from(UNIQUE_ID)]));

  const labels = new Map<string, string>(); // label → payment hash
  const invoices = new Map<string, Labelled>(); // payment hash → label and description
  const payLabels = new Map<string, string>(); // payment hash → the label given to pay/xpay
  let updatedIndex = 0;
  const stopWatching = node.onInvoice((invoice) => {
    const entry = invoices.get(invoice.paymentHash);
    if (entry && invoice.state !== 'open') entry.updatedIndex = ++updatedIndex;
  });

  const invoiceFields = (invoice: NodeInvoice, entry: Labelled): Record<string, unknown> => {
    // lightningd has no canceled state: a canceled invoice can no longer be paid, as an expired one.
    const status = invoice.state === 'settled' ? 'paid' : invoice.state === 'open' ? 'unpaid' : 'expired';
    const fields: Record<string, unknown> = {
      label: entry.label,
      bolt11: invoice.paymentRequest,
      payment_hash: invoice.paymentHash,
    };
    if (invoice.amountMsat !== undefined) fields.amount_msat = invoice.amountMsat;
    fields.status = status;
    if (status === 'paid') {
      fields.pay_index = invoice.settleIndex;
      fields.amount_received_msat = invoice.receivedMsat;
      fields.paid_at = invoice.settledAt;
      fields.payment_preimage = invoice.preimage;
    }
    if (entry.description !== undefined) fields.description = entry.description;
    fields.expires_at = invoice.expiresAt;
    fields.created_index = invoice.addIndex;
    if (entry.updatedIndex !== undefined) fields.updated_index = entry.updatedIndex;
    return fields;
  };

  const labelled = (): [NodeInvoice, Labelled][] =>
    node
      .listInvoices()
      .flatMap((invoice): [NodeInvoice, Labelled][] => {
        const entry = invoices.get(invoice.paymentHash);
        return entry ? [[invoice, entry]] : [];
      })
      .sort(([a], [b]) => a.addIndex - b.addIndex);

  const payFields = (payment: Payment): Record<string, unknown> => {
    const status =
      payment.state === 'succeeded' ? 'complete' : payment.state === 'failed' ? 'failed' : 'pending';
    const fields: Record<string, unknown> = {
      bolt11: payment.paymentRequest,
      destination: payment.destination,
      payment_hash: payment.paymentHash,
      status,
      created_at: payment.createdAt,
    };
    const label = payLabels.get(payment.paymentHash);
    if (label !== undefined) fields.label = label;
    if (status === 'complete') {
      fields.completed_at = payment.settledAt;
      fields.preimage = payment.preimage;
      fields.amount_msat = payment.amountMsat;
      fields.amount_sent_msat = payment.amountMsat + (payment.feeMsat ?? 0);
      fields.number_of_parts = 1;
    } else if (status === 'failed') {
      fields.amount_sent_msat = 0; // nothing reached the payee
    } else {
      fields.amount_msat = payment.amountMsat;
      fields.amount_sent_msat = payment.amountMsat;
    }
    fields.created_index = payment.index;
    return fields;
  };

  /** Pays for `pay` and `xpay`, which differ only in names, defaults and error codes. */
  const send = async (
    params: Params,
    how: { invoiceParam: 'bolt11' | 'invstring'; xpay: boolean },
  ): Promise<Payment & { preimage: string; feeMsat: number }> => {
    const text = str(params[how.invoiceParam], how.invoiceParam);
    let decoded: Invoice.Invoice;
    try {
      decoded = Invoice.decode(text);
    } catch (error) {
      throw new RpcError(
        RPC.invalidParams,
        `${how.invoiceParam}: Invalid bolt11: ${(error as Error).message}`,
      );
    }
    const given = params.amount_msat === undefined ? undefined : msat(params.amount_msat, 'amount_msat');
    if (decoded.amountMsat !== undefined && given !== undefined) {
      throw new RpcError(RPC.invalidParams, 'amount_msat parameter unnecessary');
    }
    if (decoded.amountMsat === undefined && given === undefined) {
      throw new RpcError(RPC.invalidParams, 'amount_msat parameter required');
    }
    const amountMsat = given ?? Number(decoded.amountMsat);
    const retryFor =
      params.retry_for === undefined ? DEFAULT_RETRY_FOR : int(params.retry_for, 'retry_for', 0xffffffff);
    const maxFeeMsat =
      params.maxfee !== undefined
        ? msat(params.maxfee, 'maxfee')
        : how.xpay
          ? Math.max(5000, Math.floor(amountMsat / 100))
          : Math.max(
              params.exemptfee === undefined ? 5000 : msat(params.exemptfee, 'exemptfee'),
              Math.floor(
                (amountMsat *
                  (params.maxfeepercent === undefined ? 0.5 : num(params.maxfeepercent, 'maxfeepercent'))) /
                  100,
              ),
            );
    const hash = toHex(decoded.paymentHash);
    if (params.label !== undefined) payLabels.set(hash, str(params.label, 'label'));
    try {
      return await node.payInvoice(text, {
        amountMsat: given,
        maxFeeMsat,
        timeoutMs: Math.max(1, retryFor * 1000),
      });
    } catch (error) {
      if (!(error instanceof PaymentError)) throw error;
      if (error.code === 'DEVNET_ALREADY_PAID' && error.payment?.state === 'succeeded' && !how.xpay) {
        // pay answers a second call for a paid invoice with the first payment's result.
        return error.payment as Payment & { preimage: string; feeMsat: number };
      }
      throw payFailure(error, how.xpay);
    }
  };

  const methods: Record<string, Method> = {
    getinfo: {
      params: [],
      required: [],
      async run() {
        const info = node.info();
        const address = info.address && { type: 'ipv4', address: info.address.host, port: info.address.port };
        return {
          id: info.nodeId,
          alias: info.alias,
          color: info.nodeId.slice(2, 8), // lightningd's default: the node id's first three bytes
          num_peers: info.peers,
          num_pending_channels: info.channels.pending,
          num_active_channels: info.channels.active,
          num_inactive_channels: info.channels.inactive,
          address: address ? [address] : [],
          ...(address && { binding: [address] }),
          version: VERSION,
          blockheight: info.blockHeight,
          network: 'regtest',
          fees_collected_msat: 0,
          'lightning-dir': `/devnet/${info.alias}/regtest`,
        };
      },
    },

    invoice: {
      params: [
        'amount_msat',
        'label',
        'description',
        'expiry',
        'fallbacks',
        'preimage',
        'exposeprivatechannels',
        'cltv',
        'deschashonly',
      ],
      required: ['amount_msat', 'label', 'description'],
      async run(params) {
        unsupported(params, ['fallbacks', 'exposeprivatechannels', 'cltv']);
        const amount = msatOrAny(params.amount_msat);
        const label = labelOf(params.label);
        const description = str(params.description, 'description');
        const expiry =
          params.expiry === undefined ? DEFAULT_INVOICE_EXPIRY : int(params.expiry, 'expiry', 0xffffffff);
        const preimage = params.preimage === undefined ? undefined : hex32(params.preimage, 'preimage');
        const hashOnly =
          params.deschashonly === undefined ? false : bool(params.deschashonly, 'deschashonly');
        if (labels.has(label)) throw new RpcError(RPC.labelExists, `Duplicate label '${label}'`);
        let invoice: NodeInvoice;
        try {
          invoice = await node.createInvoice({
            amountMsat: amount === 'any' ? undefined : amount,
            ...(hashOnly
              ? { descriptionHash: toHex(sha256(new TextEncoder().encode(description))) }
              : { description }),
            expirySeconds: expiry,
            preimage,
          });
        } catch (error) {
          if (error instanceof InvoiceError && error.code === 'DEVNET_INVOICE_EXISTS') {
            throw new RpcError(RPC.preimageExists, 'preimage already used');
          }
          throw error;
        }
        labels.set(label, invoice.paymentHash);
        invoices.set(invoice.paymentHash, { label, description, updatedIndex: undefined });
        const result: Record<string, unknown> = {
          payment_hash: invoice.paymentHash,
          expires_at: invoice.expiresAt,
          bolt11: invoice.paymentRequest,
          payment_secret: toHex(Invoice.decode(invoice.paymentRequest).paymentSecret!), // LDK always sets one
          created_index: invoice.addIndex,
        };
        const receivable = node
          .listChannels()
          .filter((channel) => channel.usable)
          .reduce((sum, channel) => sum + channel.receivableMsat, 0);
        if (amount !== 'any' && receivable < amount) {
          result.warning_capacity = 'Insufficient incoming channel capacity to pay invoice';
        }
        return result;
      },
    },

    listinvoices: {
      params: ['label', 'invstring', 'payment_hash', 'offer_id', 'index', 'start', 'limit'],
      required: [],
      async run(params) {
        const selectors = ['label', 'invstring', 'payment_hash', 'offer_id'].filter(
          (name) => params[name] !== undefined,
        );
        if (selectors.length > 1) {
          throw new RpcError(
            RPC.invalidParams,
            'Can only specify one of {label}, {invstring}, {payment_hash} or {offer_id}',
          );
        }
        const index =
          params.index === undefined ? undefined : oneOf(params.index, 'index', ['created', 'updated']);
        if (index === undefined && (params.start !== undefined || params.limit !== undefined)) {
          throw new RpcError(RPC.invalidParams, 'Can only specify {start} or {limit} with {index}');
        }
        const label = params.label === undefined ? undefined : labelOf(params.label);
        const invstring =
          params.invstring === undefined ? undefined : str(params.invstring, 'invstring').toLowerCase();
        const hash =
          params.payment_hash === undefined ? undefined : hex32(params.payment_hash, 'payment_hash');
        const start = params.start === undefined ? 0 : int(params.start, 'start', Number.MAX_SAFE_INTEGER);
        const limit =
          params.limit === undefined ? Number.POSITIVE_INFINITY : int(params.limit, 'limit', 0xffffffff);
        // BOLT12 offers do not exist on the devnet: filtering by one finds nothing.
        const found = labelled()
          .filter(([invoice, entry]) => {
            if (params.offer_id !== undefined) return false;
            if (label !== undefined && entry.label !== label) return false;
            if (invstring !== undefined && invoice.paymentRequest !== invstring) return false;
            if (hash !== undefined && invoice.paymentHash !== hash) return false;
            if (index === 'created') return invoice.addIndex >= start;
            if (index === 'updated') return entry.updatedIndex !== undefined && entry.updatedIndex >= start;
            return true;
          })
          .sort(([a, x], [b, y]) =>
            index === 'updated' ? (x.updatedIndex ?? 0) - (y.updatedIndex ?? 0) : a.addIndex - b.addIndex,
          )
          .slice(0, limit);
        return { invoices: found.map(([invoice, entry]) => invoiceFields(invoice, entry)) };
      },
    },

    waitinvoice: {
      params: ['label'],
      required: ['label'],
      async run(params, hangUp) {
        const label = labelOf(params.label);
        const hash = labels.get(label);
        if (hash === undefined) throw new RpcError(RPC.lightningd, 'Label not found');
        // Resolves undefined only when the client hangs up first: then nobody is left to answer.
        const done = await new Promise<NodeInvoice | undefined>((resolve) => {
          const current = node.lookupInvoice(hash)!;
          if (current.state !== 'open') return resolve(current);
          const stop = node.onInvoice((invoice) => {
            if (invoice.paymentHash !== hash || invoice.state === 'open') return;
            finish();
            resolve(invoice);
          });
          const gone = () => {
            finish();
            resolve(undefined);
          };
          const finish = () => {
            stop();
            hangUp.removeEventListener('abort', gone);
          };
          hangUp.addEventListener('abort', gone, { once: true });
        });
        if (!done) return undefined;
        const entry = invoices.get(hash)!;
        if (done.state !== 'settled') {
          throw new RpcError(
            RPC.expiredDuringWait,
            'invoice expired during wait',
            invoiceFields(done, entry),
          );
        }
        return invoiceFields(done, entry);
      },
    },

    pay: {
      params: [
        'bolt11',
        'amount_msat',
        'label',
        'riskfactor',
        'maxfeepercent',
        'retry_for',
        'maxdelay',
        'exemptfee',
        'localinvreqid',
        'exclude',
        'maxfee',
        'description',
        'partial_msat',
      ],
      required: ['bolt11'],
      async run(params) {
        unsupported(params, ['localinvreqid', 'exclude', 'partial_msat']);
        const paid = await send(params, { invoiceParam: 'bolt11', xpay: false });
        return {
          destination: paid.destination,
          payment_hash: paid.paymentHash,
          created_at: paid.createdAt,
          parts: 1,
          amount_msat: paid.amountMsat,
          amount_sent_msat: paid.amountMsat + paid.feeMsat,
          payment_preimage: paid.preimage,
          status: 'complete',
        };
      },
    },

    xpay: {
      params: [
        'invstring',
        'amount_msat',
        'maxfee',
        'layers',
        'retry_for',
        'partial_msat',
        'maxdelay',
        'payer_note',
        'label',
        'localinvreqid',
        'dev_use_shadow',
      ],
      required: ['invstring'],
      async run(params) {
        unsupported(params, ['layers', 'partial_msat', 'localinvreqid']);
        const paid = await send(params, { invoiceParam: 'invstring', xpay: true });
        return {
          payment_preimage: paid.preimage,
          amount_msat: paid.amountMsat,
          amount_sent_msat: paid.amountMsat + paid.feeMsat,
          failed_parts: 0,
          successful_parts: 1,
        };
      },
    },

    listpays: {
      params: ['bolt11', 'payment_hash', 'status', 'index', 'start', 'limit'],
      required: [],
      async run(params) {
        const bolt11 = params.bolt11 === undefined ? undefined : str(params.bolt11, 'bolt11').toLowerCase();
        const hash =
          params.payment_hash === undefined ? undefined : hex32(params.payment_hash, 'payment_hash');
        const status =
          params.status === undefined
            ? undefined
            : oneOf(params.status, 'status', ['pending', 'complete', 'failed']);
        const index =
          params.index === undefined ? undefined : oneOf(params.index, 'index', ['created', 'updated']);
        const start = params.start === undefined ? 0 : int(params.start, 'start', Number.MAX_SAFE_INTEGER);
        const limit =
          params.limit === undefined ? Number.POSITIVE_INFINITY : int(params.limit, 'limit', 0xffffffff);
        const pays = node
          .listPayments()
          .map(payFields)
          .filter(
            (pay) =>
              (bolt11 === undefined || pay.bolt11 === bolt11) &&
              (hash === undefined || pay.payment_hash === hash) &&
              (status === undefined || pay.status === status) &&
              (index === undefined || (pay.created_index as number) >= start),
          )
          .slice(0, limit);
        return { pays };
      },
    },

    listpeerchannels: {
      params: ['id', 'short_channel_id'],
      required: [],
      async run(params) {
        const peer = params.id === undefined ? undefined : str(params.id, 'id').toLowerCase();
        const scid =
          params.short_channel_id === undefined
            ? undefined
            : str(params.short_channel_id, 'short_channel_id');
        const peers = new Set(node.peers());
        const channels = node
          .listChannels()
          .filter(
            (c) =>
              (peer === undefined || c.peer === peer) && (scid === undefined || c.shortChannelId === scid),
          )
          .map((c) => ({
            peer_id: c.peer,
            peer_connected: peers.has(c.peer),
            state: c.ready ? 'CHANNELD_NORMAL' : 'CHANNELD_AWAITING_LOCKIN',
            ...(c.shortChannelId !== undefined && { short_channel_id: c.shortChannelId }),
            channel_id: c.channelId,
            ...(c.fundingTxid !== undefined && {
              funding_txid: c.fundingTxid,
              funding_outnum: c.fundingOutput,
            }),
            private: !c.public,
            opener: c.initiator ? 'local' : 'remote',
            total_msat: c.capacitySat * 1000,
            to_us_msat: c.localBalanceMsat,
            spendable_msat: c.usable ? c.spendableMsat : 0,
            receivable_msat: c.usable ? c.receivableMsat : 0,
          }));
        return { channels };
      },
    },
  };

  const checkRune = (presented: string | undefined): { status: number; error: RpcError } | undefined => {
    if (presented === undefined) {
      return { status: 403, error: new RpcError(RPC.runeNotAuthorized, 'Not authorized: Missing rune') };
    }
    const bytes = /^[A-Za-z0-9_-]+={0,2}$/.test(presented) ? Buffer.from(presented, 'base64url') : undefined;
    if (!bytes || bytes.length <= 32) {
      return {
        status: 401,
        error: new RpcError(
          RPC.invalidParams,
          `rune: should be base64 string: invalid token '${JSON.stringify(presented)}'`,
        ),
      };
    }
    const restrictions = bytes.subarray(32).toString('utf8');
    if (!/^=\d+(&|$)/.test(restrictions)) {
      return {
        status: 401,
        error: new RpcError(
          RPC.invalidParams,
          `rune: should have valid numeric unique_id: invalid token '${JSON.stringify(presented)}'`,
        ),
      };
    }
    if (!sameSecret(bytes.subarray(0, 32).toString('hex'), authcode(restrictions).toString('hex'))) {
      return {
        status: 401,
        error: new RpcError(RPC.runeNotAuthorized, 'Not authorized: Not derived from master'),
      };
    }
    return undefined;
  };

  const answer = (response: ServerResponse, status: number, body: unknown) =>
    reply(response, status, 'application/json', JSON.stringify(body));
  const fail = (response: ServerResponse, status: number, error: RpcError) =>
    answer(response, status, {
      code: error.code,
      message: error.message,
      ...(error.data !== undefined && { data: error.data }),
    });

  const handle = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const path = new URL(request.url ?? '/', 'http://clnrest').pathname;
    if (!path.startsWith('/v1/'))
      return fail(response, 404, new RpcError(RPC.methodNotFound, 'Path not found'));
    if (request.method !== 'POST') {
      return fail(
        response,
        405,
        new RpcError(RPC.methodNotFound, 'Path invalid, http_method must be POST for CLN methods'),
      );
    }
    let body: string;
    try {
      body = await readBody(request);
    } catch (error) {
      if (error instanceof BodyTooLargeError)
        return fail(response, 413, new RpcError(RPC.invalidParams, error.message));
      throw error;
    }
    const rawParams = parseBody(body);
    const header = request.headers.rune;
    const denied = checkRune(Array.isArray(header) ? header[0] : header);
    if (denied) return fail(response, denied.status, denied.error);

    const name = decodeURIComponent(path.slice('/v1/'.length));
    const method = Object.hasOwn(methods, name) ? methods[name] : undefined;
    if (!method) return fail(response, 404, new RpcError(RPC.methodNotFound, `Unknown command '${name}'`));
    const hangUp = new AbortController();
    const stopWatching = onHangUp(response, () => hangUp.abort());
    try {
      const params = named(rawParams, method);
      const result = await method.run(params, hangUp.signal);
      if (!hangUp.signal.aborted) answer(response, 201, result);
    } catch (error) {
      if (error instanceof RpcError) return fail(response, 500, error);
      if (error instanceof ClosedError)
        return fail(response, 500, new RpcError(RPC.lightningd, 'lightningd is shutting down'));
      throw error;
    } finally {
      stopWatching();
    }
  };

  const server = await listen(handle, options);
  return {
    url: server.url,
    rune,
    async close() {
      stopWatching();
      await server.close();
    },
  };
}

/**
 * clnrest reads JSON, and anything that is not JSON as a form (`a=1&b=2`); null-valued parameters are
 * dropped before the call, as `filter_json` does.
 */
function parseBody(body: string): unknown {
  if (body.trim() === '') return {};
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    return Object.fromEntries(new URLSearchParams(body));
  }
  return withoutNulls(value);
}

function withoutNulls(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutNulls);
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value)
        .filter(([, v]) => v !== null)
        .map(([k, v]) => [k, withoutNulls(v)]),
    );
  }
  return value;
}

/** Named parameters from an object or a positional array, checked as lightningd's `param()` does. */
function named(raw: unknown, method: Method): Params {
  let params: Params;
  if (Array.isArray(raw)) {
    if (raw.length > method.params.length) {
      throw new RpcError(
        RPC.invalidParams,
        `too many parameters: got ${raw.length}, expected ${method.params.length}`,
      );
    }
    params = Object.fromEntries(raw.map((value, i) => [method.params[i]!, value]));
  } else if (raw && typeof raw === 'object') {
    params = raw as Params;
    for (const key of Object.keys(params)) {
      if (!method.params.includes(key)) {
        throw new RpcError(
          RPC.invalidParams,
          `unknown parameter: ${key}, this may be caused by a failure to autodetect key=value-style parameters. Please try using the -k flag and explicit key=value pairs of parameters.`,
        );
      }
    }
  } else {
    throw new RpcError(RPC.invalidParams, 'params must be an object or array');
  }
  for (const name of method.required) {
    if (params[name] === undefined)
      throw new RpcError(RPC.invalidParams, `missing required parameter: ${name}`);
  }
  return params;
}

const badParam = (name: string, what: string, value: unknown) =>
  new RpcError(RPC.invalidParams, `${name}: should be ${what}: invalid token '${JSON.stringify(value)}'`);

function unsupported(params: Params, names: readonly string[]): void {
  for (const name of names) {
    if (params[name] !== undefined) {
      throw new RpcError(RPC.invalidParams, `${name}: not supported by the devnet's clnrest`);
    }
  }
}

function str(value: unknown, name: string): string {
  if (typeof value !== 'string') throw badParam(name, 'a string', value);
  return value;
}

function bool(value: unknown, name: string): boolean {
  if (value === true || value === 'true') return true;
  if (value === false || value === 'false') return false;
  throw badParam(name, 'a boolean', value);
}

function num(value: unknown, name: string): number {
  const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isFinite(n)) throw badParam(name, 'a number', value);
  return n;
}

function int(value: unknown, name: string, max: number): number {
  const n = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0 || n > max)
    throw badParam(name, 'an unsigned integer', value);
  return n;
}

function oneOf<T extends string>(value: unknown, name: string, allowed: readonly T[]): T {
  if (typeof value !== 'string' || !allowed.includes(value as T))
    throw badParam(name, allowed.join(' or '), value);
  return value as T;
}

function hex32(value: unknown, name: string): string {
  if (typeof value !== 'string' || !/^[0-9a-fA-F]{64}$/.test(value))
    throw badParam(name, 'a 32 byte hex value', value);
  return value.toLowerCase();
}

/** A label is a string, or a number taken as the string of its digits. */
function labelOf(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' && Number.isInteger(value)) return String(value);
  throw badParam('label', 'a string or number', value);
}

/** lightningd's amount syntax: a number of msat, or `123msat`, `21sat`, `0.001btc`. */
function msat(value: unknown, name: string): number {
  const parsed = parseAmount(value);
  if (parsed === undefined) throw badParam(name, 'a millisatoshi amount', value);
  return parsed;
}

function msatOrAny(value: unknown): number | 'any' {
  if (value === 'any') return 'any';
  const parsed = parseAmount(value);
  if (parsed === undefined || parsed === 0) throw badParam('amount_msat', "positive msat or 'any'", value);
  return parsed;
}

function parseAmount(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
  if (typeof value !== 'string') return undefined;
  const msats = /^(\d+)(?:msat)?$/.exec(value);
  const sats = /^(\d+)(?:\.(\d{3}))?sat$/.exec(value);
  const btc = /^(\d+)(?:\.(\d{1,11}))?btc$/.exec(value);
  const amount = msats
    ? Number(msats[1])
    : sats
      ? Number(sats[1]) * 1000 + Number(sats[2] ?? 0)
      : btc
        ? Number(btc[1]) * 1e11 + Number((btc[2] ?? '').padEnd(11, '0'))
        : undefined;
  return amount !== undefined && Number.isSafeInteger(amount) ? amount : undefined;
}

/** How lightningd's pay and xpay report each way a devnet payment fails. */
function payFailure(error: PaymentError, xpay: boolean): RpcError {
  switch (error.code) {
    case 'DEVNET_INVALID_INVOICE':
      return new RpcError(
        RPC.invalidParams,
        `${xpay ? 'invstring' : 'bolt11'}: Invalid bolt11: ${error.message}`,
      );
    case 'DEVNET_INVOICE_EXPIRED':
      return new RpcError(RPC.payInvoiceExpired, 'Invoice expired');
    case 'DEVNET_INSUFFICIENT_BALANCE':
    case 'DEVNET_NO_ROUTE':
      return new RpcError(
        RPC.payRouteNotFound,
        `${xpay ? 'Failed: ' : ''}We could not find a usable set of paths: ${error.message}`,
      );
    case 'DEVNET_PAYMENT_REJECTED':
      return new RpcError(
        RPC.payDestinationPermFail,
        "Destination said it doesn't know invoice: incorrect_or_unknown_payment_details",
      );
    case 'DEVNET_PAYMENT_IN_FLIGHT':
      return new RpcError(RPC.payInProgress, 'Payment already in progress');
    case 'DEVNET_ALREADY_PAID':
      return new RpcError(RPC.xpayAlreadyPaid, 'Already paid this invoice successfully');
    case 'DEVNET_TIMEOUT':
      return xpay
        ? new RpcError(RPC.xpayFailed, `Timed out: ${error.message}`)
        : new RpcError(RPC.payStoppedRetrying, `Payment timed out: ${error.message}`);
    default:
      return new RpcError(xpay ? RPC.xpayFailed : RPC.lightningd, error.message);
  }
}
