/**
 * Checks JSON against Swagger 2.0 definitions as grpc-gateway writes them for LND, with the rules of
 * LND's REST encoding (protojson with `UseProtoNames` and `EmitUnpopulated`): 64-bit integers are
 * decimal strings, `bytes` are base64, enums are names, every field is present (zero values included,
 * an unset message field as `null`), and no field exists that the contract does not name. The
 * devnet's facades are tested with it against the swagger files of real LND, so they cannot drift.
 *
 * @example
 * const contract = load(['lightning.swagger.json', 'router.swagger.json']);
 * contract.validate('lnrpcGetInfoResponse', body); // [] when it conforms, else one line per problem
 * contract.validate(contract.response('post', '/v2/router/send', 200), line);
 */
import { readFileSync } from 'node:fs';

/** The subset of a Swagger 2.0 schema object that grpc-gateway emits. */
export interface Schema {
  readonly type?: 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';
  readonly format?: string;
  readonly enum?: readonly string[];
  readonly properties?: Readonly<Record<string, Schema>>;
  readonly additionalProperties?: Schema | boolean;
  readonly items?: Schema;
  readonly required?: readonly string[];
  readonly $ref?: string;
  readonly title?: string;
}

interface Operation {
  readonly responses: Readonly<Record<string, { readonly schema?: Schema }>>;
}

interface Document {
  readonly paths: Readonly<Record<string, Readonly<Record<string, Operation>>>>;
  readonly definitions: Readonly<Record<string, Schema>>;
}

export interface ValidateOptions {
  /**
   * Require every declared property, as LND's `EmitUnpopulated` writes them all. Defaults to true;
   * false for request bodies, which clients fill sparsely.
   */
  readonly complete?: boolean;
}

const INT64 = { min: -(2n ** 63n), max: 2n ** 63n - 1n };
const UINT64 = { min: 0n, max: 2n ** 64n - 1n };
const INT32 = { min: -(2 ** 31), max: 2 ** 31 - 1 };
// protojson writes bytes as standard base64 with padding.
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
// grpc-gateway's envelope around each message of a server stream: `{"result": …}` or `{"error": …}`.
const STREAM_TITLE = 'Stream result of ';

/** One or more swagger documents, their definitions merged, with the checks of this module. */
export class Contract {
  private readonly documents: readonly Document[];
  private readonly definitions: ReadonlyMap<string, Schema>;

  constructor(documents: readonly Document[]) {
    this.documents = documents;
    const definitions = new Map<string, Schema>();
    for (const document of documents) {
      for (const [name, schema] of Object.entries(document.definitions)) definitions.set(name, schema);
    }
    this.definitions = definitions;
  }

  /**
   * The schema of an operation's response: its `200` (for a server stream, the envelope of one line)
   * or its `default` (the error body).
   *
   * @example
   * contract.response('get', '/v1/invoice/{r_hash_str}', 'default'); // { $ref: '#/definitions/rpcStatus' }
   */
  response(method: string, path: string, status: 200 | 'default'): Schema {
    for (const document of this.documents) {
      const schema = document.paths[path]?.[method.toLowerCase()]?.responses[String(status)]?.schema;
      if (schema) return schema;
    }
    throw new Error(`the contract has no ${status} response for ${method.toUpperCase()} ${path}`);
  }

  /**
   * Whether the operation streams (grpc-gateway titles its 200 schema "Stream result of …").
   *
   * @example
   * contract.streams('get', '/v1/invoices/subscribe'); // true
   */
  streams(method: string, path: string): boolean {
    return this.response(method, path, 200).title?.startsWith(STREAM_TITLE) ?? false;
  }

  /**
   * Every way `value` departs from the schema (a definition name, `#/definitions/…`, or a schema), one
   * line each with its JSON path; empty when it conforms.
   *
   * @example
   * contract.validate('rpcStatus', { code: 5, message: 'unable to locate invoice', details: [] }); // []
   */
  validate(schema: string | Schema, value: unknown, options: ValidateOptions = {}): string[] {
    const problems: string[] = [];
    const root =
      typeof schema === 'string'
        ? { $ref: schema.startsWith('#') ? schema : `#/definitions/${schema}` }
        : schema;
    this.check(root, value, '$', options.complete ?? true, problems);
    return problems;
  }

