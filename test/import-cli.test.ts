/** imgimport from the command line: every way a bundle arrives, and xCAT's refusals in xCAT's words. */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import t from 'tap';
import { FIXTURES, IMGPORT, INITIAL_TABLES, makeSandbox, normalTables, type ImportSandbox } from './helpers/import-sandbox.js';
import { fixtureMembers, ourBundle, packBundle } from './helpers/import-bundles.js';
import { NODE, NODE_ARGS } from './helpers/node-command.js';

const NETBOOT_KERNEL = '/install/netboot/rhels8.5.0/ppc64le/compute/kernel';

/** What a plain import of the fixture netboot.tgz leaves: the reference for the other ways in. */
function referenceImport(t: Tap.Test): ReturnType<ImportSandbox['files']> {
  const sandbox = makeSandbox(t);
  const r = sandbox.run([sandbox.bundle('netboot.tgz')]);
  t.equal(r.code, 0, r.stderr);
  return sandbox.files();
}

function assertUntouched(t: Tap.Test, sandbox: ImportSandbox, before: ReturnType<ImportSandbox['files']>): void {
  t.same(sandbox.files(), before, 'files unchanged');
  t.same(normalTables(sandbox.tables()), normalTables(INITIAL_TABLES), 'tables unchanged');
}

t.test('a zstd bundle on standard input and a plain tar with -n import as the gzip one does', async (t) => {
  const expected = referenceImport(t);
  const tarBytes = gunzipSync(fs.readFileSync(makeSandbox(t).bundle('netboot.tgz')));

  const viaStdin = makeSandbox(t);
  const zstd = spawnSync('zstd', ['-q', '-c'], { input: tarBytes });
  t.equal(zstd.status, 0, String(zstd.stderr));
  const z = viaStdin.run(['-'], zstd.stdout);
  t.equal(z.code, 0, z.stderr);
  t.match(z.stdout, /Successfully imported the image rhels8\.5\.0-ppc64le-netboot-compute\.\n$/);
  t.same(viaStdin.files(), expected, 'zstd on stdin: the same files');

  const plain = makeSandbox(t);
  const file = path.join(plain.root, 'bundles', 'netboot.tar');
  fs.writeFileSync(file, tarBytes);
  const p = plain.run([file, '-n']);
  t.equal(p.code, 0, p.stderr);
  t.same(plain.files(), expected, 'plain tar: the same files');
});

t.test('-R reads the bundle over ssh, its path quoted for the remote shell', async (t) => {
  const expected = referenceImport(t);
  const bin = fs.mkdtempSync(path.join(os.tmpdir(), 'imgport-ssh-'));
  t.teardown(() => fs.rmSync(bin, { recursive: true, force: true }));
  // Stand-in ssh: after its options and the host, runs the remote words with a local shell, as sshd would.
  fs.writeFileSync(path.join(bin, 'ssh'), '#!/bin/sh\nwhile [ "$1" != -- ]; do shift; done\nshift 2\nexec sh -c "$*"\n', { mode: 0o755 });
  const originalPath = process.env.PATH;
  process.env.PATH = `${bin}:${originalPath}`;
  const sandbox = makeSandbox(t);
  process.env.PATH = originalPath;
  const remoteDir = path.join(bin, "remote dir $(touch pwned)");
  fs.mkdirSync(remoteDir);
  const remote = path.join(remoteDir, "it's here.tgz");
  fs.copyFileSync(sandbox.bundle('netboot.tgz'), remote);
  const r = sandbox.run([remote, '-R', 'root@example']);
  t.equal(r.code, 0, r.stderr);
  t.same(sandbox.files(), expected, 'the same files as a local import');
  t.notOk(fs.existsSync(path.join(bin, 'pwned')), 'nothing in the path ran as a command');

  const missing = sandbox.run([path.join(remoteDir, 'nothing.tgz'), '-R', 'root@example']);
  t.equal(missing.code, 1);
  t.match(missing.stderr, /^Error: cannot read .*nothing\.tgz from root@example: .*No such file or directory/m, missing.stderr);

  // An empty host (`-R "$HOST"`, HOST unset) is refused, never taken for a local import of the same path.
  const before = sandbox.files();
  for (const [args, refusal] of [
    [[remote, '-R', ''], "Error: bad remote host ''\n"],
    [['-', '-R', 'root@example'], "Error: - (standard input) names no file on root@example: give the bundle's path there\n"],
  ] as const) {
    const refused = sandbox.run([...args, '--dry-run']);
    t.equal(refused.code, 1, args.join(' '));
    t.match(refused.stderr, refusal);
    t.notMatch(refused.stdout, /would/, 'nothing planned');
    const verify = spawnSync(NODE, [...NODE_ARGS, IMGPORT, 'verify', ...args], { encoding: 'utf8' });
    t.equal(verify.status, 1, `imgport verify ${args.join(' ')}`);
    t.match(verify.stderr, refusal);
  }
  t.same(sandbox.files(), before);
});

