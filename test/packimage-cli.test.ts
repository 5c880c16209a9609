import t, { type Test } from 'tap';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSampleImage } from '../src/sample/sample-image.js';
import { NODE, NODE_ARGS } from './helpers/node-command.js';
import { PACK_LOCK_NAME } from '../src/pack/lock.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const packimageJs = path.join(repo, 'dist/bin/packimage.js');
const isRoot = process.getuid?.() === 0;

interface Fixture {
  root: string;
  db: string;
  imagename: string;
  /** Real ROOTIMGDIR and its tree. */
  dir: string;
  tree: string;
}

const OLD_ARCHIVE = Buffer.from('previous packed image\n');

/**
 * A sample netboot image plus what packimage must treat with care: devices, a fifo, owners,
 * statelite leftovers, an exlist with `+` inclusions and an #INCLUDE# loop.
 */
async function makeFixture(t: Test, provmethod: 'netboot' | 'statelite' = 'netboot'): Promise<Fixture> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'packimage-'));
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  const image = await buildSampleImage({ root, provmethod });
  const db = path.join(root, 'tables.json');
  fs.writeFileSync(db, JSON.stringify({ osimage: [image.osimage], linuximage: [image.linuximage] }));
  const dir = path.join(root, image.linuximage.rootimgdir);
  const tree = path.join(dir, 'rootimg');
  const put = (rel: string, data: string | Buffer, mode = 0o644): void => {
    fs.mkdirSync(path.dirname(path.join(tree, rel)), { recursive: true });
    fs.writeFileSync(path.join(tree, rel), data);
    fs.chmodSync(path.join(tree, rel), mode);
  };
  put('usr/share/doc/pkg/README', 'docs\n');
  put('usr/share/doc/keep/KEEP', 'kept by +\n');
  put('opt/drop/file', 'dropped by the included list\n');
  put('opt/keep/file', 'kept\n');
  put('usr/bin/wall', crypto.randomBytes(3000), 0o2755);
  put('usr/lib/random.bin', crypto.randomBytes(300_000));
  // Already compressed and big enough to be stored as is, not compressed a second time.
  put('usr/lib/firmware/blob.xz', Buffer.concat([Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]), crypto.randomBytes(400_000)]));
  put('var/empty-file', '');
  put('.statelite/litefile.save', 'x\n');
  put('.default/etc/x', 'x\n');
  put('.statebackup/y', 'y\n');
  put('etc/init.d/statelite', '#!/bin/sh\n', 0o755);
  put('etc/init.d/network', '#!/bin/sh\n', 0o755);
  put('etc/rc.sysinit.backup', 'old\n');
  fs.symlinkSync('/nowhere/at/all', path.join(tree, 'etc/dangling'));
  fs.mkdirSync(path.join(tree, 'var/empty'), { mode: 0o700 });
  fs.chmodSync(path.join(tree, 'var/empty'), 0o700);
  execFileSync('mkfifo', [path.join(tree, 'var/fifo')]);
  if (isRoot) {
    fs.mkdirSync(path.join(tree, 'dev'));
    execFileSync('mknod', ['-m', '0666', path.join(tree, 'dev/null'), 'c', '1', '3']);
    execFileSync('mknod', ['-m', '0660', path.join(tree, 'dev/loop7'), 'b', '7', '7']);
    fs.chownSync(path.join(tree, 'opt/keep/file'), 1234, 5678);
  }
  fs.utimesSync(path.join(tree, 'opt/keep/file'), new Date('2001-02-03T04:05:06Z'), new Date('2001-02-03T04:05:06Z'));
  const listDir = path.join(root, path.dirname(image.linuximage.exlist));
  fs.writeFileSync(
    path.join(root, image.linuximage.exlist),
    '# the docs, but one\n./usr/share/doc*\n+./usr/share/doc/keep*   # comment\n\n#INCLUDE:more.exlist#\n',
  );
  fs.writeFileSync(path.join(listDir, 'more.exlist'), '-./opt/drop*\n#INCLUDE:compute.exlist#\n');
  return { root, db, imagename: image.imagename, dir, tree };
}

