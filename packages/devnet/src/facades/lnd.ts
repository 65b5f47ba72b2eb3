/**
 * LND's REST API in front of a devnet node: the grpc-gateway paths, JSON and errors of LND v0.21, over
 * HTTPS with a self-signed certificate, checking LND-style macaroons on every call. A wallet client
 * written for real LND (l402's `Lnd` backend, or any other) runs against it unchanged.
 *
 * Faithful where a client can tell: snake_case fields, every field present, 64-bit integers as
 * strings, bytes as base64 (but hex where LND uses hex strings), enum names, errors as
 * `{"code","message","details"}` with grpc-gateway's HTTP status, streams as newline-delimited
 * `{"result": …}` lines whose headers go out with the first line, macaroon failures as gRPC `Unknown`
 * (HTTP 500) with LND's messages, an expired invoice reported CANCELED, and the all-invoices stream
 * carrying only adds and settles, as LND's does.
 *
 * @example
 * const net = await Network.start({ nodes: ['merchant'] });
 * const lnd = await Lnd.serve(net.node('merchant'));
 * await fetch(`${lnd.url}/v1/getinfo`, { headers: { 'Grpc-Metadata-macaroon': lnd.macaroonHex } }); // after pinning lnd.certPem
 * await lnd.close();
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { Invoice as Bolt11, Macaroon } from 'l402';
import { DevnetError, PaymentError } from '../Errors.js';
import { concat, toHex } from '../internal/bytes.js';
import { BodyTooLargeError, readBody, reply } from '../internal/facadeServer.js';
import { selfSigned } from '../internal/tls.js';
import type { Channel, Invoice, Node, Payment } from '../Node.js';

/** Where the facade listens. */
export interface ServeOptions {
  /** Defaults to `'127.0.0.1'`. */
  readonly host?: string;
  /** Defaults to 0: a free port. */
  readonly port?: number;
}

/** A running facade: where it listens, what to pin, and LND's three standard macaroons. */
export interface Facade {
  /** `https://host:port`, no trailing slash. */
  readonly url: string;
  /** The self-signed certificate to pin (LND's `tls.cert`). */
  readonly certPem: string;
  /** `admin.macaroon`, hex: everything. */
  readonly macaroonHex: string;
  /** `invoice.macaroon`, hex: create and read invoices; cannot pay or read node info. */
  readonly invoiceMacaroonHex: string;
  /** `readonly.macaroon`, hex: read everything; cannot create invoices or pay. */
  readonly readonlyMacaroonHex: string;
  /** Stops listening and drops every connection, open streams included. */
  close(): Promise<void>;
}

/** The version GetInfo reports: the LND release whose REST contract this facade follows. */
const VERSION = '0.21.2-beta commit=l402-devnet';
/** AddInvoice's default expiry in LND. */
const DEFAULT_EXPIRY_SECONDS = 86_400;
const ZERO_PREIMAGE = '0'.repeat(64);

// ---------------------------------------------------------------------------------------------------
// Errors, as grpc-gateway writes a gRPC status.

/** A gRPC status; grpc-gateway turns it into an HTTP status and a JSON body. */
class RpcError extends Error {
  readonly code: number;
  constructor(code: number, message: string) {
    super(message);
    this.code = code;
  }
}

const UNKNOWN = 2; // what LND returns for a plain Go error, macaroon failures included
const INVALID_ARGUMENT = 3;
const NOT_FOUND = 5;
const ALREADY_EXISTS = 6;
const RESOURCE_EXHAUSTED = 8;
const UNIMPLEMENTED = 12;

/** grpc-gateway's HTTPStatusFromCode. */
const HTTP_STATUS: Readonly<Record<number, number>> = {
  0: 200,
  1: 499,
  2: 500,
  3: 400,
  4: 504,
  5: 404,
  6: 409,
  7: 403,
  8: 429,
  9: 400,
  10: 409,
  11: 400,
  12: 501,
  13: 500,
  14: 503,
  15: 500,
  16: 401,
};

/** grpc-gateway forwards the gRPC response headers as `Grpc-Metadata-*`. */
const GRPC_HEADERS = { 'grpc-metadata-content-type': 'application/grpc' };

const statusBody = (error: RpcError) => ({ code: error.code, message: error.message, details: [] });

// ---------------------------------------------------------------------------------------------------
// Macaroons: LND's format (bakery v3 identifiers carrying the permitted operations), signed with the
// l402 library under a root key of this facade.

type Operations = Readonly<Record<string, readonly string[]>>;

const ENTITIES = [
  'onchain',
  'offchain',
  'address',
  'message',
  'peers',
  'info',
  'invoices',
  'signer',
  'macaroon',
];
const READONLY: Operations = Object.fromEntries(ENTITIES.map((entity) => [entity, ['read']]));
const ADMIN: Operations = Object.fromEntries(
  ENTITIES.map((entity) => [
    entity,
    entity === 'signer' || entity === 'macaroon' ? ['generate', 'read', 'write'] : ['read', 'write'],
  ]),
);
const INVOICE: Operations = { address: ['read', 'write'], invoices: ['read', 'write'], onchain: ['read'] };
/** The identifier version byte of go-macaroon-bakery's v3 (protobuf) identifiers, which LND mints. */
const BAKERY_V3 = 3;
/** LND's default root key id. */
const STORAGE_ID = '0';

function varint(n: number): Uint8Array {
  const out: number[] = [];
  for (; n >= 0x80; n = Math.floor(n / 0x80)) out.push((n & 0x7f) | 0x80);
  out.push(n);
  return Uint8Array.from(out);
}

