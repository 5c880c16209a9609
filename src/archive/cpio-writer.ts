import { PathError } from '../core/errors.js';
import type { FileData } from '../pipeline/file-reader.js';
import { readFilesInOrder } from '../pipeline/file-reader.js';
import type { EntryKind, TreeEntry } from '../pipeline/walk.js';

/** Member name = prefix + relPath: 'rootimg', 'rootimg/etc', ... or '.', './etc' (packimage). */
export interface CpioOptions {
  prefix: string;
}

export const NEWC_HEADER_SIZE = 110;
export const CPIO_TRAILER = 'TRAILER!!!';
/** GNU cpio writes in 512-byte blocks and pads the archive's end to a whole block. */
const BLOCK_SIZE = 512;
/** newc fields are 8 hex digits. */
const MAX_FIELD = 0xffffffff;
/** Headers and small bodies are gathered into pieces of about this size before they are yielded. */
const BATCH_SIZE = 64 * 1024;

const TYPE_BITS: Record<EntryKind, number> = {
  file: 0o100000,
  hardlink: 0o100000,
  dir: 0o040000,
  symlink: 0o120000,
  chardev: 0o020000,
  blockdev: 0o060000,
  fifo: 0o010000,
};

/** What the archive says about one entry besides its TreeEntry. */
interface Placement {
  name: string;
  ino: number;
  nlink: number;
  /** bytes stored after the header: file data (on the last name of a link group), symlink target */
  dataSize: number;
  /** the group's first name when this is the last name of a hard-link group (its data comes here) */
  dataFrom?: TreeEntry;
}

/**
 * Decides names, inode numbers and where data goes, GNU cpio's newc way: inode numbers are a
 * sequence (reproducible output), all names of a hard-link group share one and carry the group
 * size as nlink, and the data goes with the last name of the group, the others being empty.
 */
function* placements(entries: TreeEntry[], opts: CpioOptions): Generator<[TreeEntry, Placement]> {
  const groupSize = new Map<string, number>(); // by the relPath of the group's first name
  for (const e of entries) if (e.kind === 'hardlink') groupSize.set(e.linkTarget!, (groupSize.get(e.linkTarget!) ?? 1) + 1);
  const groups = new Map<string, { first: TreeEntry; ino: number; left: number }>();
  let ino = 0;
  for (const e of entries) {
    const name = memberName(e.relPath, opts.prefix);
    if (e.kind === 'hardlink') {
      const group = groups.get(e.linkTarget!);
      if (!group) throw new Error(`hard link ${e.relPath} listed before ${e.linkTarget}`);
      const nlink = groupSize.get(e.linkTarget!)!;
      if (--group.left > 0) yield [e, { name, ino: group.ino, nlink, dataSize: 0 }];
      else yield [e, { name, ino: group.ino, nlink, dataSize: group.first.size, dataFrom: group.first }];
      continue;
    }
    ino++;
    const linked = e.kind === 'file' ? groupSize.get(e.relPath) : undefined;
    if (linked) groups.set(e.relPath, { first: e, ino, left: linked - 1 });
    const dataSize = e.kind === 'file' ? (linked ? 0 : e.size) : e.kind === 'symlink' ? Buffer.byteLength(e.linkTarget!) : 0;
    yield [e, { name, ino, nlink: linked ?? (e.kind === 'dir' ? e.nlink : 1), dataSize }];
  }
}

function memberName(relPath: string, prefix: string): string {
  if (relPath === '.') return prefix;
  return `${prefix}/${relPath}`;
}

/** Exact byte size of the archive, trailer and final block padding included. */
export function cpioArchiveSize(entries: TreeEntry[], opts: CpioOptions): number {
  let size = 0;
  for (const [, p] of placements(entries, opts)) size += headerSize(p.name) + pad4(p.dataSize);
  size += headerSize(CPIO_TRAILER);
  return Math.ceil(size / BLOCK_SIZE) * BLOCK_SIZE;
}

/**
 * The archive as chunks. `files` must be readFilesInOrder over the same entries. Data of a
 * hard-linked file belongs after its last name, so its first name's data is passed over and the
 * file is read again when the last name comes (hard links are rare; holding the data would not be
 * bounded).
 */
