/**
 * The import's safety net on disk: a per-image lock (O_EXCL file holding the pid), a journal of
 * the staging directories in use and, once the commit starts, of its renames (so the next import
 * can remove what a SIGKILL left and roll back a commit it cut short), and the staging directories
 * themselves, each placed on the filesystem of the destinations it serves so that committing is
 * a rename.
 */
import { randomBytes } from 'node:crypto';
import { lstatSync, statSync } from 'node:fs';
import { chmod, lstat, mkdir, open, readdir, readFile, readlink, rename, rm, stat, statfs, unlink } from 'node:fs/promises';
import path from 'node:path';
import { describeFsError, ImageError, ImgportError, PathError } from '../core/errors.js';
import type { Sandbox } from '../core/sandbox.js';
import { acquirePidLock, OWN_START, processAlive } from '../core/pid-lock.js';
import { flushFilesystems } from '../core/flush.js';
import { programSaid, runProgram } from '../core/child-env.js';
import type { TableStore } from '../tables/store.js';
import { commitPlaced, rollBackCommit, type CommitStep } from './commit.js';
import { isImportRow, rowsHeld, writeRowsAgain, type WrittenRows } from './table-changes.js';
import { assertPlainName, isPlainName, isUnder } from './plan.js';
import { TreeWalk } from '../pipeline/walk.js';

/** Characters of a member's name kept in its staging name (after a counter). */
const STAGED_HINT_MAX = 64;

/** Where locks and journals live (logical). */
export const IMPORTS_STATE_DIR = '/var/lib/imgport/imports';

/** The real paths of an image's import journal and lock. */
function stateFiles(sandbox: Sandbox, image: string): { journal: string; lock: string } {
  const dir = sandbox.real(IMPORTS_STATE_DIR);
  return { journal: path.join(dir, `${image}.json`), lock: path.join(dir, `${image}.lock`) };
}
/** The lock of the commit step that imports of all images share (see withCommitLock). */
export const COMMIT_LOCK_NAME = 'commits-lock';
/** Makes the directory of the locks and journals, or says why it cannot, naming it. */
async function makeStateDirectory(sandbox: Sandbox, dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
  } catch (err) {
    // A recursive mkdir says ENOENT on a read-only filesystem; a plain one gives the real cause.
    const cause = (await mkdir(dir).then(() => err, (plain: unknown) => plain)) as NodeJS.ErrnoException;
    const why = cause.code === 'EEXIST' ? 'a file that is not a directory is in the way' : describeFsError(cause);
    throw new PathError(`cannot make ${sandbox.logical(dir)}: ${why}`, sandbox.logical(dir));
  }
}

/** How long an import waits for another one's commit. */
const COMMIT_LOCK_WAIT_MS = 10 * 60_000;

/** What of the tables an import reads and writes; a killed import's table write is made again through it. */
export type TableAccess = Pick<TableStore, 'read' | 'update' | 'file'>;

interface Journal {
  pid: number;
  /** The importing process's processStart: its pid may be another process's by the time the journal is read. */
  start?: string;
  staging: string[];
  /**
   * Written before the commit's first rename, with every row its table write sets. `placed` once
   * its renames are done and on disk: the commit point. A killed import is rolled back before it,
   * finished after it (its rows written again: the files may since be another import's, which
   * took over a shared kernel or list file, and are no guide). `committed` once the tables are
   * written. `tables`: the table file written. Journals of earlier versions have neither.
   */
  commit?: { ops: CommitStep[]; rows: WrittenRows; placed?: boolean; committed?: boolean; tables?: string };
}

/**
 * The journal of an import of `image` killed while putting its files in place (its commit begun,
 * not finished, its process gone), as a logical path; undefined when there is none. The image is
 * then half replaced until `imgport recover` (or the next import of it) rolls the commit back.
 */
export async function interruptedCommit(sandbox: Sandbox, image: string): Promise<string | undefined> {
  return (await interruptedJournal(sandbox, image))?.shown;
}

