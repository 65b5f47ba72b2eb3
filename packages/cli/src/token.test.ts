import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Macaroon, Token } from 'l402';
import { describe, expect, it } from 'vitest';
import { main } from './main.js';

async function l402(...argv: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await main(argv, {
    stdout: (s) => {
      stdout += s;
    },
    stderr: (s) => {
      stderr += s;
    },
  });
  return { code, stdout, stderr };
}

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');
const rootKey = '11'.repeat(32);
const otherKey = '12'.repeat(32);
const preimage = 'ab'.repeat(32);
const paymentHash = createHash('sha256').update(Buffer.from(preimage, 'hex')).digest('hex');
const tokenId = '22'.repeat(32);

/** Mints through the CLI and returns the token, failing loudly if minting did not succeed. */
async function mint(...extra: string[]): Promise<string> {
  const r = await l402('token', 'mint', '--root-key', rootKey, '--payment-hash', paymentHash, ...extra);
  expect(r).toMatchObject({ code: 0, stderr: '' });
  return r.stdout.trim();
}

async function verify(token: string, ...extra: string[]) {
  return l402('token', 'verify', token, '--root-key', rootKey, '--preimage', preimage, ...extra);
}

describe('token mint and decode', () => {
  it('mints one line of standard padded base64 that decodes to exactly the minted fields', async () => {
    const minted = await l402(
      'token',
      'mint',
      '--root-key',
      rootKey,
      '--payment-hash',
      paymentHash,
      '--token-id',
      tokenId,
      '--caveat',
      'services=svc:0',
      '--caveat',
      'svc_capabilities=read,write',
    );
    expect(minted.code).toBe(0);
    expect(minted.stderr).toBe('');
    expect(minted.stdout).toMatch(/^[A-Za-z0-9+/]+={0,2}\n$/);
    expect(minted.stdout.trim().length % 4).toBe(0);

    // The library minting the same inputs gives the same bytes, so the signature below is the real one.
    const expected = Token.mint({
      rootKey: Buffer.from(rootKey, 'hex'),
      paymentHash: Buffer.from(paymentHash, 'hex'),
      tokenId: Buffer.from(tokenId, 'hex'),
      caveats: ['services=svc:0', 'svc_capabilities=read,write'],
    }).macaroon;
    expect(minted.stdout.trim()).toBe(Macaroon.toBase64(expected));

    const decoded = await l402('token', 'decode', minted.stdout.trim());
    expect(decoded.code).toBe(0);
    expect(decoded.stderr).toBe('');
    const view = {
      location: 'lsat',
      identifier: { version: 0, paymentHash, tokenId },
      caveats: ['services=svc:0', 'svc_capabilities=read,write'],
      signature: hex(expected.signature),
    };
    // Exact text, so key order and the 2-space indent are part of the contract.
    expect(decoded.stdout).toBe(`${JSON.stringify(view, null, 2)}\n`);
  });

  it('picks a random 32-byte token id when none is given', async () => {
    const tokenIdOf = async (token: string) =>
      JSON.parse((await l402('token', 'decode', token)).stdout).identifier.tokenId;
    const ids = [await tokenIdOf(await mint()), await tokenIdOf(await mint())];
    expect(ids[0]).toMatch(/^[0-9a-f]{64}$/);
    expect(ids[1]).toMatch(/^[0-9a-f]{64}$/);
    expect(ids[0]).not.toBe(ids[1]);
  });

  it('uses --location, defaulting to lsat', async () => {
    expect(JSON.parse((await l402('token', 'decode', await mint())).stdout).location).toBe('lsat');
    expect(
      JSON.parse((await l402('token', 'decode', await mint('--location', 'https://api.example'))).stdout)
        .location,
    ).toBe('https://api.example');
  });

  it('decodes standard, URL-safe, unpadded base64, hex (either case) and V2 JSON of one token the same way', async () => {
    const std = await mint('--token-id', tokenId, '--caveat', 'services=svc:0');
    // Only meaningful if the standard form really differs from the other alphabets and carries padding.
    expect(std).toMatch(/[+/]/);
    expect(std).toMatch(/=$/);
    const bytes = Buffer.from(std, 'base64');
    const forms = [
      bytes.toString('base64url'),
      std.replace(/=+$/, ''),
      bytes.toString('base64url').padEnd(std.length, '='),
      bytes.toString('hex'),
      bytes.toString('hex').toUpperCase(),
      JSON.stringify(Macaroon.toJSON(Macaroon.decode(std))),
      `  ${std}\n`,
    ];
    const reference = await l402('token', 'decode', std);
    expect(reference.code).toBe(0);
    for (const form of forms) expect(await l402('token', 'decode', form)).toEqual(reference);
  });

  it('decodes a macaroon whose identifier is not L402, showing the identifier raw with the reason', async () => {
    const generic = Macaroon.create({
      rootKey: new Uint8Array(32),
      identifier: 'keyid',
      location: 'example',
    });
    const r = await l402('token', 'decode', Macaroon.toBase64(generic));
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).identifier).toEqual({
      raw: hex(new TextEncoder().encode('keyid')),
      error: 'identifier version 27493 is not supported (only 0)',
    });
  });

  it('shows third-party caveats as objects in their place, and binary caveat ids as hex', async () => {
    const mac: Macaroon.Macaroon = {
      location: 'lsat',
      identifier: new TextEncoder().encode('keyid'),
      caveats: [
        { id: new TextEncoder().encode('a=b') },
        {
          id: new TextEncoder().encode('third-party-id'),
          verificationId: new Uint8Array(48).fill(9),
          location: 'https://auth.example',
        },
        { id: new Uint8Array([0xff, 0xfe]) },
        { id: new TextEncoder().encode('c=d') },
      ],
      signature: new Uint8Array(32).fill(1),
    };
    const r = await l402('token', 'decode', Macaroon.toBase64(mac));
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).caveats).toEqual([
      'a=b',
      { id: 'third-party-id', location: 'https://auth.example', verificationId: '09'.repeat(48) },
      { idHex: 'fffe' },
      'c=d',
    ]);
  });
});

