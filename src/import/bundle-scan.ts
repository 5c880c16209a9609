/**
 * Reading a bundle through without importing it (imgport verify / inspect): every member's type,
 * size and digest, the manifest and SHA256SUMS, checked the way an import checks them.
 */
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BundleError, ChecksumError, ImgportError } from '../core/errors.js';
import { createGunzip } from '../pipeline/decompress.js';
import { CHECKSUMS_MEMBER, DigestTap, parseSha256Sums, throughTap } from '../archive/sha256sums.js';
import { LITEFILE_MEMBER, MANIFEST_MEMBER, TREE_MEMBER, TREE_PREFIX, type Manifest } from '../xcat/manifest.js';
import { parseLitefileCsv } from '../xcat/litefile.js';
import { checkCpioTree } from '../archive/tree-extract.js';
import { DEFAULT_INSTALLDIR, xcatrootFrom } from '../core/locations.js';
import { claimKitDirectory, escapingLinkRefusal, lackingMember, memberKind, memberOf, memberRefusal, planImport, routeMember, stagesFile, unplacedMember } from './plan.js';
import { parseManifest } from '../xcat/manifest-reader.js';
import { readBundleMembers, type BundleMember, type Compression, type ReaderState } from './bundle-reader.js';
import { ImageDirectory } from './member-names.js';

export interface ScannedMember {
  name: string;
  /** The path inside the image directory ('' for the directory itself); undefined for the bundle's root. */
  rel?: string;
  /** A link's target as the tar header has it. */
  linkTarget?: string;
  type: string;
  size: number;
  /** sha256 of a regular file's bytes. */
  sha256?: string;
}

export interface BundleScan {
  format: Compression;
  image?: string;
  members: ScannedMember[];
  manifest?: Manifest;
  sums?: Map<string, string>;
  /** The text of litefile.csv, which the import reads into the litefile table (statelite). */
  litefile?: string;
}

/** The small members read whole (SHA256SUMS, litefile.csv), within this bound. */
export const CHECKSUMS_MAX_BYTES = 16 << 20;

