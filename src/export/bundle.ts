import crypto from 'node:crypto';
import fs from 'node:fs';
import { posix } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable, Transform } from 'node:stream';
import { TarWriter, addTree, treeEntryMember, type TarMember } from '../archive/tar-writer.js';
import { CpioSize, cpioChunks } from '../archive/cpio-writer.js';
import { storedGzipChunks, storedGzipSize } from '../archive/stored-gzip.js';
import { CHECKSUMS_MEMBER, formatSha256Sums } from '../archive/sha256sums.js';
import { MANIFEST_MEMBER } from '../xcat/manifest.js';
import { linkStaysInside } from '../import/plan.js';
import { hasControlCharacter } from '../import/member-names.js';
import { TreeWalk, type TreeEntry, type TreeSurvey } from '../pipeline/walk.js';
import { ImgportError, PathError, describeFsError } from '../core/errors.js';
import { readFile } from '../pipeline/file-reader.js';
import { createCompressor, withThreadsStarted, type CompressionFormat } from '../pipeline/compress/index.js';
import { createProgress } from '../pipeline/progress.js';
import type { Sink } from '../pipeline/sink.js';
import type { Locations } from '../core/locations.js';
import { writeManifestXml } from '../xcat/manifest-writer.js';
import type { ExportPlan, PlannedMember } from './plan.js';

export interface BundleOptions {
  format: CompressionFormat;
  threads: number;
  level?: number;
  /** Seconds; the time stamp of generated members (SOURCE_DATE_EPOCH makes bundles reproducible). */
  mtime: number;
  progress: boolean;
  onWarning?: (message: string, path: string) => void;
}

export interface BundleStats {
  bytesIn: number;
  bytesOut: number;
  storedBytes: number;
  members: number;
}

/** Names in rootimgtree.gz's cpio archive: rootimg, rootimg/etc, ... as xCAT's import expects. */
const ROOTIMG_PREFIX = 'rootimg';

/** A member with everything needed to write it, prepared before any byte is written. */
type PreparedMember =
  | { planned: PlannedMember; kind: 'file'; entry: TreeEntry }
  | { planned: PlannedMember; kind: 'tree'; tree: TreeWalk; survey: TreeSurvey }
  | { planned: PlannedMember; kind: 'text'; data: Buffer }
  | { planned: PlannedMember; kind: 'rootimgtree'; tree: TreeWalk; survey: TreeSurvey; cpioSize: number };

/**
 * Surveys every source up front: sizes become known (exact tar headers, the stored inner gzip of
 * rootimgtree.gz, an honest ETA) and a missing or unreadable source fails before any output. The
 * trees are walked again as they are written.
 */
async function prepare(plan: ExportPlan, loc: Locations, onWarning: BundleOptions['onWarning']): Promise<PreparedMember[]> {
  return Promise.all(plan.members.map(async (planned): Promise<PreparedMember> => {
    const source = planned.source;
    switch (source.kind) {
      case 'text':
        return { planned, kind: 'text', data: Buffer.from(source.text) };
      case 'file':
        return { planned, kind: 'file', entry: await fileEntry(loc.sandbox.real(source.path)) };
      case 'tree': {
        // Extras and kits are copied as xCAT's cp -a and cp -dr copy them: across mount points.
        const tree = new TreeWalk(loc.sandbox.real(source.path), { oneFileSystem: false, onWarning });
        return { planned, kind: 'tree', tree, survey: tree.survey((entry) => refuseWhatImportRefuses(entry, source.path)) };
      }
      case 'rootimgtree': {
        const tree = new TreeWalk(loc.sandbox.real(source.path), { onWarning });
        const cpioSize = new CpioSize({ prefix: ROOTIMG_PREFIX });
        const survey = tree.survey((entry) => cpioSize.add(entry));
        return { planned, kind: 'rootimgtree', tree, survey, cpioSize: cpioSize.total };
      }
    }
  }));
}

/**
 * A directory the bundle holds whole (a directory extra, a kit) may hold only what an import
 * installs: files, directories and links that stay inside it. A device or a fifo, or a link
 * leading out (which could later redirect a write), makes imgimport refuse the whole bundle, so
 * the export refuses it first, naming it, rather than write a bundle no one can import.
 */
