/**
 * What an agent may reach: only http(s), only allowed origins, and never a private, loopback,
 * link-local or otherwise internal address unless the operator allows it (no SSRF through the agent).
 * Hosts are checked where it matters, at connect time: the guarded fetch's dispatcher resolves each
 * name itself and refuses internal addresses, so DNS rebinding and redirects cannot get around it.
 *
 * @example
 * const guarded = Guard.fetch({ allowedOrigins: ['https://api.example.com'] });
 * await guarded('http://169.254.169.254/latest/meta-data'); // throws AgentError L402_AGENT_FORBIDDEN
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { isIP } from 'node:net';
import { Agent, fetch as undiciFetch } from 'undici';
import { L402Error } from '../Errors.js';

/** An agent tool refused to act: a forbidden destination, an invalid argument, a declined approval. */
export class AgentError extends L402Error {
  override readonly name = 'AgentError';
}

export interface Policy {
  /**
   * Origins the agent may call (`https://api.example.com`, or `https://*.example.com` for any
   * subdomain); every public origin when absent. Loopback and private hosts still need `allowPrivate`.
   */
  readonly allowedOrigins?: readonly string[];
  /** Allow loopback, private, link-local and other internal addresses (development, the devnet). */
  readonly allowPrivate?: boolean;
}

const v4 = (text: string): number[] | undefined => {
  const parts = text.split('.').map(Number);
  return parts.length === 4 && parts.every((n) => Number.isInteger(n) && n >= 0 && n <= 255)
    ? parts
    : undefined;
};

/** Whether an IP address is not on the public internet (RFC 6890 special-purpose ranges and kin). */
export function isInternal(address: string): boolean {
  const family = isIP(address);
  if (family === 4) {
    const [a = 0, b = 0, c = 0] = v4(address) ?? [];
    return (
      a === 0 ||
      a === 10 ||
      a === 127 ||
      (a === 100 && b >= 64 && b <= 127) ||
      (a === 169 && b === 254) ||
      (a === 172 && b >= 16 && b <= 31) ||
      (a === 192 && b === 0 && (c === 0 || c === 2)) ||
      (a === 192 && b === 168) ||
      (a === 198 && (b === 18 || b === 19)) ||
      (a === 198 && b === 51 && c === 100) ||
      (a === 203 && b === 0 && c === 113) ||
      a >= 224
    );
  }
  if (family === 6) {
    const lower = address.toLowerCase().replace(/^\[|\]$/g, '');
    // IPv4-mapped, -compatible and NAT64 forms carry an IPv4 address at the end.
    const tail = /(\d{1,3}(?:\.\d{1,3}){3})$/.exec(lower)?.[1];
    if (tail !== undefined) return isInternal(tail);
    const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(lower);
    if (mapped !== undefined && mapped !== null) {
      const hi = Number.parseInt(mapped[1] as string, 16);
      const lo = Number.parseInt(mapped[2] as string, 16);
      return isInternal(`${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`);
    }
    if (lower === '::' || lower === '::1') return true;
    const first = Number.parseInt(lower.split(':')[0] || '0', 16);
    return (
      (first & 0xfe00) === 0xfc00 || // unique local fc00::/7
      (first & 0xffc0) === 0xfe80 || // link-local fe80::/10
      (first & 0xffc0) === 0xfec0 || // site-local fec0::/10
      (first & 0xff00) === 0xff00 || // multicast
      (first === 0x2001 && lower.startsWith('2001:db8')) || // documentation
      first === 0x64 || // 64:ff9b::/96 NAT64 written without a dotted tail
      first === 0
    );
  }
  return false;
}

const hostOf = (url: URL) => url.hostname.replace(/^\[|\]$/g, '');

function originAllowed(url: URL, allowed: readonly string[] | undefined): boolean {
  if (allowed === undefined) return true;
  return allowed.some((pattern) => {
    const p = pattern.trim().toLowerCase().replace(/\/+$/, '');
    if (p === url.origin) return true;
    const wild = /^(https?):\/\/\*\.([^/]+)$/.exec(p);
    if (wild === null) return false;
    const [, scheme, suffix] = wild;
    return url.protocol === `${scheme}:` && url.host.endsWith(`.${suffix}`);
  });
}

/**
 * Checks a URL an agent asked for: http(s), an allowed origin, no internal address written literally
 * (names are checked again when connecting). Throws {@link AgentError} `L402_AGENT_FORBIDDEN`.
 *
 * @example
 * Guard.check(new URL('http://10.0.0.1/'), {}); // throws
 */
export function check(url: URL, policy: Policy): void {
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new AgentError(
      'L402_AGENT_FORBIDDEN',
      `only http and https URLs can be fetched, not ${url.protocol}`,
    );
  }
  if (url.username !== '' || url.password !== '') {
    throw new AgentError('L402_AGENT_FORBIDDEN', 'URLs with credentials in them are refused');
  }
  if (!originAllowed(url, policy.allowedOrigins)) {
    throw new AgentError(
      'L402_AGENT_FORBIDDEN',
      `${url.origin} is not among the origins the operator allows`,
    );
  }
  const host = hostOf(url);
  const internalName = host === 'localhost' || host.endsWith('.localhost') || host.endsWith('.internal');
  if (!policy.allowPrivate && (internalName || (isIP(host) !== 0 && isInternal(host)))) {
    throw new AgentError(
      'L402_AGENT_FORBIDDEN',
      `${host} is a loopback or private address; the operator has not allowed those`,
    );
  }
}

type LookupCallback = (
  error: NodeJS.ErrnoException | null,
  address: string | LookupAddress[],
  family?: number,
) => void;

/** A `dns.lookup` that fails for names resolving to any internal address. */
function guardedLookup(hostname: string, options: object, callback: LookupCallback): void {
  dnsLookup(hostname, { ...options, all: true }, (error, addresses) => {
    if (error) return callback(error, []);
    const list = addresses as LookupAddress[];
    const bad = list.find((a) => isInternal(a.address));
    if (bad !== undefined) {
      const refused: NodeJS.ErrnoException = new AgentError(
        'L402_AGENT_FORBIDDEN',
        `${hostname} resolves to ${bad.address}, a private or loopback address; the operator has not allowed those`,
      );
      refused.code = 'L402_AGENT_FORBIDDEN';
      return callback(refused, []);
    }
    if ((options as { all?: boolean }).all) return callback(null, list);
    const first = list[0];
    if (first === undefined) return callback(new Error(`${hostname} has no address`), []);
    callback(null, first.address, first.family);
  });
}

type FetchLike = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

/**
 * The `fetch` for agents: {@link check} on every URL (redirects too, as the paying fetch follows them
 * itself), and names resolved by a resolver that refuses internal addresses. `base`, when given,
 * replaces the network fetch (and its resolver): the URL checks still apply.
 */
export function fetch(policy: Policy, base?: FetchLike): FetchLike {
  const dispatcher = policy.allowPrivate ? undefined : new Agent({ connect: { lookup: guardedLookup } });
  return async (input, init) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    check(url, policy);
    if (base !== undefined) return base(input, init);
    try {
      const options = { ...(init as object), ...(dispatcher === undefined ? {} : { dispatcher }) };
      return (await undiciFetch(
        input as Parameters<typeof undiciFetch>[0],
        options as Parameters<typeof undiciFetch>[1],
      )) as unknown as Response;
    } catch (error) {
      // undici wraps connect errors: surface the refusal itself.
      let cause: unknown = error;
      while (cause instanceof Error) {
        if (cause instanceof AgentError) throw cause;
        cause = (cause as { cause?: unknown }).cause;
      }
      throw error;
    }
  };
}
