/**
 * Nostr for Nostr Wallet Connect: NIP-01 events (id, BIP-340 signature, filters), NIP-44 v2 and NIP-04
 * encryption, and a small NIP-01 relay connection. Both ends of NWC use it: the `nwc` backend here, and
 * the devnet's wallet service and relay.
 *
 * Plain JavaScript on @noble and @scure: nothing here imports a `node:` module. The relay connection
 * needs a WebSocket: pass one, or it takes `globalThis.WebSocket`, or else loads the `ws` package.
 *
 * Failures throw {@link BackendError} (`backend` = `"nostr"` unless told otherwise): a payload that does
 * not decrypt, an invalid key or event is `L402_BACKEND_PROTOCOL`; a relay that cannot be reached or is
 * lost is `L402_BACKEND_UNREACHABLE`; a relay that does not answer in time is `L402_BACKEND_TIMEOUT`.
 *
 * @example
 * import { Nostr } from 'l402/lightning';
 *
 * const relay = await Nostr.connect('ws://127.0.0.1:7000');
 * const event = Nostr.sign({ kind: 1, tags: [], content: 'hello' }, secretKey);
 * await relay.publish(event);
 * const key = Nostr.conversationKey(secretKey, theirPublicKey);
 * const payload = Nostr.nip44Encrypt('{"method":"get_info","params":{}}', key);
 * relay.close();
 */
import { cbc } from '@noble/ciphers/aes.js';
import { chacha20 } from '@noble/ciphers/chacha.js';
import { schnorr, secp256k1 } from '@noble/curves/secp256k1.js';
import { expand, extract } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import * as platform from '#platform';
import { type BackendCode, BackendError } from '../Errors.js';
import { concat, fromBase64, fromHex, fromUtf8, toBase64, toHex, utf8 } from '../internal/bytes.js';

/**
 * A signed Nostr event, as it travels (NIP-01): hex strings, unix seconds.
 *
 * @example
 * const event: Nostr.Event = Nostr.parseEvent(JSON.parse(message)[2]);
 */
export interface Event {
  /** sha256 of {@link serialize}, 32 bytes of lower-case hex. */
  readonly id: string;
  /** The author's x-only public key, 32 bytes of lower-case hex. */
  readonly pubkey: string;
  readonly created_at: number;
  readonly kind: number;
  readonly tags: readonly (readonly string[])[];
  readonly content: string;
  /** BIP-340 signature of `id`, 64 bytes of lower-case hex. */
  readonly sig: string;
}

/**
 * What {@link sign} turns into an {@link Event}.
 *
 * @example
 * const template: Nostr.EventTemplate = { kind: 23194, tags: [['p', walletPubkey]], content: payload };
 */
export interface EventTemplate {
  readonly kind: number;
  readonly tags?: readonly (readonly string[])[];
  readonly content: string;
  /** Unix seconds; now when omitted. */
  readonly created_at?: number;
}

/**
 * A NIP-01 subscription filter. Lists match when any value matches; all given conditions must hold.
 * Tag conditions are `#` plus one letter: `{ '#p': [pubkey] }` matches events with a `p` tag naming it.
 *
 * @example
 * const answers: Nostr.Filter = { kinds: [23195], authors: [walletPubkey], '#e': [request.id] };
 */
export interface Filter {
  readonly ids?: readonly string[];
  readonly authors?: readonly string[];
  readonly kinds?: readonly number[];
  readonly since?: number;
  readonly until?: number;
  /** For the stored events sent before EOSE only: the newest `limit`. */
  readonly limit?: number;
  readonly [tag: `#${string}`]: readonly string[] | undefined;
}

/**
 * The encryption schemes NIP-47 negotiates, by their names in its `encryption` tags.
 *
 * @example
 * const scheme: Nostr.Encryption = offered.includes('nip44_v2') ? 'nip44_v2' : 'nip04';
 */
export type Encryption = 'nip44_v2' | 'nip04';

const HEX32 = /^[0-9a-f]{64}$/;
const HEX64 = /^[0-9a-f]{128}$/;
const TAG_FILTER = /^#[a-zA-Z]$/;

function fail(code: BackendCode, message: string, cause?: unknown, backend = 'nostr'): BackendError {
  return new BackendError(code, backend, message, cause === undefined ? undefined : { cause });
}

const protocol = (message: string, cause?: unknown) => fail('L402_BACKEND_PROTOCOL', message, cause);

