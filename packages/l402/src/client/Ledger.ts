/**
 * The spending ledger: limits per request, per origin, per hour, per day and in total, and a record of
 * every payment (time, origin, path, amount, fee, payment hash). A payment is *reserved* before the
 * wallet is asked to pay (the check and the reservation are one atomic step under the ledger's lock, so
 * two payments can never both squeeze under a limit), then settled with what was actually paid, or
 * released when it failed. Limits count invoice amounts; routing fees are bounded by `maxFeeSats` per
 * payment and recorded.
 *
 * @example
 * const ledger = Ledger.memory({ perDaySats: 1000 });
 * await ledger.spent({ sinceMs: Date.now() - 3600_000 }); // sats paid or reserved in the last hour
 */
import { BudgetError, type BudgetLimit, ClientError } from '../Errors.js';
import * as Space from './Space.js';

/** Spending limits in sats; an absent limit does not apply. */
export interface Budget {
  perRequestSats?: number;
  perOriginSats?: number;
  perHourSats?: number;
  perDaySats?: number;
  totalSats?: number;
}

export interface PaymentRecord {
  /** Unix milliseconds of the reservation. */
  time: number;
  origin: string;
  path: string;
  amountSats: number;
  feeSats: number;
  /** Hex. */
  paymentHash: string;
  /** Hex token id ('' for an MPP charge). */
  tokenId: string;
  /** `pending` until the wallet's outcome is known; failed payments stay on record but count for nothing. */
  state: 'pending' | 'paid' | 'failed';
  wallet?: string;
}

export interface Ledger {
  /**
   * Checks `record.amountSats` against every limit (the ledger's and `budget`), counting pending
   * payments, and records it as pending, atomically. Throws {@link BudgetError} naming the limit.
   */
  reserve(record: Omit<PaymentRecord, 'state' | 'feeSats'>, budget?: Budget, nowMs?: number): Promise<void>;
  /** Marks a reserved payment paid with what it cost. */
  settle(paymentHash: string, paid: { amountSats: number; feeSats: number }): Promise<void>;
  /** Marks a reserved payment failed: it no longer counts. */
  release(paymentHash: string): Promise<void>;
  /** Records a payment made elsewhere (paid), without checking limits. */
  record(record: Omit<PaymentRecord, 'state'> & { state?: PaymentRecord['state'] }): Promise<void>;
  payments(filter?: {
    origin?: string;
    sinceMs?: number;
    state?: PaymentRecord['state'];
  }): Promise<PaymentRecord[]>;
  /** Sats paid or reserved (not failed), for one origin and/or since a time. */
  spent(filter?: { origin?: string; sinceMs?: number }): Promise<number>;
  limits(): Promise<Budget>;
  setLimits(budget: Budget): Promise<void>;
}

interface Doc {
  version: 1;
  limits: Budget;
  records: PaymentRecord[];
  /** How many changes the document holds (absent: 0); journal entries numbered above it come after it. */
  seq?: number;
}

/** The ledger as it stands: the document with the journal's later entries applied. */
type Folded = Doc & { seq: number };

/**
 * One change to the ledger, decided under its lock: what a journal line holds (with its `seq`) and what
 * {@link apply} does, live and when the journal is read back.
 */
type Change =
  | { op: 'add'; record: PaymentRecord }
  | { op: 'settle'; paymentHash: string; amountSats: number; feeSats: number }
  | { op: 'release'; paymentHash: string }
  | { op: 'limits'; limits: Budget };

const OPS = new Set<unknown>(['add', 'settle', 'release', 'limits']);

/** Changes `doc` by `c`, replacing the records it changes (they may be shared with a space's cache). */
function apply(doc: Doc, c: Change): void {
  const { records } = doc;
  if (c.op === 'add') records.push(c.record);
  else if (c.op === 'limits') doc.limits = c.limits;
  else if (c.op === 'settle') {
    const i = records.findIndex((r) => r.paymentHash === c.paymentHash && r.state !== 'failed');
    if (i >= 0) records[i] = { ...records[i]!, state: 'paid', amountSats: c.amountSats, feeSats: c.feeSats };
  } else
    records.forEach((r, i) => {
      if (r.paymentHash === c.paymentHash && r.state === 'pending') records[i] = { ...r, state: 'failed' };
    });
}

