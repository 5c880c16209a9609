import t from 'tap';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PathError } from '../src/core/errors.js';
import { TreeWalk, type TreeEntry, type WalkOptions } from '../src/pipeline/walk.js';
import { FIXED_MTIME, makeSampleTree } from './helpers/cpio-craft.js';
import { NODE, NODE_ARGS } from './helpers/node-command.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'walk-test-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));
const top = path.join(tmp, 'rootimg');
makeSampleTree(top);

// The child processes need only the TypeScript loader, not tap's process bookkeeping.
const tsLoader = process.execArgv.filter((a) => a.includes('@tapjs/typescript'));
const childEnv = { PATH: process.env.PATH };
const byPath = (entries: TreeEntry[]) => new Map(entries.map((e) => [e.relPath, e]));
const walk = (dir: string, opts?: WalkOptions): TreeEntry[] => [...new TreeWalk(dir, opts)];

function makeFilesIn(dir: string, files: Record<string, string>): void {
  for (const [name, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), text);
  }
}

t.test('depth-first order, children in byte order, whatever the creation order', async (t) => {
  const dir = path.join(tmp, 'order');
  for (const name of ['b', 'a/z', 'a/B', 'C', 'a/é', 'a/e', 'b2']) fs.mkdirSync(path.join(dir, name), { recursive: true });
  fs.writeFileSync(path.join(dir, 'a/10'), '');
  fs.writeFileSync(path.join(dir, 'a/9'), '');
  const entries = walk(dir);
  t.same(entries.map((e) => e.relPath), ['.', 'C', 'a', 'a/10', 'a/9', 'a/B', 'a/e', 'a/z', 'a/é', 'b', 'b2']);
  t.equal(entries[0].absPath, dir);
  t.equal(entries[3].absPath, path.join(dir, 'a/10'));
});

t.test('kinds, modes, owners, sizes, devices and mtimes', async (t) => {
  const entries = walk(top);
  const e = byPath(entries);
  t.equal(e.get('.')!.kind, 'dir');
  t.equal(e.get('usr/bin/su')!.mode, 0o4755, 'setuid kept');
  t.equal(e.get('usr/bin/wall')!.mode, 0o2755, 'setgid kept');
  t.equal(e.get('usr/bin/wall')!.gid, 5);
  t.equal(e.get('tmp')!.mode, 0o1777, 'sticky kept');
  t.match(e.get('var/empty'), { kind: 'dir', mode: 0o700, uid: 1234, gid: 5678, size: 0 });
  t.match(e.get('usr/bin/big'), { kind: 'symlink', linkTarget: '../share/big.bin', size: 0 });
  t.match(e.get('etc/hosts.abs'), { kind: 'symlink', linkTarget: '/etc/hosts', uid: 1000 });
  t.match(e.get('dev/null'), { kind: 'chardev', rdevMajor: 1, rdevMinor: 3, mode: 0o666 });
  t.match(e.get('dev/initctl'), { kind: 'fifo', mode: 0o600 });
  t.match(e.get('usr/share/big.bin'), { kind: 'file', size: 300_000 });
  t.match(e.get('usr/share/notes é ü.txt'), { kind: 'file', uid: 1000, gid: 1000, mode: 0o600 });
  t.match(e.get('etc/empty'), { kind: 'file', size: 0 });
  for (const entry of entries) {
    t.ok(Number.isInteger(entry.mtime) && entry.mtime >= FIXED_MTIME, `${entry.relPath}: fixed mtime`);
  }
  const fileBytes = entries.filter((x) => x.kind === 'file').reduce((sum, x) => sum + x.size, 0);
  t.equal(fileBytes, 20 + 70_000 + 1000 + 300_000 + 15 + 12);
});

t.test('a survey counts the entries, the file data (hard-linked data once) and the names of each linked file', async (t) => {
  const survey = new TreeWalk(top).survey();
  t.equal(survey.entries, walk(top).length);
  t.equal(survey.fileBytes, 20 + 70_000 + 1000 + 300_000 + 15 + 12);
  t.same([...survey.linkNames], [['etc/perl-alias', 3]]);
  const visited: string[] = [];
  new TreeWalk(top).survey((entry) => visited.push(entry.relPath));
  t.same(visited, walk(top).map((e) => e.relPath), 'the visitor sees every entry in walk order');
});

