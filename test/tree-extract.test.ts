import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cpioChunks } from '../src/archive/cpio-writer.js';
import { checkCpioTree, extractCpioTree } from '../src/archive/tree-extract.js';
import { BundleError, PathError } from '../src/core/errors.js';
import { TreeWalk } from '../src/pipeline/walk.js';
import { craftNewc, DIR, FILE, inPieces, makeSampleTree, snapshotTree, SYMLINK, type CraftEntry } from './helpers/cpio-craft.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tree-extract-test-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));
const top = path.join(tmp, 'src', 'rootimg');
makeSampleTree(top);
const MEMBER = 'img/rootimgtree.gz';

t.test('round trip: writer -> extractor gives an identical tree', async (t) => {
  const tree = new TreeWalk(top);
  const survey = tree.survey();
  const source = cpioChunks(tree, survey.linkNames, { prefix: 'rootimg' });
  const dest = path.join(tmp, 'out1', 'rootimg');
  const result = await extractCpioTree(source, dest, { stripPrefix: 'rootimg', member: MEMBER });
  t.same(snapshotTree(dest), snapshotTree(top), 'types, modes, owners, sizes, digests, symlinks, devices, hard links, all mtimes');
  t.same(result, { entries: survey.entries, bytes: survey.fileBytes });
  t.equal(fs.statSync(path.join(dest, 'dev/null')).rdev, fs.statSync(path.join(top, 'dev/null')).rdev, 'char device 1,3');
});

t.test("GNU cpio's own archive (hard-link data first-seen at the last link, other order) extracts identically", async (t) => {
  const names = ['rootimg', ...fs.readdirSync(top, { recursive: true, encoding: 'utf8' }).map((n) => `rootimg/${n}`)];
  const gnu = spawnSync('cpio', ['-o', '--quiet', '-H', 'newc'], { cwd: path.dirname(top), input: names.join('\n') + '\n' });
  t.equal(gnu.status, 0, String(gnu.stderr));
  const dest = path.join(tmp, 'out2', 'rootimg');
  await extractCpioTree(inPieces(gnu.stdout, 4000), dest, { stripPrefix: 'rootimg' });
  t.same(snapshotTree(dest), snapshotTree(top));
});

t.test('an existing destination is refused', async (t) => {
  const dest = path.join(tmp, 'exists');
  fs.mkdirSync(dest);
  await t.rejects(extractCpioTree(inPieces(craftNewc([])), dest, { stripPrefix: 'rootimg' }), {
    constructor: PathError,
    message: `cannot unpack into ${dest}: it already exists`,
  });
  t.ok(fs.existsSync(dest), 'left alone');
});

/** A hostile archive must be refused naming the entry, leave nothing behind and touch nothing outside. */
async function refused(t: Test, what: string, entries: CraftEntry[], badName: string, reason: RegExp) {
  const area = fs.mkdtempSync(path.join(tmp, 'hostile-'));
  const outside = path.join(area, 'outside');
  fs.mkdirSync(outside);
  fs.writeFileSync(path.join(outside, 'victim'), 'untouched');
  const dest = path.join(area, 'unpack', 'rootimg');
  const named = entries.map((e) => ({ ...e, name: e.name.replaceAll('OUTSIDE', outside) }));
  const err = await extractCpioTree(inPieces(craftNewc(named), 50), dest, { stripPrefix: 'rootimg', member: MEMBER }).catch((e: unknown) => e);
  t.type(err, BundleError, what);
  t.match((err as Error).message, `${MEMBER}: refusing cpio entry "${badName.replaceAll('OUTSIDE', outside)}"`, what);
  t.match((err as Error).message, reason, what);
  t.equal((err as BundleError).member, MEMBER);
  t.notOk(fs.existsSync(dest), `${what}: the partial tree is removed`);
  t.same(fs.readdirSync(outside), ['victim'], `${what}: nothing written outside`);
  t.equal(fs.readFileSync(path.join(outside, 'victim'), 'utf8'), 'untouched');
  t.same(fs.readdirSync(area).sort(), ['outside', 'unpack']);
  t.same(fs.readdirSync(path.join(area, 'unpack')), []);
}

