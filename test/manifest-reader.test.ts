import t, { type Test } from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkManifest, MANIFEST_MAX_BYTES, parseManifest } from '../src/xcat/manifest-reader.js';
import { writeManifestXml } from '../src/xcat/manifest-writer.js';
import { emptyManifest, type Manifest } from '../src/xcat/manifest.js';
import { ManifestError } from '../src/core/errors.js';

import { FIXTURES } from './helpers/shared.js';
const work = mkdtempSync(join(tmpdir(), 'manifest-reader-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));

const images: Record<string, string> = {
  statelite: 'rhels8.5.0-x86_64-statelite-compute',
  netboot: 'rhels8.5.0-ppc64le-netboot-compute',
  install: 'rhels8.5.0-x86_64-install-compute',
  kit: 'rhels8.5.0-x86_64-netboot-service',
};

function fixtureManifest(bundle: string): Buffer {
  const dir = join(work, bundle);
  execFileSync('mkdir', ['-p', dir]);
  execFileSync('tar', ['xzf', join(FIXTURES, `${bundle}.tgz`), '-C', dir]);
  return readFileSync(join(dir, images[bundle]!, 'manifest.xml'));
}

async function* chunked(data: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let at = 0; at < data.length; at += size) yield data.subarray(at, at + size);
}

const doc = (body: string) => Buffer.from(`<?xml version="1.0"?>\n<xcatimage>\n${body}\n</xcatimage>\n`);
const image = '<osimage><imagename>img</imagename></osimage>';

/** parseManifest must reject with a ManifestError for `member` whose message matches `pattern`. */
async function refuses(t: Test, xml: Buffer | AsyncIterable<Buffer>, pattern: RegExp, member = 'IMG/manifest.xml') {
  await t.rejects(parseManifest(xml, member), { name: 'ManifestError', member, message: pattern });
}

for (const bundle of Object.keys(images)) {
  t.test(`${bundle}: xCAT's manifest reads back into what writes it again`, async (t) => {
    const xml = fixtureManifest(bundle);
    const whole = await parseManifest(xml);
    t.equal(writeManifestXml(whole), xml.toString('utf8'), 'round trip is byte-identical');
    t.equal(whole.warnings, undefined, 'nothing unknown');
    t.same(await parseManifest(chunked(xml, 7)), whole, 'streamed in small chunks gives the same');
    t.doesNotThrow(() => checkManifest(whole), 'passes the import checks');
  });
}

t.test('the fixtures read into the expected fields', async (t) => {
  const kit = await parseManifest(fixtureManifest('kit'));
  t.same(kit.kit, [{ kitname: 'mykit-1.0-1', basename: 'mykit', description: 'test kit', kitdir: '/install/kits/mykit-1.0-1',
    ostype: 'Linux', release: '1', version: '1.0' }], 'a single <kit> is one row');
  t.equal(kit.kitcomp[0]!.kitcompname, 'mykit_compute-1.0-1-rhels-8-x86_64');
  t.equal(kit.kitrepo[0]!.kitreponame, 'mykit-1.0-1-rhels-8-x86_64');
  const statelite = await parseManifest(fixtureManifest('statelite'));
  t.same(statelite.extra, [
    { src: '/install/postscripts/myscript1', dest: '/install/postscripts' },
    { src: '/install/mydir', dest: '/install/custom/mydir' },
  ]);
  t.equal(statelite.postscripts, 'syslog,remoteshell,syncfiles,myscript1');
  t.equal(statelite.osimage.provmethod, 'statelite');
  t.equal(statelite.rootimgtree, '/install/netboot/rhels8.5.0/x86_64/compute/rootimgtree.gz');
});

t.test('one or many repeated elements; kit keys from <name>', async (t) => {
  const m = await parseManifest(doc(`${image}
  <kit><name>k2</name><kitdir>/k/2</kitdir></kit>
  <kit><name>k1</name><kitname>k1</kitname></kit>
  <kitrepo><name>r1</name></kitrepo>
  <kitcomp><name>c1</name><kitname>k1</kitname></kitcomp>
  <extra><src>/a b</src><dest>/d</dest></extra>
  <rawimagefiles><files>/x/1.img</files></rawimagefiles>`));
  t.same(m.kit, [{ kitdir: '/k/2', kitname: 'k2' }, { kitname: 'k1' }]);
  t.same(m.kitrepo, [{ kitreponame: 'r1' }]);
  t.same(m.kitcomp, [{ kitname: 'k1', kitcompname: 'c1' }]);
  t.same(m.extra, [{ src: '/a b', dest: '/d' }]);
  t.same(m.rawimagefiles, ['/x/1.img']);
  const many = await parseManifest(doc(`${image}<rawimagefiles><files>/1</files><files>/2</files></rawimagefiles>
    <extra><src>/s1</src><dest>/d1</dest></extra><extra><dest>/d2</dest><src>/s2</src></extra><kit></kit>`));
  t.same(many.rawimagefiles, ['/1', '/2']);
  t.same(many.extra, [{ src: '/s1', dest: '/d1' }, { src: '/s2', dest: '/d2' }]);
  t.same(many.kit, [], 'an empty <kit></kit> (XML::Simple\'s empty hash) is no kit');
});

t.test('values: entities decoded, blank is absent, xCAT\'s fields trimmed, others kept', async (t) => {
  const m = await parseManifest(doc(`<osimage>
    <imagename>  img  </imagename><profile>\tcompute\n</profile><osvers> rhels8 </osvers><osarch> x86_64</osarch>
    <provmethod>netboot </provmethod><comments> a &amp; b &lt;&gt;&quot;&apos; caf\u00e9 </comments><description>   </description>
  </osimage><linuximage><imagename> img </imagename><template><![CDATA[/t/<x>.tmpl]]></template></linuximage>
  <kernel>   </kernel><media>required</media>`));
  t.same(m.osimage, { imagename: 'img', profile: 'compute', osvers: 'rhels8', osarch: 'x86_64', provmethod: 'netboot',
    comments: ' a & b <>"\' caf\u00e9 ' });
  t.same(m.linuximage, { imagename: ' img ', template: '/t/<x>.tmpl' });
  t.equal(m.kernel, undefined);
  t.equal(m.media, 'required');
});

t.test('multi-byte characters split across chunks', async (t) => {
  const xml = doc(`<osimage><imagename>img</imagename><comments>${'\u4e2d\u00e9'.repeat(50)}</comments></osimage>`);
  const m = await parseManifest(chunked(xml, 1));
  t.equal(m.osimage.comments, '\u4e2d\u00e9'.repeat(50));
});

t.test('xCAT 2.7 flat manifests: table columns move into osimage/linuximage', async (t) => {
  const m = await parseManifest(doc(`<imagename>old</imagename><profile>compute</profile><osvers>rhels6</osvers>
    <osarch>x86_64</osarch><provmethod>install</provmethod><template>/t.tmpl</template><postscripts>a,b</postscripts>
    <comments>both</comments><media>required</media>`));
  t.same(m.osimage, { imagename: 'old', profile: 'compute', osvers: 'rhels6', osarch: 'x86_64', provmethod: 'install',
    postscripts: 'a,b', comments: 'both' });
  t.same(m.linuximage, { imagename: 'old', template: '/t.tmpl', comments: 'both' });
  t.equal(m.postscripts, undefined, 'as xCAT does, postscripts is taken as the osimage column');
  t.equal(m.media, 'required');
  t.equal(m.warnings, undefined);
  const modern = await parseManifest(doc(`${image}<profile>compute</profile>`));
  t.equal(modern.osimage.profile, undefined, 'no adapting when <osimage> is there');
  t.same(modern.warnings, ['<profile> is unknown; ignored']);
});

t.test('unknown elements are skipped with a warning', async (t) => {
  const m = await parseManifest(doc(`${image}<future><x>1</x></future><linuximage><imagename>img</imagename><color>red</color></linuximage>
    <kit><name>k</name><shape>round</shape></kit><kit><name>k2</name><shape>square</shape></kit><extra><src>/s</src><dest>/d</dest><mode>0600</mode></extra>
    <rawimagefiles><other>/o</other></rawimagefiles>`));
  t.same(m.linuximage, { imagename: 'img' });
  t.same(m.kit, [{ kitname: 'k' }, { kitname: 'k2' }]);
  t.same(m.warnings, [
    '<linuximage><color> is not a known column; ignored',
    '<extra><mode> is unknown; ignored',
    '<kit><shape> is not a known column; ignored', // once, though two kits have it
    '<rawimagefiles><other> is unknown; ignored',
    '<future> is unknown; ignored',
  ]);
});

t.test('hostile or broken documents are refused, naming the member', async (t) => {
  await refuses(t, Buffer.from('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]><xcatimage><osimage><imagename>&b;</imagename></osimage></xcatimage>'), /DOCTYPE/);
  await refuses(t, Buffer.from('<!ENTITY a "x"><xcatimage/>'), /^invalid manifest\.xml file inside the bundle\.  Please verify the XML \(IMG\/manifest\.xml: malformed XML at line 1, column \d+: .*\)$/);
  await refuses(t, Buffer.from('<xcatimage><!ENTITY a x></xcatimage>'), /declaration <!ENTITY a x...> is refused/);
  await refuses(t, Buffer.from('<xcatimage><!ENTITY a "x"></xcatimage>'), /malformed XML/);
  await refuses(t, doc('<osimage><imagename>&foo;</imagename></osimage>'), /malformed XML/);
  await refuses(t, doc('<osimage><imagename>a&#1;b</imagename></osimage>'), /malformed XML at line 3, column \d+: Invalid character entity\)$/);
  await refuses(t, doc('<osimage><imagename>a\u0001b</imagename></osimage>'), /control character/);
  await refuses(t, doc('<osimage><imagename>a\u009bb</imagename></osimage>'), /control character/);
  await refuses(t, doc('<osimage><imagename>img</imagename>'), /malformed XML/);
  await refuses(t, doc('<osimage><imagename>img</profile></osimage>'), /malformed XML/);
  await refuses(t, Buffer.from('<osimage><imagename>img</imagename></osimage>'), /root element must be <xcatimage>, not <osimage>/);
  await refuses(t, Buffer.from('<xcatimage></xcatimage><xcatimage></xcatimage>'), /<xcatimage> after the root element/);
  await refuses(t, Buffer.from(''), /no <xcatimage> element/);
  await refuses(t, doc('<osimage><imagename><x>deep</x></imagename></osimage>'), /<xcatimage><osimage><imagename><x> is nested deeper/);
  await refuses(t, doc('<osimage imagename="img"/>'), /has attributes/);
  await refuses(t, doc('<osimage>text<imagename>img</imagename></osimage>'), /mixes text and elements/);
  await refuses(t, doc('<osimage>img</osimage>'), /<osimage> must hold elements, not text/);
  await refuses(t, doc(`${image}<kernel><a>1</a></kernel>`), /<kernel> must hold text/);
  await refuses(t, Buffer.concat([doc(''), Buffer.from([0xff, 0xfe])]), /not valid UTF-8/);
});

