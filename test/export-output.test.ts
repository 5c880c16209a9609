import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import zlib from 'node:zlib';
import t from 'tap';
import { buildSampleImage } from '../src/sample/sample-image.js';
import {
  IMGEXPORT, describeTree, put, readBundle, runImgexport, runTool, tempDir, unpackCpioGz, writeTables,
} from './helpers/export-bundle.js';
import { NODE, NODE_ARGS } from './helpers/node-command.js';
import { mountTmpfs } from './helpers/hostile-fs.js';

/** Output formats and places, reproducibility, stored members, and the statelite tree's special files. */

const work = tempDir(t);
const root = path.join(work, 'root');
const statelite = await buildSampleImage({ root, provmethod: 'statelite' });
const netboot = await buildSampleImage({ root, provmethod: 'netboot', profile: 'stored' });
const rootimgdir = (image: typeof statelite): string => path.join(root, image.linuximage.rootimgdir!);
// A socket in the statelite tree: skipped with a warning, never archived.
const socketPath = path.join(rootimgdir(statelite), 'rootimg/tmp/agent.sock');
const server = net.createServer().listen(socketPath);
await new Promise((resolve) => server.once('listening', resolve));
t.teardown(() => void server.close());
// 4 MiB of random data, gzip'd: already compressed, so it must be stored, not compressed again.
const initrd = zlib.gzipSync(crypto.randomBytes(4 * 1024 * 1024), { level: 1 });
put(path.join(rootimgdir(netboot), 'initrd-stateless.gz'), initrd);
// Inside the statelite tree too: its bytes cross the cpio writer and the stored gzip still marked as compressed.
const firmware = zlib.gzipSync(crypto.randomBytes(3 * 1024 * 1024 + 1), { level: 1 });
put(path.join(rootimgdir(statelite), 'rootimg/lib/firmware/blob.bin.gz'), firmware);
writeTables(root, { osimage: [statelite.osimage, netboot.osimage], linuximage: [statelite.linuximage, netboot.linuximage] });
// What only root can make: a device, an owner from a directory service; a fifo, and a time to keep.
const isRoot = process.getuid?.() === 0;
const special = (rel: string): string => path.join(rootimgdir(statelite), 'rootimg', rel);
fs.mkdirSync(special('dev'), { recursive: true });
spawnSync('mkfifo', [special('dev/initctl')]);
put(special('home/user/notes'), 'owned by a directory-service user\n');
fs.utimesSync(special('home/user/notes'), new Date('2001-02-03T04:05:06Z'), new Date('2001-02-03T04:05:06Z'));
if (isRoot) {
  spawnSync('mknod', ['-m', '0620', special('dev/tty9'), 'c', '4', '9']);
  fs.chownSync(special('home/user/notes'), 3_000_000, 3_000_001);
}

/** The format a bundle is in, by its magic bytes. */
const formatOf = (bundle: Buffer): string =>
  bundle.subarray(0, 2).toString('hex') === '1f8b' ? 'gzip'
    : bundle.subarray(0, 4).toString('hex') === '28b52ffd' ? 'zstd'
      : bundle.subarray(257, 262).toString() === 'ustar' ? 'tar' : 'unknown';

const exportTo = (dest: string, ...args: string[]) =>
  runImgexport([statelite.imagename, dest, '--root', root, '--no-progress', ...args], { cwd: work });

t.test('gzip, zstd and plain tar by suffix, read by the standard tools', async (t) => {
  const out = tempDir(t);
  for (const [file, tester] of [['b.tar.gz', ['gzip', '-t']], ['b.tzst', ['zstd', '-tq']], ['b.tar', undefined]] as const) {
    const dest = path.join(out, file);
    const run = await exportTo(dest, '-j2');
    t.equal(run.code, 0, `${file}: exit 0 (${run.stderr})`);
    if (tester) await runTool(tester[0], [...tester.slice(1), dest]);
    const listing = (await runTool('tar', ['-tvf', dest])).stdout.toString();
    t.match(listing, /\.\/rhels8\.5\.0-x86_64-statelite-compute\/rootimgtree\.gz/, `${file}: tar lists the members`);
    t.equal(formatOf(fs.readFileSync(dest)), { 'b.tar.gz': 'gzip', 'b.tzst': 'zstd', 'b.tar': 'tar' }[file], `${file}: right format`);
  }
  const run = await exportTo(path.join(out, 'forced.tgz'), '--format', 'tar');
  t.equal(run.code, 0);
  t.equal(formatOf(fs.readFileSync(path.join(out, 'forced.tgz'))), 'tar', '--format wins over the suffix');
});

