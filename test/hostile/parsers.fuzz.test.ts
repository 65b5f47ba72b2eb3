/**
 * Long fuzz runs over every parser a hostile client or a bad file reaches: every header form
 * (`WWW-Authenticate` challenges, `Authorization`, `Macaroon`, `Grpc-Metadata-Macaroon`), macaroon
 * bytes, BOLT11 strings and the gateway's config files. Each property runs `L402_FUZZ_RUNS` cases
 * (default sized so this file stays near 30 s on a 2-core machine) from one seed, printed at the start
 * and replayable with `L402_FUZZ_SEED`.
 *
 * Two kinds of property: a parser throws nothing but its typed error (never a TypeError, a
 * RangeError, a hang or a crash), and mutating a real token never yields one that verifies (the only
 * credential that opens the door is the one the server minted, whatever its encoding).
 */
import { createHash, randomBytes } from 'node:crypto';
import { Config, Errors as GatewayErrors } from '@l402/gateway';
import fc from 'fast-check';
import { Caveat, Challenge, Credential, Errors, Identifier, Invoice, Macaroon, Token } from 'l402';
import { describe, expect, it } from 'vitest';

const RUNS = Number(process.env.L402_FUZZ_RUNS ?? 10_000);
const SEED = Number(process.env.L402_FUZZ_SEED ?? randomBytes(4).readInt32LE());
console.log(`parsers.fuzz: ${RUNS} runs per property, seed ${SEED} (L402_FUZZ_SEED=${SEED} replays)`);
const options = (runs = RUNS) => ({ numRuns: runs, seed: SEED });

/** Runs `f`; any throw that is not `typed` fails the property. */
function only(typed: abstract new (...args: never[]) => Error, f: () => unknown): void {
  try {
    f();
  } catch (error) {
    if (!(error instanceof typed)) throw error;
    expect(
      typeof (error as { code?: unknown }).code === 'string' || typed === GatewayErrors.ConfigError,
    ).toBe(true);
  }
}

// ——— a real token, the seed of every mutation ———

const preimage = new Uint8Array(randomBytes(32));
const paymentHash = new Uint8Array(createHash('sha256').update(preimage).digest());
const rootKey = new Uint8Array(randomBytes(32));
const NOW = 1_800_000_000;
const { macaroon } = Token.mint({
  rootKey,
  paymentHash,
  caveats: [
    Caveat.services([{ name: 'api', tier: 0 }]),
    Caveat.capabilities('api', ['read']),
    Caveat.validUntil('api', NOW + 3600),
    'max_items=10',
  ],
});
const bytes = Macaroon.encode(macaroon);
const base64 = Macaroon.toBase64(macaroon);
const hexPreimage = Buffer.from(preimage).toString('hex');
const honest = Credential.format({ macaroon, preimage });
const context = { service: 'api', now: NOW, capabilities: ['read'] };

/**
 * What a macaroon's signature covers: identifier, caveats, signature. The location is a hint outside
 * the HMAC chain (as in every macaroon implementation), so a token differing only there is the same.
 */
function signed(m: Macaroon.Macaroon): string {
  const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
  return JSON.stringify([hex(m.identifier), Macaroon.firstPartyCaveats(m), hex(m.signature)]);
}

/** Whether `candidate` would be granted what the honest token grants. */
function verifies(candidate: Macaroon.Macaroon, pre: Uint8Array): boolean {
  try {
    Token.verify(candidate, { rootKey, preimage: pre, context });
    return true;
  } catch (error) {
    if (!(error instanceof Errors.L402Error)) throw error;
    return false;
  }
}