t.test('ambiguous data is refused', async (t) => {
  await refuses(t, doc(`${image}<kernel>/a</kernel><kernel>/b</kernel>`), /<kernel> appears 2 times/);
  await refuses(t, doc(`${image}${image}`), /<osimage> appears 2 times/);
  await refuses(t, doc('<osimage><imagename>a</imagename><imagename>b</imagename></osimage>'), /<osimage><imagename> appears more than once/);
  await refuses(t, doc(`${image}<kit><name>a</name><kitname>b</kitname></kit>`), /<kit> has <name>a<\/name> but <kitname>b<\/kitname>/);
  await refuses(t, doc(`${image}<kit><basename>b</basename></kit>`), /<kit> has neither <name> nor <kitname>/);
  await refuses(t, doc(`${image}<kit><name>a</name></kit><kit><kitname>a</kitname></kit>`), /<kit> a appears more than once/);
  await refuses(t, doc(`${image}<extra><src>/s</src></extra>`), /<extra> lacks <extra><dest>/);
});

t.test('reading stops at the size limit', async (t) => {
  let pulled = 0;
  async function* endless(): AsyncGenerator<Buffer> {
    yield Buffer.from('<xcatimage><osimage><comments>');
    for (;;) {
      pulled++;
      yield Buffer.alloc(64 * 1024, 'a');
    }
  }
  await refuses(t, endless(), /larger than 1048576 bytes/);
  t.ok(pulled <= MANIFEST_MAX_BYTES / (64 * 1024) + 1, `stopped after ${pulled} chunks`);
  const justFits = Buffer.concat([doc(image), Buffer.alloc(MANIFEST_MAX_BYTES - doc(image).length, ' ')]);
  t.equal((await parseManifest(justFits)).osimage.imagename, 'img', 'exactly 1 MiB is read');
  await refuses(t, Buffer.concat([justFits, Buffer.from(' ')]), /larger than/);
});

