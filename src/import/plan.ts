/**
 * Pure planning of an import: where every bundle member goes, and the rows the image gets,
 * from the manifest, the locations and -f (xcat-bundle-format.md section 5, steps 4-8).
 * No IO here, so --dry-run and tests use exactly what the import does.
 */
import path from 'node:path';
import { BundleError, PathError, UsageError } from '../core/errors.js';
import type { Locations } from '../core/locations.js';

/** Where an import puts things: the plan needs no more of the Locations. */
type Directories = Pick<Locations, 'installdir' | 'xcatroot'>;
import { CHECKSUMS_MEMBER } from '../archive/sha256sums.js';
import { MANIFEST_MEMBER, type Manifest, type ManifestExtra } from '../xcat/manifest.js';
import { listItems, type Row, type Tables } from '../tables/types.js';

const posix = path.posix;

/** linuximage/osimage columns that name list files shipped in the bundle (comma lists). */
const LINUXIMAGE_LIST_COLUMNS = ['template', 'pkglist', 'otherpkglist', 'postinstall', 'exlist'] as const;
const OSIMAGE_LIST_COLUMNS = ['synclists'] as const;
/** Manifest elements naming image files that live in the root image directory. */
const IMAGE_FILE_KEYS = ['kernel', 'ramdisk', 'rootimg', 'rootimgtree', 'litefile'] as const;
/** Per provmethod, the manifest elements whose files must be in the bundle. */
const REQUIRED_FILE_KEYS: Record<string, readonly string[]> = {
  netboot: ['kernel', 'ramdisk', 'rootimg'],
  statelite: ['kernel', 'ramdisk', 'rootimgtree'],
  install: ['template'],
};

export interface KitPlacement {
  name: string;
  /** dirname(kitdir)/KITNAME */
  dest: string;
  /** The names its directory may have in the bundle: KITNAME (xCAT's import), else basename(kitdir) (xCAT's export). */
  bundleNames: string[];
}

export interface ImportPlan {
  /** The image directory's name inside the bundle. */
  bundleImage: string;
  /** The name the image gets (changed by -f). */
  imagename: string;
  provmethod: string;
  osimage: Row;
  linuximage: Row;
  /** Top-level member (a basename) -> its destinations (one file may serve several list columns). */
  files: Map<string, string[]>;
  /** Members that must be in the bundle (kernel, initrd, root image, template). */
  requiredMembers: string[];
  /** statelite: the rootimgtree member and the directory in which `rootimg/` is made. */
  tree?: { member: string; dir: string };
  /** statelite: the litefile.csv member, whose lines become litefile rows. */
  litefileMember?: string;
  kits: KitPlacement[];
  extras: ManifestExtra[];
  /** Where kits' other_files go. */
  postscriptsDir: string;
  /** Where kits' plugins go. */
  pluginDir: string;
  manifest: Manifest;
}

/** The basename a manifest path is bundled under; refuses paths that have none. */
export function memberOf(logicalPath: string): string {
  const base = posix.basename(posix.normalize(logicalPath));
  if (!base || base === '.' || base === '..') throw new BundleError(`manifest path ${logicalPath} names no file`, logicalPath);
  return base;
}

/** Whether a name can be a single path component: not empty, `.` or `..`, no `/`, no control character. */
export function isPlainName(name: string): boolean {
  return !(!name || name === '.' || name === '..' || name.includes('/') || /[\x00-\x1f\x7f]/.test(name));
}

/** A single path component from the bundle or the command line (image, kit or profile name). */
export function assertPlainName(name: string, what: string): void {
  if (!isPlainName(name)) throw new BundleError(`refusing ${what} '${name}': not a plain name`, name);
}

/** xCAT's platform directory for an osvers (rh, centos, sles, ...), or undefined. */
export function platformOf(osvers: string): string | undefined {
  const prefixes: [RegExp, string][] = [
    [/^rh/, 'rh'], [/^centos/, 'centos'], [/^alma/, 'alma'], [/^rocky/, 'rocky'], [/^fedora/, 'fedora'],
    [/^sles/, 'sles'], [/^SL/, 'SL'], [/^win/, 'windows'], [/^ubuntu/, 'ubuntu'],
  ];
  return prefixes.find(([re]) => re.test(osvers))?.[1];
}

/** The name a raw image file gets in its repository directory: xCAT adds `.img` when it lacks that suffix. */
export function rawImageName(fileName: string): string {
  return fileName.endsWith('.img') ? fileName : `${fileName}.img`;
}