/** That journal (see interruptedCommit), read, and its logical path. */
async function interruptedJournal(sandbox: Sandbox, image: string): Promise<{ shown: string; journal: Journal } | undefined> {
  if (!isPlainName(image)) return undefined; // no journal has such a name
  const journalPath = stateFiles(sandbox, image).journal;
  const journal = await readJournal(journalPath);
  return journal?.commit && !journal.commit.committed && !processAlive(journal.pid, journal.start) ? { shown: sandbox.logical(journalPath), journal } : undefined;
}

/** Refuses to read an image that a killed import left half replaced, saying how to put it back. */
export async function refuseInterruptedImage(sandbox: Sandbox, image: string, doing: string): Promise<void> {
  const interrupted = await interruptedJournal(sandbox, image);
  if (!interrupted) return;
  const journal = interrupted.shown;
  // Past its commit point its files are all in place: only its table rows are missing.
  const placed = interrupted.journal.commit?.placed;
  const state = placed ? `after putting its files in place (journal ${journal}), before writing its table rows` : `while putting its files in place (journal ${journal}), so it is half replaced`;
  throw new ImageError(`cannot ${doing} ${image}: an import of it was killed ${state}; run imgport recover ${image} (or import it again) first`, image);
}

/** The images whose last import was killed (a journal whose process is gone), sorted. */
export async function interruptedImports(sandbox: Sandbox): Promise<string[]> {
  const dir = sandbox.real(IMPORTS_STATE_DIR);
  const names = await readdir(dir).catch(() => [] as string[]);
  const images: string[] = [];
  for (const name of names.filter((n) => n.endsWith('.json')).sort()) {
    const journal = await readJournal(path.join(dir, name));
    if (journal && !processAlive(journal.pid, journal.start)) images.push(name.slice(0, -'.json'.length));
  }
  return images;
}

async function readJournal(file: string): Promise<Journal | undefined> {
  try {
    const journal = JSON.parse(await readFile(file, 'utf8')) as Journal;
    if (typeof journal?.pid !== 'number') return undefined;
    // Journals of earlier versions hold the pid alone: taken as they were, by the pid.
    return typeof journal.start === 'string' ? journal : { ...journal, start: undefined };
  } catch {
    return undefined;
  }
}

/** Our staging directories' names start with this (then the pid and a random part): nothing else is ever removed as leftovers. */
const STAGING_PREFIX = '.imgport-staging-';

export class ImportTransaction {
  private journalPath: string;
  private lockPath: string;
  private releaseLock: () => Promise<void> = async () => undefined;
  private readonly stagingDirs = new Map<string, Promise<string>>();
  private readonly journal: Journal = { pid: process.pid, start: OWN_START, staging: [] };
  private counter = 0;
  /** Free bytes last seen per staging dir, minus what was written since. */
  private readonly room = new Map<string, number>();
  private closed = false;
  /** Journal writes, one after the other (they share a temporary file). */
  private journalWrites: Promise<void> = Promise.resolve();

  private constructor(
    readonly sandbox: Sandbox,
    /** What the lock and journal are named after: the image's final name (or, until the manifest is read, the bundle's directory). */
    private image: string,
    /** Logical roots under which staging directories may be made (the allowed roots). */
    private readonly roots: string[],
    private readonly log: (line: string) => void,
    /** The tables: a killed import's commit that had placed its files is finished by writing its rows. */
    private readonly tables: TableAccess,
  ) {
    ({ journal: this.journalPath, lock: this.lockPath } = stateFiles(sandbox, image));
  }

  /** Locks the image and removes whatever an earlier, killed import of it left behind. */
  static async begin(
    sandbox: Sandbox,
    image: string,
    roots: string[],
    log: (line: string) => void,
    tables: TableAccess,
  ): Promise<ImportTransaction> {
    const tx = new ImportTransaction(sandbox, image, roots, log, tables);
    await makeStateDirectory(sandbox, path.dirname(tx.lockPath));
    tx.releaseLock = await tx.lock(tx.lockPath, image);
    await tx.removeLeftovers();
    // A commit lock left by a killed import is taken over and dropped (a live one is left alone).
    const stale = await acquirePidLock(tx.commitLockPath(), 0);
    if (stale.acquired) await stale.release();
    return tx;
  }

