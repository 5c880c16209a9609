import fs from 'node:fs';
import path from 'node:path';
import { isUtf8 } from 'node:buffer';
import { PathError, describeFsError, escapedBytes } from '../core/errors.js';

export type EntryKind = 'file' | 'dir' | 'symlink' | 'hardlink' | 'chardev' | 'blockdev' | 'fifo';

/**
 * A walked entry's name in an archive: `prefix/relPath`, the prefix alone for the root; with no
 * prefix, relPath as it is (mksquashfs refuses a ustar name prefix of '.', which tar-stream writes
 * for a name './...' of 101 bytes or so).
 */
export function archiveName(relPath: string, prefix: string): string {
  if (!prefix) return relPath;
  return relPath === '.' ? prefix : `${prefix}/${relPath}`;
}

export interface TreeEntry {
  /** POSIX path relative to the walked root; the root itself is '.' */
  relPath: string;
  readonly absPath: string;
  /** 'hardlink' = a further name of a regular file already listed; its data is not repeated */
  kind: EntryKind;
  /** symlink: its target; hardlink: relPath of the first-listed name of that file */
  linkTarget?: string;
  /** permission bits incl. setuid/setgid/sticky (st_mode & 0o7777) */
  mode: number;
  uid: number;
  gid: number;
  /** regular files (kind 'file'); 0 otherwise */
  size: number;
  /** seconds (integer) */
  mtime: number;
  rdevMajor: number;
  rdevMinor: number;
  ino: number;
  nlink: number;
}

export interface WalkOptions {
  /** default true: do not descend into other filesystems (find -xdev): the mount point is listed, not its content */
  oneFileSystem?: boolean;
  /** false: entry omitted (its children are still walked and judged) */
  include?: (relPath: string, kind: EntryKind) => boolean;
  /** sockets (and entries that vanish during the walk) are skipped with a warning naming them */
  onWarning?: (message: string, path: string) => void;
}

/** What the first walk of a tree found; later walks must find the same. */
export interface TreeSurvey {
  entries: number;
  /** data bytes of regular files, hard-linked data counted once */
  fileBytes: number;
  /** for each file with further names in the tree: its first name (relPath) and how many names it has */
  linkNames: ReadonlyMap<string, number>;
}

/**
 * An entry as the walk makes it. Its absolute path is derived from the root rather than stored:
 * it was over a quarter of an entry's memory. The other fields are TreeEntry's (merged in from
 * this interface); the constructor sets each one.
 */
interface WalkedEntry extends Omit<TreeEntry, 'absPath'> {}
class WalkedEntry implements TreeEntry {
  readonly #root: string;

  constructor(root: string, relPath: string, stat: fs.Stats, linkTarget: string | undefined) {
    this.#root = root;
    this.relPath = relPath;
    this.kind = kindOf(stat);
    this.linkTarget = linkTarget;
    const isDevice = this.kind === 'chardev' || this.kind === 'blockdev';
    this.mode = stat.mode & 0o7777;
    this.uid = stat.uid;
    this.gid = stat.gid;
    this.size = this.kind === 'file' ? stat.size : 0;
    this.mtime = Math.floor(stat.mtimeMs / 1000);
    this.rdevMajor = isDevice ? deviceMajor(stat.rdev) : 0;
    this.rdevMinor = isDevice ? deviceMinor(stat.rdev) : 0;
    this.ino = stat.ino;
    this.nlink = stat.nlink;
  }

  get absPath(): string {
    return this.relPath === '.' ? this.#root : childPath(this.#root, this.relPath);
  }
}

/**
 * `dir`/`name` for a resolved `dir` and a name (or relative path) made of readdir names: nothing to
 * normalise, so no path.join (which cost more than the lstat it prepared).
 */
function childPath(dir: string, name: string): string {
  return dir.endsWith('/') ? dir + name : `${dir}/${name}`;
}

/** An entry as listed, and its filesystem. */
interface WalkNode {
  entry: TreeEntry;
  dev: number;
}

