/**
 * imgimport, review findings: s390x raw image files under a new profile, kit directories under
 * either name, admin symlinks and an unmounted INSTALLDIR, image names with spaces, a missing
 * INSTALLDIR, .ORIG kept on undo, a large litefile.csv, the lock on the final image name, every
 * table row in --dry-run, kit plugins.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { Sandbox } from '../src/core/sandbox.js';
import { executeCommit, inspectPaths, pathsToInspect, planCommit, type Unit } from '../src/import/commit.js';
import { planImport } from '../src/import/plan.js';
import { buildSampleImage } from '../src/sample/sample-image.js';
import { emptyManifest, type Manifest } from '../src/xcat/manifest.js';
import { writeManifestXml } from '../src/xcat/manifest-writer.js';
import { describeTree, runImgexport, tempDir, writeTables } from './helpers/export-bundle.js';
import { mountTmpfs } from './helpers/hostile-fs.js';
import { ourBundle, packBundle, sha256sums, type Member } from './helpers/import-bundles.js';
import { IMGIMPORT, makeSandbox, startHalfWay, type ImportSandbox } from './helpers/import-sandbox.js';
import { NODE, NODE_ARGS } from './helpers/node-command.js';

const NETBOOT_IMAGE = 'rhels8.5.0-ppc64le-netboot-compute';
const KIT_IMAGE = 'rhels8.5.0-x86_64-netboot-service';

/** A bundle the way imgexport writes it: manifest first, the files, SHA256SUMS last. */
async function bundleOf(image: string, manifest: Manifest, files: Member[]): Promise<Buffer> {
  const members: Member[] = [{ name: `./${image}/manifest.xml`, data: Buffer.from(writeManifestXml(manifest)) }, ...files];
  return packBundle([...members, { name: `./${image}/SHA256SUMS`, data: Buffer.from(sha256sums(members, image)) }]);
}

function save(sandbox: ImportSandbox, name: string, data: Buffer): string {
  const file = path.join(sandbox.root, 'bundles', name);
  fs.writeFileSync(file, data);
  return file;
}

const read = (sandbox: ImportSandbox, logical: string) => fs.readFileSync(path.join(sandbox.root, logical), 'utf8');
const exists = (sandbox: ImportSandbox, logical: string) => fs.existsSync(path.join(sandbox.root, logical));

t.test('s390x raw -f NEWPROFILE: raw image files go to INSTALLDIR/raw/OSVERS/s390x/NEWPROFILE, .img added; the original image is untouched', async (t) => {
  const sandbox = makeSandbox(t);
  const oldDir = '/install/raw/sles15/s390x/compute';
  fs.mkdirSync(path.join(sandbox.root, oldDir), { recursive: true });
  fs.writeFileSync(path.join(sandbox.root, oldDir, 'disk1.img'), 'original disk');
  const manifest = emptyManifest({ imagename: 'sles15-s390x-raw-compute', profile: 'compute', provmethod: 'raw', osvers: 'sles15', osarch: 's390x' }, { imagename: 'sles15-s390x-raw-compute' });
  manifest.rawimagefiles = [`${oldDir}/disk1.img`, `${oldDir}/disk2`];
  const image = 'sles15-s390x-raw-compute';
  const bundle = save(sandbox, 'raw.tgz', await bundleOf(image, manifest, [
    { name: `./${image}/disk1.img`, data: Buffer.from('new disk 1') },
    { name: `./${image}/disk2`, data: Buffer.from('new disk 2') },
  ]));
  const r = sandbox.run([bundle, '-f', 'new']);
  t.equal(r.code, 0, r.stderr);
  t.equal(read(sandbox, '/install/raw/sles15/s390x/new/disk1.img'), 'new disk 1');
  t.equal(read(sandbox, '/install/raw/sles15/s390x/new/disk2.img'), 'new disk 2', '.img added as xCAT does');
  t.equal(read(sandbox, `${oldDir}/disk1.img`), 'original disk', 'the original image keeps its disk');
  t.notOk(exists(sandbox, `${oldDir}/disk1.img.ORIG`));
  t.notOk(exists(sandbox, `${oldDir}/disk2`));
  t.equal(sandbox.tables().linuximage.find((l) => l.imagename === 'sles15-s390x-raw-new')?.rootimgdir, '/install/raw/sles15/s390x/new');
});

