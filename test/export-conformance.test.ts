import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import {
  FIXTURES, describeTree, put, readBundle, runImgexport, runTool, tempDir, unpackCpioGz, writeTables, xcatReadManifest,
  type BundleMember,
} from './helpers/export-bundle.js';

/**
 * Our export of the same source as xCAT's fixtures must give the same bundle: the same manifest
 * as xCAT's import reads it, the same members with the same bytes (rootimgtree.gz: the same tree).
 */

const CASES = [
  { bundle: 'statelite', image: 'rhels8.5.0-x86_64-statelite-compute', args: ['-p', 'node1', '-e', '/install/postscripts/myscript1', '-e', '/install/mydir:/install/custom/mydir'] },
  { bundle: 'netboot', image: 'rhels8.5.0-ppc64le-netboot-compute', args: ['-e', '/install/postscripts/myscript1', '-e', '/install/postscripts/myscript2'] },
  { bundle: 'install', image: 'rhels8.5.0-x86_64-install-compute', args: [] },
  { bundle: 'kit', image: 'rhels8.5.0-x86_64-netboot-service', args: [] },
];

type Json = Record<string, any>;

const asList = <T>(v: T | T[] | undefined): T[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

/**
 * Recreates the exporting side of a fixture under `root`: every file its manifest names, at that
 * path, from the fixture's members (mode kept), the statelite tree unpacked from rootimgtree.gz,
 * kit directories and extras.
 */
async function recreateSource(root: string, members: BundleMember[], manifest: Json, image: string): Promise<void> {
  const real = (logical: string): string => path.join(root, logical);
  const byName = new Map(members.map((m) => [m.name, m]));
  const member = (rel: string): BundleMember => {
    const m = byName.get(`./${image}/${rel}`);
    if (!m) throw new Error(`fixture has no member ${rel}`);
    return m;
  };
  const place = (logical: string, rel: string): void => {
    const m = member(rel);
    put(real(logical), m.data, m.mode);
  };
  const files = [manifest.kernel, manifest.ramdisk, manifest.rootimg,
    ...['template', 'pkglist', 'otherpkglist', 'postinstall', 'exlist'].map((c) => manifest.linuximage?.[c]),
    manifest.osimage?.synclists];
  for (const list of files) {
    for (const file of String(list ?? '').split(',').filter(Boolean)) place(file, path.posix.basename(file));
  }
  if (manifest.rootimgtree) await unpackCpioGz(member('rootimgtree.gz').data, real(path.posix.dirname(manifest.rootimgtree)));
  const copyTree = (fromRel: string, toLogical: string): void => {
    const prefix = `./${image}/${fromRel}`;
    for (const m of members) {
      if (m.name !== prefix && !m.name.startsWith(`${prefix}/`)) continue;
      const target = real(toLogical + m.name.slice(prefix.length));
      if (m.type === 'directory') {
        fs.mkdirSync(target, { recursive: true });
        fs.chmodSync(target, m.mode);
      } else put(target, m.data, m.mode);
    }
  };
  for (const kit of Object.values<Json>(manifest.kit ? (manifest.kit.name ? { x: manifest.kit } : manifest.kit) : {})) {
    copyTree(path.posix.basename(kit.kitdir), kit.kitdir);
  }
  for (const extra of asList<Json>(manifest.extra)) {
    const dirMember = `extra${extra.src}`;
    if (byName.has(`./${image}/${dirMember}`)) copyTree(dirMember, extra.src);
    else place(extra.src, `extra/${path.posix.basename(extra.src)}`);
  }
}

const sourceTables = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'source-tables.json'), 'utf8'));