function key32(bytes: Uint8Array, what: string): Uint8Array {
  if (!(bytes instanceof Uint8Array) || bytes.length !== 32) throw protocol(`${what} must be 32 bytes`);
  return bytes;
}

/**
 * The x-only public key (32 bytes) of a secret key.
 *
 * @example
 * const pubkey = toHex(Nostr.publicKey(secretKey)); // what goes in an event's `pubkey`
 */
export function publicKey(secretKey: Uint8Array): Uint8Array {
  try {
    return schnorr.getPublicKey(key32(secretKey, 'a secret key'));
  } catch (error) {
    throw error instanceof BackendError ? error : protocol('not a valid secp256k1 secret key', error);
  }
}

/**
 * A new random secret key.
 *
 * @example
 * const clientSecret = Nostr.randomSecretKey();
 */
export function randomSecretKey(): Uint8Array {
  return schnorr.utils.randomSecretKey();
}

/**
 * The bytes an event id hashes: the UTF-8 of `[0,pubkey,created_at,kind,tags,content]` as compact JSON.
 * `JSON.stringify` escapes exactly as NIP-01 requires, as every client in use computes it.
 *
 * @example
 * sha256(Nostr.serialize(event)); // the event's id
 */
export function serialize(event: Omit<Event, 'id' | 'sig'>): Uint8Array {
  return utf8(JSON.stringify([0, event.pubkey, event.created_at, event.kind, event.tags, event.content]));
}

/**
 * The id an event must carry (32 bytes of hex).
 *
 * @example
 * Nostr.eventId(event) === event.id; // true for an intact event
 */
export function eventId(event: Omit<Event, 'id' | 'sig'>): string {
  return toHex(platform.sha256(serialize(event)));
}

/**
 * Signs an event: fills in `pubkey`, `created_at` (now, unless given), `id` and `sig`.
 *
 * @example
 * const event = Nostr.sign({ kind: 23194, tags: [['p', walletPubkey]], content: payload }, clientSecret);
 */
export function sign(template: EventTemplate, secretKey: Uint8Array, now: () => number = Date.now): Event {
  const unsigned = {
    pubkey: toHex(publicKey(secretKey)),
    created_at: template.created_at ?? Math.floor(now() / 1000),
    kind: template.kind,
    tags: (template.tags ?? []).map((tag) => [...tag]),
    content: template.content,
  };
  const id = eventId(unsigned);
  return { id, ...unsigned, sig: toHex(schnorr.sign(fromHex(id), secretKey)) };
}

/**
 * Whether an event is intact: its id hashes its content and its signature is its author's.
 *
 * @example
 * if (!Nostr.verify(event)) return; // forged or altered in transit
 */
export function verify(event: Event): boolean {
  try {
    if (eventId(event) !== event.id) return false;
    return schnorr.verify(fromHex(event.sig), fromHex(event.id), fromHex(event.pubkey));
  } catch {
    return false;
  }
}

const isStringList = (value: unknown): value is string[] =>
  Array.isArray(value) && value.every((item) => typeof item === 'string');

/**
 * Checks that a value (parsed JSON) has the shape of an event and returns it with only the NIP-01
 * fields; throws `L402_BACKEND_PROTOCOL` naming the first field at fault. Does not check the id or
 * signature: {@link verify} does.
 *
 * @example
 * const event = Nostr.parseEvent(JSON.parse(text)[2]);
 */
export function parseEvent(value: unknown): Event {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw protocol('an event must be an object');
  }
  const e = value as Record<string, unknown>;
  if (typeof e.id !== 'string' || !HEX32.test(e.id)) {
    throw protocol('event id must be 32 bytes of lower-case hex');
  }
  if (typeof e.pubkey !== 'string' || !HEX32.test(e.pubkey)) {
    throw protocol('event pubkey must be 32 bytes of lower-case hex');
  }
  if (typeof e.created_at !== 'number' || !Number.isSafeInteger(e.created_at) || e.created_at < 0) {
    throw protocol('event created_at must be a whole number of seconds');
  }
  if (typeof e.kind !== 'number' || !Number.isInteger(e.kind) || e.kind < 0 || e.kind > 65535) {
    throw protocol('event kind must be a whole number from 0 to 65535');
  }
  if (!Array.isArray(e.tags) || !e.tags.every(isStringList)) {
    throw protocol('event tags must be lists of strings');
  }
  if (typeof e.content !== 'string') throw protocol('event content must be a string');
  if (typeof e.sig !== 'string' || !HEX64.test(e.sig)) {
    throw protocol('event sig must be 64 bytes of lower-case hex');
  }
  return {
    id: e.id,
    pubkey: e.pubkey,
    created_at: e.created_at,
    kind: e.kind,
    tags: e.tags as string[][],
    content: e.content,
    sig: e.sig,
  };
}