t.test('a tree is walked as it is consumed: a directory is read when the walk reaches it', async (t) => {
  const dir = path.join(tmp, 'lazy');
  for (const sub of ['a', 'b']) fs.mkdirSync(path.join(dir, sub), { recursive: true });
  fs.writeFileSync(path.join(dir, 'a/1'), '');
  const walking = new TreeWalk(dir)[Symbol.iterator]();
  t.same([walking.next().value.relPath, walking.next().value.relPath, walking.next().value.relPath], ['.', 'a', 'a/1']);
  fs.writeFileSync(path.join(dir, 'b/late'), 'written after the walk began');
  const rest: string[] = [];
  for (let next = walking.next(); !next.done; next = walking.next()) rest.push(next.value.relPath);
  t.same(rest, ['b', 'b/late']);
});

t.test('once surveyed, a walk that finds another tree fails naming the first entry that differs', async (t) => {
  const dir = path.join(tmp, 'changing');
  makeFilesIn(dir, { 'a/one': 'x'.repeat(100), 'b/two': 'y' });
  const tree = new TreeWalk(dir);
  t.same(tree.survey(), { entries: 5, fileBytes: 101, linkNames: new Map() });
  t.equal([...tree].length, 5, 'the same tree walks again');

  fs.writeFileSync(path.join(dir, 'a/new'), '');
  const added = path.join(dir, 'a/new');
  t.throws(() => [...tree], { constructor: PathError, path: added, message: `tree changed while being read: ${added} is not the entry its first walk found here (names added, removed or of another kind since)` });
  fs.rmSync(added);

  fs.writeFileSync(path.join(dir, 'a/one'), 'x'.repeat(99));
  const one = path.join(dir, 'a/one');
  t.throws(() => [...tree], { constructor: PathError, path: one, message: `file changed size while being read: ${one} (100 bytes when the tree was first walked, now 99)` });
  fs.writeFileSync(path.join(dir, 'a/one'), 'x'.repeat(100));

  // A link's target is its body in a cpio archive, whose size the survey announced.
  const link = path.join(dir, 'b/link');
  fs.symlinkSync('short', link);
  t.equal(tree.survey().entries, 6);
  fs.rmSync(link);
  fs.symlinkSync('a-longer-target', link);
  t.throws(() => [...tree], { constructor: PathError, path: link, message: `symbolic link changed target while being read: ${link} (5 bytes when the tree was first walked, now 15)` });
  fs.rmSync(link);
  t.equal(tree.survey().entries, 5);

  fs.rmSync(path.join(dir, 'b/two'));
  t.throws(() => [...tree], { constructor: PathError, path: dir, message: `tree changed while being read: ${dir} (its first walk found 5 entries, this one 4, the last of them b: names were removed since)` });
});

t.test('after the first walk, a name that vanishes under the walk is an error naming it', async (t) => {
  const dir = path.join(tmp, 'vanishing');
  makeFilesIn(dir, { 'a/first': 'x', 'a/gone': 'x', 'b': 'y' });
  const gone = path.join(dir, 'a/gone');
  const warnings: string[] = [];
  // Called after directory a was read and before a/gone is looked at: remove it there.
  const include = (rel: string): boolean => {
    if (rel === 'a/first') fs.rmSync(gone, { force: true });
    return true;
  };
  const tree = new TreeWalk(dir, { include, onWarning: (message) => warnings.push(message) });
  t.same([...tree].map((e) => e.relPath), ['.', 'a', 'a/first', 'b'], 'the first walk skips it');
  t.same(warnings, [`skipped ${gone}: it vanished during the walk`], 'with a warning');
  fs.writeFileSync(gone, 'x');
  t.throws(() => [...tree], { constructor: PathError, path: gone, message: `cannot read ${gone}: no such file or directory` });
});

t.test('hard links: first name in walk order has the data, later names point to it', async (t) => {
  const e = byPath(walk(top));
  t.match(e.get('etc/perl-alias'), { kind: 'file', size: 12, nlink: 3 });
  t.notOk(e.get('etc/perl-alias')!.linkTarget);
  t.match(e.get('usr/bin/perl'), { kind: 'hardlink', linkTarget: 'etc/perl-alias', size: 0 });
  t.match(e.get('usr/bin/perl5.36'), { kind: 'hardlink', linkTarget: 'etc/perl-alias', size: 0 });

  // Excluding the first name hands the data to the next included one.
  const s = byPath(walk(top, { include: (rel) => rel !== 'etc/perl-alias' }));
  t.notOk(s.has('etc/perl-alias'));
  t.match(s.get('usr/bin/perl'), { kind: 'file', size: 12 });
  t.match(s.get('usr/bin/perl5.36'), { kind: 'hardlink', linkTarget: 'usr/bin/perl' });
});

