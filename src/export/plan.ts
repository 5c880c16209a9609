import fs from 'node:fs';
import path from 'node:path';
import { ImageError } from '../core/errors.js';
import type { Locations } from '../core/locations.js';
import type { Row, Tables } from '../tables/types.js';
import { expandNoderange } from '../tables/noderange.js';
import { DEFAULTS_ROW } from '../tables/schema.js';
import { CHECKSUMS_MEMBER } from '../archive/sha256sums.js';
import { emptyManifest, LITEFILE_MEMBER, MANIFEST_MEMBER, type Manifest, type ManifestExtra } from '../xcat/manifest.js';
import { findProfileFile } from '../xcat/search.js';
import { formatLitefileCsv, litefileRowsForImage } from '../xcat/litefile.js';
import { PACKED_FORMS } from '../pack/formats.js';
import { isPlainName } from '../import/plan.js';
import { hasControlCharacter } from '../import/member-names.js';

/** Where one bundle member's content comes from. Paths are logical (see Sandbox). */
export type MemberSource =
  | { kind: 'file'; path: string }
  /** A directory copied whole (kits, directory extras). */
  | { kind: 'tree'; path: string }
  /** Generated text (litefile.csv). */
  | { kind: 'text'; text: string }
  /** The statelite tree ROOTIMGDIR/rootimg as a gzip'd newc cpio (rootimgtree.gz). */
  | { kind: 'rootimgtree'; path: string };

export interface PlannedMember {
  /** Name relative to the image directory: `kernel`, `extra/myscript1`, `mykit-1.0-1`. */
  name: string;
  source: MemberSource;
}

export interface ExportPlan {
  imagename: string;
  /** The bundle's top directory: the image name with white space turned into `_`, as xCAT does. */
  dirName: string;
  manifest: Manifest;
  /** Every member after manifest.xml, in bundle order. */
  members: PlannedMember[];
  /** What xCAT prints while collecting (the source paths), in order. */
  messages: string[];
}

export interface ExportRequest {
  imagename: string;
  /** `-e SRC[:DESTDIR]` arguments as given. */
  extras: string[];
  /** `-p NODE`: export that node's postscripts. */
  postscriptsNode?: string;
}

const PROVMETHODS = /install|netboot|statelite|raw|sysclone/;
/** linuximage columns naming list files that travel with the image, in xCAT's order. */
const LIST_COLUMNS = ['template', 'pkglist', 'otherpkglist', 'postinstall', 'exlist'] as const;

/** A row without its empty columns (xCAT treats empty and absent alike). */
function nonEmpty(row: Row): Row {
  return Object.fromEntries(Object.entries(row).filter(([, v]) => v !== ''));
}

function splitList(value: string | undefined): string[] {
  return (value ?? '').split(',').filter((s) => s !== '');
}

/** A readable regular file (xCAT's `-r`), checked on the real path. */
function isFile(loc: Locations, logical: string): boolean {
  try {
    return fs.statSync(loc.sandbox.real(logical)).isFile();
  } catch {
    return false;
  }
}

function isDirectory(loc: Locations, logical: string): boolean {
  try {
    return fs.statSync(loc.sandbox.real(logical)).isDirectory();
  } catch {
    return false;
  }
}

/** xCAT's look_for_file for boot files: INSTALLDIR/netboot/<osvers prefix>/ARCH/PROFILE/FILE. */
function findBootFile(loc: Locations, file: string, os: Row): string | undefined {
  const base = `${loc.installdir}/netboot`;
  let prefix = os.osvers;
  while (prefix && !isDirectory(loc, `${base}/${prefix}`)) prefix = prefix.slice(0, -1);
  const candidate = `${base}/${prefix}/${os.osarch}/${os.profile}/${file}`;
  return isFile(loc, candidate) ? candidate : undefined;
}

/**
 * The bundle's top directory (and default file name) for an image: white space becomes `_`, as in
 * xCAT. A name that cannot be one directory (`..`, a `/`, a control character) is refused: its
 * members would climb out of the bundle or into a directory of their own, and every import
 * refuses such a bundle (by the same rule).
 */
export function bundleDirName(imagename: string): string {
  const dirName = imagename.replace(/\s+/g, '_');
  if (!isPlainName(dirName)) {
    throw new ImageError(`cannot export an image named '${imagename}': a bundle's top directory is named after its image, and this name cannot be one directory`, imagename);
  }
  return dirName;
}

