import zlib from 'node:zlib';
import { isMarkedCompressed, markCompressed } from '../pipeline/compress/format.js';
import { deflateStoredBlocks, gzipHeader, gzipTrailer } from '../pipeline/compress/gzip.js';

/**
 * A gzip file whose deflate data is made of stored (uncompressed) blocks. statelite's
 * rootimgtree.gz must stay a gzip file for xCAT's import, but its size must be known before its
 * first byte is written (it is a tar member) and the bundle is compressed anyway: stored blocks
 * give an exact size from the cpio size, need no temporary file, and the outer compression does
 * the real work.
 */
const MAX_STORED = 65535;
const HEADER_SIZE = 10;
const TRAILER_SIZE = 8;
/** Each stored block costs a 5-byte header; the stream ends with an empty final block. */
const BLOCK_HEADER_SIZE = 5;

/** Exact size of the stored gzip of `n` bytes. */
export function storedGzipSize(n: number): number {
  return HEADER_SIZE + n + BLOCK_HEADER_SIZE * Math.ceil(n / MAX_STORED) + BLOCK_HEADER_SIZE + TRAILER_SIZE;
}

/**
 * Wraps `expectedSize` bytes of input into a stored gzip stream of exactly storedGzipSize bytes.
 * Input of another length is an error: the tar header announced the size already. Blocks made
 * of chunks marked compressed keep the mark; a block that also holds unmarked input loses it.
 */
export async function* storedGzipChunks(input: AsyncIterable<Buffer>, expectedSize: number): AsyncIterable<Buffer> {
  yield gzipHeader();
  let crc = 0;
  let total = 0;
  let pending = Buffer.alloc(0);
  /** Every byte in `pending` came from chunks marked compressed. */
  let pendingMarked = false;
  for await (const chunk of input) {
    const marked = isMarkedCompressed(chunk);
    crc = zlib.crc32(chunk, crc);
    total += chunk.length;
    // Keep block boundaries at multiples of 65535 input bytes so the size formula holds.
    const joined = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    const whole = joined.length - (joined.length % MAX_STORED);
    const plainHead = marked && pending.length > 0 && !pendingMarked ? Math.min(MAX_STORED, whole) : 0;
    if (plainHead > 0) yield deflateStoredBlocks(joined.subarray(0, plainHead), false);
    if (whole > plainHead) {
      const blocks = deflateStoredBlocks(joined.subarray(plainHead, whole), false);
      yield marked ? markCompressed(blocks) : blocks;
    }
    pendingMarked = marked && (whole > 0 || pending.length === 0 || pendingMarked);
    pending = Buffer.from(joined.subarray(whole));
  }
  if (total !== expectedSize) throw new Error(`stored gzip input was ${total} bytes, expected ${expectedSize}`);
  if (pending.length) yield deflateStoredBlocks(pending, false);
  yield Buffer.concat([deflateStoredBlocks(Buffer.alloc(0), true), gzipTrailer(crc, total)]);
}
