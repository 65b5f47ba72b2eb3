/**
 * What the three stores share, so each rule is written once: argument checks (the same bad input fails
 * the same way everywhere, before any database sees it), the schema version, the closed-store error, and
 * reading SQL rows back into the {@link Store} types, where a row that does not fit is corruption.
 * Internal: not a subpath export.
 *
 * @example
 * checkMint(record); // RangeError before a database is touched
 * const tx = readTransaction('sqlite', row);
 */
import { StoreError } from '../../Errors.js';
import type {
  Bucketing,
  Consumption,
  MintRecord,
  Revocation,
  Session,
  TokenRef,
  Transaction,
  TransactionFilter,
  TransactionState,
  TransactionSummary,
  TransactionTotals,
} from '../Store.js';

/** The schema version this code writes; a database that records a newer one is refused. */
export const SCHEMA_VERSION = 5;

/** Largest `priceMsat` a store keeps: PostgreSQL's and SQLite's signed 64-bit integer. */
const MAX_PRICE_MSAT = 2n ** 63n - 1n;

/** Every byte field of a record is a hash, a token id or a root key: 32 bytes. */
const BYTES = 32;

/** Throws a RangeError unless `value` is 32 bytes. */
export function checkBytes(value: Uint8Array, what: string): void {
  if (!(value instanceof Uint8Array) || value.length !== BYTES) {
    throw new RangeError(`${what} must be ${BYTES} bytes`);
  }
}

/** Unix seconds: SQL stores keep them as 64-bit integers, so fractions and NaN are refused up front. */
export function checkSeconds(value: number, what: string): void {
  if (!Number.isSafeInteger(value)) throw new RangeError(`${what} must be whole unix seconds, got ${value}`);
}

/** Throws a RangeError for a record a store cannot keep exactly. */
export function checkMint(record: MintRecord): void {
  checkBytes(record.idHash, 'idHash');
  checkBytes(record.rootKey, 'rootKey');
  checkBytes(record.tokenId, 'tokenId');
  checkBytes(record.paymentHash, 'paymentHash');
  if (typeof record.priceMsat !== 'bigint' || record.priceMsat < 0n || record.priceMsat > MAX_PRICE_MSAT) {
    throw new RangeError(`priceMsat must be a bigint from 0 to 2^63-1, got ${record.priceMsat}`);
  }
  checkSeconds(record.createdAt, 'createdAt');
  checkSeconds(record.invoiceExpiresAt, 'invoiceExpiresAt');
}

/** Throws a RangeError for a debit a store cannot take exactly: a token id that is not 32 bytes, a bad amount. */
export function checkDebit(tokenId: Uint8Array, amountMsat: bigint): void {
  checkBytes(tokenId, 'tokenId');
  if (typeof amountMsat !== 'bigint' || amountMsat < 0n || amountMsat > MAX_PRICE_MSAT) {
    throw new RangeError(`amountMsat must be a bigint from 0 to 2^63-1, got ${amountMsat}`);
  }
}

/** The one key of a {@link TokenRef}, checked. */
export function refKey(token: TokenRef): {
  readonly by: 'idHash' | 'tokenId';
  readonly value: Uint8Array;
} {
  const by = 'idHash' in token ? 'idHash' : 'tokenId';
  const value = 'idHash' in token ? token.idHash : token.tokenId;
  checkBytes(value, by);
  return { by, value };
}

/** Throws a RangeError for a filter the SQL stores would read differently (negative LIMIT, …). */
export function checkFilter(filter: TransactionFilter): void {
  if (filter.state !== undefined && filter.state !== 'pending' && filter.state !== 'settled') {
    throw new RangeError(`state must be 'pending' or 'settled', got ${String(filter.state)}`);
  }
  if (filter.since !== undefined) checkSeconds(filter.since, 'since');
  if (filter.until !== undefined) checkSeconds(filter.until, 'until');
  for (const [what, value] of [
    ['limit', filter.limit],
    ['offset', filter.offset],
  ] as const) {
    if (value !== undefined && !(Number.isSafeInteger(value) && value >= 0)) {
      throw new RangeError(`${what} must be a non-negative integer, got ${value}`);
    }
  }
}