/** The kit fixture as our bundle, with its kit directory renamed and the manifest changed. */
async function kitBundle(dirName: string, changeManifest: (xml: string) => string = (x) => x): Promise<Buffer> {
  return (await ourBundle('kit.tgz', (members) => {
    for (const m of members) m.name = m.name.replace(`/${KIT_IMAGE}/mykit-1.0-1/`, `/${KIT_IMAGE}/${dirName}/`).replace(/\/mykit-1\.0-1$/, `/${dirName}`);
    const manifest = members.find((m) => m.name.endsWith('/manifest.xml'))!;
    manifest.data = Buffer.from(changeManifest(manifest.data!.toString()));
  })).data;
}

t.test('kit directory: under KITNAME or basename(kitdir), placed at dirname(kitdir)/KITNAME; missing or unnamed members are errors', async (t) => {
  const sandbox = makeSandbox(t);
  // basename(kitdir) is not the kit's name: xCAT's export names the member after it.
  const renamed = save(sandbox, 'kit-dir.tgz', await kitBundle('mykit-dir', (x) => x.replace('<kitdir>/install/kits/mykit-1.0-1</kitdir>', '<kitdir>/install/kits/mykit-dir</kitdir>')));
  const r = sandbox.run([renamed]);
  t.equal(r.code, 0, r.stderr);
  t.ok(exists(sandbox, '/install/kits/mykit-1.0-1/other_files/mykit-post.sh'), 'placed under the kit name');
  t.ok(exists(sandbox, '/install/postscripts/mykit-post.sh'));

  const other = makeSandbox(t);
  const missing = save(other, 'kit-missing.tgz', await kitBundle('elsewhere'));
  const m = other.run([missing]);
  t.equal(m.code, 1);
  t.match(m.stderr, 'mykit-1.0-1');
  t.notOk(exists(other, '/install/netboot'), 'nothing placed');
  t.same(other.tables().kit ?? [], []);

  const rowsOnly = save(other, 'kit-no-kitdir.tgz', await kitBundle('mykit-1.0-1', (x) => x.replace('<kitdir>/install/kits/mykit-1.0-1</kitdir>', '')));
  const n = other.run([rowsOnly]);
  t.equal(n.code, 1);
  t.match(n.stderr, /refusing member \S+\/mykit-1\.0-1\/\S+: kit mykit-1\.0-1 has no kitdir in the manifest, so its directory has no place/);

  const unknown = save(other, 'extra-member.tgz', (await ourBundle('netboot.tgz', (members) => {
    members.push({ name: `./${NETBOOT_IMAGE}/smuggled`, data: Buffer.from('x') });
  })).data);
  const u = other.run([unknown]);
  t.equal(u.code, 1);
  t.match(u.stderr, `refusing member ${NETBOOT_IMAGE}/smuggled: the manifest names nothing of that name`);
});

t.test('INSTALLDIR itself a symbolic link to another filesystem: the import goes through it, staging inside it', async (t) => {
  const sandbox = makeSandbox(t);
  const big = path.join(sandbox.root, 'bigdisk/install');
  fs.mkdirSync(path.dirname(big));
  fs.renameSync(path.join(sandbox.root, 'install'), big);
  fs.symlinkSync(big, path.join(sandbox.root, 'install'));
  fs.mkdirSync(path.join(big, 'netboot'));
  fs.symlinkSync(path.join(sandbox.root, 'bigdisk/netboot'), path.join(big, 'netboot/rhels8.5.0'));
  fs.mkdirSync(path.join(sandbox.root, 'bigdisk/netboot'));
  // INSTALLDIR leads to /bigdisk/install, and a link inside it out of there: allowed by name.
  const r = sandbox.run([sandbox.bundle('netboot.tgz'), '--allow-dest', '/bigdisk/netboot']);
  t.equal(r.code, 0, r.stderr);
  t.equal(fs.statSync(path.join(sandbox.root, 'bigdisk/netboot/ppc64le/compute/kernel')).size, 300000);
  t.ok(fs.lstatSync(path.join(sandbox.root, 'install')).isSymbolicLink(), 'links kept');
});

