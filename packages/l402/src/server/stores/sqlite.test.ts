/**
 * The SQLite store against the shared contract, then what only a file can get wrong: its mode, WAL,
 * surviving a reopen and a `kill -9`, read-only places, and files it must refuse to read.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { fromHex } from '../../internal/bytes.js';
import * as Sqlite from './sqlite.js';
import { describeStore, openSession, record } from './storeContract.js';

const dir = mkdtempSync(join(tmpdir(), 'l402-sqlite-'));
// Children run as another user when the tests run as root (see below): they must reach the directory.
chmodSync(dir, 0o755);
let files = 0;
const nextPath = (): string => join(dir, `store-${files++}.db`);

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describeStore('SQLite', () => Sqlite.open({ path: nextPath() }));

/**
 * Node 20 cannot run TypeScript, and a child importing dist/ could test a stale build: these loader
 * hooks let a child process import the store's own sources, transpiled on the fly by TypeScript.
 */
const HOOKS = `
import { readFile } from 'node:fs/promises';
import ts from ${JSON.stringify(pathToFileURL(createRequire(import.meta.url).resolve('typescript')).href)};
export async function resolve(specifier, context, next) {
  try {
    return await next(specifier, context);
  } catch (error) {
    if (!specifier.endsWith('.js') || !context.parentURL?.endsWith('.ts')) throw error;
    return next(specifier.slice(0, -3) + '.ts', context);
  }
}
export async function load(url, context, next) {
  if (!url.endsWith('.ts')) return next(url, context);
  const compilerOptions = { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 };
  const { outputText } = ts.transpileModule(await readFile(new URL(url), 'utf8'), { fileName: url, compilerOptions });
  return { format: 'module', source: outputText, shortCircuit: true };
}`;
const REGISTER = `import { register } from 'node:module'; register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(HOOKS)}`)});`;

/**
 * Runs `body` in a new Node process with `Sqlite` bound to this directory's sqlite.ts. Root ignores file
 * permissions, so when the tests run as root, `asOtherUser` runs the child as `nobody`.
 */
function child(body: string, asOtherUser = false): ChildProcess {
  const code = `const Sqlite = await import(${JSON.stringify(new URL('./sqlite.ts', import.meta.url).href)});\n${body}`;
  const user = asOtherUser && process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};
  return spawn(
    process.execPath,
    ['--import', `data:text/javascript,${encodeURIComponent(REGISTER)}`, '--input-type=module', '-e', code],
    { stdio: ['ignore', 'pipe', 'pipe'], ...user },
  );
}

/** Everything a child prints, once it exits. */
async function output(process: ChildProcess): Promise<{ stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  process.stdout?.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  process.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  await new Promise((done) => process.on('exit', done));
  return { stdout, stderr };
}

/**
 * What `Sqlite.open` rejects with for each path (or 'opened'), in one child running as another user:
 * one child, because each one loads TypeScript.
 */
async function openAsOtherUser(paths: readonly string[]): Promise<unknown[]> {
  const { stdout, stderr } = await output(
    child(
      `const results = [];
      for (const path of ${JSON.stringify(paths)}) {
        try {
          await (await Sqlite.open({ path })).close();
          results.push('opened');
        } catch (e) {
          results.push({ name: e.name, code: e.code, message: e.message });
        }
      }
      console.log(JSON.stringify(results));`,
      true,
    ),
  );
  if (stdout === '') throw new Error(`the child printed nothing: ${stderr}`);
  return JSON.parse(stdout);
}

describe('Sqlite.open', () => {
  it('creates the file with mode 0600 in WAL mode, and keeps everything across close and reopen', async () => {
    const path = join(dir, 'nested', 'deeper', 'store.db');
    const store = await Sqlite.open({ path });
    const [a, b] = [record(), record()];
    await store.mint(a);
    await store.mint(b);
    await store.settle(a.paymentHash, 1_700_000_500);
    await store.revoke({ idHash: b.idHash });
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(`${path}-wal`).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'nested')).mode & 0o777).toBe(0o700);
    await store.close();

    const raw = new Database(path, { readonly: true });
    expect(raw.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(raw.prepare('SELECT version FROM schema_version').pluck().all()).toEqual([5]);
    raw.close();

    const reopened = await Sqlite.open({ path });
    expect(await reopened.rootKey(a.idHash)).toEqual(a.rootKey);
    expect(await reopened.rootKey(b.idHash)).toBeUndefined();
    expect(await reopened.transactions()).toMatchObject([
      { tokenId: b.tokenId, revoked: true },
      { tokenId: a.tokenId, state: 'settled', settledAt: 1_700_000_500 },
    ]);
    expect(await reopened.revocationsSince(0)).toMatchObject([{ seq: 1, idHash: b.idHash }]);
    await reopened.close();
  });

  it('migrates a schema-1 database: its tokens keep working and get their whole price as credit', async () => {
    const path = nextPath();
    const store = await Sqlite.open({ path });
    const a = record({ priceMsat: 5_000n });
    await store.mint(a);
    await store.close();
    // What a database written before metered credit and MPP looks like: no spent_msat, no MPP tables,
    // no summary index, schema version 1.
    const raw = new Database(path);
    raw.exec(
      'ALTER TABLE l402_transactions DROP COLUMN spent_msat; DROP TABLE mpp_consumed; DROP TABLE mpp_sessions; ' +
        'DROP TABLE server_secrets; DROP INDEX l402_transactions_service; UPDATE schema_version SET version = 1',
    );
    raw.close();

    const migrated = await Sqlite.open({ path });
    expect(await migrated.rootKey(a.idHash)).toEqual(a.rootKey);
    expect(await migrated.debit(a.tokenId, 2_000n)).toEqual({ ok: true, remainingMsat: 3_000n });
    expect(await migrated.summarizeTransactions()).toMatchObject({ count: 1, amountMsat: 5_000n });
    await migrated.close();
    const check = new Database(path, { readonly: true });
    expect(check.prepare('SELECT version FROM schema_version').pluck().all()).toEqual([5]);
    // A count by service reads the new index alone.
    const plan = check.prepare(
      "EXPLAIN QUERY PLAN SELECT count(*) FROM l402_transactions WHERE service = 'api'",
    );
    expect(plan.all()).toMatchObject([
      { detail: 'SEARCH l402_transactions USING COVERING INDEX l402_transactions_service (service=?)' },
    ]);
    check.close();
  });

  it('migrates a schema-3 database: its top-ups stay spent, and new ones answer their retries', async () => {
    const path = nextPath();
    const store = await Sqlite.open({ path });
    const base = { expiresAt: 1_700_000_900, now: 1_700_000_000 };
    const sessionId = await openSession(store);
    const old = { ...base, paymentHash: randomBytes(32), challengeId: 'old', sats: 5n };
    expect(await store.topUpSession(sessionId, old)).toMatchObject({ ok: true });
    await store.close();
    // What a database written before top-ups were remembered per session looks like.
    const raw = new Database(path);
    raw.exec(
      'ALTER TABLE mpp_consumed DROP COLUMN top_up_session; DROP INDEX l402_transactions_service; ' +
        'UPDATE schema_version SET version = 3',
    );
    raw.close();

    const migrated = await Sqlite.open({ path });
    // A top-up consumed before the migration does not say which session it credited: still refused.
    expect(await migrated.topUpSession(sessionId, old)).toMatchObject({ ok: false, reason: 'consumed' });
    const fresh = { ...old, paymentHash: randomBytes(32), challengeId: 'new' };
    expect(await migrated.topUpSession(sessionId, fresh)).toMatchObject({
      ok: true,
      session: { depositSats: 20n },
    });
    expect(await migrated.topUpSession(sessionId, fresh)).toMatchObject({
      ok: false,
      reason: 'already-credited',
    });
    await migrated.close();
    const check = new Database(path, { readonly: true });
    expect(check.prepare('SELECT version FROM schema_version').pluck().all()).toEqual([5]);

    check.close();
  });

  it('keeps every mint that resolved when the process is then killed with SIGKILL', async () => {
    const path = nextPath();
    const minting = child(`
      const store = await Sqlite.open({ path: ${JSON.stringify(path)} });
      const random = () => crypto.getRandomValues(new Uint8Array(32));
      const hex = (bytes) => Buffer.from(bytes).toString('hex');
      for (let i = 0; ; i++) {
        const [idHash, rootKey] = [random(), random()];
        await store.mint({ idHash, rootKey, tokenId: random(), paymentHash: random(), service: 'api',
          priceMsat: 1000n, createdAt: i, invoiceExpiresAt: i + 3600 });
        process.stdout.write('minted ' + hex(idHash) + ' ' + hex(rootKey) + '\\n');
      }`);
    let printed = '';
    const exited = output(minting);
    await new Promise<void>((enough, failed) => {
      minting.stdout?.on('data', (chunk: Buffer) => {
        printed += chunk.toString();
        if (printed.split('\n').length > 20) enough();
      });
      minting.on('exit', () => failed(new Error('the child exited before it was killed')));
    });
    minting.kill('SIGKILL');
    await exited;
    expect(minting.signalCode).toBe('SIGKILL');

    const minted = printed
      .split('\n')
      .filter((line) => line.startsWith('minted ') && line.length === 7 + 64 + 1 + 64)
      .map((line) => line.split(' '));
    expect(minted.length).toBeGreaterThanOrEqual(20);
    const store = await Sqlite.open({ path });
    for (const [, idHash, rootKey] of minted) {
      expect(await store.rootKey(fromHex(idHash!))).toEqual(fromHex(rootKey!));
    }
    await store.close();
  });

  it('refuses a read-only directory or file with L402_STORE_UNAVAILABLE, saying so', async () => {
    const readOnlyDir = join(dir, 'read-only-dir');
    mkdirSync(readOnlyDir, { mode: 0o555 });
    const readOnlyFile = nextPath();
    await (await Sqlite.open({ path: readOnlyFile })).close();
    chmodSync(readOnlyFile, 0o444);
    // The control: a file and directory that user may write open fine, so the refusals are about permissions.
    const writableDir = join(dir, 'writable-dir');
    mkdirSync(writableDir);
    chmodSync(writableDir, 0o777);
    const writableFile = join(writableDir, 'store.db');
    await (await Sqlite.open({ path: writableFile })).close();
    chmodSync(writableFile, 0o666);

    const [noDir, noFile, opened] = await openAsOtherUser([
      join(readOnlyDir, 'store.db'),
      readOnlyFile,
      writableFile,
    ]);
    const refused = (path: string) => ({
      name: 'StoreError',
      code: 'L402_STORE_UNAVAILABLE',
      message: `sqlite: ${path}: cannot create or write the database file: EACCES: permission denied, open '${path}' (the file or its directory is read-only: check permissions and that the disk is mounted read-write)`,
    });
    expect(noDir).toEqual(refused(join(readOnlyDir, 'store.db')));
    expect(noFile).toEqual(refused(readOnlyFile));
    expect(opened).toBe('opened');
  });

  it('refuses a file that is not a database, or was written by a newer l402, with L402_STORE_CORRUPT', async () => {
    const text = nextPath();
    writeFileSync(text, 'this is not a database, just text long enough to have a header'.repeat(10));
    await expect(Sqlite.open({ path: text })).rejects.toMatchObject({
      name: 'StoreError',
      code: 'L402_STORE_CORRUPT',
      message: expect.stringContaining('not a database'),
    });

    const newer = nextPath();
    await (await Sqlite.open({ path: newer })).close();
    const raw = new Database(newer);
    raw.prepare('UPDATE schema_version SET version = 99').run();
    raw.close();
    await expect(Sqlite.open({ path: newer })).rejects.toMatchObject({
      code: 'L402_STORE_CORRUPT',
      message: expect.stringContaining('schema version 99, newer than this l402 (5)'),
    });
  });

  it('reports a row that does not fit as L402_STORE_CORRUPT', async () => {
    const path = nextPath();
    const store = await Sqlite.open({ path });
    const r = record();
    await store.mint(r);
    const raw = new Database(path);
    raw.prepare("UPDATE secrets SET secret = x'0102'").run();
    raw.close();
    await expect(store.rootKey(r.idHash)).rejects.toMatchObject({
      code: 'L402_STORE_CORRUPT',
      message: 'sqlite: unreadable row: secret is not 32 bytes',
    });
    await store.close();
  });
});
