import { execFile, type ChildProcess } from 'node:child_process';
import { onCleanup } from './cleanup.js';
import { promisify } from 'node:util';

/**
 * The environment for the programs imgport runs (xz, mksquashfs, ssh, cpio). The commands' #!
 * line gives node glibc malloc settings that suit its MiB-sized buffers; one arena would slow a
 * multi-threaded program such as mksquashfs, so they run with glibc's defaults.
 */
const NODE_MALLOC_SETTINGS = ['MALLOC_ARENA_MAX', 'MALLOC_MMAP_THRESHOLD_', 'MALLOC_TRIM_THRESHOLD_'];

export function childEnvironment(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const name of NODE_MALLOC_SETTINGS) delete env[name];
  return env;
}

const execFileAsync = promisify(execFile);

/**
 * Runs a program to its end, its arguments an array (never a shell), in childEnvironment. A
 * failure or signal meanwhile stops it before the other cleanups run: a `cp -a` left running
 * would go on writing into a staging directory being removed.
 */
export function runProgram(program: string, args: string[]): Promise<{ stdout: string; stderr: string }> {
  const running = execFileAsync(program, args, { env: childEnvironment() });
  const unregister = onCleanup(() => stopChild(running.child, running));
  return running.finally(unregister);
}

/** Stops a child program and waits for it to be gone (`exited` settles when it has). */
export async function stopChild(child: ChildProcess, exited: Promise<unknown>): Promise<void> {
  child.kill('SIGTERM');
  await exited.catch(() => undefined);
}

/** What a program that runProgram saw fail said: its standard error, else the error's message. */
export function programSaid(err: unknown): string {
  return (err as { stderr?: string }).stderr?.trim() || (err as Error).message.trim();
}
