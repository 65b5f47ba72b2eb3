/**
 * BOLT 11 Lightning invoices: decode (checksum, signature and network checked) and encode (signed), in
 * plain JavaScript with no native dependency, so the same code runs in Node, browsers and edge runtimes.
 *
 * @example
 * const invoice = Invoice.decode(offer.invoice, { network: 'mainnet' });
 * if (invoice.amountMsat === undefined || invoice.amountMsat > budgetMsat) throw new Error('refusing to pay');
 * if (Invoice.isExpired(invoice)) throw new Error('invoice expired, ask the server for a new one');
 * toHex(invoice.paymentHash); // must equal the payment hash in the L402 macaroon identifier
 */
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { bech32 } from '@scure/base';
import * as platform from '#platform';
import { InvoiceError } from './Errors.js';
import { concat, equalBytes, utf8 } from './internal/bytes.js';

/**
 * The chain an invoice is for, read from its prefix: `lnbc` mainnet, `lntb` testnet, `lntbs` signet,
 * `lnbcrt` regtest, `lnsb` simnet.
 *
 * @example
 * const network: Invoice.Network = 'regtest'; // invoices start "lnbcrt"
 */
export type Network = 'mainnet' | 'testnet' | 'signet' | 'regtest' | 'simnet';

/**
 * An on-chain fallback address (tag `f`), raw: `version` 0–16 is a segwit version with its witness
 * program, 17 a P2PKH and 18 a P2SH hash (20 bytes).
 *
 * @example
 * const p2wpkh: Invoice.FallbackAddress = { version: 0, data: fromHex('751e76e8199196d454941c45d1b3a323f1433bd6') };
 */
export interface FallbackAddress {
  version: number;
  data: Uint8Array;
}

/**
 * One hop of a private route hint (tag `r`): the channel from `pubkey` towards the payee.
 *
 * @example
 * const hop: Invoice.RouteHop = {
 *   pubkey, shortChannelId: '66051x263430x1800', feeBaseMsat: 1, feeProportionalMillionths: 20, cltvExpiryDelta: 3,
 * };
 */
export interface RouteHop {
  /** 33-byte compressed node key. */
  pubkey: Uint8Array;
  /** `BLOCKxTXxOUTPUT`, as Lightning implementations print it. */
  shortChannelId: string;
  feeBaseMsat: number;
  feeProportionalMillionths: number;
  cltvExpiryDelta: number;
}

/**
 * A tag this module does not use, or one the spec says to skip (a `p`, `h`, `s` or `n` of the wrong
 * length, an `f` of unknown version), kept as its 5-bit words so re-encoding writes it back.
 *
 * @example
 * const tag: Invoice.UnknownTag = { type: 10, words: [0, 0, 0] }; // written as "2qrqqq"
 */
export interface UnknownTag {
  type: number;
  words: number[];
}

/**
 * One decoded BOLT 11 invoice whose checksum and signature have been checked.
 *
 * @example
 * const { amountMsat, paymentHash, payeeNodeKey, description } = Invoice.decode(text);
 */
export interface Invoice {
  /** The invoice text, lower-cased, without a `lightning:` prefix. */
  paymentRequest: string;
  network: Network;
  /** `lnbc`, `lntb`, `lntbs`, `lnbcrt` or `lnsb`. */
  prefix: string;
  /** `undefined` when the invoice lets the payer choose the amount. */
  amountMsat: bigint | undefined;
  /** Creation time, unix seconds. */
  timestamp: number;
  /** 32 bytes (tag `p`); an invoice without one is refused. */
  paymentHash: Uint8Array;
  /** 32 bytes (tag `s`). */
  paymentSecret: Uint8Array | undefined;
  /** Tag `d`. */
  description: string | undefined;
  /** SHA-256 of a description given out of band (tag `h`); the payer checks it against that text. */
  descriptionHash: Uint8Array | undefined;
  /** The payee's 33-byte node key: tag `n` when present (the signature is verified against it), else recovered. */
  payeeNodeKey: Uint8Array;
  /** Seconds after `timestamp` during which the invoice can be paid (tag `x`, default 3600). */
  expiry: number;
  /** The `min_final_cltv_expiry_delta` for the last hop (tag `c`, default 18). */
  minFinalCltvExpiry: number;
  fallbackAddresses: FallbackAddress[];
  /** One private route per `r` tag, each a list of hops. */
  routeHints: RouteHop[][];
  /**
   * Tag `9`: the set feature bit positions, and the bit field as BOLT 9 writes feature vectors (big-endian
   * bytes, bit 0 the lowest bit of the last byte). Decoding refuses an unknown even (required) bit.
   */
  features: { bits: number[]; raw: Uint8Array } | undefined;
  /** Tag `m`, to be sent back to the payee in the onion. */
  metadata: Uint8Array | undefined;
  unknownTags: UnknownTag[];
  /** 64 bytes, compact `r || s`. */
  signature: Uint8Array;
  recoveryId: number;
  /**
   * The tags in the order they appeared, as their bech32 letters (`p`, `s`, `d`, …), `?` for each entry of
   * `unknownTags`. {@link encode} follows it, so re-encoding a decoded invoice writes the same text.
   */
  tagOrder: string[];
}