describe('token verify', () => {
  it('says valid for a minted token with its preimage, service, capability and time', async () => {
    const token = await mint(
      '--caveat',
      'services=svc:0',
      '--caveat',
      'svc_capabilities=read',
      '--caveat',
      'svc_valid_until=100',
    );
    expect(await verify(token, '--service', 'svc', '--capability', 'read', '--now', '50')).toEqual({
      code: 0,
      stdout: 'valid\n',
      stderr: '',
    });
    // Without --preimage the macaroon alone is checked.
    const r = await l402('token', 'verify', token, '--root-key', rootKey, '--now', '50');
    expect(r).toEqual({ code: 0, stdout: 'valid\n', stderr: '' });
  });

  it('refuses the wrong root key (exit 1, reason on stdout)', async () => {
    const r = await l402('token', 'verify', await mint(), '--root-key', otherKey);
    expect(r).toEqual({
      code: 1,
      stdout: 'invalid: token signature is not valid (L402_BAD_SIGNATURE)\n',
      stderr: '',
    });
  });

  it('refuses the wrong preimage', async () => {
    const r = await l402(
      'token',
      'verify',
      await mint(),
      '--root-key',
      rootKey,
      '--preimage',
      'cd'.repeat(32),
    );
    expect(r).toEqual({
      code: 1,
      stdout: 'invalid: preimage does not match the payment hash of the token (L402_BAD_PREIMAGE)\n',
      stderr: '',
    });
  });

  it('refuses an expired token', async () => {
    const token = await mint('--caveat', 'svc_valid_until=100');
    const r = await verify(token, '--now', '200', '--service', 'svc');
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(
      /^invalid: token expired at 1970-01-01T00:01:40\.000Z .*\(L402_TOKEN_EXPIRED\)\n$/,
    );
    expect(r.stderr).toBe('');
    expect((await verify(token, '--now', '99', '--service', 'svc')).code).toBe(0);
  });

  it('refuses a capability the token does not grant', async () => {
    const token = await mint('--caveat', 'svc_capabilities=read');
    const r = await verify(token, '--service', 'svc', '--capability', 'read', '--capability', 'write');
    expect(r).toEqual({
      code: 1,
      stdout: 'invalid: token does not grant capability write of service svc (L402_CAPABILITY_NOT_ALLOWED)\n',
      stderr: '',
    });
  });

  it('refuses a service the token is not for', async () => {
    const r = await verify(await mint('--caveat', 'services=svc:0'), '--service', 'other');
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('invalid: token is not valid for service other (L402_SERVICE_NOT_ALLOWED)\n');
  });

  it('skips unknown caveats unless --strict', async () => {
    const token = await mint('--caveat', 'custom_limit=5');
    expect((await verify(token)).stdout).toBe('valid\n');
    const r = await verify(token, '--strict');
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^invalid: .*\(L402_CAVEAT_UNKNOWN\)\n$/);
  });

  it('refuses a macaroon whose identifier is not L402 as invalid, not as bad input', async () => {
    const generic = Macaroon.create({ rootKey: Buffer.from(rootKey, 'hex'), identifier: 'keyid' });
    const r = await l402('token', 'verify', Macaroon.toBase64(generic), '--root-key', rootKey);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^invalid: .*\(L402_IDENTIFIER_VERSION\)\n$/);
  });
});

