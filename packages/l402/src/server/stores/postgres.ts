/**
 * `l402/stores/postgres`: the {@link Store} for several gateway instances sharing one PostgreSQL database,
 * through the `postgres` package (porsager's postgres.js, an optional peer dependency:
 * `npm install postgres`). Every instance sees the others' mints at once; revocations reach them through
 * `revocationsSince`.
 *
 * Connect with a URL or with Aperture's `postgres.*` config keys (host, port, user, password, dbname,
 * requireSSL, maxconnections); fields left out fall back to the `PG*` environment variables, as psql's
 * do. `schema` keeps the tables out of `public` (created when missing).
 *
 * Durability: each mint and revocation is one committed transaction under `synchronous_commit = on`,
 * which the store sets for its own sessions, so a server configured with `off` cannot weaken it.
 * Migrations run under a transaction-scoped advisory lock: instances starting together migrate once.
 * Revocations take a table lock so that their `seq` order is their commit order: an instance that has
 * read up to seq n never misses a later-committed revocation with a smaller seq.
 *
 * Tables follow Aperture's names: `secrets`, `l402_transactions`, `revocations`, plus `schema_version`.
 * Times are unix seconds in BIGINT, like the SQLite store's.
 *
 * @example
 * import * as Postgres from 'l402/stores/postgres';
 * const store = await Postgres.open({ url: 'postgres://l402@db.internal:5432/l402?sslmode=verify-full' });
 * // or Aperture's keys: await Postgres.open({ host: 'db.internal', port: 5432, user: 'l402', dbname: 'l402', requireSSL: true });
 */
import type PostgresJs from 'postgres';
import { StoreError } from '../../Errors.js';
import type { SessionResult, Store, TopUpResult, TransactionFilter } from '../Store.js';
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
  corrupt,
  readBytes,
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

/** libpq's `sslmode` values the driver supports: `require` encrypts without checking the certificate. */
export type SslMode = 'disable' | 'prefer' | 'require' | 'verify-full';

/** Aperture's `postgres.*` keys. */
export interface FieldOptions {
  readonly host?: string;
  readonly port?: number;
  readonly user?: string;
  readonly password?: string;
  readonly dbname?: string;
  /** Aperture's switch: `true` is `sslmode: 'require'`. */
  readonly requireSSL?: boolean;
  /** Defaults to `disable` (`require` with `requireSSL`), as Aperture does. */
  readonly sslmode?: SslMode;
}

export interface UrlOptions {
  /** `postgres://user:password@host:port/dbname?sslmode=…` */
  readonly url: string;
}

export interface CommonOptions {
  /** Pool size per instance (Aperture's `maxconnections`). Defaults to 10. */
  readonly maxconnections?: number;
  /** The schema the tables live in, created when missing; `[a-z_][a-z0-9_]*`. Defaults to the search path. */
  readonly schema?: string;
  /**
   * How long `open` may take to reach the server (connect and log in), in ms; migrating the tables
   * afterwards is not bounded by it. Defaults to 10 000.
   */
  readonly connectTimeoutMs?: number;
}

export type Options = CommonOptions & (UrlOptions | FieldOptions);

const NAME = 'postgres';

/** Arbitrary but fixed: every l402 instance must take the same advisory lock to migrate ('l402' in ASCII). */
const MIGRATION_LOCK = 0x6c343032n;

