/**
 * Cuts the tagged archive stream into blocks for the compressors. A block ends when it holds
 * `blockSize` bytes or where the tag changes, so the cut points depend only on the bytes and
 * their tags, never on how the writer chunked them, on timing or on the thread count: that is
 * what makes the compressed output reproducible.
 */
import type { TaggedChunk } from './format.js';
import { chunkPool } from '../chunk-pool.js';

/**
 * One block: data to compress in a buffer that starts at offset 0 of an ArrayBuffer of its own
 * (so it can be transferred to a thread), or data to store as views of the input chunks (never
 * copied: it goes out as it came in, between block headers).
 */
export type Block = { store: false; data: Buffer } | { store: true; parts: Buffer[]; length: number };

/** The bytes of a block, in order. */
export function blockParts(block: Block): Buffer[] {
  return block.store ? block.parts : [block.data];
}

export function blockLength(block: Block): number {
  return block.store ? block.length : block.data.length;
}

type OpenBlock = { store: false; buffer: Buffer } | { store: true; parts: Buffer[] };

export class BlockSplitter {
  private open: OpenBlock | undefined;
  private filled = 0;
  /** Buffers of blocks that are done with, to fill again: no new allocation per block. */
  private readonly spares: Buffer[] = [];

  constructor(
    private readonly blockSize: number,
    private readonly maxSpares: number,
  ) {}

  /** Hands back the buffer of a compressed block once its bytes are no longer needed. */
  recycle(buffer: ArrayBuffer): void {
    if (buffer.byteLength === this.blockSize && this.spares.length < this.maxSpares) this.spares.push(Buffer.from(buffer));
  }

  /** Adds a chunk; yields (lazily, so the caller can wait between them) the blocks it completes. */
  *add(chunk: TaggedChunk): Generator<Block> {
    let offset = 0;
    while (offset < chunk.data.length) {
      if (this.open && this.open.store !== chunk.store) yield this.cut();
      this.open ??= chunk.store ? { store: true, parts: [] } : { store: false, buffer: this.spares.pop() ?? Buffer.allocUnsafeSlow(this.blockSize) };
      const take = Math.min(chunk.data.length - offset, this.blockSize - this.filled);
      const piece = chunk.data.subarray(offset, offset + take);
      if (this.open.store) {
        this.open.parts.push(piece);
      } else {
        piece.copy(this.open.buffer, this.filled);
        chunkPool.done(piece);
      }
      this.filled += take;
      offset += take;
      if (this.filled === this.blockSize) yield this.cut();
    }
  }

  /** The last, partly filled block, if any. */
  end(): Block | undefined {
    return this.open ? this.cut() : undefined;
  }

  private cut(): Block {
    const open = this.open!;
    const block: Block = open.store ? { store: true, parts: open.parts, length: this.filled } : { store: false, data: open.buffer.subarray(0, this.filled) };
    this.open = undefined;
    this.filled = 0;
    return block;
  }
}
