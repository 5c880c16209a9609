import t from 'tap';
import crypto from 'node:crypto';
import zlib from 'node:zlib';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PathError } from '../src/core/errors.js';
import { isMarkedCompressed } from '../src/pipeline/compress/format.js';
import { readFile } from '../src/pipeline/file-reader.js';
import { TreeWalk, type TreeEntry } from '../src/pipeline/walk.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'file-reader-test-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));

const sha256 = (data: Buffer) => crypto.createHash('sha256').update(data).digest('hex');

/** Files of many sizes around the chunk size, named so that walk order is creation order. */
function makeFiles(dir: string, sizes: number[]): void {
  fs.mkdirSync(dir, { recursive: true });
  sizes.forEach((size, i) => fs.writeFileSync(path.join(dir, `f${String(i).padStart(4, '0')}`), crypto.randomBytes(size)));
}

const walk = (dir: string): TreeEntry[] => [...new TreeWalk(dir)];

/** Every regular file of the entries read, in order. */
async function readAll(entries: Iterable<TreeEntry>, opts?: Parameters<typeof readFile>[1]) {
  const got: { relPath: string; digest: string; size: number; chunkSizes: number[] }[] = [];
  for (const entry of entries) {
    if (entry.kind !== 'file') continue;
    const parts: Buffer[] = [];
    for await (const chunk of readFile(entry, opts)) parts.push(chunk);
    const data = Buffer.concat(parts);
    got.push({
      relPath: entry.relPath,
      digest: sha256(data),
      size: data.length,
      chunkSizes: parts.map((p) => p.length),
    });
  }
  return got;
}

t.test('every file with its content; small files whole, big ones in chunks', async (t) => {
  const dir = path.join(tmp, 'many');
  const sizes = [0, 1, 4095, 4096, 4097, 65536, 65537, 200_000, 3, 150_000, 0, 70_000];
  for (let i = 0; i < 300; i++) sizes.push(i * 37);
  makeFiles(dir, sizes);
  fs.mkdirSync(path.join(dir, 'sub'));
  fs.symlinkSync('f0001', path.join(dir, 'link'));
  const entries = walk(dir);
  const files = entries.filter((e) => e.kind === 'file');
  t.equal(files.length, sizes.length);

  const got = await readAll(entries, { chunkSize: 65536 });
  t.same(got.map((g) => g.relPath), files.map((f) => f.relPath));
  got.forEach((g, i) => {
    t.equal(g.digest, sha256(fs.readFileSync(files[i].absPath)), `${g.relPath}: content`);
  });
  const big = got.find((g) => g.size === 200_000)!;
  t.same(big.chunkSizes, [65536, 65536, 65536, 200_000 - 3 * 65536], 'a big file comes in chunks');
  t.same(got.find((g) => g.size === 4097)!.chunkSizes, [4097], 'a small file comes whole');
  t.same(got.find((g) => g.size === 0)!.chunkSizes, [], 'an empty file has no chunk');
});

t.test('a file truncated between walk and read is a PathError naming it', async (t) => {
  for (const [size, newSize] of [[5000, 100], [300_000, 10]]) {
    const dir = path.join(tmp, `trunc-${size}`);
    makeFiles(dir, [10, size, 10]);
    const entries = walk(dir);
    const victim = path.join(dir, 'f0001');
    fs.truncateSync(victim, newSize);
    const err = await readAll(entries, { chunkSize: 65536 }).catch((e: unknown) => e);
    t.type(err, PathError);
    t.equal((err as PathError).path, victim);
    t.equal((err as Error).message, `file changed size while being read: ${victim} (expected ${size} bytes, read ${newSize})`);
  }
});

