/**
 * The import's commit is journaled before its first rename, so that a SIGKILL between two renames
 * (or before the table write) is undone by the next import of the image: every point of a small
 * commit is cut short in-process (the undo kept in memory abandoned, as a kill does), then a new
 * transaction recovers; and the real imgimport is killed while it pauses inside its commit.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { Sandbox } from '../src/core/sandbox.js';
import { executeCommit, inspectPaths, pathsToInspect, planCommit, rollBackCommit, type CommitOp, type CommitStep, type Unit } from '../src/import/commit.js';
import { COMMIT_LOCK_NAME, ImportTransaction, IMPORTS_STATE_DIR, interruptedCommit, type TableAccess } from '../src/import/transaction.js';
import type { WrittenRows } from '../src/import/table-changes.js';
import type { Tables } from '../src/tables/types.js';
import { IMGEXPORT, tempDir } from './helpers/export-bundle.js';
import { cloneTree, leftovers, treeWithoutLeftovers } from './helpers/hostile-faults.js';
import { HOSTILE_IMAGE } from './helpers/hostile-bundles.js';
import { ourBundle } from './helpers/import-bundles.js';
import { IMGIMPORT, IMGPORT, makeSandbox } from './helpers/import-sandbox.js';
import { NODE, NODE_ARGS } from './helpers/node-command.js';

const IMAGE = 'img-compute';
const ROWS: WrittenRows = [{ table: 'osimage', row: { imagename: IMAGE, osvers: 'new' } }];
/** How many operations the commit below has (the first test checks the plan). */
const OPERATIONS = 13;
const never = () => new Promise<never>(() => undefined);

/** Tables kept in memory, as the transaction reads and writes them. */
function tablesIn(tables: Tables, file = '/var/lib/imgport/tables.json'): TableAccess {
  return { file, read: async () => structuredClone(tables), update: async (change) => change(tables) };
}

/**
 * An installed image: a kernel with an older kernel.ORIG, an initrd, a rootimg tree, a postscript;
 * the incoming one replaces those four (the postscript overwritten, as xCAT's cp -f does), adds a
 * file, a link and a file in two new directories.
 */
function installedImage(root: string): void {
  const dir = path.join(root, 'install/img');
  fs.mkdirSync(path.join(root, IMPORTS_STATE_DIR), { recursive: true });
  fs.mkdirSync(path.join(dir, 'rootimg/etc'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'kernel'), 'old kernel');
  fs.writeFileSync(path.join(dir, 'kernel.ORIG'), 'older kernel');
  fs.writeFileSync(path.join(dir, 'initrd'), 'old initrd');
  fs.chmodSync(path.join(dir, 'initrd'), 0o600);
  fs.writeFileSync(path.join(dir, 'rootimg/etc/hosts'), 'old hosts');
  fs.writeFileSync(path.join(dir, 'post.sh'), 'old script');
  fs.chmodSync(path.join(dir, 'post.sh'), 0o700);
}

/** Stages the incoming image through the transaction, as an import does. */
async function stageIncoming(tx: ImportTransaction): Promise<Unit[]> {
  const file = async (dest: string, data: string): Promise<Unit> => {
    const staged = await tx.unitPath(dest, path.posix.basename(dest));
    fs.writeFileSync(staged, data);
    return { dest, type: 'file', staged, member: dest };
  };
  const tree = await tx.unitPath('/install/img/rootimg', 'rootimg');
  fs.mkdirSync(path.join(tree, 'etc'), { recursive: true });
  fs.writeFileSync(path.join(tree, 'etc/hosts'), 'new hosts');
  const link = await tx.unitPath('/install/img/current', 'current');
  fs.symlinkSync('kernel', link);
  return [
    await file('/install/img/kernel', 'new kernel'),
    await file('/install/img/initrd', 'new initrd'),
    await file('/install/img/README', 'new file'),
    await file('/install/img/sub/deep/notes', 'in new directories'),
    { dest: '/install/img/rootimg', type: 'tree', staged: tree, member: 'rootimgtree.gz' },
    { dest: '/install/img/current', type: 'symlink', staged: link, member: 'current' },
    { ...(await file('/install/img/post.sh', 'new script')), overwrite: true },
  ];
}

interface Cut {
  root: string;
  sandbox: Sandbox;
  ops: CommitOp[];
  steps: CommitStep[];
  before: ReturnType<typeof treeWithoutLeftovers>;
}

/**
 * Runs a commit that stops for good after `after` operations (0: right after its journal;
 * `placed`: after its commit point, its table write not made): the process goes on, but the
 * commit's in-memory undo is never run, as after a SIGKILL. `marked`: finished, the journal says so.
 */
async function cutCommit(t: Tap.Test, after: number | 'placed' | 'marked'): Promise<Cut> {
  const root = tempDir(t, 'imgport-commit-journal-');
  const sandbox = new Sandbox(root);
  installedImage(root);
  const before = treeWithoutLeftovers(root);
  const tx = await ImportTransaction.begin(sandbox, IMAGE, ['/install'], () => undefined, tablesIn({}));
  const units = await stageIncoming(tx);
  const ops = planCommit(units, await inspectPaths(sandbox, pathsToInspect(units)));
  let steps: CommitStep[] = [];
  let reached!: () => void;
  const stopped = new Promise<void>((resolve) => (reached = resolve));
  const stopAt = (done: number) => {
    if (done !== after) return;
    reached();
    return never();
  };
  const running = executeCommit(sandbox, ops, {
    trash: (real) => tx.unitPath(sandbox.logical(real), 'old'),
    progress: () => undefined,
    aborted: () => false,
    record: async (recorded) => {
      steps = recorded;
      await tx.recordCommit(recorded, ROWS);
      await stopAt(0);
    },
    placed: () => tx.commitInPlace(),
    afterOp: stopAt,
  });
  if (after === 'marked' || after === 'placed') {
    await running;
    if (after === 'marked') await tx.commitFinished();
  } else await stopped;
  // The killed process's lock is broken by the next import; here the process lives on.
  fs.rmSync(path.join(root, IMPORTS_STATE_DIR, `${IMAGE}.lock`));
  return { root, sandbox, ops, steps, before };
}