  /**
   * What the next import of `image` does first, without a bundle: takes its lock, rolls back a
   * commit a killed import cut short (or finishes it, if it had placed its files), removes its staging.
   */
  static async recover(sandbox: Sandbox, image: string, log: (line: string) => void, tables: TableAccess): Promise<void> {
    assertPlainName(image, 'image name'); // it names the lock and journal files
    const tx = await ImportTransaction.begin(sandbox, image, [], log, tables);
    await tx.close();
  }

  private async lock(lockPath: string, image: string): Promise<() => Promise<void>> {
    const lock = await acquirePidLock(lockPath, 0);
    if (!lock.acquired) {
      throw new ImageError(`image ${image} is being imported by process ${lock.holder ?? '?'} (lock ${lockPath}); try again when it has finished`, image);
    }
    return lock.release;
  }

  /** Beside the images' locks, under a name none of them can take (they are IMAGE.lock: an image may be called `commit`). */
  private commitLockPath(): string {
    return path.join(path.dirname(this.lockPath), COMMIT_LOCK_NAME);
  }

  /**
   * Runs `work` (a commit, or the settling of a killed one) holding the lock every import's commit
   * takes. Imports of different images may share destinations (a kernel, a list file, an extra, a
   * kit's other_files): what is there is looked at and replaced by one import at a time. Only this
   * part is serialised, and it takes milliseconds (and flushes); waiting for it is not a refusal.
   */
  async withCommitLock<T>(work: () => Promise<T>, interrupted?: () => boolean): Promise<T> {
    const lockPath = this.commitLockPath();
    const lock = await acquirePidLock(lockPath, COMMIT_LOCK_WAIT_MS, interrupted);
    if (!lock.acquired) {
      if (interrupted?.()) throw new ImgportError('interrupted while waiting for another import to put its files in place');
      throw new ImageError(`another import (process ${lock.holder ?? '?'}) has been putting files in place for ${COMMIT_LOCK_WAIT_MS / 60_000} minutes (lock ${lockPath})`, this.image);
    }
    try {
      return await work();
    } finally {
      await lock.release();
    }
  }

  /**
   * This import's commit, under the commit lock, once the commits that imports of other images
   * were killed in are settled: a destination it shares with one of them is then as that import
   * left it (finished, or put back), not half replaced, when this commit looks at it and keeps it
   * as .ORIG. Settling needs the commit lock only (not the other image's lock, which an import or
   * recover of it waiting for this lock may hold: it finds the journal gone). One that cannot be
   * settled (a damaged journal) is a warning: it does not stop imports of other images.
   */
  commitExclusively<T>(work: () => Promise<T>, interrupted: () => boolean): Promise<T> {
    return this.withCommitLock(async () => {
      for (const image of await interruptedImports(this.sandbox)) {
        if (image === this.image) continue;
        const other = new ImportTransaction(this.sandbox, image, [], this.log, this.tables);
        await other.settleLeftovers(true).catch((err: unknown) => {
          if (!(err instanceof ImgportError)) throw err;
          this.log(`Warning: the commit of a killed import of ${image} could not be settled (${err.message}); run imgport recover ${image}`);
        });
      }
      return work();
    }, interrupted);
  }

  /**
   * Moves the lock and journal to the image's final name (known once the manifest is read): two
   * imports that end in the same image are serialised, whatever their bundles are called.
   */
  async rekey(image: string): Promise<void> {
    if (image === this.image) return;
    const files = stateFiles(this.sandbox, image);
    const release = await this.lock(files.lock, image);
    const previous = { image: this.image, lockPath: this.lockPath, journalPath: this.journalPath, releaseLock: this.releaseLock };
    Object.assign(this, { image, lockPath: files.lock, journalPath: files.journal, releaseLock: release });
    try {
      await this.removeLeftovers();
    } catch (err) {
      // The killed import's journal stays, for the recovery the error advises: this import is
      // still the one under the old name, which its closing removes.
      Object.assign(this, previous);
      await release();
      throw err;
    }
    await this.writeJournal();
    await unlink(previous.journalPath).catch(() => undefined);
    await previous.releaseLock();
  }

