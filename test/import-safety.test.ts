/** imgimport's transaction and safety: all-or-nothing, verified, refusing hostile bundles. */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { IMGIMPORT, IMGPORT, makeSandbox, normalTables, INITIAL_TABLES, startHalfWay } from './helpers/import-sandbox.js';
import { ourBundle, packBundle, type Member } from './helpers/import-bundles.js';
import { NODE, NODE_ARGS } from './helpers/node-command.js';
import { PACK_LOCK_NAME } from '../src/pack/lock.js';

const NETBOOT_IMAGE = 'rhels8.5.0-ppc64le-netboot-compute';

/** Files and tables exactly as before, and no staging, lock or journal left. */
function assertUntouched(t: Tap.Test, sandbox: ReturnType<typeof makeSandbox>, before: ReturnType<typeof sandbox.files>) {
  t.same(sandbox.files(), before, 'files unchanged');
  t.same(normalTables(sandbox.tables()), normalTables(INITIAL_TABLES), 'tables unchanged');
  const state = path.join(sandbox.root, 'var/lib/imgport/imports');
  t.same(fs.existsSync(state) ? fs.readdirSync(state) : [], [], 'no lock or journal');
}

function write(sandbox: { root: string }, name: string, data: Buffer): string {
  const file = path.join(sandbox.root, 'bundles', name);
  fs.writeFileSync(file, data);
  return file;
}

t.test('manifest-first bundle with SHA256SUMS imports; imgport verify says OK; inspect shows it', async (t) => {
  const sandbox = makeSandbox(t);
  const bundle = write(sandbox, 'ours.tgz', (await ourBundle('netboot.tgz')).data);
  const r = sandbox.run([bundle]);
  t.equal(r.code, 0, r.stderr);
  t.equal(fs.readFileSync(path.join(sandbox.root, 'install/netboot/rhels8.5.0/ppc64le/compute/kernel')).length, 300000);
  t.notOk(fs.readdirSync(path.join(sandbox.root, 'install')).some((n) => n.startsWith('.imgport')), 'staging removed');
  const verify = spawnSync(NODE, [...NODE_ARGS, IMGPORT, 'verify', bundle], { encoding: 'utf8' });
  t.equal(verify.status, 0, verify.stderr);
  t.match(verify.stdout, `${NETBOOT_IMAGE}/kernel: OK`);
  t.match(verify.stdout, `${NETBOOT_IMAGE}/manifest.xml: OK`);
  const inspect = spawnSync(NODE, [...NODE_ARGS, IMGPORT, 'inspect', bundle], { encoding: 'utf8' });
  t.equal(inspect.status, 0, inspect.stderr);
  t.match(inspect.stdout, 'Format: gzip, with checksums (SHA256SUMS)');
  t.match(inspect.stdout, '    provmethod=netboot');
  t.match(inspect.stdout, `      300000  ${NETBOOT_IMAGE}/kernel\n`);
  const xcat = spawnSync(NODE, [...NODE_ARGS, IMGPORT, 'inspect', sandbox.bundle('netboot.tgz')], { encoding: 'utf8' });
  t.match(xcat.stdout, 'Format: gzip, without checksums');
});

t.test('--dry-run prints the plan and writes nothing', async (t) => {
  const sandbox = makeSandbox(t);
  fs.mkdirSync(path.join(sandbox.root, 'install/netboot/rhels8.5.0/ppc64le/compute'), { recursive: true });
  fs.writeFileSync(path.join(sandbox.root, 'install/netboot/rhels8.5.0/ppc64le/compute/kernel'), 'old');
  const before = sandbox.files();
  const r = sandbox.run([sandbox.bundle('netboot.tgz'), '-p', 'node2', '--dry-run']);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, 'write /install/netboot/rhels8.5.0/ppc64le/compute/kernel (file, 300000 bytes');
  t.match(r.stdout, 'rename /install/netboot/rhels8.5.0/ppc64le/compute/kernel to /install/netboot/rhels8.5.0/ppc64le/compute/kernel.ORIG');
  t.match(r.stdout, 'mkdir /install/custom/netboot/rh');
  t.match(r.stdout, 'write /install/postscripts/myscript2');
  t.match(r.stdout, `set osimage row: imagename=${NETBOOT_IMAGE}`);
  t.match(r.stdout, 'Nothing was written.');
  assertUntouched(t, sandbox, before);
});

