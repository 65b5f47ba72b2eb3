/**
 * The gateway's configuration: Aperture's `aperture.yaml`, read once into a deeply frozen, fully
 * resolved object (defaults filled in, paths absolute, regular expressions compiled, `${ENV}` and
 * `!file+hex:` header values expanded). A bad value fails at start with one printable line naming
 * the file, the line and the key: `aperture.yaml:42: services[1].price: expected a non-negative
 * integer, got "cheap"`.
 *
 * What is read, and how it differs from Aperture (7ee3ed7a):
 * - Keys are matched case-insensitively (`requireSSL` = `requiressl`). Aperture's YAML decoder only
 *   sees lower-cased Go field names, so it silently ignores some keys its own sample documents
 *   (`sqlite.dbfile`, `postgres.maxconnections`, `postgres.requireSSL`, `admin.corsorigin`); here
 *   they mean what the sample says, and the Go field names (`databasefilename`,
 *   `maxopenconnections`, `corsorigins`) are accepted too.
 * - Unknown keys: Aperture ignores them without a word (a typo such as its sample's
 *   `dynamicprice.enbled` just turns the feature off). Here they are ignored too, so every Aperture
 *   config loads, but each one is reported in `warnings`, with a suggestion when it is close to a
 *   real key.
 * - Keys for features l402 does not have (hashmail, tor, etcd, logging, static files, pprof, LNC,
 *   Wavelength, strictverify …) are ignored and reported by name in `warnings`; a boolean switch
 *   set to `false` asks for nothing and is not reported. Where running without the feature would be
 *   wrong rather than merely different, it is an error: `dbbackend: etcd`, `autocert: true`.
 * - Relative paths are resolved against the config file's directory (Aperture: the working
 *   directory); `~` and `${NAME}` are expanded in every path.
 * - Regular expressions are RE2 (Go) syntax, translated to JavaScript; see `internal/goSyntax.ts`.
 * - l402 talks to LND over its REST API: `authenticator.lndhost` is the REST address (LND's default
 *   REST port is 8080; 10009, Aperture's usual value, is gRPC and gets a warning).
 * - Ours: `authenticator.backend` / `authenticator.uri` (any wallet `Lightning.connect` takes, or
 *   the in-process devnet), `tlscertpath`/`tlskeypath`, `secrets`, `trustedproxies`, `redis.url`,
 *   `limits`, `dashboard.enabled`, `discovery`.
 * - `prometheus.listenaddr` left out serves `/metrics` on the gateway's own listener rather than on a
 *   port of its own.
 *
 * @example
 * const { config, warnings } = Config.load('aperture.yaml');
 * for (const w of warnings) console.warn(w);
 * server.listen(config.listenaddr.port, config.listenaddr.host);
 */
import { readFileSync, statSync } from 'node:fs';
import { isIP } from 'node:net';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { type WalletKind, walletKind } from 'l402/lightning';
import {
  type Document,
  isAlias,
  isMap,
  isScalar,
  isSeq,
  LineCounter,
  type Node,
  type Pair,
  parseDocument,
  visit,
  type YAMLMap,
} from 'yaml';
import { z } from 'zod';
import { ConfigError } from './Errors.js';
import { duration, RegexpSyntaxError, regexp } from './internal/goSyntax.js';

// ——— the typed configuration ———

/** A `host:port` address. An empty host (Go's `:8081`) means every interface. */
export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/** Aperture's log levels (`critical` is pino's `fatal`, `off` its `silent`). */
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'critical' | 'off';

export type Network = 'mainnet' | 'testnet' | 'signet' | 'regtest' | 'simnet';

/** A service's `auth`: `on` (also `true` or empty), `off` (also `false`), or `freebie N`. */
export type Auth =
  | { readonly kind: 'on' }
  | { readonly kind: 'off' }
  | { readonly kind: 'freebie'; readonly count: number };

/** Which payment schemes may pay for a service. */
export type AuthScheme = 'l402' | 'mpp' | 'l402+mpp';

/**
 * Prices from a pricer: Aperture's gRPC `pricesrpc.Prices` at `grpcaddress`, or (l402) a plain HTTP
 * pricer at `httpurl`. When enabled, `price` is ignored and tokens are bound to the path. `metered`
 * (gRPC only) is Aperture's draw-down mode, where the pricer keeps the balances.
 */
export type DynamicPrice =
  | { readonly enabled: false }
  | {
      readonly enabled: true;
      /** Exactly one of `grpcaddress` and `httpurl` is set. */
      readonly grpcaddress: HostPort | undefined;
      readonly httpurl: URL | undefined;
      readonly insecure: boolean;
      readonly tlscertpath: string | undefined;
      readonly metered: boolean;
      readonly usagetailbytes: number;
      /** Milliseconds one pricer call may take before the request gets a 5xx (`timeout`, 3s by default). */
      readonly timeout: number;
    };

/** A token bucket: `requests` per `per` milliseconds, up to `burst` at once, keyed by token id or client IP. */
export interface RateLimit {
  /** Applies to every path when undefined. */
  readonly pathregexp: RegExp | undefined;
  readonly requests: number;
  readonly per: number;
  readonly burst: number;
}

/** One backend behind the gateway. Services are matched in order; the first whose regexps match wins. */
export interface Service {
  readonly name: string;
  /** Tested against the `Host` header; matches any host when not configured. */
  readonly hostregexp: RegExp;
  /** Tested against the URL path; matches any path when undefined. */
  readonly pathregexp: RegExp | undefined;
  readonly address: HostPort;
  readonly protocol: 'http' | 'https';
  /** Extra CA (PEM) for an `https` backend. */
  readonly tlscertpath: string | undefined;
  readonly auth: Auth;
  readonly authscheme: AuthScheme;
  /** Set on every proxied request, overwriting the client's; names lower-cased, values expanded. */
  readonly headers: Readonly<Record<string, string>>;
  /** Absolute path prefix prepended to the request path. */
  readonly rewrite: { readonly prefix: string | undefined };
  /** Seconds a token for this service is valid (`<name>_valid_until`); 0: no expiry. */
  readonly timeout: number;
  readonly capabilities: readonly string[];
  /** Raw caveats minted for the service, in file order. */
  readonly constraints: Readonly<Record<string, string>>;
  /** Satoshis. Aperture turns 0 or no price into 1 sat, and so does this. */
  readonly price: number;
  readonly dynamicprice: DynamicPrice;
  /**
   * l402's prepaid balance (`prepaid.credit`): a token buys `credit` sats, each request debits its price
   * (`price`, or the pricer's) from it in the store; undefined when the service sells one token per price.
   */
  readonly prepaid: { readonly credit: number } | undefined;
  readonly authwhitelistpaths: readonly RegExp[];
  readonly authskipinvoicecreationpaths: readonly RegExp[];
  readonly ratelimits: readonly RateLimit[];
}

/** Where invoices come from. */
export type Wallet =
  /** The in-process devnet (embedded defaults, `authenticator.backend: devnet`). */
  | { readonly backend: 'devnet' }
  /** Aperture's keys: LND's REST API at `url`, with `macaroonpath` (`<macdir>/invoice.macaroon`) and its `tls.cert`. */
  | { readonly backend: 'lnd'; readonly url: string; readonly macaroonpath: string; readonly tlspath: string }
  /** `authenticator.uri`, for `Lightning.connect` (secrets in it come from the file or `${ENV}`). */
  | { readonly backend: 'lnd' | 'cln' | 'phoenixd' | 'lnbits' | 'nwc'; readonly uri: string };

