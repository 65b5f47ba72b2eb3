import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import * as Challenge from './Challenge.js';
import { HeaderError } from './Errors.js';
import { formatChallenge, parseChallenges, quote } from './internal/authParams.js';

interface Vectors {
  challengeHeaders: {
    name: string;
    params: Record<string, string>;
    header: string;
    parsed: Record<string, string>;
  }[];
  challengeLists: { name: string; header: string; challenges?: Record<string, string>[]; error?: boolean }[];
}
const vectors: Vectors = JSON.parse(
  readFileSync(new URL('./fixtures/mpp-vectors.json', import.meta.url), 'utf8'),
);

const MAC = 'AgEEbHNhdAJCAADHxWrDuLnW5+aJ/0TJ0b7zNvfnFnyp3gpDqh1vaDRGX8M2sD+x0fSEozLJ5k8Fr0g7kOC5eV8xtW==';
const INV =
  'lnbcrt10u1pjq8vxzpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdq5xysxxatsyp3k7enxv4jsxqzpusp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygs9qyyssq';
const APERTURE = [`LSAT macaroon="${MAC}", invoice="${INV}"`, `L402 macaroon="${MAC}", invoice="${INV}"`];
const PAYMENT =
  'Payment id="a", realm="r", method="lightning", intent="charge", request="cQ", expires="2026-03-15T12:05:00Z"';

function headerError(fn: () => unknown): HeaderError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(HeaderError);
    return e as HeaderError;
  }
  throw new Error('expected a HeaderError');
}

function only(header: string | readonly string[]): Challenge.L402Challenge {
  const found = Challenge.parse(header);
  expect(found).toHaveLength(1);
  return found[0] as Challenge.L402Challenge;
}

describe('MPP vectors (aperture mpp/testdata/vectors.json)', () => {
  describe.each(vectors.challengeHeaders)('challengeHeaders: $name', (v) => {
    it('formats params, in the given order, to exactly the header', () => {
      expect(formatChallenge('Payment', Object.entries(v.params))).toBe(v.header);
      expect(Challenge.formatPayment(v.params as Parameters<typeof Challenge.formatPayment>[0])).toBe(
        v.header,
      );
    });
    it('parses the header to the listed values', () => {
      const [c, ...rest] = Challenge.parse(v.header);
      expect(rest).toEqual([]);
      expect(c).toEqual({ scheme: 'Payment', ...v.parsed, params: v.parsed });
    });
  });

  describe.each(vectors.challengeLists)('challengeLists: $name', (v) => {
    it(v.error ? 'fails with HeaderError' : 'yields the listed Payment offers', () => {
      if (v.error) {
        expect(headerError(() => Challenge.parse(v.header)).code).toBe('L402_HEADER_FORMAT');
        return;
      }
      const offers = Challenge.payment(Challenge.parse(v.header));
      expect(offers.map(({ scheme, params, ...fields }) => fields)).toEqual(v.challenges);
    });
  });
});

