/**
 * Typed errors of the gateway: a stable `name` per class and a stable `code` per cause, so callers
 * branch on `code`, never on message text. Messages are one line, fit to print as they are.
 *
 * @example
 * try { Config.load('aperture.yaml') } catch (e) {
 *   if (e instanceof Errors.ConfigError) { console.error(e.message); process.exit(1); }
 * }
 */

/** Every stable error code of the gateway. */
export type Code = 'L402_CONFIG_INVALID' | StartCode | PricerCode;

/** Base class of every gateway error. */
export class GatewayError extends Error {
  override name = 'GatewayError';
  readonly code: Code;
  constructor(code: Code, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/**
 * A configuration that cannot be used: unreadable, not YAML, or a value that is wrong. The message is
 * `file:line: key.path: what is wrong` (the line is 1-based; it and the key are left out when the
 * fault has none, e.g. a missing file).
 */
export class ConfigError extends GatewayError {
  override name = 'ConfigError';
  readonly file: string;
  readonly line: number | undefined;
  /** The key path as written in the file, e.g. `services[1].price`. */
  readonly key: string | undefined;
  constructor(
    at: { readonly file: string; readonly line?: number | undefined; readonly key?: string | undefined },
    problem: string,
    options?: { cause?: unknown },
  ) {
    const where = at.line === undefined ? at.file : `${at.file}:${at.line}`;
    super('L402_CONFIG_INVALID', `${where}: ${at.key === undefined ? '' : `${at.key}: `}${problem}`, options);
    this.file = at.file;
    this.line = at.line;
    this.key = at.key;
  }
}

/** Why the gateway could not start (beyond its config, store and Lightning backend, which have their own errors). */
export type StartCode =
  | 'L402_GATEWAY_LISTEN'
  | 'L402_GATEWAY_TLS'
  | 'L402_GATEWAY_SECRETS'
  | 'L402_GATEWAY_UPSTREAM';

/**
 * The gateway could not start: `L402_GATEWAY_LISTEN` when the listen address is taken or not allowed,
 * `L402_GATEWAY_TLS` when the serving certificate or key cannot be read or made,
 * `L402_GATEWAY_SECRETS` when the master key file cannot be read or created, and
 * `L402_GATEWAY_UPSTREAM` when a service's `tlscertpath` cannot be read. The message says what to do.
 *
 * @example
 * try { await Gateway.start(config) } catch (e) {
 *   if (e instanceof Errors.StartError && e.code === 'L402_GATEWAY_LISTEN') console.error(e.message);
 * }
 */
export class StartError extends GatewayError {
  override name = 'StartError';
  constructor(code: StartCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** Why a pricer call failed. */
export type PricerCode = 'L402_PRICER_UNAVAILABLE' | 'L402_PRICER_TIMEOUT' | 'L402_PRICER_ANSWER';

/**
 * A pricer call failed: `L402_PRICER_UNAVAILABLE` when the pricer cannot be reached or answers with an
 * error, `L402_PRICER_TIMEOUT` when it did not answer within `dynamicprice.timeout`, and
 * `L402_PRICER_ANSWER` when its answer is not a price (negative, fractional, malformed). The request
 * that needed the price gets a 500, as Aperture answers.
 *
 * @example
 * try { await pricer.price(request) } catch (e) {
 *   if (e instanceof Errors.PricerError && e.code === 'L402_PRICER_TIMEOUT') console.error(e.message);
 * }
 */
export class PricerError extends GatewayError {
  override name = 'PricerError';
  constructor(code: PricerCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
