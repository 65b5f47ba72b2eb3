/**
 * `l402 token`: decode, mint, attenuate and verify L402 macaroons from the command line, on top of the
 * library's `Macaroon`, `Identifier`, `Caveat` and `Token` modules.
 *
 * @example
 * l402 token mint --root-key <hex> --payment-hash <hex> --caveat services=api:0
 * l402 token verify <token> --root-key <hex> --preimage <hex> --service api
 */
import type { Command } from 'commander';
import { Caveat, Errors, Identifier, Macaroon, Token } from 'l402';
import { hexBytes, type Run, repeatable, UsageError, unixSeconds } from './cli.js';

const KEY_BYTES = 32;
const HEX_TOKEN = /^(?:[0-9a-fA-F]{2})+$/;

/**
 * Reads a macaroon given as base64 (either alphabet, padded or not), hex, or V2 JSON. Text that is all
 * hex digits is tried as hex first, then as base64, because a few base64 strings are also valid hex;
 * when both fail, the hex error is the one that describes what the user meant.
 *
 * @example
 * readToken('AgEEbHNhdAJC…'); // the same macaroon as readToken('0201046c736174…')
 */
function readToken(text: string): Macaroon.Macaroon {
  const trimmed = text.trim();
  if (/^(?:L402|LSAT)\s/i.test(trimmed)) {
    throw new UsageError(
      'token must be the macaroon alone; pass the preimage of a credential with --preimage',
    );
  }
  if (!HEX_TOKEN.test(trimmed)) return Macaroon.decode(trimmed);
  try {
    return Macaroon.fromHex(trimmed);
  } catch (hexError) {
    try {
      return Macaroon.decode(trimmed);
    } catch {
      throw hexError;
    }
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
const hex = (bytes: Uint8Array) =>
  Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');

/** Caveat ids are text in practice; the rare binary one is shown as `idHex` so no reader mistakes hex for text. */
function caveatId(id: Uint8Array): { id: string } | { idHex: string } {
  try {
    return { id: utf8.decode(id) };
  } catch {
    return { idHex: hex(id) };
  }
}

/** A macaroon's `token decode` view. */
interface Decoded {
  readonly location: string;
  readonly identifier:
    | ReturnType<typeof Identifier.toJSON>
    | { readonly raw: string; readonly error: string };
  readonly caveats: readonly (string | Record<string, string>)[];
  readonly signature: string;
}

/**
 * What `l402 token decode` prints. An identifier that is not L402 v0 is shown raw with the reason, so any
 * macaroon can be inspected. First-party caveats are strings; third-party caveats are objects, each in
 * its place in the chain.
 *
 * @example
 * describeToken(mac).identifier; // { version: 0, paymentHash: '…', tokenId: '…' }
 */
function describeToken(mac: Macaroon.Macaroon): Decoded {
  let identifier: Decoded['identifier'];
  try {
    identifier = Identifier.toJSON(Identifier.decode(mac.identifier));
  } catch (error) {
    if (!(error instanceof Errors.L402Error)) throw error;
    identifier = { raw: hex(mac.identifier), error: error.message };
  }
  const caveats = mac.caveats.map((c) => {
    const id = caveatId(c.id);
    if (c.verificationId !== undefined && c.verificationId.length > 0) {
      return { ...id, location: c.location ?? '', verificationId: hex(c.verificationId) };
    }
    return 'id' in id ? id.id : id;
  });
  return { location: mac.location, identifier, caveats, signature: hex(mac.signature) };
}

/** Each `--caveat` checked to be `key=value` before it is signed into a token. */
function caveatsOf(list: readonly string[]): string[] {
  for (const text of list) Caveat.parse(text);
  return [...list];
}

interface MintOptions {
  rootKey: string;
  paymentHash: string;
  tokenId?: string;
  location: string;
  caveat?: string[];
}

interface VerifyOptions {
  rootKey: string;
  preimage?: string;
  service?: string;
  capability?: string[];
  now?: string;
  strict?: boolean;
}

/**
 * Adds the `token` command group to `program`.
 *
 * @example
 * registerToken(program, run);
 */
export function registerToken(program: Command, run: Run): void {
  const out = (line: string) => run.io.stdout(`${line}\n`);
  const token = program.command('token').description('decode, mint, attenuate and verify L402 tokens');

  token
    .command('decode')
    .description('print a token as JSON: location, identifier, caveats, signature')
    .argument('<token>', 'macaroon as base64 (standard or URL-safe), hex or V2 JSON')
    .action((text: string) => {
      out(JSON.stringify(describeToken(readToken(text)), null, 2));
    });

  token
    .command('mint')
    .description('mint a token (prints standard base64 of the V2 macaroon)')
    .requiredOption('--root-key <hex>', 'secret root key, 32 bytes')
    .requiredOption('--payment-hash <hex>', 'payment hash of the invoice, 32 bytes')
    .option('--token-id <hex>', 'token id, 32 bytes (default: random)')
    .option('--location <location>', 'macaroon location', 'lsat')
    .option('--caveat <key=value>', 'first-party caveat (repeatable)', repeatable)
    .action((options: MintOptions) => {
      const { macaroon } = Token.mint({
        rootKey: hexBytes(options.rootKey, '--root-key', KEY_BYTES),
        paymentHash: hexBytes(options.paymentHash, '--payment-hash', KEY_BYTES),
        ...(options.tokenId !== undefined
          ? { tokenId: hexBytes(options.tokenId, '--token-id', KEY_BYTES) }
          : {}),
        location: options.location,
        caveats: caveatsOf(options.caveat ?? []),
      });
      out(Macaroon.toBase64(macaroon));
    });

  token
    .command('attenuate')
    .description('narrow a token with more caveats (no root key needed)')
    .argument('<token>', 'macaroon as base64, hex or V2 JSON')
    .requiredOption('--caveat <key=value>', 'first-party caveat to add (repeatable)', repeatable)
    .action((text: string, options: { caveat: string[] }) => {
      const mac = readToken(text);
      out(Macaroon.toBase64(Macaroon.addFirstPartyCaveat(mac, ...caveatsOf(options.caveat))));
    });

  token
    .command('verify')
    .description('check a token: prints "valid" (exit 0) or "invalid: <why> (<code>)" (exit 1)')
    .argument('<token>', 'macaroon as base64, hex or V2 JSON')
    .requiredOption('--root-key <hex>', 'root key the token was minted with, 32 bytes')
    .option('--preimage <hex>', 'payment preimage, 32 bytes (checked against the payment hash)')
    .option('--service <name>', 'service the request targets')
    .option('--capability <name>', 'capability of --service the request needs (repeatable)', repeatable)
    .option('--now <unix>', 'time of the request in unix seconds (default: now)')
    .option('--strict', 'refuse caveats no verifier understands')
    .action((text: string, options: VerifyOptions) => {
      const rootKey = hexBytes(options.rootKey, '--root-key', KEY_BYTES);
      const preimage =
        options.preimage === undefined ? undefined : hexBytes(options.preimage, '--preimage', KEY_BYTES);
      const now = options.now === undefined ? undefined : unixSeconds(options.now, '--now');
      const capabilities = options.capability;
      // Capability caveats are per service: without one, nothing would be checked and "valid" would mislead.
      if (capabilities !== undefined && options.service === undefined) {
        throw new UsageError('--capability needs --service (capabilities are granted per service)');
      }
      const mac = readToken(text);
      try {
        Token.verify(mac, {
          rootKey,
          preimage,
          strict: options.strict === true,
          // `now` is left out, not undefined, when not given: Token.verify defaults only a missing one.
          context: {
            service: options.service,
            capabilities,
            ...(now !== undefined ? { now } : {}),
          },
        });
      } catch (error) {
        if (!(error instanceof Errors.L402Error)) throw error;
        out(`invalid: ${error.message} (${error.code})`);
        run.exitCode = 1;
        return;
      }
      out('valid');
    });
}
