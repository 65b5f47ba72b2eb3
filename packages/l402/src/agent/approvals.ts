/**
 * Payments above the operator's threshold wait for a human. When the host can ask (MCP elicitation),
 * the tool asks at once; when it cannot, the call ends with a pending approval that the operator grants
 * out of band (`l402 mcp approve <id>`), and the agent repeats the call with `approval_id`. A grant is
 * for one call to that URL and method, up to that many sats, and expires.
 *
 * @example
 * const approvals = Approvals.memory();
 * const pending = await approvals.request({ url, method: 'GET', sats: 500 });
 * await approvals.grant(pending.id); // the operator
 * await approvals.consume(pending.id, { url, method: 'GET', sats: 480 }); // true, once
 */

import { Mutex } from '../client/Space.js';
import { L402Error } from '../Errors.js';
import { toHex } from '../internal/bytes.js';

export interface Request {
  readonly url: string;
  readonly method: string;
  readonly sats: number;
}

export interface Pending extends Request {
  readonly id: string;
  /** Unix milliseconds after which it can no longer be granted or used. */
  readonly expiresAt: number;
  readonly granted: boolean;
}

/** Thrown (inside a payment failure) when a payment waits for the operator's approval. */
export class ApprovalRequired extends L402Error {
  override readonly name = 'ApprovalRequired';
  constructor(readonly pending: Pending) {
    super(
      'L402_AGENT_APPROVAL_REQUIRED',
      `paying ${pending.sats} sat for ${pending.method} ${pending.url} needs the operator's approval ` +
        `(approval id ${pending.id}); call again with approval_id once it is granted`,
    );
  }
}

/** Where approvals are kept: in memory, or a file the operator's CLI can write (see `l402 mcp approve`). */
export interface Approvals {
  request(request: Request): Promise<Pending>;
  grant(id: string): Promise<Pending | undefined>;
  list(): Promise<Pending[]>;
  /** True once for a granted, unexpired approval covering this call; the approval is then used up. */
  consume(id: string, request: Request): Promise<boolean>;
}

/** What a backing store must do: read and replace the whole list, atomically. */
export interface Storage {
  read(): Promise<Pending[]>;
  write(all: Pending[]): Promise<void>;
  /** Serialises read-modify-write across processes where it can. */
  locked<T>(fn: () => Promise<T>): Promise<T>;
}

const TTL_MS = 15 * 60_000;

/**
 * Approvals over a {@link Storage}.
 *
 * @example
 * const approvals = Approvals.over(fileStorage);
 */
export function over(storage: Storage, now: () => number = Date.now): Approvals {
  const live = (all: Pending[]) => all.filter((p) => p.expiresAt > now());
  return {
    request: (request) =>
      storage.locked(async () => {
        const pending: Pending = {
          id: toHex(crypto.getRandomValues(new Uint8Array(8))),
          url: request.url,
          method: request.method,
          sats: request.sats,
          expiresAt: now() + TTL_MS,
          granted: false,
        };
        await storage.write([...live(await storage.read()), pending]);
        return pending;
      }),
    grant: (id) =>
      storage.locked(async () => {
        const all = live(await storage.read());
        const found = all.find((p) => p.id === id);
        if (found === undefined) return undefined;
        const granted = { ...found, granted: true };
        await storage.write(all.map((p) => (p.id === id ? granted : p)));
        return granted;
      }),
    list: async () => live(await storage.read()),
    consume: (id, request) =>
      storage.locked(async () => {
        const all = live(await storage.read());
        const found = all.find((p) => p.id === id);
        const ok =
          found?.granted === true &&
          found.url === request.url &&
          found.method === request.method &&
          request.sats <= found.sats;
        if (ok) await storage.write(all.filter((p) => p.id !== id));
        return ok;
      }),
  };
}

/**
 * Approvals kept in this process.
 *
 * @example
 * const approvals = Approvals.memory();
 */
export function memory(now?: () => number): Approvals {
  let all: Pending[] = [];
  const mutex = new Mutex();
  return over(
    {
      read: async () => all,
      write: async (next) => {
        all = next;
      },
      locked: (fn) => mutex.run('approvals', fn),
    },
    now,
  );
}
