import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { OBJECT_SCHEMAS } from '../src/tables/schema.js';
import { NODE, NODE_ARGS } from './helpers/node-command.js';

const CLI = path.resolve('dist/bin/imgport.js');
const run = promisify(execFile);

t.test('20 concurrent chdef processes on one osimage lose no change', async (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'imgport-concurrent-'));
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  execFileSync(NODE, [...NODE_ARGS, CLI, 'mkdef', '-t', 'osimage', '-o', 'img', 'profile=compute', '--root', root]);

  // 20 distinct attributes, spread over the osimage and linuximage tables.
  const attributes = Object.keys(OBJECT_SCHEMAS.osimage.attributes)
    .filter((a) => a !== 'profile')
    .filter((_, i) => i % 2 === 0)
    .slice(0, 20);
  t.equal(attributes.length, 20);
  const tablesTouched = new Set(attributes.map((a) => OBJECT_SCHEMAS.osimage.attributes[a].table));
  t.same([...tablesTouched].sort(), ['linuximage', 'osimage']);

  await Promise.all(
    attributes.map((attribute) =>
      run(NODE, [...NODE_ARGS, CLI, 'chdef', '-t', 'osimage', '-o', 'img', `${attribute}=value of ${attribute}`, '--root', root]),
    ),
  );

  const { stdout } = await run(NODE, [...NODE_ARGS, CLI, 'lsdef', '-t', 'osimage', '-o', 'img', '-z', '--root', root]);
  const expected = ['profile=compute', ...attributes.map((a) => `${a}=value of ${a}`)].sort();
  t.equal(stdout, `# <xCAT data object stanza file>\n\nimg:\n    objtype=osimage\n${expected.map((l) => `    ${l}\n`).join('')}\n`);
  t.same(fs.readdirSync(path.join(root, 'var/lib/imgport')), ['tables.json'], 'no lock or temporary file left');
});
