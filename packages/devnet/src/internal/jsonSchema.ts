/**
 * The subset of JSON Schema that Core Lightning's `doc/schemas/*.json` use, enough to check that the
 * clnrest facade's requests and answers follow lightningd's contracts: `type` (JSON's types and CLN's
 * own: `msat`, `msat_or_any`, `hex`, `hash`, `secret`, `txid`, `pubkey`, `short_channel_id`,
 * `short_channel_id_dir`, `u16`, `u32`, `u64`, …), `properties`, `required`, `additionalProperties`
 * (boolean), `enum`, `items`, `oneOf`, `allOf`, `if`/`then`/`else`, `minLength`/`maxLength` and CLN's
 * `dependentUpon`. A keyword outside that list throws rather than passing silently, so a schema this
 * validator cannot read never reads as satisfied.
 *
 * @example
 * const schema = JSON.parse(readFileSync('invoice.json', 'utf8'));
 * validate(schema.response, { payment_hash: '…' }); // ['$: missing required property bolt11', …]
 */

/** A schema as parsed from JSON: keywords to values. */
export type Schema = Record<string, unknown>;

/** Keywords that only document (descriptions, version notes, defaults); they assert nothing. */
const ANNOTATIONS = new Set([
  '$schema',
  'added',
  'default',
  'deprecated',
  'description',
  'examples',
  'hidden',
  'rpc',
  'title',
  'errors',
  'notes',
  'author',
  'see_also',
  'resources',
  'categories',
  'randomization',
  'post_return_value_notes',
]);

const ASSERTIONS = new Set([
  'type',
  'properties',
  'required',
  'additionalProperties',
  'enum',
  'items',
  'oneOf',
  'allOf',
  'if',
  'then',
  'else',
  'minLength',
  'maxLength',
  'dependentUpon',
]);

const HEX = /^(?:[0-9a-fA-F]{2})*$/;

/** CLN's own primitive types and JSON's, each as a check on a value. */
const TYPES: Record<string, (value: unknown) => boolean> = {
  string: (v) => typeof v === 'string',
  boolean: (v) => typeof v === 'boolean',
  number: (v) => typeof v === 'number' && Number.isFinite(v),
  integer: (v) => Number.isSafeInteger(v),
  object: (v) => typeof v === 'object' && v !== null && !Array.isArray(v),
  array: (v) => Array.isArray(v),
  u16: (v) => unsigned(v, 0xffff),
  u32: (v) => unsigned(v, 0xffffffff),
  u64: (v) => unsigned(v, Number.MAX_SAFE_INTEGER),
  msat: (v) => unsigned(v, Number.MAX_SAFE_INTEGER) || (typeof v === 'string' && /^\d+msat$/.test(v)),
  msat_or_any: (v) =>
    v === 'any' ||
    unsigned(v, Number.MAX_SAFE_INTEGER) ||
    (typeof v === 'string' && /^(?:\d+(?:msat)?|\d+(?:\.\d{3})?sat|\d+(?:\.\d{1,11})?btc)$/.test(v)),
  hex: (v) => typeof v === 'string' && HEX.test(v),
  hash: (v) => typeof v === 'string' && /^[0-9a-fA-F]{64}$/.test(v),
  secret: (v) => typeof v === 'string' && /^[0-9a-fA-F]{64}$/.test(v),
  txid: (v) => typeof v === 'string' && /^[0-9a-fA-F]{64}$/.test(v),
  pubkey: (v) => typeof v === 'string' && /^0[23][0-9a-fA-F]{64}$/.test(v),
  short_channel_id: (v) => typeof v === 'string' && /^\d+x\d+x\d+$/.test(v),
  short_channel_id_dir: (v) => typeof v === 'string' && /^\d+x\d+x\d+\/[01]$/.test(v),
};

function unsigned(value: unknown, max: number): boolean {
  return Number.isSafeInteger(value) && (value as number) >= 0 && (value as number) <= max;
}

const isObject = (value: unknown): value is Record<string, unknown> => TYPES.object!(value);

/**
 * Every way `value` breaks `schema`, as `path: problem` lines; empty when it conforms.
 *
 * @example
 * validate({ type: 'u32' }, -1); // ['$: expected u32, got -1']
 */
export function validate(schema: Schema, value: unknown, path = '$'): string[] {
  const problems: string[] = [];
  for (const keyword of Object.keys(schema)) {
    if (!ANNOTATIONS.has(keyword) && !ASSERTIONS.has(keyword)) {
      throw new Error(`${path}: unsupported JSON schema keyword "${keyword}"`);
    }
  }
  const show = (v: unknown) => JSON.stringify(v)?.slice(0, 80) ?? String(v);

  if (schema.type !== undefined) {
    const check = TYPES[schema.type as string];
    if (!check) throw new Error(`${path}: unsupported type "${String(schema.type)}"`);
    if (!check(value)) return [`${path}: expected ${schema.type}, got ${show(value)}`];
  }
  if (Array.isArray(schema.enum) && !schema.enum.includes(value)) {
    problems.push(`${path}: ${show(value)} is not one of ${show(schema.enum)}`);
  }
  if (typeof value === 'string') {
    if (typeof schema.minLength === 'number' && value.length < schema.minLength) {
      problems.push(`${path}: shorter than ${schema.minLength}`);
    }
    if (typeof schema.maxLength === 'number' && value.length > schema.maxLength) {
      problems.push(`${path}: longer than ${schema.maxLength}`);
    }
  }
  if (isObject(value)) {
    const properties = (schema.properties ?? {}) as Record<string, Schema>;
    for (const name of (schema.required ?? []) as string[]) {
      if (!(name in value)) problems.push(`${path}: missing required property ${name}`);
    }
    for (const [name, item] of Object.entries(value)) {
      const sub = properties[name];
      if (sub) problems.push(...validate(sub, item, `${path}.${name}`));
      else if (schema.additionalProperties === false) problems.push(`${path}: unexpected property ${name}`);
    }
    for (const [name, dependents] of Object.entries(
      (schema.dependentUpon ?? {}) as Record<string, string[]>,
    )) {
      for (const dependent of dependents) {
        if (dependent in value && !(name in value)) problems.push(`${path}: ${dependent} needs ${name}`);
      }
    }
  }
  if (Array.isArray(value) && schema.items !== undefined) {
    value.forEach((item, i) => {
      problems.push(...validate(schema.items as Schema, item, `${path}[${i}]`));
    });
  }
  if (Array.isArray(schema.oneOf)) {
    const matching = (schema.oneOf as Schema[]).filter(
      (option) => validate(option, value, path).length === 0,
    );
    if (matching.length !== 1) {
      problems.push(`${path}: matches ${matching.length} of the oneOf alternatives, not exactly one`);
    }
  }
  for (const part of (schema.allOf ?? []) as Schema[]) problems.push(...validate(part, value, path));
  if (schema.if !== undefined) {
    const branch = validate(schema.if as Schema, value, path).length === 0 ? schema.then : schema.else;
    if (branch !== undefined) problems.push(...validate(branch as Schema, value, path));
  }
  return problems;
}