t.test('a directory given as the bundle: an error naming it, no stack', async (t) => {
  const sandbox = makeSandbox(t);
  const before = sandbox.files();
  const dir = path.join(sandbox.root, 'bundles');
  const r = sandbox.run([dir]);
  t.equal(r.code, 1);
  t.equal(r.stderr, `Error: cannot read bundle ${dir}: it is a directory\n`);
  const gone = sandbox.run([path.join(dir, 'nosuch.tgz')]);
  t.equal(gone.code, 1);
  t.equal(gone.stderr, `Error: cannot read bundle ${path.join(dir, 'nosuch.tgz')}: no such file or directory\n`, 'a missing bundle in words');
  assertUntouched(t, sandbox, before);
});

t.test('imgport inspect lists every member, the top directory as ./', async (t) => {
  const r = spawnSync(NODE, [...NODE_ARGS, IMGPORT, 'inspect', path.join(FIXTURES, 'netboot.tgz')], { encoding: 'utf8' });
  t.equal(r.status, 0, r.stderr);
  const members = r.stdout.slice(r.stdout.indexOf('Members:\n') + 'Members:\n'.length).split('\n').filter(Boolean).map((line) => line.trim().split(/\s+/).slice(1).join(' '));
  const listed = execFileSync('tar', ['-tzf', path.join(FIXTURES, 'netboot.tgz')], { encoding: 'utf8' }).split('\n').filter(Boolean);
  t.same(members, listed.map((name) => {
    const bare = name.replace(/^\.\//, '');
    return name.endsWith('/') ? `[directory] ${bare || './'}` : bare;
  }), 'as tar lists them, in order');
});

t.test("media=required without the OS media: xCAT's message, nothing written", async (t) => {
  const sandbox = makeSandbox(t);
  fs.rmSync(path.join(sandbox.root, 'install/rhels8.5.0'), { recursive: true });
  const before = sandbox.files();
  const bundle = (await ourBundle('install.tgz')).data;
  t.match((await fixtureMembers('install.tgz')).find((m) => m.name.endsWith('manifest.xml'))!.data!.toString(), '<media>required</media>');
  const r = sandbox.run(['-'], bundle);
  t.equal(r.code, 1);
  t.match(r.stderr, /^Error: This image requires that you first copy media for rhels8\.5\.0-x86_64 \(\/install\/rhels8\.5\.0\/x86_64 does not exist\)$/m);
  assertUntouched(t, sandbox, before);
});

t.test("-p: unknown nodes are skipped with xCAT's warning; none known is xCAT's error and nothing is written", async (t) => {
  const some = makeSandbox(t);
  const r = some.run([some.bundle('statelite.tgz'), '-p', 'node2,ghost1,ghost2']);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stderr, 'Warning: The following nodes will be skipped because they are not in the nodelist table.\n  ghost1,ghost2\n');
  t.same(some.tables().postscripts.filter((row) => row.node !== 'xcatdefaults'), [{ node: 'node2', postscripts: 'myscript1', postbootscripts: 'myscript2' }], 'node2 got the postscripts');

  const none = makeSandbox(t);
  const before = none.files();
  const n = none.run([none.bundle('netboot.tgz'), '-p', 'ghost1,ghost2']);
  t.equal(n.code, 1);
  t.match(n.stderr, /^Error: The nodes ghost1,ghost2 are not defined in xCAT DB\.$/m);
  assertUntouched(t, none, before);
});

t.test("a bundle without a manifest, or with one the import would refuse: xCAT's words, from imgimport and imgport verify", async (t) => {
  const sandbox = makeSandbox(t);
  const before = sandbox.files();
  const members = (await fixtureMembers('netboot.tgz')).filter((m) => !m.name.endsWith('manifest.xml'));
  const noManifest = path.join(sandbox.root, 'bundles', 'no-manifest.tgz');
  fs.writeFileSync(noManifest, await packBundle(members));
  const r = sandbox.run([noManifest]);
  t.equal(r.code, 1);
  t.match(r.stderr, /^Error: Failed to find manifest\.xml file in image bundle \(.*no-manifest\.tgz has no rhels8\.5\.0-ppc64le-netboot-compute\/manifest\.xml\)$/m);
  assertUntouched(t, sandbox, before);
  const verifyMissing = spawnSync(NODE, [...NODE_ARGS, IMGPORT, 'verify', noManifest], { encoding: 'utf8' });
  t.equal(verifyMissing.status, 1);
  t.match(verifyMissing.stderr, /Failed to find manifest\.xml file in image bundle/);

  const noArch = path.join(sandbox.root, 'bundles', 'no-osarch.tgz');
  const { data } = await ourBundle('netboot.tgz', (all) => {
    const manifest = all.find((m) => m.name.endsWith('manifest.xml'))!;
    manifest.data = Buffer.from(manifest.data!.toString().replace(/<osarch>[^<]*<\/osarch>/, ''));
  });
  fs.writeFileSync(noArch, data);
  const imported = sandbox.run([noArch]);
  t.equal(imported.code, 1);
  t.match(imported.stderr, "The 'osarch' field is not defined in manifest.xml.");
  const verify = spawnSync(NODE, [...NODE_ARGS, IMGPORT, 'verify', noArch], { encoding: 'utf8' });
  t.equal(verify.status, 1, 'verify refuses what the import refuses');
  t.match(verify.stderr, "The 'osarch' field is not defined in manifest.xml.");
  t.notOk(fs.existsSync(path.join(sandbox.root, NETBOOT_KERNEL)));
});

