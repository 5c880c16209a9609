/**
 * Turning staged members into the installed image: a pure plan of operations (directories to
 * make, existing things to keep as .ORIG, staged things to rename into place), the checks that
 * make it safe (no write through a symlink, no file where a directory must be), and its
 * execution, journaled first, with a rollback that reads the filesystem so that a failure half
 * way, or a SIGKILL followed by the next import, puts everything back.
 */
import { lchown, lstat, lutimes, mkdir, realpath, rename, rmdir, chmod, stat } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ImgportError, PathError } from '../core/errors.js';
import type { Sandbox } from '../core/sandbox.js';
import { isUnderAny } from './plan.js';

const posix = path.posix;

/** One thing to put in place. */
export interface Unit {
  /** Logical destination. */
  dest: string;
  /** file/symlink: replaced (old one to .ORIG); tree: a whole directory replaced (old one to .ORIG); dir: made if missing. */
  type: 'file' | 'symlink' | 'tree' | 'dir';
  /** Real path of the staged file/tree (absent in --dry-run and for dirs). */
  staged?: string;
  /** Mode for a dir unit. */
  mode?: number;
  /** A dir unit of a directory extra: its owner and mtime (seconds), as `cp -a` keeps them, when it is made. */
  kept?: KeptAttributes;
  /** The bundle member it came from. */
  member: string;
  size?: number;
  /**
   * file/symlink: what becomes of a file already there. Kept as PATH.ORIG by default (xCAT's rule
   * for the files a manifest names and for file extras); overwritten where xCAT copies with
   * `cp -f` (the entries of a directory extra, a kit's other_files and plugins).
   */
  overwrite?: boolean;
}

/** Owner and mtime (seconds) that a directory made by the commit takes from the bundle. */
export interface KeptAttributes {
  uid: number;
  gid: number;
  mtime: number;
}

/**
 * `dirlink`: a symbolic link that leads to a directory (an admin's link to another filesystem,
 * say). `farlink`: one inside an allowed root that leads out of every root (physically): it may
 * be a link an earlier bundle left (a statelite tree's, a kit's), and is never written through.
 */
export type EntryKind = 'dir' | 'dirlink' | 'farlink' | 'file' | 'symlink' | 'other';

export type CommitOp =
  | { op: 'mkdir'; path: string; mode: number; kept?: KeptAttributes }
  /** Moves an existing PATH to PATH.ORIG (a PATH.ORIG already there goes to the trash first, back on undo). */
  | { op: 'backup'; path: string; dropOldBackup: boolean }
  /** Moves an existing PATH to the trash, to be overwritten (back on undo; gone with the staging). */
  | { op: 'aside'; path: string }
  | { op: 'place'; unit: Unit };

/** Logical ancestors of a path, outermost first. */
function ancestorsOf(p: string): string[] {
  const out: string[] = [];
  for (let dir = posix.dirname(p); dir !== '/'; dir = posix.dirname(dir)) out.unshift(dir);
  return out;
}

/** Every path whose kind the commit plan needs to know. */
export function pathsToInspect(units: Unit[]): string[] {
  const paths = new Set<string>();
  for (const unit of units) {
    for (const dir of ancestorsOf(unit.dest)) paths.add(dir);
    paths.add(unit.dest);
    if (unit.type !== 'dir') paths.add(unit.dest + '.ORIG');
  }
  return [...paths];
}

/**
 * The operations, in order, from the units and what exists now. Refuses (PathError listing all)
 * what would write through a link: a directory needed where a link to nowhere, a link the bundle
 * makes or a non-directory is, and a file or tree to replace that is a link. Links to directories
 * that already exist above a destination are the admin's (another filesystem): they are used.
 */
