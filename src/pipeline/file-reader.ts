import fs from 'node:fs';
import { promisify } from 'node:util';
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
 * consumer iterates them. A small file is read synchronously: from the page cache that costs a
 * few µs where an awaited read costs ~150 µs on these machines. A big file's next chunk is read
 * in the thread pool while the consumer works on the current one. Chunks are carved
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

/**
 * Streams a big file in chunks. The next chunk is read in the thread pool while the consumer
 * works on this one (hashing, framing, handing it to a compressor thread): for stored data the
 * read was a third of the main thread's time, now spent beside it.
 */
async function* streamFile(entry: TreeEntry, chunkSize: number): AsyncIterable<Buffer> {
  const fd = openForReading(entry);
  let reading: Promise<Buffer> | undefined;
  try {
    let compressed = false;
    const readAt = (offset: number): Promise<Buffer> => {
      const read = readChunk(fd, chunkPool.take(Math.min(chunkSize, entry.size - offset)), entry, offset);
      // A read ahead may fail while the consumer is busy elsewhere: its failure is met by the
      // await below, not reported meanwhile as an unhandled rejection (which ends the process).
      read.catch(() => undefined);
      return read;
    };
    reading = readAt(0);
    for (let offset = 0; offset < entry.size; ) {
      // `reading` is the read ahead the consumer has not asked for yet (the finally below waits for it).
      const current = reading!;
      reading = undefined;
      const chunk = await current;
      // The first chunk tells whether the file is compressed (by its magic, or as a big file by a
      // trial); the mark goes on every chunk.
      if (offset === 0) compressed = entry.size >= MARK_COMPRESSED_FROM && (looksCompressed(chunk) || looksIncompressible(chunk));
      offset += chunk.length;
      if (offset < entry.size) reading = readAt(offset);
      yield compressed ? markCompressed(chunk) : chunk;
    }
    checkUnchanged(fd, entry, entry.size + fs.readSync(fd, Buffer.alloc(1), 0, 1, entry.size));
  } finally {
    // A read still in flight (the consumer stopped early) must end before its descriptor closes;
    // its chunk was never handed on, so no one reads it.
    if (reading) await reading.then((chunk) => chunkPool.done(chunk), () => undefined);
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

/** Fills `buf` from `offset` in the thread pool; a file that ends early shrank since the walk. */
async function readChunk(fd: number, buf: Buffer, entry: TreeEntry, offset: number): Promise<Buffer> {
  let filled = 0;
  while (filled < buf.length) {
    const { bytesRead } = await readAsync(fd, buf, filled, buf.length - filled, offset + filled);
    if (bytesRead === 0) throw sizeChanged(entry, offset + filled);
    filled += bytesRead;
  }
  return buf;
}

const readAsync = promisify(fs.read) as (fd: number, buf: Buffer, offset: number, length: number, position: number) => Promise<{ bytesRead: number }>;

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