/** The osimage/linuximage checks xCAT makes before exporting, every failure reported at once. */
export function checkImageRows(imagename: string, osimage: Row | undefined, linuximage: Row | undefined): void {
  if (!osimage) throw new ImageError(`Cannot find image '${imagename}' from the osimage table.`, imagename);
  const errors: string[] = [];
  for (const field of ['provmethod', 'profile', 'osvers', 'osarch']) {
    if (!osimage[field]) errors.push(`The '${field}' field is not set for '${imagename}' in the osimage table.`);
  }
  const provmethod = osimage.provmethod ?? '';
  if (!PROVMETHODS.test(provmethod)) {
    errors.push(`Exporting images with 'provemethod' ${provmethod} is not supported. Hint: install, netboot, statelite, or raw`);
  }
  if (/sysclone/.test(provmethod) && !/s390x/.test(osimage.osarch ?? '')) {
    errors.push(`Exporting images with 'provemethod' ${provmethod} is not supported for osarch '${osimage.osarch}'`);
  }
  if (errors.length) throw new ImageError(errors.join('\n'), imagename);
  if (!linuximage) throw new ImageError(`Cannot find image '${imagename}' from the linuximage table.`, imagename);
}

/**
 * `-p NODE`: the node's (or its first group's) postscripts, prefixed by the xcatdefaults row's.
 * NODE is a noderange as xCAT reads it (`node1,node2`, a group, `node[1-4]`): its first node by name is the one.
 */
export function postscriptsFor(tables: Tables, node: string): { postscripts?: string; postbootscripts?: string } {
  const nodes = tables.nodelist ?? [];
  const rows = tables.postscripts ?? [];
  // xCAT's noderange gives its nodes sorted by name.
  const members = expandNoderange(tables, node).nodes.sort();
  if (members.length === 0) throw new ImageError(`Unable to get postscripts, ${node} is not a valide node.`);
  const first = nodes.find((n) => n.node === members[0]) ?? {};
  // Each column on its own: the node's row, else the first of its groups' rows that sets it (xCAT's getNodeAttribs).
  const owners = [first.node, ...splitList(first.groups)].flatMap((name) => rows.filter((r) => r.node === name));
  const defaults = rows.find((r) => r.node === DEFAULTS_ROW) ?? {};
  const join = (col: 'postscripts' | 'postbootscripts'): string | undefined =>
    [defaults[col], owners.find((r) => r[col])?.[col]].filter((v) => v).join(',') || undefined;
  return { postscripts: join('postscripts'), postbootscripts: join('postbootscripts') };
}

/** The kit, kitrepo and kitcomponent rows that travel with the image's kit components. */
function kitRows(tables: Tables, osimage: Row): Pick<Manifest, 'kit' | 'kitrepo' | 'kitcomp'> {
  const comps = tables.kitcomponent ?? [];
  const kitNames = new Set<string>();
  for (const compName of splitList(osimage.kitcomponents)) {
    const comp = comps.find((c) => c.kitcompname === compName);
    if (!comp) throw new ImageError(`Cannot find kitname of '${compName}' from the kitcomponent table.`, osimage.imagename);
    if (comp.kitname) kitNames.add(comp.kitname);
  }
  const kit = [...kitNames].map((name) => {
    const row = (tables.kit ?? []).find((k) => k.kitname === name);
    if (!row) throw new ImageError(`Cannot find kit '${name}' from the kit table.`, osimage.imagename);
    return nonEmpty(row);
  });
  const ofKits = (rows: Row[] | undefined): Row[] => (rows ?? []).filter((r) => kitNames.has(r.kitname)).map(nonEmpty);
  return { kit, kitrepo: ofKits(tables.kitrepo), kitcomp: ofKits(comps) };
}

/** `-e SRC[:DESTDIR]`: DESTDIR defaults to SRC for a directory, dirname(SRC) for a file. */
export function parseExtra(loc: Locations, arg: string): ManifestExtra {
  const parts = arg.split(':');
  // xCAT would drop what follows a second ':' and take an empty SRC for the current directory.
  if (parts.length > 2) throw new ImageError(`-e ${arg}: an extra is SRC[:DESTDIR], with one ':' at most`);
  const [given, dest] = parts;
  if (given === '') throw new ImageError(`-e ${arg}: the extra names no file or directory before ':'`);
  // The manifest records an absolute path: import places the extra by it.
  const src = path.posix.resolve(given);
  let stat: fs.Stats;
  try {
    stat = fs.statSync(loc.sandbox.real(src));
  } catch {
    throw new ImageError(`Can not find Extra file ${given}.`);
  }
  // An import places an extra by its absolute destination; a relative one could never be placed.
  if (dest && !dest.startsWith('/')) throw new ImageError(`-e ${arg}: DESTDIR ${dest} is not an absolute directory`);
  return { src, dest: dest || (stat.isDirectory() ? src : path.posix.dirname(src)) };
}

/**
 * Works out what the bundle of one image holds: the manifest and every member with its source,
 * from the tables and what is on disk, exactly as xCAT's get_image_info/get_files/make_bundle
 * decide it. Refuses, with xCAT's messages, an image xCAT would refuse.
 */
