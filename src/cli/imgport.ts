#!/usr/bin/env -S MALLOC_ARENA_MAX=1 MALLOC_MMAP_THRESHOLD_=4194304 MALLOC_TRIM_THRESHOLD_=16777216 node --max-semi-space-size=1 --expose-gc
// Memory settings, measured (README, "How it is built"): a 1 MiB young generation frees file data soon after use;
// glibc keeps freed MiB-sized buffers for reuse instead of faulting fresh pages in for every chunk read.
import { UsageError } from '../core/errors.js';
import { reportError, runCommand, type CommandSpec } from './command.js';

/** Subcommands, loaded on demand so each one starts only what it needs. */
const SUBCOMMANDS: Record<string, () => Promise<CommandSpec>> = {
  mkdef: async () => (await import('./defs.js')).mkdefCommand,
  chdef: async () => (await import('./defs.js')).chdefCommand,
  rmdef: async () => (await import('./defs.js')).rmdefCommand,
  lsdef: async () => (await import('./defs.js')).lsdefCommand,
  tabdump: async () => (await import('./defs.js')).tabdumpCommand,
  chtab: async () => (await import('./defs.js')).chtabCommand,
  verify: async () => (await import('./bundle-tools.js')).verifyCommand,
  inspect: async () => (await import('./bundle-tools.js')).inspectCommand,
  recover: async () => (await import('./recover.js')).recoverCommand,
};

const USAGE = `Usage: imgport SUBCOMMAND [options]   (imgport SUBCOMMAND -h for its options)
Subcommands: ${Object.keys(SUBCOMMANDS).join(', ')}
Common options: --root DIR (sandbox prefix), --db FILE (table file)
`;

const [name, ...rest] = process.argv.slice(2);
if (name === '-h' || name === '--help') {
  process.stdout.write(USAGE);
} else if (!name || !Object.hasOwn(SUBCOMMANDS, name)) {
  process.exitCode = reportError(new UsageError(name ? `unknown subcommand '${name}'` : 'missing subcommand'), USAGE);
} else {
  await runCommand(await SUBCOMMANDS[name](), rest);
}