t.test('a chunk read ahead that fails while the consumer is busy fails the iteration, nothing else', async (t) => {
  const dir = path.join(tmp, 'shrink-ahead');
  makeFiles(dir, [300_000]);
  const file = walk(dir)[1];
  const unhandled: unknown[] = [];
  const record = (reason: unknown) => unhandled.push(reason);
  process.on('unhandledRejection', record);
  t.teardown(() => void process.off('unhandledRejection', record));
  let chunks = 0;
  const err = await (async () => {
    for await (const _ of readFile(file, { chunkSize: 65536 })) {
      if (chunks++ === 0) fs.truncateSync(file.absPath, 65536);
      // Busy elsewhere while the next chunk's read meets the end of the file.
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  })().catch((e: unknown) => e);
  t.type(err, PathError);
  // The second chunk may have been read ahead before the truncation: then the third one fails.
  t.match((err as Error).message, new RegExp(`^file changed size while being read: ${file.absPath} \\(expected 300000 bytes, read (65536|131072)\\)$`));
  t.same(unhandled, [], 'no unhandled rejection');
});

t.test('a file that grows while a big one is streamed is a PathError', async (t) => {
  const dir = path.join(tmp, 'grow');
  makeFiles(dir, [300_000]);
  const file = walk(dir)[1];
  let chunks = 0;
  const err = await (async () => {
    for await (const _ of readFile(file, { chunkSize: 65536 })) if (chunks++ === 0) fs.appendFileSync(file.absPath, 'more');
  })().catch((e: unknown) => e);
  t.type(err, PathError);
  t.match((err as Error).message, `file changed size while being read: ${file.absPath} (expected 300000 bytes, read 300004)`);
});

t.test('a file that vanished or became a symlink is a PathError naming it', async (t) => {
  const dir = path.join(tmp, 'gone');
  makeFiles(dir, [10, 20, 30]);
  const entries = walk(dir);
  const victim = path.join(dir, 'f0001');
  fs.rmSync(victim);
  await t.rejects(readAll(entries), { constructor: PathError, path: victim, message: `cannot read ${victim}: no such file or directory` });
  fs.symlinkSync('f0000', victim);
  await t.rejects(readAll(entries), { path: victim, message: `cannot read ${victim}: it is a symbolic link` }, 'opened with O_NOFOLLOW');
});

t.test('a file modified with the same size after the walk is refused', async (t) => {
  const dir = path.join(tmp, 'touched');
  makeFiles(dir, [10]);
  const entries = walk(dir);
  fs.utimesSync(entries[1].absPath, 1000, 1000);
  await t.rejects(readAll(entries), { message: `file changed while being read: ${entries[1].absPath} (modified since the walk)` });
});

t.test('a file is read only when its data is iterated', async (t) => {
  const dir = path.join(tmp, 'lazy');
  makeFiles(dir, [60_000, 200_000]);
  const [small, big] = walk(dir).slice(1).map((entry) => ({ entry, data: readFile(entry, { chunkSize: 65536 }) }));
  for (const { entry } of [small, big]) fs.rmSync(entry.absPath);
  for (const { entry, data } of [small, big]) {
    await t.rejects((async () => {
      for await (const _ of data);
    })(), { constructor: PathError, path: entry.absPath }, `${entry.relPath}: opened when iterated, after it was removed`);
  }
});

t.test('chunks of compressed files of 64 KiB or more carry the compressed mark', async (t) => {
  const dir = path.join(tmp, 'marks');
  fs.mkdirSync(dir);
  const text = Buffer.from('a line of text that compresses well\n'.repeat(20_000));
  const files: Record<string, Buffer> = {
    'a-small.gz': zlib.gzipSync(crypto.randomBytes(10_000)), // too small to be worth a block of its own
    'b-medium.gz': zlib.gzipSync(crypto.randomBytes(100_000)), // magic
    'c-big.xz': Buffer.concat([Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]), crypto.randomBytes(300_000)]),
    'd-big-random': crypto.randomBytes(300_000), // no magic: a trial says it does not shrink
    'e-medium-random': crypto.randomBytes(100_000), // no magic, read whole: no trial
    'f-big-text': text,
  };
  for (const [name, data] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), data);
  const marked: Record<string, boolean[]> = {};
  for (const entry of walk(dir).slice(1)) {
    marked[entry.relPath] = [];
    for await (const chunk of readFile(entry, { chunkSize: 65536 * 2 })) marked[entry.relPath].push(isMarkedCompressed(chunk));
  }
  t.same(marked, {
    'a-small.gz': [false],
    'b-medium.gz': [true],
    'c-big.xz': [true, true, true],
    'd-big-random': [true, true, true],
    'e-medium-random': [false],
    'f-big-text': [false, false, false, false, false, false],
  });
});
