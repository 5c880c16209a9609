/**
 * Getting written data onto the disk before anything relies on it. The page cache would write it
 * within half a minute anyway, but a power cut in between would leave renamed files empty, and an
 * I/O error met then (a failing disk, thin storage run out) would reach no one. Node has no
 * syncfs(2); coreutils' `sync -f DIR` is that call, for DIR's filesystem: one flush for a staged
 * tree of thousands of files, where fsync per file would commit the filesystem's journal for each.
 * syncfs reports writeback errors from Linux 5.8 on; before that it flushes without telling.
 */
import { stat } from 'node:fs/promises';
import { PathError } from './errors.js';
import { runProgram } from './child-env.js';

/** What a `sync` without -f (coreutils before 8.24, a small busybox) says of the option. */
const NO_FILESYSTEM_OPTION = /invalid option|unrecognized option|illegal option|usage/i;

/** The warning for a missing `sync` is given once a process. */
let warnedMissing = false;

/**
 * Flushes the filesystems holding `dirs` (each filesystem once, in parallel). A flush that fails
 * is a PathError naming the directory (as `named` shows it) and the reason. A `sync` without -f
 * flushes every filesystem instead; without a `sync` program nothing is flushed, and a warning
 * says so.
 */
export async function flushFilesystems(dirs: string[], warn: (line: string) => void, named: (dir: string) => string = (dir) => dir): Promise<void> {
  const oneDirPerFilesystem = new Map<number, string>();
  for (const dir of dirs) {
    const st = await stat(dir).catch(() => undefined);
    if (st && !oneDirPerFilesystem.has(st.dev)) oneDirPerFilesystem.set(st.dev, dir);
  }
  let missing = false;
  await Promise.all(
    [...oneDirPerFilesystem.values()].map(async (dir) => {
      try {
        await runProgram('sync', ['-f', dir]);
      } catch (err) {
        const e = err as NodeJS.ErrnoException & { stderr?: string; signal?: string };
        if (e.code === 'ENOENT') missing = true;
        else if (NO_FILESYSTEM_OPTION.test(e.stderr ?? '')) await runProgram('sync', []).catch(() => undefined);
        else throw new PathError(`cannot flush the filesystem of ${named(dir)} to disk: ${failureOf(e)}`, named(dir));
      }
    }),
  );
  if (missing && !warnedMissing) {
    warnedMissing = true;
    warn('Warning: the program sync (coreutils) is not installed: what was written cannot be flushed to disk.');
  }
}

function failureOf(e: { stderr?: string; signal?: string; code?: unknown }): string {
  if (e.signal) return `sync was stopped by ${e.signal}`;
  return e.stderr?.trim() || `sync exited with code ${String(e.code)}`;
}