/** The next import's transaction: it recovers, then (nothing imported) closes. */
async function recover(cut: Cut, tables: Tables): Promise<string[]> {
  const lines: string[] = [];
  const tx = await ImportTransaction.begin(cut.sandbox, IMAGE, ['/install'], (line) => lines.push(line), tablesIn(tables));
  await tx.close();
  return lines;
}

/** Renames the first `count` operations did (a backup that moves an older .ORIG aside does two). */
function renamesOf(steps: CommitStep[], count: number): number {
  return steps.slice(0, count).reduce((n, s) => n + (s.op === 'place' || s.op === 'aside' ? 1 : s.op === 'backup' ? (s.trash ? 2 : 1) : 0), 0);
}

const file = (root: string, rel: string) => fs.readFileSync(path.join(root, rel), 'utf8');

t.test('a commit cut short after any number of operations is rolled back by the next import, byte for byte', async (t) => {
  const probe = await cutCommit(t, 0);
  const total = probe.ops.length;
  t.equal(total, OPERATIONS);
  t.same(
    probe.ops.map((op) => op.op),
    ['place', 'place', 'backup', 'place', 'backup', 'place', 'aside', 'place', 'backup', 'place', 'mkdir', 'mkdir', 'place'],
    'the plan: kept .ORIGs, an overwritten file, new files, new directories',
  );
  t.ok(probe.steps.some((s) => s.op === 'backup' && s.trash), 'the older kernel.ORIG has its place in staging before the commit starts');
  const journal = JSON.parse(fs.readFileSync(path.join(probe.root, IMPORTS_STATE_DIR, `${IMAGE}.json`), 'utf8'));
  t.same(journal.commit, { ops: probe.steps, rows: ROWS, placed: false, tables: '/var/lib/imgport/tables.json' }, 'the steps, the table rows and the table file are journaled before the first rename');
  for (let after = 0; after <= total; after++) {
    await t.test(`after ${after} of ${total} operations`, async (t) => {
      const cut = after === 0 ? probe : await cutCommit(t, after);
      if (after === total) t.equal(file(cut.root, 'install/img/kernel'), 'new kernel', 'every rename was done');
      const lines = await recover(cut, {});
      t.same(lines.filter((l) => l.startsWith('Rolled back')), [`Rolled back the interrupted commit of an earlier import of ${IMAGE}: ${renamesOf(cut.steps, after)} files put back`]);
      t.same(treeWithoutLeftovers(cut.root), cut.before, 'files, .ORIG files, links, directories and modes as before');
      t.same(leftovers(cut.root), [], 'no staging, journal or lock left');
      t.equal(await rollBackCommit(cut.sandbox, cut.steps), 0, 'a second rollback finds nothing to do');
    });
  }
});

t.test('a rollback cut short is finished by the one after it', async (t) => {
  const cut = await cutCommit(t, 9);
  const partial = cut.steps.slice(5); // the later half undone, the earlier not
  t.ok((await rollBackCommit(cut.sandbox, partial)) > 0);
  await recover(cut, {});
  t.same(treeWithoutLeftovers(cut.root), cut.before);
  t.same(leftovers(cut.root), []);
});

/** The files of the incoming image, all in place (the one it replaced kept as .ORIG). */
function assertNewImage(t: Tap.Test, cut: Cut): void {
  t.equal(file(cut.root, 'install/img/kernel'), 'new kernel');
  t.equal(file(cut.root, 'install/img/kernel.ORIG'), 'old kernel', 'the image it replaced kept as .ORIG');
  t.equal(file(cut.root, 'install/img/rootimg/etc/hosts'), 'new hosts');
  t.equal(file(cut.root, 'install/img/rootimg.ORIG/etc/hosts'), 'old hosts');
  t.equal(file(cut.root, 'install/img/sub/deep/notes'), 'in new directories');
  t.equal(fs.readlinkSync(path.join(cut.root, 'install/img/current')), 'kernel');
  t.equal(file(cut.root, 'install/img/post.sh'), 'new script', 'the postscript overwritten');
  t.notOk(fs.existsSync(path.join(cut.root, 'install/img/post.sh.ORIG')), 'no .ORIG of it');
  t.same(leftovers(cut.root), [], 'its staging (with the older kernel.ORIG and the old postscript) removed');
}

t.test('a commit that placed its files and made its table write, not marked finished, is kept', async (t) => {
  const cut = await cutCommit(t, 'placed');
  const tables = { osimage: [{ imagename: IMAGE, osvers: 'new', profile: 'compute' }] };
  const lines = await recover(cut, tables);
  t.same(lines.filter((l) => /Rolled back|finished|Finished/.test(l)), [`The interrupted import of ${IMAGE} had finished its commit; its image is kept`]);
  assertNewImage(t, cut);
  t.same(tables, { osimage: [{ imagename: IMAGE, osvers: 'new', profile: 'compute' }] }, 'the tables untouched');
});