t.test("xCAT's bundles (manifest last) with destinations on another filesystem: what came first is copied there before the commit", { skip: process.getuid?.() !== 0 && 'needs root to mount' }, async (t) => {
  for (const [bundle, image] of [['netboot.tgz', 'ppc64le/compute'], ['statelite.tgz', 'x86_64/compute']] as const) {
    const reference = makeSandbox(t);
    t.equal(reference.run([reference.bundle(bundle)]).code, 0);
    const sandbox = makeSandbox(t);
    // Other storage, mounted inside the sandbox so that --allow-dest can name it.
    const other = path.join(sandbox.root, 'otherfs');
    const why = mountTmpfs(t, other, '64m');
    if (why) return void t.skip(why);
    t.not(fs.statSync(other).dev, fs.statSync(path.join(sandbox.root, 'install')).dev, 'on its own filesystem');
    const elsewhere = path.join(other, bundle);
    fs.mkdirSync(elsewhere);
    fs.mkdirSync(path.join(sandbox.root, 'install/netboot'));
    fs.symlinkSync(elsewhere, path.join(sandbox.root, 'install/netboot/rhels8.5.0'));
    const r = sandbox.run([sandbox.bundle(bundle), '--allow-dest', '/otherfs']);
    t.equal(r.code, 0, r.stderr);
    t.same(describeTree(path.join(elsewhere, image)), describeTree(path.join(reference.root, 'install/netboot/rhels8.5.0', image)), `${bundle}: the image as on one filesystem`);
    t.same(fs.readdirSync(elsewhere).filter((n) => n.startsWith('.imgport')), [], `${bundle}: no staging left there`);
    t.same(fs.readdirSync(path.join(sandbox.root, 'install')).filter((n) => n.startsWith('.imgport')), [], `${bundle}: nor in INSTALLDIR`);
  }
});

t.test('INSTALLDIR a link to nowhere (NFS not mounted): a message naming it, before any member is read', async (t) => {
  const sandbox = makeSandbox(t);
  fs.rmSync(path.join(sandbox.root, 'install'), { recursive: true });
  fs.symlinkSync(path.join(sandbox.root, 'nfs/install'), path.join(sandbox.root, 'install'));
  const r = sandbox.run([sandbox.bundle('netboot.tgz'), '-v']);
  t.equal(r.code, 1);
  t.match(r.stderr, /^Error: the install directory \/install is a symbolic link to .*nfs\/install, which does not exist \(is its filesystem mounted\?\)\n$/);
  t.notMatch(r.stdout, 'member ', 'nothing streamed');
  t.notOk(fs.existsSync(path.join(sandbox.root, 'nfs')));
});

t.test('a failing filesystem call is a PathError naming the logical path, not a stack', async (t) => {
  const sandbox = makeSandbox(t);
  // The place for locks and journals is a file: mkdir fails there.
  fs.rmSync(path.join(sandbox.root, 'var/lib/imgport/imports'), { recursive: true, force: true });
  fs.writeFileSync(path.join(sandbox.root, 'var/lib/imgport/imports'), '');
  const r = sandbox.run([sandbox.bundle('netboot.tgz')]);
  t.equal(r.code, 1);
  t.equal(r.stderr, 'Error: cannot make /var/lib/imgport/imports: a file that is not a directory is in the way\n');
});