export function planCommit(units: Unit[], existing: Map<string, EntryKind>): CommitOp[] {
  const ops: CommitOp[] = [];
  const problems: string[] = [];
  // A tree's own directory is made by placing the tree: no mkdir for it as the parent of what goes inside.
  const made = new Set<string>(units.filter((u) => u.type === 'tree').map((u) => u.dest));
  const bundleLinks = new Set(units.filter((u) => u.type === 'symlink').map((u) => u.dest));
  const needDir = (dir: string, mode: number, kept?: KeptAttributes) => {
    if (made.has(dir)) return;
    made.add(dir);
    const kind = existing.get(dir);
    if (bundleLinks.has(dir)) problems.push(`${dir} would be written through a symbolic link of the bundle`);
    else if (kind === undefined) ops.push(kept ? { op: 'mkdir', path: dir, mode, kept } : { op: 'mkdir', path: dir, mode });
    else if (kind === 'symlink') problems.push(`${dir} is a symbolic link that does not lead to a directory`);
    else if (kind === 'farlink') {
      problems.push(`${dir} is a symbolic link that leads out of the allowed destinations (if it is yours, allow where it leads with --allow-dest)`);
    }
    else if (kind !== 'dir' && kind !== 'dirlink') problems.push(`${dir} exists and is not a directory`);
  };
  const ordered = [...units].sort((a, b) => (a.dest < b.dest ? -1 : a.dest > b.dest ? 1 : 0));
  for (const unit of ordered) {
    for (const dir of ancestorsOf(unit.dest)) needDir(dir, 0o755);
    const kind = existing.get(unit.dest);
    if (unit.type === 'dir') {
      needDir(unit.dest, unit.mode ?? 0o755, unit.kept);
      continue;
    }
    if (kind === 'dir' && unit.type !== 'tree') {
      problems.push(`${unit.dest} is a directory, the bundle has a file there`);
      continue;
    }
    if ((kind === 'symlink' || kind === 'dirlink' || kind === 'farlink') && unit.type !== 'symlink') {
      problems.push(`${unit.dest} is a symbolic link, the bundle would replace it (move it away first)`);
      continue;
    }
    if (kind !== undefined && unit.overwrite) ops.push({ op: 'aside', path: unit.dest });
    else if (kind !== undefined) ops.push({ op: 'backup', path: unit.dest, dropOldBackup: existing.has(unit.dest + '.ORIG') });
    ops.push({ op: 'place', unit });
  }
  if (problems.length) throw new PathError(`refusing to import: ${problems.join('; ')}`, problems[0].split(' ')[0]);
  return ops;
}

/**
 * The unit of a tree the commit replaces that holds `p` strictly inside it (an extra placed into
 * a statelite tree), if any: what is at `p` when the commit runs is the new tree's, since the old
 * tree goes to .ORIG whole.
 */
export function enclosingTree(units: Unit[], p: string): Unit | undefined {
  return units.find((unit) => unit.type === 'tree' && p.startsWith(unit.dest + '/'));
}

/**
 * The real path that shows what will be at logical path `p` when the commit runs: inside a tree
 * being replaced, the staged new tree's; null while that tree is not staged (--dry-run, the checks
 * before the members stream), where nothing can be known yet.
 */
function whereToLook(sandbox: Sandbox, units: Unit[], p: string): string | null {
  const tree = enclosingTree(units, p);
  if (!tree) return sandbox.real(p);
  return tree.staged ? path.join(tree.staged, ...posix.relative(tree.dest, p).split('/')) : null;
}

/**
 * lstat (and, for links, stat) of many logical paths at once (sequential awaits are slow here),
 * as they will be when the commit of `units` runs (see whereToLook). With `roots` (the allowed
 * destinations), a link to a directory found inside a root is a `farlink` when where it leads,
 * resolved, lies outside every root; links above the roots (`/opt` moved to other storage, say)
 * are the administrator's.
 */
