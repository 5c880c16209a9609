/**
 * Getting written data onto the disk before anything relies on it. The page cache would write it
 * within half a minute anyway, but a power cut in between would leave renamed files empty, and an
 * I/O error met then (a failing disk, thin storage run out) would reach no one. Node has no
 * syncfs(2); coreutils' `sync -f DIR` is that call, for DIR's filesystem: one flush for a staged
 * tree of thousands of files, where fsync per file would commit the filesystem's journal for each.
 */
import { execFile } from 'node:child_process';
import { stat } from 'node:fs/promises';
import { promisify } from 'node:util';
import { PathError } from './errors.js';
import { childEnvironment } from './child-env.js';

const run = promisify(execFile);

/**
 * Flushes the filesystems holding `dirs` (each filesystem once, in parallel). A flush that fails
 * is a PathError naming the directory and the reason; `named` turns a real path into the one to
 * show. Without a `sync` program there is nothing to flush with: a warning says so.
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
        await run('sync', ['-f', dir], { env: childEnvironment() });
      } catch (err) {
        const e = err as NodeJS.ErrnoException & { stderr?: string };
        if (e.code === 'ENOENT') missing = true;
        else throw new PathError(`cannot flush the filesystem of ${named(dir)} to disk: ${e.stderr?.trim() || e.message}`, named(dir));
      }
    }),
  );
  if (missing) warn('Warning: the program sync (coreutils) is not installed: what was written is not flushed to disk yet.');
}
