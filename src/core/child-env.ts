import { execFile } from 'node:child_process';
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

/** Runs a program to its end, its arguments an array (never a shell), in childEnvironment. */
export function runProgram(program: string, args: string[]): Promise<{ stdout: string; stderr: string }> {
  return execFileAsync(program, args, { env: childEnvironment() });
}

/** What a program that runProgram saw fail said: its standard error, else the error's message. */
export function programSaid(err: unknown): string {
  return (err as { stderr?: string }).stderr?.trim() || (err as Error).message.trim();
}
