/**
 * The services the gateway serves, as the admin API changes them: the config file's services, with
 * the changes made through the API laid over them, persisted in the gateway's database (SQLite or
 * PostgreSQL, table `l402_admin_services`) and applied at once to the running router.
 *
 * As Aperture (`docs/admin-api.md`): a persisted service takes precedence over the config file's
 * service of the same name, on every start. Beyond Aperture, deleting a config-file service is
 * persisted too (a tombstone row), so it stays deleted after a restart instead of coming back.
 *
 * A change is durable before it is acknowledged or applied: the row is committed first, then the
 * router is swapped. Changes are serialized, so two writers never interleave.
 *
 * @example
 * const catalogue = await Catalogue.open(config, store);
 * catalogue.router.match({ host: 'localhost', path: '/api/x' })?.route.price; // 21
 * await catalogue.update('api', { price: 50 });
 * catalogue.router.match({ host: 'localhost', path: '/api/x' })?.route.price; // 50
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import type { Auth, AuthScheme, Config, HostPort, Service } from '../Config.js';
import { formatHostPort } from '../Config.js';
import { RegexpSyntaxError, regexp } from '../internal/goSyntax.js';
import * as Router from '../router.js';
import { AdminError } from './errors.js';

/** A service as the admin API shows and stores it (Aperture's `adminrpc.Service` fields). */
export interface ServiceSpec {
  readonly name: string;
  /** `host:port` of the backend. */
  readonly address: string;
  readonly protocol: 'http' | 'https';
  /** RE2 syntax; `.*` when none. */
  readonly host_regexp: string;
  /** RE2 syntax; empty: every path. */
  readonly path_regexp: string;
  /** Satoshis per token. */
  readonly price: number;
  /** `on`, `off` or `freebie N`. */
  readonly auth: string;
  readonly auth_scheme: AuthScheme;
}

/** The fields an update may change (all optional; only those given change). */
export type ServicePatch = Partial<Omit<ServiceSpec, 'name'>>;

/** Paths the gateway answers itself; no service may claim them. */
export const RESERVED_PATHS = ['/api/admin/', '/dashboard'] as const;
const MAX_REGEXP = 1024;

/**
 * One persisted row per service name: a whole spec for a service made through the API, the fields
 * changed for a config-file service, or undefined for a deleted service.
 */
interface Row {
  readonly name: string;
  readonly spec: ServicePatch | undefined;
}

interface Persistence {
  load(): Promise<Row[]>;
  save(row: Row): Promise<void>;
  close(): Promise<void>;
}

/** The live service set, its router, and the operations of the admin API on it. */
export interface Catalogue {
  /** Always routes with the current services. */
  readonly router: Router.Router;
  /** The current services, in matching order. */
  services(): readonly Service[];
  /** The current services as the API shows them. */
  list(): ServiceSpec[];
  create(spec: ServiceSpec): Promise<ServiceSpec>;
  update(name: string, patch: ServicePatch): Promise<ServiceSpec>;
  remove(name: string): Promise<void>;
  close(): Promise<void>;
}

const DEFAULTS: Omit<
  Service,
  'name' | 'hostregexp' | 'pathregexp' | 'address' | 'protocol' | 'auth' | 'authscheme' | 'price'
> = {
  tlscertpath: undefined,
  headers: {},
  rewrite: { prefix: undefined },
  timeout: 0,
  capabilities: [],
  constraints: {},
  dynamicprice: { enabled: false },
  authwhitelistpaths: [],
  authskipinvoicecreationpaths: [],
  ratelimits: [],
};

function bad(message: string): AdminError {
  return new AdminError('L402_ADMIN_BAD_REQUEST', message);
}

/** `host:port` (or `[v6]:port`) → HostPort. */
export function parseAddress(text: string): HostPort {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(text);
  const port = Number(m?.[3]);
  if (m === null || port < 1 || port > 65535) throw bad(`address must be host:port, got "${text}"`);
  return { host: m[1] ?? m[2] ?? '', port };
}

/** `on`/`true`/empty, `off`/`false`, `freebie N` (N > 0), case-insensitive, as Aperture's `validateAuthLevel`. */
export function parseAuth(text: string): Auth {
  const lower = text.trim().toLowerCase();
  if (lower === 'on' || lower === 'true' || lower === '') return { kind: 'on' };
  if (lower === 'off' || lower === 'false') return { kind: 'off' };
  const m = /^freebie\s+(\d{1,9})$/.exec(lower);
  if (m !== null && Number(m[1]) > 0) return { kind: 'freebie', count: Number(m[1]) };
  throw bad(`auth must be 'on', 'off' or 'freebie N' (N a positive integer), got "${text}"`);
}

