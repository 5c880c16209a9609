import zlib from 'node:zlib';

/**
 * A gzip file whose deflate data is made of stored (uncompressed) blocks. statelite's
 * rootimgtree.gz must stay a gzip file for xCAT's import, but its size must be known before its
 * first byte is written (it is a tar member) and the bundle is compressed anyway: stored blocks
 * give an exact size from the cpio size, need no temporary file, and the outer compression does
 * the real work.
 */
const MAX_STORED = 65535;
const HEADER = Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]);
const FINAL_EMPTY_BLOCK = Buffer.from([1, 0, 0, 0xff, 0xff]);

/** Exact size of the stored gzip of `n` bytes. */
export function storedGzipSize(n: number): number {
  return HEADER.length + n + 5 * Math.ceil(n / MAX_STORED) + FINAL_EMPTY_BLOCK.length + 8;
}

/** Non-final stored blocks holding `data` (any length), header bytes included. */
export function storedBlocks(data: Buffer): Buffer {
  const blocks = Math.ceil(data.length / MAX_STORED);
  const out = Buffer.allocUnsafe(data.length + 5 * blocks);
  let at = 0;
  for (let offset = 0; offset < data.length; offset += MAX_STORED) {
    const len = Math.min(MAX_STORED, data.length - offset);
    out[at] = 0;
    out.writeUInt16LE(len, at + 1);
    out.writeUInt16LE(~len & 0xffff, at + 3);
    data.copy(out, at + 5, offset, offset + len);
    at += 5 + len;
  }
  return out;
}

/**
 * Wraps `expectedSize` bytes of input into a stored gzip stream of exactly storedGzipSize bytes.
 * Input of another length is an error: the tar header announced the size already.
 */
export async function* storedGzipChunks(input: AsyncIterable<Buffer>, expectedSize: number): AsyncIterable<Buffer> {
  yield Buffer.from(HEADER);
  let crc = 0;
  let total = 0;
  let pending = Buffer.alloc(0);
  for await (const chunk of input) {
    crc = zlib.crc32(chunk, crc);
    total += chunk.length;
    // Keep block boundaries at multiples of 65535 input bytes so the size formula holds.
    const joined = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    const whole = joined.length - (joined.length % MAX_STORED);
    if (whole > 0) yield storedBlocks(joined.subarray(0, whole));
    pending = Buffer.from(joined.subarray(whole));
  }
  if (total !== expectedSize) throw new Error(`stored gzip input was ${total} bytes, expected ${expectedSize}`);
  if (pending.length) yield storedBlocks(pending);
  const trailer = Buffer.alloc(8);
  trailer.writeUInt32LE(crc >>> 0, 0);
  trailer.writeUInt32LE(total % 2 ** 32, 4);
  yield Buffer.concat([FINAL_EMPTY_BLOCK, trailer]);
}
