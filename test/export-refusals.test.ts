import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { buildSampleImage } from '../src/sample/sample-image.js';
import { leftoverTemps, runImgexport, tempDir, writeTables } from './helpers/export-bundle.js';

/** Every image xCAT refuses to export is refused with xCAT's message, exit 1 and nothing written. */

type Rows = Record<string, Record<string, string>[]>;

const work = tempDir(t);
const root = path.join(work, 'root');
const image = await buildSampleImage({ root, provmethod: 'netboot' });
const name = image.imagename;
const good: Rows = { osimage: [image.osimage], linuximage: [image.linuximage] };
const withOsimage = (change: Record<string, string | undefined>): Rows => ({
  osimage: [JSON.parse(JSON.stringify({ ...image.osimage, ...change }))],
  linuximage: [image.linuximage],
});

const CASES: { title: string; tables: Rows; args?: string[]; image?: string; messages: string[] }[] = [
  { title: 'no osimage row', tables: good, image: 'nosuch', messages: ["Cannot find image 'nosuch' from the osimage table."] },
  { title: 'no linuximage row', tables: { osimage: [image.osimage] }, messages: [`Cannot find image '${name}' from the linuximage table.`] },
  { title: 'no profile', tables: withOsimage({ profile: undefined }), messages: [`The 'profile' field is not set for '${name}' in the osimage table.`] },
  { title: 'no osvers', tables: withOsimage({ osvers: undefined }), messages: [`The 'osvers' field is not set for '${name}' in the osimage table.`] },
  { title: 'no osarch', tables: withOsimage({ osarch: undefined }), messages: [`The 'osarch' field is not set for '${name}' in the osimage table.`] },
  {
    title: 'no provmethod',
    tables: withOsimage({ provmethod: undefined }),
    messages: [`The 'provmethod' field is not set for '${name}' in the osimage table.`, "Exporting images with 'provemethod'  is not supported. Hint: install, netboot, statelite, or raw"],
  },
  { title: 'bad provmethod', tables: withOsimage({ provmethod: 'diskless' }), messages: ["Exporting images with 'provemethod' diskless is not supported. Hint: install, netboot, statelite, or raw"] },
  { title: 'sysclone off s390x', tables: withOsimage({ provmethod: 'sysclone' }), messages: ["Exporting images with 'provemethod' sysclone is not supported for osarch 'x86_64'"] },
  {
    title: 'missing kernel',
    tables: { osimage: [image.osimage], linuximage: [{ ...image.linuximage, rootimgdir: '/install/netboot/empty' }] },
    messages: [`Couldn't find ramdisk (initrd-stateless.gz) for  ${name}`, `Couldn't find kernel (kernel) for  ${name}`, `Couldn't find compressed rootimg for ${name}`],
  },
  { title: 'missing extra', tables: good, args: ['-e', '/install/nosuch/file'], messages: ['Can not find Extra file /install/nosuch/file.'] },
  { title: 'unknown -p node', tables: good, args: ['-p', 'nonode'], messages: ['Unable to get postscripts, nonode is not a valide node.'] },
  {
    title: 'no pkglist, none found by the search',
    tables: { osimage: [{ ...image.osimage, profile: 'nolists' }], linuximage: [{ ...image.linuximage, pkglist: '' }] },
    messages: [`Couldn't find pkglist file for ${name}`],
  },
  {
    title: 'no install template, none found by the search',
    tables: { osimage: [{ ...image.osimage, provmethod: 'install', profile: 'nolists' }], linuximage: [{ ...image.linuximage, template: '' }] },
    messages: [`Couldn't find install template for ${name}`],
  },
  {
    title: 'statelite without a root image directory (its boot files found where xCAT looks by default)',
    tables: { osimage: [{ ...image.osimage, provmethod: 'statelite' }], linuximage: [{ ...image.linuximage, rootimgdir: '' }] },
    messages: ["Couldn't locate the root image directory."],
  },
  {
    title: 'a listed file that is not there',
    tables: { osimage: [image.osimage], linuximage: [{ ...image.linuximage, exlist: '/install/custom/netboot/rh/gone.exlist' }] },
    messages: [`Couldn't find file /install/custom/netboot/rh/gone.exlist for ${name}.`],
  },
  {
    title: 'a kit component with no kitcomponent row',
    tables: withOsimage({ kitcomponents: 'nosuchcomp' }),
    messages: ["Cannot find kitname of 'nosuchcomp' from the kitcomponent table."],
  },
  {
    title: 'a kit component whose kit has no kit row',
    tables: { ...withOsimage({ kitcomponents: 'comp1' }), kitcomponent: [{ kitcompname: 'comp1', kitname: 'kit1' }] },
    messages: ["Cannot find kit 'kit1' from the kit table."],
  },
  {
    title: 'a listed file named like a member the export writes itself',
    tables: withOsimage({ synclists: '/install/custom/lists/manifest.xml' }),
    messages: [`two files would share the bundle member ${name}/manifest.xml: generated text and /install/custom/lists/manifest.xml`],
  },
  {
    title: 'two listed files with one name',
    tables: withOsimage({ synclists: '/install/custom/lists/SHA256SUMS,/install/custom/lists/compute.pkglist' }),
    messages: [`two files would share the bundle member ${name}/SHA256SUMS: generated text and /install/custom/lists/SHA256SUMS`],
  },
  // Ours: bundles that imgimport would refuse, and requests that cannot be meant.
  {
    title: 'a fifo in a directory extra',
    tables: good,
    args: ['-e', '/install/extras/withfifo'],
    messages: [`cannot export ${root}/install/extras/withfifo/ff: a fifo in /install/extras/withfifo, which imgimport refuses to install`],
  },
  {
    title: 'an absolute link in a directory extra',
    tables: good,
    args: ['-e', '/install/extras/abslink'],
    messages: [`cannot export ${root}/install/extras/abslink/l: its link target /etc/passwd leads out of /install/extras/abslink, and imgimport refuses such links`],
  },
  {
    title: 'a relative link climbing out of a directory extra',
    tables: good,
    args: ['-e', '/install/extras/outlink'],
    messages: [`its link target ../../x leads out of /install/extras/outlink`],
  },
  {
    title: 'a directory extra inside another',
    tables: good,
    args: ['-e', '/install/extras/nest', '-e', '/install/extras/nest/sub'],
    messages: ['/install/extras/nest/sub lies inside /install/extras/nest, which the bundle holds whole: its files would be in it twice'],
  },
  {
    title: 'one directory extra for two destinations',
    tables: good,
    args: ['-e', '/install/extras/nest', '-e', '/install/extras/nest:/install/elsewhere'],
    messages: ['-e /install/extras/nest is given for /install/extras/nest and for /install/elsewhere: a directory extra goes to one destination'],
  },
  {
    title: 'a file extra and a directory extra under one member name',
    tables: good,
    args: ['-e', '/install/custom/lists/tools', '-e', '/tools/data'],
    messages: [`/install/custom/lists/tools and /tools/data would share the bundle member ${name}/extra/tools, one as a file and the other as a directory`],
  },
  {
    title: 'a listed file named extra, with an extra',
    tables: withOsimage({ synclists: '/install/custom/lists/extra' }),
    args: ['-e', '/install/custom/lists/tools'],
    messages: [`/install/custom/lists/extra and /install/custom/lists/tools would share the bundle member ${name}/extra, one as a file and the other as a directory`],
  },
  {
    title: 'a control character in a name inside a directory extra',
    tables: good,
    args: ['-e', '/install/extras/ctl'],
    messages: [`cannot export ${JSON.stringify(`${root}/install/extras/ctl/a\nb`)}: a control character in its name, which imgimport refuses in a bundle member`],
  },
  {
    title: 'a kit named extra',
    tables: { ...withOsimage({ kitcomponents: 'comp1' }), kitcomponent: [{ kitcompname: 'comp1', kitname: 'extra' }], kit: [{ kitname: 'extra', kitdir: '/install/extras/nest' }] },
    messages: [`kit extra: its directory in the bundle would be taken for the extras' (${name}/extra/); rename the kit`],
  },
  { title: 'an extra with a relative DESTDIR', tables: good, args: ['-e', '/install/custom/lists/tools:custom/scripts'], messages: ['-e /install/custom/lists/tools:custom/scripts: DESTDIR custom/scripts is not an absolute directory'] },
  {
    title: 'an osimage row that is disabled',
    tables: { osimage: [{ ...image.osimage, disable: '1' }], linuximage: [image.linuximage] },
    messages: [`Cannot find image '${name}' from the osimage table.`],
  },
  { title: 'an extra with no source', tables: good, args: ['-e', ':/usr/x'], messages: ["-e :/usr/x: the extra names no file or directory before ':'"] },
  { title: 'an extra with two colons', tables: good, args: ['-e', '/install/extras/nest:/a:b'], messages: ["-e /install/extras/nest:/a:b: an extra is SRC[:DESTDIR], with one ':' at most"] },
  { title: "an image named '..'", tables: good, image: '..', messages: ["cannot export an image named '..': a bundle's top directory is named after its image"] },
  { title: 'an image name with a slash', tables: good, image: 'a/b', messages: ["cannot export an image named 'a/b'"] },
];
fs.writeFileSync(path.join(root, image.linuximage.rootimgdir, 'initrd-statelite.gz'), 'a statelite initrd');
const extras = path.join(root, 'install/extras');
for (const dir of ['withfifo', 'abslink', 'outlink', 'nest/sub']) fs.mkdirSync(path.join(extras, dir), { recursive: true });
execFileSync('mkfifo', [path.join(extras, 'withfifo/ff')]);
fs.symlinkSync('/etc/passwd', path.join(extras, 'abslink/l'));
fs.symlinkSync('../../x', path.join(extras, 'outlink/l'));
fs.writeFileSync(path.join(extras, 'nest/sub/f'), 'nested\n');
fs.mkdirSync(path.join(root, 'install/custom/lists'), { recursive: true });
fs.mkdirSync(path.join(extras, 'ctl'));
fs.writeFileSync(path.join(extras, 'ctl/a\nb'), 'newline in the name\n');
fs.mkdirSync(path.join(root, 'tools/data'), { recursive: true });
fs.writeFileSync(path.join(root, 'tools/data/f'), 'data\n');
for (const file of ['manifest.xml', 'SHA256SUMS', 'compute.pkglist', 'tools', 'extra']) fs.writeFileSync(path.join(root, 'install/custom/lists', file), 'a list\n');