/**
 * Checks that a value (parsed JSON) is a NIP-01 filter; throws `L402_BACKEND_PROTOCOL` naming the
 * field at fault. Unknown fields are refused, so a filter never matches more than its sender meant.
 *
 * @example
 * const filters = message.slice(2).map(Nostr.parseFilter);
 */
export function parseFilter(value: unknown): Filter {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw protocol('a filter must be an object');
  }
  for (const [key, field] of Object.entries(value)) {
    if (key === 'ids' || key === 'authors') {
      if (!isStringList(field) || !field.every((v) => HEX32.test(v))) {
        throw protocol(`filter ${key} must list 32-byte lower-case hex values`);
      }
    } else if (key === 'kinds') {
      if (!Array.isArray(field) || !field.every((k) => Number.isInteger(k) && k >= 0 && k <= 65535)) {
        throw protocol('filter kinds must list whole numbers from 0 to 65535');
      }
    } else if (key === 'since' || key === 'until' || key === 'limit') {
      if (!Number.isSafeInteger(field) || (field as number) < 0) {
        throw protocol(`filter ${key} must be a whole number ≥ 0`);
      }
    } else if (TAG_FILTER.test(key)) {
      if (!isStringList(field)) throw protocol(`filter ${key} must list strings`);
    } else {
      throw protocol(`filter field ${JSON.stringify(key)} is not supported`);
    }
  }
  return value as Filter;
}

/**
 * Whether an event matches a filter (NIP-01). `limit` is not a condition and is ignored here.
 *
 * @example
 * Nostr.matches({ kinds: [23195], '#e': [request.id] }, event);
 */
export function matches(filter: Filter, event: Event): boolean {
  if (filter.ids && !filter.ids.includes(event.id)) return false;
  if (filter.authors && !filter.authors.includes(event.pubkey)) return false;
  if (filter.kinds && !filter.kinds.includes(event.kind)) return false;
  if (filter.since !== undefined && event.created_at < filter.since) return false;
  if (filter.until !== undefined && event.created_at > filter.until) return false;
  for (const [key, values] of Object.entries(filter)) {
    if (!TAG_FILTER.test(key) || values === undefined) continue;
    const name = key.slice(1);
    // Only a tag's first value is indexed (NIP-01).
    if (!event.tags.some((tag) => tag[0] === name && tag[1] !== undefined && values.includes(tag[1]))) {
      return false;
    }
  }
  return true;
}

/** The x coordinate of secretKey · P, where P is the even-y point of the x-only `publicKey`. */
function sharedX(secretKey: Uint8Array, publicKey: Uint8Array): Uint8Array {
  key32(secretKey, 'a secret key');
  key32(publicKey, 'a public key');
  try {
    return secp256k1.getSharedSecret(secretKey, concat(Uint8Array.of(2), publicKey)).subarray(1);
  } catch (error) {
    throw protocol(
      'not a valid secp256k1 key pair for ECDH (secret out of range or public key off the curve)',
      error,
    );
  }
}

// ---------------------------------------------------------------------------------------------------
// NIP-44 v2

const NIP44_SALT = utf8('nip44-v2');
const NIP44_VERSION = 2;
/** Lengths from here on carry a 6-byte prefix (two zero bytes, then a u32): nostr-protocol/nips#1907. */
const EXTENDED_PREFIX_THRESHOLD = 65536;
const MAX_PLAINTEXT = 0xffffffff;

/**
 * The NIP-44 v2 conversation key of two parties: HKDF-extract(salt "nip44-v2", ECDH x). The same from
 * either side: `conversationKey(a, B)` equals `conversationKey(b, A)`.
 *
 * @example
 * const key = Nostr.conversationKey(clientSecret, walletPubkey);
 */
export function conversationKey(secretKey: Uint8Array, publicKey: Uint8Array): Uint8Array {
  return extract(sha256, sharedX(secretKey, publicKey), NIP44_SALT);
}

