/**
 * Bundle bytes -> tar members, as they stream: the compression is recognised from the first
 * bytes, then decompress -> tar-stream extract. Shared by import, verify and inspect.
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { isUtf8 } from 'node:buffer';
import { BundleError, ImgportError, escapedBytes } from '../core/errors.js';
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

const TAR_BLOCK = 512;

/** A member's data as the tar holds it: padded to whole blocks. */
function blocks(size: number): number {
  return Math.ceil(size / TAR_BLOCK) * TAR_BLOCK;
}

/** Counts a tar's bytes as they pass (it listens, adding no stage to the stream) and keeps its last block. */
class TarTail {
  bytes = 0;
  private tail: Buffer = Buffer.alloc(0);

  constructor(tarStream: Readable) {
    tarStream.on('data', (chunk: Buffer) => {
      this.bytes += chunk.length;
      this.tail = chunk.length >= TAR_BLOCK ? chunk.subarray(chunk.length - TAR_BLOCK) : Buffer.concat([this.tail, chunk]).subarray(-TAR_BLOCK);
    });
  }

  /**
   * Whether the tar went on past `end` (where its last member's data ends) and ended with a zero
   * block: its end-of-archive. Cut at a member's boundary it would read as a smaller whole, and cut
   * after a pax or long-name header (which tar-stream holds for the next member) it ends on text.
   */
  endsWhole(end: number): boolean {
    return this.bytes >= end + TAR_BLOCK && this.tail.length === TAR_BLOCK && this.tail.every((byte) => byte === 0);
  }
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

/** The largest user or group id (32 bits). */
const MAX_ID = 0xffff_ffff;
/** Seconds a JavaScript Date can hold either side of 1970. */
const MAX_PAX_SECONDS = 8.64e12;

/**
 * A header as the member is: its name and link target as text, and the owner and mtime its pax
 * records give (ustar's fields cannot hold an id above 262143 or a time outside 1970-2242: GNU tar
 * and our export put those in pax records). Names that are not UTF-8 are refused: decoded, a
 * Latin-1 name from an old system would be written under another name (U+FFFD for each odd byte),
 * and two of them could collide. Names from pax records (always UTF-8) are decoded by tar-stream.
 */
function memberHeader(header: tar.Header): tar.Header {
  const text = (value: string, fromPax: boolean, what: (shown: string) => string): string => {
    const raw = Buffer.from(value, fromPax ? 'utf8' : 'latin1');
    if (fromPax ? !value.includes('\uFFFD') : isUtf8(raw)) return raw.toString('utf8');
    const shown = fromPax ? value : escapedBytes(raw);
    throw new BundleError(`refusing member ${what(shown)} is not valid UTF-8 (rename it where the bundle was made)`, shown);
  };
  const pax = (header.pax ?? {}) as Record<string, string | undefined>; // typed unknown by tar-stream
  const name = text(header.name, pax.path !== undefined, (shown) => `${shown}: its name`);
  const linkname = header.linkname && text(header.linkname, pax.linkpath !== undefined, (shown) => `${name}: its link target ${shown}`);
  const number = (key: string, valid: RegExp, max: number): number | undefined => {
    const value = pax[key];
    if (value === undefined) return undefined;
    if (!valid.test(value) || Math.abs(Number(value)) > max) {
      throw new BundleError(`refusing member ${name}: its pax record ${key}=${JSON.stringify(value)} is not a valid ${key}`, name);
    }
    return Number(value);
  };
  const uid = number('uid', /^\d+$/, MAX_ID) ?? header.uid;
  const gid = number('gid', /^\d+$/, MAX_ID) ?? header.gid;
  const mtime = number('mtime', /^-?\d+(\.\d+)?$/, MAX_PAX_SECONDS);
  return { ...header, name, linkname, uid, gid, mtime: mtime === undefined ? header.mtime : new Date(mtime * 1000) };
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
  // Latin-1: one character per byte, so that memberHeader sees a name's bytes as they are.
  const extract = tar.extract({ filenameEncoding: 'latin1' } as Parameters<typeof tar.extract>[0]); // an option its types leave out
  const tarStream: Readable = format === 'none' ? whole : createDecompressor(format);
  const stages = format === 'none' ? [whole, extract] : [whole, tarStream, extract];
  let failure: Error | undefined;
  const flowing = pipeline(stages as unknown as [NodeJS.ReadableStream, NodeJS.WritableStream]).catch((err: unknown) => {
    failure = state.failure = asBundleError(err, label);
  });
  const tarBytes = new TarTail(tarStream);
  let finished = false;
  let last: { name: string; end: number } | undefined;
  try {
    for await (const entry of extract) {
      const header = memberHeader(entry.header);
      // Destroyed already: the bundle ended inside this member (in the chunk that held its header).
      if (failure || (entry as unknown as { destroyed: boolean }).destroyed) {
        await flowing;
        throw failure ?? new BundleError(`bundle ${label} is damaged or truncated: it ends inside ${header.name}`, label);
      }
      // A directory's size, if any, is no data (tar-stream reads none either).
      const dataSize = header.type === 'directory' ? 0 : header.size ?? 0;
      last = { name: header.name, end: (entry.header as { byteOffset?: number }).byteOffset! + blocks(dataSize) };
      yield { header, body: entry as unknown as Readable };
      entry.resume();
    }
    await flowing;
    if (failure) throw failure;
    if (!tarBytes.endsWhole(last?.end ?? 0)) {
      throw new BundleError(`bundle ${label} is damaged or truncated: it ends without the tar's end-of-archive blocks${last ? `, after ${last.name}` : ''}`, label);
    }
    finished = true;
  } catch (err) {
    await Promise.race([flowing, new Promise((r) => setTimeout(r, 50))]);
    // A refusal of ours (memberHeader) stands; the stream it stopped then fails as a premature close.
    throw err instanceof ImgportError ? err : failure ?? asBundleError(err, label);
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
