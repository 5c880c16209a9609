import fs from 'node:fs';
import { PathError, describeFsError } from '../core/errors.js';
import { looksCompressed, looksIncompressible, markCompressed } from './compress/format.js';
import { chunkPool } from './chunk-pool.js';
import { type TreeEntry } from './walk.js';

export interface ReadOptions {
  /** files up to this size are read whole; bigger ones are streamed in chunks of this size (default 1 MiB) */
  chunkSize?: number;
}

/** Where an archive writer gets a file's data: readFile, or a wrapper that counts or hashes it on the way. */
export type FileDataSource = (entry: TreeEntry) => AsyncIterable<Buffer>;

/**
 * Compressed files at least this big have their chunks marked to be stored, not compressed again;
 * smaller ones are compressed with their neighbours rather than cut the blocks into slivers.
 */
const MARK_COMPRESSED_FROM = 64 * 1024;

/**
 * The data of a regular file as the walk saw it: a small file whole, a big one in chunks as the
 * consumer iterates them. Reads are synchronous: from the page cache one costs a few µs where an
 * awaited one costs ~150 µs on these machines, and the compressor threads go on working while
 * the main thread reads. A read blocks the main thread for at most one chunk. Chunks are carved
 * from the chunk pool: the stage where their bytes end reports them done (chunk-pool.ts), and no
 * stage may transfer them to a thread. Chunks of compressed files (by their first bytes) carry
 * the compressed mark.
 */
export function readFile(entry: TreeEntry, opts: ReadOptions = {}): AsyncIterable<Buffer> {
  const chunkSize = opts.chunkSize ?? 1024 * 1024;
  if (entry.size > chunkSize) return streamFile(entry, chunkSize);
  return readSmallFile(entry);
}

/** A small file, read when its consumer starts iterating. */
async function* readSmallFile(entry: TreeEntry): AsyncIterable<Buffer> {
  const content = readWholeFile(entry);
  if (entry.size >= MARK_COMPRESSED_FROM && looksCompressed(content)) markCompressed(content);
  if (content.length > 0) yield content;
}

/** Reads a small file whole, then checks it still is the file the walk saw (a file grown since shows in fstat's size). */
function readWholeFile(entry: TreeEntry): Buffer {
  const fd = openForReading(entry);
  try {
    const buf = chunkPool.take(entry.size);
    let got = 0;
    for (let n = -1; n !== 0 && got < entry.size; got += n) n = fs.readSync(fd, buf, got, buf.length - got, got);
    checkUnchanged(fd, entry, got);
    return buf;
  } finally {
    fs.closeSync(fd);
  }
}

/** Streams a big file in chunks, one read per chunk the consumer asks for. */
async function* streamFile(entry: TreeEntry, chunkSize: number): AsyncIterable<Buffer> {
  const fd = openForReading(entry);
  try {
    let compressed = false;
    for (let offset = 0; offset < entry.size; ) {
      const chunk = chunkPool.take(Math.min(chunkSize, entry.size - offset));
      offset = readFully(fd, chunk, entry, offset);
      // The first chunk tells whether the file is compressed (by its magic, or as a big file by a
      // trial); the mark goes on every chunk.
      if (offset === chunk.length) compressed = entry.size >= MARK_COMPRESSED_FROM && (looksCompressed(chunk) || looksIncompressible(chunk));
      yield compressed ? markCompressed(chunk) : chunk;
    }
    checkUnchanged(fd, entry, entry.size + fs.readSync(fd, Buffer.alloc(1), 0, 1, entry.size));
  } finally {
    fs.closeSync(fd);
  }
}

function openForReading(entry: TreeEntry): number {
  try {
    // O_NONBLOCK: a name replaced by a fifo since the walk must not hang the open.
    return fs.openSync(entry.absPath, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  } catch (err) {
    throw new PathError(`cannot read ${entry.absPath}: ${describeFsError(err)}`, entry.absPath);
  }
}

/** Fills buf from `offset`; a file that ends early shrank since the walk. Returns the end offset. */
function readFully(fd: number, buf: Buffer, entry: TreeEntry, offset: number): number {
  let filled = 0;
  while (filled < buf.length) {
    const bytesRead = fs.readSync(fd, buf, filled, buf.length - filled, offset + filled);
    if (bytesRead === 0) throw sizeChanged(entry, offset + filled);
    filled += bytesRead;
  }
  return offset + filled;
}

/** After reading: still a regular file with the size and mtime of the walk. */
function checkUnchanged(fd: number, entry: TreeEntry, bytesRead: number): void {
  const stat = fs.fstatSync(fd);
  if (!stat.isFile()) throw new PathError(`cannot read ${entry.absPath}: it is no longer a regular file`, entry.absPath);
  if (bytesRead !== entry.size || stat.size !== entry.size) throw sizeChanged(entry, Math.max(bytesRead, stat.size));
  if (Math.floor(stat.mtimeMs / 1000) !== entry.mtime) {
    throw new PathError(`file changed while being read: ${entry.absPath} (modified since the walk)`, entry.absPath);
  }
}

function sizeChanged(entry: TreeEntry, read: number): PathError {
  return new PathError(
    `file changed size while being read: ${entry.absPath} (expected ${entry.size} bytes, read ${read})`,
    entry.absPath,
  );
}