/** A journal entry as read back: a {@link Change} with its sequence number, or a store error. */
function entry(value: unknown): Change & { seq: number } {
  const e = value as Change & { seq: number };
  if (typeof e !== 'object' || e === null || !Number.isSafeInteger(e.seq) || e.seq < 1 || !OPS.has(e.op))
    throw new ClientError(
      'L402_CLIENT_STORE',
      `ledger journal entry ${JSON.stringify(value)} is not a change`,
    );
  return e;
}

/** The journal is folded into the document once it holds this many entries. */
const COMPACT_AT = 100;

const KEY = 'ledger';
const HOUR = 3600_000;
const DAY = 24 * HOUR;

const LIMITS: readonly [keyof Budget, BudgetLimit][] = [
  ['perRequestSats', 'perRequest'],
  ['perOriginSats', 'perOrigin'],
  ['perHourSats', 'perHour'],
  ['perDaySats', 'perDay'],
  ['totalSats', 'total'],
];

function checkBudget(budget: Budget): Budget {
  for (const [key] of LIMITS) {
    const v = budget[key];
    if (v !== undefined && (!Number.isSafeInteger(v) || v < 0))
      throw new ClientError('L402_CLIENT_CONFIG', `budget ${key} must be a whole number of sats, got ${v}`);
  }
  return budget;
}

/** The tighter of two budgets, limit by limit. */
export function tighter(a: Budget, b: Budget | undefined): Budget {
  const out: Budget = { ...a };
  for (const [key] of LIMITS) {
    const v = b?.[key];
    if (v !== undefined) out[key] = out[key] === undefined ? v : Math.min(out[key] as number, v);
  }
  return out;
}

/**
 * A ledger over any {@link Space.Space}: one document, changed only under the space's `ledger` lock.
 * Where the space has a journal (the file space), a change is one durable appended line instead of a
 * rewritten document, and once 100 lines are there the next change rewrites the document with them folded in.
 * The document stays the format it always was (plus `seq`, the number of changes it holds).
 *
 * @example
 * const ledger = Ledger.over(Space.memory(), { totalSats: 5000 });
 */