t.test('include filter omits entries but still walks their children', async (t) => {
  const seen: string[] = [];
  const tree = new TreeWalk(top, {
    include: (rel, kind) => {
      seen.push(`${kind}:${rel}`);
      return rel !== 'usr' && rel !== 'usr/share/big.bin';
    },
  });
  const { fileBytes } = tree.survey();
  const entries = [...tree];
  const names = entries.map((x) => x.relPath);
  t.notOk(names.includes('usr'));
  t.notOk(names.includes('usr/share/big.bin'));
  t.ok(names.includes('usr/bin/su'), 'child of an omitted directory still listed');
  t.ok(seen.includes('dir:usr') && seen.includes('symlink:usr/bin/big') && seen.includes('chardev:dev/null'));
  t.equal(fileBytes, 20 + 70_000 + 1000 + 15 + 12);
});

t.test('sockets are skipped with a warning naming them', async (t) => {
  const dir = path.join(tmp, 'sock');
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'file'), 'x');
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(path.join(dir, 'ctl.sock'), resolve));
  t.teardown(() => server.close());
  const warnings: [string, string][] = [];
  const tree = new TreeWalk(dir, { onWarning: (message, p) => warnings.push([message, p]) });
  tree.survey();
  t.same([...tree].map((x) => x.relPath), ['.', 'file']);
  t.equal(warnings.length, 1, 'warned once, by the first walk');
  t.equal(warnings[0][1], path.join(dir, 'ctl.sock'));
  t.match(warnings[0][0], /socket .*ctl\.sock/);
});

const canUnshare = spawnSync('unshare', ['-m', 'true']).status === 0;

t.test('does not descend into another filesystem', { skip: !canUnshare && 'no private mount namespace here' }, async (t) => {
  // A tmpfs mounted in a private mount namespace, which vanishes with the child.
  const dir = path.join(tmp, 'xdev');
  fs.mkdirSync(path.join(dir, 'mnt'), { recursive: true });
  const script = `
    const { TreeWalk } = await import(${JSON.stringify(path.join(here, '../src/pipeline/walk.js'))});
    const one = [...new TreeWalk(${JSON.stringify(dir)})];
    const all = [...new TreeWalk(${JSON.stringify(dir)}, { oneFileSystem: false })];
    console.log(JSON.stringify([one.map((e) => e.relPath), all.map((e) => e.relPath)]));`;
  const child = spawnSync('unshare', ['-m', 'sh', '-c', 'mount -t tmpfs tmpfs "$1" && touch "$1/inside" && shift && exec "$@"', 'sh',
    path.join(dir, 'mnt'), NODE, ...NODE_ARGS, ...tsLoader, '--input-type=module', '-e', script], { encoding: 'utf8', env: childEnv });
  t.equal(child.status, 0, child.stderr);
  const [oneFs, all] = JSON.parse(child.stdout.trim().split('\n').pop()!);
  t.same(oneFs, ['.', 'mnt'], 'the mount point is listed, not its content');
  t.same(all, ['.', 'mnt', 'mnt/inside'], 'without oneFileSystem the mounted tree is walked');
});

t.test('an unreadable directory is a PathError naming it', async (t) => {
  const dir = path.join(tmp, 'locked');
  fs.mkdirSync(path.join(dir, 'secret'), { recursive: true });
  fs.chmodSync(dir, 0o755);
  fs.chmodSync(path.join(dir, 'secret'), 0o000);
  fs.chmodSync(tmp, 0o755);
  // Root reads everything: walk as an unprivileged user.
  const script = `
    const { TreeWalk } = await import(${JSON.stringify(path.join(here, '../src/pipeline/walk.js'))});
    try { [...new TreeWalk(${JSON.stringify(dir)})]; console.log('no error'); }
    catch (err) { console.log(JSON.stringify({ name: err.constructor.name, message: err.message, path: err.path })); }`;
  const child = spawnSync(NODE, [...NODE_ARGS, ...tsLoader, '--input-type=module', '-e', script], {
    encoding: 'utf8',
    uid: 65534,
    gid: 65534,
    cwd: '/',
    env: childEnv,
  });
  t.equal(child.status, 0, child.stderr);
  const result = JSON.parse(child.stdout.trim().split('\n').pop()!);
  t.same(result, {
    name: 'PathError',
    message: `cannot read directory ${path.join(dir, 'secret')}: permission denied`,
    path: path.join(dir, 'secret'),
  });
});

