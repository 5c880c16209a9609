/**
 * A destination filesystem that fills up (a 20 MiB tmpfs): imgimport, imgexport and packimage
 * stop with a clear error and lose nothing: the earlier image, bundle or packed archive and the
 * tables stay as they were, and no staging or temporary file is left behind.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import t from 'tap';
import { buildSampleImage } from '../src/sample/sample-image.js';
import { craftNewc, DIR, FILE } from './helpers/cpio-craft.js';
import { describeTree, pseudoRandom, put, runImgexport, tempDir, writeTables } from './helpers/export-bundle.js';
import { HOSTILE_IMAGE } from './helpers/hostile-bundles.js';
import { temporariesBeside, treeWithoutLeftovers } from './helpers/hostile-faults.js';
import { freeBytes, mountTmpfs } from './helpers/hostile-fs.js';
import { ourBundle } from './helpers/import-bundles.js';
import { IMGPORT, makeSandbox } from './helpers/import-sandbox.js';
import { NODE, NODE_ARGS } from './helpers/node-command.js';

const FULL = /no space left on device|ENOSPC|not enough room/i;
const PACKIMAGE = path.resolve('dist/bin/packimage.js');

/** Log-like text: compresses about tenfold, so a small bundle unpacks to more than the disk holds. */
function logText(size: number): Buffer {
  const line = (i: number) => `${String(i).padStart(8, '0')} node${i % 97} systemd[1]: Started session ${i * 7919 % 100003} of user root.\n`;
  const lines: string[] = [];
  for (let i = 0, length = 0; length < size; i++) length += (lines[i] = line(i)).length;
  return Buffer.from(lines.join('')).subarray(0, size);
}

t.test('imgimport: the statelite tree outgrows INSTALLDIR while it unpacks', async (t) => {
  const sandbox = makeSandbox(t);
  const install = path.join(sandbox.root, 'install');
  const why = mountTmpfs(t, install, '20m');
  if (why) return t.skip(why);
  fs.mkdirSync(path.join(install, 'rhels8.5.0/x86_64'), { recursive: true });
  const bundles = tempDir(t, 'imgport-full-');
  fs.writeFileSync(path.join(bundles, 'old.tgz'), (await ourBundle('statelite.tgz')).data);
  t.equal(sandbox.run([path.join(bundles, 'old.tgz')]).code, 0, 'the earlier image is installed');
  const before = describeTree(sandbox.root);
  const tables = fs.readFileSync(sandbox.db);
  const free = freeBytes(install);
  const tree = gzipSync(craftNewc([{ name: 'rootimg', mode: DIR }, { name: 'rootimg/var/log/messages', mode: FILE, body: logText(24 << 20) }]));
  fs.writeFileSync(path.join(bundles, 'big.tgz'), (await ourBundle('statelite.tgz', (members) => {
    members.find((m) => m.name === `./${HOSTILE_IMAGE}/rootimgtree.gz`)!.data = tree;
  })).data);
  const r = sandbox.run([path.join(bundles, 'big.tgz')]);
  t.equal(r.code, 1, 'exit code 1');
  t.match(r.stderr, FULL, 'says the disk is full');
  t.match(r.stderr, 'rootimg', 'names where');
  t.notMatch(r.stderr, /\n\s+at /, 'no stack trace');
  t.same(describeTree(sandbox.root), before, 'the earlier image intact, no staging left');
  t.ok(fs.readFileSync(sandbox.db).equals(tables), 'tables byte-identical');
  t.equal(freeBytes(install), free, 'all the space given back');
});

/**
 * A sandbox whose /var/lib/imgport (tables, import locks and journals) is a 1 MiB tmpfs, and a
 * bundle to import into it; undefined (the test skipped) where no tmpfs can be mounted.
 */
async function stateOnTmpfs(t: Tap.Test): Promise<{ sandbox: ReturnType<typeof makeSandbox>; bundle: string; state: string } | undefined> {
  const sandbox = makeSandbox(t);
  const bundle = path.join(tempDir(t, 'imgport-full-'), 'new.tgz');
  fs.writeFileSync(bundle, (await ourBundle('statelite.tgz')).data);
  const state = path.dirname(sandbox.db);
  const tables = fs.readFileSync(sandbox.db);
  const why = mountTmpfs(t, state, '1m');
  if (why) {
    t.skip(why);
    return undefined;
  }
  fs.writeFileSync(sandbox.db, tables);
  return { sandbox, bundle, state };
}

t.test('imgimport: the disk of its lock and journal (/var/lib/imgport) is full, not the bundle damaged', async (t) => {
  const setup = await stateOnTmpfs(t);
  if (!setup) return;
  const { sandbox, bundle, state } = setup;
  fs.mkdirSync(path.join(state, 'imports'));
  const filler = fs.openSync(path.join(state, 'filler'), 'w');
  try {
    for (;;) fs.writeSync(filler, Buffer.alloc(64 * 1024));
  } catch (err) {
    t.equal((err as NodeJS.ErrnoException).code, 'ENOSPC', 'the state directory is full');
  } finally {
    fs.closeSync(filler);
  }
  const before = describeTree(sandbox.root);
  const r = sandbox.run([bundle]);
  t.equal(r.code, 1, 'exit code 1');
  t.match(r.stderr, /cannot take the lock .*\/imports\/.*: no space left on device/, 'says the lock cannot be written, and why');
  t.notMatch(r.stderr, /damaged|truncated/, 'not blamed on the bundle');
  t.notMatch(r.stderr, /\n\s+at /, 'no stack trace');
  t.same(describeTree(sandbox.root), before, 'nothing changed, no claim file left beside the lock');
});