/** Widest time bucket a summary takes, in seconds (about 136 years). */
const MAX_BUCKET_WIDTH = 2 ** 32;

/** A {@link Bucketing} checked, with its origin filled in. */
export function checkBucketing(bucketing: Bucketing): { readonly width: number; readonly origin: number } {
  const { width, origin = 0 } = bucketing;
  if (!(Number.isSafeInteger(width) && width >= 1 && width <= MAX_BUCKET_WIDTH)) {
    throw new RangeError(`bucket width must be whole seconds from 1 to 2^32, got ${width}`);
  }
  checkSeconds(origin, 'bucket origin');
  return { width, origin };
}

/**
 * What a summary is made of: the figures of some transactions of one state, from one service or in one
 * bucket. The SQL stores group by (service, state) and (bucket, state); the memory store hands one part
 * per transaction. Either way {@link summarize} puts them together, so the stores cannot disagree.
 */
export interface SummaryPart {
  readonly state: TransactionState;
  readonly count: number;
  readonly amountMsat: bigint;
}

export interface ServicePart extends SummaryPart {
  readonly service: string;
  /** The newest of these transactions, by (created_at, insertion order): how services are ordered. */
  readonly newestAt: number;
  readonly newestOrder: number;
}

export interface BucketPart extends SummaryPart {
  readonly start: number;
}

function add(totals: TransactionTotals | undefined, part: SummaryPart): TransactionTotals {
  const settled = part.state === 'settled';
  return {
    count: (totals?.count ?? 0) + part.count,
    settledCount: (totals?.settledCount ?? 0) + (settled ? part.count : 0),
    amountMsat: (totals?.amountMsat ?? 0n) + part.amountMsat,
    settledMsat: (totals?.settledMsat ?? 0n) + (settled ? part.amountMsat : 0n),
  };
}

/** The summary the parts make: totals, services newest first, buckets oldest first. */
export function summarize(
  services: Iterable<ServicePart>,
  buckets: Iterable<BucketPart>,
): TransactionSummary {
  let totals: TransactionTotals = { count: 0, settledCount: 0, amountMsat: 0n, settledMsat: 0n };
  const byService = new Map<string, { totals: TransactionTotals; at: number; order: number }>();
  for (const part of services) {
    totals = add(totals, part);
    const seen = byService.get(part.service);
    const newer =
      seen === undefined ||
      part.newestAt > seen.at ||
      (part.newestAt === seen.at && part.newestOrder > seen.order);
    byService.set(part.service, {
      totals: add(seen?.totals, part),
      at: newer ? part.newestAt : seen.at,
      order: newer ? part.newestOrder : seen.order,
    });
  }
  const byStart = new Map<number, TransactionTotals>();
  for (const part of buckets) byStart.set(part.start, add(byStart.get(part.start), part));
  return {
    ...totals,
    services: [...byService]
      .sort(([, a], [, b]) => b.at - a.at || b.order - a.order)
      .map(([service, { totals }]) => ({ service, ...totals })),
    buckets: [...byStart].sort(([a], [b]) => a - b).map(([start, totals]) => ({ start, ...totals })),
  };
}

/** The columns a summary statement's rows carry besides a part's figures. */
interface SummaryColumns {
  readonly service?: unknown;
  readonly newest?: unknown;
  readonly newest_id?: unknown;
  readonly start?: unknown;
}

/**
 * The summary of a SQL store's two grouped statements (per service and state; per bucket and state),
 * their rows checked; `readPart` reads one row's state, count and sum in the store's own types.
 */