export function formatAuth(auth: Auth): string {
  return auth.kind === 'freebie' ? `freebie ${auth.count}` : auth.kind;
}

function compile(text: string, field: string): RegExp {
  if (text.length > MAX_REGEXP) throw bad(`${field} exceeds max length ${MAX_REGEXP}`);
  try {
    return regexp(text);
  } catch (error) {
    const why =
      error instanceof RegexpSyntaxError || error instanceof SyntaxError ? error.message : String(error);
    throw bad(`invalid ${field}: ${why}`);
  }
}

/**
 * The service a spec describes. What the API cannot express (headers, caveats, rate limits …) comes
 * from `base`, the config file's service of that name; so do its compiled regexps unless `changed`
 * names them, since the API shows a config regexp in its JavaScript translation.
 */
export function build(spec: ServiceSpec, base?: Service, changed: ServicePatch = spec): Service {
  const pathregexp =
    base !== undefined && changed.path_regexp === undefined
      ? base.pathregexp
      : spec.path_regexp === ''
        ? undefined
        : compile(spec.path_regexp, 'path_regexp');
  if (changed.path_regexp !== undefined || base === undefined) {
    for (const reserved of RESERVED_PATHS) {
      if (pathregexp === undefined || pathregexp.test(reserved)) {
        throw bad(
          `path_regexp must be set and must not match the gateway's own paths (${RESERVED_PATHS.join(', ')})`,
        );
      }
    }
  }
  const hostregexp =
    base !== undefined && changed.host_regexp === undefined
      ? base.hostregexp
      : compile(spec.host_regexp === '' ? '.*' : spec.host_regexp, 'host_regexp');
  return Object.freeze({
    ...(base ?? DEFAULTS),
    name: spec.name,
    hostregexp,
    pathregexp,
    address: parseAddress(spec.address),
    protocol: spec.protocol,
    auth: parseAuth(spec.auth),
    authscheme: spec.auth_scheme,
    // Aperture turns a price of 0 into 1 sat; so does the config.
    price: spec.price === 0 ? 1 : spec.price,
  });
}

/** A config-file service as the API shows it (regexps as their JavaScript translation). */
export function specOf(service: Service): ServiceSpec {
  return {
    name: service.name,
    address: formatHostPort(service.address),
    protocol: service.protocol,
    host_regexp: service.hostregexp.source === '(?:)' ? '.*' : service.hostregexp.source,
    path_regexp: service.pathregexp?.source ?? '',
    price: service.price,
    auth: formatAuth(service.auth),
    auth_scheme: service.authscheme,
  };
}

/**
 * The catalogue over `config.services` and the rows persisted in the gateway's database.
 *
 * @example
 * const catalogue = await open(config);
 */
export async function open(config: Config): Promise<Catalogue> {
  const persistence = config.dbbackend === 'postgres' ? await openPostgres(config) : await openSqlite(config);
  try {
    const rows = await persistence.load();
    return catalogue(config.services, rows, persistence);
  } catch (error) {
    await persistence.close();
    throw error;
  }
}

function catalogue(configured: readonly Service[], rows: Row[], persistence: Persistence): Catalogue {
  const fromConfig = new Map(configured.map((s) => [s.name, s]));
  const persisted = new Map(rows.map((r) => [r.name, r.spec]));
  /** `changes`: what is persisted for it (a config service's changed fields, or a whole spec). */
  interface Entry {
    readonly spec: ServiceSpec;
    readonly service: Service;
    readonly changes: ServicePatch | undefined;
  }
  const entryOf = (name: string, changes: ServicePatch | undefined): Entry => {
    const base = fromConfig.get(name);
    const spec = { ...(base === undefined ? {} : specOf(base)), ...changes, name } as ServiceSpec;
    return { spec, service: build(spec, base, changes ?? {}), changes };
  };
  let entries: Entry[] = [];
  for (const service of configured) {
    if (!persisted.has(service.name)) entries.push({ spec: specOf(service), service, changes: undefined });
    else if (persisted.get(service.name) !== undefined)
      entries.push(entryOf(service.name, persisted.get(service.name)));
  }
  for (const row of rows) {
    if (row.spec !== undefined && !fromConfig.has(row.name)) entries.push(entryOf(row.name, row.spec));
  }
  let router = Router.create(entries.map((e) => e.service));
  let chain: Promise<unknown> = Promise.resolve();
  const serialized = <T>(work: () => Promise<T>): Promise<T> => {
    const next = chain.then(work, work);
    chain = next.catch(() => {});
    return next;
  };
  const apply = (next: Entry[]) => {
    entries = next;
    router = Router.create(next.map((e) => e.service));
  };
  const find = (name: string) => {
    const index = entries.findIndex((e) => e.spec.name === name);
    if (index < 0) throw new AdminError('L402_ADMIN_NOT_FOUND', `service "${name}" not found`);
    return index;
  };

  return {
    router: { match: (request) => router.match(request) },
    services: () => entries.map((e) => e.service),
    list: () => entries.map((e) => e.spec),
    create: (spec) =>
      serialized(async () => {
        if (entries.some((e) => e.spec.name === spec.name)) {
          throw new AdminError('L402_ADMIN_CONFLICT', `service "${spec.name}" already exists`);
        }
        const entry = entryOf(spec.name, spec);
        await persistence.save({ name: spec.name, spec });
        apply([...entries, entry]);
        return entry.spec;
      }),
    update: (name, patch) =>
      serialized(async () => {
        const index = find(name);
        const changes = { ...entries[index]!.changes, ...definedOnly(patch) };
        const entry = entryOf(name, changes);
        await persistence.save({ name, spec: changes });
        apply(entries.map((e, i) => (i === index ? entry : e)));
        return entry.spec;
      }),
    remove: (name) =>
      serialized(async () => {
        const index = find(name);
        await persistence.save({ name, spec: undefined });
        apply(entries.filter((_, i) => i !== index));
      }),
    close: () => persistence.close(),
  };
}

