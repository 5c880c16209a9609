import { UsageError } from '../core/errors.js';

/** How the tree is archived (`-m`). */
export const PACK_METHODS = ['cpio', 'tar', 'squashfs'] as const;
export type PackMethod = (typeof PACK_METHODS)[number];

/** How the archive is compressed (`-c`); `gzip` and `pigz` are both our parallel gzip. */
export const PACK_COMPRESSORS = ['gzip', 'pigz', 'xz', 'zstd'] as const;
export type PackCompressor = (typeof PACK_COMPRESSORS)[number];

/** Every packed form of a root image that may sit in ROOTIMGDIR; only one is kept after a pack. */
export const PACKED_FORMS: readonly string[] = [
  'rootimg.cpio.gz',
  'rootimg.cpio.xz',
  'rootimg.cpio.zst',
  'rootimg.tar.gz',
  'rootimg.tar.xz',
  'rootimg.tar.zst',
  'rootimg.sfs',
  'rootimg.gz',
];

/** Compression levels each compressor accepts (squashfs takes none: mksquashfs picks its own). */
const LEVELS: Record<PackCompressor, [number, number]> = {
  gzip: [1, 9],
  pigz: [1, 9],
  xz: [0, 9],
  zstd: [1, 19],
};

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
  const [min, max] = LEVELS[compressor];
  if (level < min || level > max) throw new UsageError(`--level for ${compressor} must be from ${min} to ${max}, not ${level}`);
  return level;
}

/** The packed file's name in ROOTIMGDIR: `rootimg.METHOD.EXT`, or `rootimg.sfs`. */
export function packedFileName(method: PackMethod, compressor: PackCompressor): string {
  return method === 'squashfs' ? 'rootimg.sfs' : `rootimg.${method}.${EXTENSIONS[compressor]}`;
}
