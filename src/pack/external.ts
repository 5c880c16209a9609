import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { PathError } from '../core/errors.js';
import { childEnvironment, stopChild } from '../core/child-env.js';
import { onCleanup } from '../core/cleanup.js';

/** The full path of a program found in PATH, or undefined. */
export function findProgram(name: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here; keep looking
    }
  }
  return undefined;
}

/** Like findProgram, but a missing program is an error that says what to install. */
export function requireProgram(name: string, purpose: string, pkg: string): string {
  const found = findProgram(name);
  if (!found) throw new PathError(`${name} not found in PATH: it is needed ${purpose}; install ${pkg}`, name);
  return found;
}

/** Keeps the last few KiB of a program's stderr, for the error message. */
function stderrTail(stream: Readable): () => string {
  let tail = '';
  stream.setEncoding('utf8');
  stream.on('data', (text: string) => {
    tail = (tail + text).slice(-4096);
  });
  return () => tail.trim();
}

/**
 * Runs `program args`, streaming `input` into its standard input and its standard output into
 * `output` (when given), with backpressure both ways. Resolves when the program exits 0 and all
 * data has moved. A failing input stops the program and is the error reported; otherwise a
 * non-zero exit is reported with the program's own message.
 */
export async function runFilter(program: string, args: string[], input: AsyncIterable<Buffer>, output?: Writable): Promise<void> {
  const child = spawn(program, args, { stdio: ['pipe', output ? 'pipe' : 'ignore', 'pipe'], env: childEnvironment() });
  const stderr = stderrTail(child.stderr!);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal }));
  });
  // A failure or signal elsewhere stops the program before the partial output it writes is removed.
  const unregister = onCleanup(() => stopChild(child, exited));
  void exited.finally(unregister).catch(() => undefined);
  let inputFailed: Error | undefined;
  let stoppedReading = false;
  const feeding = pipeline(Readable.from(input, { objectMode: false }), child.stdin!).catch((err: NodeJS.ErrnoException) => {
    // EPIPE: the program stopped reading; its exit status says why (or, if 0, that it is wrong).
    if (err.code === 'EPIPE' || err.code === 'ERR_STREAM_PREMATURE_CLOSE') stoppedReading = true;
    else {
      inputFailed = err;
      child.kill('SIGTERM');
    }
  });
  const draining = output && child.stdout ? pipeline(child.stdout, output) : Promise.resolve();
  draining.catch(() => child.kill('SIGTERM'));
  const [, drained, exit] = await Promise.allSettled([feeding, draining, exited]);
  if (inputFailed) throw inputFailed;
  // A full disk kills the program by SIGPIPE: the write error is the one worth reporting.
  if (drained.status === 'rejected') throw drained.reason;
  if (exit.status === 'rejected') throw new PathError(`cannot run ${program}: ${(exit.reason as Error).message}`, program);
  const { code, signal } = exit.value;
  if (code !== 0) {
    const why = signal ? `was killed by ${signal}` : `exited with status ${code}`;
    const said = stderr();
    throw new PathError(`${path.basename(program)} ${why}${said ? `: ${said}` : ''}`, program);
  }
  // Exiting 0 without having read everything: its output lacks the rest, and must not replace a good one.
  if (stoppedReading) throw new PathError(`${path.basename(program)} exited before it had read all of its input`, program);
}
