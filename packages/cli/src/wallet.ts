/**
 * `l402 wallet` (balance, invoice, pay with the configured wallet) and `l402 budget` (the spending
 * limits `l402 get` obeys, kept with the payment ledger in `$L402_HOME`).
 *
 * @example
 * l402 wallet balance
 * l402 wallet invoice 1000 --memo coffee
 * l402 wallet pay lnbcrt10u1… --max-fee 10
 * l402 budget set --per-day 5000 --per-request 100
 * l402 budget show --json
 */
import type { Command } from 'commander';
import { Invoice } from 'l402';
import type { Backend } from 'l402/lightning';
import { type Run, UsageError } from './cli.js';
import * as Config from './config.js';
import * as Exit from './exit.js';
import * as Session from './session.js';

const MSAT = 1000n;
const satsOf = (msat: bigint | undefined) => (msat === undefined ? null : Number(msat / MSAT));
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/**
 * Adds `l402 wallet` to the program.
 *
 * @example
 * registerWallet(program, run); // l402 wallet balance --wallet lnd://…
 */
export function registerWallet(program: Command, run: Run): void {
  const out = (line: string) => run.io.stdout(`${line}\n`);
  const wallet = program
    .command('wallet')
    .description('the wallet l402 pays with (--wallet, L402_WALLET, config.yaml, else the devnet payer)');

  /** Runs `fn` with the connected wallet; a wallet that cannot be reached exits 5. */
  const withWallet = async (uris: string[] | undefined, fn: (w: Backend) => Promise<void>) => {
    const session = await Session.open(Config.load(uris !== undefined ? { wallets: uris } : {}));
    try {
      let w: Backend;
      try {
        w = await session.backend();
      } catch (error) {
        const code = Exit.classify(error);
        if (code === undefined || code === Exit.USAGE) throw error;
        run.io.stderr(`l402: ${Exit.reason(error)}\n`);
        run.exitCode = Exit.PAYMENT_FAILED;
        return;
      }
      await fn(w);
    } finally {
      await session.close();
    }
  };
  const walletOption = ['--wallet <uri>', 'wallet URI (default: config/env, else the devnet payer)'] as const;
  const one = (uri: string | undefined) => (uri === undefined ? undefined : [uri]);

  wallet
    .command('balance')
    .description('what the wallet can send and receive, in sats')
    .option(...walletOption)
    .option('--json', 'print JSON')
    .action((options: { wallet?: string; json?: boolean }) =>
      withWallet(one(options.wallet), async (w) => {
        const b = await w.balance();
        const view = { spendableSats: satsOf(b.spendableMsat), receivableSats: satsOf(b.receivableMsat) };
        if (options.json) return out(JSON.stringify(view));
        out(`spendable   ${view.spendableSats} sat`);
        if (view.receivableSats !== null) out(`receivable  ${view.receivableSats} sat`);
      }),
    );

  wallet
    .command('invoice')
    .description('create an invoice to be paid to this wallet; prints the BOLT11 string')
    .argument('<sats>', 'amount in satoshis')
    .option('--memo <text>', 'description')
    .option('--expiry <seconds>', 'expiry in seconds')
    .option(...walletOption)
    .option('--json', 'print { paymentRequest, paymentHash }')
    .action(
      (amount: string, options: { memo?: string; expiry?: string; wallet?: string; json?: boolean }) => {
        const sats = Config.satoshis(amount, '<sats>');
        if (sats === 0) throw new UsageError('<sats> must be more than 0');
        const expiry = options.expiry === undefined ? undefined : Config.satoshis(options.expiry, '--expiry');
        return withWallet(one(options.wallet), async (w) => {
          if (w.createInvoice === undefined)
            throw new UsageError(`the ${w.kind} wallet cannot create invoices`);
          const inv = await w.createInvoice({
            amountMsat: BigInt(sats) * MSAT,
            ...(options.memo !== undefined ? { memo: options.memo } : {}),
            ...(expiry !== undefined ? { expirySeconds: expiry } : {}),
          });
          if (options.json) {
            return out(
              JSON.stringify({ paymentRequest: inv.paymentRequest, paymentHash: hex(inv.paymentHash) }),
            );
          }
          out(inv.paymentRequest);
        });
      },
    );

  wallet
    .command('pay')
    .description('pay a BOLT11 invoice (exit 5 when it fails); prints the amount, fee and preimage')
    .argument('<invoice>', 'BOLT11 invoice with an amount')
    .option('--max-fee <sats>', 'routing fee limit (default: config/env, else 1% + 10 sat)')
    .option(...walletOption)
    .option('--json', 'print JSON')
    .action((text: string, options: { maxFee?: string; wallet?: string; json?: boolean }) => {
      const invoice = Invoice.decode(text.trim());
      if (invoice.amountMsat === undefined || invoice.amountMsat === 0n) {
        throw new UsageError('the invoice has no amount: l402 pays only invoices that state one');
      }
      const settings = Config.load({
        ...(options.maxFee !== undefined ? { maxFeeSats: Config.satoshis(options.maxFee, '--max-fee') } : {}),
      });
      const maxFeeMsat =
        settings.maxFeeSats !== undefined
          ? BigInt(settings.maxFeeSats) * MSAT
          : invoice.amountMsat / 100n + 10n * MSAT;
      return withWallet(one(options.wallet), async (w) => {
        let paid: Awaited<ReturnType<Backend['pay']>>;
        try {
          paid = await w.pay(text.trim(), { maxFeeMsat, timeoutMs: 60_000 });
        } catch (error) {
          const code = Exit.classify(error);
          if (code === undefined || code === Exit.USAGE) throw error;
          run.io.stderr(`l402: payment failed: ${Exit.reason(error)}\n`);
          run.exitCode = code === Exit.NETWORK ? Exit.PAYMENT_FAILED : code;
          return;
        }
        const view = {
          paymentHash: hex(paid.paymentHash),
          preimage: hex(paid.preimage),
          amountSats: satsOf(paid.amountMsat),
          feeSats: satsOf(paid.feeMsat),
          feeMsat: Number(paid.feeMsat),
        };
        if (options.json) return out(JSON.stringify(view));
        out(`paid ${view.amountSats} sat (fee ${view.feeMsat} msat)`);
        out(`preimage ${view.preimage}`);
      });
    });
}

