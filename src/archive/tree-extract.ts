import fs from 'node:fs';
import path from 'node:path';
import { isUtf8 } from 'node:buffer';
import { BundleError, PathError, describeFsError, escapedBytes } from '../core/errors.js';
import { programSaid, runProgram } from '../core/child-env.js';
import { readCpio, S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, S_IFSOCK, type CpioEntry } from './cpio-reader.js';

export interface ExtractOptions {
  /** the name of the tree's top in the archive ('rootimg'); only names below it are accepted */
  stripPrefix: string;
  /** the bundle member being unpacked, named in errors */
  member?: string;
  /** told of entries that are left out (sockets) */
  warn?: (line: string) => void;
}

/** A symlink target longer than PATH_MAX is not one. */
const MAX_LINK_TARGET = 4096;

/**
 * Unpacks a newc cpio stream (e.g. rootimgtree.gz while it is being decompressed) into destDir,
 * which must not exist yet: the archive's `stripPrefix` entry becomes destDir itself. The archive is
 * hostile until proven otherwise: names outside the prefix, absolute or with '..', duplicates, and
 * anything below a symlink are refused; hard links only join files this extraction created.
 * On any failure destDir is removed again. Returns the number of entries and file bytes written.
 */
export async function extractCpioTree(
  source: AsyncIterable<Buffer>,
  destDir: string,
  opts: ExtractOptions,
): Promise<{ entries: number; bytes: number }> {
  const dest = path.resolve(destDir);
  createDestination(dest);
  const tree = new TreeWriter(dest, opts);
  try {
    for await (const { entry, body } of readCpio(source)) await tree.add(entry, body);
    tree.finish();
  } catch (err) {
    fs.rmSync(dest, { recursive: true, force: true });
    throw inMember(err, opts);
  }
  return { entries: tree.entries, bytes: tree.bytes };
}

/**
 * Reads a tree archive through as extractCpioTree does, writing nothing (imgport verify): its
 * structure, names and link targets are refused as the extraction refuses them. What only the
 * filesystem shows (duplicates, entries below a link, hard link groups) is the extraction's.
 */
export async function checkCpioTree(source: AsyncIterable<Buffer>, opts: ExtractOptions): Promise<{ entries: number; bytes: number }> {
  const prefixParts = nameParts(opts.stripPrefix);
  let entries = 0;
  let bytes = 0;
  try {
    for await (const { entry, body } of readCpio(source)) {
      relativeName(entry, prefixParts, opts);
      if ((entry.mode & S_IFMT) === S_IFSOCK) {
        warnOfSocket(entry, opts);
        continue;
      }
      if ((entry.mode & S_IFMT) === S_IFLNK) await linkTarget(entry, body, opts);
      else for await (const chunk of body) bytes += chunk.length;
      entries++;
    }
  } catch (err) {
    throw inMember(err, opts);
  }
  return { entries, bytes };
}

/** An archive's error, said to be the bundle member's. */
function inMember(err: unknown, opts: ExtractOptions): unknown {
  if (err instanceof BundleError && opts.member && !err.message.startsWith(opts.member)) {
    return new BundleError(`${opts.member}: ${err.message}`, opts.member);
  }
  return err;
}

/** A socket is made by the program that listens on it: one in an image is left out, saying so. */
function warnOfSocket(entry: CpioEntry, opts: ExtractOptions): void {
  const where = opts.member ? `${opts.member}: ` : '';
  opts.warn?.(`Warning: ${where}skipped socket "${entry.name}" (a program makes its socket when it starts).`);
}

function refusal(entry: CpioEntry, reason: string, opts: ExtractOptions): BundleError {
  const where = opts.member ? `${opts.member}: ` : '';
  return new BundleError(`${where}refusing cpio entry "${entry.name}": ${reason}`, opts.member ?? entry.name);
}

/** An entry's path below the prefix ('' for the top), or a refusal. */
function relativeName(entry: CpioEntry, prefixParts: string[], opts: ExtractOptions): string {
  const { name } = entry;
  if (name.startsWith('/')) throw refusal(entry, 'absolute name', opts);
  const parts = nameParts(name);
  if (parts.includes('..')) throw refusal(entry, "'..' in the name", opts);
  if (parts.length < prefixParts.length || prefixParts.some((p, i) => parts[i] !== p)) {
    throw refusal(entry, `not below "${opts.stripPrefix}"`, opts);
  }
  return parts.slice(prefixParts.length).join('/');
}

/** A symbolic link entry's target, read from its body, or a refusal. */
async function linkTarget(entry: CpioEntry, body: AsyncIterable<Buffer>, opts: ExtractOptions): Promise<string> {
  if (entry.size === 0 || entry.size > MAX_LINK_TARGET) throw refusal(entry, `symbolic link target of ${entry.size} bytes`, opts);
  const parts: Buffer[] = [];
  for await (const chunk of body) parts.push(chunk);
  const raw = Buffer.concat(parts);
  if (!isUtf8(raw)) throw refusal(entry, `symbolic link target ${escapedBytes(raw)} is not valid UTF-8`, opts);
  const target = raw.toString();
  if (target.includes('\0')) throw refusal(entry, 'symbolic link target holds a NUL byte', opts);
  return target;
}