/** The list file's name for a new profile: the old profile replaced, else NEWPROFILE. prefixed. */
export function renamedForProfile(fileName: string, oldProfile: string, newProfile: string): string {
  return oldProfile && fileName.includes(oldProfile) ? fileName.replace(oldProfile, newProfile) : `${newProfile}.${fileName}`;
}

/** Where a list file goes under -f: renamed, and moved out of XCATROOT/share/xcat into INSTALLDIR/custom. */
export function relocateListFile(file: string, ctx: { oldProfile: string; newProfile: string; osvers: string; provmethod: string; locations: Directories }): string {
  const normal = posix.normalize(file);
  const name = renamedForProfile(posix.basename(normal), ctx.oldProfile, ctx.newProfile);
  const share = posix.join(ctx.locations.xcatroot, 'share/xcat') + '/';
  if (!normal.startsWith(share)) return posix.join(posix.dirname(normal), name);
  // By the image's provmethod, as xCAT's change_profile: a netboot image's otherpkglist from share/xcat/install goes to custom/netboot.
  const kind = ctx.provmethod === 'install' ? 'install' : 'netboot';
  const platform = platformOf(ctx.osvers) ?? posix.basename(posix.dirname(normal));
  return posix.join(ctx.locations.installdir, 'custom', kind, platform, name);
}

/**
 * The whole import plan. `manifest` has passed checkManifest; media is checked by the caller
 * (it needs the disk). Throws UsageError for a bad -f, BundleError for unusable names.
 */
export function planImport(manifest: Manifest, bundleImage: string, locations: Directories, newProfile?: string): ImportPlan {
  const osimage: Row = { ...manifest.osimage };
  const linuximage: Row = { ...manifest.linuximage };
  const provmethod = osimage.provmethod.trim();
  const oldProfile = osimage.profile.trim();
  const osvers = osimage.osvers.trim();
  const osarch = osimage.osarch.trim();
  let imagename = osimage.imagename.trim();
  assertPlainName(imagename, 'image name');

  const files = new Map<string, string[]>();
  const addFile = (member: string, dest: string) => {
    const dests = files.get(member) ?? [];
    if (!dests.includes(dest)) dests.push(dest);
    files.set(member, dests);
  };
  const imageFiles: Partial<Record<(typeof IMAGE_FILE_KEYS)[number], string>> = {};
  for (const key of IMAGE_FILE_KEYS) if (manifest[key]) imageFiles[key] = posix.normalize(manifest[key]!.trim());

  const reprofile = newProfile !== undefined && newProfile !== oldProfile;
  if (reprofile) {
    if (!newProfile) throw new UsageError('-f needs a profile name');
    assertPlainName(newProfile, 'profile');
    imagename = `${osvers}-${osarch}-${provmethod}-${newProfile}`;
    osimage.profile = newProfile;
    const s390Raw = osarch === 's390x' && (provmethod === 'raw' || provmethod === 'sysclone');
    if (provmethod !== 'install' || linuximage.rootimgdir) {
      const rootimgdir = posix.join(locations.installdir, s390Raw ? provmethod : 'netboot', osvers, osarch, newProfile);
      linuximage.rootimgdir = rootimgdir;
      for (const key of IMAGE_FILE_KEYS) if (imageFiles[key]) imageFiles[key] = posix.join(rootimgdir, posix.basename(imageFiles[key]!));
    }
    const ctx = { oldProfile, newProfile, osvers, provmethod, locations };
    for (const [row, columns] of [[linuximage, LINUXIMAGE_LIST_COLUMNS], [osimage, OSIMAGE_LIST_COLUMNS]] as const) {
      for (const column of columns) {
        if (!row[column]) continue;
        const moved = listItems(row[column]).map((file) => {
          addFile(memberOf(file), relocateListFile(file, ctx));
          return relocateListFile(file, ctx);
        });
        row[column] = moved.join(',');
      }
    }
  } else {
    for (const [row, columns] of [[linuximage, LINUXIMAGE_LIST_COLUMNS], [osimage, OSIMAGE_LIST_COLUMNS]] as const) {
      for (const column of columns) for (const file of listItems(row[column])) addFile(memberOf(file), posix.normalize(file));
    }
  }
  osimage.imagename = imagename;
  linuximage.imagename = imagename;

  let tree: ImportPlan['tree'];
  for (const key of IMAGE_FILE_KEYS) {
    const dest = imageFiles[key];
    if (!dest) continue;
    if (key === 'rootimgtree') tree = { member: memberOf(dest), dir: posix.dirname(dest) };
    else addFile(memberOf(dest), dest);
  }
  const rawImageDir = posix.join(locations.installdir, provmethod, osvers, osarch, osimage.profile.trim());
  for (const file of manifest.rawimagefiles) addFile(memberOf(file), posix.join(rawImageDir, rawImageName(memberOf(file))));

  const requiredMembers = (REQUIRED_FILE_KEYS[provmethod] ?? []).flatMap((key) => {
    if (key === 'template') return listItems(manifest.linuximage.template).map(memberOf);
    const value = manifest[key as (typeof IMAGE_FILE_KEYS)[number]];
    return value ? [memberOf(value)] : [];
  });

  const kits = manifest.kit.flatMap((kit): KitPlacement[] => {
    const name = (kit.kitname ?? '').trim();
    assertPlainName(name, 'kit name');
    // xCAT places only the kits that have a kitdir; the others are just rows.
    const kitdir = (kit.kitdir ?? '').trim();
    if (!kitdir) return [];
    const dirName = memberOf(kitdir);
    return [{ name, dest: posix.join(posix.dirname(posix.normalize(kitdir)), name), bundleNames: [...new Set([name, dirName])] }];
  });

  return {
    bundleImage,
    imagename,
    provmethod,
    osimage,
    linuximage,
    files,
    requiredMembers,
    tree,
    litefileMember: imageFiles.litefile ? memberOf(imageFiles.litefile) : undefined,
    kits,
    // xCAT's export writes `-e /install/mydir/` as given, its members still extra/install/mydir/...
    extras: manifest.extra.map((e) => ({ src: normalPath(e.src), dest: normalPath(e.dest) })),
    postscriptsDir: posix.join(locations.installdir, 'postscripts'),
    pluginDir: posix.join(locations.xcatroot, 'lib/perl/xCAT_plugin'),
    manifest,
  };
}

