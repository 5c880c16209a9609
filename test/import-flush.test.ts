/**
 * The import puts what it staged on disk before it replaces anything: its filesystems are flushed
 * (`sync -f`) before the commit's renames and again after the table write; a flush that fails stops
 * the import with nothing changed. Staged member files are flushed as they are written
 * (createFlushedFile). A stand-in `sync` on PATH records what it was asked and what existed then.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { PathError } from '../src/core/errors.js';
import { flushFilesystems } from '../src/core/flush.js';
import { createFlushedFile } from '../src/pipeline/sink.js';
import { makeSandbox } from './helpers/import-sandbox.js';

const KERNEL = 'install/netboot/rhels8.5.0/ppc64le/compute/kernel';

/**
 * A directory with a `sync` script in it, first on PATH for this process and what it starts (an
 * import sandbox takes PATH as it is when made). `script` may be given later, through `write`.
 */
function standInSync(t: Tap.Test, script = ''): { log: string; write(script: string): void } {
  const bin = fs.mkdtempSync(path.join(os.tmpdir(), 'imgport-sync-'));
  const log = path.join(bin, 'log');
  const write = (text: string) => fs.writeFileSync(path.join(bin, 'sync'), `#!/bin/sh\nLOG='${log}'\n${text}\n`, { mode: 0o755 });
  write(script);
  const oldPath = process.env.PATH;
  process.env.PATH = `${bin}:${oldPath}`;
  t.teardown(() => {
    process.env.PATH = oldPath;
    fs.rmSync(bin, { recursive: true, force: true });
  });
  return { log, write };
}

function tempDir(t: Tap.Test): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'imgport-flush-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

t.test('flushFilesystems: one `sync -f` per filesystem', async (t) => {
  const { log } = standInSync(t, 'echo "$@" >> "$LOG"');
  const dir = tempDir(t);
  fs.mkdirSync(path.join(dir, 'a'));
  fs.mkdirSync(path.join(dir, 'b'));
  await flushFilesystems([path.join(dir, 'a'), path.join(dir, 'b'), path.join(dir, 'gone')], () => t.fail('no warning'));
  t.same(fs.readFileSync(log, 'utf8').trim().split('\n'), [`-f ${path.join(dir, 'a')}`], 'a and b share a filesystem; a missing directory is skipped');
});

t.test('flushFilesystems: a failing flush is a PathError naming the directory and the reason', async (t) => {
  standInSync(t, 'echo "sync: error syncing \'$2\': Input/output error" >&2; exit 1');
  const dir = tempDir(t);
  const error = await flushFilesystems([dir], () => {}, () => '/install').catch((err: unknown) => err);
  t.ok(error instanceof PathError);
  t.equal((error as PathError).message, `cannot flush the filesystem of /install to disk: sync: error syncing '${dir}': Input/output error`);
  t.equal((error as PathError).path, '/install');
});

t.test('flushFilesystems: without a sync program, a warning and no error', async (t) => {
  const oldPath = process.env.PATH;
  process.env.PATH = tempDir(t);
  t.teardown(() => {
    process.env.PATH = oldPath;
  });
  const warnings: string[] = [];
  await flushFilesystems([os.tmpdir()], (line) => warnings.push(line));
  t.same(warnings, ['Warning: the program sync (coreutils) is not installed: what was written is not flushed to disk yet.']);
});

t.test('createFlushedFile with a flush behind every 4 KiB: every byte in order, the mode asked', async (t) => {
  const file = path.join(tempDir(t), 'staged');
  const writer = createFlushedFile(file, 0o640, { flushEvery: 4096 });
  const pieces = Array.from({ length: 200 }, (_, i) => Buffer.alloc(1000 + i, i));
  for (const piece of pieces) if (!writer.write(piece)) await new Promise((resolve) => writer.once('drain', resolve));
  await new Promise<void>((resolve, reject) => writer.end((err?: Error | null) => (err ? reject(err) : resolve())));
  t.ok(fs.readFileSync(file).equals(Buffer.concat(pieces)));
  t.equal(fs.statSync(file).mode & 0o777, 0o640 & ~process.umask());
});

t.test('createFlushedFile: a file that exists is not overwritten', async (t) => {
  const file = path.join(tempDir(t), 'staged');
  fs.writeFileSync(file, 'earlier');
  t.throws(() => createFlushedFile(file, 0o644), { name: 'PathError', message: `cannot write ${file}: EEXIST: file already exists, open '${file}'` });
  t.equal(fs.readFileSync(file, 'utf8'), 'earlier');
});

t.test('imgimport flushes the install filesystem before its renames, and again after the table write', async (t) => {
  const { log, write } = standInSync(t);
  const sandbox = makeSandbox(t);
  write(`[ -e '${path.join(sandbox.root, KERNEL)}' ] && placed=placed || placed=not-placed\necho "$1 $placed" >> "$LOG"`);
  const r = sandbox.run([sandbox.bundle('netboot.tgz')]);
  t.equal(r.code, 0, r.stderr);
  t.same(fs.readFileSync(log, 'utf8').trim().split('\n'), ['-f not-placed', '-f placed']);
  t.ok(fs.existsSync(path.join(sandbox.root, KERNEL)));
});

t.test('imgimport: a flush that fails before the commit stops the import, and nothing changes', async (t) => {
  standInSync(t, 'echo "sync: error syncing \'$2\': Input/output error" >&2; exit 1');
  const sandbox = makeSandbox(t);
  const bundle = sandbox.bundle('netboot.tgz');
  const tables = fs.readFileSync(sandbox.db);
  const files = sandbox.files();
  const r = sandbox.run([bundle]);
  t.equal(r.code, 1);
  t.match(r.stderr, /^Error: cannot flush the filesystem of \/install to disk: sync: error syncing '.*\/install': Input\/output error$/m);
  t.notMatch(r.stdout, /Successfully imported/);
  t.ok(fs.readFileSync(sandbox.db).equals(tables), 'tables byte-identical');
  t.same(sandbox.files(), files, 'no file added, none changed');
  t.same(fs.readdirSync(path.join(sandbox.root, 'install')).filter((name) => name.startsWith('.imgport')), [], 'no staging left');
});

t.test('imgimport: a flush that fails after the table write is a warning: the image stands', async (t) => {
  const { log } = standInSync(t, `if [ -e "$LOG" ]; then echo "sync: error syncing '$2': Input/output error" >&2; exit 1; fi\ntouch "$LOG"`);
  const sandbox = makeSandbox(t);
  const r = sandbox.run([sandbox.bundle('netboot.tgz')]);
  t.ok(fs.existsSync(log));
  t.equal(r.code, 0, r.stderr);
  t.match(r.stderr, /^Warning: cannot flush the filesystem of \/install to disk: sync: error syncing '.*\/install': Input\/output error$/m);
  t.match(r.stdout, /Successfully imported/);
  t.ok(fs.existsSync(path.join(sandbox.root, KERNEL)));
});