function definedOnly<T extends object>(patch: T): Partial<T> {
  return Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function rowOf(name: string, spec: string | null): Row {
  return { name, spec: spec === null ? undefined : (JSON.parse(spec) as ServicePatch) };
}

const TABLE = 'l402_admin_services';

async function openSqlite(config: Config): Promise<Persistence> {
  const Database = (await import('better-sqlite3')).default as typeof BetterSqlite3;
  const path = config.sqlite.dbfile;
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const db = new Database(path, { timeout: 5_000 });
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.exec(`CREATE TABLE IF NOT EXISTS ${TABLE} (
    name TEXT PRIMARY KEY,
    spec TEXT,
    position INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
  )`);
  const select = db.prepare(`SELECT name, spec FROM ${TABLE} ORDER BY position`);
  const upsert = db.prepare(
    `INSERT INTO ${TABLE} (name, spec, position, updated_at)
     VALUES (@name, @spec, (SELECT coalesce(max(position), 0) + 1 FROM ${TABLE}), @now)
     ON CONFLICT (name) DO UPDATE SET spec = excluded.spec, updated_at = excluded.updated_at`,
  );
  return {
    load: async () =>
      (select.all() as { name: string; spec: string | null }[]).map((r) => rowOf(r.name, r.spec)),
    save: async (row) => {
      upsert.run({
        name: row.name,
        spec: row.spec === undefined ? null : JSON.stringify(row.spec),
        now: Date.now(),
      });
    },
    close: async () => {
      db.close();
    },
  };
}

async function openPostgres(config: Config): Promise<Persistence> {
  const { default: postgres } = await import('postgres');
  const pg = config.postgres;
  const sql = postgres({
    host: pg.host,
    port: pg.port,
    ...(pg.user !== undefined ? { user: pg.user } : {}),
    ...(pg.password !== undefined ? { password: pg.password } : {}),
    ...(pg.dbname !== undefined ? { database: pg.dbname } : {}),
    ssl: pg.requiressl ? 'require' : false,
    max: 2,
    onnotice: () => {},
  });
  try {
    await sql.unsafe(`CREATE TABLE IF NOT EXISTS ${TABLE} (
      name TEXT PRIMARY KEY,
      spec TEXT,
      position BIGSERIAL NOT NULL,
      updated_at BIGINT NOT NULL
    )`);
  } catch (error) {
    await sql.end();
    throw new AdminError('L402_ADMIN_UNAVAILABLE', `cannot prepare ${TABLE}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  return {
    load: async () => {
      const rows = await sql<{ name: string; spec: string | null }[]>`
        SELECT name, spec FROM l402_admin_services ORDER BY position`;
      return rows.map((r) => rowOf(r.name, r.spec));
    },
    save: async (row) => {
      const spec = row.spec === undefined ? null : JSON.stringify(row.spec);
      await sql`
        INSERT INTO l402_admin_services (name, spec, updated_at) VALUES (${row.name}, ${spec}, ${Date.now()})
        ON CONFLICT (name) DO UPDATE SET spec = excluded.spec, updated_at = excluded.updated_at`;
    },
    close: () => sql.end({ timeout: 5 }),
  };
}