/** A length-delimited protobuf field. */
const field = (number: number, bytes: Uint8Array) =>
  concat(varint((number << 3) | 2), varint(bytes.length), bytes);
const utf8 = (value: string) => new TextEncoder().encode(value);

/** `MacaroonId { nonce = 1; storageId = 2; repeated Op ops = 3 }`, `Op { entity = 1; repeated actions = 2 }`. */
function identifier(operations: Operations): Uint8Array {
  const ops = Object.keys(operations)
    .sort()
    .map((entity) =>
      field(
        3,
        concat(field(1, utf8(entity)), ...operations[entity]!.map((action) => field(2, utf8(action)))),
      ),
    );
  return concat(
    Uint8Array.of(BAKERY_V3),
    field(1, new Uint8Array(randomBytes(16))),
    field(2, utf8(STORAGE_ID)),
    ...ops,
  );
}

/** The length-delimited fields of a protobuf message, in order; undefined when it does not parse. */
function protoFields(bytes: Uint8Array): [number, Uint8Array][] | undefined {
  const out: [number, Uint8Array][] = [];
  const read = (at: number): [number, number] | undefined => {
    let value = 0;
    for (let shift = 1; at < bytes.length; shift *= 0x80) {
      const byte = bytes[at++]!;
      value += (byte & 0x7f) * shift;
      if (byte < 0x80) return [value, at];
    }
    return undefined;
  };
  for (let at = 0; at < bytes.length; ) {
    const key = read(at);
    if (!key || key[0] % 8 !== 2) return undefined;
    const length = read(key[1]);
    if (!length || length[1] + length[0] > bytes.length) return undefined;
    out.push([Math.floor(key[0] / 8), bytes.subarray(length[1], length[1] + length[0])]);
    at = length[1] + length[0];
  }
  return out;
}

/** Go's `%#U` of a byte, as `encoding/hex` names an invalid one. */
function goRune(byte: number): string {
  const code = `U+${byte.toString(16).toUpperCase().padStart(4, '0')}`;
  const printable = (byte >= 0x20 && byte < 0x7f) || byte >= 0xa1;
  return printable ? `${code} '${String.fromCharCode(byte)}'` : code;
}

/** Go's `hex.DecodeString`, with its errors. */
function goHex(value: string): Uint8Array {
  const bytes = new TextEncoder().encode(value);
  const bad = bytes.findIndex((byte) => !/[0-9a-fA-F]/.test(String.fromCharCode(byte)));
  if (bad >= 0) throw new RpcError(UNKNOWN, `encoding/hex: invalid byte: ${goRune(bytes[bad]!)}`);
  if (bytes.length % 2) throw new RpcError(UNKNOWN, 'encoding/hex: odd length hex string');
  return new Uint8Array(Buffer.from(value, 'hex'));
}

/** Checks a request's macaroon as LND's interceptor does, throwing the error LND would return. */
function authorize(rootKey: Uint8Array, values: readonly string[], entity: string, action: string): void {
  if (values.length !== 1) throw new RpcError(UNKNOWN, `expected 1 macaroon, got ${values.length}`);
  const bytes = goHex(values[0]!);
  let macaroon: Macaroon.Macaroon;
  try {
    macaroon = Macaroon.decode(bytes);
  } catch (error) {
    throw new RpcError(UNKNOWN, `cannot unmarshal macaroon: ${(error as Error).message}`);
  }
  if (bytes[0] !== 2) throw new RpcError(UNKNOWN, 'unknown macaroon version: v1');
  const id = macaroon.identifier;
  const parsed = id[0] === BAKERY_V3 ? protoFields(id.subarray(1)) : undefined;
  if (!parsed) throw new RpcError(UNKNOWN, 'invalid ID');
  const storage = new TextDecoder().decode(parsed.find(([number]) => number === 2)?.[1] ?? new Uint8Array());
  if (storage !== STORAGE_ID)
    throw new RpcError(UNKNOWN, `cannot get macaroon: root key with id ${storage} doesn't exist`);
  if (!Macaroon.verifySignature(macaroon, rootKey)) {
    throw new RpcError(UNKNOWN, 'verification failed: signature mismatch after caveat verification');
  }
  // LND recognizes its own caveats (timeouts, IP locks, custom); the devnet mints none and knows none.
  const [caveat] = macaroon.caveats;
  if (caveat) {
    throw new RpcError(
      UNKNOWN,
      `verification failed: caveat ${JSON.stringify(new TextDecoder().decode(caveat.id))} not satisfied: caveat not recognized`,
    );
  }
  const allowed = parsed
    .filter(([number]) => number === 3)
    .some(([, op]) => {
      const parts = protoFields(op) ?? [];
      const named = (n: number) =>
        parts.filter(([number]) => number === n).map(([, v]) => new TextDecoder().decode(v));
      return named(1)[0] === entity && named(2).includes(action);
    });
  if (!allowed) throw new RpcError(UNKNOWN, 'permission denied');
}

// ---------------------------------------------------------------------------------------------------
// Request fields, read as protojson (and grpc-gateway's query parameters) read them.

type Fields = Readonly<Record<string, unknown>>;

function int64(fields: Fields, name: string): bigint {
  const value = fields[name];
  if (value === undefined || value === null) return 0n;
  if (
    (typeof value === 'number' && Number.isSafeInteger(value)) ||
    (typeof value === 'string' && /^-?\d+$/.test(value))
  ) {
    return BigInt(value);
  }
  throw new RpcError(
    INVALID_ARGUMENT,
    `proto: invalid value for int64 field ${name}: ${JSON.stringify(value)}`,
  );
}

