/**
 * Macaroons byte-compatible with go-macaroon (`gopkg.in/macaroon.v2`) and libmacaroons: the V2 binary
 * format exactly as go-macaroon's `MarshalBinary` writes it, V2 JSON, V1 decoding, and the HMAC-SHA256
 * signature chain with libmacaroons' root-key derivation.
 *
 * @example
 * const mac = Macaroon.create({ rootKey, identifier, location: 'lsat' });
 * const narrowed = Macaroon.addFirstPartyCaveat(mac, 'services=weather:0');
 * Macaroon.toBase64(narrowed); // "AgEEbHNhdAJC…"
 * Macaroon.verifySignature(narrowed, rootKey); // true
 */
import * as platform from '#platform';
import { MacaroonFormatError } from './Errors.js';
import * as bytes from './internal/bytes.js';

const { concat, fromUtf8, utf8 } = bytes;

/** One caveat as carried in a macaroon. First-party caveats have no `verificationId` and no `location`. */
export interface Caveat {
  readonly id: Uint8Array;
  /** Set only on third-party caveats: the encrypted caveat root key. */
  readonly verificationId?: Uint8Array | undefined;
  /** Set only on third-party caveats: where to get a discharge. */
  readonly location?: string | undefined;
}

/** An immutable macaroon. Every operation returns a new one. */
export interface Macaroon {
  readonly location: string;
  readonly identifier: Uint8Array;
  readonly caveats: readonly Caveat[];
  readonly signature: Uint8Array;
}

const KEY_GENERATOR = utf8('macaroons-key-generator');

/**
 * libmacaroons' key derivation: the chain starts from `HMAC(key = "macaroons-key-generator", rootKey)`,
 * never from the root key itself (the L402 spec's text omits this step; Aperture and go-macaroon do it).
 */
export function deriveKey(rootKey: Uint8Array): Uint8Array {
  return platform.hmacSha256(KEY_GENERATOR, rootKey);
}

function chainStep(signature: Uint8Array, caveat: Caveat): Uint8Array {
  if (caveat.verificationId === undefined || caveat.verificationId.length === 0) {
    return platform.hmacSha256(signature, caveat.id);
  }
  // Third-party step, as go-macaroon's keyedHash2: HMAC(sig, HMAC(sig, vid) || HMAC(sig, cid)).
  return platform.hmacSha256(
    signature,
    concat(platform.hmacSha256(signature, caveat.verificationId), platform.hmacSha256(signature, caveat.id)),
  );
}

/**
 * The signature a macaroon with this identifier and these caveats has under `rootKey`.
 *
 * @example
 * Macaroon.signatureFor(rootKey, mac.identifier, mac.caveats);
 */
export function signatureFor(
  rootKey: Uint8Array,
  identifier: Uint8Array,
  caveats: readonly Caveat[],
): Uint8Array {
  let sig = platform.hmacSha256(deriveKey(rootKey), identifier);
  for (const caveat of caveats) sig = chainStep(sig, caveat);
  return sig;
}

const asBytes = (v: string | Uint8Array) => (typeof v === 'string' ? utf8(v) : v);

/**
 * A new macaroon signed with `rootKey`, optionally with first-party caveats already added.
 *
 * @example
 * Macaroon.create({ rootKey, identifier: Identifier.encode(id), location: 'lsat', caveats: ['services=a:0'] });
 */
export function create(options: {
  rootKey: Uint8Array;
  identifier: Uint8Array | string;
  location?: string;
  caveats?: readonly (string | Uint8Array)[];
}): Macaroon {
  const identifier = asBytes(options.identifier);
  const caveats = (options.caveats ?? []).map((c) => ({ id: asBytes(c) }));
  return {
    location: options.location ?? '',
    identifier,
    caveats,
    signature: signatureFor(options.rootKey, identifier, caveats),
  };
}

/**
 * Narrows a macaroon: appends first-party caveats and extends the signature chain. No root key needed;
 * any holder can do this, and nobody can undo it.
 *
 * @example
 * const readOnly = Macaroon.addFirstPartyCaveat(mac, 'weather_capabilities=read');
 */
export function addFirstPartyCaveat(macaroon: Macaroon, ...caveats: (string | Uint8Array)[]): Macaroon {
  let signature = macaroon.signature;
  const added: Caveat[] = [];
  for (const c of caveats) {
    const caveat = { id: asBytes(c) };
    signature = chainStep(signature, caveat);
    added.push(caveat);
  }
  return { ...macaroon, caveats: [...macaroon.caveats, ...added], signature };
}

