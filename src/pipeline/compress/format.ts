/**
 * Names and magic numbers of the compression formats: which format a bundle file name asks for,
 * and whether a member's first bytes show it is already compressed (so it is stored, not
 * compressed a second time for nothing).
 */
import zlib from 'node:zlib';

/** A piece of the archive byte stream; `store` marks already-compressed data to keep as is. */
export interface TaggedChunk {
  data: Buffer;
  store: boolean;
}

export type CompressionFormat = 'gzip' | 'zstd' | 'none';

/** Bundle name suffixes and the compression they imply (longest suffixes first). */
const SUFFIX_FORMATS: Array<[string, CompressionFormat]> = [
  ['.tar.gz', 'gzip'],
  ['.tgz', 'gzip'],
  ['.tar.zst', 'zstd'],
  ['.tzst', 'zstd'],
  ['.tar', 'none'],
];

/** The compression a bundle file name implies, or undefined for a name with no known suffix. */
export function compressionFormatOfName(file: string): CompressionFormat | undefined {
  const lower = file.toLowerCase();
  return SUFFIX_FORMATS.find(([suffix]) => lower.endsWith(suffix))?.[1];
}

export const GZIP_MAGIC = Buffer.from([0x1f, 0x8b]);
export const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);

const COMPRESSED_MAGICS: Buffer[] = [
  GZIP_MAGIC,
  ZSTD_MAGIC,
  Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]), // xz
  Buffer.from('BZh'), // bzip2
  Buffer.from('hsqs'), // squashfs, little endian
  Buffer.from('sqsh'), // squashfs, big endian
  Buffer.from([0x04, 0x22, 0x4d, 0x18]), // lz4 frame
  Buffer.from([0x02, 0x21, 0x4c, 0x18]), // lz4 legacy (Linux initramfs)
  Buffer.from('PK\x03\x04'), // zip
];

/** True when `head` (the first bytes of a file) starts with the magic of a compressed format. */
export function looksCompressed(head: Buffer): boolean {
  return COMPRESSED_MAGICS.some((magic) => head.length >= magic.length && head.subarray(0, magic.length).equals(magic));
}

/** Bytes of a sample a trial compression looks at, and the share of them it must save. */
const TRIAL_BYTES = 64 * 1024;
const TRIAL_MIN_SAVING = 0.02;

/**
 * True when the end of `head` (up to 64 KiB) does not shrink by 2% at deflate level 1: data with
 * no known magic that is compressed all the same (a kernel's payload, a random blob). The end,
 * because a compressed kernel begins with uncompressed setup code. Costs about half a millisecond.
 */
export function looksIncompressible(head: Buffer): boolean {
  const sample = head.subarray(Math.max(0, head.length - TRIAL_BYTES));
  return zlib.deflateRawSync(sample, { level: 1 }).length >= sample.length * (1 - TRIAL_MIN_SAVING);
}

/**
 * Chunks of already-compressed data, known by identity. Archive stages (tar-stream, the cpio
 * writer, the stored-gzip wrapper) pass big data chunks on as the same Buffer objects, so a mark
 * set where a file is read reaches the compressor, which stores those bytes instead of
 * compressing them a second time.
 */
const compressedChunks = new WeakSet<Buffer>();

export function markCompressed(chunk: Buffer): Buffer {
  compressedChunks.add(chunk);
  return chunk;
}

export function isMarkedCompressed(chunk: Buffer): boolean {
  return compressedChunks.has(chunk);
}

/** A chunk of the archive byte stream tagged for the compressor by its mark. */
export function tagged(data: Buffer): TaggedChunk {
  return { data, store: compressedChunks.has(data) };
}
