/**
 * Turning staged members into the installed image: a pure plan of operations (directories to
 * make, existing things to keep as .ORIG, staged things to rename into place), the checks that
 * make it safe (no write through a symlink, no file where a directory must be), and its
 * execution with an undo log so that a failure half way puts everything back.
 */
import { lstat, mkdir, rename, rmdir, chmod, stat } from 'node:fs/promises';
import path from 'node:path';
import { ImgportError, PathError } from '../core/errors.js';
import type { Sandbox } from '../core/sandbox.js';

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

/** `dirlink`: a symbolic link that leads to a directory (an admin's link to another filesystem, say). */
export type EntryKind = 'dir' | 'dirlink' | 'file' | 'symlink' | 'other';

export type CommitOp =
  | { op: 'mkdir'; path: string; mode: number }
  /** Moves an existing PATH to PATH.ORIG (a PATH.ORIG already there goes to the trash first, back on undo). */
  | { op: 'backup'; path: string; dropOldBackup: boolean }
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
  const made = new Set<string>();
  const bundleLinks = new Set(units.filter((u) => u.type === 'symlink').map((u) => u.dest));
  const needDir = (dir: string, mode: number) => {
    if (made.has(dir)) return;
    made.add(dir);
    const kind = existing.get(dir);
    if (bundleLinks.has(dir)) problems.push(`${dir} would be written through a symbolic link of the bundle`);
    else if (kind === undefined) ops.push({ op: 'mkdir', path: dir, mode });
    else if (kind === 'symlink') problems.push(`${dir} is a symbolic link that does not lead to a directory`);
    else if (kind !== 'dir' && kind !== 'dirlink') problems.push(`${dir} exists and is not a directory`);
  };
  const ordered = [...units].sort((a, b) => (a.dest < b.dest ? -1 : a.dest > b.dest ? 1 : 0));
  for (const unit of ordered) {
    for (const dir of ancestorsOf(unit.dest)) needDir(dir, 0o755);
    const kind = existing.get(unit.dest);
    if (unit.type === 'dir') {
      needDir(unit.dest, unit.mode ?? 0o755);
      continue;
    }
    if (kind === 'dir' && unit.type !== 'tree') {
      problems.push(`${unit.dest} is a directory, the bundle has a file there`);
      continue;
    }
    if ((kind === 'symlink' || kind === 'dirlink') && unit.type !== 'symlink') {
      problems.push(`${unit.dest} is a symbolic link, the bundle would replace it (move it away first)`);
      continue;
    }
    if (kind !== undefined) ops.push({ op: 'backup', path: unit.dest, dropOldBackup: existing.has(unit.dest + '.ORIG') });
    ops.push({ op: 'place', unit });
  }
  if (problems.length) throw new PathError(`refusing to import: ${problems.join('; ')}`, problems[0].split(' ')[0]);
  return ops;
}

/** lstat (and, for links, stat) of many logical paths at once (sequential awaits are slow here). */
export async function inspectPaths(sandbox: Sandbox, paths: string[]): Promise<Map<string, EntryKind>> {
  const kinds = new Map<string, EntryKind>();
  await Promise.all(
    paths.map(async (p) => {
      const real = sandbox.real(p);
      try {
        const st = await lstat(real);
        const leadsToDir = st.isSymbolicLink() && (await stat(real).then((s) => s.isDirectory(), () => false));
        kinds.set(p, st.isDirectory() ? 'dir' : leadsToDir ? 'dirlink' : st.isSymbolicLink() ? 'symlink' : st.isFile() ? 'file' : 'other');
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