function packimage(fx: Pick<Fixture, 'root' | 'db'>, args: string[], env: NodeJS.ProcessEnv = process.env) {
  const r = spawnSync(NODE, [...NODE_ARGS, packimageJs, '--root', fx.root, '--db', fx.db, ...args], { encoding: 'utf8', env });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Paths a correct pack holds: the tree minus the exclusions, as `find .` names them. */
const EXCLUDED = [
  './usr/share/doc',
  './usr/share/doc/pkg',
  './usr/share/doc/pkg/README',
  './usr/share/doc/big.txt',
  './opt/drop',
  './opt/drop/file',
  './.statelite',
  './.statelite/litefile.save',
  './.default',
  './.default/etc',
  './.default/etc/x',
  './.statebackup',
  './.statebackup/y',
  './etc/init.d/statelite',
  './etc/rc.sysinit.backup',
];

function treePaths(tree: string): string[] {
  return execFileSync('find', ['.', '-xdev'], { cwd: tree, encoding: 'utf8' }).split('\n').filter(Boolean).sort();
}

function expectedPaths(tree: string): string[] {
  return treePaths(tree).filter((p) => !EXCLUDED.includes(p));
}

function withAncestors(paths: string[]): string[] {
  const all = new Set(paths);
  for (const p of paths) for (let d = path.posix.dirname(p); d !== '.' && !all.has(d); d = path.posix.dirname(d)) all.add(d);
  return [...all].sort();
}

interface Described {
  type: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  sha256?: string;
  target?: string;
  rdev?: number;
}

function describe(file: string, withDirMtime: boolean): Described {
  const st = fs.lstatSync(file);
  const type = st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : st.isFIFO() ? 'fifo' : st.isCharacterDevice() ? 'chr' : st.isBlockDevice() ? 'blk' : 'other';
  const d: Described = {
    type,
    mode: st.mode & 0o7777,
    uid: st.uid,
    gid: st.gid,
    size: st.isFile() ? st.size : 0,
    mtime: type === 'symlink' || (type === 'dir' && !withDirMtime) ? 0 : Math.floor(st.mtimeMs / 1000),
  };
  if (type === 'symlink') {
    d.target = fs.readlinkSync(file);
    d.mode = 0; // a symlink's own mode is not kept by every extractor
  }
  if (type === 'file') d.sha256 = crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
  if (type === 'chr' || type === 'blk') d.rdev = st.rdev;
  return d;
}

/** Unpacks a packed image with the system's tools into a new directory. */
function unpack(file: string, into: string): void {
  const name = path.basename(file);
  if (name.endsWith('.sfs')) {
    execFileSync('unsquashfs', ['-no-progress', '-quiet', '-d', into, file], { stdio: 'ignore' });
    return;
  }
  fs.mkdirSync(into);
  const tool = name.endsWith('.gz') ? 'gzip' : name.endsWith('.xz') ? 'xz' : 'zstd';
  const raw = execFileSync(tool, ['-dc', file], { maxBuffer: 1 << 30 });
  if (name.includes('.cpio.')) execFileSync('cpio', ['-idum', '--quiet'], { cwd: into, input: raw, stdio: ['pipe', 'ignore', 'inherit'] });
  else execFileSync('tar', ['-xpf', '-', '--numeric-owner'], { cwd: into, input: raw });
}

/** Member names as `find .` prints them. */
function members(file: string): string[] {
  const name = path.basename(file);
  if (name.endsWith('.sfs')) {
    const out = execFileSync('unsquashfs', ['-l', '-d', '.', file], { encoding: 'utf8' });
    return out.split('\n').filter((l) => l === '.' || l.startsWith('./')).sort();
  }
  const tool = name.endsWith('.gz') ? 'gzip' : name.endsWith('.xz') ? 'xz' : 'zstd';
  const raw = execFileSync(tool, ['-dc', file], { maxBuffer: 1 << 30 });
  const list = name.includes('.cpio.')
    ? execFileSync('cpio', ['-it', '--quiet'], { input: raw, encoding: 'utf8' })
    : execFileSync('tar', ['-tf', '-'], { input: raw, encoding: 'utf8' });
  return list
    .split('\n')
    .filter(Boolean)
    .map((m) => (m === './' ? '.' : m.replace(/\/$/, '')))
    .sort();
}

function assertPackedTree(t: Test, fx: Fixture, file: string, opts: { dirMtimes: boolean }): void {
  const expected = expectedPaths(fx.tree);
  // A filesystem cannot hold ./a/b without ./a: squashfs has the excluded parents of included paths.
  const listed = file.endsWith('.sfs') ? withAncestors(expected) : expected;
  t.same(members(file), listed, `${path.basename(file)}: members are the tree minus the exclusions`);
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'packimage-out-'));
  try {
    const into = path.join(out, 'x');
    unpack(file, into);
    for (const p of expected) {
      // The root's attributes come from the extracting tool's own directory for cpio/tar; mksquashfs
      // 4.5's tar reader keeps only the mode given to it (-root-mode) and stamps its own time.
      if (p === '.') {
        if (file.endsWith('.sfs')) t.equal(fs.statSync(into).mode & 0o7777, fs.statSync(fx.tree).mode & 0o7777, 'root mode');
        continue;
      }
      t.same(describe(path.join(into, p), opts.dirMtimes), describe(path.join(fx.tree, p), opts.dirMtimes), `${path.basename(file)}: ${p}`);
    }
    t.equal(fs.statSync(path.join(into, 'usr/bin/gzip')).ino, fs.statSync(path.join(into, 'usr/bin/gunzip')).ino, 'hard links share an inode');
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
}

function dirListing(dir: string): string[] {
  return fs.readdirSync(dir).sort();
}

t.before(() => {
  if (!fs.existsSync(packimageJs)) execFileSync('npm', ['run', 'build'], { cwd: repo, stdio: 'ignore' });
});

const FORMS: [string[], string][] = [
  [[], 'rootimg.cpio.gz'],
  [['-c', 'pigz'], 'rootimg.cpio.gz'],
  [['-m', 'cpio', '-c', 'zstd'], 'rootimg.cpio.zst'],
  [['-c', 'xz', '-j', '2'], 'rootimg.cpio.xz'],
  [['-m', 'tar'], 'rootimg.tar.gz'],
  [['--method=tar', '--compress=zstd', '--level', '5'], 'rootimg.tar.zst'],
  [['-m', 'tar', '-c', 'xz'], 'rootimg.tar.xz'],
  [['-m', 'squashfs'], 'rootimg.sfs'],
  [['-m', 'squashfs', '-c', 'zstd'], 'rootimg.sfs'],
];

