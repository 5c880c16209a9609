/**
 * imgimport, second review: every extra the manifest names is placed or the import fails; one
 * file for several extras goes to each; a directory extra named with a trailing slash; an extra
 * inside the statelite tree on a second import; directory extras keep owners and times; names
 * that are not UTF-8 are refused, never renamed; imgport verify refuses what the import refuses;
 * -p takes a noderange.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import t from 'tap';
import { fixtureMembers, ourBundle, packBundle, type Member } from './helpers/import-bundles.js';
import { FIXTURES, IMGPORT, makeSandbox, type ImportSandbox } from './helpers/import-sandbox.js';
import { NODE, NODE_ARGS } from './helpers/node-command.js';

const NETBOOT = 'rhels8.5.0-ppc64le-netboot-compute';
const STATELITE = 'rhels8.5.0-x86_64-statelite-compute';
const TREE = '/install/netboot/rhels8.5.0/x86_64/compute/rootimg';

function save(sandbox: ImportSandbox, name: string, data: Buffer): string {
  const file = path.join(sandbox.root, 'bundles', name);
  fs.writeFileSync(file, data);
  return file;
}

const verify = (bundle: string) => spawnSync(NODE, [...NODE_ARGS, IMGPORT, 'verify', bundle], { encoding: 'utf8' });

/** The manifest member with `edit` applied to its text. */
function editManifest(members: Member[], edit: (xml: string) => string): void {
  const manifest = members.find((m) => m.name.endsWith('/manifest.xml'))!;
  manifest.data = Buffer.from(edit(manifest.data!.toString()));
}

const extraXml = (dest: string, src: string) => `  <extra>\n    <dest>${dest}</dest>\n    <src>${src}</src>\n  </extra>\n  <kernel>`;

t.test('an extra the bundle lacks fails the import (as xCAT), naming it; nothing changed; verify says the same', async (t) => {
  const sandbox = makeSandbox(t);
  const { data } = await ourBundle('netboot.tgz', (members) => members.splice(members.findIndex((m) => m.name.endsWith('/extra/myscript2')), 1));
  const bundle = save(sandbox, 'lacking.tgz', data);
  const before = { files: sandbox.files(), tables: fs.readFileSync(sandbox.db) };
  const r = sandbox.run([bundle]);
  t.equal(r.code, 1);
  const said = `bundle lacks the extra /install/postscripts/myscript2 (${NETBOOT}/extra/myscript2 or ${NETBOOT}/extra/install/postscripts/myscript2), which the manifest names for /install/postscripts`;
  t.match(r.stderr, said);
  t.same(sandbox.files(), before.files, 'files unchanged');
  t.ok(fs.readFileSync(sandbox.db).equals(before.tables), 'tables unchanged');
  const v = verify(bundle);
  t.equal(v.status, 1);
  t.match(v.stderr, said);
});

t.test('one file for two extras of the same basename goes to both destinations', async (t) => {
  const sandbox = makeSandbox(t);
  const { data, members } = await ourBundle('netboot.tgz', (members) =>
    editManifest(members, (xml) => xml.replace('  <kernel>', extraXml('/install/custom/other', '/install/custom/other/myscript2'))),
  );
  const r = sandbox.run([save(sandbox, 'twice.tgz', data)]);
  t.equal(r.code, 0, r.stderr);
  const script = members.find((m) => m.name.endsWith('/extra/myscript2'))!.data!;
  for (const dest of ['/install/postscripts/myscript2', '/install/custom/other/myscript2']) {
    t.ok(fs.readFileSync(path.join(sandbox.root, dest)).equals(script), `${dest} placed`);
  }
});

t.test('a directory extra named with a trailing slash (as xCAT writes `-e /install/mydir/`) is placed', async (t) => {
  const sandbox = makeSandbox(t);
  const { data } = await ourBundle('statelite.tgz', (members) => editManifest(members, (xml) => xml.replace('<src>/install/mydir</src>', '<src>/install/mydir/</src>')));
  const bundle = save(sandbox, 'slash.tgz', data);
  t.equal(verify(bundle).status, 0, 'verify passes it');
  const r = sandbox.run([bundle]);
  t.equal(r.code, 0, r.stderr);
  t.ok(fs.existsSync(path.join(sandbox.root, '/install/custom/mydir/sub/b.txt')));
});

