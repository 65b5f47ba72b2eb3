/**
 * The discovery manifest of the L402 Discovery Specification (`lightninglabs/L402`
 * `discovery-spec.md` §5, version `1.0`): a free, cacheable JSON document at
 * `/.well-known/l402.json` saying what the gateway sells and for how much, generated from the config.
 *
 * What each config key becomes:
 * - `provider`: `discovery.name` (else `servername`, else `l402 gateway`), `discovery.uri`, and the
 *   Lightning node's public key once the backend has told it (`node_pubkey`: clients may check that
 *   invoices pay this node);
 * - `services`: every service that is paid for (`auth: on` or `freebie N`; `auth: off` services sell
 *   nothing and are left out, as §10.4 allows). Each has its `capabilities` and one resource, whose
 *   `pricing` is `{ model: "fixed", price_msat }` from `price`, or `{ model: "dynamic" }` with
 *   `dynamicprice` (this gateway has no quote endpoint: the price comes with the 402);
 * - `caveats`: the vocabulary the gateway mints and enforces: `services` (service_list, subset),
 *   `<service>_capabilities` (subset), `<service>_valid_until` (timestamp, earlier) and each
 *   `constraints` key (integer, decreasing, when its value is a number; else string, which must stay
 *   equal).
 *
 * Members the specification does not define, which its §9 tells clients to ignore when they do not
 * know them: per service `schemes` (the payment schemes accepted, `l402` and/or `mpp`, from
 * `authscheme`), `minted_caveats` (the caveats every token for it gets), `token_lifetime_seconds`
 * (`timeout`), `free_requests` (`freebie N`), per resource `path_regexp` / `host_regexp` (what the
 * gateway matches; `path` is the literal prefix of `pathregexp`, when it has one); top level `network`
 * and, with `authenticator.enablempp`, `mpp` (`realm`, `method`, `intents`).
 *
 * @example
 * const manifest = Discovery.manifest(config, { pubkey: '02ab…' });
 * manifest.services[0]; // { name: 'api', resources: [{ path: '/api/', pricing: { model: 'fixed', price_msat: 21000 } }], … }
 */
import { createHash } from 'node:crypto';
import type { Config, Service } from './Config.js';
import type { Reply } from './proxy.js';

/** Where the manifest is served (RFC 8615 well-known URI, discovery-spec §5.1). */
export const PATH = '/.well-known/l402.json';

export type Pricing =
  | { readonly model: 'fixed'; readonly price_msat: number }
  | { readonly model: 'dynamic' };

export interface Resource {
  readonly path?: string;
  readonly path_regexp?: string;
  readonly host_regexp?: string;
  readonly pricing: Pricing;
}

export interface ServiceEntry {
  readonly name: string;
  readonly capabilities?: readonly string[];
  readonly resources: readonly Resource[];
  readonly schemes: readonly ('l402' | 'mpp')[];
  readonly minted_caveats: Readonly<Record<string, string>>;
  readonly token_lifetime_seconds?: number;
  readonly free_requests?: number;
}

export interface CaveatEntry {
  readonly type: 'service_list' | 'string' | 'integer' | 'timestamp';
  readonly attenuation?: 'subset' | 'decreasing' | 'earlier';
  readonly description?: string;
}

/** The manifest (discovery-spec §5.2), with this gateway's extra members. */
export interface Manifest {
  readonly version: '1.0';
  readonly provider: { readonly name: string; readonly uri?: string; readonly node_pubkey?: string };
  readonly currencies: readonly ['msat'];
  readonly macaroon_versions: readonly [0];
  readonly payment_methods: readonly ['bolt11'];
  readonly network?: string;
  readonly services: readonly ServiceEntry[];
  readonly caveats: Readonly<Record<string, CaveatEntry>>;
  readonly mpp?: {
    readonly realm: string;
    readonly method: 'lightning';
    readonly intents: readonly string[];
  };
}

/** What is known of the node at the time of asking. */
export interface Node {
  readonly pubkey?: string | undefined;
  readonly network?: string | undefined;
}

const NUMBER = /^-?\d+(\.\d+)?$/;
const META = /[\\^$.|?*+()[\]{}]/;

/** The literal text a `^…` regexp source starts with, unescaped; undefined when there is none. */
function literalPrefix(source: string): string | undefined {
  if (!source.startsWith('^')) return undefined;
  let out = '';
  for (let i = 1; i < source.length; i++) {
    const c = source[i]!;
    if (c === '\\') {
      const next = source[i + 1];
      if (next === undefined || /[A-Za-z0-9]/.test(next)) break;
      out += next;
      i++;
      continue;
    }
    if (META.test(c)) {
      // `x?`, `x*` and `x{0,…}` make the last character optional: it is not part of the prefix.
      if ((c === '?' || c === '*' || c === '{') && out.length > 0) out = out.slice(0, -1);
      break;
    }
    out += c;
  }
  return out === '' ? undefined : out;
}

