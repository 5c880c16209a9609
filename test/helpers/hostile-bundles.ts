/**
 * Hostile bundles for imgimport, each with the refusal it must meet. They are variations of the
 * statelite fixture re-packed as imgexport writes it (manifest first, SHA256SUMS last, digests
 * recomputed after the change, so that only the hostile part is wrong).
 */
import { execFileSync } from 'node:child_process';
import { gzipSync } from 'node:zlib';
import { craftNewc, DIR, FILE, SYMLINK, type CraftEntry } from './cpio-craft.js';
import { ourBundle, packBundle, sha256sums, type Member } from './import-bundles.js';

export const HOSTILE_IMAGE = 'rhels8.5.0-x86_64-statelite-compute';
const ROOTIMGDIR = '/install/netboot/rhels8.5.0/x86_64/compute';

export interface HostileCase {
  name: string;
  bundle: Buffer;
  /** What the error message must say. */
  refusal: RegExp;
  /** `imgport verify` must refuse it too, with the same message (the members' contents are wrong). */
  verify?: boolean;
}

const at = (rel: string) => `./${HOSTILE_IMAGE}/${rel}`;
const file = (name: string, data: string | Buffer = 'x'): Member => ({ name, data: Buffer.from(data) });

function find(members: Member[], rel: string): Member {
  const found = members.find((m) => m.name === at(rel));
  if (!found) throw new Error(`the statelite fixture has no member ${rel}`);
  return found;
}

/** Rewrites manifest.xml's text. */
const editManifest = (edit: (xml: string) => string) => (members: Member[]) => {
  const manifest = find(members, 'manifest.xml');
  manifest.data = Buffer.from(edit(manifest.data!.toString()));
};

/** Replaces manifest.xml's bytes. */
const replaceManifest = (data: Buffer | string) => (members: Member[]) => {
  find(members, 'manifest.xml').data = Buffer.from(data);
};

/** Replaces rootimgtree.gz by a crafted cpio tree (a valid top directory first). */
const rootTree = (entries: CraftEntry[]) => (members: Member[]) => {
  find(members, 'rootimgtree.gz').data = gzipSync(craftNewc([{ name: 'rootimg', mode: DIR }, ...entries]));
};

/** Inserts members right after the manifest (before anything is placed). */
const insert = (...extra: Member[]) => (members: Member[]) => {
  members.splice(1, 0, ...extra);
};

/** Puts `extra` right after the member `rel`. */
const after = (rel: string, ...extra: Member[]) => (members: Member[]) => {
  members.splice(members.indexOf(find(members, rel)) + 1, 0, ...extra);
};

/** Puts `replacement` where the member `rel` was. */
const replace = (rel: string, ...replacement: Member[]) => (members: Member[]) => {
  members.splice(members.indexOf(find(members, rel)), 1, ...replacement);
};

/** An osimage field set to a hostile value (in both tables' sections where it appears). */
const osimageField = (field: string, value: string) =>
  editManifest((xml) => xml.replace(new RegExp(`<${field}>[^<]*</${field}>`, 'g'), `<${field}>${value}</${field}>`));

/** `n` levels of entity expansion: a "billion laughs" in little space. */
function entityBomb(): string {
  const lines = ['<!ENTITY lol0 "lol">'];
  for (let i = 1; i < 10; i++) lines.push(`<!ENTITY lol${i} "${`&lol${i - 1};`.repeat(10)}">`);
  return `<?xml version="1.0"?>\n<!DOCTYPE xcatimage [\n${lines.join('\n')}\n]>\n<xcatimage><osimage><imagename>&lol9;</imagename></osimage></xcatimage>\n`;
}

/** Flips one bit at a fraction of the way through (past the gzip header). */
function flipBit(data: Buffer, fraction: number): Buffer {
  const copy = Buffer.from(data);
  copy[Math.max(20, Math.floor(copy.length * fraction))] ^= 0x10;
  return copy;
}

