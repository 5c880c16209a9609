/**
 * imgimport killed or interrupted at seeded points (part way through the bundle on its standard
 * input, or after all of it, while it verifies and commits): the image is either the previous one
 * or the new one, whole, with the matching tables; a signal it can catch leaves no staging, lock or
 * journal; after SIGKILL the next import succeeds and removes the leftovers.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { pseudoRandom, tempDir } from './helpers/export-bundle.js';
import { HEAVY, cloneTree, leftovers, runAndInterrupt, seededRandom, treeWithoutLeftovers } from './helpers/hostile-faults.js';
import { HOSTILE_IMAGE } from './helpers/hostile-bundles.js';
import { ourBundle } from './helpers/import-bundles.js';
import { IMGIMPORT, makeSandbox } from './helpers/import-sandbox.js';
import { NODE, NODE_ARGS } from './helpers/node-command.js';

const KILL_POINTS = HEAVY ? 40 : 10;
const CATCHABLE_POINTS = HEAVY ? 12 : 3; // per signal
const env = { XCATROOT: '', IMGPORT_ROOT: '', IMGPORT_DB: '' };
const work = tempDir(t, 'imgport-kill-import-');

// The template: the statelite image installed. The incoming bundle replaces it with another kernel.
const template = makeSandbox(t);
fs.writeFileSync(path.join(work, 'old.tgz'), (await ourBundle('statelite.tgz')).data);
t.equal(template.run([path.join(work, 'old.tgz')]).code, 0, 'the previous image is installed');
const newKernel = pseudoRandom((HEAVY ? 64 : 8) << 20, 'new kernel');
const incoming = (await ourBundle('statelite.tgz', (members) => {
  members.find((m) => m.name.endsWith(`${HOSTILE_IMAGE}/kernel`))!.data = newKernel;
  const manifest = members.find((m) => m.name.endsWith(`${HOSTILE_IMAGE}/manifest.xml`))!;
  manifest.data = Buffer.from(manifest.data!.toString().replace('<osname>Linux</osname>', '<osname>Linux 2</osname>'));
})).data;
const bundleFile = path.join(work, 'new.tgz');
fs.writeFileSync(bundleFile, incoming);
const manifestOnly = path.join(work, 'manifest-only.tgz');
fs.writeFileSync(manifestOnly, (await ourBundle('statelite.tgz', (members) => members.splice(1))).data);
const kernelPath = 'install/netboot/rhels8.5.0/x86_64/compute/kernel';

const before = { tree: treeWithoutLeftovers(template.root), tables: fs.readFileSync(template.db) };
const reference = path.join(work, 'reference');
cloneTree(template.root, reference);
const completed = spawnSync(NODE, [...NODE_ARGS, IMGIMPORT, bundleFile, '--root', reference], { env: { ...process.env, ...env }, encoding: 'utf8' });
t.equal(completed.status, 0, completed.stderr);
const after = { tree: treeWithoutLeftovers(reference), tables: fs.readFileSync(path.join(reference, 'var/lib/imgport/tables.json')) };
t.notSame(after.tree, before.tree, 'the import changes the image');
t.notOk(after.tables.equals(before.tables), 'and the tables');

let clones = 0;
/** A fresh copy of the template sandbox. */
function freshRoot(): string {
  const root = path.join(work, `run-${++clones}`);
  cloneTree(template.root, root);
  return root;
}

/** Previous image and tables, or the new ones: never a mixture. */
function assertWhole(t: Tap.Test, root: string, signal: NodeJS.Signals): 'before' | 'after' {
  const tree = treeWithoutLeftovers(root);
  const tables = fs.readFileSync(path.join(root, 'var/lib/imgport/tables.json'));
  const state = tables.equals(before.tables) ? 'before' : 'after';
  const expected = state === 'before' ? before.tree : after.tree;
  t.same(tree, expected, `files match the tables (${state} the import)${signal === 'SIGKILL' ? ', once the next import has recovered' : ''}`);
  if (state === 'after') t.ok(tables.equals(after.tables), 'tables as after a completed import');
  return state;
}

/** A seeded point: a byte count of the bundle (beyond its length: all of it, then a delay). */
function pointsFor(seed: string, count: number) {
  const random = seededRandom(seed);
  return Array.from({ length: count }, () => {
    const upTo = Math.floor(random() * incoming.length * 1.25);
    return { upTo, delayMs: Math.floor(random() * (upTo >= incoming.length ? 400 : 60)) };
  });
}

t.test(`SIGKILL at ${KILL_POINTS} seeded points`, async (t) => {
  for (const point of pointsFor('imgimport SIGKILL', KILL_POINTS)) {
    await t.test(`after ${point.upTo} bytes + ${point.delayMs} ms`, async (t) => {
      const root = freshRoot();
      await runAndInterrupt(IMGIMPORT, ['-', '--root', root], { signal: 'SIGKILL', delayMs: point.delayMs, feed: { data: incoming, upTo: point.upTo }, env });
      // A kill inside the commit (between renames, before the table write) is repaired by the next
      // import of the image, from its journal: one that itself fails right after its manifest.
      const recovery = spawnSync(NODE, [...NODE_ARGS, IMGIMPORT, manifestOnly, '--root', root], { env: { ...process.env, ...env }, encoding: 'utf8' });
      t.equal(recovery.status, 1, 'the manifest-only bundle is refused (after recovering)');
      assertWhole(t, root, 'SIGKILL');
      const next = spawnSync(NODE, [...NODE_ARGS, IMGIMPORT, bundleFile, '--root', root], { env: { ...process.env, ...env }, encoding: 'utf8' });
      t.equal(next.status, 0, `the next import succeeds: ${next.stderr}`);
      t.same(leftovers(root), [], 'no staging, lock or journal left');
      t.ok(fs.readFileSync(path.join(root, kernelPath)).equals(newKernel), 'the new kernel in place');
      t.ok(fs.readFileSync(path.join(root, 'var/lib/imgport/tables.json')).equals(after.tables), 'tables as after the import');
      fs.rmSync(root, { recursive: true, force: true });
    });
  }
});

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  t.test(`${signal} at ${CATCHABLE_POINTS} seeded points`, async (t) => {
    for (const point of pointsFor(`imgimport ${signal}`, CATCHABLE_POINTS)) {
      await t.test(`after ${point.upTo} bytes + ${point.delayMs} ms`, async (t) => {
        const root = freshRoot();
        const run = await runAndInterrupt(IMGIMPORT, ['-', '--root', root], { signal, delayMs: point.delayMs, afterFirstOutput: true, feed: { data: incoming, upTo: point.upTo }, env });
        const state = assertWhole(t, root, signal);
        if (run.finishedFirst) {
          // The signal came too late to act: then it must have finished the import.
          t.equal(run.code, 0, 'exit code 0');
          t.equal(state, 'after', 'finished before the signal');
          t.match(run.stdout, 'Successfully imported the image', 'and said so');
        } else {
          t.equal(run.code, 1, 'exit code 1');
          t.match(run.stderr, `interrupted by ${signal}`, 'says so');
          if (state === 'after') {
            t.notMatch(run.stderr, 'nothing was changed', 'does not deny a completed import');
          }
        }
        t.same(leftovers(root), [], 'no staging, lock or journal left');
        fs.rmSync(root, { recursive: true, force: true });
      });
    }
  });
}
