/**
 * The file space under the token store and the ledger: a read served from memory while the file is as
 * it was (one `stat`), every change by another store, another process or an editor seen at the next read;
 * the ledger's journal (a payment is one flushed line), a crash in the middle of a line, compaction into
 * the document today's code reads, and limits that still hold across instances.
 */
import { spawnSync } from 'node:child_process';
import {
  appendFileSync,
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import * as Ledger from './Ledger.js';
import { FileLedger, FileTokenStore, fileSpace } from './node.js';
import type * as TokenStore from './TokenStore.js';

const root = mkdtempSync(join(tmpdir(), 'l402-filespace-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = () => join(root, `${++n}`);

/** Longer than the margin a file's last change must be behind before its `stat` alone is trusted. */
const settle = () => new Promise((r) => setTimeout(r, 150));

const hex = (i: number, c = 'a') => `${i}`.padStart(64, c);
const token = (i: number, over: Partial<TokenStore.StoredToken> = {}): TokenStore.StoredToken => ({
  origin: 'https://api.example',
  path: '/',
  macaroon: 'AgE',
  paymentHash: hex(i),
  tokenId: '',
  invoice: '',
  amountSats: 10,
  state: 'paid',
  preimage: 'ab'.repeat(32),
  createdAt: 1_700_000_000_000,
  ...over,
});
const payment = (i: number, amountSats = 10) => ({
  time: Date.now(),
  origin: 'https://api.example',
  path: '/',
  amountSats,
  paymentHash: hex(i, 'b'),
  tokenId: '',
});

describe('the file space reads', () => {
  it('a settled file from memory (one stat), a file changed within the margin from disk every time', async () => {
    const dir = fresh();
    const space = fileSpace(dir);
    await space.write('doc', { v: 1 });
    // Just written: its stat cannot yet tell a change in the same clock tick, so it is read each time.
    expect(await space.read('doc')).not.toBe(await space.read('doc'));
    await settle();
    const first = await space.read('doc');
    expect(first).toEqual({ v: 1 });
    expect(await space.read('doc')).toBe(first);
    expect(Object.isFrozen(first)).toBe(true);
    await space.write('doc', undefined);
    expect(await space.read('doc')).toBeUndefined();
  });

  it('another store on the same directory writes a token: this one finds it at its next read', async () => {
    const home = fresh();
    const mine = FileTokenStore.open(home);
    const theirs = FileTokenStore.open(home);
    await theirs.put(token(1));
    await settle();
    expect((await mine.find('https://api.example', '/'))?.paymentHash).toBe(hex(1));
    expect((await mine.find('https://api.example', '/'))?.paymentHash).toBe(hex(1)); // from memory now
    // Same size, new content, a new file renamed into place (whose inode number ext4 may hand back).
    await theirs.put(token(2, { createdAt: 1_700_000_000_001 }));
    await theirs.remove('https://api.example', hex(1));
    expect((await mine.list()).map((t) => t.paymentHash)).toEqual([hex(2)]);
    // What a reader gets is its own copy: changing it changes nothing stored.
    const got = (await mine.find('https://api.example', '/')) as TokenStore.StoredToken;
    got.path = '/elsewhere';
    expect((await mine.find('https://api.example', '/'))?.path).toBe('/');
  });

  it('another process renames same-sized files into place, again and again: each one is seen', async () => {
    const dir = fresh();
    const space = fileSpace(dir);
    await space.write('doc', { v: 'x0' });
    const file = join(dir, 'doc.json');
    for (let i = 1; i <= 6; i++) {
      if (i % 2 === 0) await settle(); // half the rounds from a trusted cache, half from a fresh write
      expect(await space.read('doc')).toEqual({ v: `x${i - 1}` });
      const child = spawnSync(process.execPath, [
        '-e',
        `const fs = require('node:fs');
         for (const v of ['y${i}', 'x${i}']) {
           fs.writeFileSync(process.argv[1] + '.tmp', JSON.stringify({ v }) + '\\n', { mode: 0o600 });
           fs.renameSync(process.argv[1] + '.tmp', process.argv[1]);
         }`,
        file,
      ]);
      expect(child.status, String(child.stderr)).toBe(0);
      expect(await space.read('doc')).toEqual({ v: `x${i}` });
    }
  });

  it('an edit in place of the same size, with the modification time put back, is seen (the change time moves)', async () => {
    const dir = fresh();
    const space = fileSpace(dir);
    await space.write('doc', { v: 'aaaa' });
    const file = join(dir, 'doc.json');
    const mtime = 1_700_000_000; // whole seconds: utimes can put it back to the nanosecond
    utimesSync(file, mtime, mtime);
    await settle();
    const before = statSync(file, { bigint: true });
    const cached = await space.read('doc');
    expect(await space.read('doc')).toBe(cached); // served from memory

    const fd = openSync(file, 'r+');
    writeSync(fd, '{"v":"bbbb"}', 0);
    closeSync(fd);
    utimesSync(file, mtime, mtime);
    const after = statSync(file, { bigint: true });
    expect([after.ino, after.size, after.mtimeNs]).toEqual([before.ino, before.size, before.mtimeNs]);
    expect(await space.read('doc')).toEqual({ v: 'bbbb' });
  });
});

describe("the ledger's journal", () => {
  it('a payment is appended, flushed, to a 0600 journal; the document is not rewritten', async () => {
    const home = fresh();
    const dir = join(home, 'client');
    const ledger = FileLedger.open(home, { totalSats: 1000 });
    await ledger.reserve(payment(1));
    await ledger.settle(hex(1, 'b'), { amountSats: 10, feeSats: 1 });
    expect(existsSync(join(dir, 'ledger.json'))).toBe(false);
    const journal = join(dir, 'ledger.journal');
    expect(statSync(journal).mode & 0o777).toBe(0o600);
    expect(
      readFileSync(journal, 'utf8')
        .trimEnd()
        .split('\n')
        .map((l) => JSON.parse(l).op),
    ).toEqual(['limits', 'add', 'settle']);
    // Reopened with the same limits: nothing to record.
    await FileLedger.open(home, { totalSats: 1000 }).spent();
    await ledger.reserve(payment(2));
    expect(readFileSync(journal, 'utf8').trimEnd().split('\n')).toHaveLength(4);
    expect(await FileLedger.open(home).payments()).toMatchObject([
      { state: 'paid', feeSats: 1 },
      { state: 'pending', paymentHash: hex(2, 'b') },
    ]);
    expect(await FileLedger.open(home).limits()).toEqual({ totalSats: 1000 });
  });

  it('a crash in the middle of a line loses nothing acknowledged, and the next change cuts the torn line', async () => {
    const home = fresh();
    const journal = join(home, 'client', 'ledger.journal');
    const ledger = FileLedger.open(home);
    for (let i = 1; i <= 3; i++) await ledger.reserve(payment(i));
    const whole = readFileSync(journal, 'utf8');
    // A fourth change torn by a crash before its newline was flushed (never acknowledged).
    const line = `${JSON.stringify({ seq: 4, op: 'release', paymentHash: hex(1, 'b') })}\n`;
    appendFileSync(journal, line.slice(0, 30));
    const after = FileLedger.open(home);
    expect((await after.payments()).map((p) => p.state)).toEqual(['pending', 'pending', 'pending']);
    await after.settle(hex(2, 'b'), { amountSats: 10, feeSats: 0 });
    const text = readFileSync(journal, 'utf8');
    expect(text.startsWith(whole)).toBe(true);
    expect(text.slice(whole.length)).toBe(
      `${JSON.stringify({ seq: 4, op: 'settle', paymentHash: hex(2, 'b'), amountSats: 10, feeSats: 0 })}\n`,
    );
    expect((await FileLedger.open(home).payments()).map((p) => p.state)).toEqual([
      'pending',
      'paid',
      'pending',
    ]);
  });

  it('folds into ledger.json every 100 changes, in the format today’s readers know; a journal left by a crash there is skipped', async () => {
    const home = fresh();
    const dir = join(home, 'client');
    const journal = join(dir, 'ledger.journal');
    // An existing user's ledger, written before the journal existed.
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    writeFileSync(
      join(dir, 'ledger.json'),
      `${JSON.stringify({ version: 1, limits: { perDaySats: 5000 }, records: [{ ...payment(0), feeSats: 0, state: 'paid' }] })}\n`,
      { mode: 0o600 },
    );
    const ledger = FileLedger.open(home);
    expect(await ledger.limits()).toEqual({ perDaySats: 5000 });
    for (let i = 1; i <= 100; i++) await ledger.reserve(payment(i, 1));
    expect(readFileSync(journal, 'utf8').trimEnd().split('\n')).toHaveLength(100);
    const leftBehind = readFileSync(journal);
    await ledger.reserve(payment(101, 1)); // the journal is full: this change folds it in
    expect(existsSync(journal)).toBe(false);
    const doc = JSON.parse(readFileSync(join(dir, 'ledger.json'), 'utf8'));
    expect(doc).toMatchObject({ version: 1, limits: { perDaySats: 5000 }, seq: 101 });
    expect(doc.records).toHaveLength(102);
    expect(doc.records.at(-1)).toMatchObject({ paymentHash: hex(101, 'b'), state: 'pending' });
    expect(statSync(join(dir, 'ledger.json')).mode & 0o777).toBe(0o600);
    // A crash between writing ledger.json and removing the journal: its entries are all folded already.
    writeFileSync(journal, leftBehind);
    const reopened = FileLedger.open(home);
    expect(await reopened.payments()).toHaveLength(102);
    expect(await reopened.spent()).toBe(10 + 101);
    // It counts as full: the next change folds again (its entries skipped) and removes it.
    await reopened.reserve(payment(102, 1));
    expect(existsSync(journal)).toBe(false);
    expect(JSON.parse(readFileSync(join(dir, 'ledger.json'), 'utf8'))).toMatchObject({ seq: 102 });
    await reopened.release(hex(102, 'b'));
    expect(readFileSync(journal, 'utf8').trimEnd().split('\n')).toHaveLength(1);
    expect(await FileLedger.open(home).payments()).toHaveLength(103);
    expect(await FileLedger.open(home).spent()).toBe(10 + 101);
  });

  it('refuses a journal that skips changes', async () => {
    const home = fresh();
    const ledger = FileLedger.open(home);
    await ledger.reserve(payment(1));
    appendFileSync(
      join(home, 'client', 'ledger.journal'),
      `${JSON.stringify({ seq: 7, op: 'release', paymentHash: hex(1, 'b') })}\n`,
    );
    await expect(FileLedger.open(home).payments()).rejects.toMatchObject({ code: 'L402_CLIENT_STORE' });
  });

  it('limits still hold across ledgers on one directory, each with its own cache', async () => {
    const home = fresh();
    await FileLedger.open(home).setLimits({ totalSats: 100 });
    await settle(); // caches trusted: a missed change would let a fourth payment through
    const ledgers = [
      FileLedger.open(home),
      FileLedger.open(home),
      Ledger.over(fileSpace(join(home, 'client'))),
    ];
    for (const l of ledgers) expect(await l.spent()).toBe(0);
    const tries = Array.from({ length: 9 }, (_, i) => ledgers[i % 3]!.reserve(payment(i, 30)));
    const results = await Promise.allSettled(tries);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(3);
    for (const l of ledgers) expect(await l.spent()).toBe(90);
  });
});