export async function inspectPaths(sandbox: Sandbox, paths: string[], roots: string[] = [], units: Unit[] = []): Promise<Map<string, EntryKind>> {
  const kinds = new Map<string, EntryKind>();
  const physicalRoots = await Promise.all(roots.map((root) => realpath(sandbox.real(root)).catch(() => sandbox.real(root))));
  const leadsOut = async (p: string, real: string): Promise<boolean> => isUnderAny(p, roots) && !isUnderAny(await realpath(real), physicalRoots);
  await Promise.all(
    paths.map(async (p) => {
      const real = whereToLook(sandbox, units, p);
      if (real === null) return;
      try {
        const st = await lstat(real);
        const leadsToDir = st.isSymbolicLink() && (await stat(real).then((s) => s.isDirectory(), () => false));
        const dirlink = leadsToDir && (await leadsOut(p, real)) ? 'farlink' : 'dirlink';
        kinds.set(p, st.isDirectory() ? 'dir' : leadsToDir ? dirlink : st.isSymbolicLink() ? 'symlink' : st.isFile() ? 'file' : 'other');
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        // Missing, or below a non-directory (which is itself reported).
        if (code !== 'ENOENT' && code !== 'ENOTDIR') throw new PathError(`cannot inspect ${p}: ${code ?? (err as Error).message}`, p);
      }
    }),
  );
  return kinds;
}

/** Human lines for a commit plan (--dry-run, and the progress lines of a real import). */
export function describeOp(op: CommitOp): string {
  switch (op.op) {
    case 'mkdir':
      return `mkdir ${op.path}`;
    case 'backup':
      return `${op.dropOldBackup ? `replace ${op.path}.ORIG; ` : ''}rename ${op.path} to ${op.path}.ORIG`;
    case 'aside':
      return `overwrite ${op.path}`;
    case 'place': {
      const u = op.unit;
      const what = u.type === 'tree' ? 'directory tree' : u.type;
      return `${u.dest} (${what}${u.size !== undefined ? `, ${u.size} bytes` : ''}, from ${u.member})`;
    }
  }
}

/**
 * A commit operation as the journal records it, with everything its undo needs: logical
 * destinations, real staging paths, and the identity (device:inode) of what each rename moves,
 * so that a rollback can tell from the filesystem alone which renames were done.
 */
export type CommitStep =
  | { op: 'mkdir'; path: string }
  /** `trash`: where an older PATH.ORIG goes (in staging); `id`: the identity of the PATH being kept. */
  | { op: 'backup'; path: string; id: string; trash?: string }
  /** `trash`: where the PATH being overwritten waits (in staging); `id`: its identity. */
  | { op: 'aside'; path: string; id: string; trash: string }
  /** `id`: the identity of the staged file or tree. */
  | { op: 'place'; path: string; staged: string; id: string };

/** What the undo of a commit needs to know: where to put an older .ORIG aside, and the journal. */
export interface CommitHooks {
  /** A path (not created) on the same filesystem, inside staging, to move an older .ORIG or an overwritten file to. */
  trash: (real: string) => Promise<string>;
  progress: (op: CommitOp) => void;
  aborted: () => boolean;
  /** Called before the first operation; the steps must be on disk (journaled) when it resolves. */
  record?: (steps: CommitStep[]) => Promise<void>;
  /** Called once every operation is done: the commit point (journaled); if it fails, the commit is undone. */
  placed?: () => Promise<void>;
  /** Called once what was done is undone (nothing of the commit is left to roll back). */
  undone?: () => void;
  /** Called after each operation with how many are done (a test seam: a kill between two renames). */
  afterOp?: (done: number) => Promise<void> | void;
}