t.test('an image name with a space: exported as my_image/, imported as "my image"', async (t) => {
  const work = tempDir(t, 'imgport-space-');
  const source = path.join(work, 'source');
  const target = path.join(work, 'target');
  const sample = await buildSampleImage({ root: source, provmethod: 'statelite', name: 'my image' });
  writeTables(source, { osimage: [sample.osimage], linuximage: [sample.linuximage], litefile: [{ image: 'my image', file: '/var/log/', options: 'persistent' }] });
  writeTables(target, {});
  const bundle = path.join(work, 'my image.tgz');
  const exported = await runImgexport(['my image', bundle, '--root', source, '--no-progress']);
  t.equal(exported.code, 0, exported.stderr);
  const r = spawnSync(NODE, [...NODE_ARGS, IMGIMPORT, bundle, '--root', target], { encoding: 'utf8', env: { ...process.env, XCATROOT: '', IMGPORT_ROOT: '', IMGPORT_DB: '' } });
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, 'Successfully imported the image my image.');
  const tables = JSON.parse(fs.readFileSync(path.join(target, 'var/lib/imgport/tables.json'), 'utf8'));
  t.same(tables.osimage.map((o: { imagename: string }) => o.imagename), ['my image']);
  t.same(tables.litefile, [{ image: 'my image', file: '/var/log/', options: 'persistent' }]);
  t.ok(fs.existsSync(path.join(target, 'install/netboot/rhels8.5.0/x86_64/compute/rootimg/etc/my file.conf')));
  t.same(fs.readdirSync(path.join(target, 'var/lib/imgport/imports')), [], 'lock and journal removed');
});

/** Starts an import from a pipe, feeds half the bundle, and waits for the journal of `image`. */
t.test('a missing INSTALLDIR is created first (staging inside it), and removed again when the import fails', async (t) => {
  const sandbox = makeSandbox(t);
  fs.rmSync(path.join(sandbox.root, 'install'), { recursive: true });
  const data = fs.readFileSync(sandbox.bundle('netboot.tgz'));
  const cut = save(sandbox, 'cut.tgz', data.subarray(0, Math.floor(data.length * 0.8)));
  const failed = sandbox.run([cut]);
  t.equal(failed.code, 1);
  t.notOk(exists(sandbox, '/install'), 'the INSTALLDIR it created is gone again');

  const half = await startHalfWay(sandbox, data, NETBOOT_IMAGE);
  const journal = JSON.parse(fs.readFileSync(half.journal, 'utf8')) as { staging: string[] };
  t.ok(journal.staging.length > 0);
  for (const dir of journal.staging) t.ok(dir.startsWith(path.join(sandbox.root, 'install') + '/'), `staging ${dir} inside INSTALLDIR`);
  half.finish();
  t.equal(await half.exited, 0, half.stderr());
  t.ok(exists(sandbox, `/install/netboot/rhels8.5.0/ppc64le/compute/kernel`));
});

t.test('undo after the renames puts back an earlier PATH.ORIG too', async (t) => {
  const root = tempDir(t, 'imgport-undo-');
  const sandbox = new Sandbox(root);
  const dir = path.join(root, 'install/img');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'kernel'), 'current');
  fs.writeFileSync(path.join(dir, 'kernel.ORIG'), 'older');
  fs.mkdirSync(path.join(root, 'staging'));
  fs.writeFileSync(path.join(root, 'staging/kernel'), 'new');
  const units: Unit[] = [{ dest: '/install/img/kernel', type: 'file', staged: path.join(root, 'staging/kernel'), member: 'img/kernel' }];
  const ops = planCommit(units, await inspectPaths(sandbox, pathsToInspect(units)));
  let trashed = 0;
  const done = await executeCommit(sandbox, ops, { trash: async () => path.join(root, 'staging', `old-${++trashed}`), progress: () => undefined, aborted: () => false });
  t.equal(fs.readFileSync(path.join(dir, 'kernel'), 'utf8'), 'new');
  t.equal(fs.readFileSync(path.join(dir, 'kernel.ORIG'), 'utf8'), 'current');
  await done.undo(); // as when the table write fails
  t.equal(fs.readFileSync(path.join(dir, 'kernel'), 'utf8'), 'current');
  t.equal(fs.readFileSync(path.join(dir, 'kernel.ORIG'), 'utf8'), 'older', 'the earlier .ORIG is back');
});