describe('challenge-list tokenizer', () => {
  it('reads the RFC 9110 §11.6.1 example', () => {
    expect(
      parseChallenges('Newauth realm="apps", type=1, title="Login to \\"apps\\"", Basic realm="simple"'),
    ).toEqual([
      { scheme: 'Newauth', params: { realm: 'apps', type: '1', title: 'Login to "apps"' } },
      { scheme: 'Basic', params: { realm: 'simple' } },
    ]);
  });

  it('reads token68 challenges and bare schemes', () => {
    expect(parseChallenges('Basic dXNlcjpwYXNz==, Negotiate, Bearer realm="x"')).toEqual([
      { scheme: 'Basic', params: {}, token68: 'dXNlcjpwYXNz==' },
      { scheme: 'Negotiate', params: {} },
      { scheme: 'Bearer', params: { realm: 'x' } },
    ]);
  });

  it('allows whitespace around "=" and empty list elements', () => {
    expect(parseChallenges(' , L402 macaroon = "m" ,, invoice=\t"i" , ')).toEqual([
      { scheme: 'L402', params: { macaroon: 'm', invoice: 'i' } },
    ]);
  });

  it('keeps parameter names such as __proto__ and constructor as plain data', () => {
    const [c] = parseChallenges('X __proto__="p", constructor=c');
    expect(Object.entries(c?.params ?? {})).toEqual([
      ['__proto__', 'p'],
      ['constructor', 'c'],
    ]);
    expect(Object.getPrototypeOf(c?.params)).toBeNull();
  });

  it('skips a malformed challenge and reads on from the next challenge start', () => {
    const skipped: string[] = [];
    const found = parseChallenges('Basic realm="a" junk, x=1, L402 macaroon="m", invoice="i"', (_, reason) =>
      skipped.push(reason),
    );
    expect(found).toEqual([{ scheme: 'L402', params: { macaroon: 'm', invoice: 'i' } }]);
    expect(skipped).toEqual(["expected ',' after a parameter value"]);
  });

  it('never reads a challenge out of the quotes of a malformed one', () => {
    const header = 'Payment description="bad\u0001, L402 macaroon=\\"m\\", invoice=\\"i\\"", Basic realm="x"';
    expect(parseChallenges(header)).toEqual([{ scheme: 'Basic', params: { realm: 'x' } }]);
    expect(parseChallenges('Basic realm="x", Payment id="a, L402 macaroon="m", invoice="i"')).toEqual([
      { scheme: 'Basic', params: { realm: 'x' } },
    ]);
  });

  it('throws HeaderError when nothing can be read, and returns [] for blank input', () => {
    expect(headerError(() => parseChallenges('realm="x"')).message).toMatch(
      /expected a space after the auth-scheme/,
    );
    expect(headerError(() => parseChallenges('L402 macaroon="unterminated')).code).toBe('L402_HEADER_FORMAT');
    expect(parseChallenges(' , ,')).toEqual([]);
  });

  it('quotes with quoted-pairs for " and \\ only, and refuses control characters', () => {
    expect(quote('a"b\\c\td é')).toBe('"a\\"b\\\\c\td é"');
    expect(headerError(() => quote('x\r\nSet-Cookie: a=b')).code).toBe('L402_HEADER_FORMAT');
    expect(headerError(() => formatChallenge('L 402', [])).message).toMatch(/not an HTTP token/);
    expect(headerError(() => formatChallenge('L402', [['a b', 'c']])).message).toMatch(/not an HTTP token/);
    expect(formatChallenge('Negotiate', [])).toBe('Negotiate');
  });
});

