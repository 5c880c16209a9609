/**
 * imgexport with source files it cannot read: a file the (unprivileged) user may not read, a
 * file that vanishes while the bundle is being written. Clear error naming the file, no bundle,
 * no temporary file. Tests run as root, who reads everything: the export runs as `nobody` here.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { buildSampleImage, type SampleProvmethod } from '../src/sample/sample-image.js';
import { IMGEXPORT, leftoverTemps, runImgexport, tempDir, writeTables } from './helpers/export-bundle.js';
import { HEAVY } from './helpers/hostile-faults.js';
import { NODE, NODE_ARGS } from './helpers/node-command.js';

const NOBODY = 65534;

/** A sample image in a sandbox everyone may read, with a destination directory everyone may write. */
async function setUp(t: Tap.Test, provmethod: SampleProvmethod, sizeScale = 1) {
  const work = tempDir(t, 'imgport-unreadable-');
  fs.chmodSync(work, 0o755);
  const root = path.join(work, 'root');
  const image = await buildSampleImage({ root, provmethod, sizeScale });
  writeTables(root, { osimage: [image.osimage], linuximage: [image.linuximage] });
  const out = path.join(work, 'out');
  fs.mkdirSync(out, { mode: 0o777 });
  fs.chmodSync(out, 0o777);
  const dest = path.join(out, `${image.imagename}.tgz`);
  const rootimgdir = path.join(root, image.linuximage.rootimgdir!);
  return { work, root, image, dest, rootimgdir };
}

/** imgexport as `nobody` (the sample's one root-only file is the statelite tree's ssh host key; without the test runner's preloads, which write where nobody may not). */
function exportAsNobody(s: Awaited<ReturnType<typeof setUp>>): Promise<{ code: number | null; stderr: string }> {
  // env(1) drops NODE_OPTIONS, which the runner puts back into the environment of whatever is spawned.
  const child = spawn(NODE, [...NODE_ARGS, IMGEXPORT, s.image.imagename, s.dest, '--root', s.root, '--no-progress'], {
    uid: NOBODY,
    gid: NOBODY,
    cwd: s.work,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (c) => (stderr += c));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

t.test('a kernel the user may not read', async (t) => {
  const s = await setUp(t, 'netboot');
  const kernel = path.join(s.rootimgdir, 'kernel');
  fs.chmodSync(kernel, 0o600);
  const run = await exportAsNobody(s);
  t.equal(run.code, 1, 'exit code 1');
  t.match(run.stderr, `cannot read ${kernel}: permission denied`, 'names the file and why');
  t.notMatch(run.stderr, /\n\s+at /, 'no stack trace');
  t.notOk(fs.existsSync(s.dest), 'no bundle');
  t.same(leftoverTemps(s.dest), [], 'no temporary file');
});

t.test('a file of the statelite tree the user may not read', async (t) => {
  const s = await setUp(t, 'statelite');
  const key = path.join(s.rootimgdir, 'rootimg/etc/ssh/ssh_host_rsa_key');
  t.equal(fs.statSync(key).mode & 0o777, 0o600, 'root-only, as in a real image');
  const run = await exportAsNobody(s);
  t.equal(run.code, 1, 'exit code 1');
  t.match(run.stderr, `cannot read ${key}: permission denied`, 'names the file and why');
  t.notOk(fs.existsSync(s.dest), 'no bundle');
  t.same(leftoverTemps(s.dest), [], 'no temporary file');
});

t.test('a directory of the statelite tree the user may not list', async (t) => {
  const s = await setUp(t, 'statelite');
  fs.chmodSync(path.join(s.rootimgdir, 'rootimg/etc/ssh/ssh_host_rsa_key'), 0o644);
  const dir = path.join(s.rootimgdir, 'rootimg/var/log');
  fs.chmodSync(dir, 0o700);
  const run = await exportAsNobody(s);
  t.equal(run.code, 1, 'exit code 1');
  t.match(run.stderr, `cannot read directory ${dir}: permission denied`, 'names the directory and why');
  t.notOk(fs.existsSync(s.dest), 'no bundle');
  t.same(leftoverTemps(s.dest), [], 'no temporary file');
});

t.test('a file of the statelite tree that vanishes while the bundle is written', async (t) => {
  const s = await setUp(t, 'statelite', HEAVY ? 64 : 16);
  const victim = path.join(s.rootimgdir, 'rootimg/var/log/messages');
  const run = await runImgexport([s.image.imagename, s.dest, '--root', s.root, '--no-progress', '-j1', '--level', '9'], {
    cwd: s.work,
    started: () => {
      void (async () => {
        // Once bytes reach the temporary bundle the tree has been walked; var/log comes after the big file in usr/.
        while (!leftoverTemps(s.dest).some((name) => fs.statSync(path.join(path.dirname(s.dest), name), { throwIfNoEntry: false })?.size)) await sleep(5);
        fs.rmSync(victim);
      })();
    },
  });
  t.notOk(fs.existsSync(victim), 'the file was removed during the export');
  t.equal(run.code, 1, 'exit code 1');
  // Removed before the walk that writes the tree reaches var/log (the usual case), the name is not
  // listed any more: the walk names the last entry it found; removed after, the file is named.
  const missing = run.stderr.includes('tree changed while being read')
    ? new RegExp(`tree changed while being read: .*\\(its first walk found (\\d+) entries, this one \\d+, the last of them var/log: names were removed since\\)`)
    : `cannot read ${victim}: no such file or directory`;
  t.match(run.stderr, missing, 'says where the tree changed');
  t.notOk(fs.existsSync(s.dest), 'no bundle');
  t.same(leftoverTemps(s.dest), [], 'no temporary file');
});