describe('token attenuate', () => {
  it('narrows a token: the narrower capability verifies, the wider one no longer does', async () => {
    const token = await mint('--caveat', 'svc_capabilities=read,write');
    expect((await verify(token, '--service', 'svc', '--capability', 'write')).code).toBe(0);

    const narrowed = await l402('token', 'attenuate', token, '--caveat', 'svc_capabilities=read');
    expect(narrowed.code).toBe(0);
    expect(narrowed.stderr).toBe('');
    expect(narrowed.stdout).toMatch(/^[A-Za-z0-9+/]+={0,2}\n$/);
    const attenuated = narrowed.stdout.trim();

    expect(await verify(attenuated, '--service', 'svc', '--capability', 'read')).toEqual({
      code: 0,
      stdout: 'valid\n',
      stderr: '',
    });
    const wider = await verify(attenuated, '--service', 'svc', '--capability', 'write');
    expect(wider.code).toBe(1);
    expect(wider.stdout).toMatch(/\(L402_CAPABILITY_NOT_ALLOWED\)\n$/);
  });

  it('appends every --caveat in order, keeping the identifier and location', async () => {
    const token = await mint('--token-id', tokenId, '--caveat', 'services=svc:0');
    const r = await l402(
      'token',
      'attenuate',
      token,
      '--caveat',
      'svc_capabilities=read',
      '--caveat',
      'svc_valid_until=100',
    );
    const before = JSON.parse((await l402('token', 'decode', token)).stdout);
    const after = JSON.parse((await l402('token', 'decode', r.stdout.trim())).stdout);
    expect(after.identifier).toEqual(before.identifier);
    expect(after.location).toBe('lsat');
    expect(after.caveats).toEqual(['services=svc:0', 'svc_capabilities=read', 'svc_valid_until=100']);
    expect(after.signature).not.toBe(before.signature);
  });

  it('cannot widen: a later, wider caveat makes the token invalid', async () => {
    const narrowed = (
      await l402('token', 'attenuate', await mint(), '--caveat', 'svc_capabilities=read')
    ).stdout.trim();
    const widened = (
      await l402('token', 'attenuate', narrowed, '--caveat', 'svc_capabilities=read,write')
    ).stdout.trim();
    const r = await verify(widened, '--service', 'svc', '--capability', 'write');
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/\(L402_CAVEAT_WIDENED\)\n$/);
  });
});