  private resolve(ref: string): Schema {
    const name = ref.replace(/^#\/definitions\//, '');
    const schema = this.definitions.get(name);
    if (!schema) throw new Error(`the contract has no definition ${name}`);
    return schema;
  }

  private check(schema: Schema, value: unknown, path: string, complete: boolean, problems: string[]): void {
    if (schema.$ref) {
      const target = this.resolve(schema.$ref);
      // protojson writes an unset message field as null; enums and scalars always have a value.
      if (value === null && target.type === 'object') return;
      this.check(target, value, path, complete, problems);
      return;
    }
    const fail = (what: string) => {
      problems.push(`${path}: expected ${what}, got ${JSON.stringify(value)}`);
    };
    switch (schema.type) {
      case 'object':
        this.checkObject(schema, value, path, complete, problems);
        break;
      case 'array':
        if (!Array.isArray(value)) fail('an array');
        else if (schema.items) {
          for (const [i, item] of value.entries())
            this.check(schema.items, item, `${path}[${i}]`, complete, problems);
        }
        break;
      case 'boolean':
        if (typeof value !== 'boolean') fail('a boolean');
        break;
      case 'integer':
        if (typeof value !== 'number' || !Number.isSafeInteger(value)) fail('an integer (JSON number)');
        else if (schema.format === 'int32' && (value < INT32.min || value > INT32.max)) fail('an int32');
        break;
      case 'number':
        // protojson spells the non-finite doubles as strings.
        if (typeof value !== 'number' && value !== 'NaN' && value !== 'Infinity' && value !== '-Infinity') {
          fail('a number');
        }
        break;
      case 'string':
        checkString(schema, value, fail);
        break;
      // An empty schema (protobuf Any's extra fields) allows anything.
    }
  }

  private checkObject(
    schema: Schema,
    value: unknown,
    path: string,
    complete: boolean,
    problems: string[],
  ): void {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      problems.push(`${path}: expected an object, got ${JSON.stringify(value)}`);
      return;
    }
    const record = value as Record<string, unknown>;
    const properties = schema.properties ?? {};
    const extra = schema.additionalProperties;
    for (const [key, item] of Object.entries(record)) {
      const property = properties[key];
      if (property) this.check(property, item, `${path}.${key}`, complete, problems);
      else if (typeof extra === 'object')
        this.check(extra, item, `${path}[${JSON.stringify(key)}]`, complete, problems);
      else if (extra !== true) problems.push(`${path}: property ${key} is not in the contract`);
    }
    const keys = Object.keys(properties);
    if (schema.title?.startsWith(STREAM_TITLE)) {
      const present = keys.filter((key) => key in record);
      if (present.length !== 1)
        problems.push(`${path}: a stream line holds exactly one of ${keys.join(', ')}`);
      return;
    }
    const required = complete ? keys : (schema.required ?? []);
    for (const key of required) if (!(key in record)) problems.push(`${path}: property ${key} is missing`);
  }
}

function checkString(schema: Schema, value: unknown, fail: (what: string) => void): void {
  const { format } = schema;
  const integer = format === 'int64' || format === 'uint64';
  const what = schema.enum
    ? `one of ${schema.enum.join(', ')}`
    : integer
      ? `${format === 'int64' ? 'an' : 'a'} ${format} as a decimal string`
      : format === 'byte'
        ? 'standard base64 (bytes)'
        : 'a string';
  if (typeof value !== 'string' || (schema.enum && !schema.enum.includes(value))) fail(what);
  else if (integer) {
    const [range, pattern] =
      format === 'int64' ? [INT64, /^-?(?:0|[1-9]\d*)$/] : [UINT64, /^(?:0|[1-9]\d*)$/];
    if (!pattern.test(value) || BigInt(value) < range.min || BigInt(value) > range.max) fail(what);
  } else if (format === 'byte' && !BASE64.test(value)) fail(what);
}

/**
 * Reads swagger JSON files into one {@link Contract}.
 *
 * @example
 * const lnd = load(['lightning', 'router', 'invoices'].map((name) => `${specs}/lnd/${name}.swagger.json`));
 */
export function load(files: readonly string[]): Contract {
  return new Contract(files.map((file) => JSON.parse(readFileSync(file, 'utf8')) as Document));
}
