import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { PassThrough, Writable } from 'node:stream';
import { PathError, describeFsError } from '../core/errors.js';
import { markCommitted, onCleanup } from '../core/cleanup.js';
import { processAlive } from '../core/pid-lock.js';
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
 * Removes the temporary files that runs killed outright (SIGKILL, power loss) left in `dir` for
 * any of the final `names`: those whose process is gone. A live process's temporary file is left
 * alone. One reading of the directory, however many names.
 */
export function removeStaleTemporaries(dir: string, names: readonly string[]): void {
  const ours = new RegExp(`^\\.(?:${names.map(escapeRegExp).join('|')})\\.tmp-(\\d+)-[0-9a-f]{8}$`);
  for (const name of fs.readdirSync(dir, { withFileTypes: true })) {
    const pid = ours.exec(name.name)?.[1];
    if (pid && name.isFile() && !processAlive(Number(pid))) fs.rmSync(path.join(dir, name.name), { force: true });
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Writes to a file descriptor; a failed write becomes a PathError naming the file as shown. Pieces
 * queued while a write is in flight go out in one writev: stored data arrives as block headers
 * and views of the input, and one system call each cost more than the copy they save. Written
 * pieces are the end of their bytes: reported done to the chunk pool.
 *
 * Flushing: the data written so far starts for the disk every FLUSH_BEHIND_EVERY bytes
 * while writing goes on (fdatasync in the thread pool), so that the flush at the end waits for the
 * last stretch only; what such a flush meets fails the next write, or the end (the kernel reports
 * a writeback error to one flush only). With `syncAtEnd` (the default), the end is an fsync.
 * The descriptor is closed only once no call on it is in flight: its number could be another
 * file's by the time a late call ran.
 */
class FileWriter extends Writable {
  private readonly syncAtEnd: boolean;
  /** Bytes written since the last flush behind began. */
  private unflushed = 0;
  private flushRunning = false;
  private flushError: NodeJS.ErrnoException | undefined;
  /** System calls on the descriptor in flight, and what waits for there to be none. */
  private calls = 0;
  private readonly whenIdle: Array<() => void> = [];

  constructor(
    private readonly fd: number,
    private readonly shownAs: string,
    opts: FileWriterOptions = {},
  ) {
    super({ highWaterMark: opts.highWaterMark ?? 1 << 20 });
    this.syncAtEnd = opts.syncAtEnd ?? true;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (err?: Error | null) => void): void {
    this.writeAndRelease([chunk], done);
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, done: (err?: Error | null) => void): void {
    this.writeAndRelease(chunks.map((c) => c.chunk), done);
  }

  override _final(done: (err?: Error | null) => void): void {
    this.idle(() => {
      if (this.flushError) return done(cannotWrite(this.shownAs, this.flushError));
      if (!this.syncAtEnd) return done();
      this.call((cb) => fs.fsync(this.fd, cb), (err) => done(err ? cannotWrite(this.shownAs, err) : null));
    });
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    this.idle(() => fs.close(this.fd, () => done(err)));
  }

  private writeAndRelease(buffers: Buffer[], done: (err?: Error | null) => void): void {
    if (this.flushError) return done(cannotWrite(this.shownAs, this.flushError));
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

  private writeAll(buffers: Buffer[], done: (err?: Error | null) => void): void {
    const written = (err: NodeJS.ErrnoException | null, count = 0): void => {
      if (err) return done(cannotWrite(this.shownAs, err));
      const rest = afterBytes(buffers, count);
      if (rest.length > 0) this.writeAll(rest, done);
      else done();
    };
    if (buffers.length === 1) this.call((cb) => fs.write(this.fd, buffers[0], 0, buffers[0].length, null, cb), written);
    else this.call((cb) => fs.writev(this.fd, buffers, cb), written);
  }

  private flushBehind(): void {
    if (this.unflushed < FLUSH_BEHIND_EVERY || this.flushRunning || this.destroyed) return;
    this.unflushed = 0;
    this.flushRunning = true;
    this.call((cb) => fs.fdatasync(this.fd, cb), (err) => {
      this.flushRunning = false;
      if (err) this.flushError ??= err;
    });
  }

  /** Runs a system call on the descriptor, counted as in flight until its callback. */
  private call(start: (cb: (err: NodeJS.ErrnoException | null, count?: number) => void) => void, then: (err: NodeJS.ErrnoException | null, count?: number) => void): void {
    this.calls++;
    start((err, count) => {
      this.calls--;
      then(err, count);
      if (this.calls === 0) for (const waiting of this.whenIdle.splice(0)) waiting();
    });
  }

  private idle(then: () => void): void {
    if (this.calls === 0) then();
    else this.whenIdle.push(then);
  }
}

interface FileWriterOptions {
  /** Bytes queued while a write is in flight (default 1 MiB). */
  highWaterMark?: number;
  /** End with an fsync (default true). */
  syncAtEnd?: boolean;
}

/**
 * A new file (it must not exist) for the import to stage a member in, written as a stream, its
 * data started for the disk as it goes (FLUSH_BEHIND_EVERY); the import flushes the file's
 * filesystem before it relies on it. Errors name the file as `shownAs` shows it.
 */
export function createStagedFile(realPath: string, mode: number, opts: { shownAs: string; highWaterMark?: number }): Writable {
  let fd: number;
  try {
    fd = fs.openSync(realPath, 'wx', mode);
  } catch (err) {
    throw cannotWrite(opts.shownAs, err);
  }
  return new FileWriter(fd, opts.shownAs, { highWaterMark: opts.highWaterMark, syncAtEnd: false });
}

function cannotWrite(shownAs: string, err: unknown): PathError {
  return new PathError(`cannot write ${shownAs}: ${describeFsError(err)}`, shownAs);
}

/**
 * How often a written file starts its data for the disk while writing goes on (see FileWriter):
 * the flush that makes it durable at the end then waits for the last stretch only.
 */
const FLUSH_BEHIND_EVERY = 16 * 1024 * 1024;

/** What is left of `buffers` after their first `count` bytes (a short write). */
function afterBytes(buffers: Buffer[], count: number): Buffer[] {
  let skip = count;
  let first = 0;
  while (first < buffers.length && skip >= buffers[first].length) skip -= buffers[first++].length;
  if (first === buffers.length) return [];
  return [buffers[first].subarray(skip), ...buffers.slice(first + 1)];
}

/**
 * Writes to a temporary file beside finalPath and renames it on commit. The file gets `mode`
 * when given (a packed root image is 0644 as xCAT's), else what the umask leaves of 0666, as a
 * file made by tar or a shell redirection: a bundle holds host keys and shadow files, and an
 * administrator with umask 077 means to keep them private.
 */
export function createFileSink(finalPath: string, opts: { mode?: number } = {}): Sink {
  const tmp = temporaryNameBeside(finalPath);
  let fd: number;
  refuseReplacingSpecialFile(finalPath);
  try {
    removeStaleTemporaries(path.dirname(finalPath), [path.basename(finalPath)]);
    fd = fs.openSync(tmp, 'wx', opts.mode ?? 0o666);
  } catch (err) {
    throw cannotWrite(finalPath, err);
  }
  const stream = new FileWriter(fd, finalPath);
  const removeTmp = (): void => fs.rmSync(tmp, { force: true });
  const unregister = onCleanup(removeTmp);
  return {
    stream,
    description: finalPath,
    async commit() {
      if (!stream.closed) await once(stream, 'close');
      try {
        if (opts.mode !== undefined) await fs.promises.chmod(tmp, opts.mode);
        await fs.promises.rename(tmp, finalPath);
      } catch (err) {
        throw cannotWrite(finalPath, err);
      }
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

/**
 * The rename at the end of a write replaces whatever has the final name: a directory, a device or
 * a fifo there (a DEST of /dev/null, say) is refused before anything is written, where tar would
 * write into it.
 */
export function refuseReplacingSpecialFile(finalPath: string): void {
  const existing = fs.lstatSync(finalPath, { throwIfNoEntry: false });
  if (existing && !existing.isFile() && !existing.isSymbolicLink()) {
    throw new PathError(`cannot write ${finalPath}: it exists and is not a regular file`, finalPath);
  }
}

/**
 * Where open() of `given` writes: itself, or where its symbolic links lead (even to nothing yet),
 * each target's directory resolved as the kernel does (`t/../x` through a link `t` is not `x`).
 */
export function whereLinkLeads(given: string): string {
  let at = given;
  for (let hops = 0; hops < 40; hops++) {
    try {
      if (!fs.lstatSync(at, { throwIfNoEntry: false })?.isSymbolicLink()) return at;
      const target = fs.readlinkSync(at);
      const dir = target.startsWith('/') ? path.dirname(target) : `${path.dirname(at)}/${path.dirname(target)}`;
      at = path.join(fs.realpathSync.native(dir), path.basename(target));
    } catch (err) {
      throw cannotWrite(given, err);
    }
  }
  throw new PathError(`cannot write ${given}: too many levels of symbolic links`, given);
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

/** How an ssh process ended, in words: its exit code or the signal that killed it. */
function sshEnd(code: number | null, signal: NodeJS.Signals | null): string {
  return signal ? `ssh was killed by ${signal}` : `ssh exited with code ${code}`;
}

/** Runs one command over ssh; resolves to its exit code (255: ssh itself failed) and how it ended. */
async function sshExit(userHost: string, remoteCommand: string): Promise<{ code: number | null; end: string }> {
  const child = spawn('ssh', sshArgs(userHost, remoteCommand), { stdio: ['ignore', 'ignore', 'inherit'], env: childEnvironment() });
  try {
    const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
    return { code, end: sshEnd(code, signal) };
  } catch (err) {
    throw new PathError(`ssh could not be run: ${describeFsError(err)}`, 'ssh');
  }
}

/** Runs one command over ssh, resolving when it exits 0. */
async function sshRun(userHost: string, remoteCommand: string): Promise<void> {
  const { code, end } = await sshExit(userHost, remoteCommand);
  if (code !== 0) throw new PathError(`ssh to ${userHost} failed (${end}) running: ${remoteCommand}`, remoteCommand);
}

/**
 * Whether `remotePath` is a directory on the remote host (a bundle DEST there may be one). One that
 * exists and is not a regular file (a fifo, a device: /dev/null) is refused, as a local one is, and
 * so is a link that cannot be resolved.
 */
export async function remoteIsDirectory(userHost: string, remotePath: string): Promise<boolean> {
  const quoted = shellQuote(remotePath);
  const { code, end } = await sshExit(
    userHost,
    `if [ -d ${quoted} ]; then exit 0; elif [ -e ${quoted} ] && [ ! -f ${quoted} ]; then exit 2; elif [ -L ${quoted} ] && ! readlink -f -- ${quoted} >/dev/null; then exit 4; else exit 1; fi`,
  );
  if (code === 2) throw new PathError(`cannot write ${userHost}:${remotePath}: it exists and is not a regular file`, remotePath);
  // Found before the bundle streams, not at its rename: a link into a missing directory, or a loop.
  if (code === 4) throw new PathError(`cannot write ${userHost}:${remotePath}: it is a symbolic link that leads nowhere it can be written`, remotePath);
  if (code === 0 || code === 1) return code === 0;
  throw new PathError(`ssh to ${userHost} failed (${end}) while looking at ${remotePath}`, remotePath);
}

/**
 * The remote command that puts a streamed bundle in place: only if the temporary file holds every
 * byte sent (ssh exiting 0 does not prove it: a remote side that stopped reading), and through a
 * DEST that is a symbolic link, as a local one is written through.
 */
function remotePlacing(tmp: string, remotePath: string, bytes: number): string {
  return [
    `size=$(wc -c < ${shellQuote(tmp)})`,
    // Unquoted: some wc pad the count with blanks.
    `[ -n "$size" ] && [ $size -eq ${bytes} ] 2>/dev/null || { echo "the remote copy has \${size:-no} bytes, not ${bytes}" >&2; exit 3; }`,
    `dest=${shellQuote(remotePath)}`,
    `if [ ! -L "$dest" ]; then exec mv -f -- ${shellQuote(tmp)} "$dest"; fi`,
    // Where the link leads may be another filesystem: the bundle is moved beside it first (a copy
    // there, which may fail for room), then renamed over it, so the old one is never half replaced.
    `target=$(readlink -f -- "$dest") || { echo "cannot resolve the link $dest" >&2; exit 3; }`,
    `near="\${target%/*}/.\${target##*/}.tmp-$$"`,
    `mv -f -- ${shellQuote(tmp)} "$near" || { rm -f -- "$near"; exit 3; }`,
    `mv -f -- "$near" "$target"`,
  ].join('; ');
}

/** Minutes after its last write that a remote temporary file counts as a killed export's. */
const STALE_REMOTE_TEMPORARY_MIN = 60;

/**
 * The remote command that removes the temporary files of exports to `remotePath` killed outright
 * (SIGKILL, power loss): their pids mean nothing on that host, so age tells (a live export's file
 * keeps changing). Failing is harmless: it is only tidying.
 */
function removingStaleRemoteTemporaries(remotePath: string): string {
  const glob = `.${path.posix.basename(remotePath).replace(/[*?[\\]/g, '\\$&')}.tmp-*`;
  // -H: a directory that is a link is followed; `./`: one named -x is no option.
  const dir = path.posix.dirname(remotePath);
  return `find -H ${shellQuote(dir.startsWith('-') ? `./${dir}` : dir)} -maxdepth 1 -type f -name ${shellQuote(glob)} -mmin +${STALE_REMOTE_TEMPORARY_MIN} -exec rm -f -- {} + 2>/dev/null`;
}

/**
 * Streams straight to a file on another host over ssh, with no local copy: into a temporary
 * name there, renamed by a second ssh call only once everything arrived, removed otherwise.
 */
export function createSshSink(userHost: string, remotePath: string): Sink {
  const tmp = temporaryNameBeside(remotePath);
  // The tidying after the copy, keeping cat's status: a signal that stops us during it must not
  // leave a remote shell that creates the file after our removal of it.
  const streaming = `cat > ${shellQuote(tmp)}; status=$?; ${removingStaleRemoteTemporaries(remotePath)}; exit $status`;
  const child = spawn('ssh', sshArgs(userHost, streaming), { stdio: ['pipe', 'ignore', 'inherit'], env: childEnvironment() });
  /** ssh's end: how it ended, in words, or undefined when it exited 0 having taken everything. */
  const exited = new Promise<string | undefined>((resolve) => {
    child.on('close', (code, signal) => {
      if (code !== 0) resolve(sshEnd(code, signal));
      else resolve(child.stdin.writableFinished ? undefined : 'ssh ended before it had read the whole bundle');
    });
    child.on('error', (err) => resolve(`ssh could not be run (${err.message})`));
  });
  const failure = (why: string): PathError => new PathError(`cannot write ${userHost}:${remotePath}: ${why} (its message, if any, is above)`, remotePath);
  // The bundle goes through a stream of our own: when the remote side gives up (a full disk, a
  // missing directory), the export fails with ssh's exit status, not with a broken pipe.
  const stream = new PassThrough({ highWaterMark: 1 << 20 });
  let bytes = 0;
  stream.on('data', (chunk: Buffer) => (bytes += chunk.length));
  stream.pipe(child.stdin);
  // Both failures are reported elsewhere: the write's through the pipeline feeding `stream` (or
  // commit(), if that pipeline has ended), the pipe's by ssh's exit status.
  stream.on('error', () => undefined);
  child.stdin.on('error', () => undefined);
  void exited.then((why) => {
    if (why && !stream.writableFinished) stream.destroy(failure(why));
  });
  const removeRemote = (): Promise<void> => sshRun(userHost, `rm -f -- ${shellQuote(tmp)}`).catch(() => undefined);
  // The streaming ssh is stopped before the temporary file is removed: else its remote side,
  // meeting the end of its input once we exit, would write the file again after the removal.
  const abort = async (): Promise<void> => {
    stream.destroy();
    child.kill('SIGTERM');
    await exited;
    await removeRemote();
    unregister();
  };
  const unregister = onCleanup(abort);
  return {
    stream,
    description: `${userHost}:${remotePath}`,
    async commit() {
      const why = (await exited) ?? (await sshExit(userHost, remotePlacing(tmp, remotePath, bytes)).then(({ code, end }) => (code === 0 ? undefined : `the bundle was not put in place (${end})`)));
      if (why) {
        await removeRemote();
        throw failure(why);
      }
      unregister();
      markCommitted();
    },
    abort,
  };
}
