import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { stringify } from 'yaml';
import * as Config from './Config.js';
import { ConfigError } from './Errors.js';

const SAMPLE = readFileSync(new URL('./fixtures/aperture-sample-conf.yaml', import.meta.url), 'utf8');

/** Parses, and allows only two outcomes: a frozen config, or a one-line ConfigError. */
function parseOrConfigError(text: string): void {
  let loaded: Config.Loaded | undefined;
  try {
    loaded = Config.parse(text, 'fuzz.yaml', { env: { SET: 'value' } });
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    expect(error.message).toMatch(/^fuzz\.yaml(?::\d+)?: [^\n]*$/);
    return;
  }
  expect(Object.isFrozen(loaded.config)).toBe(true);
  for (const warning of loaded.warnings) expect(warning).toMatch(/^fuzz\.yaml:\d+: [^\n]*$/);
}

const KEYS = [
  'listenaddr',
  'debuglevel',
  'basedir',
  'autocert',
  'insecure',
  'tlscertpath',
  'tlskeypath',
  'idletimeout',
  'dbbackend',
  'sqlite',
  'dbfile',
  'postgres',
  'port',
  'requireSSL',
  'authenticator',
  'backend',
  'uri',
  'lndhost',
  'tlspath',
  'macdir',
  'disable',
  'enablempp',
  'services',
  'name',
  'hostregexp',
  'pathregexp',
  'address',
  'protocol',
  'auth',
  'authscheme',
  'headers',
  'Authorization',
  'rewrite',
  'prefix',
  'timeout',
  'capabilities',
  'constraints',
  'price',
  'dynamicprice',
  'enabled',
  'grpcaddress',
  'metered',
  'httpurl',
  'prepaid',
  'credit',
  'authwhitelistpaths',
  'ratelimits',
  'requests',
  'per',
  'burst',
  'blocklist',
  'trustedproxies',
  'admin',
  'secrets',
  'redis',
  'url',
  'limits',
  'hashmail',
  'tor',
  'etcd',
  '__proto__',
  'constructor',
  '<<',
];

const TOKENS = [
  ...KEYS.map((k) => `${k}:`),
  '\n',
  '\n  ',
  '\n    ',
  ' ',
  '- ',
  ':',
  '"',
  "'",
  '[',
  ']',
  '{',
  '}',
  ',',
  '&a ',
  '*a',
  '!!binary ',
  '!file+hex:/',
  '"!file+base64:x"',
  `\${SET}`,
  `\${UNSET}`,
  '#',
  '---',
  '...',
  '|',
  '>',
  '?',
  'true',
  'false',
  'on',
  'null',
  '~',
  '0',
  '-1',
  '1.5',
  '1e999',
  '.inf',
  '0x1F',
  '"cheap"',
  'freebie 1',
  'freebie x',
  '(?=a)',
  '(?i)^/a',
  '\\',
  '"127.0.0.1:9000"',
  '":8081"',
  '"[::1]:1"',
  'lnd://h?macaroon=00',
  'devnet',
  'sqlite',
  'postgres',
  'etcd',
  '1s',
  '2m',
  '10.0.0.0/8',
  '\t',
  '\u0000',
  '\uFEFF',
  'é',
];

describe('Config.parse throws nothing but ConfigError', () => {
  test('token soup', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...TOKENS), { maxLength: 60 }), (tokens) =>
        parseOrConfigError(tokens.join('')),
      ),
      { numRuns: 2000 },
    );
  });

  test('the sample, mutated', () => {
    const edit = fc.record({
      at: fc.nat(SAMPLE.length),
      cut: fc.nat(40),
      insert: fc.oneof(fc.constantFrom(...TOKENS), fc.string({ maxLength: 8 })),
    });
    fc.assert(
      fc.property(fc.array(edit, { minLength: 1, maxLength: 4 }), (edits) => {
        let text = SAMPLE;
        for (const { at, cut, insert } of edits) {
          const i = Math.min(at, text.length);
          text = text.slice(0, i) + insert + text.slice(i + cut);
        }
        parseOrConfigError(text);
      }),
      { numRuns: 600 },
    );
  });

  test('well-formed YAML of the right keys with arbitrary values', () => {
    const scalar = fc.oneof(
      fc.string({ maxLength: 12 }),
      fc.constantFrom(
        '127.0.0.1:9000',
        ':8081',
        'on',
        'off',
        'freebie 2',
        '^/a$',
        '(',
        '1s',
        'devnet',
        'lnd://h?macaroon=00',
      ),
      fc.integer(),
      fc.double(),
      fc.boolean(),
      fc.constant(null),
    );
    const { value } = fc.letrec((tie) => ({
      value: fc.oneof(
        { depthSize: 'small' },
        scalar,
        fc.array(tie('value'), { maxLength: 3 }),
        fc.dictionary(fc.constantFrom(...KEYS), tie('value'), { maxKeys: 5 }),
      ),
    }));
    fc.assert(
      fc.property(fc.dictionary(fc.constantFrom(...KEYS), value, { maxKeys: 8 }), (doc) =>
        parseOrConfigError(stringify(doc)),
      ),
      { numRuns: 1000 },
    );
  });
});