t.test('an extra inside the statelite tree: a second import puts it into the new tree, the old tree kept whole', async (t) => {
  const sandbox = makeSandbox(t);
  const { data } = await ourBundle('statelite.tgz', (members) => {
    editManifest(members, (xml) => xml.replace('  <kernel>', extraXml(`${TREE}/etc`, '/root/hosts')));
    members.push({ name: `./${STATELITE}/extra/hosts`, data: Buffer.from('10.0.0.1 mn\n') });
  });
  const bundle = save(sandbox, 'inside.tgz', data);
  t.equal(sandbox.run([bundle]).code, 0, 'first import');
  fs.writeFileSync(path.join(sandbox.root, TREE, 'etc/hosts'), 'edited on the node\n');
  const dry = sandbox.run([bundle, '--dry-run']);
  t.equal(dry.code, 0, dry.stderr);
  t.match(dry.stdout, `write ${TREE}/etc/hosts (file, 12 bytes`);
  t.match(dry.stdout, '(1 of these go into a new tree');
  const r = sandbox.run([bundle]);
  t.equal(r.code, 0, r.stderr);
  t.equal(fs.readFileSync(path.join(sandbox.root, TREE, 'etc/hosts'), 'utf8'), '10.0.0.1 mn\n');
  t.equal(fs.readFileSync(path.join(sandbox.root, `${TREE}.ORIG/etc/hosts`), 'utf8'), 'edited on the node\n', 'the old tree, whole, in rootimg.ORIG');
  t.notOk(fs.existsSync(path.join(sandbox.root, TREE, 'etc/hosts.ORIG')), 'the new tree had no hosts to keep');
});

t.test('a directory extra keeps owners and times as cp -a does, subdirectories too; a setuid helper stays its owner\'s', { skip: process.getuid?.() !== 0 && 'needs root to chown' }, async (t) => {
  const sandbox = makeSandbox(t);
  const mtime = new Date('2012-02-02T00:00:00Z');
  const { data } = await ourBundle('statelite.tgz', (members) => {
    const file = members.find((m) => m.name.endsWith('/extra/install/mydir/a.txt'))!;
    Object.assign(file, { uid: 4242, gid: 4343, mode: 0o4750, mtime });
    members.push({ name: `./${STATELITE}/extra/install/mydir/link`, type: 'symlink', linkname: 'a.txt', uid: 4242, gid: 4343, mtime });
    // A subdirectory a service owns (setgid, so its files take its group), with a file in it.
    members.push({ name: `./${STATELITE}/extra/install/mydir/spool/`, type: 'directory', mode: 0o2770, uid: 4242, gid: 4343, mtime });
    members.push({ name: `./${STATELITE}/extra/install/mydir/spool/job`, data: Buffer.from('queued\n'), mode: 0o640, uid: 4242, gid: 4343, mtime });
  });
  const r = sandbox.run([save(sandbox, 'owners.tgz', data)]);
  t.equal(r.code, 0, r.stderr);
  const file = fs.statSync(path.join(sandbox.root, '/install/custom/mydir/a.txt'));
  t.same([file.uid, file.gid, file.mode & 0o7777, file.mtimeMs], [4242, 4343, 0o4750, mtime.getTime()]);
  const link = fs.lstatSync(path.join(sandbox.root, '/install/custom/mydir/link'));
  t.same([link.uid, link.gid, link.mtimeMs], [4242, 4343, mtime.getTime()]);
  const spool = fs.statSync(path.join(sandbox.root, '/install/custom/mydir/spool'));
  t.same([spool.uid, spool.gid, spool.mode & 0o7777, spool.mtimeMs], [4242, 4343, 0o2770, mtime.getTime()], 'a subdirectory made keeps its owner, mode and mtime');
  t.equal(fs.readFileSync(path.join(sandbox.root, '/install/custom/mydir/spool/job'), 'utf8'), 'queued\n');
});