for (const c of CASES) {
  t.test(c.title, async (t) => {
    writeTables(root, c.tables);
    const dest = path.join(work, 'out', 'bundle.tgz');
    fs.mkdirSync(path.dirname(dest), { recursive: true });
    const run = await runImgexport([c.image ?? name, dest, ...(c.args ?? []), '--root', root], { cwd: work });
    t.equal(run.code, 1, 'exit 1');
    for (const message of c.messages) t.ok(run.stderr.includes(message), `says: ${message}\n(got: ${run.stderr})`);
    t.notOk(fs.existsSync(dest), 'no bundle');
    t.same(leftoverTemps(dest), [], 'no temporary file');
  });
}

t.test('an image that is refused writes no default bundle in the working directory either', async (t) => {
  writeTables(root, withOsimage({ provmethod: 'diskless' }));
  const cwd = tempDir(t);
  const run = await runImgexport([name, '--root', root], { cwd });
  t.equal(run.code, 1);
  t.same(fs.readdirSync(cwd), [], 'working directory untouched');
});

t.test('standard output with -R is refused before any host is asked', async (t) => {
  writeTables(root, good);
  const bin = tempDir(t);
  fs.writeFileSync(path.join(bin, 'ssh'), `#!/bin/sh\ntouch '${path.join(bin, 'ssh-ran')}'\nexit 255\n`, { mode: 0o755 });
  const run = await runImgexport([name, '-', '-R', 'root@example', '--root', root], { cwd: work, env: { PATH: `${bin}:${process.env.PATH}` } });
  t.equal(run.code, 1);
  t.match(run.stderr, 'standard output (-) cannot be combined with -R');
  t.notOk(fs.existsSync(path.join(bin, 'ssh-ran')), 'ssh never ran');
});