function refuseWhatImportRefuses(entry: TreeEntry, treePath: string): void {
  if (hasControlCharacter(entry.relPath)) {
    throw new PathError(`cannot export ${JSON.stringify(entry.absPath)}: a control character in its name, which imgimport refuses in a bundle member (only the statelite root image may hold one)`, entry.absPath);
  }
  if (entry.kind === 'chardev' || entry.kind === 'blockdev' || entry.kind === 'fifo') {
    const what = entry.kind === 'fifo' ? 'a fifo' : 'a device file';
    throw new PathError(`cannot export ${entry.absPath}: ${what} in ${treePath}, which imgimport refuses to install (only the statelite root image may hold one)`, entry.absPath);
  }
  if (entry.kind === 'symlink' && !linkStaysInside(posix.join(treePath, entry.relPath), entry.linkTarget ?? '', treePath)) {
    throw new PathError(`cannot export ${entry.absPath}: its link target ${entry.linkTarget} leads out of ${treePath}, and imgimport refuses such links (make it relative, inside ${treePath})`, entry.absPath);
  }
}

/** The walk entry of one file named by the tables; a symbolic link is followed, as xCAT's `cp` does. */
async function fileEntry(named: string): Promise<TreeEntry> {
  let absPath: string;
  let stat: fs.Stats;
  try {
    // The reader refuses to follow links (a tree must not lead it elsewhere): give it the target.
    absPath = await fs.promises.realpath(named);
    stat = await fs.promises.stat(absPath);
  } catch (err) {
    throw new PathError(`cannot read ${named}: ${describeFsError(err)}`, named);
  }
  if (!stat.isFile()) throw new PathError(`not a regular file: ${absPath}`, absPath);
  return {
    relPath: '.', absPath, kind: 'file', mode: stat.mode & 0o7777, uid: stat.uid, gid: stat.gid, size: stat.size,
    mtime: Math.floor(stat.mtimeMs / 1000), rdevMajor: 0, rdevMinor: 0, ino: stat.ino, nlink: 1,
  };
}

/** The data bytes the members will pass through hashing: the progress line's 100%. */
function inputBytes(members: PreparedMember[]): number {
  let total = 0;
  for (const m of members) {
    if (m.kind === 'file') total += m.entry.size;
    else if (m.kind === 'text') total += m.data.length;
    else if (m.kind === 'rootimgtree') total += storedGzipSize(m.cpioSize);
    else total += m.survey.fileBytes;
  }
  return total;
}

/** Passes chunks through while hashing them; the digest is ready when the iteration ends. */
async function* hashing(chunks: AsyncIterable<Buffer>, onDigest: (hex: string) => void, count: (n: number) => void): AsyncIterable<Buffer> {
  const hash = crypto.createHash('sha256');
  for await (const chunk of chunks) {
    hash.update(chunk);
    count(chunk.length);
    yield chunk;
  }
  onDigest(hash.digest('hex'));
}

/**
 * Streams the bundle of a planned export into a sink: manifest.xml first, every member straight
 * from its source, SHA256SUMS last. Nothing is staged on disk; memory is bounded by the
 * compressor's blocks in flight, one chunk of the file being read and the directories the
 * walk has open.
 */
export async function writeBundle(plan: ExportPlan, loc: Locations, sink: Sink, opts: BundleOptions): Promise<BundleStats> {
  // A tree to archive is data to compress: the threads come up while the trees are surveyed (a
  // netboot bundle, all stored, starts none).
  const hasTree = plan.members.some((m) => m.source.kind === 'tree' || m.source.kind === 'rootimgtree');
  const compressing = hasTree && opts.format !== 'none' ? opts.format : undefined;
  return withThreadsStarted(opts.threads, compressing, () => streamBundle(plan, loc, sink, opts));
}