function createDestination(dest: string): void {
  try {
    fs.mkdirSync(path.dirname(dest), { recursive: true });
    fs.mkdirSync(dest, { mode: 0o700 });
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'EEXIST' ? 'it already exists' : describeFsError(err);
    throw new PathError(`cannot unpack into ${dest}: ${reason}`, dest);
  }
}

/** A directory whose owner, mode and mtime are set once its content is written. */
interface OpenDir {
  rel: string;
  abs: string;
  entry?: CpioEntry;
}

class TreeWriter {
  entries = 0;
  bytes = 0;
  private readonly prefixParts: string[];
  /** Directories being filled, outermost first; archives list a directory's content together. */
  private readonly openDirs: OpenDir[];
  /** A directory known to be reached through real directories only (never changes once true). */
  private verifiedDir = '';
  /** Parents made because an entry came before its directory; its own entry may still follow. */
  private readonly impliedDirs = new Set<string>();
  /** Regular files with more names to come, by (dev, ino) of the archive. */
  private readonly linkGroups = new Map<string, { abs: string; left: number }>();
  /** (dev, ino) of non-regular entries with several names: never something a file may link to. */
  private readonly otherInodes = new Set<string>();
  private topSeen = false;

  constructor(
    private readonly dest: string,
    private readonly opts: ExtractOptions,
  ) {
    this.prefixParts = nameParts(opts.stripPrefix);
    this.openDirs = [{ rel: '', abs: dest }];
  }

  async add(entry: CpioEntry, body: AsyncIterable<Buffer>): Promise<void> {
    const rel = relativeName(entry, this.prefixParts, this.opts);
    const type = entry.mode & S_IFMT;
    if (rel === '') return this.setTop(entry, type);
    const parent = path.posix.dirname(rel) === '.' ? '' : path.posix.dirname(rel);
    const parentClosed = !this.enterParent(entry, parent);
    // A directory already finished (GNU cpio puts a hard link's earlier names by its last one) keeps its mtime.
    const parentAbs = path.join(this.dest, parent);
    const parentTimes = parentClosed ? fs.lstatSync(parentAbs) : undefined;
    const abs = path.join(this.dest, rel);
    switch (type) {
      case S_IFDIR:
        this.makeDir(entry, rel, abs);
        break;
      case S_IFREG:
        await this.writeFile(entry, abs, body);
        break;
      case S_IFLNK:
        await this.makeSymlink(entry, abs, body);
        break;
      case S_IFCHR:
      case S_IFBLK:
      case S_IFIFO:
        await this.makeNode(entry, abs, type);
        break;
      case S_IFSOCK:
        return warnOfSocket(entry, this.opts);
      default:
        throw this.refuse(entry, `unknown file type ${(type >> 12).toString(8)}`);
    }
    if (type !== S_IFREG && type !== S_IFDIR && entry.nlink > 1) this.otherInodes.add(inodeKey(entry));
    if (parentTimes) this.fsCall(parentAbs, () => fs.utimesSync(parentAbs, parentTimes.atime, parentTimes.mtime));
    this.entries++;
  }

  /** Sets the metadata of every directory still open, innermost first, and of destDir last. */
  finish(): void {
    while (this.openDirs.length > 0) this.closeDir(this.openDirs.pop()!);
  }

  private setTop(entry: CpioEntry, type: number): void {
    if (type !== S_IFDIR) throw this.refuse(entry, 'the top of the tree is not a directory');
    if (this.topSeen) throw this.refuse(entry, 'duplicate entry');
    this.topSeen = true;
    this.openDirs[0].entry = entry;
    this.entries++;
  }

  /**
   * Makes sure every directory from destDir down to `parent` is a real directory (missing ones are
   * made, as `cpio -d` does; a symlink on the way is refused), then closes the directories the
   * archive has left. Returns whether `parent` is a directory still being filled.
   */
  private enterParent(entry: CpioEntry, parent: string): boolean {
    if (parent !== this.verifiedDir) {
      const parts = parent.split('/');
      for (let i = 1; i <= parts.length; i++) {
        const dir = parts.slice(0, i).join('/');
        if (isSelfOrBelow(this.verifiedDir, dir)) continue;
        const abs = path.join(this.dest, dir);
        const stat = fs.lstatSync(abs, { throwIfNoEntry: false });
        if (!stat) {
          this.fsCall(abs, () => fs.mkdirSync(abs, { mode: 0o755 }));
          this.impliedDirs.add(dir);
        } else if (stat.isSymbolicLink()) throw this.refuse(entry, `its parent ${dir} is a symbolic link`);
        else if (!stat.isDirectory()) throw this.refuse(entry, `its parent ${dir} is not a directory`);
      }
      this.verifiedDir = parent;
    }
    while (!isSelfOrBelow(parent, this.openDirs[this.openDirs.length - 1].rel)) this.closeDir(this.openDirs.pop()!);
    return this.openDirs[this.openDirs.length - 1].rel === parent;
  }