t.test('the table write failing at the very end puts every file back: the image as before, .ORIG files too', async (t) => {
  const sandbox = makeSandbox(t);
  const bundle = sandbox.bundle('netboot.tgz');
  t.equal(sandbox.run([bundle]).code, 0, 'an earlier import of the image');
  t.equal(sandbox.run([bundle]).code, 0, 'and a second one, which left .ORIG files');
  const files = sandbox.files();
  const tables = fs.readFileSync(sandbox.db);
  // Where the table file's temporary copy goes, a directory: the write fails after every rename.
  const blocker = path.join(path.dirname(sandbox.db), `.${path.basename(sandbox.db)}.tmp`);
  fs.mkdirSync(blocker);
  const r = sandbox.run([bundle]);
  fs.rmdirSync(blocker);
  t.equal(r.code, 1, 'exit 1');
  t.match(r.stderr, `Error: cannot write the table file ${sandbox.db}`, 'says which write failed');
  t.notMatch(r.stderr, /\n\s+at /, 'no stack trace');
  t.same(sandbox.files(), files, 'every file as before, .ORIG files included; no staging');
  t.ok(fs.readFileSync(sandbox.db).equals(tables), 'tables byte-identical');
  t.same(fs.readdirSync(path.join(sandbox.root, 'var/lib/imgport/imports')), [], 'no journal or lock left');
});

t.test('a litefile.csv too large to read is an error naming it, not rows silently lost', async (t) => {
  const sandbox = makeSandbox(t);
  const huge = Buffer.from(Array.from({ length: 40000 }, (_, i) => `"rhels8.5.0-x86_64-statelite-compute","/etc/file${i}","tmpfs",,\n`).join(''));
  const bundle = save(sandbox, 'huge-litefile.tgz', (await ourBundle('statelite.tgz', (members) => {
    members.find((m) => m.name.endsWith('/litefile.csv'))!.data = huge;
  })).data);
  const before = sandbox.tables();
  const r = sandbox.run([bundle]);
  t.equal(r.code, 1);
  t.match(r.stderr, /member \S+\/litefile\.csv is too large/);
  t.same(sandbox.tables(), before);
});

t.test('the lock is the final image name: the same bundle under two profiles at once is fine, two imports ending in one image are not', async (t) => {
  const sandbox = makeSandbox(t);
  const data = (await ourBundle('netboot.tgz')).data;
  const first = await startHalfWay(sandbox, data, 'rhels8.5.0-ppc64le-netboot-one', ['-f', 'one']);
  t.ok(fs.existsSync(first.journal), 'locked under the final name');
  const bundle = save(sandbox, 'ours.tgz', data);
  const other = sandbox.run([bundle, '-f', 'two']);
  t.equal(other.code, 0, other.stderr);
  const same = sandbox.run([bundle, '-f', 'one']);
  t.equal(same.code, 1);
  t.match(same.stderr, `image rhels8.5.0-ppc64le-netboot-one is being imported by process ${first.child.pid}`);
  first.finish();
  t.equal(await first.exited, 0, first.stderr());
});

t.test('--dry-run prints every table row the import writes, unchanged ones marked', async (t) => {
  const sandbox = makeSandbox(t);
  const bundle = sandbox.bundle('statelite.tgz');
  t.equal(sandbox.run([bundle]).code, 0);
  const r = sandbox.run([bundle, '--dry-run']);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /set osimage row: imagename=rhels8\.5\.0-x86_64-statelite-compute .* \(unchanged\)\n/);
  t.match(r.stdout, /set linuximage row: imagename=rhels8\.5\.0-x86_64-statelite-compute .* \(unchanged\)\n/);
  t.match(r.stdout, /set litefile row: image=rhels8\.5\.0-x86_64-statelite-compute .* \(unchanged\)\n/);
});