/** A tar whose first header's checksum field no longer matches. */
function badHeaderChecksum(tarData: Buffer): Buffer {
  const copy = Buffer.from(tarData);
  copy[150] = copy[150] === 0x37 ? 0x36 : 0x37; // a digit of the octal checksum (bytes 148-155)
  return copy;
}

const DAMAGED = /is damaged or truncated|checksum mismatch/;

/** Every hostile case; `outside` is an absolute directory outside the sandbox that links aim at. */
export async function hostileCases(outside: string): Promise<HostileCase[]> {
  const cases: HostileCase[] = [];
  const variant = async (name: string, refusal: RegExp, change: (members: Member[]) => void, verify = false) => {
    cases.push({ name, refusal, verify, bundle: (await ourBundle('statelite.tgz', change)).data });
  };
  const good = await ourBundle('statelite.tgz');
  const goodTar = await packBundle([...good.members, { name: at('SHA256SUMS'), data: Buffer.from(sha256sums(good.members, HOSTILE_IMAGE)) }], true);

  // Member names.
  await variant('member name with ..', /refusing member whose name contains '\.\.'/, insert(file(`./${HOSTILE_IMAGE}/../../etc/cron.d/evil`)));
  await variant('member name with .. inside the image', /contains '\.\.'/, insert(file(at('extra/../../../etc/passwd'))));
  await variant('absolute member name', /refusing member with an absolute name: \/etc\/passwd/, insert(file('/etc/passwd')));
  await variant('absolute name of an image file', /absolute name/, insert(file(`/${HOSTILE_IMAGE}/kernel`)));
  await variant('hard link into a second image directory', /outside the image directory|not an earlier file/, (members) => {
    Object.assign(find(members, 'kernel'), { type: 'link', linkname: './other-image/kernel', data: undefined });
  });
  await variant('member of a second image directory', /lies outside the image directory/, insert(file('./other-image/kernel')));
  await variant('file at the bundle root', /lies outside the image directory/, insert(file('./evil.sh')));
  await variant('member name with a newline and an escape sequence', /refusing member with a control character in its name: ".*extra\/install\/mydir\/x\\nimg: all 9 members OK\\u001b\[1A"/,
    insert(file(at('extra/install/mydir/x\nimg: all 9 members OK\x1b[1A'))));
  await variant('member name with an empty component', /refusing member with a malformed name/, insert(file(`./${HOSTILE_IMAGE}//etc/passwd`)));

  // Links.
  await variant('symlink member, then a member through it (top level)', /symbolic link/, replace('extra/myscript1',
    { name: at('extra'), type: 'symlink', linkname: outside },
    file(at('extra/myscript1'), '#!/bin/sh\necho owned\n'),
  ));
  await variant('symlink as an extra directory, then a file through it', /symbolic link/, replace('extra/install/mydir/a.txt',
    { name: at('extra/install/mydir'), type: 'symlink', linkname: outside },
    file(at('extra/install/mydir/a.txt'), 'owned'),
  ));
  await variant('symlink where the root image tree is expected', /refusing member .*\/rootimgtree\.gz: a link/, (members) => {
    Object.assign(find(members, 'rootimgtree.gz'), { type: 'symlink', linkname: outside, data: undefined });
  });
  await variant('a second manifest.xml, naming another image', /member .*\/manifest\.xml appears twice in the bundle/, (members) => {
    const second = { ...find(members, 'manifest.xml') };
    second.data = Buffer.from(second.data!.toString().replace(/rhels8\.5\.0-x86_64-statelite-compute</g, 'second-image<'));
    members.splice(members.indexOf(find(members, 'kernel')), 0, second);
  });
  await variant('a kit whose directory would be INSTALLDIR itself', /refusing to replace \/install as a whole: images go into it, it is not one/, editManifest((xml) =>
    xml.replace('<linuximage>', '<kit>\n    <name>install</name>\n    <kitdir>/install</kitdir>\n    <kitname>install</kitname>\n  </kit>\n  <linuximage>')));
  await variant('symlink where the kernel is expected', /refusing member .*\/kernel: a link/, (members) => {
    Object.assign(find(members, 'kernel'), { type: 'symlink', linkname: '/etc/shadow', data: undefined });
  });
  await variant('hard link to an absolute path', /absolute name|not an earlier file/, (members) => {
    Object.assign(find(members, 'kernel'), { type: 'link', linkname: '/etc/shadow', data: undefined });
  });
  await variant('hard link out of the image with ..', /contains '\.\.'|not an earlier file/, (members) => {
    Object.assign(find(members, 'kernel'), { type: 'link', linkname: `./${HOSTILE_IMAGE}/../../etc/shadow`, data: undefined });
  });
  await variant('statelite tree: symlink, then a file through it', /refusing cpio entry "rootimg\/etc\/passwd": its parent etc is a symbolic link/, rootTree([
    { name: 'rootimg/etc', mode: SYMLINK, body: outside },
    { name: 'rootimg/etc/passwd', mode: FILE, body: 'root::0:0::/:/bin/sh\n' },
  ]));
  await variant('statelite tree: nested symlink, then a directory through it', /its parent .* is a symbolic link/, rootTree([
    { name: 'rootimg/var', mode: DIR },
    { name: 'rootimg/var/lib', mode: SYMLINK, body: '../../../../../..' + outside },
    { name: 'rootimg/var/lib/x', mode: DIR },
  ]));
  await variant('statelite tree: cpio name with ..', /refusing cpio entry "rootimg\/\.\.\/\.\.\/etc\/passwd": '\.\.' in the name/, rootTree([
    { name: 'rootimg/../../etc/passwd', mode: FILE, body: 'owned' },
  ]));
  await variant('statelite tree: absolute cpio name', /refusing cpio entry "\/etc\/passwd": absolute name/, rootTree([
    { name: '/etc/passwd', mode: FILE, body: 'owned' },
  ]));
  await variant('statelite tree: cpio name outside rootimg/', /not below "rootimg"/, rootTree([
    { name: 'etc/passwd', mode: FILE, body: 'owned' },
  ]));
  await variant('statelite tree: duplicate cpio entry', /duplicate entry/, rootTree([
    { name: 'rootimg/etc', mode: DIR },
    { name: 'rootimg/etc/hosts', mode: FILE, body: 'one' },
    { name: 'rootimg/etc/hosts', mode: FILE, body: 'two' },
  ]));

  // Special files outside the statelite tree.
  await variant('character device member', /character-device has no place in a bundle/, insert({ name: at('extra/myscript1'), type: 'character-device' as Member['type'] }), true);
  await variant('block device member', /block-device has no place in a bundle/, insert({ name: at('sda'), type: 'block-device' as Member['type'] }), true);
  await variant('fifo member', /fifo has no place in a bundle/, insert({ name: at('initctl'), type: 'fifo' as Member['type'] }), true);

  // pax records whose values are not numbers of their kind.
  await variant('pax uid that is not a number', /refusing member .*\/extra\/install\/mydir\/a\.txt: its pax record uid="0x10" is not a valid uid/, (members) => {
    find(members, 'extra/install/mydir/a.txt').pax = { uid: '0x10' };
  });
  await variant('pax gid above 32 bits', /its pax record gid="4294967296" is not a valid gid/, (members) => {
    find(members, 'extra/install/mydir/a.txt').pax = { gid: '4294967296' };
  });
  await variant('pax mtime beyond any date', /its pax record mtime="99999999999999999" is not a valid mtime/, (members) => {
    find(members, 'extra/install/mydir/a.txt').pax = { mtime: '99999999999999999' };
  });
  await variant('pax mtime that is not a decimal number', /its pax record mtime="1e400" is not a valid mtime/, (members) => {
    find(members, 'extra/install/mydir/a.txt').pax = { mtime: '1e400' };
  });

  // Links the import refuses before writing, and verify with it.
  await variant('symlink in a directory extra leading out of it', /refusing symbolic link .*\/extra\/install\/mydir\/evil -> \/etc: it points outside \/install\/custom\/mydir/,
    insert({ name: at('extra/install/mydir/evil'), type: 'symlink', linkname: '/etc' }), true);
  await variant('hard link to a file the bundle structure has no place for staging (IMAGE/extra as a file)', /refusing hard link .*\/extra\/myscript9: its target .*\/extra is not an earlier file/,
    insert(file(at('extra'), '#!/bin/sh\n'), { name: at('extra/myscript9'), type: 'link', linkname: at('extra') }), true);
  await variant('hard link to a hard link the bundle structure has no place for (IMAGE/extra linked to the kernel)', /refusing hard link .*\/extra\/myscript9: its target .*\/extra is not an earlier file/,
    after('kernel', { name: at('extra'), type: 'link', linkname: at('kernel') }, { name: at('extra/myscript9'), type: 'link', linkname: at('extra') }), true);
  await variant('hard link to manifest.xml (read, never staged)', /refusing hard link .*\/extra\/install\/mydir\/m\.xml: its target .*manifest\.xml is not an earlier file/,
    insert({ name: at('extra/install/mydir/m.xml'), type: 'link', linkname: at('manifest.xml') }), true);

  // Duplicates.
  await variant('duplicate kernel member', /member .*\/kernel appears twice/, (members) => {
    const kernel = find(members, 'kernel');
    members.push({ ...kernel, data: Buffer.from('second kernel') });
  });

  // manifest.xml.
  await variant('manifest missing', /has no .*manifest\.xml/, (members) => members.splice(members.indexOf(find(members, 'manifest.xml')), 1));
  await variant('manifest empty', /manifest\.xml: (no <xcatimage> element|malformed)/, replaceManifest(''));
  await variant('manifest not XML', /manifest\.xml: malformed XML/, replaceManifest('{"osimage": {"imagename": "x"}}\n'));
  await variant('manifest over 1 MiB', /manifest\.xml: larger than 1048576 bytes/, editManifest((xml) => xml.replace('<xcatimage>', `<xcatimage>${' '.repeat(1 << 20)}`)));
  await variant('manifest with DOCTYPE and entity expansion', /DOCTYPE declarations are refused/, replaceManifest(entityBomb()));
  await variant('manifest with control characters', /manifest\.xml: control character/, osimageField('osname', 'Linux\x1b[2J'));
  await variant('manifest not UTF-8', /manifest\.xml: not valid UTF-8/, (members) => {
    const manifest = find(members, 'manifest.xml');
    const offset = manifest.data!.indexOf('<osname>') + '<osname>'.length;
    manifest.data = Buffer.concat([manifest.data!.subarray(0, offset), Buffer.from([0xff, 0xfe]), manifest.data!.subarray(offset)]);
  });
  await variant('kernel destination outside the install directory', /refusing to write outside .*\/boot\/vmlinuz/, editManifest((xml) => xml.replace(`<kernel>${ROOTIMGDIR}/kernel`, '<kernel>/boot/vmlinuz')));
  await variant('extra destination outside the install directory', /refusing to write outside .*\/etc\/cron\.d/, editManifest((xml) => xml.replace('<dest>/install/postscripts</dest>', '<dest>/etc/cron.d</dest>')));
  await variant('rootimgtree destination escaping with ..', /refusing to write outside/, editManifest((xml) => xml.replace(`<rootimgtree>${ROOTIMGDIR}/`, '<rootimgtree>/install/../etc/')));
  await variant('list file destination outside the install directory', /refusing to write outside .*\/etc\/cron\.d\/compute\.pkglist/, editManifest((xml) => xml.replace('<pkglist>/install/custom/netboot/rh/compute.pkglist', '<pkglist>/etc/cron.d/compute.pkglist')));
  await variant('kit name with ..', /refusing kit name '\.\.\/\.\.\/etc': not a plain name/, editManifest((xml) => xml.replace('<xcatimage>', '<xcatimage>\n  <kit>\n    <name>../../etc</name>\n    <kitdir>/install/kits/k1</kitdir>\n  </kit>')));
  await variant('imagename with /', /The 'imagename' field "\.\.\/\.\.\/etc\/evil" contains '\/'; refused/, osimageField('imagename', '../../etc/evil'));
  await variant('imagename ..', /The 'imagename' field "\.\." contains '\.\.'/, osimageField('imagename', '..'));
  await variant('imagename with a newline', /The 'imagename' field "good\\nevil" contains white space/, osimageField('imagename', 'good\nevil'));
  await variant('profile with /', /The 'profile' field "\.\.\/\.\.\/etc" contains '\/'; refused/, osimageField('profile', '../../etc'));
  await variant('profile ..', /The 'profile' field "\.\." contains '\.\.'/, osimageField('profile', '..'));
  await variant('profile with a newline', /The 'profile' field "compute\\nevil" contains white space/, osimageField('profile', 'compute\nevil'));

  // SHA256SUMS.
  cases.push({
    verify: true,
    name: 'SHA256SUMS does not match',
    refusal: new RegExp(`checksum mismatch for member ${HOSTILE_IMAGE}/kernel`),
    bundle: await packBundle([...good.members.map((m) => (m === find(good.members, 'kernel') ? { ...m, data: Buffer.from(m.data!).fill(0, 0, 1) } : m)),
      { name: at('SHA256SUMS'), data: Buffer.from(sha256sums(good.members, HOSTILE_IMAGE)) }]),
  });
  cases.push({
    name: 'SHA256SUMS names a member the bundle lacks',
    refusal: /listed in SHA256SUMS but missing from the bundle/,
    verify: true,
    bundle: await packBundle([...good.members, { name: at('SHA256SUMS'), data: Buffer.from(`${sha256sums(good.members, HOSTILE_IMAGE)}${'0'.repeat(64)}  ghost\n`) }]),
  });
  const withoutKernel = good.members.filter((m) => m !== find(good.members, 'kernel'));
  cases.push({
    name: 'SHA256SUMS leaves a member out',
    refusal: new RegExp(`member ${HOSTILE_IMAGE}/kernel is not listed in SHA256SUMS`),
    verify: true,
    bundle: await packBundle([...good.members, { name: at('SHA256SUMS'), data: Buffer.from(sha256sums(withoutKernel, HOSTILE_IMAGE)) }]),
  });
  cases.push({
    name: 'a file the manifest names is not in the bundle (SHA256SUMS agreeing)',
    refusal: new RegExp(`bundle lacks ${HOSTILE_IMAGE}/kernel, which the manifest names`),
    bundle: await packBundle([...withoutKernel, { name: at('SHA256SUMS'), data: Buffer.from(sha256sums(withoutKernel, HOSTILE_IMAGE)) }]),
  });

  // The stream itself.
  for (const fraction of [0.001, 0.2, 0.5, 0.8, 0.999]) {
    cases.push({ name: `truncated at ${fraction * 100}%`, refusal: /bundle \S+ is damaged or truncated/, verify: true, bundle: good.data.subarray(0, Math.floor(good.data.length * fraction)) });
  }
  for (const fraction of [0.1, 0.45, 0.9]) {
    cases.push({ name: `bit flip at ${fraction * 100}% of the gzip stream`, refusal: DAMAGED, verify: true, bundle: flipBit(good.data, fraction) });
  }
  cases.push({ name: 'gzip with trailing garbage', refusal: /is damaged or truncated: trailing data after the compressed stream/, bundle: Buffer.concat([good.data, Buffer.from('GARBAGE-after-the-end')]) });
  const zstd = execFileSync('zstd', ['-q', '-c', '-3'], { input: goodTar });
  cases.push({ name: 'zstd with trailing garbage', refusal: /is damaged or truncated: trailing data after the compressed stream/, bundle: Buffer.concat([zstd, Buffer.from('GARBAGE-after-the-end')]) });
  cases.push({ name: 'zstd truncated', refusal: /is damaged or truncated/, bundle: zstd.subarray(0, Math.floor(zstd.length * 0.6)) });
  cases.push({ name: 'zstd bit flip', refusal: DAMAGED, bundle: flipBit(zstd, 0.5) });
  cases.push({ name: 'tar header with a bad checksum', refusal: /damaged or truncated/, bundle: gzipSync(badHeaderChecksum(goodTar)) });
  cases.push({ name: 'plain tar cut inside a member', refusal: /is damaged or truncated/, bundle: goodTar.subarray(0, 100_000) });
  // Cut where a member's header starts, the tar reads as a shorter whole; a stream cut right after a
  // header ends that member before anyone reads it.
  const kernelHeader = headerOffset(goodTar, at('kernel'));
  cases.push({
    name: 'plain tar cut at a member boundary (no SHA256SUMS, no end-of-archive blocks)',
    refusal: new RegExp(`is damaged or truncated: it ends without the tar's end-of-archive blocks, after \\./${HOSTILE_IMAGE}/initrd-statelite\\.gz`),
    verify: true,
    bundle: goodTar.subarray(0, kernelHeader),
  });
  // Cut after a member's pax header (held for the member, never yielded): the tar ends on its text.
  const longName = at(`extra/install/mydir/${'long-name-'.repeat(12)}.txt`);
  const withLongName = await packBundle([...good.members, file(longName, 'long\n'), { name: at('SHA256SUMS'), data: Buffer.from(sha256sums([...good.members, file(longName, 'long\n')], HOSTILE_IMAGE)) }], true);
  cases.push({
    name: 'plain tar cut after a pax header, before its member',
    refusal: /is damaged or truncated: it ends without the tar's end-of-archive blocks/,
    verify: true,
    bundle: withLongName.subarray(0, afterFirstPaxHeader(withLongName)),
  });
  for (const [format, compress] of [['zstd', (data: Buffer) => execFileSync('zstd', ['-q', '-c'], { input: data })], ['gzip', gzipSync]] as const) {
    cases.push({
      name: `${format} stream that ends right after a member's header`,
      refusal: /is damaged or truncated: Unexpected end of data/,
      verify: true,
      bundle: compress(goodTar.subarray(0, kernelHeader + 512)),
    });
  }
  return cases;
}

/** Where the member after the first pax header starts in a plain tar. */
function afterFirstPaxHeader(tarData: Buffer): number {
  for (let at = 0; at + 512 <= tarData.length;) {
    const size = parseInt(tarData.subarray(at + 124, at + 136).toString('latin1').replace(/\0.*$/, '').trim() || '0', 8);
    at += 512 + Math.ceil(size / 512) * 512;
    if (tarData[at - 512 - Math.ceil(size / 512) * 512 + 156] === 0x78) return at; // typeflag 'x'
  }
  throw new Error('no pax header in the tar');
}

/** Where the header of the member `name` starts in a plain tar (ustar names only). */
function headerOffset(tarData: Buffer, name: string): number {
  for (let at = 0; at + 512 <= tarData.length;) {
    const header = tarData.subarray(at, at + 512);
    if (header.subarray(0, name.length + 1).equals(Buffer.from(`${name}\0`))) return at;
    const size = parseInt(header.subarray(124, 136).toString('latin1').replace(/\0.*$/, '').trim() || '0', 8);
    at += 512 + Math.ceil(size / 512) * 512;
  }
  throw new Error(`no member ${name} in the tar`);
}
