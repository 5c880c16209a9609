import { isUtf8 } from 'node:buffer';
import { BundleError, escapedBytes } from '../core/errors.js';
import { CPIO_TRAILER, NEWC_HEADER_SIZE, pad4 } from './cpio-writer.js';

export interface CpioEntry {
  name: string;
  /** full st_mode incl. type bits */
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  mtime: number;
  size: number;
  ino: number;
  devMajor: number;
  devMinor: number;
  rdevMajor: number;
  rdevMinor: number;
}

const NEWC_MAGIC = '070701';
const CRC_MAGIC = '070702';
/** File type bits of CpioEntry.mode. */
export const S_IFMT = 0o170000;
export const S_IFREG = 0o100000;
export const S_IFDIR = 0o040000;
export const S_IFLNK = 0o120000;
export const S_IFCHR = 0o020000;
export const S_IFBLK = 0o060000;
export const S_IFIFO = 0o010000;
export const S_IFSOCK = 0o140000;
/** Longer names are not paths a tree can hold (PATH_MAX). */
const MAX_NAME_SIZE = 4096;

/** Pulls bytes out of a chunk stream without gathering more than one chunk, counting the offset. */
class ByteSource {
  offset = 0;
  private chunk: Buffer = Buffer.alloc(0);
  private readonly chunks: AsyncIterator<Buffer>;

  constructor(source: AsyncIterable<Buffer>) {
    this.chunks = source[Symbol.asyncIterator]();
  }

  /** Up to `max` (> 0) bytes, a view of the current chunk; undefined once the source has ended. */
  async some(max: number): Promise<Buffer | undefined> {
    while (this.chunk.length === 0) {
      const next = await this.chunks.next();
      if (next.done) return undefined;
      this.chunk = next.value;
    }
    const piece = this.chunk.subarray(0, max);
    this.chunk = this.chunk.subarray(piece.length);
    this.offset += piece.length;
    return piece;
  }

  /** Exactly n bytes (copied only when they straddle chunks), or undefined if the source ends first. */
  async exact(n: number): Promise<Buffer | undefined> {
    const first = await this.some(n);
    if (!first || first.length === n) return first;
    const parts = [first];
    for (let got = first.length; got < n; ) {
      const piece = await this.some(n - got);
      if (!piece) return undefined;
      parts.push(piece);
      got += piece.length;
    }
    return Buffer.concat(parts);
  }
}

/**
 * Reads a newc (070701) or crc (070702) cpio archive entry by entry, streaming each body. A body
 * must be read before asking for the next entry; what is left of it is skipped then. Stops at
 * TRAILER!!!; bad magic, malformed headers, truncation, a missing trailer or (crc format) a wrong
 * checksum are BundleErrors naming the offset and the entry.
 */
export async function* readCpio(source: AsyncIterable<Buffer>): AsyncIterable<{ entry: CpioEntry; body: AsyncIterable<Buffer> }> {
  const src = new ByteSource(source);
  for (let previous: string | undefined; ; ) {
    const { entry, withChecksum, checksum } = await readHeader(src, previous);
    if (entry.name === CPIO_TRAILER) return;
    previous = entry.name;

    let remaining = entry.size;
    let sum = 0;
    let current = true;
    const pull = async (): Promise<Buffer> => {
      const piece = await src.some(remaining);
      if (!piece) throw malformed(src.offset, `truncated archive: the data of "${entry.name}" ends early`, entry.name);
      remaining -= piece.length;
      if (withChecksum) for (const byte of piece) sum = (sum + byte) >>> 0;
      return piece;
    };
    const body = async function* (): AsyncIterable<Buffer> {
      while (remaining > 0) {
        if (!current) throw new Error(`cpio entry ${entry.name} read after the next entry was asked for`);
        yield await pull();
      }
    };

    yield { entry, body: body() };

    current = false;
    while (remaining > 0) await pull();
    if (withChecksum && sum !== checksum) {
      throw malformed(src.offset, `checksum mismatch in "${entry.name}" (crc format)`, entry.name);
    }
    await skip(src, pad4(entry.size) - entry.size, entry.name);
  }
}

async function readHeader(src: ByteSource, previous: string | undefined) {
  const start = src.offset;
  const after = previous === undefined ? 'at the start' : `after "${previous}"`;
  const raw = await src.exact(NEWC_HEADER_SIZE);
  if (!raw) {
    const what = src.offset === start ? 'archive ends without its TRAILER!!! entry' : 'truncated archive: incomplete header';
    throw malformed(start, `${what} ${after}`, previous);
  }
  const magic = raw.toString('latin1', 0, 6);
  if (magic !== NEWC_MAGIC && magic !== CRC_MAGIC) {
    throw malformed(start, `not a newc cpio header (magic "${printable(magic)}") ${after}`, previous);
  }
  const fields: number[] = [];
  for (let at = 6; at < NEWC_HEADER_SIZE; at += 8) {
    const text = raw.toString('latin1', at, at + 8);
    if (!/^[0-9a-fA-F]{8}$/.test(text)) throw malformed(start, `malformed header field "${printable(text)}" ${after}`, previous);
    fields.push(parseInt(text, 16));
  }
  const [ino, mode, uid, gid, nlink, mtime, size, devMajor, devMinor, rdevMajor, rdevMinor, nameSize, checksum] = fields;
  if (nameSize < 2 || nameSize > MAX_NAME_SIZE) throw malformed(start, `malformed header: name size ${nameSize} ${after}`, previous);
  const nameBytes = await src.exact(nameSize);
  if (!nameBytes) throw malformed(start, `truncated archive: incomplete name ${after}`, previous);
  if (nameBytes.indexOf(0) !== nameSize - 1) throw malformed(start, `malformed header: name not NUL-terminated ${after}`, previous);
  // Names are text from here on: decoded, one that is not UTF-8 would land under another name.
  const rawName = nameBytes.subarray(0, nameSize - 1);
  if (!isUtf8(rawName)) throw malformed(start, `the name ${escapedBytes(rawName)} is not valid UTF-8 (rename it where the archive was made)`, escapedBytes(rawName));
  const name = rawName.toString('utf8');
  // The trailer may end the data right after its name.
  if (name !== CPIO_TRAILER) await skip(src, pad4(NEWC_HEADER_SIZE + nameSize) - (NEWC_HEADER_SIZE + nameSize), name);
  const entry: CpioEntry = { name, mode, uid, gid, nlink, mtime, size, ino, devMajor, devMinor, rdevMajor, rdevMinor };
  // GNU cpio sums the data of regular files only (a symlink's target is not counted).
  return { entry, withChecksum: magic === CRC_MAGIC && (mode & S_IFMT) === S_IFREG, checksum };
}

async function skip(src: ByteSource, n: number, name: string): Promise<void> {
  if (n > 0 && !(await src.exact(n))) throw malformed(src.offset, `truncated archive after "${name}"`, name);
}

function malformed(offset: number, message: string, entryName: string | undefined): BundleError {
  return new BundleError(`cpio archive, offset ${offset}: ${message}`, entryName);
}

function printable(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, '?');
}
