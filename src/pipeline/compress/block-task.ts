/**
 * The unit of work of the compressor threads: one block compressed on its own (zstd: a whole
 * frame; gzip: raw deflate ended with a sync flush so the next block can follow it in the same
 * member). Runs in the worker threads (small gzip blocks on the main thread); has no state but
 * the zstd instance, so any thread gives the same bytes for the same task.
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
  /** gzip: the block ends the deflate stream. */
  final: boolean;
}

/**
 * What a thread sends back: the block's own buffer, transferred, holding the compressed bytes
 * [0, compressedLength); or, when the block did not shrink (data already compressed that nothing
 * marked, such as a run of small images), still holding the block's own bytes, to be stored.
 */
export interface TaskResult {
  block: ArrayBuffer;
  /** Omitted: the block did not shrink. */
  compressedLength?: number;
}

/** A block as it goes out: compressed, or its own bytes to be framed as stored data. */
export type EncodedBlock = { compressed: Buffer } | { stored: Buffer };

/** Runs a task (on a thread, or here for a small one). */
export type TaskRunner = (task: BlockTask) => Promise<EncodedBlock>;

/** A block's output: its compressed bytes, or its own bytes framed by `store` when it did not shrink. */
export async function compressedOrStored(encoded: Promise<EncodedBlock>, store: (bytes: Buffer) => Buffer[]): Promise<Buffer | Buffer[]> {
  const block = await encoded;
  return 'compressed' in block ? block.compressed : store(block.stored);
}

/** Turns the blocks of one stream, in order, into compressed bytes. */
export interface BlockEncoder {
  /** Bytes that open the stream. */
  header(): Buffer;
  /**
   * The encoded form of `block` (undefined: no more data): pieces framed at once (stored data),
   * or a block being compressed. Called in stream order; `last` on the call that ends the
   * stream. Any running state (checksums) is updated before it returns.
   */
  encode(block: Block | undefined, last: boolean): Buffer[] | Promise<Buffer | Buffer[]>;
  /** Bytes that close the stream; called after the last encode(). */
  trailer(): Buffer;
}

/** The task for a block, handing over its buffer (the block must not be used afterwards). */
export function taskOf(block: Extract<Block, { store: false }>, format: BlockTask['format'], level: number, final: boolean): BlockTask {
  return { format, level, data: block.data.buffer as ArrayBuffer, length: block.data.length, final };
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
 * small gzip blocks. The compressed bytes are written over the block's own buffer, and a block
 * that does not shrink is handed back as it came, to be stored: so a thread hands back the one
 * buffer it was given and allocates nothing per block. That matters: a thread's heap sees too
 * little work to be collected often, and the 1 MiB outputs it used to leave behind held the
 * export's peak RSS 40-90 MB higher, growing with the run.
 */
export async function compressBlock(task: BlockTask): Promise<TaskResult> {
  const input = new Uint8Array(task.data, 0, task.length);
  const compressed = task.format === 'gzip' ? deflateBlock(input, task) : await zstdFrame(input, task.level, task.data.byteLength);
  if (compressed.byteLength >= task.length) return { block: task.data };
  // The compressed bytes are a view of memory used again by the next block: copied out now.
  new Uint8Array(task.data).set(compressed);
  return { block: task.data, compressedLength: compressed.byteLength };
}

/** This thread's room for deflate's output, grown to the largest block's bound and kept. */
let deflateOutput = Buffer.alloc(0);

/** Raw deflate of one block into this thread's output room (valid until the next block). */
function deflateBlock(input: Uint8Array, task: BlockTask): Uint8Array {
  const bound = input.length + (input.length >> 8) + 1024;
  if (deflateOutput.length < bound) deflateOutput = Buffer.allocUnsafeSlow(bound);
  return deflateInto(deflateOutput, input, {
    level: task.level,
    // A sync flush ends byte-aligned on an empty stored block, so blocks can be concatenated.
    finishFlush: task.final ? zlib.constants.Z_FINISH : zlib.constants.Z_SYNC_FLUSH,
  });
}

/** The parts of node:zlib's engine that let it write into memory we give it. */
interface ZlibEngineInternals {
  _outBuffer: Buffer;
  _outOffset: number;
  _chunkSize: number;
  _processChunk(chunk: Uint8Array, flushFlag: number): Buffer;
}

/**
 * zlib.deflateRawSync, but writing into `room` instead of a fresh buffer: node:zlib has no public
 * way to give it output space. Its sync path (`_processChunk`, kept by Node "for backwards
 * compatibility") writes into the engine's `_outBuffer` from `_outOffset`, `_chunkSize` bytes at
 * most, and closes the engine. Output longer than `room` would come back joined in a new buffer.
 */
export function deflateInto(room: Buffer, input: Uint8Array, options: zlib.ZlibOptions & { finishFlush: number }): Buffer {
  // The smallest chunk zlib accepts: the engine's own output buffer is never used.
  const engine = new zlib.DeflateRaw({ ...options, chunkSize: zlib.constants.Z_MIN_CHUNK }) as unknown as Partial<ZlibEngineInternals>;
  if (typeof engine._processChunk !== 'function' || !(engine._outBuffer instanceof Buffer) || engine._outOffset !== 0 || engine._chunkSize !== zlib.constants.Z_MIN_CHUNK) {
    throw new Error(`node:zlib ${process.version} no longer has the internals deflateInto uses (_processChunk, _outBuffer, _outOffset, _chunkSize)`);
  }
  engine._outBuffer = room;
  engine._chunkSize = room.length;
  return engine._processChunk(input, options.finishFlush);
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

/** `input` as one zstd frame, a view of the WebAssembly heap (valid until the next block); `capacity` is the stream's block size (the length of the block's buffer). */
async function zstdFrame(input: Uint8Array, level: number, capacity: number): Promise<Uint8Array> {
  const { wasm, codec, source, dest } = await zstdFor(capacity);
  try {
    // Within the size reserved above: no reallocation.
    source.resize(input.length, 0);
    wasm.toTypedArrayView(source).set(input);
    const size = codec.compress(dest, source, level);
    if (size < 0) throw new Error(`zstd compression failed (code ${size})`);
    return wasm.toTypedArrayView(dest).subarray(0, size);
  } catch (err) {
    // A failed WebAssembly instance may be left unusable: start the next task on a fresh one.
    zstdCompressor = undefined;
    throw zstdFailure(err);
  }
}