function string(fields: Fields, name: string): string {
  const value = fields[name] ?? '';
  if (typeof value !== 'string')
    throw new RpcError(
      INVALID_ARGUMENT,
      `proto: invalid value for string field ${name}: ${JSON.stringify(value)}`,
    );
  return value;
}

function boolean(fields: Fields, name: string): boolean {
  const value = fields[name] ?? false;
  if (typeof value === 'boolean') return value;
  // Query parameters arrive as text, parsed with Go's strconv.ParseBool.
  if (typeof value === 'string' && /^(1|t|T|TRUE|true|True)$/.test(value)) return true;
  if (typeof value === 'string' && /^(0|f|F|FALSE|false|False)$/.test(value)) return false;
  throw new RpcError(
    INVALID_ARGUMENT,
    `proto: invalid value for bool field ${name}: ${JSON.stringify(value)}`,
  );
}

/** A bytes field: protojson takes standard or URL-safe base64, padded or not. */
function bytes(fields: Fields, name: string): Uint8Array | undefined {
  const value = fields[name];
  if (value === undefined || value === null || value === '') return undefined;
  const body = typeof value === 'string' ? value.replace(/={1,2}$/, '') : undefined;
  if (body === undefined || !/^(?:[A-Za-z0-9+/]*|[A-Za-z0-9_-]*)$/.test(body) || body.length % 4 === 1) {
    throw new RpcError(
      INVALID_ARGUMENT,
      `proto: invalid value for bytes field ${name}: ${JSON.stringify(value)}`,
    );
  }
  return new Uint8Array(Buffer.from(body, body.includes('-') || body.includes('_') ? 'base64url' : 'base64'));
}

/** A bytes value in a path or query: grpc-gateway's runtime.Bytes, padded standard or URL-safe base64. */
function gatewayBytes(value: string): Uint8Array {
  const padded = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
  const paddedUrl = /^(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-]{2}==|[A-Za-z0-9_-]{3}=)?$/;
  if (padded.test(value)) return new Uint8Array(Buffer.from(value, 'base64'));
  if (paddedUrl.test(value)) return new Uint8Array(Buffer.from(value, 'base64url'));
  throw new RpcError(
    INVALID_ARGUMENT,
    `illegal base64 data at input byte ${Math.min(value.length, value.search(/[^A-Za-z0-9+/_=-]|$/))}`,
  );
}

/** LND's UnmarshallAmt: sat or msat, not both. */
function msat(fields: Fields, sat: string, milli: string): bigint {
  const sats = int64(fields, sat);
  const msats = int64(fields, milli);
  if (sats !== 0n && msats !== 0n)
    throw new RpcError(UNKNOWN, 'sat and msat arguments are mutually exclusive');
  const value = sats !== 0n ? sats * 1000n : msats;
  if (value < 0n) throw new RpcError(UNKNOWN, 'amount cannot be negative');
  if (value > BigInt(Number.MAX_SAFE_INTEGER))
    throw new RpcError(UNKNOWN, `amount of ${value} msat is too large`);
  return value;
}

// ---------------------------------------------------------------------------------------------------
// Messages, as LND's REST JSON writes them.

const b64 = (hex: string | Uint8Array) =>
  Buffer.from(typeof hex === 'string' ? Buffer.from(hex, 'hex') : hex).toString('base64');
const sats = (msat: number) => String(Math.floor(msat / 1000));
const amount = (msat: number) => ({ sat: sats(msat), msat: String(msat) });

/** `block x tx x output` → the 64-bit channel id LND prints. */
function channelId(scid: string | undefined): string {
  const [block = 0, tx = 0, output = 0] = (scid ?? '0x0x0').split('x').map(Number);
  return String((BigInt(block) << 40n) | (BigInt(tx) << 16n) | BigInt(output));
}

// lnwire's feature names, by bit pair (the even bit is "required", the odd one "optional").
const FEATURE_NAMES: Readonly<Record<number, string>> = {
  0: 'data-loss-protect',
  2: 'upfront-shutdown-script',
  3: 'gossip-queries',
  4: 'tlv-onion',
  5: 'gossip-queries-ex',
  6: 'static-remote-key',
  7: 'payment-addr',
  8: 'multi-path-payments',
  9: 'wumbo-channels',
  10: 'anchor-commitments',
  11: 'anchors-zero-fee-htlc-tx',
  12: 'route-blinding',
  13: 'shutdown-any-segwit',
  15: 'amp',
  22: 'explicit-commitment-type',
  23: 'scid-alias',
  24: 'payment-metadata',
  25: 'zero-conf',
  27: 'keysend',
};

function features(
  decoded: Bolt11.Invoice,
): Record<string, { name: string; is_required: boolean; is_known: boolean }> {
  const out: Record<string, { name: string; is_required: boolean; is_known: boolean }> = {};
  for (const bit of decoded.features?.bits ?? []) {
    const name = FEATURE_NAMES[bit >> 1];
    out[bit] = { name: name ?? 'unknown', is_required: bit % 2 === 0, is_known: name !== undefined };
  }
  return out;
}

function routeHints(decoded: Bolt11.Invoice) {
  return decoded.routeHints.map((route) => ({
    hop_hints: route.map((hop) => ({
      node_id: toHex(hop.pubkey),
      chan_id: channelId(hop.shortChannelId),
      fee_base_msat: hop.feeBaseMsat,
      fee_proportional_millionths: hop.feeProportionalMillionths,
      cltv_expiry_delta: hop.cltvExpiryDelta,
    })),
  }));
}

