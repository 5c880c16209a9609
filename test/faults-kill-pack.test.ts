/**
 * packimage killed (SIGKILL) or interrupted (SIGINT, SIGTERM) at seeded points while it repacks a
 * root image: rootimg.cpio.gz is always the complete earlier archive (packing is reproducible,
 * so a completed run gives the same bytes), the tree is never touched, and the next run succeeds.
 */
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { buildSampleImage } from '../src/sample/sample-image.js';
import { tempDir, writeTables } from './helpers/export-bundle.js';
import { HEAVY, outputFaultSuite, runWhole } from './helpers/hostile-faults.js';

const PACKIMAGE = path.resolve('dist/bin/packimage.js');
const root = path.join(tempDir(t, 'imgport-kill-pack-'), 'root');
const image = await buildSampleImage({ root, provmethod: 'netboot', sizeScale: HEAVY ? 64 : 2 });
writeTables(root, { osimage: [image.osimage], linuximage: [image.linuximage] });
const rootimgdir = path.join(root, image.linuximage.rootimgdir!);
const output = path.join(rootimgdir, 'rootimg.cpio.gz');
const command = { script: PACKIMAGE, args: [image.imagename, '--root', root], output, readOnly: [path.join(rootimgdir, 'rootimg')] };

t.equal(runWhole({ ...command, isComplete: () => true }).code, 0, 'packimage runs');
const packed = fs.readFileSync(output);
await outputFaultSuite(t, 'packimage', { ...command, isComplete: (data) => data.equals(packed) }, { kill: HEAVY ? 40 : 10, catchable: HEAVY ? 12 : 3 });
