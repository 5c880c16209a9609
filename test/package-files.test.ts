import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { packageFileUrl } from '../src/core/package-files.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

t.test('files of the package are found from the module that asks, wherever it runs from', async (t) => {
  t.equal(fileURLToPath(packageFileUrl('package.json')), path.join(repo, 'package.json'));
  const worker = fileURLToPath(packageFileUrl('dist/workers/compress.js'));
  t.equal(worker, path.join(repo, 'dist', 'workers', 'compress.js'));
  t.ok(fs.existsSync(worker), 'the compiled worker script is there');
});