/** Migration n (1-based) is `MIGRATIONS[n - 1]`, one statement per entry; never edited once released. */
const MIGRATIONS: readonly (readonly string[])[] = [
  [
    `CREATE TABLE secrets (
      id BIGSERIAL PRIMARY KEY,
      hash BYTEA NOT NULL UNIQUE,
      secret BYTEA NOT NULL,
      token_id BYTEA NOT NULL UNIQUE,
      created_at BIGINT NOT NULL
    )`,
    `CREATE TABLE l402_transactions (
      id BIGSERIAL PRIMARY KEY,
      token_id BYTEA NOT NULL UNIQUE,
      payment_hash BYTEA NOT NULL,
      service TEXT NOT NULL,
      price_msat BIGINT NOT NULL CHECK (price_msat >= 0),
      state TEXT NOT NULL CHECK (state IN ('pending', 'settled')),
      created_at BIGINT NOT NULL,
      settled_at BIGINT,
      invoice_expires_at BIGINT NOT NULL,
      revoked BOOLEAN NOT NULL DEFAULT false
    )`,
    'CREATE INDEX l402_transactions_payment_hash ON l402_transactions (payment_hash)',
    'CREATE INDEX l402_transactions_created_at ON l402_transactions (created_at, id)',
    `CREATE INDEX l402_transactions_unpaid ON l402_transactions (invoice_expires_at) WHERE state = 'pending'`,
    // revoked_at is an audit field nothing reads back; the server's clock is the one all instances share.
    `CREATE TABLE revocations (
      seq BIGSERIAL PRIMARY KEY,
      hash BYTEA NOT NULL UNIQUE,
      token_id BYTEA NOT NULL UNIQUE,
      revoked_at BIGINT NOT NULL DEFAULT extract(epoch FROM now())::bigint
    )`,
  ],
  // Metered tokens: the prepaid credit is price_msat, what has been spent of it is spent_msat.
  ['ALTER TABLE l402_transactions ADD COLUMN spent_msat BIGINT NOT NULL DEFAULT 0 CHECK (spent_msat >= 0)'],
  [
    `CREATE TABLE mpp_consumed (
      payment_hash BYTEA PRIMARY KEY,
      challenge_id TEXT NOT NULL,
      expires_at BIGINT NOT NULL,
      consumed_at BIGINT NOT NULL DEFAULT extract(epoch FROM now())::bigint
    )`,
    'CREATE INDEX mpp_consumed_expires_at ON mpp_consumed (expires_at)',
    `CREATE TABLE mpp_sessions (
      session_id BYTEA PRIMARY KEY,
      deposit_sats BIGINT NOT NULL CHECK (deposit_sats >= 0),
      spent_sats BIGINT NOT NULL DEFAULT 0 CHECK (spent_sats >= 0 AND spent_sats <= deposit_sats),
      return_invoice TEXT NOT NULL,
      status TEXT NOT NULL CHECK (status IN ('open', 'closed')),
      refund_status TEXT CHECK (refund_status IN ('succeeded', 'failed', 'skipped')),
      created_at BIGINT NOT NULL,
      updated_at BIGINT NOT NULL
    )`,
    `CREATE TABLE server_secrets (
      name TEXT PRIMARY KEY,
      secret BYTEA NOT NULL
    )`,
  ],
  // The session a top-up credited (NULL for charges and deposits): how a retried top-up is told apart
  // from a payment spent elsewhere. Rows consumed before this migration have none: their retries are
  // refused, as they were.
  ['ALTER TABLE mpp_consumed ADD COLUMN top_up_session BYTEA'],
  // Counts and summaries by service and state (the admin's totals and stats) read this index alone
  // (index-only scans), never the table's wide rows.
  [
    'CREATE INDEX IF NOT EXISTS l402_transactions_service ON l402_transactions (service, state, created_at, price_msat)',
  ],
];

const SESSION_COLUMNS =
  'session_id, deposit_sats, spent_sats, return_invoice, status, refund_status, created_at, updated_at';

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

function configError(message: string): StoreError {
  return new StoreError('L402_STORE_CONFIG', NAME, message);
}

async function driver(): Promise<typeof PostgresJs> {
  try {
    return (await import('postgres')).default;
  } catch (error) {
    throw new StoreError(
      'L402_STORE_CONFIG',
      NAME,
      'the PostgreSQL store needs the postgres package: npm install postgres',
      { cause: error },
    );
  }
}

