/**
 * The import puts what it staged on disk before it replaces anything: its filesystems are flushed
 * (`sync -f`) before the commit's renames and again after them, before the journal calls the
 * commit done and the tables are written; a flush that fails stops the import with nothing changed. Staged member files start their data for the disk as they are
 * written (createStagedFile). A stand-in `sync` on PATH records what it was asked and what existed
 * then; fs's calls are watched through spies on the module object.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import t from 'tap';
import { PathError } from '../src/core/errors.js';
import { flushFilesystems } from '../src/core/flush.js';
import { createFileSink, createStagedFile } from '../src/pipeline/sink.js';
import { makeSandbox } from './helpers/import-sandbox.js';
import { leftovers } from './helpers/hostile-faults.js';

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

t.test('flushFilesystems: a sync without -f flushes everything instead', async (t) => {
  const { log } = standInSync(t, 'echo "$#:$*" >> "$LOG"\nif [ "$1" = -f ]; then echo "sync: invalid option -- \'f\'" >&2; exit 1; fi');
  await flushFilesystems([tempDir(t)], () => t.fail('no warning'));
  t.same(fs.readFileSync(log, 'utf8').trim().split('\n').map((line) => line.split(':')[0]), ['2', '0'], 'sync -f DIR, then sync');
});

t.test('flushFilesystems: a sync killed by a signal is named as such', async (t) => {
  standInSync(t, 'kill -TERM $$');
  const error = await flushFilesystems([tempDir(t)], () => {}, () => '/install').catch((err: unknown) => err);
  t.equal((error as Error).message, 'cannot flush the filesystem of /install to disk: sync was stopped by SIGTERM');
});

t.test('flushFilesystems: without a sync program, a warning and no error', async (t) => {
  const oldPath = process.env.PATH;
  process.env.PATH = tempDir(t);
  t.teardown(() => {
    process.env.PATH = oldPath;
  });
  const warnings: string[] = [];
  await flushFilesystems([os.tmpdir()], (line) => warnings.push(line));
  await flushFilesystems([os.tmpdir()], (line) => warnings.push(line));
  t.same(warnings, ['Warning: the program sync (coreutils) is not installed: what was written cannot be flushed to disk.'], 'once');
});

const MiB = 1024 * 1024;

/** Replaces fs[name] for the test, recording each call's descriptor; `behave` runs instead of the real call. */
function spyOn<K extends 'fdatasync' | 'fsync' | 'write' | 'close'>(t: Tap.Test, name: K, behave?: (real: (typeof fs)[K], ...args: unknown[]) => void): number[] {
  const real = fs[name];
  const fds: number[] = [];
  (fs as unknown as Record<string, unknown>)[name] = (...args: unknown[]) => {
    fds.push(args[0] as number);
    if (behave) return behave(real, ...args);
    return (real as (...a: unknown[]) => unknown)(...args);
  };
  t.teardown(() => {
    (fs as unknown as Record<string, unknown>)[name] = real;
  });
  return fds;
}

async function writeAll(writer: NodeJS.WritableStream, pieces: Buffer[]): Promise<void> {
  await pipeline(Readable.from(pieces), writer);
}

t.test('a staged file: every byte in order, its data started for the disk every 16 MiB, no fsync of its own', async (t) => {
  const file = path.join(tempDir(t), 'staged');
  const flushes = spyOn(t, 'fdatasync');
  const syncs = spyOn(t, 'fsync');
  const pieces = Array.from({ length: 40 }, (_, i) => Buffer.alloc(MiB, i));
  await writeAll(createStagedFile(file, 0o640, { shownAs: '/install/staged' }), pieces);
  t.ok(fs.readFileSync(file).equals(Buffer.concat(pieces)));
  t.equal(fs.statSync(file).mode & 0o777, 0o640 & ~process.umask());
  t.equal(flushes.length, 2, 'at 16 and 32 MiB');
  t.same(syncs, [], 'the filesystem is flushed by the import before the commit');
});