t.test('kit plugins: a real import names the --allow-dest to add; --dry-run shows the plan and the refusal', async (t) => {
  const sandbox = makeSandbox(t);
  const bundle = save(sandbox, 'plugin.tgz', (await ourBundle('kit.tgz', (members) => {
    members.push({ name: `./${KIT_IMAGE}/mykit-1.0-1/plugins/mykit.pm`, data: Buffer.from('package xCAT_plugin::mykit;\n1;\n') });
  })).data);
  const hint = '--allow-dest /opt/xcat/lib/perl/xCAT_plugin';
  const r = sandbox.run([bundle]);
  t.equal(r.code, 1);
  t.match(r.stderr, hint);
  t.notOk(exists(sandbox, '/install/kits'));
  const dry = sandbox.run([bundle, '--dry-run']);
  t.equal(dry.code, 1);
  t.match(dry.stdout, 'write /opt/xcat/lib/perl/xCAT_plugin/mykit.pm');
  t.match(dry.stdout, /set kit row: .*kitname=mykit-1\.0-1/);
  t.match(dry.stderr, hint);
  const allowed = sandbox.run([bundle, '--allow-dest', '/opt/xcat/lib/perl/xCAT_plugin']);
  t.equal(allowed.code, 0, allowed.stderr);
  t.ok(exists(sandbox, '/opt/xcat/lib/perl/xCAT_plugin/mykit.pm'));
});

t.test('commit plan: admin links to directories are used; links to nowhere, links of the bundle and links to replace are refused', async (t) => {
  const file = (dest: string, type: Unit['type'] = 'file'): Unit => ({ dest, type, member: 'm' });
  const ops = planCommit([file('/install/netboot/img/kernel')], new Map([['/install', 'dirlink'], ['/install/netboot', 'dirlink'], ['/install/netboot/img', 'dir']]));
  t.same(ops.map((op) => op.op), ['place']);
  t.throws(() => planCommit([file('/install/x/kernel')], new Map([['/install', 'symlink']])), { message: /\/install is a symbolic link that does not lead to a directory/ });
  t.throws(() => planCommit([file('/install/link', 'symlink'), file('/install/link/passwd')], new Map([['/install', 'dir']])), {
    message: /\/install\/link would be written through a symbolic link of the bundle/,
  });
  t.throws(() => planCommit([file('/install/img/rootimg', 'tree')], new Map([['/install', 'dir'], ['/install/img', 'dir'], ['/install/img/rootimg', 'dirlink']])), {
    message: /\/install\/img\/rootimg is a symbolic link, the bundle would replace it/,
  });
  const relink = planCommit([file('/install/img/link', 'symlink')], new Map([['/install', 'dir'], ['/install/img', 'dir'], ['/install/img/link', 'symlink'], ['/install/img/link.ORIG', 'symlink']]));
  t.same(relink.map((op) => op.op), ['backup', 'place'], 'a link of the bundle replaces an earlier link');
  t.same(relink[0], { op: 'backup', path: '/install/img/link', dropOldBackup: true });
});

t.test('plan: s390x netboot raw image files go under INSTALLDIR/netboot/OSVERS/s390x/PROFILE', async (t) => {
  const loc = { sandbox: new Sandbox(), installdir: '/install', xcatroot: '/opt/xcat' };
  const m = emptyManifest({ imagename: 'i', profile: 'compute', provmethod: 'netboot', osvers: 'rhels7', osarch: 's390x' }, { imagename: 'i' });
  m.rawimagefiles = ['/elsewhere/disk', '/elsewhere/d.img'];
  const plan = planImport(m, 'i', loc, 'p2');
  t.same(plan.files.get('disk'), ['/install/netboot/rhels7/s390x/p2/disk.img']);
  t.same(plan.files.get('d.img'), ['/install/netboot/rhels7/s390x/p2/d.img']);
  t.same(planImport(m, 'i', loc).files.get('disk'), ['/install/netboot/rhels7/s390x/compute/disk.img'], 'as xCAT, also without -f');
});

