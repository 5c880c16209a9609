import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { TableStore, formatTables } from '../src/tables/store.js';
import { processStart } from '../src/core/pid-lock.js';
import { FIXTURES } from './helpers/shared.js';

function tempDir(t: { teardown(fn: () => void): void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'imgport-store-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const fixtureTables = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'source-tables.json'), 'utf8'));

t.test('a missing file holds no tables; the first update creates the directory', async (t) => {
  const file = path.join(tempDir(t), 'a', 'b', 'tables.json');
  const store = new TableStore(file);
  t.same(await store.read(), {});
  await store.update((tables) => {
    tables.site = [{ key: 'installdir', value: '/srv/install' }];
  });
  t.equal(fs.readFileSync(file, 'utf8'), '{\n  "site": [\n    {"key":"installdir","value":"/srv/install"}\n  ]\n}\n');
  t.same(fs.readdirSync(path.dirname(file)), ['tables.json'], 'no lock or temporary file left');
});

t.test('round trip keeps the file shape: every row, column and value', async (t) => {
  const file = path.join(tempDir(t), 'tables.json');
  fs.copyFileSync(path.join(FIXTURES, 'source-tables.json'), file);
  const store = new TableStore(file);
  t.same(await store.read(), fixtureTables);
  const result = await store.update(() => 42);
  t.equal(result, 42, 'update returns what the change returns');
  const written = fs.readFileSync(file, 'utf8');
  t.same(JSON.parse(written), fixtureTables, 'same data, table and row order');
  t.equal(written, formatTables(fixtureTables));
  t.match(written, /^\{\n  "osimage": \[\n    \{"imagename":"rhels8.5.0-x86_64-statelite-compute","profile":"compute",/);
  await store.update(() => undefined);
  t.equal(fs.readFileSync(file, 'utf8'), written, 'a second no-op update is byte-identical');
});

t.test('empty tables are left out, columns written in schema order', async (t) => {
  t.equal(formatTables({}), '{}\n');
  t.equal(formatTables({ kit: [], site: [{ value: 'v', key: 'k' }] }), '{\n  "site": [\n    {"key":"k","value":"v"}\n  ]\n}\n');
});

t.test('unparsable or wrongly shaped file: TableError naming it, file untouched', async (t) => {
  const dir = tempDir(t);
  const cases: [string, string, RegExp][] = [
    ['{"osimage": [ {"imagename": "x",', 'unparsable', /cannot read the table file .*bad\.json/],
    ['[]', 'not an object', /table file .*bad\.json: not a JSON object/],
    ...['null', 'false', '0', '""'].map((text): [string, string, RegExp] => [text, `${text}, which lowdb could take for no data`, /table file .*bad\.json: not a JSON object/]),
    ['{"images": []}', 'unknown table', /table file .*bad\.json: unknown table 'images' \(known tables: osimage, /],
    ['{"osimage": [{"imagename": "x", "colour": "red"}]}', 'unknown column', /bad\.json: unknown column 'colour' of table osimage \(its columns: imagename, groups, /],
    ['{"site": [{"key": "a", "value": 3}]}', 'non-string value', /bad\.json: table site column value of row 1 is not a string/],
    ['{"site": {"key": "a"}}', 'table not a list', /bad\.json: table site is not a list of rows/],
  ];
  for (const [text, what, message] of cases) {
    const file = path.join(dir, 'bad.json');
    fs.writeFileSync(file, text);
    const store = new TableStore(file);
    await t.rejects(store.read(), { name: 'TableError', message }, `read: ${what}`);
    await t.rejects(store.update(() => undefined), { name: 'TableError', message }, `update: ${what}`);
    t.equal(fs.readFileSync(file, 'utf8'), text, `${what}: bytes unchanged`);
    t.notOk(fs.existsSync(`${file}.lock`), `${what}: lock released`);
  }
});

t.test('a change that throws or leaves the schema writes nothing', async (t) => {
  const file = path.join(tempDir(t), 'tables.json');
  fs.writeFileSync(file, formatTables({ site: [{ key: 'a', value: 'b' }] }));
  const before = fs.readFileSync(file, 'utf8');
  const store = new TableStore(file);
  await t.rejects(
    store.update((tables) => {
      tables.site[0].value = 'changed';
      throw new Error('boom');
    }),
    /boom/,
  );
  await t.rejects(
    store.update((tables) => {
      tables.site[0].colour = 'red';
    }),
    /unknown column 'colour' of table site/,
  );
  t.equal(fs.readFileSync(file, 'utf8'), before);
  t.notOk(fs.existsSync(`${file}.lock`));
});

t.test('concurrent updates in one process are serialized by the lock', async (t) => {
  const file = path.join(tempDir(t), 'tables.json');
  const updates = Array.from({ length: 30 }, (_, i) =>
    new TableStore(file).update(async (tables) => {
      const rows = (tables.site ??= []);
      await new Promise((resolve) => setTimeout(resolve, 1)); // widen the read-modify-write window
      rows.push({ key: `k${i}`, value: String(i) });
    }),
  );
  await Promise.all(updates);
  const site = (await new TableStore(file).read()).site;
  t.equal(site.length, 30);
  t.same(new Set(site.map((r) => r.key)).size, 30);
});

t.test('a stale lock of a dead process is broken; a live one waits', async (t) => {
  const file = path.join(tempDir(t), 'tables.json');
  fs.writeFileSync(`${file}.lock`, '999999999\n'); // no such pid
  await new TableStore(file).update((tables) => {
    tables.site = [{ key: 'a', value: 'b' }];
  });
  t.same((await new TableStore(file).read()).site, [{ key: 'a', value: 'b' }]);
  t.notOk(fs.existsSync(`${file}.lock`));

  fs.writeFileSync(`${file}.lock`, `${process.pid}\n`); // held by a live process (us)
  let done = false;
  const waiting = new TableStore(file).update(() => {
    done = true;
  });
  await new Promise((resolve) => setTimeout(resolve, 150));
  t.notOk(done, 'waits while the holder lives');
  fs.rmSync(`${file}.lock`);
  await waiting;
  t.ok(done, 'proceeds once released');
});

t.test('a lock file without a pid (empty, garbage) is broken once older than its writer could take to fill it', async (t) => {
  const file = path.join(tempDir(t), 'tables.json');
  const lock = `${file}.lock`;
  const old = new Date(Date.now() - 60_000);
  for (const content of ['', 'garbage\n']) {
    fs.writeFileSync(lock, content);
    fs.utimesSync(lock, old, old);
    await new TableStore(file).update((tables) => {
      tables.site = [{ key: 'left', value: JSON.stringify(content) }];
    });
    t.same((await new TableStore(file).read()).site, [{ key: 'left', value: JSON.stringify(content) }], `${JSON.stringify(content)}: broken, the change made`);
    t.notOk(fs.existsSync(lock), `${JSON.stringify(content)}: lock released`);
  }

  fs.writeFileSync(lock, ''); // a writer may still be filling it
  let done = false;
  const waiting = new TableStore(file).update(() => {
    done = true;
  });
  await new Promise((resolve) => setTimeout(resolve, 300));
  t.notOk(done, 'a young lock without a pid is waited for');
  fs.utimesSync(lock, old, old);
  await waiting;
  t.ok(done, 'and broken once old');
});

/** Wraps FileHandle.prototype.sync for one test: `onSync(path of the handle)` runs before each real sync. */
async function spyOnHandleSync(t: { teardown(fn: () => void): void }, dir: string, onSync: (fd: number) => void): Promise<void> {
  const handle = await fs.promises.open(dir, 'r');
  const proto = Object.getPrototypeOf(handle) as { sync: () => Promise<void> };
  await handle.close();
  const real = proto.sync;
  proto.sync = function (this: { fd: number }) {
    onSync(this.fd);
    return real.call(this);
  };
  t.teardown(() => {
    proto.sync = real;
  });
}

const pathOfFd = (fd: number): string => fs.readlinkSync(`/proc/self/fd/${fd}`);

t.test('a write is durable: the new file is flushed before it replaces the old, the directory after', async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'tables.json');
  fs.writeFileSync(file, formatTables({ site: [{ key: 'a', value: 'old' }] }));
  const seen: string[] = [];
  await spyOnHandleSync(t, dir, (fd) => {
    const synced = pathOfFd(fd);
    if (synced.startsWith(`${file}.lock.`)) return; // the lock's claim, the test after this one
    seen.push(`${path.basename(synced)}: table file says ${fs.readFileSync(file, 'utf8').includes('"old"') ? 'old' : 'new'}`);
  });
  await new TableStore(file).update((tables) => {
    tables.site[0].value = 'new';
  });
  t.same(seen, ['.tables.json.tmp: table file says old', `${path.basename(dir)}: table file says new`]);
  t.same((await new TableStore(file).read()).site, [{ key: 'a', value: 'new' }]);
});

t.test('the lock claim holds our pid and start on disk before it is linked as the lock (a power cut cannot leave an empty lock)', async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'tables.json');
  const claims: string[] = [];
  await spyOnHandleSync(t, dir, (fd) => {
    const synced = pathOfFd(fd);
    if (synced.startsWith(`${file}.lock.`)) claims.push(`${fs.readFileSync(synced, 'utf8')}, lock ${fs.existsSync(`${file}.lock`) ? 'there' : 'not there'}`);
  });
  await new TableStore(file).update(() => undefined);
  const start = processStart(process.pid);
  t.same(claims, [`${start ? `${process.pid} ${start}` : process.pid}\n, lock not there`]);
});

t.test('a write keeps the table file permissions (a private file stays private)', async (t) => {
  const file = path.join(tempDir(t), 'tables.json');
  fs.writeFileSync(file, formatTables({ site: [{ key: 'a', value: 'b' }] }));
  fs.chmodSync(file, 0o600);
  await new TableStore(file).update((tables) => {
    tables.site.push({ key: 'c', value: 'd' });
  });
  t.equal(fs.statSync(file).mode & 0o777, 0o600);
  const fresh = path.join(tempDir(t), 'new.json');
  await new TableStore(fresh).update((tables) => {
    tables.site = [{ key: 'a', value: 'b' }];
  });
  const reference = path.join(path.dirname(fresh), 'reference');
  fs.writeFileSync(reference, '', { mode: 0o644 });
  t.equal(fs.statSync(fresh).mode & 0o777, fs.statSync(reference).mode & 0o777, 'a new file: 0644 less the umask');
});

t.test('a write that fails (an I/O error flushing it): TableError naming the file, old file intact, no temporary left', async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'tables.json');
  const before = formatTables({ site: [{ key: 'a', value: 'old' }] });
  fs.writeFileSync(file, before);
  await spyOnHandleSync(t, dir, (fd) => {
    if (pathOfFd(fd).endsWith('.tmp')) throw Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' });
  });
  await t.rejects(
    new TableStore(file).update((tables) => {
      tables.site[0].value = 'new';
    }),
    { name: 'TableError', message: `cannot write the table file ${file}: EIO: i/o error, fsync` },
  );
  t.equal(fs.readFileSync(file, 'utf8'), before);
  t.same(fs.readdirSync(dir), ['tables.json'], 'no temporary file, no lock');
});

t.test("a write keeps the table file's owner and group, and a killed run's temporary file does not lend its mode", { skip: process.getuid?.() !== 0 && 'needs root to chown' }, async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'tables.json');
  fs.writeFileSync(file, formatTables({ site: [{ key: 'a', value: 'b' }] }));
  fs.chownSync(file, 0, 1000);
  fs.chmodSync(file, 0o640);
  await new TableStore(file).update((tables) => {
    tables.site.push({ key: 'c', value: 'd' });
  });
  const st = fs.statSync(file);
  t.same([st.uid, st.gid, st.mode & 0o777], [0, 1000, 0o640]);

  const fresh = path.join(dir, 'fresh.json');
  fs.writeFileSync(path.join(dir, '.fresh.json.tmp'), 'left by a killed run', { mode: 0o600 });
  fs.chmodSync(path.join(dir, '.fresh.json.tmp'), 0o600);
  await new TableStore(fresh).update((tables) => {
    tables.site = [{ key: 'a', value: 'b' }];
  });
  const reference = path.join(dir, 'reference');
  fs.writeFileSync(reference, '', { mode: 0o644 });
  t.equal(fs.statSync(fresh).mode & 0o777, fs.statSync(reference).mode & 0o777, '0644 less the umask, not the leftover 0600');
});

