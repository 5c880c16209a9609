import { readFileSync } from 'node:fs';
import os from 'node:os';
import { ImageError, UsageError } from '../core/errors.js';
import { contextFrom, locationsFrom } from '../core/context.js';
import { packageFileUrl } from '../core/package-files.js';
import { formatBytes } from '../pipeline/progress.js';
import { intOption, stringOption, type CommandSpec, type ParsedValues } from '../cli/command.js';
import { withThreadsStarted } from '../pipeline/compress/index.js';
import { checkLevel, ownCompression, parseCompressor, parseMethod } from './formats.js';
import { packTargetOf } from './target.js';
import { refuseInterruptedImage } from '../import/transaction.js';
import { packImage, type PackOptions } from './pack.js';
import { activeRows } from '../tables/types.js';

const USAGE = `Usage:
   packimage [-m| --method=cpio|tar|squashfs] [-c| --compress=gzip|pigz|xz|zstd] [--nosyncfiles] <imagename>
   packimage [-h| --help]
   packimage [-v| --version]
Options of imgport:
   -j, --threads N         compression threads (default: number of cores)
   --level N               compression level (gzip 1-9, default 6; zstd 1-9, default 3; xz 0-9, default 6)
   --progress, --no-progress  progress line on standard error (default: when it is a terminal)
   --verbose               say more about what is packed
   --root DIR, --db FILE   sandbox prefix and table file
   gzip and pigz both use the built-in parallel gzip; xz and squashfs need the xz and mksquashfs programs.
`;

/** xCAT's refusal of the options that named an image by its parts. */
export const OBSOLETE_OPTIONS_MESSAGE = "-o, -p and -a options are obsoleted, please use 'packimage <osimage name>' instead.";
export const MISSING_IMAGE_MESSAGE = "An image name is required, use 'packimage <osimage name>'.";

function version(): string {
  const pkg = JSON.parse(readFileSync(packageFileUrl('package.json'), 'utf8')) as { version: string };
  return `packimage (imgport) ${pkg.version}`;
}

export const packimageCommand: CommandSpec = {
  usage: USAGE,
  options: {
    method: { type: 'string', short: 'm' },
    compress: { type: 'string', short: 'c' },
    nosyncfiles: { type: 'boolean' },
    version: { type: 'boolean', short: 'v' },
    threads: { type: 'string', short: 'j' },
    level: { type: 'string' },
    progress: { type: 'boolean' },
    'no-progress': { type: 'boolean' },
    verbose: { type: 'boolean' },
    // Obsolete in xCAT: accepted only to be refused with xCAT's message.
    osver: { type: 'string', short: 'o' },
    profile: { type: 'string', short: 'p' },
    arch: { type: 'string', short: 'a' },
  },
  async run(values, positionals) {
    if (values.osver !== undefined || values.profile !== undefined || values.arch !== undefined) throw new ImageError(OBSOLETE_OPTIONS_MESSAGE);
    if (values.version) {
      process.stdout.write(`${version()}\n`);
      return 0;
    }
    const [imagename, ...rest] = positionals;
    if (!imagename) throw new UsageError(MISSING_IMAGE_MESSAGE);
    if (rest.length) throw new UsageError(`unexpected argument '${rest[0]}'`);
    const method = parseMethod(stringOption(values, 'method'));
    const compressor = parseCompressor(stringOption(values, 'compress'));
    const threads = intOption(values, 'threads', os.availableParallelism(), 1, 256);
    const level = checkLevel(values.level === undefined ? undefined : intOption(values, 'level', 0, 0, 22), method, compressor ?? 'gzip');

    // Our compressors' threads come up while the tables are read and the tree surveyed.
    return withThreadsStarted(threads, ownCompression(method, compressor), () => pack(values, imagename, { method, compressor, threads, level }));
  },
};

/** Finds the image in the tables, packs its tree and reports what was packed. */
async function pack(values: ParsedValues, imagename: string, how: Pick<PackOptions, 'method' | 'compressor' | 'threads' | 'level'>): Promise<number> {
  const ctx = contextFrom(values);
  const tables = activeRows(await ctx.store.read());
  const target = packTargetOf(tables, imagename, locationsFrom(ctx, tables).installdir);
  await refuseInterruptedImage(ctx.sandbox, imagename, 'pack');
  const say = (line: string): void => void process.stdout.write(`${line}\n`);
  const detail = values.verbose ? say : () => {};
  // We never sync files into the tree (it is only read), with or without --nosyncfiles.
  detail(
    values.nosyncfiles
      ? 'Bypass of syncfiles requested, will not sync files to root image directory.'
      : 'syncfiles: not run (packimage only reads the root image directory; sync files with xdcp -i beforehand)',
  );
  detail(`threads: ${how.threads}`);
  const started = Date.now();
  const result = await packImage(target, ctx.sandbox, {
    ...how,
    progress: values['no-progress'] ? false : values.progress ? true : process.stderr.isTTY === true,
    say,
    detail,
    warn: (message) => void process.stderr.write(`Warning: ${message}\n`),
  });
  const seconds = (Date.now() - started) / 1000;
  const stored = result.storedBytes === undefined ? '' : `, ${formatBytes(result.storedBytes)} of it stored as is`;
  say(
    `Packed ${result.entries} entries (${formatBytes(result.fileBytes)} of file data) into ${result.file} (${formatBytes(result.archiveBytes)}${stored}) in ${seconds.toFixed(1)} s`,
  );
  return 0;
}
