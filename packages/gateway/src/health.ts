/**
 * The Lightning backend's health, probed with its cheapest read (`info()`: LND's `GetInfo`, CLN's
 * `getinfo`, …) now and every `intervalMs`, one probe at a time, each bounded by `timeoutMs`. Each
 * result goes to the metrics (`l402_lightning_up`), a change of state to the log (a warning when the
 * backend stops answering, a line when it answers again), and the node's public key, once known, to
 * the discovery document.
 *
 * @example
 * const health = Health.watch(backend, { intervalMs: 15_000, timeoutMs: 5_000, metrics, log });
 * health.info?.pubkey; // '02ab…' after the first probe answered
 * health.stop();
 */
import type { Backend, NodeInfo } from 'l402/lightning';
import type { Logger } from './Log.js';
import type { Recorder } from './metrics.js';

/** Options of {@link watch}. */
export interface Options {
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly metrics: Recorder;
  readonly log: Logger;
}

/** A running probe (see {@link watch}). */
export interface Health {
  /** Whether the last probe answered; undefined before the first one ends. */
  readonly up: boolean | undefined;
  /** What the backend said last time it answered. */
  readonly info: NodeInfo | undefined;
  /** Stops probing; the result of a probe under way is dropped. */
  stop(): void;
}

class ProbeTimeout extends Error {
  readonly code = 'PROBE_TIMEOUT';
}

/**
 * Probes `backend` now and every `intervalMs` until stopped.
 *
 * @example
 * const health = Health.watch(backend, { intervalMs: 15_000, timeoutMs: 5_000, metrics: Metrics.none, log });
 */
export function watch(backend: Backend, options: Options): Health {
  const { metrics, log } = options;
  let up: boolean | undefined;
  let info: NodeInfo | undefined;
  /** A probe is under way: the next tick waits for the one after it rather than stacking up. */
  let probing = false;
  let stopped = false;

  const probe = async () => {
    const started = performance.now();
    let timer: ReturnType<typeof setTimeout> | undefined;
    let answered: NodeInfo | undefined;
    let failure: unknown;
    try {
      answered = await Promise.race([
        backend.info(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new ProbeTimeout(`no answer within ${options.timeoutMs} ms`)),
            options.timeoutMs,
          );
          timer.unref();
        }),
      ]);
    } catch (error) {
      failure = error;
    } finally {
      clearTimeout(timer);
    }
    if (stopped) return;
    const isUp = answered !== undefined;
    if (isUp) {
      info = answered;
      if (up === false) log.info('lightning backend answers again', { backend: backend.kind });
    } else if (up !== false) {
      log.warn('lightning backend does not answer', {
        backend: backend.kind,
        code: (failure as { code?: unknown }).code,
        error: failure instanceof Error ? failure.message : String(failure),
      });
    }
    up = isUp;
    metrics.probed(backend.kind, isUp, (performance.now() - started) / 1000);
  };
  const pass = () => {
    if (probing || stopped) return;
    probing = true;
    void probe().finally(() => {
      probing = false;
    });
  };
  pass();
  const timer = setInterval(pass, options.intervalMs);
  timer.unref();
  return {
    get up() {
      return up;
    },
    get info() {
      return info;
    },
    stop() {
      stopped = true;
      clearInterval(timer);
    },
  };
}