t.test('hostile entries are refused', async (t) => {
  const start = [{ name: 'rootimg', mode: DIR }];
  await refused(t, 'dot-dot', [...start, { name: 'rootimg/../x', mode: FILE, body: 'evil' }], 'rootimg/../x', /'\.\.' in the name/);
  await refused(t, 'dot-dot deeper', [...start, { name: 'rootimg/a/../../outside/victim', mode: FILE, body: 'evil' }], 'rootimg/a/../../outside/victim', /'\.\.'/);
  await refused(t, 'absolute', [...start, { name: '/etc/x', mode: FILE, body: 'evil' }], '/etc/x', /absolute name/);
  await refused(t, 'absolute into outside', [...start, { name: 'OUTSIDE/victim', mode: FILE, body: 'evil' }], 'OUTSIDE/victim', /absolute name/);
  await refused(t, 'not below the prefix', [...start, { name: 'other/x', mode: FILE, body: 'evil' }], 'other/x', /not below "rootimg"/);
  await refused(t, 'prefix look-alike', [{ name: 'rootimgX', mode: DIR }], 'rootimgX', /not below "rootimg"/);
  await refused(t, 'through a symlink', [
    ...start,
    { name: 'rootimg/link', mode: SYMLINK, body: 'OUTSIDE' },
    { name: 'rootimg/link/evil', mode: FILE, body: 'evil' },
  ], 'rootimg/link/evil', /its parent link is a symbolic link/);
  await refused(t, 'through a symlink, deeper', [
    ...start,
    { name: 'rootimg/link', mode: SYMLINK, body: '/' },
    { name: 'rootimg/link/tmp/x/evil', mode: DIR },
  ], 'rootimg/link/tmp/x/evil', /its parent link is a symbolic link/);
  await refused(t, 'symlink over a directory', [
    ...start,
    { name: 'rootimg/d', mode: DIR },
    { name: 'rootimg/d', mode: SYMLINK, body: 'OUTSIDE' },
  ], 'rootimg/d', /duplicate entry/);
  await refused(t, 'duplicate file', [
    ...start,
    { name: 'rootimg/f', mode: FILE, body: 'one' },
    { name: 'rootimg/f', mode: FILE, body: 'two' },
  ], 'rootimg/f', /duplicate entry/);
  await refused(t, 'duplicate top', [...start, ...start], 'rootimg', /duplicate entry/);
  await refused(t, 'hard link to a symlink pointing outside', [
    ...start,
    { name: 'rootimg/sl', mode: SYMLINK, body: 'OUTSIDE/victim', ino: 77, nlink: 2 },
    { name: 'rootimg/hl', mode: FILE, body: 'evil', ino: 77, nlink: 2 },
  ], 'rootimg/hl', /hard link to an entry that is not a regular file/);
  await refused(t, 'a file as the top', [{ name: 'rootimg', mode: FILE, body: 'x' }], 'rootimg', /not a directory/);
  await refused(t, 'empty link target', [...start, { name: 'rootimg/l', mode: SYMLINK, body: '' }], 'rootimg/l', /symbolic link target of 0 bytes/);
  await refused(t, 'link target over 4096 bytes', [...start, { name: 'rootimg/l', mode: SYMLINK, body: 'a/'.repeat(2049) }], 'rootimg/l', /symbolic link target of 4098 bytes/);
  await refused(t, 'link target with a NUL', [...start, { name: 'rootimg/l', mode: SYMLINK, body: 'etc\0/../../x' }], 'rootimg/l', /symbolic link target holds a NUL byte/);
});