t.test('a commit that placed its files but did not make its table write is finished: its rows written', async (t) => {
  const cut = await cutCommit(t, 'placed');
  const tables = { osimage: [{ imagename: 'other', osvers: 'x' }, { imagename: IMAGE, osvers: 'old', profile: 'compute' }] };
  const lines = await recover(cut, tables);
  t.same(lines.filter((l) => /Rolled back|finished|Finished/.test(l)), [`Finished the interrupted import of ${IMAGE}: its files were in place, its table rows are now written`]);
  assertNewImage(t, cut);
  t.same(tables, { osimage: [{ imagename: 'other', osvers: 'x' }, { imagename: IMAGE, osvers: 'new', profile: 'compute' }] }, 'the columns it sets merged into its row, in its place; one it does not set (a chdef meanwhile) kept');
});

t.test('a commit past its commit point is finished in the table file it was writing, never another', async (t) => {
  const cut = await cutCommit(t, 'placed');
  const other: Tables = {};
  const refused = await ImportTransaction.begin(cut.sandbox, IMAGE, ['/install'], () => undefined, tablesIn(other, '/srv/other.json')).catch((err: Error) => err);
  t.match(refused, { name: 'ImageError', message: `the killed import of ${IMAGE} was writing to the table file /var/lib/imgport/tables.json: run imgport recover ${IMAGE} with that table file (--db)` });
  t.same(other, {}, 'nothing written there');
  fs.rmSync(path.join(cut.root, IMPORTS_STATE_DIR, `${IMAGE}.lock`));
  const tables: Tables = {};
  await recover(cut, tables);
  t.same(tables, { osimage: [ROWS[0].row] }, 'then finished in its own');
  assertNewImage(t, cut);
});

t.test("a journal's rows must be ones an import of its image writes: others make it refused, nothing written", async (t) => {
  for (const row of [
    { table: 'site', row: { key: 'installdir', value: '/srv/evil' } },
    { table: 'osimage', row: { imagename: 'another-image', osvers: 'x' } },
    { table: 'postscripts', row: { node: 'xcatdefaults', postscripts: 'evil.sh' } },
    { table: 'litefile', row: { image: 'another-image', file: '/etc/x' } },
    { table: 'osimage', row: { imagename: IMAGE, osvers: 1 } },
  ]) {
    const cut = await cutCommit(t, 'placed');
    const journalPath = path.join(cut.root, IMPORTS_STATE_DIR, `${IMAGE}.json`);
    const journal = JSON.parse(fs.readFileSync(journalPath, 'utf8'));
    journal.commit.rows.push(row);
    fs.writeFileSync(journalPath, JSON.stringify(journal));
    const tables: Tables = {};
    await t.rejects(recover(cut, tables), { message: /holds a commit that cannot be undone safely/ }, `${row.table} ${JSON.stringify(row.row)}`);
    t.same(tables, {}, 'no row written');
  }
});

t.test('a commit whose every rename was done but whose commit point was not journaled is rolled back, whatever the tables hold', async (t) => {
  const cut = await cutCommit(t, OPERATIONS);
  await recover(cut, { osimage: [{ imagename: IMAGE, osvers: 'new' }] });
  t.same(treeWithoutLeftovers(cut.root), cut.before);
  t.same(leftovers(cut.root), []);
});

t.test('a journal of an earlier version (no commit point): finished if every rename shows done and every row is there', async (t) => {
  for (const [tables, kept] of [[{ osimage: [{ imagename: IMAGE, osvers: 'new' }] }, true], [{ osimage: [{ imagename: IMAGE, osvers: 'old' }] }, false]] as const) {
    const cut = await cutCommit(t, OPERATIONS);
    const journalPath = path.join(cut.root, IMPORTS_STATE_DIR, `${IMAGE}.json`);
    const journal = JSON.parse(fs.readFileSync(journalPath, 'utf8'));
    delete journal.commit.placed;
    fs.writeFileSync(journalPath, JSON.stringify(journal));
    await recover(cut, structuredClone(tables) as Tables);
    if (kept) t.equal(file(cut.root, 'install/img/kernel'), 'new kernel', 'its rows there: kept');
    else t.same(treeWithoutLeftovers(cut.root), cut.before, 'its rows not there: rolled back');
  }
});

t.test('a commit marked finished is kept without looking at the tables', async (t) => {
  const cut = await cutCommit(t, 'marked');
  const lines = await recover(cut, {});
  t.same(lines.filter((l) => /Rolled back|had finished/.test(l)), []);
  t.equal(file(cut.root, 'install/img/kernel'), 'new kernel');
  t.same(leftovers(cut.root), []);
});

