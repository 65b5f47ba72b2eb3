/**
 * The gateway's logger: one JSON object per line, at Aperture's levels (`debuglevel`), written where
 * the caller says. It is injected into everything that logs, so tests collect lines and the CLI writes
 * them to stderr.
 *
 * Secrets never reach a line: callers log paths without query strings and error codes instead of
 * credentials, and as a second guard any field whose name says it holds a credential (authorization,
 * macaroon, preimage, rune, password, secret, masterkey, or ending in uri) is written as `"[redacted]"`.
 *
 * @example
 * const log = Log.create({ level: 'info', write: (line) => process.stderr.write(line) });
 * log.info('listening', { url: 'http://127.0.0.1:8080' });
 * // {"time":"2025-01-01T00:00:00.000Z","level":"info","msg":"listening","url":"http://127.0.0.1:8080"}
 */
import type { LogLevel } from './Config.js';

/** Structured fields of a line; errors are written as their message, bigints as text. */
export type Fields = Readonly<Record<string, unknown>>;

/** What the gateway logs through; inject one to collect or route the lines. */
export interface Logger {
  debug(message: string, fields?: Fields): void;
  info(message: string, fields?: Fields): void;
  warn(message: string, fields?: Fields): void;
  error(message: string, fields?: Fields): void;
}

/** Options of {@link create}. */
export interface Options {
  /** The lowest level written; `info` by default, `off` writes nothing. */
  readonly level?: LogLevel;
  /** Receives each line, newline included. */
  readonly write: (line: string) => void;
  /** Unix milliseconds, for the `time` field. */
  readonly now?: () => number;
}

const RANK: Readonly<Record<LogLevel, number>> = {
  trace: 0,
  debug: 1,
  info: 2,
  warn: 3,
  error: 4,
  critical: 5,
  off: 6,
};

const SECRET_FIELD = /authorization|macaroon|preimage|rune|password|secret|masterkey|uri$/i;

/** Field names are few and fixed: decide once per name (bounded, in case a caller invents names). */
const secretNames = new Map<string, boolean>();
function isSecret(name: string): boolean {
  let secret = secretNames.get(name);
  if (secret === undefined) {
    secret = SECRET_FIELD.test(name);
    if (secretNames.size < 1024) secretNames.set(name, secret);
  }
  return secret;
}

function fieldValue(name: string, value: unknown): unknown {
  if (isSecret(name)) return '[redacted]';
  if (value instanceof Error) return value.message;
  if (typeof value === 'bigint') return value.toString();
  return value;
}

/**
 * A logger writing JSON lines at `level` and above.
 *
 * @example
 * const lines: string[] = [];
 * const log = Log.create({ level: 'debug', write: (l) => lines.push(l) });
 */
export function create(options: Options): Logger {
  const threshold = RANK[options.level ?? 'info'];
  const now = options.now ?? Date.now;
  // Under load many lines share a millisecond; format its timestamp once.
  let lastMs = Number.NaN;
  let lastIso = '';
  const time = () => {
    const ms = now();
    if (ms !== lastMs) {
      lastMs = ms;
      lastIso = new Date(ms).toISOString();
    }
    return lastIso;
  };
  const at =
    (level: 'debug' | 'info' | 'warn' | 'error') =>
    (message: string, fields: Fields = {}): void => {
      if (RANK[level] < threshold) return;
      const entry: Record<string, unknown> = { time: time(), level, msg: message };
      for (const [name, value] of Object.entries(fields)) entry[name] = fieldValue(name, value);
      options.write(`${JSON.stringify(entry)}\n`);
    };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/**
 * A logger that writes nothing.
 *
 * @example
 * await Gateway.start(config, { log: Log.silent });
 */
export const silent: Logger = create({ level: 'off', write: () => {} });
