import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { PassThrough, type Writable } from 'node:stream';
import { PathError } from '../core/errors.js';
import { onCleanup } from '../core/cleanup.js';
import { shellQuote, sshArgs } from '../core/ssh.js';

/**
 * Where an archive goes. The producer writes `stream`, then calls commit() to make the result
 * visible under its final name, or abort() to leave nothing behind. Until commit, the final
 * name is untouched: a failure, SIGINT or SIGTERM never leaves a partial archive under it.
 */
export interface Sink {
  stream: Writable;
  /** What the user should be told the output is (a path, `user@host:path`, or standard output). */
  description: string;
  commit(): Promise<void>;
  abort(): Promise<void>;
}

/** A hidden temporary name beside `finalPath`, on the same filesystem so the rename is atomic. */
export function temporaryNameBeside(finalPath: string): string {
  const dir = path.dirname(finalPath);
  return path.join(dir, `.${path.basename(finalPath)}.tmp-${process.pid}-${crypto.randomBytes(4).toString('hex')}`);
}

/** Writes to a temporary file beside finalPath and renames it on commit. */
export function createFileSink(finalPath: string, opts: { mode?: number } = {}): Sink {
  const tmp = temporaryNameBeside(finalPath);
  let stream: fs.WriteStream;
  try {
    fs.closeSync(fs.openSync(tmp, 'wx', opts.mode ?? 0o644));
    stream = fs.createWriteStream(tmp, { flags: 'r+' });
  } catch (err) {
    throw new PathError(`cannot write ${path.dirname(finalPath)}: ${(err as Error).message}`, finalPath);
  }
  const removeTmp = (): void => fs.rmSync(tmp, { force: true });
  const unregister = onCleanup(removeTmp);
  return {
    stream,
    description: finalPath,
    async commit() {
      if (!stream.closed) await once(stream, 'close');
      await fs.promises.chmod(tmp, opts.mode ?? 0o644);
      await fs.promises.rename(tmp, finalPath);
      unregister();
    },
    async abort() {
      stream.destroy();
      removeTmp();
      unregister();
    },
  };
}

/** Standard output: nothing to rename; an abort can only stop writing. */
export function createStdoutSink(): Sink {
  const stream = new PassThrough();
  stream.pipe(process.stdout);
  return {
    stream,
    description: 'standard output',
    async commit() {
      if (!stream.writableFinished) await once(stream, 'finish');
    },
    async abort() {
      stream.unpipe(process.stdout);
      stream.destroy();
    },
  };
}

/** Runs one command over ssh; resolves to its exit code (255: ssh itself failed). */
async function sshExitCode(userHost: string, remoteCommand: string): Promise<number | null> {
  const child = spawn('ssh', sshArgs(userHost, remoteCommand), { stdio: ['ignore', 'ignore', 'inherit'] });
  const [code] = (await once(child, 'close')) as [number | null];
  return code;
}

/** Runs one command over ssh, resolving when it exits 0. */
async function sshRun(userHost: string, remoteCommand: string): Promise<void> {
  const code = await sshExitCode(userHost, remoteCommand);
  if (code !== 0) throw new PathError(`ssh to ${userHost} failed (exit ${code}) running: ${remoteCommand}`, remoteCommand);
}

/** Whether `remotePath` is a directory on the remote host (a bundle DEST there may be one). */
export async function remoteIsDirectory(userHost: string, remotePath: string): Promise<boolean> {
  const code = await sshExitCode(userHost, `test -d ${shellQuote(remotePath)}`);
  if (code === 0 || code === 1) return code === 0;
  throw new PathError(`ssh to ${userHost} failed (exit ${code}) while looking at ${remotePath}`, remotePath);
}

/**
 * Streams straight to a file on another host over ssh, with no local copy: into a temporary
 * name there, renamed by a second ssh call only once everything arrived, removed otherwise.
 */
export function createSshSink(userHost: string, remotePath: string): Sink {
  const tmp = temporaryNameBeside(remotePath);
  const child = spawn('ssh', sshArgs(userHost, `cat > ${shellQuote(tmp)}`), { stdio: ['pipe', 'ignore', 'inherit'] });
  const exited = once(child, 'close') as Promise<[number | null]>;
  const removeRemote = (): Promise<void> => sshRun(userHost, `rm -f -- ${shellQuote(tmp)}`).catch(() => undefined);
  const unregister = onCleanup(removeRemote);
  return {
    stream: child.stdin,
    description: `${userHost}:${remotePath}`,
    async commit() {
      const [code] = await exited;
      if (code !== 0) {
        await removeRemote();
        throw new PathError(`ssh to ${userHost} failed (exit ${code}) while writing ${remotePath}`, remotePath);
      }
      await sshRun(userHost, `mv -f -- ${shellQuote(tmp)} ${shellQuote(remotePath)}`);
      unregister();
    },
    async abort() {
      child.kill('SIGTERM');
      await exited;
      await removeRemote();
      unregister();
    },
  };
}
