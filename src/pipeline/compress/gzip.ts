/**
 * gzip output made of independently compressed blocks: one gzip member whose deflate stream is
 * the blocks' raw deflate output laid end to end (each but the last ends with a sync flush, so
 * it stops byte-aligned), with stored blocks written here for data that is already compressed.
 * The header and the trailer (CRC-32 and size of all input) are written here too.
 */
import zlib from 'node:zlib';
import { taskOf, type BlockEncoder, type TaskRunner } from './block-task.js';
import type { Block } from './splitter.js';

/** Deflate's back-reference distance: the dictionary a block needs from its predecessors. */
const DEFLATE_WINDOW = 32 * 1024;
/** Largest payload of one stored deflate block (LEN is 16 bits). */
export const STORED_BLOCK_MAX = 0xffff;
const STORED_HEADER_SIZE = 5;

/** The 10-byte member header: deflate, no name, mtime 0 (reproducible), OS Unix. */
export function gzipHeader(): Buffer {
  return Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0x03]);
}

/** The 8-byte member trailer: CRC-32 and size mod 2^32 of the uncompressed data. */
export function gzipTrailer(crc: number, size: number): Buffer {
  const trailer = Buffer.alloc(8);
  trailer.writeUInt32LE(crc >>> 0, 0);
  trailer.writeUInt32LE(size % 2 ** 32, 4);
  return trailer;
}

/**
 * `data` as stored deflate blocks (at least one; `final` sets BFINAL on the last). Valid only
 * where the deflate stream is byte-aligned, as it is after a sync flush: each block is then the
 * header byte, LEN, NLEN and the bytes themselves.
 */
export function deflateStoredBlocks(data: Buffer, final: boolean): Buffer {
  const count = Math.max(1, Math.ceil(data.length / STORED_BLOCK_MAX));
  const out = Buffer.allocUnsafe(data.length + count * STORED_HEADER_SIZE);
  let at = 0;
  for (let i = 0; i < count; i++) {
    const part = data.subarray(i * STORED_BLOCK_MAX, (i + 1) * STORED_BLOCK_MAX);
    writeStoredHeader(out, at, part.length, final && i === count - 1);
    at += STORED_HEADER_SIZE + part.copy(out, at + STORED_HEADER_SIZE);
  }
  return out;
}

/** The header of one stored block of `length` bytes (at most STORED_BLOCK_MAX). */
export function storedBlockHeader(length: number, final: boolean): Buffer {
  return writeStoredHeader(Buffer.allocUnsafe(STORED_HEADER_SIZE), 0, length, final);
}

/** BFINAL and BTYPE 00 in the first byte (the rest of it is padding to the byte boundary), LEN, NLEN. */
function writeStoredHeader(out: Buffer, at: number, length: number, final: boolean): Buffer {
  out[at] = final ? 1 : 0;
  out.writeUInt16LE(length, at + 1);
  out.writeUInt16LE(~length & 0xffff, at + 3);
  return out;
}

export class GzipBlockEncoder implements BlockEncoder {
  private crc = 0;
  private size = 0;
  /** The last DEFLATE_WINDOW bytes of input so far. */
  private history: Buffer = Buffer.alloc(0);

  constructor(
    private readonly level: number,
    private readonly run: TaskRunner,
  ) {}

  header(): Buffer {
    return gzipHeader();
  }

  encode(block: Block | undefined, last: boolean): Buffer | Promise<Buffer> {
    if (!block) return deflateStoredBlocks(Buffer.alloc(0), last);
    const dictionary = this.history;
    this.crc = zlib.crc32(block.data, this.crc);
    this.size += block.data.length;
    this.history = lastBytes(this.history, block.data, DEFLATE_WINDOW);
    if (block.store) return deflateStoredBlocks(block.data, last);
    return this.run(taskOf(block, 'gzip', this.level, last, dictionary));
  }

  trailer(): Buffer {
    return gzipTrailer(this.crc, this.size);
  }
}

/** The last `count` bytes of `before` followed by `after`. */
function lastBytes(before: Buffer, after: Buffer, count: number): Buffer {
  if (after.length >= count) return Buffer.from(after.subarray(after.length - count));
  return Buffer.concat([before.subarray(Math.max(0, before.length + after.length - count)), after]);
}
