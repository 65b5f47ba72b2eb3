/**
 * The buyer's tools for AI agents, framework-neutral: a name, a description written for a model, a zod
 * input schema and `run`. The MCP server (`l402 mcp`), LangChain.js (`l402/agent/langchain`) and the
 * Vercel AI SDK (`l402/agent/ai`) all wrap these same definitions.
 *
 * The operator sets every limit in the {@link Context} (budgets, per-call ceiling, allowed origins,
 * the approval threshold); a tool argument can only lower them (`max_sats`), never raise them.
 *
 * @example
 * const tools = Tools.buyer({ wallet, store, ledger, budget: { perDaySats: 500 }, policy: { allowedOrigins } });
 * const result = await tools.find((t) => t.name === 'fetch')!.run({ url: 'https://api.example/forecast' });
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import * as Credential from '../Credential.js';
import * as Delegate from '../client/delegate.js';
import { createFetch, type FetchLike, type PayingFetch } from '../client/fetch.js';
import type * as Ledger from '../client/Ledger.js';
import type * as TokenStore from '../client/TokenStore.js';
import type * as Wallet from '../client/Wallet.js';
import { L402Error } from '../Errors.js';
import * as Identifier from '../Identifier.js';
import * as Invoice from '../Invoice.js';
import { toHex } from '../internal/bytes.js';
import type { Balance, NodeInfo } from '../lightning/Backend.js';
import * as Macaroon from '../Macaroon.js';
import * as Approvals from './approvals.js';
import * as Guard from './guard.js';

/** A wallet the tools can pay with and, where it can, read (`balance`, `info`). */
export type AgentWallet = Wallet.Wallet & { balance?(): Promise<Balance>; info?(): Promise<NodeInfo> };

export interface Policy extends Guard.Policy {
  /** Payments above this many sats need the host's approval (elicitation, or `approve` out of band). */
  readonly approvalThresholdSats?: number;
}

/** What the host (the operator) gives the tools. Nothing here can be changed by a tool call. */
export interface Context {
  readonly wallet: AgentWallet;
  readonly store: TokenStore.TokenStore;
  readonly ledger: Ledger.Ledger;
  /** Limits on top of the ledger's own. */
  readonly budget?: Ledger.Budget;
  /** Most one call may pay (default 1000 sats); `max_sats` only lowers it. */
  readonly maxCostSats?: number;
  readonly maxFeeSats?: number;
  readonly policy?: Policy;
  /**
   * Asks the human for a payment above the threshold: `true` pay, `false` declined, `undefined` when the
   * host cannot ask (then the call returns a pending approval to confirm out of band).
   */
  readonly approve?: (request: Approvals.Request) => Promise<boolean | undefined>;
  /** Pending and granted approvals (default: in memory). */
  readonly approvals?: Approvals.Approvals;
  /** Where large or binary bodies are written (default: `<tmpdir>/l402-agent`). */
  readonly filesDir?: string;
  /** Bodies up to this many bytes of text come back inline (default 32 KiB). */
  readonly maxInlineBytes?: number;
  /** The network `fetch` under the guard (tests); the guard's own undici fetch by default. */
  readonly fetch?: FetchLike;
  readonly now?: () => number;
}

/** One tool: `run` takes the parsed input and returns JSON-serialisable output, or throws {@link L402Error}. */
export interface Tool<Shape extends z.ZodRawShape = z.ZodRawShape> {
  readonly name: string;
  readonly title: string;
  readonly description: string;
  readonly input: Shape;
  /** True when the tool never spends or changes anything. */
  readonly readOnly: boolean;
  run(args: z.infer<z.ZodObject<Shape>>): Promise<Record<string, unknown>>;
}

const define = <Shape extends z.ZodRawShape>(tool: Tool<Shape>): Tool => tool as unknown as Tool;

/** `url` parsed, or {@link Guard.AgentError} `L402_AGENT_INPUT`. */
const parse = (url: string) => {
  try {
    return new URL(url);
  } catch {
    throw new Guard.AgentError('L402_AGENT_INPUT', `${JSON.stringify(url)} is not an absolute URL`);
  }
};
const origin = (url: string) => parse(url).origin;

const isText = (type: string) =>
  /^text\/|[/+](json|xml|javascript|csv|yaml|x-www-form-urlencoded)\b|^application\/(problem\+)?json/i.test(
    type,
  );

