/** Where the bundle bytes come from: a file, stdin (`-`), or `ssh USER@HOST cat -- PATH`. */
import { spawn } from 'node:child_process';
import { open, type FileHandle } from 'node:fs/promises';
import { PassThrough, type Readable } from 'node:stream';
import { BundleError, PathError, UsageError, describeFsError } from '../core/errors.js';
import { shellQuote, sshArgs } from '../core/ssh.js';
import { childEnvironment } from '../core/child-env.js';

/** ssh's argument array for reading a remote bundle. */
export function remoteReadArgs(remotehost: string, bundlePath: string): string[] {
  return sshArgs(remotehost, 'cat', '--', shellQuote(bundlePath));
}

/** A readable of the bundle. A failing ssh destroys the stream with its stderr as the reason. */
export async function openBundleSource(bundle: string, remotehost?: string): Promise<Readable> {
  // An empty host too (`-R "$HOST"`, HOST unset) goes to sshArgs, which refuses it: never read locally instead.
  if (remotehost !== undefined) {
    if (bundle === '-') throw new UsageError(`- (standard input) names no file on ${remotehost}: give the bundle's path there`);
    return sshSource(remotehost, bundle);
  }
  if (bundle === '-') return process.stdin;
  let handle: FileHandle;
  try {
    handle = await open(bundle, 'r');
  } catch (err) {
    throw new PathError(`cannot read bundle ${bundle}: ${describeFsError(err)}`, bundle);
  }
  // A directory opens fine and fails only at the first read, far from here.
  if ((await handle.stat()).isDirectory()) {
    await handle.close();
    throw new PathError(`cannot read bundle ${bundle}: it is a directory`, bundle);
  }
  return handle.createReadStream({ highWaterMark: 1 << 20 });
}

function sshSource(remotehost: string, bundlePath: string): Readable {
  const child = spawn('ssh', remoteReadArgs(remotehost, bundlePath), { stdio: ['ignore', 'pipe', 'pipe'], env: childEnvironment() });
  const out = new PassThrough({ highWaterMark: 1 << 20 });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    if (stderr.length < 4096) stderr += chunk.toString();
  });
  const fail = (why: string) => out.destroy(new BundleError(`cannot read ${bundlePath} from ${remotehost}: ${why}`, bundlePath));
  // ssh may fail before anyone reads (the import still preparing): the reader meets the error in
  // the stream's state; unheard, the 'error' event would end the process with a stack trace.
  out.on('error', () => undefined);
  child.on('error', (err) => fail(err.message));
  // The bundle is complete only when ssh exits 0 after its last byte.
  child.stdout.pipe(out, { end: false });
  child.on('close', (code) => {
    if (code === 0) out.end();
    else fail(stderr.trim() || `ssh exited with code ${code}`);
  });
  out.on('close', () => {
    if (child.exitCode === null) child.kill();
  });
  return out;
}
