/**
 * `l402 admin` as users run it: the built binary against `l402 gateway` (also the built binary, on
 * embedded defaults, which serve the admin API), with a real devnet payment in between.
 */
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Devnet } from '@l402/devnet';
import { Challenge, Credential, Invoice, Macaroon } from 'l402';
import { type Backend, connect } from 'l402/lightning';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const bin = join(root, 'packages/cli/bin/l402.js');
const home = mkdtempSync(join(tmpdir(), 'l402-admin-cli-'));
let devnet: Devnet.Devnet;
let payer: Backend;
let child: ChildProcess;
let url: string;

function newestSource(): number {
  let newest = 0;
  for (const pkg of ['cli', 'l402', 'devnet', 'gateway']) {
    const dir = join(root, 'packages', pkg, 'src');
    for (const file of readdirSync(dir, { recursive: true, encoding: 'utf8' })) {
      if (file.endsWith('.ts') && !file.endsWith('.test.ts'))
        newest = Math.max(newest, statSync(join(dir, file)).mtimeMs);
    }
  }
  return newest;
}

beforeAll(async () => {
  const built = join(root, 'packages/cli/dist/main.js');
  if (!existsSync(built) || statSync(built).mtimeMs < newestSource()) {
    execFileSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-b'], {
      cwd: root,
      stdio: 'pipe',
    });
  }
  // The devnet lives here (as `l402 devnet` would run it); the gateway joins it.
  devnet = await Devnet.start({ home });
  payer = await connect(devnet.document.nodes.payer!.uris.lnd);
  child = spawn(process.execPath, [bin, 'gateway', '--home', home, '--listen', '127.0.0.1:0'], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stderr!.on('data', (d) => {
    stderr += d;
  });
  const banner = await new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (d) => {
      stdout += d;
      if (stdout.includes('Ctrl-C stops it.')) resolve(stdout);
    });
    child.once('exit', (code) => reject(new Error(`gateway exited with ${code}: ${stderr}`)));
  });
  url = /listening on (http:\/\/\S+)/.exec(banner)![1]!;
  expect(banner).toContain(`admin      ${url}/api/admin/ (macaroon ${join(home, 'admin.macaroon')}`);
  expect(banner).toMatch(new RegExp(`dashboard  ${url.replace(/\./g, '\\.')}/dashboard#code=[0-9a-f]{32} `));
}, 120_000);

afterAll(async () => {
  if (child !== undefined && child.exitCode === null) {
    child.kill('SIGTERM');
    await once(child, 'exit');
  }
  await payer?.close();
  await devnet?.close();
  rmSync(home, { recursive: true, force: true });
});

/** The built binary, run asynchronously (the devnet in this process must keep running meanwhile). */
function l402(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], { cwd: root, encoding: 'utf8' }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : Number((error as { code?: unknown }).code ?? 1), stdout, stderr });
    });
  });
}

const admin = async (...args: string[]) => {
  const r = await l402('admin', '--url', url, '--home', home, ...args);
  return { ...r, json: r.code === 0 && r.stdout.startsWith('{') ? JSON.parse(r.stdout) : undefined };
};

async function offer(path: string) {
  const unpaid = await fetch(`${url}${path}`);
  await unpaid.text();
  expect(unpaid.status).toBe(402);
  return Challenge.l402(Challenge.parse(unpaid.headers.get('www-authenticate')!))!;
}