// LND has no "expired" state: its expiry watcher cancels an open invoice once it expires.
const INVOICE_STATE = {
  open: 'OPEN',
  settled: 'SETTLED',
  expired: 'CANCELED',
  canceled: 'CANCELED',
} as const;

function invoiceMessage(invoice: Invoice, decoded: Bolt11.Invoice) {
  const hints = routeHints(decoded);
  const settled = invoice.state === 'settled';
  return {
    memo: invoice.description ?? '',
    r_preimage: b64(invoice.preimage),
    r_hash: b64(invoice.paymentHash),
    value: sats(invoice.amountMsat ?? 0),
    value_msat: String(invoice.amountMsat ?? 0),
    settled,
    creation_date: String(invoice.createdAt),
    settle_date: String(invoice.settledAt ?? 0),
    payment_request: invoice.paymentRequest,
    description_hash: invoice.descriptionHash ? b64(invoice.descriptionHash) : '',
    expiry: String(invoice.expiresAt - invoice.createdAt),
    fallback_addr: '',
    cltv_expiry: String(decoded.minFinalCltvExpiry),
    route_hints: hints,
    private: hints.length > 0,
    add_index: String(invoice.addIndex),
    settle_index: String(invoice.settleIndex ?? 0),
    amt_paid: String(invoice.receivedMsat), // deprecated, and in msat despite its name
    amt_paid_sat: sats(invoice.receivedMsat),
    amt_paid_msat: String(invoice.receivedMsat),
    state: INVOICE_STATE[invoice.state],
    // The devnet does not record the HTLCs that paid an invoice.
    htlcs: [],
    features: features(decoded),
    is_keysend: false,
    payment_addr: decoded.paymentSecret ? b64(decoded.paymentSecret) : '',
    is_amp: false,
    amp_invoice_state: {},
    is_blinded: false,
    blinded_path_config: null,
  };
}

const PAYMENT_STATUS = { 'in-flight': 'IN_FLIGHT', succeeded: 'SUCCEEDED', failed: 'FAILED' } as const;

/** The devnet's failure codes as LND's PaymentFailureReason. */
function failureReason(payment: Payment): string {
  switch (payment.failure?.code) {
    case undefined:
      return 'FAILURE_REASON_NONE';
    case 'DEVNET_NO_ROUTE':
      return 'FAILURE_REASON_NO_ROUTE';
    case 'DEVNET_INSUFFICIENT_BALANCE':
      return 'FAILURE_REASON_INSUFFICIENT_BALANCE';
    case 'DEVNET_TIMEOUT':
      return 'FAILURE_REASON_TIMEOUT';
    // The payee refusing (unknown, expired or canceled invoice, wrong amount) reaches LND as
    // incorrect_or_unknown_payment_details.
    case 'DEVNET_PAYMENT_REJECTED':
    case 'DEVNET_INVOICE_EXPIRED':
      return 'FAILURE_REASON_INCORRECT_PAYMENT_DETAILS';
    default:
      return 'FAILURE_REASON_ERROR';
  }
}

function paymentMessage(payment: Payment) {
  const fee = payment.feeMsat ?? 0;
  return {
    payment_hash: payment.paymentHash,
    value: sats(payment.amountMsat),
    creation_date: String(payment.createdAt),
    fee: sats(fee),
    payment_preimage: payment.preimage ?? ZERO_PREIMAGE,
    value_sat: sats(payment.amountMsat),
    value_msat: String(payment.amountMsat),
    payment_request: payment.paymentRequest,
    status: PAYMENT_STATUS[payment.state],
    fee_sat: sats(fee),
    fee_msat: String(fee),
    creation_time_ns: String(BigInt(payment.createdAt) * 1_000_000_000n),
    // The devnet does not record HTLC attempts.
    htlcs: [],
    payment_index: String(payment.index),
    failure_reason: failureReason(payment),
    first_hop_custom_records: {},
  };
}

function channelMessage(channel: Channel) {
  // What the devnet does not model (commitment fees, reserves, counters, constraints) is left at
  // protojson's zero values.
  return {
    active: channel.usable,
    remote_pubkey: channel.peer,
    channel_point: `${channel.fundingTxid ?? ''}:${channel.fundingOutput ?? 0}`,
    chan_id: channelId(channel.shortChannelId),
    capacity: String(channel.capacitySat),
    local_balance: sats(channel.localBalanceMsat),
    remote_balance: sats(channel.remoteBalanceMsat),
    commit_fee: '0',
    commit_weight: '0',
    fee_per_kw: '0',
    unsettled_balance: sats(channel.unsettledLocalMsat + channel.unsettledRemoteMsat),
    total_satoshis_sent: '0',
    total_satoshis_received: '0',
    num_updates: '0',
    pending_htlcs: [],
    csv_delay: 0,
    private: !channel.public,
    initiator: channel.initiator,
    chan_status_flags: 'ChanStatusDefault',
    local_chan_reserve_sat: '0',
    remote_chan_reserve_sat: '0',
    static_remote_key: true,
    commitment_type: 'STATIC_REMOTE_KEY',
    lifetime: '0',
    uptime: '0',
    close_address: '',
    push_amount_sat: '0',
    thaw_height: 0,
    local_constraints: null,
    remote_constraints: null,
    alias_scids: [],
    zero_conf: false,
    zero_conf_confirmed_scid: '0',
    peer_alias: '',
    peer_scid_alias: '0',
    memo: '',
    custom_channel_data: '',
  };
}