t.test('imgimport and imgport recover: /var/lib/imgport read-only (a filesystem remounted after errors)', async (t) => {
  const setup = await stateOnTmpfs(t);
  if (!setup) return;
  const { sandbox, bundle, state } = setup;
  t.equal(spawnSync('mount', ['-o', 'remount,ro', state]).status, 0, 'remounted read-only');
  const before = describeTree(sandbox.root);
  const imported = sandbox.run([bundle]);
  const recovered = spawnSync(NODE, [...NODE_ARGS, IMGPORT, 'recover', HOSTILE_IMAGE, '--root', sandbox.root], { encoding: 'utf8' });
  for (const [what, r] of [['imgimport', { code: imported.code, stderr: imported.stderr }], ['imgport recover', { code: recovered.status, stderr: recovered.stderr }]] as const) {
    t.equal(r.code, 1, `${what}: exit code 1`);
    t.match(r.stderr, 'Error: cannot make /var/lib/imgport/imports: read-only file system', `${what}: names the directory and why`);
    t.notMatch(r.stderr, /\n\s+at /, `${what}: no stack trace`);
  }
  t.same(describeTree(sandbox.root), before, 'nothing changed');
});

/** Where the export meets the full disk: in a file extra, a directory extra, the statelite tree. */
const EXPORT_FULL_CASES = [
  { what: 'a file extra', provmethod: 'netboot', data: 'install/big/data.bin', extra: ['-e', '/install/big/data.bin'] },
  { what: 'a directory extra', provmethod: 'netboot', data: 'install/big/data.bin', extra: ['-e', '/install/big'] },
  { what: 'the statelite tree', provmethod: 'statelite', data: 'ROOTIMG/opt/data.bin', extra: [] },
] as const;

for (const c of EXPORT_FULL_CASES) {
  t.test(`imgexport: the bundle does not fit on the destination (${c.what})`, async (t) => {
    const work = tempDir(t, 'imgport-full-export-');
    const source = path.join(work, 'source');
    const image = await buildSampleImage({ root: source, provmethod: c.provmethod });
    writeTables(source, { osimage: [image.osimage], linuximage: [image.linuximage] });
    put(path.join(source, c.data.replace('ROOTIMG', `${image.linuximage.rootimgdir}/rootimg`)), pseudoRandom(24 << 20, 'incompressible extra'));
    const dest = path.join(work, 'dest');
    const why = mountTmpfs(t, dest, '20m');
    if (why) return t.skip(why);
    const bundle = path.join(dest, `${image.imagename}.tgz`);
    fs.writeFileSync(bundle, 'the earlier bundle');
    const sourceBefore = describeTree(source);
    const run = await runImgexport([image.imagename, bundle, ...c.extra, '--root', source, '--no-progress']);
    t.equal(run.code, 1, 'exit code 1');
    t.match(run.stderr, /cannot write .*: no space left on device/, 'says the disk is full');
    t.match(run.stderr, dest, 'names where');
    t.notMatch(run.stderr, /\n\s+at /, 'no stack trace');
    t.equal(fs.readFileSync(bundle, 'utf8'), 'the earlier bundle', 'the earlier bundle intact');
    t.same(temporariesBeside(bundle), [], 'no temporary file left');
    t.same(describeTree(source), sourceBefore, 'source untouched');
  });
}

t.test('imgexport to standard output on a full device: the reason, no stack trace', async (t) => {
  const source = path.join(tempDir(t, 'imgport-full-stdout-'), 'source');
  const image = await buildSampleImage({ root: source, provmethod: 'netboot' });
  writeTables(source, { osimage: [image.osimage], linuximage: [image.linuximage] });
  const full = fs.openSync('/dev/full', 'w');
  t.teardown(() => fs.closeSync(full));
  const run = spawnSync(NODE, [...NODE_ARGS, path.resolve('dist/bin/imgexport.js'), image.imagename, '-', '--root', source, '--no-progress'], { encoding: 'utf8', stdio: ['ignore', full, 'pipe'] });
  t.equal(run.status, 1, 'exit code 1');
  t.match(run.stderr, 'Error: cannot write standard output: no space left on device', 'says why');
  t.notMatch(run.stderr, /\n\s+at /, 'no stack trace');
});

t.test('packimage: the archive does not fit beside the tree', async (t) => {
  const root = path.join(tempDir(t, 'imgport-full-pack-'), 'root');
  const why = mountTmpfs(t, path.join(root, 'install'), '20m');
  if (why) return t.skip(why);
  const image = await buildSampleImage({ root, provmethod: 'netboot' });
  writeTables(root, { osimage: [image.osimage], linuximage: [image.linuximage] });
  const rootimgdir = path.join(root, image.linuximage.rootimgdir!);
  put(path.join(rootimgdir, 'rootimg/opt/data.bin'), pseudoRandom(11 << 20, 'incompressible'));
  const packed = path.join(rootimgdir, 'rootimg.cpio.gz');
  const earlier = fs.readFileSync(packed);
  const before = treeWithoutLeftovers(root);
  const run = spawnSync(NODE, [...NODE_ARGS, PACKIMAGE, image.imagename, '--root', root], { encoding: 'utf8' });
  t.equal(run.status, 1, 'exit code 1');
  t.match(run.stderr, FULL, 'says the disk is full');
  t.match(run.stderr, 'rootimg.cpio.gz', 'names what');
  t.notMatch(run.stderr, /\n\s+at /, 'no stack trace');
  t.ok(fs.readFileSync(packed).equals(earlier), 'the earlier archive intact');
  t.same(temporariesBeside(packed), [], 'no temporary file left');
  t.same(treeWithoutLeftovers(root), before, 'the image as before');
});