t.test('a checksum mismatch names the member and leaves nothing', async (t) => {
  const sandbox = makeSandbox(t);
  // Corrupt the kernel's bytes after SHA256SUMS was computed: re-pack with one byte changed.
  const tampered = await ourBundle('netboot.tgz');
  const members = tampered.members;
  const kernel = members.find((m) => m.name.endsWith('/kernel'))!;
  const sums = (await import('./helpers/import-bundles.js')).sha256sums(members, tampered.image);
  kernel.data = Buffer.from(kernel.data!);
  kernel.data[1000] ^= 0xff;
  const bad = await packBundle([...members, { name: `./${tampered.image}/SHA256SUMS`, data: Buffer.from(sums) }]);
  const before = sandbox.files();
  const r = sandbox.run([write(sandbox, 'bad.tgz', bad)]);
  t.equal(r.code, 1);
  t.match(r.stderr, `checksum mismatch for member ${NETBOOT_IMAGE}/kernel`);
  assertUntouched(t, sandbox, before);
  const verify = spawnSync(NODE, [...NODE_ARGS, IMGPORT, 'verify', path.join(sandbox.root, 'bundles/bad.tgz')], { encoding: 'utf8' });
  t.equal(verify.status, 1);
  t.match(verify.stderr, `checksum mismatch for member ${NETBOOT_IMAGE}/kernel`);
});

t.test('a truncated bundle leaves nothing', async (t) => {
  const sandbox = makeSandbox(t);
  const whole = fs.readFileSync(sandbox.bundle('statelite.tgz'));
  const before = sandbox.files();
  for (const fraction of [0.3, 0.9]) {
    const r = sandbox.run([write(sandbox, 'cut.tgz', whole.subarray(0, Math.floor(whole.length * fraction)))]);
    t.equal(r.code, 1, `cut at ${fraction}`);
    t.match(r.stderr, /truncated/);
    assertUntouched(t, sandbox, before);
  }
});

t.test('destinations outside INSTALLDIR and XCATROOT/share are refused, all listed; --allow-dest allows', async (t) => {
  const sandbox = makeSandbox(t);
  const { data } = await ourBundle('netboot.tgz', (members) => {
    const manifest = members.find((m) => m.name.endsWith('/manifest.xml'))!;
    manifest.data = Buffer.from(
      manifest.data!.toString()
        .replace('<kernel>/install/netboot/rhels8.5.0/ppc64le/compute/kernel', '<kernel>/boot/kernel')
        .replace('<dest>/install/postscripts</dest>', '<dest>/etc/cron.d</dest>'),
    );
  });
  const bundle = write(sandbox, 'outside.tgz', data);
  const before = sandbox.files();
  const r = sandbox.run([bundle]);
  t.equal(r.code, 1);
  t.match(r.stderr, '/boot/kernel');
  t.match(r.stderr, '/etc/cron.d');
  assertUntouched(t, sandbox, before);
  t.notOk(fs.existsSync(path.join(sandbox.root, 'boot')));
  const allowed = sandbox.run([bundle, '--allow-dest', '/boot', '--allow-dest', '/etc/cron.d']);
  t.equal(allowed.code, 0, allowed.stderr);
  t.ok(fs.existsSync(path.join(sandbox.root, 'boot/kernel')));
});