for (const [args, produced] of FORMS) {
  t.test(`packimage ${args.join(' ') || '(defaults)'} -> ${produced}`, async (t) => {
    const fx = await makeFixture(t);
    // Leftovers of other methods, all to be replaced; the tree itself must stay.
    for (const old of ['rootimg.gz', 'rootimg.tar.gz', 'rootimg.sfs', 'rootimg.cpio.zst']) fs.writeFileSync(path.join(fx.dir, old), OLD_ARCHIVE);
    const before = treePaths(fx.tree);
    const r = packimage(fx, [...args, fx.imagename]);
    t.equal(r.code, 0, r.stderr);
    t.match(r.stdout, `Packing contents of ${path.posix.join('/install/netboot/rhels8.5.0/x86_64/compute', 'rootimg')}`);
    const file = path.join(fx.dir, produced);
    t.equal(fs.statSync(file).mode & 0o777, 0o644, 'mode 0644');
    t.same(dirListing(fx.dir), ['initrd-stateless.gz', 'kernel', 'rootimg', produced].sort(), 'old forms and temporary files gone');
    t.same(treePaths(fx.tree), before, 'the tree is not modified');
    // GNU cpio -idum sets a directory's mtime before filling it, so only tar and squashfs show them.
    assertPackedTree(t, fx, file, { dirMtimes: !produced.includes('.cpio.') });
    const stored = /, ([\d.]+) KiB of it stored as is\)/.exec(r.stdout);
    if (produced.endsWith('.gz') || produced.endsWith('.zst')) {
      // The 400 kB .xz file is stored; the other files compress (the 300 kB of random data goes through the compressor).
      t.ok(stored && Number(stored[1]) >= 390 && Number(stored[1]) < 500, `the .xz file is stored as is, nothing more: ${r.stdout}`);
    } else t.equal(stored, null, 'an external program compressed: no stored figure');
  });
}

t.test('a tree spanning filesystems packs only the first (-xdev)', { skip: !isRoot && 'needs root to mount' }, async (t) => {
  const fx = await makeFixture(t);
  const mnt = path.join(fx.tree, 'proc');
  fs.mkdirSync(mnt);
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt], { stdio: 'ignore' });
  } catch {
    t.skip('cannot mount tmpfs here');
    return;
  }
  let r;
  try {
    fs.writeFileSync(path.join(mnt, 'cpuinfo'), 'other filesystem\n');
    r = packimage(fx, [fx.imagename]);
  } finally {
    execFileSync('umount', [mnt]);
  }
  t.equal(r.code, 0, r.stderr);
  const listed = members(path.join(fx.dir, 'rootimg.cpio.gz'));
  t.ok(listed.includes('./proc'), 'the mount point is packed');
  t.notOk(listed.includes('./proc/cpuinfo'), 'its contents are not');
});

t.test('owner ids beyond ustar fields and times before 1970: tar keeps both (pax records), squashfs the ids; cpio and squashfs refuse such a time, naming the file', { skip: !isRoot && 'needs root to chown' }, async (t) => {
  const fx = await makeFixture(t);
  fs.writeFileSync(path.join(fx.tree, 'bigid'), 'directory-service owner\n');
  fs.chownSync(path.join(fx.tree, 'bigid'), 3_000_000, 3_000_001);
  let r = packimage(fx, ['-m', 'squashfs', fx.imagename]);
  t.equal(r.code, 0, r.stderr);
  t.match(execFileSync('unsquashfs', ['-lln', '-d', '.', path.join(fx.dir, 'rootimg.sfs')], { encoding: 'utf8' }), / 3000000\/3000001 .* \.\/bigid\n/);

  fs.writeFileSync(path.join(fx.tree, 'old'), 'from 1969\n');
  execFileSync('touch', ['-d', '@-100000', path.join(fx.tree, 'old')]); // fs.utimes takes a negative time as now
  const sfs = fs.readFileSync(path.join(fx.dir, 'rootimg.sfs'));
  for (const [method, why] of [['cpio', 'does not fit in a cpio newc header'], ['squashfs', 'is outside what mksquashfs takes (1970 to 2038)']]) {
    r = packimage(fx, ['-m', method, fx.imagename]);
    t.equal(r.code, 1, method);
    t.match(r.stderr, `\nError: cannot archive ${path.join(fx.tree, 'old')}: its mtime -100000 ${why}\n`, method);
  }
  t.ok(fs.readFileSync(path.join(fx.dir, 'rootimg.sfs')).equals(sfs), 'the previous archive is kept');

  r = packimage(fx, ['-m', 'tar', fx.imagename]);
  t.equal(r.code, 0, r.stderr);
  const into = fs.mkdtempSync(path.join(os.tmpdir(), 'packimage-pax-'));
  t.teardown(() => fs.rmSync(into, { recursive: true, force: true }));
  execFileSync('tar', ['-xzf', path.join(fx.dir, 'rootimg.tar.gz'), '-C', into, '--numeric-owner', './bigid', './old']);
  const big = fs.statSync(path.join(into, 'bigid'));
  t.same([big.uid, big.gid], [3_000_000, 3_000_001], 'owner ids as they were');
  t.equal(fs.statSync(path.join(into, 'old')).mtimeMs, -100_000_000, 'a time before 1970 as it was');

  // From 2038 on: tar-stream's own field overflows 32 bits; the pax record carries it.
  fs.rmSync(path.join(fx.tree, 'old'));
  for (const [name, seconds] of [['y2038', 2 ** 31], ['y2100', 4_102_444_800]] as const) {
    fs.writeFileSync(path.join(fx.tree, name), `${name}\n`);
    execFileSync('touch', ['-d', `@${seconds}`, path.join(fx.tree, name)]);
  }
  r = packimage(fx, ['-m', 'tar', fx.imagename]);
  t.equal(r.code, 0, r.stderr);
  execFileSync('tar', ['-xzf', path.join(fx.dir, 'rootimg.tar.gz'), '-C', into, './y2038', './y2100']);
  t.equal(fs.statSync(path.join(into, 'y2038')).mtimeMs / 1000, 2 ** 31, '2038 as it was');
  t.equal(fs.statSync(path.join(into, 'y2100')).mtimeMs / 1000, 4_102_444_800, '2100 as it was');
  r = packimage(fx, ['-m', 'squashfs', fx.imagename]);
  t.equal(r.code, 1);
  t.match(r.stderr, `cannot archive ${path.join(fx.tree, 'y2038')}: its mtime 2147483648 is outside what mksquashfs takes (1970 to 2038)`);
});