  private makeDir(entry: CpioEntry, rel: string, abs: string): void {
    try {
      fs.mkdirSync(abs, { mode: 0o700 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || !this.impliedDirs.delete(rel)) throw this.failed(entry, abs, err);
    }
    this.openDirs.push({ rel, abs, entry });
  }

  private closeDir(dir: OpenDir): void {
    const { entry, abs } = dir;
    if (!entry) return;
    this.fsCall(abs, () => {
      fs.lchownSync(abs, entry.uid, entry.gid);
      fs.chmodSync(abs, entry.mode & 0o7777); // after chown, which clears setgid
      fs.utimesSync(abs, entry.mtime, entry.mtime);
    });
  }

  /**
   * Regular files. Several names of one file share (dev, ino): the first name creates the file,
   * later ones link to it, and whichever carries the data (newc: the last) fills it.
   */
  private async writeFile(entry: CpioEntry, abs: string, body: AsyncIterable<Buffer>): Promise<void> {
    let target = abs;
    if (entry.nlink > 1) {
      const key = inodeKey(entry);
      if (this.otherInodes.has(key)) throw this.refuse(entry, 'hard link to an entry that is not a regular file');
      const group = this.linkGroups.get(key);
      if (group) {
        try {
          fs.linkSync(group.abs, abs);
        } catch (err) {
          throw this.failed(entry, abs, err);
        }
        if (--group.left <= 0) this.linkGroups.delete(key);
        if (entry.size === 0) return;
        target = group.abs;
      } else this.linkGroups.set(key, { abs, left: entry.nlink - 1 });
    }
    const flags = fs.constants.O_WRONLY | fs.constants.O_NOFOLLOW | (target === abs ? fs.constants.O_CREAT | fs.constants.O_EXCL : fs.constants.O_TRUNC);
    let fd: number;
    try {
      fd = fs.openSync(target, flags, 0o600);
    } catch (err) {
      throw this.failed(entry, abs, err);
    }
    try {
      for await (const chunk of body) {
        this.fsCall(abs, () => {
          for (let at = 0; at < chunk.length; ) at += fs.writeSync(fd, chunk, at);
        });
        this.bytes += chunk.length;
      }
      this.fsCall(abs, () => {
        fs.fchownSync(fd, entry.uid, entry.gid);
        fs.fchmodSync(fd, entry.mode & 0o7777); // after chown, which clears setuid
        fs.futimesSync(fd, entry.mtime, entry.mtime);
      });
    } finally {
      fs.closeSync(fd);
    }
  }

  private async makeSymlink(entry: CpioEntry, abs: string, body: AsyncIterable<Buffer>): Promise<void> {
    const target = await linkTarget(entry, body, this.opts);
    try {
      fs.symlinkSync(target, abs);
    } catch (err) {
      throw this.failed(entry, abs, err);
    }
    this.fsCall(abs, () => {
      fs.lchownSync(abs, entry.uid, entry.gid);
      fs.lutimesSync(abs, entry.mtime, entry.mtime);
    });
  }

  /** Devices and fifos: Node cannot make them, mknod(1) and mkfifo(1) can. */
  private async makeNode(entry: CpioEntry, abs: string, type: number): Promise<void> {
    if (fs.lstatSync(abs, { throwIfNoEntry: false })) throw this.refuse(entry, 'duplicate entry');
    const program = type === S_IFIFO ? 'mkfifo' : 'mknod';
    const args = type === S_IFIFO ? [abs] : [abs, type === S_IFCHR ? 'c' : 'b', String(entry.rdevMajor), String(entry.rdevMinor)];
    try {
      await runProgram(program, args);
    } catch (err) {
      throw new PathError(`cannot create ${abs}: ${programSaid(err)}`, abs);
    }
    this.fsCall(abs, () => {
      fs.lchownSync(abs, entry.uid, entry.gid);
      fs.chmodSync(abs, entry.mode & 0o7777);
      fs.lutimesSync(abs, entry.mtime, entry.mtime);
    });
  }

  private refuse(entry: CpioEntry, reason: string): BundleError {
    return refusal(entry, reason, this.opts);
  }

  /** A failed create: an existing name is a duplicate entry; anything else is the destination's problem. */
  private failed(entry: CpioEntry, abs: string, err: unknown): Error {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return this.refuse(entry, 'duplicate entry');
    return new PathError(`cannot write ${abs}: ${describeFsError(err)}`, abs);
  }

  private fsCall(abs: string, call: () => void): void {
    try {
      call();
    } catch (err) {
      throw new PathError(`cannot write ${abs}: ${describeFsError(err)}`, abs);
    }
  }
}

function nameParts(name: string): string[] {
  return name.split('/').filter((p) => p !== '' && p !== '.');
}

/** Whether `dir` is `ancestor` or below it ('' is the top). */
function isSelfOrBelow(dir: string, ancestor: string): boolean {
  return ancestor === '' || dir === ancestor || dir.startsWith(ancestor + '/');
}

function inodeKey(entry: CpioEntry): string {
  return `${entry.devMajor}:${entry.devMinor}:${entry.ino}`;
}