/**
 * The per-message keys of NIP-44 v2: HKDF-expand(conversation key, info = nonce, 76 bytes), split.
 *
 * @example
 * const { chachaKey, chachaNonce, hmacKey } = Nostr.messageKeys(key, nonce);
 */
export function messageKeys(
  conversationKey: Uint8Array,
  nonce: Uint8Array,
): { chachaKey: Uint8Array; chachaNonce: Uint8Array; hmacKey: Uint8Array } {
  key32(conversationKey, 'a conversation key');
  key32(nonce, 'a NIP-44 nonce');
  const keys = expand(sha256, conversationKey, nonce, 76);
  return { chachaKey: keys.slice(0, 32), chachaNonce: keys.slice(32, 44), hmacKey: keys.slice(44, 76) };
}

/**
 * How long NIP-44 pads a plaintext of `length` bytes: 32 at least, then in chunks of 32 up to 256 and
 * of an eighth of the next power of two above that, so the ciphertext length leaks little.
 *
 * @example
 * Nostr.paddedLength(33); // 64
 */
export function paddedLength(length: number): number {
  if (!Number.isSafeInteger(length) || length < 1) {
    throw protocol('a NIP-44 plaintext must be at least 1 byte');
  }
  if (length <= 32) return 32;
  // 2 ** bit length of (length - 1): clz32 is exact where log2 may round, and ** cannot overflow as << does.
  const nextPower = 2 ** (32 - Math.clz32(length - 1));
  const chunk = nextPower <= 256 ? 32 : nextPower / 8;
  return chunk * (Math.floor((length - 1) / chunk) + 1);
}

function pad(plaintext: string): Uint8Array {
  const bytes = utf8(plaintext);
  const length = bytes.length;
  if (length < 1 || length > MAX_PLAINTEXT) {
    throw protocol(`a NIP-44 plaintext must be 1 to ${MAX_PLAINTEXT} bytes, not ${length}`);
  }
  const prefix = length < EXTENDED_PREFIX_THRESHOLD ? 2 : 6;
  const padded = new Uint8Array(prefix + paddedLength(length));
  const view = new DataView(padded.buffer);
  if (prefix === 2) view.setUint16(0, length);
  else view.setUint32(2, length);
  padded.set(bytes, prefix);
  return padded;
}

function unpad(padded: Uint8Array): string {
  const view = new DataView(padded.buffer, padded.byteOffset, padded.byteLength);
  if (padded.length < 2) throw protocol('NIP-44 payload has invalid padding');
  const short = view.getUint16(0);
  const extended = short === 0;
  if (extended && padded.length < 6) throw protocol('NIP-44 payload has invalid padding');
  const length = extended ? view.getUint32(2) : short;
  const prefix = extended ? 6 : 2;
  if (
    length === 0 ||
    (extended && length < EXTENDED_PREFIX_THRESHOLD) ||
    padded.length !== prefix + paddedLength(length)
  ) {
    throw protocol('NIP-44 payload has invalid padding');
  }
  const text = fromUtf8(padded.subarray(prefix, prefix + length));
  if (text === undefined) throw protocol('NIP-44 plaintext is not valid UTF-8');
  return text;
}

function mac(hmacKey: Uint8Array, nonce: Uint8Array, ciphertext: Uint8Array): Uint8Array {
  return platform.hmacSha256(hmacKey, concat(nonce, ciphertext));
}

/**
 * Encrypts with NIP-44 v2: pad, ChaCha20, HMAC-SHA256 over nonce ‖ ciphertext, base64 of
 * `2 ‖ nonce ‖ ciphertext ‖ mac`. The nonce is random unless given (test vectors give one; never reuse).
 *
 * @example
 * const payload = Nostr.nip44Encrypt(JSON.stringify(request), Nostr.conversationKey(secret, walletPubkey));
 */
export function nip44Encrypt(
  plaintext: string,
  conversationKey: Uint8Array,
  nonce: Uint8Array = platform.randomBytes(32),
): string {
  const { chachaKey, chachaNonce, hmacKey } = messageKeys(conversationKey, nonce);
  const ciphertext = chacha20(chachaKey, chachaNonce, pad(plaintext));
  return toBase64(concat(Uint8Array.of(NIP44_VERSION), nonce, ciphertext, mac(hmacKey, nonce, ciphertext)));
}