t.test('an image packed with zstd exports: rootimg.cpio.zst travels in the bundle, stored as it is', async (t) => {
  const fx = await makeFixture(t);
  const r = packimage(fx, ['-c', 'zstd', fx.imagename]);
  t.equal(r.code, 0, r.stderr);
  const bundle = path.join(fx.root, 'image.tgz');
  const exported = spawnSync(NODE, [...NODE_ARGS, path.join(repo, 'dist/bin/imgexport.js'), fx.imagename, bundle, '--root', fx.root, '--db', fx.db], { encoding: 'utf8' });
  t.equal(exported.status, 0, exported.stderr);
  const member = `./${fx.imagename}/rootimg.cpio.zst`;
  const inBundle = execFileSync('tar', ['-xzf', bundle, '-O', member]);
  t.ok(inBundle.equals(fs.readFileSync(path.join(fx.dir, 'rootimg.cpio.zst'))), 'the packed image, byte for byte');
  t.match(execFileSync('tar', ['-xzf', bundle, '-O', `./${fx.imagename}/manifest.xml`], { encoding: 'utf8' }), `<rootimg>/install/netboot/rhels8.5.0/x86_64/compute/rootimg.cpio.zst</rootimg>`);
});

t.test("a killed pack's temporary file is removed by the next pack, whatever the forms; a live one's is left", async (t) => {
  const fx = await makeFixture(t);
  const dead = ['.rootimg.sfs.tmp-3999999-deadbeef', '.rootimg.cpio.zst.tmp-3999999-0badf00d', '.rootimg.tar.xz.tmp-3999998-12345678'];
  const live = `.rootimg.sfs.tmp-${process.pid}-feedface`;
  for (const name of [...dead, live]) fs.writeFileSync(path.join(fx.dir, name), 'half an image');
  const r = packimage(fx, ['-m', 'cpio', '-c', 'gzip', fx.imagename]);
  t.equal(r.code, 0, r.stderr);
  t.same(fs.readdirSync(fx.dir).filter((n) => n.startsWith('.')), [live]);
});

t.test('obsolete -o/-p/-a are refused with xCAT message', async (t) => {
  const fx = { root: os.tmpdir(), db: path.join(os.tmpdir(), 'none.json') };
  for (const flag of ['-o', '-p', '-a']) {
    const r = packimage(fx, [flag, 'x', 'img']);
    t.equal(r.code, 1, flag);
    t.equal(r.stderr, "Error: -o, -p and -a options are obsoleted, please use 'packimage <osimage name>' instead.\n", flag);
  }
});

t.test('images that cannot be packed are refused with xCAT messages', async (t) => {
  const fx = await makeFixture(t, 'statelite');
  let r = packimage(fx, [fx.imagename]);
  t.equal(r.code, 1);
  t.equal(r.stderr, `Error: '${fx.imagename}' cannot be used to build diskless image. Make sure osimage.provmethod is 'netboot'.\n`);
  const noLinuximage = { root: fx.root, db: path.join(fx.root, 'osimage-only.json') };
  const rows = JSON.parse(fs.readFileSync(fx.db, 'utf8'));
  fs.writeFileSync(noLinuximage.db, JSON.stringify({ osimage: [{ ...rows.osimage[0], provmethod: 'netboot' }] }));
  r = packimage(noLinuximage, [fx.imagename]);
  t.equal(r.code, 1);
  t.equal(r.stderr, `Error: Cannot find ${fx.imagename} from the linuximage table.\n`);
  const disabled = { root: fx.root, db: path.join(fx.root, 'disabled.json') };
  fs.writeFileSync(disabled.db, JSON.stringify({ ...rows, osimage: [{ ...rows.osimage[0], provmethod: 'netboot', disable: '1' }] }));
  r = packimage(disabled, [fx.imagename]);
  t.equal(r.stderr, `Error: Cannot find image '${fx.imagename}' from the osimage table.\n`, 'a disabled osimage row is no image');
  r = packimage(fx, ['no-such-image']);
  t.equal(r.code, 1);
  t.equal(r.stderr, "Error: Cannot find image 'no-such-image' from the osimage table.\n");
  r = packimage(fx, []);
  t.equal(r.code, 1);
  t.match(r.stderr, "Error: An image name is required, use 'packimage <osimage name>'.");
  r = packimage(fx, ['-m', 'zip', fx.imagename]);
  t.equal(r.code, 1);
  t.match(r.stderr, "Invalid archive method 'zip' requested");
});