/** Byte-level mutations: flips, inserts, deletions, truncation, duplication. */
const mutated = (source: Uint8Array) =>
  fc
    .array(
      fc.oneof(
        fc.record({ op: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
        fc.record({ op: fc.constant('set' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
        fc.record({
          op: fc.constant('insert' as const),
          at: fc.nat(),
          value: fc.integer({ min: 0, max: 255 }),
        }),
        fc.record({ op: fc.constant('delete' as const), at: fc.nat() }),
        fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }),
      ),
      { minLength: 1, maxLength: 4 },
    )
    .map((ops) => {
      let out = Array.from(source);
      for (const op of ops) {
        const at = out.length === 0 ? 0 : op.at % out.length;
        if (op.op === 'flip') out[at] = (out[at] ?? 0) ^ (1 << op.bit);
        else if (op.op === 'set') out[at] = op.value;
        else if (op.op === 'insert') out.splice(at, 0, op.value);
        else if (op.op === 'delete') out.splice(at, 1);
        else out = out.slice(0, at);
      }
      return new Uint8Array(out);
    });

/** Text mutations of a header value: characters replaced, inserted, removed, case changed. */
const mutatedText = (source: string) =>
  fc
    .array(
      fc.record({
        op: fc.constantFrom('replace', 'insert', 'delete', 'case'),
        at: fc.nat(),
        char: fc.constantFrom(...' ,;:="\\\t\r\n\0=+/-_aA0zZ%é\u2028L402LSAT'.split('')),
      }),
      { minLength: 1, maxLength: 5 },
    )
    .map((ops) => {
      let s = source;
      for (const { op, at, char } of ops) {
        const i = s.length === 0 ? 0 : at % s.length;
        if (op === 'replace') s = s.slice(0, i) + char + s.slice(i + 1);
        else if (op === 'insert') s = s.slice(0, i) + char + s.slice(i);
        else if (op === 'delete') s = s.slice(0, i) + s.slice(i + 1);
        else
          s =
            s.slice(0, i) +
            (s[i] === s[i]?.toUpperCase() ? s[i]?.toLowerCase() : s[i]?.toUpperCase()) +
            s.slice(i + 1);
      }
      return s;
    });

describe('header forms', () => {
  const challenge = Challenge.format({ macaroon: base64, invoice: 'lnbc10n1pjexample' }, { spec: false });

  it('Challenge.parse: only HeaderError, on arbitrary text and on mutated real challenges', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 400 }),
          fc.array(fc.string({ maxLength: 120 }), { maxLength: 4 }),
          mutatedText(challenge.join(', ')),
          fc.array(mutatedText(challenge[0]!), { minLength: 1, maxLength: 3 }),
        ),
        (header) => only(Errors.HeaderError, () => Challenge.parse(header)),
      ),
      options(),
    );
  });

  it('Credential.parse / fromHeaders / parseMacaroonHeader: only HeaderError', () => {
    const forms = (value: string | string[]) => [
      () => Credential.parse(value),
      () => Credential.fromHeaders({ authorization: value }),
      () => Credential.fromHeaders({ 'grpc-metadata-macaroon': value }),
      () => Credential.fromHeaders({ macaroon: value }),
      () => Credential.parseMacaroonHeader(typeof value === 'string' ? value : value.join(', ')),
    ];
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 300 }),
          fc.array(fc.string({ maxLength: 100 }), { maxLength: 3 }),
          mutatedText(honest),
          mutatedText(`LSAT ${base64}:${hexPreimage}, L402 ${base64}:${hexPreimage}`),
          mutatedText(`${Macaroon.toHex(macaroon)}`),
        ),
        (value) => {
          for (const f of forms(value)) only(Errors.HeaderError, f);
        },
      ),
      options(),
    );
  });

  it('a mutated Authorization value never parses to a credential that verifies, unless it is the same credential', () => {
    fc.assert(
      fc.property(mutatedText(honest), (value) => {
        let credential: Credential.Credential | undefined;
        try {
          credential = Credential.parse(value);
        } catch (error) {
          if (!(error instanceof Errors.HeaderError)) throw error;
          return;
        }
        if (credential === undefined || !verifies(credential.macaroon, credential.preimage)) return;
        // It verified: then it is the honest token, only written differently (case of the scheme,
        // whitespace, hex case of the preimage, the unsigned location).
        expect(signed(credential.macaroon)).toBe(signed(macaroon));
        expect(Buffer.from(credential.preimage).toString('hex')).toBe(hexPreimage);
      }),
      options(),
    );
  });
});

describe('macaroon bytes', () => {
  it('Macaroon.decode: only typed errors on mutated real macaroons and arbitrary bytes', () => {
    fc.assert(
      fc.property(fc.oneof(mutated(bytes), fc.uint8Array({ maxLength: 600 })), (input) => {
        only(Errors.L402Error, () => Macaroon.decode(input));
        only(Errors.L402Error, () => Macaroon.decode(Buffer.from(input).toString('base64')));
        only(Errors.L402Error, () => Identifier.decode(input));
      }),
      options(),
    );
  });

  it('no byte mutation of a real macaroon verifies unless it decodes to the same macaroon', () => {
    fc.assert(
      fc.property(mutated(bytes), (input) => {
        let decoded: Macaroon.Macaroon;
        try {
          decoded = Macaroon.decode(input);
        } catch (error) {
          if (!(error instanceof Errors.L402Error)) throw error;
          return;
        }
        if (verifies(decoded, preimage)) expect(signed(decoded)).toBe(signed(macaroon));
      }),
      options(),
    );
  });
});

describe('BOLT11 strings', () => {
  const real = Invoice.encode(
    {
      network: 'regtest',
      amountMsat: 21_000n,
      timestamp: NOW,
      paymentHash,
      paymentSecret: new Uint8Array(32).fill(3),
      description: 'fuzz',
      expiry: 3600,
    },
    new Uint8Array(32).fill(1),
  );
  it('Invoice.decode: only InvoiceError on mutated real invoices and arbitrary text', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          mutatedText(real),
          fc.string({ maxLength: 300 }),
          fc.stringMatching(/^ln(bc|tb|bcrt)[0-9a-z]{0,300}$/),
        ),
        (text) => only(Errors.InvoiceError, () => Invoice.decode(text)),
      ),
      options(),
    );
  });
});

describe('config files', () => {
  const sample = `listenaddr: "127.0.0.1:8081"
insecure: true
authenticator:
  backend: devnet
limits:
  maxheaderbytes: 8192
  headerstimeout: 2s
services:
  - name: api
    hostregexp: '^api\\.example$'
    pathregexp: '^/api/'
    address: "127.0.0.1:3000"
    price: 21
    timeout: 3600
    authwhitelistpaths: ['^/api/public/']
`;
  it('Config.parse: only ConfigError on mutated configs and arbitrary text', () => {
    fc.assert(
      fc.property(fc.oneof(mutatedText(sample), fc.string({ maxLength: 300 })), (text) =>
        only(GatewayErrors.ConfigError, () => Config.parse(text, 'fuzz.yaml', { env: {} })),
      ),
      options(Math.ceil(RUNS / 5)),
    );
  });
});