export interface Authenticator {
  /** No Lightning at all: every service must be `auth: off`. */
  readonly disable: boolean;
  readonly network: Network | undefined;
  /** Undefined exactly when `disable` is true. */
  readonly wallet: Wallet | undefined;
  readonly enablempp: boolean;
  /** Realm of MPP challenges; the `listenaddr` text by default, as Aperture. */
  readonly mpprealm: string;
  readonly enablesessions: boolean;
  readonly sessiondepositmultiplier: number;
  /** Seconds. */
  readonly sessionidletimeout: number;
}

export interface Postgres {
  readonly host: string;
  readonly port: number;
  readonly user: string | undefined;
  readonly password: string | undefined;
  readonly dbname: string | undefined;
  readonly maxconnections: number;
  readonly requiressl: boolean;
  readonly skipmigrations: boolean;
}

/** Request and upstream bounds (ours; Aperture has only the three server timeouts). Times in ms. */
export interface Limits {
  /** Largest request head accepted (Node's `maxHeaderSize`). Default 16 KiB. */
  readonly maxheaderbytes: number;
  /** Largest request body proxied; unlimited when undefined (Aperture's behaviour). */
  readonly maxbodybytes: number | undefined;
  /** Time allowed to receive a request's headers. Default 10 s. */
  readonly headerstimeout: number;
  /** Time allowed to connect to a backend. Default 10 s. */
  readonly connecttimeout: number;
  /** Time allowed for a backend's response headers; none when undefined (Aperture's behaviour). */
  readonly responsetimeout: number | undefined;
}

export interface Config {
  readonly listenaddr: HostPort;
  /** Plain HTTP (and h2c) instead of TLS. */
  readonly insecure: boolean;
  /** Extra name on the self-signed certificate. */
  readonly servername: string | undefined;
  readonly tlscertpath: string;
  readonly tlskeypath: string;
  /** Neither path was configured: a self-signed pair is made at `<basedir>/tls.cert|key` when absent, as Aperture. */
  readonly tlsselfsigned: boolean;
  readonly basedir: string;
  readonly debuglevel: LogLevel;
  /**
   * Milliseconds; 0 disables. As Aperture: idle keep-alive connections close after `idletimeout`, a
   * request must be read within `readtimeout`, and `writetimeout` is a rolling window on proxied
   * responses (streams live while they flow).
   */
  readonly idletimeout: number;
  readonly readtimeout: number;
  readonly writetimeout: number;
  readonly dbbackend: 'sqlite' | 'postgres';
  readonly sqlite: { readonly dbfile: string; readonly skipmigrations: boolean };
  readonly postgres: Postgres;
  readonly authenticator: Authenticator;
  readonly services: readonly Service[];
  /** IP addresses (Aperture) or CIDR ranges (ours) refused with 403. */
  readonly blocklist: readonly string[];
  /** Peers (IPs or CIDRs) whose `X-Forwarded-For` is believed. None by default, as Aperture. */
  readonly trustedproxies: readonly string[];
  readonly admin: {
    readonly enabled: boolean;
    readonly macaroonpath: string;
    readonly corsorigin: readonly string[];
  };
  /** Served with the admin API, on loopback only, when both are enabled. */
  readonly dashboard: { readonly enabled: boolean };
  /** `/metrics` on `listenaddr`, or on the gateway's own listener when that is undefined. */
  readonly prometheus: { readonly enabled: boolean; readonly listenaddr: HostPort | undefined };
  /** `/.well-known/l402.json`; `name` and `uri` are the provider's (`servername` by default). */
  readonly discovery: {
    readonly enabled: boolean;
    readonly name: string | undefined;
    readonly uri: string | undefined;
  };
  /** Root keys: stored random keys (Aperture), or derived from the master key in `masterkeypath`. */
  readonly secrets: { readonly mode: 'random' | 'derived'; readonly masterkeypath: string };
  /** Cluster-wide freebies and rate limits; keys start with `prefix` (`l402:` when unset). */
  readonly redis: { readonly url: string; readonly prefix?: string } | undefined;
  readonly limits: Limits;
}

export interface Options {
  /** Where `${NAME}` references and `L402_HOME` are looked up; `process.env` by default. */
  readonly env?: Readonly<Record<string, string | undefined>>;
}

export interface Loaded {
  readonly config: Config;
  /** One printable line per key that was ignored, each starting with `file:line:`. */
  readonly warnings: readonly string[];
}

// ——— entry points ———

const MAX_CONFIG_BYTES = 1 << 20;

/**
 * Reads and checks a config file. Throws {@link ConfigError} for anything wrong, never another error.
 *
 * @example
 * const { config, warnings } = Config.load('/etc/l402/aperture.yaml', { env: process.env });
 */
export function load(file: string, options: Options = {}): Loaded {
  let text: string;
  try {
    if (statSync(file).size > MAX_CONFIG_BYTES)
      throw new ConfigError({ file }, 'the config file is over 1 MiB');
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw new ConfigError(
      { file },
      `cannot read the config file (${(error as NodeJS.ErrnoException).code ?? error})`,
      {
        cause: error,
      },
    );
  }
  return parse(text, file, options);
}

/**
 * Checks config text. `file` names it in messages and anchors relative paths (the working directory
 * when it has no directory part).
 *
 * @example
 * const { config } = Config.parse('listenaddr: ":8081"\nauthenticator: { backend: devnet }\n', 'inline.yaml');
 */
export function parse(text: string, file = '<config>', options: Options = {}): Loaded {
  if (text.length > MAX_CONFIG_BYTES) throw new ConfigError({ file }, 'the config is over 1 MiB');
  const source = new Source(text, file);
  const notes: Note[] = [];
  const env = options.env ?? process.env;
  const raw = source.check(normalize(source.data(notes), source, notes), notes);
  const config = new Resolver(source, env, notes).config(raw);
  const warnings = notes.sort((a, b) => a.line - b.line).map((note) => note.text);
  return { config: deepFreeze(config), warnings: Object.freeze(warnings) };
}

/** Options of {@link defaults}. */
export interface DefaultsOptions {
  /** The demo backend the two demo services proxy to, started by the caller on a loopback port. */
  readonly upstream: HostPort;
}

/**
 * The configuration of `l402 gateway` without a file: plain HTTP on 127.0.0.1:8080, SQLite in
 * `home`, the in-process devnet as the Lightning backend, the admin API and dashboard (macaroon at
 * `<home>/admin.macaroon`), and two demo services on `upstream`:
 * `free` (paths under `/free`, no payment) and `paid` (paths under `/paid`, 21 sat). Any other path
 * matches no service (404). Built by parsing {@link defaultsText}, so it obeys every rule a file does.
 *
 * @example
 * const upstream = await startDemoUpstream(); // { host: '127.0.0.1', port: 38211 }
 * const config = Config.defaults(Devnet.home(), { upstream });
 */
export function defaults(home: string, options: DefaultsOptions): Config {
  return parse(defaultsText(home, options), '(defaults)', { env: {} }).config;
}