t.test('names that are not UTF-8 are refused, in the tar and in the statelite tree; never written under another name', async (t) => {
  const sandbox = makeSandbox(t);
  const latin1 = Buffer.from('caf\xe9', 'latin1');
  // GNU tar and cpio keep a name's bytes: the bundles are made with them, as on an old system.
  const dir = path.join(sandbox.root, 'unpacked');
  fs.mkdirSync(dir);
  execFileSync('tar', ['xzf', path.join(FIXTURES, 'statelite.tgz'), '-C', dir]);
  const image = path.join(dir, STATELITE);
  fs.writeFileSync(Buffer.concat([Buffer.from(`${image}/extra/install/mydir/`), latin1]), 'x\n');
  execFileSync('tar', ['czf', path.join(sandbox.root, 'bundles/tar-name.tgz'), '-C', dir, '.']);
  fs.rmSync(Buffer.concat([Buffer.from(`${image}/extra/install/mydir/`), latin1]));

  const tree = path.join(sandbox.root, 'tree');
  fs.mkdirSync(tree);
  execFileSync('sh', ['-c', 'zcat "$1" | (cd "$2" && cpio -idm --quiet)', 'sh', `${image}/rootimgtree.gz`, tree]);
  fs.writeFileSync(Buffer.concat([Buffer.from(`${tree}/rootimg/etc/`), latin1]), 'x\n');
  const cpio = execFileSync('sh', ['-c', 'cd "$1" && find rootimg | cpio -H newc -o --quiet', 'sh', tree]);
  fs.writeFileSync(`${image}/rootimgtree.gz`, gzipSync(cpio));
  execFileSync('tar', ['czf', path.join(sandbox.root, 'bundles/cpio-name.tgz'), '-C', dir, '.']);

  const before = sandbox.files();
  for (const [bundle, said] of [
    ['tar-name.tgz', `refusing member ./${STATELITE}/extra/install/mydir/caf\\xe9: its name is not valid UTF-8`],
    ['cpio-name.tgz', `${STATELITE}/rootimgtree.gz: cpio archive, offset`],
  ]) {
    const file = path.join(sandbox.root, 'bundles', bundle);
    const r = sandbox.run([file]);
    t.equal(r.code, 1, bundle);
    t.match(r.stderr, said);
    if (bundle === 'cpio-name.tgz') t.match(r.stderr, 'the name rootimg/etc/caf\\xe9 is not valid UTF-8');
    t.same(sandbox.files(), before, 'nothing written');
    const v = verify(file);
    t.equal(v.status, 1, `verify ${bundle}`);
    t.match(v.stderr, 'is not valid UTF-8');
  }
});

t.test('verify refuses what the import refuses: a member twice, a link for a file, a file the manifest names missing, a damaged tree inside a good gzip, a stray member', async (t) => {
  const sandbox = makeSandbox(t);
  const members = await fixtureMembers('netboot.tgz');
  const without = save(sandbox, 'no-kernel.tgz', await packBundle(members.filter((m) => !m.name.endsWith('/kernel'))));
  const stray = save(sandbox, 'stray.tgz', await packBundle([...members, { name: `./${NETBOOT}/manifest.xml~`, data: Buffer.from('x') }]));
  const { data: cut } = await ourBundle('statelite.tgz', (list) => {
    const tree = list.find((m) => m.name.endsWith('/rootimgtree.gz'))!;
    tree.data = gzipSync(execFileSync('gzip', ['-dc'], { input: tree.data }).subarray(0, 700));
  });
  const truncated = save(sandbox, 'cut-tree.tgz', cut);
  const kernel = members.find((m) => m.name.endsWith('/kernel'))!;
  const twice = save(sandbox, 'twice.tgz', await packBundle([...members, kernel]));
  const linked = save(sandbox, 'linked.tgz', await packBundle(members.map((m) => (m === kernel ? { name: m.name, type: 'symlink' as const, linkname: '/boot/vmlinuz' } : m))));
  for (const [bundle, said] of [
    [twice, `member ${NETBOOT}/kernel appears twice in the bundle`],
    [linked, `refusing member ${NETBOOT}/kernel: a link where the manifest expects a file`],
    [without, `bundle lacks ${NETBOOT}/kernel, which the manifest names`],
    [stray, `refusing member ${NETBOOT}/manifest.xml~: the manifest names nothing of that name`],
    [truncated, `${STATELITE}/rootimgtree.gz: cpio archive, offset`],
  ]) {
    const v = verify(bundle);
    t.equal(v.status, 1, path.basename(bundle));
    t.match(v.stderr, said);
    const r = sandbox.run([bundle]);
    t.equal(r.code, 1);
    t.match(r.stderr, said, 'the import says the same');
  }
});

