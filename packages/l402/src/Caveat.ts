/**
 * L402 caveats: `key=value` strings (the value may contain `=`), Aperture's keys, and the satisfier model
 * that decides whether a token's caveats grant a request.
 *
 * Rules, per key, over the caveats in token order: each later caveat may only narrow the one before it
 * (subset, decreasing, earlier or equal, per key), and the last must hold for the request. Unlike
 * Aperture, capabilities, service tiers and numeric constraints are enforced, not just minted.
 *
 * @example
 * const caveats = [Caveat.services([{ name: 'weather', tier: 0 }]), Caveat.capabilities('weather', ['read'])];
 * Caveat.verify(caveats, { service: 'weather', capabilities: ['read'], now: Date.now() / 1000 }); // ok
 * Caveat.verify(caveats, { service: 'weather', capabilities: ['write'], now: 0 }); // throws VerificationError
 */
import { CaveatFormatError, VerificationError } from './Errors.js';

export interface Caveat {
  readonly key: string;
  readonly value: string;
}

/** Splits `key=value` at the first `=`. The key must be non-empty and free of whitespace. */
export function parse(text: string): Caveat {
  const eq = text.indexOf('=');
  if (eq <= 0) throw new CaveatFormatError(`caveat "${clip(text)}" is not of the form key=value`);
  const key = text.slice(0, eq);
  if (/\s/.test(key)) throw new CaveatFormatError(`caveat key "${clip(key)}" contains whitespace`);
  return { key, value: text.slice(eq + 1) };
}

/** {@link parse}, or `undefined` for a string that is not `key=value`. */
export function tryParse(text: string): Caveat | undefined {
  try {
    return parse(text);
  } catch {
    return undefined;
  }
}

/** `key=value`. */
export function format(key: string, value: string | number): string {
  if (key.length === 0 || key.includes('=') || /\s/.test(key)) {
    throw new CaveatFormatError(`caveat key "${clip(key)}" must be non-empty, without "=" or whitespace`);
  }
  return `${key}=${value}`;
}

const clip = (s: string) => (s.length > 80 ? `${s.slice(0, 77)}...` : s);

// ---------------------------------------------------------------------------------------------------
// Aperture's caveat keys

export interface ServiceTier {
  readonly name: string;
  readonly tier: number;
}

/** `services=name:tier,…` (Aperture `l402/service.go`). */
export function services(list: readonly ServiceTier[]): string {
  if (list.length === 0) throw new CaveatFormatError('a services caveat needs at least one service');
  for (const s of list) {
    if (!/^[^\s,:=]+$/.test(s.name))
      throw new CaveatFormatError(`service name "${clip(s.name)}" is not valid`);
    if (!Number.isSafeInteger(s.tier) || s.tier < 0)
      throw new CaveatFormatError(`service tier ${s.tier} is not valid`);
  }
  return format('services', list.map((s) => `${s.name}:${s.tier}`).join(','));
}

/** The services of a `services` caveat value. Throws {@link CaveatFormatError} on a malformed list. */
export function parseServices(value: string): ServiceTier[] {
  if (value.length === 0) throw new CaveatFormatError('services caveat is empty');
  return value.split(',').map((entry) => {
    const colon = entry.lastIndexOf(':');
    const name = colon < 0 ? entry : entry.slice(0, colon);
    const tier = colon < 0 ? '0' : entry.slice(colon + 1);
    if (name.length === 0 || !/^\d{1,9}$/.test(tier)) {
      throw new CaveatFormatError(`services caveat entry "${clip(entry)}" is not name:tier`);
    }
    return { name, tier: Number(tier) };
  });
}

/** `<service>_capabilities=a,b` (an empty list grants no capability, as Aperture mints it). */
export function capabilities(service: string, list: readonly string[]): string {
  return format(`${service}${CAPABILITIES_SUFFIX}`, list.join(','));
}

/** `<service>_valid_until=<unix seconds>`. */
export function validUntil(service: string, unixSeconds: number): string {
  if (!Number.isSafeInteger(unixSeconds) || unixSeconds < 0) {
    throw new CaveatFormatError(`valid_until ${unixSeconds} is not a unix time in seconds`);
  }
  return format(`${service}${VALID_UNTIL_SUFFIX}`, unixSeconds);
}

/** `preimage=<hex>`, the caveat lnget and Aperture's gRPC clients append to carry the preimage. */
export function preimage(hex: string): string {
  return format('preimage', hex.toLowerCase());
}

const CAPABILITIES_SUFFIX = '_capabilities';
const VALID_UNTIL_SUFFIX = '_valid_until';

// ---------------------------------------------------------------------------------------------------
// Satisfiers

/** What the request asks for, against which the last caveat of each key must hold. */
export interface Context {
  /** The service the request targets. Without it, `services` caveats are not checked. */
  readonly service?: string | undefined;
  /** The lowest tier of `service` the request needs. */
  readonly tier?: number | undefined;
  /** Capabilities of `service` the request needs; every one must be granted. */
  readonly capabilities?: readonly string[] | undefined;
  /** Unix seconds. */
  readonly now: number;
  /** Request-side values for constraint caveats, by caveat key (e.g. a requested size). */
  readonly values?: Readonly<Record<string, number | string>> | undefined;
  /** Hex preimage the credential carried, checked against `preimage=` caveats. */
  readonly preimage?: string | undefined;
}

