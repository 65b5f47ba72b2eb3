/**
 * The Aperture-compatible L402 gateway.
 *
 * @example
 * import { Config } from '@l402/gateway';
 * const { config, warnings } = Config.load('aperture.yaml');
 */
export * as Config from './Config.js';
export * as Errors from './Errors.js';
