import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { StartError } from '../Errors.js';
import { certificateAt, masterKeyAt, selfSignedAt } from './secrets.js';

const dir = mkdtempSync(join(tmpdir(), 'l402-secrets-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('masterKeyAt', () => {
  it('makes 32 random bytes 0600 in a 0700 directory once, then reads the same key', () => {
    const path = join(dir, 'new', 'master.key');
    const key = masterKeyAt(path);
    expect(key).toHaveLength(32);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'new')).mode & 0o777).toBe(0o700);
    expect(masterKeyAt(path)).toEqual(key);
  });

  it('refuses a key file shorter than 32 bytes', () => {
    const path = join(dir, 'short.key');
    writeFileSync(path, 'too short');
    expect(() => masterKeyAt(path)).toThrow(StartError);
    expect(() => masterKeyAt(path)).toThrow(/master key in .* is 9 bytes; it must be at least 32/);
  });
});

describe('serving certificates', () => {
  it('makes a self-signed pair for the hosts, keeps it, and remakes it once expired', () => {
    const cert = join(dir, 'tls', 'tls.cert');
    const key = join(dir, 'tls', 'tls.key');
    const made = selfSignedAt(cert, key, ['localhost', '127.0.0.1']);
    const x509 = new X509Certificate(made.cert);
    expect(x509.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(x509.checkHost('localhost')).toBe('localhost');
    expect(statSync(key).mode & 0o777).toBe(0o600);
    expect(selfSignedAt(cert, key, ['localhost']).cert).toEqual(made.cert);
    const later = Date.parse(x509.validTo) + 1000;
    const remade = selfSignedAt(cert, key, ['localhost'], () => later);
    expect(remade.cert).not.toEqual(made.cert);
    expect(readFileSync(cert)).toEqual(remade.cert);
  });

  it('names the file it cannot read', () => {
    let error: unknown;
    try {
      certificateAt(join(dir, 'missing.cert'), join(dir, 'missing.key'));
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(StartError);
    expect(error).toMatchObject({ code: 'L402_GATEWAY_TLS' });
    expect((error as Error).message).toMatch(/cannot read the TLS certificate .*missing\.cert \(ENOENT\)/);
  });
});
