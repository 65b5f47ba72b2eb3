/**
 * JSON as MPP needs it: a strict parser (RFC 8259, duplicate member names refused, integers beyond
 * 2^53 kept exact as `bigint` when asked), a serializer that keeps member order (credentials and
 * receipts are written in a fixed order), and the JSON Canonicalization Scheme (RFC 8785), which
 * `request` and `opaque` must use because their bytes reach the challenge HMAC.
 *
 * @example
 * Json.canonicalizeText('{"b":1,"a":1e0}'); // '{"a":1,"b":1}'
 * Json.stringify(Json.parse('{"refundSats":9223372036854775807}', { bigints: true })); // exact
 */
import { EncodingError } from '../Errors.js';

/** A JSON value; integers parsed with `bigints: true` beyond the safe range are `bigint`. */
export type Json = null | boolean | number | bigint | string | Json[] | { [member: string]: Json };

/** A JSON object. */
export type JsonObject = { [member: string]: Json };

const MAX_DEPTH = 64;
const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
// A string token: no raw control characters, only the escapes RFC 8259 defines.
const STRING = /"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/y;
const INTEGER = /^-?\d+$/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Parses JSON text strictly: no trailing characters, no duplicate member names, at most 64 levels
 * deep. With `bigints`, an integer literal a double cannot hold exactly becomes a `bigint`.
 *
 * @throws {EncodingError} `L402_ENCODING` for anything that is not such JSON.
 * @example
 * Json.parse('{"a":[1,true,null]}'); // { a: [1, true, null] }
 */
export function parse(text: string, options: { bigints?: boolean } = {}): Json {
  let at = 0;
  const fail = (why: string): never => {
    throw new EncodingError(`not valid JSON: ${why} at character ${at}`);
  };
  const space = () => {
    for (;;) {
      const c = text.charCodeAt(at);
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) at++;
      else return;
    }
  };
  const string = (): string => {
    STRING.lastIndex = at;
    const token = STRING.exec(text)?.[0] ?? fail('a malformed string');
    at += token.length;
    return JSON.parse(token) as string;
  };
  const value = (depth: number): Json => {
    if (depth > MAX_DEPTH) fail(`nesting deeper than ${MAX_DEPTH}`);
    space();
    const c = text[at];
    if (c === '{') {
      at++;
      const object: JsonObject = {};
      const seen = new Set<string>();
      space();
      if (text[at] === '}') {
        at++;
        return object;
      }
      for (;;) {
        space();
        if (text[at] !== '"') fail('expected a member name');
        const name = string();
        if (seen.has(name)) fail(`duplicate member ${JSON.stringify(name.slice(0, 32))}`);
        seen.add(name);
        space();
        if (text[at] !== ':') fail("expected ':'");
        at++;
        // defineProperty: a member named __proto__ is data, never the prototype.
        Object.defineProperty(object, name, {
          value: value(depth + 1),
          enumerable: true,
          writable: true,
          configurable: true,
        });
        space();
        if (text[at] === ',') at++;
        else if (text[at] === '}') {
          at++;
          return object;
        } else fail("expected ',' or '}'");
      }
    }
    if (c === '[') {
      at++;
      const array: Json[] = [];
      space();
      if (text[at] === ']') {
        at++;
        return array;
      }
      for (;;) {
        array.push(value(depth + 1));
        space();
        if (text[at] === ',') at++;
        else if (text[at] === ']') {
          at++;
          return array;
        } else fail("expected ',' or ']'");
      }
    }
    if (c === '"') return string();
    for (const [word, literal] of [
      ['true', true],
      ['false', false],
      ['null', null],
    ] as const) {
      if (text.startsWith(word, at)) {
        at += word.length;
        return literal;
      }
    }
    NUMBER.lastIndex = at;
    const token = NUMBER.exec(text)?.[0] ?? fail('an unexpected character');
    at += token.length;
    const number = Number(token);
    if (options.bigints && INTEGER.test(token) && !Number.isSafeInteger(number)) return BigInt(token);
    return number;
  };
  const result = value(0);
  space();
  if (at !== text.length) fail('trailing characters');
  return result;
}

function write(value: Json, canonical: boolean): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError(`JSON has no ${value}`);
      // ECMAScript's Number-to-String is exactly RFC 8785's number form (and -0 becomes 0).
      return JSON.stringify(value);
    case 'bigint':
      // RFC 8785 numbers are doubles; an exact big integer has no canonical form.
      if (canonical) throw new TypeError('a bigint has no JCS form: use a string');
      return value.toString();
    case 'string':
      if (canonical && LONE_SURROGATE.test(value)) throw new TypeError('RFC 8785 refuses lone surrogates');
      return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map((v) => write(v, canonical)).join(',')}]`;
  const names = Object.keys(value).filter((name) => value[name] !== undefined);
  // The default sort compares UTF-16 code units: RFC 8785 §3.2.3's order.
  if (canonical) names.sort();
  return `{${names.map((name) => `${JSON.stringify(name)}:${write(value[name]!, canonical)}`).join(',')}}`;
}

/**
 * JSON text with members in insertion order and `bigint`s as exact integers; members whose value is
 * `undefined` are left out.
 *
 * @example
 * Json.stringify({ status: 'success', refundSats: 2n ** 63n - 1n }); // '{"status":"success","refundSats":9223372036854775807}'
 */
export function stringify(value: Json): string {
  return write(value, false);
}

/**
 * RFC 8785 (JCS) of a value: members sorted by UTF-16 code units, numbers in ECMAScript's shortest
 * form, strings escaped as `JSON.stringify` does.
 *
 * @throws TypeError for a `bigint` or a lone surrogate.
 * @example
 * Json.canonicalize({ z: 1, 10: 2, a: 1.0 }); // '{"10":2,"a":1,"z":1}'
 */
export function canonicalize(value: Json): string {
  return write(value, true);
}

/**
 * RFC 8785 (JCS) of JSON text, its numbers read as doubles (as RFC 8785 reads them).
 *
 * @throws {EncodingError} for text that is not JSON.
 * @example
 * Json.canonicalizeText('{"b":1,"a":1e0}'); // '{"a":1,"b":1}'
 */
export function canonicalizeText(text: string): string {
  return write(parse(text), true);
}

/** Whether `value` is a JSON object (not an array, not null). */
export function isObject(value: Json | undefined): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
