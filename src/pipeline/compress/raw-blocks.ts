/**
 * Data kept as it is inside a compressed stream (stored deflate blocks, zstd Raw_Blocks) is
 * framed without copying it: a block header every `blockMax` bytes, then views of the input
 * pieces, whatever their sizes. The cut points depend only on the byte count, never on how the
 * input was chunked, so the output is the same for the same bytes.
 */
export class RawBlockFramer {
  #at = 0;

  /**
   * @param total bytes that will be framed in all
   * @param blockMax largest payload of one block
   * @param header the header of a block of `length` bytes, `last` for the one that ends `total`
   */
  constructor(
    private readonly total: number,
    private readonly blockMax: number,
    private readonly header: (length: number, last: boolean) => Buffer,
  ) {}

  /** Headers and views of `piece`, in order; the pieces must not add up to more than `total`. */
  *add(piece: Buffer): Generator<Buffer> {
    if (this.#at + piece.length > this.total) throw new Error(`raw blocks: ${this.#at + piece.length} bytes given, ${this.total} announced`);
    for (let offset = 0; offset < piece.length; ) {
      const intoBlock = this.#at % this.blockMax;
      if (intoBlock === 0) {
        const length = Math.min(this.blockMax, this.total - this.#at);
        yield this.header(length, this.#at + length === this.total);
      }
      const take = Math.min(piece.length - offset, this.blockMax - intoBlock);
      yield piece.subarray(offset, offset + take);
      offset += take;
      this.#at += take;
    }
  }

  /** Every piece at once. */
  *addAll(pieces: Iterable<Buffer>): Generator<Buffer> {
    for (const piece of pieces) yield* this.add(piece);
  }
}