export async function* cpioChunks(entries: TreeEntry[], files: AsyncIterable<FileData>, opts: CpioOptions): AsyncIterable<Buffer> {
  const fileData = files[Symbol.asyncIterator]();
  const out = new Batcher();
  for (const [entry, p] of placements(entries, opts)) {
    checkFits(entry, p);
    const header = newcHeader(entry, p);
    let body: AsyncIterable<Buffer> | Iterable<Buffer> | undefined;
    if (entry.kind === 'file') {
      const next = await fileData.next();
      if (next.done || next.value.entry !== entry) throw new Error(`file data out of step with the entries at ${entry.relPath}`);
      if (p.dataSize > 0) body = next.value.chunks;
    } else if (p.dataFrom) {
      body = readAgain(p.dataFrom);
    } else if (entry.kind === 'symlink') {
      body = [Buffer.from(entry.linkTarget!)];
    }
    yield* out.add(header);
    if (body) for await (const chunk of body) yield* out.add(chunk);
    yield* out.add(Buffer.alloc(pad4(p.dataSize) - p.dataSize));
  }
  yield* out.add(newcHeader(undefined, { name: CPIO_TRAILER, ino: 0, nlink: 1, dataSize: 0 }));
  yield* out.finish(BLOCK_SIZE);
}

async function* readAgain(entry: TreeEntry): AsyncIterable<Buffer> {
  for await (const file of readFilesInOrder([entry])) yield* file.chunks;
}

function checkFits(entry: TreeEntry, p: Placement): void {
  for (const [field, value] of [['size', p.dataSize], ['uid', entry.uid], ['gid', entry.gid], ['mtime', entry.mtime]] as const) {
    if (value < 0 || value > MAX_FIELD) {
      throw new PathError(`cannot archive ${entry.absPath}: its ${field} ${value} does not fit in a cpio newc header`, entry.absPath);
    }
  }
}

/** "070701", 13 fields of 8 upper-case hex digits (as GNU cpio writes them), the name with its NUL, padded to 4 bytes. */
function newcHeader(entry: TreeEntry | undefined, p: Placement): Buffer {
  const fields = [
    p.ino,
    entry ? TYPE_BITS[entry.kind] | entry.mode : 0,
    entry?.uid ?? 0,
    entry?.gid ?? 0,
    p.nlink,
    entry?.mtime ?? 0,
    p.dataSize,
    0, // dev major/minor: the inode sequence is unique on its own
    0,
    entry?.rdevMajor ?? 0,
    entry?.rdevMinor ?? 0,
    Buffer.byteLength(p.name) + 1,
    0, // check: unused in newc
  ];
  const header = Buffer.alloc(headerSize(p.name));
  header.write('070701' + fields.map((f) => f.toString(16).toUpperCase().padStart(8, '0')).join(''), 0, 'latin1');
  header.write(p.name, NEWC_HEADER_SIZE);
  return header;
}

function headerSize(name: string): number {
  return pad4(NEWC_HEADER_SIZE + Buffer.byteLength(name) + 1);
}

export function pad4(n: number): number {
  return (n + 3) & ~3;
}

/**
 * Gathers small pieces into chunks of their own memory, so consumers are not handed thousands of
 * tiny buffers; big pieces go through as they are after what was gathered.
 */
class Batcher {
  private parts: Buffer[] = [];
  private bytes = 0;
  private total = 0;

  *add(piece: Buffer): Generator<Buffer> {
    this.total += piece.length;
    if (piece.length >= BATCH_SIZE) {
      yield* this.flush();
      yield piece;
      return;
    }
    this.parts.push(piece);
    this.bytes += piece.length;
    if (this.bytes >= BATCH_SIZE) yield* this.flush();
  }

  /** Pads everything written so far to a multiple of `block`, then flushes. */
  *finish(block: number): Generator<Buffer> {
    yield* this.add(Buffer.alloc((block - (this.total % block)) % block));
    yield* this.flush();
  }

  private *flush(): Generator<Buffer> {
    if (this.bytes === 0) return;
    const chunk = Buffer.allocUnsafeSlow(this.bytes);
    let at = 0;
    for (const part of this.parts) at += part.copy(chunk, at);
    this.parts = [];
    this.bytes = 0;
    yield chunk;
  }
}
