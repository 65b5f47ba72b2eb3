/**
 * Bounded counters that survive a restart and can be shared by several gateway instances: what
 * `auth: freebie N` counts with. `take(key, limit)` adds one to `key` unless it already reached
 * `limit`, in one atomic step wherever the count lives:
 *
 * - `sqlite`: a `gateway_counters` table in the gateway's own database file (its own connection, WAL,
 *   `synchronous = FULL`, so a counted freebie is on disk before the request is forwarded);
 * - `postgres`: the same table in the gateway's PostgreSQL database, shared by every instance on it;
 * - `redis`: one key per counter, incremented by a Lua script, shared by every instance on the server
 *   (durable as far as that server's persistence is configured);
 * - `memory`: this process only, bounded (the oldest counter is dropped past `capacity`), for tests
 *   and for `auth: freebie` without any store.
 *
 * The SQL counters are one statement each (`INSERT … ON CONFLICT DO UPDATE … WHERE used < limit
 * RETURNING used`), so two instances never both take the last one.
 *
 * @example
 * const counters = await Counters.sqlite('/var/lib/l402/gateway.db');
 * await counters.take('freebie:api:203.0.113.0/24', 2); // true
 * await counters.close();
 */
import type BetterSqlite3 from 'better-sqlite3';
import type { Redis } from 'ioredis';
import { Errors } from 'l402';
import type postgresJs from 'postgres';
import { luaScript } from './internal/lua.js';

/** Counters with a ceiling, keyed by strings (see the module comment). */
export interface Counters {
  /** Where the counts live, for people: `sqlite /path`, `postgres host:port/db`, `redis`, `memory`. */
  readonly kind: string;
  /** Adds one to `key` and resolves true, unless it already reached `limit` (then false, unchanged). Rejects when the store fails. */
  take(key: string, limit: number): Promise<boolean>;
  /** How many were taken under `key` (0 for a key never seen). */
  used(key: string): Promise<number>;
  close(): Promise<void>;
}

/** Longest key accepted; keys are built by the gateway (service name + network), never by clients. */
const MAX_KEY = 1024;

function checkKey(key: string, limit: number): void {
  if (key.length === 0 || key.length > MAX_KEY)
    throw new RangeError(`counter key must be 1 to ${MAX_KEY} characters`);
  if (!Number.isSafeInteger(limit)) throw new RangeError(`counter limit must be an integer, not ${limit}`);
}

/**
 * Counters in this process only, bounded to `capacity` keys (the least recently counted is dropped).
 *
 * @example
 * const counters = Counters.memory({ capacity: 100_000 });
 */
export function memory(options: { readonly capacity?: number } = {}): Counters {
  const capacity = options.capacity ?? 100_000;
  const counts = new Map<string, number>();
  return {
    kind: 'memory',
    async take(key, limit) {
      checkKey(key, limit);
      const count = counts.get(key) ?? 0;
      if (count >= limit) return false;
      counts.delete(key);
      counts.set(key, count + 1);
      if (counts.size > capacity) counts.delete(counts.keys().next().value as string);
      return true;
    },
    async used(key) {
      return counts.get(key) ?? 0;
    },
    async close() {
      counts.clear();
    },
  };
}

const CREATE_TABLE = `CREATE TABLE IF NOT EXISTS gateway_counters (
  key TEXT PRIMARY KEY,
  used BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
)`;

/**
 * Counters in the SQLite file `path` (the gateway's database), through a connection of their own.
 * Rejects with `StoreError` `L402_STORE_UNAVAILABLE` when the file cannot be opened or written.
 *
 * @example
 * const counters = await Counters.sqlite(config.sqlite.dbfile);
 */
export async function sqlite(
  path: string,
  options: { readonly busyTimeoutMs?: number } = {},
): Promise<Counters> {
  let db: BetterSqlite3.Database | undefined;
  try {
    const Database = (await import('better-sqlite3')).default;
    db = new Database(path, { timeout: options.busyTimeoutMs ?? 5_000 });
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.exec(CREATE_TABLE);
  } catch (error) {
    db?.close();
    throw new Errors.StoreError(
      'L402_STORE_UNAVAILABLE',
      'sqlite',
      `${path}: cannot keep freebie counts: ${error instanceof Error ? error.message : String(error)}`,
      { cause: error },
    );
  }
  const open = db;
  const take = open
    .prepare(
      `INSERT INTO gateway_counters (key, used, updated_at) VALUES (?, 1, ?)
       ON CONFLICT (key) DO UPDATE SET used = used + 1, updated_at = excluded.updated_at WHERE used < ?
       RETURNING used`,
    )
    .pluck();
  const used = open.prepare('SELECT used FROM gateway_counters WHERE key = ?').pluck();
  return {
    kind: `sqlite ${path}`,
    async take(key, limit) {
      checkKey(key, limit);
      if (limit <= 0) return false;
      return take.get(key, Math.floor(Date.now() / 1000), limit) !== undefined;
    },
    async used(key) {
      return Number(used.get(key) ?? 0);
    },
    async close() {
      if (open.open) open.close();
    },
  };
}

