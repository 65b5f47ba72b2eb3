/**
 * `l402 tokens`: the tokens `l402 get` bought, kept in `$L402_HOME`: list, show, remove, export, import,
 * and attenuate one (add caveats, never widen) before handing it to another agent.
 *
 * @example
 * l402 tokens list
 * l402 tokens attenuate https://api.example --caveat api_capabilities=read > narrow.json
 * L402_HOME=/other/agent l402 tokens import narrow.json
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { Errors, Macaroon } from 'l402';
import { createFetch, Delegate, type StoredToken } from 'l402/client';
import { FileTokenStore } from 'l402/client/node';
import { type Run, repeatable, UsageError } from './cli.js';
import * as Config from './config.js';
import * as Session from './session.js';

const originOf = (text: string): string => {
  try {
    const origin = new URL(text).origin;
    if (origin !== 'null') return origin;
  } catch {}
  throw new UsageError(`not an http(s) origin: "${text.slice(0, 200)}"`);
};

/** A token without its preimage, for showing. */
function visible(t: StoredToken): Record<string, unknown> {
  const { preimage, ...rest } = t;
  return { ...rest, hasPreimage: preimage !== undefined };
}

const when = (ms: number | undefined) =>
  ms === undefined ? '-' : new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

/** The one stored token `id` names: a token id or payment hash, whole or a unique prefix of 8+ digits. */
async function pick(list: readonly StoredToken[], id: string): Promise<StoredToken> {
  const needle = id.toLowerCase();
  if (!/^[0-9a-f]{8,64}$/.test(needle)) {
    throw new UsageError(
      `a token is named by its token id or payment hash (8 to 64 hex digits), got "${id}"`,
    );
  }
  const found = list.filter((t) => t.tokenId.startsWith(needle) || t.paymentHash.startsWith(needle));
  if (found.length === 0) throw new UsageError(`no token ${id} in the store`);
  if (found.length > 1) throw new UsageError(`${found.length} tokens match ${id}: give more digits`);
  return found[0] as StoredToken;
}

/**
 * Adds `l402 tokens` to the program.
 *
 * @example
 * registerTokens(program, run); // l402 tokens list --json
 */