/** Where the store connects, for messages: host, port and database, never the user or password. */
function describe(options: Options): string {
  if ('url' in options) {
    let url: URL;
    try {
      url = new URL(options.url);
    } catch {
      throw configError('url is not a URL (postgres://user:password@host:port/dbname)');
    }
    if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
      throw configError(`url must start with postgres:// or postgresql://, not ${url.protocol}//`);
    }
    return `${url.hostname || 'localhost'}:${url.port || 5432}${url.pathname}`;
  }
  const { env } = process;
  return `${options.host ?? env.PGHOST ?? 'localhost'}:${options.port ?? env.PGPORT ?? 5432}/${options.dbname ?? env.PGDATABASE ?? ''}`;
}

function ssl(options: FieldOptions): false | Exclude<SslMode, 'disable'> {
  if (
    options.sslmode !== undefined &&
    !['disable', 'prefer', 'require', 'verify-full'].includes(options.sslmode)
  ) {
    throw configError(`sslmode must be disable, prefer, require or verify-full, not ${options.sslmode}`);
  }
  if (options.requireSSL === true && (options.sslmode === 'disable' || options.sslmode === 'prefer')) {
    throw configError(`requireSSL contradicts sslmode ${options.sslmode}`);
  }
  const mode = options.sslmode ?? (options.requireSSL === true ? 'require' : 'disable');
  return mode === 'disable' ? false : mode;
}

/**
 * A driver code (SQLSTATE, or postgres.js's own such as CONNECT_TIMEOUT) as a store code: apart from a
 * duplicate key and a corrupt page, every failure means the database cannot serve this call now.
 */
function storeCode(code: string): 'L402_STORE_UNAVAILABLE' | 'L402_STORE_CORRUPT' | 'L402_STORE_CONFLICT' {
  if (code === '23505') return 'L402_STORE_CONFLICT'; // unique_violation
  if (code === 'XX001' || code === 'XX002') return 'L402_STORE_CORRUPT'; // data_corrupted, index_corrupted
  return 'L402_STORE_UNAVAILABLE';
}

/** A driver error as a StoreError; anything else (a bug, a RangeError) passes unchanged. */
function failure(where: string, doing: string, error: unknown): unknown {
  if (error instanceof StoreError || !(error instanceof Error)) return error;
  const code = (error as { code?: unknown }).code;
  if (typeof code !== 'string') return error;
  return new StoreError(storeCode(code), NAME, `${where}: cannot ${doing}: ${error.message}`, {
    cause: error,
  });
}

/** Creates or migrates the tables; `reached` is called once the server has answered (BEGIN is done). */
async function migrate(
  sql: PostgresJs.Sql<{ bigint: bigint }>,
  schema: string | undefined,
  reached: () => void,
): Promise<void> {
  await sql.begin(async (tx) => {
    reached();
    await tx`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK})`;
    if (schema !== undefined) await tx`CREATE SCHEMA IF NOT EXISTS ${tx(schema)}`;
    await tx`CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`;
    const [row] = await tx`SELECT coalesce(max(version), 0)::bigint AS version FROM schema_version`;
    const found = Number(row?.version);
    checkSchemaVersion(NAME, found);
    if (found === SCHEMA_VERSION) return;
    for (const statement of MIGRATIONS.slice(found).flat()) await tx.unsafe(statement);
    await tx`DELETE FROM schema_version`;
    await tx`INSERT INTO schema_version (version) VALUES (${SCHEMA_VERSION})`;
  });
}

/**
 * Connects, creates or migrates the tables, and returns the store. Rejects with `L402_STORE_UNAVAILABLE`
 * when the server cannot be reached (within `connectTimeoutMs`) or refuses the login,
 * `L402_STORE_CORRUPT` when the database was migrated by a newer l402, `L402_STORE_CONFIG` for options
 * that cannot work.
 */
