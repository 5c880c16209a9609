/** A small real filesystem for full-disk tests: a tmpfs mounted for the test, unmounted after. */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';

/**
 * Mounts a tmpfs of `size` (e.g. '20m') on `dir` (created if missing). Returns undefined when it
 * worked, else the reason, for `t.skip` (mounting needs root).
 */
export function mountTmpfs(t: { teardown(fn: () => void): void }, dir: string, size: string): string | undefined {
  fs.mkdirSync(dir, { recursive: true });
  const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0755`, 'tmpfs', dir], { encoding: 'utf8' });
  if (mounted.status !== 0) return `cannot mount a tmpfs here (${(mounted.stderr || mounted.error?.message || '').trim()})`;
  // Registered now, so it runs before the teardown that removes the directory above it.
  t.teardown(() => void spawnSync('umount', ['-l', dir]));
  return undefined;
}

/** Free bytes on the filesystem of `dir`. */
export function freeBytes(dir: string): number {
  const st = fs.statfsSync(dir);
  return st.bavail * st.bsize;
}