describe('l402 admin', () => {
  it('runs every admin operation against the running gateway', async () => {
    const info = await admin('info');
    expect(info.code).toBe(0);
    expect(info.json).toMatchObject({ network: 'regtest', insecure: true, listen_addr: new URL(url).host });

    expect((await admin('macaroon')).stdout).toBe(
      `${readFileSync(join(home, 'admin.macaroon')).toString('hex')}\n`,
    );

    const listed = await admin('services', 'list');
    expect(listed.json.services.map((s: { name: string; price: string }) => [s.name, s.price])).toEqual([
      ['free', '1'],
      ['paid', '21'],
    ]);
    const address = listed.json.services[0].address as string;

    // A real payment for /paid, then it is in the transactions, the tokens and the stats.
    const bought = await offer('/paid/cli');
    const macaroon = Macaroon.decode(bought.macaroon);
    const { preimage } = await payer.pay(bought.invoice, { maxFeeMsat: 1_000n });
    const authorization = Credential.format({ macaroon, preimage });
    expect((await fetch(`${url}/paid/cli`, { headers: { authorization } })).status).toBe(200);
    const paymentHash = Buffer.from(Invoice.decode(bought.invoice).paymentHash).toString('hex');
    const tokenId = Buffer.from(macaroon.identifier.subarray(34, 66)).toString('hex');

    const settled = await admin('transactions', '--service', 'paid', '--state', 'settled', '--limit', '10');
    expect(settled.json.transactions).toEqual([
      expect.objectContaining({
        payment_hash: paymentHash,
        token_id: tokenId,
        price_sats: '21',
        state: 'settled',
      }),
    ]);
    const window = await admin(
      'transactions',
      '--from',
      '2000-01-01T00:00:00Z',
      '--to',
      '2000-01-02T00:00:00Z',
    );
    expect(window.json).toEqual({ transactions: [], total_count: '0' });
    const tokens = await admin('tokens', 'list');
    expect(tokens.json.tokens.map((t: { token_id: string }) => t.token_id)).toEqual([tokenId]);
    const stats = await admin('stats');
    expect(stats.json).toMatchObject({ total_revenue_sats: '21', transaction_count: '1' });

    // Price change: the next 402 asks the new price.
    const changed = await admin('services', 'set', 'paid', '--price', '30');
    expect(changed.json).toMatchObject({ name: 'paid', price: '30' });
    expect(Invoice.decode((await offer('/paid/again')).invoice).amountMsat).toBe(30_000n);

    // A new service, served at once, then removed.
    const created = await admin(
      'services',
      'set',
      'extra',
      '--address',
      address,
      '--path',
      '^/extra/',
      '--auth',
      'off',
    );
    expect(created.json).toMatchObject({ name: 'extra', auth: 'off' });
    // The demo backend answers it (its own 404 JSON): the gateway proxied it.
    expect(await (await fetch(`${url}/extra/x`)).json()).toEqual({ error: 'not found', path: '/extra/x' });
    expect((await admin('services', 'rm', 'extra')).json).toEqual({ status: 'deleted' });
    expect(await (await fetch(`${url}/extra/x`)).text()).toMatch(/no service matches this request/);

    // Revoke: the token is refused from then on.
    expect((await admin('tokens', 'revoke', tokenId)).json).toEqual({ status: 'revoked' });
    expect((await fetch(`${url}/paid/cli`, { headers: { authorization } })).status).not.toBe(200);
  }, 60_000);

  it('says what is wrong in one line, exit 2', async () => {
    const wrong = join(home, 'wrong.macaroon');
    writeFileSync(
      wrong,
      Macaroon.encode(Macaroon.create({ rootKey: new Uint8Array(32), identifier: 'admin' })),
    );
    const [bad, missing, invalid, state, refused, nowhere] = await Promise.all([
      admin('services', 'set', 'paid', '--price', 'cheap'),
      admin('services', 'rm', 'nothing'),
      admin('services', 'set', 'new', '--address', '127.0.0.1:1', '--path', '('),
      admin('transactions', '--state', 'lost'),
      l402('admin', '--url', url, '--macaroon', wrong, 'info'),
      l402('admin', '--url', 'http://127.0.0.1:1', '--home', home, 'info'),
    ]);
    expect(bad).toMatchObject({ code: 2, stderr: 'l402: --price must be a whole number, got "cheap"\n' });
    expect(missing).toMatchObject({ code: 2, stderr: 'l402: service "nothing" not found\n' });
    expect(invalid.code).toBe(2);
    expect(invalid.stderr).toMatch(/^l402: invalid path_regexp: /);
    expect(state.code).toBe(2);
    expect(state.stderr).toMatch(/^l402: state: /);
    expect(refused).toMatchObject({ code: 2, stderr: 'l402: admin macaroon verification failed\n' });
    expect(nowhere.code).toBe(2);
    expect(nowhere.stderr).toMatch(/^l402: cannot reach the gateway at http:\/\/127\.0\.0\.1:1: /);
  }, 30_000);
});
