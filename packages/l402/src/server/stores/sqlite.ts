/**
 * `l402/stores/sqlite`: the gateway's default {@link Store}, one SQLite file through better-sqlite3 (an
 * optional peer dependency: `npm install better-sqlite3`).
 *
 * Durability: WAL journal with `synchronous = FULL`, so every commit fsyncs the WAL before `mint` or
 * `revoke` resolves; a 402 that left the server names a root key that survives `kill -9` and power loss.
 * The file is created with mode 0600 (it holds root keys; SQLite gives its `-wal` and `-shm` files the
 * same mode), parent directories 0700. Writes run in `BEGIN IMMEDIATE` transactions and wait up to
 * `busyTimeoutMs` for another process holding the file (the CLI reading while the gateway writes).
 *
 * Tables follow Aperture's names: `secrets`, `l402_transactions`, `revocations`, plus `schema_version`
 * for migrations. Times are unix seconds, prices 64-bit msat. better-sqlite3 is synchronous: every
 * statement is prepared once (those taking a transaction filter once per combination of its fields)
 * and touches a handful of rows by index, so no call blocks the event loop for long. The exceptions are
 * `countTransactions` and `summarizeTransactions`, which go over every row they select, in an index
 * rather than the table (a summary of a million rows takes about a quarter of a second): the admin API
 * asks for them, never a paid request.
 *
 * @example
 * import * as Sqlite from 'l402/stores/sqlite';
 * const store = await Sqlite.open({ path: `${process.env.HOME}/.l402/gateway.db` });
 * await store.mint(record);
 * await store.close();
 */
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import { StoreError } from '../../Errors.js';
import type { Debit, MintRecord, SessionResult, Store, TopUpResult, TransactionFilter } from '../Store.js';
import {
  checkBucketing,
  checkBytes,
  checkConsumption,
  checkDebit,
  checkFilter,
  checkLimit,
  checkMint,
  checkRefundStatus,
  checkSats,
  checkSchemaVersion,
  checkSeconds,
  checkSecret,
  closedError,
  readBytes,
  readInteger,
  readNumber,
  readRevocation,
  readSession,
  readState,
  readTransaction,
  refKey,
  SCHEMA_VERSION,
  type SessionRow,
  type SummaryPart,
  summaryOf,
  type TransactionRow,
} from './common.js';

export interface Options {
  /** The database file; created with mode 0600 (and missing parent directories with 0700). */
  readonly path: string;
  /** How long a write waits for another process's write lock on the file, in ms. Defaults to 5 000. */
  readonly busyTimeoutMs?: number;
}

const NAME = 'sqlite';

/** A debit waiting for the next group commit. */
interface PendingDebit {
  readonly tokenId: Uint8Array;
  readonly amountMsat: bigint;
  readonly resolve: (debit: Debit) => void;
  readonly reject: (error: unknown) => void;
}