t.test('a table file kept as a link: the file it leads to is written, the link stays', async (t) => {
  const dir = tempDir(t);
  const target = path.join(dir, 'real', 'tables.json');
  fs.mkdirSync(path.dirname(target));
  fs.writeFileSync(target, formatTables({ site: [{ key: 'a', value: 'b' }] }));
  const link = path.join(dir, 'tables.json');
  fs.symlinkSync(target, link);
  await new TableStore(link).update((tables) => {
    tables.site[0].value = 'changed';
  });
  t.ok(fs.lstatSync(link).isSymbolicLink(), 'still a link');
  t.same((await new TableStore(target).read()).site, [{ key: 'a', value: 'changed' }], 'the target changed');
  t.same(fs.readdirSync(path.dirname(target)).sort(), ['tables.json'], 'no temporary or lock left beside it');
});

t.test('a table file behind a link to nothing (storage not mounted): reads and changes fail naming both, the link stays', async (t) => {
  const dir = tempDir(t);
  const cases = [
    { what: 'the file is the link', link: 'tables.json', file: 'tables.json', target: 'mnt/tables.json', where: 'is a link' },
    { what: 'a directory above it is', link: 'imgport', file: 'imgport/tables.json', target: 'mnt/imgport', where: `is under ${path.join(dir, 'imgport')}, a link` },
  ];
  for (const { what, link, file, target, where } of cases) {
    fs.symlinkSync(path.join(dir, target), path.join(dir, link));
    const store = new TableStore(path.join(dir, file));
    const message = `the table file ${path.join(dir, file)} ${where} to ${path.join(dir, target)}, which does not exist (storage not mounted?)`;
    await t.rejects(store.read(), { name: 'TableError', message }, `read: ${what}`);
    await t.rejects(store.update((tables) => void (tables.site = [{ key: 'a', value: 'b' }])), { name: 'TableError', message }, `update: ${what}`);
    t.equal(fs.readlinkSync(path.join(dir, link)), path.join(dir, target), `${what}: the link left as it was`);
    t.same(fs.readdirSync(dir).sort(), [link], `${what}: nothing written, no lock left`);
    fs.rmSync(path.join(dir, link));
  }
});

