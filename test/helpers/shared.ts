/**
 * Where the project's shared material is (xCAT's fixtures, the XML::Simple manifest reader):
 * the `shared/` folder beside the repository, as CI lays it out, else IMGPORT_SHARED.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const candidates = [process.env.IMGPORT_SHARED, path.join(repo, '..', 'shared'), '/work/shared'].filter((p): p is string => !!p);

export const SHARED = candidates.find((dir) => fs.existsSync(path.join(dir, 'fixtures', 'xcat'))) ?? candidates[0];
export const FIXTURES = path.join(SHARED, 'fixtures', 'xcat');
export const READ_MANIFEST = path.join(SHARED, 'tools', 'xcat-read-manifest');