describe('bad input: exit 2 and exactly one line on stderr', () => {
  const token = Macaroon.toBase64(
    Token.mint({ rootKey: Buffer.from(rootKey, 'hex'), paymentHash: Buffer.from(paymentHash, 'hex') })
      .macaroon,
  );
  const tokenHex = Buffer.from(token, 'base64').toString('hex');
  const mintArgs = ['token', 'mint', '--root-key', rootKey, '--payment-hash', paymentHash];
  const verifyArgs = ['token', 'verify', token, '--root-key', rootKey];

  it.each<[string, string[], string]>([
    [
      'no command',
      [],
      "missing command: one of token, devnet, gateway, admin, mcp, get, tokens, wallet, budget, config (see 'l402 --help')",
    ],
    [
      'no token subcommand',
      ['token'],
      "missing command after 'token': one of decode, mint, attenuate, verify",
    ],
    ['an unknown command', ['tokenz'], "unknown command 'tokenz'"],
    ['help for an unknown command', ['help', 'tokenz'], "unknown command 'tokenz': one of token"],
    ['a misspelt subcommand', ['token', 'decod', token], "unknown command 'decod' (Did you mean decode?)"],
    [
      'an unknown option',
      [...verifyArgs, '--servic', 'svc'],
      "unknown option '--servic' (Did you mean --service?)",
    ],
    ['a missing argument', ['token', 'decode'], "missing required argument 'token'"],
    ['an extra argument', ['token', 'decode', token, token], 'too many arguments'],
    ['bad base64', ['token', 'decode', 'AgE!'], 'macaroon is not valid base64'],
    ['a truncated macaroon', ['token', 'decode', token.slice(0, 40)], 'macaroon is truncated'],
    ['truncated hex', ['token', 'decode', tokenHex.slice(0, 60)], 'macaroon is truncated'],
    ['hex that is no macaroon either way', ['token', 'decode', 'abcd'], 'first byte 0xab'],
    ['an empty token', ['token', 'decode', ''], 'macaroon is empty'],
    ['a whole credential', ['token', 'decode', `L402 ${token}:${preimage}`], 'pass the preimage'],
    [
      'a short root key',
      ['token', 'mint', '--root-key', '11'.repeat(31), '--payment-hash', paymentHash],
      '--root-key must be 32 bytes',
    ],
    [
      'a root key that is not hex',
      ['token', 'mint', '--root-key', 'zz'.repeat(32), '--payment-hash', paymentHash],
      '--root-key must be hex',
    ],
    [
      'odd-length hex',
      ['token', 'mint', '--root-key', `${rootKey}1`, '--payment-hash', paymentHash],
      '--root-key must be hex',
    ],
    [
      'a long payment hash',
      ['token', 'mint', '--root-key', rootKey, '--payment-hash', `${paymentHash}00`],
      '--payment-hash must be 32 bytes',
    ],
    [
      'a short token id',
      [...mintArgs, '--token-id', '22'],
      '--token-id must be 32 bytes (64 hex digits), got 1 byte',
    ],
    [
      'a missing --root-key',
      ['token', 'mint', '--payment-hash', paymentHash],
      "required option '--root-key <hex>' not specified",
    ],
    [
      'an option without its value',
      [...mintArgs, '--caveat'],
      "option '--caveat <key=value>' argument missing",
    ],
    [
      'a caveat that is not key=value',
      [...mintArgs, '--caveat', 'foo'],
      'caveat "foo" is not of the form key=value',
    ],
    ['a caveat with an empty key', [...mintArgs, '--caveat', '=v'], 'is not of the form key=value'],
    ['a caveat key with whitespace', [...mintArgs, '--caveat', 'a\nb=c'], 'contains whitespace'],
    [
      'attenuate without --caveat',
      ['token', 'attenuate', token],
      "required option '--caveat <key=value>' not specified",
    ],
    [
      'attenuate with a bad caveat',
      ['token', 'attenuate', token, '--caveat', 'nope'],
      'is not of the form key=value',
    ],
    ['a short preimage', [...verifyArgs, '--preimage', 'ab'.repeat(16)], '--preimage must be 32 bytes'],
    [
      'a wrong-length verify root key',
      ['token', 'verify', token, '--root-key', '11'],
      '--root-key must be 32 bytes',
    ],
    [
      '--now that is not a unix time',
      [...verifyArgs, '--now', '1.5'],
      '--now must be a unix time in whole seconds',
    ],
    [
      '--capability without --service',
      [...verifyArgs, '--capability', 'read'],
      '--capability needs --service',
    ],
  ])('%s', async (_name, argv, message) => {
    const r = await l402(...argv);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^l402: [^\n]+\n$/);
    expect(r.stderr).toContain(message);
  });

  it('never echoes a secret option value in its error', async () => {
    const secret = 'c0ffee'.repeat(10);
    const r = await l402('token', 'mint', '--root-key', secret, '--payment-hash', paymentHash);
    expect(r.code).toBe(2);
    expect(r.stderr).not.toContain(secret);
  });
});

describe('the program', () => {
  it('prints its package version', async () => {
    const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
    expect(await l402('--version')).toEqual({ code: 0, stdout: `${version}\n`, stderr: '' });
  });

  it('lists its commands in --help', async () => {
    const root = await l402('--help');
    expect(root.code).toBe(0);
    expect(root.stderr).toBe('');
    expect(root.stdout).toMatch(/^Usage: l402 /);
    expect(root.stdout).toContain('token');

    const group = await l402('token', '--help');
    expect(group.code).toBe(0);
    for (const name of ['decode', 'mint', 'attenuate', 'verify']) expect(group.stdout).toContain(name);
    expect((await l402('help', 'token')).stdout).toBe(group.stdout);
  });

  it('reports an unexpected failure as an internal error (exit 70), not a stack trace', async () => {
    let stderr = '';
    const code = await main(['token', 'decode', await mint()], {
      stdout: () => {
        throw new Error('write EPIPE');
      },
      stderr: (s) => {
        stderr += s;
      },
    });
    expect(code).toBe(70);
    expect(stderr).toBe('l402: internal error: write EPIPE\n');
  });
});