for (const c of CASES) {
  t.test(`${c.bundle}: same bundle as xCAT's`, async (t) => {
    const work = tempDir(t);
    const root = path.join(work, 'root');
    const fixture = await readBundle(fs.readFileSync(path.join(FIXTURES, `${c.bundle}.tgz`)));
    const fixtureManifest = fixture.find((m) => m.name === `./${c.image}/manifest.xml`)!;
    const manifest = (await xcatReadManifest(fixtureManifest.data)) as Json;
    await recreateSource(root, fixture, manifest, c.image);
    writeTables(root, sourceTables);

    const dest = path.join(work, 'out', `${c.bundle}.tgz`);
    fs.mkdirSync(path.dirname(dest));
    const run = await runImgexport([c.image, dest, ...c.args, '--root', root, '--no-progress'], { cwd: work });
    t.equal(run.code, 0, `imgexport exits 0 (stderr: ${run.stderr})`);
    t.match(run.stdout.toString(), /Done!\n$/, 'ends with Done!');
    const ours = await readBundle(fs.readFileSync(dest));

    t.same(await xcatReadManifest(ours.find((m) => m.name === `./${c.image}/manifest.xml`)!.data), manifest, 'manifest reads back as xCAT\'s');
    t.same(ours.map((m) => m.name).sort(), [...fixture.map((m) => m.name), `./${c.image}/SHA256SUMS`].sort(), 'same member names, plus SHA256SUMS');
    const dataMembers = ours.filter((m) => m.type === 'file');
    t.equal(dataMembers[0]!.name, `./${c.image}/manifest.xml`, 'manifest.xml is the first file member');
    t.equal(ours.at(-1)!.name, `./${c.image}/SHA256SUMS`, 'SHA256SUMS is the last member');

    const fixtureByName = new Map(fixture.map((m) => [m.name, m]));
    // Files xCAT and we generate (each with its own umask) aside, a member is its source's copy: its mode too.
    const generated = new Set(['manifest.xml', 'SHA256SUMS', 'litefile.csv', 'rootimgtree.gz'].map((rel) => `./${c.image}/${rel}`));
    for (const m of dataMembers) {
      const theirs = fixtureByName.get(m.name);
      if (!theirs || m.name.endsWith('/rootimgtree.gz')) continue;
      t.ok(m.data.equals(theirs.data), `${m.name}: same bytes as xCAT's`);
      if (!generated.has(m.name)) t.equal(m.mode.toString(8), theirs.mode.toString(8), `${m.name}: same mode as xCAT's`);
    }
    const listed = ours.at(-1)!.data.toString().split('\n').filter(Boolean).map((line) => `./${c.image}/${line.slice(66)}`);
    t.same(listed.sort(), dataMembers.map((m) => m.name).filter((n) => n !== `./${c.image}/SHA256SUMS`).sort(), 'SHA256SUMS lists every file member, each once');
    for (const m of ours.filter((m) => m.type !== 'file')) {
      t.equal(m.type, fixtureByName.get(m.name)?.type, `${m.name}: same type`);
    }

    const tree = ours.find((m) => m.name.endsWith('/rootimgtree.gz'));
    if (tree) {
      await unpackCpioGz(tree.data, path.join(work, 'ours-tree'));
      await unpackCpioGz(fixtureByName.get(tree.name)!.data, path.join(work, 'xcat-tree'));
      t.same(describeTree(path.join(work, 'ours-tree')), describeTree(path.join(work, 'xcat-tree')), 'rootimgtree.gz unpacks to the same tree');
    }

    const unpacked = path.join(work, 'unpacked');
    fs.mkdirSync(unpacked);
    await runTool('tar', ['-xzf', dest, '-C', unpacked]);
    const check = await runTool('sha256sum', ['-c', 'SHA256SUMS'], undefined, path.join(unpacked, c.image));
    t.match(check.stdout.toString(), /manifest\.xml: OK/, 'sha256sum -c passes in the unpacked image directory');
    t.equal((await runTool('sha256sum', ['-c', '--quiet', 'SHA256SUMS'], undefined, path.join(unpacked, c.image))).stdout.length, 0, 'no failures reported');
    t.same(fs.readdirSync(path.dirname(dest)), [path.basename(dest)], 'only the bundle is left beside it');
  });
}
