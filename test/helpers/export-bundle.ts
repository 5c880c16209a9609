import { execFile, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import tar from 'tar-stream';

/** Shared pieces of the export tests: running the compiled CLI, reading bundles, describing trees. */

const here = path.dirname(fileURLToPath(import.meta.url));
export const IMGEXPORT = path.join(here, '..', '..', 'dist', 'bin', 'imgexport.js');
export { FIXTURES, READ_MANIFEST } from './shared.js';
import { READ_MANIFEST } from './shared.js';
import { NODE, NODE_ARGS } from './node-command.js';
export const execFileP = promisify(execFile);

/** A fresh temporary directory, removed when the test ends. */
export function tempDir(t: { teardown(fn: () => void): void }, prefix = 'imgexport-test-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Writes the table file imgexport reads under `root` (its default place). */
export function writeTables(root: string, tables: Record<string, Record<string, string>[]>): void {
  const file = path.join(root, 'var/lib/imgport/tables.json');
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(tables, null, 1));
}

/** Writes a file at `real`, creating its directory. */
export function put(real: string, data: string | Buffer, mode = 0o644): void {
  fs.mkdirSync(path.dirname(real), { recursive: true });
  fs.writeFileSync(real, data);
  fs.chmodSync(real, mode);
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
}

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Called once the process runs (to signal it, or to read its output slowly). */
  started?: (child: ReturnType<typeof spawn>) => void;
  /** Leave stdout unread: the caller consumes child.stdout itself. */
  ownStdout?: boolean;
}

/** Runs the compiled imgexport with `args`; resolves when it exits. */
export function runImgexport(args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const child = spawn(NODE, [...NODE_ARGS, IMGEXPORT, ...args], {
    cwd: opts.cwd,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const out: Buffer[] = [];
  let err = '';
  if (!opts.ownStdout) child.stdout.on('data', (c: Buffer) => out.push(c));
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  opts.started?.(child);
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout: Buffer.concat(out), stderr: err }));
  });
}

export interface BundleMember {
  /** Name as stored, without a trailing `/`. */
  name: string;
  type: string;
  mode: number;
  size: number;
  mtime: number;
  linkname: string | null;
  data: Buffer;
}

/** The uncompressed tar bytes of a bundle in any of our formats (told apart by magic). */
export async function tarBytes(bundle: Buffer): Promise<Buffer> {
  if (bundle[0] === 0x1f && bundle[1] === 0x8b) return zlib.gunzipSync(bundle);
  if (bundle.readUInt32LE(0) === 0xfd2fb528) {
    const { stdout } = await runTool('zstd', ['-dc'], bundle);
    return stdout;
  }
  return bundle;
}

/** Every member of a bundle, in order, with its data. */
export async function readBundle(bundle: Buffer): Promise<BundleMember[]> {
  const extract = tar.extract();
  Readable.from([await tarBytes(bundle)]).pipe(extract);
  const members: BundleMember[] = [];
  for await (const entry of extract) {
    const chunks: Buffer[] = [];
    for await (const chunk of entry) chunks.push(chunk as Buffer);
    const h = entry.header;
    members.push({
      name: h.name.replace(/\/$/, '') || '.',
      type: h.type ?? 'file',
      mode: (h.mode ?? 0) & 0o7777,
      size: h.size ?? 0,
      mtime: Math.floor((h.mtime?.getTime() ?? 0) / 1000),
      linkname: h.linkname ?? null,
      data: Buffer.concat(chunks),
    });
  }
  return members;
}

/** Runs a program with `input` on stdin; rejects on a non-zero exit, naming the program. */
export function runTool(cmd: string, args: string[], input?: Buffer, cwd?: string): Promise<{ stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve({ stdout: Buffer.concat(out), stderr: err });
      else reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${err}`));
    });
    child.stdin.on('error', () => {}); // the tool may exit before reading everything; its exit code tells
    child.stdin.end(input);
  });
}

/** Unpacks a gzip'd newc cpio (rootimgtree.gz) with the system's `cpio -idum` into `dir`. */
export async function unpackCpioGz(gz: Buffer, dir: string): Promise<void> {
  fs.mkdirSync(dir, { recursive: true });
  await runTool('cpio', ['-idum', '--quiet'], zlib.gunzipSync(gz), dir);
}

export interface TreeItem {
  path: string;
  type: string;
  mode: number;
  size: number;
  sha256?: string;
  link?: string;
  /** Number of names of the same file inside the tree (hard links). */
  nlink?: number;
}

/** Every path below `dir` with its type, permission bits, size, digest and link target, sorted. */
export function describeTree(dir: string): TreeItem[] {
  const items: TreeItem[] = [];
  const visit = (rel: string): void => {
    const abs = path.join(dir, rel);
    const st = fs.lstatSync(abs);
    const item: TreeItem = { path: rel, type: typeOf(st), mode: st.mode & 0o7777, size: st.isFile() ? st.size : 0 };
    if (st.isFile()) {
      item.sha256 = crypto.createHash('sha256').update(fs.readFileSync(abs)).digest('hex');
      item.nlink = st.nlink;
    }
    if (st.isSymbolicLink()) item.link = fs.readlinkSync(abs);
    items.push(item);
    if (st.isDirectory()) for (const name of fs.readdirSync(abs).sort()) visit(rel === '.' ? name : `${rel}/${name}`);
  };
  visit('.');
  return items;
}

function typeOf(st: fs.Stats): string {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isCharacterDevice()) return 'chardev';
  if (st.isBlockDevice()) return 'blockdev';
  if (st.isFIFO()) return 'fifo';
  return 'other';
}

/** manifest.xml as xCAT's import reads it (XML::Simple), as a JSON value. */
export async function xcatReadManifest(xml: Buffer): Promise<unknown> {
  const { stdout } = await runTool(READ_MANIFEST, ['-'], xml);
  return JSON.parse(stdout.toString());
}

/** Files beside `file` whose names start with `.BASENAME.tmp` (our temporary bundles). */
export function leftoverTemps(file: string): string[] {
  const dir = path.dirname(file);
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir).filter((name) => name.startsWith(`.${path.basename(file)}.tmp`));
}

/** Deterministic pseudo-random bytes (incompressible), the same for the same seed. */
export function pseudoRandom(size: number, seed: string): Buffer {
  const out = Buffer.alloc(size);
  let block = crypto.createHash('sha256').update(seed).digest();
  for (let at = 0; at < size; at += block.length) {
    block.copy(out, at);
    block = crypto.createHash('sha256').update(block).digest();
  }
  return out;
}