t.test('a missing XCATROOT/share is made before staging goes there, and removed with the rest when the import fails', async (t) => {
  const sandbox = makeSandbox(t);
  fs.rmSync(path.join(sandbox.root, 'opt'), { recursive: true });
  const pkglist = `./${KIT_IMAGE}/service.rhels8.5.0.x86_64.pkglist`;
  // The list file that goes to /opt/xcat/share right after the manifest, the kernel last.
  const { data } = await ourBundle('kit.tgz', (members) => {
    const at = members.findIndex((m) => m.name === pkglist);
    members.splice(1, 0, ...members.splice(at, 1));
    members.push(...members.splice(members.findIndex((m) => m.name.endsWith('/kernel')), 1));
  });
  const cut = save(sandbox, 'cut.tgz', data.subarray(0, Math.floor(data.length * 0.9)));
  t.equal(sandbox.run([cut]).code, 1);
  t.notOk(exists(sandbox, '/opt'), 'the directories it made are gone again');

  const half = await startHalfWay(sandbox, data, KIT_IMAGE);
  let staging: string[] = [];
  for (let i = 0; i < 200 && !staging.some((d) => d.includes('/opt/')); i++) {
    staging = (JSON.parse(fs.readFileSync(half.journal, 'utf8')) as { staging: string[] }).staging;
    if (!staging.some((d) => d.includes('/opt/'))) await sleep(25);
  }
  t.same(staging.filter((d) => !d.startsWith(path.join(sandbox.root, 'install') + '/')).map((d) => path.dirname(d)), [path.join(sandbox.root, 'opt/xcat/share')], 'staging inside XCATROOT/share, not above it');
  half.finish();
  t.equal(await half.exited, 0, half.stderr());
  t.equal(fs.statSync(path.join(sandbox.root, 'opt/xcat/share')).mode & 0o7777, 0o755);
  t.ok(exists(sandbox, '/opt/xcat/share/xcat/netboot/rh/service.rhels8.5.0.x86_64.pkglist'));
});

t.test("a kit's postscripts: a link among them is copied as a link (as cp -rf copies it), one leading out of postscripts is refused; .ENV and .EXLIST in any case stay in the kit", async (t) => {
  const sandbox = makeSandbox(t);
  const other = (rel: string) => `./${KIT_IMAGE}/mykit-1.0-1/other_files/${rel}`;
  const bundle = (extra: Member[]) => ourBundle('kit.tgz', (members) => members.splice(members.findIndex((m) => m.name === other('mykit-post.sh')) + 1, 0, ...extra));
  const good = save(sandbox, 'kit-links.tgz', (await bundle([
    { name: other('KIT_compute.sh'), type: 'symlink', linkname: 'mykit-post.sh' },
    { name: other('site.ENV'), data: Buffer.from('LICENSE_KEY=secret\n') },
    { name: other('compute.EXLIST'), data: Buffer.from('./usr/share/doc*\n') },
    // A link in a subdirectory leading to a sibling directory: inside postscripts all the same.
    { name: other('lib/common.sh'), data: Buffer.from('common() { :; }\n') },
    { name: other('tools/common.sh'), type: 'symlink', linkname: '../lib/common.sh' },
  ])).data);
  const r = sandbox.run([good]);
  t.equal(r.code, 0, r.stderr);
  const postscripts = path.join(sandbox.root, 'install/postscripts');
  t.equal(fs.readlinkSync(path.join(postscripts, 'KIT_compute.sh')), 'mykit-post.sh', 'the link, as a link');
  t.equal(fs.readFileSync(path.join(postscripts, 'KIT_compute.sh'), 'utf8'), fs.readFileSync(path.join(postscripts, 'mykit-post.sh'), 'utf8'), 'leading to the copied postscript');
  t.same(fs.readdirSync(postscripts).filter((n) => /env|exlist/i.test(n)), [], '.ENV and .EXLIST not published');
  t.equal(fs.readlinkSync(path.join(postscripts, 'tools/common.sh')), '../lib/common.sh', 'a nested link, as a link');
  t.equal(fs.readFileSync(path.join(postscripts, 'tools/common.sh'), 'utf8'), 'common() { :; }\n');
  const kitOther = path.join(sandbox.root, 'install/kits/mykit-1.0-1/other_files');
  t.equal(fs.statSync(path.join(kitOther, 'site.ENV')).mode & 0o777, 0o644, 'not made executable');

  const escaping = save(sandbox, 'kit-link-out.tgz', (await bundle([{ name: other('steal.sh'), type: 'symlink', linkname: '../repos/secret' }])).data);
  const before = sandbox.files();
  const e = sandbox.run([escaping]);
  t.equal(e.code, 1);
  t.match(e.stderr, `refusing symbolic link ${other('steal.sh').slice(2)} -> ../repos/secret: it points outside /install/postscripts`);
  t.same(sandbox.files(), before, 'nothing changed');
});
