/**
 * Memory for file data, used again and again. On these machines the first touch of fresh memory
 * costs far more than the copy into it (a 60 MB file read into fresh 1 MiB buffers: 150-290 ms;
 * into one buffer read again and again: 11 ms), and V8 frees a Buffer only when it collects
 * garbage, long after the bytes were written out. So the file reader carves its chunks out of
 * slabs from here, and the stages where bytes end report them done: written to the output file,
 * or copied into a compression block or a batch. A slab whose bytes are all done is carved again.
 *
 * Forgetting to report costs speed, never correctness (the slab is left to the garbage collector:
 * bytes that went to a pipe, a run that failed). Reporting is the side to be careful with: a stage
 * may report bytes only when nothing will read them again.
 */

interface Slab {
  memory: Buffer;
  /** Bytes handed out from the start of `memory`. */
  carved: number;
  /** Bytes handed out and not reported done yet. */
  pending: number;
}

export class ChunkPool {
  readonly #slabs = new WeakMap<ArrayBuffer, Slab>();
  readonly #free: Slab[] = [];
  /** The slab small requests are carved from, one after the other. */
  #current: Slab | undefined;

  /**
   * @param slabSize bytes per slab: requests up to this size come from slabs
   * @param maxFree slabs kept for reuse when no one uses them (the rest go to the garbage collector)
   */
  constructor(
    readonly slabSize: number,
    private readonly maxFree: number,
  ) {}

  /** `length` bytes for the caller to fill; bigger than a slab: fresh memory of its own, not pooled. */
  take(length: number): Buffer {
    if (length > this.slabSize) return Buffer.allocUnsafeSlow(length);
    let slab = this.#current;
    if (!slab || slab.carved + length > this.slabSize) {
      slab = this.#free.pop() ?? this.newSlab();
      this.#current = slab;
    }
    const view = slab.memory.subarray(slab.carved, slab.carved + length);
    slab.carved += length;
    slab.pending += length;
    return view;
  }

  /** A copy of `bytes` in pooled memory (see take). */
  copyOf(bytes: Uint8Array): Buffer {
    const copy = this.take(bytes.length);
    copy.set(bytes);
    return copy;
  }

  /** The bytes of `view` will not be read again (views of other memory are ignored). */
  done(view: Uint8Array): void {
    const slab = this.#slabs.get(view.buffer as ArrayBuffer);
    if (!slab || view.length === 0) return;
    slab.pending -= view.length;
    if (slab.pending < 0) throw new Error(`chunk pool: ${-slab.pending} more bytes reported done than were handed out`);
    if (slab.pending > 0) return;
    slab.carved = 0;
    if (slab !== this.#current && this.#free.length < this.maxFree) this.#free.push(slab);
  }

  /** Slabs waiting to be carved again (for tests). */
  get freeSlabs(): number {
    return this.#free.length;
  }

  private newSlab(): Slab {
    const slab: Slab = { memory: Buffer.allocUnsafeSlow(this.slabSize), carved: 0, pending: 0 };
    this.#slabs.set(slab.memory.buffer as ArrayBuffer, slab);
    return slab;
  }
}

/**
 * The process's pool: 1 MiB slabs (the reader's chunk size); up to 32 MiB kept idle, more than
 * the bytes a pipeline holds in flight (compression window, queued writes).
 */
export const chunkPool = new ChunkPool(1024 * 1024, 32);