t.test('-p takes a noderange: ranges and exclusions', async (t) => {
  const sandbox = makeSandbox(t);
  const r = sandbox.run([sandbox.bundle('statelite.tgz'), '-p', 'node[1-2],-node2']);
  t.equal(r.code, 0, r.stderr);
  t.same(sandbox.tables().postscripts.map((row) => row.node), ['xcatdefaults', 'node1'], 'node2 left out');
  const bad = sandbox.run([sandbox.bundle('statelite.tgz'), '-p', '/node.*']);
  t.equal(bad.code, 1);
  t.match(bad.stderr, "noderange '/node.*': regular expressions, node files, intersections and ':' or '+' ranges are not supported");
});

t.test('the same extra listed twice is one file to place: the admin\'s file kept as .ORIG, and put back when the import fails', async (t) => {
  const sandbox = makeSandbox(t);
  const { data } = await ourBundle('netboot.tgz', (members) =>
    editManifest(members, (xml) => xml.replace('  <kernel>', extraXml('/install/postscripts', '/install/postscripts/myscript2'))),
  );
  const bundle = save(sandbox, 'listed-twice.tgz', data);
  const script = path.join(sandbox.root, '/install/postscripts/myscript2');
  fs.mkdirSync(path.dirname(script), { recursive: true });
  fs.writeFileSync(script, 'ADMIN ORIGINAL\n');
  const blocker = path.join(path.dirname(sandbox.db), '.tables.json.tmp');
  fs.mkdirSync(blocker); // the table write fails at the very end
  const failed = sandbox.run([bundle]);
  t.equal(failed.code, 1, 'the table write failed');
  t.equal(fs.readFileSync(script, 'utf8'), 'ADMIN ORIGINAL\n', 'put back');
  t.notOk(fs.existsSync(`${script}.ORIG`));
  fs.rmdirSync(blocker);
  const r = sandbox.run([bundle]);
  t.equal(r.code, 0, r.stderr);
  t.equal(fs.readFileSync(`${script}.ORIG`, 'utf8'), 'ADMIN ORIGINAL\n', "the admin's file is the .ORIG");
});

t.test('an extra over a file the new statelite tree has, on a first import: placed, the tree\'s own kept as .ORIG', async (t) => {
  const sandbox = makeSandbox(t);
  const { data } = await ourBundle('statelite.tgz', (members) => {
    editManifest(members, (xml) => xml.replace('  <kernel>', extraXml(`${TREE}/etc`, '/root/passwd')));
    members.push({ name: `./${STATELITE}/extra/passwd`, data: Buffer.from('root:x:0:0::/root:/bin/sh\n') });
  });
  const r = sandbox.run([save(sandbox, 'over-tree.tgz', data)]);
  t.equal(r.code, 0, r.stderr);
  t.equal(fs.readFileSync(path.join(sandbox.root, TREE, 'etc/passwd'), 'utf8'), 'root:x:0:0::/root:/bin/sh\n');
  t.ok(fs.existsSync(path.join(sandbox.root, TREE, 'etc/passwd.ORIG')), "the tree's passwd kept, as xCAT's import would");
});

t.test('a file extra named like a path inside a directory extra (-e /install/mydir/a.txt -e /install/mydir): both placed, verify agrees', async (t) => {
  const sandbox = makeSandbox(t);
  const { data, members } = await ourBundle('statelite.tgz', (list) => {
    editManifest(list, (xml) => xml.replace('  <kernel>', extraXml('/install/fileextra', '/install/mydir/a.txt')));
    list.push({ name: `./${STATELITE}/extra/a.txt`, data: Buffer.from('the file extra\n') });
  });
  const bundle = save(sandbox, 'file-in-dir.tgz', data);
  t.equal(verify(bundle).status, 0, 'verify passes it');
  const r = sandbox.run([bundle]);
  t.equal(r.code, 0, r.stderr);
  t.equal(fs.readFileSync(path.join(sandbox.root, '/install/fileextra/a.txt'), 'utf8'), 'the file extra\n');
  const inDir = members.find((m) => m.name.endsWith('/extra/install/mydir/a.txt'))!.data!;
  t.ok(fs.readFileSync(path.join(sandbox.root, '/install/custom/mydir/a.txt')).equals(inDir), 'the directory extra\'s own a.txt');
});

