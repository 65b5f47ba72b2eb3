import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import * as Challenge from './Challenge.js';
import { HeaderError } from './Errors.js';
import { formatChallenge, parseChallenges } from './internal/authParams.js';

const RUNS = { numRuns: 5000 };

/** Runs `fn`; anything thrown must be a HeaderError. Returns the result or the error's code. */
function outcome<T>(fn: () => T): T | string {
  try {
    return fn();
  } catch (e) {
    if (!(e instanceof HeaderError)) throw e;
    return e.code;
  }
}

// Pieces that steer random text into the tokenizer's interesting states.
const soup = fc
  .array(
    fc.oneof(
      fc.constantFrom(
        'L402',
        'lsat',
        'Payment',
        'Basic',
        'macaroon',
        'token',
        'invoice',
        'version',
        'id',
        'realm',
      ),
      fc.constantFrom(
        ' ',
        '\t',
        ',',
        ', ',
        '"',
        '\\',
        '=',
        '==',
        '/',
        '+',
        'AgE',
        '0',
        '\u0001',
        '\r\n',
        'é',
        '\u007f',
      ),
      fc.string({ maxLength: 3 }),
    ),
    { maxLength: 40 },
  )
  .map((parts) => parts.join(''));
const anyText = fc.oneof(soup, fc.string({ unit: 'binary', maxLength: 200 }), fc.string({ maxLength: 200 }));

const TCHARS = "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const token = fc.string({ unit: fc.constantFrom(...TCHARS), minLength: 1, maxLength: 12 });
const token68 = fc
  .tuple(
    fc.string({ unit: fc.constantFrom(...'-._~+/ABCxyz019'), minLength: 1, maxLength: 20 }),
    fc.integer({ min: 0, max: 2 }),
  )
  .map(([body, pad]) => body + '='.repeat(pad));
// Whatever a quoted-string can carry: HTAB, visible ASCII, space, and every code unit from 0x80 up.
const printableChar = fc.oneof(
  fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)),
  fc.constantFrom('\t', '"', '\\', ',', '='),
  fc.integer({ min: 0x80, max: 0xffff }).map((c) => String.fromCharCode(c)),
);
const printable = fc.string({ unit: printableChar, maxLength: 30 });
const base64 = fc.base64String({ minLength: 4, maxLength: 400 });
const bolt11 = fc.stringMatching(/^ln(bc|tb|bcrt|sb)[0-9]{0,6}[munp]?1[02-9ac-hj-np-z]{20,300}$/);
const schemes = fc.subarray(['LSAT', 'L402'] as const, { minLength: 1 });

/** A well-formed challenge and the tokenizer output it must give. */
const challenge = fc.oneof(
  fc
    .tuple(
      token,
      fc.uniqueArray(fc.tuple(token, printable), { maxLength: 6, selector: ([name]) => name.toLowerCase() }),
    )
    .map(([scheme, pairs]) => ({
      text: formatChallenge(scheme, pairs),
      parsed: { scheme, params: Object.fromEntries(pairs.map(([n, v]) => [n.toLowerCase(), v])) },
    })),
  fc.tuple(token, token68).map(([scheme, t68]) => ({
    text: `${scheme} ${t68}`,
    parsed: { scheme, params: {}, token68: t68 },
  })),
);

/** Header lines mixing L402/LSAT, Payment and foreign offers, complete or not, quoted or not. */
const offerLine = fc
  .array(
    fc.oneof(
      fc.tuple(
        fc.mixedCase(fc.constantFrom('L402', 'LSAT', 'Payment', 'Basic', 'Bearer')),
        fc.shuffledSubarray(
          [
            'macaroon',
            'token',
            'invoice',
            'version',
            'id',
            'realm',
            'method',
            'intent',
            'request',
            'expires',
            'x',
          ],
          { minLength: 0 },
        ),
        fc.constantFrom('AgE=', 'lnbc1', '0', 'v', 'a, b', 'q"q'),
        fc.boolean(),
      ),
    ),
    { minLength: 1, maxLength: 4 },
  )
  .map((offers) =>
    offers
      .map(([scheme, names, value, quoted]) => {
        const list = names.map(
          (n) => `${n}=${quoted || !/^[\w=+/.-]+$/.test(value) ? JSON.stringify(value) : value}`,
        );
        return list.length === 0 ? scheme : `${scheme} ${list.join(', ')}`;
      })
      .join(', '),
  );