t.test('a missing tree names genimage; -v and -h answer', async (t) => {
  const fx = await makeFixture(t);
  fs.rmSync(fx.tree, { recursive: true });
  let r = packimage(fx, [fx.imagename]);
  t.equal(r.code, 1);
  t.equal(r.stderr, 'Error: /install/netboot/rhels8.5.0/x86_64/compute/rootimg does not exist, run genimage -o rhels8.5.0 -p compute on a server with matching architecture\n');
  r = packimage(fx, ['-v']);
  t.equal(r.code, 0);
  const { version } = JSON.parse(fs.readFileSync(path.join(repo, 'package.json'), 'utf8')) as { version: string };
  t.equal(r.stdout, `packimage (imgport) ${version}\n`, 'the bundled command finds package.json');
  r = packimage(fx, ['-h']);
  t.equal(r.code, 0);
  t.match(r.stdout, '[-m| --method=cpio|tar|squashfs]');
});

t.test('ROOTIMGDIR defaults to INSTALLDIR/netboot/OSVERS/OSARCH/PROFILE; --nosyncfiles is said', async (t) => {
  const fx = await makeFixture(t);
  const tables = JSON.parse(fs.readFileSync(fx.db, 'utf8'));
  delete tables.linuximage[0].rootimgdir;
  tables.site = [{ key: 'installdir', value: '/srv/inst' }];
  fs.writeFileSync(fx.db, JSON.stringify(tables));
  const moved = path.join(fx.root, 'srv/inst/netboot/rhels8.5.0/x86_64/compute');
  fs.mkdirSync(path.dirname(moved), { recursive: true });
  fs.renameSync(fx.dir, moved);
  const r = packimage(fx, ['--nosyncfiles', '--verbose', '-m', 'tar', '-c', 'zstd', fx.imagename]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, 'Bypass of syncfiles requested');
  t.match(r.stdout, 'Packing contents of /srv/inst/netboot/rhels8.5.0/x86_64/compute/rootimg');
  t.ok(fs.existsSync(path.join(moved, 'rootimg.tar.zst')));
  t.notOk(fs.existsSync(path.join(moved, 'rootimg.cpio.gz')), 'the previous packed form is gone');
});

/** PATH holding only the named programs (and what node needs: nothing). */
function pathWith(t: Test, programs: Record<string, string>): string {
  const bin = fs.mkdtempSync(path.join(os.tmpdir(), 'packimage-bin-'));
  t.teardown(() => fs.rmSync(bin, { recursive: true, force: true }));
  for (const [name, script] of Object.entries(programs)) {
    fs.writeFileSync(path.join(bin, name), script, { mode: 0o755 });
  }
  return bin;
}

function assertOldArchiveKept(t: Test, fx: Fixture, previous: Buffer): void {
  t.same(fs.readFileSync(path.join(fx.dir, 'rootimg.cpio.gz')), previous, 'the previous archive is untouched');
  t.same(dirListing(fx.dir), ['initrd-stateless.gz', 'kernel', 'rootimg', 'rootimg.cpio.gz'], 'no temporary file left');
}

t.test('missing xz or mksquashfs: clear error, nothing changed', async (t) => {
  const fx = await makeFixture(t);
  const previous = fs.readFileSync(path.join(fx.dir, 'rootimg.cpio.gz'));
  const env = { ...process.env, PATH: pathWith(t, {}) };
  let r = packimage(fx, ['-c', 'xz', fx.imagename], env);
  t.equal(r.code, 1);
  t.match(r.stderr, /^Error: xz not found in PATH/);
  r = packimage(fx, ['-m', 'squashfs', fx.imagename], env);
  t.equal(r.code, 1);
  t.match(r.stderr, /^Error: mksquashfs not found in PATH/);
  assertOldArchiveKept(t, fx, previous);
});

t.test('a compressor failing midway leaves the previous archive and no temporary file', async (t) => {
  const fx = await makeFixture(t);
  const previous = fs.readFileSync(path.join(fx.dir, 'rootimg.cpio.gz'));
  const bin = pathWith(t, { xz: '#!/bin/sh\nhead -c 5000 >/dev/null\necho "xz: out of cheese" >&2\nexit 3\n' });
  const r = packimage(fx, ['-c', 'xz', fx.imagename], { ...process.env, PATH: `${bin}:${process.env.PATH}` });
  t.equal(r.code, 1);
  t.match(r.stderr, 'xz exited with status 3: xz: out of cheese');
  assertOldArchiveKept(t, fx, previous);
});