export async function open(options: Options): Promise<Store> {
  const { schema, maxconnections = 10, connectTimeoutMs = 10_000 } = options;
  if (schema !== undefined && !SCHEMA_NAME.test(schema)) {
    throw configError(
      `schema must match [a-z_][a-z0-9_]* (at most 63 characters), not ${JSON.stringify(schema)}`,
    );
  }
  for (const [what, value] of [
    ['maxconnections', maxconnections],
    ['connectTimeoutMs', connectTimeoutMs],
  ] as const) {
    if (!(Number.isSafeInteger(value) && value >= 1)) {
      throw configError(`${what} must be a positive integer, not ${value}`);
    }
  }
  const fields = ['host', 'port', 'user', 'password', 'dbname', 'requireSSL', 'sslmode'] as const;
  if ('url' in options && fields.some((k) => (options as FieldOptions)[k] !== undefined)) {
    throw configError('give either url or host/port/user/password/dbname, not both');
  }
  const where = describe(options);
  const postgres = await driver();
  const settings: PostgresJs.Options<{ bigint: PostgresJs.PostgresType<bigint> }> = {
    max: maxconnections,
    connect_timeout: Math.max(1, Math.ceil(connectTimeoutMs / 1000)),
    // Every 64-bit column (prices, times, seq) as a bigint: prices need all 64 bits.
    types: { bigint: postgres.BigInt },
    // No array columns here, so the extra round trip that loads array types on each connection is waste.
    fetch_types: false,
    // CREATE … IF NOT EXISTS raises NOTICEs, which the driver would print to the console.
    onnotice: () => {},
    connection: {
      application_name: 'l402',
      synchronous_commit: 'on',
      ...(schema === undefined ? {} : { search_path: schema }),
    },
  };
  const sql =
    'url' in options
      ? postgres(options.url, settings)
      : postgres({
          ...settings,
          ...(options.host === undefined ? {} : { host: options.host }),
          ...(options.port === undefined ? {} : { port: options.port }),
          ...(options.user === undefined ? {} : { user: options.user }),
          ...(options.password === undefined ? {} : { password: options.password }),
          ...(options.dbname === undefined ? {} : { database: options.dbname }),
          ssl: ssl(options),
        });
  // The driver's connect_timeout covers a silent server, but a server (or proxy) that accepts and then
  // drops the connection makes it reconnect forever: open gets the deadline too, until the server has
  // answered. Migrating is not bounded by it: building an index over millions of rows takes a while,
  // and so does waiting for another instance doing it.
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      reject,
      connectTimeoutMs,
      new StoreError('L402_STORE_UNAVAILABLE', NAME, `${where}: no answer within ${connectTimeoutMs} ms`),
    );
  });
  const migrating = migrate(sql, schema, () => clearTimeout(timer));
  try {
    await Promise.race([migrating, late]);
  } catch (error) {
    // Ending the pool fails the abandoned migration too; that failure is the one reported here.
    migrating.catch(() => {});
    await sql.end({ timeout: 0 });
    throw failure(where, 'open the database', error);
  } finally {
    clearTimeout(timer);
  }
  return connected(sql, where);
}

/** The figures of one (group, state) of a summary; the sum is numeric, exact, read as text. */
function readPart(row: PostgresJs.Row): SummaryPart {
  const { amount } = row;
  if (typeof amount !== 'string' || !/^\d+$/.test(amount))
    throw corrupt(NAME, 'amount is not a whole number');
  return {
    state: readState(NAME, row.state),
    count: readNumber(NAME, row.n, 'count'),
    amountMsat: BigInt(amount),
  };
}