t.test('a staged file: what a flush behind meets fails the writing, naming the file as shown', async (t) => {
  const file = path.join(tempDir(t), 'staged');
  spyOn(t, 'fdatasync', (_real, _fd, cb) => process.nextTick(cb as (err: Error) => void, Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' })));
  const pieces = Array.from({ length: 40 }, () => Buffer.alloc(MiB));
  const error = await writeAll(createStagedFile(file, 0o644, { shownAs: '/install/staged' }), pieces).catch((err: unknown) => err);
  t.ok(error instanceof PathError);
  t.equal((error as PathError).message, 'cannot write /install/staged: EIO: i/o error, fdatasync');
  t.ok(fs.statSync(file).size < 40 * MiB, 'the writing stopped');
});

t.test('a staged file: its descriptor is closed only after the write in flight has come back', async (t) => {
  const file = path.join(tempDir(t), 'staged');
  const events: string[] = [];
  spyOn(t, 'write', (real, ...args) => {
    const cb = args.pop() as (...r: unknown[]) => void;
    (real as (...a: unknown[]) => void)(...args, (...result: unknown[]) => setTimeout(() => {
      events.push('write came back');
      cb(...result);
    }, 50));
  });
  spyOn(t, 'close', (real, fd, cb) => {
    events.push('close');
    (real as (...a: unknown[]) => void)(fd, cb);
  });
  const writer = createStagedFile(file, 0o644, { shownAs: '/install/staged' });
  writer.write(Buffer.alloc(1000));
  await new Promise((resolve) => setImmediate(resolve));
  writer.destroy();
  await new Promise((resolve) => writer.once('close', resolve));
  t.same(events, ['write came back', 'close']);
});

t.test('a staged file that exists is not overwritten', async (t) => {
  const file = path.join(tempDir(t), 'staged');
  fs.writeFileSync(file, 'earlier');
  t.throws(() => createStagedFile(file, 0o644, { shownAs: '/install/staged' }), { name: 'PathError', message: "cannot write /install/staged: EEXIST: file already exists, open '" + file + "'" });
  t.equal(fs.readFileSync(file, 'utf8'), 'earlier');
});

t.test('an output file (bundle, packed image) flushes behind and ends with an fsync', async (t) => {
  const file = path.join(tempDir(t), 'bundle.tgz');
  const flushes = spyOn(t, 'fdatasync');
  const syncs = spyOn(t, 'fsync');
  const sink = createFileSink(file);
  await writeAll(sink.stream, Array.from({ length: 20 }, (_, i) => Buffer.alloc(MiB, i)));
  await sink.commit();
  t.equal(fs.statSync(file).size, 20 * MiB);
  t.equal(flushes.length, 1, 'at 16 MiB');
  t.equal(syncs.length, 1, 'at the end');
});

t.test('imgimport flushes the install filesystem before its renames, and again after them, before its table write', async (t) => {
  const { log, write } = standInSync(t);
  const sandbox = makeSandbox(t);
  write(
    `[ -e '${path.join(sandbox.root, KERNEL)}' ] && placed=placed || placed=not-placed\n` +
      `grep -q rhels8.5.0-ppc64le-netboot-compute '${sandbox.db}' && tables=defined || tables=not-defined\n` +
      'echo "$1 $placed $tables" >> "$LOG"',
  );
  const r = sandbox.run([sandbox.bundle('netboot.tgz')]);
  t.equal(r.code, 0, r.stderr);
  t.same(fs.readFileSync(log, 'utf8').trim().split('\n'), ['-f not-placed not-defined', '-f placed not-defined']);
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

t.test('imgimport: a flush that fails after the renames (before the commit point) puts everything back', async (t) => {
  const { log } = standInSync(t, `if [ -e "$LOG" ]; then echo "sync: error syncing '$2': Input/output error" >&2; exit 1; fi\ntouch "$LOG"`);
  const sandbox = makeSandbox(t);
  const tables = fs.readFileSync(sandbox.db);
  const files = sandbox.files();
  const r = sandbox.run([sandbox.bundle('netboot.tgz')]);
  t.ok(fs.existsSync(log), 'the first flush passed');
  t.equal(r.code, 1);
  t.match(r.stderr, /^Error: cannot flush the filesystem of \/install to disk: sync: error syncing '.*\/install': Input\/output error; everything was put back$/m);
  t.notMatch(r.stdout, /Successfully imported/);
  t.ok(fs.readFileSync(sandbox.db).equals(tables), 'tables byte-identical');
  t.same(sandbox.files(), files, 'no file added, none changed');
  t.same(leftovers(sandbox.root), [], 'no staging, journal or lock left');
});
