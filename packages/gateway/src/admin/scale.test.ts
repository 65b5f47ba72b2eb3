/**
 * The admin API over 20,000 transactions in a real SQLite store: stats, totals and pages come out as
 * reading every row did (the previous implementation, kept below as the reference), while the admin
 * reads only a page's rows. The store is the gateway's own, wrapped to count the rows `transactions()`
 * hands out: an observation of the real store, not a stand-in for it.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Store, Transaction, TransactionFilter } from 'l402/server';
import * as Sqlite from 'l402/stores/sqlite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as Config from '../Config.js';
import * as Admin from './Admin.js';
import * as Catalogue from './services.js';

const ROWS = 20_000;
/** The admin's clock, unix seconds. */
const NOW = 1_750_000_000;
const SERVICES = ['api', 'search', 'images', 'rare'] as const;

const home = mkdtempSync(join(tmpdir(), 'l402-admin-scale-'));
let store: Store;
let catalogue: Catalogue.Catalogue;
let admin: Admin.Admin;
let server: http.Server;
let base: string;
let macaroon: string;
/** Rows the admin's store handed out through transactions(). */
let rowsRead = 0;
/** What went in, summed while generating: an oracle apart from any code under test. */
const made = { count: 0, settled: 0, settledMsat: 0n, perService: new Map<string, number>() };

/**
 * 20,000 rows over the last three days and a few past `NOW` (a clock ahead), four services, three in
 * five settled, prices not whole sats (so flooring the sum differs from summing floors).
 */
function load(path: string): void {
  const db = new Database(path);
  const secret = db.prepare('INSERT INTO secrets (hash, secret, token_id, created_at) VALUES (?, ?, ?, ?)');
  const transaction = db.prepare(
    `INSERT INTO l402_transactions
       (token_id, payment_hash, service, price_msat, state, created_at, settled_at, invoice_expires_at, revoked)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  db.transaction(() => {
    for (let i = 0; i < ROWS; i++) {
      const tokenId = randomBytes(32);
      const future = i >= ROWS - 20;
      const createdAt = future ? NOW + (i % 20) * 60 : NOW - 3 * 86_400 + Math.floor((i * 3 * 86_400) / ROWS);
      const service = i % 101 === 0 ? 'rare' : SERVICES[i % 3]!;
      const priceMsat = BigInt(1_000 + ((i * 7_919) % 50_000));
      const settled = i % 5 !== 0 && i % 5 !== 2;
      secret.run(randomBytes(32), randomBytes(32), tokenId, createdAt);
      transaction.run(
        tokenId,
        randomBytes(32),
        service,
        priceMsat,
        settled ? 'settled' : 'pending',
        createdAt,
        settled ? createdAt + 5 : null,
        createdAt + 3_600,
        i % 97 === 0 ? 1 : 0,
      );
      made.count++;
      made.perService.set(service, (made.perService.get(service) ?? 0) + 1);
      if (settled) {
        made.settled++;
        made.settledMsat += priceMsat;
      }
    }
  })();
  db.close();
}

beforeAll(async () => {
  const { config } = Config.parse(
    `
listenaddr: "127.0.0.1:8080"
insecure: true
basedir: ${JSON.stringify(home)}
authenticator:
  disable: true
admin:
  enabled: true
services:
  - name: api
    pathregexp: '^/api/'
    address: "127.0.0.1:1"
    auth: off
`,
    'scale.yaml',
    { env: {} },
  );
  const real = await Sqlite.open({ path: config.sqlite.dbfile });
  load(config.sqlite.dbfile);
  store = real;
  const observed: Store = {
    ...real,
    async transactions(filter) {
      const rows = await real.transactions(filter);
      rowsRead += rows.length;
      return rows;
    },
  };
  catalogue = await Catalogue.open(config, { pollMs: 0 });
  server = http.createServer((request, response) => {
    if (!admin.serve(request, response, request.socket.remoteAddress ?? '')) {
      response.writeHead(404);
      response.end();
    }
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const { port } = server.address() as AddressInfo;
  base = `http://127.0.0.1:${port}`;
  admin = Admin.create({
    config,
    store: observed,
    authority: undefined,
    catalogue,
    address: () => ({ host: '127.0.0.1', port }),
    encrypted: false,
    store_description: 'sqlite',
    lightning: 'disabled',
    now: () => NOW * 1000,
  });
  macaroon = readFileSync(admin.macaroonPath).toString('hex');
}, 60_000);

