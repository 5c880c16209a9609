/**
 * imgimport against hostile bundles (test/helpers/hostile-bundles.ts): every one is refused with
 * exit code 1 and a message naming the problem, and leaves the sandbox exactly as it was: the
 * existing image of the same name, the tables (byte for byte), no staging, lock or journal, and
 * nothing written where the bundle's links point.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { describeTree, tempDir } from './helpers/export-bundle.js';
import { hostileCases, HOSTILE_IMAGE } from './helpers/hostile-bundles.js';
import { ourBundle } from './helpers/import-bundles.js';
import { IMGPORT, makeSandbox } from './helpers/import-sandbox.js';
import { NODE, NODE_ARGS } from './helpers/node-command.js';

const outside = tempDir(t, 'imgport-outside-');
const bundles = tempDir(t, 'imgport-hostile-');
const sandbox = makeSandbox(t);
const cases = await hostileCases(outside);
t.ok(cases.length >= 30, `${cases.length} hostile cases`);

// The image the hostile bundles claim to be is already installed: it must survive every one.
const goodBundle = path.join(bundles, 'good.tgz');
fs.writeFileSync(goodBundle, (await ourBundle('statelite.tgz')).data);
const installed = sandbox.run([goodBundle]);
t.equal(installed.code, 0, installed.stderr);
const rootimg = path.join(sandbox.root, 'install/netboot/rhels8.5.0/x86_64/compute/rootimg');
t.ok(fs.existsSync(path.join(rootimg, 'etc/passwd')), `${HOSTILE_IMAGE} is installed`);
const treeBefore = describeTree(sandbox.root);
const tablesBefore = fs.readFileSync(sandbox.db);

for (const [index, hostile] of cases.entries()) {
  t.test(hostile.name, async (t) => {
    const bundle = path.join(bundles, `case-${index}.tgz`);
    fs.writeFileSync(bundle, hostile.bundle);
    const r = sandbox.run([bundle]);
    t.equal(r.code, 1, 'exit code 1');
    t.match(r.stderr, hostile.refusal, 'the message names the problem');
    t.notMatch(r.stderr, /\n\s+at /, 'no stack trace');
    t.ok(fs.readFileSync(sandbox.db).equals(tablesBefore), 'tables byte-identical');
    t.same(describeTree(sandbox.root), treeBefore, 'the sandbox as before: existing image, no staging, no lock or journal');
    t.same(fs.readdirSync(outside), [], 'nothing written where the links point');
    if (hostile.verify) {
      const verify = spawnSync(NODE, [...NODE_ARGS, IMGPORT, 'verify', bundle], { encoding: 'utf8' });
      t.equal(verify.status, 1, 'imgport verify: exit code 1');
      t.match(verify.stderr, hostile.refusal, 'imgport verify says the same');
      const dryRun = sandbox.run([bundle, '--dry-run']);
      t.equal(dryRun.code, 1, 'imgimport --dry-run: exit code 1');
      t.match(dryRun.stderr, hostile.refusal, 'imgimport --dry-run says the same');
    }
  });
}
