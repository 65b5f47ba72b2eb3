/**
 * RFC 9110 §11 challenge lists (`WWW-Authenticate`): a tokenizer that splits challenges exactly where the
 * grammar does, and a formatter for the quoted form. Nothing here knows a scheme: what L402 or Payment
 * require of their parameters is decided in Challenge.ts, so one scheme's rules never bend another's.
 *
 *   challenge  = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
 *   auth-param = token BWS "=" BWS ( token / quoted-string )
 */
import { HeaderError } from '../Errors.js';

/**
 * One challenge: `scheme` as written, parameter names lower-cased (first occurrence of a name kept),
 * or a `token68` in place of parameters.
 *
 * @example
 * parseChallenges('Basic realm="x"') // [{ scheme: 'Basic', params: { realm: 'x' } }]
 */
export interface AuthChallenge {
  scheme: string;
  params: Record<string, string>;
  token68?: string;
}

const TCHAR = 1;
const TOKEN68 = 2;
const classes = new Uint8Array(128);
for (let c = 0; c < 128; c++) {
  const ch = String.fromCharCode(c);
  const alnum = /[A-Za-z0-9]/.test(ch);
  if (alnum || "!#$%&'*+-.^_`|~".includes(ch)) classes[c]! |= TCHAR;
  if (alnum || '-._~+/'.includes(ch)) classes[c]! |= TOKEN68;
}
// Unquoted values take tchar plus "/" and trailing "=": non-conforming servers send bare base64 macaroons,
// and no value this admits has another meaning under the RFC grammar (the RFC rejects all of them).
const VALUE = TCHAR | TOKEN68;

function isClass(s: string, i: number, cls: number): boolean {
  const c = s.charCodeAt(i);
  return c < 128 && (classes[c]! & cls) !== 0;
}

function skipClass(s: string, i: number, cls: number): number {
  while (isClass(s, i, cls)) i++;
  return i;
}

// RFC 9110 asks for SP after the scheme; HTAB is taken too because lenient clients (`\s+`) accept it.
function skipSpace(s: string, i: number): number {
  while (s[i] === ' ' || s[i] === '\t') i++;
  return i;
}

function atItemEnd(s: string, i: number): boolean {
  return i >= s.length || s[i] === ',';
}

/** Past whitespace and empty list elements (RFC 9110 §5.6.1 tolerates `a, , b`). */
function skipEmpty(s: string, i: number): number {
  for (;;) {
    i = skipSpace(s, i);
    if (s[i] !== ',') return i;
    i++;
  }
}

/** End of a complete token68 at `i` (one that the list then closes), or -1. */
function token68End(s: string, i: number): number {
  let end = skipClass(s, i, TOKEN68);
  if (end === i) return -1;
  while (s[end] === '=') end++;
  return atItemEnd(s, skipSpace(s, end)) ? end : -1;
}

function isParamStart(s: string, i: number): boolean {
  const end = skipClass(s, i, TCHAR);
  return end > i && s[skipSpace(s, end)] === '=';
}

/**
 * Whether a list element at `i` opens a new challenge rather than continuing the current one's
 * parameters: a token, then the list's end, or whitespace and a token68 or `name=`. Checked on syntax
 * alone, so a challenge whose first value is broken is dropped by itself and not blamed on the one before.
 */
function isChallengeStart(s: string, i: number): boolean {
  const end = skipClass(s, i, TCHAR);
  if (end === i) return false;
  const next = skipSpace(s, end);
  if (atItemEnd(s, next)) return true;
  if (next === end) return false;
  return token68End(s, next) >= 0 || isParamStart(s, next);
}

// qdtext: HTAB, SP, VCHAR except '"' and '\', obs-text. quoted-pair: '\' then HTAB, SP, VCHAR or obs-text.
function isQuotable(c: number): boolean {
  return c === 0x09 || (c >= 0x20 && c !== 0x7f);
}

type Failure = { at: number; reason: string };
type Value = { value: string; end: number };

function readQuoted(s: string, i: number): Value | Failure {
  let value = '';
  let from = i + 1;
  for (let j = from; j < s.length; j++) {
    const c = s.charCodeAt(j);
    if (c === 0x22) return { value: value + s.slice(from, j), end: j + 1 };
    if (c === 0x5c) {
      if (!isQuotable(s.charCodeAt(j + 1))) return { at: j, reason: 'a bad escape in a quoted string' };
      value += s.slice(from, j);
      from = ++j;
    } else if (!isQuotable(c)) {
      return { at: j, reason: 'a control character in a quoted string' };
    }
  }
  return { at: i, reason: 'an unterminated quoted string' };
}

/**
 * Past a quoted string however broken its content, or -1 when it never closes. Used only to find where
 * a malformed challenge ends, so that text inside its quotes is never read as a challenge of its own.
 */
function skipQuoted(s: string, i: number): number {
  for (let j = i + 1; j < s.length; j++) {
    if (s[j] === '\\') j++;
    else if (s[j] === '"') return j + 1;
  }
  return -1;
}

function readParam(s: string, i: number): { name: string; value: string; end: number } | Failure {
  const nameEnd = skipClass(s, i, TCHAR);
  if (nameEnd === i) return { at: i, reason: 'expected a parameter name' };
  let at = skipSpace(s, nameEnd);
  if (s[at] !== '=') return { at, reason: "expected '=' after a parameter name" };
  at = skipSpace(s, at + 1);
  const name = s.slice(i, nameEnd).toLowerCase();
  if (s[at] === '"') {
    const quoted = readQuoted(s, at);
    return 'reason' in quoted ? quoted : { name, ...quoted };
  }
  let end = skipClass(s, at, VALUE);
  if (end === at) return { at, reason: 'expected a parameter value' };
  while (s[end] === '=') end++;
  return { name, value: s.slice(at, end), end };
}

