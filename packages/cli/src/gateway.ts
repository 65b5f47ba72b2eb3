/**
 * `l402 gateway`: the Aperture-compatible paid reverse proxy (`npm start` runs it with no arguments).
 *
 * Without `--config` it runs on embedded defaults: SQLite under the home (`--home`, else `$L402_HOME`,
 * else `~/.l402`), the devnet in this process (its wallet APIs published in `<home>/devnet.json`),
 * and a demo backend with a free and a paid route; it prints the URLs and the command that pays for
 * the paid one with the devnet payer's wallet. With `--config FILE` it reads Aperture's YAML; keys it
 * ignores are reported by name on stderr, a bad value stops it with `file:line: key: …` (exit 2).
 * `--check` only validates: exit 0 when the file is valid (warnings printed), 2 when not.
 *
 * It runs until SIGINT or SIGTERM, then shuts down gracefully: no new connections, requests in
 * flight finish (up to 10 s), then the store, the Lightning backend and the devnet close.
 */
import { dirname, resolve } from 'node:path';
import { Devnet } from '@l402/devnet';
import { Config, Demo, Gateway, Errors as GatewayErrors, Log } from '@l402/gateway';
import type { Command } from 'commander';
import { Errors } from 'l402';
import { type Run, UsageError, untilSignal } from './cli.js';

interface Options {
  readonly config?: string;
  readonly check?: boolean;
  readonly home?: string;
  readonly listen?: string;
}

/** `host:port`, `[v6]:port` or `:port`; port 0 picks a free one. */
function hostPort(text: string): Config.HostPort {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text);
  const port = Number(m?.[3]);
  if (m === null || port > 65535) {
    throw new UsageError(`--listen must be host:port (port 0 for any free port), got "${text}"`);
  }
  return { host: m[1] ?? m[2] ?? '', port };
}

/** Config and start failures are the user's to fix: one line and exit 2, never a stack trace. */
function asUsage(error: unknown): unknown {
  if (error instanceof GatewayErrors.StartError && error.code === 'L402_GATEWAY_LISTEN') {
    return new UsageError(`${error.message} (listenaddr in the config, or --listen host:port)`);
  }
  return error instanceof GatewayErrors.GatewayError || error instanceof Errors.L402Error
    ? new UsageError(error.message)
    : error;
}

function banner(gateway: Gateway.Gateway, demo: boolean): string {
  const lines = [
    `l402 gateway listening on ${gateway.url} (${gateway.protocols})`,
    `  store      ${gateway.store}`,
    `  lightning  ${gateway.lightning}`,
  ];
  if (gateway.devnet !== undefined)
    lines.push(`  devnet     ${gateway.devnet.file} (the payer's wallet URIs are there)`);
  if (gateway.discovery !== undefined) lines.push(`  discovery  ${gateway.discovery}`);
  if (gateway.metrics !== undefined) lines.push(`  metrics    ${gateway.metrics}`);
  if (gateway.admin !== undefined) {
    lines.push(
      `  admin      ${gateway.url}/api/admin/ (macaroon ${gateway.admin.macaroonPath}; see l402 admin --help)`,
    );
    if (gateway.admin.dashboardUrl !== undefined)
      lines.push(`  dashboard  ${gateway.admin.dashboardUrl} (signs in once, within 15 minutes)`);
  }
  if (demo) {
    lines.push(
      '',
      'demo:',
      `  free   ${gateway.url}${Demo.PATHS.free}`,
      `  paid   ${gateway.url}${Demo.PATHS.paid}   (21 sat)`,
      `  sse    ${gateway.url}${Demo.PATHS.events}`,
    );
    if (gateway.devnet !== undefined) {
      lines.push(
        '',
        "pay for the paid one with the devnet payer's wallet (the l402 command finds it in devnet.json):",
        `  L402_HOME=${JSON.stringify(dirname(gateway.devnet.file))} npx l402 get ${gateway.url}${Demo.PATHS.paid}`,
        'or with the library alone:',
        `  ${Demo.payCommand({ url: `${gateway.url}${Demo.PATHS.paid}`, devnetFile: gateway.devnet.file })}`,
      );
    }
  }
  lines.push('', 'Ctrl-C stops it.');
  return `${lines.join('\n')}\n`;
}

/**
 * Adds `l402 gateway` to the program.
 *
 * @example
 * registerGateway(program, run); // l402 gateway --config aperture.yaml
 */
export function registerGateway(program: Command, run: Run): void {
  program
    .command('gateway')
    .description('run the Aperture-compatible L402 reverse proxy (without --config: a demo on the devnet)')
    .option('--config <file>', "Aperture's aperture.yaml")
    .option('--check', 'validate --config and exit: 0 valid, 2 invalid')
    .option('--home <dir>', 'state directory (default $L402_HOME or ~/.l402)')
    .option('--listen <host:port>', 'listen here instead of listenaddr (port 0: any free port)')
    .action(async (options: Options) => {
      const listen = options.listen === undefined ? undefined : hostPort(options.listen);
      const env = options.home === undefined ? process.env : { ...process.env, L402_HOME: options.home };
      if (options.check) {
        if (options.config === undefined) throw new UsageError('--check needs --config FILE');
        let loaded: Config.Loaded;
        try {
          loaded = Config.load(options.config, { env });
        } catch (error) {
          throw asUsage(error);
        }
        for (const warning of loaded.warnings) run.io.stderr(`l402: warning: ${warning}\n`);
        const n = loaded.warnings.length;
        run.io.stdout(`${options.config}: valid${n > 0 ? ` (${n} warning${n === 1 ? '' : 's'})` : ''}\n`);
        return;
      }

      const home = resolve(options.home ?? Devnet.home());
      let demo: Demo.Demo | undefined;
      let gateway: Gateway.Gateway;
      try {
        let config: Config.Config;
        if (options.config !== undefined) {
          const loaded = Config.load(options.config, { env });
          for (const warning of loaded.warnings) run.io.stderr(`l402: warning: ${warning}\n`);
          config = loaded.config;
        } else {
          demo = await Demo.start();
          config = Config.defaults(home, { upstream: demo.address });
        }
        const log = Log.create({ level: config.debuglevel, write: run.io.stderr, pretty: run.io.stderrTTY });
        gateway = await Gateway.start(config, { log, ...(listen ? { listen } : {}) });
      } catch (error) {
        await demo?.close();
        throw asUsage(error);
      }
      const stop = untilSignal();
      run.io.stdout(banner(gateway, demo !== undefined));
      const signal = await stop;
      run.io.stderr(`l402: ${signal}: stopping the gateway (requests in flight get up to 10 s)\n`);
      await gateway.close();
      await demo?.close();
    });
}
