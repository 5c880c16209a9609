/**
 * zstd framing. Output: independent frames, one per block (compressed by the threads, or raw
 * frames written here for data that is already compressed); concatenated frames are one valid
 * .zst stream. Input: a scanner that follows the frame and block headers of any zstd stream
 * without decoding, to cut it at block ends for the decoder and tell a clean end from a
 * truncated stream or trailing garbage.
 */
import { BundleError } from '../../core/errors.js';
import { compressedOrStored, taskOf, type BlockEncoder, type TaskRunner } from './block-task.js';
import { ZSTD_MAGIC } from './format.js';
import { RawBlockFramer } from './raw-blocks.js';
import type { Block } from './splitter.js';
import { ZSTD_MAX_WINDOW } from './zstd-wasm.js';

/** Largest block content (Block_Maximum_Size). */
const ZSTD_BLOCK_MAX = 128 * 1024;
const BLOCK_RAW = 0;
const BLOCK_RLE = 1;
const BLOCK_RESERVED = 3;

/**
 * `parts` (`length` bytes in all) as a frame of Raw_Blocks: magic, a frame header declaring a
 * single segment and a 4-byte content size, then blocks of at most 128 KiB (one, empty, for
 * empty data), as headers and views of the parts.
 */
export function zstdRawFrame(parts: Buffer[], length: number): Buffer[] {
  const frameHeader = Buffer.allocUnsafe(9);
  ZSTD_MAGIC.copy(frameHeader, 0);
  frameHeader[4] = 0xa0; // Frame_Content_Size_flag 2 (4 bytes), Single_Segment_flag, no checksum, no dictionary
  frameHeader.writeUInt32LE(length, 5);
  if (length === 0) return [frameHeader, rawBlockHeader(0, true)];
  return [frameHeader, ...new RawBlockFramer(length, ZSTD_BLOCK_MAX, rawBlockHeader).addAll(parts)];
}

/** Block_Header: Last_Block, Block_Type Raw, Block_Size, in 3 little-endian bytes. */
function rawBlockHeader(size: number, last: boolean): Buffer {
  const header = Buffer.allocUnsafe(3);
  header.writeUIntLE((size << 3) | (BLOCK_RAW << 1) | (last ? 1 : 0), 0, 3);
  return header;
}

export class ZstdBlockEncoder implements BlockEncoder {
  private empty = true;

  constructor(
    private readonly level: number,
    private readonly run: TaskRunner,
  ) {}

  header(): Buffer {
    return Buffer.alloc(0);
  }

  encode(block: Block | undefined, last: boolean): Buffer[] | Promise<Buffer | Buffer[]> {
    if (!block) return last && this.empty ? zstdRawFrame([], 0) : []; // a .zst holds at least one frame
    this.empty = false;
    if (block.store) return zstdRawFrame(block.parts, block.length);
    return compressedOrStored(this.run(taskOf(block, 'zstd', this.level, last)), (bytes) => zstdRawFrame([bytes], bytes.length));
  }

  trailer(): Buffer {
    return Buffer.alloc(0);
  }
}

/** A stretch of input that is whole to the scanner: frame data for the decoder, or skipped. */
export interface ZstdPiece {
  data: Buffer;
  decode: boolean;
}

type ScanState =
  | { at: 'magic' }
  | { at: 'skippableSize' }
  | { at: 'frameHeader' }
  | { at: 'blockHeader'; checksum: boolean }
  | { at: 'body'; remaining: number; decode: boolean; next: ScanState };

const MAGIC: ScanState = { at: 'magic' };
const SKIPPABLE_MAGIC_MASK = 0xfffffff0;
const SKIPPABLE_MAGIC = 0x184d2a50;
const MiB = 1024 * 1024;

/**
 * Follows the structure of a zstd stream chunk by chunk. Pieces never extend past the end of a
 * block, so feeding the decoder one piece at a time decodes at most one block (128 KiB) per
 * call, however well the data compresses. Headers split across chunks are kept until whole.
 */
export class ZstdFrameScanner {
  private state: ScanState = MAGIC;
  private carry = Buffer.alloc(0);
  private frames = 0;

  *pieces(chunk: Buffer): Generator<ZstdPiece> {
    const buf = this.carry.length ? Buffer.concat([this.carry, chunk]) : chunk;
    this.carry = Buffer.alloc(0);
    let pos = 0;
    while (pos < buf.length) {
      const state = this.state;
      if (state.at === 'body') {
        const take = Math.min(state.remaining, buf.length - pos);
        yield { data: buf.subarray(pos, pos + take), decode: state.decode };
        pos += take;
        state.remaining -= take;
        if (state.remaining === 0) this.state = state.next;
        continue;
      }
      const size = headerSize(state, buf[pos]);
      if (pos + size > buf.length) {
        this.carry = Buffer.from(buf.subarray(pos));
        return;
      }
      const header = buf.subarray(pos, pos + size);
      pos += size;
      if (this.parseHeader(state, header)) yield { data: header, decode: true };
    }
  }

