/**
 * `l402 admin`: the gateway's admin API from the command line, authenticated with the admin macaroon
 * file the gateway made on first start (`<home>/admin.macaroon`, or `--macaroon FILE`). Prints the
 * API's JSON on stdout; an error answer prints its message on stderr (exit 2 for what the user can fix:
 * bad input, unknown names, a refused macaroon; 70 when the gateway fails).
 *
 * @example
 * l402 admin services list
 * l402 admin services set api --price 50
 * l402 admin services set new --address 127.0.0.1:3000 --path '^/new/' --price 5
 * l402 admin transactions --service api --state settled --from 2026-01-01T00:00:00Z --limit 20
 * l402 admin tokens revoke <token_id>
 * l402 admin stats --from 2026-01-01T00:00:00Z --to 2026-02-01T00:00:00Z
 */
import { readFileSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import { join } from 'node:path';
import { Devnet } from '@l402/devnet';
import type { Command } from 'commander';
import { type Run, UsageError } from './cli.js';

interface Connection {
  readonly url?: string;
  readonly home?: string;
  readonly macaroon?: string;
  readonly tlscert?: string;
}

const DEFAULT_URL = 'http://127.0.0.1:8080';
/** Largest answer read (a page of 1000 transactions is about 400 KiB). */
const MAX_ANSWER = 16 * 1024 * 1024;

/** The admin macaroon in hex, from `--macaroon`, else `<home>/admin.macaroon`. */
function macaroonHex(options: Connection): string {
  const path = options.macaroon ?? join(options.home ?? Devnet.home(), 'admin.macaroon');
  try {
    return readFileSync(path).toString('hex');
  } catch (error) {
    throw new UsageError(
      `cannot read the admin macaroon at ${path} (${(error as NodeJS.ErrnoException).code ?? 'error'}): start the gateway with admin.enabled, or pass --macaroon FILE`,
    );
  }
}

/** One admin API call; resolves with the parsed JSON of a 2xx answer, throws with the API's message otherwise. */
export async function call(
  options: Connection,
  method: string,
  path: string,
  body?: unknown,
): Promise<unknown> {
  const base = options.url ?? process.env.L402_GATEWAY_URL ?? DEFAULT_URL;
  let url: URL;
  try {
    url = new URL(path, base.endsWith('/') ? base : `${base}/`);
  } catch {
    throw new UsageError(`--url must be the gateway's URL such as ${DEFAULT_URL}, got "${base}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new UsageError('--url must be http:// or https://');
  const headers: http.OutgoingHttpHeaders = {
    'grpc-metadata-macaroon': macaroonHex(options),
    accept: 'application/json',
  };
  const payload = body === undefined ? undefined : JSON.stringify(body);
  if (payload !== undefined) headers['content-type'] = 'application/json';
  const ca = options.tlscert === undefined ? undefined : readFileSync(options.tlscert);
  const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
    const request = (url.protocol === 'https:' ? https : http).request(
      url,
      { method, headers, timeout: 30_000, ...(ca !== undefined ? { ca } : {}) },
      (response) => {
        const chunks: Buffer[] = [];
        let size = 0;
        response.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_ANSWER) response.destroy(new Error(`answer over ${MAX_ANSWER} bytes`));
          else chunks.push(chunk);
        });
        response.on('end', () =>
          resolve({ status: response.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }),
        );
        response.on('error', reject);
      },
    );
    request.on('timeout', () => request.destroy(new Error('no answer within 30 s')));
    request.on('error', (error) =>
      reject(new UsageError(`cannot reach the gateway at ${url.origin}: ${error.message} (--url)`)),
    );
    request.end(payload);
  });
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new Error(`the gateway answered ${status} without JSON`);
  }
  if (status >= 200 && status < 300) return json;
  const message = (json as { message?: unknown }).message;
  const text_ = typeof message === 'string' ? message : `HTTP ${status}`;
  if (status >= 500) throw new Error(`the gateway failed: ${text_}`);
  throw new UsageError(text_);
}

const print = (run: Run, value: unknown) => run.io.stdout(`${JSON.stringify(value, null, 2)}\n`);

/** Query string of the options given (skipping undefined). */
export function query(values: Readonly<Record<string, unknown>>): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(values)) if (v !== undefined && v !== null) params.set(k, String(v));
  const text = params.toString();
  return text === '' ? '' : `?${text}`;
}

interface ServiceOptions {
  readonly address?: string;
  readonly protocol?: string;
  readonly host?: string;
  readonly path?: string;
  readonly price?: string;
  readonly auth?: string;
  readonly scheme?: string;
}

function whole(text: string | undefined, option: string): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d{1,16}$/.test(text)) throw new UsageError(`${option} must be a whole number, got "${text}"`);
  return Number(text);
}

/**
 * Adds `l402 admin` to the program.
 *
 * @example
 * registerAdmin(program, run); // l402 admin services list
 */
export function registerAdmin(program: Command, run: Run): void {
  const admin = program
    .command('admin')
    .description("the gateway's admin API: services, transactions, tokens, stats")
    .option('--url <url>', `the gateway (default $L402_GATEWAY_URL or ${DEFAULT_URL})`)
    .option('--home <dir>', 'where the gateway keeps admin.macaroon (default $L402_HOME or ~/.l402)')
    .option('--macaroon <file>', 'the admin macaroon file (default <home>/admin.macaroon)')
    .option('--tlscert <file>', "the gateway's TLS certificate, for a self-signed https gateway");
  const connection = (): Connection => admin.opts<Connection>();

  admin
    .command('info')
    .description('network, listen address, store, Lightning backend')
    .action(async () => print(run, await call(connection(), 'GET', 'api/admin/info')));

  admin
    .command('macaroon')
    .description('print the admin macaroon in hex (to paste into the dashboard)')
    .action(() => run.io.stdout(`${macaroonHex(connection())}\n`));

  const services = admin.command('services').description('list, create, change or delete services');
  services
    .command('list')
    .description('the services, in matching order')
    .action(async () => print(run, await call(connection(), 'GET', 'api/admin/services')));
  services
    .command('set <name>')
    .description('create the service (needs --address and --path) or change the fields given')
    .option('--address <host:port>', 'the backend')
    .option('--protocol <http|https>', 'how to reach the backend')
    .option('--host <regexp>', 'Host header regexp (RE2)')
    .option('--path <regexp>', 'path regexp (RE2)')
    .option('--price <sat>', 'price per token in satoshis')
    .option('--auth <on|off|freebie N>', 'access')
    .option('--scheme <AUTH_SCHEME_L402|AUTH_SCHEME_MPP|AUTH_SCHEME_L402_MPP>', 'payment scheme')
    .action(async (name: string, o: ServiceOptions) => {
      const fields = {
        address: o.address,
        protocol: o.protocol,
        host_regexp: o.host,
        path_regexp: o.path,
        price: whole(o.price, '--price'),
        auth: o.auth,
        auth_scheme: o.scheme,
      };
      const given = Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined));
      const existing = (await call(connection(), 'GET', 'api/admin/services')) as {
        services: { name: string }[];
      };
      const path = `api/admin/services/${encodeURIComponent(name)}`;
      if (existing.services.some((s) => s.name === name)) {
        if (Object.keys(given).length === 0)
          throw new UsageError('nothing to change: give --price, --address, --path …');
        print(run, await call(connection(), 'PUT', path, given));
      } else {
        print(run, await call(connection(), 'POST', 'api/admin/services', { name, ...given }));
      }
    });
  services
    .command('rm <name>')
    .description('delete the service (it stays deleted after a restart)')
    .action(async (name: string) =>
      print(run, await call(connection(), 'DELETE', `api/admin/services/${encodeURIComponent(name)}`)),
    );

  admin
    .command('transactions')
    .description('challenges (pending) and payments (settled), newest first')
    .option('--service <name>', 'only this service')
    .option('--state <pending|settled>', 'only this state')
    .option('--from <time>', 'created at or after (RFC 3339)')
    .option('--to <time>', 'created at or before (RFC 3339)')
    .option('--limit <n>', 'page size (1-1000, default 50)')
    .option('--offset <n>', 'rows to skip')
    .action(async (o: Record<string, string | undefined>) => {
      const q = query({
        service: o.service,
        state: o.state,
        start_date: o.from,
        end_date: o.to,
        limit: o.limit,
        offset: o.offset,
      });
      print(run, await call(connection(), 'GET', `api/admin/transactions${q}`));
    });

  const tokens = admin.command('tokens').description('paid tokens');
  tokens
    .command('list')
    .description('paid tokens, newest first')
    .option('--service <name>', 'only this service')
    .option('--limit <n>', 'page size (1-1000, default 50)')
    .option('--offset <n>', 'rows to skip')
    .action(async (o: Record<string, string | undefined>) =>
      print(
        run,
        await call(
          connection(),
          'GET',
          `api/admin/tokens${query({ service: o.service, limit: o.limit, offset: o.offset })}`,
        ),
      ),
    );
  tokens
    .command('revoke <token_id>')
    .description('revoke a token (hex token id): refused from now on')
    .action(async (tokenId: string) => {
      if (!/^[0-9a-fA-F]{64}$/.test(tokenId)) throw new UsageError('token_id must be 64 hex digits');
      print(run, await call(connection(), 'DELETE', `api/admin/tokens/${tokenId}`));
    });

  admin
    .command('stats')
    .description('revenue and counts, per service and per time bucket')
    .option('--from <time>', 'RFC 3339')
    .option('--to <time>', 'RFC 3339')
    .option('--bucket <seconds>', 'bucket width')
    .action(async (o: Record<string, string | undefined>) =>
      print(
        run,
        await call(
          connection(),
          'GET',
          `api/admin/stats${query({ from: o.from, to: o.to, bucket: o.bucket })}`,
        ),
      ),
    );
}
