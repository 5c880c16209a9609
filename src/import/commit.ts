/**
 * Turning staged members into the installed image: a pure plan of operations (directories to
 * make, existing things to keep as .ORIG, staged things to rename into place), the checks that
 * make it safe (no write through a symlink, no file where a directory must be), and its
 * execution with an undo log so that a failure half way puts everything back.
 */
import { lstat, mkdir, rename, rmdir, chmod } from 'node:fs/promises';
import path from 'node:path';
import { ImgportError, PathError } from '../core/errors.js';
import type { Sandbox } from '../core/sandbox.js';
import { isUnder } from './plan.js';

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
  /** The bundle member it came from. */
  member: string;
  size?: number;
}

export type EntryKind = 'dir' | 'file' | 'symlink' | 'other';

export type CommitOp =
  | { op: 'mkdir'; path: string; mode: number }
  /** Moves an existing PATH to PATH.ORIG (a directory .ORIG already there goes to the trash first). */
  | { op: 'backup'; path: string; dropOldBackup: boolean }
  | { op: 'place'; unit: Unit };

/** Logical ancestors of a path, outermost first; `checked` when strictly below `root` (the root and above may be the admin's symlinks). */
function ancestorsOf(p: string, root: string): { dir: string; checked: boolean }[] {
  const out: { dir: string; checked: boolean }[] = [];
  for (let dir = posix.dirname(p); dir !== '/'; dir = posix.dirname(dir)) out.unshift({ dir, checked: dir !== root && isUnder(dir, root) });
  return out;
}

/** Every path whose kind the commit plan needs to know. */
export function pathsToInspect(units: Unit[], roots: string[]): string[] {
  const paths = new Set<string>();
  for (const unit of units) {
    const root = roots.find((r) => isUnder(unit.dest, r)) ?? '/';
    for (const { dir } of ancestorsOf(unit.dest, root)) paths.add(dir);
    paths.add(unit.dest);
    if (unit.type === 'tree') paths.add(unit.dest + '.ORIG');
  }
  return [...paths];
}

/**
 * The operations, in order, from the units and what exists now. Refuses (PathError listing all)
 * symlinks or non-directories where a directory is needed: nothing is ever written through a link.
 */
export function planCommit(units: Unit[], roots: string[], existing: Map<string, EntryKind>): CommitOp[] {
  const ops: CommitOp[] = [];
  const problems: string[] = [];
  const made = new Set<string>();
  const needDir = (dir: string, mode: number, checked = true) => {
    if (made.has(dir)) return;
    made.add(dir);
    const kind = existing.get(dir);
    if (kind === undefined) ops.push({ op: 'mkdir', path: dir, mode });
    else if (!checked) return;
    else if (kind === 'symlink') problems.push(`${dir} is a symbolic link`);
    else if (kind !== 'dir') problems.push(`${dir} exists and is not a directory`);
  };
  const ordered = [...units].sort((a, b) => (a.dest < b.dest ? -1 : a.dest > b.dest ? 1 : 0));
  for (const unit of ordered) {
    const root = roots.find((r) => isUnder(unit.dest, r)) ?? '/';
    for (const { dir, checked } of ancestorsOf(unit.dest, root)) needDir(dir, 0o755, checked);
    const kind = existing.get(unit.dest);
    if (unit.type === 'dir') {
      needDir(unit.dest, unit.mode ?? 0o755);
      continue;
    }
    if (kind === 'dir' && unit.type !== 'tree') {
      problems.push(`${unit.dest} is a directory, the bundle has a file there`);
      continue;
    }
    if (kind !== undefined) ops.push({ op: 'backup', path: unit.dest, dropOldBackup: unit.type === 'tree' && existing.has(unit.dest + '.ORIG') });
    ops.push({ op: 'place', unit });
  }
  if (problems.length) throw new PathError(`refusing to import: ${problems.join('; ')}`, problems[0].split(' ')[0]);
  return ops;
}

/** lstat of many logical paths at once (sequential awaits are slow here). */
export async function inspectPaths(sandbox: Sandbox, paths: string[]): Promise<Map<string, EntryKind>> {
  const kinds = new Map<string, EntryKind>();
  await Promise.all(
    paths.map(async (p) => {
      try {
        const st = await lstat(sandbox.real(p));
        kinds.set(p, st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : st.isFile() ? 'file' : 'other');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
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
    case 'place': {
      const u = op.unit;
      const what = u.type === 'tree' ? 'directory tree' : u.type;
      return `${u.dest} (${what}${u.size !== undefined ? `, ${u.size} bytes` : ''}, from ${u.member})`;
    }
  }
}

/**
 * Runs the operations; on any failure (or when `aborted()` turns true) undoes what was done, in
 * reverse, and rethrows. `trash(real)` gives a path on the same filesystem to move an old .ORIG to.
 */
export async function executeCommit(
  sandbox: Sandbox,
  ops: CommitOp[],
  hooks: { trash: (real: string) => Promise<string>; progress: (op: CommitOp) => void; aborted: () => boolean },
): Promise<{ undo: () => Promise<void> }> {
  const undo: (() => Promise<unknown>)[] = [];
  const undoAll = async () => {
    for (const step of undo.reverse()) await step().catch(() => undefined);
  };
  let current = '';
  try {
    for (const op of ops) {
      current = op.op === 'place' ? op.unit.dest : op.path;
      if (hooks.aborted()) throw new Error('interrupted');
      if (op.op === 'mkdir') {
        const real = sandbox.real(op.path);
        await mkdir(real, { mode: op.mode });
        undo.push(() => rmdir(real));
        await chmod(real, op.mode); // whatever the umask
      } else if (op.op === 'backup') {
        const real = sandbox.real(op.path);
        if (op.dropOldBackup) {
          const trashed = await hooks.trash(real + '.ORIG');
          await rename(real + '.ORIG', trashed);
          undo.push(() => rename(trashed, real + '.ORIG'));
        }
        await rename(real, real + '.ORIG');
        undo.push(() => rename(real + '.ORIG', real));
      } else {
        const real = sandbox.real(op.unit.dest);
        await rename(op.unit.staged!, real);
        undo.push(() => rename(real, op.unit.staged!));
      }
      hooks.progress(op);
    }
  } catch (err) {
    await undoAll();
    if (hooks.aborted()) throw new ImgportError(`interrupted while putting ${current} in place; everything was put back`);
    throw new PathError(`cannot put ${current} in place: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}; everything was put back`, current);
  }
  return { undo: undoAll };
}