  /** Throws unless the input ended right after a whole frame. */
  finish(): void {
    if (this.frames === 0 || this.state !== MAGIC || this.carry.length > 0) throw new BundleError('bundle is truncated');
  }

  /** Moves past a whole header; true when its bytes are for the decoder. */
  private parseHeader(state: Exclude<ScanState, { at: 'body' }>, header: Buffer): boolean {
    switch (state.at) {
      case 'magic':
        if (header.equals(ZSTD_MAGIC)) {
          this.state = { at: 'frameHeader' };
          return true;
        }
        if ((header.readUInt32LE(0) & SKIPPABLE_MAGIC_MASK) >>> 0 === SKIPPABLE_MAGIC) {
          this.state = { at: 'skippableSize' };
          return false;
        }
        throw new BundleError(this.frames > 0 ? 'trailing data after the compressed stream' : 'corrupt zstd data: no zstd frame');
      case 'skippableSize': {
        const size = header.readUInt32LE(0);
        this.state = size > 0 ? { at: 'body', remaining: size, decode: false, next: MAGIC } : MAGIC;
        return false;
      }
      case 'frameHeader':
        this.state = { at: 'blockHeader', checksum: parseFrameHeader(header) };
        return true;
      case 'blockHeader': {
        // Last_Block, Block_Type, Block_Size (of the content; an RLE block holds one byte).
        const value = header.readUIntLE(0, 3);
        const type = (value >> 1) & 3;
        const size = value >>> 3;
        if (type === BLOCK_RESERVED) throw new BundleError('corrupt zstd data: reserved block type');
        if (size > ZSTD_BLOCK_MAX) throw new BundleError('corrupt zstd data: block larger than 128 KiB');
        let next: ScanState = state;
        if (value & 1) {
          this.frames++;
          next = state.checksum ? { at: 'body', remaining: 4, decode: true, next: MAGIC } : MAGIC;
        }
        const bodySize = type === BLOCK_RLE ? 1 : size;
        this.state = bodySize > 0 ? { at: 'body', remaining: bodySize, decode: true, next } : next;
        return true;
      }
    }
  }
}

/** Size of the header the scanner expects next; `first` is its first byte (if there yet). */
function headerSize(state: Exclude<ScanState, { at: 'body' }>, first: number | undefined): number {
  switch (state.at) {
    case 'magic':
    case 'skippableSize':
      return 4;
    case 'blockHeader':
      return 3;
    case 'frameHeader': {
      if (first === undefined) return 1;
      const singleSegment = (first >> 5) & 1;
      return 1 + (singleSegment ? 0 : 1) + [0, 1, 2, 4][first & 3] + [singleSegment, 2, 4, 8][first >> 6];
    }
  }
}

/** Checks a frame header (descriptor onwards) this decoder can handle; returns its checksum flag. */
function parseFrameHeader(header: Buffer): boolean {
  const descriptor = header[0];
  const singleSegment = (descriptor >> 5) & 1;
  const dictionaryBytes = [0, 1, 2, 4][descriptor & 3];
  if (descriptor & 0x08) throw new BundleError('corrupt zstd data: reserved frame header bit set');
  const dictionaryAt = singleSegment ? 1 : 2;
  if (dictionaryBytes > 0 && header.readUIntLE(dictionaryAt, dictionaryBytes) !== 0) {
    throw new BundleError('zstd data needs a dictionary, which bundles never use');
  }
  const window = singleSegment ? contentSize(header.subarray(dictionaryAt + dictionaryBytes)) : windowSize(header[1]);
  if (window > ZSTD_MAX_WINDOW) {
    throw new BundleError(
      `zstd frame needs a ${Math.ceil(window / MiB)} MiB window, more than the ${ZSTD_MAX_WINDOW / MiB} MiB supported ` +
        '(made with --long or a high level?): recompress it with default options',
    );
  }
  return (descriptor & 0x04) !== 0;
}

/** Frame_Content_Size of a single-segment frame: 1, 2 (offset by 256), 4 or 8 bytes. */
function contentSize(field: Buffer): number {
  switch (field.length) {
    case 1:
      return field[0];
    case 2:
      return field.readUInt16LE(0) + 256;
    case 4:
      return field.readUInt32LE(0);
    default:
      return field.readUInt32LE(0) + field.readUInt32LE(4) * 2 ** 32;
  }
}

/** Window size from a Window_Descriptor: 2^(10 + exponent) plus mantissa eighths of it. */
function windowSize(descriptor: number): number {
  const base = 2 ** (10 + (descriptor >> 3));
  return base + (base / 8) * (descriptor & 7);
}
