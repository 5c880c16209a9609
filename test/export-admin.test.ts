/**
 * imgexport as an administrator meets it, third review: disabled rows stay out, postscript columns
 * inherited one by one, one file for two destinations, mount points inside a directory extra,
 * a DEST that is a link, a terminal as standard output, s390x without image files.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { buildSampleImage } from '../src/sample/sample-image.js';
import { IMGEXPORT, readBundle, runImgexport, tempDir, writeTables, xcatReadManifest, type BundleMember } from './helpers/export-bundle.js';
import { IMGIMPORT } from './helpers/import-sandbox.js';
import { NODE, NODE_ARGS } from './helpers/node-command.js';

const work = tempDir(t, 'imgexport-admin-');
const root = path.join(work, 'root');
const netboot = await buildSampleImage({ root, provmethod: 'netboot' });
const statelite = await buildSampleImage({ root, provmethod: 'statelite' });
const images = { osimage: [netboot.osimage, statelite.osimage], linuximage: [netboot.linuximage, statelite.linuximage] };

const member = (members: BundleMember[], image: string, rel: string) => members.find((m) => m.name === `./${image}/${rel}`);
const manifestOf = async (members: BundleMember[], image: string) => (await xcatReadManifest(member(members, image, 'manifest.xml')!.data)) as Record<string, any>;

async function exported(t: Tap.Test, image: string, args: string[] = []): Promise<BundleMember[]> {
  const dest = path.join(tempDir(t), 'b.tgz');
  const run = await runImgexport([image, dest, '--root', root, '--no-progress', ...args]);
  t.equal(run.code, 0, run.stderr);
  return readBundle(fs.readFileSync(dest));
}

t.test('disabled rows are commented out: no litefile line, no postscripts from them (xCAT skips them in every query)', async (t) => {
  writeTables(root, {
    ...images,
    litefile: [
      { image: statelite.imagename, file: '/var/log/', options: 'persistent' },
      { image: statelite.imagename, file: '/etc/secret/', options: 'rw', disable: '1' },
      { image: 'ALL', file: '/etc/adjtime', options: 'tmpfs', disable: 'yes' },
      { image: 'ALL', file: '/etc/ntp.conf', disable: 'no' },
    ],
    nodelist: [{ node: 'node1', groups: 'compute' }],
    postscripts: [
      { node: 'xcatdefaults', postscripts: 'syslog' },
      { node: 'node1', postscripts: 'oldscript', disable: '1' },
      { node: 'compute', postscripts: 'grpscript' },
    ],
  });
  const members = await exported(t, statelite.imagename, ['-p', 'node1']);
  t.equal(member(members, statelite.imagename, 'litefile.csv')!.data.toString(),
    `"${statelite.imagename}","/etc/ntp.conf","tmpfs",,\n"${statelite.imagename}","/var/log/","persistent",,\n`);
  t.equal((await manifestOf(members, statelite.imagename)).postscripts, 'syslog,grpscript', "the group's row, the node's own being disabled");
});

t.test("-p: a node's row that sets one column leaves the other to its group (each column inherited on its own)", async (t) => {
  writeTables(root, {
    ...images,
    nodelist: [{ node: 'node1', groups: 'compute,all' }],
    postscripts: [
      { node: 'xcatdefaults', postscripts: 'syslog,remoteshell', postbootscripts: 'otherpkgs' },
      { node: 'compute', postscripts: 'grpscript', postbootscripts: 'grpboot' },
      { node: 'node1', postscripts: 'myscript1' },
    ],
  });
  const manifest = await manifestOf(await exported(t, netboot.imagename, ['-p', 'node1']), netboot.imagename);
  t.equal(manifest.postscripts, 'syslog,remoteshell,myscript1');
  t.equal(manifest.postbootscripts, 'otherpkgs,grpboot');
});

t.test('one file sent to two destinations is one member with two extras, and the import puts it in both', async (t) => {
  writeTables(root, images);
  const script = '/install/postscripts/myscript1';
  fs.mkdirSync(path.join(root, path.dirname(script)), { recursive: true });
  fs.writeFileSync(path.join(root, script), '#!/bin/sh\necho one\n', { mode: 0o755 });
  const dest = path.join(tempDir(t), 'two.tgz');
  const run = await runImgexport([netboot.imagename, dest, '--root', root, '--no-progress', '-e', script, '-e', `${script}:/install/custom/scripts`]);
  t.equal(run.code, 0, run.stderr);
  const members = await readBundle(fs.readFileSync(dest));
  t.same(members.filter((m) => m.name.includes('/extra/')).map((m) => m.name), [`./${netboot.imagename}/extra/myscript1`], 'one member');
  t.same((await manifestOf(members, netboot.imagename)).extra, [
    { src: script, dest: '/install/postscripts' },
    { src: script, dest: '/install/custom/scripts' },
  ]);
  const target = tempDir(t);
  writeTables(target, {});
  const imported = spawnSync(NODE, [...NODE_ARGS, IMGIMPORT, dest, '--root', target], { encoding: 'utf8' });
  t.equal(imported.status, 0, imported.stderr);
  for (const dir of ['/install/postscripts', '/install/custom/scripts']) {
    t.equal(fs.readFileSync(path.join(target, dir, 'myscript1'), 'utf8'), '#!/bin/sh\necho one\n', `in ${dir}`);
  }
});

t.test('a filesystem mounted inside a directory extra is exported with it, as cp -a copies it', async (t) => {
  writeTables(root, images);
  const apps = path.join(root, 'install/apps');
  fs.mkdirSync(path.join(apps, 'data'), { recursive: true });
  fs.writeFileSync(path.join(apps, 'top.txt'), 'top\n');
  const dest = path.join(tempDir(t), 'mounted.tgz');
  // A private mount namespace: the tmpfs exists only for this export.
  const script = 'mount -t tmpfs none "$1/data" && echo important > "$1/data/app.conf" && shift && exec "$@"';
  const run = spawnSync('unshare', ['-m', 'sh', '-c', script, 'sh', apps, NODE, ...NODE_ARGS, IMGEXPORT, netboot.imagename, dest,
    '--root', root, '--no-progress', '-e', '/install/apps'], { encoding: 'utf8' });
  if (run.status !== 0 && /unshare|mount/.test(run.stderr) && !fs.existsSync(dest)) return t.skip(`no mount namespace here: ${run.stderr.trim()}`);
  t.equal(run.status, 0, run.stderr);
  const members = await readBundle(fs.readFileSync(dest));
  t.equal(member(members, netboot.imagename, 'extra/install/apps/data/app.conf')?.data.toString(), 'important\n', 'the mounted file is in the bundle');
  t.equal(member(members, netboot.imagename, 'extra/install/apps/top.txt')?.data.toString(), 'top\n');
});

t.test("a DEST that is a symbolic link is written through, as tar czf writes it; the link stays", async (t) => {
  writeTables(root, images);
  const dir = tempDir(t);
  fs.mkdirSync(path.join(dir, 'store'));
  fs.writeFileSync(path.join(dir, 'store/real.tgz'), 'old');
  fs.symlinkSync('store/real.tgz', path.join(dir, 'latest.tgz'));
  fs.symlinkSync('store/new.tgz', path.join(dir, 'dangling.tgz'));
  for (const [link, target] of [['latest.tgz', 'store/real.tgz'], ['dangling.tgz', 'store/new.tgz']]) {
    const run = await runImgexport([netboot.imagename, path.join(dir, link), '--root', root, '--no-progress']);
    t.equal(run.code, 0, run.stderr);
    t.equal(fs.readlinkSync(path.join(dir, link)), target, `${link} is still the link`);
    const members = await readBundle(fs.readFileSync(path.join(dir, target)));
    t.ok(member(members, netboot.imagename, 'manifest.xml'), `${target} holds the bundle`);
  }
  t.same(fs.readdirSync(path.join(dir, 'store')).sort(), ['new.tgz', 'real.tgz'], 'no temporary file left');
});

t.test('a DEST link is followed as the kernel follows it: refused when it leads into the tree being exported; t/../x through a link t', async (t) => {
  writeTables(root, images);
  const dir = tempDir(t);
  const tree = path.join(root, statelite.linuximage.rootimgdir, 'rootimg');
  fs.symlinkSync(path.join(tree, 'inside.tgz'), path.join(dir, 'inside.tgz'));
  const run = await runImgexport([statelite.imagename, path.join(dir, 'inside.tgz'), '--root', root, '--no-progress']);
  t.equal(run.code, 1);
  t.match(run.stderr, `cannot write the bundle to ${path.join(tree, 'inside.tgz')}: it would be inside`);
  t.same(fs.readdirSync(tree).filter((name) => name.includes('inside')), [], 'nothing written in the tree');

  // s/t -> ../other/sub, s/rel -> t/../out.tgz: the kernel resolves t first, so the bundle lands in other/.
  fs.mkdirSync(path.join(dir, 's'));
  fs.mkdirSync(path.join(dir, 'other/sub'), { recursive: true });
  fs.symlinkSync('../other/sub', path.join(dir, 's/t'));
  fs.symlinkSync('t/../out.tgz', path.join(dir, 's/rel'));
  const through = await runImgexport([netboot.imagename, path.join(dir, 's/rel'), '--root', root, '--no-progress']);
  t.equal(through.code, 0, through.stderr);
  t.ok(fs.statSync(path.join(dir, 'other/out.tgz')).size > 0, 'where cat > s/rel would write');
  t.notOk(fs.existsSync(path.join(dir, 's/out.tgz')));
});

t.test('a name with a tab inside a directory extra is exported and imported (a tab forges no line)', async (t) => {
  writeTables(root, images);
  const tabbed = path.join(root, 'install/tabbed');
  fs.mkdirSync(tabbed, { recursive: true });
  fs.writeFileSync(path.join(tabbed, 'a\tb.txt'), 'tab\n');
  const dest = path.join(tempDir(t), 'tab.tgz');
  const run = await runImgexport([netboot.imagename, dest, '--root', root, '--no-progress', '-e', '/install/tabbed']);
  t.equal(run.code, 0, run.stderr);
  const target = tempDir(t);
  writeTables(target, {});
  const imported = spawnSync(NODE, [...NODE_ARGS, IMGIMPORT, dest, '--root', target], { encoding: 'utf8' });
  t.equal(imported.status, 0, imported.stderr);
  t.equal(fs.readFileSync(path.join(target, 'install/tabbed/a\tb.txt'), 'utf8'), 'tab\n');
});

t.test('standard output that is a terminal is refused before anything is read, as tar and zstd refuse it', async (t) => {
  writeTables(root, images);
  // A pseudo-terminal for the command's standard output (python's pty module, argument list only).
  const spawnInPty = 'import pty, sys; sys.exit(pty.spawn(sys.argv[1:]) >> 8)';
  const run = spawnSync('python3', ['-c', spawnInPty, NODE, ...NODE_ARGS, IMGEXPORT, netboot.imagename, '-', '--root', root], { encoding: 'latin1' });
  if (run.error) return t.skip('python3 is not installed');
  t.equal(run.status, 1, run.stdout);
  t.match(run.stdout, 'Error: refusing to write the bundle to a terminal: redirect standard output to a file or a pipe');
  t.notMatch(run.stdout, '\x1f\x8b', 'no gzip bytes on the terminal');
});

t.test('an s390x image whose directory holds no *.img file is refused (its bundle could not be imported)', async (t) => {
  const image = { imagename: 'sles12-s390x-netboot-zprof', profile: 'zprof', provmethod: 'netboot', osvers: 'sles12', osarch: 's390x' };
  writeTables(root, { osimage: [image], linuximage: [{ imagename: image.imagename }] });
  fs.mkdirSync(path.join(root, 'install/netboot/sles12/s390x/zprof'), { recursive: true });
  const dest = path.join(tempDir(t), 'z.tgz');
  const run = await runImgexport([image.imagename, dest, '--root', root]);
  t.equal(run.code, 1);
  t.match(run.stderr, 'Error: No image files (*.img) in directory /install/netboot/sles12/s390x/zprof');
  t.notOk(fs.existsSync(dest));
});