export function summaryOf<Row>(
  store: string,
  rows: { readonly services: readonly Row[]; readonly buckets: readonly Row[] },
  readPart: (row: Row) => SummaryPart,
): TransactionSummary {
  const columns = (row: Row) => row as SummaryColumns;
  return summarize(
    rows.services.map((row) => {
      const { service, newest, newest_id } = columns(row);
      if (typeof service !== 'string') throw corrupt(store, 'service is not text');
      return {
        ...readPart(row),
        service,
        newestAt: readNumber(store, newest, 'created_at'),
        newestOrder: readNumber(store, newest_id, 'id'),
      };
    }),
    rows.buckets.map((row) => ({
      ...readPart(row),
      start: readNumber(store, columns(row).start, 'bucket start'),
    })),
  );
}

/** A summary statement's state column, checked. */
export function readState(store: string, value: unknown): TransactionState {
  if (value !== 'pending' && value !== 'settled') throw corrupt(store, `unknown state ${String(value)}`);
  return value;
}

/** What every call on a closed store rejects with. */
export function closedError(store: string): StoreError {
  return new StoreError('L402_STORE_UNAVAILABLE', store, 'the store is closed');
}

/** Refuses a database written by a newer l402: reading it with an older schema could lose data. */
export function checkSchemaVersion(store: string, found: number): void {
  if (found > SCHEMA_VERSION) {
    throw new StoreError(
      'L402_STORE_CORRUPT',
      store,
      `the database has schema version ${found}, newer than this l402 (${SCHEMA_VERSION}): upgrade l402`,
    );
  }
}

/** The error for a row that does not fit what the store wrote. */
export function corrupt(store: string, what: string): StoreError {
  return new StoreError('L402_STORE_CORRUPT', store, `unreadable row: ${what}`);
}

/** A BLOB/BYTEA column (the driver's Buffer) as a fresh 32-byte Uint8Array. */
export function readBytes(store: string, value: unknown, what: string): Uint8Array {
  if (!(value instanceof Uint8Array) || value.length !== BYTES) {
    throw corrupt(store, `${what} is not ${BYTES} bytes`);
  }
  return new Uint8Array(value);
}

/** A 64-bit integer column; both drivers are set to hand these over as bigint. */
export function readInteger(store: string, value: unknown, what: string): bigint {
  if (typeof value !== 'bigint') throw corrupt(store, `${what} is not an integer`);
  return value;
}

/** Seconds, sequence numbers and counts: integers a JavaScript number holds exactly. */
export function readNumber(store: string, value: unknown, what: string): number {
  const n = readInteger(store, value, what);
  if (n < BigInt(Number.MIN_SAFE_INTEGER) || n > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw corrupt(store, `${what} is out of range`);
  }
  return Number(n);
}

/** A `l402_transactions` row as the SQL stores select it. */
export interface TransactionRow {
  readonly token_id: unknown;
  readonly payment_hash: unknown;
  readonly service: unknown;
  readonly price_msat: unknown;
  readonly state: unknown;
  readonly created_at: unknown;
  readonly settled_at: unknown;
  /** SQLite keeps 0/1, PostgreSQL a boolean. */
  readonly revoked: unknown;
}

/** A transaction row as a {@link Transaction}; throws `L402_STORE_CORRUPT` for a row that does not fit. */
export function readTransaction(store: string, row: TransactionRow): Transaction {
  const { service, revoked } = row;
  const state = readState(store, row.state);
  if (typeof service !== 'string') throw corrupt(store, 'service is not text');
  if (revoked !== true && revoked !== false && revoked !== 0n && revoked !== 1n) {
    throw corrupt(store, 'revoked is not a boolean');
  }
  const priceMsat = readInteger(store, row.price_msat, 'price_msat');
  if (priceMsat < 0n) throw corrupt(store, 'price_msat is negative');
  return {
    tokenId: readBytes(store, row.token_id, 'token_id'),
    paymentHash: readBytes(store, row.payment_hash, 'payment_hash'),
    service,
    priceMsat,
    state,
    createdAt: readNumber(store, row.created_at, 'created_at'),
    settledAt: row.settled_at === null ? undefined : readNumber(store, row.settled_at, 'settled_at'),
    revoked: revoked === true || revoked === 1n,
  };
}