t.test("an import's commit first settles the commits that killed imports of other images left: they may share its destinations", async (t) => {
  for (const after of [4, 'placed'] as const) {
    const cut = await cutCommit(t, after);
    const journalPath = path.join(cut.root, IMPORTS_STATE_DIR, `${IMAGE}.json`);
    const journal = JSON.parse(fs.readFileSync(journalPath, 'utf8'));
    fs.writeFileSync(journalPath, JSON.stringify({ ...journal, pid: spawnSync('true').pid })); // its process gone
    const tables: Tables = {};
    const lines: string[] = [];
    const other = await ImportTransaction.begin(cut.sandbox, 'img-other', ['/install'], (line) => lines.push(line), tablesIn(tables));
    t.ok(fs.existsSync(journalPath), `killed after ${after}: not settled when the other import begins`);
    const seen = await other.commitExclusively(async () => ({ tree: treeWithoutLeftovers(cut.root), kernel: file(cut.root, 'install/img/kernel'), journal: fs.existsSync(journalPath) }), () => false);
    await other.close();
    t.notOk(seen.journal, 'settled before the commit looks at the files');
    if (after === 4) {
      t.same(seen.tree, cut.before, 'rolled back: the files as before it');
      t.match(lines.join('\n'), `Rolled back the interrupted commit of an earlier import of ${IMAGE}`);
      t.same(tables, {});
    } else {
      t.equal(seen.kernel, 'new kernel', 'finished: its files in place');
      t.match(lines.join('\n'), `Finished the interrupted import of ${IMAGE}`);
      t.same(tables, { osimage: [ROWS[0].row] }, 'and its rows written');
    }
    t.same(leftovers(cut.root), [], 'no staging, journal or lock of either left');
  }
});

/** A cut commit whose process is gone (the journal names an exited one), and its journal's path. */
async function killedCommit(t: Tap.Test, after: number, edit: (journal: { commit: { ops: CommitStep[] } }) => void = () => undefined): Promise<Cut & { journalPath: string }> {
  const cut = await cutCommit(t, after);
  const journalPath = path.join(cut.root, IMPORTS_STATE_DIR, `${IMAGE}.json`);
  const journal = { ...JSON.parse(fs.readFileSync(journalPath, 'utf8')), pid: spawnSync('true').pid };
  edit(journal);
  fs.writeFileSync(journalPath, JSON.stringify(journal));
  return { ...cut, journalPath };
}

t.test("another image's import settles a killed commit even while an import or recover of that image holds its lock, waiting", async (t) => {
  const cut = await killedCommit(t, 4);
  const waiting = spawn('sleep', ['60']); // stands for `imgport recover IMAGE`, its lock taken, waiting for the commit lock
  t.teardown(() => void waiting.kill());
  fs.writeFileSync(path.join(cut.root, IMPORTS_STATE_DIR, `${IMAGE}.lock`), `${waiting.pid}\n`);
  const other = await ImportTransaction.begin(cut.sandbox, 'img-other', ['/install'], () => undefined, tablesIn({}));
  const seen = await other.commitExclusively(async () => ({ tree: treeWithoutLeftovers(cut.root), journal: fs.existsSync(cut.journalPath) }), () => false);
  await other.close();
  t.same(seen.tree, cut.before, 'rolled back before the commit looks at the files (no .ORIG kept of a half-replaced file)');
  t.notOk(seen.journal, 'its journal gone: the waiting recover finds nothing to do');
  waiting.kill();
  await new Promise((resolve) => waiting.on('close', resolve));
  t.same(await recover(cut, {}), [], 'the recover after it: nothing to do');
  t.same(treeWithoutLeftovers(cut.root), cut.before);
});

t.test("a killed commit that cannot be settled (a damaged journal) is a warning for another image's import, not its failure", async (t) => {
  const cut = await killedCommit(t, 4, (journal) => (journal.commit.ops.find((op) => op.op === 'place') as { staged: string }).staged = '/etc/passwd');
  const lines: string[] = [];
  const other = await ImportTransaction.begin(cut.sandbox, 'img-other', ['/install'], (line) => lines.push(line), tablesIn({}));
  t.equal(await other.commitExclusively(async () => 'committed', () => false), 'committed');
  await other.close();
  t.match(lines.join('\n'), new RegExp(`^Warning: the commit of a killed import of ${IMAGE} could not be settled \\(the journal .*${IMAGE}\\.json of an interrupted import holds a commit that cannot be undone safely; .*\\); run imgport recover ${IMAGE}$`, 'm'));
  t.ok(fs.existsSync(cut.journalPath), 'its journal left for the administrator');
});

t.test('a failing commit undoes what it did, but leaves a directory another import made meanwhile, and then nothing is left to recover', async (t) => {
  const root = tempDir(t, 'imgport-commit-journal-');
  const sandbox = new Sandbox(root);
  installedImage(root);
  const before = treeWithoutLeftovers(root);
  const tx = await ImportTransaction.begin(sandbox, IMAGE, ['/install'], () => undefined, tablesIn({}));
  const units = await stageIncoming(tx);
  const ops = planCommit(units, await inspectPaths(sandbox, pathsToInspect(units)));
  fs.mkdirSync(path.join(root, 'install/img/sub')); // by an import of another image, after the plan
  fs.chmodSync(path.join(root, 'install/img/sub'), 0o755);
  let done = 0;
  await t.rejects(
    executeCommit(sandbox, ops, {
      trash: (real) => tx.unitPath(sandbox.logical(real), 'old'),
      progress: () => void done++,
      aborted: () => done === OPERATIONS - 1, // the last place, into sub/deep
      record: (steps) => tx.recordCommit(steps, ROWS),
      undone: () => tx.commitUndone(),
    }),
    { message: 'interrupted while putting /install/img/sub/deep/notes in place; everything was put back' },
  );
  t.same(
    treeWithoutLeftovers(root),
    [...before, { path: 'install/img/sub', type: 'dir', mode: 0o755, size: 0 }].sort((a, b) => (a.path < b.path ? -1 : 1)),
    'everything as before, the other import\'s directory kept',
  );
  await tx.close();
  t.same(leftovers(root), [], 'the undone commit leaves nothing for the next import');
});

