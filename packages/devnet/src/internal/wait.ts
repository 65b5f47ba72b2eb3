/** Waiting with a time limit. Both helpers hold a ref'd timer, so a pending call keeps the process alive. */
import { ArgumentError, TimeoutError } from '../Errors.js';

/** A promise settled from outside, rejected by `onTimeout()` once `timeoutMs` pass first. */
export interface Deferred<T> {
  readonly promise: Promise<T>;
  resolve(value: T): void;
  reject(error: Error): void;
}

export function deferred<T>(timeoutMs: number, onTimeout: () => Error): Deferred<T> {
  let settle!: { resolve: (value: T) => void; reject: (error: Error) => void };
  const promise = new Promise<T>((resolve, reject) => {
    settle = { resolve, reject };
  });
  const timer = setTimeout(() => settle.reject(onTimeout()), timeoutMs);
  return {
    promise,
    resolve(value) {
      clearTimeout(timer);
      settle.resolve(value);
    },
    reject(error) {
      clearTimeout(timer);
      settle.reject(error);
    },
  };
}

/**
 * Resolves once `check()` returns true, polling every couple of milliseconds (the nodes' event loops
 * run in between); rejects with what `check` throws, or a {@link TimeoutError} naming `what`.
 */
export function until(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const poll = () => {
      try {
        if (check()) return resolve();
      } catch (error) {
        return reject(error);
      }
      if (Date.now() >= deadline)
        return reject(new TimeoutError(`timed out after ${timeoutMs} ms waiting for ${what}`));
      setTimeout(poll, 2);
    };
    poll();
  });
}

/** A validated time limit in milliseconds: a whole number from 1 to setTimeout's maximum. */
export function timeLimit(value: number | undefined, fallback: number): number {
  const ms = value ?? fallback;
  if (!Number.isSafeInteger(ms) || ms < 1 || ms > 2_147_483_647) {
    throw new ArgumentError('timeoutMs must be a whole number of milliseconds from 1 to 2147483647');
  }
  return ms;
}