/**
 * Decrypts a NIP-44 v2 payload; throws `L402_BACKEND_PROTOCOL` for an unknown version, bad base64, a
 * MAC that does not match (checked in constant time, before decrypting) or bad padding.
 *
 * @example
 * const request = JSON.parse(Nostr.nip44Decrypt(event.content, Nostr.conversationKey(walletSecret, clientPubkey)));
 */
export function nip44Decrypt(payload: string, conversationKey: Uint8Array): string {
  if (typeof payload !== 'string' || payload.length === 0 || payload[0] === '#') {
    throw protocol('unknown NIP-44 encryption version');
  }
  if (payload.length < 132) throw protocol('NIP-44 payload is too short');
  let data: Uint8Array;
  try {
    data = fromBase64(payload, 'NIP-44 payload');
  } catch (error) {
    throw protocol('NIP-44 payload is not valid base64', error);
  }
  if (data.length < 99) throw protocol('NIP-44 payload is too short');
  if (data[0] !== NIP44_VERSION) throw protocol(`unknown NIP-44 encryption version ${data[0]}`);
  const nonce = data.subarray(1, 33);
  const ciphertext = data.subarray(33, data.length - 32);
  const { chachaKey, chachaNonce, hmacKey } = messageKeys(conversationKey, nonce);
  if (!platform.constantTimeEqual(mac(hmacKey, nonce, ciphertext), data.subarray(data.length - 32))) {
    throw protocol('NIP-44 payload has an invalid MAC (wrong key, or altered in transit)');
  }
  return unpad(chacha20(chachaKey, chachaNonce, ciphertext));
}

// ---------------------------------------------------------------------------------------------------
// NIP-04 (deprecated; NWC keeps it for wallets and clients that predate NIP-44)

/**
 * Encrypts with NIP-04: AES-256-CBC (PKCS#7) keyed by the unhashed ECDH x coordinate, as
 * `base64(ciphertext) + "?iv=" + base64(iv)`. The IV is random unless given.
 *
 * @example
 * const content = Nostr.nip04Encrypt('{"method":"get_balance","params":{}}', clientSecret, walletPubkey);
 */
export function nip04Encrypt(
  plaintext: string,
  secretKey: Uint8Array,
  publicKey: Uint8Array,
  iv: Uint8Array = platform.randomBytes(16),
): string {
  if (!(iv instanceof Uint8Array) || iv.length !== 16) throw protocol('a NIP-04 IV must be 16 bytes');
  const ciphertext = cbc(sharedX(secretKey, publicKey), iv).encrypt(utf8(plaintext));
  return `${toBase64(ciphertext)}?iv=${toBase64(iv)}`;
}

/**
 * Decrypts NIP-04 content; throws `L402_BACKEND_PROTOCOL` when it is malformed or does not decrypt
 * (NIP-04 has no MAC: a wrong key shows only as bad padding or text that is not UTF-8, or not at all).
 *
 * @example
 * const text = Nostr.nip04Decrypt(event.content, walletSecret, clientPubkey);
 */
export function nip04Decrypt(content: string, secretKey: Uint8Array, publicKey: Uint8Array): string {
  const match =
    typeof content === 'string' ? /^([A-Za-z0-9+/=]+)\?iv=([A-Za-z0-9+/=]+)$/.exec(content) : null;
  if (!match) throw protocol('NIP-04 content must be base64 ciphertext followed by ?iv= and a base64 IV');
  let ciphertext: Uint8Array;
  let iv: Uint8Array;
  try {
    ciphertext = fromBase64(match[1]!, 'NIP-04 ciphertext');
    iv = fromBase64(match[2]!, 'NIP-04 IV');
  } catch (error) {
    throw protocol('NIP-04 content is not valid base64', error);
  }
  if (iv.length !== 16 || ciphertext.length === 0 || ciphertext.length % 16 !== 0) {
    throw protocol('NIP-04 content has a malformed IV or ciphertext length');
  }
  const key = sharedX(secretKey, publicKey);
  let plain: Uint8Array;
  try {
    plain = cbc(key, iv).decrypt(ciphertext);
  } catch (error) {
    throw protocol('NIP-04 content does not decrypt (wrong key, or altered in transit)', error);
  }
  const text = fromUtf8(plain);
  if (text === undefined) throw protocol('NIP-04 content does not decrypt to UTF-8 (wrong key?)');
  return text;
}