describe('Challenge fuzz', () => {
  it('throws nothing but HeaderError on arbitrary input', () => {
    fc.assert(
      fc.property(
        fc.oneof(anyText, fc.array(anyText, { maxLength: 4 })),
        fc.option(fc.nat(300)),
        (header, max) => {
          const result = outcome(() => Challenge.parse(header, max === null ? {} : { maxLength: max }));
          const lines = typeof header === 'string' ? [header] : header;
          if (max !== null && lines.join(', ').length > max) expect(result).toBe('L402_HEADER_TOO_LARGE');
          if (Array.isArray(result)) {
            for (const c of result) {
              if (c.scheme === 'Payment')
                expect(c.id && c.realm && c.method && c.intent && c.request).toBeTruthy();
              else expect(c.macaroon && c.invoice).toBeTruthy();
            }
          }
          outcome(() => parseChallenges(typeof header === 'string' ? header : header.join(', ')));
        },
      ),
      RUNS,
    );
  });

  it('round-trips format -> parse for base64 macaroons and bolt11 invoices', () => {
    fc.assert(
      fc.property(
        base64,
        bolt11,
        schemes,
        fc.boolean(),
        fc.boolean(),
        (macaroon, invoice, s, spec, joined) => {
          const lines = Challenge.format({ macaroon, invoice }, { schemes: s, spec });
          const found = Challenge.parse(joined ? lines.join(', ') : lines);
          expect(
            found.map((c) => c.scheme !== 'Payment' && [c.scheme, c.macaroon, c.invoice, c.version]),
          ).toEqual(s.map((scheme) => [scheme, macaroon, invoice, spec ? '0' : undefined]));
          expect(Challenge.l402(found)?.scheme).toBe(s.includes('L402') ? 'L402' : 'LSAT');
        },
      ),
      RUNS,
    );
  });

  it('round-trips the generic formatter over printable values, alone and in joined lists', () => {
    fc.assert(
      fc.property(fc.array(challenge, { minLength: 1, maxLength: 4 }), (list) => {
        expect(parseChallenges(list.map((c) => c.text).join(', '))).toEqual(list.map((c) => c.parsed));
      }),
      RUNS,
    );
  });

  it('round-trips formatPayment over printable values', () => {
    const required = fc.string({ unit: printableChar, minLength: 1, maxLength: 20 });
    fc.assert(
      fc.property(
        fc.record({ id: required, realm: required, method: required, intent: required, request: required }),
        fc.record(
          { expires: printable, digest: printable, description: printable, opaque: printable },
          { requiredKeys: [] },
        ),
        (fields, optional) => {
          const [c] = Challenge.parse(Challenge.formatPayment({ ...fields, ...optional }));
          const { scheme, params, ...rest } = c as Challenge.PaymentChallenge;
          expect(rest).toEqual({ ...fields, ...optional });
        },
      ),
      RUNS,
    );
  });

  it('is insensitive to the case of schemes and parameter names', () => {
    fc.assert(
      fc.property(
        base64,
        bolt11,
        fc.boolean(),
        fc.array(fc.boolean(), { minLength: 64, maxLength: 64 }),
        (...args) => {
          const [macaroon, invoice, spec, mask] = args;
          const lines = [
            ...Challenge.format({ macaroon, invoice }, { spec }),
            'Payment id="a", realm="r", method="lightning", intent="charge", request="cQ"',
          ];
          let k = 0;
          const recase = (word: string) =>
            [...word].map((ch) => (mask[k++ % mask.length] ? ch.toUpperCase() : ch.toLowerCase())).join('');
          // Schemes and names are the words at a line start or after ", " and before " " or "="; the values
          // here (base64, bolt11, fixed words) never contain ", ", so no value is touched.
          const recased = lines.map((line) =>
            line.replace(
              /(^|, )([A-Za-z0-9]+)(?=[ =])/g,
              (_, sep: string, word: string) => sep + recase(word),
            ),
          );
          expect(Challenge.parse(recased)).toEqual(Challenge.parse(lines));
          expect(Challenge.parse(recased.join(', '))).toEqual(Challenge.parse(lines));
        },
      ),
      RUNS,
    );
  });

  it('gives the same result for header lines and for the lines joined with ", "', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            offerLine,
            challenge.map((c) => c.text),
          ),
          { minLength: 1, maxLength: 4 },
        ),
        (lines) => {
          expect(outcome(() => Challenge.parse(lines.join(', ')))).toEqual(
            outcome(() => Challenge.parse(lines)),
          );
        },
      ),
      RUNS,
    );
  });
});