/** Go's `%v` of a UTC time, as LND's "invoice expired" message prints it. */
function goTime(unixSeconds: number): string {
  return `${new Date(unixSeconds * 1000).toISOString().slice(0, 19).replace('T', ' ')} +0000 UTC`;
}

// ---------------------------------------------------------------------------------------------------
// Transport: routing, unary answers and streams.

interface Request {
  readonly params: Readonly<Record<string, string>>;
  /** Query parameters and the JSON body, as grpc-gateway merges them into the request message. */
  readonly fields: Fields;
}

/** One server stream: headers go out with the first line, as grpc-gateway sends them. */
class Stream {
  private started = false;
  private ended = false;
  private readonly closers: (() => void)[] = [];

  constructor(private readonly res: ServerResponse) {
    res.on('close', () => {
      this.ended = true;
      for (const close of this.closers.splice(0)) close();
    });
  }

  get open(): boolean {
    return !this.ended;
  }

  /** Runs `close` when the stream ends, whoever ends it. */
  onClose(close: () => void): void {
    if (this.ended) close();
    else this.closers.push(close);
  }

  send(message: unknown): void {
    if (this.ended) return;
    this.start(200);
    this.res.write(`${JSON.stringify({ result: message })}\n`);
  }

  /** Ends the stream with a gRPC error: as the status when nothing was sent yet, always as a line. */
  fail(error: RpcError): void {
    if (this.ended) return;
    this.start(HTTP_STATUS[error.code] ?? 500);
    this.res.end(`${JSON.stringify({ error: statusBody(error) })}\n`);
    this.ended = true;
  }

  end(): void {
    if (this.ended) return;
    this.start(200);
    this.res.end();
    this.ended = true;
  }

  private start(status: number): void {
    if (this.started) return;
    this.started = true;
    this.res.writeHead(status, { 'content-type': 'application/json', ...GRPC_HEADERS });
  }
}

interface Route {
  readonly method: 'GET' | 'POST';
  readonly path: string;
  /** The macaroon operation the RPC needs, as in LND's permission table. */
  readonly permission: readonly [entity: string, action: string];
  readonly unary?: (request: Request) => unknown | Promise<unknown>;
  readonly stream?: (request: Request, stream: Stream) => void;
}

function answer(res: ServerResponse, status: number, body: unknown): void {
  reply(res, status, 'application/json', JSON.stringify(body), GRPC_HEADERS);
}

function rpcError(error: unknown): RpcError {
  if (error instanceof RpcError) return error;
  if (error instanceof DevnetError) return new RpcError(UNKNOWN, error.message);
  return new RpcError(UNKNOWN, String((error as Error)?.message ?? error));
}

/** The JSON body as the request message's fields. */
async function readFields(req: IncomingMessage): Promise<Fields> {
  let text: string;
  try {
    text = await readBody(req);
  } catch (error) {
    if (error instanceof BodyTooLargeError) throw new RpcError(RESOURCE_EXHAUSTED, `grpc: ${error.message}`);
    throw error;
  }
  if (text.trim() === '') return {}; // grpc-gateway reads an empty body as an empty message
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (error) {
    throw new RpcError(INVALID_ARGUMENT, `proto: syntax error: ${(error as Error).message}`);
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new RpcError(INVALID_ARGUMENT, 'proto: syntax error: the request body must be a JSON object');
  }
  return body as Fields;
}

function match(route: Route, path: string): Record<string, string> | undefined {
  const want = route.path.split('/');
  const got = path.split('/');
  if (want.length !== got.length) return undefined;
  const params: Record<string, string> = {};
  for (const [i, part] of want.entries()) {
    const segment = got[i]!;
    if (part.startsWith('{')) {
      if (segment === '') return undefined;
      try {
        params[part.slice(1, -1)] = decodeURIComponent(segment);
      } catch {
        return undefined; // malformed percent-encoding matches no route
      }
    } else if (part !== segment) return undefined;
  }
  return params;
}

// ---------------------------------------------------------------------------------------------------
// The RPCs.

