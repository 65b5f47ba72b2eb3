import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { EncodingError, MacaroonFormatError } from './Errors.js';
import vectors from './fixtures/macaroon-vectors.json' with { type: 'json' };
import { fromBase64, toBase64Url, toHex, utf8 } from './internal/bytes.js';
import * as Macaroon from './Macaroon.js';

const hmac = (key: Uint8Array, msg: Uint8Array) =>
  new Uint8Array(createHmac('sha256', key).update(msg).digest());

describe('signature chain (libmacaroons README)', () => {
  const { rootKey, identifier, location, chain } = vectors.readme;
  it.each(chain)('signature after $caveats.length caveat(s) is $signature', ({ caveats, signature }) => {
    const mac = Macaroon.create({ rootKey: utf8(rootKey), identifier, location, caveats });
    expect(toHex(mac.signature)).toBe(signature);
    // Adding caveats one by one gives the same chain as minting with them.
    let stepwise = Macaroon.create({ rootKey: utf8(rootKey), identifier, location });
    for (const c of caveats) stepwise = Macaroon.addFirstPartyCaveat(stepwise, c);
    expect(toHex(stepwise.signature)).toBe(signature);
  });

  it('decodes the README V1 serialization and verifies it', () => {
    const v = chain[4] as (typeof chain)[number] & { v1: string };
    const mac = Macaroon.decode(v.v1);
    expect(mac.location).toBe(location);
    expect(Macaroon.firstPartyCaveats(mac)).toEqual(v.caveats);
    expect(toHex(mac.signature)).toBe(v.signature);
    expect(Macaroon.verifySignature(mac, utf8(rootKey))).toBe(true);
  });
});

describe('libmacaroons test-suite vectors', () => {
  const suite = vectors.suite;
  it.each(suite.vectors)('$name decodes, verifies with the right key only, and re-encodes', (v) => {
    const mac = Macaroon.decode(v.encoded);
    expect(mac.location).toBe(suite.location);
    expect(new TextDecoder().decode(mac.identifier)).toBe(suite.identifier);
    expect(Macaroon.firstPartyCaveats(mac)).toEqual(v.caveats);
    expect(Macaroon.verifySignature(mac, utf8(suite.rootKey))).toBe(true);
    expect(Macaroon.verifySignature(mac, utf8(suite.wrongKey))).toBe(false);
    if (v.version === 2) {
      // Byte-for-byte identical to what libmacaroons / go-macaroon wrote.
      expect(toBase64Url(Macaroon.encode(mac))).toBe(toBase64Url(fromBase64(v.encoded)));
    }
    // Any form re-encodes to V2 that decodes to the same macaroon.
    expect(Macaroon.decode(Macaroon.encode(mac))).toEqual(mac);
    expect(
      Macaroon.create({
        rootKey: utf8(suite.rootKey),
        identifier: suite.identifier,
        location: suite.location,
        caveats: v.caveats,
      }),
    ).toEqual(mac);
  });

  it('reads V2 JSON text and writes what go-macaroon writes', () => {
    const v = suite.vectors.find((x) => x.version === 'json') as { json: string };
    const mac = Macaroon.decode(v.json);
    expect(Macaroon.verifySignature(mac, utf8(suite.rootKey))).toBe(true);
    expect(JSON.stringify(Macaroon.toJSON(mac))).toBe(
      '{"v":2,"l":"http://example.org/","i":"keyid","s64":"fN7nklEcW8b1KEhYBd_psk54XijiqZMB-dcRxgnjjvc"}',
    );
  });
});

describe('V2 binary layout (go-macaroon MarshalBinary)', () => {
  const rootKey = new Uint8Array(32).fill(7);
  const identifier = new Uint8Array(66).fill(0xff); // not UTF-8, as random L402 identifiers mostly are
  identifier[0] = 0;
  identifier[1] = 0;

  it('starts with 02 01 04 "lsat" 02 42 and ends with EOS EOS 06 20 <sig>', () => {
    const mac = Macaroon.create({ rootKey, identifier, location: 'lsat', caveats: ['services=a:0'] });
    const bytes = Macaroon.encode(mac);
    expect(toHex(bytes.subarray(0, 9))).toBe(`020104${toHex(utf8('lsat'))}0242`);
    expect(bytes[9 + 66]).toBe(0); // EOS after header
    // caveat section: 02 <len> cid 00, then the EOS ending the caveats
    const cav = utf8('services=a:0');
    expect(toHex(bytes.subarray(76, 76 + 2 + cav.length + 1))).toBe(
      `02${cav.length.toString(16).padStart(2, '0')}${toHex(cav)}00`,
    );
    expect(toHex(bytes.subarray(bytes.length - 35, bytes.length - 32))).toBe('000620');
    expect(bytes.length).toBe(1 + 6 + 68 + 1 + (2 + cav.length + 1) + 1 + 34);
  });

  it('writes multi-byte varints for long fields and reads them back', () => {
    const long = 'x='.padEnd(300, 'y');
    const mac = Macaroon.create({ rootKey, identifier, location: 'lsat', caveats: [long] });
    const bytes = Macaroon.encode(mac);
    const at = 1 + 6 + 68 + 1;
    expect([bytes[at], bytes[at + 1], bytes[at + 2]]).toEqual([2, 0xac, 0x02]); // 300 = 0xac 0x02
    expect(Macaroon.decode(bytes)).toEqual(mac);
  });

  it('omits the location field when the location is empty', () => {
    const mac = Macaroon.create({ rootKey, identifier: 'id' });
    expect(toHex(Macaroon.encode(mac).subarray(0, 6))).toBe(`020202${toHex(utf8('id'))}00`);
  });

  it('round-trips base64 (both alphabets), hex and JSON', () => {
    const mac = Macaroon.create({ rootKey, identifier, location: 'lsat', caveats: ['a=b', 'c=d=e'] });
    const b64 = Macaroon.toBase64(mac);
    expect(b64).toMatch(/^AgEEbHNhdAJC[A-Za-z0-9+/]+=*$/);
    expect(Macaroon.decode(b64)).toEqual(mac);
    expect(Macaroon.decode(toBase64Url(Macaroon.encode(mac)))).toEqual(mac);
    expect(Macaroon.fromHex(Macaroon.toHex(mac))).toEqual(mac);
    expect(Macaroon.fromHex(Macaroon.toHex(mac).toUpperCase())).toEqual(mac);
    const json = Macaroon.toJSON(mac);
    expect(json.i64).toBeDefined(); // binary identifier goes to i64
    expect(Macaroon.fromJSON(JSON.stringify(json))).toEqual(mac);
  });
});

