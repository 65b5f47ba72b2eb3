/**
 * `l402/stores/memory`: a {@link Store} in this process's memory, for tests and for single-process
 * middleware that accepts losing every token on restart (clients then pay again). It keeps the same
 * contract as the SQL stores, including that a revoked identifier can never be minted again, and hands
 * out copies, so a caller mutating a returned key cannot change what is stored.
 *
 * @example
 * import * as Memory from 'l402/stores/memory';
 * const store = Memory.create();
 * await store.mint(record);
 * await store.rootKey(record.idHash); // a copy of record.rootKey
 */
import { StoreError } from '../../Errors.js';
import { toHex } from '../../internal/bytes.js';
import type {
  MintRecord,
  Revocation,
  Session,
  SessionResult,
  Store,
  Transaction,
  TransactionFilter,
  TransactionState,
} from '../Store.js';
import {
  checkBucketing,
  checkBytes,
  checkConsumption,
  checkDebit,
  checkFilter,
  checkLimit,
  checkMint,
  checkRefundStatus,
  checkSats,
  checkSeconds,
  checkSecret,
  closedError,
  refKey,
  summarize,
} from './common.js';

const NAME = 'memory';

interface Entry {
  readonly record: MintRecord;
  /** Insertion order: breaks ties between transactions created in the same second, as the SQL ids do. */
  readonly order: number;
  state: TransactionState;
  settledAt: number | undefined;
  /** Metered credit spent so far (msat); the balance is `record.priceMsat - spent`. */
  spent: bigint;
  /** A revoked entry keeps its transaction (and its identifier, which is never minted again) but no key. */
  revoked: boolean;
}

function copy(record: MintRecord): MintRecord {
  return {
    ...record,
    idHash: record.idHash.slice(),
    rootKey: record.rootKey.slice(),
    tokenId: record.tokenId.slice(),
    paymentHash: record.paymentHash.slice(),
  };
}

function view(entry: Entry): Transaction {
  return {
    tokenId: entry.record.tokenId.slice(),
    paymentHash: entry.record.paymentHash.slice(),
    service: entry.record.service,
    priceMsat: entry.record.priceMsat,
    state: entry.state,
    createdAt: entry.record.createdAt,
    settledAt: entry.settledAt,
    revoked: entry.revoked,
  };
}