function complete(provmethod: string, extra: Partial<Manifest> = {}, osarch = 'x86_64'): Manifest {
  return {
    ...emptyManifest({ imagename: 'img', provmethod, profile: 'compute', osvers: 'rhels8', osarch }, { imagename: 'img' }),
    ...extra,
  };
}

t.test('checkManifest: xCAT\'s import checks', async (t) => {
  const check = (m: Manifest) => () => checkManifest(m, 'IMG/manifest.xml');
  const err = (message: string) => new ManifestError(`IMG/manifest.xml: ${message}`, 'IMG/manifest.xml');
  t.throws(check(emptyManifest({}, {})), err(["The 'imagename' field is not defined in manifest.xml.",
    "The 'provmethod' field is not defined in manifest.xml.", "The 'profile' field is not defined in manifest.xml.",
    "The 'osvers' field is not defined in manifest.xml.", "The 'osarch' field is not defined in manifest.xml."].join(' ')));
  t.throws(check(complete('diskless')),
    err("Importing images with 'provmethod' diskless is not supported. Hint: install, netboot, statelite, sysclone or raw"));
  t.throws(check(complete('netbootx')), { message: /'provmethod' netbootx is not supported/ }, 'no substring match');
  t.throws(check(complete('sysclone')), err("Importing images with 'provmethod' sysclone is not supported for osarch 'x86_64'"));
  t.throws(check(complete('netboot', { kernel: '/k' })), err("The 'ramdisk' field is not defined in manifest.xml. The 'rootimg' field is not defined in manifest.xml."));
  t.doesNotThrow(check(complete('netboot', { kernel: '/k', ramdisk: '/r', rootimg: '/i' })));
  t.throws(check(complete('statelite', { kernel: '/k', ramdisk: '/r' })), err("The 'rootimgtree' field is not defined in manifest.xml."));
  t.doesNotThrow(check(complete('statelite', { kernel: '/k', ramdisk: '/r', rootimgtree: '/t' })));
  t.throws(check(complete('install')), err("The 'template' field is not defined in manifest.xml."));
  const install = complete('install');
  install.linuximage.template = '/t.tmpl';
  t.doesNotThrow(check(install));
  t.throws(check(complete('netboot', {}, 's390x')), err("The 'rawimagefiles' section is not defined in manifest.xml."));
  t.doesNotThrow(check(complete('netboot', { rawimagefiles: ['/a.img'] }, 's390x')));
  t.throws(check(complete('sysclone', {}, 's390x')), err("The 'rawimagefiles' section is not defined in manifest.xml."));
  t.doesNotThrow(check(complete('raw', {}, 's390x')));
});

t.test('checkManifest: names used in paths must be plain', async (t) => {
  const hostile: [string, string, string][] = [
    ['imagename', '../../etc', "'/'"],
    ['imagename', '..', "'..' or '.'"],
    ['profile', 'a b', 'white space'],
    ['osvers', 'rhels8/../x', "'/'"],
    ['osarch', 'x86\u0007', 'a control character'],
    ['profile', '.', "'..' or '.'"],
  ];
  for (const [field, value, problem] of hostile) {
    const m = complete('raw');
    m.osimage[field] = value;
    t.throws(() => checkManifest(m), {
      name: 'ManifestError', member: 'manifest.xml',
      message: `manifest.xml: The '${field}' field ${JSON.stringify(value)} contains ${problem}; refused.`,
    }, `${field} ${JSON.stringify(value)}`);
  }
  const ok = complete('raw');
  ok.osimage.profile = 'compute-v1.2_x';
  t.doesNotThrow(() => checkManifest(ok));
});