t.test('hostile member names and links are refused', async (t) => {
  const cases: [string, Member[], RegExp][] = [
    ['dotdot', [{ name: './img/../../etc/passwd', data: Buffer.from('x') }], /contains '\.\.'/],
    ['absolute', [{ name: '/etc/passwd', data: Buffer.from('x') }], /absolute name/],
    ['second image', [{ name: './img/a', data: Buffer.from('x') }, { name: './other/b', data: Buffer.from('x') }], /outside the image directory img\//],
  ];
  for (const [label, members, message] of cases) {
    const sandbox = makeSandbox(t);
    const before = sandbox.files();
    const r = sandbox.run([write(sandbox, `${label}.tgz`, await packBundle(members))]);
    t.equal(r.code, 1, label);
    t.match(r.stderr, message, label);
    t.same(sandbox.files(), before, `${label}: nothing written`);
  }
  // A symbolic link where the manifest expects the kernel.
  const sandbox = makeSandbox(t);
  const { data } = await ourBundle('netboot.tgz', (members) => {
    const kernel = members.find((m) => m.name.endsWith('/kernel'))!;
    Object.assign(kernel, { type: 'symlink', linkname: '/etc/shadow', data: undefined });
  });
  const before = sandbox.files();
  const r = sandbox.run([write(sandbox, 'link.tgz', data)]);
  t.equal(r.code, 1);
  t.match(r.stderr, `refusing member ${NETBOOT_IMAGE}/kernel: a link`);
  assertUntouched(t, sandbox, before);
});

t.test('a symlinked directory of the admin leading out of INSTALLDIR is used when allowed; a destination that is itself a link is refused before streaming', async (t) => {
  const sandbox = makeSandbox(t);
  const elsewhere = path.join(sandbox.root, 'elsewhere');
  fs.mkdirSync(elsewhere);
  fs.symlinkSync(elsewhere, path.join(sandbox.root, 'install/custom'));
  const notAllowed = sandbox.run([sandbox.bundle('netboot.tgz')]);
  t.equal(notAllowed.code, 1, 'a link out of the allowed destinations is not written through by default');
  t.match(notAllowed.stderr, 'refusing to import: /install/custom is a symbolic link that leads out of the allowed destinations (if it is yours, allow where it leads with --allow-dest)');
  t.same(fs.readdirSync(elsewhere), [], 'nothing written there');
  const r = sandbox.run([sandbox.bundle('netboot.tgz'), '--allow-dest', '/elsewhere']);
  t.equal(r.code, 0, r.stderr);
  const byEnvironment = spawnSync(NODE, [...NODE_ARGS, IMGIMPORT, sandbox.bundle('netboot.tgz'), '--root', sandbox.root], {
    encoding: 'utf8',
    env: { ...process.env, IMGPORT_ALLOW_DEST: '/nowhere:/elsewhere' },
  });
  t.equal(byEnvironment.status, 0, `IMGPORT_ALLOW_DEST allows it too: ${byEnvironment.stderr}`);
  t.ok(fs.lstatSync(path.join(sandbox.root, 'install/custom')).isSymbolicLink(), 'the link stays');
  t.ok(fs.readdirSync(path.join(elsewhere, 'netboot/rh')).length > 0, 'files went through the admin link');
  t.notOk(fs.readdirSync(elsewhere).some((n) => n.startsWith('.imgport')), 'no staging left there');

  const other = makeSandbox(t);
  const dir = path.join(other.root, 'install/netboot/rhels8.5.0/ppc64le/compute');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(other.root, 'target'), 'not a kernel');
  fs.symlinkSync(path.join(other.root, 'target'), path.join(dir, 'kernel'));
  const ours = path.join(other.root, 'bundles/ours.tgz');
  fs.writeFileSync(ours, (await ourBundle('netboot.tgz')).data);
  const refused = other.run([ours, '-v']);
  t.equal(refused.code, 1);
  t.match(refused.stderr, '/install/netboot/rhels8.5.0/ppc64le/compute/kernel is a symbolic link');
  t.notMatch(refused.stdout, '/kernel (file', 'refused before the members streamed');
  t.equal(fs.readFileSync(path.join(other.root, 'target'), 'utf8'), 'not a kernel');
  t.notOk(fs.existsSync(path.join(other.root, 'install/netboot/rhels8.5.0/ppc64le/compute/initrd-stateless.gz')), 'nothing placed');
});

t.test('an existing image is replaced: files to .ORIG, the rootimg tree to rootimg.ORIG', async (t) => {
  const sandbox = makeSandbox(t);
  const bundle = sandbox.bundle('statelite.tgz');
  t.equal(sandbox.run([bundle]).code, 0);
  const dir = path.join(sandbox.root, 'install/netboot/rhels8.5.0/x86_64/compute');
  fs.writeFileSync(path.join(dir, 'rootimg/marker'), 'old tree');
  fs.writeFileSync(path.join(dir, 'kernel'), 'old kernel');
  const r = sandbox.run([bundle]);
  t.equal(r.code, 0, r.stderr);
  t.equal(fs.readFileSync(path.join(dir, 'kernel.ORIG'), 'utf8'), 'old kernel');
  t.equal(fs.readFileSync(path.join(dir, 'kernel')).length, 300000);
  t.equal(fs.readFileSync(path.join(dir, 'rootimg.ORIG/marker'), 'utf8'), 'old tree');
  t.notOk(fs.existsSync(path.join(dir, 'rootimg/marker')), 'new tree replaced the old one as a whole');
  t.ok(fs.existsSync(path.join(dir, 'rootimg/etc/passwd')));
  // A third import drops the old rootimg.ORIG for the current tree.
  t.equal(sandbox.run([bundle]).code, 0);
  t.notOk(fs.existsSync(path.join(dir, 'rootimg.ORIG/marker')));
});