/**
 * Whether the signature chain checks out under `rootKey`, compared in constant time. Says nothing of
 * what the caveats mean: see `Token.verify` for the whole L402 check.
 */
export function verifySignature(macaroon: Macaroon, rootKey: Uint8Array): boolean {
  return platform.constantTimeEqual(
    signatureFor(rootKey, macaroon.identifier, macaroon.caveats),
    macaroon.signature,
  );
}

/** Caveats that need a discharge macaroon from a third party. */
export function thirdPartyCaveats(macaroon: Macaroon): Caveat[] {
  return macaroon.caveats.filter((c) => c.verificationId !== undefined && c.verificationId.length > 0);
}

/** First-party caveats as UTF-8 strings, in order (caveats that are not UTF-8 are left out). */
export function firstPartyCaveats(macaroon: Macaroon): string[] {
  const out: string[] = [];
  for (const c of macaroon.caveats) {
    if (c.verificationId !== undefined && c.verificationId.length > 0) continue;
    const text = fromUtf8(c.id);
    if (text !== undefined) out.push(text);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// V2 binary (go-macaroon marshal-v2.go / packet-v2.go; libmacaroons format.txt)

const FIELD_EOS = 0;
const FIELD_LOCATION = 1;
const FIELD_IDENTIFIER = 2;
const FIELD_VID = 4;
const FIELD_SIGNATURE = 6;

/** Largest macaroon we decode: far above any real L402 token, small enough to bound work on bad input. */
export const MAX_BYTES = 65_536;

function varintLength(n: number): number {
  let len = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    len++;
  }
  return len;
}

function writeVarint(out: Uint8Array, at: number, n: number): number {
  while (n >= 0x80) {
    out[at++] = (n & 0x7f) | 0x80;
    n = Math.floor(n / 128);
  }
  out[at++] = n;
  return at;
}

/**
 * The V2 binary form, byte for byte what go-macaroon's `MarshalBinary` produces.
 *
 * @example
 * const bytes = Macaroon.encode(mac); // Uint8Array starting 0x02 0x01 0x04 "lsat" 0x02 0x42 …
 */
export function encode(macaroon: Macaroon): Uint8Array {
  const location = utf8(macaroon.location);
  const fields: [number, Uint8Array][] = [];
  if (location.length > 0) fields.push([FIELD_LOCATION, location]);
  fields.push([FIELD_IDENTIFIER, macaroon.identifier]);
  fields.push([FIELD_EOS, new Uint8Array(0)]);
  for (const c of macaroon.caveats) {
    if (c.location !== undefined && c.location.length > 0) fields.push([FIELD_LOCATION, utf8(c.location)]);
    fields.push([FIELD_IDENTIFIER, c.id]);
    if (c.verificationId !== undefined && c.verificationId.length > 0)
      fields.push([FIELD_VID, c.verificationId]);
    fields.push([FIELD_EOS, new Uint8Array(0)]);
  }
  fields.push([FIELD_EOS, new Uint8Array(0)]);
  fields.push([FIELD_SIGNATURE, macaroon.signature]);

  let size = 1;
  for (const [type, data] of fields)
    size += type === FIELD_EOS ? 1 : 1 + varintLength(data.length) + data.length;
  const out = new Uint8Array(size);
  out[0] = 2;
  let at = 1;
  for (const [type, data] of fields) {
    out[at++] = type;
    if (type === FIELD_EOS) continue;
    at = writeVarint(out, at, data.length);
    out.set(data, at);
    at += data.length;
  }
  return out;
}

class Reader {
  at = 0;
  constructor(readonly bytes: Uint8Array) {}
  get done(): boolean {
    return this.at >= this.bytes.length;
  }
  byte(what: string): number {
    const b = this.bytes[this.at];
    if (b === undefined) throw new MacaroonFormatError(`macaroon is truncated: expected ${what}`);
    this.at++;
    return b;
  }
  varint(what: string): number {
    let n = 0;
    let scale = 1;
    for (let i = 0; i < 5; i++) {
      const b = this.byte(what);
      n += (b & 0x7f) * scale;
      if (b < 0x80) return n;
      scale *= 128;
    }
    throw new MacaroonFormatError(`macaroon has an oversized length prefix in ${what}`);
  }
  take(n: number, what: string): Uint8Array {
    if (n > this.bytes.length - this.at) {
      throw new MacaroonFormatError(
        `macaroon is truncated: ${what} claims ${n} bytes, ${this.bytes.length - this.at} remain`,
      );
    }
    const out = this.bytes.subarray(this.at, this.at + n);
    this.at += n;
    return out;
  }
}

type Section = Map<number, Uint8Array>;

/** One V2 section: fields in strictly increasing type order, ended by EOS. */
function readSection(r: Reader, what: string): Section {
  const fields: Section = new Map();
  let last = 0;
  for (;;) {
    const type = r.varint(`a field type in the ${what}`);
    if (type === FIELD_EOS) return fields;
    if (type <= last)
      throw new MacaroonFormatError(`macaroon ${what} has fields out of order (type ${type})`);
    if (type !== FIELD_LOCATION && type !== FIELD_IDENTIFIER && type !== FIELD_VID) {
      throw new MacaroonFormatError(`macaroon ${what} has an unexpected field of type ${type}`);
    }
    last = type;
    fields.set(type, r.take(r.varint(`a field length in the ${what}`), `a field in the ${what}`));
  }
}

function text(bytes: Uint8Array | undefined, what: string): string {
  if (bytes === undefined) return '';
  const s = fromUtf8(bytes);
  if (s === undefined) throw new MacaroonFormatError(`macaroon ${what} is not valid UTF-8`);
  return s;
}

function decodeV2(r: Reader): Macaroon {
  r.byte('the version');
  const header = readSection(r, 'header');
  const identifier = header.get(FIELD_IDENTIFIER);
  if (identifier === undefined || header.has(FIELD_VID)) {
    throw new MacaroonFormatError('macaroon header must hold an identifier and at most a location');
  }
  const caveats: Caveat[] = [];
  for (;;) {
    const section = readSection(r, `caveat ${caveats.length + 1}`);
    if (section.size === 0) break;
    const id = section.get(FIELD_IDENTIFIER);
    if (id === undefined)
      throw new MacaroonFormatError(`macaroon caveat ${caveats.length + 1} has no identifier`);
    const vid = section.get(FIELD_VID);
    const loc = section.get(FIELD_LOCATION);
    caveats.push({
      id: id.slice(),
      ...(vid !== undefined ? { verificationId: vid.slice() } : {}),
      ...(loc !== undefined ? { location: text(loc, `caveat ${caveats.length + 1} location`) } : {}),
    });
  }
  if (r.varint('the signature field') !== FIELD_SIGNATURE) {
    throw new MacaroonFormatError('macaroon has no signature after its caveats');
  }
  const signature = r.take(r.varint('the signature length'), 'the signature');
  if (signature.length !== 32) {
    throw new MacaroonFormatError(`macaroon signature is ${signature.length} bytes, expected 32`);
  }
  return {
    location: text(header.get(FIELD_LOCATION), 'location'),
    identifier: identifier.slice(),
    caveats,
    signature: signature.slice(),
  };
}

// ---------------------------------------------------------------------------------------------------
// V1 binary (libmacaroons): packets of 4 hex digits of length, "key value\n".

function decodeV1(r: Reader): Macaroon {
  const packets: [string, Uint8Array][] = [];
  while (!r.done) {
    const head = r.take(4, 'a V1 packet length');
    const len = Number.parseInt(String.fromCharCode(...head), 16);
    if (!/^[0-9a-fA-F]{4}$/.test(String.fromCharCode(...head)) || len < 6) {
      throw new MacaroonFormatError('macaroon V1 packet has a bad length header');
    }
    const body = r.take(len - 4, 'a V1 packet');
    if (body[body.length - 1] !== 0x0a)
      throw new MacaroonFormatError('macaroon V1 packet does not end in a newline');
    const space = body.indexOf(0x20);
    if (space <= 0) throw new MacaroonFormatError('macaroon V1 packet has no key');
    packets.push([String.fromCharCode(...body.subarray(0, space)), body.slice(space + 1, body.length - 1)]);
  }
  let i = 0;
  const next = (key: string, optional = false): Uint8Array | undefined => {
    const p = packets[i];
    if (p !== undefined && p[0] === key) {
      i++;
      return p[1];
    }
    if (!optional) throw new MacaroonFormatError(`macaroon V1 is missing its ${key} packet`);
    return undefined;
  };
  const location = text(next('location', true), 'location');
  const identifier = next('identifier') as Uint8Array;
  const caveats: Caveat[] = [];
  while (packets[i]?.[0] === 'cid') {
    const id = next('cid') as Uint8Array;
    const vid = next('vid', true);
    const cl = next('cl', true);
    caveats.push({
      id,
      ...(vid !== undefined ? { verificationId: vid } : {}),
      ...(cl !== undefined ? { location: text(cl, 'caveat location') } : {}),
    });
  }
  const signature = next('signature') as Uint8Array;
  if (i !== packets.length)
    throw new MacaroonFormatError(`macaroon V1 has an unexpected ${packets[i]?.[0]} packet`);
  if (signature.length !== 32) {
    throw new MacaroonFormatError(`macaroon signature is ${signature.length} bytes, expected 32`);
  }
  return { location, identifier, caveats, signature };
}

const isHexDigit = (b: number) =>
  (b >= 0x30 && b <= 0x39) || (b >= 0x61 && b <= 0x66) || (b >= 0x41 && b <= 0x46);

/**
 * Decodes one macaroon from bytes (V2 binary, V1 binary) or from text: base64 in either alphabet,
 * padded or not, of either binary form, or V2 JSON. Trailing bytes after one V2 macaroon are an error.
 * Throws {@link MacaroonFormatError} or {@link EncodingError}, never anything else.
 *
 * @example
 * const mac = Macaroon.decode('AgEEbHNhdAJCAAA…');
 */
export function decode(input: Uint8Array | string): Macaroon {
  if (typeof input === 'string') {
    const trimmed = input.trim();
    if (trimmed.startsWith('{')) return fromJSON(trimmed);
    if (trimmed.length > (MAX_BYTES * 4) / 3 + 4) throw new MacaroonFormatError('macaroon is too large');
    return decode(bytes.fromBase64(trimmed, 'macaroon'));
  }
  if (input.length > MAX_BYTES) throw new MacaroonFormatError(`macaroon is larger than ${MAX_BYTES} bytes`);
  const first = input[0];
  if (first === undefined) throw new MacaroonFormatError('macaroon is empty');
  const r = new Reader(input);
  if (first === 2) {
    const mac = decodeV2(r);
    if (!r.done) throw new MacaroonFormatError(`macaroon has ${input.length - r.at} trailing bytes`);
    return mac;
  }
  if (isHexDigit(first)) return decodeV1(r);
  if (first === 0x7b) {
    const json = fromUtf8(input);
    if (json !== undefined) return fromJSON(json);
  }
  throw new MacaroonFormatError(
    `macaroon has unknown format (first byte 0x${first.toString(16).padStart(2, '0')})`,
  );
}

/** Decodes the hex form carried by Aperture's `Macaroon` and `Grpc-Metadata-Macaroon` headers. */
export function fromHex(hex: string): Macaroon {
  if (hex.length > MAX_BYTES * 2) throw new MacaroonFormatError('macaroon is too large');
  return decode(bytes.fromHex(hex.trim(), 'macaroon'));
}

/** Lower-case hex of the V2 binary form, for `Macaroon` / `Grpc-Metadata-Macaroon` headers and gRPC metadata. */
export function toHex(macaroon: Macaroon): string {
  return bytes.toHex(encode(macaroon));
}

/** Standard padded base64 of the V2 binary form: what Aperture puts in challenges and credentials. */
export function toBase64(macaroon: Macaroon): string {
  return bytes.toBase64(encode(macaroon));
}

// ---------------------------------------------------------------------------------------------------
// V2 JSON (go-macaroon macaroonJSONV2): text fields when UTF-8, else `*64` fields in unpadded URL base64.

/** The V2 JSON object, as go-macaroon's `MarshalJSON` writes it for a V2 macaroon. */
export interface Json {
  v: 2;
  l?: string;
  i?: string;
  i64?: string;
  c?: { i?: string; i64?: string; v?: string; v64?: string; l?: string }[];
  s64: string;
}

function putBinary<K extends string>(key: K, value: Uint8Array): Record<string, string> {
  const s = fromUtf8(value);
  return s !== undefined ? { [key]: s } : { [`${key}64`]: bytes.toBase64Url(value) };
}

/**
 * The V2 JSON form.
 *
 * @example
 * JSON.stringify(Macaroon.toJSON(mac)); // {"v":2,"l":"lsat","i64":"AAC…","c":[{"i":"services=a:0"}],"s64":"…"}
 */
export function toJSON(macaroon: Macaroon): Json {
  const json: Json = { v: 2, s64: '' };
  if (macaroon.location.length > 0) json.l = macaroon.location;
  Object.assign(json, putBinary('i', macaroon.identifier));
  if (macaroon.caveats.length > 0) {
    json.c = macaroon.caveats.map((c) => ({
      ...putBinary('i', c.id),
      ...(c.verificationId !== undefined && c.verificationId.length > 0
        ? putBinary('v', c.verificationId)
        : {}),
      ...(c.location !== undefined && c.location.length > 0 ? { l: c.location } : {}),
    }));
  }
  json.s64 = bytes.toBase64Url(macaroon.signature);
  // Key order as go-macaroon: v, l, i/i64, c, s64.
  const { v, l, i, i64, c, s64 } = json;
  return {
    v,
    ...(l !== undefined ? { l } : {}),
    ...(i !== undefined ? { i } : { i64 }),
    ...(c ? { c } : {}),
    s64,
  };
}

function getBinary(
  obj: Record<string, unknown>,
  key: string,
  what: string,
  required: boolean,
): Uint8Array | undefined {
  const plain = obj[key];
  const b64 = obj[`${key}64`];
  if (plain !== undefined && b64 !== undefined) {
    throw new MacaroonFormatError(`macaroon JSON has both ${key} and ${key}64 for the ${what}`);
  }
  if (typeof plain === 'string') return utf8(plain);
  if (typeof b64 === 'string') return bytes.fromBase64(b64, `macaroon JSON ${what}`);
  if (plain !== undefined || b64 !== undefined)
    throw new MacaroonFormatError(`macaroon JSON ${what} is not a string`);
  if (required) throw new MacaroonFormatError(`macaroon JSON has no ${what}`);
  return undefined;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Decodes V2 JSON (an object or its text). Base64 fields may use either alphabet, padded or not, as
 * go-macaroon accepts.
 */
export function fromJSON(json: string | unknown): Macaroon {
  let obj: unknown = json;
  if (typeof json === 'string') {
    if (json.length > MAX_BYTES * 2) throw new MacaroonFormatError('macaroon JSON is too large');
    try {
      obj = JSON.parse(json);
    } catch {
      throw new MacaroonFormatError('macaroon JSON is not valid JSON');
    }
  }
  if (!isObject(obj)) throw new MacaroonFormatError('macaroon JSON is not an object');
  if (obj.v !== 2) throw new MacaroonFormatError('macaroon JSON must have "v": 2');
  if (obj.l !== undefined && typeof obj.l !== 'string')
    throw new MacaroonFormatError('macaroon JSON "l" is not a string');
  const identifier = getBinary(obj, 'i', 'identifier', true) as Uint8Array;
  const signature = getBinary(obj, 's', 'signature', true) as Uint8Array;
  if (signature.length !== 32)
    throw new MacaroonFormatError(`macaroon signature is ${signature.length} bytes, expected 32`);
  if (obj.c !== undefined && obj.c !== null && !Array.isArray(obj.c)) {
    throw new MacaroonFormatError('macaroon JSON "c" is not an array');
  }
  const caveats: Caveat[] = ((obj.c ?? []) as unknown[]).map((c, n) => {
    if (!isObject(c)) throw new MacaroonFormatError(`macaroon JSON caveat ${n + 1} is not an object`);
    const id = getBinary(c, 'i', `caveat ${n + 1} identifier`, true) as Uint8Array;
    const vid = getBinary(c, 'v', `caveat ${n + 1} verification id`, false);
    if (c.l !== undefined && typeof c.l !== 'string') {
      throw new MacaroonFormatError(`macaroon JSON caveat ${n + 1} location is not a string`);
    }
    return {
      id,
      ...(vid !== undefined ? { verificationId: vid } : {}),
      ...(typeof c.l === 'string' ? { location: c.l } : {}),
    };
  });
  return { location: typeof obj.l === 'string' ? obj.l : '', identifier, caveats, signature };
}