function routes(node: Node): Route[] {
  const decodedByRequest = new Map<string, Bolt11.Invoice>();
  const decoded = (paymentRequest: string) => {
    let result = decodedByRequest.get(paymentRequest);
    if (!result) {
      result = Bolt11.decode(paymentRequest);
      decodedByRequest.set(paymentRequest, result);
    }
    return result;
  };
  const invoice = (record: Invoice) => invoiceMessage(record, decoded(record.paymentRequest));

  /** A payment request decoded as LND's zpay32 does, with its errors. */
  const payReq = (text: string): Bolt11.Invoice => {
    let result: Bolt11.Invoice;
    try {
      result = decoded(text);
    } catch (error) {
      throw new RpcError(UNKNOWN, (error as Error).message);
    }
    if (result.network !== 'regtest')
      throw new RpcError(UNKNOWN, "invoice not for current active network 'regtest'");
    return result;
  };

  const lookup = (hash: Uint8Array): Invoice => {
    if (hash.length !== 32)
      throw new RpcError(UNKNOWN, `payment hash must be exactly 32 bytes, is instead ${hash.length}`);
    const record = node.lookupInvoice(toHex(hash));
    if (!record) throw new RpcError(NOT_FOUND, 'unable to locate invoice');
    return record;
  };

  return [
    {
      method: 'GET',
      path: '/v1/getinfo',
      permission: ['info', 'read'],
      unary: () => {
        const info = node.info();
        return {
          version: VERSION,
          commit_hash: '',
          identity_pubkey: info.nodeId,
          alias: info.alias,
          color: '#3399ff',
          num_pending_channels: info.channels.pending,
          num_active_channels: info.channels.active,
          num_inactive_channels: info.channels.inactive,
          num_peers: info.peers,
          block_height: info.blockHeight,
          block_hash: info.blockHash,
          best_header_timestamp: String(info.blockTime),
          synced_to_chain: true,
          synced_to_graph: true,
          testnet: false,
          chains: [{ chain: 'bitcoin', network: 'regtest' }],
          uris: info.address ? [`${info.nodeId}@${info.address.host}:${info.address.port}`] : [],
          features: {},
          require_htlc_interceptor: false,
          store_final_htlc_resolutions: false,
          wallet_synced: true,
          graph_cache_status: 'GRAPH_CACHE_STATUS_LOADED',
        };
      },
    },
    {
      method: 'GET',
      path: '/v1/balance/channels',
      permission: ['offchain', 'read'],
      unary: () => {
        const balance = node.balance();
        return {
          balance: sats(balance.localMsat),
          pending_open_balance: sats(balance.pendingOpenLocalMsat),
          local_balance: amount(balance.localMsat),
          remote_balance: amount(balance.remoteMsat),
          unsettled_local_balance: amount(balance.unsettledLocalMsat),
          unsettled_remote_balance: amount(balance.unsettledRemoteMsat),
          pending_open_local_balance: amount(balance.pendingOpenLocalMsat),
          pending_open_remote_balance: amount(balance.pendingOpenRemoteMsat),
          custom_channel_data: '',
        };
      },
    },
    {
      method: 'GET',
      path: '/v1/channels',
      permission: ['offchain', 'read'],
      unary: ({ fields }) => {
        const active = boolean(fields, 'active_only');
        const inactive = boolean(fields, 'inactive_only');
        const publicOnly = boolean(fields, 'public_only');
        const privateOnly = boolean(fields, 'private_only');
        if (active && inactive)
          throw new RpcError(UNKNOWN, 'either `active_only` or `inactive_only` can be set, but not both');
        if (publicOnly && privateOnly)
          throw new RpcError(UNKNOWN, 'either `public_only` or `private_only` can be set, but not both');
        const peerBytes =
          typeof fields.peer === 'string' && fields.peer !== '' ? gatewayBytes(fields.peer) : undefined;
        const peer = peerBytes && toHex(peerBytes);
        // LND lists open channels only; pending ones are in PendingChannels.
        const channels = node
          .listChannels()
          .filter((c) => c.ready)
          .filter((c) => (!active || c.usable) && (!inactive || !c.usable))
          .filter((c) => (!publicOnly || c.public) && (!privateOnly || !c.public))
          .filter((c) => peer === undefined || c.peer === peer);
        return { channels: channels.map(channelMessage) };
      },
    },
    {
      method: 'POST',
      path: '/v1/invoices',
      permission: ['invoices', 'write'],
      unary: async ({ fields }) => {
        const amountMsat = msat(fields, 'value', 'value_msat');
        const memo = string(fields, 'memo');
        if (Buffer.byteLength(memo) > 1024)
          throw new RpcError(UNKNOWN, `memo too large: ${Buffer.byteLength(memo)} bytes (maxsize=1024)`);
        const descriptionHash = bytes(fields, 'description_hash');
        if (descriptionHash && descriptionHash.length !== 32) {
          throw new RpcError(UNKNOWN, `description hash is ${descriptionHash.length} bytes, must be 32`);
        }
        const preimage = bytes(fields, 'r_preimage');
        if (preimage && preimage.length !== 32)
          throw new RpcError(UNKNOWN, `invalid preimage length of ${preimage.length}, want 32`);
        if (boolean(fields, 'is_amp'))
          throw new RpcError(UNKNOWN, 'the devnet does not support AMP invoices');
        const expiry = int64(fields, 'expiry');
        if (expiry < 0n) throw new RpcError(UNKNOWN, 'expiry cannot be negative');
        let created: Invoice;
        try {
          created = await node.createInvoice({
            amountMsat: Number(amountMsat),
            ...(descriptionHash ? { descriptionHash: toHex(descriptionHash) } : { description: memo }),
            expirySeconds: expiry === 0n ? DEFAULT_EXPIRY_SECONDS : Number(expiry),
            ...(preimage && { preimage: toHex(preimage) }),
          });
        } catch (error) {
          if (error instanceof DevnetError && error.code === 'DEVNET_INVOICE_EXISTS') {
            throw new RpcError(UNKNOWN, 'invoice with payment hash already exists');
          }
          throw error;
        }
        return {
          r_hash: b64(created.paymentHash),
          payment_request: created.paymentRequest,
          add_index: String(created.addIndex),
          payment_addr: b64(decoded(created.paymentRequest).paymentSecret ?? new Uint8Array()),
        };
      },
    },
    {
      method: 'GET',
      path: '/v1/invoice/{r_hash_str}',
      permission: ['invoices', 'read'],
      unary: ({ params }) => invoice(lookup(goHex(params.r_hash_str!))),
    },
    {
      method: 'GET',
      path: '/v2/invoices/lookup',
      permission: ['invoices', 'read'],
      unary: ({ fields }) => {
        if (typeof fields.payment_hash !== 'string' || fields.payment_hash === '') {
          throw new RpcError(INVALID_ARGUMENT, 'the devnet looks invoices up by payment_hash only');
        }
        const hash = gatewayBytes(fields.payment_hash);
        if (hash.length !== 32)
          throw new RpcError(INVALID_ARGUMENT, `invalid hash length of ${hash.length}, want 32`);
        return invoice(lookup(hash));
      },
    },
    {
      method: 'GET',
      path: '/v1/invoices/subscribe',
      permission: ['invoices', 'read'],
      stream: ({ fields }, stream) => {
        // LND tells each subscriber an add or a settle once, by index; catch-up comes first.
        let addIndex = Number(int64(fields, 'add_index'));
        let settleIndex = Number(int64(fields, 'settle_index'));
        const deliver = (record: Invoice) => {
          if (record.state === 'open' && record.addIndex > addIndex) addIndex = record.addIndex;
          else if (record.state === 'settled' && record.settleIndex! > settleIndex)
            settleIndex = record.settleIndex!;
          else return;
          stream.send(invoice(record));
        };
        const all = node.listInvoices();
        // Catch-up add events carry each invoice as it is now; LND passes on the open and settled ones.
        if (addIndex > 0) {
          for (const record of all.filter((r) => r.addIndex > addIndex)) {
            if (record.state === 'open' || record.state === 'settled') stream.send(invoice(record));
          }
          addIndex = Math.max(addIndex, ...all.map((r) => r.addIndex));
        }
        if (settleIndex > 0) {
          const settled = all.filter((r) => (r.settleIndex ?? 0) > settleIndex);
          for (const record of settled.sort((a, b) => a.settleIndex! - b.settleIndex!)) deliver(record);
        }
        // Cancels and expiries are not sent to this stream in LND, only to single-invoice subscribers.
        // (Catch-up and subscribing run in one turn of the event loop: no event falls between them.)
        stream.onClose(node.onInvoice(deliver));
      },
    },
    {
      method: 'POST',
      path: '/v2/router/send',
      permission: ['offchain', 'write'],
      stream: ({ fields }, stream) => {
        const text = string(fields, 'payment_request');
        if (text === '')
          throw new RpcError(UNKNOWN, 'the devnet pays payment requests only: payment_request is required');
        if (Number(int64(fields, 'timeout_seconds')) <= 0)
          throw new RpcError(UNKNOWN, 'timeout_seconds must be specified');
        const maxFeeMsat = msat(fields, 'fee_limit_sat', 'fee_limit_msat');
        const amountMsat = msat(fields, 'amt', 'amt_msat');
        const request = payReq(text);
        if (request.amountMsat !== undefined && amountMsat !== 0n) {
          throw new RpcError(UNKNOWN, 'amount must not be specified when paying a non-zero amount invoice');
        }
        if (request.amountMsat === undefined && amountMsat === 0n) {
          throw new RpcError(UNKNOWN, 'amount must be specified when paying a zero amount invoice');
        }
        const hash = toHex(request.paymentHash);
        const quiet = boolean(fields, 'no_inflight_updates');
        let heard = false;
        const stop = node.onPayment((payment) => {
          if (payment.paymentHash !== hash) return;
          heard = true;
          if (payment.state === 'in-flight' && quiet) return;
          stream.send(paymentMessage(payment));
          if (payment.state !== 'in-flight') stream.end();
        });
        stream.onClose(stop);
        node
          .payInvoice(text, {
            ...(amountMsat !== 0n && { amountMsat: Number(amountMsat) }),
            maxFeeMsat: Number(maxFeeMsat),
            timeoutMs: Number(int64(fields, 'timeout_seconds')) * 1000,
          })
          .catch((error: unknown) => {
            // A payment that was started reports its end through the listener; only a refusal before
            // it started is an error of the call.
            if (heard) return;
            stream.fail(sendRefusal(error, request));
          });
      },
    },
    {
      method: 'GET',
      path: '/v2/router/track/{payment_hash}',
      permission: ['offchain', 'read'],
      stream: ({ params, fields }, stream) => {
        const hash = gatewayBytes(params.payment_hash!);
        if (hash.length !== 32)
          throw new RpcError(INVALID_ARGUMENT, `invalid hash length of ${hash.length}, want 32`);
        const quiet = boolean(fields, 'no_inflight_updates');
        const update = (payment: Payment) => {
          if (payment.state === 'in-flight' && quiet) return;
          stream.send(paymentMessage(payment));
          if (payment.state !== 'in-flight') stream.end();
        };
        stream.onClose(node.onPayment((payment) => payment.paymentHash === toHex(hash) && update(payment)));
        const current = node.lookupPayment(toHex(hash));
        if (!current) throw new RpcError(NOT_FOUND, "payment isn't initiated");
        update(current);
      },
    },
    {
      method: 'GET',
      path: '/v1/payments',
      permission: ['offchain', 'read'],
      unary: ({ fields }) => {
        const incomplete = boolean(fields, 'include_incomplete');
        const offset = Number(int64(fields, 'index_offset'));
        const max = Number(int64(fields, 'max_payments'));
        const reversed = boolean(fields, 'reversed');
        const from = Number(int64(fields, 'creation_date_start'));
        const until = Number(int64(fields, 'creation_date_end'));
        const all = node
          .listPayments()
          .filter((p) => incomplete || p.state === 'succeeded')
          .filter((p) => p.createdAt >= from && (until === 0 || p.createdAt <= until));
        const window = reversed
          ? all.filter((p) => offset === 0 || p.index < offset).slice(max > 0 ? -max : 0)
          : all.filter((p) => p.index > offset).slice(0, max > 0 ? max : undefined);
        return {
          payments: window.map(paymentMessage),
          first_index_offset: String(window[0]?.index ?? 0),
          last_index_offset: String(window.at(-1)?.index ?? 0),
          total_num_payments: String(
            boolean(fields, 'count_total_payments') ? node.listPayments().length : 0,
          ),
        };
      },
    },
    {
      method: 'GET',
      path: '/v1/payreq/{pay_req}',
      permission: ['offchain', 'read'],
      unary: ({ params }) => {
        const request = payReq(params.pay_req!);
        const amountMsat = Number(request.amountMsat ?? 0n);
        return {
          destination: toHex(request.payeeNodeKey),
          payment_hash: toHex(request.paymentHash),
          num_satoshis: sats(amountMsat),
          timestamp: String(request.timestamp),
          expiry: String(request.expiry),
          description: request.description ?? '',
          description_hash: request.descriptionHash ? toHex(request.descriptionHash) : '',
          // Fallback addresses would need a bitcoin address encoder; devnet invoices have none.
          fallback_addr: '',
          cltv_expiry: String(request.minFinalCltvExpiry),
          route_hints: routeHints(request),
          payment_addr: request.paymentSecret ? b64(request.paymentSecret) : '',
          num_msat: String(amountMsat),
          features: features(request),
          blinded_paths: [],
        };
      },
    },
  ];
}