/** device:inode of a path (not following links), or undefined when it does not exist. */
async function identity(real: string): Promise<string | undefined> {
  try {
    const st = await lstat(real, { bigint: true });
    return `${st.dev}:${st.ino}`;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** The journal's form of the operations, computed (in parallel) before any of them runs. */
export async function commitSteps(sandbox: Sandbox, ops: CommitOp[], trash: CommitHooks['trash']): Promise<CommitStep[]> {
  const units = ops.flatMap((op) => (op.op === 'place' ? [op.unit] : []));
  // What a rename will move: inside a tree being replaced, the new tree's entry (its inode moves with the tree).
  const moved = (path: string): string => whereToLook(sandbox, units, path) ?? sandbox.real(path);
  /** `what` says which of dest's paths is meant (it or its staged copy). */
  const known = async (real: string, dest: string, what: string) => {
    const id = await identity(real).catch((err: NodeJS.ErrnoException) => {
      throw new PathError(`cannot inspect ${what}: ${err.code ?? err.message}`, dest);
    });
    if (id === undefined) throw new PathError(`${what} vanished before the commit`, dest);
    return id;
  };
  return Promise.all(
    ops.map(async (op): Promise<CommitStep> => {
      if (op.op === 'mkdir') return { op: 'mkdir', path: op.path };
      if (op.op === 'backup') {
        const real = sandbox.real(op.path);
        const id = await known(moved(op.path), op.path, op.path);
        return op.dropOldBackup ? { op: 'backup', path: op.path, id, trash: await trash(real + '.ORIG') } : { op: 'backup', path: op.path, id };
      }
      if (op.op === 'aside') {
        const real = sandbox.real(op.path);
        return { op: 'aside', path: op.path, id: await known(moved(op.path), op.path, op.path), trash: await trash(real) };
      }
      return { op: 'place', path: op.unit.dest, staged: op.unit.staged!, id: await known(op.unit.staged!, op.unit.dest, `the staged copy of ${op.unit.dest}`) };
    }),
  );
}

/** Whether every staged thing is at its destination (the renames of the commit all done). */
export async function commitPlaced(sandbox: Sandbox, steps: CommitStep[]): Promise<boolean> {
  const places = steps.filter((s) => s.op === 'place');
  const ids = await Promise.all(places.map((s) => identity(sandbox.real(s.path))));
  return places.every((s, i) => ids[i] === s.id);
}

/** A rename of the rollback; a failure is a PathError naming the path it concerns. */
async function putBack(from: string, to: string, named: string): Promise<void> {
  try {
    await rename(from, to);
  } catch (err) {
    throw new PathError(`cannot put ${named} back: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, named);
  }
}

/**
 * Undoes whatever part of a commit was done, judging by the filesystem only (so it works after a
 * SIGKILL, and a second run does nothing): in reverse, a placed thing goes back to staging, the
 * kept PATH.ORIG back to PATH, the older .ORIG and an overwritten PATH back from the trash, and
 * directories made are removed when empty. Resolves to the number of renames it did.
 */
export async function rollBackCommit(sandbox: Sandbox, steps: CommitStep[]): Promise<number> {
  let renamed = 0;
  for (const step of [...steps].reverse()) {
    const real = sandbox.real(step.path);
    if (step.op === 'place') {
      if ((await identity(real)) !== step.id) continue;
      await putBack(real, step.staged, step.path);
      renamed++;
    } else if (step.op === 'backup') {
      if ((await identity(real + '.ORIG')) === step.id && (await identity(real)) === undefined) {
        await putBack(real + '.ORIG', real, step.path);
        renamed++;
      }
      if (step.trash && (await identity(step.trash)) !== undefined) {
        await putBack(step.trash, real + '.ORIG', step.path + '.ORIG');
        renamed++;
      }
    } else if (step.op === 'aside') {
      if ((await identity(step.trash)) === step.id && (await identity(real)) === undefined) {
        await putBack(step.trash, real, step.path);
        renamed++;
      }
    } else {
      // Only an empty directory is ours to remove; a missing one was never made.
      await rmdir(real).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT' && err.code !== 'ENOTEMPTY' && err.code !== 'EEXIST') throw new PathError(`cannot remove ${step.path}: ${err.code}`, step.path);
      });
    }
  }
  return renamed;
}

/** mkdir; false when a directory is there already (made since the plan, by an import of another image). */
async function madeDirectory(real: string, mode: number): Promise<boolean> {
  try {
    await mkdir(real, { mode });
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST' && (await lstat(real)).isDirectory()) return false;
    throw err;
  }
}

/**
 * A directory extra's entry as `cp -a` leaves it: the bundle's owner (when we may set one), then
 * the mode again (a change of owner clears setuid and setgid: a service's setuid helper stays its
 * owner's, not root's; a symbolic link has no mode, `mode` undefined) and the mtime.
 */
export async function keepAttributes(real: string, kept: KeptAttributes, mode?: number): Promise<void> {
  if (process.getuid?.() === 0) {
    await lchown(real, kept.uid, kept.gid);
    if (mode !== undefined) await chmod(real, mode);
  }
  const when = new Date(kept.mtime * 1000); // a Date: Node takes a negative number of seconds as now
  await lutimes(real, when, when);
}

/**
 * Runs the operations, journaling them first (hooks.record); on any failure (or when `aborted()`
 * turns true) undoes what was done and rethrows. `undo` undoes the whole commit (when the table
 * write fails).
 */
export async function executeCommit(sandbox: Sandbox, ops: CommitOp[], hooks: CommitHooks): Promise<{ undo: () => Promise<void> }> {
  const steps = await commitSteps(sandbox, ops, hooks.trash);
  await hooks.record?.(steps);
  // What this run reached: renames are undone only when the filesystem shows them done, but an
  // empty directory is removed only when this run made it (another import may be filling it).
  const reached: CommitStep[] = [];
  const undo = async () => {
    await rollBackCommit(sandbox, reached);
    hooks.undone?.();
  };
  /** Directories this run made that take the bundle's owner and mtime once the renames are done. */
  const madeWithAttributes: { real: string; mode: number; kept: KeptAttributes }[] = [];
  let current = '';
  try {
    for (const [index, op] of ops.entries()) {
      const step = steps[index];
      current = step.path;
      if (hooks.aborted()) throw new Error('interrupted');
      const real = sandbox.real(step.path);
      if (op.op === 'mkdir') {
        if (await madeDirectory(real, op.mode)) {
          reached.push(step);
          await chmod(real, op.mode); // whatever the umask
          if (op.kept) madeWithAttributes.push({ real, mode: op.mode, kept: op.kept });
        }
      } else if (step.op === 'backup') {
        reached.push(step);
        if (step.trash) await rename(real + '.ORIG', step.trash);
        await rename(real, real + '.ORIG');
      } else if (step.op === 'aside') {
        reached.push(step);
        await rename(real, step.trash);
      } else if (step.op === 'place') {
        reached.push(step);
        await rename(step.staged, real);
      }
      hooks.progress(op);
      await hooks.afterOp?.(index + 1);
    }
    // Last, once nothing more goes into them: adding an entry would change a directory's mtime.
    for (const dir of madeWithAttributes) await keepAttributes(dir.real, dir.kept, dir.mode);
    if (hooks.aborted()) throw new Error('interrupted');
    await hooks.placed?.();
  } catch (err) {
    const reason = hooks.aborted() ? 'interrupted' : (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    try {
      await undo();
    } catch (undoErr) {
      throw new PathError(`${reason} while putting ${current} in place, and ${(undoErr as Error).message}; the next import of the image finishes putting it back`, current);
    }
    if (hooks.aborted()) throw new ImgportError(`interrupted while putting ${current} in place; everything was put back`);
    // The commit point's own failure (its flush, its journal write) names what it concerns.
    if (err instanceof PathError) throw new PathError(`${err.message}; everything was put back`, err.path);
    throw new PathError(`cannot put ${current} in place: ${reason}; everything was put back`, current);
  }
  return { undo };
}

/**
 * IMGPORT_TEST_PAUSE_COMMIT_AFTER=N (tests only): after N operations of the commit (`placed`: after
 * its commit point, before the table write), says so on standard error and sleeps a minute, so
 * that a test can kill the import there. An interrupt ends the sleep, 2 s later: the time a slow
 * rename in flight would make it wait.
 */
export function pauseForTests(value: string | undefined, aborted: () => boolean): ((point: number | 'placed') => Promise<void>) | undefined {
  const after = value === 'placed' ? value : Number(value);
  if (!value || (after !== 'placed' && !Number.isInteger(after))) return undefined;
  return async (point) => {
    if (point !== after) return;
    process.stderr.write(`pausing the commit after ${point === 'placed' ? 'its commit point' : `${point} operations`} (IMGPORT_TEST_PAUSE_COMMIT_AFTER)\n`);
    for (let waited = 0; waited < 60_000 && !aborted(); waited += 100) await sleep(100);
    if (aborted()) await sleep(2000);
  };
}