/** What {@link postgres} connects with (the gateway's `postgres` config section). */
export interface PostgresOptions {
  readonly host: string;
  readonly port: number;
  readonly user?: string | undefined;
  readonly password?: string | undefined;
  readonly dbname?: string | undefined;
  readonly requiressl?: boolean;
  /** Connections kept for counting; 2 by default. */
  readonly maxconnections?: number;
}

/**
 * Counters in the PostgreSQL database the gateway's store uses, shared by every instance on it. Rejects
 * with `StoreError` `L402_STORE_UNAVAILABLE` when the server cannot be reached or refuses the table.
 *
 * @example
 * const counters = await Counters.postgres({ host: '127.0.0.1', port: 5432, user: 'postgres', dbname: 'l402' });
 */
export async function postgres(options: PostgresOptions): Promise<Counters> {
  const driver = (await import('postgres')).default as typeof postgresJs;
  const sql = driver({
    host: options.host,
    port: options.port,
    ...(options.user === undefined ? {} : { user: options.user }),
    ...(options.password === undefined ? {} : { password: options.password }),
    ...(options.dbname === undefined ? {} : { database: options.dbname }),
    ssl: options.requiressl ? 'require' : false,
    max: options.maxconnections ?? 2,
    connect_timeout: 10,
    fetch_types: false,
    onnotice: () => {},
    connection: { application_name: 'l402-gateway', synchronous_commit: 'on' },
  });
  const where = `${options.host}:${options.port}/${options.dbname ?? ''}`;
  try {
    try {
      await sql.unsafe(CREATE_TABLE);
    } catch {
      // Two instances creating the table at once: one of them loses a race on the catalog; the table is there.
      await sql.unsafe(CREATE_TABLE);
    }
  } catch (error) {
    await sql.end({ timeout: 1 });
    throw new Errors.StoreError(
      'L402_STORE_UNAVAILABLE',
      'postgres',
      `${where}: cannot keep freebie counts: ${error instanceof Error ? error.message : String(error)}`,
      { cause: error },
    );
  }
  return {
    kind: `postgres ${where}`,
    async take(key, limit) {
      checkKey(key, limit);
      if (limit <= 0) return false;
      const rows = await sql`
        INSERT INTO gateway_counters (key, used, updated_at) VALUES (${key}, 1, ${Math.floor(Date.now() / 1000)})
        ON CONFLICT (key) DO UPDATE SET used = gateway_counters.used + 1, updated_at = excluded.updated_at
        WHERE gateway_counters.used < ${limit}
        RETURNING used`;
      return rows.length === 1;
    },
    async used(key) {
      const rows = await sql`SELECT used FROM gateway_counters WHERE key = ${key}`;
      return rows.length === 0 ? 0 : Number(rows[0]!.used);
    },
    async close() {
      await sql.end({ timeout: 5 });
    },
  };
}

/** Adds one unless the count reached ARGV[1]; 1 when taken, 0 when not. */
const takeOne = luaScript(`
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if used >= tonumber(ARGV[1]) then return 0 end
redis.call('INCR', KEYS[1])
return 1
`);

/**
 * Counters in Redis under `prefix` (e.g. `l402:`), shared by every instance on the server. The client is
 * the caller's (and closed by it); commands reject at once while it is disconnected.
 *
 * @example
 * const counters = Counters.redis(client, 'l402:');
 */
export function redis(client: Redis, prefix: string): Counters {
  return {
    kind: 'redis',
    async take(key, limit) {
      checkKey(key, limit);
      if (limit <= 0) return false;
      return (await takeOne(client, [`${prefix}count:${key}`], [limit])) === 1;
    },
    async used(key) {
      return Number((await client.get(`${prefix}count:${key}`)) ?? 0);
    },
    async close() {},
  };
}