/** How a later caveat of a key may differ from an earlier one. */
export type Attenuation = 'subset' | 'decreasing' | 'earlier' | 'equal';

/** Judges the caveats of the keys it `matches`. */
export interface Satisfier {
  readonly name: string;
  matches(key: string): boolean;
  /** Whether `current` is no wider than `previous` (same key, `current` later in the token). */
  narrows(previous: string, current: string, key: string): boolean;
  /** `undefined` when the last caveat of `key` grants the request, else why not. */
  check(value: string, key: string, context: Context): VerificationError | undefined;
}

const UNIX = /^\d{1,15}$/;
const intOf = (v: string): number | undefined => (UNIX.test(v) ? Number(v) : undefined);
// An empty value is the empty set (Aperture mints `svc_capabilities=` to mean "no capabilities").
const listOf = (v: string) => (v.length === 0 ? [] : v.split(','));
const isSubset = (cur: string[], prev: string[]) => cur.every((c) => prev.includes(c));

function narrowsBy(attenuation: Attenuation, previous: string, current: string): boolean {
  switch (attenuation) {
    case 'subset':
      return isSubset(listOf(current), listOf(previous));
    case 'decreasing':
    case 'earlier': {
      const p = numberOf(previous);
      const c = numberOf(current);
      return p !== undefined && c !== undefined && c <= p;
    }
    case 'equal':
      return previous === current;
  }
}

const NUMBER = /^-?\d{1,15}(\.\d{1,15})?$/;
const numberOf = (v: string): number | undefined => (NUMBER.test(v) ? Number(v) : undefined);

/** `services=name:tier,…`: later lists name a subset at no higher tier; the target must be listed. */
export const servicesSatisfier: Satisfier = {
  name: 'services',
  matches: (key) => key === 'services',
  narrows(previous, current) {
    const prev = tryList(previous);
    const cur = tryList(current);
    if (prev === undefined || cur === undefined) return false;
    return cur.every((c) => prev.some((p) => p.name === c.name && c.tier <= p.tier));
  },
  check(value, key, ctx) {
    const list = tryList(value);
    if (list === undefined)
      return new VerificationError('L402_CAVEAT_UNSATISFIED', 'services caveat is malformed', key);
    if (ctx.service === undefined) return undefined;
    const granted = list.find((s) => s.name === ctx.service);
    if (granted === undefined) {
      return new VerificationError(
        'L402_SERVICE_NOT_ALLOWED',
        `token is not valid for service ${ctx.service}`,
        key,
      );
    }
    if (ctx.tier !== undefined && granted.tier < ctx.tier) {
      return new VerificationError(
        'L402_SERVICE_NOT_ALLOWED',
        `token grants tier ${granted.tier} of service ${ctx.service}, tier ${ctx.tier} is required`,
        key,
      );
    }
    return undefined;
  },
};

function tryList(value: string): ServiceTier[] | undefined {
  try {
    return parseServices(value);
  } catch {
    return undefined;
  }
}

/** `<service>_capabilities=a,b`: later lists are subsets; the request's capabilities must all be listed. */
export const capabilitiesSatisfier: Satisfier = {
  name: 'capabilities',
  matches: (key) => key.endsWith(CAPABILITIES_SUFFIX) && key.length > CAPABILITIES_SUFFIX.length,
  narrows: (previous, current) => narrowsBy('subset', previous, current),
  check(value, key, ctx) {
    const service = key.slice(0, -CAPABILITIES_SUFFIX.length);
    if (ctx.service !== service || ctx.capabilities === undefined) return undefined;
    const granted = listOf(value);
    const missing = ctx.capabilities.find((c) => !granted.includes(c));
    if (missing === undefined) return undefined;
    return new VerificationError(
      'L402_CAPABILITY_NOT_ALLOWED',
      `token does not grant capability ${missing} of service ${service}`,
      key,
    );
  },
};

/**
 * `<service>_valid_until=<unix>` and the bare `valid_until=<unix>`: later values are no later; the
 * request must come before. Without a target service every service's expiry is checked.
 */
export const validUntilSatisfier: Satisfier = {
  name: 'valid_until',
  matches: (key) =>
    key === 'valid_until' || (key.endsWith(VALID_UNTIL_SUFFIX) && key.length > VALID_UNTIL_SUFFIX.length),
  narrows(previous, current) {
    const p = intOf(previous);
    const c = intOf(current);
    return p !== undefined && c !== undefined && c <= p;
  },
  check(value, key, ctx) {
    const service = key === 'valid_until' ? undefined : key.slice(0, -VALID_UNTIL_SUFFIX.length);
    if (service !== undefined && ctx.service !== undefined && service !== ctx.service) return undefined;
    const expiry = intOf(value);
    if (expiry === undefined) {
      return new VerificationError(
        'L402_CAVEAT_UNSATISFIED',
        `${key} is not a unix time: ${clip(value)}`,
        key,
      );
    }
    return ctx.now < expiry ? undefined : expiredAt(key, expiry);
  },
};