/** A stored token as the model may see it: no preimage, no credential. */
function describeToken(t: TokenStore.StoredToken, nowMs: number) {
  let caveats: string[] = [];
  try {
    caveats = t.scheme === 'Payment' ? [] : Macaroon.firstPartyCaveats(Macaroon.decode(t.macaroon));
  } catch {
    // An unreadable macaroon is still listed; the server decides.
  }
  return {
    origin: t.origin,
    path: t.path,
    scheme: t.scheme ?? 'L402',
    state: t.state,
    token_id: t.tokenId,
    payment_hash: t.paymentHash,
    amount_sats: t.amountSats,
    fee_sats: t.feeSats ?? null,
    services: t.services ?? null,
    caveats,
    created_at: new Date(t.createdAt).toISOString(),
    expires_at: t.expiresAt === undefined ? null : new Date(t.expiresAt).toISOString(),
    expired: t.expiresAt !== undefined && t.expiresAt <= nowMs,
  };
}

/**
 * The buyer tools: fetch, quote, budget_status, payments, tokens, delegate_token, wallet_balance,
 * node_info, decode_invoice, decode_token.
 *
 * @example
 * for (const tool of Tools.buyer(context)) console.log(tool.name, tool.readOnly);
 */
export function buyer(context: Context): Tool[] {
  const policy = context.policy ?? {};
  const now = context.now ?? Date.now;
  const approvals = context.approvals ?? Approvals.memory();
  const guarded = Guard.fetch(policy, context.fetch);
  const maxCost = context.maxCostSats ?? 1000;
  const maxInline = context.maxInlineBytes ?? 32 * 1024;
  const filesDir = context.filesDir ?? join(tmpdir(), 'l402-agent');

  /** A paying fetch for one call: the operator's limits, lowered by `max_sats`, with approvals in the wallet. */
  const payingFetch = (call: {
    url: string;
    method: string;
    maxSats?: number;
    approvalId?: string;
  }): PayingFetch => {
    const ceiling = Math.min(maxCost, call.maxSats ?? Number.POSITIVE_INFINITY);
    const threshold = policy.approvalThresholdSats;
    const inner = context.wallet;
    const wallet: Wallet.Wallet = {
      kind: inner.kind,
      ...(inner.network !== undefined ? { network: inner.network } : {}),
      ...(inner.info !== undefined
        ? { info: () => (inner.info as () => Promise<NodeInfo>).call(inner) }
        : {}),
      lookupPayment: (hash) => inner.lookupPayment(hash),
      pay: async (paymentRequest, options) => {
        const sats = Number((Invoice.decode(paymentRequest).amountMsat ?? 0n) / 1000n);
        if (threshold !== undefined && sats > threshold) {
          const request: Approvals.Request = { url: call.url, method: call.method, sats };
          const granted =
            call.approvalId !== undefined && (await approvals.consume(call.approvalId, request));
          if (!granted) {
            const answer = await context.approve?.(request);
            if (answer === false) {
              throw new Guard.AgentError(
                'L402_AGENT_DECLINED',
                `the operator declined paying ${sats} sat for ${call.url}`,
              );
            }
            if (answer !== true) {
              const pending = await approvals.request(request);
              throw new Approvals.ApprovalRequired(pending);
            }
          }
        }
        return inner.pay(paymentRequest, options);
      },
    };
    return createFetch({
      wallet,
      store: context.store,
      ledger: context.ledger,
      maxCostSats: ceiling,
      ...(context.maxFeeSats !== undefined ? { maxFeeSats: context.maxFeeSats } : {}),
      ...(context.budget !== undefined ? { budget: context.budget } : {}),
      allowInsecureHttp: policy.allowPrivate === true,
      fetch: guarded,
      now,
    });
  };

  /** The body for the model: text inline when small, else a file and a preview. */
  async function bodyOf(response: Response): Promise<Record<string, unknown>> {
    const bytes = new Uint8Array(await response.arrayBuffer());
    const type = response.headers.get('content-type') ?? '';
    const text =
      isText(type) || (type === '' && !bytes.includes(0)) ? new TextDecoder().decode(bytes) : undefined;
    if (text !== undefined && bytes.length <= maxInline) return { body: text, body_bytes: bytes.length };
    await mkdir(filesDir, { recursive: true, mode: 0o700 });
    const file = join(filesDir, `body-${now()}-${toHex(crypto.getRandomValues(new Uint8Array(6)))}`);
    await writeFile(file, bytes, { mode: 0o600 });
    return {
      body_file: file,
      body_bytes: bytes.length,
      ...(text !== undefined ? { body_preview: text.slice(0, 2000) } : { body_binary: true }),
    };
  }

  return [
    define({
      name: 'fetch',
      title: 'Fetch a URL, paying if needed',
      description:
        'Call an HTTP API. If it answers 402 Payment Required (L402, LSAT or MPP), pay its Lightning ' +
        'invoice within the operator’s budgets and retry; a token already bought for that origin is ' +
        'reused without paying again. Returns status, headers, body (inline text, or a file path for large ' +
        'or binary bodies) and what was paid. Use `quote` first when you only need the price.',
      input: {
        url: z.string().describe('absolute http(s) URL'),
        method: z
          .string()
          .regex(/^[A-Za-z]{1,16}$/)
          .default('GET')
          .describe('HTTP method, GET by default'),
        headers: z.record(z.string(), z.string()).optional().describe('request headers'),
        body: z.string().max(1_000_000).optional().describe('request body (text)'),
        max_sats: z
          .number()
          .int()
          .nonnegative()
          .optional()
          .describe('most this call may pay (only lowers the operator’s limit)'),
        approval_id: z.string().optional().describe('id of a payment approval the operator granted'),
      },
      readOnly: false,
      async run({ url, method, headers, body, max_sats, approval_id }) {
        Guard.check(parse(url), policy);
        const f = payingFetch({
          url,
          method: method.toUpperCase(),
          ...(max_sats !== undefined ? { maxSats: max_sats } : {}),
          ...(approval_id !== undefined ? { approvalId: approval_id } : {}),
        });
        const response = await f(url, {
          method: method.toUpperCase(),
          ...(headers !== undefined ? { headers } : {}),
          ...(body !== undefined ? { body } : {}),
        });
        const payment = createFetch.payment(response);
        return {
          status: response.status,
          ok: response.ok,
          headers: Object.fromEntries(response.headers),
          ...(await bodyOf(response)),
          paid:
            payment === undefined
              ? null
              : {
                  amount_sats: payment.paid ? payment.amountSats : 0,
                  fee_sats: payment.paid ? payment.feeSats : 0,
                  reused_token: payment.reused,
                  token_id: payment.tokenId,
                  payment_hash: payment.paymentHash,
                  scheme: payment.scheme,
                },
        };
      },
    }),
    define({
      name: 'quote',
      title: 'Price of a call',
      description:
        'What calling a URL would cost, without paying: sends the request unpaid and reads the 402 offer ' +
        '(price in sats, scheme, invoice expiry, whether the budget would refuse it, whether a cached ' +
        'token already covers it).',
      input: {
        url: z.string().describe('absolute http(s) URL'),
        method: z
          .string()
          .regex(/^[A-Za-z]{1,16}$/)
          .default('GET'),
      },
      readOnly: true,
      async run({ url, method }) {
        Guard.check(parse(url), policy);
        const q = await payingFetch({ url, method }).quote(url, { method: method.toUpperCase() });
        const threshold = policy.approvalThresholdSats;
        return {
          status: q.status,
          cached_token: q.cachedToken,
          price:
            q.price === undefined
              ? null
              : {
                  sats: q.price.sats,
                  scheme: q.price.scheme,
                  description: q.price.description ?? null,
                  invoice_expires_at: new Date(q.price.expiresAt).toISOString(),
                  needs_approval: threshold !== undefined && q.price.sats > threshold,
                },
          refusal: q.refusal ?? null,
        };
      },
    }),
    define({
      name: 'budget_status',
      title: 'Budget left',
      description:
        'The operator’s spending limits (per request, per origin, per hour, per day, total) and what has ' +
        'been spent against each. Limits cannot be changed by any tool.',
      input: { origin: z.string().optional().describe('also report spending for this origin') },
      readOnly: true,
      async run({ origin: forOrigin }) {
        const limits = { ...(await context.ledger.limits()), ...context.budget };
        const t = now();
        const spentHour = await context.ledger.spent({ sinceMs: t - 3_600_000 });
        const spentDay = await context.ledger.spent({ sinceMs: t - 86_400_000 });
        const spentTotal = await context.ledger.spent();
        const left = (limit: number | undefined, spent: number) =>
          limit === undefined ? null : Math.max(0, limit - spent);
        const o = forOrigin === undefined ? undefined : origin(forOrigin);
        const spentOrigin = o === undefined ? undefined : await context.ledger.spent({ origin: o });
        return {
          max_sats_per_call: maxCost,
          approval_threshold_sats: policy.approvalThresholdSats ?? null,
          limits,
          spent: {
            last_hour: spentHour,
            last_day: spentDay,
            total: spentTotal,
            ...(o ? { origin: spentOrigin } : {}),
          },
          remaining: {
            per_hour: left(limits.perHourSats, spentHour),
            per_day: left(limits.perDaySats, spentDay),
            total: left(limits.totalSats, spentTotal),
            ...(o ? { per_origin: left(limits.perOriginSats, spentOrigin ?? 0) } : {}),
          },
        };
      },
    }),
    define({
      name: 'payments',
      title: 'Payments made',
      description:
        'The ledger: every payment made (time, origin, path, amount, fee, payment hash), newest first.',
      input: {
        origin: z.string().optional(),
        limit: z.number().int().min(1).max(1000).default(50),
      },
      readOnly: true,
      async run({ origin: forOrigin, limit }) {
        const all = await context.ledger.payments(
          forOrigin === undefined ? {} : { origin: origin(forOrigin) },
        );
        const newest = [...all].sort((a, b) => b.time - a.time).slice(0, limit);
        return {
          count: all.length,
          payments: newest.map((p) => ({ ...p, time: new Date(p.time).toISOString() })),
        };
      },
    }),
    define({
      name: 'tokens',
      title: 'Cached tokens',
      description:
        'Tokens bought so far, with their origin, path scope, caveats (services, capabilities, expiry) and ' +
        'state. Secrets are never shown; use delegate_token to hand a narrowed copy to a sub-agent.',
      input: { origin: z.string().optional() },
      readOnly: true,
      async run({ origin: forOrigin }) {
        const list = await context.store.list(forOrigin === undefined ? undefined : origin(forOrigin));
        return { tokens: list.map((t) => describeToken(t, now())) };
      },
    }),
    define({
      name: 'delegate_token',
      title: 'Delegate a narrowed token',
      description:
        'An attenuated copy of a cached token for a sub-agent: add caveats such as ' +
        '`<service>_capabilities=read`, `<service>_valid_until=<unix seconds>` or `services=<name>:0` to ' +
        'narrow it. A caveat that would widen the token is refused. Returns the Authorization header value ' +
        '(a secret: give it only to the sub-agent).',
      input: {
        origin: z.string().describe('origin of the cached token'),
        caveats: z.array(z.string().min(3).max(4096)).min(1).max(32).describe('key=value caveats to add'),
        token_id: z
          .string()
          .regex(/^[0-9a-f]{64}$/)
          .optional()
          .describe('which token, when the origin has several'),
        valid_for_seconds: z
          .number()
          .int()
          .positive()
          .optional()
          .describe('also expire the copy this many seconds from now'),
      },
      readOnly: true,
      async run({ origin: forOrigin, caveats, token_id, valid_for_seconds }) {
        const o = origin(forOrigin);
        const paid = (await context.store.list(o)).filter(
          (t) =>
            t.state === 'paid' &&
            t.scheme !== 'Payment' &&
            (token_id === undefined || t.tokenId === token_id),
        );
        if (paid.length === 0)
          throw new Guard.AgentError(
            'L402_AGENT_INPUT',
            `no paid token for ${o}${token_id ? ` with id ${token_id}` : ''}`,
          );
        if (paid.length > 1) {
          throw new Guard.AgentError(
            'L402_AGENT_INPUT',
            `${paid.length} tokens for ${o}: name one with token_id`,
          );
        }
        const source = paid[0] as TokenStore.StoredToken;
        const extra = [...caveats];
        if (valid_for_seconds !== undefined) {
          const until = Math.floor(now() / 1000) + valid_for_seconds;
          for (const service of source.services ?? []) extra.push(`${service}_valid_until=${until}`);
        }
        const delegated = Delegate.attenuate(source, extra, now());
        return {
          authorization: delegated.credential,
          token: describeToken(delegated.token, now()),
          token_json: delegated.token,
        };
      },
    }),
    define({
      name: 'wallet_balance',
      title: 'Wallet balance',
      description: 'What the paying wallet can spend (and receive, where known), in sats.',
      input: {},
      readOnly: true,
      async run() {
        if (context.wallet.balance === undefined) {
          throw new Guard.AgentError(
            'L402_AGENT_UNSUPPORTED',
            `this wallet (${context.wallet.kind}) cannot report a balance`,
          );
        }
        const b = await context.wallet.balance();
        return {
          wallet: context.wallet.kind,
          spendable_sats: Number(b.spendableMsat / 1000n),
          receivable_sats: b.receivableMsat === undefined ? null : Number(b.receivableMsat / 1000n),
        };
      },
    }),
    define({
      name: 'node_info',
      title: 'Lightning node',
      description:
        'Read-only state of the paying node through its wallet API: id, alias, network, block height, balances.',
      input: {},
      readOnly: true,
      async run() {
        const info = await context.wallet.info?.();
        const balance = await context.wallet.balance?.().catch(() => undefined);
        return {
          wallet: context.wallet.kind,
          pubkey: info?.pubkey ?? null,
          alias: info?.alias ?? null,
          network: info?.network ?? null,
          block_height: info?.blockHeight ?? null,
          spendable_sats: balance === undefined ? null : Number(balance.spendableMsat / 1000n),
          receivable_sats:
            balance?.receivableMsat === undefined ? null : Number(balance.receivableMsat / 1000n),
        };
      },
    }),
    define({
      name: 'decode_invoice',
      title: 'Decode a BOLT11 invoice',
      description:
        'Amount, network, payment hash, description, expiry and payee of a Lightning invoice (signature checked).',
      input: { invoice: z.string().min(10).max(8192) },
      readOnly: true,
      async run({ invoice }) {
        const i = Invoice.decode(invoice.trim());
        const expiresAt = (i.timestamp + i.expiry) * 1000;
        return {
          network: i.network,
          amount_sats: i.amountMsat === undefined ? null : Number(i.amountMsat) / 1000,
          payment_hash: toHex(i.paymentHash),
          description: i.description ?? null,
          created_at: new Date(i.timestamp * 1000).toISOString(),
          expires_at: new Date(expiresAt).toISOString(),
          expired: expiresAt <= now(),
          payee: toHex(i.payeeNodeKey),
        };
      },
    }),
    define({
      name: 'decode_token',
      title: 'Decode an L402 token',
      description:
        'The identifier (payment hash, token id), location and caveats of an L402 macaroon, given as base64 ' +
        'or as a whole `L402 <macaroon>:<preimage>` credential. Does not verify it (only the server can).',
      input: { token: z.string().min(10).max(16384) },
      readOnly: true,
      async run({ token }) {
        const text = token.trim();
        const macaroon = /^(l402|lsat)\s/i.test(text)
          ? (Credential.parse(text) as Credential.Credential).macaroon
          : Macaroon.decode(text);
        const id = Identifier.decode(macaroon.identifier);
        return {
          version: id.version,
          payment_hash: toHex(id.paymentHash),
          token_id: toHex(id.tokenId),
          location: macaroon.location ?? null,
          caveats: Macaroon.firstPartyCaveats(macaroon),
          third_party_caveats: macaroon.caveats.filter((c) => c.verificationId !== undefined).length,
        };
      },
    }),
  ];
}

/**
 * An error as a tool reports it to the model: a stable code and one line (and the pending approval,
 * when a payment waits for the operator). A payment failure caused by the agent's own policy reports
 * that cause, not the wrapper.
 *
 * @example
 * try { await tool.run(args); } catch (e) { return Tools.errorOf(e); }
 */
export function errorOf(error: unknown): { code: string; message: string; approval?: Approvals.Pending } {
  for (let cause: unknown = error; cause instanceof Error; cause = (cause as { cause?: unknown }).cause) {
    if (cause instanceof Approvals.ApprovalRequired) {
      return { code: cause.code, message: cause.message, approval: cause.pending };
    }
    if (cause instanceof Guard.AgentError) return { code: cause.code, message: cause.message };
  }
  if (error instanceof L402Error) return { code: error.code, message: error.message };
  if (error instanceof z.ZodError) {
    return {
      code: 'L402_AGENT_INPUT',
      message: error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '),
    };
  }
  return { code: 'L402_AGENT_ERROR', message: error instanceof Error ? error.message : String(error) };
}