function connected(sql: PostgresJs.Sql<{ bigint: bigint }>, where: string): Store {
  let closed = false;

  /** Runs one call: refused once closed, driver errors as StoreErrors. */
  const run = async <T>(doing: string, call: () => Promise<T>): Promise<T> => {
    if (closed) throw closedError(NAME);
    try {
      return await call();
    } catch (error) {
      throw failure(where, doing, error);
    }
  };

  const empty = sql``;
  /** The conditions of `filter` that are set (paging aside), for a WHERE. */
  const selection = ({ service, state, since, until }: TransactionFilter) => sql`true
    ${service === undefined ? empty : sql`AND service = ${service}`}
    ${state === undefined ? empty : sql`AND state = ${state}`}
    ${since === undefined ? empty : sql`AND created_at >= ${since}::bigint`}
    ${until === undefined ? empty : sql`AND created_at <= ${until}::bigint`}`;

  const sessionRow = async (id: Uint8Array): Promise<SessionRow | undefined> => {
    const [row] = await run(
      'read a session',
      () => sql`SELECT ${sql.unsafe(SESSION_COLUMNS)} FROM mpp_sessions WHERE session_id = ${id}`,
    );
    return row as unknown as SessionRow | undefined;
  };
  /** Why an update touched no open session. */
  const refusal = async (id: Uint8Array, reason: 'insufficient' | 'closed'): Promise<SessionResult> => {
    const row = await sessionRow(id);
    if (row === undefined) return { ok: false, reason: 'not-found' };
    const session = readSession(NAME, row);
    return { ok: false, reason: session.status === 'closed' ? 'closed' : reason, session };
  };

  return {
    async mint(r) {
      checkMint(r);
      // One statement, so one round trip and atomic without an explicit transaction; the WHERE NOT
      // EXISTS makes a revoked identifier insert nothing, which the empty result reports.
      const rows = await run('mint', async () => {
        try {
          return await sql`
            WITH secret AS (
              INSERT INTO secrets (hash, secret, token_id, created_at)
              SELECT ${r.idHash}::bytea, ${r.rootKey}::bytea, ${r.tokenId}::bytea, ${r.createdAt}::bigint
              WHERE NOT EXISTS (SELECT 1 FROM revocations WHERE hash = ${r.idHash} OR token_id = ${r.tokenId})
              RETURNING token_id
            )
            INSERT INTO l402_transactions
              (token_id, payment_hash, service, price_msat, state, created_at, invoice_expires_at)
            SELECT token_id, ${r.paymentHash}::bytea, ${r.service}::text, ${r.priceMsat}::bigint, 'pending',
              ${r.createdAt}::bigint, ${r.invoiceExpiresAt}::bigint
            FROM secret
            RETURNING 1`;
        } catch (error) {
          if ((error as { code?: unknown }).code === '23505') {
            throw new StoreError('L402_STORE_CONFLICT', NAME, 'this identifier was minted before', {
              cause: error,
            });
          }
          throw error;
        }
      });
      if (rows.length === 0) {
        throw new StoreError(
          'L402_STORE_CONFLICT',
          NAME,
          'this identifier was revoked: it is never minted again',
        );
      }
    },

    async rootKey(idHash) {
      checkBytes(idHash, 'idHash');
      const [row] = await run(
        'read a root key',
        () => sql`SELECT secret FROM secrets WHERE hash = ${idHash}`,
      );
      return row === undefined ? undefined : readBytes(NAME, row.secret, 'secret');
    },

    async settle(paymentHash, settledAt) {
      checkBytes(paymentHash, 'paymentHash');
      checkSeconds(settledAt, 'settledAt');
      const result = await run(
        'settle',
        () => sql`
          UPDATE l402_transactions SET state = 'settled', settled_at = coalesce(settled_at, ${settledAt}::bigint)
          WHERE payment_hash = ${paymentHash}`,
      );
      return result.count > 0;
    },

    async revoke(token) {
      const { by, value } = refKey(token);
      const column = by === 'idHash' ? 'hash' : 'token_id';
      return run('revoke', () =>
        sql.begin(async (tx) => {
          // Serializes revocations, so seq order is commit order (see the module comment). Readers and
          // mints take weaker locks that this one does not block.
          await tx`LOCK TABLE revocations IN SHARE ROW EXCLUSIVE MODE`;
          const rows = await tx`
            WITH gone AS (DELETE FROM secrets WHERE ${tx(column)} = ${value} RETURNING hash, token_id),
            marked AS (UPDATE l402_transactions SET revoked = true WHERE token_id IN (SELECT token_id FROM gone))
            INSERT INTO revocations (hash, token_id) SELECT hash, token_id FROM gone
            RETURNING seq`;
          return rows.length > 0;
        }),
      );
    },

    async revocationsSince(after) {
      checkSeconds(after, 'after');
      const rows = await run(
        'read revocations',
        () => sql`SELECT seq, hash, token_id FROM revocations WHERE seq > ${after}::bigint ORDER BY seq`,
      );
      return rows.map((row) => readRevocation(NAME, row as Parameters<typeof readRevocation>[1]));
    },

    async debit(tokenId, amountMsat) {
      checkDebit(tokenId, amountMsat);
      // One statement: the row lock makes the check and the debit one step across every instance, and
      // the balance comes back in the same round trip whether or not the debit was taken.
      const [row] = await run(
        'debit',
        () => sql`
          WITH taken AS (
            UPDATE l402_transactions SET spent_msat = spent_msat + ${amountMsat}::bigint
            WHERE token_id = ${tokenId} AND NOT revoked AND price_msat - spent_msat >= ${amountMsat}::bigint
            RETURNING price_msat - spent_msat AS remaining
          )
          SELECT true AS ok, remaining FROM taken
          UNION ALL
          SELECT false, price_msat - spent_msat FROM l402_transactions
          WHERE token_id = ${tokenId} AND NOT EXISTS (SELECT 1 FROM taken)`,
      );
      if (row === undefined) return { ok: false, remainingMsat: 0n };
      return { ok: row.ok === true, remainingMsat: BigInt(row.remaining as bigint) };
    },

    async transactions(filter: TransactionFilter = {}) {
      checkFilter(filter);
      const { limit, offset = 0 } = filter;
      const rows = await run(
        'list transactions',
        () => sql`
          SELECT token_id, payment_hash, service, price_msat, state, created_at, settled_at, revoked
          FROM l402_transactions
          WHERE ${selection(filter)}
          ORDER BY created_at DESC, id DESC
          ${limit === undefined ? empty : sql`LIMIT ${limit}::bigint`}
          OFFSET ${offset}::bigint`,
      );
      return rows.map((row) => readTransaction(NAME, row as unknown as TransactionRow));
    },

    async countTransactions(filter: TransactionFilter = {}) {
      checkFilter(filter);
      const [row] = await run(
        'count transactions',
        () => sql`SELECT count(*) AS n FROM l402_transactions WHERE ${selection(filter)}`,
      );
      return readNumber(NAME, row?.n, 'count');
    },

    async summarizeTransactions(filter: TransactionFilter = {}, bucketing) {
      checkFilter(filter);
      const cut = bucketing === undefined ? undefined : checkBucketing(bucketing);
      const part = sql`state, count(*) AS n, sum(price_msat)::text AS amount`;
      // Both reads in one snapshot, so the buckets and the totals see the same rows.
      const read = async (tx: PostgresJs.TransactionSql<{ bigint: bigint }>) => {
        // newest_id orders services as transactions() lists them, looked up by index among the few
        // rows of that second.
        const services = await tx`
          SELECT g.*, (SELECT max(id) FROM l402_transactions t
              WHERE t.created_at = g.newest AND t.service = g.service AND t.state = g.state) AS newest_id
          FROM (SELECT service, max(created_at) AS newest, ${part}
                FROM l402_transactions WHERE ${selection(filter)} GROUP BY service, state) g`;
        // A bucket starts at created_at less its offset past the origin (a modulo never negative).
        const buckets =
          cut === undefined
            ? []
            : await tx`
              SELECT created_at - mod(mod(created_at - ${cut.origin}::bigint, ${cut.width}::bigint)
                  + ${cut.width}::bigint, ${cut.width}::bigint) AS start, ${part}
              FROM l402_transactions WHERE ${selection(filter)} GROUP BY 1, state`;
        return { services, buckets };
      };
      const rows = await run('summarize transactions', () =>
        sql.begin('ISOLATION LEVEL REPEATABLE READ READ ONLY', read),
      );
      return summaryOf(NAME, rows, readPart);
    },

    async removeExpiredUnpaid(now) {
      checkSeconds(now, 'now');
      // One statement: a settle racing with it either lands first (the row is then skipped) or finds
      // the transaction gone; a paid token never loses its key.
      const result = await run(
        'remove expired tokens',
        () => sql`
          WITH gone AS (
            DELETE FROM l402_transactions
            WHERE state = 'pending' AND NOT revoked AND invoice_expires_at < ${now}::bigint
            RETURNING token_id
          )
          DELETE FROM secrets WHERE token_id IN (SELECT token_id FROM gone)`,
      );
      return result.count;
    },

    async consume(record) {
      checkConsumption(record);
      const rows = await run(
        'consume a payment',
        () => sql`
          INSERT INTO mpp_consumed (payment_hash, challenge_id, expires_at)
          VALUES (${record.paymentHash}, ${record.challengeId}, ${record.expiresAt}::bigint)
          ON CONFLICT DO NOTHING RETURNING 1`,
      );
      return rows.length > 0;
    },

    async openSession(o) {
      checkConsumption(o);
      checkSats(o.depositSats, 'depositSats');
      checkSeconds(o.now, 'now');
      // One statement: the session exists only if this very statement consumed the deposit.
      const rows = await run(
        'open a session',
        () => sql`
          WITH spent AS (
            INSERT INTO mpp_consumed (payment_hash, challenge_id, expires_at)
            VALUES (${o.paymentHash}, ${o.challengeId}, ${o.expiresAt}::bigint)
            ON CONFLICT DO NOTHING RETURNING payment_hash
          )
          INSERT INTO mpp_sessions (session_id, deposit_sats, return_invoice, status, created_at, updated_at)
          SELECT payment_hash, ${o.depositSats}::bigint, ${o.returnInvoice}::text, 'open', ${o.now}::bigint,
            ${o.now}::bigint
          FROM spent
          ON CONFLICT DO NOTHING RETURNING 1`,
      );
      return rows.length > 0;
    },

    async topUpSession(sessionId, c) {
      checkBytes(sessionId, 'sessionId');
      checkConsumption(c);
      checkSats(c.sats, 'sats', true);
      checkSeconds(c.now, 'now');
      return run('top up a session', () =>
        sql.begin(async (tx): Promise<TopUpResult> => {
          // The session's row lock orders top-ups of one session: a retry racing the original waits
          // for its commit, then finds its consumption below.
          const [row] = await tx`SELECT ${tx.unsafe(SESSION_COLUMNS)} FROM mpp_sessions
            WHERE session_id = ${sessionId} FOR UPDATE`;
          if (row === undefined) return { ok: false, reason: 'not-found' };
          const session = readSession(NAME, row as unknown as SessionRow);
          /** Whether the payment's consumption (committed, when the insert below found one) is this very top-up. */
          const repeated = async () => {
            const [prior] = await tx`
              SELECT coalesce(top_up_session = ${sessionId} AND challenge_id = ${c.challengeId}, false) AS same
              FROM mpp_consumed WHERE payment_hash = ${c.paymentHash}`;
            return prior?.same === true;
          };
          if (session.status === 'closed') {
            // This very top-up again: the original outcome, although the session closed since.
            return (await repeated())
              ? { ok: false, reason: 'already-credited', session }
              : { ok: false, reason: 'closed', session };
          }
          const spent = await tx`
            INSERT INTO mpp_consumed (payment_hash, challenge_id, expires_at, top_up_session)
            VALUES (${c.paymentHash}, ${c.challengeId}, ${c.expiresAt}::bigint, ${sessionId})
            ON CONFLICT DO NOTHING RETURNING 1`;
          if (spent.length === 0) {
            return (await repeated())
              ? { ok: false, reason: 'already-credited', session }
              : { ok: false, reason: 'consumed', session };
          }
          const [credited] = await tx`
            UPDATE mpp_sessions SET deposit_sats = deposit_sats + ${c.sats}::bigint, updated_at = ${c.now}::bigint
            WHERE session_id = ${sessionId} RETURNING ${tx.unsafe(SESSION_COLUMNS)}`;
          return { ok: true, session: readSession(NAME, credited as unknown as SessionRow) };
        }),
      );
    },

    async debitSession(sessionId, sats, now) {
      checkBytes(sessionId, 'sessionId');
      checkSats(sats, 'sats');
      checkSeconds(now, 'now');
      // The balance check and the debit are one statement under the row lock: never an overdraft.
      const [row] = await run(
        'debit a session',
        () => sql`
          UPDATE mpp_sessions SET spent_sats = spent_sats + ${sats}::bigint, updated_at = ${now}::bigint
          WHERE session_id = ${sessionId} AND status = 'open' AND deposit_sats - spent_sats >= ${sats}::bigint
          RETURNING ${sql.unsafe(SESSION_COLUMNS)}`,
      );
      if (row !== undefined) return { ok: true, session: readSession(NAME, row as unknown as SessionRow) };
      return refusal(sessionId, 'insufficient');
    },

    async closeSession(sessionId, now) {
      checkBytes(sessionId, 'sessionId');
      checkSeconds(now, 'now');
      const [row] = await run(
        'close a session',
        () => sql`
          UPDATE mpp_sessions SET status = 'closed', updated_at = ${now}::bigint
          WHERE session_id = ${sessionId} AND status = 'open'
          RETURNING ${sql.unsafe(SESSION_COLUMNS)}`,
      );
      if (row !== undefined) return { ok: true, session: readSession(NAME, row as unknown as SessionRow) };
      return refusal(sessionId, 'closed');
    },

    async closeIdleSessions(idleBefore, now, limit) {
      checkSeconds(idleBefore, 'idleBefore');
      checkSeconds(now, 'now');
      checkLimit(limit);
      // The idle condition is on the UPDATE itself, which rechecks it on rows a concurrent debit changed.
      const rows = await run(
        'close idle sessions',
        () => sql`
          UPDATE mpp_sessions SET status = 'closed', updated_at = ${now}::bigint
          WHERE status = 'open' AND updated_at < ${idleBefore}::bigint AND session_id IN (
            SELECT session_id FROM mpp_sessions WHERE status = 'open' AND updated_at < ${idleBefore}::bigint
            LIMIT ${limit}::bigint)
          RETURNING ${sql.unsafe(SESSION_COLUMNS)}`,
      );
      return rows.map((row) => readSession(NAME, row as unknown as SessionRow));
    },

    async recordRefund(sessionId, status) {
      checkBytes(sessionId, 'sessionId');
      checkRefundStatus(status);
      const result = await run(
        'record a refund',
        () => sql`
          UPDATE mpp_sessions SET refund_status = ${status}
          WHERE session_id = ${sessionId} AND status = 'closed' AND refund_status IS NULL`,
      );
      return result.count > 0;
    },

    async session(sessionId) {
      checkBytes(sessionId, 'sessionId');
      const row = await sessionRow(sessionId);
      return row === undefined ? undefined : readSession(NAME, row);
    },

    async removeExpiredConsumptions(before) {
      checkSeconds(before, 'before');
      const result = await run(
        'remove expired consumptions',
        () => sql`DELETE FROM mpp_consumed WHERE expires_at < ${before}::bigint`,
      );
      return result.count;
    },

    async secret(name, fresh) {
      checkSecret(name, fresh);
      // Racing instances both insert; the first commit wins and every instance reads that one.
      let [row] = await run(
        'read a secret',
        () => sql`
          WITH made AS (
            INSERT INTO server_secrets (name, secret) VALUES (${name}, ${fresh})
            ON CONFLICT DO NOTHING RETURNING secret
          )
          SELECT secret FROM made UNION ALL SELECT secret FROM server_secrets WHERE name = ${name}`,
      );
      // The loser of a race sees neither row in its snapshot: the winner's commit is visible now.
      if (row === undefined) {
        [row] = await run('read a secret', () => sql`SELECT secret FROM server_secrets WHERE name = ${name}`);
      }
      if (!(row?.secret instanceof Uint8Array))
        throw new StoreError('L402_STORE_CORRUPT', NAME, 'unreadable secret');
      return new Uint8Array(row.secret);
    },

    async close() {
      if (closed) return;
      closed = true;
      await sql.end({ timeout: 5 });
    },
  };
}
