import { describe, expect, it } from 'vitest';
import * as Caveat from './Caveat.js';
import { CaveatFormatError, VerificationError } from './Errors.js';

const now = 1_700_000_000;

function failure(caveats: string[], ctx: Partial<Caveat.Context>, options?: Caveat.VerifyOptions) {
  try {
    Caveat.verify(caveats, { now, ...ctx }, options);
  } catch (e) {
    if (e instanceof VerificationError) return e.code;
    throw e;
  }
  return 'ok';
}

describe('encoding', () => {
  it('splits at the first "=" so values may hold "="', () => {
    expect(Caveat.parse('constraint=a=b==')).toEqual({ key: 'constraint', value: 'a=b==' });
    expect(Caveat.parse('empty=')).toEqual({ key: 'empty', value: '' });
  });
  it.each(['novalue', '=value', '', 'has space=1'])('refuses %j', (text) => {
    expect(() => Caveat.parse(text)).toThrow(CaveatFormatError);
    expect(Caveat.tryParse(text)).toBeUndefined();
  });
  it('formats Aperture keys exactly', () => {
    expect(
      Caveat.services([
        { name: 'service1', tier: 0 },
        { name: 'svc2', tier: 3 },
      ]),
    ).toBe('services=service1:0,svc2:3');
    expect(Caveat.capabilities('service1', ['add', 'subtract'])).toBe('service1_capabilities=add,subtract');
    expect(Caveat.capabilities('service1', [])).toBe('service1_capabilities=');
    expect(Caveat.validUntil('service1', 1682483169)).toBe('service1_valid_until=1682483169');
    expect(Caveat.preimage('AB'.repeat(32))).toBe(`preimage=${'ab'.repeat(32)}`);
    expect(() => Caveat.format('a=b', 'c')).toThrow(CaveatFormatError);
    expect(() => Caveat.services([])).toThrow(CaveatFormatError);
    expect(() => Caveat.services([{ name: 'a,b', tier: 0 }])).toThrow(CaveatFormatError);
  });
  it('parses services lists, tier defaulting to 0', () => {
    expect(Caveat.parseServices('a:0,b:2,c')).toEqual([
      { name: 'a', tier: 0 },
      { name: 'b', tier: 2 },
      { name: 'c', tier: 0 },
    ]);
    expect(() => Caveat.parseServices('a:x')).toThrow(CaveatFormatError);
    expect(() => Caveat.parseServices('')).toThrow(CaveatFormatError);
  });
});

describe('services', () => {
  const svc = Caveat.services([
    { name: 'a', tier: 1 },
    { name: 'b', tier: 0 },
  ]);
  it('grants a listed service and refuses another', () => {
    expect(failure([svc], { service: 'a' })).toBe('ok');
    expect(failure([svc], { service: 'c' })).toBe('L402_SERVICE_NOT_ALLOWED');
  });
  it('enforces tiers (Aperture ignores them)', () => {
    expect(failure([svc], { service: 'a', tier: 1 })).toBe('ok');
    expect(failure([svc], { service: 'b', tier: 1 })).toBe('L402_SERVICE_NOT_ALLOWED');
  });
  it('allows narrowing to a subset at the same or a lower tier', () => {
    expect(failure([svc, 'services=a:0'], { service: 'a' })).toBe('ok');
    expect(failure([svc, 'services=a:0'], { service: 'b' })).toBe('L402_SERVICE_NOT_ALLOWED');
    expect(failure([svc, 'services=a:0'], { service: 'a', tier: 1 })).toBe('L402_SERVICE_NOT_ALLOWED');
  });
  it('refuses widening by a new service or a higher tier', () => {
    expect(failure([svc, 'services=a:1,c:0'], { service: 'a' })).toBe('L402_CAVEAT_WIDENED');
    expect(failure([svc, 'services=b:5'], { service: 'b' })).toBe('L402_CAVEAT_WIDENED');
  });
  it('fails closed on a malformed services value', () => {
    expect(failure(['services=:x'], { service: 'a' })).toBe('L402_CAVEAT_UNSATISFIED');
  });
});

describe('capabilities', () => {
  const caps = Caveat.capabilities('a', ['read', 'write']);
  it('grants listed capabilities of the target service only', () => {
    expect(failure([caps], { service: 'a', capabilities: ['read'] })).toBe('ok');
    expect(failure([caps], { service: 'a', capabilities: ['read', 'write'] })).toBe('ok');
    expect(failure([caps], { service: 'a', capabilities: ['admin'] })).toBe('L402_CAPABILITY_NOT_ALLOWED');
    expect(failure([caps], { service: 'b', capabilities: ['admin'] })).toBe('ok');
    expect(failure([caps], { service: 'a' })).toBe('ok');
  });
  it('an empty list, as Aperture mints it, grants no capability', () => {
    expect(failure(['a_capabilities='], { service: 'a', capabilities: ['read'] })).toBe(
      'L402_CAPABILITY_NOT_ALLOWED',
    );
    expect(failure(['a_capabilities='], { service: 'a' })).toBe('ok');
  });
  it('narrows by subset only', () => {
    expect(failure([caps, 'a_capabilities=read'], { service: 'a', capabilities: ['write'] })).toBe(
      'L402_CAPABILITY_NOT_ALLOWED',
    );
    expect(failure([caps, 'a_capabilities=read,admin'], { service: 'a', capabilities: ['read'] })).toBe(
      'L402_CAVEAT_WIDENED',
    );
  });
});