/** The YAML {@link defaults} parses: also a starting point for a config file. */
export function defaultsText(home: string, options: DefaultsOptions): string {
  const address = JSON.stringify(formatHostPort(options.upstream));
  return `# l402 gateway: the embedded defaults.
listenaddr: ${JSON.stringify(formatHostPort(DEFAULT_LISTEN))}
insecure: true
basedir: ${JSON.stringify(resolve(home))}
dbbackend: sqlite
authenticator:
  backend: devnet
  network: regtest
admin:
  enabled: true
services:
  - name: free
    pathregexp: '^/free(?:/|$)'
    address: ${address}
    protocol: http
    auth: off
  - name: paid
    pathregexp: '^/paid(?:/|$)'
    address: ${address}
    protocol: http
    price: 21
`;
}

// ——— YAML source: parse, plain data, and the line of any key path ———

type Path = readonly (string | number)[];

/** A warning and the line it is about, for sorting. */
interface Note {
  readonly line: number;
  readonly text: string;
}

/** Keys whose values are free-form maps: their keys are data, kept as written. */
const FREE_MAPS = new Set(['services.*.headers', 'services.*.constraints']);

/** Go field names Aperture's YAML decoder actually reads, for keys its sample spells otherwise. */
const ALIASES: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  sqlite: { databasefilename: 'dbfile' },
  postgres: { maxopenconnections: 'maxconnections' },
  admin: { corsorigins: 'corsorigin' },
};

class Source {
  readonly file: string;
  readonly dir: string;
  private readonly lines = new LineCounter();
  private readonly doc: Document.Parsed;

  constructor(text: string, file: string) {
    this.file = file;
    this.dir = dirname(resolve(file));
    this.doc = parseDocument(text, {
      lineCounter: this.lines,
      merge: true,
      prettyErrors: false,
      uniqueKeys: true,
      logLevel: 'error', // YAML's warnings are returned with the config, not printed by the library
    });
  }

  /** The document as plain data; YAML errors become {@link ConfigError}, YAML warnings join `warnings`. */
  data(warnings: Note[]): unknown {
    const error = this.doc.errors[0];
    if (error !== undefined) {
      throw new ConfigError(
        { file: this.file, line: this.lineAt(error.pos[0]) },
        `invalid YAML: ${oneLine(error.message)}`,
      );
    }
    // An unquoted `!file+hex:/path` header value reads as a YAML tag on an empty scalar: take it back.
    const untagged = new Set<string>();
    visit(this.doc, {
      Alias: (_, node) => {
        if (node.resolve(this.doc) === undefined) {
          const line = node.range ? this.lineAt(node.range[0]) : undefined;
          throw new ConfigError(
            { file: this.file, line },
            `invalid YAML: the alias *${node.source} has no anchor before it`,
          );
        }
      },
      Scalar: (_, node) => {
        if (node.tag?.startsWith('!file+') && node.value === '') {
          untagged.add(node.tag);
          node.value = node.tag;
          node.tag = undefined;
        }
      },
    });
    for (const warning of this.doc.warnings) {
      if ([...untagged].some((tag) => warning.message.endsWith(tag))) continue;
      const line = this.lineAt(warning.pos[0]);
      warnings.push({ line, text: `${this.file}:${line}: YAML: ${oneLine(warning.message)}` });
    }
    try {
      return this.doc.toJS({ maxAliasCount: 100 });
    } catch (error) {
      throw new ConfigError(
        { file: this.file },
        `invalid YAML: ${oneLine(String((error as Error).message ?? error))}`,
      );
    }
  }

  /**
   * The line of the key at `path` (or of the nearest enclosing key found) and the path spelled as in
   * the file. Keys are found case-insensitively, through aliases and `<<` merges.
   */
  locate(path: Path): { line: number; key: string } {
    let node: unknown = this.doc.contents;
    let line = node && (node as Node).range ? this.lineAt((node as Node).range![0]) : 1;
    let key = '';
    let found = true;
    let parent = '';
    for (const segment of path) {
      if (isAlias(node)) node = node.resolve(this.doc);
      let next: { node: unknown; at: number; name: string | number } | undefined;
      if (found && isMap(node) && typeof segment === 'string') {
        const pair = findPair(node, segment, ALIASES[parent] ?? {}, this.doc);
        if (pair) {
          const keyNode = pair.key as Node | undefined;
          next = {
            node: pair.value,
            at: keyNode?.range?.[0] ?? -1,
            name: String(isScalar(keyNode) ? keyNode.value : segment),
          };
        }
      } else if (found && isSeq(node) && typeof segment === 'number') {
        const item = node.items[segment] as Node | undefined;
        if (item) next = { node: item, at: item.range?.[0] ?? -1, name: segment };
      }
      if (next === undefined) found = false;
      else {
        node = next.node;
        if (next.at >= 0) line = this.lineAt(next.at);
      }
      key += formatSegment(next?.name ?? segment, key === '');
      parent = String(segment);
    }
    return { line, key };
  }

  /** A {@link ConfigError} at the key `path`. */
  error(path: Path, problem: string): ConfigError {
    const { line, key } = this.locate(path);
    return new ConfigError({ file: this.file, line, key: key || undefined }, problem);
  }

  /** A warning about the key `path`. */
  warning(path: Path, problem: string): Note {
    const { line, key } = this.locate(path);
    return { line, text: `${this.file}:${line}: config key ${key} ${problem}` };
  }

  /**
   * Validates normalized data against the schema. Unknown keys are warned about and dropped (Aperture
   * ignores them); any other problem throws, the first in the file reported, with a count of the rest.
   */
  check(data: unknown, warnings: Note[]): Raw {
    for (;;) {
      const result = RootSchema.safeParse(data, { reportInput: true });
      if (result.success) return result.data;
      const unknown = result.error.issues.filter((issue) => issue.code === 'unrecognized_keys');
      const problems = result.error.issues.filter((issue) => issue.code !== 'unrecognized_keys');
      if (problems.length > 0) {
        const located = problems
          .map((issue) => ({ issue, ...this.locate(issue.path as Path) }))
          .sort((a, b) => a.line - b.line);
        const first = located[0]!;
        const more = located.length > 1 ? ` (and ${located.length - 1} more)` : '';
        throw new ConfigError(
          { file: this.file, line: first.line, key: first.key || undefined },
          `${issueMessage(first.issue)}${more}`,
        );
      }
      for (const issue of unknown) {
        const owner = getIn(data, issue.path as Path) as Record<string, unknown>;
        for (const name of (issue as z.core.$ZodIssueUnrecognizedKeys).keys) {
          const path = [...(issue.path as Path), name];
          const hint = suggest(name, knownKeys(issue.path as Path));
          warnings.push(
            this.warning(path, `is unknown and ignored${hint ? ` (did you mean ${hint}?)` : ''}`),
          );
          delete owner[name];
        }
      }
    }
  }

  private lineAt(offset: number): number {
    return this.lines.linePos(offset).line;
  }
}

function findPair(
  map: YAMLMap,
  name: string,
  aliases: Readonly<Record<string, string>>,
  doc: Document,
  depth = 0,
): Pair | undefined {
  const keyOf = (pair: Pair) => (isScalar(pair.key) ? pair.key.value : pair.key);
  const lower = name.toLowerCase();
  const matchers: ((key: unknown) => boolean)[] = [
    (key) => key === name,
    (key) => typeof key === 'string' && key.toLowerCase() === lower,
    (key) => typeof key === 'string' && aliases[key.toLowerCase()] === lower,
  ];
  for (const matches of matchers) {
    const pair = map.items.find((item) => matches(keyOf(item)));
    if (pair) return pair;
  }
  if (depth > 8) return undefined;
  for (const item of map.items) {
    if (typeof keyOf(item) !== 'symbol') continue; // `<<` merge key
    const sources = isSeq(item.value) ? item.value.items : [item.value];
    for (let source of sources) {
      if (isAlias(source)) source = source.resolve(doc);
      const pair = isMap(source) ? findPair(source, name, aliases, doc, depth + 1) : undefined;
      if (pair) return pair;
    }
  }
  return undefined;
}