/**
 * What {@link encode} writes. A decoded {@link Invoice} is a valid `EncodeFields`, so an invoice can be
 * re-signed as it is.
 *
 * @example
 * const fields: Invoice.EncodeFields = {
 *   network: 'regtest', amountMsat: 10_000n, timestamp: 1_700_000_000, paymentHash, paymentSecret,
 *   description: 'weather API, one call',
 * };
 */
export interface EncodeFields {
  network: Network;
  /** Omit for an invoice that lets the payer choose; otherwise at least 1 msat. */
  amountMsat?: bigint | undefined;
  /** Unix seconds, below 2^35. */
  timestamp: number;
  /** 32 bytes. */
  paymentHash: Uint8Array;
  /** 32 bytes; every current wallet requires one. */
  paymentSecret?: Uint8Array | undefined;
  /** Exactly one of `description` and `descriptionHash`, as BOLT 11 requires of a writer. */
  description?: string | undefined;
  /** 32 bytes. */
  descriptionHash?: Uint8Array | undefined;
  /** Written only when not the default 3600 (or when `tagOrder` lists `x`). */
  expiry?: number | undefined;
  /** Written only when not the default 18 (or when `tagOrder` lists `c`). */
  minFinalCltvExpiry?: number | undefined;
  fallbackAddresses?: readonly FallbackAddress[] | undefined;
  routeHints?: readonly (readonly RouteHop[])[] | undefined;
  features?: { bits: readonly number[] } | undefined;
  metadata?: Uint8Array | undefined;
  /**
   * Write tag `n`, so payers verify the signature against it instead of recovering the key. Also written
   * when `tagOrder` lists `n`, as it does for a decoded invoice that had one.
   */
  includePayee?: boolean | undefined;
  /** The key tag `n` names; it must be the signing key's, which is the default. */
  payeeNodeKey?: Uint8Array | undefined;
  /** Written verbatim. */
  unknownTags?: readonly UnknownTag[] | undefined;
  /** Tag order as in {@link Invoice.tagOrder}; tags it does not list follow in this module's order. */
  tagOrder?: readonly string[] | undefined;
}

/**
 * The longest invoice accepted or written: 7089 characters, the most any QR code can hold. BOLT 11 sets
 * no limit; longer text cannot have come from a QR code and would only cost time to check.
 *
 * @example
 * if (text.length > Invoice.MAX_LENGTH) console.error('not an invoice');
 */
export const MAX_LENGTH = 7089;

const CHARSET = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l';
const SIGNATURE_WORDS = 104;
const TIMESTAMP_WORDS = 7;
const MAX_TAG_WORDS = 1023;
const HOP_BYTES = 51;
const DEFAULT_EXPIRY = 3600;
const DEFAULT_MIN_FINAL_CLTV_EXPIRY = 18;

const NETWORK_OF_CURRENCY = new Map<string, Network>([
  ['bc', 'mainnet'],
  ['tb', 'testnet'],
  ['tbs', 'signet'],
  ['bcrt', 'regtest'],
  ['sb', 'simnet'],
]);
const PREFIX_OF_NETWORK = new Map<string, string>(
  [...NETWORK_OF_CURRENCY].map(([currency, network]) => [network, `ln${currency}`]),
);

/** Millisatoshis per unit of amount for each multiplier; `p` (0.1 msat) is handled on its own. */
const MSAT_PER_UNIT = new Map<string, bigint>([
  ['', 100_000_000_000n],
  ['m', 100_000_000n],
  ['u', 100_000n],
  ['n', 100n],
]);

/**
 * Feature bits BOLT 9 defines for invoices: var_onion_optin, payment_secret, basic_mpp,
 * option_route_blinding, option_payment_metadata. Any other even bit is a requirement this payer cannot
 * know it meets, and BOLT 11 says to fail the payment.
 */