/** Starts an import reading the bundle from a pipe, feeding only its first bytes. */
t.test('a second import of the same image at once is refused; a stale lock is taken over', async (t) => {
  const sandbox = makeSandbox(t);
  const data = fs.readFileSync(sandbox.bundle('netboot.tgz'));
  const first = await startHalfWay(sandbox, data, NETBOOT_IMAGE);
  const second = sandbox.run([sandbox.bundle('netboot.tgz')]);
  t.equal(second.code, 1);
  t.match(second.stderr, new RegExp(`image ${NETBOOT_IMAGE} is being imported by process ${first.child.pid}`));
  const recovering = spawnSync(NODE, [...NODE_ARGS, IMGPORT, 'recover', NETBOOT_IMAGE, '--root', sandbox.root], { encoding: 'utf8' });
  t.equal(recovering.status, 1, 'imgport recover leaves a running import alone');
  t.match(recovering.stderr, `image ${NETBOOT_IMAGE} is being imported by process ${first.child.pid}`);
  t.equal(spawnSync(NODE, [...NODE_ARGS, IMGPORT, 'recover', '--root', sandbox.root], { encoding: 'utf8' }).stdout, 'No interrupted import to recover.\n', 'nor counts it as interrupted');
  const named = spawnSync(NODE, [...NODE_ARGS, IMGPORT, 'recover', '../../etc/x', '--root', sandbox.root], { encoding: 'utf8' });
  t.equal(named.status, 1);
  t.match(named.stderr, "refusing image name '../../etc/x': not a plain name");
  first.finish();
  t.equal(await first.exited, 0, first.stderr());
  // A lock left by a dead process does not block.
  fs.writeFileSync(path.join(sandbox.root, 'var/lib/imgport/imports', `${NETBOOT_IMAGE}.lock`), '999999\n');
  const third = sandbox.run([sandbox.bundle('netboot.tgz')]);
  t.equal(third.code, 0, third.stderr);
});

t.test('SIGTERM half way leaves nothing; after SIGKILL the next import removes the leftovers', async (t) => {
  const sandbox = makeSandbox(t);
  const data = fs.readFileSync(sandbox.bundle('netboot.tgz'));
  const before = sandbox.files();
  const term = await startHalfWay(sandbox, data, NETBOOT_IMAGE);
  await sleep(200);
  term.child.kill('SIGTERM');
  t.equal(await term.exited, 1);
  t.match(term.stderr(), 'interrupted by SIGTERM');
  assertUntouched(t, sandbox, before);

  const killed = await startHalfWay(sandbox, data, NETBOOT_IMAGE);
  await sleep(200);
  killed.child.kill('SIGKILL');
  await killed.exited;
  const journal = JSON.parse(fs.readFileSync(killed.journal, 'utf8')) as { staging: string[] };
  t.ok(journal.staging.length > 0 && journal.staging.every((d) => fs.existsSync(d)), 'staging left by the killed import');
  const next = sandbox.run([sandbox.bundle('netboot.tgz')]);
  t.equal(next.code, 0, next.stderr);
  t.match(next.stderr, 'Removed the leftovers of an interrupted import');
  t.ok(journal.staging.every((d) => !fs.existsSync(d)), 'leftovers removed');
});

t.test('an import that puts a packed root image where packimage is running is refused, nothing changed; once the pack ends it imports', async (t) => {
  const sandbox = makeSandbox(t);
  const bundle = sandbox.bundle('netboot.tgz');
  t.equal(sandbox.run([bundle]).code, 0, 'installed once');
  const rootimgdir = '/install/netboot/rhels8.5.0/ppc64le/compute';
  t.ok(fs.readdirSync(path.join(sandbox.root, rootimgdir)).some((name) => name.startsWith('rootimg.')), 'the bundle has a packed root image');
  const packing = spawn('sleep', ['60']); // stands for a packimage of that directory
  t.teardown(() => void packing.kill());
  fs.writeFileSync(path.join(path.join(sandbox.root, rootimgdir), PACK_LOCK_NAME), `${packing.pid}\n`);
  const tables = fs.readFileSync(sandbox.db);
  const files = sandbox.files();
  const refused = sandbox.run([bundle]);
  t.equal(refused.code, 1);
  t.match(refused.stderr, `Error: cannot import ${NETBOOT_IMAGE}: ${rootimgdir} is being packed by process ${packing.pid} (lock ${rootimgdir}/${PACK_LOCK_NAME}); try again when it has finished`);
  t.ok(fs.readFileSync(sandbox.db).equals(tables), 'tables byte-identical');
  t.same(sandbox.files(), files, 'no file changed');
  packing.kill();
  await new Promise((resolve) => packing.on('close', resolve));
  const after = sandbox.run([bundle]);
  t.equal(after.code, 0, after.stderr);
  t.notOk(fs.existsSync(path.join(path.join(sandbox.root, rootimgdir), PACK_LOCK_NAME)), 'the dead pack\'s lock broken, then released');
});
