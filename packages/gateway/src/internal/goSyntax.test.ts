import { describe, expect, test } from 'vitest';
import { duration, RegexpSyntaxError, regexp } from './goSyntax.js';

describe('duration (Go time.ParseDuration)', () => {
  test.each([
    ['0', 0],
    ['15s', 15_000],
    ['2m', 120_000],
    ['1h30m', 5_400_000],
    ['1.5h', 5_400_000],
    ['300ms', 300],
    ['500us', 0.5],
    ['500µs', 0.5],
    ['20ms', 20],
    ['-1s', -1_000],
    ['.5s', 500],
  ])('%s = %d ms', (text, ms) => {
    expect(duration(text)).toBe(ms);
  });

  test.each(['', '15', '1 s', 's', '1d', '1.2.3s', 'abc', '--1s'])('refuses %j', (text) => {
    expect(duration(text)).toBeUndefined();
  });
});

describe('regexp (RE2 to JavaScript)', () => {
  test('plain patterns compile as they are', () => {
    expect(regexp('^/looprpc.SwapServer/LoopOutTerms.*$').test('/looprpc.SwapServer/LoopOutTerms')).toBe(
      true,
    );
    expect(regexp('service2.com:8083').test('service2.com:8083')).toBe(true);
  });

  test('leading flag groups become flags', () => {
    const r = regexp('(?i)(?s)^/API/.x$');
    expect(r.flags).toBe('is');
    expect(r.test('/api/\nx')).toBe(true);
  });

  test('(?P<name>…) is a named group', () => {
    expect(regexp('^/(?P<svc>[a-z]+)/').exec('/loop/x')?.groups?.svc).toBe('loop');
  });

  test('\\A and \\z anchor the whole text even with (?m)', () => {
    const r = regexp('(?m)\\Afoo\\z');
    expect(r.test('foo')).toBe(true);
    expect(r.test('x\nfoo')).toBe(false);
    expect(r.test('foo\n')).toBe(false);
  });

  test('\\Q…\\E is literal', () => {
    const r = regexp('^\\Q/a.b+(c)\\E$');
    expect(r.test('/a.b+(c)')).toBe(true);
    expect(r.test('/axbb(c)')).toBe(false);
  });

  test('POSIX classes and a leading ] in a class', () => {
    expect(regexp('^[[:alpha:][:digit:]_]+$').test('ab_12')).toBe(true);
    expect(regexp('^[[:alpha:]]+$').test('ab1')).toBe(false);
    expect(regexp('^[]a]+$').test(']a]')).toBe(true);
    expect(regexp('^[^]a]$').test('b')).toBe(true);
  });

  test('\\x{…} code points', () => {
    expect(regexp('^\\x{41}$').test('A')).toBe(true);
  });

  test.each([
    ['(a)\\1', /backreferences/],
    ['^(?=a)', /lookaround/],
    ['(?<!a)b', /lookaround/],
    ['a(?i)b', /only supported at the start/],
    ['(?i:a)', /only supported at the start/],
    ['(?U)a+', /ungreedy/],
    ['\\pL', /Unicode classes/],
    ['[[:^alpha:]]', /negated POSIX/],
    ['[[:foo:]]', /unknown POSIX/],
    ['^/(api', /Unterminated group/],
    ['a\\', /trailing backslash/],
    ['\\x{110000}', /beyond U\+FFFF/],
  ])('refuses %j', (pattern, message) => {
    expect(() => regexp(pattern)).toThrow(RegexpSyntaxError);
    expect(() => regexp(pattern)).toThrow(message);
  });
});