/** Why SendPaymentV2 refused a payment before starting it, as LND says it. */
function sendRefusal(error: unknown, request: Bolt11.Invoice): RpcError {
  if (!(error instanceof PaymentError)) return rpcError(error);
  switch (error.code) {
    case 'DEVNET_ALREADY_PAID':
      return new RpcError(ALREADY_EXISTS, 'invoice is already paid');
    case 'DEVNET_PAYMENT_IN_FLIGHT':
      return new RpcError(ALREADY_EXISTS, 'payment is in transition');
    case 'DEVNET_INVOICE_EXPIRED':
      return new RpcError(
        UNKNOWN,
        `invoice expired. Valid until ${goTime(request.timestamp + request.expiry)}`,
      );
    case 'DEVNET_SELF_PAYMENT':
      return new RpcError(UNKNOWN, 'self-payments not allowed');
    default:
      return new RpcError(UNKNOWN, error.message);
  }
}

/**
 * Serves LND's REST API for `node` over HTTPS on loopback, with a fresh certificate and a fresh
 * macaroon root key. Resolves once listening.
 *
 * @example
 * const lnd = await Lnd.serve(net.node('merchant'));
 * const backend = Lnd.connect({ url: lnd.url, macaroon: lnd.invoiceMacaroonHex, cert: lnd.certPem }); // from l402/lightning
 * await lnd.close();
 */
