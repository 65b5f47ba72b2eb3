/**
 * Where a server keeps what L402 needs beyond the token itself: the root key of every token it minted
 * (under `sha256(identifier)`, as Aperture does), the transaction behind it (pending until the invoice
 * settles), and revocations. One interface, three implementations: memory (tests, a single process),
 * SQLite (the gateway's default: one file, WAL, synchronous commit) and PostgreSQL (several instances).
 *
 * Durability is the contract: `mint` resolves only once the root key is committed, so a 402 never
 * leaves the server for a token the server could forget.
 *
 * @example
 * await store.mint({ idHash, rootKey, tokenId, paymentHash, service: 'api', priceMsat: 21_000n,
 *   createdAt: now, invoiceExpiresAt: now + 3600 });
 * const key = await store.rootKey(idHash); // the same 32 bytes, or undefined once revoked
 */

/** One minted token, as stored at challenge time. */
export interface MintRecord {
  /** sha256 of the 66-byte identifier: the lookup key (Aperture's `secrets.hash`). */
  readonly idHash: Uint8Array;
  /** 32 random bytes; the macaroon's root key. */
  readonly rootKey: Uint8Array;
  readonly tokenId: Uint8Array;
  readonly paymentHash: Uint8Array;
  /** The service name as minted (dynamic-price services include the path, as Aperture does). */
  readonly service: string;
  readonly priceMsat: bigint;
  /** Unix seconds. */
  readonly createdAt: number;
  /** Unix seconds: after this an unpaid token's root key may be removed. */
  readonly invoiceExpiresAt: number;
}

export type TransactionState = 'pending' | 'settled';

export interface Transaction {
  readonly tokenId: Uint8Array;
  readonly paymentHash: Uint8Array;
  readonly service: string;
  readonly priceMsat: bigint;
  readonly state: TransactionState;
  readonly createdAt: number;
  readonly settledAt: number | undefined;
  readonly revoked: boolean;
}

export interface TransactionFilter {
  readonly service?: string;
  readonly state?: TransactionState;
  /** Unix seconds, inclusive. */
  readonly since?: number;
  readonly until?: number;
  readonly limit?: number;
  readonly offset?: number;
}

/**
 * Figures over a set of transactions, as {@link Store.summarizeTransactions} gives them: counted and
 * summed by the store (by the database in the SQL stores, so a summary of millions of rows reads none
 * of them into the process).
 */
export interface TransactionTotals {
  /** Transactions in the set, pending and settled: every challenge issued. */
  readonly count: number;
  /** Of those, the settled (paid) ones. */
  readonly settledCount: number;
  /** Sum of `priceMsat` over the whole set, exact past 2^64 too (SQLite: up to 2^31 rows per service and state). */
  readonly amountMsat: bigint;
  /** Sum of `priceMsat` over the settled ones: the revenue. */
  readonly settledMsat: bigint;
}

/** One service's part of a {@link TransactionSummary}. */
export interface ServiceTotals extends TransactionTotals {
  readonly service: string;
}

/** One time bucket of a {@link TransactionSummary}: transactions created in `[start, start + width)`. */
export interface BucketTotals extends TransactionTotals {
  /** Unix seconds: `origin + k × width` for a whole k (negative before the origin). */
  readonly start: number;
}

/** How {@link Store.summarizeTransactions} cuts time: buckets `width` seconds wide, one starting at `origin`. */
export interface Bucketing {
  /** Whole seconds, 1 to 2^32. */
  readonly width: number;
  /** Unix seconds a bucket starts at; 0 by default (buckets aligned on the epoch). */
  readonly origin?: number;
}

/** What {@link Store.summarizeTransactions} answers. */
export interface TransactionSummary extends TransactionTotals {
  /**
   * Per service with at least one transaction in the set, in the order `transactions()` first names
   * them: the service with the newest transaction first.
   */
  readonly services: readonly ServiceTotals[];
  /** Per time bucket holding at least one transaction, oldest first; empty when no bucketing was asked. */
  readonly buckets: readonly BucketTotals[];
}

/** A revocation as other instances learn of it: `seq` increases with each revocation. */
export interface Revocation {
  readonly seq: number;
  readonly idHash: Uint8Array;
  readonly tokenId: Uint8Array;
}

/** What {@link Store.debit} did: `ok` when the amount was taken; the credit left either way (0 for an unknown token). */
export interface Debit {
  readonly ok: boolean;
  readonly remainingMsat: bigint;
}

/** Which token to revoke: by identifier hash (the server's key) or by token id (what operators see). */
export type TokenRef = { readonly idHash: Uint8Array } | { readonly tokenId: Uint8Array };

/** A payment spent once and for all (an MPP charge, a session deposit or top-up), by its payment hash. */
export interface Consumption {
  /** 32 bytes. */
  readonly paymentHash: Uint8Array;
  /** The Payment challenge `id` it was presented with. */
  readonly challengeId: string;
  /** Unix seconds: the challenge's expiry; the record may be pruned some time after it. */
  readonly expiresAt: number;
}

/** An MPP session: a prepaid balance in sats, identified by its deposit's payment hash. */
export interface Session {
  /** 32 bytes: the deposit invoice's payment hash. */
  readonly sessionId: Uint8Array;
  readonly depositSats: bigint;
  readonly spentSats: bigint;
  /** BOLT11 without an amount, paid the remaining balance on close. */
  readonly returnInvoice: string;
  readonly status: 'open' | 'closed';
  /** How the refund at close went, once recorded; undefined while open (or while refunding). */
  readonly refundStatus: 'succeeded' | 'failed' | 'skipped' | undefined;
  /** Unix seconds. */
  readonly createdAt: number;
  readonly updatedAt: number;
}