t.test('a lock whose pid now belongs to another process (a reused pid, a reboot) is broken', async (t) => {
  const file = path.join(tempDir(t), 'tables.json');
  const lock = `${file}.lock`;
  const start = processStart(process.pid);
  if (!start) return t.skip('no /proc here to tell processes apart');
  // Our pid, alive, but written by a process that started at another time (or in another boot).
  fs.writeFileSync(lock, `${process.pid} ${start.replace(/:\d+$/, ':1')}\n`);
  await new TableStore(file).update((tables) => {
    tables.site = [{ key: 'a', value: 'b' }];
  });
  t.same((await new TableStore(file).read()).site, [{ key: 'a', value: 'b' }], 'the change made');
  t.notOk(fs.existsSync(lock), 'the lock broken, then released');

  fs.writeFileSync(lock, `${process.pid} ${start}\n`); // really ours, as this process writes it
  let done = false;
  const waiting = new TableStore(file).update(() => {
    done = true;
  });
  await new Promise((resolve) => setTimeout(resolve, 150));
  t.notOk(done, 'the same pid and start: its holder lives, it is waited for');
  fs.rmSync(lock);
  await waiting;
  t.ok(done);
});

t.test('claims that processes killed while taking the lock left beside it are removed by the next holder; live and young ones stay', async (t) => {
  const file = path.join(tempDir(t), 'tables.json');
  const lock = `${file}.lock`;
  const deadPid = spawnSync('true').pid!; // exited: its pid names no process (for the moment)
  const old = new Date(Date.now() - 60_000);
  const claims = {
    dead: [`${lock}.${deadPid}.abc123`, `${deadPid}\n`],
    deadWithStart: [`${lock}.${deadPid}.def456`, `${deadPid} ${processStart(process.pid) ?? 'x:1'}\n`],
    oldEmpty: [`${lock}.${deadPid}.ghi789`, ''],
    live: [`${lock}.${process.ppid}.jkl012`, `${process.ppid}\n`],
    youngEmpty: [`${lock}.${process.ppid}.mno345`, ''],
    notAClaim: [`${lock}.notes`, `${deadPid}\n`],
  };
  for (const [name, content] of Object.values(claims)) fs.writeFileSync(name, content);
  for (const name of [claims.dead[0], claims.deadWithStart[0], claims.oldEmpty[0], claims.notAClaim[0]]) fs.utimesSync(name, old, old);
  await new TableStore(file).update((tables) => void (tables.site = [{ key: 'a', value: 'b' }]));
  t.same(fs.readdirSync(path.dirname(file)).sort(), ['tables.json', ...[claims.live, claims.youngEmpty, claims.notAClaim].map(([name]) => path.basename(name))].sort());
});