/** A new, empty in-memory store. */
export function create(): Store {
  // Keys are hex: Map keys compare by identity, and a Uint8Array's identity is not its bytes.
  const byIdHash = new Map<string, Entry>();
  const byTokenId = new Map<string, Entry>();
  const byPaymentHash = new Map<string, Set<Entry>>();
  const revocations: Revocation[] = [];
  /**
   * Consumed payment hashes (hex) → the challenge's expiry and id, and for a top-up the session (hex)
   * it credited.
   */
  const consumed = new Map<string, { expiresAt: number; challengeId: string; topUp?: string }>();
  const sessions = new Map<string, Session>();
  const secrets = new Map<string, Uint8Array>();
  let order = 0;
  let closed = false;

  const ensureOpen = (): void => {
    if (closed) throw closedError(NAME);
  };

  /** Applies `change` to an open session: a new session to keep, or a refusal. */
  const update = (
    sessionId: Uint8Array,
    change: (session: Session) => Session | Extract<SessionResult, { ok: false }>,
  ): SessionResult => {
    const key = toHex(sessionId);
    const session = sessions.get(key);
    if (session === undefined) return { ok: false, reason: 'not-found' };
    if (session.status === 'closed') return { ok: false, reason: 'closed', session: { ...session } };
    const next = change(session);
    if ('ok' in next) return next;
    sessions.set(key, next);
    return { ok: true, session: { ...next, sessionId: next.sessionId.slice() } };
  };

  /** The entries `filter` selects (paging aside), in no particular order. */
  const matching = ({ service, state, since, until }: TransactionFilter): Entry[] =>
    [...byTokenId.values()].filter(
      (entry) =>
        (service === undefined || entry.record.service === service) &&
        (state === undefined || entry.state === state) &&
        (since === undefined || entry.record.createdAt >= since) &&
        (until === undefined || entry.record.createdAt <= until),
    );

  const forget = (entry: Entry): void => {
    byIdHash.delete(toHex(entry.record.idHash));
    byTokenId.delete(toHex(entry.record.tokenId));
    const siblings = byPaymentHash.get(toHex(entry.record.paymentHash));
    siblings?.delete(entry);
    if (siblings?.size === 0) byPaymentHash.delete(toHex(entry.record.paymentHash));
  };

  return {
    async mint(record) {
      checkMint(record);
      ensureOpen();
      const idHash = toHex(record.idHash);
      const tokenId = toHex(record.tokenId);
      const existing = byIdHash.get(idHash) ?? byTokenId.get(tokenId);
      if (existing) {
        const why = existing.revoked ? 'was revoked: it is never minted again' : 'was minted before';
        throw new StoreError('L402_STORE_CONFLICT', NAME, `this identifier ${why}`);
      }
      const entry: Entry = {
        record: copy(record),
        order: order++,
        state: 'pending',
        settledAt: undefined,
        spent: 0n,
        revoked: false,
      };
      byIdHash.set(idHash, entry);
      byTokenId.set(tokenId, entry);
      const paymentHash = toHex(record.paymentHash);
      const siblings = byPaymentHash.get(paymentHash) ?? new Set();
      siblings.add(entry);
      byPaymentHash.set(paymentHash, siblings);
    },

    async rootKey(idHash) {
      checkBytes(idHash, 'idHash');
      ensureOpen();
      const entry = byIdHash.get(toHex(idHash));
      return entry && !entry.revoked ? entry.record.rootKey.slice() : undefined;
    },

    async settle(paymentHash, settledAt) {
      checkBytes(paymentHash, 'paymentHash');
      checkSeconds(settledAt, 'settledAt');
      ensureOpen();
      const entries = byPaymentHash.get(toHex(paymentHash));
      if (!entries) return false;
      for (const entry of entries) {
        entry.state = 'settled';
        entry.settledAt ??= settledAt;
      }
      return true;
    },

    async revoke(token) {
      const { by, value } = refKey(token);
      ensureOpen();
      const entry = (by === 'idHash' ? byIdHash : byTokenId).get(toHex(value));
      if (!entry || entry.revoked) return false;
      entry.revoked = true;
      revocations.push({
        seq: revocations.length + 1,
        idHash: entry.record.idHash,
        tokenId: entry.record.tokenId,
      });
      return true;
    },

    async revocationsSince(after) {
      checkSeconds(after, 'after');
      ensureOpen();
      return revocations
        .filter((revocation) => revocation.seq > after)
        .map((revocation) => ({
          ...revocation,
          idHash: revocation.idHash.slice(),
          tokenId: revocation.tokenId.slice(),
        }));
    },

    async debit(tokenId, amountMsat) {
      checkDebit(tokenId, amountMsat);
      ensureOpen();
      const entry = byTokenId.get(toHex(tokenId));
      if (!entry) return { ok: false, remainingMsat: 0n };
      const left = entry.record.priceMsat - entry.spent;
      if (entry.revoked || left < amountMsat) return { ok: false, remainingMsat: left };
      entry.spent += amountMsat;
      return { ok: true, remainingMsat: left - amountMsat };
    },

    async transactions(filter: TransactionFilter = {}) {
      checkFilter(filter);
      ensureOpen();
      const { limit, offset = 0 } = filter;
      const found = matching(filter);
      found.sort((a, b) => b.record.createdAt - a.record.createdAt || b.order - a.order);
      return found.slice(offset, limit === undefined ? undefined : offset + limit).map(view);
    },

    async countTransactions(filter: TransactionFilter = {}) {
      checkFilter(filter);
      ensureOpen();
      return matching(filter).length;
    },

    async summarizeTransactions(filter: TransactionFilter = {}, bucketing) {
      checkFilter(filter);
      const cut = bucketing === undefined ? undefined : checkBucketing(bucketing);
      ensureOpen();
      const found = matching(filter);
      // One part per transaction: summarize() adds them up as it does the SQL stores' groups.
      const part = (entry: Entry) => ({ state: entry.state, count: 1, amountMsat: entry.record.priceMsat });
      return summarize(
        found.map((entry) => ({
          ...part(entry),
          service: entry.record.service,
          newestAt: entry.record.createdAt,
          newestOrder: entry.order,
        })),
        cut === undefined
          ? []
          : found.map((entry) => {
              const at = entry.record.createdAt;
              return {
                ...part(entry),
                start: at - ((((at - cut.origin) % cut.width) + cut.width) % cut.width),
              };
            }),
      );
    },

    async removeExpiredUnpaid(now) {
      checkSeconds(now, 'now');
      ensureOpen();
      let removed = 0;
      for (const entry of [...byTokenId.values()]) {
        if (!entry.revoked && entry.state === 'pending' && entry.record.invoiceExpiresAt < now) {
          forget(entry);
          removed++;
        }
      }
      return removed;
    },

    async consume(record) {
      checkConsumption(record);
      ensureOpen();
      const key = toHex(record.paymentHash);
      if (consumed.has(key)) return false;
      consumed.set(key, { expiresAt: record.expiresAt, challengeId: record.challengeId });
      return true;
    },

    async openSession(open) {
      checkConsumption(open);
      checkSats(open.depositSats, 'depositSats');
      checkSeconds(open.now, 'now');
      ensureOpen();
      const key = toHex(open.paymentHash);
      if (consumed.has(key) || sessions.has(key)) return false;
      consumed.set(key, { expiresAt: open.expiresAt, challengeId: open.challengeId });
      sessions.set(key, {
        sessionId: open.paymentHash.slice(),
        depositSats: open.depositSats,
        spentSats: 0n,
        returnInvoice: open.returnInvoice,
        status: 'open',
        refundStatus: undefined,
        createdAt: open.now,
        updatedAt: open.now,
      });
      return true;
    },

    async topUpSession(sessionId, credit) {
      checkBytes(sessionId, 'sessionId');
      checkConsumption(credit);
      checkSats(credit.sats, 'sats', true);
      checkSeconds(credit.now, 'now');
      ensureOpen();
      const key = toHex(credit.paymentHash);
      const target = toHex(sessionId);
      const prior = consumed.get(key);
      const current = sessions.get(target);
      // This very top-up again: the original outcome, whatever became of the session since.
      if (prior?.topUp === target && prior.challengeId === credit.challengeId && current !== undefined) {
        return {
          ok: false,
          reason: 'already-credited',
          session: { ...current, sessionId: current.sessionId.slice() },
        };
      }
      return update(sessionId, (session) => {
        if (prior !== undefined) return { ok: false, reason: 'consumed', session: { ...session } };
        if (session.depositSats + credit.sats > 2n ** 63n - 1n)
          throw new RangeError('the deposit would overflow');
        consumed.set(key, { expiresAt: credit.expiresAt, challengeId: credit.challengeId, topUp: target });
        return { ...session, depositSats: session.depositSats + credit.sats, updatedAt: credit.now };
      });
    },

    async debitSession(sessionId, sats, now) {
      checkBytes(sessionId, 'sessionId');
      checkSats(sats, 'sats');
      checkSeconds(now, 'now');
      ensureOpen();
      return update(sessionId, (session) =>
        session.depositSats - session.spentSats < sats
          ? { ok: false, reason: 'insufficient', session: { ...session } }
          : { ...session, spentSats: session.spentSats + sats, updatedAt: now },
      );
    },

    async closeSession(sessionId, now) {
      checkBytes(sessionId, 'sessionId');
      checkSeconds(now, 'now');
      ensureOpen();
      return update(sessionId, (session) => ({ ...session, status: 'closed', updatedAt: now }));
    },

    async closeIdleSessions(idleBefore, now, limit) {
      checkSeconds(idleBefore, 'idleBefore');
      checkSeconds(now, 'now');
      checkLimit(limit);
      ensureOpen();
      const idle = [...sessions.entries()]
        .filter(([, session]) => session.status === 'open' && session.updatedAt < idleBefore)
        .slice(0, limit);
      return idle.map(([key, session]) => {
        const closed: Session = { ...session, status: 'closed', updatedAt: now };
        sessions.set(key, closed);
        return { ...closed, sessionId: closed.sessionId.slice() };
      });
    },

    async recordRefund(sessionId, status) {
      checkBytes(sessionId, 'sessionId');
      checkRefundStatus(status);
      ensureOpen();
      const key = toHex(sessionId);
      const session = sessions.get(key);
      if (session?.status !== 'closed' || session.refundStatus !== undefined) return false;
      sessions.set(key, { ...session, refundStatus: status });
      return true;
    },

    async session(sessionId) {
      checkBytes(sessionId, 'sessionId');
      ensureOpen();
      const session = sessions.get(toHex(sessionId));
      return session && { ...session, sessionId: session.sessionId.slice() };
    },

    async removeExpiredConsumptions(before) {
      checkSeconds(before, 'before');
      ensureOpen();
      let removed = 0;
      for (const [key, { expiresAt }] of consumed) {
        if (expiresAt < before) {
          consumed.delete(key);
          removed++;
        }
      }
      return removed;
    },

    async secret(name, fresh) {
      checkSecret(name, fresh);
      ensureOpen();
      if (!secrets.has(name)) secrets.set(name, fresh.slice());
      return secrets.get(name)!.slice();
    },

    async close() {
      closed = true;
    },
  };
}
