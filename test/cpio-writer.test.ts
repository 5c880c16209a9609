import t from 'tap';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readCpio } from '../src/archive/cpio-reader.js';
import { CpioSize, cpioChunks, pad4, type CpioOptions } from '../src/archive/cpio-writer.js';
import { PathError } from '../src/core/errors.js';
import { readFile } from '../src/pipeline/file-reader.js';
import { TreeWalk } from '../src/pipeline/walk.js';
import { inPieces, makeSampleTree, snapshotTree } from './helpers/cpio-craft.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cpio-writer-test-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));
const top = path.join(tmp, 'src', 'rootimg');
makeSampleTree(top);

async function archive(root: string, opts: CpioOptions): Promise<{ data: Buffer; expected: number }> {
  const tree = new TreeWalk(root);
  const size = new CpioSize(opts);
  const { linkNames } = tree.survey((entry) => size.add(entry));
  const chunks: Buffer[] = [];
  for await (const chunk of cpioChunks(tree, linkNames, { ...opts, data: (entry) => readFile(entry, { chunkSize: 65536 }) })) chunks.push(chunk);
  return { data: Buffer.concat(chunks), expected: size.total };
}

t.test('CpioSize, added up as the tree is surveyed, is the exact size; the archive ends on a 512-byte block', async (t) => {
  const { data, expected } = await archive(top, { prefix: 'rootimg' });
  t.equal(data.length, expected);
  t.equal(data.length % 512, 0);
  t.ok(data.includes(Buffer.from('TRAILER!!!\0')), 'trailer present');
});

t.test('pad4 rounds up to 4 over the whole newc range, beyond 2 GiB too (32-bit bit operations did not)', async (t) => {
  t.same([0, 1, 4, 5, 2 ** 31 - 3, 2 ** 31 + 1, 2 ** 32 - 1].map(pad4), [0, 4, 4, 8, 2 ** 31, 2 ** 31 + 4, 2 ** 32]);
});