  /**
   * What a killed import of this image left, settled and removed (this import holds the image's
   * lock). A commit is settled under the commit lock, as a commit: another image's import may be
   * looking at, or replacing, the files it puts back (a shared kernel, list file or extra).
   */
  private async removeLeftovers(): Promise<void> {
    const old = await readJournal(this.journalPath);
    if (old?.commit && !old.commit.committed) await this.withCommitLock(() => this.settleLeftovers(false));
    else if (old) await this.settleLeftovers(false);
  }

  /**
   * Settles the journal as it is now (whoever held the commit lock before may have settled it,
   * for an import of another image): its commit, its staging, the journal itself. `otherImage`:
   * only a commit left unfinished by a process that is gone (a live import's journal is its own).
   */
  private async settleLeftovers(otherImage: boolean): Promise<void> {
    const old = await readJournal(this.journalPath);
    if (!old) return;
    if (otherImage && (!old.commit || old.commit.committed || processAlive(old.pid, old.start))) return;
    // Only staging directories (by their name, in the sandbox) are ever removed or moved into, whatever the journal says.
    const top = path.resolve(this.sandbox.real('/'));
    const inSandbox = (dir: string) => top === '/' || dir.startsWith(top + path.sep);
    const staging = (old.staging ?? []).filter((dir) => typeof dir === 'string' && path.basename(dir).startsWith(STAGING_PREFIX) && inSandbox(dir));
    if (old.commit && !old.commit.committed) this.log(await this.settleCommit(checkedCommit(old.commit, staging, this.sandbox.logical(this.journalPath), this.image)));
    for (const dir of staging) {
      await rm(dir, { recursive: true, force: true });
      this.log(`Removed the leftovers of an interrupted import of ${this.image}: ${dir}`);
    }
    await unlink(this.journalPath).catch(() => undefined);
  }

  /**
   * Named by the pid and a random part, not the image: a safe file name, fixed for the whole
   * import, and never one of a killed import's (a reused pid), whose commit may be rolled back
   * into its staging.
   */
  private readonly stagingName = `${STAGING_PREFIX}${process.pid}-${randomBytes(4).toString('hex')}`;

  /**
   * A killed import's commit: rolled back when it had not placed its files, finished when it had
   * (its rows written, unless they are there already); says which.
   */
  private async settleCommit(commit: NonNullable<Journal['commit']>): Promise<string> {
    const kept = `The interrupted import of ${this.image} had finished its commit; its image is kept`;
    if (commit.placed) {
      // Its rows go where it was writing them (an import with --db), never into another table file.
      if (commit.tables !== undefined && path.resolve(commit.tables) !== path.resolve(this.tables.file)) {
        throw new ImageError(`the killed import of ${this.image} was writing to the table file ${commit.tables}: run imgport recover ${this.image} with that table file (--db)`, this.image);
      }
      if (rowsHeld(await this.tables.read(), commit.rows)) return kept;
      await this.tables.update((tables) => writeRowsAgain(tables, commit.rows));
      return `Finished the interrupted import of ${this.image}: its files were in place, its table rows are now written`;
    }
    // A journal of an earlier version: finished if every rename shows done and every row is there.
    if (commit.placed === undefined && (await commitPlaced(this.sandbox, commit.ops)) && rowsHeld(await this.tables.read(), commit.rows)) return kept;
    const putBack = await rollBackCommit(this.sandbox, commit.ops);
    return `Rolled back the interrupted commit of an earlier import of ${this.image}: ${putBack} files put back`;
  }