/** A directory being walked: its node, its path, and the names of its children not walked yet, last name first. */
interface OpenDirectory {
  node: WalkNode;
  absPath: string;
  namesLeft: string[];
  /** Children whose names are not UTF-8: the name as decoded -> its bytes. */
  undecodable?: Map<string, Buffer>;
}

/**
 * A directory tree as a stream of entries, sorted depth-first (a directory, then its children in
 * byte order of their names), hard links recognised. Each iteration walks the tree afresh from
 * disk, reading a directory only when the consumer reaches it, so memory does not grow with the
 * tree: a tree of 10^6 entries listed up front would take hundreds of MB.
 *
 * Writers that must know the whole tree before their first byte (an archive's exact size, where
 * a hard-linked file's data goes, the total for an ETA) survey it first; every later walk must
 * then find the same entries, or fails naming the first one that differs. Calls are synchronous:
 * from the page cache an lstat costs a few µs, an awaited one ~150 µs on these machines.
 */
export class TreeWalk implements Iterable<TreeEntry> {
  readonly root: string;
  readonly #opts: WalkOptions;
  #surveyed?: SurveyLog;
  #walks = 0;

  /** Checks the root at once: a missing or unreadable source fails before any output. */
  constructor(root: string, opts: WalkOptions = {}) {
    this.root = path.resolve(root);
    this.#opts = opts;
    rootNode(this.root);
  }

  /** Walks the tree once to count what later walks must find again. */
  survey(visit?: (entry: TreeEntry) => void): TreeSurvey {
    const log = new SurveyLog();
    let fileBytes = 0;
    const linkNames = new Map<string, number>();
    for (const entry of this.#walk()) {
      log.add(entry);
      fileBytes += entry.size;
      if (entry.kind === 'hardlink') linkNames.set(entry.linkTarget!, (linkNames.get(entry.linkTarget!) ?? 1) + 1);
      visit?.(entry);
    }
    this.#surveyed = log;
    return { entries: log.length, fileBytes, linkNames };
  }

  [Symbol.iterator](): Iterator<TreeEntry> {
    return this.#surveyed ? this.#matching(this.#surveyed) : this.#walk();
  }

  /** A walk that fails at the first entry that is not the survey's. */
  *#matching(log: SurveyLog): Generator<TreeEntry> {
    let index = 0;
    let last = '.';
    for (const entry of this.#walk()) {
      log.check(index++, entry);
      last = entry.relPath;
      yield entry;
    }
    if (index < log.length) {
      throw new PathError(
        `tree changed while being read: ${this.root} (its first walk found ${log.length} entries, this one ${index}, the last of them ${last}: names were removed since)`,
        this.root,
      );
    }
  }

  /**
   * One walk. Only the first one warns of sockets and skips names that vanish: in a later one, a
   * name gone since is an error naming it (what was found must be written).
   */
  *#walk(): Generator<TreeEntry> {
    const warn = this.#walks++ === 0 ? (this.#opts.onWarning ?? (() => {})) : undefined;
    const oneFileSystem = this.#opts.oneFileSystem ?? true;
    const include = this.#opts.include;
    const firstNameOfInode = new Map<string, string>();
    const root = rootNode(this.root);
    const open: OpenDirectory[] = [];
    let node: WalkNode | undefined = root;
    for (;;) {
      if (node) {
        const { entry } = node;
        if (!include || include(entry.relPath, entry.kind)) {
          // The first included name of a file carries its data; later ones point to it.
          if (entry.kind === 'file' && entry.nlink > 1) {
            const key = `${node.dev}:${entry.ino}`;
            const firstName = firstNameOfInode.get(key);
            if (firstName === undefined) firstNameOfInode.set(key, entry.relPath);
            else Object.assign(entry, { kind: 'hardlink', size: 0, linkTarget: firstName });
          }
          yield entry;
        }
        if (node.entry.kind === 'dir' && !(oneFileSystem && node.dev !== root.dev)) {
          const absPath = node.entry.absPath;
          const { names, undecodable } = readSortedNames(absPath);
          open.push({ node, absPath, namesLeft: names.reverse(), undecodable });
        }
      }
      while (open.length > 0 && open[open.length - 1].namesLeft.length === 0) open.pop();
      const parent = open[open.length - 1];
      if (!parent) return;
      const name = parent.namesLeft.pop()!;
      const parentRel = parent.node.entry.relPath;
      const relPath = parentRel === '.' ? name : `${parentRel}/${name}`;
      const raw = parent.undecodable?.get(name);
      if (raw) {
        // Judged by its name as decoded. Left out (or gone), it is skipped with all below it: a path
        // that is not text cannot be walked. Kept, it is refused.
        const kind = kindByBytes(parent.absPath, raw);
        if (!kind || (include && !include(relPath, kind))) {
          node = undefined;
          continue;
        }
        throw undecodableName(parent.absPath, raw);
      }
      node = statNode(this.root, childPath(parent.absPath, name), relPath, warn);
    }
  }
}

