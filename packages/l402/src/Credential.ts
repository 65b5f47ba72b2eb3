/**
 * The credential a client presents after paying: `Authorization: L402 <base64 macaroon>[,<base64>…]:<hex
 * preimage>` (or `LSAT`), and the hex `Macaroon` / `Grpc-Metadata-Macaroon` forms Aperture's gRPC clients
 * send, whose preimage rides inside the macaroon as a `preimage=<hex>` caveat.
 *
 * Parsing is tolerant where clients differ (scheme in any case, one or more spaces, either hex case,
 * either base64 alphabet, several header values) and strict where it matters: the whole value must match,
 * and two L402 values that disagree are refused rather than one silently winning.
 *
 * @example
 * const header = Credential.format({ macaroon, preimage });   // "L402 AgEEbHNhdA…:0f3a…"
 * const cred = Credential.fromHeaders(request.headers);         // { macaroon, preimage, … } | undefined
 */
import * as Caveat from './Caveat.js';
import { HeaderError, L402Error } from './Errors.js';
import { equalBytes, fromHex, toHex } from './internal/bytes.js';
import * as Macaroon from './Macaroon.js';

export type Source = 'authorization' | 'grpc-metadata-macaroon' | 'macaroon' | 'token';

export interface Credential {
  /** The L402 token: the first macaroon of the list. */
  readonly macaroon: Macaroon.Macaroon;
  /** Every macaroon sent, the token first (later ones are discharges). */
  readonly macaroons: readonly Macaroon.Macaroon[];
  /** 32 bytes. */
  readonly preimage: Uint8Array;
  /** `L402` or `LSAT` for the Authorization form. */
  readonly scheme: 'L402' | 'LSAT';
  readonly source: Source;
}

/** Longest header value read; longer ones are refused before any decoding work. */
export const MAX_HEADER_LENGTH = 8192;
/** Most macaroons one credential may carry. */
export const MAX_MACAROONS = 8;