const KNOWN_FEATURES = new Set([8, 9, 14, 15, 16, 17, 24, 25, 48, 49]);

/** Tags that carry one value; a second copy would leave two readers free to disagree on which counts. */
const SINGLE_TAGS = new Set(['p', 's', 'd', 'h', 'n', 'x', 'c', '9', 'm']);
const TAG_NAMES: Record<string, string> = {
  p: 'payment hash',
  s: 'payment secret',
  d: 'description',
  h: 'description hash',
  n: 'payee node key',
  x: 'expiry',
  c: 'min_final_cltv_expiry',
  '9': 'features',
  m: 'metadata',
};

const formatError = (message: string, cause?: unknown) =>
  new InvoiceError('L402_INVOICE_FORMAT', message, cause === undefined ? undefined : { cause });

// fromUtf8 in internal/bytes drops a leading U+FEFF; in a description it is signed text and must stay.
const descriptionDecoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Reads and checks a BOLT 11 invoice: bech32 checksum, prefix and amount, every tag, and the signature
 * (against tag `n` when present, else by recovering the payee key). A `lightning:` prefix is stripped and
 * an all-upper-case invoice (as in QR codes) is accepted.
 *
 * Throws {@link InvoiceError}: `L402_INVOICE_CHECKSUM` for a mistyped or truncated invoice,
 * `L402_INVOICE_SIGNATURE` when the signature does not hold, `L402_INVOICE_NETWORK` when `options.network`
 * is given and differs, `L402_INVOICE_FORMAT` for anything else malformed or unsupported.
 *
 * @example
 * const invoice = Invoice.decode('lnbc2500u1pvjluezsp5zyg3…', { network: 'mainnet' });
 * invoice.amountMsat; // 250000000n
 */
export function decode(paymentRequest: string, options: { network?: Network } = {}): Invoice {
  if (typeof paymentRequest !== 'string') throw formatError('an invoice must be given as a string');
  const text = /^lightning:/i.test(paymentRequest)
    ? paymentRequest.slice('lightning:'.length)
    : paymentRequest;
  if (text.length > MAX_LENGTH) {
    throw formatError(`invoice is ${text.length} characters long; at most ${MAX_LENGTH} are accepted`);
  }
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 33 || code > 126) {
      throw formatError(`invoice has an invalid character ${JSON.stringify(text[i])} at position ${i}`);
    }
  }
  const lower = text.toLowerCase();
  if (text !== lower && text !== text.toUpperCase()) {
    throw formatError('invoice mixes upper- and lower-case letters; it must be all one case');
  }
  const separator = lower.lastIndexOf('1');
  if (separator < 1) throw formatError('not a BOLT 11 invoice: it has no "1" after its "ln…" prefix');
  const hrp = lower.slice(0, separator);
  const dataPart = lower.slice(separator + 1);
  for (let i = 0; i < dataPart.length; i++) {
    if (!CHARSET.includes(dataPart[i] as string)) {
      throw formatError(
        `invoice has an invalid character ${JSON.stringify(dataPart[i])} at position ${separator + 1 + i} (bech32 has no b, i, o or 1 after the prefix)`,
      );
    }
  }
  if (dataPart.length < 6) throw formatError('invoice is too short to be a BOLT 11 invoice');
  let words: number[];
  try {
    words = bech32.decode(lower, false).words;
  } catch (cause) {
    throw new InvoiceError(
      'L402_INVOICE_CHECKSUM',
      'invoice checksum does not match: it was mistyped, truncated or altered; copy it again',
      { cause },
    );
  }
  const { prefix, network, amountMsat } = parseHrp(hrp);
  if (options.network !== undefined && options.network !== network) {
    throw new InvoiceError(
      'L402_INVOICE_NETWORK',
      `invoice is for ${network} ("${prefix}"), but ${options.network} was expected`,
    );
  }
  if (words.length < TIMESTAMP_WORDS + SIGNATURE_WORDS) {
    throw formatError('invoice is too short to hold a timestamp and a signature');
  }
  const dataWords = words.slice(0, -SIGNATURE_WORDS);
  const fields = parseTags(dataWords.slice(TIMESTAMP_WORDS));
  if (fields.paymentHash === undefined) throw formatError('invoice has no payment hash (tag p)');

  const sigBytes = bech32.fromWords(words.slice(-SIGNATURE_WORDS));
  const signature = sigBytes.slice(0, 64);
  const recoveryId = sigBytes[64] as number;
  const digest = platform.sha256(concat(utf8(hrp), wordsToPaddedBytes(dataWords)));
  const payeeNodeKey = checkSignature(digest, signature, recoveryId, fields.payeeNodeKey);

  return {
    paymentRequest: lower,
    network,
    prefix,
    amountMsat,
    timestamp: readNumber(dataWords.slice(0, TIMESTAMP_WORDS), 'timestamp'),
    paymentHash: fields.paymentHash,
    paymentSecret: fields.paymentSecret,
    description: fields.description,
    descriptionHash: fields.descriptionHash,
    payeeNodeKey,
    expiry: fields.expiry ?? DEFAULT_EXPIRY,
    minFinalCltvExpiry: fields.minFinalCltvExpiry ?? DEFAULT_MIN_FINAL_CLTV_EXPIRY,
    fallbackAddresses: fields.fallbackAddresses,
    routeHints: fields.routeHints,
    features: fields.features,
    metadata: fields.metadata,
    unknownTags: fields.unknownTags,
    signature,
    recoveryId,
    tagOrder: fields.tagOrder,
  };
}