/** Migration n (1-based) is `MIGRATIONS[n - 1]`; a migration is never edited once released, only added. */
const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE secrets (
    id INTEGER PRIMARY KEY,
    hash BLOB NOT NULL UNIQUE,
    secret BLOB NOT NULL,
    token_id BLOB NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
  ) STRICT;
  CREATE TABLE l402_transactions (
    id INTEGER PRIMARY KEY,
    token_id BLOB NOT NULL UNIQUE,
    payment_hash BLOB NOT NULL,
    service TEXT NOT NULL,
    price_msat INTEGER NOT NULL CHECK (price_msat >= 0),
    state TEXT NOT NULL CHECK (state IN ('pending', 'settled')),
    created_at INTEGER NOT NULL,
    settled_at INTEGER,
    invoice_expires_at INTEGER NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0 CHECK (revoked IN (0, 1))
  ) STRICT;
  CREATE INDEX l402_transactions_payment_hash ON l402_transactions (payment_hash);
  CREATE INDEX l402_transactions_created_at ON l402_transactions (created_at, id);
  CREATE INDEX l402_transactions_unpaid ON l402_transactions (invoice_expires_at) WHERE state = 'pending';
  -- AUTOINCREMENT: a seq is never reused, even after the newest row is deleted, so a cursor stays valid.
  -- revoked_at is an audit field nothing reads back: the database's clock is good enough.
  CREATE TABLE revocations (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    hash BLOB NOT NULL UNIQUE,
    token_id BLOB NOT NULL UNIQUE,
    revoked_at INTEGER NOT NULL DEFAULT (unixepoch())
  ) STRICT;
  `,
  // Metered tokens: the prepaid credit is price_msat, what has been spent of it is spent_msat.
  `
  ALTER TABLE l402_transactions ADD COLUMN spent_msat INTEGER NOT NULL DEFAULT 0 CHECK (spent_msat >= 0);
  `,
  `
  CREATE TABLE mpp_consumed (
    payment_hash BLOB PRIMARY KEY,
    challenge_id TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    consumed_at INTEGER NOT NULL DEFAULT (unixepoch())
  ) STRICT;
  CREATE INDEX mpp_consumed_expires_at ON mpp_consumed (expires_at);
  CREATE TABLE mpp_sessions (
    session_id BLOB PRIMARY KEY,
    deposit_sats INTEGER NOT NULL CHECK (deposit_sats >= 0),
    spent_sats INTEGER NOT NULL DEFAULT 0 CHECK (spent_sats >= 0 AND spent_sats <= deposit_sats),
    return_invoice TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('open', 'closed')),
    refund_status TEXT CHECK (refund_status IN ('succeeded', 'failed', 'skipped')),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
  ) STRICT;
  CREATE TABLE server_secrets (
    name TEXT PRIMARY KEY,
    secret BLOB NOT NULL
  ) STRICT;
  `,
  // The session a top-up credited (NULL for charges and deposits): how a retried top-up is told apart
  // from a payment spent elsewhere. Rows consumed before this migration have none: their retries are
  // refused, as they were.
  `
  ALTER TABLE mpp_consumed ADD COLUMN top_up_session BLOB;
  `,
  // Counts and summaries by service and state (the admin's totals and stats) read this index alone,
  // never the table's wide rows: a seek for one service, a narrow scan for every one.
  `
  CREATE INDEX IF NOT EXISTS l402_transactions_service ON l402_transactions (service, state, created_at, price_msat);
  `,
];

const SESSION_COLUMNS =
  'session_id, deposit_sats, spent_sats, return_invoice, status, refund_status, created_at, updated_at';

const TRANSACTION_COLUMNS =
  'token_id, payment_hash, service, price_msat, state, created_at, settled_at, revoked';

/**
 * The figures of one (group, state) of a summary. SQLite's sum() of 64-bit integers fails past 2^63, and
 * a price may be up to 2^63-1 msat: amounts are summed as their high and low 32 bits apart (exact up to
 * 2^31 rows per group) and put together as bigints.
 */
const PART_COLUMNS = 'state, count(*) AS n, sum(price_msat >> 32) AS hi, sum(price_msat & 4294967295) AS lo';

interface PartRow {
  readonly state: unknown;
  readonly n: unknown;
  readonly hi: unknown;
  readonly lo: unknown;
}

function readPart(row: PartRow): SummaryPart {
  return {
    state: readState(NAME, row.state),
    count: readNumber(NAME, row.n, 'count'),
    amountMsat: (readInteger(NAME, row.hi, 'amount') << 32n) + readInteger(NAME, row.lo, 'amount'),
  };
}

/**
 * The conditions of `filter` that are set, and their parameters. Each combination gets a statement of
 * its own (not `@x IS NULL OR …`), so SQLite's planner sees which index narrows it.
 */
function conditions(filter: TransactionFilter): {
  readonly key: string;
  readonly where: string;
  readonly params: Record<string, unknown>;
} {
  const parts: string[] = [];
  const params: Record<string, unknown> = {};
  let key = '';
  for (const [name, column, operator] of [
    ['service', 'service', '='],
    ['state', 'state', '='],
    ['since', 'created_at', '>='],
    ['until', 'created_at', '<='],
  ] as const) {
    const value = filter[name];
    key += value === undefined ? '-' : name[0];
    if (value === undefined) continue;
    parts.push(`${column} ${operator} @${name}`);
    params[name] = value;
  }
  return { key, where: parts.length === 0 ? 'true' : parts.join(' AND '), params };
}

async function driver(): Promise<typeof BetterSqlite3> {
  try {
    return (await import('better-sqlite3')).default;
  } catch (error) {
    throw new StoreError(
      'L402_STORE_CONFIG',
      NAME,
      'the SQLite store needs the better-sqlite3 package: npm install better-sqlite3',
      { cause: error },
    );
  }
}

/** What to tell an operator beyond SQLite's own words. */
function hint(code: string): string {
  if (code.startsWith('SQLITE_READONLY') || code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
    return ' (the file or its directory is read-only: check permissions and that the disk is mounted read-write)';
  }
  if (code === 'SQLITE_FULL' || code === 'ENOSPC') return ' (the disk is full)';
  return '';
}

/** A driver or file-system error as a StoreError; anything else (a bug, a RangeError) passes unchanged. */
function failure(path: string, doing: string, error: unknown): unknown {
  if (error instanceof StoreError || !(error instanceof Error)) return error;
  const code = (error as { code?: unknown }).code;
  const fromSqlite = error.name === 'SqliteError';
  if (!fromSqlite && typeof code !== 'string') return error;
  const text = typeof code === 'string' ? code : '';
  const storeCode = text.startsWith('SQLITE_CONSTRAINT')
    ? 'L402_STORE_CONFLICT'
    : text.startsWith('SQLITE_CORRUPT') || text === 'SQLITE_NOTADB'
      ? 'L402_STORE_CORRUPT'
      : 'L402_STORE_UNAVAILABLE';
  return new StoreError(storeCode, NAME, `${path}: cannot ${doing}: ${error.message}${hint(text)}`, {
    cause: error,
  });
}

function migrate(db: BetterSqlite3.Database): void {
  db.transaction(() => {
    db.exec('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL) STRICT');
    const found = Number(db.prepare('SELECT coalesce(max(version), 0) FROM schema_version').pluck().get());
    checkSchemaVersion(NAME, found);
    if (found === SCHEMA_VERSION) return;
    for (const migration of MIGRATIONS.slice(found)) db.exec(migration);
    db.exec('DELETE FROM schema_version');
    db.prepare('INSERT INTO schema_version (version) VALUES (?)').run(SCHEMA_VERSION);
  }).immediate();
}

/**
 * Opens (creating and migrating as needed) the SQLite store at `options.path`. Rejects with
 * `L402_STORE_UNAVAILABLE` when the file cannot be created or written, `L402_STORE_CORRUPT` when it is
 * not a database or was written by a newer l402.
 */
export async function open(options: Options): Promise<Store> {
  const path = resolve(options.path);
  const Database = await driver();
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    // SQLite would create the file with the umask's mode (usually 0644); it holds root keys. Opening for
    // append also proves up front that the file is writable, before the first mint finds out.
    closeSync(openSync(path, 'a', 0o600));
  } catch (error) {
    throw failure(path, 'create or write the database file', error);
  }
  let db: BetterSqlite3.Database | undefined;
  try {
    db = new Database(path, { timeout: options.busyTimeoutMs ?? 5_000 });
    db.defaultSafeIntegers(true);
    const mode = db.pragma('journal_mode = WAL', { simple: true });
    if (mode !== 'wal') {
      throw new StoreError(
        'L402_STORE_UNAVAILABLE',
        NAME,
        `${path}: cannot use WAL mode (journal stays ${mode})`,
      );
    }
    db.pragma('synchronous = FULL');
    // macOS's fsync leaves data in the drive's cache; F_FULLFSYNC is what survives power loss there.
    // Elsewhere this is a no-op.
    db.pragma('fullfsync = ON');
    migrate(db);
    return prepared(db, path);
  } catch (error) {
    db?.close();
    throw failure(path, 'open the database', error);
  }
}

function prepared(db: BetterSqlite3.Database, path: string): Store {
  const statements = {
    wasRevoked: db.prepare('SELECT 1 FROM revocations WHERE hash = ? OR token_id = ?').pluck(),
    insertSecret: db.prepare('INSERT INTO secrets (hash, secret, token_id, created_at) VALUES (?, ?, ?, ?)'),
    insertTransaction: db.prepare(
      `INSERT INTO l402_transactions (token_id, payment_hash, service, price_msat, state, created_at, invoice_expires_at)
       VALUES (?, ?, ?, ?, 'pending', ?, ?)`,
    ),
    secret: db.prepare('SELECT secret FROM secrets WHERE hash = ?').pluck(),
    settle: db.prepare(
      `UPDATE l402_transactions SET state = 'settled', settled_at = coalesce(settled_at, ?) WHERE payment_hash = ?`,
    ),
    deleteByIdHash: db.prepare('DELETE FROM secrets WHERE hash = ? RETURNING hash, token_id'),
    deleteByTokenId: db.prepare('DELETE FROM secrets WHERE token_id = ? RETURNING hash, token_id'),
    markRevoked: db.prepare('UPDATE l402_transactions SET revoked = 1 WHERE token_id = ?'),
    insertRevocation: db.prepare('INSERT INTO revocations (hash, token_id) VALUES (?, ?)'),
    revocationsSince: db.prepare('SELECT seq, hash, token_id FROM revocations WHERE seq > ? ORDER BY seq'),
    // One statement: the row's write lock makes the check and the debit one step, so nothing overdraws.
    debit: db
      .prepare(
        `UPDATE l402_transactions SET spent_msat = spent_msat + @amount
       WHERE token_id = @token AND revoked = 0 AND price_msat - spent_msat >= @amount
       RETURNING price_msat - spent_msat`,
      )
      .pluck(),
    balance: db.prepare('SELECT price_msat - spent_msat FROM l402_transactions WHERE token_id = ?').pluck(),
    deleteUnpaidSecrets: db.prepare(
      `DELETE FROM secrets WHERE token_id IN (SELECT token_id FROM l402_transactions
         WHERE state = 'pending' AND revoked = 0 AND invoice_expires_at < ?)`,
    ),
    deleteUnpaidTransactions: db.prepare(
      `DELETE FROM l402_transactions WHERE state = 'pending' AND revoked = 0 AND invoice_expires_at < ?`,
    ),
  };

  /** Statements made per filter combination (see conditions()), each once. */
  const made = new Map<string, BetterSqlite3.Statement>();
  const statement = (kind: string, key: string, sql: () => string) => {
    let prepared = made.get(`${kind} ${key}`);
    if (prepared === undefined) {
      prepared = db.prepare(sql());
      made.set(`${kind} ${key}`, prepared);
    }
    return prepared;
  };

  const mpp = {
    consume: db.prepare(
      'INSERT INTO mpp_consumed (payment_hash, challenge_id, expires_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING',
    ),
    consumeTopUp: db.prepare(
      `INSERT INTO mpp_consumed (payment_hash, challenge_id, expires_at, top_up_session) VALUES (?, ?, ?, ?)
       ON CONFLICT DO NOTHING`,
    ),
    // 1 when the payment was consumed by this very top-up (same challenge, same session), 0 when by
    // anything else, no row when it was not consumed.
    sameTopUp: db
      .prepare(
        `SELECT top_up_session IS @session AND challenge_id = @challenge FROM mpp_consumed
         WHERE payment_hash = @hash`,
      )
      .pluck(),
    session: db.prepare(`SELECT ${SESSION_COLUMNS} FROM mpp_sessions WHERE session_id = ?`),
    insertSession: db.prepare(
      `INSERT INTO mpp_sessions (session_id, deposit_sats, return_invoice, status, created_at, updated_at)
       VALUES (?, ?, ?, 'open', ?, ?)`,
    ),
    credit: db.prepare(
      `UPDATE mpp_sessions SET deposit_sats = deposit_sats + ?, updated_at = ? WHERE session_id = ?
       RETURNING ${SESSION_COLUMNS}`,
    ),
    // The balance check and the debit are one statement: concurrent debits can never overdraw.
    debit: db.prepare(
      `UPDATE mpp_sessions SET spent_sats = spent_sats + @sats, updated_at = @now
       WHERE session_id = @id AND status = 'open' AND deposit_sats - spent_sats >= @sats
       RETURNING ${SESSION_COLUMNS}`,
    ),
    close: db.prepare(
      `UPDATE mpp_sessions SET status = 'closed', updated_at = ? WHERE session_id = ? AND status = 'open'
       RETURNING ${SESSION_COLUMNS}`,
    ),
    // The idle condition is on the UPDATE itself: a session that saw a debit meanwhile stays open.
    closeIdle: db.prepare(
      `UPDATE mpp_sessions SET status = 'closed', updated_at = @now
       WHERE status = 'open' AND updated_at < @before AND session_id IN
         (SELECT session_id FROM mpp_sessions WHERE status = 'open' AND updated_at < @before LIMIT @limit)
       RETURNING ${SESSION_COLUMNS}`,
    ),
    recordRefund: db.prepare(
      `UPDATE mpp_sessions SET refund_status = ? WHERE session_id = ? AND status = 'closed' AND refund_status IS NULL`,
    ),
    removeConsumed: db.prepare('DELETE FROM mpp_consumed WHERE expires_at < ?'),
    insertSecret: db.prepare(
      'INSERT INTO server_secrets (name, secret) VALUES (?, ?) ON CONFLICT DO NOTHING',
    ),
    secret: db.prepare('SELECT secret FROM server_secrets WHERE name = ?').pluck(),
  };
  const sessionRow = (id: Uint8Array) => mpp.session.get(id) as SessionRow | undefined;
  /** Why an update touched no open session. */
  const refusal = (id: Uint8Array, reason: 'insufficient' | 'closed'): SessionResult => {
    const row = sessionRow(id);
    if (row === undefined) return { ok: false, reason: 'not-found' };
    const session = readSession(NAME, row);
    return { ok: false, reason: session.status === 'closed' ? 'closed' : reason, session };
  };

  const openSession = db.transaction((o: Parameters<Store['openSession']>[0]): boolean => {
    if (sessionRow(o.paymentHash) !== undefined) return false;
    if (mpp.consume.run(o.paymentHash, o.challengeId, o.expiresAt).changes === 0) return false;
    mpp.insertSession.run(o.paymentHash, o.depositSats, o.returnInvoice, o.now, o.now);
    return true;
  });

  // Runs under BEGIN IMMEDIATE: nothing can consume the payment between the look and the insert.
  const topUp = db.transaction((id: Uint8Array, c: Parameters<Store['topUpSession']>[1]): TopUpResult => {
    const row = sessionRow(id);
    if (row === undefined) return { ok: false, reason: 'not-found' };
    const session = readSession(NAME, row);
    const same = mpp.sameTopUp.get({ hash: c.paymentHash, session: id, challenge: c.challengeId }) as
      | bigint
      | undefined;
    // This very top-up again: the original outcome, whatever became of the session since.
    if (same !== undefined && BigInt(same) === 1n) return { ok: false, reason: 'already-credited', session };
    if (session.status === 'closed') return { ok: false, reason: 'closed', session };
    if (
      same !== undefined ||
      mpp.consumeTopUp.run(c.paymentHash, c.challengeId, c.expiresAt, id).changes === 0
    ) {
      return { ok: false, reason: 'consumed', session };
    }
    return { ok: true, session: readSession(NAME, mpp.credit.get(c.sats, c.now, id) as SessionRow) };
  });

  const secret = db.transaction((name: string, fresh: Uint8Array) => {
    mpp.insertSecret.run(name, fresh);
    return mpp.secret.get(name) as Uint8Array;
  });

  const mint = db.transaction((r: MintRecord) => {
    if (statements.wasRevoked.get(r.idHash, r.tokenId) !== undefined) {
      throw new StoreError(
        'L402_STORE_CONFLICT',
        NAME,
        'this identifier was revoked: it is never minted again',
      );
    }
    statements.insertSecret.run(r.idHash, r.rootKey, r.tokenId, r.createdAt);
    statements.insertTransaction.run(
      r.tokenId,
      r.paymentHash,
      r.service,
      r.priceMsat,
      r.createdAt,
      r.invoiceExpiresAt,
    );
  });

  const revoke = db.transaction((by: 'idHash' | 'tokenId', value: Uint8Array) => {
    const row = (by === 'idHash' ? statements.deleteByIdHash : statements.deleteByTokenId).get(value) as
      | { hash: Uint8Array; token_id: Uint8Array }
      | undefined;
    if (row === undefined) return false;
    statements.markRevoked.run(row.token_id);
    statements.insertRevocation.run(row.hash, row.token_id);
    return true;
  });

  const removeExpiredUnpaid = db.transaction((now: number) => {
    const removed = statements.deleteUnpaidSecrets.run(now).changes;
    statements.deleteUnpaidTransactions.run(now);
    return removed;
  });

  const debitOne = (tokenId: Uint8Array, amountMsat: bigint): Debit => {
    const left = statements.debit.get({ token: tokenId, amount: amountMsat }) as bigint | undefined;
    if (left !== undefined) return { ok: true, remainingMsat: BigInt(left) };
    const balance = statements.balance.get(tokenId) as bigint | undefined;
    return { ok: false, remainingMsat: balance === undefined ? 0n : BigInt(balance) };
  };
  const debitAll = db.transaction((batch: readonly PendingDebit[]) =>
    batch.map((d) => debitOne(d.tokenId, d.amountMsat)),
  );
  /**
   * Group commit: the debits asked for in one turn of the event loop run in one transaction, so one
   * fsync makes them all durable (better-sqlite3 blocks the loop for it; one per debit would cap a
   * metered route at the disk's fsync rate). Each still checks and takes its own balance in order, and
   * none resolves before the commit.
   */
  let debits: PendingDebit[] = [];
  const flushDebits = () => {
    const batch = debits;
    debits = [];
    if (batch.length === 0) return;
    if (!db.open) {
      for (const d of batch) d.reject(closedError(NAME));
      return;
    }
    try {
      const results = debitAll.immediate(batch);
      for (const [i, d] of batch.entries()) d.resolve(results[i] as Debit);
    } catch (error) {
      const failed = failure(path, 'debit', error);
      for (const d of batch) d.reject(failed);
    }
  };

  /** Runs one call: refused once closed, driver errors as StoreErrors. */
  const run = async <T>(doing: string, call: () => T): Promise<T> => {
    if (!db.open) throw closedError(NAME);
    try {
      return call();
    } catch (error) {
      throw failure(path, doing, error);
    }
  };

  return {
    async mint(record) {
      checkMint(record);
      return run('mint', () => {
        try {
          mint.immediate(record);
        } catch (error) {
          // A UNIQUE constraint: the same identifier hash or token id is stored already.
          if ((error as { code?: unknown }).code === 'SQLITE_CONSTRAINT_UNIQUE') {
            throw new StoreError('L402_STORE_CONFLICT', NAME, 'this identifier was minted before', {
              cause: error,
            });
          }
          throw error;
        }
      });
    },

    async rootKey(idHash) {
      checkBytes(idHash, 'idHash');
      return run('read a root key', () => {
        const secret = statements.secret.get(idHash);
        return secret === undefined ? undefined : readBytes(NAME, secret, 'secret');
      });
    },

    async settle(paymentHash, settledAt) {
      checkBytes(paymentHash, 'paymentHash');
      checkSeconds(settledAt, 'settledAt');
      return run('settle', () => statements.settle.run(settledAt, paymentHash).changes > 0);
    },

    async revoke(token) {
      const { by, value } = refKey(token);
      return run('revoke', () => revoke.immediate(by, value));
    },

    async revocationsSince(after) {
      checkSeconds(after, 'after');
      return run('read revocations', () =>
        (statements.revocationsSince.all(after) as Parameters<typeof readRevocation>[1][]).map((row) =>
          readRevocation(NAME, row),
        ),
      );
    },

    async debit(tokenId, amountMsat) {
      checkDebit(tokenId, amountMsat);
      if (!db.open) throw closedError(NAME);
      return new Promise<Debit>((resolve, reject) => {
        debits.push({ tokenId, amountMsat, resolve, reject });
        if (debits.length === 1) setImmediate(flushDebits);
      });
    },

    async transactions(filter: TransactionFilter = {}) {
      checkFilter(filter);
      const { key, where, params } = conditions(filter);
      return run('list transactions', () => {
        // LIMIT -1 is no limit.
        const list = statement(
          'list',
          key,
          () => `SELECT ${TRANSACTION_COLUMNS} FROM l402_transactions WHERE ${where}
            ORDER BY created_at DESC, id DESC LIMIT @limit OFFSET @offset`,
        );
        const rows = list.all({ ...params, limit: filter.limit ?? -1, offset: filter.offset ?? 0 });
        return (rows as TransactionRow[]).map((row) => readTransaction(NAME, row));
      });
    },

    async countTransactions(filter: TransactionFilter = {}) {
      checkFilter(filter);
      const { key, where, params } = conditions(filter);
      return run('count transactions', () => {
        const count = statement('count', key, () => `SELECT count(*) FROM l402_transactions WHERE ${where}`);
        return readNumber(NAME, count.pluck().get(params), 'count');
      });
    },

    async summarizeTransactions(filter: TransactionFilter = {}, bucketing) {
      checkFilter(filter);
      const cut = bucketing === undefined ? undefined : checkBucketing(bucketing);
      const { key, where, params } = conditions(filter);
      return run('summarize transactions', () => {
        // Grouped by state too, rather than summing CASE expressions: fewer per row, and in the order
        // of the (service, state, …) index. newest_id orders services as transactions() lists them,
        // looked up by index among the few rows of that second.
        const services = statement(
          'services',
          key,
          () => `
            SELECT g.*, (SELECT max(id) FROM l402_transactions t
                WHERE t.created_at = g.newest AND t.service = g.service AND t.state = g.state) AS newest_id
            FROM (SELECT service, max(created_at) AS newest, ${PART_COLUMNS}
                  FROM l402_transactions WHERE ${where} GROUP BY service, state) g`,
        );
        // A bucket starts at created_at less its offset past the origin (a modulo never negative).
        const buckets = statement(
          'buckets',
          key,
          () => `
            SELECT created_at - ((created_at - @origin) % @width + @width) % @width AS start, ${PART_COLUMNS}
            FROM l402_transactions WHERE ${where} GROUP BY start, state`,
        );
        // One read transaction: the buckets and the totals see the same rows.
        const rows = db.transaction(() => ({
          services: services.all(params) as (PartRow & {
            service: unknown;
            newest: unknown;
            newest_id: unknown;
          })[],
          buckets: (cut === undefined
            ? []
            : buckets.all({
                ...params,
                origin: BigInt(cut.origin),
                width: BigInt(cut.width),
              })) as (PartRow & {
            start: unknown;
          })[],
        }))();
        return summaryOf(NAME, rows, readPart);
      });
    },

    async removeExpiredUnpaid(now) {
      checkSeconds(now, 'now');
      return run('remove expired tokens', () => removeExpiredUnpaid.immediate(now));
    },

    async consume(record) {
      checkConsumption(record);
      return run(
        'consume a payment',
        () => mpp.consume.run(record.paymentHash, record.challengeId, record.expiresAt).changes > 0,
      );
    },

    async openSession(open) {
      checkConsumption(open);
      checkSats(open.depositSats, 'depositSats');
      checkSeconds(open.now, 'now');
      return run('open a session', () => openSession.immediate(open));
    },

    async topUpSession(sessionId, credit) {
      checkBytes(sessionId, 'sessionId');
      checkConsumption(credit);
      checkSats(credit.sats, 'sats', true);
      checkSeconds(credit.now, 'now');
      return run('top up a session', () => topUp.immediate(sessionId, credit));
    },

    async debitSession(sessionId, sats, now) {
      checkBytes(sessionId, 'sessionId');
      checkSats(sats, 'sats');
      checkSeconds(now, 'now');
      return run('debit a session', () => {
        const row = mpp.debit.get({ sats, now, id: sessionId }) as SessionRow | undefined;
        return row === undefined
          ? refusal(sessionId, 'insufficient')
          : { ok: true as const, session: readSession(NAME, row) };
      });
    },

    async closeSession(sessionId, now) {
      checkBytes(sessionId, 'sessionId');
      checkSeconds(now, 'now');
      return run('close a session', () => {
        const row = mpp.close.get(now, sessionId) as SessionRow | undefined;
        return row === undefined
          ? refusal(sessionId, 'closed')
          : { ok: true as const, session: readSession(NAME, row) };
      });
    },

    async closeIdleSessions(idleBefore, now, limit) {
      checkSeconds(idleBefore, 'idleBefore');
      checkSeconds(now, 'now');
      checkLimit(limit);
      return run('close idle sessions', () =>
        (mpp.closeIdle.all({ before: idleBefore, now, limit }) as SessionRow[]).map((row) =>
          readSession(NAME, row),
        ),
      );
    },

    async recordRefund(sessionId, status) {
      checkBytes(sessionId, 'sessionId');
      checkRefundStatus(status);
      return run('record a refund', () => mpp.recordRefund.run(status, sessionId).changes > 0);
    },

    async session(sessionId) {
      checkBytes(sessionId, 'sessionId');
      return run('read a session', () => {
        const row = sessionRow(sessionId);
        return row === undefined ? undefined : readSession(NAME, row);
      });
    },

    async removeExpiredConsumptions(before) {
      checkSeconds(before, 'before');
      return run('remove expired consumptions', () => mpp.removeConsumed.run(before).changes);
    },

    async secret(name, fresh) {
      checkSecret(name, fresh);
      return run('read a secret', () => new Uint8Array(secret.immediate(name, fresh)));
    },

    async close() {
      flushDebits();
      if (db.open) db.close();
    },
  };
}
