import fs from 'node:fs/promises';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { PathError } from '../core/errors.js';
import { lockRootImageDir } from './lock.js';
import { markCommitted, onCleanup } from '../core/cleanup.js';
import type { Sandbox } from '../core/sandbox.js';
import { TreeWalk, type TreeEntry } from '../pipeline/walk.js';
import { readFile, type FileDataSource } from '../pipeline/file-reader.js';
import { cpioChunks } from '../archive/cpio-writer.js';
import { treeTarChunks } from '../archive/tar-writer.js';
import { createCompressor, tagged, type TaggedChunk } from '../pipeline/compress/index.js';
import { createFileSink, refuseReplacingSpecialFile, removeStaleTemporaries, temporaryNameBeside } from '../pipeline/sink.js';
import { createProgress } from '../pipeline/progress.js';
import { exclusionTest, loadPackRules } from './exlist.js';
import { requireProgram, runFilter } from './external.js';
import { ownCompression, PACKED_FORMS, packedFileName, type PackCompressor, type PackMethod } from './formats.js';
import type { PackTarget } from './target.js';

export interface PackOptions {
  method: PackMethod;
  /** Undefined: gzip for cpio/tar, mksquashfs's own default for squashfs. */
  compressor?: PackCompressor;
  threads: number;
  level?: number;
  /** Show a progress line on standard error. */
  progress: boolean;
  /** Lines every run prints (as xCAT does). */
  say(line: string): void;
  /** Lines printed only with --verbose. */
  detail(line: string): void;
  warn(line: string): void;
}

export interface PackResult {
  /** Logical path of the packed file. */
  file: string;
  entries: number;
  fileBytes: number;
  archiveBytes: number;
  /** Bytes of already-compressed files kept as they were by our compressors (undefined: an external program compressed). */
  storedBytes?: number;
}

/** Members are named as `find .` prints them, as in xCAT's archives. */
const MEMBER_PREFIX = '.';
const PACKED_MODE = 0o644;
/**
 * mksquashfs reads our tar: times must fit the ustar field as tar-stream writes it (up to 2038),
 * because mksquashfs (4.5) fails on a pax mtime record ("Failed to parse pax header", naming nothing).
 */
const SQUASHFS_MAX_TIME = 2 ** 31 - 1;
/** A longer link target goes in a pax record, whose absolute path mksquashfs 4.5 reads as relative. */
const USTAR_MAX_LINK = 100;

/**
 * Packs ROOTIMGDIR/rootimg into ROOTIMGDIR/rootimg.METHOD.EXT (or rootimg.sfs). The new file is
 * written under a temporary name and renamed when complete; only then are the other packed forms
 * removed, so a failed or interrupted pack leaves the previous, bootable one. The tree is only read.
 */
export async function packImage(target: PackTarget, sandbox: Sandbox, opts: PackOptions): Promise<PackResult> {
  const treeLogical = path.posix.join(target.rootimgdir, 'rootimg');
  const treeReal = sandbox.real(treeLogical);
  const isDir = await fs.stat(treeReal).then((st) => st.isDirectory(), () => false);
  if (!isDir) {
    throw new PathError(
      `${treeLogical} does not exist, run genimage -o ${target.osvers} -p ${target.profile} on a server with matching architecture`,
      treeLogical,
    );
  }
  const unlock = await lockRootImageDir(sandbox, target.rootimgdir, `pack ${target.imagename}`, target.imagename);
  try {
    return await packTree(target, sandbox, opts, treeLogical);
  } finally {
    await unlock();
  }
}