function parseHrp(hrp: string): { prefix: string; network: Network; amountMsat: bigint | undefined } {
  const match = /^ln([a-z]*)(.*)$/.exec(hrp);
  if (match === null) {
    throw formatError(`"${hrp}" is not a Lightning invoice: BOLT 11 invoices start with "ln"`);
  }
  const [, currency = '', amount = ''] = match;
  const network = NETWORK_OF_CURRENCY.get(currency);
  if (network === undefined) {
    throw formatError(
      `unknown invoice prefix "ln${currency}": expected lnbc (mainnet), lntb (testnet), lntbs (signet), lnbcrt (regtest) or lnsb (simnet)`,
    );
  }
  return { prefix: `ln${currency}`, network, amountMsat: amount === '' ? undefined : parseAmount(amount) };
}

function parseAmount(text: string): bigint {
  const match = /^([0-9]+)([munp]?)$/.exec(text);
  if (match === null) {
    throw formatError(
      `invoice amount "${text}" is invalid: expected a number and an optional multiplier m, u, n or p`,
    );
  }
  const [, digits = '', multiplier = ''] = match;
  if (digits.startsWith('0')) {
    throw formatError(`invoice amount "${text}" is invalid: it must be positive, without leading zeros`);
  }
  const value = BigInt(digits);
  if (multiplier !== 'p') return value * (MSAT_PER_UNIT.get(multiplier) as bigint);
  if (value % 10n !== 0n) {
    throw formatError(`invoice amount "${text}" is not a whole number of millisatoshis`);
  }
  return value / 10n;
}

interface ParsedTags {
  paymentHash?: Uint8Array;
  paymentSecret?: Uint8Array;
  description?: string;
  descriptionHash?: Uint8Array;
  payeeNodeKey?: Uint8Array;
  expiry?: number;
  minFinalCltvExpiry?: number;
  fallbackAddresses: FallbackAddress[];
  routeHints: RouteHop[][];
  features?: { bits: number[]; raw: Uint8Array };
  metadata?: Uint8Array;
  unknownTags: UnknownTag[];
  tagOrder: string[];
}

function parseTags(words: readonly number[]): ParsedTags {
  const out: ParsedTags = { fallbackAddresses: [], routeHints: [], unknownTags: [], tagOrder: [] };
  const seen = new Set<string>();
  let at = 0;
  while (at < words.length) {
    if (at + 3 > words.length) throw formatError('invoice ends in the middle of a tag header');
    const type = words[at] as number;
    const length = (words[at + 1] as number) * 32 + (words[at + 2] as number);
    const data = words.slice(at + 3, at + 3 + length);
    if (data.length < length) {
      throw formatError(`invoice tag "${CHARSET[type]}" runs past the end of the invoice`);
    }
    at += 3 + length;
    const letter = CHARSET[type] as string;
    if (!readTag(out, letter, data)) {
      out.unknownTags.push({ type, words: data });
      out.tagOrder.push('?');
      continue;
    }
    if (SINGLE_TAGS.has(letter)) {
      if (seen.has(letter)) {
        throw formatError(`invoice has more than one ${TAG_NAMES[letter]} (tag ${letter}); it is ambiguous`);
      }
      seen.add(letter);
    }
    out.tagOrder.push(letter);
  }
  return out;
}

