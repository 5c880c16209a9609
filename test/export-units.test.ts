import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import t from 'tap';
import { storedGzipChunks, storedGzipSize } from '../src/archive/stored-gzip.js';
import { TarWriter } from '../src/archive/tar-writer.js';
import { isLocalDirectory, resolveDestination } from '../src/export/destination.js';
import { formatBytes, formatDuration, progressLine } from '../src/pipeline/progress.js';
import { shellQuote } from '../src/core/ssh.js';
import { tempDir } from './helpers/export-bundle.js';
import { planExport, postscriptsFor } from '../src/export/plan.js';
import { activeRows, isDisabled } from '../src/tables/types.js';
import { Sandbox } from '../src/core/sandbox.js';

/** The small pure parts of the export: stored gzip, destination rules, progress text, quoting. */

async function collect(chunks: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of chunks) parts.push(c);
  return Buffer.concat(parts);
}

async function* pieces(data: Buffer, size: number): AsyncIterable<Buffer> {
  for (let at = 0; at < data.length; at += size) yield data.subarray(at, at + size);
}

t.test('stored gzip: exact announced size, valid gzip, whatever the input chunking', async (t) => {
  for (const n of [0, 1, 65535, 65536, 200_000]) {
    const data = crypto.randomBytes(n);
    for (const chunk of [1000, 65535, 70_000]) {
      const gz = await collect(storedGzipChunks(pieces(data, chunk), n));
      t.equal(gz.length, storedGzipSize(n), `${n} bytes in ${chunk}-byte chunks: size as announced`);
      t.ok(zlib.gunzipSync(gz).equals(data), 'gunzips to the input');
    }
  }
  await t.rejects(collect(storedGzipChunks(pieces(Buffer.alloc(10), 4), 11)), /10 bytes, expected 11/, 'short input is an error');
});

t.test('owner names longer than the ustar fields go in pax records; the member keeps its name', async (t) => {
  const writer = new TarWriter();
  const chunks: Buffer[] = [];
  const reading = (async () => {
    for await (const chunk of writer.chunks()) chunks.push(chunk.data);
  })();
  const uname = `svc-${'u'.repeat(60)}`;
  const gname = 'hpc-cluster-administrators-of-the-big-compute-farm';
  await writer.add({ name: './img/etc/hostname', kind: 'file', mode: 0o644, uid: 4242, gid: 4343, mtime: 1_000_000_000, size: 3, uname, gname }, (async function* () {
    yield Buffer.from('mn\n');
  })());
  await writer.add({ name: './img/etc/short', kind: 'file', mode: 0o644, uid: 1, gid: 1, mtime: 1_000_000_000, size: 0, uname: 'bin', gname: 'bin' });
  writer.finish();
  await reading;
  const listing = execFileSync('tar', ['-tvf', '-'], { input: Buffer.concat(chunks), encoding: 'utf8' });
  t.match(listing, new RegExp(`${uname}/${gname} +3 2001-09-09 01:46 \\./img/etc/hostname\n`));
  t.match(listing, /bin\/bin +0 2001-09-09 01:46 \.\/img\/etc\/short\n/);
  t.equal(listing.trim().split('\n').length, 2, 'two members, no name moved into another');
});

t.test('destination: suffix, --format, directories, stdout, remote', (t) => {
  const dir = tempDir(t);
  t.same(resolveDestination('img', undefined, undefined, false), { kind: 'file', path: path.resolve('img.tgz'), format: 'gzip' });
  t.same(resolveDestination('img', `${dir}/x.tar.zst`, undefined, false), { kind: 'file', path: `${dir}/x.tar.zst`, format: 'zstd' });
  t.same(resolveDestination('img', `${dir}/x.tzst`, undefined, false).format, 'zstd');
  t.same(resolveDestination('img', `${dir}/x.tar`, undefined, false).format, 'none');
  t.same(resolveDestination('img', `${dir}/x.tar.gz`, undefined, false).format, 'gzip');
  t.same(resolveDestination('img', `${dir}/x.bin`, undefined, false).format, 'gzip', 'unknown suffix: gzip');
  t.same(resolveDestination('img', `${dir}/x.bin`, 'tzst', false).format, 'zstd', '--format wins');
  t.same(resolveDestination('img', dir, 'tar', false, isLocalDirectory(dir)), { kind: 'file', path: `${dir}/img.tar`, format: 'none' }, 'existing directory');
  t.equal(isLocalDirectory(`${dir}/x.bin`), false, 'a missing name is no directory');
  t.same(resolveDestination('img', '/srv/images', undefined, true, true), { kind: 'remote', path: '/srv/images/img.tgz', format: 'gzip' }, 'remote directory');
  t.same(resolveDestination('img', 'later/', undefined, false).path, path.resolve('later/img.tgz'), 'name ending in /');
  t.same(resolveDestination('img', '-', undefined, false), { kind: 'stdout', path: '-', format: 'gzip' });
  t.same(resolveDestination('img', 'bundles/x.tgz', undefined, true), { kind: 'remote', path: 'bundles/x.tgz', format: 'gzip' }, 'remote path kept as given');
  t.same(resolveDestination('img', '/srv/', undefined, true).path, '/srv/img.tgz');
  t.throws(() => resolveDestination('img', 'x', 'rar', false), /--format must be one of tgz, tzst, tar, not 'rar'/);
  t.throws(() => resolveDestination('img', '-', undefined, true), /cannot be combined with -R/);
  t.end();
});