t.test('the statelite tree: hard links stored once, sockets skipped with a warning, special modes kept', async (t) => {
  const out = tempDir(t);
  const dest = path.join(out, 'b.tgz');
  const run = await exportTo(dest);
  t.equal(run.code, 0);
  t.match(run.stderr, /Warning: .*skipped socket .*agent\.sock/, 'the socket is named in a warning');
  const tree = (await readBundle(fs.readFileSync(dest))).find((m) => m.name.endsWith('/rootimgtree.gz'))!;
  const cpio = zlib.gunzipSync(tree.data);
  const gzipData = fs.readFileSync(path.join(rootimgdir(statelite), 'rootimg/usr/bin/gzip'));
  t.equal(cpio.indexOf(gzipData), cpio.lastIndexOf(gzipData), 'the hard-linked file\'s data is in the cpio once');
  t.ok(cpio.indexOf(gzipData) > 0, 'and it is there');
  t.notOk(cpio.includes('agent.sock'), 'no socket in the archive');
  await unpackCpioGz(tree.data, path.join(out, 'tree'));
  const unpacked = path.join(out, 'tree', 'rootimg');
  t.equal(fs.statSync(path.join(unpacked, 'usr/bin/gzip')).ino, fs.statSync(path.join(unpacked, 'usr/bin/gunzip')).ino, 'cpio recreates the hard link');
  const onDisk = describeTree(path.join(rootimgdir(statelite), 'rootimg')).filter((item) => item.type !== 'other');
  t.same(describeTree(unpacked), onDisk, 'names, types, modes, sizes, digests, links as on disk (but the socket)');
  t.equal(fs.statSync(path.join(unpacked, 'usr/bin/sudo')).mode & 0o7777, 0o4755, 'setuid kept');
  t.equal(fs.statSync(path.join(unpacked, 'tmp')).mode & 0o7777, 0o1777, 'sticky kept');
  t.equal(fs.readlinkSync(path.join(unpacked, 'bin/sh')), 'bash', 'symlink kept');
  t.ok(fs.lstatSync(path.join(unpacked, 'dev/initctl')).isFIFO(), 'fifo kept');
  const notes = fs.statSync(path.join(unpacked, 'home/user/notes'));
  t.equal(notes.mtime.toISOString(), '2001-02-03T04:05:06.000Z', 'mtime kept');
  if (isRoot) {
    t.same([notes.uid, notes.gid], [3_000_000, 3_000_001], 'owner kept');
    const tty = fs.lstatSync(path.join(unpacked, 'dev/tty9'));
    t.ok(tty.isCharacterDevice(), 'character device kept');
    t.equal(tty.rdev, fs.lstatSync(special('dev/tty9')).rdev, 'with its major and minor');
  }
});

t.test('reproducible: SOURCE_DATE_EPOCH set, the same bytes with 1 or 2 threads', async (t) => {
  const out = tempDir(t);
  for (const suffix of ['tgz', 'tzst']) {
    const digests = [];
    for (const threads of ['1', '2']) {
      const dest = path.join(out, `j${threads}.${suffix}`);
      const run = await runImgexport([statelite.imagename, dest, '--root', root, '--no-progress', '-j', threads], { cwd: work, env: { SOURCE_DATE_EPOCH: '1700000000' } });
      t.equal(run.code, 0);
      digests.push(crypto.createHash('sha256').update(fs.readFileSync(dest)).digest('hex'));
    }
    t.equal(digests[0], digests[1], `${suffix}: -j1 and -j2 bundles are byte-identical`);
  }
  const members = await readBundle(fs.readFileSync(path.join(out, 'j1.tgz')));
  t.ok(members.filter((m) => m.name.endsWith('manifest.xml') || m.name.endsWith('SHA256SUMS')).every((m) => m.mtime === 1700000000), 'generated members carry SOURCE_DATE_EPOCH');
});

