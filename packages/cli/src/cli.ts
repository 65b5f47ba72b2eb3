/**
 * What every `l402` subcommand shares: where output goes, how an action sets the exit code, and strict
 * parsers for option values. A bad value throws {@link UsageError}, which `main` turns into one line on
 * stderr and exit code 2.
 *
 * @example
 * const rootKey = hexBytes(options.rootKey, '--root-key', 32);
 */

/** Where a command writes. Each call gets whole lines, newline included. */
export interface Io {
  readonly stdout: (s: string) => void;
  readonly stderr: (s: string) => void;
  /** stderr is a terminal: logs are written for people rather than as JSON lines. */
  readonly stderrTTY?: boolean;
  /** Raw bytes to stdout (a response body), resolved once the pipe took them; text through `stdout` when absent. */
  readonly stdoutBytes?: (bytes: Uint8Array) => Promise<void>;
}

/**
 * One run of the program, handed to each subcommand's registrar. Actions write through `io` and set
 * `exitCode` for outcomes that are answers rather than errors (such as `token verify` saying "invalid").
 *
 * @example
 * run.io.stdout('valid\n');
 * run.exitCode = 1;
 */
export interface Run {
  readonly io: Io;
  exitCode: number;
}

/**
 * The user's input is wrong (a bad option value, a missing argument): exit code 2 with the message.
 *
 * @example
 * throw new UsageError('--now must be a unix time in whole seconds');
 */
export class UsageError extends Error {
  override name = 'UsageError';
}

const HEX = /^(?:[0-9a-fA-F]{2})*$/;

/**
 * Bytes of the hex value given for `option`, which must be exactly `length` bytes long. Never echoes the
 * value: it is often a secret (a root key, a preimage).
 *
 * @example
 * hexBytes('00'.repeat(32), '--payment-hash', 32); // Uint8Array(32)
 */
export function hexBytes(text: string, option: string, length: number): Uint8Array {
  if (!HEX.test(text)) throw new UsageError(`${option} must be hex (an even number of 0-9a-f digits)`);
  const bytes = new Uint8Array(Buffer.from(text, 'hex'));
  if (bytes.length !== length) {
    const got = bytes.length === 1 ? '1 byte' : `${bytes.length} bytes`;
    throw new UsageError(`${option} must be ${length} bytes (${length * 2} hex digits), got ${got}`);
  }
  return bytes;
}

/**
 * A unix time in whole seconds, as given for `option`.
 *
 * @example
 * unixSeconds('1700000000', '--now'); // 1700000000
 */
export function unixSeconds(text: string, option: string): number {
  if (!/^\d{1,15}$/.test(text))
    throw new UsageError(`${option} must be a unix time in whole seconds, got "${text}"`);
  return Number(text);
}

/**
 * Commander accumulator for an option that may be repeated; starts from `undefined` so that a
 * `requiredOption` still notices when the option never appears.
 *
 * @example
 * command.option('--caveat <key=value>', 'add a caveat (repeatable)', repeatable);
 */
export function repeatable(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/**
 * Resolves on the first SIGINT or SIGTERM: how long-running commands (`devnet`, `gateway`) wait to stop.
 *
 * @example
 * const signal = await untilSignal(); // 'SIGTERM'
 */
export function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (signal: NodeJS.Signals) => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
      resolve(signal);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}
