/**
 * The Aperture-compatible L402 gateway.
 *
 * @example
 * import { Config, Gateway } from '@l402/gateway';
 * const { config, warnings } = Config.load('aperture.yaml');
 * const gateway = await Gateway.start(config);
 */
export * as Config from './Config.js';
export * as Demo from './demo.js';
export * as Discovery from './discovery.js';
export * as Errors from './Errors.js';
export * as Gateway from './Gateway.js';
export * as Log from './Log.js';