async function streamBundle(plan: ExportPlan, loc: Locations, sink: Sink, opts: BundleOptions): Promise<BundleStats> {
  const prepared = await prepare(plan, loc, opts.onWarning);
  const top = `./${plan.dirName}`;
  const writer = new TarWriter();
  const sums: { name: string; sha256: string }[] = [];
  const progress = createProgress({ totalBytes: inputBytes(prepared), enabled: opts.progress });
  const compressor = createCompressor({ format: opts.format, threads: opts.threads, level: opts.level });
  let bytesRead = 0;
  let members = 0;
  const countRead = (n: number): void => {
    bytesRead += n;
    progress.update(bytesRead, compressor.stats().bytesOut);
  };

  const generated = (name: string, kind: 'dir' | 'file', size = 0): TarMember =>
    ({ name, kind, mode: kind === 'dir' ? 0o755 : 0o644, uid: 0, gid: 0, uname: 'root', gname: 'root', mtime: opts.mtime, size });
  const madeDirs = new Set<string>(['.', top]);
  /** Directory members for every ancestor of `rel` below the image directory not written yet. */
  const addParents = async (rel: string): Promise<void> => {
    const parts = rel.split('/').slice(0, -1);
    for (let i = 1; i <= parts.length; i++) {
      const dir = `${top}/${parts.slice(0, i).join('/')}`;
      if (madeDirs.has(dir)) continue;
      madeDirs.add(dir);
      await writer.add(generated(dir, 'dir'));
    }
  };
  const addData = async (member: TarMember, data: AsyncIterable<Buffer>, rel: string, count = countRead): Promise<void> => {
    members++;
    await writer.add(member, hashing(data, (sha256) => sums.push({ name: rel, sha256 }), count));
  };
  const addText = (rel: string, text: Buffer, count = countRead): Promise<void> =>
    addData(generated(`${top}/${rel}`, 'file', text.length), Readable.from([text]), rel, count);
  /** manifest.xml and SHA256SUMS are written, not read: not part of the progress line's total. */
  const uncounted = (): void => undefined;

  const feed = async (): Promise<void> => {
    await writer.add(generated('.', 'dir'));
    await writer.add(generated(top, 'dir'));
    await addText(MANIFEST_MEMBER, Buffer.from(writeManifestXml(plan.manifest)), uncounted);
    for (const m of prepared) {
      const rel = m.planned.name;
      await addParents(rel);
      if (m.kind === 'text') {
        await addText(rel, m.data);
      } else if (m.kind === 'file') {
        await addData(treeEntryMember(m.entry, `${top}/${rel}`), readFile(m.entry), rel);
      } else if (m.kind === 'rootimgtree') {
        const cpio = cpioChunks(m.tree, m.survey.linkNames, { prefix: ROOTIMG_PREFIX });
        await addData(generated(`${top}/${rel}`, 'file', storedGzipSize(m.cpioSize)), storedGzipChunks(cpio, m.cpioSize), rel);
      } else {
        await addTreeMember(m.tree, `${top}/${rel}`, rel);
      }
    }
    await addText(CHECKSUMS_MEMBER, Buffer.from(formatSha256Sums(sums)), uncounted);
    writer.finish();
  };

  /** A copied directory: data members hashed like any other file, under their path below the image. */
  const addTreeMember = async (tree: TreeWalk, prefix: string, rel: string): Promise<void> => {
    const recordingDirs = function* (): Generator<TreeEntry> {
      for (const e of tree) {
        if (e.kind === 'dir') madeDirs.add(e.relPath === '.' ? prefix : `${prefix}/${e.relPath}`);
        yield e;
      }
    };
    const hashedData = (entry: TreeEntry): AsyncIterable<Buffer> => {
      const name = entry.relPath === '.' ? rel : `${rel}/${entry.relPath}`;
      members++;
      return hashing(readFile(entry), (sha256) => sums.push({ name, sha256 }), countRead);
    };
    await addTree(writer, recordingDirs(), prefix, hashedData);
  };

  // The cause is the side that failed for a reason of its own, a typed error: the output (a full
  // disk, a closed pipe) or the feeding (a file that changed, an unreadable source). Each aborts
  // the other, which then fails too, with tar-stream's "entry destroyed" or a premature close.
  let cause: Error | undefined;
  const failed = (err: Error): never => {
    if (!cause || (!(cause instanceof ImgportError) && err instanceof ImgportError)) cause = err;
    writer.abort(err);
    throw err;
  };
  const feeding = feed().catch(failed);
  const counter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      progress.update(bytesRead, compressor.stats().bytesOut);
      done(null, chunk);
    },
  });
  const piping = pipeline(Readable.from(writer.chunks(), { highWaterMark: 2 }), compressor.stream, counter, sink.stream).catch(failed);
  await Promise.allSettled([piping, feeding]);
  progress.done();
  if (cause) throw cause;
  const { bytesIn, bytesOut, storedBytes } = compressor.stats();
  return { bytesIn, bytesOut, storedBytes, members };
}

/** SOURCE_DATE_EPOCH when set (reproducible bundles), else now. */
export function generatedMtime(env: NodeJS.ProcessEnv = process.env): number {
  const epoch = Number(env.SOURCE_DATE_EPOCH);
  return env.SOURCE_DATE_EPOCH && Number.isInteger(epoch) && epoch >= 0 ? epoch : Math.floor(Date.now() / 1000);
}