/** Where a member of the image directory goes, decided from its relative path and tar type. */
export type Route =
  | { kind: 'manifest' }
  | { kind: 'checksums' }
  /** A directory that only structures the bundle: nothing to write. */
  | { kind: 'structure' }
  | { kind: 'file'; dests: string[] }
  | { kind: 'tree'; dir: string }
  /** A member of a kit directory; `copies` are the extra places xCAT copies it to. */
  | { kind: 'kit'; kit: KitPlacement; sub: string; copies: string[] }
  /**
   * An extra: a file, or an entry of a directory extra (merged into `root`, its destination
   * directory). `copies`: the other destinations of a file that several extras name by the same
   * basename (xCAT's export keeps one file for them, its import copies it to each).
   */
  | { kind: 'extra'; dest: string; root: string; fromDirectory: boolean; copies: string[] }
  | { kind: 'unknown' };


/** An entry of a kit's other_files that xCAT copies to the postscripts (dot files, lists and environments stay). */
function isKitPostscript(top: string, first: string | undefined): first is string {
  // xCAT's copyPostscripts skips /\.exlist$/i and /\.env$/i: whatever their case.
  return top === 'other_files' && !!first && !first.startsWith('.') && !/\.(exlist|env)$/i.test(first);
}

/** A kit file that xCAT also copies to INSTALLDIR/postscripts or the plugin directory. */
export function kitCopies(plan: ImportPlan, sub: string): string[] {
  const [top, first, ...rest] = sub.split('/');
  if (!first) return [];
  if (isKitPostscript(top, first)) return [posix.join(plan.postscriptsDir, first, ...rest)];
  if (top === 'plugins') return [posix.join(plan.pluginDir, first, ...rest)];
  return [];
}

/**
 * The mode of a file xCAT copies with plain `cp` (a file extra, a kit's postscript or plugin copy):
 * cp without -p drops setuid, setgid and sticky, and the umask (022) group and world write. A
 * bundle cannot so leave a setuid or world-writable file on the management node.
 */
export function plainCopyMode(mode: number): number {
  return mode & 0o755;
}

/** A kit file's mode: xCAT makes each postscript directly in other_files executable before copying it. */
export function kitFileMode(sub: string, mode: number): number {
  const [top, first, ...deeper] = sub.split('/');
  return isKitPostscript(top, first) && deeper.length === 0 ? 0o755 : mode;
}

