import t from 'tap';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { NODE, NODE_ARGS } from './helpers/node-command.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const poolModule = pathToFileURL(path.join(repo, 'dist', 'src', 'pipeline', 'compress', 'pool.js')).href;

/** Runs `script` (an ES module body with `pool` imported) in a fresh node; threads left running would keep it alive. */
function runWithPool(script: string) {
  const source = `import * as pool from ${JSON.stringify(poolModule)};\n${script}`;
  return spawnSync(NODE, [...NODE_ARGS, '--input-type=module', '-e', source], { encoding: 'utf8', timeout: 30_000 });
}

t.test('threads started early are stopped when the work fails, so the process can exit', async (t) => {
  const r = runWithPool(`
    await pool.withThreadsStarted(2, 'zstd', async () => { throw new Error('survey failed'); })
      .catch((err) => console.log(err.message));
  `);
  t.equal(r.signal, null, 'exited on its own, not killed by the timeout');
  t.equal(r.status, 0);
  t.equal(r.stdout, 'survey failed\n');
});

t.test('a compression stream made while the threads start shares them, and the process exits after', async (t) => {
  const r = runWithPool(`
    const { createCompressor } = await import(${JSON.stringify(pathToFileURL(path.join(repo, 'dist', 'src', 'pipeline', 'compress', 'compressor.js')).href)});
    const zlib = await import('node:zlib');
    const { randomBytes } = await import('node:crypto');
    const text = Buffer.from(randomBytes(300_000).toString('base64'));
    const out = await pool.withThreadsStarted(2, 'gzip', async () => {
      const c = createCompressor({ format: 'gzip', threads: 2 });
      const parts = [];
      c.stream.on('data', (d) => parts.push(d));
      const ended = new Promise((resolve, reject) => { c.stream.on('end', resolve); c.stream.on('error', reject); });
      c.stream.end({ data: text, store: false });
      await ended;
      return Buffer.concat(parts);
    });
    console.log(zlib.gunzipSync(out).equals(text) ? 'round trip' : 'differs');
  `);
  t.equal(r.signal, null, 'exited on its own');
  t.equal(r.stderr, '');
  t.equal(r.stdout, 'round trip\n');
});