export async function serve(node: Node, options: ServeOptions = {}): Promise<Facade> {
  const host = options.host ?? '127.0.0.1';
  const { certPem, keyPem } = selfSigned({ hosts: [...new Set(['localhost', '127.0.0.1', '::1', host])] });
  const rootKey = new Uint8Array(randomBytes(32));
  const mint = (operations: Operations) =>
    Macaroon.toHex(Macaroon.create({ rootKey, identifier: identifier(operations), location: 'lnd' }));
  const table = routes(node);

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'https://lnd');
    const candidates = table
      .map((route) => [route, match(route, url.pathname)] as const)
      .filter(([, params]) => params);
    const found = candidates.find(([route]) => route.method === req.method);
    if (!found) {
      // grpc-gateway's routing errors: a known path with another method is "not implemented".
      const error =
        candidates.length > 0
          ? new RpcError(UNIMPLEMENTED, 'Method Not Allowed')
          : new RpcError(NOT_FOUND, 'Not Found');
      req.resume();
      return answer(res, HTTP_STATUS[error.code]!, statusBody(error));
    }
    const [route, params] = found;
    let request: Request;
    try {
      // The gateway decodes the request before the gRPC call; a malformed one never reaches LND.
      if (req.method !== 'POST') req.resume();
      const body = req.method === 'POST' ? await readFields(req) : {};
      request = { params: params!, fields: { ...Object.fromEntries(url.searchParams), ...body } };
    } catch (error) {
      const status = rpcError(error);
      return answer(res, HTTP_STATUS[status.code] ?? 500, statusBody(status));
    }
    const stream = route.stream ? new Stream(res) : undefined;
    try {
      authorize(rootKey, req.headersDistinct['grpc-metadata-macaroon'] ?? [], ...route.permission);
      if (stream) route.stream!(request, stream);
      else answer(res, 200, await route.unary!(request));
    } catch (error) {
      const status = rpcError(error);
      // A streaming call's error arrives as a message of the stream: `{"error": …}`.
      if (stream) stream.fail(status);
      else answer(res, HTTP_STATUS[status.code] ?? 500, statusBody(status));
    }
  };

  const server = createServer({ cert: certPem, key: keyPem }, (req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) answer(res, 500, statusBody(rpcError(error)));
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  let closed: Promise<void> | undefined;
  return {
    url: `https://${host.includes(':') ? `[${host}]` : host}:${port}`,
    certPem,
    macaroonHex: mint(ADMIN),
    invoiceMacaroonHex: mint(INVOICE),
    readonlyMacaroonHex: mint(READONLY),
    close() {
      closed ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closed;
    },
  };
}