/**
 * The links xCAT's import makes so that otherpkgs finds a kit's packages: for each of the image's
 * kit components, OTHERPKGDIR/KITREPONAME -> its kit repository's kitrepodir. Rows come from the
 * manifest, else the tables (xCAT reads them after writing the manifest's).
 */
export function kitRepositoryLinks(plan: ImportPlan, tables: Tables): { dest: string; target: string }[] {
  // otherpkgdir may list internet repositories after the local directory: "/install/post/otherpkgs/...,http://...".
  const otherpkgdir = (plan.linuximage.otherpkgdir ?? '').split(',').map((entry) => entry.trim()).find((entry) => posix.isAbsolute(entry));
  if (!otherpkgdir) return [];
  const find = (rows: Row[], key: string, value: string): Row | undefined => rows.find((row) => row[key] === value);
  const links = new Map<string, string>();
  for (const component of listItems(plan.osimage.kitcomponents)) {
    const row = find(plan.manifest.kitcomp, 'kitcompname', component) ?? find(tables.kitcomponent ?? [], 'kitcompname', component);
    const repo = row?.kitreponame;
    if (!repo) continue;
    const target = (find(plan.manifest.kitrepo, 'kitreponame', repo) ?? find(tables.kitrepo ?? [], 'kitreponame', repo))?.kitrepodir;
    if (target) links.set(posix.join(otherpkgdir, memberOf(repo)), target);
  }
  return [...links].map(([dest, target]) => ({ dest, target }));
}

/** Routes a member (path relative to the image directory) by the plan. */
export function routeMember(plan: ImportPlan, rel: string, isDirectory: boolean): Route {
  if (rel === MANIFEST_MEMBER) return { kind: 'manifest' };
  if (rel === CHECKSUMS_MEMBER) return { kind: 'checksums' };
  if (rel === '') return { kind: 'structure' };
  const [top, ...restParts] = rel.split('/');
  const rest = restParts.join('/');
  if (!rest) {
    if (plan.tree && rel === plan.tree.member && !isDirectory) return { kind: 'tree', dir: plan.tree.dir };
    const dests = plan.files.get(rel);
    if (dests && !isDirectory) return { kind: 'file', dests };
  }
  if (top === 'extra') {
    if (!rest) return { kind: 'structure' };
    const [first, ...others] = isDirectory ? [] : plan.extras.filter((e) => extraFileMember(e) === rel);
    if (first) {
      // Each other destination once: the same extra listed twice (-e F -e F) is one file to place.
      const copies = [...new Set(others.map((e) => posix.join(e.dest, rest)))].filter((dest) => dest !== posix.join(first.dest, rest));
      return { kind: 'extra', dest: posix.join(first.dest, rest), root: first.dest, fromDirectory: false, copies };
    }
    // A directory extra's top, or something inside one. What is not a directory goes inside a
    // directory extra first: named like a file extra's whole path (-e /x/a.txt -e /x), it is /x's a.txt.
    const top = plan.extras.find((e) => rel === extraDirectoryMember(e));
    const inside = plan.extras.find((e) => rel.startsWith(extraDirectoryMember(e) + '/'));
    const extra = isDirectory ? top ?? inside : inside ?? top;
    if (extra) {
      const member = extraDirectoryMember(extra);
      return { kind: 'extra', dest: posix.join(extra.dest, rel.slice(member.length)), root: extra.dest, fromDirectory: true, copies: [] };
    }
    if (isDirectory && plan.extras.some((e) => extraDirectoryMember(e).startsWith(rel + '/'))) return { kind: 'structure' };
    return { kind: 'unknown' };
  }
  const kit = plan.kits.find((k) => k.bundleNames.includes(top));
  if (kit) return { kind: 'kit', kit, sub: rest, copies: isDirectory ? [] : kitCopies(plan, rest) };
  return { kind: 'unknown' };
}

/** The member an extra's file is bundled as: `extra/basename(SRC)`. */
function extraFileMember(extra: ManifestExtra): string {
  return `extra/${posix.basename(extra.src)}`;
}

/** The member a directory extra is bundled as: `extra/SRC` (its whole path). */
function extraDirectoryMember(extra: ManifestExtra): string {
  return `extra/${extra.src.replace(/^\/+/, '')}`;
}

