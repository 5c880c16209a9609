import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { put, readBundle, runImgexport, tempDir, writeTables, xcatReadManifest } from './helpers/export-bundle.js';

/** s390x images (raw, sysclone, netboot) export their *.img files as rawimagefiles; -p follows groups. */

const work = tempDir(t);
const root = path.join(work, 'root');

const s390x = (provmethod: string) => ({
  imagename: `sles15-s390x-${provmethod}-compute`, profile: 'compute', provmethod, osvers: 'sles15', osarch: 's390x',
});
const IMAGES = ['raw', 'sysclone', 'netboot'].map(s390x);
for (const image of IMAGES) {
  const dir = path.join(root, 'install', image.provmethod, 'sles15/s390x/compute');
  put(path.join(dir, 'b.img'), `disk b of ${image.provmethod}\n`);
  put(path.join(dir, 'a.img'), `disk a of ${image.provmethod}\n`);
  put(path.join(dir, 'notes.txt'), 'not an image file\n');
  fs.symlinkSync('a.img', path.join(dir, 'c.img')); // followed, as xCAT's cp does
}
writeTables(root, {
  osimage: IMAGES,
  linuximage: IMAGES.map(({ imagename }) => ({ imagename })),
  nodelist: [{ node: 'z1', groups: 'zgroup,all' }],
  postscripts: [{ node: 'xcatdefaults', postscripts: 'syslog' }, { node: 'zgroup', postscripts: 'zsetup', postbootscripts: 'zboot' }],
});

for (const image of IMAGES) {
  t.test(`s390x ${image.provmethod}`, async (t) => {
    const dest = path.join(tempDir(t), 'b.tgz');
    const run = await runImgexport([image.imagename, dest, '-p', 'z1', '--root', root, '--no-progress'], { cwd: work });
    t.equal(run.code, 0, run.stderr);
    const members = await readBundle(fs.readFileSync(dest));
    const dir = `/install/${image.provmethod}/sles15/s390x/compute`;
    const manifest = (await xcatReadManifest(members.find((m) => m.name.endsWith('/manifest.xml'))!.data)) as Record<string, any>;
    t.same(manifest.rawimagefiles, { files: [`${dir}/a.img`, `${dir}/b.img`, `${dir}/c.img`] }, 'every *.img file, in order, as rawimagefiles');
    t.equal(manifest.postscripts, 'syslog,zsetup', "-p: xcatdefaults' postscripts, then the node's group's");
    t.equal(manifest.postbootscripts, 'zboot');
    t.notOk(manifest.kernel, 'no kernel for s390x');
    const files = members.filter((m) => m.type === 'file').map((m) => m.name.replace(`./${image.imagename}/`, ''));
    t.same(files, ['manifest.xml', 'a.img', 'b.img', 'c.img', 'SHA256SUMS']);
    t.equal(members.find((m) => m.name.endsWith('/c.img'))!.data.toString(), `disk a of ${image.provmethod}\n`, 'a symlinked file is exported with its target\'s data');
    t.equal(members.find((m) => m.name.endsWith('/a.img'))!.data.toString(), `disk a of ${image.provmethod}\n`);
  });
}

t.test('s390x without its image directory is refused with xCAT\'s message', async (t) => {
  const image = { ...s390x('raw'), profile: 'other', imagename: 'noimg' };
  writeTables(root, { osimage: [image], linuximage: [{ imagename: 'noimg' }] });
  const dest = path.join(tempDir(t), 'b.tgz');
  const run = await runImgexport(['noimg', dest, '--root', root], { cwd: work });
  t.equal(run.code, 1);
  t.match(run.stderr, 'Could not open image files in directory /install/raw/sles15/s390x/other');
  t.notOk(fs.existsSync(dest));
});

t.test('--progress draws a progress line on standard error', async (t) => {
  writeTables(root, { osimage: IMAGES, linuximage: IMAGES.map(({ imagename }) => ({ imagename })) });
  const dest = path.join(tempDir(t), 'b.tgz');
  const run = await runImgexport([IMAGES[0]!.imagename, dest, '--root', root, '--progress'], { cwd: work });
  t.equal(run.code, 0);
  t.match(run.stderr, /\r100%  read [\d.]+ \S+ of [\d.]+ \S+  wrote [\d.]+ \S+  [\d.]+ \S+\/s  ETA 0:00/, 'percent, bytes read and written, rate, ETA');
  const last = /\r100%  read ([\d.]+ \S+) of ([\d.]+ \S+)/.exec(run.stderr.slice(run.stderr.lastIndexOf('\r100%')))!;
  t.equal(last[1], last[2], 'at the end, all it meant to read and no more');
});