/** A `revocations` row as the SQL stores select it. */
export function readRevocation(
  store: string,
  row: { readonly seq: unknown; readonly hash: unknown; readonly token_id: unknown },
): Revocation {
  return {
    seq: readNumber(store, row.seq, 'seq'),
    idHash: readBytes(store, row.hash, 'hash'),
    tokenId: readBytes(store, row.token_id, 'token_id'),
  };
}

/** Largest sats amount a store keeps: a signed 64-bit integer. */
const MAX_SATS = 2n ** 63n - 1n;

/** Throws a RangeError for an amount of sats a store cannot keep, or that is not positive when `positive`. */
export function checkSats(value: bigint, what: string, positive = false): void {
  if (typeof value !== 'bigint' || value < (positive ? 1n : 0n) || value > MAX_SATS) {
    throw new RangeError(`${what} must be a bigint from ${positive ? 1 : 0} to 2^63-1, got ${value}`);
  }
}

/** Throws a RangeError for a consumption record a store cannot keep. */
export function checkConsumption(record: Consumption): void {
  checkBytes(record.paymentHash, 'paymentHash');
  if (typeof record.challengeId !== 'string' || record.challengeId.length > 512) {
    throw new RangeError('challengeId must be a string of at most 512 characters');
  }
  checkSeconds(record.expiresAt, 'expiresAt');
}

/** Throws a RangeError for a secret name or value a store cannot keep. */
export function checkSecret(name: string, fresh: Uint8Array): void {
  if (typeof name !== 'string' || name.length === 0 || name.length > 200) {
    throw new RangeError('a secret name must be 1 to 200 characters');
  }
  if (!(fresh instanceof Uint8Array) || fresh.length < 16 || fresh.length > 1024) {
    throw new RangeError('a secret must be 16 to 1024 bytes');
  }
}

/** An `mpp_sessions` row as the SQL stores select it. */
export interface SessionRow {
  readonly session_id: unknown;
  readonly deposit_sats: unknown;
  readonly spent_sats: unknown;
  readonly return_invoice: unknown;
  readonly status: unknown;
  readonly refund_status: unknown;
  readonly created_at: unknown;
  readonly updated_at: unknown;
}

const REFUND_STATUSES = new Set(['succeeded', 'failed', 'skipped']);

/** Throws a RangeError for a refund status a store cannot keep. */
export function checkRefundStatus(status: string): void {
  if (!REFUND_STATUSES.has(status))
    throw new RangeError(`refund status must be succeeded, failed or skipped, got ${status}`);
}

/** A session row as a {@link Session}; throws `L402_STORE_CORRUPT` for a row that does not fit. */
export function readSession(store: string, row: SessionRow): Session {
  const { status, return_invoice, refund_status } = row;
  if (refund_status !== null && !REFUND_STATUSES.has(refund_status as string)) {
    throw corrupt(store, `unknown refund status ${String(refund_status)}`);
  }
  if (status !== 'open' && status !== 'closed')
    throw corrupt(store, `unknown session status ${String(status)}`);
  if (typeof return_invoice !== 'string') throw corrupt(store, 'return_invoice is not text');
  const depositSats = readInteger(store, row.deposit_sats, 'deposit_sats');
  const spentSats = readInteger(store, row.spent_sats, 'spent_sats');
  if (spentSats < 0n || spentSats > depositSats) throw corrupt(store, 'spent_sats is out of range');
  return {
    sessionId: readBytes(store, row.session_id, 'session_id'),
    depositSats,
    spentSats,
    returnInvoice: return_invoice,
    status,
    refundStatus: (refund_status ?? undefined) as Session['refundStatus'],
    createdAt: readNumber(store, row.created_at, 'created_at'),
    updatedAt: readNumber(store, row.updated_at, 'updated_at'),
  };
}

/** Throws a RangeError unless `limit` is a whole number from 1 to 10 000. */
export function checkLimit(limit: number): void {
  if (!(Number.isSafeInteger(limit) && limit >= 1 && limit <= 10_000)) {
    throw new RangeError(`limit must be a whole number from 1 to 10000, got ${limit}`);
  }
}