/**
 * What a survey found, entry by entry in walk order: a hash of the name and kind, and the size
 * (12 bytes an entry, against some 400 for the entry itself), so that a later walk can name the
 * first entry that differs.
 */
class SurveyLog {
  #names = new Uint32Array(1024);
  #sizes = new Float64Array(1024);
  length = 0;

  add(entry: TreeEntry): void {
    if (this.length === this.#names.length) {
      this.#names = grown(this.#names, new Uint32Array(this.length * 2));
      this.#sizes = grown(this.#sizes, new Float64Array(this.length * 2));
    }
    this.#names[this.length] = nameHash(entry);
    this.#sizes[this.length++] = surveyedSize(entry);
  }

  /** Throws unless `entry` is the one the survey found at `index`. */
  check(index: number, entry: TreeEntry): void {
    if (index >= this.length || this.#names[index] !== nameHash(entry)) {
      throw new PathError(`tree changed while being read: ${entry.absPath} is not the entry its first walk found here (names added, removed or of another kind since)`, entry.absPath);
    }
    if (this.#sizes[index] !== surveyedSize(entry)) {
      const what = entry.kind === 'symlink' ? 'symbolic link changed target' : 'file changed size';
      throw new PathError(`${what} while being read: ${entry.absPath} (${this.#sizes[index]} bytes when the tree was first walked, now ${surveyedSize(entry)})`, entry.absPath);
    }
  }
}

/** The bytes an entry adds to an archive: a file's data, a symbolic link's target (a cpio's body). */
function surveyedSize(entry: TreeEntry): number {
  return entry.kind === 'symlink' ? Buffer.byteLength(entry.linkTarget!) : entry.size;
}

function grown<T extends Uint32Array | Float64Array>(from: T, to: T): T {
  to.set(from);
  return to;
}

/** FNV-1a over the kind, a colon and the relative path. */
function nameHash(entry: TreeEntry): number {
  return fnv1a(fnv1a(fnv1a(0x811c9dc5, entry.kind), ':'), entry.relPath) >>> 0;
}

function fnv1a(hash: number, text: string): number {
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
  return hash;
}

/**
 * The walk's root, which must be a directory, or a symbolic link to one: it is followed, as
 * `cd ROOT; find .` does (an extra given as a link to a directory exports what it leads to).
 */
function rootNode(root: string): WalkNode {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(root);
  } catch (err) {
    throw new PathError(`cannot read ${root}: ${describeFsError(err)}`, root);
  }
  if (!stat.isDirectory()) throw new PathError(`not a directory: ${root}`, root);
  return { entry: new WalkedEntry(root, '.', stat, undefined), dev: stat.dev };
}

function readSortedNames(dirPath: string): { names: string[]; undecodable?: Map<string, Buffer> } {
  let names: string[];
  try {
    names = fs.readdirSync(dirPath);
  } catch (err) {
    throw new PathError(`cannot read directory ${dirPath}: ${describeFsError(err)}`, dirPath);
  }
  // A name that is not UTF-8 reads as U+FFFD and could not be found again by it.
  const undecodable = names.some((name) => name.includes('\uFFFD')) ? undecodableNames(dirPath) : undefined;
  return { names: sortByteOrder(names), undecodable };
}