describe('Challenge.parse', () => {
  const lsat = { scheme: 'LSAT', macaroon: MAC, invoice: INV, params: { macaroon: MAC, invoice: INV } };
  const l402 = { ...lsat, scheme: 'L402' };

  it("reads Aperture's pair as two lines, as one joined string, and in a single-element array", () => {
    expect(Challenge.parse(APERTURE)).toEqual([lsat, l402]);
    expect(Challenge.parse(APERTURE.join(', '))).toEqual([lsat, l402]);
    expect(Challenge.parse([APERTURE.join(', ')])).toEqual([lsat, l402]);
  });

  it('reads the Fetch-joined pair followed by a Payment offer', () => {
    const found = Challenge.parse([...APERTURE, PAYMENT].join(', '));
    expect(found.map((c) => c.scheme)).toEqual(['LSAT', 'L402', 'Payment']);
    expect(found[2]).toEqual({
      scheme: 'Payment',
      id: 'a',
      realm: 'r',
      method: 'lightning',
      intent: 'charge',
      request: 'cQ',
      expires: '2026-03-15T12:05:00Z',
      params: {
        id: 'a',
        realm: 'r',
        method: 'lightning',
        intent: 'charge',
        request: 'cQ',
        expires: '2026-03-15T12:05:00Z',
      },
    });
  });

  it.each(['l402', 'lsat', 'L402', 'LsAt', 'l402'])(
    'accepts scheme %s in any case and normalizes it',
    (scheme) => {
      expect(only(`${scheme} macaroon="${MAC}", invoice="${INV}"`).scheme).toBe(scheme.toUpperCase());
    },
  );

  it('lower-cases parameter names', () => {
    expect(only(`L402 MACAROON="${MAC}", Invoice="${INV}"`)).toEqual(l402);
  });

  it('takes the spec form: version="0", token= in place of macaroon=', () => {
    const c = only(`L402 version="0", token="${MAC}", invoice="${INV}"`);
    expect(c).toEqual({
      scheme: 'L402',
      macaroon: MAC,
      invoice: INV,
      version: '0',
      params: { version: '0', token: MAC, invoice: INV },
    });
  });

  it('takes macaroon= and token= together when they agree, and skips the offer when they differ', () => {
    expect(only(`L402 macaroon="${MAC}", invoice="${INV}", token="${MAC}"`).macaroon).toBe(MAC);
    const found = Challenge.parse([`L402 macaroon="${MAC}", invoice="${INV}", token="AgE="`, APERTURE[0]!]);
    expect(found).toEqual([lsat]);
    expect(headerError(() => Challenge.parse(`L402 macaroon="a", token="b", invoice="i"`)).message).toMatch(
      /L402 \(macaroon and token differ\)/,
    );
  });

  it('skips an offer of an unknown version', () => {
    expect(
      headerError(() => Challenge.parse(`L402 version="1", token="${MAC}", invoice="${INV}"`)).message,
    ).toMatch(/unsupported version/);
    expect(Challenge.parse([`L402 version=1, token="x", invoice="y"`, APERTURE[1]!])).toEqual([l402]);
  });

  it('takes the parameters in any order and keeps unknown ones', () => {
    expect(only(`L402 invoice="${INV}", macaroon="${MAC}"`)).toEqual({
      ...l402,
      params: { invoice: INV, macaroon: MAC },
    });
    const c = only(`L402 price="10 sat", macaroon="${MAC}", service="weather", invoice="${INV}"`);
    expect(c.params).toEqual({ price: '10 sat', macaroon: MAC, service: 'weather', invoice: INV });
  });

  it('unescapes quoted-pairs and keeps commas and schemes inside quotes as data', () => {
    const c = only(
      `L402 note="a \\"b\\" \\\\ c, L402 macaroon=\\"x\\"", macaroon="${MAC}", invoice="${INV}"`,
    );
    expect(c.params.note).toBe('a "b" \\ c, L402 macaroon="x"');
    expect(c.macaroon).toBe(MAC);
  });

  it('reads unquoted values, bare base64 included', () => {
    expect(only(`lsat macaroon=${MAC}, invoice=${INV}`)).toEqual(lsat);
    expect(only(`L402 token=${MAC},invoice=${INV},version=0`).version).toBe('0');
  });

  it('skips Basic, Bearer and Digest before and after, without leaking their parameters', () => {
    const header = `Basic realm="x", invoice="lnbc1fake", ${APERTURE[1]}, Bearer realm="y", macaroon="z", Digest realm="d", nonce="n"`;
    expect(Challenge.parse(header)).toEqual([l402]);
    expect(Challenge.parse(['Bearer error="invalid_token"', ...APERTURE, 'Basic realm="z"'])).toEqual([
      lsat,
      l402,
    ]);
    const leak = headerError(() =>
      Challenge.parse(`Basic dXNlcg==, L402 macaroon="${MAC}", Bearer invoice="${INV}"`),
    );
    expect(leak.message).toMatch(/L402 \(no invoice\)/);
  });

  it('skips offers missing a macaroon or an invoice, saying so when nothing is left', () => {
    const e = headerError(() =>
      Challenge.parse([`L402 invoice="${INV}"`, `LSAT macaroon="${MAC}"`, 'Basic realm="r"']),
    );
    expect(e.code).toBe('L402_HEADER_FORMAT');
    expect(e.message).toBe(
      'no usable L402, LSAT or Payment challenge in WWW-Authenticate; saw L402 (no macaroon or token); LSAT (no invoice); Basic (not a payment scheme)',
    );
    expect(headerError(() => Challenge.parse(`L402 macaroon="", invoice="${INV}"`)).message).toMatch(
      /no macaroon/,
    );
    expect(headerError(() => Challenge.parse('L402 AgE=')).message).toMatch(/token68/);
  });

  it('does not let a broken line swallow the lines after it', () => {
    expect(Challenge.parse(['L402 macaroon="unterminated, invoice=', APERTURE[1]!])).toEqual([l402]);
    expect(headerError(() => Challenge.parse('L402 macaroon="unterminated')).message).toMatch(
      /malformed challenge \(an unterminated quoted string at character 14\)/,
    );
  });

  it('refuses a missing or empty header', () => {
    for (const h of [null, undefined, '', [], ['', ' , ']]) {
      expect(headerError(() => Challenge.parse(h)).message).toMatch(/no WWW-Authenticate challenge/);
    }
  });

  it('refuses input over maxLength (16384 by default), counting joined lines', () => {
    const big = `L402 macaroon="${'A'.repeat(16400)}", invoice="${INV}"`;
    const e = headerError(() => Challenge.parse(big));
    expect(e.code).toBe('L402_HEADER_TOO_LARGE');
    expect(e.message).toMatch(/over the limit of 16384/);
    expect(Challenge.parse(big, { maxLength: 20000 })).toHaveLength(1);
    const lines = APERTURE;
    const joined = lines.join(', ').length;
    expect(Challenge.parse(lines, { maxLength: joined })).toHaveLength(2);
    expect(headerError(() => Challenge.parse(lines, { maxLength: joined - 1 })).code).toBe(
      'L402_HEADER_TOO_LARGE',
    );
  });

  it('keeps a lower-case or mixed-case Payment offer', () => {
    const [c] = Challenge.parse(PAYMENT.replace('Payment', 'pAyMeNt'));
    expect(c?.scheme).toBe('Payment');
  });
});