t.test('progress line', (t) => {
  t.equal(formatBytes(0), '0 B');
  t.equal(formatBytes(1536), '1.5 KiB');
  t.equal(formatBytes(3 * 1024 ** 3), '3.0 GiB');
  t.equal(formatDuration(65), '1:05');
  t.equal(formatDuration(3723), '1:02:03');
  t.equal(progressLine(50 * 1024 ** 2, 20 * 1024 ** 2, 100 * 1024 ** 2, 10),
    ' 50%  read 50.0 MiB of 100.0 MiB  wrote 20.0 MiB  5.0 MiB/s  ETA 0:10');
  t.end();
});

t.test('shell quoting survives a real shell', (t) => {
  const dir = tempDir(t);
  for (const word of ["it's", 'a b', '$(touch pwned)', '`x`', '"q"', 'back\\slash', '']) {
    t.equal(execFileSync('sh', ['-c', `printf %s ${shellQuote(word)}`], { cwd: dir }).toString(), word, JSON.stringify(word));
  }
  t.same(fs.readdirSync(dir), [], 'nothing ran');
  t.end();
});

t.test('a kit directory travels under the kit name, where import looks for it, whatever its kitdir is called', (t) => {
  const root = tempDir(t);
  fs.mkdirSync(path.join(root, 'install/kits/other-x86_64/other_files'), { recursive: true });
  fs.writeFileSync(path.join(root, 'install/kits/other-x86_64/other_files/post.sh'), 'echo\n');
  fs.mkdirSync(path.join(root, 'install/custom/install/rh'), { recursive: true });
  fs.writeFileSync(path.join(root, 'install/custom/install/rh/compute.tmpl'), '# kickstart\n');
  const tables = {
    osimage: [{ imagename: 'img', provmethod: 'install', profile: 'compute', osvers: 'rhels8', osarch: 'x86_64', kitcomponents: 'comp1' }],
    linuximage: [{ imagename: 'img' }],
    kit: [{ kitname: 'other-2.0-1', kitdir: '/install/kits/other-x86_64' }],
    kitcomponent: [{ kitcompname: 'comp1', kitname: 'other-2.0-1' }],
  };
  const plan = planExport(tables, { sandbox: new Sandbox(root), installdir: '/install', xcatroot: '/opt/xcat' }, { imagename: 'img', extras: [] });
  t.same(plan.members.filter((m) => m.source.kind === 'tree').map((m) => [m.name, m.source.kind === 'tree' && m.source.path]),
    [['other-2.0-1', '/install/kits/other-x86_64']]);
  t.equal(plan.manifest.linuximage.template, '/install/custom/install/rh/compute.tmpl', 'the template found by the search');
  t.end();
});

t.test('-p takes a noderange as xCAT does: its first node by name, own row before its groups, after xcatdefaults', async (t) => {
  const tables = {
    nodelist: [{ node: 'n2', groups: 'gpu,all' }, { node: 'n1', groups: 'compute,all' }],
    postscripts: [
      { node: 'xcatdefaults', postscripts: 'syslog', postbootscripts: 'otherpkgs' },
      { node: 'compute', postscripts: 'cpu-tune' },
      { node: 'n2', postscripts: 'n2-own', postbootscripts: 'n2-boot' },
    ],
  };
  t.same(postscriptsFor(tables, 'n1'), { postscripts: 'syslog,cpu-tune', postbootscripts: 'otherpkgs' }, 'a node: its first group with a row');
  t.same(postscriptsFor(tables, 'n2'), { postscripts: 'syslog,n2-own', postbootscripts: 'otherpkgs,n2-boot' }, 'a node: its own row');
  t.same(postscriptsFor(tables, 'n2,n1'), postscriptsFor(tables, 'n1'), 'a list: its first node by name, whatever the order given');
  t.same(postscriptsFor(tables, 'all'), postscriptsFor(tables, 'n1'), 'a group: its first member by name, whatever the table order');
  t.same(postscriptsFor(tables, 'gpu'), postscriptsFor(tables, 'n2'), 'a group of one');
  t.same(postscriptsFor(tables, 'nosuch,n1'), postscriptsFor(tables, 'n1'), 'names that are no node are passed over');
  t.throws(() => postscriptsFor(tables, 'nosuch'), { message: 'Unable to get postscripts, nosuch is not a valide node.' });
});

t.test("-p inherits each postscript column on its own: the node's row sets one, its group the other (xCAT's getNodeAttribs)", async (t) => {
  const tables = {
    nodelist: [{ node: 'n1', groups: 'compute,all' }],
    postscripts: [
      { node: 'xcatdefaults', postscripts: 'syslog', postbootscripts: 'otherpkgs' },
      { node: 'all', postscripts: 'all-setup', postbootscripts: 'all-boot' },
      { node: 'compute', postbootscripts: 'grpboot' },
      { node: 'n1', postscripts: 'myscript1' },
    ],
  };
  t.same(postscriptsFor(tables, 'n1'), { postscripts: 'syslog,myscript1', postbootscripts: 'otherpkgs,grpboot' });
});

t.test('a disabled row is commented out: activeRows leaves it out, whatever the case of yes; 0 and no keep it', async (t) => {
  const rows = ['1', 'yes', 'YES', 'true', 'x', '0', 'no', 'No', 'nO', '', undefined].map((disable) => (disable === undefined ? { file: 'unset' } : { file: disable, disable }));
  t.same(activeRows({ litefile: rows }).litefile.map((r) => r.file), ['0', 'no', 'No', 'nO', '', 'unset']);
  t.same(rows.filter(isDisabled).map((r) => r.file), ['1', 'yes', 'YES', 'true', 'x']);
});