/** Stores one tag's value; false for a tag BOLT 11 says to skip (unknown, or known with the wrong length). */
function readTag(out: ParsedTags, letter: string, data: number[]): boolean {
  switch (letter) {
    case 'p':
      if (data.length !== 52) return false;
      out.paymentHash = tagBytes(data, 'payment hash (tag p)');
      return true;
    case 's':
      if (data.length !== 52) return false;
      out.paymentSecret = tagBytes(data, 'payment secret (tag s)');
      return true;
    case 'h':
      if (data.length !== 52) return false;
      out.descriptionHash = tagBytes(data, 'description hash (tag h)');
      return true;
    case 'n':
      if (data.length !== 53) return false;
      out.payeeNodeKey = tagBytes(data, 'payee node key (tag n)');
      return true;
    case 'd': {
      const bytes = tagBytes(data, 'description (tag d)');
      try {
        out.description = descriptionDecoder.decode(bytes);
      } catch (cause) {
        throw formatError('invoice description (tag d) is not valid UTF-8', cause);
      }
      return true;
    }
    case 'x':
      out.expiry = readNumber(data, 'expiry (tag x)');
      return true;
    case 'c':
      out.minFinalCltvExpiry = readNumber(data, 'min_final_cltv_expiry (tag c)');
      return true;
    case 'f': {
      const version = data[0];
      if (version === undefined || version > 18) return false;
      out.fallbackAddresses.push({ version, data: tagBytes(data.slice(1), 'fallback address (tag f)') });
      return true;
    }
    case 'r':
      out.routeHints.push(readRoute(tagBytes(data, 'route hint (tag r)')));
      return true;
    case '9':
      out.features = readFeatures(data);
      return true;
    case 'm':
      out.metadata = tagBytes(data, 'payment metadata (tag m)');
      return true;
    default:
      return false;
  }
}

/** A tag's bytes. Writers pad the last byte with zero bits, so any other padding marks a corrupt tag. */
function tagBytes(words: readonly number[], what: string): Uint8Array {
  try {
    return bech32.fromWords([...words]);
  } catch (cause) {
    throw formatError(`invoice ${what} is malformed: its bits do not end on a byte with zero padding`, cause);
  }
}

function readNumber(words: readonly number[], what: string): number {
  let value = 0n;
  for (const word of words) value = (value << 5n) | BigInt(word);
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw formatError(`invoice ${what} is too large`);
  return Number(value);
}