t.test('already-compressed members are stored, and -v says how much', async (t) => {
  const out = tempDir(t);
  const dest = path.join(out, 'b.tgz');
  const run = await runImgexport([netboot.imagename, dest, '--root', root, '--no-progress', '-v'], { cwd: work });
  t.equal(run.code, 0, run.stderr);
  const stored = /\(([\d.]+) MiB stored as is\)/.exec(run.stdout.toString());
  t.ok(stored && Number(stored[1]) >= 4, `-v reports the initrd's 4 MiB as stored: ${run.stdout}`);
  const bundle = fs.readFileSync(dest);
  const members = await readBundle(bundle);
  const dataBytes = members.reduce((sum, m) => sum + m.data.length, 0);
  t.ok(bundle.length < dataBytes * 1.01, `bundle (${bundle.length} bytes) within 1% of its data (${dataBytes} bytes)`);
  t.ok(bundle.length > initrd.length, 'and holds the incompressible initrd');
  t.ok(members.find((m) => m.name.endsWith('/initrd-stateless.gz'))!.data.equals(initrd), 'initrd bytes intact');
});

t.test('compressed files inside the statelite tree are stored, not compressed again', async (t) => {
  const out = tempDir(t);
  const dest = path.join(out, 's.tgz');
  const run = await exportTo(dest, '-v', '-j2');
  t.equal(run.code, 0, run.stderr);
  const stored = /\(([\d.]+) MiB stored as is\)/.exec(run.stdout.toString());
  // The 3 MiB file is stored; only the block that also holds the cpio header before it is compressed.
  t.ok(stored && Number(stored[1]) >= 2.9 && Number(stored[1]) < 3.2, `-v reports the firmware's 3 MiB as stored: ${run.stdout}`);
  const tree = (await readBundle(fs.readFileSync(dest))).find((m) => m.name.endsWith('/rootimgtree.gz'))!;
  const cpio = zlib.gunzipSync(tree.data);
  t.ok(cpio.includes(firmware), 'the firmware bytes are intact inside rootimgtree.gz');
});

t.test('on a terminal, a progress line: percent, bytes read of the total, bytes written, rate, ETA', async (t) => {
  const out = tempDir(t);
  const dest = path.join(out, 'p.tgz');
  // A pseudo-terminal for standard error, opened by Python's pty module (the command is an argument list).
  const run = spawnSync('python3', ['-c', 'import pty, sys; sys.exit(pty.spawn(sys.argv[1:]) >> 8)',
    NODE, ...NODE_ARGS, IMGEXPORT, statelite.imagename, dest, '--root', root], { cwd: work, encoding: 'utf8' });
  t.equal(run.status, 0, run.stderr);
  const lines = run.stdout.split(/[\r\n]+/).filter((l) => l.includes('ETA'));
  t.ok(lines.length >= 1, `a progress line was drawn: ${JSON.stringify(run.stdout)}`);
  t.match(lines.at(-1)!, /100%\s+read ([\d.]+ \w+) of \1\s+wrote [\d.]+ \w+\s+[\d.]+ \w+\/s\s+ETA 0:00/, 'ends at 100% of the announced total');
  const plain = await runImgexport([statelite.imagename, path.join(out, 'q.tgz'), '--root', root], { cwd: work });
  t.notMatch(plain.stderr, /ETA/, 'no progress line when standard error is not a terminal');
});

t.test('- writes the bundle to standard output, messages to standard error', async (t) => {
  const run = await exportTo('-', '--format', 'tzst');
  t.equal(run.code, 0);
  t.match(run.stderr, /Done!/);
  const members = await readBundle(run.stdout);
  t.equal(members.at(-1)!.name, `./${statelite.imagename}/SHA256SUMS`, 'a whole bundle on stdout');
});

t.test('a directory destination receives IMAGE.tgz; no destination: IMAGE.tgz in the working directory', async (t) => {
  const out = tempDir(t);
  const run = await exportTo(out);
  t.equal(run.code, 0);
  t.same(fs.readdirSync(out), [`${statelite.imagename}.tgz`]);
  const cwd = tempDir(t);
  const plain = await runImgexport([statelite.imagename, '--root', root, '--no-progress'], { cwd });
  t.equal(plain.code, 0);
  t.same(fs.readdirSync(cwd), [`${statelite.imagename}.tgz`]);
  t.match(plain.stdout.toString(), new RegExp(`Exporting ${statelite.imagename} to .*\\n(.*\\n)*Done!\\n$`));
});