const ELEMENT = /^(L402|LSAT) +([A-Za-z0-9+/_=-]+(?: *, *[A-Za-z0-9+/_=-]+)*):([0-9A-Fa-f]{64})$/i;
// A comma followed by `scheme SP` starts another credential: base64 and hex never hold a space.
const SPLIT = /,[ \t]*(?=[A-Za-z0-9!#$%&'*+.^_`|~-]+ )/;

function check(value: string, maxLength: number): void {
  if (value.length > maxLength) {
    throw new HeaderError(
      'L402_HEADER_TOO_LARGE',
      `credential header is ${value.length} characters, over the ${maxLength} limit`,
    );
  }
}

function decodeMacaroon(
  text: string,
  what: string,
  decoder: (s: string) => Macaroon.Macaroon,
): Macaroon.Macaroon {
  try {
    return decoder(text);
  } catch (e) {
    if (e instanceof L402Error) throw new HeaderError('L402_HEADER_FORMAT', `${what}: ${e.message}`);
    throw e;
  }
}

function parseElement(element: string): Credential | undefined {
  const match = ELEMENT.exec(element);
  if (match === null) {
    // `L402xyz` is a malformed L402 credential, not some other scheme: say so rather than ignore it.
    const scheme = /^(?:L402|LSAT)/i.exec(element)?.[0]?.toUpperCase();
    if (scheme !== undefined) {
      throw new HeaderError(
        'L402_HEADER_FORMAT',
        `${scheme} credential is not "${scheme} <base64 macaroon>:<64 hex digit preimage>"`,
      );
    }
    return undefined;
  }
  const [, scheme, list, preimageHex] = match as unknown as [string, string, string, string];
  const parts = list.split(/ *, */);
  if (parts.length > MAX_MACAROONS) {
    throw new HeaderError(
      'L402_HEADER_TOO_LARGE',
      `credential carries ${parts.length} macaroons, at most ${MAX_MACAROONS}`,
    );
  }
  const macaroons = parts.map((p, i) =>
    decodeMacaroon(p, `macaroon ${i + 1} of the credential`, Macaroon.decode),
  );
  return {
    macaroon: macaroons[0] as Macaroon.Macaroon,
    macaroons,
    preimage: fromHex(preimageHex),
    scheme: scheme.toUpperCase() as 'L402' | 'LSAT',
    source: 'authorization',
  };
}

const sameCredential = (a: Credential, b: Credential) =>
  equalBytes(a.preimage, b.preimage) &&
  a.macaroons.length === b.macaroons.length &&
  a.macaroons.every((m, i) =>
    equalBytes(Macaroon.encode(m), Macaroon.encode(b.macaroons[i] as Macaroon.Macaroon)),
  );

/**
 * Reads the L402 credential in `Authorization` value(s): one value, several header lines, or lines the
 * Fetch API joined with ", ". Values of other schemes (Basic, Bearer, …) are ignored; returns
 * `undefined` when no L402/LSAT value is present. Throws {@link HeaderError} for a malformed L402 value
 * or for L402 values that disagree (Aperture forwards the same credential as LSAT and L402: that agrees).
 */
export function parse(
  value: string | readonly string[] | null | undefined,
  options: { maxLength?: number } = {},
): Credential | undefined {
  if (value === null || value === undefined) return undefined;
  const maxLength = options.maxLength ?? MAX_HEADER_LENGTH;
  const values = typeof value === 'string' ? [value] : value;
  check(values.join(', '), maxLength);
  let found: Credential | undefined;
  for (const v of values) {
    for (const element of v.split(SPLIT)) {
      const trimmed = element.trim();
      if (trimmed.length === 0) continue;
      const credential = parseElement(trimmed);
      if (credential === undefined) continue;
      if (found === undefined) found = credential;
      else if (!sameCredential(found, credential)) {
        throw new HeaderError('L402_HEADER_FORMAT', 'Authorization carries two different L402 credentials');
      }
    }
  }
  return found;
}

/**
 * Reads the hex macaroon form (`Macaroon`, `Grpc-Metadata-Macaroon` headers, gRPC metadata), whose
 * preimage is the macaroon's last `preimage=` caveat.
 */
export function parseMacaroonHeader(
  value: string,
  source: Exclude<Source, 'authorization'> = 'macaroon',
  options: { maxLength?: number } = {},
): Credential {
  check(value, options.maxLength ?? MAX_HEADER_LENGTH);
  const macaroon = decodeMacaroon(value.trim(), `${source} header`, Macaroon.fromHex);
  let preimageHex: string | undefined;
  for (const text of Macaroon.firstPartyCaveats(macaroon)) {
    const caveat = Caveat.tryParse(text);
    if (caveat?.key === 'preimage') preimageHex = caveat.value;
  }
  if (preimageHex === undefined || !/^[0-9a-fA-F]{64}$/.test(preimageHex)) {
    throw new HeaderError(
      'L402_HEADER_FORMAT',
      `${source} header macaroon has no preimage=<64 hex digits> caveat`,
    );
  }
  return { macaroon, macaroons: [macaroon], preimage: fromHex(preimageHex), scheme: 'L402', source };
}

/** Anything headers come in: a Fetch `Headers`, Node's `IncomingHttpHeaders`, or a plain record. */
export type HeaderSource =
  | { get(name: string): string | null | undefined }
  | Readonly<Record<string, string | readonly string[] | undefined>>;

/**
 * One header's value(s) from any {@link HeaderSource}; `name` in lower case.
 *
 * @example
 * Credential.header(req.headers, 'content-type');
 */
export function header(headers: HeaderSource, name: string): string | readonly string[] | undefined {
  if (typeof headers.get === 'function')
    return (headers.get as (n: string) => string | null)(name) ?? undefined;
  const record = headers as Readonly<Record<string, string | readonly string[] | undefined>>;
  const direct = record[name];
  if (direct !== undefined) return direct;
  for (const key of Object.keys(record)) if (key.toLowerCase() === name) return record[key];
  return undefined;
}

const first = (v: string | readonly string[] | undefined) => (typeof v === 'string' ? v : v?.[0]);

/**
 * The credential a request carries, by Aperture's precedence: `Authorization`, then
 * `Grpc-Metadata-Macaroon`, then `Macaroon`, then the spec's gRPC `token` metadata.
 * `undefined` when there is none; {@link HeaderError} when one is present but malformed.
 */
export function fromHeaders(
  headers: HeaderSource,
  options: { maxLength?: number } = {},
): Credential | undefined {
  const auth = parse(header(headers, 'authorization'), options);
  if (auth !== undefined) return auth;
  const forms: [string, Exclude<Source, 'authorization'>][] = [
    ['grpc-metadata-macaroon', 'grpc-metadata-macaroon'],
    ['macaroon', 'macaroon'],
    ['token', 'token'],
  ];
  for (const [name, source] of forms) {
    const value = first(header(headers, name));
    if (value === undefined || value.length === 0) continue;
    // `token` is a common header name; only a hex macaroon there is ours to read.
    if (source === 'token' && !/^[0-9a-fA-F]+$/.test(value.trim())) continue;
    return parseMacaroonHeader(value, source, options);
  }
  return undefined;
}

/**
 * The `Authorization` value: `L402 <std base64 macaroon>[,<…>]:<lower-case hex preimage>`.
 *
 * @example
 * fetch(url, { headers: { Authorization: Credential.format({ macaroon, preimage }) } });
 */
export function format(
  credential: {
    macaroon: Macaroon.Macaroon;
    preimage: Uint8Array;
    discharges?: readonly Macaroon.Macaroon[];
  },
  options: { scheme?: 'L402' | 'LSAT' } = {},
): string {
  if (credential.preimage.length !== 32) {
    throw new HeaderError(
      'L402_HEADER_FORMAT',
      `preimage is ${credential.preimage.length} bytes, expected 32`,
    );
  }
  const list = [credential.macaroon, ...(credential.discharges ?? [])].map(Macaroon.toBase64).join(',');
  return `${options.scheme ?? 'L402'} ${list}:${toHex(credential.preimage)}`;
}

/**
 * The hex `Macaroon` / `Grpc-Metadata-Macaroon` value: the macaroon with a `preimage=<hex>` caveat
 * appended, as Aperture's gRPC clients send it.
 */
export function formatMacaroonHeader(credential: {
  macaroon: Macaroon.Macaroon;
  preimage: Uint8Array;
}): string {
  return Macaroon.toHex(
    Macaroon.addFirstPartyCaveat(credential.macaroon, Caveat.preimage(toHex(credential.preimage))),
  );
}
