/**
 * Imports running at the same time: four of different images all succeed; two of the same image,
 * one refuses while the other succeeds; table changes made while an import runs are all kept.
 */
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { tempDir } from './helpers/export-bundle.js';
import { leftovers } from './helpers/hostile-faults.js';
import { ourBundle } from './helpers/import-bundles.js';
import { IMGIMPORT, IMGPORT, makeSandbox, startHalfWay } from './helpers/import-sandbox.js';
import { NODE, NODE_ARGS } from './helpers/node-command.js';

const run = promisify(execFile);
const env = { ...process.env, XCATROOT: '', IMGPORT_ROOT: '', IMGPORT_DB: '' };
const bundles = tempDir(t, 'imgport-concurrent-');
const statelite = path.join(bundles, 'statelite.tgz');
const bundleData = (await ourBundle('statelite.tgz')).data;
fs.writeFileSync(statelite, bundleData);

interface Held {
  /** Sends the rest of the bundle; resolves to the exit code and output. */
  finish(): Promise<{ code: number | null; stderr: string }>;
  exited: Promise<{ code: number | null; stderr: string }>;
}

/** An import reading the bundle from a pipe, given only its first half until finish(). */
function heldImport(root: string, args: string[] = []): Held {
  const child = spawn(NODE, [...NODE_ARGS, IMGIMPORT, '-', ...args, '--root', root], { env, stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c) => (stderr += c));
  child.stdin.on('error', () => undefined);
  const half = Math.floor(bundleData.length / 2);
  child.stdin.write(bundleData.subarray(0, half));
  const exited = new Promise<{ code: number | null; stderr: string }>((resolve) => child.on('close', (code) => resolve({ code, stderr })));
  return {
    exited,
    finish() {
      child.stdin.end(bundleData.subarray(half));
      return exited;
    },
  };
}

const imageRows = (root: string) => (JSON.parse(fs.readFileSync(path.join(root, 'var/lib/imgport/tables.json'), 'utf8')) as Record<string, { imagename?: string }[]>).osimage?.map((r) => r.imagename).sort() ?? [];

t.test('four imports of different images at once all succeed', async (t) => {
  const sandbox = makeSandbox(t);
  const profiles = ['p1', 'p2', 'p3', 'p4'];
  const runs = await Promise.all(profiles.map((p) => run(NODE, [...NODE_ARGS, IMGIMPORT, statelite, '-f', p, '--root', sandbox.root], { env }).then(() => 0, (err: { code: number; stderr: string }) => `${err.code}: ${err.stderr}`)));
  t.same(runs, [0, 0, 0, 0], 'all four succeed');
  t.same(imageRows(sandbox.root), profiles.map((p) => `rhels8.5.0-x86_64-statelite-${p}`), 'four osimage rows');
  for (const p of profiles) {
    t.ok(fs.existsSync(path.join(sandbox.root, `install/netboot/rhels8.5.0/x86_64/${p}/rootimg/etc/passwd`)), `${p}: its tree`);
    t.equal(fs.statSync(path.join(sandbox.root, `install/netboot/rhels8.5.0/x86_64/${p}/kernel`)).size, 300000, `${p}: its kernel`);
  }
  t.same(leftovers(sandbox.root), [], 'no staging, lock or journal left');
});

t.test('two imports of the same image at once: one refuses, the other succeeds', async (t) => {
  const sandbox = makeSandbox(t);
  const both = [heldImport(sandbox.root), heldImport(sandbox.root)];
  // The one that did not get the lock exits by itself; the other waits for the rest of its bundle.
  const refused = await Promise.race(both.map((held, index) => held.exited.then((result) => ({ index, result }))));
  t.equal(refused.result.code, 1, 'one exits 1');
  t.match(refused.result.stderr, /image rhels8\.5\.0-x86_64-statelite-compute is being imported by process \d+/, 'saying who holds the image');
  const winner = await both[1 - refused.index].finish();
  t.equal(winner.code, 0, `the other succeeds: ${winner.stderr}`);
  t.same(imageRows(sandbox.root), ['rhels8.5.0-x86_64-statelite-compute']);
  t.same(leftovers(sandbox.root), [], 'no staging, lock or journal left');
});

t.test('chdef while an import runs: neither change is lost', async (t) => {
  const sandbox = makeSandbox(t);
  const held = await startHalfWay(sandbox, bundleData, 'rhels8.5.0-x86_64-statelite-compute');
  await run(NODE, [...NODE_ARGS, IMGPORT, 'chdef', '-t', 'node', '-o', 'node1', 'groups=compute,all,rack1', '--root', sandbox.root], { env });
  // More changes racing the import's commit and its table update.
  const racing = Array.from({ length: 6 }, (_, i) =>
    run(NODE, [...NODE_ARGS, IMGPORT, 'mkdef', '-t', 'node', '-o', `racer${i}`, 'groups=all', '--root', sandbox.root], { env }));
  held.finish();
  const imported = { code: await held.exited, stderr: held.stderr() };
  await Promise.all(racing);
  t.equal(imported.code, 0, imported.stderr);
  const tables = JSON.parse(fs.readFileSync(sandbox.db, 'utf8')) as Record<string, Record<string, string>[]>;
  t.equal(tables.nodelist.find((r) => r.node === 'node1')?.groups, 'compute,all,rack1', 'the chdef made during the import is kept');
  t.same(tables.nodelist.map((r) => r.node).filter((n) => n.startsWith('racer')).sort(), Array.from({ length: 6 }, (_, i) => `racer${i}`), 'every racing mkdef is kept');
  t.same(imageRows(sandbox.root), ['rhels8.5.0-x86_64-statelite-compute'], 'the import is kept');
  t.ok(tables.litefile.some((r) => r.image === 'rhels8.5.0-x86_64-statelite-compute'), 'with its litefile rows');
});