t.test('a compressor that exits 0 without reading all its input fails the pack: the previous archive stays', async (t) => {
  const fx = await makeFixture(t);
  fs.writeFileSync(path.join(fx.tree, 'var/big.bin'), crypto.randomBytes(2 << 20)); // more than a pipe holds
  const previous = fs.readFileSync(path.join(fx.dir, 'rootimg.cpio.gz'));
  const bin = pathWith(t, { xz: '#!/bin/sh\nhead -c 100000 | gzip -c\nexit 0\n' });
  const r = packimage(fx, ['-c', 'xz', fx.imagename], { ...process.env, PATH: `${bin}:${process.env.PATH}` });
  t.equal(r.code, 1);
  t.match(r.stderr, /^Error: xz exited before it had read all of its input$/m);
  assertOldArchiveKept(t, fx, previous);
});

t.test('a second packimage of the same root image directory is refused at once while one runs; a dead one\'s lock is broken', async (t) => {
  const fx = await makeFixture(t);
  const previous = fs.readFileSync(path.join(fx.dir, 'rootimg.cpio.gz'));
  const holder = spawn('sleep', ['60']);
  t.teardown(() => void holder.kill());
  const lock = path.join(fx.dir, PACK_LOCK_NAME);
  fs.writeFileSync(lock, `${holder.pid}\n`);
  const r = packimage(fx, ['-c', 'zstd', fx.imagename]);
  t.equal(r.code, 1);
  t.match(r.stderr, new RegExp(`^Error: cannot pack ${fx.imagename}: .* is being packed by process ${holder.pid} \\(lock .*${PACK_LOCK_NAME}\\); try again when it has finished$`, 'm'));
  t.ok(fs.readFileSync(path.join(fx.dir, 'rootimg.cpio.gz')).equals(previous), 'the previous archive untouched');
  t.same(dirListing(fx.dir), [PACK_LOCK_NAME, 'initrd-stateless.gz', 'kernel', 'rootimg', 'rootimg.cpio.gz'], 'nothing written, the lock left to its holder');
  holder.kill();
  await once(holder, 'close');
  const after = packimage(fx, ['-c', 'zstd', fx.imagename]);
  t.equal(after.code, 0, after.stderr);
  t.same(dirListing(fx.dir), ['initrd-stateless.gz', 'kernel', 'rootimg', 'rootimg.cpio.zst'], 'packed, the lock gone');
});

t.test('a file changing size during the pack fails it and leaves the previous archive', async (t) => {
  const fx = await makeFixture(t);
  const previous = fs.readFileSync(path.join(fx.dir, 'rootimg.cpio.gz'));
  const growing = path.join(fx.tree, 'var/log/huge.log');
  // Sparse: costs no disk, but takes long enough to read that it can change under the reader.
  fs.closeSync(fs.openSync(growing, 'w'));
  fs.truncateSync(growing, 3 * 1024 ** 3);
  const child = spawn(NODE, [...NODE_ARGS, packimageJs, '--root', fx.root, '--db', fx.db, '--level', '1', fx.imagename], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  let running = true;
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => {
    running = false;
    resolve(code);
  }));
  // Once data flows into the temporary file, the big file is being read: shrink it.
  while (running) {
    const tmp = fs.readdirSync(fx.dir).find((n) => n.startsWith('.rootimg.cpio.gz.tmp'));
    if (tmp && fs.statSync(path.join(fx.dir, tmp), { throwIfNoEntry: false })?.size) break;
    await new Promise((r) => setTimeout(r, 5));
  }
  fs.truncateSync(growing, 1000);
  t.equal(await exited, 1, 'the pack fails');
  t.match(stderr, 'huge.log');
  fs.rmSync(growing);
  assertOldArchiveKept(t, fx, previous);
});

t.test('SIGTERM removes the temporary file and keeps the previous archive', async (t) => {
  const fx = await makeFixture(t);
  const previous = fs.readFileSync(path.join(fx.dir, 'rootimg.cpio.gz'));
  const big = path.join(fx.tree, 'var/log/huge.log');
  fs.closeSync(fs.openSync(big, 'w'));
  fs.truncateSync(big, 3 * 1024 ** 3);
  const child = spawn(NODE, [...NODE_ARGS, packimageJs, '--root', fx.root, '--db', fx.db, fx.imagename], { stdio: 'ignore' });
  let running = true;
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => {
    running = false;
    resolve(code);
  }));
  while (running && !fs.readdirSync(fx.dir).some((n) => n.startsWith('.rootimg.cpio.gz.tmp'))) {
    await new Promise((r) => setTimeout(r, 5));
  }
  child.kill('SIGTERM');
  t.equal(await exited, 1);
  fs.rmSync(big);
  assertOldArchiveKept(t, fx, previous);
});