function readRoute(bytes: Uint8Array): RouteHop[] {
  if (bytes.length === 0 || bytes.length % HOP_BYTES !== 0) {
    throw formatError(
      `invoice route hint (tag r) is ${bytes.length} bytes, not a whole number of 51-byte hops`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const hops: RouteHop[] = [];
  for (let at = 0; at < bytes.length; at += HOP_BYTES) {
    const block = view.getUint8(at + 33) * 0x10000 + view.getUint16(at + 34);
    const tx = view.getUint8(at + 36) * 0x10000 + view.getUint16(at + 37);
    hops.push({
      pubkey: bytes.slice(at, at + 33),
      shortChannelId: `${block}x${tx}x${view.getUint16(at + 39)}`,
      feeBaseMsat: view.getUint32(at + 41),
      feeProportionalMillionths: view.getUint32(at + 45),
      cltvExpiryDelta: view.getUint16(at + 49),
    });
  }
  return hops;
}

function readFeatures(words: readonly number[]): { bits: number[]; raw: Uint8Array } {
  const bits: number[] = [];
  for (let i = 0; i < words.length; i++) {
    const word = words[words.length - 1 - i] as number;
    for (let b = 0; b < 5; b++) if (word & (1 << b)) bits.push(i * 5 + b);
  }
  const required = bits.find((bit) => bit % 2 === 0 && !KNOWN_FEATURES.has(bit));
  if (required !== undefined) {
    throw formatError(
      `invoice requires feature bit ${required}, which this library does not know, so it cannot be paid safely; ask the payee for an invoice without it`,
    );
  }
  const raw = new Uint8Array(Math.ceil((words.length * 5) / 8));
  for (const bit of bits) {
    const at = raw.length - 1 - (bit >> 3);
    raw[at] = (raw[at] as number) | (1 << (bit & 7));
  }
  return { bits, raw };
}

/** BOLT 11 signs the data words packed into bytes, the last byte padded with zero bits. */
function wordsToPaddedBytes(words: readonly number[]): Uint8Array {
  const out = new Uint8Array(Math.ceil((words.length * 5) / 8));
  let acc = 0;
  let bits = 0;
  let at = 0;
  for (const word of words) {
    acc = ((acc << 5) | word) & 0xfff;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out[at++] = (acc >> bits) & 0xff;
    }
  }
  if (bits > 0) out[at] = (acc << (8 - bits)) & 0xff;
  return out;
}

/**
 * The payee key the signature proves. With tag `n`, BOLT 11 has the reader verify against it instead of
 * recovering; that check also insists on low-S, as libsecp256k1's verify (used by CLN and LDK) does, so
 * such an invoice is never valid to some payers and not others. Without `n`, recovery is the only check
 * and works for both S forms, so a high-S signature is accepted there. The recovery id is not used with
 * `n`, as the spec says, so it may be wrong there.
 */
function checkSignature(
  digest: Uint8Array,
  signature: Uint8Array,
  recoveryId: number,
  payee: Uint8Array | undefined,
): Uint8Array {
  if (recoveryId > 3) {
    throw new InvoiceError(
      'L402_INVOICE_SIGNATURE',
      `invoice signature has recovery id ${recoveryId}; 0-3 are valid`,
    );
  }
  let sig: ReturnType<typeof secp256k1.Signature.fromBytes>;
  try {
    sig = secp256k1.Signature.fromBytes(signature, 'compact');
  } catch (cause) {
    throw new InvoiceError('L402_INVOICE_SIGNATURE', 'invoice signature is not a valid secp256k1 signature', {
      cause,
    });
  }
  if (payee !== undefined) {
    if (!secp256k1.utils.isValidPublicKey(payee, true)) {
      throw new InvoiceError(
        'L402_INVOICE_SIGNATURE',
        'invoice payee node key (tag n) is not a valid public key',
      );
    }
    if (sig.hasHighS()) {
      throw new InvoiceError(
        'L402_INVOICE_SIGNATURE',
        'invoice signature is not in low-S form, which a signature checked against tag n must be',
      );
    }
    if (!secp256k1.verify(signature, digest, payee, { prehash: false })) {
      throw new InvoiceError(
        'L402_INVOICE_SIGNATURE',
        'invoice signature does not match its payee node key (tag n): it was altered or signed by another node',
      );
    }
    return payee;
  }
  try {
    return sig.addRecoveryBit(recoveryId).recoverPublicKey(digest).toBytes(true);
  } catch (cause) {
    throw new InvoiceError(
      'L402_INVOICE_SIGNATURE',
      'invoice signature is invalid: no payee key can be recovered from it',
      { cause },
    );
  }
}

interface Tag {
  /** The tag's letter, or `?` for an unknown tag, matching {@link Invoice.tagOrder}. */
  key: string;
  type: number;
  words: number[];
}

/**
 * Signs and encodes an invoice. Deterministic (RFC 6979 nonces, low-S, like libsecp256k1): the same
 * fields and key always give the same text. Numbers are written in their shortest form, so re-encoding a
 * decoded invoice gives back its exact text unless its writer padded the amount, `x`, `c` or `9`, or
 * signed otherwise. Throws {@link InvoiceError} (`L402_INVOICE_FORMAT` for a field out of range,
 * `L402_INVOICE_SIGNATURE` for a bad key or a `payeeNodeKey` that is not the key's).
 *
 * @example
 * const text = Invoice.encode(
 *   { network: 'regtest', amountMsat: 10_000n, timestamp: 1_700_000_000, paymentHash, paymentSecret, description: 'api call' },
 *   nodeSecretKey,
 * ); // "lnbcrt100n1pj…"
 */
export function encode(fields: EncodeFields, privateKey: Uint8Array): string {
  const prefix = PREFIX_OF_NETWORK.get(fields.network);
  if (prefix === undefined) throw formatError(`unknown network "${String(fields.network)}"`);
  if (!(privateKey instanceof Uint8Array) || !secp256k1.utils.isValidSecretKey(privateKey)) {
    throw new InvoiceError(
      'L402_INVOICE_SIGNATURE',
      'privateKey is not a valid 32-byte secp256k1 secret key',
    );
  }
  const hrp = fields.amountMsat === undefined ? prefix : prefix + amountText(fields.amountMsat);
  const timestamp = checkUint(fields.timestamp, 2 ** 35 - 1, 'timestamp');
  const data = [...numberWords(timestamp, TIMESTAMP_WORDS)];
  for (const tag of arrange(buildTags(fields, privateKey), fields.tagOrder ?? [])) {
    data.push(tag.type, tag.words.length >> 5, tag.words.length & 31, ...tag.words);
  }
  const digest = platform.sha256(concat(utf8(hrp), wordsToPaddedBytes(data)));
  // noble's recovered format puts the recovery id first; BOLT 11 puts it last.
  const recovered = secp256k1.sign(digest, privateKey, { prehash: false, format: 'recovered' });
  const signature = concat(recovered.subarray(1), recovered.subarray(0, 1));
  const text = bech32.encode(hrp, [...data, ...bech32.toWords(signature)], false);
  if (text.length > MAX_LENGTH) {
    throw formatError(`invoice would be ${text.length} characters long; at most ${MAX_LENGTH} are allowed`);
  }
  return text;
}

function buildTags(fields: EncodeFields, privateKey: Uint8Array): Tag[] {
  const listed = new Set(fields.tagOrder ?? []);
  const tags: Tag[] = [];
  const add = (key: string, words: number[], what: string) => {
    if (words.length > MAX_TAG_WORDS) {
      throw formatError(`${what} is too long for an invoice tag (at most ${MAX_TAG_WORDS} 5-bit words)`);
    }
    tags.push({ key, type: CHARSET.indexOf(key), words });
  };
  const addBytes = (key: string, value: unknown, length: number, what: string) => {
    if (!(value instanceof Uint8Array) || value.length !== length) {
      throw formatError(`${what} must be ${length} bytes`);
    }
    add(key, bech32.toWords(value), what);
  };

  addBytes('p', fields.paymentHash, 32, 'paymentHash');
  if (fields.paymentSecret !== undefined) addBytes('s', fields.paymentSecret, 32, 'paymentSecret');
  if ((fields.description === undefined) === (fields.descriptionHash === undefined)) {
    throw formatError('give exactly one of description and descriptionHash');
  }
  if (fields.description !== undefined) {
    const bytes = utf8(fields.description);
    if (descriptionDecoder.decode(bytes) !== fields.description) {
      throw formatError('description is not well-formed Unicode (it has a lone surrogate)');
    }
    add('d', bech32.toWords(bytes), 'description (use descriptionHash for long text)');
  }
  if (fields.descriptionHash !== undefined) addBytes('h', fields.descriptionHash, 32, 'descriptionHash');
  if (fields.includePayee === true || listed.has('n')) {
    const own = secp256k1.getPublicKey(privateKey, true);
    const payee = fields.payeeNodeKey ?? own;
    if (!(payee instanceof Uint8Array) || !equalBytes(payee, own)) {
      throw new InvoiceError(
        'L402_INVOICE_SIGNATURE',
        'payeeNodeKey is not the public key of privateKey: tag n must name the signing node',
      );
    }
    add('n', bech32.toWords(own), 'payeeNodeKey');
  }
  if (fields.expiry !== undefined && (fields.expiry !== DEFAULT_EXPIRY || listed.has('x'))) {
    add('x', numberWords(checkUint(fields.expiry, Number.MAX_SAFE_INTEGER, 'expiry')), 'expiry');
  }
  const cltv = fields.minFinalCltvExpiry;
  if (cltv !== undefined && (cltv !== DEFAULT_MIN_FINAL_CLTV_EXPIRY || listed.has('c'))) {
    add(
      'c',
      numberWords(checkUint(cltv, Number.MAX_SAFE_INTEGER, 'minFinalCltvExpiry')),
      'minFinalCltvExpiry',
    );
  }
  for (const fallback of fields.fallbackAddresses ?? []) {
    const version = checkUint(fallback.version, 18, 'fallback address version');
    if (!(fallback.data instanceof Uint8Array)) throw formatError('fallback address data must be bytes');
    add('f', [version, ...bech32.toWords(fallback.data)], 'fallback address');
  }
  for (const route of fields.routeHints ?? []) {
    if (route.length === 0) throw formatError('a route hint needs at least one hop');
    add('r', bech32.toWords(concat(...route.map(hopBytes))), 'route hint (at most 12 hops)');
  }
  if (fields.features !== undefined) add('9', featureWords(fields.features.bits), 'features');
  if (fields.metadata !== undefined) {
    if (!(fields.metadata instanceof Uint8Array)) throw formatError('metadata must be bytes');
    add('m', bech32.toWords(fields.metadata), 'metadata');
  }
  for (const tag of fields.unknownTags ?? []) {
    const type = checkUint(tag.type, 31, 'unknown tag type');
    for (const word of tag.words) checkUint(word, 31, 'unknown tag word');
    if (tag.words.length > MAX_TAG_WORDS) {
      throw formatError(`unknown tag is too long (at most ${MAX_TAG_WORDS} words)`);
    }
    tags.push({ key: '?', type, words: [...tag.words] });
  }
  return tags;
}

/** Tags in the order `tagOrder` asks for; the ones it does not list keep their order, after it. */
function arrange(tags: Tag[], order: readonly string[]): Tag[] {
  const rest = [...tags];
  const out: Tag[] = [];
  for (const key of order) {
    const at = rest.findIndex((tag) => tag.key === key);
    if (at >= 0) out.push(...rest.splice(at, 1));
  }
  return [...out, ...rest];
}

function amountText(amountMsat: bigint): string {
  if (typeof amountMsat !== 'bigint' || amountMsat < 1n) {
    throw formatError('amountMsat must be a bigint of at least 1 (omit it for an any-amount invoice)');
  }
  for (const [multiplier, msat] of MSAT_PER_UNIT) {
    if (amountMsat % msat === 0n) return `${amountMsat / msat}${multiplier}`;
  }
  return `${amountMsat * 10n}p`;
}

function checkUint(value: number, max: number, what: string): number {
  if (!Number.isSafeInteger(value) || value < 0 || value > max) {
    throw formatError(`${what} must be a whole number from 0 to ${max}`);
  }
  return value;
}

/** Big-endian 5-bit words; `length` pads with leading zeros, otherwise the fewest words (none for 0). */
function numberWords(value: number, length = 0): number[] {
  const words: number[] = [];
  for (let v = BigInt(value); v > 0n; v >>= 5n) words.unshift(Number(v & 31n));
  while (words.length < length) words.unshift(0);
  return words;
}

function featureWords(bits: readonly number[]): number[] {
  const max = MAX_TAG_WORDS * 5 - 1;
  for (const bit of bits) checkUint(bit, max, 'feature bit');
  const count = bits.length === 0 ? 0 : Math.floor(Math.max(...bits) / 5) + 1;
  const words = new Array<number>(count).fill(0);
  for (const bit of bits) {
    const at = count - 1 - Math.floor(bit / 5);
    words[at] = (words[at] as number) | (1 << (bit % 5));
  }
  return words;
}

function hopBytes(hop: RouteHop): Uint8Array {
  if (!(hop.pubkey instanceof Uint8Array) || hop.pubkey.length !== 33) {
    throw formatError('route hint pubkey must be 33 bytes');
  }
  const scid = /^([0-9]+)x([0-9]+)x([0-9]+)$/.exec(hop.shortChannelId);
  if (scid === null) {
    throw formatError(`route hint shortChannelId "${hop.shortChannelId}" is not BLOCKxTXxOUTPUT`);
  }
  const out = new Uint8Array(HOP_BYTES);
  const view = new DataView(out.buffer);
  out.set(hop.pubkey);
  const block = checkUint(Number(scid[1]), 0xffffff, 'short channel id block');
  const tx = checkUint(Number(scid[2]), 0xffffff, 'short channel id transaction index');
  view.setUint8(33, block >> 16);
  view.setUint16(34, block & 0xffff);
  view.setUint8(36, tx >> 16);
  view.setUint16(37, tx & 0xffff);
  view.setUint16(39, checkUint(Number(scid[3]), 0xffff, 'short channel id output'));
  view.setUint32(41, checkUint(hop.feeBaseMsat, 0xffffffff, 'feeBaseMsat'));
  view.setUint32(45, checkUint(hop.feeProportionalMillionths, 0xffffffff, 'feeProportionalMillionths'));
  view.setUint16(49, checkUint(hop.cltvExpiryDelta, 0xffff, 'cltvExpiryDelta'));
  return out;
}

/**
 * When the invoice stops being payable: `timestamp + expiry`, unix seconds.
 *
 * @example
 * new Date(Invoice.expiresAt(invoice) * 1000).toISOString();
 */
export function expiresAt(invoice: Pick<Invoice, 'timestamp' | 'expiry'>): number {
  return invoice.timestamp + invoice.expiry;
}

/**
 * Whether the invoice can no longer be paid at `nowSeconds` (default: now). The expiry second itself
 * counts as expired, so a payment is never started at the last moment.
 *
 * @example
 * if (Invoice.isExpired(invoice, clock.now())) throw new Error('invoice expired, request a new one');
 */
export function isExpired(
  invoice: Pick<Invoice, 'timestamp' | 'expiry'>,
  nowSeconds = Date.now() / 1000,
): boolean {
  return nowSeconds >= expiresAt(invoice);
}