/**
 * Encrypts for `publicKey` with the scheme NIP-47 negotiated.
 *
 * @example
 * const content = Nostr.encrypt('nip44_v2', JSON.stringify(response), walletSecret, clientPubkey);
 */
export function encrypt(
  scheme: Encryption,
  plaintext: string,
  secretKey: Uint8Array,
  publicKey: Uint8Array,
): string {
  return scheme === 'nip44_v2'
    ? nip44Encrypt(plaintext, conversationKey(secretKey, publicKey))
    : nip04Encrypt(plaintext, secretKey, publicKey);
}

/**
 * Decrypts what `publicKey` encrypted for us with the scheme NIP-47 negotiated.
 *
 * @example
 * const request = JSON.parse(Nostr.decrypt('nip04', event.content, walletSecret, clientPubkey));
 */
export function decrypt(
  scheme: Encryption,
  payload: string,
  secretKey: Uint8Array,
  publicKey: Uint8Array,
): string {
  return scheme === 'nip44_v2'
    ? nip44Decrypt(payload, conversationKey(secretKey, publicKey))
    : nip04Decrypt(payload, secretKey, publicKey);
}

// ---------------------------------------------------------------------------------------------------
// Relay connection (NIP-01, client side)

/**
 * The part of the WHATWG WebSocket this module uses: browsers', Node 22's global, and the `ws`
 * package's all fit.
 *
 * @example
 * const socket: Nostr.WebSocketLike = new WebSocket('ws://127.0.0.1:7000');
 */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: 'open' | 'error', listener: () => void): void;
  addEventListener(type: 'message', listener: (event: { data: unknown }) => void): void;
  addEventListener(type: 'close', listener: (event: { code: number; reason: string }) => void): void;
}

/**
 * A WebSocket class, such as `globalThis.WebSocket` or the `ws` package's `WebSocket`.
 *
 * @example
 * import { WebSocket } from 'ws';
 * const relay = await Nostr.connect(url, { WebSocket });
 */
export type WebSocketConstructor = new (url: string) => WebSocketLike;

/**
 * How {@link connect} opens its WebSocket.
 *
 * @example
 * const options: Nostr.ConnectOptions = { timeoutMs: 5_000, name: 'nwc' };
 */
export interface ConnectOptions {
  /** The WebSocket class to use; `globalThis.WebSocket` when omitted, else the `ws` package's. */
  readonly WebSocket?: WebSocketConstructor;
  /** How long to wait for the connection to open. Defaults to 10 000. */
  readonly timeoutMs?: number;
  /** The `backend` named in errors. Defaults to `"nostr"`. */
  readonly name?: string;
}

/**
 * What a subscription reports.
 *
 * @example
 * const handlers: Nostr.SubscriptionHandlers = { event: (e) => seen.push(e), closed: (why) => console.warn(why) };
 */
export interface SubscriptionHandlers {
  /** Each event that matches, intact (id and signature checked): stored ones first, then live ones. */
  readonly event: (event: Event) => void;
  /** The relay ended the subscription (CLOSED), or the connection was lost. */
  readonly closed?: (reason: string) => void;
}

/**
 * A live subscription.
 *
 * @example
 * const sub = relay.subscribe([{ kinds: [13194], limit: 1 }], { event: console.log });
 * await sub.stored;
 * sub.close();
 */
export interface Subscription {
  readonly id: string;
  /** Resolves at EOSE (the stored events have all been delivered); rejects if the relay refuses. */
  readonly stored: Promise<void>;
  /** Sends CLOSE; no more events are delivered. */
  close(): void;
}

const OPEN = 1;

/**
 * The WebSocket class to use: the one given, else the platform's, else the `ws` package, loaded only
 * when needed so browsers and edge runtimes never see it.
 */
async function webSocketClass(
  given: WebSocketConstructor | undefined,
  name: string,
): Promise<WebSocketConstructor> {
  if (given) return given;
  const global = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (global) return global;
  // A computed specifier keeps bundlers from trying to resolve `ws` for browser builds.
  const specifier = 'ws';
  try {
    const module = await import(specifier);
    return (module.WebSocket ?? module.default) as WebSocketConstructor;
  } catch (error) {
    throw fail(
      'L402_BACKEND_CONFIG',
      'this runtime has no WebSocket: install the "ws" package or pass options.WebSocket',
      error,
      name,
    );
  }
}

/**
 * An open connection to one relay. Create one with {@link connect}.
 *
 * @example
 * const relay: Nostr.Connection = await Nostr.connect('ws://127.0.0.1:7000');
 */
