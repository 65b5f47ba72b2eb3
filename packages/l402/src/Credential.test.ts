import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import * as Caveat from './Caveat.js';
import * as Credential from './Credential.js';
import { HeaderError } from './Errors.js';
import { toBase64Url, toHex } from './internal/bytes.js';
import * as Macaroon from './Macaroon.js';
import * as Token from './Token.js';

const preimage = new Uint8Array(randomBytes(32));
const paymentHash = new Uint8Array(createHash('sha256').update(preimage).digest());
const { macaroon } = Token.mint({ rootKey: new Uint8Array(32), paymentHash, caveats: ['services=a:0'] });
const b64 = Macaroon.toBase64(macaroon);
const hex = toHex(preimage);

const code = (fn: () => unknown) => {
  try {
    fn();
    return 'ok';
  } catch (e) {
    if (e instanceof HeaderError) return e.code;
    throw e;
  }
};

describe('Authorization: L402 / LSAT', () => {
  it('formats the canonical value and parses it back', () => {
    const header = Credential.format({ macaroon, preimage });
    expect(header).toBe(`L402 ${b64}:${hex}`);
    // Aperture's own regex finds the same parts.
    const m = /(LSAT|L402) (.*?):([a-f0-9]{64})/.exec(header);
    expect(m?.[2]).toBe(b64);
    const c = Credential.parse(header);
    expect(c?.macaroon).toEqual(macaroon);
    expect(c?.preimage).toEqual(preimage);
    expect(c?.scheme).toBe('L402');
  });

  it.each([
    ['LSAT scheme', `LSAT ${b64}:${hex}`],
    ['lower-case scheme', `l402 ${b64}:${hex}`],
    ['mixed-case scheme', `LsAt ${b64}:${hex}`],
    ['several spaces', `L402    ${b64}:${hex}`],
    ['upper-case hex', `L402 ${b64}:${hex.toUpperCase()}`],
    ['URL-safe base64', `L402 ${toBase64Url(Macaroon.encode(macaroon))}:${hex}`],
    ['surrounding whitespace', `  L402 ${b64}:${hex}  `],
  ])('accepts %s', (_name, header) => {
    const c = Credential.parse(header);
    expect(c?.macaroon).toEqual(macaroon);
    expect(c?.preimage).toEqual(preimage);
  });

  it('reads several comma-separated macaroons', () => {
    const other = Macaroon.create({ rootKey: new Uint8Array(32), identifier: 'discharge' });
    const header = Credential.format({ macaroon, preimage, discharges: [other] });
    expect(Credential.parse(header)?.macaroons).toEqual([macaroon, other]);
    expect(Credential.parse(`L402 ${b64} , ${Macaroon.toBase64(other)}:${hex}`)?.macaroons).toHaveLength(2);
  });

  it('reads several header lines and Fetch-joined lines, Aperture forwarding LSAT+L402 agrees', () => {
    const lines = [`LSAT ${b64}:${hex}`, `L402 ${b64}:${hex}`];
    expect(Credential.parse(lines)?.macaroon).toEqual(macaroon);
    expect(Credential.parse(lines.join(', '))?.macaroon).toEqual(macaroon);
    expect(Credential.parse(['Bearer abc', lines[1] as string])?.macaroon).toEqual(macaroon);
    expect(Credential.parse(`Bearer abc, ${lines[1]}`)?.macaroon).toEqual(macaroon);
    // Aperture lets the last value decide; a trailing non-L402 value must not hide the credential.
    expect(Credential.parse([lines[1] as string, 'Bearer xyz'])?.macaroon).toEqual(macaroon);
  });

  it('refuses two L402 credentials that disagree', () => {
    expect(code(() => Credential.parse([`L402 ${b64}:${hex}`, `L402 ${b64}:${'00'.repeat(32)}`]))).toBe(
      'L402_HEADER_FORMAT',
    );
  });

  it('returns undefined when there is no L402 credential', () => {
    expect(Credential.parse(undefined)).toBeUndefined();
    expect(Credential.parse('Basic dXNlcjpwYXNz')).toBeUndefined();
    expect(Credential.parse('')).toBeUndefined();
  });

  it.each([
    ['no preimage', `L402 ${b64}`],
    ['short preimage', `L402 ${b64}:${hex.slice(2)}`],
    ['junk after preimage', `L402 ${b64}:${hex}zz`],
    ['no space', `L402${b64}:${hex}`],
    ['bad base64', `L402 @@@:${hex}`],
    ['truncated macaroon', `L402 ${b64.slice(0, 40)}:${hex}`],
  ])('refuses a malformed L402 value: %s', (_name, header) => {
    expect(code(() => Credential.parse(header))).toBe('L402_HEADER_FORMAT');
  });

  it('bounds the header size and the macaroon count', () => {
    expect(code(() => Credential.parse(`L402 ${'A'.repeat(9000)}:${hex}`))).toBe('L402_HEADER_TOO_LARGE');
    expect(code(() => Credential.parse(`L402 ${Array(9).fill(b64).join(',')}:${hex}`))).toBe(
      'L402_HEADER_TOO_LARGE',
    );
  });
});

describe('Macaroon / Grpc-Metadata-Macaroon hex forms', () => {
  const value = Credential.formatMacaroonHeader({ macaroon, preimage });
  it('carries the preimage as a caveat', () => {
    const mac = Macaroon.fromHex(value);
    expect(Macaroon.firstPartyCaveats(mac)).toEqual(['services=a:0', Caveat.preimage(hex)]);
  });

  it.each([
    ['Macaroon', { Macaroon: value }, 'macaroon'],
    ['Grpc-Metadata-Macaroon', { 'grpc-metadata-macaroon': value }, 'grpc-metadata-macaroon'],
    ['gRPC token metadata', { token: value.toUpperCase() }, 'token'],
  ] as const)('reads the %s header', (_name, headers, source) => {
    const c = Credential.fromHeaders(headers);
    expect(c?.source).toBe(source);
    expect(c?.preimage).toEqual(preimage);
  });

  it('prefers Authorization, then Grpc-Metadata-Macaroon, then Macaroon', () => {
    const other = Credential.formatMacaroonHeader({ macaroon, preimage: new Uint8Array(32).fill(1) });
    const h = new Headers({
      Authorization: `L402 ${b64}:${hex}`,
      Macaroon: other,
      'Grpc-Metadata-Macaroon': other,
    });
    expect(Credential.fromHeaders(h)?.source).toBe('authorization');
    expect(Credential.fromHeaders({ macaroon: other, 'grpc-metadata-macaroon': value })?.preimage).toEqual(
      preimage,
    );
    expect(Credential.fromHeaders({ authorization: 'Basic x', macaroon: value })?.source).toBe('macaroon');
  });

  it('ignores a non-hex token header and refuses a macaroon without a preimage caveat', () => {
    expect(Credential.fromHeaders({ token: 'session-abc' })).toBeUndefined();
    expect(code(() => Credential.fromHeaders({ macaroon: Macaroon.toHex(macaroon) }))).toBe(
      'L402_HEADER_FORMAT',
    );
    expect(code(() => Credential.fromHeaders({ macaroon: 'zz' }))).toBe('L402_HEADER_FORMAT');
  });
});
