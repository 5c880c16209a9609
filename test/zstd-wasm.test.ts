import t from 'tap';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { loadZstdWasm, zstdFailure } from '../src/pipeline/compress/zstd-wasm.js';
import { NODE, NODE_ARGS } from './helpers/node-command.js';

const compiled = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'src', 'pipeline', 'compress', 'zstd-wasm.js');

/** Fails the test, rather than hanging it, if `promise` does not settle soon. */
function settlesSoon<T>(promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('did not settle within 5 s')), 5000);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

t.test('an instance that aborts while loading rejects with the reason, instead of never settling', async (t) => {
  const load = loadZstdWasm((module) => module.onAbort?.('OOM'));
  await t.rejects(settlesSoon(load), { message: "zstd's WebAssembly failed to load: OOM" });
});

t.test('a loader that throws rejects', async (t) => {
  const load = loadZstdWasm(() => {
    throw new Error('cannot compile');
  });
  await t.rejects(settlesSoon(load), { message: 'cannot compile' });
});

t.test('a real instance loads through the hooks and answers', async (t) => {
  const wasm = await settlesSoon(loadZstdWasm());
  const codec = new wasm.ZstdCodec();
  t.ok(codec.compressBound(1024) > 1024, 'the binding answers');
});

t.test('an abort inside the WebAssembly prints nothing on standard output and becomes an Error with its reason', (t) => {
  // In a process of its own: an aborted instance is unusable, and its printing goes to the
  // process's standard output, where a bundle may be streaming.
  const script = `
    import { loadZstdWasm, zstdFailure } from ${JSON.stringify(pathToFileURL(compiled).href)};
    const wasm = await loadZstdWasm();
    const vector = new wasm.VectorU8();
    try { vector.resize(64 * 1024 * 1024, 0); console.error('no abort'); }
    catch (thrown) { const error = zstdFailure(thrown); console.error(error instanceof Error, error.message); }
  `;
  const run = spawnSync(NODE, [...NODE_ARGS, '--input-type=module', '-e', script], { encoding: 'utf8' });
  t.equal(run.status, 0, run.stderr);
  t.equal(run.stdout, '', 'nothing on standard output');
  t.match(run.stderr, /^true zstd failed: abort\(OOM\)/, 'the heap overflow surfaces as an Error naming it');
  t.end();
});

t.test('zstdFailure keeps Errors as they are', (t) => {
  const error = new RangeError('x');
  t.equal(zstdFailure(error), error);
  t.equal(zstdFailure('abort(1)').message, 'zstd failed: abort(1)');
  t.end();
});