export class Connection {
  readonly url: string;
  private readonly socket: WebSocketLike;
  private readonly name: string;
  private readonly subscriptions = new Map<
    string,
    {
      filters: readonly Filter[];
      handlers: SubscriptionHandlers;
      eose: () => void;
      refuse: (e: Error) => void;
    }
  >();
  private readonly publishing = new Map<
    string,
    { resolve: (message: string) => void; reject: (e: Error) => void }
  >();
  private readonly closeListeners = new Set<(reason: string) => void>();
  private nextId = 0;
  private lost: string | undefined;

  private constructor(url: string, socket: WebSocketLike, name: string) {
    this.url = url;
    this.socket = socket;
    this.name = name;
    socket.addEventListener('message', (event) => this.receive(event.data));
    socket.addEventListener('close', (event) => this.drop(`connection to ${url} closed (${event.code})`));
    socket.addEventListener('error', () => this.drop(`connection to ${url} failed`));
  }

  /**
   * Opens a WebSocket to a relay; throws `L402_BACKEND_UNREACHABLE` if it cannot, or does not within
   * `timeoutMs`.
   *
   * @example
   * const relay = await Nostr.Connection.open('ws://127.0.0.1:7000', { WebSocket });
   */
  static async open(url: string, options: ConnectOptions = {}): Promise<Connection> {
    const name = options.name ?? 'nostr';
    const WebSocketClass = await webSocketClass(options.WebSocket, name);
    const timeoutMs = options.timeoutMs ?? 10_000;
    let socket: WebSocketLike;
    try {
      socket = new WebSocketClass(url);
    } catch (error) {
      throw fail('L402_BACKEND_CONFIG', `cannot open a WebSocket to ${JSON.stringify(url)}`, error, name);
    }
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(
          fail(
            'L402_BACKEND_UNREACHABLE',
            `relay ${url} did not accept a connection within ${timeoutMs} ms`,
            undefined,
            name,
          ),
        );
        socket.close();
      }, timeoutMs);
      socket.addEventListener('open', () => {
        clearTimeout(timer);
        resolve();
      });
      const refused = () => {
        clearTimeout(timer);
        reject(fail('L402_BACKEND_UNREACHABLE', `cannot connect to relay ${url}`, undefined, name));
      };
      socket.addEventListener('error', refused);
      socket.addEventListener('close', refused);
    });
    return new Connection(url, socket, name);
  }

  /** Whether the connection is still open. */
  get isOpen(): boolean {
    return this.lost === undefined && this.socket.readyState === OPEN;
  }

  /**
   * Sends an event and resolves with the relay's OK message once it accepts it. Rejects with
   * `L402_BACKEND_PROTOCOL` when the relay refuses it (OK false, with the relay's reason),
   * `L402_BACKEND_TIMEOUT` when no OK comes within `timeoutMs`, `L402_BACKEND_UNREACHABLE` when the
   * connection is lost.
   *
   * @example
   * await relay.publish(Nostr.sign({ kind: 13194, tags: [], content: 'get_info' }, walletSecret));
   */
  publish(event: Event, options: { timeoutMs?: number } = {}): Promise<string> {
    const timeoutMs = options.timeoutMs ?? 10_000;
    return new Promise((resolve, reject) => {
      if (!this.isOpen) return reject(this.unreachable());
      const timer = setTimeout(() => {
        this.publishing.delete(event.id);
        reject(
          fail(
            'L402_BACKEND_TIMEOUT',
            `relay ${this.url} did not acknowledge an event within ${timeoutMs} ms`,
            undefined,
            this.name,
          ),
        );
      }, timeoutMs);
      this.publishing.set(event.id, {
        resolve: (message) => {
          clearTimeout(timer);
          resolve(message);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
      this.socket.send(JSON.stringify(['EVENT', event]));
    });
  }

  /**
   * Subscribes with NIP-01 filters. Events that do not match them, or whose id or signature is wrong,
   * are dropped: a relay is not trusted to filter or to relay faithfully.
   *
   * @example
   * const sub = relay.subscribe([{ kinds: [23195], '#e': [request.id] }], { event: (e) => answered(e) });
   * await sub.stored;
   */
  subscribe(filters: readonly Filter[], handlers: SubscriptionHandlers): Subscription {
    const id = `s${++this.nextId}`;
    let eose!: () => void;
    let refuse!: (error: Error) => void;
    const stored = new Promise<void>((resolve, reject) => {
      eose = resolve;
      refuse = reject;
    });
    // Callers that never await `stored` must not see an unhandled rejection when the relay refuses.
    stored.catch(() => {});
    if (!this.isOpen) {
      refuse(this.unreachable());
    } else {
      this.subscriptions.set(id, { filters, handlers, eose, refuse });
      this.socket.send(JSON.stringify(['REQ', id, ...filters]));
    }
    return {
      id,
      stored,
      close: () => {
        if (this.subscriptions.delete(id) && this.isOpen) this.socket.send(JSON.stringify(['CLOSE', id]));
      },
    };
  }

  /**
   * Calls `listener` once when the connection is lost or closed. Returns the function that unsubscribes.
   *
   * @example
   * relay.onClose((reason) => console.warn(reason));
   */
  onClose(listener: (reason: string) => void): () => void {
    if (this.lost !== undefined) {
      listener(this.lost);
      return () => {};
    }
    this.closeListeners.add(listener);
    return () => this.closeListeners.delete(listener);
  }

  /**
   * Closes the connection; pending publishes and subscriptions end as if it were lost.
   *
   * @example
   * relay.close();
   */
  close(): void {
    this.drop('connection closed by this client');
    this.socket.close();
  }

  private unreachable(): BackendError {
    return fail(
      'L402_BACKEND_UNREACHABLE',
      this.lost ?? `not connected to relay ${this.url}`,
      undefined,
      this.name,
    );
  }

  private drop(reason: string): void {
    if (this.lost !== undefined) return;
    this.lost = reason;
    const error = this.unreachable();
    for (const pending of this.publishing.values()) pending.reject(error);
    this.publishing.clear();
    const subscriptions = [...this.subscriptions.values()];
    this.subscriptions.clear();
    for (const sub of subscriptions) {
      sub.refuse(error);
      sub.handlers.closed?.(reason);
    }
    for (const listener of this.closeListeners) listener(reason);
    this.closeListeners.clear();
  }

  private receive(data: unknown): void {
    let message: unknown;
    try {
      message = JSON.parse(typeof data === 'string' ? data : new TextDecoder().decode(data as Uint8Array));
    } catch {
      return; // Not JSON: nothing a relay may send, and nothing to act on.
    }
    if (!Array.isArray(message)) return;
    const [type, first, second, third] = message as unknown[];
    if (type === 'EVENT' && typeof first === 'string') {
      const sub = this.subscriptions.get(first);
      if (!sub) return;
      let event: Event;
      try {
        event = parseEvent(second);
      } catch {
        return;
      }
      if (!sub.filters.some((filter) => matches(filter, event)) || !verify(event)) return;
      sub.handlers.event(event);
    } else if (type === 'OK' && typeof first === 'string') {
      const pending = this.publishing.get(first);
      if (!pending) return;
      this.publishing.delete(first);
      const reason = typeof third === 'string' ? third : '';
      if (second === true) pending.resolve(reason);
      else
        pending.reject(
          fail(
            'L402_BACKEND_PROTOCOL',
            `relay ${this.url} refused an event: ${reason || 'no reason given'}`,
            undefined,
            this.name,
          ),
        );
    } else if (type === 'EOSE' && typeof first === 'string') {
      this.subscriptions.get(first)?.eose();
    } else if (type === 'CLOSED' && typeof first === 'string') {
      const sub = this.subscriptions.get(first);
      if (!sub) return;
      this.subscriptions.delete(first);
      const reason = typeof second === 'string' ? second : 'no reason given';
      sub.refuse(
        fail(
          'L402_BACKEND_PROTOCOL',
          `relay ${this.url} closed a subscription: ${reason}`,
          undefined,
          this.name,
        ),
      );
      sub.handlers.closed?.(reason);
    }
    // NOTICE is for humans; AUTH and others are extensions this client does not use.
  }
}

/**
 * Opens a connection to a relay (see {@link Connection.open}).
 *
 * @example
 * const relay = await Nostr.connect('ws://127.0.0.1:7000');
 * const sub = relay.subscribe([{ kinds: [13194], authors: [walletPubkey], limit: 1 }], { event: console.log });
 * await sub.stored;
 * relay.close();
 */
export function connect(url: string, options: ConnectOptions = {}): Promise<Connection> {
  return Connection.open(url, options);
}
