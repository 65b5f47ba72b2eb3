/**
 * Aperture's config is read by Go, so its values use Go's syntax: `time.ParseDuration` strings
 * (`1m30s`) and RE2 regular expressions. These turn them into milliseconds and JavaScript `RegExp`s,
 * refusing what would mean something else here rather than guessing.
 *
 * @example
 * duration('1m30s'); // 90_000
 * regexp('(?i)^/API/.*$').test('/api/x'); // true
 */

const UNIT_MS: Readonly<Record<string, number>> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3, // U+00B5 micro sign
  μs: 1e-3, // U+03BC Greek mu
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
};

const DURATION = /^[-+]?(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+$/;
const DURATION_PART = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/g;

/**
 * Milliseconds of a Go duration string (`300ms`, `1.5h`, `2h45m`, `-1s`, `0`), or `undefined` if
 * the text is not one. A bare number other than 0 is refused: Go would read it as nanoseconds.
 *
 * @example
 * duration('2m'); // 120_000
 */
export function duration(text: string): number | undefined {
  if (text === '0' || text === '+0' || text === '-0') return 0;
  if (!DURATION.test(text)) return undefined;
  let ms = 0;
  for (const [, amount, unit] of text.matchAll(DURATION_PART)) ms += Number(amount) * UNIT_MS[unit!]!;
  return text.startsWith('-') ? -ms : ms;
}

/** A pattern Go's regexp package reads differently from JavaScript, or refuses. */
export class RegexpSyntaxError extends Error {
  override name = 'RegexpSyntaxError';
}

const POSIX_CLASSES: Readonly<Record<string, string>> = {
  alnum: '0-9A-Za-z',
  alpha: 'A-Za-z',
  ascii: '\\x00-\\x7F',
  blank: '\\t ',
  cntrl: '\\x00-\\x1F\\x7F',
  digit: '0-9',
  graph: '!-~',
  lower: 'a-z',
  print: ' -~',
  punct: '!-\\/:-@\\[-`{-~',
  space: '\\t\\n\\v\\f\\r ',
  upper: 'A-Z',
  word: '0-9A-Za-z_',
  xdigit: '0-9A-Fa-f',
};

/**
 * Compiles an RE2 (Go `regexp`) pattern as a JavaScript `RegExp` with the same meaning. Translated:
 * leading flag groups `(?i)`, `(?s)`, `(?m)`; `(?P<name>…)`; `\A`, `\z`; `\Q…\E`; POSIX classes
 * `[[:alpha:]]`; `\x{…}`; a `]` first in a class. Refused with {@link RegexpSyntaxError}: what RE2
 * itself refuses and JavaScript would accept (backreferences, lookaround, which also open the door to
 * catastrophic backtracking), and what has no JavaScript equivalent here (flag groups after the start,
 * `(?U)`, `\p` classes, `\C`).
 *
 * @example
 * regexp('^/looprpc.SwapServer/LoopOutTerms.*$');
 */
export function regexp(pattern: string): RegExp {
  let flags = '';
  let i = 0;
  for (let m = /^\(\?([a-zA-Z]+)\)/.exec(pattern); m; m = /^\(\?([a-zA-Z]+)\)/.exec(pattern.slice(i))) {
    for (const flag of m[1]!) {
      if (flag === 'U') throw new RegexpSyntaxError('the ungreedy flag (?U) is not supported');
      if (flag !== 'i' && flag !== 'm' && flag !== 's')
        throw new RegexpSyntaxError(`unknown flag (?${flag})`);
      if (!flags.includes(flag)) flags += flag;
    }
    i += m[0].length;
  }
  let out = '';
  let inClass = false;
  while (i < pattern.length) {
    const c = pattern[i]!;
    if (c === '\\') {
      const [text, length] = translateEscape(pattern, i, inClass);
      out += text;
      i += length;
      continue;
    }
    if (inClass) {
      if (c === ']') inClass = false;
      if (c === '[' && pattern[i + 1] === ':') {
        const end = pattern.indexOf(':]', i + 2);
        const name = end < 0 ? undefined : pattern.slice(i + 2, end);
        if (name !== undefined && /^\^?[a-z]+$/.test(name)) {
          const ranges = POSIX_CLASSES[name.replace('^', '')];
          if (ranges === undefined) throw new RegexpSyntaxError(`unknown POSIX class [:${name}:]`);
          if (name.startsWith('^'))
            throw new RegexpSyntaxError(`negated POSIX class [:${name}:] is not supported`);
          out += ranges;
          i = end + 2;
          continue;
        }
        out += '\\[';
        i++;
        continue;
      }
      out += c;
      i++;
      continue;
    }
    if (c === '[') {
      inClass = true;
      out += c;
      i++;
      if (pattern[i] === '^') {
        out += '^';
        i++;
      }
      // RE2 reads a `]` right after `[` or `[^` as a literal; JavaScript would close the class.
      if (pattern[i] === ']') {
        out += '\\]';
        i++;
      }
      continue;
    }
    if (c === '(' && pattern[i + 1] === '?') {
      const rest = pattern.slice(i + 2);
      if (rest.startsWith('P<')) {
        out += '(?<';
        i += 4;
        continue;
      }
      if (rest.startsWith(':') || /^<[A-Za-z_]/.test(rest)) {
        out += '(?';
        i += 2;
        continue;
      }
      if (/^(?:=|!|<=|<!)/.test(rest))
        throw new RegexpSyntaxError('lookaround (?=, (?!, (?<=, (?<! is not RE2 syntax');
      throw new RegexpSyntaxError(
        'flag groups are only supported at the start of the pattern, as in (?i)^/api',
      );
    }
    out += c;
    i++;
  }
  try {
    return new RegExp(out, flags);
  } catch (error) {
    throw new RegexpSyntaxError(
      (error as Error).message.replace(/^Invalid regular expression: \/.*\/[a-z]*: /s, ''),
    );
  }
}

/** One escape sequence at `pattern[i]`: its JavaScript text and how many characters it took. */
function translateEscape(pattern: string, i: number, inClass: boolean): [string, number] {
  const next = pattern[i + 1];
  if (next === undefined) throw new RegexpSyntaxError('trailing backslash');
  if (/[1-9]/.test(next) || next === 'k') throw new RegexpSyntaxError('backreferences are not RE2 syntax');
  if (next === 'p' || next === 'P') throw new RegexpSyntaxError('Unicode classes \\p are not supported');
  if (next === 'C') throw new RegexpSyntaxError('\\C is not supported');
  if (next === 'Q') {
    if (inClass) throw new RegexpSyntaxError('\\Q…\\E inside a character class is not supported');
    const end = pattern.indexOf('\\E', i + 2);
    const literal = pattern.slice(i + 2, end < 0 ? undefined : end);
    return [literal.replace(/[\\^$.*+?()[\]{}|/-]/g, '\\$&'), literal.length + 2 + (end < 0 ? 0 : 2)];
  }
  if (!inClass && next === 'A') return ['(?<![\\s\\S])', 2];
  if (!inClass && next === 'z') return ['(?![\\s\\S])', 2];
  if (next === 'x' && pattern[i + 2] === '{') {
    const m = /^\\x\{([0-9A-Fa-f]{1,6})\}/.exec(pattern.slice(i));
    const code = m ? Number.parseInt(m[1]!, 16) : Number.NaN;
    if (!(code <= 0xffff)) throw new RegexpSyntaxError('\\x{…} beyond U+FFFF is not supported');
    return [`\\u${code.toString(16).padStart(4, '0')}`, m![0].length];
  }
  return [`\\${next}`, 2];
}
