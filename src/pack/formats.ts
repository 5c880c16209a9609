import { UsageError } from '../core/errors.js';
import { resolveSettings } from '../pipeline/compress/index.js';

/** How the tree is archived (`-m`). */
export const PACK_METHODS = ['cpio', 'tar', 'squashfs'] as const;
export type PackMethod = (typeof PACK_METHODS)[number];

/** How the archive is compressed (`-c`); `gzip` and `pigz` are both our parallel gzip. */
export const PACK_COMPRESSORS = ['gzip', 'pigz', 'xz', 'zstd'] as const;
export type PackCompressor = (typeof PACK_COMPRESSORS)[number];

/**
 * Every packed form of a root image that may sit in ROOTIMGDIR; only one is kept after a pack.
 * In the order imgexport looks for them: xCAT's order for its six, then the zstd forms it lacks.
 */
export const PACKED_FORMS: readonly string[] = [
  'rootimg.cpio.gz',
  'rootimg.cpio.xz',
  'rootimg.tar.gz',
  'rootimg.tar.xz',
  'rootimg.sfs',
  'rootimg.gz',
  'rootimg.cpio.zst',
  'rootimg.tar.zst',
];

const EXTENSIONS: Record<PackCompressor, string> = { gzip: 'gz', pigz: 'gz', xz: 'xz', zstd: 'zst' };

export function parseMethod(value: string | undefined): PackMethod {
  if (value === undefined) return 'cpio';
  if ((PACK_METHODS as readonly string[]).includes(value)) return value as PackMethod;
  throw new UsageError(`Invalid archive method '${value}' requested (choose ${PACK_METHODS.join(', ')})`);
}

export function parseCompressor(value: string | undefined): PackCompressor | undefined {
  if (value === undefined) return undefined;
  if ((PACK_COMPRESSORS as readonly string[]).includes(value)) return value as PackCompressor;
  throw new UsageError(`Invalid compress method '${value}' requested (choose ${PACK_COMPRESSORS.join(', ')})`);
}

/** Checks `--level` against the compressor; undefined means the compressor's default. */
export function checkLevel(level: number | undefined, method: PackMethod, compressor: PackCompressor): number | undefined {
  if (level === undefined) return undefined;
  if (method === 'squashfs') throw new UsageError('--level does not apply to the squashfs method');
  if (compressor === 'xz') {
    if (level < 0 || level > 9) throw new UsageError(`xz compression level must be 0 to 9, not ${level}`);
  } else {
    resolveSettings(compressor === 'zstd' ? 'zstd' : 'gzip', level);
  }
  return level;
}

/** The packed file's name in ROOTIMGDIR: `rootimg.METHOD.EXT`, or `rootimg.sfs`. */
export function packedFileName(method: PackMethod, compressor: PackCompressor): string {
  return method === 'squashfs' ? 'rootimg.sfs' : `rootimg.${method}.${EXTENSIONS[compressor]}`;
}

/** What our own compressors write for a pack; undefined when a program compresses (xz, mksquashfs). */
export function ownCompression(method: PackMethod, compressor: PackCompressor | undefined): 'gzip' | 'zstd' | undefined {
  if (method === 'squashfs' || compressor === 'xz') return undefined;
  return compressor === 'zstd' ? 'zstd' : 'gzip';
}
