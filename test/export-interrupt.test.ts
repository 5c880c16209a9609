import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { buildSampleImage } from '../src/sample/sample-image.js';
import { leftoverTemps, pseudoRandom, put, runImgexport, tempDir, writeTables } from './helpers/export-bundle.js';

/**
 * Failures in the middle of a slow export (a 20 MB compressible kernel, one thread, level 9):
 * nothing may be left at the destination or beside it.
 */

const work = tempDir(t);
const root = path.join(work, 'root');
const image = await buildSampleImage({ root, provmethod: 'netboot' });
const kernel = path.join(root, image.linuximage.rootimgdir!, 'kernel');
const bigKernel = Buffer.from(pseudoRandom(10 * 1024 * 1024, 'kernel').toString('hex'));
writeTables(root, { osimage: [image.osimage], linuximage: [image.linuximage] });

/** Polls until the temporary bundle beside `dest` holds data: the export is under way. */
async function whenWriting(dest: string): Promise<void> {
  for (;;) {
    const tmp = leftoverTemps(dest)[0];
    if (tmp && fs.statSync(path.join(path.dirname(dest), tmp), { throwIfNoEntry: false })?.size) return;
    await sleep(10);
  }
}

function slowExport(dest: string, onWriting: (child: { kill(signal: NodeJS.Signals): boolean }) => void) {
  put(kernel, bigKernel);
  return runImgexport([image.imagename, dest, '--root', root, '--no-progress', '-j1', '--level', '9'], {
    cwd: work,
    started: (child) => void whenWriting(dest).then(() => onWriting(child)),
  });
}

t.test('a file that shrinks while it is read fails the export, naming it', async (t) => {
  const dest = path.join(tempDir(t), 'b.tgz');
  const run = await slowExport(dest, () => fs.truncateSync(kernel, 1000));
  t.equal(run.code, 1, 'exit 1');
  t.match(run.stderr, `file changed size while being read: ${kernel}`, 'the file is named');
  t.notOk(fs.existsSync(dest), 'no bundle');
  t.same(leftoverTemps(dest), [], 'no temporary file');
});

// SIGHUP: the terminal or the ssh session the export runs in went away.
for (const signal of ['SIGTERM', 'SIGHUP'] as const) {
  t.test(`${signal} during the export leaves nothing behind`, async (t) => {
    const dest = path.join(tempDir(t), 'b.tgz');
    const run = await slowExport(dest, (child) => child.kill(signal));
    t.not(run.code, 0, 'non-zero exit');
    t.match(run.stderr, `interrupted by ${signal}`);
    t.notOk(fs.existsSync(dest), 'no bundle');
    t.same(leftoverTemps(dest), [], 'no temporary file');
  });
}
