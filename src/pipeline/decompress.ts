/**
 * Decompression for import: gzip (any producer, several members allowed) through node:zlib, and
 * zstd in process through zstd-codec's streaming decoder, fed one block at a time. A stream that
 * ends early, is corrupt, or has anything after its last member or frame is an error: a bundle
 * is read whole or not at all.
 */
import { Duplex, PassThrough, type TransformCallback, type TransformOptions } from 'node:stream';
import zlib from 'node:zlib';
import { BundleError } from '../core/errors.js';
import { GZIP_MAGIC, ZSTD_MAGIC } from './compress/format.js';
import { Signal } from './compress/signal.js';
import { ZstdFrameScanner } from './compress/zstd.js';
import { loadZstdWasm, type ZstdWasm } from './compress/zstd-wasm.js';
import { youngGarbage } from './young-garbage.js';

export type DetectedFormat = 'gzip' | 'zstd' | 'none';

/** The compression of a stream from its first bytes (anything unknown is taken as plain tar). */
export function detectFormat(head: Buffer): DetectedFormat {
  if (head.subarray(0, 2).equals(GZIP_MAGIC)) return 'gzip';
  if (head.subarray(0, 4).equals(ZSTD_MAGIC)) return 'zstd';
  // A zstd stream may open with a skippable frame.
  if (head.length >= 4 && (head.readUInt32LE(0) & 0xfffffff0) >>> 0 === 0x184d2a50) return 'zstd';
  return 'none';
}

/** A Duplex taking compressed bytes and giving the decompressed ones; failures are BundleErrors. */
export function createDecompressor(format: DetectedFormat): Duplex {
  switch (format) {
    case 'gzip':
      return new CheckedGunzip({ readableHighWaterMark: INFLATE_AHEAD });
    case 'zstd':
      return new ZstdDecompressor();
    case 'none':
      return new PassThrough();
  }
}

/**
 * Output chunk size for inflating: zlib's default 16 KiB chunks cost a hash update, a parse step
 * and a file write each; 1 MiB ones made a netboot import twice as fast.
 */
const INFLATE_CHUNK_SIZE = 1024 * 1024;

/**
 * Inflated bytes kept ready (zlib works in the thread pool): a few chunks, so inflating goes on
 * while the main thread hashes and writes the previous ones (a netboot import 7% faster).
 */
const INFLATE_AHEAD = 4 * INFLATE_CHUNK_SIZE;

const TRAILING_DATA = 'trailing data after the compressed stream';
const TRUNCATED = 'bundle is truncated';

/** zlib's complaints about a member header: after a whole member they mean the data that follows is no gzip. */
const GZIP_HEADER_ERRORS = ['incorrect header check', 'unknown compression method', 'unknown header flags set', 'invalid window size'];

/** node:zlib's constructor; its typings describe only the instance. */
const ZlibGunzip = (zlib as unknown as { Gunzip: new (options?: zlib.ZlibOptions & TransformOptions) => zlib.Gunzip }).Gunzip;

/** node:zlib's gunzip in 1 MiB chunks, its fresh output buffers counted for early collection (young-garbage.ts). */
class Gunzip extends ZlibGunzip {
  constructor(options?: Omit<TransformOptions, 'flush'>) {
    super({ ...options, chunkSize: INFLATE_CHUNK_SIZE });
  }

  override push(chunk: unknown, encoding?: BufferEncoding): boolean {
    if (chunk instanceof Buffer) youngGarbage.allocated(chunk.length);
    return super.push(chunk, encoding);
  }
}

/** A plain gunzip for a stream inside the bundle (its errors are the caller's to name). */
export function createGunzip(): zlib.Gunzip {
  return new Gunzip();
}

/**
 * Node's gunzip with the check it leaves out: it stops silently at a zero byte after a member
 * (reported here as trailing data). Its errors become BundleErrors.
 */
class CheckedGunzip extends Gunzip {
  private bytesIn = 0;
  private bytesOut = 0;

  override _transform(chunk: Buffer, encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytesIn += chunk.length;
    super._transform(chunk, encoding, callback);
  }

  override push(chunk: unknown, encoding?: BufferEncoding): boolean {
    if (chunk instanceof Buffer) this.bytesOut += chunk.length;
    // zlib ends the output early, without an error, when it stops before the end of its input.
    if (chunk === null && this.bytesWritten < this.bytesIn) {
      this.destroy(new BundleError(TRAILING_DATA));
      return false;
    }
    return super.push(chunk, encoding);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    super._destroy(error && this.asBundleError(error), callback);
  }

  private asBundleError(error: Error): Error {
    if (error instanceof BundleError) return error;
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'Z_BUF_ERROR') return new BundleError(TRUNCATED);
    if (code === 'Z_DATA_ERROR' || code === 'Z_STREAM_ERROR') {
      // The first member's magic was checked before this stream was made, so a bad magic is in
      // data after a member; output of that member may still be unpushed (a 1 MiB chunk).
      const badMagic = error.message === 'incorrect header check';
      const trailing = badMagic || (this.bytesOut > 0 && GZIP_HEADER_ERRORS.includes(error.message));
      return new BundleError(trailing ? TRAILING_DATA : `corrupt gzip data: ${error.message}`);
    }
    return error;
  }
}

/**
 * zstd decoding in this thread, on a WebAssembly instance of its own. The scanner cuts the input
 * at block ends, so each call into the decoder yields at most one block: output waits for the
 * reader block by block, and memory stays bounded even for data that compresses a thousandfold.
 */
class ZstdDecompressor extends Duplex {
  private readonly scanner = new ZstdFrameScanner();
  private decoder: Promise<{ wasm: ZstdWasm; stream: InstanceType<ZstdWasm['ZstdDecompressStreamBinding']> }> | undefined;
  private readonly readWanted = new Signal();
  private readonly pushDecoded = (decoded: Uint8Array): void => {
    this.wantsMore = this.push(Buffer.from(decoded.buffer, decoded.byteOffset, decoded.byteLength));
  };
  private wantsMore = true;

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.decodeChunk(chunk).then(() => callback(), callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.finishDecoding().then(() => callback(), callback);
  }

  override _read(): void {
    this.wantsMore = true;
    this.readWanted.wake();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.readWanted.wake();
    this.decoder?.then(({ stream }) => stream.delete()).catch(() => undefined);
    callback(error);
  }

  private openDecoder() {
    this.decoder ??= loadZstdWasm().then((wasm) => {
      const stream = new wasm.ZstdDecompressStreamBinding();
      stream.begin();
      return { wasm, stream };
    });
    return this.decoder;
  }

  private async decodeChunk(chunk: Buffer): Promise<void> {
    const { stream } = await this.openDecoder();
    for (const piece of this.scanner.pieces(chunk)) {
      if (!piece.decode) continue;
      if (!this.decode(() => stream.transform(piece.data, this.pushDecoded))) throw new BundleError('corrupt zstd data');
      while (!this.wantsMore && !this.destroyed) await this.readWanted.wait();
    }
  }

  private async finishDecoding(): Promise<void> {
    this.scanner.finish();
    const { stream } = await this.openDecoder();
    if (!this.decode(() => stream.end(this.pushDecoded))) throw new BundleError('corrupt zstd data');
    this.push(null);
  }

  /** Runs a decoder call; false when it reports or throws an error. */
  private decode(call: () => boolean): boolean {
    try {
      return call();
    } catch {
      return false;
    }
  }
}