export function planExport(tables: Tables, loc: Locations, request: ExportRequest): ExportPlan {
  const { imagename } = request;
  const osimageRow = (tables.osimage ?? []).find((r) => r.imagename === imagename);
  const linuximageRow = (tables.linuximage ?? []).find((r) => r.imagename === imagename);
  checkImageRows(imagename, osimageRow, linuximageRow);
  const manifest = emptyManifest(nonEmpty(osimageRow!), nonEmpty(linuximageRow!));
  const os = manifest.osimage;
  const lin = manifest.linuximage;
  const provmethod = os.provmethod;
  const errors: string[] = [];
  const messages: string[] = [];
  const image = { profile: os.profile, osvers: os.osvers, osarch: os.osarch };

  Object.assign(manifest, kitRows(tables, os));

  if (/install/.test(provmethod)) {
    if (!lin.template) {
      const found = findProfileFile(loc, 'install', 'tmpl', image);
      if (found) {
        messages.push(found);
        lin.template = found;
      } else errors.push(`Couldn't find install template for ${imagename}`);
    }
    manifest.media = 'required';
  }

  const isNetboot = /netboot/.test(provmethod);
  const isStatelite = /statelite/.test(provmethod);
  const s390x = /s390x/.test(os.osarch);
  if (!/esx/.test(os.osvers) && (isStatelite || (isNetboot && !s390x))) {
    if (!lin.pkglist) {
      const found = findProfileFile(loc, 'netboot', 'pkglist', image);
      if (found) lin.pkglist = found;
      else errors.push(`Couldn't find pkglist file for ${imagename}`);
    }
    const ramdiskName = isNetboot ? 'initrd-stateless.gz' : 'initrd-statelite.gz';
    const inRootimgdir = (file: string): string | undefined =>
      lin.rootimgdir ? (isFile(loc, `${lin.rootimgdir}/${file}`) ? `${lin.rootimgdir}/${file}` : undefined) : findBootFile(loc, file, os);
    const kernel = inRootimgdir('kernel');
    const ramdisk = inRootimgdir(ramdiskName);
    manifest.ramdisk = ramdisk;
    manifest.kernel = kernel;
    const missingRamdisk = `Couldn't find ramdisk (${ramdiskName}) for  ${imagename}`;
    const missingKernel = `Couldn't find kernel (kernel) for  ${imagename}`;
    // xCAT reports netboot's ramdisk first, statelite's kernel first.
    const missing = isNetboot ? [[ramdisk, missingRamdisk], [kernel, missingKernel]] : [[kernel, missingKernel], [ramdisk, missingRamdisk]];
    for (const [found, message] of missing) if (!found) errors.push(message!);
    if (isNetboot) {
      const rootimg = PACKED_FORMS.map(inRootimgdir).find((p) => p);
      if (rootimg) manifest.rootimg = rootimg;
      else errors.push(`Couldn't find compressed rootimg for ${imagename}`);
    }
  }
  if (s390x && /netboot|raw|sysclone/.test(provmethod)) {
    const dir = isNetboot
      ? `${loc.installdir}/netboot/${os.osvers}/s390x/${os.profile}`
      : `${loc.installdir}/${provmethod}/${os.osvers}/s390x/${os.profile}`;
    try {
      manifest.rawimagefiles = fs.readdirSync(loc.sandbox.real(dir)).filter((f) => f.endsWith('.img')).sort()
        .map((f) => `${dir}/${f}`).filter((p) => isFile(loc, p));
      // xCAT would write a bundle its import refuses ("The 'rawimagefiles' section is not defined").
      if (!manifest.rawimagefiles.length) errors.push(`No image files (*.img) in directory ${dir}`);
    } catch {
      errors.push(`Could not open image files in directory ${dir}`);
    }
  }
  if (errors.length) throw new ImageError(errors.join('\n'), imagename);

  const dirName = bundleDirName(imagename);
  const members: PlannedMember[] = [];
  const addFile = (file: string): void => {
    messages.push(file);
    if (!isFile(loc, file)) throw new ImageError(`Couldn't find file ${file} for ${imagename}.`, imagename);
    members.push({ name: path.posix.basename(file), source: { kind: 'file', path: file } });
  };

  if (isStatelite) {
    if (!lin.rootimgdir) throw new ImageError("Couldn't locate the root image directory. ", imagename);
    manifest.rootimgtree = `${lin.rootimgdir}/rootimgtree.gz`;
    manifest.litefile = `${lin.rootimgdir}/litefile.csv`;
  }
  for (const file of [manifest.kernel, manifest.ramdisk, manifest.rootimg]) if (file) addFile(file);
  if (isStatelite) {
    messages.push('Packing root image. It will take a while');
    members.push({ name: 'rootimgtree.gz', source: { kind: 'rootimgtree', path: `${lin.rootimgdir}/rootimg` } });
    messages.push('Getting litefile settings');
    members.push({ name: LITEFILE_MEMBER, source: { kind: 'text', text: formatLitefileCsv(dirName, litefileRowsForImage(tables, imagename)) } });
  }
  for (const column of LIST_COLUMNS) splitList(lin[column]).forEach(addFile);
  splitList(os.synclists).forEach(addFile);
  for (const kit of manifest.kit) {
    if (!kit.kitdir) continue;
    messages.push(kit.kitdir);
    if (!isDirectory(loc, kit.kitdir)) throw new ImageError(`Couldn't find file ${kit.kitdir} for ${imagename}.`, imagename);
    // Named after the kit, which is where xCAT's import looks for it (xCAT's export uses the
    // kitdir's last part, the same name unless an administrator moved the kit).
    // imgimport reads everything under extra/ as extras (xCAT's import too).
    if (kit.kitname === 'extra') throw new ImageError(`kit ${kit.kitname}: its directory in the bundle would be taken for the extras' (${dirName}/extra/); rename the kit`, imagename);
    members.push({ name: kit.kitname, source: { kind: 'tree', path: kit.kitdir } });
  }
  for (const file of manifest.rawimagefiles) {
    messages.push(file);
    members.push({ name: path.posix.basename(file), source: { kind: 'file', path: file } });
  }

  manifest.extra = request.extras.map((arg) => parseExtra(loc, arg));
  for (const [index, extra] of manifest.extra.entries()) {
    messages.push(extra.src);
    const isDir = isDirectory(loc, extra.src);
    // One source named again (for another destination) is one member: the import places it for each extra.
    const earlier = manifest.extra.findIndex((e) => e.src === extra.src);
    if (earlier < index) {
      const { dest } = manifest.extra[earlier];
      if (isDir && dest !== extra.dest) {
        throw new ImageError(`-e ${extra.src} is given for ${dest} and for ${extra.dest}: a directory extra goes to one destination (copy it to the other after the import)`, imagename);
      }
      continue;
    }
    members.push(isDir
      ? { name: `extra${path.posix.normalize(extra.src)}`, source: { kind: 'tree', path: extra.src } }
      : { name: `extra/${path.posix.basename(extra.src)}`, source: { kind: 'file', path: extra.src } });
  }

  if (request.postscriptsNode) Object.assign(manifest, postscriptsFor(tables, request.postscriptsNode));

  // The members the export writes itself come first: a listed file of the same name would be a second copy.
  const seen = new Map<string, PlannedMember>(
    [MANIFEST_MEMBER, CHECKSUMS_MEMBER].map((name) => [name, { name, source: { kind: 'text', text: '' } }]),
  );
  for (const member of members) {
    if (hasControlCharacter(member.name)) {
      throw new ImageError(`cannot export ${JSON.stringify(describe(member.source))}: a control character in its name, which imgimport refuses in a bundle member`, imagename);
    }
    const twin = seen.get(member.name);
    if (twin) {
      throw new ImageError(`two files would share the bundle member ${dirName}/${member.name}: ${describe(twin.source)} and ${describe(member.source)}`, imagename);
    }
    seen.set(member.name, member);
  }
  // A file named like a directory that holds another member (-e /usr/sbin/tools -e /tools/data): a tar
  // would hold both, and an unpacking keeps one.
  for (const member of members) {
    const parts = member.name.split('/');
    for (let i = 1; i < parts.length; i++) {
      const holder = seen.get(parts.slice(0, i).join('/'));
      if (holder && holder.source.kind !== 'tree') {
        throw new ImageError(`${describe(holder.source)} and ${describe(member.source)} would share the bundle member ${dirName}/${holder.name}, one as a file and the other as a directory`, imagename);
      }
    }
  }
  // A directory extra inside another one (-e /opt/x -e /opt/x/sub) would put its files in twice.
  for (const outer of members.filter((m) => m.source.kind === 'tree')) {
    const inner = members.find((m) => m.name.startsWith(`${outer.name}/`));
    if (inner) {
      throw new ImageError(`${describe(inner.source)} lies inside ${describe(outer.source)}, which the bundle holds whole: its files would be in it twice, and an import places each file once (give -e ${describe(outer.source)} only, and copy the inner directory where it should also go after the import)`, imagename);
    }
  }
  return { imagename, dirName, manifest, members, messages };
}

/** Logical paths of the directories the bundle archives whole (statelite root image, directory extras, kits). */
export function treeSources(plan: ExportPlan): string[] {
  return plan.members.flatMap((m) => (m.source.kind === 'tree' || m.source.kind === 'rootimgtree' ? [m.source.path] : []));
}

function describe(source: MemberSource): string {
  return source.kind === 'text' ? 'generated text' : source.path;
}