type Read = { challenge: AuthChallenge; end: number } | (Failure & { resume: number });

/** The challenge at `i` (not whitespace or a comma); `end` is where the next list element may begin. */
function readChallenge(s: string, i: number): Read {
  const schemeEnd = skipClass(s, i, TCHAR);
  if (schemeEnd === i) return { at: i, reason: 'expected an auth-scheme', resume: i };
  const scheme = s.slice(i, schemeEnd);
  // A null prototype keeps names such as "constructor" or "__proto__" plain data.
  const params: Record<string, string> = Object.create(null);
  let at = skipSpace(s, schemeEnd);
  if (atItemEnd(s, at)) return { challenge: { scheme, params }, end: at };
  if (at === schemeEnd) return { at, reason: 'expected a space after the auth-scheme', resume: schemeEnd };
  const t68 = token68End(s, at);
  if (t68 >= 0) return { challenge: { scheme, params, token68: s.slice(at, t68) }, end: t68 };
  for (;;) {
    const param = readParam(s, at);
    if ('reason' in param) return { ...param, resume: schemeEnd };
    if (!(param.name in params)) params[param.name] = param.value;
    at = skipSpace(s, param.end);
    if (at < s.length && s[at] !== ',') {
      return { at, reason: "expected ',' after a parameter value", resume: schemeEnd };
    }
    at = skipEmpty(s, at);
    if (at >= s.length || isChallengeStart(s, at)) return { challenge: { scheme, params }, end: at };
  }
}

/** Where the list may be read again after a malformed challenge: the next challenge start, quote-aware. */
function resync(s: string, i: number): number {
  while (i < s.length) {
    if (s[i] === '"') {
      i = skipQuoted(s, i);
      if (i < 0) return s.length;
    } else if (s[i] === ',') {
      i = skipEmpty(s, i);
      if (i >= s.length || isChallengeStart(s, i)) return i;
    } else {
      i++;
    }
  }
  return s.length;
}

/**
 * Every challenge in one header value (or several values joined with ", "), in order. A malformed
 * challenge is skipped up to the next challenge start, reported through `onSkip`, and the rest is read;
 * only when nothing at all can be read does it throw. Linear time in the input length.
 *
 * @throws {HeaderError} `L402_HEADER_FORMAT` when the text is not blank and no challenge in it parses.
 * @example
 * parseChallenges('Basic realm="a, b", L402 macaroon="AgE=", invoice=lnbc1')
 * // [{ scheme: 'Basic', params: { realm: 'a, b' } },
 * //  { scheme: 'L402', params: { macaroon: 'AgE=', invoice: 'lnbc1' } }]
 */
export function parseChallenges(
  header: string,
  onSkip?: (offset: number, reason: string) => void,
): AuthChallenge[] {
  const challenges: AuthChallenge[] = [];
  let firstProblem: string | undefined;
  let i = skipEmpty(header, 0);
  while (i < header.length) {
    const read = readChallenge(header, i);
    if ('challenge' in read) {
      challenges.push(read.challenge);
      i = read.end;
    } else {
      onSkip?.(read.at, read.reason);
      firstProblem ??= `malformed WWW-Authenticate challenge: ${read.reason} at character ${read.at}`;
      i = resync(header, read.resume);
    }
    i = skipEmpty(header, i);
  }
  if (challenges.length === 0 && firstProblem !== undefined) {
    throw new HeaderError('L402_HEADER_FORMAT', firstProblem);
  }
  return challenges;
}

/**
 * `value` as a quoted-string: `"` and `\` become quoted-pairs, everything else is written verbatim.
 *
 * @throws {HeaderError} `L402_HEADER_FORMAT` for control characters other than HTAB (CR and LF would split
 * the header), which a quoted-string cannot carry.
 * @example
 * quote('say "hi"') // '"say \\"hi\\""'
 */
export function quote(value: string): string {
  for (let i = 0; i < value.length; i++) {
    if (!isQuotable(value.charCodeAt(i))) {
      throw new HeaderError(
        'L402_HEADER_FORMAT',
        `a header value cannot hold the control character at index ${i}`,
      );
    }
  }
  return `"${value.replace(/["\\]/g, '\\$&')}"`;
}

function checkToken(text: string, what: string): string {
  if (text === '' || skipClass(text, 0, TCHAR) !== text.length) {
    throw new HeaderError(
      'L402_HEADER_FORMAT',
      `${what} ${JSON.stringify(text.slice(0, 40))} is not an HTTP token`,
    );
  }
  return text;
}

/**
 * One challenge with every value quoted, parameters in the order given (pairs, because objects reorder
 * integer-like keys).
 *
 * @throws {HeaderError} `L402_HEADER_FORMAT` when the scheme or a name is not a token, or a value holds
 * a control character.
 * @example
 * formatChallenge('L402', [['macaroon', 'AgE='], ['invoice', 'lnbc1']]) // 'L402 macaroon="AgE=", invoice="lnbc1"'
 */
export function formatChallenge(
  scheme: string,
  params: readonly (readonly [name: string, value: string])[],
): string {
  const list = params.map(([name, value]) => `${checkToken(name, 'parameter name')}=${quote(value)}`);
  const head = checkToken(scheme, 'auth-scheme');
  return list.length === 0 ? head : `${head} ${list.join(', ')}`;
}