t.test('a name that is not UTF-8 is refused, unless the exlist leaves it out', async (t) => {
  const fx = await makeFixture(t);
  const latin1 = Buffer.concat([Buffer.from(path.join(fx.tree, 'opt/drop/caf')), Buffer.from([0xe9])]);
  fs.mkdirSync(latin1);
  fs.writeFileSync(Buffer.concat([latin1, Buffer.from('/x')]), 'under a Latin-1 name\n');
  let r = packimage(fx, [fx.imagename]);
  t.equal(r.code, 0, `./opt/drop* is excluded, with what is below it: ${r.stderr}`);
  t.notOk(members(path.join(fx.dir, 'rootimg.cpio.gz')).some((m) => m.startsWith('./opt/drop')), 'none of it packed');
  fs.renameSync(latin1, Buffer.concat([Buffer.from(path.join(fx.tree, 'opt/caf')), Buffer.from([0xe9])]));
  r = packimage(fx, [fx.imagename]);
  t.equal(r.code, 1, 'kept, it is refused');
  t.match(r.stderr, `Error: cannot archive ${path.join(fx.tree, 'opt/caf')}\\xe9: its name is not valid UTF-8`);
});

t.test('SIGTERM stops the compressor program too: no xz left running on its own', async (t) => {
  const fx = await makeFixture(t);
  const previous = fs.readFileSync(path.join(fx.dir, 'rootimg.cpio.gz'));
  const pidFile = path.join(fx.root, 'xz.pid');
  // Stand-in xz: says who it is, then reads slowly (as a real one does a big tree), never ending by itself.
  const bin = pathWith(t, { xz: `#!/bin/sh\necho $$ > '${pidFile}'\nwhile :; do head -c 1 >/dev/null; sleep 1; done\n` });
  const child = spawn(NODE, [...NODE_ARGS, packimageJs, '--root', fx.root, '--db', fx.db, '-c', 'xz', fx.imagename], {
    stdio: 'ignore', env: { ...process.env, PATH: `${bin}:${process.env.PATH}` },
  });
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  while (!fs.existsSync(pidFile) || fs.readFileSync(pidFile, 'utf8').trim() === '') await new Promise((r) => setTimeout(r, 5));
  const xzPid = Number(fs.readFileSync(pidFile, 'utf8'));
  child.kill('SIGTERM');
  t.equal(await exited, 1, 'packimage exits 1');
  let alive = true;
  try {
    process.kill(xzPid, 0);
  } catch {
    alive = false;
  }
  if (alive) process.kill(xzPid, 'SIGKILL');
  t.notOk(alive, 'the compressor was stopped before packimage exited');
  assertOldArchiveKept(t, fx, previous);
});

t.test('what a tar header or mksquashfs cannot hold is refused, naming the file', { skip: !isRoot && 'needs root for mknod' }, async (t) => {
  const fx = await makeFixture(t);
  const previous = fs.readFileSync(path.join(fx.dir, 'rootimg.cpio.gz'));
  const device = path.join(fx.tree, 'dev/bigminor');
  fs.mkdirSync(path.dirname(device), { recursive: true });
  execFileSync('mknod', [device, 'c', '240', '300000']);
  let r = packimage(fx, ['-m', 'tar', fx.imagename]);
  t.equal(r.code, 1, 'tar: refused');
  t.match(r.stderr, `Error: cannot archive ${device}: its device numbers 240, 300000 do not fit a tar header (262143 at most); a cpio archive holds them (packimage -m cpio)`);
  assertOldArchiveKept(t, fx, previous);
  r = packimage(fx, ['-m', 'cpio', fx.imagename]);
  t.equal(r.code, 0, 'cpio holds it');
  t.match(execFileSync('sh', ['-c', 'zcat "$1" | cpio -itv --quiet', 'sh', path.join(fx.dir, 'rootimg.cpio.gz')], { encoding: 'utf8' }), /240,\s*300000 .* \.\/dev\/bigminor/, 'with its numbers');
  fs.rmSync(device);

  // An absolute link target longer than 100 bytes: mksquashfs would keep it without its leading /.
  const target = `/${'x/'.repeat(60)}end`;
  fs.symlinkSync(target, path.join(fx.tree, 'longlink'));
  const cpio = fs.readFileSync(path.join(fx.dir, 'rootimg.cpio.gz'));
  r = packimage(fx, ['-m', 'squashfs', fx.imagename]);
  t.equal(r.code, 1, 'squashfs: refused');
  t.match(r.stderr, `Error: cannot archive ${path.join(fx.tree, 'longlink')}: mksquashfs drops the leading / of an absolute link target longer than 100 bytes`);
  t.ok(fs.readFileSync(path.join(fx.dir, 'rootimg.cpio.gz')).equals(cpio), 'the previous archive kept');
  fs.symlinkSync('/short/target', path.join(fx.tree, 'shortlink'));
  fs.rmSync(path.join(fx.tree, 'longlink'));
  r = packimage(fx, ['-m', 'squashfs', fx.imagename]);
  t.equal(r.code, 0, r.stderr);
  t.match(execFileSync('unsquashfs', ['-lls', '-d', '.', path.join(fx.dir, 'rootimg.sfs')], { encoding: 'utf8' }), / \.\/shortlink -> \/short\/target\n/, 'a short absolute target kept whole');
});