/** A regexp's source as people write it: JavaScript's `\/` is plain `/` in RE2 and everywhere else. */
const shown = (regexp: RegExp) => regexp.source.replace(/\\\//g, '/');

const matchesAll = (regexp: RegExp) => regexp.source === '(?:)' || regexp.source === '.*';

function schemesOf(service: Service): ('l402' | 'mpp')[] {
  return service.authscheme === 'l402+mpp' ? ['l402', 'mpp'] : [service.authscheme];
}

/** Every caveat a token for `service` is minted with, but its expiry (which depends on the time). */
function mintedCaveats(service: Service): Record<string, string> {
  const caveats: Record<string, string> = { services: `${service.name}:0` };
  if (service.capabilities.length > 0)
    caveats[`${service.name}_capabilities`] = service.capabilities.join(',');
  Object.assign(caveats, service.constraints);
  return caveats;
}

/**
 * The manifest for `config`, with what is known of the Lightning node.
 *
 * @example
 * Discovery.manifest(config).services.map((s) => s.name); // ['api', 'freebie']
 */
export function manifest(config: Config, node: Node = {}): Manifest {
  const paid = config.services.filter((service) => service.auth.kind !== 'off');
  const caveats: Record<string, CaveatEntry> = {
    services: {
      type: 'service_list',
      attenuation: 'subset',
      description: 'service names with their tier, name:tier',
    },
  };
  const services = paid.map((service): ServiceEntry => {
    if (service.capabilities.length > 0)
      caveats[`${service.name}_capabilities`] = { type: 'string', attenuation: 'subset' };
    if (service.timeout > 0)
      caveats[`${service.name}_valid_until`] = { type: 'timestamp', attenuation: 'earlier' };
    for (const [key, value] of Object.entries(service.constraints)) {
      caveats[key] = NUMBER.test(value) ? { type: 'integer', attenuation: 'decreasing' } : { type: 'string' };
    }
    const prefix = service.pathregexp && literalPrefix(service.pathregexp.source);
    const resource: Resource = {
      ...(prefix !== undefined ? { path: prefix } : {}),
      ...(service.pathregexp !== undefined ? { path_regexp: shown(service.pathregexp) } : {}),
      ...(!matchesAll(service.hostregexp) ? { host_regexp: shown(service.hostregexp) } : {}),
      pricing: service.dynamicprice.enabled
        ? { model: 'dynamic' }
        : { model: 'fixed', price_msat: service.price * 1000 },
    };
    return {
      name: service.name,
      ...(service.capabilities.length > 0 ? { capabilities: service.capabilities } : {}),
      resources: [resource],
      schemes: schemesOf(service),
      minted_caveats: mintedCaveats(service),
      ...(service.timeout > 0 ? { token_lifetime_seconds: service.timeout } : {}),
      ...(service.auth.kind === 'freebie' ? { free_requests: service.auth.count } : {}),
    };
  });
  const a = config.authenticator;
  const name = config.discovery.name ?? config.servername ?? 'l402 gateway';
  const network = a.network ?? node.network;
  return {
    version: '1.0',
    provider: {
      name,
      ...(config.discovery.uri !== undefined ? { uri: config.discovery.uri } : {}),
      ...(node.pubkey !== undefined ? { node_pubkey: node.pubkey } : {}),
    },
    currencies: ['msat'],
    macaroon_versions: [0],
    payment_methods: ['bolt11'],
    ...(network !== undefined ? { network } : {}),
    services,
    caveats,
    ...(a.enablempp
      ? {
          mpp: {
            realm: a.mpprealm,
            method: 'lightning' as const,
            intents: a.enablesessions ? ['charge', 'session'] : ['charge'],
          },
        }
      : {}),
  };
}

/**
 * Serves the manifest: `GET` and `HEAD` get it as `application/json` with permissive CORS (it holds
 * no secret, §5.1), `Cache-Control` and a strong `ETag` (§7), and `304` for a matching
 * `If-None-Match`; other methods get 405. The body is made once per state of the node (its public
 * key appears once the backend has answered).
 *
 * @example
 * const discovery = Discovery.create(config, () => ({ pubkey: health.info?.pubkey }));
 * const reply = discovery.answer('GET', request.headers['if-none-match']);
 */
export function create(
  config: Config,
  node: () => Node,
): { answer(method: string, ifNoneMatch?: string): Reply } {
  let cached: { key: string; body: string; etag: string } | undefined;
  const current = () => {
    const known = node();
    const key = `${known.pubkey ?? ''}\n${known.network ?? ''}`;
    if (cached?.key !== key) {
      const body = `${JSON.stringify(manifest(config, known), null, 2)}\n`;
      const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
      cached = { key, body, etag };
    }
    return cached;
  };
  const cors: [string, string][] = [
    ['access-control-allow-origin', '*'],
    ['access-control-allow-methods', 'GET, HEAD, OPTIONS'],
  ];
  return {
    answer(method, ifNoneMatch) {
      if (method !== 'GET' && method !== 'HEAD') {
        return {
          status: 405,
          headers: [['allow', 'GET, HEAD, OPTIONS'], ['content-type', 'text/plain; charset=utf-8'], ...cors],
          body: 'method not allowed\n',
        };
      }
      const { body, etag } = current();
      const headers: [string, string][] = [
        ['content-type', 'application/json'],
        ['cache-control', 'public, max-age=300'],
        ['etag', etag],
        ...cors,
      ];
      const matches = ifNoneMatch?.split(',').some((tag) => {
        const t = tag.trim();
        return t === '*' || t === etag || t === `W/${etag}`;
      });
      if (matches) return { status: 304, headers, body: '' };
      return { status: 200, headers, body };
    },
  };
}
