/**
 * Round trip: our imgexport, our imgimport with -f into a fresh sandbox, our imgexport again. The
 * payload must survive unchanged: the same SHA256SUMS digests (list files renamed for the new
 * profile, litefile.csv naming the new image) and, for statelite, the same root tree entry by entry.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import zlib from 'node:zlib';
import t from 'tap';
import { readCpio } from '../src/archive/cpio-reader.js';
import { parseSha256Sums } from '../src/archive/sha256sums.js';
import { renamedForProfile } from '../src/import/plan.js';
import { buildSampleImage, type SampleProvmethod } from '../src/sample/sample-image.js';
import { snapshotTree } from './helpers/cpio-craft.js';
import { readBundle, runImgexport, tempDir, writeTables, type BundleMember } from './helpers/export-bundle.js';
import { IMGIMPORT } from './helpers/import-sandbox.js';
import { NODE, NODE_ARGS } from './helpers/node-command.js';

const NEW_PROFILE = 'roundtrip';

/** A cpio archive's entries in order, with their data's digest; inode numbers left out. */
async function cpioEntries(gz: Buffer): Promise<object[]> {
  const entries: object[] = [];
  for await (const { entry, body } of readCpio(Readable.from([zlib.gunzipSync(gz)]))) {
    const hash = createHash('sha256');
    for await (const chunk of body) hash.update(chunk);
    const { name, mode, uid, gid, nlink, mtime, size, rdevMajor, rdevMinor } = entry;
    entries.push({ name, mode, uid, gid, nlink, mtime, size, rdevMajor, rdevMinor, sha256: hash.digest('hex') });
  }
  return entries;
}

function member(members: BundleMember[], image: string, rel: string): BundleMember {
  const found = members.find((m) => m.name === `./${image}/${rel}`);
  if (!found) throw new Error(`bundle has no member ${image}/${rel}`);
  return found;
}

async function exportImage(t: Tap.Test, root: string, image: string, dest: string): Promise<BundleMember[]> {
  const run = await runImgexport([image, dest, '--root', root, '--no-progress']);
  t.equal(run.code, 0, `export of ${image}: ${run.stderr}`);
  return readBundle(fs.readFileSync(dest));
}