function formatSegment(segment: string | number, first: boolean): string {
  if (typeof segment === 'number') return `[${segment}]`;
  if (/^[A-Za-z0-9_-]+$/.test(segment)) return first ? segment : `.${segment}`;
  return `[${JSON.stringify(segment)}]`;
}

// ——— normalization: lower-case keys, drop nulls, set aside unsupported keys ———

/** Keys for features l402 does not have, by section, with what they are. */
const UNSUPPORTED: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  '': {
    configfile: 'has no effect inside a config file (pass --config FILE)',
    staticroot: 'is not supported by l402 and is ignored (no static file server: unmatched requests get 404)',
    servestatic:
      'is not supported by l402 and is ignored (no static file server: unmatched requests get 404)',
    profile: 'is not supported by l402 and is ignored (no pprof; use node --inspect)',
    strictverify:
      'is not supported by l402 and is ignored (tokens are checked by preimage and HMAC, as Aperture by default)',
    invoicebatchsize: 'is not supported by l402 and is ignored (it only serves strictverify)',
    wspinginterval: 'is not supported by l402 and is ignored (WebSocket keepalive of the hashmail server)',
    wspongwait: 'is not supported by l402 and is ignored (WebSocket keepalive of the hashmail server)',
    logging: 'is not supported by l402 and is ignored (l402 logs JSON lines to stdout at debuglevel)',
    etcd: 'is not supported by l402 and is ignored (use dbbackend sqlite or postgres)',
    tor: 'is not supported by l402 and is ignored (no onion service; run Tor in front of the gateway)',
    hashmail: 'is not supported by l402 and is ignored (no Lightning Node Connect mailbox relay)',
  },
  authenticator: {
    passphrase: 'is not supported by l402 and is ignored (no Lightning Node Connect; use uri or lndhost)',
    mailboxaddress: 'is not supported by l402 and is ignored (no Lightning Node Connect; use uri or lndhost)',
    devserver: 'is not supported by l402 and is ignored (no Lightning Node Connect; use uri or lndhost)',
    wavelengthgateway: 'is not supported by l402 and is ignored (no Wavelength backend; use uri)',
    wavelengthmacaroonpath: 'is not supported by l402 and is ignored (no Wavelength backend; use uri)',
  },
};

/**
 * Lower-cases struct keys (not the keys of `headers` and `constraints`), maps Aperture's Go field
 * names to their documented keys, drops empty (`null`) values, and moves unsupported keys into
 * `warnings`. Two keys that collide once lower-cased are an error.
 */
function normalize(data: unknown, source: Source, warnings: Note[]): unknown {
  if (data === null || data === undefined) return {};
  if (!isRecord(data)) throw source.error([], `expected a mapping of config keys, got ${describe(data)}`);
  return walk(data, [], [], '');

  function walk(
    value: unknown,
    path: (string | number)[],
    written: (string | number)[],
    shape: string,
  ): unknown {
    if (Array.isArray(value)) {
      return value.map((item, i) => walk(item, [...path, i], [...written, i], `${shape}.*`));
    }
    if (!isRecord(value)) return value;
    const free = FREE_MAPS.has(shape);
    const section = path.length === 1 ? String(path[0]) : path.length === 0 ? '' : undefined;
    const out: Record<string, unknown> = {};
    for (const [name, item] of Object.entries(value)) {
      const here = [...written, name];
      if (name === '__proto__') throw source.error(here, 'this key is not allowed');
      if (item === null || item === undefined) {
        // An empty header or constraint value is "" to Go; an empty section or key is just absent.
        if (free) out[name] = '';
        continue;
      }
      let key = name;
      if (!free) {
        key = name.toLowerCase();
        key = ALIASES[section ?? '']?.[key] ?? key;
        const reason = section === undefined ? undefined : UNSUPPORTED[section]?.[key];
        if (reason !== undefined) {
          if (item !== false) warnings.push(source.warning(here, reason));
          continue;
        }
        if (Object.hasOwn(out, key)) throw source.error(here, `duplicate key: ${key} is given twice`);
      }
      out[key] = walk(item, [...path, key], here, shape === '' ? key : `${shape}.${key}`);
    }
    return out;
  }
}

// ——— schema: shapes and scalar rules ———

/** A rule failed with this message (instead of the default "expected …, got …"). */
class Invalid {
  constructor(readonly message: string) {}
}

/** A scalar rule: `convert` returns the value, `undefined` for "expected …, got …", or throws {@link Invalid}. */
function rule<T>(expected: string, convert: (value: unknown) => T | undefined) {
  return z.unknown().transform((value, ctx): T => {
    if (value === undefined) {
      ctx.addIssue({ code: 'custom', message: `missing: expected ${expected}` });
      return z.NEVER;
    }
    try {
      const out = convert(value);
      if (out !== undefined) return out;
      ctx.addIssue({ code: 'custom', message: `expected ${expected}, got ${describe(value)}` });
    } catch (error) {
      if (!(error instanceof Invalid)) throw error;
      ctx.addIssue({ code: 'custom', message: error.message });
    }
    return z.NEVER;
  });
}

const section = <Shape extends z.core.$ZodLooseShape>(shape: Shape) => z.strictObject(shape);
const list = <T extends z.ZodType>(item: T) => z.array(item);

/** Go reads a YAML number into a string field as its text; so does this. */
const asText = (v: unknown) =>
  typeof v === 'string' ? v : typeof v === 'number' && Number.isFinite(v) ? String(v) : undefined;

const text = rule('a string', asText);
const nonEmpty = rule('a non-empty string', (v) => {
  const s = asText(v);
  return s === undefined || s.trim() === '' ? undefined : s;
});
const redisPrefix = rule('1 to 64 of A-Z a-z 0-9 : _ . -', (v) => {
  const s = asText(v);
  return s !== undefined && /^[A-Za-z0-9:_.-]{1,64}$/.test(s) ? s : undefined;
});
const bool = rule('true or false', (v) => (typeof v === 'boolean' ? v : undefined));
const integer = (
  min: number,
  max = Number.MAX_SAFE_INTEGER,
  what = min > 0 ? 'a positive integer' : 'a non-negative integer',
) =>
  rule(what, (v) => {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) return undefined;
    if (v > max) throw new Invalid(`expected at most ${max}, got ${v}`);
    return v;
  });
const count = integer(0);
const positive = integer(1);
const port = rule('a port number (1-65535)', (v) =>
  Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 65535 ? (v as number) : undefined,
);

const oneOf = <const T extends string>(values: readonly T[]) =>
  rule(
    values
      .map((v) => JSON.stringify(v))
      .join(', ')
      .replace(/, ([^,]*)$/, ' or $1'),
    (v) => {
      const s = typeof v === 'string' ? v.toLowerCase() : undefined;
      return values.find((value) => value === s);
    },
  );

/** A Go duration string, in milliseconds. */
/** How long one pricer call may take by default. */
const DEFAULT_PRICER_TIMEOUT_MS = 3_000;