t.test('what the manifest holds that no table has a place for is named in warnings, by the import, verify and inspect', async (t) => {
  const sandbox = makeSandbox(t);
  const { data } = await ourBundle('netboot.tgz', (members) => editManifest(members, (xml) =>
    xml.replace('<osname>', '<futurecolumn>important</futurecolumn>\n    <osname>').replace('</xcatimage>', '  <kitcomponent><name>x</name></kitcomponent>\n</xcatimage>')));
  const bundle = save(sandbox, 'unknown.tgz', data);
  const expected = [
    `Warning: ${NETBOOT}/manifest.xml: <osimage><futurecolumn> is not a known column; ignored`,
    `Warning: ${NETBOOT}/manifest.xml: <kitcomponent> is unknown; ignored`,
  ];
  const r = sandbox.run([bundle]);
  t.equal(r.code, 0, r.stderr);
  for (const line of expected) t.match(r.stderr, line, `import: ${line}`);
  const v = verify(bundle);
  t.equal(v.status, 0, v.stderr);
  for (const line of expected) t.match(v.stderr, line, `verify: ${line}`);
  const i = spawnSync(NODE, [...NODE_ARGS, IMGPORT, 'inspect', bundle], { encoding: 'utf8' });
  for (const line of expected) t.match(i.stderr, line, `inspect: ${line}`);
});

t.test("verify reads an xCAT bundle's litefile.csv as the import does: broken quoting is refused by both", async (t) => {
  const sandbox = makeSandbox(t);
  const members = await fixtureMembers('statelite.tgz');
  members.find((m) => m.name.endsWith('/litefile.csv'))!.data = Buffer.from('"img","/etc/x\n');
  const bundle = save(sandbox, 'bad-litefile.tgz', await packBundle(members));
  const said = new RegExp(`${STATELITE}/litefile\\.csv: line 1`);
  const r = sandbox.run([bundle]);
  t.equal(r.code, 1);
  t.match(r.stderr, said);
  const v = verify(bundle);
  t.equal(v.status, 1, 'verify refuses it too');
  t.match(v.stderr, said);
});

t.test('a tar whose last member is a directory header with a size (POSIX lets it carry one, no data follows) reads whole', async (t) => {
  const sandbox = makeSandbox(t);
  const members = await fixtureMembers('statelite.tgz');
  const plain = await packBundle(members, true);
  // A ustar directory header whose size field says 1024, then the end-of-archive blocks.
  const header = Buffer.alloc(512);
  const put = (at: number, text: string) => header.write(text, at, 'latin1');
  put(0, `./${STATELITE}/extra/install/mydir/sized/`);
  put(100, '0000755\0');
  put(108, '0000000\0');
  put(116, '0000000\0');
  put(124, '00000002000\0');
  put(136, '14000000000\0');
  put(148, '        ');
  put(156, '5');
  put(257, 'ustar\u000000');
  const sum = header.reduce((total, byte) => total + byte, 0);
  put(148, `${sum.toString(8).padStart(6, '0')}\0 `);
  const bundle = save(sandbox, 'dir-size.tgz', gzipSync(Buffer.concat([plain.subarray(0, plain.length - 1024), header, Buffer.alloc(1024)])));
  t.equal(spawnSync('tar', ['tzf', bundle]).status, 0, 'GNU tar reads it');
  const v = verify(bundle);
  t.equal(v.status, 0, v.stderr);
  const r = sandbox.run([bundle]);
  t.equal(r.code, 0, r.stderr);
  t.ok(fs.statSync(path.join(sandbox.root, 'install/custom/mydir/sized')).isDirectory());
});