/** packImage's work, under the lock: `treeLogical` is ROOTIMGDIR/rootimg. */
async function packTree(target: PackTarget, sandbox: Sandbox, opts: PackOptions, treeLogical: string): Promise<PackResult> {
  const treeReal = sandbox.real(treeLogical);
  const compressor = opts.compressor ?? (opts.method === 'squashfs' ? undefined : 'gzip');
  // Missing tools are found before anything is read or written.
  const program =
    opts.method === 'squashfs'
      ? requireProgram('mksquashfs', 'for the squashfs method', 'squashfs-tools')
      : compressor === 'xz'
        ? requireProgram('xz', 'for xz compression', 'xz-utils (xz)')
        : undefined;

  const rules = await loadPackRules(target.exlist, sandbox, opts.warn);
  const excluded = exclusionTest(rules);
  const tree = new TreeWalk(treeReal, { oneFileSystem: true, include: (relPath) => !excluded(relPath), onWarning: opts.warn });
  const survey = tree.survey();
  opts.detail(`exclusion patterns: ${rules.excludes.length}, inclusion patterns: ${rules.includes.length}`);
  opts.detail(`${survey.entries} entries, ${survey.fileBytes} bytes of file data to pack`);

  const name = packedFileName(opts.method, compressor ?? 'gzip');
  const finalReal = path.join(sandbox.real(target.rootimgdir), name);
  // A killed pack of any form left an image-sized temporary file: gone before this one is written.
  removeStaleTemporaries(path.dirname(finalReal), PACKED_FORMS);
  opts.say(`Packing contents of ${treeLogical}`);
  opts.say(`archive method:${opts.method}`);
  if (compressor) opts.say(`compress method:${compressor}`);

  const progress = createProgress({ totalBytes: survey.fileBytes, enabled: opts.progress });
  const counts = { read: 0, written: 0 };
  const report = (): void => progress.update(counts.read, counts.written);
  const data: FileDataSource = (entry) => countChunks(readFile(entry), (n) => {
    counts.read += n;
    report();
  });
  const countWritten = (n: number): void => {
    counts.written += n;
    report();
  };

  let storedBytes: number | undefined;
  if (opts.method === 'squashfs') {
    await writeSquashfs(program!, finalReal, tree, data, compressor, opts.threads);
    counts.written = (await fs.stat(finalReal)).size;
  } else {
    const archive =
      opts.method === 'cpio'
        ? tagAll(cpioChunks(tree, survey.linkNames, { prefix: MEMBER_PREFIX, data }))
        : treeTarChunks(tree, { prefix: MEMBER_PREFIX, data });
    const sink = createFileSink(finalReal, { mode: PACKED_MODE });
    try {
      const out = countingStream(countWritten);
      if (program) {
        await Promise.all([runFilter(program, xzArgs(opts.threads, opts.level), untag(archive), out), pipeline(out, sink.stream)]);
      } else {
        const compress = createCompressor({ format: ownCompression(opts.method, compressor)!, threads: opts.threads, level: opts.level });
        // Two chunks queued ahead of the compressor, as the export does: its blocks in flight are the buffer.
        await pipeline(Readable.from(archive, { highWaterMark: 2 }), compress.stream, out, sink.stream);
        storedBytes = compress.stats().storedBytes;
      }
      await sink.commit();
    } catch (err) {
      await sink.abort();
      throw err;
    }
  }
  progress.done();
  await removeOtherForms(path.dirname(finalReal), name, opts.warn);
  return { file: path.posix.join(target.rootimgdir, name), entries: survey.entries, fileBytes: survey.fileBytes, archiveBytes: counts.written, storedBytes };
}

function xzArgs(threads: number, level: number | undefined): string[] {
  return ['-T', String(threads), '-c', ...(level === undefined ? [] : [`-${level}`])];
}

/**
 * mksquashfs reads our uncompressed tar on its standard input (no staging copy of the tree) and
 * writes a temporary file beside the final one. Its tar reader ignores the root entry, so the
 * root directory's attributes are passed as options (mksquashfs 4.5.1 applies only -root-mode from a
 * tar; the root's owner and time are passed for the versions that take them).
 */