  /** Atomic (temporary file, fsync, rename) and in order: the journal is what a SIGKILL leaves. */
  private writeJournal(): Promise<void> {
    const text = JSON.stringify(this.journal) + '\n';
    const write = async () => {
      const tmp = `${this.journalPath}.tmp`;
      try {
        const file = await open(tmp, 'w', 0o600);
        try {
          await file.writeFile(text);
          await file.sync();
        } finally {
          await file.close();
        }
        await rename(tmp, this.journalPath);
      } catch (err) {
        await rm(tmp, { force: true });
        const journal = this.sandbox.logical(this.journalPath);
        throw new PathError(`cannot write the import's journal ${journal}: ${describeFsError(err)}`, journal);
      }
    };
    this.journalWrites = this.journalWrites.catch(() => undefined).then(write);
    return this.journalWrites;
  }

  /** Journals the commit's steps and the rows its table write sets; resolves once on disk. */
  async recordCommit(ops: CommitStep[], rows: WrittenRows): Promise<void> {
    this.journal.commit = { ops, rows, placed: false, tables: path.resolve(this.tables.file) };
    try {
      await this.writeJournal();
    } catch (err) {
      this.journal.commit = undefined; // not journaled, so not started
      throw err;
    }
  }

  /**
   * The commit point: every rename done. They are flushed to disk first (a power cut must not
   * leave the journal saying so of renames that were lost), then the journal says it. From here
   * on a killed import is finished, not undone. A failure to say it leaves the commit undoable.
   */
  async commitInPlace(): Promise<void> {
    await this.flush();
    await this.journalPlaced(true);
  }

  /**
   * Before undoing a placed commit whose table write failed: the journal says it is to be undone
   * (else a kill during the undo would have the next import finish it, its files half put back).
   */
  commitToUndo(): Promise<void> {
    return this.journalPlaced(false);
  }

  /** The journal's `placed`, on disk; on failure it stays as it was, on disk as here. */
  private async journalPlaced(placed: boolean): Promise<void> {
    const commit = this.journal.commit!;
    commit.placed = placed;
    try {
      await this.writeJournal();
    } catch (err) {
      commit.placed = !placed;
      throw err;
    }
  }

  /** The commit failed and was undone whole: nothing is left for the next import to roll back. */
  commitUndone(): void {
    this.journal.commit = undefined;
  }

  /** After the table write: the commit stands, and an import interrupted from now on keeps it. */
  commitStands(): void {
    if (this.journal.commit) this.journal.commit.committed = true;
  }

  /**
   * The commit stands, marked on disk too. The mark only spares the next import the table check
   * should this one be killed before its journal is removed, so failing to write it is no error.
   */
  async commitFinished(): Promise<void> {
    if (!this.journal.commit) return;
    this.commitStands();
    await this.writeJournal().catch(() => undefined);
  }

  /**
   * The real directory where a destination is staged: on the destination's filesystem, as high
   * as that filesystem reaches inside the destination's allowed root (so one serves many).
   */
  stagingHome(logicalDest: string): string {
    const root = this.roots.find((r) => isUnder(logicalDest, r)) ?? '/';
    let dir = path.posix.dirname(logicalDest);
    while (!existsAsDir(this.sandbox.real(dir))) {
      if (dir === '/') break;
      dir = path.posix.dirname(dir);
    }
    const dev = statSync(this.sandbox.real(dir)).dev;
    while (dir !== '/' && isUnder(path.posix.dirname(dir), root) && path.posix.dirname(dir) !== dir) {
      const parent = path.posix.dirname(dir);
      if (!existsAsDir(this.sandbox.real(parent)) || statSync(this.sandbox.real(parent)).dev !== dev) break;
      dir = parent;
    }
    return path.join(this.sandbox.real(dir), this.stagingName);
  }

  /** The staging directory for a destination, created (journalled first) on first use. */
  stagingDirFor(logicalDest: string): Promise<string> {
    const home = this.stagingHome(logicalDest);
    let made = this.stagingDirs.get(home);
    if (!made) {
      made = (async () => {
        this.journal.staging.push(home);
        await this.writeJournal();
        await rm(home, { recursive: true, force: true });
        await mkdir(home, { mode: 0o700 });
        return home;
      })();
      this.stagingDirs.set(home, made);
    }
    return made;
  }

