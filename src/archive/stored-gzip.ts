import zlib from 'node:zlib';
import { isMarkedCompressed, markCompressed } from '../pipeline/compress/format.js';
import { gzipHeader, gzipTrailer, storedBlockHeader, STORED_BLOCK_MAX } from '../pipeline/compress/gzip.js';
import { RawBlockFramer } from '../pipeline/compress/raw-blocks.js';

/**
 * A gzip file whose deflate data is made of stored (uncompressed) blocks. statelite's
 * rootimgtree.gz must stay a gzip file for xCAT's import, but its size must be known before its
 * first byte is written (it is a tar member) and the bundle is compressed anyway: stored blocks
 * give an exact size from the cpio size, need no temporary file, and the outer compression does
 * the real work.
 */
const HEADER_SIZE = 10;
const TRAILER_SIZE = 8;
/** Each stored block costs a 5-byte header; the stream ends with an empty final block. */
const BLOCK_HEADER_SIZE = 5;

/** Exact size of the stored gzip of `n` bytes. */
export function storedGzipSize(n: number): number {
  return HEADER_SIZE + n + BLOCK_HEADER_SIZE * Math.ceil(n / STORED_BLOCK_MAX) + BLOCK_HEADER_SIZE + TRAILER_SIZE;
}

/**
 * Wraps `expectedSize` bytes of input into a stored gzip stream of exactly storedGzipSize bytes,
 * without copying: the output is block headers and views of the input chunks, and a view keeps
 * its chunk's compressed mark (so do the headers between marked views). Input of another length
 * is an error: the tar header announced the size already.
 */
export async function* storedGzipChunks(input: AsyncIterable<Buffer>, expectedSize: number): AsyncIterable<Buffer> {
  yield gzipHeader();
  // No block is final here: an empty final block closes the stream, as the size formula says.
  const framer = new RawBlockFramer(expectedSize, STORED_BLOCK_MAX, (length) => storedBlockHeader(length, false));
  let crc = 0;
  let total = 0;
  for await (const chunk of input) {
    if (total + chunk.length > expectedSize) throw sizeMismatch(total + chunk.length, expectedSize);
    crc = zlib.crc32(chunk, crc);
    total += chunk.length;
    const marked = isMarkedCompressed(chunk);
    for (const piece of framer.add(chunk)) yield marked ? markCompressed(piece) : piece;
  }
  if (total !== expectedSize) throw sizeMismatch(total, expectedSize);
  yield Buffer.concat([storedBlockHeader(0, true), gzipTrailer(crc, total)]);
}

function sizeMismatch(got: number, expected: number): Error {
  return new Error(`stored gzip input was ${got} bytes, expected ${expected}`);
}
