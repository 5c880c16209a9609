/**
 * The compression stage: takes the archive's tagged chunks, cuts them into blocks, has the
 * threads compress them (stored blocks are framed right here) and emits the results strictly in
 * order. At most `threads * 2` blocks are in flight: when the window is full the write callback
 * waits, and when the reader stops reading the window stays full, so backpressure reaches the
 * archive writer and memory stays at a few blocks whatever the image size.
 */
import { Duplex, Transform } from 'node:stream';
import { UsageError } from '../../core/errors.js';
import { compressBlock, type BlockEncoder, type TaskRunner } from './block-task.js';
import type { CompressionFormat, TaggedChunk } from './format.js';
import { GzipBlockEncoder } from './gzip.js';
import { leasePool, type PoolLease } from './pool.js';
import { Signal } from './signal.js';
import { chunkPool } from '../chunk-pool.js';
import { BlockSplitter } from './splitter.js';
import { ZstdBlockEncoder } from './zstd.js';

export interface CompressorOptions {
  format: CompressionFormat;
  threads: number;
  level?: number;
  blockSize?: number;
}

export interface CompressorStats {
  bytesIn: number;
  bytesOut: number;
  /** Input bytes kept as stored blocks instead of being compressed. */
  storedBytes: number;
}

export interface Compressor {
  /** Writable side (object mode) takes TaggedChunk; readable side emits the compressed bytes. */
  stream: Duplex;
  /** Bytes in and out so far (for progress). */
  stats(): CompressorStats;
}

const MiB = 1024 * 1024;
/**
 * gzip blocks up to this size (a text member between stored ones, the end of the stream) are
 * compressed on the main thread: ~1 ms, less than a round trip to a thread.
 */
const INLINE_GZIP_MAX = 64 * 1024;

interface FormatRules {
  levels: [number, number];
  defaultLevel: number;
  /** Largest block for a level (zstd's WebAssembly heap is fixed at 16 MiB). */
  maxBlockSize(level: number): number;
  defaultBlockSize(level: number): number;
}

const RULES: Record<'gzip' | 'zstd', FormatRules> = {
  gzip: { levels: [1, 9], defaultLevel: 6, maxBlockSize: () => 64 * MiB, defaultBlockSize: () => MiB },
  // Measured: a 4 MiB block compresses in the 16 MiB heap up to level 5, a 2 MiB one up to 9.
  // 1 MiB by default, for peak memory: against 2 MiB blocks, packimage's peak RSS on the 2 GB tree
  // 196-204 -> 181-182 MB (and 10-20 MB less on smaller trees), same speed, output 0.7% larger
  // there and 1.7% on the Debian tree. 4 MiB blocks made output 0.3% smaller than 2 MiB ones and
  // peak RSS 35 MB larger.
  zstd: {
    levels: [1, 9],
    defaultLevel: 3,
    maxBlockSize: (level) => (level <= 5 ? 4 * MiB : 2 * MiB),
    defaultBlockSize: () => MiB,
  },
};

/** Checked level and block size for a format (UsageError names the bad value). */
export function resolveSettings(format: 'gzip' | 'zstd', level?: number, blockSize?: number): { level: number; blockSize: number } {
  const rules = RULES[format];
  const chosenLevel = level ?? rules.defaultLevel;
  const [low, high] = rules.levels;
  if (!Number.isInteger(chosenLevel) || chosenLevel < low || chosenLevel > high) {
    throw new UsageError(`${format} compression level must be ${low} to ${high}, not ${level}`);
  }
  const chosenSize = blockSize ?? rules.defaultBlockSize(chosenLevel);
  const max = rules.maxBlockSize(chosenLevel);
  if (!Number.isInteger(chosenSize) || chosenSize < 64 * 1024 || chosenSize > max) {
    throw new UsageError(`${format} block size must be 64 KiB to ${max / MiB} MiB at level ${chosenLevel}, not ${blockSize}`);
  }
  return { level: chosenLevel, blockSize: chosenSize };
}

