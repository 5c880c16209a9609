import fs from 'node:fs';
import path from 'node:path';
import { PathError, UsageError, describeFsError } from '../core/errors.js';
import { compressionFormatOfName, type CompressionFormat } from '../pipeline/compress/format.js';
import { isUnder } from '../import/plan.js';

/** `--format` names. */
export const FORMATS: Record<string, CompressionFormat> = { tgz: 'gzip', tzst: 'zstd', tar: 'none' };
const DEFAULT_SUFFIX: Record<CompressionFormat, string> = { gzip: '.tgz', zstd: '.tzst', none: '.tar' };

export interface Destination {
  /** 'file' (local path), 'stdout', or 'remote' (path on the remote host). */
  kind: 'file' | 'stdout' | 'remote';
  path: string;
  format: CompressionFormat;
}

/**
 * Where the bundle goes and how it is compressed: --format, else DEST's suffix, else gzip.
 * No DEST: IMAGE.tgz in the current directory. Unlike xCAT, a directory in DEST is honoured: an
 * existing directory (`destIsDirectory`, local or on the remote host) or a name ending in `/`
 * receives IMAGE.EXT.
 */
export function resolveDestination(dirName: string, dest: string | undefined, formatOption: string | undefined,
  remote: boolean, destIsDirectory = false): Destination {
  let format: CompressionFormat | undefined;
  if (formatOption !== undefined) {
    format = FORMATS[formatOption];
    if (!format) throw new UsageError(`--format must be one of ${Object.keys(FORMATS).join(', ')}, not '${formatOption}'`);
  }
  if (dest === '') throw new UsageError('the destination is an empty string');
  if (dest === '-') {
    if (remote) throw new UsageError('standard output (-) cannot be combined with -R');
    return { kind: 'stdout', path: '-', format: format ?? 'gzip' };
  }
  const isDir = dest !== undefined && (dest.endsWith('/') || destIsDirectory);
  const chosen = format ?? (dest && !isDir ? compressionFormatOfName(dest) : undefined) ?? 'gzip';
  const fileName = `${dirName}${DEFAULT_SUFFIX[chosen]}`;
  const target = dest === undefined ? fileName : isDir ? path.join(dest, fileName) : dest;
  return { kind: remote ? 'remote' : 'file', path: remote ? target : path.resolve(target), format: chosen };
}

/** Whether DEST names an existing local directory. */
export function isLocalDirectory(dest: string | undefined): boolean {
  if (dest === undefined || dest === '-') return false;
  try {
    return fs.statSync(dest, { throwIfNoEntry: false })?.isDirectory() === true;
  } catch (err) {
    throw new PathError(`cannot use ${dest}: ${describeFsError(err)}`, dest); // a loop of links, say
  }
}

/**
 * Refuses a bundle file that would lie inside a directory it archives (`trees`, real paths): the
 * walk would meet the bundle being written and fail on a file that keeps changing size.
 */
export function refuseDestinationInsideTrees(bundlePath: string, trees: string[]): void {
  const dir = realDirectory(path.dirname(bundlePath));
  for (const tree of trees) {
    if (isUnder(dir, realDirectory(tree))) {
      throw new PathError(`cannot write the bundle to ${bundlePath}: it would be inside ${tree}, which the bundle archives; write it elsewhere`, bundlePath);
    }
  }
}

/** A directory's real path, or the path as given when it cannot be resolved (the write will say why). */
function realDirectory(dir: string): string {
  try {
    return fs.realpathSync(dir);
  } catch {
    return path.resolve(dir);
  }
}