/** A small member's bytes; one larger than `limit` is refused, naming it. */
export async function readWhole(body: AsyncIterable<Buffer>, limit: number, name: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of body) {
    length += chunk.length;
    if (length > limit) throw new BundleError(`member ${name} is larger than ${limit} bytes`, name);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/**
 * Compares the digests of the image's files (relative name -> hex) with SHA256SUMS: a mismatch,
 * a file not listed, or a listed file not in the bundle throws ChecksumError naming the member.
 */
export function compareChecksums(digests: Map<string, string>, sums: Map<string, string>, image: string): void {
  for (const [rel, digest] of digests) {
    const expected = sums.get(rel);
    if (expected === undefined) throw new ChecksumError(`member ${image}/${rel} is not listed in ${CHECKSUMS_MEMBER}`, `${image}/${rel}`);
    if (expected !== digest) throw new ChecksumError(`checksum mismatch for member ${image}/${rel}: expected ${expected}, got ${digest}`, `${image}/${rel}`);
  }
  for (const rel of sums.keys()) {
    if (!digests.has(rel)) throw new ChecksumError(`member ${image}/${rel} is listed in ${CHECKSUMS_MEMBER} but missing from the bundle`, `${image}/${rel}`);
  }
}

/** A raw stream error, or the decompressor's (a BundleError naming no member): the bundle's bytes failed. */
export function isUpstreamFailure(err: unknown): boolean {
  return !(err instanceof ImgportError) || (err instanceof BundleError && err.member === undefined);
}

/**
 * The statelite tree member gunzipped as it streams, its cpio read by `consume` (extracted, or
 * checked). A failure of the bundle's own stream stays the bundle's; the gzip's is the member's.
 */
export async function readTreeMember<T>(compressed: Readable, name: string, consume: (cpio: Readable) => Promise<T>): Promise<T> {
  const gunzip = createGunzip();
  const feeding = pipeline(compressed, gunzip).catch((err: unknown) => {
    if (isUpstreamFailure(err)) throw err; // the bundle broke, not this member
    throw new BundleError(`member ${name}: ${(err as Error).message}`, name);
  });
  try {
    const [, result] = await Promise.all([feeding, consume(gunzip)]);
    return result;
  } catch (err) {
    gunzip.destroy();
    compressed.destroy();
    throw err;
  }
}

/** Reads the whole bundle; member names are checked as an import checks them. */
export async function scanBundle(source: Readable, label: string): Promise<BundleScan> {
  const scan: BundleScan = { format: 'none', members: [] };
  const imageDir = new ImageDirectory();
  const reader: ReaderState = {};
  try {
    await scanMembers(scan, imageDir, readBundleMembers(source, label, (f) => (scan.format = f), reader));
  } catch (err) {
    // Our own refusals stand; a stream error (or the decompressor's, naming no member) means the bundle failed upstream.
    throw isUpstreamFailure(err) ? reader.failure ?? err : err;
  }
  scan.image = imageDir.name;
  return scan;
}

async function scanMembers(scan: BundleScan, imageDir: ImageDirectory, members: AsyncIterable<BundleMember>): Promise<void> {
  for await (const { header, body } of members) {
    const place = imageDir.place(header.name);
    const member: ScannedMember = { name: header.name.replace(/^\.\//, ''), rel: place?.rel, type: header.type ?? 'file', size: header.size ?? 0, linkTarget: header.linkname ?? undefined };
    scan.members.push(member);
    if (header.type !== 'file' && header.type !== 'contiguous-file') continue;
    const tap = new DigestTap();
    const tapped = throughTap(body, tap);
    if (place?.rel === MANIFEST_MEMBER) scan.manifest = await parseManifest(tapped, member.name);
    else if (place?.rel === CHECKSUMS_MEMBER) scan.sums = parseSha256Sums((await readWhole(tapped, CHECKSUMS_MAX_BYTES, member.name)).toString('utf8'), member.name);
    else if (place?.rel === LITEFILE_MEMBER) scan.litefile = (await readWhole(tapped, CHECKSUMS_MAX_BYTES, member.name)).toString('utf8');
    else if (place?.rel === treeMemberOf(scan.manifest)) {
      await readTreeMember(tapped, member.name, (cpio) => checkCpioTree(cpio, { stripPrefix: TREE_PREFIX, member: member.name }));
    } else for await (const chunk of tapped) void chunk;
    member.sha256 = tap.sha256;
  }
}

/** The statelite tree's member, as the import finds it: by the manifest once read, else by its usual name. */
function treeMemberOf(manifest: Manifest | undefined): string {
  return manifest?.rootimgtree ? memberOf(manifest.rootimgtree) : TREE_MEMBER;
}

/**
 * What the import would refuse in the bundle's members by its manifest: one it has no place for,
 * or something the manifest names that is not there. Planned with the default install directory.
 */
export function checkPlacement(scan: BundleScan, manifest: Manifest): void {
  const image = scan.image!;
  const plan = planImport(manifest, image, { installdir: DEFAULT_INSTALLDIR, xcatroot: xcatrootFrom() });
  const seen = new Set<string>();
  const dirs = new Set<string>();
  // What a hard link may join: files the import stages (not the manifest or SHA256SUMS, which it only reads).
  const files = new Set<string>();
  const links: string[] = [];
  const kitDirNames = new Map<string, string>();
  for (const { rel, type, name: raw, linkTarget } of scan.members) {
    if (rel === undefined) continue;
    const name = raw.replace(/\/+$/, '');
    const kind = memberKind(type, name);
    if (seen.has(rel)) throw memberRefusal.twice(name);
    const link = links.find((l) => rel.startsWith(l + '/'));
    if (link !== undefined) throw memberRefusal.belowLink(name, `${image}/${link}`);
    // In the import's order: a hard link is joined as it is staged, before its route is taken.
    if (kind === 'hardlink' && !files.has((linkTarget ?? '').replace(/^\.\//, '').slice(image.length + 1))) throw memberRefusal.hardLink(name, linkTarget ?? '');
    const route = routeMember(plan, rel, kind === 'dir');
    if (route.kind === 'unknown') throw unplacedMember(plan, rel, name);
    const isLink = kind === 'symlink' || kind === 'hardlink';
    if (isLink && (route.kind === 'file' || route.kind === 'tree')) throw memberRefusal.linkForFile(name);
    const escaping = kind === 'symlink' ? escapingLinkRefusal(route, name, linkTarget ?? '') : undefined;
    if (escaping) throw escaping;
    if (route.kind === 'kit') claimKitDirectory(kitDirNames, route, rel, name, (dir) => `${image}/${dir}`);
    seen.add(rel);
    if (kind === 'dir') dirs.add(rel);
    if (kind === 'symlink') links.push(rel);
    if ((kind === 'file' || kind === 'hardlink') && stagesFile(route)) files.add(rel);
  }
  const lacking = lackingMember(plan, seen, dirs, (rel) => `${image}/${rel}`);
  if (lacking) throw lacking;
  if (plan.litefileMember === LITEFILE_MEMBER && scan.litefile !== undefined) parseLitefileCsv(scan.litefile, `${image}/${LITEFILE_MEMBER}`);
}

/** The image's file digests by relative name (what SHA256SUMS covers: every file but itself). */
export function fileDigests(scan: BundleScan): Map<string, string> {
  const digests = new Map<string, string>();
  for (const m of scan.members) {
    const rel = m.name.slice((scan.image ?? '').length + 1);
    if (m.sha256 !== undefined && rel !== CHECKSUMS_MEMBER) digests.set(rel, m.sha256);
  }
  return digests;
}
