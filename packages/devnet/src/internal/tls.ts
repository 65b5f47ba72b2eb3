/**
 * Self-signed TLS certificates shaped like the one LND generates for itself (`tls.cert`): ECDSA P-256,
 * a CA certificate that is also the server certificate, SANs for the loopback names. The X.509 DER is
 * written here with a small ASN.1 writer and signed with node:crypto, so no openssl binary is needed.
 *
 * @example
 * const { certPem, keyPem } = selfSigned({ hosts: ['localhost', '127.0.0.1'] });
 * https.createServer({ cert: certPem, key: keyPem }, handler);
 * // a client pins it: new undici.Agent({ connect: { ca: certPem } })
 */
import { createHash, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';
import { ArgumentError } from '../Errors.js';
import { concat } from './bytes.js';

export interface Certificate {
  /** The certificate, PEM: what a client pins (LND's `tls.cert`). */
  readonly certPem: string;
  /** The PKCS #8 private key, PEM (LND's `tls.key`). */
  readonly keyPem: string;
  /** The certificate, DER. */
  readonly der: Uint8Array;
}

export interface Options {
  /** DNS names and IP addresses (v4 or v6) the certificate is valid for. At least one. */
  readonly hosts: readonly string[];
  /** Unix milliseconds; defaults to `Date.now`. */
  readonly now?: () => number;
}

// LND's DefaultAutogenValidity: 14 months of 30 days.
const VALIDITY_MS = 14 * 30 * 24 * 3600 * 1000;
// An hour of slack for clocks behind ours, as certificate generators usually allow.
const BACKDATE_MS = 3600 * 1000;

// ASN.1 DER: every value is tag, length, content.
function tlv(tag: number, ...content: Uint8Array[]): Uint8Array {
  const body = concat(...content);
  const n = body.length;
  if (n < 0x80) return concat(Uint8Array.of(tag, n), body);
  const length: number[] = [];
  for (let rest = n; rest > 0; rest >>>= 8) length.unshift(rest & 0xff);
  return concat(Uint8Array.of(tag, 0x80 | length.length, ...length), body);
}

const sequence = (...items: Uint8Array[]) => tlv(0x30, ...items);
const set = (...items: Uint8Array[]) => tlv(0x31, ...items);
const utf8 = (text: string) => tlv(0x0c, new TextEncoder().encode(text));
const octets = (bytes: Uint8Array) => tlv(0x04, bytes);
const TRUE = Uint8Array.of(0x01, 0x01, 0xff);

function integer(bytes: Uint8Array): Uint8Array {
  // DER integers are signed: a leading 1 bit needs a zero byte in front to stay positive.
  return tlv(0x02, (bytes[0] ?? 0) & 0x80 ? concat(Uint8Array.of(0), bytes) : bytes);
}

/** A BIT STRING of whole bytes (no unused bits), as signatures and key bits are. */
const bits = (bytes: Uint8Array) => tlv(0x03, Uint8Array.of(0), bytes);

function oid(dotted: string): Uint8Array {
  const [first = 0, second = 0, ...rest] = dotted.split('.').map(Number);
  const out = [40 * first + second];
  for (const arc of rest) {
    const groups = [arc & 0x7f];
    for (let v = arc >>> 7; v > 0; v >>>= 7) groups.unshift(0x80 | (v & 0x7f));
    out.push(...groups);
  }
  return tlv(0x06, Uint8Array.from(out));
}

/** UTCTime until 2049, GeneralizedTime after, as RFC 5280 §4.1.2.5 requires. */
function time(ms: number): Uint8Array {
  const iso = new Date(ms).toISOString(); // 2026-01-02T03:04:05.678Z
  const digits = iso.slice(0, 19).replace(/[-T:]/g, '');
  const year = Number(iso.slice(0, 4));
  const text = year < 2050 ? `${digits.slice(2)}Z` : `${digits}Z`;
  return tlv(year < 2050 ? 0x17 : 0x18, new TextEncoder().encode(text));
}

function ipBytes(ip: string): Uint8Array {
  if (isIPv4(ip)) return Uint8Array.from(ip.split('.').map(Number));
  // Expand "::" so the address has all eight 16-bit groups.
  const [head = '', tail] = ip.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups =
    tail === undefined ? left : [...left, ...Array(8 - left.length - right.length).fill('0'), ...right];
  const out = new Uint8Array(16);
  groups.forEach((group, i) => {
    const value = Number.parseInt(group, 16);
    out[2 * i] = value >> 8;
    out[2 * i + 1] = value & 0xff;
  });
  return out;
}

function extension(id: string, critical: boolean, value: Uint8Array): Uint8Array {
  return critical ? sequence(oid(id), TRUE, octets(value)) : sequence(oid(id), octets(value));
}

/**
 * A fresh key pair and a self-signed certificate for `hosts`, valid from an hour ago for 14 months.
 *
 * @example
 * const cert = selfSigned({ hosts: ['localhost', '127.0.0.1', '::1'] });
 * new crypto.X509Certificate(cert.certPem).checkIP('127.0.0.1'); // '127.0.0.1'
 */
export function selfSigned(options: Options): Certificate {
  const hosts = [...new Set(options.hosts)];
  if (hosts.length === 0) throw new ArgumentError('a certificate needs at least one host');
  const now = (options.now ?? Date.now)();
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const spki = new Uint8Array(publicKey.export({ type: 'spki', format: 'der' }));
  // The key identifier is the SHA-1 of the public key bits (RFC 5280 §4.2.1.2, method 1): the last
  // 65 bytes of a P-256 SubjectPublicKeyInfo are the uncompressed point.
  const keyId = new Uint8Array(
    createHash('sha1')
      .update(spki.subarray(spki.length - 65))
      .digest(),
  );
  // A positive INTEGER in minimal DER form: the top bit clear (not negative) and the first byte never
  // 0x00 (a leading zero byte is only allowed before a set top bit; OpenSSL refuses "illegal padding").
  const serial = new Uint8Array(randomBytes(16));
  serial[0] = 0x40 | (serial[0]! & 0x3f);

  const name = sequence(
    set(sequence(oid('2.5.4.10'), utf8('l402 devnet autogenerated cert'))),
    set(sequence(oid('2.5.4.3'), utf8(hosts[0]!))),
  );
  const altNames = hosts.map((host) => {
    if (isIPv4(host) || isIPv6(host)) return tlv(0x87, ipBytes(host));
    return tlv(0x82, new TextEncoder().encode(host));
  });
  const ecdsaWithSha256 = sequence(oid('1.2.840.10045.4.3.2'));
  const tbs = sequence(
    tlv(0xa0, integer(Uint8Array.of(2))), // v3
    integer(serial),
    ecdsaWithSha256,
    name,
    sequence(time(now - BACKDATE_MS), time(now + VALIDITY_MS)),
    name,
    spki,
    tlv(
      0xa3,
      sequence(
        // digitalSignature, keyEncipherment and keyCertSign, as LND sets them: bits 0, 2, 5 (2 unused).
        extension('2.5.29.15', true, tlv(0x03, Uint8Array.of(2, 0xa4))),
        extension('2.5.29.37', false, sequence(oid('1.3.6.1.5.5.7.3.1'))), // serverAuth
        // A CA, like LND's: clients put it in their trust store as the one root they accept.
        extension('2.5.29.19', true, sequence(TRUE)),
        extension('2.5.29.14', false, octets(keyId)),
        extension('2.5.29.17', false, sequence(...altNames)),
      ),
    ),
  );
  const signature = new Uint8Array(sign('sha256', tbs, privateKey)); // DER-encoded ECDSA (r, s)
  const der = sequence(tbs, ecdsaWithSha256, bits(signature));
  const base64 = Buffer.from(der).toString('base64');
  const certPem = `-----BEGIN CERTIFICATE-----\n${base64.replace(/.{1,64}/g, '$&\n')}-----END CERTIFICATE-----\n`;
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  return { certPem, keyPem, der };
}
