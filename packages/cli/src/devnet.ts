/**
 * `l402 devnet`: a real Lightning network in this process (LDK nodes, a channel the payer funded), each
 * node answering the wallet APIs of LND, Core Lightning, phoenixd, LNbits and NWC on loopback. It prints
 * where they listen and their credentials, writes `$L402_HOME/devnet.json` so other l402 commands find
 * the devnet wallet without flags, and runs until SIGINT or SIGTERM, then shuts down cleanly.
 */
import { Devnet } from '@l402/devnet';
import type { Command } from 'commander';
import { type Run, UsageError, untilSignal } from './cli.js';

/** Node names for `--nodes N`: the merchant first, then the payer, then numbered nodes. */
export function nodeNames(count: number): string[] {
  return Array.from({ length: count }, (_, i) => (i === 0 ? 'merchant' : i === 1 ? 'payer' : `node${i + 1}`));
}

function describe(doc: Devnet.Document, file: string | undefined): string {
  const lines = [`devnet running: regtest, ${Object.keys(doc.nodes).length} node(s), relay ${doc.relay}`];
  if (file !== undefined) lines.push(`wrote ${file}`);
  for (const [name, n] of Object.entries(doc.nodes)) {
    lines.push(
      '',
      `${name}  ${n.nodeId}`,
      `  lnd       ${n.lnd.url}  cert ${n.lnd.certPath}`,
      `            macaroon ${n.lnd.macaroon}`,
      `  cln       ${n.cln.url}  rune ${n.cln.rune}`,
      `  phoenixd  ${n.phoenixd.url}  password ${n.phoenixd.password}`,
      `  lnbits    ${n.lnbits.url}  admin key ${n.lnbits.adminKey}  invoice key ${n.lnbits.invoiceKey}`,
      `  nwc       ${n.nwc.uri}`,
      `  wallet URIs (for --wallet):`,
      ...Object.entries(n.uris).map(([kind, uri]) => `    ${kind.padEnd(9)}${uri}`),
    );
  }
  lines.push('', 'Ctrl-C stops it.');
  return `${lines.join('\n')}\n`;
}

/**
 * Adds `l402 devnet` to the program.
 *
 * @example
 * registerDevnet(program, run); // l402 devnet --nodes 2 --json
 */
export function registerDevnet(program: Command, run: Run): void {
  program
    .command('devnet')
    .description(
      'run a real Lightning network in this process, with the wallet APIs of LND, CLN, phoenixd, LNbits and NWC',
    )
    .option('--nodes <n>', 'number of nodes (merchant, payer, node3, …)', '2')
    .option('--json', 'print the devnet document as JSON on stdout')
    .option('--home <dir>', 'where devnet.json goes (default $L402_HOME or ~/.l402)')
    .option('--transport <kind>', 'how nodes talk: memory or tcp', 'memory')
    .action(async (options: { nodes: string; json?: boolean; home?: string; transport: string }) => {
      if (!/^\d{1,2}$/.test(options.nodes) || Number(options.nodes) < 1 || Number(options.nodes) > 16) {
        throw new UsageError(`--nodes must be a whole number from 1 to 16, got "${options.nodes}"`);
      }
      if (options.transport !== 'memory' && options.transport !== 'tcp') {
        throw new UsageError(`--transport must be memory or tcp, got "${options.transport}"`);
      }
      const stop = untilSignal();
      const devnet = await Devnet.start({
        nodes: nodeNames(Number(options.nodes)),
        transport: options.transport,
        ...(options.home !== undefined ? { home: options.home } : {}),
      });
      try {
        run.io.stdout(
          options.json ? `${JSON.stringify(devnet.document)}\n` : describe(devnet.document, devnet.file),
        );
        const signal = await stop;
        if (!options.json) run.io.stderr(`l402: ${signal}: stopping the devnet\n`);
      } finally {
        await devnet.close();
      }
    });
}