t.test('a file beyond 2 GiB is framed right: the entry after it reads back (views of one zero buffer, nothing on disk)', async (t) => {
  const big = 2 ** 31 + 1;
  const entry = (relPath: string, kind: 'dir' | 'file', size: number) =>
    ({ relPath, absPath: `/x/${relPath}`, kind, mode: kind === 'dir' ? 0o755 : 0o644, uid: 0, gid: 0, size, mtime: 1, rdevMajor: 0, rdevMinor: 0, ino: 1, nlink: 1 }) as const;
  const tree = [entry('.', 'dir', 0), entry('big.img', 'file', big), entry('big.img.sha256', 'file', 9)];
  const zeros = Buffer.alloc(1 << 24);
  const data = async function* (e: { relPath: string; size: number }) {
    if (e.relPath === 'big.img.sha256') yield Buffer.from('checksum\n');
    else for (let left = e.size; left > 0; left -= zeros.length) yield zeros.subarray(0, Math.min(left, zeros.length));
  };
  // GNU cpio reads it: our reader alone would agree with a writer sharing its mistake.
  const cpio = spawn('cpio', ['-i', '--quiet', '--to-stdout', 'rootimg/big.img.sha256'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  cpio.stdout.on('data', (c: Buffer) => (out += c.toString()));
  cpio.stderr.on('data', (c: Buffer) => (err += c.toString()));
  const exited = new Promise<number | null>((resolve) => cpio.on('close', resolve));
  await pipeline(Readable.from(cpioChunks(tree, new Map(), { prefix: 'rootimg', data })), cpio.stdin);
  t.equal(await exited, 0, err);
  t.equal(out, 'checksum\n', 'the entry after the big file');
  t.equal(err, '', 'no junk skipped');
});

t.test('GNU cpio lists the names in walk order and recreates an identical tree', async (t) => {
  const { data } = await archive(top, { prefix: 'rootimg' });
  const entries = [...new TreeWalk(top)];
  const listed = spawnSync('cpio', ['-it', '--quiet'], { input: data, encoding: 'utf8' });
  t.equal(listed.status, 0, listed.stderr);
  t.same(listed.stdout.trim().split('\n'), entries.map((e) => (e.relPath === '.' ? 'rootimg' : `rootimg/${e.relPath}`)));

  const out = path.join(tmp, 'gnu-out');
  fs.mkdirSync(out);
  const unpacked = spawnSync('cpio', ['-idum', '--quiet'], { input: data, cwd: out, encoding: 'utf8' });
  t.equal(unpacked.status, 0, unpacked.stderr);
  const got = snapshotTree(path.join(out, 'rootimg'));
  const want = snapshotTree(top);
  // GNU cpio sets no symlink mtime and sets a directory's before its content changes it.
  for (const snap of [got, want]) for (const rec of Object.values(snap)) if (rec.type === 'dir' || rec.type === 'symlink') rec.mtime = 0;
  t.same(got, want, 'types, modes, owners, sizes, digests, symlink targets, devices, hard links, file mtimes');
  const archived = new Map<string, number>();
  for await (const { entry } of readCpio(inPieces(data, 4096))) archived.set(entry.name, entry.mtime);
  t.same(archived, new Map(entries.map((e) => [e.relPath === '.' ? 'rootimg' : `rootimg/${e.relPath}`, e.mtime])), 'every mtime archived');
  t.equal(got['usr/bin/perl'].linkedWith, 'etc/perl-alias', 'hard link recreated as one inode');
  t.equal(fs.statSync(path.join(out, 'rootimg/usr/bin/perl')).ino, fs.statSync(path.join(out, 'rootimg/etc/perl-alias')).ino);
  t.equal(got['usr/bin/su'].mode, 0o4755);
  t.equal(got['tmp'].mode, 0o1777);
});

t.test('hard links follow the newc convention: shared inode, group nlink, data on the last name', async (t) => {
  const { data } = await archive(top, { prefix: 'rootimg' });
  const verbose = execFileSync('cpio', ['-itv', '--quiet'], { input: data, encoding: 'utf8' }).split('\n');
  const line = (name: string) => verbose.find((l) => l.endsWith(` ${name}`))!;
  // -rwxr-xr-x   3 root root  0 ... : nlink is the group size, only the last name carries the 12 bytes
  t.match(line('rootimg/etc/perl-alias'), /^-rwxr-xr-x\s+3\s+root\s+root\s+0 /);
  t.match(line('rootimg/usr/bin/perl'), /^-rwxr-xr-x\s+3\s+root\s+root\s+0 /);
  t.match(line('rootimg/usr/bin/perl5.36'), /^-rwxr-xr-x\s+3\s+root\s+root\s+12 /);
  t.match(line('rootimg/dev/null'), /^crw-rw-rw-\s+1\s+root\s+root\s+1,\s+3 /);
});

t.test('reproducible: the same tree twice gives the same bytes; prefix "." as packimage names them', async (t) => {
  const copy = path.join(tmp, 'copy', 'rootimg');
  fs.mkdirSync(path.dirname(copy));
  execFileSync('cp', ['-a', top, copy]);
  const a = await archive(top, { prefix: 'rootimg' });
  const b = await archive(copy, { prefix: 'rootimg' });
  t.equal(crypto.createHash('sha256').update(a.data).digest('hex'), crypto.createHash('sha256').update(b.data).digest('hex'));

  const dot = await archive(top, { prefix: '.' });
  t.equal(dot.data.length, dot.expected);
  const names = execFileSync('cpio', ['-it', '--quiet'], { input: dot.data, encoding: 'utf8' }).trim().split('\n');
  t.equal(names[0], '.');
  t.equal(names[1], './dev');
  t.ok(names.includes('./usr/share/notes é ü.txt'));
});

t.test('a file that shrank after the walk stops the archive with an error naming it', async (t) => {
  const dir = path.join(tmp, 'shrink', 'rootimg');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'a'), 'x'.repeat(100));
  const tree = new TreeWalk(dir);
  const entries = [...tree];
  fs.writeFileSync(path.join(dir, 'a'), 'x'.repeat(50));
  const consume = async () => {
    for await (const _ of cpioChunks(entries, new Map(), { prefix: 'rootimg' }));
  };
  await t.rejects(consume(), { message: `file changed size while being read: ${path.join(dir, 'a')} (expected 100 bytes, read 50)` });
});

t.test('hard links that changed since the survey stop the archive with an error naming the name', async (t) => {
  const dir = path.join(tmp, 'relinked', 'rootimg');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'x'), 'same size');
  fs.writeFileSync(path.join(dir, 'y'), 'same data');
  fs.linkSync(path.join(dir, 'x'), path.join(dir, 'z'));
  const tree = new TreeWalk(dir);
  const { linkNames } = tree.survey();
  t.same([...linkNames], [['x', 2]]);
  // The same names, kinds and sizes, but z is another file's name now.
  fs.rmSync(path.join(dir, 'z'));
  fs.linkSync(path.join(dir, 'y'), path.join(dir, 'z'));
  const consume = async () => {
    for await (const _ of cpioChunks(tree, linkNames, { prefix: 'rootimg' }));
  };
  await t.rejects(consume(), {
    constructor: PathError,
    path: path.join(dir, 'z'),
    message: `tree changed while being read: the hard links of ${path.join(dir, 'z')} are not those of the first walk`,
  });
});