async function writeSquashfs(
  mksquashfs: string,
  finalReal: string,
  tree: Iterable<TreeEntry>,
  data: FileDataSource,
  compressor: PackCompressor | undefined,
  threads: number,
): Promise<void> {
  const root = rootOf(tree);
  const members = {
    *[Symbol.iterator]() {
      for (const e of tree) {
        if (e.mtime < 0 || e.mtime > SQUASHFS_MAX_TIME) {
          throw new PathError(`cannot archive ${e.absPath}: its mtime ${e.mtime} is outside what mksquashfs takes (1970 to 2038)`, e.absPath);
        }
        if (e.kind === 'symlink' && e.linkTarget!.startsWith('/') && Buffer.byteLength(e.linkTarget!) > USTAR_MAX_LINK) {
          throw new PathError(`cannot archive ${e.absPath}: mksquashfs drops the leading / of an absolute link target longer than ${USTAR_MAX_LINK} bytes (${e.linkTarget}); make the link relative, or pack with -m cpio`, e.absPath);
        }
        if (e.relPath !== '.') yield e;
      }
    },
  };
  refuseReplacingSpecialFile(finalReal);
  const tmp = temporaryNameBeside(finalReal);
  const removeTmp = (): Promise<void> => fs.rm(tmp, { force: true });
  const unregister = onCleanup(removeTmp);
  const args = [
    // -no-duplicates: mksquashfs 4.5.1 reading a tar now and then writes unreadable fragments for
    // files that share their first block (seen on half the packs of a tree of such logs).
    '-', tmp, '-tar', '-no-duplicates', '-noappend', '-quiet', '-no-progress', '-processors', String(threads),
    ...(compressor ? ['-comp', compressor === 'pigz' ? 'gzip' : compressor] : []),
    ...(root ? ['-root-mode', (root.mode & 0o7777).toString(8), '-root-uid', String(root.uid), '-root-gid', String(root.gid), '-root-time', String(root.mtime)] : []),
  ];
  try {
    // Names without './': tar-stream splits a 101-byte './...' name with a ustar prefix '.', which mksquashfs refuses.
    await runFilter(mksquashfs, args, untag(treeTarChunks(members, { prefix: '', data })));
    await fs.chmod(tmp, PACKED_MODE);
    await fs.rename(tmp, finalReal);
    unregister();
    markCommitted();
  } catch (err) {
    await removeTmp();
    unregister();
    throw err;
  }
}

/** The root entry of a walked tree ('.', listed first), unless the exclusions left it out. */
function rootOf(tree: Iterable<TreeEntry>): TreeEntry | undefined {
  for (const entry of tree) return entry.relPath === '.' ? entry : undefined;
  return undefined;
}

/** After a successful pack: the other packed forms go, so nodes cannot boot a stale one. */
async function removeOtherForms(dir: string, keep: string, warn: (line: string) => void): Promise<void> {
  await Promise.all(
    PACKED_FORMS.filter((form) => form !== keep).map((form) =>
      fs.rm(path.join(dir, form), { force: true }).catch((err: Error) => warn(`cannot remove the previous ${form}: ${err.message}`)),
    ),
  );
}

async function* tagAll(chunks: AsyncIterable<Buffer>): AsyncIterable<TaggedChunk> {
  for await (const data of chunks) yield tagged(data);
}

async function* untag(chunks: AsyncIterable<TaggedChunk>): AsyncIterable<Buffer> {
  for await (const chunk of chunks) yield chunk.data;
}

/** Passes file data through unchanged, counting the bytes read for the progress line. */
async function* countChunks(chunks: AsyncIterable<Buffer>, onBytes: (n: number) => void): AsyncIterable<Buffer> {
  for await (const chunk of chunks) {
    onBytes(chunk.length);
    yield chunk;
  }
}

function countingStream(onBytes: (n: number) => void): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      onBytes(chunk.length);
      done(null, chunk);
    },
  });
}