export function over(space: Space.Space, initial?: Budget): Ledger {
  const load = async (): Promise<{ doc: Folded; journaled: number }> => {
    // The journal before the document: a document read after the journal holds at least every change
    // the journal held when read (changes are folded in before the journal is cleared), so the two
    // always make a state the ledger was in, never one missing changes in between.
    const entries = (await space.journal?.entries(KEY)) ?? [];
    const saved = (await space.read(KEY)) as Doc | undefined;
    const doc: Folded =
      saved && Array.isArray(saved.records)
        ? { version: 1, limits: saved.limits ?? {}, records: [...saved.records], seq: saved.seq ?? 0 }
        : { version: 1, limits: {}, records: [], seq: 0 };
    for (const value of entries) {
      const e = entry(value);
      if (e.seq <= doc.seq) continue; // folded into the document already
      if (e.seq !== doc.seq + 1)
        throw new ClientError('L402_CLIENT_STORE', `ledger journal skips from change ${doc.seq} to ${e.seq}`);
      apply(doc, e);
      doc.seq = e.seq;
    }
    return { doc, journaled: entries.length };
  };
  const mutate = (decide: (doc: Doc) => Change | undefined): Promise<void> =>
    space.lock(KEY, async () => {
      const { doc, journaled } = await load();
      const change = decide(doc);
      if (change === undefined) return;
      const seq = doc.seq + 1;
      if (space.journal !== undefined && journaled < COMPACT_AT) {
        await space.journal.append(KEY, { seq, ...change });
        return;
      }
      apply(doc, change);
      doc.seq = seq;
      await space.write(KEY, doc);
      // The change is durable in the document now, which holds every entry: entries left behind (by a
      // crash, or a removal that failed) are skipped by their seq and go with the next fold.
      await space.journal?.clear(KEY).catch(() => {});
    });
  const counted = (doc: Doc, origin?: string, sinceMs?: number) =>
    doc.records
      .filter(
        (r) =>
          r.state !== 'failed' &&
          (origin === undefined || r.origin === origin) &&
          (sinceMs === undefined || r.time >= sinceMs),
      )
      .reduce((n, r) => n + r.amountSats, 0);
  const setting = (budget: Budget) => (doc: Doc) =>
    LIMITS.every(([key]) => doc.limits[key] === budget[key]) &&
    Object.keys(doc.limits).length === Object.keys(budget).length
      ? undefined
      : ({ op: 'limits', limits: { ...budget } } as const);
  let ready: Promise<void> | undefined =
    initial === undefined ? undefined : mutate((doc) => setting(checkBudget(initial))(doc));
  const settledFirst = async () => {
    if (ready) await ready;
    ready = undefined;
  };
  const ledger: Ledger = {
    async reserve(record, budget, nowMs = Date.now()) {
      await settledFirst();
      if (budget) checkBudget(budget);
      await mutate((doc) => {
        const limits = tighter(doc.limits, budget);
        const price = record.amountSats;
        const used: Record<BudgetLimit, number> = {
          maxCost: 0,
          maxFee: 0,
          perRequest: 0,
          perOrigin: counted(doc, record.origin),
          perHour: counted(doc, undefined, nowMs - HOUR),
          perDay: counted(doc, undefined, nowMs - DAY),
          total: counted(doc),
        };
        for (const [key, limit] of LIMITS) {
          const cap = limits[key];
          if (cap === undefined) continue;
          const remaining = Math.max(0, cap - used[limit]);
          if (price > remaining) {
            throw new BudgetError(
              limit,
              price,
              remaining,
              `paying ${price} sat to ${record.origin} would exceed the ${limit} budget of ${cap} sat (${remaining} sat left)`,
            );
          }
        }
        if (doc.records.some((r) => r.paymentHash === record.paymentHash && r.state !== 'failed')) return;
        return { op: 'add', record: { ...record, feeSats: 0, state: 'pending' } };
      });
    },
    async settle(paymentHash, paid) {
      await settledFirst();
      await mutate((doc) =>
        doc.records.some((r) => r.paymentHash === paymentHash && r.state !== 'failed')
          ? { op: 'settle', paymentHash, amountSats: paid.amountSats, feeSats: paid.feeSats }
          : undefined,
      );
    },
    async release(paymentHash) {
      await settledFirst();
      await mutate((doc) =>
        doc.records.some((r) => r.paymentHash === paymentHash && r.state === 'pending')
          ? { op: 'release', paymentHash }
          : undefined,
      );
    },
    async record(record) {
      await settledFirst();
      await mutate((doc) =>
        doc.records.some((r) => r.paymentHash === record.paymentHash)
          ? undefined
          : { op: 'add', record: { ...record, state: record.state ?? 'paid' } },
      );
    },
    async payments(filter = {}) {
      await settledFirst();
      return (await load()).doc.records
        .filter(
          (r) =>
            (filter.origin === undefined || r.origin === filter.origin) &&
            (filter.sinceMs === undefined || r.time >= filter.sinceMs) &&
            (filter.state === undefined || r.state === filter.state),
        )
        .map((r) => ({ ...r }));
    },
    async spent(filter = {}) {
      await settledFirst();
      return counted((await load()).doc, filter.origin, filter.sinceMs);
    },
    async limits() {
      await settledFirst();
      return { ...(await load()).doc.limits };
    },
    async setLimits(budget) {
      await settledFirst();
      await mutate(setting(checkBudget(budget)));
    },
  };
  return ledger;
}

/**
 * A ledger in memory.
 *
 * @example
 * const ledger = Ledger.memory({ perHourSats: 500 });
 */
export function memory(budget?: Budget): Ledger {
  return over(Space.memory(), budget);
}

/**
 * A ledger in `localStorage`.
 *
 * @example
 * const ledger = Ledger.localStorage(undefined, { totalSats: 10_000 });
 */
export function localStorage(storage?: Space.WebStorage, budget?: Budget): Ledger {
  return over(Space.localStorage(storage), budget);
}