/**
 * What the bundle lacks of what its manifest names, as the import's refusal, or undefined: a
 * required image file, an extra (xCAT's import fails on it too), a kit's directory. `seen`: the
 * members read, relative to the image directory, `dirs` those of them that are directories;
 * `shown` names one with the image directory.
 */
export function lackingMember(plan: ImportPlan, seen: ReadonlySet<string>, dirs: ReadonlySet<string>, shown: (rel: string) => string): BundleError | undefined {
  const required = plan.requiredMembers.find((rel) => !seen.has(rel));
  if (required !== undefined) return new BundleError(`bundle lacks ${shown(required)}, which the manifest names`, shown(required));
  // A directory is there as its own entry or as something below it (a file of that name is not it).
  const present = (rel: string): boolean => dirs.has(rel) || [...seen].some((s) => s.startsWith(rel + '/'));
  const extra = plan.extras.find((e) => !seen.has(extraFileMember(e)) && !present(extraDirectoryMember(e)));
  if (extra) {
    const names = [...new Set([extraFileMember(extra), extraDirectoryMember(extra)])].map(shown);
    return new BundleError(`bundle lacks the extra ${extra.src} (${names.join(' or ')}), which the manifest names for ${extra.dest}`, names[0]);
  }
  const kit = plan.kits.find((k) => !k.bundleNames.some(present));
  if (kit) {
    const names = kit.bundleNames.map((n) => `${shown(n)}/`).join(' or ');
    return new BundleError(`bundle lacks the directory of kit ${kit.name} (${names}), which the manifest names`, shown(kit.name));
  }
  return undefined;
}

/** The import's refusals of a member for what came before it in the bundle, shared with imgport verify. */
export const memberRefusal = {
  twice: (name: string) => new BundleError(`member ${name} appears twice in the bundle`, name),
  belowLink: (name: string, link: string) => new BundleError(`refusing member ${name}: its parent ${link} is a symbolic link`, name),
  linkForFile: (name: string) => new BundleError(`refusing member ${name}: a link where the manifest expects a file`, name),
  hardLink: (name: string, target: string) => new BundleError(`refusing hard link ${name}: its target ${target} is not an earlier file of the image`, name),
  escapingLink: (name: string, target: string, root: string) =>
    new BundleError(`refusing symbolic link ${name} -> ${target}: it points outside ${root}, where a later import could write through it`, name),
  kitTwice: (name: string, kit: string, shownDir: string) => new BundleError(`refusing member ${name}: kit ${kit} is already in the bundle as ${shownDir}/`, name),
};

/**
 * Records which of its two accepted names (KITNAME or basename(kitdir)) a kit's directory has in
 * this bundle, from one of its members; a member under the other name is refused.
 */
export function claimKitDirectory(names: Map<string, string>, route: Route & { kind: 'kit' }, rel: string, name: string, shown: (dir: string) => string): void {
  const dirName = rel.split('/')[0];
  const known = names.get(route.kit.name) ?? dirName;
  if (known !== dirName) throw memberRefusal.kitTwice(name, route.kit.name, shown(known));
  names.set(route.kit.name, dirName);
}

/** Whether a regular file routed so is staged (and may be the target of a hard link): not one that is only read. */
export function stagesFile(route: Route): boolean {
  return route.kind === 'file' || route.kind === 'extra' || route.kind === 'kit';
}

/** A tar member's kind as the import takes it: a device file or fifo has no place outside the statelite tree. */
export function memberKind(type: string | null | undefined, name: string): 'file' | 'dir' | 'symlink' | 'hardlink' {
  switch (type) {
    case 'file':
    case 'contiguous-file':
      return 'file';
    case 'directory':
      return 'dir';
    case 'symlink':
      return 'symlink';
    case 'link':
      return 'hardlink';
    default:
      throw new BundleError(`refusing member ${name}: a ${type ?? 'special file'} has no place in a bundle`, name);
  }
}

/**
 * The refusal of a symbolic link routed so, when it would lead out of where it lies: its extra's
 * or kit's directory, and for a kit's postscript also the postscripts directory it is copied to.
 */
export function escapingLinkRefusal(route: Route, name: string, target: string): BundleError | undefined {
  // A kit's copy keeps the path below other_files/ or plugins/: its root is the copy without that path.
  const below = route.kind === 'kit' ? route.sub.split('/').slice(1).join('/') : '';
  const places = route.kind === 'extra' ? [{ dest: route.dest, root: route.root }]
    : route.kind === 'kit' ? [{ dest: posix.join(route.kit.dest, route.sub), root: route.kit.dest }, ...route.copies.map((dest) => ({ dest, root: dest.slice(0, -below.length - 1) }))]
    : [];
  const out = places.find((place) => !linkStaysInside(place.dest, target, place.root));
  return out && memberRefusal.escapingLink(name, target, out.root);
}

