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
  /** Removes root keys (and pending transactions) of tokens never paid whose invoice expired before `now`. */
  removeExpiredUnpaid(now: number): Promise<number>;
  close(): Promise<void>;
}