export function registerTokens(program: Command, run: Run): void {
  const out = (line: string) => run.io.stdout(`${line}\n`);
  const tokens = program.command('tokens').description(`the tokens l402 get bought (in $L402_HOME)`);
  const withStore = async <T>(fn: (s: Session.Session) => Promise<T>) => {
    const session = await Session.open(Config.load());
    try {
      return await fn(session);
    } finally {
      await session.close();
    }
  };

  tokens
    .command('list')
    .description('one line per token: id, origin, path, price, state, expiry')
    .argument('[origin]', 'only the tokens of this origin')
    .option('--json', 'print a JSON array (without preimages)')
    .action((origin: string | undefined, options: { json?: boolean }) =>
      withStore(async ({ store }) => {
        const list = await store.list(origin === undefined ? undefined : originOf(origin));
        if (options.json) return out(JSON.stringify(list.map(visible)));
        for (const t of list) {
          out(
            [
              t.tokenId.slice(0, 16),
              t.origin,
              t.path,
              `${t.amountSats} sat`,
              t.state,
              `expires ${when(t.expiresAt)}`,
            ].join('  '),
          );
        }
      }),
    );

  tokens
    .command('show')
    .description('one token as JSON (the preimage is not shown; `tokens export` has it)')
    .argument('<id>', 'token id or payment hash (8+ hex digits)')
    .action((id: string) =>
      withStore(async ({ store }) => {
        const t = await pick(await store.list(), id);
        const mac = Macaroon.decode(t.macaroon);
        const caveats = mac.caveats.map((c) => new TextDecoder().decode(c.id));
        out(JSON.stringify({ ...visible(t), caveats }, null, 2));
      }),
    );

  tokens
    .command('rm')
    .description('remove tokens: by id, or every token of an origin with --origin')
    .argument('[ids...]', 'token ids or payment hashes (8+ hex digits)')
    .option('--origin <origin>', 'remove every token of this origin')
    .action((ids: string[], options: { origin?: string }) =>
      withStore(async ({ store }) => {
        if (ids.length === 0 && options.origin === undefined) {
          throw new UsageError('name the tokens to remove, or --origin <origin>');
        }
        const all = await store.list(options.origin === undefined ? undefined : originOf(options.origin));
        const doomed = ids.length > 0 ? await Promise.all(ids.map((id) => pick(all, id))) : all;
        for (const t of doomed) {
          await store.remove(t.origin, t.paymentHash);
          out(`removed ${t.tokenId.slice(0, 16)}  ${t.origin}${t.path}`);
        }
      }),
    );

  tokens
    .command('export')
    .description('every token as a JSON array, preimages included (keep it private)')
    .option('-o, --output <file>', 'write to this file (mode 0600) instead of stdout')
    .option('--origin <origin>', 'only this origin')
    .action((options: { output?: string; origin?: string }) =>
      withStore(async ({ store }) => {
        const json =
          options.origin === undefined
            ? await store.export()
            : JSON.stringify(await store.list(originOf(options.origin)), null, 2);
        if (options.output === undefined) return out(json);
        try {
          writeFileSync(options.output, `${json}\n`, { mode: 0o600, flag: 'wx' });
        } catch (error) {
          throw new UsageError(`-o ${options.output}: ${(error as Error).message}`);
        }
      }),
    );

  tokens
    .command('import')
    .description('add tokens from `tokens export` or `tokens attenuate` JSON, or from lnget with --lnget')
    .argument('[file]', 'JSON file, or - for stdin', '-')
    .option('--lnget [dir]', "read lnget's token directory instead (default ~/.lnget/tokens)")
    .action((file: string, options: { lnget?: string | true }) =>
      withStore(async ({ store }) => {
        let value: unknown;
        if (options.lnget !== undefined) {
          const dir = options.lnget === true ? join(homedir(), '.lnget', 'tokens') : options.lnget;
          try {
            value = await FileTokenStore.importLnget(dir);
          } catch (error) {
            if (error instanceof Errors.L402Error) throw error;
            throw new UsageError(`--lnget ${dir}: ${(error as Error).message}`);
          }
        } else {
          let text: string;
          try {
            text = readFileSync(file === '-' ? 0 : file, 'utf8');
          } catch (error) {
            throw new UsageError(`${file}: ${(error as Error).message}`);
          }
          try {
            value = JSON.parse(text);
          } catch {
            throw new UsageError(`${file} is not JSON`);
          }
        }
        // `tokens attenuate` prints { credential, token }: take the token.
        if (typeof value === 'object' && value !== null && 'token' in value && 'credential' in value) {
          value = (value as { token: unknown }).token;
        }
        const count = await store.import(value);
        out(`imported ${count} token${count === 1 ? '' : 's'}`);
      }),
    );

  tokens
    .command('recover')
    .description(
      'settle pending payments (a run that stopped mid-payment): ask the wallet, keep what was paid',
    )
    .option('--json', 'print a JSON array of { origin, paymentHash, state }')
    .action((options: { json?: boolean }) =>
      withStore(async (session) => {
        const outcomes: { origin: string; paymentHash: string; state: string }[] = [];
        const fetch402 = createFetch({
          wallet: session.wallet,
          store: session.store,
          ledger: session.ledger,
          onEvent: (e) => {
            if (e.type === 'recovered')
              outcomes.push({ origin: e.origin, paymentHash: e.paymentHash, state: e.state });
          },
        });
        await fetch402.recover();
        if (options.json) return out(JSON.stringify(outcomes));
        if (outcomes.length === 0) return out('no pending payments');
        for (const o of outcomes) out(`${o.state.padEnd(10)} ${o.paymentHash.slice(0, 16)}  ${o.origin}`);
      }),
    );

  tokens
    .command('attenuate')
    .description(
      'narrow a paid token with more caveats and print it ({ credential, token } JSON) for another agent',
    )
    .argument('<origin>', 'origin the token is for')
    .requiredOption(
      '--caveat <key=value>',
      'first-party caveat to add (repeatable); never widens',
      repeatable,
    )
    .option('--token <id>', 'which token, when the origin has several')
    .option('--credential', 'print only the Authorization header value')
    .action((origin: string, options: { caveat: string[]; token?: string; credential?: boolean }) =>
      withStore(async ({ store }) => {
        const paid = (await store.list(originOf(origin))).filter(
          (t) => t.state === 'paid' && t.preimage !== undefined && (t.scheme ?? 'L402') !== 'Payment',
        );
        if (paid.length === 0) throw new UsageError(`no paid token for ${originOf(origin)}`);
        let t: StoredToken;
        if (options.token !== undefined) t = await pick(paid, options.token);
        else if (paid.length === 1) t = paid[0] as StoredToken;
        else
          throw new UsageError(`${paid.length} tokens for ${originOf(origin)}: choose one with --token <id>`);
        let delegated: Delegate.Delegated;
        try {
          delegated = Delegate.attenuate(t, options.caveat);
        } catch (error) {
          // A widening or malformed caveat is the caller's mistake: exit 2 with the library's reason.
          if (error instanceof Errors.L402Error) throw new UsageError(`--caveat: ${error.message}`);
          throw error;
        }
        const { credential, token } = delegated;
        out(options.credential ? credential : JSON.stringify({ credential, token }, null, 2));
      }),
    );
}