/** The refusal of a member the plan has no place for: never dropped, it may be data the manifest should have named. */
export function unplacedMember(plan: ImportPlan, rel: string, name: string): BundleError {
  const top = rel.split('/')[0];
  const homeless = plan.manifest.kit.some((kit) => (kit.kitname ?? '').trim() === top && !(kit.kitdir ?? '').trim());
  const why = homeless ? `kit ${top} has no kitdir in the manifest, so its directory has no place` : 'the manifest names nothing of that name';
  return new BundleError(`refusing member ${name}: ${why}`, name);
}

/**
 * Whether a symbolic link a bundle installs at `linkDest` stays inside `root` (its extra's or kit's
 * directory). One that points elsewhere (absolute, or climbing out with `..`) is refused: left on
 * the node, it would look like an administrator's link, and a later bundle could write through it.
 */
export function linkStaysInside(linkDest: string, target: string, root: string): boolean {
  return target !== '' && !posix.isAbsolute(target) && isUnder(posix.join(posix.dirname(linkDest), target), root);
}

/** A path normalised, without a trailing slash (but `/` itself). */
export function normalPath(p: string): string {
  return posix.normalize(p).replace(/(.)\/+$/, '$1');
}

/** Is a logical path inside one of the roots? */
export function isUnder(target: string, root: string): boolean {
  const t = posix.normalize(target);
  const r = posix.normalize(root).replace(/\/+$/, '');
  return r === '' || t === r || t.startsWith(r + '/');
}

/** Is a logical path inside any of the roots? */
export function isUnderAny(target: string, roots: readonly string[]): boolean {
  return roots.some((root) => isUnder(target, root));
}

/** The roots destinations may lie under: INSTALLDIR, XCATROOT/share and every --allow-dest. */
export function allowedRoots(locations: Locations, allowDest: string[]): string[] {
  return [locations.installdir, posix.join(locations.xcatroot, 'share'), ...allowDest.map((d) => posix.normalize(d))];
}

/** Every destination the manifest names, before any member is read. */
export function manifestDestinations(plan: ImportPlan): string[] {
  return [
    ...[...plan.files.values()].flat(),
    ...(plan.tree ? [posix.join(plan.tree.dir, 'rootimg')] : []),
    ...plan.kits.map((k) => k.dest),
    ...(plan.kits.length ? [plan.postscriptsDir] : []),
    ...plan.extras.map((e) => e.dest),
  ];
}

/**
 * The refusal (listing every one of them) of destinations outside the allowed roots, or undefined.
 * Kit plugins are code xcatd runs: the refusal names the exact --allow-dest that installs them.
 */
export function destinationRefusal(destinations: Iterable<string>, roots: string[], pluginDir?: string): PathError | undefined {
  const offending = [...new Set([...destinations].filter((d) => !posix.isAbsolute(d) || !isUnderAny(d, roots)))];
  if (!offending.length) return undefined;
  const plugins = pluginDir !== undefined && offending.some((d) => isUnder(d, pluginDir));
  const hint = plugins ? `; kit plugins are code that xcatd runs and are installed only when asked: add --allow-dest ${pluginDir}` : '';
  return new PathError(
    `refusing to write outside ${roots.join(', ')} (use --allow-dest DIR to allow a directory): ${offending.join(', ')}${hint}`,
    offending[0],
  );
}

/**
 * A directory replaced as a whole (a kit's, the statelite tree) must lie below the roots, never be
 * one: a kit named `install` whose kitdir is /install would put the whole install directory aside.
 */
export function refuseRootReplacement(treeDestinations: string[], roots: string[]): void {
  const root = treeDestinations.find((dest) => roots.some((r) => normalPath(dest) === normalPath(r)));
  if (root !== undefined) throw new PathError(`refusing to replace ${root} as a whole: images go into it, it is not one`, root);
}

/** Throws destinationRefusal's error, if any. */
export function assertDestinationsAllowed(destinations: Iterable<string>, roots: string[], pluginDir?: string): void {
  const refusal = destinationRefusal(destinations, roots, pluginDir);
  if (refusal) throw refusal;
}