afterAll(async () => {
  admin?.close();
  await new Promise((done) => server?.close(done));
  await catalogue?.close();
  await store?.close();
  rmSync(home, { recursive: true, force: true });
});

/** GET an admin route; the JSON, and how long the answer took and how many rows the store handed out. */
async function get(path: string) {
  const before = rowsRead;
  const started = performance.now();
  const response = await fetch(`${base}${path}`, { headers: { 'grpc-metadata-macaroon': macaroon } });
  // biome-ignore lint/suspicious/noExplicitAny: JSON from the API, checked by the assertions
  const json: any = await response.json();
  expect(response.status, JSON.stringify(json)).toBe(200);
  return { json, ms: performance.now() - started, rows: rowsRead - before };
}

const iso = (seconds: number) => new Date(seconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');
const sats = (msat: bigint) => (msat / 1000n).toString();

// The reference: the admin as it was, reading every row in pages of 1000 and counting in JavaScript.

async function everyRow(filter: TransactionFilter): Promise<Transaction[]> {
  const out: Transaction[] = [];
  for (let offset = 0; ; offset += 1000) {
    const page = await store.transactions({ ...filter, limit: 1000, offset });
    out.push(...page);
    if (page.length < 1000) return out;
  }
}

function transactionJson(t: Transaction) {
  return {
    token_id: hex(t.tokenId),
    payment_hash: hex(t.paymentHash),
    service_name: t.service,
    price_sats: sats(t.priceMsat),
    state: t.state,
    created_at: iso(t.createdAt),
    settled_at: t.settledAt === undefined ? '' : iso(t.settledAt),
    revoked: t.revoked,
  };
}

const BUCKETS = [60, 300, 900, 3600, 6 * 3600, 86_400, 7 * 86_400];

async function previousStats(q: { from?: number; to?: number; bucket?: number }) {
  const all = await everyRow({
    ...(q.from !== undefined ? { since: q.from } : {}),
    ...(q.to !== undefined ? { until: q.to } : {}),
  });
  const settled = all.filter((t) => t.state === 'settled');
  const perService = new Map<string, { revenue: bigint; count: number; challenges: number }>();
  for (const t of all) {
    const s = perService.get(t.service) ?? { revenue: 0n, count: 0, challenges: 0 };
    s.challenges += 1;
    if (t.state === 'settled') {
      s.revenue += t.priceMsat;
      s.count += 1;
    }
    perService.set(t.service, s);
  }
  const to = q.to ?? NOW;
  const from = q.from ?? to - 86_400;
  const span = to - from + 1;
  const width = q.bucket ?? BUCKETS.find((w) => span / w <= 100) ?? Math.ceil(span / 100);
  const n = Math.ceil((to - from + 1) / width);
  const buckets = Array.from({ length: n }, (_, i) => ({
    start: from + i * width,
    revenue: 0n,
    count: 0,
    challenges: 0,
  }));
  for (const t of all) {
    const b = buckets[Math.floor((t.createdAt - from) / width)];
    if (b === undefined || t.createdAt < from) continue;
    b.challenges += 1;
    if (t.state === 'settled') {
      b.revenue += t.priceMsat;
      b.count += 1;
    }
  }
  return {
    total_revenue_sats: sats(settled.reduce((sum, t) => sum + t.priceMsat, 0n)),
    transaction_count: String(settled.length),
    challenge_count: String(all.length),
    service_breakdown: [...perService].map(([name, s]) => ({
      service_name: name,
      total_revenue_sats: sats(s.revenue),
      transaction_count: String(s.count),
      challenge_count: String(s.challenges),
    })),
    bucket_seconds: String(width),
    buckets: buckets.map((b) => ({
      start: iso(b.start),
      revenue_sats: sats(b.revenue),
      transaction_count: String(b.count),
      challenge_count: String(b.challenges),
    })),
  };
}

describe(`the admin API over ${ROWS.toLocaleString('en')} transactions in SQLite`, () => {
  it('answers stats as reading every row did, from the database’s sums, reading no row', async () => {
    const day = NOW - 86_400;
    const cases: [string, { from?: number; to?: number; bucket?: number }][] = [
      ['', {}],
      [`?from=${iso(day)}&to=${iso(NOW)}&bucket=3600`, { from: day, to: NOW, bucket: 3600 }],
      [`?from=${iso(NOW - 2 * 86_400)}`, { from: NOW - 2 * 86_400 }],
      [`?to=${iso(NOW - 86_400)}`, { to: NOW - 86_400 }],
      [
        `?from=${iso(NOW - 600)}&to=${iso(NOW + 3_600)}&bucket=60`,
        { from: NOW - 600, to: NOW + 3_600, bucket: 60 },
      ],
      [`?from=${iso(NOW + 86_400)}`, { from: NOW + 86_400 }],
    ];
    for (const [query, parsed] of cases) {
      const answer = await get(`/api/admin/stats${query}`);
      expect(answer.json, query).toEqual(await previousStats(parsed));
      expect(answer.rows, query).toBe(0);
    }
    // And against what was loaded, apart from any reading code.
    const all = (await get('/api/admin/stats')).json;
    expect(all).toMatchObject({
      transaction_count: String(made.settled),
      challenge_count: String(made.count),
      total_revenue_sats: sats(made.settledMsat),
    });
    expect(
      Object.fromEntries(
        all.service_breakdown.map((s: { service_name: string; challenge_count: string }) => [
          s.service_name,
          Number(s.challenge_count),
        ]),
      ),
    ).toEqual(Object.fromEntries(made.perService));

    // How long each way takes here, same store and rows, best of 5 (printed, not asserted: the machine
    // is shared).
    let after = Number.POSITIVE_INFINITY;
    let before = Number.POSITIVE_INFINITY;
    for (let i = 0; i < 5; i++) {
      after = Math.min(after, (await get('/api/admin/stats')).ms);
      const started = performance.now();
      await previousStats({});
      before = Math.min(before, performance.now() - started);
    }
    console.log(
      `GET /api/admin/stats over ${ROWS} rows: ${after.toFixed(1)} ms over HTTP from the store's sums; ` +
        `reading every row as before: ${before.toFixed(1)} ms (in process, no HTTP)`,
    );
  });

  it('pages transactions and tokens reading only the page’s rows, with the total from a count', async () => {
    const every = await everyRow({});
    expect(every).toHaveLength(ROWS);
    const page = await get('/api/admin/transactions?limit=50&offset=10000');
    expect(page.json).toEqual({
      transactions: every.slice(10_000, 10_050).map(transactionJson),
      total_count: String(ROWS),
    });
    expect(page.rows).toBe(50);

    const since = NOW - 86_400;
    const filtered = every.filter(
      (t) => t.service === 'search' && t.state === 'pending' && t.createdAt >= since,
    );
    const narrow = await get(
      `/api/admin/transactions?service=search&state=pending&start_date=${iso(since)}&limit=20&offset=100`,
    );
    expect(narrow.json).toEqual({
      transactions: filtered.slice(100, 120).map(transactionJson),
      total_count: String(filtered.length),
    });
    expect(narrow.rows).toBe(20);

    const paid = every.filter((t) => t.state === 'settled' && t.service === 'rare');
    const tokens = await get('/api/admin/tokens?service=rare&limit=1000');
    expect(tokens.json).toEqual({ tokens: paid.map(transactionJson), total_count: String(paid.length) });
    expect(tokens.rows).toBe(paid.length);
    const past = await get(`/api/admin/tokens?offset=${made.settled}`);
    expect(past.json).toEqual({ tokens: [], total_count: String(made.settled) });
    expect(past.rows).toBe(0);
  });
});
