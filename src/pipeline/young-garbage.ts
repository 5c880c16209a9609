/**
 * node:zlib's streams write their output into a fresh 1 MiB buffer whenever the last one is full
 * (the chunks they push are slices of it), and V8 frees such buffers only when it collects
 * garbage: for memory outside its heap, once some 64 MB of it has piled up. On these machines the
 * first touch of fresh memory costs about 4 ms a MB (page faults), so that pile cost a netboot
 * import (150 MB) a quarter of its time, and its peak RSS. Collecting the young
 * generation every few MiB of such chunks frees the ones already used, and malloc hands the same
 * memory out again. (Where our own code makes the chunks, the chunk pool avoids fresh memory
 * altogether; node:zlib's stream offers no way to give it memory.)
 *
 * The collection is V8's `gc`, which the commands expose (--expose-gc on their first line);
 * without it, as under the test runner, nothing is collected early and only speed differs.
 */

/** Fresh bytes between two collections: a few chunks, little against the 64 MB pile. */
export const COLLECT_EVERY = 4 * 1024 * 1024;

type GcFunction = (options: { type: 'minor' | 'major' }) => void;

export class YoungGarbage {
  #bytes = 0;

  constructor(
    private readonly collect: GcFunction | undefined,
    private readonly every = COLLECT_EVERY,
  ) {}

  /** `bytes` of fresh buffers were handed on; collects the young generation every `every` bytes. */
  allocated(bytes: number): void {
    this.#bytes += bytes;
    if (this.#bytes < this.every || !this.collect) return;
    this.#bytes = 0;
    this.collect({ type: 'minor' });
  }
}

/** The process's counter, collecting through V8's `gc` when the command exposes it. */
export const youngGarbage = new YoungGarbage((globalThis as { gc?: GcFunction }).gc);