const durationMs = (min: 'zero' | 'positive') =>
  rule(min === 'zero' ? 'a duration such as "30s"' : 'a positive duration such as "30s"', (v) => {
    if (typeof v === 'number' && v !== 0)
      throw new Invalid(
        `expected a duration with a unit such as "${v}s", got ${v} (Go would read a bare number as nanoseconds)`,
      );
    const ms = typeof v === 'string' ? duration(v.trim()) : v === 0 ? 0 : undefined;
    if (ms === undefined || ms < 0 || (min === 'positive' && ms === 0)) return undefined;
    return ms;
  });

/**
 * `host:port`, `[v6]:port`; for a listener, also `:port` (every interface). A backend address is only
 * that (Aperture issue #157): its scheme goes in `protocol`, a path in `rewrite.prefix`.
 */
const hostPort = (kind: 'listen' | 'remote' | 'backend') =>
  rule(
    kind === 'listen'
      ? 'an address such as "localhost:8081"'
      : 'a host:port address such as "127.0.0.1:10009"',
    (v) => {
      if (typeof v !== 'string') return undefined;
      if (/^[a-z][a-z0-9+.-]*:\/\//i.test(v)) {
        const hint = kind === 'backend' ? ' (put it in protocol, and a path in rewrite.prefix)' : '';
        throw new Invalid(`expected host:port without a scheme${hint}, got ${describe(v)}`);
      }
      const m = /^(?:\[([0-9A-Fa-f:.]+(?:%[\w.-]+)?)\]|([A-Za-z0-9._~%-]*)):(\d{1,5})$/.exec(v.trim());
      const host = m?.[1] ?? m?.[2];
      const portNumber = Number(m?.[3]);
      if (host === undefined || portNumber < 1 || portNumber > 65535) return undefined;
      if (host === '' && kind !== 'listen') return undefined;
      if (m?.[1] !== undefined && isIP(host.replace(/%.*$/, '')) !== 6) return undefined;
      return { host, port: portNumber };
    },
  );

/** An RE2 pattern, compiled. */
const pattern = rule('a regular expression', (v) => {
  const source = asText(v);
  if (source === undefined) return undefined;
  try {
    return regexp(source);
  } catch (error) {
    if (error instanceof RegexpSyntaxError)
      throw new Invalid(`invalid regular expression ${describe(source)}: ${error.message}`);
    throw error;
  }
});

const ipOrCidr = rule('an IP address or CIDR range such as "10.0.0.0/8"', (v) => {
  if (typeof v !== 'string') return undefined;
  const [address = '', prefix, extra] = v.trim().split('/');
  const family = isIP(address);
  if (family === 0 || extra !== undefined) return undefined;
  if (prefix !== undefined && !(/^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128)))
    return undefined;
  return v.trim();
});

const auth = rule('on, off or "freebie N"', (v): Auth | undefined => {
  if (v === true) return { kind: 'on' };
  if (v === false) return { kind: 'off' };
  if (typeof v !== 'string') return undefined;
  const s = v.trim().toLowerCase();
  if (s === '' || s === 'on' || s === 'true') return { kind: 'on' };
  if (s === 'off' || s === 'false') return { kind: 'off' };
  const m = /^freebie\s+(\d+)$/.exec(s);
  return m && Number.isSafeInteger(Number(m[1])) ? { kind: 'freebie', count: Number(m[1]) } : undefined;
});

const MAX_PRICE_SAT = 100_000 * 100_000_000; // Aperture's cap: 100 000 BTC
const price = rule('a non-negative integer', (v) => {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) return undefined;
  if (v > MAX_PRICE_SAT) throw new Invalid(`expected at most ${MAX_PRICE_SAT} sat (100 000 BTC), got ${v}`);
  return v;
});

const capabilities = rule('capability names, comma-separated or as a list', (v) => {
  const items =
    typeof v === 'string'
      ? v.split(',')
      : Array.isArray(v) && v.every((i) => typeof i === 'string')
        ? v
        : undefined;
  return items?.map((item: string) => item.trim()).filter((item: string) => item !== '');
});

const serviceName = rule('a service name', (v) => {
  const s = asText(v);
  if (s === undefined || s === '') return undefined;
  // The name goes into `services=name:tier,…` and `<name>_capabilities=…` caveats.
  if (!/^[^\s,:=]+$/.test(s))
    throw new Invalid(`expected a service name without spaces, ",", ":" or "=", got ${describe(s)}`);
  return s;
});