/** A session operation's outcome; `consumed` means the payment was already spent. */
export type SessionResult =
  | { readonly ok: true; readonly session: Session }
  | {
      readonly ok: false;
      readonly reason: 'not-found' | 'closed' | 'insufficient' | 'consumed';
      readonly session?: Session;
    };

/**
 * What {@link Store.topUpSession} did: a {@link SessionResult}, or `already-credited` when this very
 * top-up (the same payment, presented with the same challenge, for the same session) was credited
 * before: nothing is credited again, and `session` is how the session stands now (open or closed). A
 * payment consumed by anything else (a charge, a deposit, a top-up of another session or under another
 * challenge) is `consumed`.
 */
export type TopUpResult =
  | SessionResult
  | { readonly ok: false; readonly reason: 'already-credited'; readonly session: Session };

export interface Store {
  /** Stores a minted token's root key and its pending transaction atomically; resolves once durable. */
  mint(record: MintRecord): Promise<void>;
  /** The root key, or `undefined` for an unknown or revoked token. */
  rootKey(idHash: Uint8Array): Promise<Uint8Array | undefined>;
  /** Marks the transaction settled (idempotent); returns false for an unknown payment hash. */
  settle(paymentHash: Uint8Array, settledAt: number): Promise<boolean>;
  /**
   * Deletes the root key and records the revocation (durably, like `mint`); returns false when no such
   * token was there. A revoked token stays revoked: minting never reuses an identifier.
   */
  revoke(token: TokenRef): Promise<boolean>;
  /** Revocations with `seq` greater than `after`, oldest first: how instances evict their caches. */
  revocationsSince(after: number): Promise<Revocation[]>;
  /**
   * Metered tokens: takes `amountMsat` from the token's prepaid credit (its transaction's `priceMsat`)
   * atomically, only when enough is left and the token is not revoked. Concurrent debits never overdraw,
   * on one instance or many; the balance is durable like `mint`.
   */
  debit(tokenId: Uint8Array, amountMsat: bigint): Promise<Debit>;
  /** Newest first. */
  transactions(filter?: TransactionFilter): Promise<Transaction[]>;
  /**
   * How many transactions match `filter`, counted by the database (a paged list's total); `limit` and
   * `offset` do not apply.
   *
   * @example
   * const [page, total] = await Promise.all([
   *   store.transactions({ state: 'settled', limit: 50, offset: 100 }),
   *   store.countTransactions({ state: 'settled' }),
   * ]);
   */
  countTransactions(filter?: TransactionFilter): Promise<number>;
  /**
   * Counts and sums of the transactions matching `filter` (`limit` and `offset` do not apply): in all,
   * per service, and per time bucket when `bucketing` is given, computed by the database (GROUP BY in
   * the SQL stores), so no row is read into the process.
   *
   * @example
   * const day = await store.summarizeTransactions({ since: now - 86_400, until: now }, { width: 3600, origin: now - 86_400 });
   * day.settledMsat; // the revenue, in msat
   * day.buckets; // [{ start, count, settledCount, amountMsat, settledMsat }, …] for the hours with any
   */
  summarizeTransactions(filter?: TransactionFilter, bucketing?: Bucketing): Promise<TransactionSummary>;
  /** Removes root keys (and pending transactions) of tokens never paid whose invoice expired before `now`. */
  removeExpiredUnpaid(now: number): Promise<number>;
  /**
   * Spends a payment: true the first time its payment hash is consumed (durably), false ever after.
   * Atomic across every instance sharing the store, so a credential buys exactly one request.
   */
  consume(record: Consumption): Promise<boolean>;
  /**
   * Consumes the deposit payment and opens a session on it (id = its payment hash) in one step; false
   * when that payment was consumed before.
   */
  openSession(
    open: Consumption & { depositSats: bigint; returnInvoice: string; now: number },
  ): Promise<boolean>;
  /**
   * Consumes a top-up payment and credits an open session with `sats`, in one step, remembering which
   * session it credited. The same top-up presented again (the client retrying after losing the answer)
   * is `already-credited` and credits nothing, as long as its consumption record is kept: of two
   * identical top-ups racing, exactly one credits and the other is `already-credited`.
   */
  topUpSession(
    sessionId: Uint8Array,
    credit: Consumption & { sats: bigint; now: number },
  ): Promise<TopUpResult>;
  /** Debits an open session by `sats` if its balance covers them: exact under any concurrency. */
  debitSession(sessionId: Uint8Array, sats: bigint, now: number): Promise<SessionResult>;
  /** Closes an open session; the session returned holds what is left to refund (deposit − spent). */
  closeSession(sessionId: Uint8Array, now: number): Promise<SessionResult>;
  /**
   * Closes up to `limit` open sessions with no activity (open, debit, top-up) since `idleBefore`, in one
   * atomic step, and returns them as closed: what is left in each is theirs to refund.
   */
  closeIdleSessions(idleBefore: number, now: number, limit: number): Promise<Session[]>;
  /** Records how a closed session's refund went, once; false when it is not closed or already recorded. */
  recordRefund(sessionId: Uint8Array, status: 'succeeded' | 'failed' | 'skipped'): Promise<boolean>;
  session(sessionId: Uint8Array): Promise<Session | undefined>;
  /** Removes consumption records whose challenge expired before `before` (unix seconds). */
  removeExpiredConsumptions(before: number): Promise<number>;
  /**
   * The server secret stored under `name`, storing `fresh` first when there is none: every instance
   * sharing the store gets the same bytes (the MPP challenge HMAC key, say).
   */
  secret(name: string, fresh: Uint8Array): Promise<Uint8Array>;
  close(): Promise<void>;
}