t.test('a journal whose commit would move things outside its staging is refused, nothing moved', async (t) => {
  const cut = await cutCommit(t, 4);
  const journalPath = path.join(cut.root, IMPORTS_STATE_DIR, `${IMAGE}.json`);
  const journal = JSON.parse(fs.readFileSync(journalPath, 'utf8'));
  const place = journal.commit.ops.find((s: CommitStep) => s.op === 'place');
  place.staged = path.join(cut.root, 'elsewhere');
  fs.writeFileSync(journalPath, JSON.stringify(journal));
  const during = treeWithoutLeftovers(cut.root);
  await t.rejects(recover(cut, {}), { name: 'PathError', path: `${IMPORTS_STATE_DIR}/${IMAGE}.json`, message: /cannot be undone safely; check the image by hand/ });
  t.same(treeWithoutLeftovers(cut.root), during, 'nothing moved');
  t.ok(fs.existsSync(journalPath), 'the journal stays');
});

/** The commands run in their sandbox alone: no XCATROOT or imgport location from the environment. */
const COMMAND_ENV = { ...process.env, XCATROOT: '', IMGPORT_ROOT: '', IMGPORT_DB: '' };

type BundleMembers = Parameters<NonNullable<Parameters<typeof ourBundle>[1]>>[0];

function anotherKernel(members: BundleMembers): void {
  members.find((m) => m.name.endsWith(`${HOSTILE_IMAGE}/kernel`))!.data = Buffer.from('another kernel');
}

/** Another kernel, and another osname in the definition. */
function newerKernelAndDefinition(members: BundleMembers): void {
  anotherKernel(members);
  const manifest = members.find((m) => m.name.endsWith(`${HOSTILE_IMAGE}/manifest.xml`))!;
  manifest.data = Buffer.from(manifest.data!.toString().replace('<osname>Linux</osname>', '<osname>Linux 2</osname>'));
}

/** A sandbox with the statelite image installed, and a bundle of a newer one (`newer` edits its members). */
async function installedAndNewer(t: Tap.Test, newer = newerKernelAndDefinition): Promise<{ sandbox: ReturnType<typeof makeSandbox>; work: string; bundle: string; data: Buffer }> {
  const sandbox = makeSandbox(t);
  const work = tempDir(t, 'imgport-commit-kill-');
  fs.writeFileSync(path.join(work, 'old.tgz'), (await ourBundle('statelite.tgz')).data);
  t.equal(sandbox.run([path.join(work, 'old.tgz')]).code, 0, 'the previous image is installed');
  const { data } = await ourBundle('statelite.tgz', newer);
  const bundle = path.join(work, 'new.tgz');
  fs.writeFileSync(bundle, data);
  return { sandbox, work, bundle, data };
}

/** How many operations the commit of a `--dry-run` plan has (one line each: see describeOp). */
function commitOperations(dryRun: string): number {
  return dryRun.split('\n').filter((l) => /^ {2}(write|mkdir|rename|replace|overwrite) /.test(l)).length;
}

interface RunningImport {
  child: ReturnType<typeof spawn>;
  exited: Promise<number | null>;
  stderr: () => string;
}

/** Starts imgimport of `bundle` into the sandbox `root`, its standard error collected. */
function startImport(bundle: string, root: string, env: NodeJS.ProcessEnv = COMMAND_ENV, args: string[] = [], cwd?: string): RunningImport {
  const child = spawn(NODE, [...NODE_ARGS, IMGIMPORT, bundle, ...args, '--root', root], { env, cwd });
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  let stderr = '';
  child.stderr.on('data', (chunk) => (stderr += chunk));
  return { child, exited, stderr: () => stderr };
}

/** Starts imgimport paused inside its commit after `pause` operations; resolves once it says so. */
async function pausedImport(bundle: string, root: string, pause: number | 'placed', args: string[] = [], cwd?: string): Promise<RunningImport> {
  const run = startImport(bundle, root, { ...COMMAND_ENV, IMGPORT_TEST_PAUSE_COMMIT_AFTER: String(pause) }, args, cwd);
  await new Promise<void>((resolve) => {
    run.child.stderr!.on('data', () => {
      if (run.stderr().includes('pausing the commit')) resolve();
    });
    run.child.on('close', () => resolve());
  });
  return run;
}

/** A live process (a stand-in for another import putting its files in place) holds the lock every commit takes. */
function holdCommitLock(t: Tap.Test, root: string): ReturnType<typeof spawn> {
  const other = spawn('sleep', ['60']);
  t.teardown(() => void other.kill());
  fs.writeFileSync(path.join(root, IMPORTS_STATE_DIR, COMMIT_LOCK_NAME), `${other.pid}\n`);
  return other;
}

t.test('a second Ctrl-C while an interrupted import puts the old image back waits for it to finish', async (t) => {
  const { sandbox, bundle } = await installedAndNewer(t);
  const before = { tree: treeWithoutLeftovers(sandbox.root), tables: fs.readFileSync(sandbox.db) };
  const run = await pausedImport(bundle, sandbox.root, 2);
  run.child.kill('SIGINT');
  await new Promise((resolve) => setTimeout(resolve, 500));
  run.child.kill('SIGINT');
  t.equal(await run.exited, 1, 'exit 1, not killed by the second signal');
  t.match(run.stderr(), 'SIGINT again: still cleaning up');
  t.match(run.stderr(), /Error: interrupted by SIGINT; nothing was changed/);
  t.same(treeWithoutLeftovers(sandbox.root), before.tree, 'the previous image, whole');
  t.ok(fs.readFileSync(sandbox.db).equals(before.tables), 'the previous tables');
  t.same(leftovers(sandbox.root), [], 'no staging, journal or lock left');
});

