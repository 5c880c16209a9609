/**
 * Symbolic links a bundle installs in an extra directory or a kit must stay inside it: a link
 * left pointing elsewhere would look like an administrator's link to the next import, which
 * follows those, and a later bundle could write through it.
 */
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { linkStaysInside } from '../src/import/plan.js';
import { ourBundle } from './helpers/import-bundles.js';
import { makeSandbox } from './helpers/import-sandbox.js';

t.test('linkStaysInside: relative links within the root only', (t) => {
  const root = '/install/custom/mydir';
  t.ok(linkStaysInside('/install/custom/mydir/a', 'sub/b.txt', root));
  t.ok(linkStaysInside('/install/custom/mydir/sub/c', '../a.txt', root));
  t.notOk(linkStaysInside('/install/custom/mydir/a', '/etc', root), 'absolute');
  t.notOk(linkStaysInside('/install/custom/mydir/a', '../../../etc', root), 'climbs out');
  t.notOk(linkStaysInside('/install/custom/mydir/sub/c', '../../mydir2', root), 'a sibling that shares the prefix');
  t.notOk(linkStaysInside('/install/custom/mydir/a', '', root), 'empty');
  t.end();
});

const EXTRA_DIR = 'extra/install/mydir';

for (const [label, target, refused] of [
  ['a link inside the extra directory is installed as a link', 'sub/b.txt', false],
  ['an absolute link is refused', '/etc', true],
  ['a link climbing out of the extra directory is refused', '../../../etc', true],
] as const) {
  t.test(label, async (t) => {
    const sandbox = makeSandbox(t);
    const { data, image } = await ourBundle('statelite.tgz', (members) => {
      const at = members.findIndex((m) => m.name.includes(`/${EXTRA_DIR}/a.txt`));
      members.splice(at + 1, 0, { name: `./rhels8.5.0-x86_64-statelite-compute/${EXTRA_DIR}/link`, type: 'symlink', linkname: target });
    });
    const bundle = path.join(sandbox.root, 'bundles', 'links.tgz');
    fs.writeFileSync(bundle, data);
    const before = sandbox.files();
    const tablesBefore = fs.readFileSync(sandbox.db);
    const run = sandbox.run([bundle]);
    const installed = path.join(sandbox.root, 'install/custom/mydir/link');
    if (refused) {
      t.equal(run.code, 1, 'exit 1');
      t.match(run.stderr, `refusing symbolic link ${image}/${EXTRA_DIR}/link -> ${target}: it points outside /install/custom/mydir`);
      t.same(sandbox.files(), before, 'nothing written');
      t.ok(fs.readFileSync(sandbox.db).equals(tablesBefore), 'tables unchanged');
    } else {
      t.equal(run.code, 0, run.stderr);
      t.equal(fs.readlinkSync(installed), target, 'installed as a link, not followed');
      t.equal(fs.readFileSync(installed, 'utf8'), fs.readFileSync(path.join(sandbox.root, 'install/custom/mydir/sub/b.txt'), 'utf8'));
    }
  });
}