t.test('an empty destination is refused before anything is read', async (t) => {
  writeTables(root, good);
  const run = await runImgexport([name, '', '--root', root], { cwd: work });
  t.equal(run.code, 1);
  t.match(run.stderr, 'Error: the destination is an empty string');
  t.notMatch(run.stderr, /\n\s+at /, 'no stack trace');
});

t.test('a DEST that exists and is not a regular file (a fifo, a device) is refused, left as it was', async (t) => {
  writeTables(root, good);
  const fifo = path.join(tempDir(t), 'a-fifo');
  execFileSync('mkfifo', [fifo]);
  const run = await runImgexport([name, fifo, '--root', root], { cwd: work });
  t.equal(run.code, 1);
  t.match(run.stderr, `Error: cannot write ${fifo}: it exists and is not a regular file`);
  t.ok(fs.lstatSync(fifo).isFIFO(), 'still the fifo');
  t.same(leftoverTemps(fifo), [], 'no temporary file');
});

t.test('a bundle inside a directory it archives is refused, the tree untouched', async (t) => {
  writeTables(root, good);
  const inside = path.join(extras, 'nest', 'bundle.tgz');
  const run = await runImgexport([name, inside, '-e', '/install/extras/nest', '--root', root], { cwd: work });
  t.equal(run.code, 1);
  t.match(run.stderr, `cannot write the bundle to ${inside}: it would be inside ${extras}/nest, which the bundle archives`);
  t.same(fs.readdirSync(path.join(extras, 'nest')), ['sub'], 'nothing written there');
});

t.test('directory extras with links inside them and other refusals aside export fine', async (t) => {
  writeTables(root, good);
  const inner = path.join(extras, 'innerlink');
  fs.mkdirSync(path.join(inner, 'a'), { recursive: true });
  fs.writeFileSync(path.join(inner, 'target'), 'data\n');
  fs.symlinkSync('../target', path.join(inner, 'a/l'));
  const dest = path.join(work, 'out', 'inner.tgz');
  const run = await runImgexport([name, dest, '-e', '/install/extras/innerlink', '--root', root], { cwd: work });
  t.equal(run.code, 0, run.stderr);
  const listing = execFileSync('tar', ['-tvzf', dest], { encoding: 'utf8' });
  t.match(listing, /extra\/install\/extras\/innerlink\/a\/l -> \.\.\/target/, 'the link that stays inside is in the bundle');
});
