import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeManifestXml } from '../src/xcat/manifest-writer.js';
import { emptyManifest, type Manifest } from '../src/xcat/manifest.js';
import { ImageError } from '../src/core/errors.js';
import type { Row, Tables } from '../src/tables/types.js';

import { FIXTURES, READ_MANIFEST } from './helpers/shared.js';
const source = JSON.parse(readFileSync(join(FIXTURES, 'source-tables.json'), 'utf8')) as Tables;

const work = mkdtempSync(join(tmpdir(), 'manifest-writer-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));

function fixtureManifest(bundle: string, image: string): Buffer {
  const dir = join(work, bundle);
  execFileSync('mkdir', ['-p', dir]);
  execFileSync('tar', ['xzf', join(FIXTURES, `${bundle}.tgz`), '-C', dir]);
  return readFileSync(join(dir, image, 'manifest.xml'));
}

/** What xCAT's import sees in a manifest (XML::Simple defaults), as canonical JSON. */
function xcatReads(xml: string | Buffer): unknown {
  return JSON.parse(execFileSync(READ_MANIFEST, ['-'], { input: xml }).toString());
}

function row(table: string, key: string, value: string): Row {
  const found = source[table]!.find((r) => r[key] === value);
  if (!found) throw new Error(`${table} ${value} missing from source-tables.json`);
  return { ...found };
}

function imageRows(image: string): Manifest {
  return emptyManifest(row('osimage', 'imagename', image), row('linuximage', 'imagename', image));
}

/** The manifests xCAT's imgexport built for the fixture bundles, rebuilt from the source tables. */
const cases: Record<string, { image: string; build: () => Manifest }> = {
  statelite: {
    image: 'rhels8.5.0-x86_64-statelite-compute',
    build() {
      const m = imageRows(this.image);
      const dir = m.linuximage.rootimgdir!;
      const defaults = row('postscripts', 'node', 'xcatdefaults');
      const node1 = row('postscripts', 'node', 'node1');
      return {
        ...m,
        kernel: `${dir}/kernel`,
        ramdisk: `${dir}/initrd-statelite.gz`,
        rootimgtree: `${dir}/rootimgtree.gz`,
        litefile: `${dir}/litefile.csv`,
        postscripts: `${defaults.postscripts},${node1.postscripts}`,
        postbootscripts: `${defaults.postbootscripts},${node1.postbootscripts}`,
        extra: [
          { src: '/install/postscripts/myscript1', dest: '/install/postscripts' },
          { src: '/install/mydir', dest: '/install/custom/mydir' },
        ],
      };
    },
  },
  netboot: {
    image: 'rhels8.5.0-ppc64le-netboot-compute',
    build() {
      const m = imageRows(this.image);
      const dir = m.linuximage.rootimgdir!;
      return {
        ...m,
        kernel: `${dir}/kernel`,
        ramdisk: `${dir}/initrd-stateless.gz`,
        rootimg: `${dir}/rootimg.cpio.gz`,
        extra: ['myscript1', 'myscript2'].map((s) => ({ src: `/install/postscripts/${s}`, dest: '/install/postscripts' })),
      };
    },
  },
  install: {
    image: 'rhels8.5.0-x86_64-install-compute',
    build() {
      const m = imageRows(this.image);
      m.linuximage.template = '/opt/xcat/share/xcat/install/rh/compute.tmpl';
      return { ...m, media: 'required' };
    },
  },
  kit: {
    image: 'rhels8.5.0-x86_64-netboot-service',
    build() {
      const m = imageRows(this.image);
      const dir = m.linuximage.rootimgdir!;
      m.linuximage.pkglist = '/opt/xcat/share/xcat/netboot/rh/service.rhels8.5.0.x86_64.pkglist';
      return {
        ...m,
        kernel: `${dir}/kernel`,
        ramdisk: `${dir}/initrd-stateless.gz`,
        rootimg: `${dir}/rootimg.cpio.gz`,
        kit: source.kit!,
        kitrepo: source.kitrepo!,
        kitcomp: source.kitcomponent!,
      };
    },
  },
};

for (const [bundle, { image, build }] of Object.entries(cases)) {
  t.test(`${bundle}: byte-identical to xCAT's manifest.xml`, async (t) => {
    const expected = fixtureManifest(bundle, image);
    const ours = writeManifestXml(build.call(cases[bundle]));
    t.equal(ours, expected.toString('utf8'));
    t.same(xcatReads(ours), xcatReads(expected), 'XML::Simple reads the same structure');
  });
}

/** XMLout of the same data by Perl XML::Simple with xCAT's options. */
function perlXmlOut(data: unknown): string {
  const script = `use XML::Simple; use JSON::PP; binmode STDOUT, ':utf8';
    my $d = JSON::PP->new->utf8->decode(do { local $/; <STDIN> });
    print XML::Simple->new(RootName => 'xcatimage')->XMLout($d, noattr => 1, xmldecl => '<?xml version="1.0"?>');`;
  return execFileSync('perl', ['-e', script], { input: JSON.stringify(data) }).toString('utf8');
}

t.test('escaping, non-ASCII, several kits and raw image files match XML::Simple', async (t) => {
  const hostile = `a&b <c> "d" 'e' café 中`;
  const m: Manifest = {
    ...emptyManifest(
      { imagename: 'img', profile: hostile, osvers: ' spaced value ', comments: 'tab\there\nnewline' },
      { imagename: 'img', template: '/t/x&y.tmpl' },
    ),
    kit: [{ kitname: 'zkit', kitdir: '/k/z' }, { kitname: 'akit', description: hostile }],
    kitrepo: [{ kitreponame: 'r1', kitname: 'akit' }],
    kitcomp: [{ kitcompname: 'c2', kitname: 'zkit' }, { kitcompname: 'c1', kitname: 'akit' }],
    rawimagefiles: ['/install/raw/a.img', '/install/raw/b.img'],
    extra: [{ src: '/x y/z', dest: '/d' }],
    postscripts: 'p1,p2',
  };
  const perlData = {
    osimage: m.osimage,
    linuximage: m.linuximage,
    kit: Object.fromEntries(m.kit.map((r) => [r.kitname, r])),
    kitrepo: Object.fromEntries(m.kitrepo.map((r) => [r.kitreponame, r])),
    kitcomp: Object.fromEntries(m.kitcomp.map((r) => [r.kitcompname, r])),
    rawimagefiles: { files: m.rawimagefiles },
    extra: m.extra,
    postscripts: m.postscripts,
  };
  const ours = writeManifestXml(m);
  t.equal(ours, perlXmlOut(perlData), 'same bytes as XMLout');
  t.match(ours, `<profile>a&amp;b &lt;c&gt; &quot;d&quot; 'e' café 中</profile>`);
  const read = xcatReads(ours) as Record<string, any>;
  t.equal(read.osimage.profile, hostile, 'XML::Simple reads the value back unchanged');
  t.equal(read.osimage.osvers, ' spaced value ');
  t.equal(read.linuximage.template, '/t/x&y.tmpl');
  t.same(Object.keys(read.kit), ['akit', 'zkit'], 'several kits fold back into a hash by name');
  t.equal(read.kit.akit.description, hostile);
  t.same(read.rawimagefiles.files, m.rawimagefiles);
});

t.test('empty and absent values are omitted', async (t) => {
  const m = emptyManifest({ imagename: 'img', description: '' }, { imagename: 'img' });
  const xml = writeManifestXml({ ...m, kernel: '' });
  t.equal(xml, '<?xml version="1.0"?>\n<xcatimage>\n  <linuximage>\n    <imagename>img</imagename>\n  </linuximage>\n'
    + '  <osimage>\n    <imagename>img</imagename>\n  </osimage>\n</xcatimage>\n');
});

t.test('a value XML cannot carry is refused, naming the image and field', async (t) => {
  const m = emptyManifest({ imagename: 'img', comments: 'bell\x07' }, { imagename: 'img' });
  t.throws(() => writeManifestXml(m), new ImageError('osimage img: osimage/comments holds a control character that manifest.xml cannot carry', 'img'));
});

t.test('output is readable by XML::Simple as written to a file', async (t) => {
  const file = join(work, 'written.xml');
  writeFileSync(file, writeManifestXml(cases.statelite!.build.call(cases.statelite)));
  const read = JSON.parse(execFileSync(READ_MANIFEST, [file]).toString());
  t.equal(read.osimage.provmethod, 'statelite');
  t.equal(read.extra.length, 2);
});
