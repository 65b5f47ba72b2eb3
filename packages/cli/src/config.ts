/**
 * Settings of the paying commands (`get`, `tokens`, `wallet`, `budget`): `$L402_HOME/config.yaml`, then
 * `L402_*` environment variables over it, then command-line flags over both. Every value is checked;
 * a bad one is a {@link UsageError} naming where it came from (exit 2), never a silent default.
 *
 * config.yaml keys (all optional):
 *
 * ```yaml
 * wallet: lnd://127.0.0.1:8080?macaroon=…&cert=/path/tls.cert  # or a list: tried in order
 * maxCostSats: 100          # refuse to pay more than this for one request
 * maxFeeSats: 10            # routing fee limit per payment
 * allowInsecureHttp: false  # allow plain http:// to hosts other than loopback
 * budget:                   # over the payments recorded in $L402_HOME (see `l402 budget`)
 *   perRequestSats: 100
 *   perOriginSats: 1000
 *   perHourSats: 500
 *   perDaySats: 2000
 *   totalSats: 10000
 * ```
 *
 * Environment: `L402_HOME`, `L402_WALLET` (URIs separated by spaces or newlines), `L402_MAX_COST_SATS`,
 * `L402_MAX_FEE_SATS`, `L402_ALLOW_INSECURE_HTTP` (`1`/`true`/`0`/`false`),
 * `L402_BUDGET_PER_REQUEST_SATS`, `L402_BUDGET_PER_ORIGIN_SATS`, `L402_BUDGET_PER_HOUR_SATS`,
 * `L402_BUDGET_PER_DAY_SATS`, `L402_BUDGET_TOTAL_SATS`.
 *
 * @example
 * const settings = Config.load({ maxCostSats: 50 }); // flags win over L402_* over config.yaml
 */
import { readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import type { Ledger } from 'l402/client';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { type Run, UsageError } from './cli.js';

/** Budget limits in satoshis (the SDK's); a missing one is no limit. */
export type Budget = Ledger.Budget;

export const BUDGET_KEYS = [
  'perRequestSats',
  'perOriginSats',
  'perHourSats',
  'perDaySats',
  'totalSats',
] as const satisfies readonly (keyof Budget)[];

/** Where a setting's value came from. */
export type Source = 'flag' | 'env' | 'file' | 'default';

/** The settings one command runs with. */
export interface Settings {
  /** `$L402_HOME`, else `~/.l402`: tokens, payments, budgets, config.yaml, devnet.json. */
  readonly home: string;
  /** Wallet URIs in fallback order; empty means "the devnet published in home". */
  readonly wallets: readonly string[];
  readonly maxCostSats: number | undefined;
  readonly maxFeeSats: number | undefined;
  readonly allowInsecureHttp: boolean;
  /** Limits set by config.yaml or the environment (they win over those saved with `l402 budget set`). */
  readonly budget: Budget;
  /** Where each top-level setting came from (for `l402 config show`). */
  readonly sources: Readonly<Record<string, Source>>;
  /** Things the user should fix that do not stop the command (a config.yaml with wallet secrets others can read). */
  readonly warnings: readonly string[];
  /** config.yaml's `mcp:` section: the agent policy of `l402 mcp` (its flags and `L402_MCP_*` win). */
  readonly mcp: McpPolicy;
}

/** The operator's policy for agents (`l402 mcp`), as config.yaml states it. */
export interface McpPolicy {
  readonly allowedOrigins?: readonly string[];
  readonly allowPrivate?: boolean;
  readonly approvalThresholdSats?: number;
}

/** What command-line flags may set. */
export interface Flags {
  wallets?: readonly string[];
  maxCostSats?: number;
  maxFeeSats?: number;
  allowInsecureHttp?: boolean;
}

const sats = z.number().int().nonnegative().max(21e14);

const FileSchema = z.strictObject({
  wallet: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).optional(),
  maxCostSats: sats.optional(),
  maxFeeSats: sats.optional(),
  allowInsecureHttp: z.boolean().optional(),
  budget: z
    .strictObject({
      perRequestSats: sats.optional(),
      perOriginSats: sats.optional(),
      perHourSats: sats.optional(),
      perDaySats: sats.optional(),
      totalSats: sats.optional(),
    })
    .optional(),
  mcp: z
    .strictObject({
      allowedOrigins: z.array(z.string().min(1)).optional(),
      allowPrivate: z.boolean().optional(),
      approvalThresholdSats: sats.optional(),
    })
    .optional(),
});

