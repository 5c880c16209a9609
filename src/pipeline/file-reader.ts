import fs from 'node:fs';
import { promisify } from 'node:util';
import { PathError } from '../core/errors.js';
import { describeFsError, type TreeEntry } from './walk.js';

export interface FileData {
  entry: TreeEntry;
  chunks: AsyncIterable<Buffer>;
}

export interface ReadOptions {
  /** bytes of small files read ahead of the consumer (default 8 MiB: enough to keep hundreds of small reads in flight) */
  readAheadBytes?: number;
  /** files up to this size are read whole; bigger ones are streamed in chunks of this size (default 1 MiB) */
  chunkSize?: number;
}

const openFile = promisify(fs.open);
const fstatFile = promisify(fs.fstat);
const readInto = promisify(fs.read);
const closeFile = promisify(fs.close);

/** Small files read at the same time: each holds an open descriptor while it is read. */
const MAX_READS_IN_FLIGHT = 32;
/** Files waiting ahead of the consumer, counted apart from bytes since empty files cost none. */
const MAX_FILES_AHEAD = 4096;

interface Pending {
  entry: TreeEntry;
  /** small files: their whole content, being read; big files are opened when their turn comes */
  data?: Promise<Buffer>;
}

/**
 * Yields every entry of kind 'file' in order with its data. Small files are read ahead
 * concurrently (bounded in bytes, files and open descriptors) because one awaited read costs
 * ~150 µs here; big files are streamed in chunks once the consumer iterates them. Every chunk
 * owns its memory, so downstream may transfer it to a worker thread.
 */
export async function* readFilesInOrder(entries: Iterable<TreeEntry>, opts: ReadOptions = {}): AsyncIterable<FileData> {
  const readAhead = opts.readAheadBytes ?? 8 * 1024 * 1024;
  const chunkSize = opts.chunkSize ?? 1024 * 1024;
  const files = entries[Symbol.iterator]();
  const ahead: Pending[] = [];
  const limitReads = semaphore(MAX_READS_IN_FLIGHT);
  let bytesAhead = 0;
  let next = nextFile(files);

  // Starts reads while the budget allows; the first waiting file always starts, however big.
  const fillAhead = () => {
    while (next && ahead.length < MAX_FILES_AHEAD) {
      const entry = next;
      if (entry.size > chunkSize) ahead.push({ entry });
      else {
        if (ahead.length > 0 && bytesAhead + entry.size > readAhead) return;
        bytesAhead += entry.size;
        const data = limitReads(() => readWholeFile(entry));
        data.catch(() => {}); // reported in order, when the consumer reaches this file
        ahead.push({ entry, data });
      }
      next = nextFile(files);
    }
  };

  for (fillAhead(); ahead.length > 0; fillAhead()) {
    const { entry, data } = ahead.shift()!;
    if (!data) {
      yield { entry, chunks: streamFile(entry, chunkSize) };
      continue;
    }
    const content = await data;
    bytesAhead -= entry.size;
    yield { entry, chunks: single(content) };
  }
}

function nextFile(files: Iterator<TreeEntry>): TreeEntry | undefined {
  for (let r = files.next(); !r.done; r = files.next()) if (r.value.kind === 'file') return r.value;
  return undefined;
}

async function* single(buf: Buffer): AsyncIterable<Buffer> {
  if (buf.length > 0) yield buf;
}

/**
 * Reads a small file whole into memory of its own (one byte more is asked for, to notice growth
 * in the same read), then checks it still is the file the walk saw.
 */
async function readWholeFile(entry: TreeEntry): Promise<Buffer> {
  const fd = await openForReading(entry);
  try {
    const buf = Buffer.allocUnsafeSlow(entry.size + 1);
    let got = 0;
    // Reading stops at the walk's size: a file grown since shows in the spare byte or in fstat's size.
    for (let n = -1; n !== 0 && got < entry.size; got += n) {
      ({ bytesRead: n } = await readInto(fd, buf, got, buf.length - got, got));
    }
    await checkUnchanged(fd, entry, got);
    return buf.subarray(0, entry.size);
  } finally {
    await closeFile(fd);
  }
}

/** Streams a big file in chunks of its own memory, the next read in flight while one is consumed. */
async function* streamFile(entry: TreeEntry, chunkSize: number): AsyncIterable<Buffer> {
  const fd = await openForReading(entry);
  let pending: Promise<Buffer> | undefined;
  try {
    const readChunk = (offset: number) => {
      const buf = Buffer.allocUnsafeSlow(Math.min(chunkSize, entry.size - offset));
      return readFully(fd, buf, entry, offset).then(() => buf);
    };
    let offset = 0;
    pending = readChunk(0);
    while (offset < entry.size) {
      const chunk: Buffer = await pending!;
      offset += chunk.length;
      pending = offset < entry.size ? readChunk(offset) : undefined;
      pending?.catch(() => {}); // its failure is reported when awaited, on the next turn
      yield chunk;
    }
    const { bytesRead: extra } = await readInto(fd, Buffer.alloc(1), 0, 1, offset);
    await checkUnchanged(fd, entry, offset + extra);
  } finally {
    // A consumer that stops early leaves a read in flight: let it end before the descriptor goes.
    await pending?.catch(() => {});
    await closeFile(fd);
  }
}

async function openForReading(entry: TreeEntry): Promise<number> {
  try {
    // O_NONBLOCK: a name replaced by a fifo since the walk must not hang the open.
    return await openFile(entry.absPath, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  } catch (err) {
    throw new PathError(`cannot read ${entry.absPath}: ${describeFsError(err)}`, entry.absPath);
  }
}

/** Fills buf from `offset`; a file that ends early shrank since the walk. Returns the end offset. */
async function readFully(fd: number, buf: Buffer, entry: TreeEntry, offset = 0): Promise<number> {
  let filled = 0;
  while (filled < buf.length) {
    const { bytesRead } = await readInto(fd, buf, filled, buf.length - filled, offset + filled);
    if (bytesRead === 0) throw sizeChanged(entry, offset + filled);
    filled += bytesRead;
  }
  return offset + filled;
}

/** After reading: still a regular file with the size and mtime of the walk. */
async function checkUnchanged(fd: number, entry: TreeEntry, bytesRead: number): Promise<void> {
  const stat = await fstatFile(fd);
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

/** Runs at most `limit` of the given tasks at a time. */
function semaphore(limit: number) {
  let running = 0;
  const queue: (() => void)[] = [];
  return <T>(task: () => Promise<T>): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const start = () => {
        running++;
        task()
          .then(resolve, reject)
          .finally(() => {
            running--;
            queue.shift()?.();
          });
      };
      if (running < limit) start();
      else queue.push(start);
    });
}