  /**
   * Flushes to disk the filesystems this import staged on, and `more` directories' filesystems:
   * before the commit, so that nothing replaces the old image but data on disk (an I/O error met
   * now fails the import with nothing changed); after it, the renames and the table write.
   */
  async flush(more: string[] = []): Promise<void> {
    // Named by the directory the staging is in: the user's, on the same filesystem.
    const dirs = (await this.stagingDirsMade()).map((h) => path.dirname(h));
    await flushFilesystems([...dirs, ...more], this.log, (dir) => this.sandbox.shown(dir));
  }

  /** The staging directories this import made (one whose making failed is not there). */
  private async stagingDirsMade(): Promise<string[]> {
    const homes = await Promise.all([...this.stagingDirs.values()].map((p) => p.catch(() => undefined)));
    return homes.filter((h): h is string => !!h);
  }

  /** A fresh path (not created) in the staging directory of a destination. */
  async unitPath(logicalDest: string, hint = ''): Promise<string> {
    const dir = await this.stagingDirFor(logicalDest);
    // The hint only helps a person reading the staging directory: cut short, a name of 255 bytes still fits.
    return path.join(dir, `${++this.counter}${hint ? '-' + hint.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, STAGED_HINT_MAX) : ''}`);
  }

  /**
   * A staged file or tree on the filesystem of `logicalDest`, where the commit can rename it. What
   * came before the manifest was held on INSTALLDIR's filesystem; a destination on another one (a
   * directory linked to other storage, XCATROOT on its own mount) gets a copy made now, before the
   * commit (`cp -a`: modes, owners, times, links and devices as they are), and the held one goes.
   */
  async rehome(staged: string, logicalDest: string): Promise<string> {
    const home = await this.stagingDirFor(logicalDest);
    const [from, to] = await Promise.all([stat(path.dirname(staged)), stat(home)]);
    if (from.dev === to.dev) return staged;
    const moved = await this.unitPath(logicalDest, path.basename(staged));
    // The room a tree takes unpacked (its member's size is the compressed one, a kit's is none).
    const held = await lstat(staged);
    await this.ensureRoom(moved, held.isDirectory() ? new TreeWalk(staged).survey().fileBytes : held.size);
    try {
      await runProgram('cp', ['-a', '-T', '--', staged, moved]);
    } catch (err) {
      throw new PathError(`cannot copy ${this.sandbox.shown(staged)} to the filesystem of ${logicalDest}: ${programSaid(err)}`, logicalDest);
    }
    await rm(staged, { recursive: true, force: true });
    return moved;
  }

  /** Fails early, with both numbers, when a staging directory's filesystem cannot take `bytes` more. */
  async ensureRoom(stagingPath: string, bytes: number): Promise<void> {
    const home = [...this.stagingDirs.keys()].find((h) => stagingPath.startsWith(h + path.sep)) ?? path.dirname(stagingPath);
    let free = this.room.get(home);
    if (free === undefined || bytes > free) {
      const fs = await statfs(home);
      free = fs.bavail * fs.bsize;
    }
    if (bytes > free) {
      throw new PathError(`not enough room: need ${bytes} bytes on the filesystem of ${this.sandbox.logical(path.dirname(home))}, only ${free} free`, home);
    }
    this.room.set(home, free - bytes);
  }