/** The names in `dirPath` that are not UTF-8, as decoded -> their bytes (undefined: none). */
function undecodableNames(dirPath: string): Map<string, Buffer> | undefined {
  const found = new Map<string, Buffer>();
  for (const raw of fs.readdirSync(dirPath, { encoding: 'buffer' })) if (!isUtf8(raw)) found.set(raw.toString('utf8'), raw);
  return found.size ? found : undefined;
}

/** The kind of the entry named by bytes in `dirPath`; undefined when it is gone. */
function kindByBytes(dirPath: string, raw: Buffer): EntryKind | undefined {
  try {
    return kindOf(fs.lstatSync(Buffer.concat([Buffer.from(`${dirPath}/`), raw])));
  } catch {
    return undefined;
  }
}

/**
 * Names are handled as text (archive members, exlist patterns, messages), so one whose bytes
 * are not UTF-8 (a Latin-1 name from an old system, say) and that is to be archived is refused,
 * naming it with its odd bytes escaped, rather than skipped or failing later as "vanished".
 */
function undecodableName(dirPath: string, raw: Buffer): PathError {
  const where = childPath(dirPath, escapedBytes(raw));
  return new PathError(`cannot archive ${where}: its name is not valid UTF-8 (rename it, with convmv for instance, or move it out of the tree)`, where);
}

/** A link's target, refused like a name when it is not UTF-8 (decoded, it would point elsewhere). */
function readLinkTarget(absPath: string): string {
  const target = fs.readlinkSync(absPath);
  if (!target.includes('\uFFFD')) return target;
  const raw = fs.readlinkSync(absPath, { encoding: 'buffer' });
  if (isUtf8(raw)) return target;
  throw new PathError(`cannot archive ${absPath}: its link target ${escapedBytes(raw)} is not valid UTF-8 (make the link again with a UTF-8 target)`, absPath);
}


/**
 * lstat of one name as an entry; undefined for sockets and names that vanished (with a warning).
 * Without `warn` (the root) every failure is an error.
 */
function statNode(root: string, absPath: string, relPath: string, warn?: (message: string, path: string) => void): WalkNode | undefined {
  let stat: fs.Stats;
  let linkTarget: string | undefined;
  try {
    stat = fs.lstatSync(absPath);
    if (stat.isSymbolicLink()) linkTarget = readLinkTarget(absPath);
  } catch (err) {
    if (err instanceof PathError) throw err;
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' && warn) {
      warn(`skipped ${absPath}: it vanished during the walk`, absPath);
      return undefined;
    }
    throw new PathError(`cannot read ${absPath}: ${describeFsError(err)}`, absPath);
  }
  if (stat.isSocket()) {
    warn?.(`skipped socket ${absPath}`, absPath);
    return undefined;
  }
  return { entry: new WalkedEntry(root, relPath, stat, linkTarget), dev: stat.dev };
}

function kindOf(stat: fs.Stats): EntryKind {
  if (stat.isFile()) return 'file';
  if (stat.isDirectory()) return 'dir';
  if (stat.isSymbolicLink()) return 'symlink';
  if (stat.isCharacterDevice()) return 'chardev';
  if (stat.isBlockDevice()) return 'blockdev';
  return 'fifo';
}

/** Linux dev_t split (glibc's gnu_dev_major/minor), on a number that may exceed 32 bits. */
function deviceMajor(rdev: number): number {
  const high = Math.floor(rdev / 2 ** 32);
  return (((rdev >>> 8) & 0xfff) | (high & ~0xfff)) >>> 0;
}

function deviceMinor(rdev: number): number {
  const high = Math.floor(rdev / 2 ** 32);
  return ((rdev & 0xff) | (((rdev >>> 12) | (high << 20)) & ~0xff)) >>> 0;
}

/**
 * Sorts names by the bytes of their UTF-8 encoding. Plain string order is UTF-16 order, which
 * agrees with UTF-8 byte order unless a name holds characters beyond U+FFFF.
 */
function sortByteOrder(names: string[]): string[] {
  if (!names.some((n) => /[\uD800-\uDFFF]/.test(n))) return names.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return names.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
}
