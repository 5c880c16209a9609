#!/usr/bin/env -S MALLOC_ARENA_MAX=1 MALLOC_MMAP_THRESHOLD_=4194304 MALLOC_TRIM_THRESHOLD_=16777216 node --max-semi-space-size=1
// Memory settings, measured (README, "How it is built"): a 1 MiB young generation frees file data soon after use;
// glibc keeps freed MiB-sized buffers for reuse instead of faulting fresh pages in for every chunk read.
import os from 'node:os';
import { UsageError } from '../core/errors.js';
import { contextFrom, locationsFrom } from '../core/context.js';
import { bundleDirName, planExport, treeSources } from '../export/plan.js';
import { generatedMtime, writeBundle } from '../export/bundle.js';
import { isLocalDirectory, refuseDestinationInsideTrees, resolveDestination } from '../export/destination.js';
import { createFileSink, createSshSink, createStdoutSink, remoteIsDirectory, whereLinkLeads, type Sink } from '../pipeline/sink.js';
import { formatBytes } from '../pipeline/progress.js';
import { refuseInterruptedImage } from '../import/transaction.js';
import { intOption, listOption, runCommand, stringOption } from './command.js';
import { activeRows } from '../tables/types.js';

const USAGE = `imgexport: Creates a tarball (bundle) of an existing xCAT image
Usage:
\timgexport [-h|--help]
\timgexport <image_name> [destination] [[-e|--extra <file:dir> ] ... ] [-p|--postscripts <node_name>] [-R|--remotehost <userid@host>] [-v]
Further options:
\t--format tgz|tzst|tar   compression (default: from destination's suffix, else tgz)
\t-j, --threads N         compression threads (default: number of cores)
\t--level N               compression level (gzip 1-9, default 6; zstd 1-9, default 3)
\t--progress, --no-progress  progress line on standard error (default: when it is a terminal)
\t--root DIR, --db FILE   sandbox prefix and table file
\tdestination '-' writes the bundle to standard output; a directory receives <image_name>.tgz\n\t(.tzst or .tar with --format tzst or tar)
`;

await runCommand({
  usage: USAGE,
  options: {
    extra: { type: 'string', short: 'e', multiple: true },
    postscripts: { type: 'string', short: 'p' },
    remotehost: { type: 'string', short: 'R' },
    verbose: { type: 'boolean', short: 'v' },
    format: { type: 'string' },
    threads: { type: 'string', short: 'j' },
    level: { type: 'string' },
    progress: { type: 'boolean' },
    'no-progress': { type: 'boolean' },
  },
  async run(values, positionals) {
    const [imagename, dest, ...rest] = positionals;
    if (!imagename) throw new UsageError('missing image name');
    if (rest.length) throw new UsageError(`unexpected argument '${rest[0]}'`);
    const remote = stringOption(values, 'remotehost');
    const threads = intOption(values, 'threads', os.availableParallelism(), 1, 256);
    const level = values.level === undefined ? undefined : intOption(values, 'level', 0, 1, 9);
    const ctx = contextFrom(values);
    // Disabled rows are commented out: xCAT's export never sees them.
    const tables = activeRows(await ctx.store.read());
    const loc = locationsFrom(ctx, tables);
    // `-` never names a remote path: resolveDestination refuses it before anything asks the host.
    const destIsDirectory = remote !== undefined
      ? dest !== undefined && dest !== '-' && !dest.endsWith('/') && (await remoteIsDirectory(remote, dest))
      : isLocalDirectory(dest);
    const destination = resolveDestination(bundleDirName(imagename), dest, stringOption(values, 'format'), remote !== undefined, destIsDirectory);
    // As tar and zstd refuse: compressed bytes on a terminal help no one.
    if (destination.kind === 'stdout' && process.stdout.isTTY) throw new UsageError('refusing to write the bundle to a terminal: redirect standard output to a file or a pipe');
    // With the bundle on standard output, everything said goes to standard error.
    const say = (line: string): void => void (destination.kind === 'stdout' ? process.stderr : process.stdout).write(`${line}\n`);

    say(`Exporting ${imagename} to ${remote ? `${remote}:${destination.path}` : destination.kind === 'stdout' ? 'standard output' : destination.path}...`);
    await refuseInterruptedImage(ctx.sandbox, imagename, 'export');
    const plan = planExport(tables, loc, { imagename, extras: listOption(values, 'extra'), postscriptsNode: stringOption(values, 'postscripts') });
    plan.messages.forEach(say);
    // A DEST that is a link is written through, as tar czf writes it (packimage replaces its link, as xCAT's does).
    const bundleFile = destination.kind === 'file' ? whereLinkLeads(destination.path) : undefined;
    if (bundleFile) refuseDestinationInsideTrees(bundleFile, treeSources(plan).map((p) => loc.sandbox.real(p)));
    const sink: Sink = destination.kind === 'stdout' ? createStdoutSink()
      : destination.kind === 'remote' ? createSshSink(remote!, destination.path)
      : createFileSink(bundleFile!);
    say(`Compressing ${plan.dirName} bundle.  Please be patient.`);
    const started = Date.now();
    try {
      const stats = await writeBundle(plan, loc, sink, {
        format: destination.format,
        threads,
        level,
        mtime: generatedMtime(),
        progress: values['no-progress'] ? false : values.progress ? true : process.stderr.isTTY === true,
        onWarning: (message) => process.stderr.write(`Warning: ${message}\n`),
      });
      await sink.commit();
      if (values.verbose) {
        const seconds = (Date.now() - started) / 1000;
        say(`${stats.members} files, ${formatBytes(stats.bytesIn)} archived into ${formatBytes(stats.bytesOut)} (${formatBytes(stats.storedBytes)} stored as is) in ${seconds.toFixed(1)} s with ${threads} thread${threads === 1 ? '' : 's'}: ${sink.description}`);
      }
    } catch (err) {
      await sink.abort();
      throw err;
    }
    say('Done!');
  },
});