t.test("imported again: named files and file extras kept as .ORIG, a directory extra's files and a kit's postscripts overwritten (xCAT's cp -f)", async (t) => {
  const sandbox = makeSandbox(t);
  const bundle = sandbox.bundle('statelite.tgz');
  t.equal(sandbox.run([bundle]).code, 0);
  const real = (logical: string) => path.join(sandbox.root, logical);
  fs.writeFileSync(real('/install/custom/mydir/a.txt'), 'changed by the admin');
  fs.writeFileSync(real('/install/postscripts/myscript1'), 'changed by the admin');
  const again = sandbox.run([bundle]);
  t.equal(again.code, 0, again.stderr);
  t.notOk(fs.existsSync(real('/install/custom/mydir/a.txt.ORIG')), 'a directory extra: no .ORIG');
  t.not(fs.readFileSync(real('/install/custom/mydir/a.txt'), 'utf8'), 'changed by the admin', 'overwritten by the bundle');
  t.equal(fs.readFileSync(real('/install/postscripts/myscript1.ORIG'), 'utf8'), 'changed by the admin', 'a file extra: the old one kept as .ORIG');
  t.ok(fs.existsSync(real('/install/netboot/rhels8.5.0/x86_64/compute/kernel.ORIG')), 'a named file: .ORIG');

  const kits = makeSandbox(t);
  const kitBundle = kits.bundle('kit.tgz');
  t.equal(kits.run([kitBundle]).code, 0);
  const kreal = (logical: string) => path.join(kits.root, logical);
  t.equal(fs.statSync(kreal('/install/postscripts/mykit-post.sh')).mode & 0o777, 0o755, 'a kit postscript is executable');
  const link = '/install/post/otherpkgs/rhels8.5.0/x86_64/mykit-1.0-1-rhels-8-x86_64';
  t.equal(fs.readlinkSync(kreal(link)), '/install/kits/mykit-1.0-1/repos/mykit-1.0-1-rhels-8-x86_64', 'otherpkgdir links to the kit repository');
  t.notMatch(kits.run([kitBundle, '--dry-run']).stdout, link, 'the link already there is left as it is');
  fs.rmSync(kreal(link));
  fs.mkdirSync(kreal(link));
  const dry = kits.run([kitBundle, '--dry-run']);
  t.match(dry.stdout, 'overwrite /install/postscripts/mykit-post.sh');
  t.notMatch(dry.stdout, link, 'a directory at the link is left as it is');
  const kitAgain = kits.run([kitBundle]);
  t.equal(kitAgain.code, 0, kitAgain.stderr);
  t.notOk(fs.existsSync(kreal('/install/postscripts/mykit-post.sh.ORIG')), 'a kit postscript: no .ORIG');
  t.ok(fs.existsSync(kreal('/install/kits/mykit-1.0-1.ORIG')), 'the kit directory itself: .ORIG');
  t.ok(fs.lstatSync(kreal(link)).isDirectory(), 'the directory is still there');
});

t.test('a kit whose otherpkgdir lies outside the allowed destinations imports, with a warning and no link', async (t) => {
  const sandbox = makeSandbox(t);
  const { data } = await ourBundle('kit.tgz', (all) => {
    const manifest = all.find((m) => m.name.endsWith('manifest.xml'))!;
    manifest.data = Buffer.from(manifest.data!.toString().replace(/<otherpkgdir>[^<]*<\/otherpkgdir>/, '<otherpkgdir>/srv/otherpkgs</otherpkgdir>'));
  });
  const r = sandbox.run(['-'], data);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stderr, 'Warning: /srv/otherpkgs/mykit-1.0-1-rhels-8-x86_64 is outside the allowed destinations: the kit repository is not linked there (--allow-dest /srv/otherpkgs would).');
  t.notOk(fs.existsSync(path.join(sandbox.root, 'srv')), 'nothing written there');
});

t.test("a file extra gets plain cp's mode (no setuid, setgid, sticky or group/world write); a directory extra's files keep theirs", async (t) => {
  const sandbox = makeSandbox(t);
  const { data } = await ourBundle('statelite.tgz', (members) => {
    members.find((m) => m.name.endsWith('/extra/myscript1'))!.mode = 0o7777;
    members.find((m) => m.name.endsWith('/extra/install/mydir/a.txt'))!.mode = 0o640;
  });
  const r = sandbox.run(['-'], data);
  t.equal(r.code, 0, r.stderr);
  const modeOf = (logical: string) => fs.statSync(path.join(sandbox.root, logical)).mode & 0o7777;
  t.equal(modeOf('/install/postscripts/myscript1'), 0o755, 'file extra: 07777 -> 0755');
  t.equal(modeOf('/install/custom/mydir/a.txt'), 0o640, 'directory extra: kept (cp -a)');
});