t.test('imgimport killed inside its commit: the next import rolls it back, then imports whole', async (t) => {
  const { sandbox, work, bundle, data } = await installedAndNewer(t);
  // Fails right after its manifest: its transaction recovers, then it rolls itself back.
  const truncated = path.join(work, 'truncated.tgz');
  fs.writeFileSync(truncated, data.subarray(0, Math.floor(data.length * 0.6)));

  const dry = sandbox.run([bundle, '--dry-run']);
  t.equal(dry.code, 0, dry.stderr);
  const total = commitOperations(dry.stdout);
  t.ok(total >= 3, `${total} operations in the commit`);
  const before = { tree: treeWithoutLeftovers(sandbox.root), tables: fs.readFileSync(sandbox.db) };
  const reference = path.join(work, 'reference');
  cloneTree(sandbox.root, reference);
  t.equal(spawnSync(NODE, [...NODE_ARGS, IMGIMPORT, bundle, '--root', reference], { env: COMMAND_ENV }).status, 0);
  const after = { tree: treeWithoutLeftovers(reference), tables: fs.readFileSync(path.join(reference, 'var/lib/imgport/tables.json')) };

  // The first and last operations and some between (every point is covered in-process above).
  const pauses = [...new Set([1, ...[1, 2, 3, 4, 5].map((i) => Math.round((i * total) / 6)), total])];
  for (const [index, pause] of pauses.entries()) {
    // Put back by the next import (a truncated bundle), or, every other time, by imgport recover.
    const byRecover = index % 2 === 1;
    await t.test(`killed after ${pause} of ${total} operations, put back by ${byRecover ? 'imgport recover' : 'the next import'}`, async (t) => {
      const root = path.join(work, `run-${pause}`);
      cloneTree(sandbox.root, root);
      const { child, exited } = await pausedImport(bundle, root, pause);
      child.kill('SIGKILL');
      await exited;
      t.notSame(treeWithoutLeftovers(root), before.tree, 'the kill left a half-committed image');
      const run = (file: string) => spawnSync(NODE, [...NODE_ARGS, IMGIMPORT, file, '--root', root], { env: COMMAND_ENV, encoding: 'utf8' });
      if (byRecover) {
        const exporting = spawnSync(NODE, [...NODE_ARGS, IMGEXPORT, HOSTILE_IMAGE, path.join(work, `export-${pause}.tgz`), '--root', root], { env: COMMAND_ENV, encoding: 'utf8' });
        t.equal(exporting.status, 1, 'the half-replaced image is not exported');
        t.match(exporting.stderr, `Error: cannot export ${HOSTILE_IMAGE}: an import of it was killed while putting its files in place (journal /var/lib/imgport/imports/${HOSTILE_IMAGE}.json), so it is half replaced; run imgport recover ${HOSTILE_IMAGE}`);
        // Its rows are what the recovery reads to tell whether the import's table write happened.
        for (const [verb, args] of [['change', ['chdef', '-t', 'osimage', '-o', HOSTILE_IMAGE, 'synclists=']], ['remove', ['rmdef', '-t', 'osimage', '-o', HOSTILE_IMAGE]]] as const) {
          const defining = spawnSync(NODE, [...NODE_ARGS, IMGPORT, ...args, '--root', root], { env: COMMAND_ENV, encoding: 'utf8' });
          t.equal(defining.status, 1, `${args[0]} of the half-replaced image is refused`);
          t.match(defining.stderr, `Error: cannot ${verb} ${HOSTILE_IMAGE}: an import of it was killed while putting its files in place`);
        }
        const dry = spawnSync(NODE, [...NODE_ARGS, IMGIMPORT, bundle, '--dry-run', '--root', root], { env: COMMAND_ENV, encoding: 'utf8' });
        t.equal(dry.status, 0, dry.stderr);
        t.match(dry.stdout, `  first settle the commit a killed import left half done (journal /var/lib/imgport/imports/${HOSTILE_IMAGE}.json): rolled back, or finished if it had placed its files;`, '--dry-run tells');
        const recovering = spawnSync(NODE, [...NODE_ARGS, IMGPORT, 'recover', '--root', root], { env: COMMAND_ENV, encoding: 'utf8' });
        t.equal(recovering.status, 0, recovering.stderr);
        t.match(recovering.stdout, `Rolled back the interrupted commit of an earlier import of ${HOSTILE_IMAGE}:`);
        t.equal(spawnSync(NODE, [...NODE_ARGS, IMGPORT, 'recover', '--root', root], { env: COMMAND_ENV, encoding: 'utf8' }).stdout, 'No interrupted import to recover.\n', 'then nothing is left to recover');
      } else {
        const recovering = run(truncated);
        t.equal(recovering.status, 1, 'the truncated bundle fails');
        t.match(recovering.stderr, `Rolled back the interrupted commit of an earlier import of ${HOSTILE_IMAGE}:`);
      }
      t.same(treeWithoutLeftovers(root), before.tree, 'the previous image, whole');
      t.ok(fs.readFileSync(path.join(root, 'var/lib/imgport/tables.json')).equals(before.tables), 'the previous tables');
      t.same(leftovers(root), [], 'no staging, journal or lock left');
      const next = run(bundle);
      t.equal(next.status, 0, next.stderr);
      t.same(treeWithoutLeftovers(root), after.tree, 'the new image as an uninterrupted import makes it (its .ORIG files the previous image)');
      t.ok(fs.readFileSync(path.join(root, 'var/lib/imgport/tables.json')).equals(after.tables), 'the new tables');
      fs.rmSync(root, { recursive: true, force: true });
    });
  }
});