type FileConfig = z.infer<typeof FileSchema>;

/**
 * The l402 home: `$L402_HOME`, else `~/.l402`.
 *
 * @example
 * home({ L402_HOME: '/tmp/x' }); // '/tmp/x'
 */
export function home(env: NodeJS.ProcessEnv = process.env): string {
  const dir = env.L402_HOME;
  return dir !== undefined && dir !== '' ? dir : join(homedir(), '.l402');
}

/**
 * A whole number of satoshis given as `what` (a flag or variable name).
 *
 * @example
 * satoshis('21', '--max-cost'); // 21
 */
export function satoshis(text: string, what: string): number {
  if (!/^\d{1,16}$/.test(text.trim()) || Number(text) > 21e14) {
    throw new UsageError(`${what} must be a whole number of satoshis, got "${text}"`);
  }
  return Number(text.trim());
}

function bool(text: string, what: string): boolean {
  const t = text.trim().toLowerCase();
  if (t === '1' || t === 'true' || t === 'yes') return true;
  if (t === '0' || t === 'false' || t === 'no' || t === '') return false;
  throw new UsageError(`${what} must be true or false, got "${text}"`);
}

/** config.yaml of `dir`, checked; `{}` when there is none. */
function readFile(dir: string): FileConfig {
  const file = join(dir, 'config.yaml');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new UsageError(`cannot read ${file}: ${(error as Error).message}`);
  }
  let data: unknown;
  try {
    data = parseYaml(text);
  } catch (error) {
    throw new UsageError(`${file} is not YAML: ${(error as Error).message}`);
  }
  if (data === null || data === undefined) return {};
  const parsed = FileSchema.safeParse(data);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue?.path.join('.') ?? '';
    const keys = issue?.code === 'unrecognized_keys' ? ` (unknown key ${issue.keys.join(', ')})` : '';
    throw new UsageError(`${file}: ${where !== '' ? `${where}: ` : ''}${issue?.message ?? 'invalid'}${keys}`);
  }
  return parsed.data;
}

const ENV_BUDGET: Record<keyof Budget, string> = {
  perRequestSats: 'L402_BUDGET_PER_REQUEST_SATS',
  perOriginSats: 'L402_BUDGET_PER_ORIGIN_SATS',
  perHourSats: 'L402_BUDGET_PER_HOUR_SATS',
  perDaySats: 'L402_BUDGET_PER_DAY_SATS',
  totalSats: 'L402_BUDGET_TOTAL_SATS',
};

const set = (env: NodeJS.ProcessEnv, name: string) => {
  const v = env[name];
  return v !== undefined && v.trim() !== '' ? v : undefined;
};

/**
 * The settings for this run: flags over `L402_*` variables over `$L402_HOME/config.yaml`.
 *
 * @example
 * const { wallets, maxCostSats } = load({ maxCostSats: 10 });
 */