t.test('a missing root or a file as root is a PathError, at once', async (t) => {
  t.throws(() => new TreeWalk(path.join(tmp, 'nope')), { constructor: PathError, message: `cannot read ${path.join(tmp, 'nope')}: no such file or directory` });
  t.throws(() => new TreeWalk(path.join(top, 'etc/hosts')), { constructor: PathError, message: `not a directory: ${path.join(top, 'etc/hosts')}` });
});

t.test('a root that is a symbolic link to a directory is followed (cd ROOT; find .); links below it are not', async (t) => {
  const link = path.join(tmp, 'link-to-top');
  fs.symlinkSync(top, link);
  t.teardown(() => fs.rmSync(link));
  const viaLink = [...new TreeWalk(link)].map((e) => [e.relPath, e.kind, e.mode, e.size]);
  const direct = [...new TreeWalk(top)].map((e) => [e.relPath, e.kind, e.mode, e.size]);
  t.same(viaLink, direct);
  const dangling = path.join(tmp, 'link-to-nowhere');
  fs.symlinkSync(path.join(tmp, 'nowhere'), dangling);
  t.teardown(() => fs.rmSync(dangling));
  t.throws(() => new TreeWalk(dangling), { constructor: PathError, message: `cannot read ${dangling}: no such file or directory` });
});

t.test('a name that is not UTF-8 is refused at once, named with its odd bytes escaped', async (t) => {
  const dir = fs.mkdtempSync(path.join(tmp, 'latin1-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.mkdirSync(path.join(dir, 'etc'));
  fs.writeFileSync(path.join(dir, 'etc/caf\u00e9.txt'), 'UTF-8 name: fine\n');
  fs.writeFileSync(Buffer.concat([Buffer.from(`${dir}/etc/latin1-`), Buffer.from([0xe9]), Buffer.from('.txt')]), 'Latin-1 name\n');
  const where = `${dir}/etc/latin1-\\xe9.txt`;
  t.throws(() => new TreeWalk(dir).survey(), {
    constructor: PathError,
    path: where,
    message: `cannot archive ${where}: its name is not valid UTF-8 (rename it, with convmv for instance, or move it out of the tree)`,
  });

  // Left out by the caller's filter (judged by the name as decoded), it is skipped, with what lies below it.
  const manDir = Buffer.concat([Buffer.from(`${dir}/man-`), Buffer.from([0xe9])]);
  fs.mkdirSync(manDir);
  fs.writeFileSync(Buffer.concat([manDir, Buffer.from('/page.1')]), 'a page\n');
  const judged: string[] = [];
  const tree = new TreeWalk(dir, {
    include: (rel, kind) => {
      if (rel.includes('\uFFFD')) judged.push(`${kind}:${rel}`);
      return !rel.startsWith('etc/latin1-') && !rel.startsWith('man-');
    },
  });
  t.equal(tree.survey().entries, 3, 'the root, etc and the UTF-8 file');
  t.same([...tree].map((e) => e.relPath), ['.', 'etc', 'etc/caf\u00e9.txt']);
  t.same(judged.sort(), ['dir:man-\uFFFD', 'file:etc/latin1-\uFFFD.txt', 'dir:man-\uFFFD', 'file:etc/latin1-\uFFFD.txt'].sort(), 'each judged with its kind, once a walk');
  t.throws(() => new TreeWalk(dir, { include: (rel) => !rel.startsWith('etc/latin1-') }).survey(), {
    message: `cannot archive ${dir}/man-\\xe9: its name is not valid UTF-8 (rename it, with convmv for instance, or move it out of the tree)`,
  }, 'one that is kept is refused');
});

t.test('a link whose target is not UTF-8 is refused, named, rather than archived pointing elsewhere', async (t) => {
  const dir = fs.mkdtempSync(path.join(tmp, 'latin1-link-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.symlinkSync(Buffer.concat([Buffer.from('caf'), Buffer.from([0xe9])]), path.join(dir, 'lnk'));
  fs.symlinkSync('caf\u00e9', path.join(dir, 'utf8-link'));
  const where = path.join(dir, 'lnk');
  t.throws(() => new TreeWalk(dir).survey(), {
    constructor: PathError,
    path: where,
    message: `cannot archive ${where}: its link target caf\\xe9 is not valid UTF-8 (make the link again with a UTF-8 target)`,
  });
  fs.rmSync(where);
  t.same([...new TreeWalk(dir)].filter((e) => e.kind === 'symlink').map((e) => e.linkTarget), ['caf\u00e9'], 'a UTF-8 target is fine');
});
