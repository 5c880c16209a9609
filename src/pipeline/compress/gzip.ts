/**
 * gzip output made of independently compressed blocks: one gzip member whose deflate stream is
 * the blocks' raw deflate output laid end to end (each but the last ends with a sync flush, so
 * it stops byte-aligned), with stored blocks written here for data that is already compressed.
 * The header and the trailer (CRC-32 and size of all input) are written here too.
 *
 * No block refers back into the one before it (as `pigz --independent`): priming each with the
 * 32 KiB before it saved 0.05-0.17% of the output on the bench's trees, and cost a 32 KiB copy
 * per block on the main thread and another in the thread (node:zlib keeps an engine's dictionary
 * until the engine is collected): over a 2 GB export, some 30 MB of such garbage at the peak.
 */
import zlib from 'node:zlib';
import { compressedOrStored, taskOf, type BlockEncoder, type TaskRunner } from './block-task.js';
import { RawBlockFramer } from './raw-blocks.js';
import { blockLength, blockParts, type Block } from './splitter.js';

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
 * `parts` (`length` bytes in all) as stored deflate blocks, headers and views of the parts (at
 * least one block; `final` sets BFINAL on the last). Valid only where the deflate stream is
 * byte-aligned, as it is after a sync flush: each block is then the header byte, LEN, NLEN and
 * the bytes themselves.
 */
export function deflateStoredBlocks(parts: Buffer[], length: number, final: boolean): Buffer[] {
  if (length === 0) return [storedBlockHeader(0, final)];
  return [...new RawBlockFramer(length, STORED_BLOCK_MAX, (size, last) => storedBlockHeader(size, final && last)).addAll(parts)];
}

/** The header of one stored block of `length` bytes (at most STORED_BLOCK_MAX). */
export function storedBlockHeader(length: number, final: boolean): Buffer {
  // BFINAL and BTYPE 00 in the first byte (the rest of it is padding to the byte boundary), LEN, NLEN.
  const header = Buffer.allocUnsafe(STORED_HEADER_SIZE);
  header[0] = final ? 1 : 0;
  header.writeUInt16LE(length, 1);
  header.writeUInt16LE(~length & 0xffff, 3);
  return header;
}

export class GzipBlockEncoder implements BlockEncoder {
  private crc = 0;
  private size = 0;

  constructor(
    private readonly level: number,
    private readonly run: TaskRunner,
  ) {}

  header(): Buffer {
    return gzipHeader();
  }

  encode(block: Block | undefined, last: boolean): Buffer[] | Promise<Buffer | Buffer[]> {
    if (!block) return deflateStoredBlocks([], 0, last);
    for (const part of blockParts(block)) this.crc = zlib.crc32(part, this.crc);
    this.size += blockLength(block);
    if (block.store) return deflateStoredBlocks(block.parts, block.length, last);
    return compressedOrStored(this.run(taskOf(block, 'gzip', this.level, last)), (bytes) => deflateStoredBlocks([bytes], bytes.length, last));
  }

  trailer(): Buffer {
    return gzipTrailer(this.crc, this.size);
  }
}