it('keeps a leading byte-order mark in identifiers and caveats through JSON', () => {
  const bom = Uint8Array.of(0xef, 0xbb, 0xbf, 0x61);
  const mac = Macaroon.create({ rootKey: utf8('k'), identifier: bom, caveats: [bom] });
  expect(Macaroon.fromJSON(JSON.stringify(Macaroon.toJSON(mac)))).toEqual(mac);
});

describe('third-party caveats', () => {
  const rootKey = utf8('root');
  const base = Macaroon.create({ rootKey, identifier: 'id', location: 'here' });
  const vid = new Uint8Array(72).fill(9);
  const cid = utf8('third party caveat id');
  // go-macaroon keyedHash2: HMAC(sig, HMAC(sig, vid) || HMAC(sig, cid))
  const sig = hmac(
    base.signature,
    new Uint8Array([...hmac(base.signature, vid), ...hmac(base.signature, cid)]),
  );
  const mac: Macaroon.Macaroon = {
    ...base,
    caveats: [{ id: cid, verificationId: vid, location: 'https://auth' }],
    signature: sig,
  };

  it('are kept through V2 binary and JSON round trips', () => {
    const again = Macaroon.decode(Macaroon.encode(mac));
    expect(again).toEqual(mac);
    expect(Macaroon.fromJSON(Macaroon.toJSON(mac))).toEqual(mac);
    expect(Macaroon.thirdPartyCaveats(again)).toHaveLength(1);
    expect(Macaroon.firstPartyCaveats(again)).toEqual([]);
  });

  it('take part in the signature chain as go-macaroon computes it', () => {
    expect(Macaroon.verifySignature(mac, rootKey)).toBe(true);
  });
});

describe('malformed input gets a typed error', () => {
  const good = Macaroon.encode(
    Macaroon.create({ rootKey: utf8('k'), identifier: 'id', location: 'lsat', caveats: ['a=b'] }),
  );
  const cases: [string, Uint8Array | string, unknown][] = [
    ['empty', new Uint8Array(0), MacaroonFormatError],
    ['unknown version byte', new Uint8Array([3, 1, 2]), MacaroonFormatError],
    ['truncated at every length', good.subarray(0, 10), MacaroonFormatError],
    ['trailing bytes', new Uint8Array([...good, 0]), MacaroonFormatError],
    [
      'signature of 31 bytes',
      new Uint8Array([...good.subarray(0, good.length - 33), 31, ...good.subarray(good.length - 31)]),
      MacaroonFormatError,
    ],
    ['not base64', 'not*base64!', EncodingError],
    ['base64 with whitespace inside', 'AgEE bHNh', EncodingError],
    ['non-canonical base64 tail', 'AgF=', EncodingError],
    ['JSON without v', '{"i":"a","s64":"AAAA"}', MacaroonFormatError],
    [
      'JSON with both i and i64',
      '{"v":2,"i":"a","i64":"YQ","s64":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}',
      MacaroonFormatError,
    ],
    ['bad JSON', '{"v":2,', MacaroonFormatError],
  ];
  it.each(cases)('%s', (_name, input, type) => {
    expect(() => Macaroon.decode(input)).toThrow(type as typeof Error);
  });

  it('every strict prefix of a valid macaroon is refused', () => {
    for (let n = 0; n < good.length; n++)
      expect(() => Macaroon.decode(good.subarray(0, n))).toThrow(MacaroonFormatError);
  });

  it('fields out of order in a section are refused', () => {
    // header with identifier before location
    const bad = new Uint8Array([2, 2, 2, 0x69, 0x64, 1, 1, 0x6c, 0, 0, 6, 32, ...new Uint8Array(32)]);
    expect(() => Macaroon.decode(bad)).toThrow(/out of order/);
  });
});