t.test('hard links only join files of this tree', async (t) => {
  // Same inode number as a file outside the prefix would be refused anyway; inside, a link group
  // whose data comes first or last both end up as one inode with the data.
  const dest = path.join(tmp, 'links', 'rootimg');
  const archive = craftNewc([
    { name: 'rootimg', mode: DIR },
    { name: 'rootimg/a', mode: FILE, ino: 5, nlink: 2, body: '' },
    { name: 'rootimg/b', mode: FILE, ino: 5, nlink: 2, body: 'data on the last name' },
    { name: 'rootimg/c', mode: FILE, ino: 9, nlink: 2, body: 'data on the first name' },
    { name: 'rootimg/d', mode: FILE, ino: 9, nlink: 2, body: '' },
  ]);
  const result = await extractCpioTree(inPieces(archive), dest, { stripPrefix: 'rootimg' });
  t.same(result, { entries: 5, bytes: 21 + 22 });
  t.equal(fs.statSync(path.join(dest, 'a')).ino, fs.statSync(path.join(dest, 'b')).ino);
  t.equal(fs.readFileSync(path.join(dest, 'a'), 'utf8'), 'data on the last name');
  t.equal(fs.statSync(path.join(dest, 'c')).ino, fs.statSync(path.join(dest, 'd')).ino);
  t.equal(fs.readFileSync(path.join(dest, 'd'), 'utf8'), 'data on the first name');
});

t.test('entries before their directory get it made; a later entry for it sets its metadata', async (t) => {
  const dest = path.join(tmp, 'implied', 'rootimg');
  await extractCpioTree(inPieces(craftNewc([
    { name: 'rootimg/x/y/file', mode: FILE, body: 'deep' },
    { name: 'rootimg/x', mode: 0o040750, uid: 7, mtime: 1_234_567_890 },
  ])), dest, { stripPrefix: 'rootimg' });
  t.equal(fs.readFileSync(path.join(dest, 'x/y/file'), 'utf8'), 'deep');
  const x = fs.statSync(path.join(dest, 'x'));
  t.equal(x.mode & 0o7777, 0o750);
  t.equal(x.uid, 7);
  t.equal(Math.floor(x.mtimeMs / 1000), 1_234_567_890);
});

t.test('a socket entry is left out with a warning naming it, by the extraction and the check alike', async (t) => {
  const archive = craftNewc([
    { name: 'rootimg', mode: DIR },
    { name: 'rootimg/run', mode: DIR },
    { name: 'rootimg/run/agent.sock', mode: 0o140755 },
    { name: 'rootimg/run/pid', mode: FILE, body: '42\n' },
  ]);
  const expected = [`Warning: ${MEMBER}: skipped socket "rootimg/run/agent.sock" (a program makes its socket when it starts).`];
  const dest = path.join(tmp, 'socket', 'rootimg');
  const warnings: string[] = [];
  const opts = { stripPrefix: 'rootimg', member: MEMBER, warn: (line: string) => warnings.push(line) };
  const extracted = await extractCpioTree(inPieces(archive), dest, opts);
  t.same(warnings, expected);
  t.same(fs.readdirSync(path.join(dest, 'run')), ['pid']);
  t.equal(fs.readFileSync(path.join(dest, 'run/pid'), 'utf8'), '42\n');
  t.equal(extracted.entries, 3, 'the socket is not counted as unpacked');
  warnings.length = 0;
  t.same(await checkCpioTree(inPieces(archive), opts), extracted, 'the check counts as the extraction does');
  t.same(warnings, expected);
});

t.test('a truncated stream is refused naming the member, and the partial tree is removed', async (t) => {
  const tree = new TreeWalk(top);
  const chunks: Buffer[] = [];
  for await (const c of cpioChunks(tree, tree.survey().linkNames, { prefix: 'rootimg' })) chunks.push(c);
  const data = Buffer.concat(chunks);
  const dest = path.join(tmp, 'cut', 'rootimg');
  const err = await extractCpioTree(inPieces(data.subarray(0, data.length - 2000), 4096), dest, { stripPrefix: 'rootimg', member: MEMBER }).catch((e: unknown) => e);
  t.type(err, BundleError);
  t.match((err as Error).message, new RegExp(`^${MEMBER}: cpio archive, offset \\d+: `));
  t.notOk(fs.existsSync(dest));
});
