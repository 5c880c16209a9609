import { PathError } from '../core/errors.js';
import { readFile, type FileDataSource } from '../pipeline/file-reader.js';
import { chunkPool } from '../pipeline/chunk-pool.js';
import { archiveName, type EntryKind, type TreeEntry, type TreeSurvey } from '../pipeline/walk.js';

export interface CpioOptions {
  /** Member name = prefix + relPath: 'rootimg', 'rootimg/etc', ... or '.', './etc' (packimage). */
  prefix: string;
  /** A file's data (default: readFile). */
  data?: FileDataSource;
}

export const NEWC_HEADER_SIZE = 110;
export const CPIO_TRAILER = 'TRAILER!!!';
/** GNU cpio writes in 512-byte blocks and pads the archive's end to a whole block. */
const BLOCK_SIZE = 512;
/** newc fields are 8 hex digits. */
const MAX_FIELD = 0xffffffff;
/** Padding after an entry's data: views of it, never written to. */
const ZEROS = Buffer.alloc(4);
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
 * size as nlink, and the data goes with the last name of the group, the others being empty. The
 * group sizes come from the tree's survey; a tree whose links changed since is an error.
 */
function* placements(tree: Iterable<TreeEntry>, linkNames: TreeSurvey['linkNames'], opts: CpioOptions): Generator<[TreeEntry, Placement]> {
  const groups = new Map<string, { first: TreeEntry; ino: number; left: number }>();
  let ino = 0;
  for (const e of tree) {
    const name = archiveName(e.relPath, opts.prefix);
    if (e.kind === 'hardlink') {
      const group = groups.get(e.linkTarget!);
      if (!group) throw linksChanged(e);
      const nlink = linkNames.get(e.linkTarget!)!;
      if (--group.left > 0) yield [e, { name, ino: group.ino, nlink, dataSize: 0 }];
      else yield [e, { name, ino: group.ino, nlink, dataSize: group.first.size, dataFrom: group.first }];
      continue;
    }
    ino++;
    const linked = e.kind === 'file' ? linkNames.get(e.relPath) : undefined;
    if (linked) groups.set(e.relPath, { first: e, ino, left: linked - 1 });
    const dataSize = linked ? 0 : ownDataSize(e);
    yield [e, { name, ino, nlink: linked ?? (e.kind === 'dir' ? e.nlink : 1), dataSize }];
  }
  // A group whose last name never came would lose its data.
  for (const group of groups.values()) if (group.left > 0) throw linksChanged(group.first);
}

function linksChanged(entry: TreeEntry): PathError {
  return new PathError(`tree changed while being read: the hard links of ${entry.absPath} are not those of the first walk`, entry.absPath);
}

/** Bytes an entry carries after its header when it is not part of a hard-link group: a file's data, a symlink's target. */
function ownDataSize(entry: TreeEntry): number {
  if (entry.kind === 'file') return entry.size;
  if (entry.kind === 'symlink') return Buffer.byteLength(entry.linkTarget!);
  return 0;
}


/**
 * Adds up an archive's exact size (trailer and final block padding included) entry by entry, as
 * the tree is surveyed: the size is known before the archive is written. Data is counted on the
 * first name of a hard-link group rather than the last, which gives the same sum.
 */
export class CpioSize {
  #bytes = headerSize(CPIO_TRAILER);

  constructor(private readonly opts: CpioOptions) {}

  add(entry: TreeEntry): void {
    this.#bytes += headerSize(archiveName(entry.relPath, this.opts.prefix)) + pad4(ownDataSize(entry));
  }

  get total(): number {
    return Math.ceil(this.#bytes / BLOCK_SIZE) * BLOCK_SIZE;
  }
}

/**
 * The archive of a surveyed tree as chunks, each entry's data read as its header is written. The
 * data of a hard-linked file belongs after its last name, so the file is read when the last name
 * comes.
 */
export async function* cpioChunks(tree: Iterable<TreeEntry>, linkNames: TreeSurvey['linkNames'], opts: CpioOptions): AsyncIterable<Buffer> {
  const data = opts.data ?? ((entry: TreeEntry) => readFile(entry));
  const out = new Batcher();
  for (const [entry, p] of placements(tree, linkNames, opts)) {
    checkFits(entry, p);
    const header = newcHeader(entry, p);
    let body: AsyncIterable<Buffer> | Iterable<Buffer> | undefined;
    if (p.dataFrom) body = data(p.dataFrom);
    else if (entry.kind === 'file' && p.dataSize > 0) body = data(entry);
    else if (entry.kind === 'symlink') body = [Buffer.from(entry.linkTarget!)];
    yield* out.add(header);
    if (body) for await (const chunk of body) yield* out.add(chunk);
    yield* out.add(ZEROS.subarray(0, pad4(p.dataSize) - p.dataSize));
  }
  yield* out.add(newcHeader(undefined, { name: CPIO_TRAILER, ino: 0, nlink: 1, dataSize: 0 }));
  yield* out.finish(BLOCK_SIZE);
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
  // Pooled memory (a fresh Buffer per entry was ~5 µs of allocation), so the padding is zeroed here.
  const header = chunkPool.take(headerSize(p.name));
  header.write('070701' + fields.map((f) => f.toString(16).toUpperCase().padStart(8, '0')).join(''), 0, 'latin1');
  header.fill(0, NEWC_HEADER_SIZE + header.write(p.name, NEWC_HEADER_SIZE));
  return header;
}

function headerSize(name: string): number {
  return pad4(NEWC_HEADER_SIZE + Buffer.byteLength(name) + 1);
}

export function pad4(n: number): number {
  // Not (n + 3) & ~3: bit operations work on 32 bits, and a newc file may be up to 4 GiB - 1.
  return n + ((4 - (n % 4)) % 4);
}

/**
 * Gathers small pieces into chunks from the chunk pool (a piece copied is done with), so consumers
 * are not handed thousands of tiny buffers; big pieces go through as they are after what was gathered.
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
    const chunk = chunkPool.take(this.bytes);
    let at = 0;
    for (const part of this.parts) {
      at += part.copy(chunk, at);
      chunkPool.done(part);
    }
    this.parts = [];
    this.bytes = 0;
    yield chunk;
  }
}
