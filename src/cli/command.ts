import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ImgportError, InterruptedError, UsageError, describeFsError } from '../core/errors.js';
import { isCommitted, runCleanups } from '../core/cleanup.js';

export type OptionSpec = NonNullable<ParseArgsConfig['options']>;
export type ParsedValues = Record<string, string | boolean | (string | boolean)[] | undefined>;

/** Options every command takes. */
export const COMMON_OPTIONS: OptionSpec = {
  help: { type: 'boolean', short: 'h' },
  root: { type: 'string' },
  db: { type: 'string' },
};

export interface CommandSpec {
  /** Usage text printed by -h and after a usage error. */
  usage: string;
  options: OptionSpec;
  /** Runs the command; resolves to the exit code (0 when omitted). */
  run(values: ParsedValues, positionals: string[]): Promise<number | void>;
}

/** Parses argv against a spec; unknown options and bad values become UsageErrors. */
export function parseCommandLine(spec: CommandSpec, argv: string[]): { values: ParsedValues; positionals: string[] } {
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      options: { ...COMMON_OPTIONS, ...spec.options },
      allowPositionals: true,
      strict: true,
    });
    return { values: values as ParsedValues, positionals };
  } catch (err) {
    throw new UsageError((err as Error).message.replace(/\. To specify a positional argument.*$/s, ''));
  }
}

/** Prints an error as `Error: ...` (and the usage for usage errors); returns the exit code. */
export function reportError(err: unknown, usage: string): number {
  if (err instanceof UsageError) {
    process.stderr.write(`Error: ${err.message}\n${usage}`);
  } else if (err instanceof ImgportError) {
    process.stderr.write(`Error: ${err.message}\n`);
  } else {
    process.stderr.write(`Error: ${(err as Error)?.stack ?? String(err)}\n`);
  }
  return 1;
}

let signalsInstalled = false;
/**
 * Set once a signal's handler, or a failure of standard output, runs the cleanups and exits: from
 * then on it alone says what happened, and the work failing on its way out waits for that exit.
 */
let exitTakenOver = false;
/** How long an interrupted command's cleanups may take (removing a staged tree of GBs takes seconds). */
const CLEANUP_LIMIT_S = 60;

/**
 * Takes the exit over from the work (see exitTakenOver): runs the cleanups, then `finish`, which
 * says what happened and exits 1. A running timer keeps the event loop alive until then: a cleanup
 * waiting for a stream that will never settle must not let the process end quietly with status 0.
 */
function exitAfterCleanups(why: string, finish: () => void): void {
  if (exitTakenOver) return;
  exitTakenOver = true;
  setTimeout(() => {
    process.stderr.write(`Error: ${why}; its cleanup did not end within ${CLEANUP_LIMIT_S} s: the next run removes what is left (imgport recover, for an import)\n`);
    process.exit(1);
  }, CLEANUP_LIMIT_S * 1000);
  void runCleanups().finally(finish);
}

/**
 * SIGINT, SIGTERM, SIGHUP (the terminal or ssh session closed): run the cleanups, say so, exit 1.
 * The handlers stay: a second Ctrl-C while an import puts the old image back would otherwise
 * end the process at once (Node's default action) and leave the image half replaced.
 */
function installSignalHandlers(): void {
  if (signalsInstalled) return;
  signalsInstalled = true;
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => {
      if (exitTakenOver) {
        process.stderr.write(`${signal} again: still cleaning up, which stops by itself within ${CLEANUP_LIMIT_S} s\n`);
        return;
      }
      const why = new InterruptedError(signal).message;
      exitAfterCleanups(why, () => {
        const outcome = isCommitted() ? 'after its result was complete and in place' : 'nothing was changed';
        process.stderr.write(`Error: ${why}; ${outcome}\n`);
        process.exit(1);
      });
    });
  }
}

/** Runs one command from argv to exit code, cleaning up after any failure. */
export async function runCommand(spec: CommandSpec, argv: string[] = process.argv.slice(2)): Promise<never> {
  installSignalHandlers();
  // A reader that stops early (`lsdef | head`, a dead pipe after `imgexport IMAGE -`): no stack trace;
  // exit non-zero as a program killed by SIGPIPE would, after removing anything half-written.
  // Any other failure (a full disk under `> FILE`) is said, naming it.
  let stdoutFailed = false;
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE' && !stdoutFailed) process.stderr.write(`Error: cannot write standard output: ${describeFsError(err)}\n`);
    stdoutFailed = true;
    exitAfterCleanups('cannot write standard output', () => process.exit(1));
  });
  let code: number;
  try {
    const { values, positionals } = parseCommandLine(spec, argv);
    if (values.help) {
      process.stdout.write(spec.usage);
      code = 0;
    } else {
      code = (await spec.run(values, positionals)) ?? 0;
    }
  } catch (err) {
    // The cleanups of an interrupt (the compressor threads stopped, the output removed) make the
    // work fail on its way out: that failure is the interrupt's, which its handler reports.
    if (exitTakenOver) return new Promise<never>(() => undefined);
    await runCleanups();
    code = reportError(err, spec.usage);
  }
  // Let stdout drain (a pipe reader may be slow) before exiting.
  await new Promise<void>((resolve) => process.stdout.write('', () => resolve()));
  // What was said on standard output is what the command did (a stanza file, a bundle): lost, it failed.
  process.exit(stdoutFailed ? 1 : code);
}

/** A string option's value, or undefined. */
export function stringOption(values: ParsedValues, name: string): string | undefined {
  const v = values[name];
  return typeof v === 'string' ? v : undefined;
}

/** A repeatable string option's values. */
export function listOption(values: ParsedValues, name: string): string[] {
  const v = values[name];
  if (v === undefined) return [];
  return (Array.isArray(v) ? v : [v]).filter((x): x is string => typeof x === 'string');
}

/** A positive integer option, or the fallback. */
export function intOption(values: ParsedValues, name: string, fallback: number, min = 1, max = Number.MAX_SAFE_INTEGER): number {
  const raw = stringOption(values, name);
  if (raw === undefined) return fallback;
  // Decimal digits only: Number() would read '' as 0 and take '0x3', '9e0' or ' 3'.
  const n = /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`--${name} must be an integer from ${min} to ${max}, not '${raw}'`);
  return n;
}
