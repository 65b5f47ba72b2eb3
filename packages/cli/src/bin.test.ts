import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt, root } from './testing.js';

// The real, built command: these tests prove the published entry point works, not just `main()`.
const bin = join(root, 'packages/cli/bin/l402.js');

beforeAll(ensureBuilt, 120_000);

function l402(...args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: root, encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const rootKey = '5a'.repeat(32);
const preimage = '07'.repeat(32);
const paymentHash = createHash('sha256').update(Buffer.from(preimage, 'hex')).digest('hex');

describe('the l402 binary', () => {
  it('mints, decodes, attenuates and verifies a token end to end', () => {
    const minted = l402(
      'token',
      'mint',
      '--root-key',
      rootKey,
      '--payment-hash',
      paymentHash,
      '--caveat',
      'api_capabilities=read,write',
    );
    expect(minted).toMatchObject({ code: 0, stderr: '' });
    const token = minted.stdout.trim();

    const decoded = l402('token', 'decode', token);
    expect(decoded.code).toBe(0);
    expect(JSON.parse(decoded.stdout)).toMatchObject({
      location: 'lsat',
      identifier: { version: 0, paymentHash },
      caveats: ['api_capabilities=read,write'],
    });

    const narrowed = l402('token', 'attenuate', token, '--caveat', 'api_capabilities=read');
    expect(narrowed).toMatchObject({ code: 0, stderr: '' });
    const verifyArgs = [
      'token',
      'verify',
      narrowed.stdout.trim(),
      '--root-key',
      rootKey,
      '--preimage',
      preimage,
      '--service',
      'api',
    ];

    expect(l402(...verifyArgs, '--capability', 'read')).toEqual({ code: 0, stdout: 'valid\n', stderr: '' });
    const wider = l402(...verifyArgs, '--capability', 'write');
    expect(wider.code).toBe(1);
    expect(wider.stdout).toMatch(/^invalid: .*\(L402_CAPABILITY_NOT_ALLOWED\)\n$/);
  });

  it('exits 2 with one line on stderr for bad input', () => {
    const r = l402('token', 'mint', '--root-key', 'abcd', '--payment-hash', paymentHash);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('l402: --root-key must be 32 bytes (64 hex digits), got 2 bytes\n');
  });

  it('is linked into node_modules/.bin by npm, so `npx l402` works from the repo root', () => {
    const link = join(root, 'node_modules/.bin/l402');
    expect(existsSync(link)).toBe(true);
    const help = execFileSync(link, ['--help'], { cwd: root, encoding: 'utf8' });
    expect(help).toMatch(/^Usage: l402 /);
    expect(help).toContain('token');
  });
});

describe('l402 devnet', () => {
  it('runs a devnet, publishes it, serves real payments, and stops cleanly on SIGTERM', async () => {
    const { spawn } = await import('node:child_process');
    const { mkdtempSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { connect } = await import('l402/lightning');
    const home = mkdtempSync(join(tmpdir(), 'l402-cli-devnet-'));
    const child = spawn(process.execPath, [bin, 'devnet', '--json', '--home', home], { cwd: root });
    try {
      const line = await new Promise<string>((resolve, reject) => {
        let out = '';
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          const nl = out.indexOf('\n');
          if (nl >= 0) resolve(out.slice(0, nl));
        });
        child.on('exit', (code) => reject(new Error(`devnet exited early with ${code}`)));
      });
      const doc = JSON.parse(line);
      expect(existsSync(join(home, 'devnet.json'))).toBe(true);
      const merchant = await connect(doc.nodes.merchant.uris.cln);
      const payer = await connect(doc.nodes.payer.uris.lnd);
      const invoice = await merchant.createInvoice({ amountMsat: 5_000n });
      const paid = await payer.pay(invoice.paymentRequest, { maxFeeMsat: 1_000n, timeoutMs: 20_000 });
      expect(createHash('sha256').update(paid.preimage).digest()).toEqual(Buffer.from(invoice.paymentHash));
      await Promise.all([merchant.close(), payer.close()]);
      const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(existsSync(join(home, 'devnet.json'))).toBe(false);
    } finally {
      child.kill('SIGKILL');
      rmSync(home, { recursive: true, force: true });
    }
  }, 60_000);

  it('refuses a bad --nodes with exit 2 and one line', () => {
    const r = l402('devnet', '--nodes', '0');
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });
});
