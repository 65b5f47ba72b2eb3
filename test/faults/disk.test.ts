/**
 * The gateway's disk fails under it: the filesystem of its SQLite store fills up (a 4 MiB tmpfs,
 * when this runs as root and may mount one; and a file-size limit, `ulimit -f`, everywhere), or its
 * home turns read-only. The gateway is the built binary in a child process, invoices come from the
 * devnet in this process.
 *
 * What must hold: challenges that cannot be stored are refused with 503 (never a 402 for a token the
 * store could not keep), the process does not crash, tokens already paid keep working, it recovers
 * by itself once space is back, the store passes SQLite's integrity check afterwards, and every 402
 * that left the gateway is in it. Starting on a read-only home fails with one clear line. (A home
 * turning read-only under a running gateway is not tested: Linux refuses to remount a filesystem
 * read-only while the store holds files on it open for writing.)
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Devnet } from '@l402/devnet';
import Database from 'better-sqlite3';
import { Challenge, Identifier, Macaroon } from 'l402';
import { type Backend, connect } from 'l402/lightning';
import * as Sqlite from 'l402/stores/sqlite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buy,
  cleanup,
  ensureBuilt,
  GatewayExited,
  spawnGateway,
  stop,
  tempDir,
  type Upstream,
  upstream,
} from './harness.js';

let devnet: Devnet.Devnet;
let payer: Backend;
let up: Upstream;
const mounts: string[] = [];

/** Whether this process may mount a tmpfs (root in a privileged enough container). */
function canMount(): boolean {
  if (process.getuid?.() !== 0) return false;
  const dir = tempDir('l402-mount-probe-');
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir], { stdio: 'ignore' });
    execFileSync('umount', [dir], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const mountable = canMount();

function tmpfs(sizeKiB: number): string {
  const dir = tempDir('l402-tmpfs-');
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeKiB}k`, 'tmpfs', dir]);
  mounts.push(dir);
  return dir;
}

beforeAll(async () => {
  ensureBuilt();
  devnet = await Devnet.start({ home: tempDir(), publish: false });
  payer = await connect(devnet.document.nodes.payer!.uris.lnd);
  up = await upstream();
}, 120_000);

afterAll(async () => {
  for (const dir of mounts) {
    try {
      execFileSync('umount', ['-l', dir], { stdio: 'ignore' });
    } catch {}
  }
  cleanup();
  await payer?.close();
  await devnet?.close();
  await up?.close();
});

function config(dir: string, dbfile: string): string {
  const file = join(tempDir(), 'aperture.yaml');
  writeFileSync(
    file,
    `listenaddr: "127.0.0.1:8081"
insecure: true
basedir: ${JSON.stringify(dir)}
debuglevel: error
authenticator:
  uri: ${JSON.stringify(devnet.document.nodes.merchant!.uris.lnd)}
sqlite:
  dbfile: ${JSON.stringify(dbfile)}
services:
  - name: api
    pathregexp: '^/api/'
    address: "${up.address}"
    price: 1
`,
  );
  return file;
}

/** Token ids of the 402s in `replies`. */
function tokenIds(challenges: string[]): string[] {
  return challenges.map((header) => {
    const offer = Challenge.l402(Challenge.parse(header))!;
    return Buffer.from(Identifier.decode(Macaroon.decode(offer.macaroon).identifier).tokenId).toString('hex');
  });
}

/**
 * Sends unpaid requests until `n` in a row were refused with 503 (the disk is full), collecting the
 * challenges that did leave; fails on anything but 402 and 503.
 */
async function fillUntilRefused(url: string, challenges: string[], n = 5): Promise<void> {
  let refusedInARow = 0;
  for (let i = 0; i < 20_000 && refusedInARow < n; i++) {
    const reply = await fetch(`${url}/api/x`, { headers: { 'x-pad': 'p'.repeat(2_000) } });
    const body = await reply.text();
    if (reply.status === 402) {
      challenges.push(reply.headers.get('www-authenticate')!);
      refusedInARow = 0;
    } else {
      expect(reply.status, body).toBe(503);
      expect(body).toMatch(/store is unavailable/);
      expect(reply.headers.get('retry-after')).toMatch(/^\d+$/);
      refusedInARow++;
    }
  }
  expect(refusedInARow).toBe(n);
}

/** The store file passes `PRAGMA integrity_check` and holds every challenged token id. */
async function expectIntact(dbfile: string, challenged: string[]) {
  const db = new Database(dbfile, { readonly: true });
  try {
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
  } finally {
    db.close();
  }
  const store = await Sqlite.open({ path: dbfile });
  try {
    const stored = new Set(
      (await store.transactions({ limit: 1_000_000 })).map((t) => Buffer.from(t.tokenId).toString('hex')),
    );
    expect(challenged.filter((id) => !stored.has(id))).toEqual([]);
  } finally {
    await store.close();
  }
}

describe('disk full', () => {
  const ways: [string, boolean][] = [
    ['a full filesystem (tmpfs)', mountable],
    ['a file-size limit (ulimit -f)', true],
  ];
  for (const [way, possible] of ways) {
    it.runIf(possible)(
      `${way}: 503 for new challenges, paid tokens served, recovery, store intact`,
      async () => {
        const viaTmpfs = way.includes('tmpfs');
        const dir = viaTmpfs ? tmpfs(4_096) : tempDir();
        const dbfile = join(dir, 'gateway.db');
        const filler = join(dir, 'filler');
        const running = await spawnGateway(
          config(dir, dbfile),
          viaTmpfs ? {} : { fileSizeLimitBlocks: 2_048 },
        );
        try {
          const first = await fetch(`${running.url}/api/x`);
          expect(first.status).toBe(402);
          await first.arrayBuffer();
          const token = await buy(first, payer);
          const challenges: string[] = [];
          if (viaTmpfs) {
            // Leave the database a little room, then let it run out.
            try {
              writeFileSync(filler, Buffer.alloc(4_096 * 1024));
            } catch {}
          }
          await fillUntilRefused(running.url, challenges);
          // Still up, and what was paid before still opens the door.
          const paid = await fetch(`${running.url}/api/x`, {
            headers: { authorization: token.authorization },
          });
          expect(paid.status).toBe(200);
          await paid.arrayBuffer();
          if (viaTmpfs) {
            // Space is back: challenges again, without a restart.
            rmSync(filler);
            const again = await fetch(`${running.url}/api/x`);
            expect(again.status).toBe(402);
            challenges.push(again.headers.get('www-authenticate')!);
            const bought = await buy(again, payer);
            const works = await fetch(`${running.url}/api/x`, {
              headers: { authorization: bought.authorization },
            });
            expect(works.status).toBe(200);
          }
          expect(await stop(running)).toBe(0);
          await expectIntact(dbfile, tokenIds(challenges));
        } finally {
          await stop(running);
        }
      },
      120_000,
    );
  }
});

describe('read-only home', () => {
  it('refuses to start on a read-only home with one clear line and exit 2', async () => {
    const dir = tempDir();
    const home = join(dir, 'home');
    mkdirSync(home);
    if (mountable) {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k,ro', 'tmpfs', home]);
      mounts.push(home);
    } else execFileSync('chmod', ['0555', home]);
    const failure = await spawnGateway(config(home, join(home, 'gateway.db'))).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(GatewayExited);
    const { code, stderr } = failure as GatewayExited;
    expect(code).toBe(2);
    expect(stderr.trim().split('\n')).toHaveLength(1);
    expect(stderr).toMatch(/^l402: .*(read-only|permission|cannot)/i);
    expect(stderr).not.toMatch(/\n\s+at /);
    console.log(`read-only home: ${stderr.trim()}`);
  }, 60_000);
});
