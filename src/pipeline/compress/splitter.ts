/**
 * Cuts the tagged archive stream into blocks for the compressors. A block ends when it holds
 * `blockSize` bytes or where the tag changes, so the cut points depend only on the bytes and
 * their tags, never on how the writer chunked them, on timing or on the thread count: that is
 * what makes the compressed output reproducible.
 */
import type { TaggedChunk } from './format.js';

/** One block. `data` starts at offset 0 of an ArrayBuffer of its own, so it can be transferred. */
export interface Block {
  data: Buffer;
  store: boolean;
}

export class BlockSplitter {
  private current: Buffer | undefined;
  private filled = 0;
  private store = false;
  /** Buffers of blocks that are done with, to fill again: no new allocation per block. */
  private readonly spares: Buffer[] = [];

  constructor(
    private readonly blockSize: number,
    private readonly maxSpares: number,
  ) {}

  /** Hands back the buffer of a block once its bytes are no longer needed. */
  recycle(buffer: ArrayBuffer): void {
    if (buffer.byteLength === this.blockSize && this.spares.length < this.maxSpares) this.spares.push(Buffer.from(buffer));
  }

  /** Adds a chunk; yields (lazily, so the caller can wait between them) the blocks it completes. */
  *add(chunk: TaggedChunk): Generator<Block> {
    let offset = 0;
    while (offset < chunk.data.length) {
      if (this.current && this.store !== chunk.store) yield this.cut();
      if (!this.current) {
        // An unpooled buffer: it owns its ArrayBuffer (a pooled one shares it).
        this.current = this.spares.pop() ?? Buffer.allocUnsafeSlow(this.blockSize);
        this.store = chunk.store;
      }
      const copied = chunk.data.copy(this.current, this.filled, offset);
      this.filled += copied;
      offset += copied;
      if (this.filled === this.blockSize) yield this.cut();
    }
  }

  /** The last, partly filled block, if any. */
  end(): Block | undefined {
    return this.current ? this.cut() : undefined;
  }

  private cut(): Block {
    const block = { data: this.current!.subarray(0, this.filled), store: this.store };
    this.current = undefined;
    this.filled = 0;
    return block;
  }
}
