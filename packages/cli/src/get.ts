/**
 * `l402 get URL`: a curl-like request that pays the L402 challenge it meets (within `--max-cost`,
 * `--max-fee` and the budgets), keeps the token in `$L402_HOME` and reuses it on later runs. The exit
 * code says what happened (see `exit.ts`): 0 done, 3 HTTP error, 4 payment refused, 5 payment failed,
 * 6 network error, 2 bad input.
 *
 * @example
 * l402 get https://api.example/forecast -o forecast.json --max-cost 100
 * l402 get https://api.example/upload -d @photo.jpg -H 'Content-Type: image/jpeg' --json
 */
import { readFileSync } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import type { Command } from 'commander';
import { type ClientEvent, createFetch } from 'l402/client';
import { type Run, repeatable, UsageError } from './cli.js';
import * as Config from './config.js';
import * as Exit from './exit.js';
import * as Progress from './progress.js';
import * as Session from './session.js';

interface GetOptions {
  request?: string;
  header?: string[];
  data?: string[];
  output?: string;
  include?: boolean;
  verbose?: boolean;
  silent?: boolean;
  json?: boolean;
  location?: boolean;
  maxCost?: string;
  maxFee?: string;
  pay: boolean;
  wallet?: string[];
  allowInsecureHttp?: boolean;
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Never shown by `-v`: they carry credentials. */
const SECRET_HEADERS =
  /^(authorization|proxy-authorization|cookie|set-cookie|macaroon|grpc-metadata-macaroon)$/i;

/** `-H 'Name: value'`, checked as an HTTP field. */
function header(text: string): [string, string] {
  const colon = text.indexOf(':');
  const name = colon > 0 ? text.slice(0, colon).trim() : '';
  // Not echoed: a malformed header is often a credential typed without its colon.
  if (!TOKEN.test(name)) throw new UsageError('-H must be "Name: value" (a field name, a colon, the value)');
  const value = text.slice(colon + 1).trim();
  if (/[\r\n\0]/.test(value)) throw new UsageError(`-H ${name}: the value must be one line`);
  return [name, value];
}

/** `-d text`, `-d @file`, `-d @-` (stdin); several are joined with `&` as curl does. */
function body(data: readonly string[]): Buffer {
  const parts = data.map((d) => {
    if (!d.startsWith('@')) return Buffer.from(d, 'utf8');
    const file = d.slice(1);
    try {
      return readFileSync(file === '-' ? 0 : file);
    } catch (error) {
      throw new UsageError(`-d ${d}: ${(error as Error).message}`);
    }
  });
  return parts.length === 1
    ? (parts[0] as Buffer)
    : Buffer.concat(parts.flatMap((p, i) => (i === 0 ? [p] : [Buffer.from('&'), p])));
}

function target(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`not a URL: "${text.slice(0, 200)}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UsageError(`only http and https URLs, got ${url.protocol}`);
  }
  // fetch refuses them, and they would ride along to every redirect target: say so instead.
  if (url.username !== '' || url.password !== '') {
    throw new UsageError('the URL carries a user name or password: send credentials with -H instead');
  }
  return url;
}

/** Headers as one object; repeated ones (other than set-cookie) joined with ", " as fetch does. */
function headersOf(headers: Headers): Record<string, string> {
  const out: Record<string, string> = {};
  headers.forEach((value, name) => {
    out[name] = value;
  });
  return out;
}

/** A payment event as one `-v` line, without secrets. */
function describeEvent(event: ClientEvent): string {
  const parts = [String(event.type)];
  for (const [k, v] of Object.entries(event)) {
    if (k === 'type' || /preimage|macaroon|credential|authorization|invoice|secret/i.test(k)) continue;
    if (v === undefined || typeof v === 'object' || typeof v === 'function') continue;
    parts.push(`${k}=${String(v)}`);
  }
  return parts.join(' ');
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Adds `l402 get` to the program.
 *
 * @example
 * registerGet(program, run); // l402 get https://api.example/x -o x.json
 */
export function registerGet(program: Command, run: Run): void {
  program
    .command('get')
    .description('fetch a URL, paying its L402 challenge from your wallet (curl-like)')
    .argument('<url>', 'http or https URL')
    .option('-X, --request <method>', 'HTTP method (default GET, or POST with -d)')
    .option('-H, --header <line>', 'request header "Name: value" (repeatable)', repeatable)
    .option(
      '-d, --data <data>',
      'request body; @file reads a file, @- stdin (repeatable, joined by &)',
      repeatable,
    )
    .option('-o, --output <file>', 'write the body to a file (a progress bar on a terminal)')
    .option('-i, --include', 'write the status line and response headers before the body')
    .option('-v, --verbose', 'show the request, the payment steps and the response headers on stderr')
    .option('-s, --silent', 'no progress bar and no payment summary on stderr (errors still shown)')
    .option('-L, --location', 'follow redirects (same origin only carries the token)')
    .option('--json', 'print one JSON document: status, headers, payment, body or file')
    .option('--max-cost <sats>', 'refuse to pay more than this for the request')
    .option('--max-fee <sats>', 'routing fee limit for the payment')
    .option('--no-pay', 'do not pay: show the price and exit')
    .option(
      '--wallet <uri>',
      'wallet URI (repeatable: tried in order); default config/env, else the devnet',
      repeatable,
    )
    .option('--allow-insecure-http', 'allow plain http:// to hosts other than loopback')
    .addHelpText(
      'after',
      `
Exit codes: 0 done (2xx/3xx: paid, reused or free), 2 bad input, 3 HTTP error (4xx/5xx),
4 payment refused (--max-cost, --max-fee, a budget, an invoice l402 will not pay), 5 payment failed,
6 network error, 70 internal error.

Settings: flags > L402_* variables > $L402_HOME/config.yaml (see 'l402 config show').`,
    )
    .action(async (text: string, options: GetOptions) => {
      const url = target(text);
      const settings = Config.load({
        ...(options.wallet !== undefined ? { wallets: options.wallet } : {}),
        ...(options.maxCost !== undefined
          ? { maxCostSats: Config.satoshis(options.maxCost, '--max-cost') }
          : {}),
        ...(options.maxFee !== undefined ? { maxFeeSats: Config.satoshis(options.maxFee, '--max-fee') } : {}),
        ...(options.allowInsecureHttp === true ? { allowInsecureHttp: true } : {}),
      });
      if (options.silent !== true) for (const w of settings.warnings) run.io.stderr(`l402: warning: ${w}\n`);
      const headers = new Headers();
      for (const line of options.header ?? []) headers.append(...header(line));
      const payload = options.data !== undefined ? body(options.data) : undefined;
      if (payload !== undefined && !headers.has('content-type')) {
        headers.set('content-type', 'application/x-www-form-urlencoded');
      }
      const method = (options.request ?? (payload !== undefined ? 'POST' : 'GET')).toUpperCase();
      if (!TOKEN.test(method)) throw new UsageError(`-X must be an HTTP method, got "${method}"`);
      if (payload !== undefined && (method === 'GET' || method === 'HEAD')) {
        throw new UsageError(`-d sends a body, which ${method} cannot carry (use -X POST or PUT)`);
      }
      const say = (line: string) => run.io.stderr(`${line}\n`);
      const verbose = options.verbose === true;

      const session = await Session.open(settings);
      try {
        const fetch402 = createFetch({
          wallet: session.wallet,
          store: session.store,
          ledger: session.ledger,
          ...(settings.maxCostSats !== undefined ? { maxCostSats: settings.maxCostSats } : {}),
          ...(settings.maxFeeSats !== undefined ? { maxFeeSats: settings.maxFeeSats } : {}),
          ...(Object.keys(settings.budget).length > 0 ? { budget: settings.budget } : {}),
          allowInsecureHttp: settings.allowInsecureHttp,
          ...(verbose ? { onEvent: (e: ClientEvent) => say(`* ${describeEvent(e)}`) } : {}),
        });
        const init: RequestInit = {
          method,
          headers,
          redirect: options.location ? 'follow' : 'manual',
          ...(payload !== undefined ? { body: new Uint8Array(payload) } : {}),
        };
        if (verbose) {
          say(`> ${method} ${url.pathname}${url.search} HTTP/1.1`);
          say(`> Host: ${url.host}`);
          for (const [k, v] of headers) say(`> ${k}: ${SECRET_HEADERS.test(k) ? '(hidden)' : v}`);
          if (payload !== undefined) say(`> (${payload.length} byte body)`);
        }

        if (!options.pay) {
          run.exitCode = await quote(run, fetch402, url, init, options);
          return;
        }

        let response: Response;
        try {
          response = await fetch402(url.href, init);
        } catch (error) {
          const code = Exit.classify(error);
          if (code === undefined) throw error;
          say(`l402: ${Exit.reason(error).replace(/\s*[\r\n]+\s*/g, ' ')}`);
          run.exitCode = code;
          return;
        }
        const payment = createFetch.payment(response);
        if (verbose) {
          say(`< HTTP/1.1 ${response.status} ${response.statusText}`);
          for (const [k, v] of response.headers) say(`< ${k}: ${SECRET_HEADERS.test(k) ? '(hidden)' : v}`);
        }
        if (payment?.paid && !payment.reused && options.silent !== true && options.json !== true) {
          say(
            `l402: paid ${payment.amountSats} sat (fee ${payment.feeSats ?? 0} sat) to ${url.origin}, token ${payment.tokenId}`,
          );
        }
        const head = `HTTP/1.1 ${response.status} ${response.statusText}\r\n${[...response.headers]
          .map(([k, v]) => `${k}: ${v}\r\n`)
          .join('')}\r\n`;
        const length = Number(response.headers.get('content-length') ?? Number.NaN);
        const total = Number.isSafeInteger(length) && length >= 0 ? length : undefined;

        let written = 0;
        let text: string | undefined;
        let base64: string | undefined;
        try {
          if (options.output !== undefined) {
            written = await toFile(response, options.output, options.include ? head : undefined, {
              total,
              bar: Progress.wanted({
                toFile: true,
                tty: process.stderr.isTTY === true,
                silent: options.silent === true,
                total,
              }),
            });
          } else if (options.json) {
            const bytes = new Uint8Array(await response.arrayBuffer());
            written = bytes.length;
            try {
              text = utf8.decode(bytes);
            } catch {
              base64 = Buffer.from(bytes).toString('base64');
            }
          } else {
            if (options.include) await writeOut(run, Buffer.from(head));
            if (response.body !== null) {
              for await (const chunk of response.body) {
                written += chunk.length;
                await writeOut(run, chunk);
              }
            }
          }
        } catch (error) {
          // The connection broke while the body was arriving.
          const code = Exit.classify(error);
          if (code !== Exit.NETWORK) throw error;
          say(`l402: the body of ${url.href} was cut off: ${Exit.reason(error)}`);
          run.exitCode = code;
          return;
        }

        if (options.json) {
          run.io.stdout(
            `${JSON.stringify({
              url: url.href,
              status: response.status,
              statusText: response.statusText,
              headers: headersOf(response.headers),
              paid: payment?.paid === true && payment.reused !== true,
              reused: payment?.reused === true,
              amountSats: payment?.amountSats ?? 0,
              feeSats: payment?.feeSats ?? 0,
              tokenId: payment?.tokenId ?? null,
              paymentHash: payment?.paymentHash ?? null,
              bytes: written,
              ...(options.output !== undefined
                ? { file: options.output }
                : base64 !== undefined
                  ? { bodyBase64: base64 }
                  : { body: text ?? '' }),
            })}\n`,
          );
        }
        if (response.status >= 400) {
          if (options.json !== true)
            say(`l402: HTTP ${response.status} ${response.statusText} from ${url.origin}`);
          run.exitCode = Exit.HTTP_ERROR;
        }
      } finally {
        await session.close();
      }
    });
}

/** Writes bytes to stdout, raw (bodies may be binary), waiting when the pipe is full. */
async function writeOut(run: Run, bytes: Uint8Array): Promise<void> {
  if (run.io.stdoutBytes !== undefined) return run.io.stdoutBytes(bytes);
  run.io.stdout(Buffer.from(bytes).toString('utf8'));
}

/** Streams the body into `file` (created or truncated), with a bar on stderr when asked; returns its size. */
async function toFile(
  response: Response,
  file: string,
  head: string | undefined,
  o: { total: number | undefined; bar: boolean },
): Promise<number> {
  let handle: FileHandle;
  try {
    handle = await open(file, 'w');
  } catch (error) {
    throw new UsageError(`-o ${file}: ${(error as Error).message}`);
  }
  const bar = o.bar ? Progress.create({ total: o.total, write: (s) => process.stderr.write(s) }) : undefined;
  let written = 0;
  try {
    if (head !== undefined) await handle.write(head);
    if (response.body !== null) {
      for await (const chunk of response.body) {
        written += chunk.length;
        bar?.add(chunk.length);
        await handle.write(chunk);
      }
    }
  } catch (error) {
    bar?.done();
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== undefined && /^E(NOSPC|IO|DQUOT|FBIG|ROFS)$/.test(code)) {
      throw new UsageError(`-o ${file}: ${(error as Error).message}`);
    }
    throw error;
  } finally {
    await handle.close();
  }
  bar?.done();
  return written;
}

/** `--no-pay`: what the server asks for this request, without paying. */
async function quote(
  run: Run,
  fetch402: ReturnType<typeof createFetch>,
  url: URL,
  init: RequestInit,
  options: GetOptions,
): Promise<number> {
  let q: Awaited<ReturnType<typeof fetch402.quote>>;
  try {
    q = await fetch402.quote(url.href, init);
  } catch (error) {
    const code = Exit.classify(error);
    if (code === undefined) throw error;
    run.io.stderr(`l402: ${Exit.reason(error).replace(/\s*[\r\n]+\s*/g, ' ')}\n`);
    return code;
  }
  const price = q.price;
  if (options.json) {
    run.io.stdout(
      `${JSON.stringify({
        url: url.href,
        status: q.status,
        price:
          price === undefined
            ? null
            : {
                sats: price.sats,
                scheme: price.scheme,
                invoice: price.invoice,
                expiresAt: price.expiresAt,
                description: price.description ?? null,
              },
        cachedToken: q.cachedToken,
        refusal: q.refusal ?? null,
      })}\n`,
    );
  } else if (price !== undefined) {
    const about = price.description ? ` (${price.description})` : '';
    run.io.stdout(`${price.sats} sat via ${price.scheme}${about}\n`);
    if (options.verbose) run.io.stdout(`invoice: ${price.invoice}\n`);
    if (q.refusal !== undefined)
      run.io.stdout(`would be refused: ${q.refusal.message} (${q.refusal.code})\n`);
    if (q.cachedToken) run.io.stdout('a cached token covers this request\n');
  } else {
    run.io.stdout(`no payment needed: HTTP ${q.status}\n`);
  }
  return q.status >= 400 && q.status !== 402 ? Exit.HTTP_ERROR : Exit.OK;
}
