/**
 * imgexport killed (SIGKILL) or interrupted (SIGINT, SIGTERM) at seeded points while it writes a
 * bundle over an earlier one: the destination is always a complete bundle (`imgport verify`
 * passes), the image's files and tables are never touched, and the next export succeeds.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { buildSampleImage } from '../src/sample/sample-image.js';
import { IMGEXPORT, tempDir, writeTables } from './helpers/export-bundle.js';
import { HEAVY, outputFaultSuite } from './helpers/hostile-faults.js';
import { IMGPORT } from './helpers/import-sandbox.js';
import { NODE, NODE_ARGS } from './helpers/node-command.js';

const work = tempDir(t, 'imgport-kill-export-');
const source = path.join(work, 'source');
const image = await buildSampleImage({ root: source, provmethod: 'statelite', sizeScale: HEAVY ? 64 : 2 });
writeTables(source, { osimage: [image.osimage], linuximage: [image.linuximage] });
const output = path.join(work, 'out', `${image.imagename}.tgz`);
fs.mkdirSync(path.dirname(output));

const verifies = (data: Buffer): boolean => {
  const copy = path.join(work, 'check.tgz');
  fs.writeFileSync(copy, data);
  return spawnSync(NODE, [...NODE_ARGS, IMGPORT, 'verify', copy]).status === 0;
};

await outputFaultSuite(t, 'imgexport', {
  script: IMGEXPORT,
  args: [image.imagename, output, '--root', source, '--no-progress'],
  output,
  isComplete: verifies,
  readOnly: [source],
}, { kill: HEAVY ? 40 : 10, catchable: HEAVY ? 12 : 3 });