t.test('-R streams over ssh to a remote path, safely quoted', async (t) => {
  const out = tempDir(t);
  const bin = path.join(out, 'bin');
  // Stand-in ssh: runs the remote command (its last argument) with a local shell, as sshd would.
  put(path.join(bin, 'ssh'), '#!/bin/sh\nfor last; do :; done\nexec sh -c "$last"\n', 0o755);
  const remoteDir = path.join(out, "remote dir $(touch pwned)");
  fs.mkdirSync(remoteDir);
  const remote = path.join(remoteDir, "it's here.tgz");
  const run = await runImgexport([statelite.imagename, remote, '-R', 'root@example', '--root', root, '--no-progress'], {
    cwd: out, env: { PATH: `${bin}:${process.env.PATH}` },
  });
  t.equal(run.code, 0, run.stderr);
  t.equal(run.stdout.toString().split('\n')[0], `Exporting ${statelite.imagename} to root@example:${remote}...`, 'says where, host and path');
  t.same(fs.readdirSync(remoteDir), ["it's here.tgz"], 'the bundle landed under its name, no temporary left');
  t.notOk(fs.existsSync(path.join(out, 'pwned')), 'nothing in the path ran as a command');
  await runTool('gzip', ['-t', remote]);
  t.equal((await readBundle(fs.readFileSync(remote))).at(-1)!.name, `./${statelite.imagename}/SHA256SUMS`);

  // Temporary files that exports killed outright left there: removed once an hour old, whatever their pid.
  const stale = path.join(remoteDir, `.it's here.tgz.tmp-${process.pid}-deadbeef`);
  const fresh = path.join(remoteDir, ".it's here.tgz.tmp-1-cafef00d");
  const otherName = path.join(remoteDir, '.other.tgz.tmp-1-deadbeef');
  for (const file of [stale, fresh, otherName]) fs.writeFileSync(file, 'partial');
  const hoursAgo = new Date(Date.now() - 2 * 3600_000);
  for (const file of [stale, otherName]) fs.utimesSync(file, hoursAgo, hoursAgo);
  const again = await runImgexport([statelite.imagename, remote, '-R', 'root@example', '--root', root, '--no-progress'], {
    cwd: out, env: { PATH: `${bin}:${process.env.PATH}` },
  });
  t.equal(again.code, 0, again.stderr);
  t.same(fs.readdirSync(remoteDir).sort(), [".it's here.tgz.tmp-1-cafef00d", '.other.tgz.tmp-1-deadbeef', "it's here.tgz"], 'the stale one removed; a recent one, another name\'s kept');
  fs.rmSync(fresh);
  fs.rmSync(otherName);
  // The same through a DEST whose directory is a link (an install tree moved to other storage).
  const linked = path.join(out, 'linked');
  fs.symlinkSync(remoteDir, linked);
  const staleThere = path.join(remoteDir, '.via-link.tgz.tmp-1-deadbeef');
  fs.writeFileSync(staleThere, 'partial');
  fs.utimesSync(staleThere, hoursAgo, hoursAgo);
  const viaLink = await runImgexport([statelite.imagename, path.join(linked, 'via-link.tgz'), '-R', 'root@example', '--root', root, '--no-progress'], {
    cwd: out, env: { PATH: `${bin}:${process.env.PATH}` },
  });
  t.equal(viaLink.code, 0, viaLink.stderr);
  t.notOk(fs.existsSync(staleThere), 'removed there too');
  fs.rmSync(path.join(remoteDir, 'via-link.tgz'));

  // A remote directory as DEST receives IMAGE.tgz, as a local one does.
  const intoDir = await runImgexport([statelite.imagename, remoteDir, '-R', 'root@example', '--root', root, '--no-progress'], {
    cwd: out, env: { PATH: `${bin}:${process.env.PATH}` },
  });
  t.equal(intoDir.code, 0, intoDir.stderr);
  t.same(fs.readdirSync(remoteDir).sort(), ["it's here.tgz", `${statelite.imagename}.tgz`].sort(), 'IMAGE.tgz inside the remote directory');
  await runTool('gzip', ['-t', path.join(remoteDir, `${statelite.imagename}.tgz`)]);

  const optionHost = await runImgexport([statelite.imagename, remote, '--remotehost=-oProxyCommand=touch pwned', '--root', root, '--no-progress'], {
    cwd: out, env: { PATH: `${bin}:${process.env.PATH}` },
  });
  t.equal(optionHost.code, 1, 'a host that looks like an ssh option is refused');
  t.match(optionHost.stderr, /bad remote host/);

  // The remote side gives up (here: its directory does not exist): ssh's exit status, no broken pipe.
  const gone = path.join(out, 'no such dir', 'b.tgz');
  const failing = await runImgexport([statelite.imagename, gone, '-R', 'root@example', '--root', root, '--no-progress'], {
    cwd: out, env: { PATH: `${bin}:${process.env.PATH}` },
  });
  t.equal(failing.code, 1, 'exit 1');
  t.match(failing.stderr, `Error: cannot write root@example:${gone}: ssh exited with code`, 'says the remote write failed');
  t.notMatch(failing.stderr, /EPIPE|\n\s+at /, 'no broken pipe, no stack trace');

  // ssh itself killed (its connection cut, an administrator's kill): said as such.
  const killer = path.join(out, 'killer-bin');
  put(path.join(killer, 'ssh'), '#!/bin/sh\nfor last; do :; done\ncase "$last" in *"cat > "*) kill -9 $$ ;; esac\nexec sh -c "$last"\n', 0o755);
  const killed = await runImgexport([statelite.imagename, path.join(out, 'k.tgz'), '-R', 'root@example', '--root', root, '--no-progress'], {
    cwd: out, env: { PATH: `${killer}:${process.env.PATH}` },
  });
  t.equal(killed.code, 1);
  t.match(killed.stderr, `Error: cannot write root@example:${path.join(out, 'k.tgz')}: ssh was killed by SIGKILL`);
  // The remote side stops reading yet ssh exits 0: the bundle is not put in place, whatever its size.
  const truncating = path.join(out, 'truncating-bin');
  put(path.join(truncating, 'ssh'), '#!/bin/sh\nfor last; do :; done\ncase "$last" in *"cat > "*) exec sh -c "head -c 10000 ${last#*cat}; exit 0" ;; esac\nexec sh -c "$last"\n', 0o755);
  fs.mkdirSync(path.join(root, 'srv'), { recursive: true });
  fs.writeFileSync(path.join(root, 'srv/big.bin'), crypto.randomBytes(8 << 20)); // more than pipes hold
  t.teardown(() => fs.rmSync(path.join(root, 'srv/big.bin')));
  for (const [name, extra] of [['small.tgz', []], ['big.tgz', ['-e', '/srv/big.bin:/install/big']]] as const) {
    const cut = await runImgexport([statelite.imagename, path.join(remoteDir, name), ...extra, '-R', 'root@example', '--root', root, '--no-progress'], {
      cwd: out, env: { PATH: `${truncating}:${process.env.PATH}` },
    });
    t.equal(cut.code, 1, `${name}: exit 1`);
    t.match(cut.stderr, new RegExp(`Error: cannot write root@example:.*${name}: (ssh ended before it had read the whole bundle|the bundle was not put in place)`), `${name}: says so`);
    t.notMatch(cut.stdout.toString(), /Done!/);
  }
  t.same(fs.readdirSync(remoteDir).sort(), ["it's here.tgz", `${statelite.imagename}.tgz`].sort(), 'neither bundle nor its temporary file left');

  // A remote DEST that is a fifo or a device is refused before anything is sent; a link is written through.
  const fifo = path.join(remoteDir, 'fifo');
  spawnSync('mkfifo', [fifo]);
  const special = await runImgexport([statelite.imagename, fifo, '-R', 'root@example', '--root', root, '--no-progress'], {
    cwd: out, env: { PATH: `${bin}:${process.env.PATH}` },
  });
  t.equal(special.code, 1);
  t.equal(special.stderr, `Error: cannot write root@example:${fifo}: it exists and is not a regular file\n`);
  t.ok(fs.lstatSync(fifo).isFIFO(), 'the fifo left as it was');
  const link = path.join(remoteDir, 'link.tgz');
  fs.symlinkSync("it's here.tgz", link);
  const through = await runImgexport([statelite.imagename, link, '-R', 'root@example', '--root', root, '--no-progress'], {
    cwd: out, env: { PATH: `${bin}:${process.env.PATH}` },
  });
  t.equal(through.code, 0, through.stderr);
  t.equal(fs.readlinkSync(link), "it's here.tgz", 'the link stays');
  await runTool('gzip', ['-t', remote]);

  // A link to a file on a filesystem without room for the new bundle: refused, the old one intact.
  const small = path.join(out, 'small');
  fs.mkdirSync(small);
  const noTmpfs = mountTmpfs(t, small, '200k');
  if (noTmpfs) t.comment(`a link to another filesystem: skipped, ${noTmpfs}`);
  else {
    const target = path.join(small, 'target.tgz');
    const old = crypto.randomBytes(150_000);
    fs.writeFileSync(target, old);
    const smallLink = path.join(remoteDir, 'small.tgz');
    fs.symlinkSync(target, smallLink);
    const full = await runImgexport([statelite.imagename, smallLink, '-R', 'root@example', '--root', root, '--no-progress'], {
      cwd: out, env: { PATH: `${bin}:${process.env.PATH}` },
    });
    t.equal(full.code, 1, 'no room beside the target');
    t.ok(fs.readFileSync(target).equals(old), 'the old bundle where the link leads, whole');
    t.same(fs.readdirSync(small), ['target.tgz'], 'no temporary file left there');
    fs.rmSync(smallLink);
  }

  // A link into a directory that does not exist: refused before anything is sent.
  const nowhere = path.join(remoteDir, 'nowhere.tgz');
  fs.symlinkSync(path.join(out, 'no such dir', 'x.tgz'), nowhere);
  const dangling = await runImgexport([statelite.imagename, nowhere, '-R', 'root@example', '--root', root, '--no-progress'], {
    cwd: out, env: { PATH: `${bin}:${process.env.PATH}` },
  });
  t.equal(dangling.code, 1);
  t.equal(dangling.stderr, `Error: cannot write root@example:${nowhere}: it is a symbolic link that leads nowhere it can be written\n`);
  t.notMatch(dangling.stdout.toString(), /Compressing/, 'refused before the bundle streams');
  fs.rmSync(nowhere);

  // No ssh to run: said in words.
  const noSsh = await runImgexport([statelite.imagename, path.join(out, 'n.tgz'), '-R', 'root@example', '--root', root, '--no-progress'], {
    cwd: out, env: { PATH: path.join(out, 'empty-bin') },
  });
  t.equal(noSsh.code, 1);
  t.match(noSsh.stderr, /^Error: ssh could not be run: .*no such file or directory/im);
  t.notMatch(noSsh.stderr, /\n\s+at /, 'no stack trace');
  // SIGTERM while the bundle waits for a slow remote side: the remote temporary file is removed
  // after the streaming ssh is stopped, not before (it would then be made after the removal).
  const slow = path.join(out, 'slow-bin');
  put(path.join(slow, 'ssh'), '#!/bin/sh\nfor last; do :; done\ncase "$last" in *"cat > "*) sleep 2 ;; esac\nexec sh -c "$last"\n', 0o755);
  const interrupted = spawn(NODE, [...NODE_ARGS, IMGEXPORT, statelite.imagename, path.join(remoteDir, 'term.tgz'), '-e', '/srv/big.bin:/install/big', '-R', 'root@example', '--root', root, '--no-progress'], {
    cwd: out, env: { ...process.env, PATH: `${slow}:${process.env.PATH}` }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  const closed = once(interrupted, 'close');
  let stderr = '';
  interrupted.stderr!.on('data', (chunk) => (stderr += chunk));
  let stdout = '';
  await new Promise<void>((resolve) => interrupted.stdout!.on('data', (chunk) => (stdout += chunk).includes('Compressing') && resolve()));
  interrupted.kill('SIGTERM');
  const [code] = await closed;
  t.equal(code, 1, stderr);
  t.match(stderr, 'Error: interrupted by SIGTERM');
  await new Promise((resolve) => setTimeout(resolve, 2500)); // past the stand-in's sleep
  t.same(fs.readdirSync(remoteDir).filter((n) => n.includes('term.tgz')), [], 'no bundle or temporary file on the remote side');
});

t.test('the bundle gets the mode the umask leaves, as a file tar writes', async (t) => {
  const out = tempDir(t);
  for (const [umask, mode] of [['077', 0o600], ['022', 0o644], ['002', 0o664]] as const) {
    const bundle = path.join(out, `umask${umask}.tgz`);
    const run = spawnSync('sh', ['-c', 'umask "$1"; shift; exec "$@"', 'sh', umask, NODE, ...NODE_ARGS, IMGEXPORT, statelite.imagename, bundle, '--root', root, '--no-progress'], { encoding: 'utf8' });
    t.equal(run.status, 0, run.stderr);
    t.equal(fs.statSync(bundle).mode & 0o777, mode, `umask ${umask}: mode ${mode.toString(8)}`);
  }
});
