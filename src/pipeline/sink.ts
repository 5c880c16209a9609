import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { PassThrough, Writable } from 'node:stream';
import { PathError } from '../core/errors.js';
import { markCommitted, onCleanup } from '../core/cleanup.js';
import { processAlive } from '../core/pid-lock.js';
import { describeFsError } from './walk.js';
import { chunkPool } from './chunk-pool.js';
import { shellQuote, sshArgs } from '../core/ssh.js';
import { childEnvironment } from '../core/child-env.js';

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

/**
 * Removes the temporary files that runs killed outright (SIGKILL, power loss) left beside
 * finalPath: those whose process is gone. A live process's temporary file is left alone.
 */
export function removeStaleTemporaries(finalPath: string): void {
  const dir = path.dirname(finalPath);
  const ours = new RegExp(`^\\.${escapeRegExp(path.basename(finalPath))}\\.tmp-(\\d+)-[0-9a-f]{8}$`);
  for (const name of fs.readdirSync(dir, { withFileTypes: true })) {
    const pid = ours.exec(name.name)?.[1];
    if (pid && name.isFile() && !processAlive(Number(pid))) fs.rmSync(path.join(dir, name.name), { force: true });
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Writes to a file descriptor; a failed write becomes a PathError naming the final file. Pieces
 * queued while a write is in flight go out in one writev: stored data arrives as block headers
 * and views of the input, and one system call each cost more than the copy they save. Written
 * pieces are the end of their bytes: reported done to the chunk pool. The file is flushed to disk
 * at its end (fsync), and with `flushEvery` also behind the writing.
 */
class FileWriter extends Writable {
  private readonly flushEvery: number;
  /** Bytes written since the last flush behind began. */
  private unflushed = 0;
  /** The flush behind in flight, resolving to its error (if any). */
  private flushing: Promise<NodeJS.ErrnoException | null> | undefined;

  constructor(
    private readonly fd: number,
    private readonly finalPath: string,
    opts: FileWriterOptions = {},
  ) {
    super({ highWaterMark: opts.highWaterMark ?? 1 << 20 });
    this.flushEvery = opts.flushEvery ?? Infinity;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (err?: Error | null) => void): void {
    this.writeAndRelease([chunk], done);
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, done: (err?: Error | null) => void): void {
    this.writeAndRelease(chunks.map((c) => c.chunk), done);
  }

  private writeAndRelease(buffers: Buffer[], done: (err?: Error | null) => void): void {
    this.writeAll(buffers, (err) => {
      if (!err) {
        for (const buffer of buffers) {
          this.unflushed += buffer.length;
          chunkPool.done(buffer);
        }
        this.flushBehind();
      }
      done(err);
    });
  }

  /**
   * Every `flushEvery` bytes, the data written so far starts for the disk while writing goes on,
   * so that the flush at the end waits for the last stretch only. Its error, if any, is reported
   * by _final: the kernel reports a writeback error to one flush only.
   */
  private flushBehind(): void {
    if (this.unflushed < this.flushEvery || this.flushing) return;
    this.unflushed = 0;
    this.flushing = new Promise((resolve) => fs.fdatasync(this.fd, resolve));
    void this.flushing.then((err) => {
      if (!err) this.flushing = undefined;
    });
  }

  private writeAll(buffers: Buffer[], done: (err?: Error | null) => void): void {
    const written = (err: NodeJS.ErrnoException | null, count: number): void => {
      if (err) return done(new PathError(`cannot write ${this.finalPath}: ${describeFsError(err)}`, this.finalPath));
      const rest = afterBytes(buffers, count);
      if (rest.length > 0) this.writeAll(rest, done);
      else done();
    };
    if (buffers.length === 1) fs.write(this.fd, buffers[0], 0, buffers[0].length, null, written);
    else fs.writev(this.fd, buffers, written);
  }

  override _final(done: (err?: Error | null) => void): void {
    const failed = (err: NodeJS.ErrnoException | null) => done(err ? new PathError(`cannot write ${this.finalPath}: ${describeFsError(err)}`, this.finalPath) : null);
    void (this.flushing ?? Promise.resolve(null)).then((err) => (err ? failed(err) : fs.fsync(this.fd, failed)));
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    // Not under a flush in flight: its descriptor number could be another file's by the time it runs.
    void (this.flushing ?? Promise.resolve(null)).then(() => fs.close(this.fd, () => done(err)));
  }
}

export interface FileWriterOptions {
  /** Bytes queued while a write is in flight (default 1 MiB). */
  highWaterMark?: number;
  /** Start flushing to disk every so many bytes (default: only at the end). */
  flushEvery?: number;
}

/**
 * A new file (it must not exist) written as a stream and flushed to disk at its end, as the
 * import stages a member: no one may rely on it before it is on disk. Errors name `realPath`.
 */
export function createFlushedFile(realPath: string, mode: number, opts: FileWriterOptions = {}): Writable {
  let fd: number;
  try {
    fd = fs.openSync(realPath, 'wx', mode);
  } catch (err) {
    throw new PathError(`cannot write ${realPath}: ${describeFsError(err)}`, realPath);
  }
  return new FileWriter(fd, realPath, opts);
}

/** What is left of `buffers` after their first `count` bytes (a short write). */
function afterBytes(buffers: Buffer[], count: number): Buffer[] {
  let skip = count;
  let first = 0;
  while (first < buffers.length && skip >= buffers[first].length) skip -= buffers[first++].length;
  if (first === buffers.length) return [];
  return [buffers[first].subarray(skip), ...buffers.slice(first + 1)];
}

/**
 * How often a written file starts its data for the disk while writing goes on (see FileWriter):
 * the flush that makes it durable at the end then waits for the last stretch only.
 */
export const FLUSH_BEHIND_EVERY = 16 * 1024 * 1024;

/** Writes to a temporary file beside finalPath and renames it on commit. */
export function createFileSink(finalPath: string, opts: { mode?: number } = {}): Sink {
  const tmp = temporaryNameBeside(finalPath);
  let fd: number;
  try {
    removeStaleTemporaries(finalPath);
    fd = fs.openSync(tmp, 'wx', opts.mode ?? 0o644);
  } catch (err) {
    throw new PathError(`cannot write ${finalPath}: ${describeFsError(err)}`, finalPath);
  }
  const stream = new FileWriter(fd, finalPath, { flushEvery: FLUSH_BEHIND_EVERY });
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
      markCommitted();
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
  const child = spawn('ssh', sshArgs(userHost, remoteCommand), { stdio: ['ignore', 'ignore', 'inherit'], env: childEnvironment() });
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
  const child = spawn('ssh', sshArgs(userHost, `cat > ${shellQuote(tmp)}`), { stdio: ['pipe', 'ignore', 'inherit'], env: childEnvironment() });
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
      markCommitted();
    },
    async abort() {
      child.kill('SIGTERM');
      await exited;
      await removeRemote();
      unregister();
    },
  };
}