t.test('imgimport killed after its commit point, before its table write: imgport recover finishes it, as an uninterrupted import leaves it', async (t) => {
  const { sandbox, work, bundle } = await installedAndNewer(t);
  const reference = path.join(work, 'reference');
  cloneTree(sandbox.root, reference);
  t.equal(spawnSync(NODE, [...NODE_ARGS, IMGIMPORT, bundle, '--root', reference], { env: COMMAND_ENV }).status, 0);
  const tables = fs.readFileSync(sandbox.db);
  const { child, exited } = await pausedImport(bundle, sandbox.root, 'placed');
  child.kill('SIGKILL');
  await exited;
  t.ok(fs.readFileSync(sandbox.db).equals(tables), 'killed before its table write');
  const exporting = spawnSync(NODE, [...NODE_ARGS, IMGEXPORT, HOSTILE_IMAGE, path.join(work, 'export.tgz'), '--root', sandbox.root], { env: COMMAND_ENV, encoding: 'utf8' });
  t.equal(exporting.status, 1, 'not exported meanwhile');
  t.match(exporting.stderr, `Error: cannot export ${HOSTILE_IMAGE}: an import of it was killed after putting its files in place (journal /var/lib/imgport/imports/${HOSTILE_IMAGE}.json), before writing its table rows; run imgport recover ${HOSTILE_IMAGE}`);
  const recovering = spawnSync(NODE, [...NODE_ARGS, IMGPORT, 'recover', '--root', sandbox.root], { env: COMMAND_ENV, encoding: 'utf8' });
  t.equal(recovering.status, 0, recovering.stderr);
  t.match(recovering.stdout, /^Finished the interrupted import of \S+: its files were in place, its table rows are now written\nRemoved the leftovers of an interrupted import of \S+: \S+\/install\/.imgport-staging-[-0-9a-f]+\n$/);
  t.same(treeWithoutLeftovers(sandbox.root), treeWithoutLeftovers(reference), 'the files as the uninterrupted import left them');
  t.ok(fs.readFileSync(sandbox.db).equals(fs.readFileSync(path.join(reference, 'var/lib/imgport/tables.json'))), 'the tables too, byte for byte');
  t.same(leftovers(sandbox.root), [], 'no staging, journal or lock left');
});

t.test('an import killed past its commit point into another table file (--db): an import without it is refused and keeps the journal; recover --db finishes it', async (t) => {
  // xCAT's bundle: its manifest is not first, so the import's journal moves to the image's name once it is read.
  const sandbox = makeSandbox(t);
  const bundle = sandbox.bundle('netboot.tgz');
  const work = tempDir(t, 'imgport-commit-db-');
  const db = path.join(work, 'other-tables.json');
  fs.copyFileSync(sandbox.db, db);
  const renamed = 'rhels8.5.0-ppc64le-netboot-p3';
  const { child, exited } = await pausedImport(bundle, sandbox.root, 'placed', ['-f', 'p3', '--db', path.basename(db)], work);
  child.kill('SIGKILL');
  await exited;
  const journal = path.join(sandbox.root, IMPORTS_STATE_DIR, `${renamed}.json`);
  t.ok(fs.existsSync(journal), 'its journal, under the image name -f gives');
  const defaultTables = fs.readFileSync(sandbox.db);
  const again = spawnSync(NODE, [...NODE_ARGS, IMGIMPORT, bundle, '-f', 'p3', '--root', sandbox.root], { env: COMMAND_ENV, encoding: 'utf8' });
  t.equal(again.status, 1);
  t.match(again.stderr, `Error: the killed import of ${renamed} was writing to the table file ${db}: run imgport recover ${renamed} with that table file (--db)`);
  t.ok(fs.existsSync(journal), 'the journal kept for that recovery');
  t.ok(fs.readFileSync(sandbox.db).equals(defaultTables), 'nothing written in the default table file');
  // --db was given relative to another directory: the journal holds the file's absolute path.
  const recovering = spawnSync(NODE, [...NODE_ARGS, IMGPORT, 'recover', renamed, '--db', db, '--root', sandbox.root], { env: COMMAND_ENV, encoding: 'utf8' });
  t.equal(recovering.status, 0, recovering.stderr);
  t.match(recovering.stdout, `Finished the interrupted import of ${renamed}`);
  t.match(fs.readFileSync(db, 'utf8'), renamed, 'its rows in its table file');
  t.same(leftovers(sandbox.root), [], 'no staging, journal or lock left');
});

t.test('an image named commit has a lock of its own, not the one every import takes for its commit', async (t) => {
  const root = tempDir(t, 'imgport-commit-journal-');
  const sandbox = new Sandbox(root);
  installedImage(root);
  const tx = await ImportTransaction.begin(sandbox, 'commit', ['/install'], () => undefined, tablesIn({}));
  // It used to be commit.lock, the image's own lock: the commit waited 10 minutes for itself.
  const locked = tx.withCommitLock(async () => {
    t.ok(fs.existsSync(path.join(root, IMPORTS_STATE_DIR, 'commit.lock')), "the image's lock");
    t.ok(fs.existsSync(path.join(root, IMPORTS_STATE_DIR, COMMIT_LOCK_NAME)), 'and the commit lock, another file');
  });
  await Promise.race([locked, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('still waiting after 5 s')), 5000))]);
  await tx.close();
  t.same(leftovers(root), [], 'both released');
});

