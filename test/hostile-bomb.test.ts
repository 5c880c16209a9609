/**
 * Decompression bombs against a small filesystem: bundles of a few hundred KiB that unpack to
 * 64 MiB, imported into an INSTALLDIR on a 20 MiB tmpfs that already holds the image. Refused with
 * a clear message (early when the tar header tells the size, at ENOSPC when only the cpio knows
 * it), and nothing lost: the image, the tables, the free space.
 */
import fs from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import t from 'tap';
import { craftNewc, DIR, FILE } from './helpers/cpio-craft.js';
import { describeTree, tempDir } from './helpers/export-bundle.js';
import { HOSTILE_IMAGE } from './helpers/hostile-bundles.js';
import { freeBytes, mountTmpfs } from './helpers/hostile-fs.js';
import { ourBundle, type Member } from './helpers/import-bundles.js';
import { makeSandbox } from './helpers/import-sandbox.js';

const CLAIMED = 64 << 20;
const sandbox = makeSandbox(t);
const install = path.join(sandbox.root, 'install');
const unmounted = mountTmpfs(t, install, '20m');
if (unmounted) {
  t.skip(`decompression bombs need a small filesystem: ${unmounted}`);
} else {
  fs.mkdirSync(path.join(install, 'rhels8.5.0/x86_64'), { recursive: true });
  const bundles = tempDir(t, 'imgport-bomb-');
  const write = (name: string, data: Buffer) => {
    const file = path.join(bundles, name);
    fs.writeFileSync(file, data);
    return file;
  };
  const installed = sandbox.run([write('good.tgz', (await ourBundle('statelite.tgz')).data)]);
  t.equal(installed.code, 0, installed.stderr);
  const before = describeTree(sandbox.root);
  const tablesBefore = fs.readFileSync(sandbox.db);
  const freeBefore = freeBytes(install);

  const replaceMember = (rel: string, data: Buffer) => (members: Member[]) => {
    members.find((m) => m.name === `./${HOSTILE_IMAGE}/${rel}`)!.data = data;
  };
  const cases = [
    { name: 'a 64 MiB kernel of zeros', refusal: /not enough room: need 67108864 bytes on the filesystem of \/install/, change: replaceMember('kernel', Buffer.alloc(CLAIMED)) },
    {
      name: 'a 64 MiB file inside rootimgtree.gz',
      refusal: /cannot write .*rootimg.*bomb: .*(ENOSPC|no space)/i,
      change: replaceMember('rootimgtree.gz', gzipSync(craftNewc([{ name: 'rootimg', mode: DIR }, { name: 'rootimg/bomb', mode: FILE, body: Buffer.alloc(CLAIMED) }]))),
    },
  ];
  for (const bomb of cases) {
    t.test(bomb.name, async (t) => {
      const data = (await ourBundle('statelite.tgz', bomb.change)).data;
      t.ok(data.length < 2 << 20, `a small bundle (${data.length} bytes)`);
      const r = sandbox.run([write('bomb.tgz', data)]);
      t.equal(r.code, 1, 'exit code 1');
      t.match(r.stderr, bomb.refusal, 'the message says what did not fit');
      t.notMatch(r.stderr, /\n\s+at /, 'no stack trace');
      t.ok(fs.readFileSync(sandbox.db).equals(tablesBefore), 'tables byte-identical');
      t.same(describeTree(sandbox.root), before, 'the existing image intact, no staging left');
      t.equal(freeBytes(install), freeBefore, 'all the space given back');
    });
  }
}
