/**
 * Bundle bytes -> tar members, as they stream: the compression is recognised from the first
 * bytes, then decompress -> tar-stream extract. Shared by import, verify and inspect.
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { BundleError, ImgportError } from '../core/errors.js';
import { createDecompressor, detectFormat } from '../pipeline/decompress.js';

export type Compression = ReturnType<typeof detectFormat>;

/** Bytes enough for every magic number detectFormat knows. */
const HEAD_BYTES = 8;

/** Splits off the first bytes of a stream without losing them: [head, the whole stream again]. */
async function peek(source: Readable, bytes: number): Promise<[Buffer, Readable]> {
  const iterator = source[Symbol.asyncIterator]();
  const chunks: Buffer[] = [];
  let length = 0;
  while (length < bytes) {
    const next = await iterator.next();
    if (next.done) break;
    const chunk = Buffer.from(next.value as Buffer);
    chunks.push(chunk);
    length += chunk.length;
  }
  const head = Buffer.concat(chunks);
  async function* replay(): AsyncGenerator<Buffer> {
    if (head.length) yield head;
    for (let next = await iterator.next(); !next.done; next = await iterator.next()) yield next.value as Buffer;
  }
  return [head, Readable.from(replay(), { objectMode: false })];
}

export interface BundleMember {
  header: tar.Header;
  /** The member's bytes; read it (or leave it: the reader drains it before the next member). */
  body: Readable;
}

/**
 * A damaged bundle's error names the bundle; our own typed errors pass through, but for the
 * decompressor's, which name no member and so would not say which bundle failed.
 */
function asBundleError(err: unknown, label: string): Error {
  if (err instanceof ImgportError && !(err instanceof BundleError && err.member === undefined)) return err;
  return new BundleError(`bundle ${label} is damaged or truncated: ${(err as Error)?.message ?? String(err)}`, label);
}

/** What went wrong upstream (decompression, tar structure), once known. */
export interface ReaderState {
  failure?: Error;
}

/**
 * The members of a bundle, in order. `onFormat` learns the compression before the first member.
 * Breaking out of the loop (or throwing in it) stops reading and closes the source. A member's
 * body fails with the raw upstream error; `state.failure` then holds the bundle's own error.
 */
export async function* readBundleMembers(
  source: Readable,
  label: string,
  onFormat?: (format: Compression) => void,
  state: ReaderState = {},
): AsyncGenerator<BundleMember> {
  const [head, whole] = await peek(source, HEAD_BYTES);
  if (head.length === 0) throw new BundleError(`bundle ${label} is empty`, label);
  const format = detectFormat(head);
  onFormat?.(format);
  const extract = tar.extract();
  const stages = format === 'none' ? [whole, extract] : [whole, createDecompressor(format), extract];
  let failure: Error | undefined;
  const flowing = pipeline(stages as unknown as [NodeJS.ReadableStream, NodeJS.WritableStream]).catch((err: unknown) => {
    failure = state.failure = asBundleError(err, label);
  });
  let finished = false;
  try {
    for await (const entry of extract) {
      if (failure) throw failure;
      yield { header: entry.header, body: entry as unknown as Readable };
      entry.resume();
    }
    await flowing;
    if (failure) throw failure;
    finished = true;
  } catch (err) {
    await Promise.race([flowing, new Promise((r) => setTimeout(r, 50))]);
    throw failure ?? asBundleError(err, label);
  } finally {
    if (!finished) {
      // Let a failing upstream report first, so callers can prefer its error.
      await Promise.race([flowing, new Promise((r) => setTimeout(r, 50))]);
      extract.destroy();
      whole.destroy();
      source.destroy();
    }
  }
}
