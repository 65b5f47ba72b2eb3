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
}

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
 *
 * @example
 * const ledger = Ledger.over(Space.memory(), { totalSats: 5000 });
 */
export function over(space: Space.Space, initial?: Budget): Ledger {
  const load = async (): Promise<Doc> => {
    const doc = (await space.read(KEY)) as Doc | undefined;
    return doc && Array.isArray(doc.records) ? doc : { version: 1, limits: {}, records: [] };
  };
  const mutate = <T>(fn: (doc: Doc) => T): Promise<T> =>
    space.lock(KEY, async () => {
      const doc = await load();
      const out = fn(doc);
      await space.write(KEY, doc);
      return out;
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
  let ready: Promise<void> | undefined =
    initial === undefined
      ? undefined
      : mutate((doc) => {
          doc.limits = { ...checkBudget(initial) };
        });
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
        doc.records.push({ ...record, feeSats: 0, state: 'pending' });
      });
    },
    async settle(paymentHash, paid) {
      await settledFirst();
      await mutate((doc) => {
        const r = doc.records.find((x) => x.paymentHash === paymentHash && x.state !== 'failed');
        if (r === undefined) return;
        r.state = 'paid';
        r.amountSats = paid.amountSats;
        r.feeSats = paid.feeSats;
      });
    },
    async release(paymentHash) {
      await settledFirst();
      await mutate((doc) => {
        for (const r of doc.records)
          if (r.paymentHash === paymentHash && r.state === 'pending') r.state = 'failed';
      });
    },
    async record(record) {
      await settledFirst();
      await mutate((doc) => {
        if (doc.records.some((r) => r.paymentHash === record.paymentHash)) return;
        doc.records.push({ ...record, state: record.state ?? 'paid' });
      });
    },
    async payments(filter = {}) {
      await settledFirst();
      return (await load()).records.filter(
        (r) =>
          (filter.origin === undefined || r.origin === filter.origin) &&
          (filter.sinceMs === undefined || r.time >= filter.sinceMs) &&
          (filter.state === undefined || r.state === filter.state),
      );
    },
    async spent(filter = {}) {
      await settledFirst();
      return counted(await load(), filter.origin, filter.sinceMs);
    },
    async limits() {
      await settledFirst();
      return (await load()).limits;
    },
    async setLimits(budget) {
      await settledFirst();
      checkBudget(budget);
      await mutate((doc) => {
        doc.limits = { ...budget };
      });
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
