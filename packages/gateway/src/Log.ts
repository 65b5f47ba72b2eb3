/**
 * The gateway's logger: structured JSON lines from [pino](https://getpino.io), one object per line, at
 * Aperture's levels (`debuglevel`), written where the caller says. It is injected into everything that
 * logs, so tests collect lines and the CLI writes them to stderr (as readable text when stderr is a
 * terminal: {@link Options.pretty}).
 *
 * Every line has `time` (ISO 8601), `level` (`debug`, `info`, `warn`, `error`) and `msg`, then the
 * caller's fields. The request log (one `request` line per request, from the handler) carries the
 * request's `requestId`, also sent back in `X-Request-Id`.
 *
 * Secrets never reach a line. Callers log paths without query strings and error codes instead of
 * credentials; as a second guard, a top-level field whose name says it holds a credential
 * (authorization, macaroon, preimage, rune, password, secret, token, cookie, masterkey, or ending in
 * `uri`) is written as `"[redacted]"`, and pino's redaction censors the same in nested request views
 * (`headers.authorization`, `headers.macaroon`, `headers["grpc-metadata-macaroon"]`, `headers.cookie`,
 * the same under `request.headers`, …). A top-level field named like a secret is censored whole,
 * whatever it holds (a `token` record included).
 *
 * @example
 * const log = Log.create({ level: 'info', write: (line) => process.stderr.write(line) });
 * log.info('listening', { url: 'http://127.0.0.1:8080' });
 * // {"level":"info","time":"2025-01-01T00:00:00.000Z","url":"http://127.0.0.1:8080","msg":"listening"}
 */
import { type LevelWithSilent, pino } from 'pino';
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
  /**
   * One readable line per entry (`12:00:00.000 INFO  request method=GET path=/x status=200`) instead
   * of JSON: for a terminal (`process.stderr.isTTY`), never for files or collectors.
   */
  readonly pretty?: boolean;
}

const PINO_LEVEL: Readonly<Record<LogLevel, LevelWithSilent>> = {
  trace: 'trace',
  debug: 'debug',
  info: 'info',
  warn: 'warn',
  error: 'error',
  critical: 'fatal',
  off: 'silent',
};

const SECRET_FIELD =
  /authorization|macaroon|preimage|rune|password|secret|token|cookie|masterkey|credential|uri$/i;

/** Field names that hold a credential although the pattern would not say so. */
const NOT_SECRET = new Set(['tokenId', 'tokens']);

/**
 * Nested places pino's redaction censors: request views a caller might pass whole.
 * Top-level names are judged by {@link SECRET_FIELD} (broader than a fixed list of paths).
 */
const REDACT_PATHS = [
  'headers.authorization',
  'headers.macaroon',
  'headers["grpc-metadata-macaroon"]',
  'headers.cookie',
  'headers["set-cookie"]',
  'headers["x-api-key"]',
  'request.headers.authorization',
  'request.headers.macaroon',
  'request.headers["grpc-metadata-macaroon"]',
  'request.headers.cookie',
  'error.credential',
];
const CENSOR = '[redacted]';

/** Field names are few and fixed: decide once per name (bounded, in case a caller invents names). */
const secretNames = new Map<string, boolean>();
function isSecret(name: string): boolean {
  let secret = secretNames.get(name);
  if (secret === undefined) {
    secret = SECRET_FIELD.test(name) && !NOT_SECRET.has(name);
    if (secretNames.size < 1024) secretNames.set(name, secret);
  }
  return secret;
}

/** The fields as written: secrets censored, errors as their message, bigints as text. */
function fieldsOut(fields: Record<string, unknown>): Record<string, unknown> {
  let out: Record<string, unknown> | undefined;
  for (const name in fields) {
    const value = fields[name];
    let written = value;
    if (isSecret(name)) written = CENSOR;
    else if (value instanceof Error) written = value.message;
    else if (typeof value === 'bigint') written = value.toString();
    if (written !== value) {
      out ??= { ...fields };
      out[name] = written;
    }
  }
  return out ?? fields;
}

/**
 * A logger writing JSON lines (or readable ones, `pretty`) at `level` and above.
 *
 * @example
 * const lines: string[] = [];
 * const log = Log.create({ level: 'debug', write: (l) => lines.push(l) });
 */
export function create(options: Options): Logger {
  const now = options.now ?? Date.now;
  // Under load many lines share a millisecond; format its timestamp once.
  let lastMs = Number.NaN;
  let lastTime = '';
  const timestamp = () => {
    const ms = now();
    if (ms !== lastMs) {
      lastMs = ms;
      lastTime = `,"time":"${new Date(ms).toISOString()}"`;
    }
    return lastTime;
  };
  const write = options.write;
  const logger = pino(
    {
      level: PINO_LEVEL[options.level ?? 'info'],
      base: null,
      messageKey: 'msg',
      timestamp,
      formatters: { level: (label) => ({ level: label }), log: fieldsOut },
      redact: { paths: REDACT_PATHS, censor: CENSOR },
    },
    { write: options.pretty ? (line: string) => write(readable(line)) : write },
  );
  const at = (level: 'debug' | 'info' | 'warn' | 'error') => {
    const method = logger[level].bind(logger);
    return (message: string, fields?: Fields): void => {
      if (fields === undefined) method(message);
      else method(fields, message);
    };
  };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/** A JSON line as one readable line: time of day, level, message, then `key=value` fields. */
function readable(line: string): string {
  const { time, level, msg, ...fields } = JSON.parse(line) as Record<string, unknown>;
  let text = `${String(time ?? '').slice(11, 23)} ${String(level).toUpperCase().padEnd(5)} ${String(msg ?? '')}`;
  for (const [name, value] of Object.entries(fields)) {
    const shown = typeof value === 'string' && /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value);
    text += ` ${name}=${shown}`;
  }
  return `${text}\n`;
}

/**
 * A logger that writes nothing.
 *
 * @example
 * await Gateway.start(config, { log: Log.silent });
 */
export const silent: Logger = create({ level: 'off', write: () => {} });
