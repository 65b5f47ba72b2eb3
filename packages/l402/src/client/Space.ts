/**
 * Where the client keeps its state: a few JSON documents by key, and named locks. The token store and
 * the ledger are written once over this; the memory and `localStorage` spaces live here (browser and
 * edge safe), the file space (atomic 0600 files, journals, cross-process lock files) in `l402/client/node`.
 *
 * @example
 * const space = Space.memory();
 * await space.lock('ledger', async () => space.write('ledger', { records: [] }));
 */
import { ClientError } from '../Errors.js';

export interface Space {
  /**
   * The document under `key`, or `undefined`. The value may be shared with later reads (the file space
   * keeps it, deeply frozen, until the file changes): never change it; copy what you change.
   */
  read(key: string): Promise<unknown>;
  /** Replaces the document under `key` (durably, where the space is durable); `undefined` deletes it. */
  write(key: string, value: unknown): Promise<void>;
  /** Every key that starts with `prefix`. */
  keys(prefix: string): Promise<string[]>;
  /** Runs `fn` holding the lock `name`: one holder at a time in this process (and across processes for the file space). */
  lock<T>(name: string, fn: () => Promise<T>): Promise<T>;
  /**
   * Where the space has one (the file space): an append-only journal beside each document, so a small
   * change costs an append instead of rewriting the document. A space without it rewrites documents.
   */
  readonly journal?: Journal;
}

/**
 * Entries appended beside a document, in order. What they mean, and when they are folded into the
 * document, is the caller's business (the ledger's): the space only keeps them, changed under a lock.
 *
 * @example
 * if (space.journal) await space.journal.append('ledger', { seq: 1, op: 'release', paymentHash });
 */
export interface Journal {
  /** Every complete entry under `key`, oldest first (shared like {@link Space.read}'s values). */
  entries(key: string): Promise<readonly unknown[]>;
  /** Appends `entry` under `key`; durable when it resolves. Call it holding the document's lock. */
  append(key: string, entry: unknown): Promise<void>;
  /** Drops every entry under `key`. Call it holding the document's lock. */
  clear(key: string): Promise<void>;
}

/** One holder per name in this JavaScript realm: callers queue in order. */
export class Mutex {
  private readonly tails = new Map<string, Promise<void>>();
  async run<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(name) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => {
      release = r;
    });
    const tail = previous.then(() => mine);
    this.tails.set(name, tail);
    await previous;
    try {
      return await fn();
    } finally {
      release();
      if (this.tails.get(name) === tail) this.tails.delete(name);
    }
  }
}

const clone = (value: unknown) => (value === undefined ? undefined : JSON.parse(JSON.stringify(value)));

/**
 * A space in memory (copies in and out, like a store would). Gone when the process ends.
 *
 * @example
 * const store = TokenStore.over(Space.memory());
 */
export function memory(): Space {
  const docs = new Map<string, string>();
  const mutex = new Mutex();
  return {
    async read(key) {
      const text = docs.get(key);
      return text === undefined ? undefined : JSON.parse(text);
    },
    async write(key, value) {
      if (value === undefined) docs.delete(key);
      else docs.set(key, JSON.stringify(value));
    },
    async keys(prefix) {
      return [...docs.keys()].filter((k) => k.startsWith(prefix));
    },
    lock: (name, fn) => mutex.run(name, fn),
  };
}

/** The part of the Web Storage API a space needs (`window.localStorage`). */
export interface WebStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
  readonly length: number;
  key(index: number): string | null;
}

interface LockManager {
  request<T>(name: string, callback: () => Promise<T>): Promise<T>;
}

/**
 * A space in Web Storage (`localStorage` by default), every key under `prefix`. Locks use the Web
 * Locks API where the browser has it, so tabs of one origin share one payment; otherwise they hold
 * within the page only.
 *
 * @example
 * const store = TokenStore.localStorage(); // = TokenStore.over(Space.localStorage())
 */
export function localStorage(storage?: WebStorage, prefix = 'l402:'): Space {
  const s = storage ?? (globalThis as { localStorage?: WebStorage }).localStorage;
  if (s === undefined) throw new ClientError('L402_CLIENT_CONFIG', 'no localStorage in this runtime');
  const locks = (globalThis as { navigator?: { locks?: LockManager } }).navigator?.locks;
  const mutex = new Mutex();
  return {
    async read(key) {
      const text = s.getItem(prefix + key);
      if (text === null) return undefined;
      try {
        return JSON.parse(text);
      } catch (error) {
        throw new ClientError('L402_CLIENT_STORE', `localStorage ${prefix + key} is not JSON`, {
          cause: error,
        });
      }
    },
    async write(key, value) {
      if (value === undefined) s.removeItem(prefix + key);
      else s.setItem(prefix + key, JSON.stringify(value));
    },
    async keys(p) {
      const out: string[] = [];
      for (let i = 0; i < s.length; i++) {
        const k = s.key(i);
        if (k?.startsWith(prefix + p)) out.push(k.slice(prefix.length));
      }
      return out;
    },
    lock: (name, fn) => mutex.run(name, () => (locks ? locks.request(`${prefix}${name}`, fn) : fn())),
  };
}

export { clone };
