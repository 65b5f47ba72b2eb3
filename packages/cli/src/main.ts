/**
 * The `l402` program: one commander tree that each subcommand group registers into. `main` never exits
 * the process and never lets a stack trace reach the user; it returns the exit code:
 * 0 done, 1 a negative answer (`token verify` said invalid), 2 bad input, 70 an internal error; `get` and
 * `wallet pay` add 3 HTTP error, 4 payment refused, 5 payment failed, 6 network error (see exit.ts).
 *
 * @example
 * process.exitCode = await main(process.argv.slice(2));
 */
import { readFileSync } from 'node:fs';
import { type AddHelpTextContext, Command, CommanderError } from 'commander';
import { Errors } from 'l402';
import { type Io, type Run, UsageError } from './cli.js';
import { registerConfig } from './config.js';
import { registerGet } from './get.js';
import { registerToken } from './token.js';
import { registerTokens } from './tokens.js';
import { registerBudget, registerWallet } from './wallet.js';

/** Exit code for bad input, as commander and most Unix tools use. */
const EXIT_USAGE = 2;
/** sysexits.h EX_SOFTWARE: the program, not the input, is at fault. */
const EXIT_INTERNAL = 70;

const processIo: Io = {
  stdout: (s) => process.stdout.write(s),
  stderr: (s) => process.stderr.write(s),
  stderrTTY: process.stderr.isTTY === true,
  stdoutBytes: (bytes) => {
    if (!watchingStdout) {
      watchingStdout = true;
      // A reader that went away (`l402 get … | head`) ends the output, as for any Unix filter.
      process.stdout.on('error', (e: NodeJS.ErrnoException) => {
        if (e.code !== 'EPIPE') throw e;
        stdoutGone = true;
      });
    }
    if (stdoutGone) return Promise.resolve();
    return new Promise((resolve, reject) =>
      process.stdout.write(bytes, (e) => {
        if (e && (e as NodeJS.ErrnoException).code !== 'EPIPE') reject(e);
        else resolve();
      }),
    );
  },
};
let watchingStdout = false;
let stdoutGone = false;

// Read at run time: the same relative path holds from src/ (tests) and dist/ (the installed bin).
const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

/** Error text always becomes one line, so scripts can read stderr line by line even when input had newlines. */
const oneLine = (message: string) => message.replace(/\s*[\r\n]+\s*/g, ' ').trim();

/**
 * Runs the `l402` command line (`argv` without the node and script paths) and returns the exit code.
 *
 * @example
 * const code = await main(['token', 'decode', token], { stdout: (s) => out.push(s), stderr: (s) => err.push(s) });
 */
export async function main(argv: string[], io: Io = processIo): Promise<number> {
  const run: Run = { io, exitCode: 0 };
  const fail = (code: number, message: string) => {
    io.stderr(`l402: ${oneLine(message)}\n`);
    return code;
  };
  // Commander shows a group's help as an error when its subcommand is missing (or `help <name>` names none);
  // we say so in one line instead.
  let missingCommandOf: Command | undefined;

  const program = new Command('l402')
    .description('L402 (Lightning HTTP 402) tokens and tools')
    .version(version)
    .exitOverride()
    .configureOutput({
      writeOut: io.stdout,
      // Commander writes to stderr only for errors and for help shown in place of an error; the catch
      // below turns both into a single line.
      writeErr: () => {},
      outputError: () => {},
    })
    .on('beforeAllHelp', (context: AddHelpTextContext) => {
      if (context.error) missingCommandOf = context.command;
    });
  registerToken(program, run);
  // The devnet, the gateway and the MCP SDK weigh 3x the rest to load: commands that need none of them
  // start without them.
  if (!LIGHT.has(argv[0] ?? '')) {
    const [{ registerDevnet }, { registerGateway }, { registerAdmin }, { registerMcp }] = await Promise.all([
      import('./devnet.js'),
      import('./gateway.js'),
      import('./admin.js'),
      import('./mcp.js'),
    ]);
    registerDevnet(program, run);
    registerGateway(program, run);
    registerAdmin(program, run);
    registerMcp(program, run, version);
  }
  registerGet(program, run);
  registerTokens(program, run);
  registerWallet(program, run);
  registerBudget(program, run);
  registerConfig(program, run);

  try {
    await program.parseAsync(argv, { from: 'user' });
    return run.exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (missingCommandOf !== undefined) return fail(EXIT_USAGE, missingCommand(missingCommandOf));
      if (DONE.has(error.code)) return 0;
      return fail(EXIT_USAGE, error.message.replace(/^error: /, ''));
    }
    if (error instanceof UsageError || error instanceof Errors.L402Error)
      return fail(EXIT_USAGE, error.message);
    return fail(EXIT_INTERNAL, `internal error: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/** Commands that load neither the devnet nor the gateway (`l402 get` runs often, in scripts). */
const LIGHT = new Set(['token', 'get', 'tokens', 'wallet', 'budget', 'config']);

/** Commander "errors" that are really a finished job: help or the version was printed as asked. */
const DONE = new Set(['commander.helpDisplayed', 'commander.help', 'commander.version']);

/** Why `group` showed its help as an error: no subcommand given, or `help <name>` naming none. */
function missingCommand(group: Command): string {
  const path: string[] = [];
  for (let c: Command | null = group; c?.parent; c = c.parent) path.unshift(c.name());
  const asked = group.args.length > 0 ? group.args[group.args.length - 1] : undefined;
  const what =
    asked !== undefined
      ? `unknown command '${asked}'`
      : `missing command${path.length > 0 ? ` after '${path.join(' ')}'` : ''}`;
  const names = group.commands.map((c) => c.name());
  return `${what}: one of ${names.join(', ')} (see '${['l402', ...path].join(' ')} --help')`;
}
