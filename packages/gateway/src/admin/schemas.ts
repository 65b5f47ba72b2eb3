/**
 * The admin API's inputs, checked with zod: JSON bodies (services) and query strings (transactions,
 * tokens, stats). Field names and forms are Aperture's (`adminrpc/admin.proto` with the REST
 * gateway's proto names): `host_regexp`, `start_date`, int64 values as numbers or decimal strings,
 * `auth_scheme` as the enum name (`AUTH_SCHEME_L402`) or number. A failure becomes one line naming
 * each bad field.
 *
 * @example
 * const spec = parse(CreateService, body); // throws AdminError(L402_ADMIN_BAD_REQUEST) naming the bad fields
 */
import { z } from 'zod';
import type { AuthScheme } from '../Config.js';
import { AdminError } from './errors.js';

/** Largest price accepted: all the bitcoin there will ever be, in satoshis. */
export const MAX_PRICE = 2_100_000_000_000_000;

const SCHEMES: Readonly<Record<string, AuthScheme>> = {
  AUTH_SCHEME_L402: 'l402',
  AUTH_SCHEME_MPP: 'mpp',
  AUTH_SCHEME_L402_MPP: 'l402+mpp',
  '0': 'l402',
  '1': 'mpp',
  '2': 'l402+mpp',
  l402: 'l402',
  mpp: 'mpp',
  'l402+mpp': 'l402+mpp',
};

/** The proto enum name of a scheme, as the API answers. */
export function schemeName(scheme: AuthScheme): string {
  return scheme === 'mpp'
    ? 'AUTH_SCHEME_MPP'
    : scheme === 'l402+mpp'
      ? 'AUTH_SCHEME_L402_MPP'
      : 'AUTH_SCHEME_L402';
}

const price = z
  .union([z.number(), z.string().regex(/^\d{1,16}$/, 'must be a whole number of satoshis')])
  .transform(Number)
  .pipe(z.number().int('must be a whole number of satoshis').min(0, 'must be >= 0').max(MAX_PRICE));

const authScheme = z.union([z.string(), z.number()]).transform((v, ctx) => {
  const scheme = SCHEMES[String(v)];
  if (scheme === undefined) {
    ctx.addIssue({
      code: 'custom',
      message: 'must be AUTH_SCHEME_L402, AUTH_SCHEME_MPP or AUTH_SCHEME_L402_MPP',
    });
    return z.NEVER;
  }
  return scheme;
});

/** Service names end up in caveats (`services=name:0`), so they keep to a safe alphabet. */
export const serviceName = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/,
    'must be 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit',
  );

const text = (max: number) => z.string().max(max, `must be at most ${max} characters`);

export const CreateService = z.strictObject({
  name: serviceName,
  address: text(300).min(1, 'is required'),
  protocol: z.enum(['http', 'https']).default('http'),
  host_regexp: text(1024).default('.*'),
  path_regexp: text(1024).default(''),
  price: price.default(0),
  auth: text(32).default('on'),
  auth_scheme: authScheme.default('l402'),
});

export const UpdateService = z.strictObject({
  name: serviceName.optional(),
  address: text(300).min(1, 'must not be empty').optional(),
  protocol: z.enum(['http', 'https']).optional(),
  host_regexp: text(1024).min(1, 'must not be empty').optional(),
  path_regexp: text(1024).min(1, 'must not be empty').optional(),
  price: price.optional(),
  auth: text(32).optional(),
  auth_scheme: authScheme.optional(),
});

const rfc3339 = z
  .string()
  .regex(
    /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})$/i,
    'must be an RFC 3339 time such as 2026-03-01T00:00:00Z',
  )
  .transform((v) => Math.floor(Date.parse(v) / 1000));

const count = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d{1,9}$/, 'must be a whole number')
    .transform(Number)
    .pipe(z.number().min(min, `must be >= ${min}`).max(max, `must be <= ${max}`));

/** Aperture's paging: `limit` 1-1000 (50 by default; larger values are capped), `offset` >= 0. */
const paging = {
  limit: z
    .string()
    .regex(/^\d{1,9}$/, 'must be a whole number')
    .transform((v) => Math.min(Number(v) || 50, 1000))
    .default(50),
  offset: count(0, 1e9).default(0),
};

export const ListTransactions = z
  .strictObject({
    ...paging,
    service: serviceName.optional(),
    state: z.enum(['pending', 'settled']).optional(),
    start_date: rfc3339.optional(),
    end_date: rfc3339.optional(),
  })
  .refine((q) => q.start_date === undefined || q.end_date === undefined || q.end_date >= q.start_date, {
    message: 'end_date must be >= start_date',
  });

export const ListTokens = z.strictObject({ ...paging, service: serviceName.optional() });

export const Stats = z
  .strictObject({
    from: rfc3339.optional(),
    to: rfc3339.optional(),
    /** Ours: the width of each time bucket, in seconds. */
    bucket: count(1, 31 * 86_400).optional(),
  })
  .refine((q) => q.from === undefined || q.to === undefined || q.to >= q.from, {
    message: "'to' must be greater than or equal to 'from'",
  });

export const Login = z.strictObject({
  code: z.string().regex(/^[0-9a-f]{32}$/, 'must be the 32 hex digits printed at start'),
});

/** `input` checked against `schema`; a failure names every bad field in one line. */
export function parse<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    const at = issue.path.join('.');
    if (issue.code === 'unrecognized_keys')
      return `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.join(', ')}`;
    return at === '' ? issue.message : `${at}: ${issue.message}`;
  });
  throw new AdminError('L402_ADMIN_BAD_REQUEST', problems.join('; '));
}