describe('expiry', () => {
  it('holds strictly before the time', () => {
    expect(failure([Caveat.validUntil('a', now + 1)], { service: 'a' })).toBe('ok');
    expect(failure([Caveat.validUntil('a', now)], { service: 'a' })).toBe('L402_TOKEN_EXPIRED');
  });
  it("ignores another service's expiry when a service is targeted, checks all otherwise", () => {
    expect(failure([Caveat.validUntil('b', now - 1)], { service: 'a' })).toBe('ok');
    expect(failure([Caveat.validUntil('b', now - 1)], {})).toBe('L402_TOKEN_EXPIRED');
  });
  it('the bare valid_until applies to every service', () => {
    expect(failure(['valid_until=1'], { service: 'a' })).toBe('L402_TOKEN_EXPIRED');
  });
  it('later caveats may only be earlier', () => {
    expect(failure(['a_valid_until=2000000000', 'a_valid_until=1800000000'], { service: 'a' })).toBe('ok');
    expect(failure(['a_valid_until=1800000000', 'a_valid_until=2000000000'], { service: 'a' })).toBe(
      'L402_CAVEAT_WIDENED',
    );
  });
  it('fails closed on a value that is not a unix time', () => {
    expect(failure(['a_valid_until=tomorrow'], { service: 'a' })).toBe('L402_CAVEAT_UNSATISFIED');
    expect(failure(['a_valid_until=1e20'], { service: 'a' })).toBe('L402_CAVEAT_UNSATISFIED');
  });
});

describe('constraints', () => {
  const sats = [...Caveat.defaultSatisfiers, Caveat.constraint('max_tokens', 'decreasing')];
  it('enforces a numeric limit against the request and its narrowing', () => {
    expect(failure(['max_tokens=500'], { values: { max_tokens: 400 } }, { satisfiers: sats })).toBe('ok');
    expect(failure(['max_tokens=500'], { values: { max_tokens: 800 } }, { satisfiers: sats })).toBe(
      'L402_CAVEAT_UNSATISFIED',
    );
    expect(
      failure(['max_tokens=500', 'max_tokens=300'], { values: { max_tokens: 400 } }, { satisfiers: sats }),
    ).toBe('L402_CAVEAT_UNSATISFIED');
    expect(failure(['max_tokens=500', 'max_tokens=900'], {}, { satisfiers: sats })).toBe(
      'L402_CAVEAT_WIDENED',
    );
    expect(failure(['max_tokens=lots'], {}, { satisfiers: sats })).toBe('L402_CAVEAT_UNSATISFIED');
  });
  it('subset, earlier and equal constraints', () => {
    const s = [
      Caveat.constraint('region', 'subset'),
      Caveat.constraint('until', 'earlier'),
      Caveat.constraint('model', 'equal'),
    ];
    expect(failure(['region=eu,us'], { values: { region: 'eu' } }, { satisfiers: s })).toBe('ok');
    expect(failure(['region=eu,us', 'region=eu,asia'], {}, { satisfiers: s })).toBe('L402_CAVEAT_WIDENED');
    expect(failure(['region=eu'], { values: { region: 'us' } }, { satisfiers: s })).toBe(
      'L402_CAVEAT_UNSATISFIED',
    );
    expect(failure(['until=1'], {}, { satisfiers: s })).toBe('L402_TOKEN_EXPIRED');
    expect(failure(['model=a', 'model=b'], {}, { satisfiers: s })).toBe('L402_CAVEAT_WIDENED');
    expect(failure(['model=a'], { values: { model: 'b' } }, { satisfiers: s })).toBe(
      'L402_CAVEAT_UNSATISFIED',
    );
  });
});

describe('unknown caveats', () => {
  it('are skipped when no satisfier is registered', () => {
    expect(failure(['color=blue', 'novalue'], {})).toBe('ok');
  });
  it('are refused when the verifier demands every caveat be understood', () => {
    expect(failure(['color=blue'], {}, { strict: true })).toBe('L402_CAVEAT_UNKNOWN');
    expect(failure(['novalue'], {}, { strict: true })).toBe('L402_CAVEAT_UNKNOWN');
    expect(failure([Caveat.services([{ name: 'a', tier: 0 }])], { service: 'a' }, { strict: true })).toBe(
      'ok',
    );
  });
});

describe('preimage caveat', () => {
  const p = 'ab'.repeat(32);
  it('must match the credential preimage and never change', () => {
    expect(failure([`preimage=${p}`], { preimage: p })).toBe('ok');
    expect(failure([`preimage=${p}`], { preimage: 'cd'.repeat(32) })).toBe('L402_BAD_PREIMAGE');
    expect(failure([`preimage=${p}`, `preimage=${'cd'.repeat(32)}`], {})).toBe('L402_CAVEAT_WIDENED');
  });
});