export function createCompressor(options: CompressorOptions): Compressor {
  if (!Number.isInteger(options.threads) || options.threads < 1) {
    throw new UsageError(`compression threads must be a positive integer, not ${options.threads}`);
  }
  if (options.format === 'none') return passThrough();
  const { level, blockSize } = resolveSettings(options.format, options.level, options.blockSize);
  const window = options.threads * 2;
  const pool = leasePool(options.threads);
  const splitter = new BlockSplitter(blockSize, window + 1);
  const counts: CompressorStats = { bytesIn: 0, bytesOut: 0, storedBytes: 0 };
  const run: TaskRunner = async (task) => {
    // Blocks up to INLINE_GZIP_MAX: same function, same bytes as on a thread, without a round trip.
    const inline = task.format === 'gzip' && task.length <= INLINE_GZIP_MAX;
    const length = task.length;
    const result = inline ? await compressBlock(task) : await pool.run(task);
    // Copied out into pooled memory (written out, it is used again), so that the block's buffer
    // can be filled again at once.
    const bytes = chunkPool.copyOf(new Uint8Array(result.block, 0, result.compressedLength ?? length));
    splitter.recycle(result.block);
    if (result.compressedLength !== undefined) return { compressed: bytes };
    counts.storedBytes += length;
    return { stored: bytes };
  };
  const encoder = options.format === 'gzip' ? new GzipBlockEncoder(level, run) : new ZstdBlockEncoder(level, run);
  const stream = new BlockCompressor(encoder, splitter, pool, window, counts);
  return { stream, stats: () => ({ ...counts }) };
}

function passThrough(): Compressor {
  const counts: CompressorStats = { bytesIn: 0, bytesOut: 0, storedBytes: 0 };
  const stream = new Transform({
    writableObjectMode: true,
    transform(chunk: TaggedChunk, _encoding, callback) {
      counts.bytesIn += chunk.data.length;
      counts.bytesOut += chunk.data.length;
      callback(null, chunk.data);
    },
  });
  return { stream, stats: () => ({ ...counts }) };
}

class BlockCompressor extends Duplex {
  /** Encoded blocks in stream order, oldest first (some still being compressed). */
  private readonly queue: Array<Promise<Buffer | Buffer[]>> = [];
  private inputEnded = false;
  private readonly queueChanged = new Signal();
  private readonly readWanted = new Signal();

  constructor(
    private readonly encoder: BlockEncoder,
    private readonly splitter: BlockSplitter,
    private readonly pool: PoolLease,
    private readonly window: number,
    /** Bytes in and out, and those stored (here, or by `encoder` for blocks that did not shrink). */
    private readonly counts: CompressorStats,
  ) {
    // A couple of chunks queued is enough: the blocks in flight are the real buffer.
    super({ writableObjectMode: true, writableHighWaterMark: 2 });
    this.enqueue([encoder.header()]);
    this.pump().catch((err: Error) => this.destroy(err));
  }

  override _write(chunk: TaggedChunk, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.accept(chunk).then(() => callback(), callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.finishInput().then(() => callback(), callback);
  }

  override _read(): void {
    this.readWanted.wake();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.pool.release();
    this.queueChanged.wake();
    callback(error);
  }

  private async accept(chunk: TaggedChunk): Promise<void> {
    this.counts.bytesIn += chunk.data.length;
    for (const block of this.splitter.add(chunk)) {
      await this.roomInWindow();
      this.enqueue(this.encoder.encode(block, false));
      if (block.store) this.counts.storedBytes += block.length;
    }
  }

  private async finishInput(): Promise<void> {
    await this.roomInWindow();
    const last = this.splitter.end();
    if (last?.store) this.counts.storedBytes += last.length;
    this.enqueue(this.encoder.encode(last, true));
    this.enqueue([this.encoder.trailer()]);
    this.inputEnded = true;
    this.queueChanged.wake();
  }

  private enqueue(encoded: Buffer[] | Promise<Buffer | Buffer[]>): void {
    const promise = Promise.resolve(encoded);
    // Awaited later, in order; meanwhile a failure must not count as unhandled.
    promise.catch(() => undefined);
    this.queue.push(promise);
    this.queueChanged.wake();
  }

  private async roomInWindow(): Promise<void> {
    while (this.queue.length >= this.window && !this.destroyed) await this.queueChanged.wait();
  }

  /** Emits the queue's results in order, as fast as the reader takes them. */
  private async pump(): Promise<void> {
    while (!this.destroyed) {
      const head = this.queue[0];
      if (!head) {
        if (this.inputEnded) {
          this.pool.release();
          this.push(null);
          return;
        }
        await this.queueChanged.wait();
        continue;
      }
      const encoded = await head;
      this.queue.shift();
      this.queueChanged.wake();
      for (const piece of Array.isArray(encoded) ? encoded : [encoded]) {
        if (this.destroyed) return;
        this.counts.bytesOut += piece.length;
        if (piece.length > 0 && !this.push(piece)) await this.readWanted.wait();
      }
    }
  }
}