describe('Challenge.l402 and Challenge.payment', () => {
  it("prefers L402 over LSAT when Aperture's pair carries the same token", () => {
    const found = Challenge.parse([...APERTURE, PAYMENT]);
    expect(Challenge.l402(found)).toBe(found[1]);
    expect(Challenge.payment(found)).toEqual([found[2]]);
  });

  it('keeps the first offer when the L402 one is a different token', () => {
    const found = Challenge.parse([APERTURE[0]!, `L402 macaroon="AgE=", invoice="${INV}"`]);
    expect(Challenge.l402(found)).toBe(found[0]);
  });

  it('returns undefined and [] when there is nothing of the kind', () => {
    const found = Challenge.parse(PAYMENT);
    expect(Challenge.l402(found)).toBeUndefined();
    expect(Challenge.payment(Challenge.parse(APERTURE))).toEqual([]);
  });
});

describe('Challenge.format', () => {
  it("writes exactly Aperture's pair by default", () => {
    expect(Challenge.format({ macaroon: MAC, invoice: INV })).toEqual(APERTURE);
  });

  it('writes the spec parameters after macaroon and invoice', () => {
    expect(Challenge.format({ macaroon: MAC, invoice: INV }, { schemes: ['L402'], spec: true })).toEqual([
      `L402 macaroon="${MAC}", invoice="${INV}", version="0", token="${MAC}"`,
    ]);
  });

  it('stays readable by the regexes of Aperture, lnget and lenient third-party clients', () => {
    const aperture = /(LSAT|L402) macaroon="(.*?)", invoice="(.*?)"/;
    const lnget = /(LSAT|L402)\s+macaroon="([^"]+)",\s*invoice="([^"]+)"/i;
    const lenient = /(?:macaroon|token)="([^"]+)"/;
    for (const spec of [false, true]) {
      for (const line of Challenge.format({ macaroon: MAC, invoice: INV }, { spec })) {
        expect(line.match(aperture)?.slice(2)).toEqual([MAC, INV]);
        expect(line.match(lnget)?.slice(2)).toEqual([MAC, INV]);
        expect(line.match(lenient)?.[1]).toBe(MAC);
      }
    }
  });

  it('round-trips through parse in both modes', () => {
    const spec = Challenge.format({ macaroon: MAC, invoice: INV }, { spec: true });
    expect(
      Challenge.parse(spec).map(
        (c) => c.scheme === 'Payment' || [c.scheme, c.macaroon, c.invoice, c.version],
      ),
    ).toEqual([
      ['LSAT', MAC, INV, '0'],
      ['L402', MAC, INV, '0'],
    ]);
  });

  it('refuses an empty macaroon or invoice and a value that would split the header', () => {
    expect(headerError(() => Challenge.format({ macaroon: '', invoice: INV })).code).toBe(
      'L402_HEADER_FORMAT',
    );
    expect(headerError(() => Challenge.format({ macaroon: MAC, invoice: `${INV}\r\nX: y` })).code).toBe(
      'L402_HEADER_FORMAT',
    );
  });
});

describe('Challenge.formatPayment', () => {
  it('writes the canonical order whatever order the fields come in, skipping absent optionals', () => {
    const line = Challenge.formatPayment({
      opaque: 'o',
      request: 'cQ',
      intent: 'charge',
      method: 'lightning',
      realm: 'r',
      id: 'a',
      description: undefined,
    });
    expect(line).toBe(
      'Payment id="a", realm="r", method="lightning", intent="charge", request="cQ", opaque="o"',
    );
  });

  it('round-trips a parsed offer', () => {
    const [c] = Challenge.payment(Challenge.parse(PAYMENT));
    expect(Challenge.formatPayment(c!)).toBe(PAYMENT);
  });

  it('refuses an offer missing a required parameter', () => {
    const e = headerError(() =>
      Challenge.formatPayment({ id: 'a', realm: '', method: 'm', intent: 'i', request: '' }),
    );
    expect(e.message).toBe('a Payment challenge needs realm, request');
  });
});