export function load(flags: Flags = {}, env: NodeJS.ProcessEnv = process.env): Settings {
  const dir = home(env);
  const file = readFile(dir);
  const sources: Record<string, Source> = {};

  const pick = <T>(
    name: string,
    flag: T | undefined,
    fromEnv: () => T | undefined,
    fromFile: T | undefined,
  ) => {
    if (flag !== undefined) {
      sources[name] = 'flag';
      return flag;
    }
    const e = fromEnv();
    if (e !== undefined) {
      sources[name] = 'env';
      return e;
    }
    if (fromFile !== undefined) {
      sources[name] = 'file';
      return fromFile;
    }
    sources[name] = 'default';
    return undefined;
  };

  const wallets = pick(
    'wallet',
    flags.wallets !== undefined && flags.wallets.length > 0 ? flags.wallets : undefined,
    () => set(env, 'L402_WALLET')?.trim().split(/\s+/),
    file.wallet === undefined ? undefined : typeof file.wallet === 'string' ? [file.wallet] : file.wallet,
  );
  const envSats = (name: string) => () => {
    const v = set(env, name);
    return v === undefined ? undefined : satoshis(v, name);
  };
  const maxCostSats = pick('maxCostSats', flags.maxCostSats, envSats('L402_MAX_COST_SATS'), file.maxCostSats);
  const maxFeeSats = pick('maxFeeSats', flags.maxFeeSats, envSats('L402_MAX_FEE_SATS'), file.maxFeeSats);
  const allowInsecureHttp = pick(
    'allowInsecureHttp',
    flags.allowInsecureHttp === true ? true : undefined,
    () => {
      const v = set(env, 'L402_ALLOW_INSECURE_HTTP');
      return v === undefined ? undefined : bool(v, 'L402_ALLOW_INSECURE_HTTP');
    },
    file.allowInsecureHttp,
  );
  const budget: Budget = {};
  for (const key of BUDGET_KEYS) {
    const value = pick(`budget.${key}`, undefined, envSats(ENV_BUDGET[key]), file.budget?.[key]);
    if (value !== undefined) budget[key] = value;
  }
  const warnings: string[] = [];
  if (file.wallet !== undefined) {
    const path = join(dir, 'config.yaml');
    const mode = statSync(path).mode & 0o777;
    if ((mode & 0o077) !== 0) {
      warnings.push(
        `${path} holds wallet credentials and is readable by others (mode ${mode.toString(8)}): chmod 600 it`,
      );
    }
  }
  return {
    home: dir,
    wallets: wallets ?? [],
    maxCostSats,
    maxFeeSats,
    allowInsecureHttp: allowInsecureHttp ?? false,
    budget,
    sources,
    warnings,
    mcp: file.mcp ?? {},
  };
}

/**
 * A wallet URI with its secrets left out (query string, user info), for messages and `config show`.
 *
 * @example
 * redact('lnd://127.0.0.1:8080?macaroon=abcd&cert=/x'); // 'lnd://127.0.0.1:8080?…'
 */
export function redact(uri: string): string {
  const match = /^([a-z][a-z0-9+.-]*:\/\/)(?:[^@/?#]*@)?([^/?#]*)([^?#]*)/i.exec(uri);
  if (match === null) return `${uri.split(':')[0] ?? ''}:…`;
  const hidden = uri.length > match[0].length ? '?…' : '';
  return `${match[1]}${match[2]}${match[3]}${hidden}`;
}

/**
 * Adds `l402 config show`: the settings in force and where each came from, wallet secrets left out.
 *
 * @example
 * registerConfig(program, run); // l402 config show --json
 */
export function registerConfig(program: Command, run: Run): void {
  program
    .command('config')
    .description(`the settings in force (flags > L402_* > $L402_HOME/config.yaml)`)
    .command('show')
    .description('each setting, where it came from (env, file, default), wallet URIs without their secrets')
    .option('--json', 'print JSON')
    .action((options: { json?: boolean }) => {
      const s = load();
      const view = {
        home: s.home,
        file: join(s.home, 'config.yaml'),
        wallets: s.wallets.map(redact),
        maxCostSats: s.maxCostSats ?? null,
        maxFeeSats: s.maxFeeSats ?? null,
        allowInsecureHttp: s.allowInsecureHttp,
        budget: s.budget,
        sources: s.sources,
      };
      if (options.json) return run.io.stdout(`${JSON.stringify(view)}\n`);
      const line = (name: string, value: unknown) =>
        run.io.stdout(
          `${name.padEnd(26)}${String(value)}${s.sources[name] ? `  (${s.sources[name]})` : ''}\n`,
        );
      run.io.stdout(`home                      ${view.home}\n`);
      line('wallet', view.wallets.length > 0 ? view.wallets.join(' ') : 'the devnet payer (devnet.json)');
      line('maxCostSats', view.maxCostSats ?? 'l402 default (1000)');
      line('maxFeeSats', view.maxFeeSats ?? 'l402 default (10)');
      line('allowInsecureHttp', view.allowInsecureHttp);
      for (const key of BUDGET_KEYS) line(`budget.${key}`, s.budget[key] ?? '-');
    });
}