for (const provmethod of ['netboot', 'statelite'] as SampleProvmethod[]) {
  t.test(`${provmethod}: export, import -f ${NEW_PROFILE}, export again: same payload`, async (t) => {
    const work = tempDir(t, 'imgport-roundtrip-');
    const source = path.join(work, 'source');
    const target = path.join(work, 'target');
    const sample = await buildSampleImage({ root: source, provmethod });
    const litefile = [{ image: sample.imagename, file: '/var/log/', options: 'persistent' }];
    writeTables(source, { osimage: [sample.osimage], linuximage: [sample.linuximage], litefile });
    writeTables(target, {});

    const first = await exportImage(t, source, sample.imagename, path.join(work, 'first.tgz'));
    const imported = spawnSync(NODE, [...NODE_ARGS, IMGIMPORT, path.join(work, 'first.tgz'), '-f', NEW_PROFILE, '--root', target], { encoding: 'utf8' });
    t.equal(imported.status, 0, imported.stderr);
    const newImage = `rhels8.5.0-x86_64-${provmethod}-${NEW_PROFILE}`;
    t.match(imported.stdout, `Successfully imported the image ${newImage}.`);
    const second = await exportImage(t, target, newImage, path.join(work, 'second.tgz'));

    const firstSums = parseSha256Sums(member(first, sample.imagename, 'SHA256SUMS').data.toString());
    const secondSums = parseSha256Sums(member(second, newImage, 'SHA256SUMS').data.toString());
    // Compared separately: the manifest names the new profile, litefile.csv the new image, and a
    // cpio archive holds inode numbers, which a new tree does not keep.
    const separately = ['manifest.xml', 'litefile.csv', 'rootimgtree.gz'];
    const listFile = (name: string) => name.startsWith('compute.');
    const expected = new Map(
      [...firstSums].filter(([name]) => !separately.includes(name)).map(([name, digest]) => [listFile(name) ? renamedForProfile(name, 'compute', NEW_PROFILE) : name, digest]),
    );
    const got = new Map([...secondSums].filter(([name]) => !separately.includes(name)));
    t.same(Object.fromEntries(got), Object.fromEntries(expected), 'payload digests, list files renamed for the new profile');
    t.ok(got.has(`${NEW_PROFILE}.pkglist`) && got.has('kernel'), 'the payload is there');
    t.equal(got.has('rootimg.cpio.gz'), provmethod === 'netboot', 'packed root image only for netboot');

    const manifest = member(second, newImage, 'manifest.xml').data.toString();
    t.match(manifest, `<imagename>${newImage}</imagename>`);
    t.match(manifest, `<profile>${NEW_PROFILE}</profile>`);
    t.notMatch(manifest, '/compute', 'no path names the old profile');

    if (provmethod === 'statelite') {
      const csv = (members: BundleMember[], image: string) => member(members, image, 'litefile.csv').data.toString();
      t.equal(csv(first, sample.imagename), `"${sample.imagename}","/var/log/","persistent",,\n`);
      t.equal(csv(second, newImage), csv(first, sample.imagename).replaceAll(sample.imagename, newImage), 'litefile.csv names the new image');

      const original = snapshotTree(path.join(source, 'install/netboot/rhels8.5.0/x86_64/compute/rootimg'));
      const installed = snapshotTree(path.join(target, `install/netboot/rhels8.5.0/x86_64/${NEW_PROFILE}/rootimg`));
      t.ok(Object.keys(original).length > 15, 'a real tree');
      t.same(installed, original, 'the import installed the source tree (types, modes, owners, mtimes, digests, links)');
      const firstEntries = await cpioEntries(member(first, sample.imagename, 'rootimgtree.gz').data);
      const secondEntries = await cpioEntries(member(second, newImage, 'rootimgtree.gz').data);
      t.equal(firstEntries.length, Object.keys(original).length, 'one cpio entry per tree entry');
      t.same(secondEntries, firstEntries, 'rootimgtree.gz: the same entries, in the same order, with the same data');
    }
  });
}

t.test("a directory extra's owners above 262143 and times outside 1970-2038 survive the round trip (pax records)", { skip: process.getuid?.() !== 0 && 'needs root to chown' }, async (t) => {
  const work = tempDir(t, 'imgport-roundtrip-pax-');
  const source = path.join(work, 'source');
  const target = path.join(work, 'target');
  const sample = await buildSampleImage({ root: source, provmethod: 'netboot' });
  writeTables(source, { osimage: [sample.osimage], linuximage: [sample.linuximage] });
  writeTables(target, {});
  const shared = path.join(source, 'install/shared');
  fs.mkdirSync(shared, { recursive: true });
  const put = (name: string, touchDate: string, owner?: number) => {
    fs.writeFileSync(path.join(shared, name), `${name}\n`);
    if (owner !== undefined) fs.chownSync(path.join(shared, name), owner, owner + 1);
    // touch: fs.utimes takes a time before 1970 as now
    t.equal(spawnSync('touch', ['-d', touchDate, path.join(shared, name)]).status, 0);
  };
  put('ldap-user', '2020-01-01T00:00:00Z', 3_000_000);
  put('future', '2040-05-05T00:00:00Z');
  put('past', '1960-05-05T00:00:00Z');
  const bundle = path.join(work, 'pax.tgz');
  const exported = await runImgexport([sample.imagename, bundle, '--root', source, '-e', '/install/shared', '--no-progress']);
  t.equal(exported.code, 0, exported.stderr);
  const imported = spawnSync(NODE, [...NODE_ARGS, IMGIMPORT, bundle, '--root', target], { encoding: 'utf8' });
  t.equal(imported.status, 0, imported.stderr);
  const stat = (name: string) => fs.statSync(path.join(target, 'install/shared', name));
  t.same([stat('ldap-user').uid, stat('ldap-user').gid], [3_000_000, 3_000_001], 'owner and group from the pax record');
  t.equal(stat('future').mtime.toISOString(), '2040-05-05T00:00:00.000Z');
  t.equal(stat('past').mtime.toISOString(), '1960-05-05T00:00:00.000Z');
});