  /**
   * Removes every staging directory, the journal and the lock. A commit that was started and
   * neither finished nor undone (its undo failed) keeps staging and journal: the next import of
   * the image rolls it back. Safe to call twice.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.journal.commit && !this.journal.commit.committed) {
      const settles = this.journal.commit.placed ? 'finishes the commit (writes its table rows)' : 'puts back what the failed commit left';
      this.log(`Warning: the next import (or imgport recover ${this.image}) ${settles} (journal ${this.sandbox.logical(this.journalPath)})`);
      await this.releaseLock();
      return;
    }
    await Promise.all((await this.stagingDirsMade()).map((h) => rm(h, { recursive: true, force: true })));
    await unlink(this.journalPath).catch(() => undefined);
    await this.releaseLock();
  }
}

/**
 * Checks an allowed root (INSTALLDIR, or another that destinations lie under) before anything
 * streams into it, and creates it when missing (outside --dry-run) so that staging lands inside
 * it, not on the filesystem above. Resolves to the directories it created, deepest first, for a
 * rollback to remove. A link to nowhere (an unmounted filesystem) or a non-directory is a
 * PathError naming it.
 */
export async function prepareRoot(sandbox: Sandbox, root: string, dryRun: boolean, what = 'the directory'): Promise<string[]> {
  const real = sandbox.real(root);
  const st = await lstat(real).catch((err: NodeJS.ErrnoException) => {
    // ENOTDIR: something above is a file; mkdir below reports it.
    if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return undefined;
    throw new PathError(`cannot use ${what} ${root}: ${err.code ?? err.message}`, root);
  });
  if (st?.isSymbolicLink()) {
    const target = await readlink(real).catch(() => '?');
    const resolved = await stat(real).catch(() => undefined);
    if (!resolved) throw new PathError(`${what} ${root} is a symbolic link to ${target}, which does not exist (is its filesystem mounted?)`, root);
    if (!resolved.isDirectory()) throw new PathError(`${what} ${root} is a symbolic link to ${target}, which is not a directory`, root);
    return [];
  }
  if (st && !st.isDirectory()) throw new PathError(`${what} ${root} exists and is not a directory`, root);
  if (st || dryRun) return [];
  let first: string | undefined;
  try {
    first = await mkdir(real, { recursive: true, mode: 0o755 });
  } catch (err) {
    throw new PathError(`cannot create ${what} ${root}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, root);
  }
  const created: string[] = [];
  for (let dir = root; first !== undefined; dir = path.posix.dirname(dir)) {
    created.push(dir);
    if (sandbox.real(dir) === first || dir === '/') break;
  }
  // Whatever the umask: the install directory is served to nodes.
  await Promise.all(created.map((dir) => chmod(sandbox.real(dir), 0o755)));
  return created;
}

/**
 * The journal's commit, checked before it is acted on: logical destinations, staged and trash
 * paths inside the journal's own staging directories (a rollback moves things only there), and
 * rows an import of `image` could have written (a recovery writes them again).
 */
function checkedCommit(commit: unknown, staging: string[], journal: string, image: string): NonNullable<Journal['commit']> {
  const inStaging = (p: unknown) => typeof p === 'string' && staging.some((dir) => p.startsWith(dir + path.sep)) && !p.split(path.sep).includes('..');
  const logical = (p: unknown) => typeof p === 'string' && path.posix.isAbsolute(p) && !p.split('/').includes('..');
  const c = commit as NonNullable<Journal['commit']>;
  const stepOk = (s: CommitStep) =>
    logical(s?.path) &&
    (s.op === 'mkdir' ||
      (s.op === 'backup' && typeof s.id === 'string' && (s.trash === undefined || inStaging(s.trash))) ||
      (s.op === 'aside' && typeof s.id === 'string' && inStaging(s.trash)) ||
      (s.op === 'place' && typeof s.id === 'string' && inStaging(s.staged)));
  const rowsOk = Array.isArray(c?.rows) && c.rows.every((r) => isImportRow(image, r ?? {}));
  if (!Array.isArray(c?.ops) || !c.ops.every(stepOk) || !rowsOk) {
    throw new PathError(`the journal ${journal} of an interrupted import holds a commit that cannot be undone safely; check the image by hand, then remove the journal`, journal);
  }
  return c;
}

function existsAsDir(real: string): boolean {
  try {
    return lstatSync(real).isDirectory() || statSync(real).isDirectory();
  } catch {
    return false;
  }
}