const LIMIT_FLAGS = [
  ['perRequestSats', '--per-request <sats>', 'most one request may cost'],
  ['perOriginSats', '--per-origin <sats>', 'most spent on one origin, ever'],
  ['perHourSats', '--per-hour <sats>', 'most spent in any hour'],
  ['perDaySats', '--per-day <sats>', 'most spent in any 24 hours'],
  ['totalSats', '--total <sats>', 'most spent, ever'],
] as const;

const optionKey = (flag: string) =>
  flag
    .replace(/^--/, '')
    .replace(/ .*$/, '')
    .replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

/**
 * Adds `l402 budget` to the program.
 *
 * @example
 * registerBudget(program, run); // l402 budget set --per-day 5000
 */
export function registerBudget(program: Command, run: Run): void {
  const out = (line: string) => run.io.stdout(`${line}\n`);
  const budget = program
    .command('budget')
    .description('spending limits for l402 get, and what was spent (in $L402_HOME)');

  budget
    .command('show')
    .description('the limits in force and what was spent in the last hour, day, and in total')
    .option('--json', 'print JSON')
    .action(async (options: { json?: boolean }) => {
      const settings = Config.load();
      const session = await Session.open(settings);
      try {
        const saved = await session.ledger.limits();
        const now = Date.now();
        const spent = {
          lastHourSats: await session.ledger.spent({ sinceMs: now - 3_600_000 }),
          lastDaySats: await session.ledger.spent({ sinceMs: now - 86_400_000 }),
          totalSats: await session.ledger.spent(),
        };
        const effective: Config.Budget = { ...saved };
        for (const key of Config.BUDGET_KEYS) {
          const v = settings.budget[key];
          if (v !== undefined) effective[key] = Math.min(v, effective[key] ?? v);
        }
        if (options.json) {
          return out(JSON.stringify({ limits: effective, saved, configured: settings.budget, spent }));
        }
        for (const [key, flag] of LIMIT_FLAGS) {
          const v = effective[key];
          const from =
            settings.budget[key] !== undefined && settings.budget[key] === v ? ' (config/env)' : '';
          out(
            `${flag.split(' ')[0]?.slice(2).padEnd(12)} ${v === undefined ? 'no limit' : `${v} sat${from}`}`,
          );
        }
        out(
          `spent       ${spent.lastHourSats} sat last hour, ${spent.lastDaySats} sat last day, ${spent.totalSats} sat in total`,
        );
      } finally {
        await session.close();
      }
    });

  const set = budget
    .command('set')
    .description(
      'save limits (a value of "none" removes one); config.yaml and L402_BUDGET_* apply on top, the tighter wins',
    )
    .option('--clear', 'remove every saved limit first');
  for (const [, flag, help] of LIMIT_FLAGS) set.option(flag, help);
  set.action(async (options: Record<string, string | boolean | undefined>) => {
    const changes = LIMIT_FLAGS.filter(([, flag]) => options[optionKey(flag)] !== undefined);
    if (changes.length === 0 && options.clear !== true) {
      throw new UsageError(
        `give at least one limit: ${LIMIT_FLAGS.map(([, f]) => f.split(' ')[0]).join(', ')}`,
      );
    }
    const settings = Config.load();
    const session = await Session.open(settings);
    try {
      const next: Config.Budget = options.clear === true ? {} : { ...(await session.ledger.limits()) };
      for (const [key, flag] of changes) {
        const name = flag.split(' ')[0] as string;
        const value = options[optionKey(flag)] as string;
        if (value === 'none') delete next[key];
        else next[key] = Config.satoshis(value, name);
      }
      await session.ledger.setLimits(next);
      out(JSON.stringify(next));
    } finally {
      await session.close();
    }
  });
}