t.test("run through its #! line, the command gets glibc malloc settings and the programs it runs do not", async (t) => {
  const fx = await makeFixture(t);
  const seen = path.join(fx.root, 'seen');
  // A stand-in xz that records its own environment and its parent's (the command), then is xz.
  const realXz = spawnSync('sh', ['-c', 'command -v xz'], { encoding: 'utf8' }).stdout.trim();
  const bin = pathWith(t, { xz: `#!/bin/sh\nenv > '${seen}.xz'\ntr '\\0' '\\n' < /proc/$PPID/environ > '${seen}.parent'\nexec '${realXz}' "$@"\n` });
  const r = spawnSync(packimageJs, ['--root', fx.root, '--db', fx.db, '-c', 'xz', fx.imagename], { encoding: 'utf8', env: { ...process.env, PATH: `${bin}:${process.env.PATH}` } });
  t.equal(r.status, 0, r.stderr);
  const settings = (file: string) => fs.readFileSync(file, 'utf8').split('\n').filter((line) => line.startsWith('MALLOC_')).sort();
  t.same(settings(`${seen}.parent`), ['MALLOC_ARENA_MAX=1', 'MALLOC_MMAP_THRESHOLD_=4194304', 'MALLOC_TRIM_THRESHOLD_=16777216'], 'the command');
  t.same(settings(`${seen}.xz`), [], 'xz');
  const listed = spawnSync('sh', ['-c', 'xz -dc "$1" | cpio -it --quiet', 'sh', path.join(fx.dir, 'rootimg.cpio.xz')], { encoding: 'utf8' });
  t.ok(listed.stdout.split('\n').includes('./etc/init.d/network'), 'and the archive is whole');
});

t.test('squashfs: files that share their first block are packed readable, pack after pack (mksquashfs tar mode without -no-duplicates corrupted them)', async (t) => {
  const fx = await makeFixture(t);
  // Logs of one repeated line, 128-186 KiB: the same first 128 KiB block, different lengths.
  fs.mkdirSync(path.join(fx.tree, 'var/log/app'), { recursive: true });
  for (let i = 0; i < 60; i++) {
    const line = `2026-11-26 12:00:00 node${i % 5} service started ok\n`;
    fs.writeFileSync(path.join(fx.tree, 'var/log/app', `log${String(i).padStart(3, '0')}`), line.repeat(5000).slice(0, 131_073 + 997 * i));
  }
  const sfs = path.join(fx.dir, 'rootimg.sfs');
  for (let pack = 1; pack <= 8; pack++) {
    const r = packimage(fx, ['-m', 'squashfs', fx.imagename]);
    t.equal(r.code, 0, r.stderr);
    const into = path.join(fx.root, `unpacked-${pack}`);
    const check = spawnSync('unsquashfs', ['-no-progress', '-quiet', '-d', into, sfs], { encoding: 'utf8' });
    t.equal(check.status, 0, `pack ${pack}: unsquashfs reads every file (${check.stderr.trim()})`);
    t.equal(fs.readFileSync(path.join(into, 'var/log/app/log059')).length, 131_073 + 997 * 59);
    fs.rmSync(into, { recursive: true, force: true });
  }
});

t.test('squashfs: a fifo or a directory where rootimg.sfs goes is refused before packing, as the other methods refuse it', async (t) => {
  const fx = await makeFixture(t);
  const sfs = path.join(fx.dir, 'rootimg.sfs');
  execFileSync('mkfifo', [sfs]);
  let r = packimage(fx, ['-m', 'squashfs', fx.imagename]);
  t.equal(r.code, 1);
  t.match(r.stderr, `\nError: cannot write ${sfs}: it exists and is not a regular file\n`);
  t.ok(fs.lstatSync(sfs).isFIFO(), 'the fifo is left as it was');
  fs.rmSync(sfs);
  fs.mkdirSync(sfs);
  r = packimage(fx, ['-m', 'squashfs', fx.imagename]);
  t.match(r.stderr, `\nError: cannot write ${sfs}: it exists and is not a regular file\n`);
  t.ok(fs.statSync(sfs).isDirectory());
});

t.test('a relative rootimgdir or exlist, and a level or thread count that is not plain digits, are refused naming them', async (t) => {
  const fx = await makeFixture(t);
  const rows = JSON.parse(fs.readFileSync(fx.db, 'utf8'));
  const edited = { root: fx.root, db: path.join(fx.root, 'relative.json') };
  for (const [column, value] of [['rootimgdir', 'install/netboot/rhels8.5.0/x86_64/compute'], ['exlist', '/install/custom/a.exlist,custom/x.exlist']]) {
    fs.writeFileSync(edited.db, JSON.stringify({ ...rows, linuximage: [{ ...rows.linuximage[0], [column]: value }] }));
    const r = packimage(edited, [fx.imagename]);
    t.equal(r.code, 1);
    t.equal(r.stderr, `Error: linuximage.${column} of ${fx.imagename} names '${value.split(',').pop()}', which is not an absolute path\n`);
  }
  const before = fs.readdirSync(fx.dir).map((name) => [name, fs.statSync(path.join(fx.dir, name)).mtimeMs]);
  for (const [option, value, range] of [['--level', '', '0 to 22'], ['--level', '0x3', '0 to 22'], ['--level', '9e0', '0 to 22'], ['--threads', ' 2', '1 to 256']]) {
    const r = packimage(fx, [`${option}=${value}`, fx.imagename]);
    t.equal(r.code, 1, `${option}=${value}`);
    t.match(r.stderr, `${option} must be an integer from ${range}, not '${value}'`);
  }
  t.same(fs.readdirSync(fx.dir).map((name) => [name, fs.statSync(path.join(fx.dir, name)).mtimeMs]), before, 'nothing packed');
});
