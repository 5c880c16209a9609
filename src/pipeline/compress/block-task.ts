/**
 * The unit of work of the compressor threads: one block compressed on its own (zstd: a whole
 * frame; gzip: raw deflate primed with the preceding 32 KiB, ended with a sync flush so the next
 * block can follow it in the same member). Runs in the worker threads (small gzip blocks on the
 * main thread); has no state but the zstd instance, so any thread gives the same bytes for the
 * same task.
 */
import zlib from 'node:zlib';
import { loadZstdWasm, zstdFailure, type WasmVector, type ZstdWasm } from './zstd-wasm.js';
import type { Block } from './splitter.js';

export interface BlockTask {
  format: 'gzip' | 'zstd';
  level: number;
  /**
   * The block's bytes are data[0, length); the buffer is transferred, not copied. Its whole length
   * is the stream's block size (zstd sizes its vectors by it).
   */
  data: ArrayBuffer;
  length: number;
  /** gzip: the uncompressed bytes that precede the block (up to 32 KiB). */
  dictionary?: ArrayBuffer;
  /** gzip: the block ends the deflate stream. */
  final: boolean;
}

/** What a thread sends back: the compressed bytes (output[0, outputLength)), and the block's buffer for reuse. */
export interface TaskResult {
  output: ArrayBuffer;
  outputLength: number;
  input: ArrayBuffer;
}

/** Runs a task on a thread and returns its output, transferred back. */
export type TaskRunner = (task: BlockTask) => Promise<Buffer>;

/** Turns the blocks of one stream, in order, into compressed bytes. */
export interface BlockEncoder {
  /** Bytes that open the stream. */
  header(): Buffer;
  /**
   * The encoded form of `block` (undefined: no more data): pieces framed at once (stored data),
   * or a block being compressed. Called in stream order; `last` on the call that ends the
   * stream. Any running state (checksums) is updated before it returns.
   */
  encode(block: Block | undefined, last: boolean): Buffer[] | Promise<Buffer>;
  /** Bytes that close the stream; called after the last encode(). */
  trailer(): Buffer;
}

/** The task for a block, handing over its buffer (the block must not be used afterwards). */
export function taskOf(block: Extract<Block, { store: false }>, format: BlockTask['format'], level: number, final: boolean, dictionary?: Buffer): BlockTask {
  return {
    format,
    level,
    data: block.data.buffer as ArrayBuffer,
    length: block.data.length,
    dictionary: dictionary && ownedArrayBuffer(dictionary),
    final,
  };
}

/** The bytes of `view` in an ArrayBuffer of their own (the view's own when it covers it exactly). */
export function ownedArrayBuffer(view: Uint8Array): ArrayBuffer {
  const whole = view.byteOffset === 0 && view.byteLength === view.buffer.byteLength && view.buffer instanceof ArrayBuffer;
  return whole ? (view.buffer as ArrayBuffer) : (new Uint8Array(view).buffer as ArrayBuffer);
}

/**
 * A thread's zstd instance with its two vectors, kept for the thread's life: blocks are copied in
 * and out through views of the heap (a fresh pair per block cost more than the copies: zero-filled
 * output space, and embind's element-wise clone that is slow until it is optimised). The vectors
 * are sized once, for the largest block of the stream: grown a little at a time, a vector reserves
 * twice what it holds, and two of them no longer fit zstd's fixed 16 MiB heap (abort(OOM)).
 */
interface ZstdCompressor {
  wasm: ZstdWasm;
  codec: InstanceType<ZstdWasm['ZstdCodec']>;
  source: WasmVector;
  dest: WasmVector;
  /** The block size the vectors were sized for (0: not yet). */
  capacity: number;
}

/** This thread's zstd instance, made on its first zstd task. */
let zstdCompressor: Promise<ZstdCompressor> | undefined;

/**
 * Compresses one block: the worker threads' entry point, also called on the main thread for
 * small gzip blocks. The result starts at offset 0 of an ArrayBuffer that nothing else uses,
 * which may be longer than the result: a thread transfers it whole and keeps no garbage behind.
 */
export async function compressBlock(task: BlockTask): Promise<Uint8Array> {
  const input = new Uint8Array(task.data, 0, task.length);
  const output = task.format === 'gzip' ? deflateBlock(input, task) : await zstdFrame(input, task.level, task.data.byteLength);
  // Below 4 KiB a Buffer may live in Node's shared pool: those few bytes are copied.
  return output.byteOffset === 0 && output.byteLength >= 4096 ? output : new Uint8Array(output);
}

function deflateBlock(input: Uint8Array, task: BlockTask): Uint8Array {
  return zlib.deflateRawSync(input, {
    level: task.level,
    dictionary: task.dictionary && task.dictionary.byteLength > 0 ? Buffer.from(task.dictionary) : undefined,
    // A sync flush ends byte-aligned on an empty stored block, so blocks can be concatenated.
    finishFlush: task.final ? zlib.constants.Z_FINISH : zlib.constants.Z_SYNC_FLUSH,
    // Room for the whole output in zlib's first chunk: no 16 KiB pieces to join and leave as
    // garbage (a thread's heap sees too little work to collect them soon).
    chunkSize: input.length + (input.length >> 8) + 1024,
  });
}

/** Makes this thread's zstd instance now (a thread that will compress zstd, as it starts). */
export function preloadZstd(): Promise<ZstdCompressor> {
  zstdCompressor ??= loadZstdWasm().then((wasm) => ({ wasm, codec: new wasm.ZstdCodec(), source: new wasm.VectorU8(), dest: new wasm.VectorU8(), capacity: 0 }));
  return zstdCompressor;
}

/** This thread's instance with its vectors sized for blocks of `capacity` bytes (another size: a fresh instance). */
async function zstdFor(capacity: number): Promise<ZstdCompressor> {
  let zstd = await preloadZstd();
  if (zstd.capacity !== 0 && zstd.capacity !== capacity) {
    zstdCompressor = undefined;
    zstd = await preloadZstd();
  }
  if (zstd.capacity === 0) {
    zstd.source.resize(capacity, 0);
    // compress() writes at most dest.size() bytes: room for the worst case.
    zstd.dest.resize(zstd.codec.compressBound(capacity), 0);
    zstd.capacity = capacity;
  }
  return zstd;
}

/** `input` as one zstd frame; `capacity` is the stream's block size (the length of the block's buffer). */
async function zstdFrame(input: Uint8Array, level: number, capacity: number): Promise<Uint8Array> {
  const { wasm, codec, source, dest } = await zstdFor(capacity);
  try {
    // Within the size reserved above: no reallocation.
    source.resize(input.length, 0);
    wasm.toTypedArrayView(source).set(input);
    const size = codec.compress(dest, source, level);
    if (size < 0) throw new Error(`zstd compression failed (code ${size})`);
    return new Uint8Array(wasm.toTypedArrayView(dest).subarray(0, size));
  } catch (err) {
    // A failed WebAssembly instance may be left unusable: start the next task on a fresh one.
    zstdCompressor = undefined;
    throw zstdFailure(err);
  }
}