const prefix = rule('an absolute path such as "/api/v1"', (v) => {
  if (typeof v !== 'string' || !v.startsWith('/') || v.startsWith('//') || /[?#\s]/.test(v)) return undefined;
  return v;
});

const dbbackend = rule('sqlite or postgres', (v) => {
  const s = typeof v === 'string' ? v.toLowerCase() : undefined;
  if (s === 'etcd')
    throw new Invalid('etcd is not supported by l402: use sqlite (one instance) or postgres (several)');
  return s === 'sqlite' || s === 'postgres' ? s : undefined;
});

const LEVELS: readonly LogLevel[] = ['trace', 'debug', 'info', 'warn', 'error', 'critical', 'off'];
/** Aperture's `level` or `level,SUBSYS=level,…`: the global level and the per-subsystem entries. */
const debuglevel = rule(`one of ${LEVELS.join(', ')}`, (v) => {
  if (typeof v !== 'string') return undefined;
  let level: LogLevel | undefined;
  const subsystems: string[] = [];
  for (const part of v.split(',').map((p) => p.trim())) {
    const [name, value] = part.includes('=') ? part.split('=', 2) : [undefined, part];
    const known = LEVELS.find((l) => l === value?.toLowerCase());
    if (known === undefined) return undefined;
    if (name === undefined) level = known;
    else subsystems.push(part);
  }
  return { level: level ?? ('info' as const), subsystems };
});

const secretsMode = oneOf(['random', 'derived'] as const);
const NETWORKS = ['mainnet', 'testnet', 'signet', 'regtest', 'simnet'] as const;
const BACKENDS = ['lnd', 'cln', 'phoenixd', 'lnbits', 'nwc', 'devnet'] as const;

const ServiceSchema = section({
  name: serviceName,
  hostregexp: pattern.optional(),
  pathregexp: pattern.optional(),
  address: hostPort('backend'),
  protocol: oneOf(['http', 'https'] as const).optional(),
  tlscertpath: nonEmpty.optional(),
  auth: auth.optional(),
  authscheme: oneOf(['l402', 'mpp', 'l402+mpp'] as const).optional(),
  headers: z.record(z.string(), text).optional(),
  rewrite: section({ prefix: prefix.optional() }).optional(),
  timeout: count.optional(),
  capabilities: capabilities.optional(),
  constraints: z.record(z.string(), text).optional(),
  price: price.optional(),
  dynamicprice: section({
    enabled: bool.optional(),
    grpcaddress: hostPort('remote').optional(),
    insecure: bool.optional(),
    tlscertpath: nonEmpty.optional(),
    metered: bool.optional(),
    usagetailbytes: integer(0, 1 << 20).optional(),
    httpurl: nonEmpty.optional(),
    timeout: durationMs('positive').optional(),
  }).optional(),
  prepaid: section({ credit: positive }).optional(),
  authwhitelistpaths: list(pattern).optional(),
  authskipinvoicecreationpaths: list(pattern).optional(),
  ratelimits: list(
    section({
      pathregexp: pattern.optional(),
      requests: positive,
      per: durationMs('positive'),
      burst: count.optional(),
    }),
  ).optional(),
});

const RootSchema = section({
  listenaddr: hostPort('listen').optional(),
  debuglevel: debuglevel.optional(),
  basedir: nonEmpty.optional(),
  autocert: bool.optional(),
  servername: nonEmpty.optional(),
  insecure: bool.optional(),
  tlscertpath: nonEmpty.optional(),
  tlskeypath: nonEmpty.optional(),
  idletimeout: durationMs('zero').optional(),
  readtimeout: durationMs('zero').optional(),
  writetimeout: durationMs('zero').optional(),
  dbbackend: dbbackend.optional(),
  sqlite: section({ dbfile: nonEmpty.optional(), skipmigrations: bool.optional() }).optional(),
  postgres: section({
    host: nonEmpty.optional(),
    port: port.optional(),
    user: text.optional(),
    password: text.optional(),
    dbname: nonEmpty.optional(),
    maxconnections: positive.optional(),
    requiressl: bool.optional(),
    skipmigrations: bool.optional(),
  }).optional(),
  authenticator: section({
    network: oneOf(NETWORKS).optional(),
    disable: bool.optional(),
    backend: oneOf(BACKENDS).optional(),
    uri: nonEmpty.optional(),
    lndhost: hostPort('remote').optional(),
    tlspath: nonEmpty.optional(),
    macdir: nonEmpty.optional(),
    enablempp: bool.optional(),
    mpprealm: nonEmpty.optional(),
    enablesessions: bool.optional(),
    sessiondepositmultiplier: positive.optional(),
    sessionidletimeout: positive.optional(),
  }).optional(),
  services: list(ServiceSchema).optional(),
  blocklist: list(ipOrCidr).optional(),
  trustedproxies: list(ipOrCidr).optional(),
  admin: section({
    enabled: bool.optional(),
    macaroonpath: nonEmpty.optional(),
    corsorigin: list(nonEmpty).optional(),
  }).optional(),
  dashboard: section({ enabled: bool.optional() }).optional(),
  prometheus: section({ enabled: bool.optional(), listenaddr: hostPort('listen').optional() }).optional(),
  discovery: section({
    enabled: bool.optional(),
    name: nonEmpty.optional(),
    uri: nonEmpty.optional(),
  }).optional(),
  secrets: z
    .preprocess(
      (v) => (typeof v === 'string' ? { mode: v } : v),
      section({ mode: secretsMode.optional(), masterkeypath: nonEmpty.optional() }),
    )
    .optional(),
  redis: section({ url: nonEmpty, prefix: redisPrefix.optional() }).optional(),
  limits: section({
    maxheaderbytes: positive.optional(),
    maxbodybytes: positive.optional(),
    headerstimeout: durationMs('positive').optional(),
    connecttimeout: durationMs('positive').optional(),
    responsetimeout: durationMs('positive').optional(),
  }).optional(),
});

type Raw = z.output<typeof RootSchema>;
type RawService = NonNullable<Raw['services']>[number];

/** The keys a section of the schema knows, for "did you mean" hints. */
function knownKeys(path: Path): string[] {
  let schema: unknown = RootSchema;
  for (const segment of path) {
    schema = unwrap(schema);
    if (schema instanceof z.ZodArray) schema = unwrap(schema.element);
    if (typeof segment === 'number') continue;
    schema = schema instanceof z.ZodObject ? (schema.shape as Record<string, unknown>)[segment] : undefined;
  }
  schema = unwrap(schema);
  return schema instanceof z.ZodObject ? Object.keys(schema.shape) : [];
}

function unwrap(schema: unknown): unknown {
  for (;;) {
    if (schema instanceof z.ZodOptional) schema = schema.unwrap();
    else if (schema instanceof z.ZodPipe) schema = schema.out;
    else return schema;
  }
}

/** The known key within edit distance 2 of `name`, if exactly one is closest. */
function suggest(name: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of known) {
    const d = editDistance(name.toLowerCase(), candidate);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) {
      next[j] = Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    row = next;
  }
  return row[b.length]!;
}

function issueMessage(issue: z.core.$ZodIssue): string {
  if (issue.code === 'custom') return issue.message;
  if (issue.code === 'invalid_type') {
    const noun =
      issue.expected === 'object' || issue.expected === 'record'
        ? 'a mapping'
        : issue.expected === 'array'
          ? 'a list'
          : issue.expected;
    return `expected ${noun}, got ${describe(issue.input)}`;
  }
  return oneLine(issue.message);
}

// ——— resolution: defaults, paths, environment, cross-key rules ———

const DEFAULT_LISTEN: HostPort = { host: '127.0.0.1', port: 8080 };
const ENV_REF = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g;
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const MAX_HEADER_FILE_BYTES = 64 * 1024;

class Resolver {
  constructor(
    private readonly source: Source,
    private readonly env: Readonly<Record<string, string | undefined>>,
    private readonly warnings: Note[],
  ) {}

  config(raw: Raw): Config {
    const listenaddr = raw.listenaddr ?? DEFAULT_LISTEN;
    const basedir = raw.basedir
      ? this.path(raw.basedir, ['basedir'])
      : resolve(this.env.L402_HOME || join(homedir(), '.l402'));
    if (raw.autocert) {
      throw this.source.error(
        ['autocert'],
        "Let's Encrypt is not supported by l402: give tlscertpath and tlskeypath from your ACME client, or insecure: true behind a TLS terminator",
      );
    }
    if ((raw.tlscertpath === undefined) !== (raw.tlskeypath === undefined)) {
      const missing = raw.tlscertpath === undefined ? 'tlscertpath' : 'tlskeypath';
      throw this.source.error(
        [missing === 'tlscertpath' ? 'tlskeypath' : 'tlscertpath'],
        `needs ${missing} too`,
      );
    }
    const debug = raw.debuglevel ?? { level: 'info' as const, subsystems: [] };
    if (debug.subsystems.length > 0) {
      this.warnings.push(
        this.source.warning(
          ['debuglevel'],
          `has per-subsystem levels (${debug.subsystems.join(',')}) that l402 ignores`,
        ),
      );
    }
    const dbbackend = raw.dbbackend ?? 'sqlite';
    const pg = raw.postgres ?? {};
    if (dbbackend === 'postgres' && pg.dbname === undefined) {
      throw this.source.error(['postgres', 'dbname'], 'missing: required when dbbackend is postgres');
    }
    const authenticator = this.authenticator(raw.authenticator ?? {}, formatHostPort(listenaddr));
    const services = (raw.services ?? []).map((service, i) => this.service(service, i, authenticator));
    services.forEach((service, i) => {
      const first = services.findIndex((other) => other.name === service.name);
      if (first < i) {
        throw this.source.error(
          ['services', i, 'name'],
          `duplicate service name "${service.name}" (also services[${first}])`,
        );
      }
    });
    return {
      listenaddr,
      insecure: raw.insecure ?? false,
      servername: raw.servername,
      tlscertpath: raw.tlscertpath ? this.path(raw.tlscertpath, ['tlscertpath']) : join(basedir, 'tls.cert'),
      tlskeypath: raw.tlskeypath ? this.path(raw.tlskeypath, ['tlskeypath']) : join(basedir, 'tls.key'),
      tlsselfsigned: raw.tlscertpath === undefined,
      basedir,
      debuglevel: debug.level,
      idletimeout: raw.idletimeout ?? 120_000,
      readtimeout: raw.readtimeout ?? 15_000,
      writetimeout: raw.writetimeout ?? 30_000,
      dbbackend,
      sqlite: {
        dbfile: raw.sqlite?.dbfile
          ? this.path(raw.sqlite.dbfile, ['sqlite', 'dbfile'])
          : join(basedir, 'gateway.db'),
        skipmigrations: raw.sqlite?.skipmigrations ?? false,
      },
      postgres: {
        host: pg.host ?? 'localhost',
        port: pg.port ?? 5432,
        user: pg.user,
        password: pg.password === undefined ? undefined : this.expand(pg.password, ['postgres', 'password']),
        dbname: pg.dbname,
        maxconnections: pg.maxconnections ?? 25,
        requiressl: pg.requiressl ?? false,
        skipmigrations: pg.skipmigrations ?? false,
      },
      authenticator,
      services,
      blocklist: raw.blocklist ?? [],
      trustedproxies: raw.trustedproxies ?? [],
      admin: {
        enabled: raw.admin?.enabled ?? false,
        macaroonpath: raw.admin?.macaroonpath
          ? this.path(raw.admin.macaroonpath, ['admin', 'macaroonpath'])
          : join(basedir, 'admin.macaroon'),
        corsorigin: raw.admin?.corsorigin ?? [],
      },
      dashboard: { enabled: raw.dashboard?.enabled ?? true },
      prometheus: {
        enabled: raw.prometheus?.enabled ?? false,
        listenaddr: raw.prometheus?.listenaddr,
      },
      discovery: {
        enabled: raw.discovery?.enabled ?? true,
        name: raw.discovery?.name,
        uri: raw.discovery?.uri,
      },
      secrets: {
        mode: raw.secrets?.mode ?? 'random',
        masterkeypath: raw.secrets?.masterkeypath
          ? this.path(raw.secrets.masterkeypath, ['secrets', 'masterkeypath'])
          : join(basedir, 'master.key'),
      },
      redis: raw.redis && {
        url: this.redisUrl(raw.redis.url),
        ...(raw.redis.prefix === undefined ? {} : { prefix: raw.redis.prefix }),
      },
      limits: {
        maxheaderbytes: raw.limits?.maxheaderbytes ?? 16 * 1024,
        maxbodybytes: raw.limits?.maxbodybytes,
        headerstimeout: raw.limits?.headerstimeout ?? 10_000,
        connecttimeout: raw.limits?.connecttimeout ?? 10_000,
        responsetimeout: raw.limits?.responsetimeout,
      },
    };
  }

  private authenticator(a: NonNullable<Raw['authenticator']>, listenText: string): Authenticator {
    const at = (key: string) => ['authenticator', key];
    const enablempp = a.enablempp ?? false;
    if (a.enablesessions && !enablempp)
      throw this.source.error(at('enablesessions'), 'needs enablempp: true');
    const disable = a.disable ?? false;
    return {
      disable,
      network: a.network,
      wallet: disable ? undefined : this.wallet(a),
      enablempp,
      mpprealm: a.mpprealm ?? listenText,
      enablesessions: a.enablesessions ?? false,
      sessiondepositmultiplier: a.sessiondepositmultiplier ?? 20,
      sessionidletimeout: a.sessionidletimeout ?? 300,
    };
  }

  private wallet(a: NonNullable<Raw['authenticator']>): Wallet {
    const at = (key: string) => ['authenticator', key];
    if (a.uri !== undefined) {
      const uri = this.expand(a.uri, at('uri'));
      const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(uri)?.[1]?.toLowerCase();
      let backend: WalletKind | undefined;
      try {
        backend = walletKind(uri);
      } catch {
        backend = undefined;
      }
      // The URI carries credentials: messages name its scheme, never the URI.
      if (backend === undefined) {
        throw this.source.error(
          at('uri'),
          `expected a wallet URI starting with lnd://, cln://, phoenixd://, lnbits:// or nostr+walletconnect://, got ${scheme === undefined ? 'no scheme' : `${scheme}://`}`,
        );
      }
      if (a.backend !== undefined && a.backend !== backend) {
        throw this.source.error(
          at('backend'),
          `"${a.backend}" does not match the uri, which is for ${backend} (${scheme}://)`,
        );
      }
      if (a.lndhost !== undefined)
        throw this.source.error(at('lndhost'), 'set either uri or lndhost, not both');
      return { backend, uri };
    }
    if (a.backend === 'devnet') {
      if (a.lndhost !== undefined)
        throw this.source.error(at('lndhost'), 'the devnet backend takes no lndhost');
      if (a.network !== undefined && a.network !== 'regtest') {
        throw this.source.error(at('network'), `the devnet is regtest, not ${a.network}`);
      }
      return { backend: 'devnet' };
    }
    if (a.lndhost !== undefined && (a.backend === undefined || a.backend === 'lnd')) {
      if (a.tlspath === undefined)
        throw this.source.error(at('tlspath'), "missing: lndhost needs tlspath (LND's tls.cert)");
      if (a.macdir === undefined)
        throw this.source.error(at('macdir'), 'missing: lndhost needs macdir (holding invoice.macaroon)');
      if (a.lndhost.port === 10009) {
        this.warnings.push(
          this.source.warning(
            at('lndhost'),
            "names port 10009, LND's gRPC port: l402 uses LND's REST API (port 8080 by default)",
          ),
        );
      }
      return {
        backend: 'lnd',
        url: `https://${formatHostPort(a.lndhost)}`,
        tlspath: this.path(a.tlspath, at('tlspath')),
        macaroonpath: join(this.path(a.macdir, at('macdir')), 'invoice.macaroon'),
      };
    }
    if (a.backend !== undefined) {
      throw this.source.error(
        at('uri'),
        `missing: backend ${a.backend} needs a wallet uri (${a.backend}://…)`,
      );
    }
    throw this.source.error(
      ['authenticator'],
      'no Lightning backend: set uri (lnd://, cln://, phoenixd://, lnbits://, nostr+walletconnect://), lndhost with tlspath and macdir, backend: devnet, or disable: true',
    );
  }

  private service(s: RawService, i: number, authenticator: Authenticator): Service {
    const at = (...keys: (string | number)[]) => ['services', i, ...keys];
    const name = s.name;
    const auth = s.auth ?? { kind: 'on' as const };
    if (authenticator.disable && auth.kind !== 'off') {
      throw this.source.error(
        at('auth'),
        'must be off: authenticator.disable is true, so nothing can be paid',
      );
    }
    const authscheme = s.authscheme ?? 'l402';
    if (authscheme !== 'l402' && !authenticator.enablempp) {
      throw this.source.error(at('authscheme'), `"${authscheme}" needs authenticator.enablempp: true`);
    }
    return {
      name,
      hostregexp: s.hostregexp ?? /(?:)/,
      pathregexp: s.pathregexp,
      address: s.address,
      protocol: s.protocol ?? 'http',
      tlscertpath: s.tlscertpath ? this.path(s.tlscertpath, at('tlscertpath')) : undefined,
      auth,
      authscheme,
      headers: this.headers(s.headers ?? {}, at('headers')),
      rewrite: { prefix: s.rewrite?.prefix },
      timeout: s.timeout ?? 0,
      capabilities: s.capabilities ?? [],
      constraints: this.constraints(s.constraints ?? {}, at('constraints')),
      price: s.price || 1,
      dynamicprice: this.dynamicprice(s.dynamicprice ?? {}, at('dynamicprice')),
      prepaid: this.prepaid(s, at('prepaid')),
      authwhitelistpaths: s.authwhitelistpaths ?? [],
      authskipinvoicecreationpaths: s.authskipinvoicecreationpaths ?? [],
      ratelimits: (s.ratelimits ?? []).map((r) => ({
        pathregexp: r.pathregexp,
        requests: r.requests,
        per: r.per,
        burst: r.burst || r.requests,
      })),
    };
  }

  private dynamicprice(d: NonNullable<RawService['dynamicprice']>, at: Path): DynamicPrice {
    if (d.metered && !d.enabled)
      throw this.source.error([...at, 'metered'], 'needs dynamicprice.enabled: true');
    if (!d.enabled) return { enabled: false };
    if (d.grpcaddress !== undefined && d.httpurl !== undefined)
      throw this.source.error([...at, 'httpurl'], 'give either grpcaddress or httpurl, not both');
    if (d.httpurl !== undefined) return this.httpPricer(d, d.httpurl, at);
    if (d.grpcaddress === undefined)
      throw this.source.error([...at, 'grpcaddress'], 'missing: required when enabled (or httpurl)');
    const insecure = d.insecure ?? false;
    if (!insecure && d.tlscertpath === undefined) {
      throw this.source.error(
        [...at, 'tlscertpath'],
        "missing: the pricer's TLS certificate is required unless insecure is true",
      );
    }
    return {
      enabled: true,
      grpcaddress: d.grpcaddress,
      insecure,
      tlscertpath: d.tlscertpath ? this.path(d.tlscertpath, [...at, 'tlscertpath']) : undefined,
      httpurl: undefined,
      metered: d.metered ?? false,
      usagetailbytes: d.usagetailbytes || 16_384,
      timeout: d.timeout ?? DEFAULT_PRICER_TIMEOUT_MS,
    };
  }

  /** l402's plain HTTP pricer: an http(s) URL; `tlscertpath`, when given, is the CA for an https one. */
  private httpPricer(d: NonNullable<RawService['dynamicprice']>, raw: string, at: Path): DynamicPrice {
    let url: URL;
    try {
      url = new URL(this.expand(raw, [...at, 'httpurl']));
    } catch {
      throw this.source.error(
        [...at, 'httpurl'],
        `expected an http:// or https:// URL, got ${JSON.stringify(raw)}`,
      );
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      throw this.source.error(
        [...at, 'httpurl'],
        `expected an http:// or https:// URL, got ${JSON.stringify(raw)}`,
      );
    if (d.metered)
      throw this.source.error(
        [...at, 'metered'],
        "needs a gRPC pricer (grpcaddress): Aperture's metered calls are gRPC; use prepaid.credit for a balance the gateway keeps",
      );
    return {
      enabled: true,
      grpcaddress: undefined,
      httpurl: url,
      insecure: url.protocol === 'http:',
      tlscertpath: d.tlscertpath ? this.path(d.tlscertpath, [...at, 'tlscertpath']) : undefined,
      metered: false,
      usagetailbytes: d.usagetailbytes || 16_384,
      timeout: d.timeout ?? DEFAULT_PRICER_TIMEOUT_MS,
    };
  }

  private prepaid(s: RawService, at: Path): { readonly credit: number } | undefined {
    if (s.prepaid === undefined) return undefined;
    if (s.dynamicprice?.metered)
      throw this.source.error(
        [...at, 'credit'],
        'cannot be combined with dynamicprice.metered: there the pricer keeps the balance',
      );
    return { credit: s.prepaid.credit };
  }

  /** Header names lower-cased; values with `${NAME}` expanded, then `!file+hex:`/`!file+base64:` read. */
  private headers(headers: Readonly<Record<string, string>>, at: Path): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [name, rawValue] of Object.entries(headers)) {
      const here = [...at, name];
      if (!HEADER_NAME.test(name)) throw this.source.error(here, 'not a valid HTTP header name');
      const lower = name.toLowerCase();
      if (Object.hasOwn(out, lower))
        throw this.source.error(here, `duplicate header: ${lower} is given twice`);
      let value = this.expand(rawValue, here);
      if (value.startsWith('!file')) value = this.fileValue(value, here);
      if (/[\0\r\n]/.test(value)) throw this.source.error(here, 'the value contains a line break or NUL');
      out[lower] = value;
    }
    return out;
  }

  private fileValue(value: string, at: Path): string {
    const colon = value.indexOf(':');
    const kind = colon < 0 ? value : value.slice(0, colon);
    if (kind !== '!file+hex' && kind !== '!file+base64') {
      throw this.source.error(at, `expected !file+hex:<path> or !file+base64:<path>, got ${describe(kind)}`);
    }
    const file = this.path(value.slice(colon + 1), at);
    let bytes: Buffer;
    try {
      const stat = statSync(file);
      if (!stat.isFile()) throw this.source.error(at, `${file} is not a regular file`);
      if (stat.size > MAX_HEADER_FILE_BYTES) throw this.source.error(at, `${file} is over 64 KiB`);
      bytes = readFileSync(file);
    } catch (error) {
      if (error instanceof ConfigError) throw error;
      throw this.source.error(at, `cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? error})`);
    }
    return kind === '!file+hex' ? bytes.toString('hex') : bytes.toString('base64');
  }

  private constraints(constraints: Readonly<Record<string, string>>, at: Path): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [key, value] of Object.entries(constraints)) {
      // Each becomes the caveat `key=value`.
      if (!/^[^\s=]+$/.test(key))
        throw this.source.error([...at, key], 'a caveat condition has no spaces or "="');
      if (/[\0-\x1f]/.test(value))
        throw this.source.error([...at, key], 'the value contains a control character');
      out[key] = value;
    }
    return out;
  }

  private redisUrl(rawUrl: string): string {
    const url = this.expand(rawUrl, ['redis', 'url']);
    let protocol: string | undefined;
    try {
      protocol = new URL(url).protocol;
    } catch {
      protocol = undefined;
    }
    // The URL may carry a password: never echo it.
    if (protocol !== 'redis:' && protocol !== 'rediss:') {
      throw this.source.error(['redis', 'url'], 'expected a redis:// or rediss:// URL');
    }
    return url;
  }

  /** `${NAME}` replaced from the environment; an unset or empty variable is an error (as Aperture). */
  private expand(value: string, at: Path): string {
    return value.replace(ENV_REF, (_, name: string) => {
      const found = this.env[name];
      if (!found) throw this.source.error(at, `environment variable ${name} is not set`);
      return found;
    });
  }

  /** `~` and `${NAME}` expanded, then made absolute against the config file's directory. */
  private path(value: string, at: Path): string {
    const expanded = this.expand(value, at).replace(/^~(?=$|\/)/, () => homedir());
    return resolve(this.source.dir, expanded);
  }
}

// ——— helpers ———

/** `host:port`, bracketing IPv6 hosts. */
export function formatHostPort(address: HostPort): string {
  return `${address.host.includes(':') ? `[${address.host}]` : address.host}:${address.port}`;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return (
    typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array)
  );
}

function getIn(data: unknown, path: Path): unknown {
  let node = data;
  for (const segment of path) node = (node as Record<string | number, unknown>)[segment];
  return node;
}

/** A short, single-line rendering of a value for messages. */
function describe(value: unknown): string {
  if (value === undefined || value === null) return 'nothing';
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint')
    return String(value);
  if (Array.isArray(value)) return 'a list';
  if (value instanceof Uint8Array) return 'binary data';
  if (typeof value === 'object') return 'a mapping';
  return typeof value;
}

function oneLine(message: string): string {
  return message.split('\n')[0]!.trim();
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const item of Object.values(value)) deepFreeze(item);
  }
  return value;
}