t.test("the rollback of a killed import's commit waits for another import's commit to end", async (t) => {
  const cut = await cutCommit(t, 4);
  const during = treeWithoutLeftovers(cut.root);
  const other = holdCommitLock(t, cut.root);
  let settled = false;
  const recovering = recover(cut, {}).finally(() => (settled = true));
  await new Promise((resolve) => setTimeout(resolve, 1500));
  t.notOk(settled, 'still waiting after 1.5 s');
  t.same(treeWithoutLeftovers(cut.root), during, 'nothing put back meanwhile');
  other.kill();
  await recovering;
  t.same(treeWithoutLeftovers(cut.root), cut.before, 'then rolled back, once the other commit is over');
});

t.test('Ctrl-C while an import waits for another one to put its files in place ends it at once, nothing left', async (t) => {
  const { sandbox, bundle } = await installedAndNewer(t);
  const before = { tree: treeWithoutLeftovers(sandbox.root), tables: fs.readFileSync(sandbox.db) };
  const other = holdCommitLock(t, sandbox.root);
  const { child, exited, stderr } = startImport(bundle, sandbox.root);
  // Waiting: everything staged and flushed, the commit lock not to be had.
  for (let i = 0; i < 100 && !fs.readdirSync(path.join(sandbox.root, IMPORTS_STATE_DIR)).some((n) => n.startsWith(`${COMMIT_LOCK_NAME}.`)); i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const interrupted = Date.now();
  child.kill('SIGINT');
  t.equal(await exited, 1, 'exit 1');
  t.ok(Date.now() - interrupted < 10_000, `ended ${Date.now() - interrupted} ms after the interrupt (it used to wait 60 s)`);
  t.match(stderr(), /Error: interrupted by SIGINT; nothing was changed/);
  other.kill();
  fs.rmSync(path.join(sandbox.root, IMPORTS_STATE_DIR, COMMIT_LOCK_NAME), { force: true });
  t.same(treeWithoutLeftovers(sandbox.root), before.tree, 'the previous image, whole');
  t.ok(fs.readFileSync(sandbox.db).equals(before.tables), 'the previous tables');
  t.same(leftovers(sandbox.root), [], 'no staging, journal, lock or claim left');
});

t.test("a killed import's journal whose pid was given to another process counts as interrupted", async (t) => {
  const cut = await cutCommit(t, 4);
  const journalPath = path.join(cut.root, IMPORTS_STATE_DIR, `${IMAGE}.json`);
  const journal = JSON.parse(fs.readFileSync(journalPath, 'utf8'));
  if (!journal.start) return t.skip('no /proc here to tell processes apart');
  t.equal(journal.pid, process.pid, 'the journal names this (living) process');
  t.equal(await interruptedCommit(cut.sandbox, IMAGE), undefined, 'its own start: the import is still running');
  fs.writeFileSync(journalPath, JSON.stringify({ ...journal, start: journal.start.replace(/:\d+$/, ':1') }));
  t.equal(await interruptedCommit(cut.sandbox, IMAGE), `${IMPORTS_STATE_DIR}/${IMAGE}.json`, 'another start: that import is gone, its pid reused');
  fs.writeFileSync(journalPath, JSON.stringify({ ...journal, start: undefined }));
  t.equal(await interruptedCommit(cut.sandbox, IMAGE), undefined, 'no start (an earlier version): judged by the pid alone');
});

t.test('an import of an unchanged definition with new litefile rows, killed before its table write, is rolled back', async (t) => {
  // The same definition (osimage, linuximage rows): only a file and the litefile rows change.
  const { sandbox, bundle } = await installedAndNewer(t, (members) => {
    anotherKernel(members);
    const litefile = members.find((m) => m.name.endsWith(`${HOSTILE_IMAGE}/litefile.csv`))!;
    litefile.data = Buffer.concat([litefile.data!, Buffer.from(`"${HOSTILE_IMAGE}","/etc/motd","tmpfs",,\n`)]);
  });
  const before = { tree: treeWithoutLeftovers(sandbox.root), tables: fs.readFileSync(sandbox.db) };
  const dry = sandbox.run([bundle, '--dry-run']);
  const total = commitOperations(dry.stdout);
  // Killed after its last rename: every file is the new image's, the tables still the old ones.
  const { child, exited } = await pausedImport(bundle, sandbox.root, total);
  child.kill('SIGKILL');
  await exited;
  const recovering = spawnSync(NODE, [...NODE_ARGS, IMGPORT, 'recover', '--root', sandbox.root], { env: COMMAND_ENV, encoding: 'utf8' });
  t.equal(recovering.status, 0, recovering.stderr);
  t.match(recovering.stdout, `Rolled back the interrupted commit of an earlier import of ${HOSTILE_IMAGE}:`, 'the litefile row missing: the table write never happened');
  t.same(treeWithoutLeftovers(sandbox.root), before.tree, 'the previous image, whole');
  t.ok(fs.readFileSync(sandbox.db).equals(before.tables), 'the previous tables');
});