/** `preimage=<hex>`: every copy is the same, and matches the credential's preimage when one is known. */
export const preimageSatisfier: Satisfier = {
  name: 'preimage',
  matches: (key) => key === 'preimage',
  narrows: (previous, current) => previous.toLowerCase() === current.toLowerCase(),
  check(value, key, ctx) {
    if (ctx.preimage === undefined || ctx.preimage.toLowerCase() === value.toLowerCase()) return undefined;
    return new VerificationError('L402_BAD_PREIMAGE', 'preimage caveat does not match the credential', key);
  },
};

/**
 * A satisfier for a raw constraint caveat such as `loop_out_monthly_volume_sats=200000000`.
 * `decreasing`: later limits are no higher, and `context.values[key]`, when given, must not exceed the
 * limit. `subset`: later lists are subsets, and the request's value must be listed. `earlier`: a unix
 * time the request must come before. `equal`: never changes, and the request's value must equal it.
 *
 * @example
 * Caveat.verify(['max_tokens=500'], { now, values: { max_tokens: 800 } }, {
 *   satisfiers: [...Caveat.defaultSatisfiers, Caveat.constraint('max_tokens', 'decreasing')],
 * }); // throws: max_tokens 800 exceeds 500
 */
export function constraint(key: string, attenuation: Attenuation): Satisfier {
  return {
    name: key,
    matches: (k) => k === key,
    narrows: (previous, current) => narrowsBy(attenuation, previous, current),
    check(value, k, ctx) {
      if (attenuation === 'earlier') {
        const expiry = intOf(value);
        if (expiry === undefined) return notNumber(k, value);
        return ctx.now < expiry ? undefined : expiredAt(k, expiry);
      }
      const asked = ctx.values?.[k];
      if (asked === undefined) {
        return attenuation === 'decreasing' && numberOf(value) === undefined
          ? notNumber(k, value)
          : undefined;
      }
      let ok: boolean;
      if (attenuation === 'decreasing') {
        const limit = numberOf(value);
        ok = limit !== undefined && typeof asked === 'number' && asked <= limit;
      } else if (attenuation === 'subset') {
        ok = listOf(value).includes(String(asked));
      } else {
        ok = value === String(asked);
      }
      return ok
        ? undefined
        : new VerificationError(
            'L402_CAVEAT_UNSATISFIED',
            `request ${k}=${clip(String(asked))} is not within ${clip(value)}`,
            k,
          );
    },
  };
}

const notNumber = (key: string, value: string) =>
  new VerificationError('L402_CAVEAT_UNSATISFIED', `${key} is not a number: ${clip(value)}`, key);
const expiredAt = (key: string, expiry: number) =>
  new VerificationError(
    'L402_TOKEN_EXPIRED',
    `token expired at ${new Date(expiry * 1000).toISOString()} (${key})`,
    key,
  );

/** The satisfiers every L402 verifier runs: services, capabilities, expiry and preimage. */
export const defaultSatisfiers: readonly Satisfier[] = [
  servicesSatisfier,
  capabilitiesSatisfier,
  validUntilSatisfier,
  preimageSatisfier,
];

export interface VerifyOptions {
  /** Defaults to {@link defaultSatisfiers}. */
  readonly satisfiers?: readonly Satisfier[];
  /** Refuse any caveat no satisfier understands (default: skip it, as the L402 spec says). */
  readonly strict?: boolean;
}

/**
 * Checks first-party caveats, in token order, against a request. Throws {@link VerificationError}
 * naming the caveat at fault; returns normally when the caveats grant the request.
 */
export function verify(caveats: readonly string[], context: Context, options: VerifyOptions = {}): void {
  const satisfiers = options.satisfiers ?? defaultSatisfiers;
  const groups = new Map<string, string[]>();
  for (const text of caveats) {
    const caveat = tryParse(text);
    if (caveat === undefined) {
      if (options.strict) {
        throw new VerificationError('L402_CAVEAT_UNKNOWN', `caveat "${clip(text)}" is not key=value`, text);
      }
      continue;
    }
    const values = groups.get(caveat.key);
    if (values === undefined) groups.set(caveat.key, [caveat.value]);
    else values.push(caveat.value);
  }
  for (const [key, values] of groups) {
    const satisfier = satisfiers.find((s) => s.matches(key));
    if (satisfier === undefined) {
      if (options.strict)
        throw new VerificationError('L402_CAVEAT_UNKNOWN', `no verifier understands caveat ${key}`, key);
      continue;
    }
    for (let i = 1; i < values.length; i++) {
      if (!satisfier.narrows(values[i - 1] as string, values[i] as string, key)) {
        throw new VerificationError(
          'L402_CAVEAT_WIDENED',
          `${key} caveat violates increasing restrictiveness: ${clip(values[i] as string)} is wider than ${clip(values[i - 1] as string)}`,
          key,
        );
      }
    }
    const failure = satisfier.check(values[values.length - 1] as string, key, context);
    if (failure !== undefined) throw failure;
  }
}
