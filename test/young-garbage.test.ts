import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { COLLECT_EVERY, YoungGarbage } from '../src/pipeline/young-garbage.js';
import { NODE, NODE_ARGS } from './helpers/node-command.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MiB = 1024 * 1024;

t.test('collects the young generation once every COLLECT_EVERY bytes of fresh buffers', async (t) => {
  const calls: string[] = [];
  const garbage = new YoungGarbage((options) => calls.push(options.type));
  for (let i = 0; i < 10; i++) garbage.allocated(MiB);
  t.equal(COLLECT_EVERY, 4 * MiB);
  t.same(calls, ['minor', 'minor'], '10 MiB: two collections, at 4 and 8 MiB');
  garbage.allocated(2 * MiB - 1);
  t.equal(calls.length, 2, 'one byte short of the third');
  garbage.allocated(1);
  t.equal(calls.length, 3);
});

t.test('without an exposed gc nothing happens', async (t) => {
  const garbage = new YoungGarbage(undefined, 10);
  t.doesNotThrow(() => {
    for (let i = 0; i < 100; i++) garbage.allocated(7);
  });
});

t.test("a bundle's gunzip reports its output: 32 MiB inflated, 8 collections (a child with V8's gc exposed)", async (t) => {
  const decompress = path.join(repo, 'dist', 'src', 'pipeline', 'decompress.js');
  // The gc is wrapped before the module captures it; the data is 32 MiB of zeros, gzipped.
  const script = `
    import zlib from 'node:zlib';
    import { Readable } from 'node:stream';
    const real = globalThis.gc;
    const calls = [];
    globalThis.gc = (options) => { calls.push(options.type); real(options); };
    const { createDecompressor, createGunzip } = await import(${JSON.stringify(decompress)});
    const compressed = zlib.gzipSync(Buffer.alloc(32 * 1024 * 1024));
    for (const make of [() => createDecompressor('gzip'), createGunzip]) {
      calls.length = 0;
      let bytes = 0;
      for await (const chunk of Readable.from([compressed]).pipe(make())) bytes += chunk.length;
      console.log(JSON.stringify({ bytes, calls }));
    }
  `;
  const run = spawnSync(NODE, [...NODE_ARGS, '--expose-gc', '--input-type=module', '-e', script], { encoding: 'utf8' });
  t.equal(run.status, 0, run.stderr);
  const [checked, plain] = run.stdout.trim().split('\n').map((line) => JSON.parse(line) as { bytes: number; calls: string[] });
  t.same(checked, { bytes: 32 * MiB, calls: Array(8).fill('minor') }, "the bundle's decompressor");
  t.same(plain, { bytes: 32 * MiB, calls: Array(8).fill('minor') }, 'the gunzip of the statelite tree');
});

t.test('the commands that decompress expose gc on their first line; the others do not need it', async (t) => {
  const firstLine = (name: string) => fs.readFileSync(path.join(repo, 'dist', 'bin', `${name}.js`), 'utf8').split('\n')[0];
  for (const name of ['imgimport', 'imgport']) t.match(firstLine(name), / --expose-gc$/, name);
  for (const name of ['imgexport', 'packimage']) t.notMatch(firstLine(name), /--expose-gc/, name);
});
