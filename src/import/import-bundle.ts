/**
 * imgimport's pipeline: source -> bundle reader -> per-member router -> staging (hashed as it
 * streams; the statelite tree unpacked on the fly) -> verification -> commit (renames, then the
 * tables in one update) or rollback. Members that arrive before manifest.xml (xCAT's bundles)
 * are held in a staging directory on INSTALLDIR's filesystem and renamed into place later
 * (copied first when their destination turns out to be on another filesystem).
 */
import { chmod, copyFile, link, mkdir, readlink, rmdir, stat, symlink } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type tar from 'tar-stream';
import { BundleError, ImageError, ImgportError, PathError } from '../core/errors.js';
import { markCommitted, onCleanup } from '../core/cleanup.js';
import type { Locations } from '../core/locations.js';
import type { Sandbox } from '../core/sandbox.js';
import { CHECKSUMS_MEMBER, DigestTap, parseSha256Sums, throughTap } from '../archive/sha256sums.js';
import { checkCpioTree, extractCpioTree } from '../archive/tree-extract.js';
import { createStagedFile } from '../pipeline/sink.js';
import type { TableStore } from '../tables/store.js';
import { activeRows, type Tables } from '../tables/types.js';
import { litefileChanges, parseLitefileCsv } from '../xcat/litefile.js';
import { checkManifest, manifestWarnings, missingManifest, parseManifest } from '../xcat/manifest-reader.js';
import { MANIFEST_MEMBER, TREE_MEMBER, TREE_PREFIX } from '../xcat/manifest.js';
import { readBundleMembers, type ReaderState } from './bundle-reader.js';
import { CHECKSUMS_MAX_BYTES, compareChecksums, isUpstreamFailure, readTreeMember, readWhole } from './bundle-scan.js';
import { describeOp, enclosingTree, executeCommit, inspectPaths, keepAttributes, pathsToInspect, pauseForTests, planCommit, type CommitOp, type Unit } from './commit.js';
import { ImageDirectory } from './member-names.js';
import {
  allowedRoots,
  assertDestinationsAllowed,
  claimKitDirectory,
  destinationRefusal,
  escapingLinkRefusal,
  isUnder,
  isUnderAny,
  kitFileMode,
  kitRepositoryLinks,
  plainCopyMode,
  manifestDestinations,
  lackingMember,
  memberKind,
  memberRefusal,
  planImport,
  refuseRootReplacement,
  routeMember,
  stagesFile,
  unplacedMember,
  type ImportPlan,
  type Route,
} from './plan.js';
import { openBundleSource } from './source.js';
import { applyImportToTables, postscriptNodes, rowsHeld, type WrittenRows } from './table-changes.js';
import { interruptedCommit, ImportTransaction, prepareRoot } from './transaction.js';
import { PACKED_FORMS } from '../pack/formats.js';
import { lockRootImageDir } from '../pack/lock.js';

/** A member's bytes queued for its staging file while the write before them is in flight. */
const STAGING_WRITE_AHEAD = 4 * 1024 * 1024;

export interface ImportRequest {
  bundle: string;
  remotehost?: string;
  /** -f */
  newProfile?: string;
  /** -p */
  postscripts?: string;
  allowDest: string[];
  dryRun: boolean;
  /** -v: a line per member as it is read. */
  verbose?: boolean;
  sandbox: Sandbox;
  store: TableStore;
  locations: (tables: Tables) => Locations;
  out: (line: string) => void;
  warn: (line: string) => void;
}

/** litefile.csv is read from memory: members that may be it are kept, within these bounds. */
const KEEP_MEMBER_MAX_BYTES = 1 << 20;
const KEEP_TOTAL_MAX_BYTES = 16 << 20;

type Kind = 'file' | 'symlink' | 'dir' | 'tree' | 'hardlink';

/** A member as staged (or, in --dry-run, just read). */
interface Staged {
  rel: string;
  name: string;
  kind: Kind;
  /** Real path of what was written (absent in --dry-run). */
  real?: string;
  mode: number;
  size: number;
  /** Symbolic links: their target. */
  linkTarget?: string;
  /** Owner and mtime (seconds) as the bundle has them. */
  uid: number;
  gid: number;
  mtime: number;
}

/** The state of one import while its bundle streams by. */
class ImportSession {
  private readonly imageDir = new ImageDirectory();
  private tx: ImportTransaction | undefined;
  private plan: ImportPlan | undefined;
  private held: Staged[] = [];
  private readonly digests = new Map<string, string>();
  private readonly sizes = new Map<string, number>();
  private sums: Map<string, string> | undefined;
  private readonly seen = new Set<string>();
  /** The members of `seen` that are directories. */
  private readonly seenDirs = new Set<string>();
  /** Symbolic link members: nothing may be written through one, in staging or at its destination. */
  private readonly symlinks = new Set<string>();
  /** Regular files staged (or, in --dry-run, read), by rel: what a hard link may join. */
  private readonly stagedFiles = new Map<string, string | undefined>();
  private readonly kept = new Map<string, Buffer>();
  private keptBytes = 0;
  private readonly units: Unit[] = [];
  private readonly kitRoots = new Map<string, string | undefined>();
  /** The name each kit's directory has in this bundle (KITNAME or basename(kitdir)). */
  private readonly kitDirNames = new Map<string, string>();
  /** Further places for a staged file (`from`), or for a symbolic link to `linkTarget`. */
  private readonly copies: { from?: string; linkTarget?: string; dest: string; mode: number; member: string; size: number; overwrite?: boolean }[] = [];
  private readonly roots: string[];
  private committing: Promise<void> | undefined;
  private aborted = false;
  private unregisterCleanup: (() => void) | undefined;
  private beginning: Promise<ImportTransaction> | undefined;
  private closing: Promise<void> | undefined;
  private inFlight: Promise<void> | undefined;
  /** Stops the bundle's flow (set by the caller that owns the source). */
  stopReading: () => void = () => undefined;
  /** Directories this import created for its allowed roots, deepest first: removed again on rollback if still empty. */
  readonly createdRoots: string[] = [];

  constructor(
    private readonly req: ImportRequest,
    private readonly locations: Locations,
  ) {
    this.roots = allowedRoots(locations, req.allowDest);
  }

  private memberName(rel: string): string {
    return `${this.imageDir.name}/${rel}`;
  }

  /** Handles one member; a rollback waits for it (and for finish), so nothing is written into staging being removed. */
  member(header: tar.Header, body: Readable): Promise<void> {
    this.inFlight = this.aborted ? Promise.reject(new ImgportError('interrupted')) : this.handleMember(header, body);
    return this.inFlight;
  }

  /**
   * Starts the transaction (lock, journal, staging) under `key`: the image's final name, or the
   * bundle's directory while members before the manifest must be held (rekeyed once it is read).
   */
  private async transaction(key: string): Promise<ImportTransaction | undefined> {
    if (this.req.dryRun) return undefined;
    if (!this.beginning) {
      // Registered before the lock is taken: a signal while taking it still releases it.
      this.beginning = ImportTransaction.begin(this.req.sandbox, key, this.roots, this.req.warn, this.req.store);
      this.unregisterCleanup = onCleanup(() => this.rollback());
      this.tx = await this.beginning;
    } else await this.tx?.rekey(key);
    return this.tx;
  }

  private async handleMember(header: tar.Header, body: Readable): Promise<void> {
    const place = this.imageDir.place(header.name);
    if (!place) return;
    const name = header.name.replace(/^\.\//, '').replace(/\/+$/, '');
    const kind = memberKind(header.type, name);
    const { rel } = place;
    if (this.req.verbose) this.req.out(`member ${name} (${kind}${kind === 'file' ? `, ${header.size ?? 0} bytes` : ''})`);
    // Checked first for these two as well: a second manifest would replace the plan half way.
    if (this.seen.has(rel)) throw memberRefusal.twice(name);
    if (rel === MANIFEST_MEMBER && kind === 'file') {
      this.seen.add(rel);
      return this.readManifest(body, name);
    }
    if (!this.plan) await this.transaction(place.image);
    if (rel === CHECKSUMS_MEMBER && kind === 'file') {
      this.seen.add(rel);
      this.sums = parseSha256Sums((await readWhole(body, CHECKSUMS_MAX_BYTES, name)).toString('utf8'), name);
      return;
    }
    const linkParent = [...this.symlinks].find((link) => rel.startsWith(link + '/'));
    if (linkParent) throw memberRefusal.belowLink(name, this.memberName(linkParent));
    this.seen.add(rel);
    if (kind === 'dir') this.seenDirs.add(rel);
    if (kind === 'symlink') this.symlinks.add(rel);
    const route = this.plan ? routeMember(this.plan, rel, kind === 'dir') : undefined;
    const staged = await this.stage(rel, name, kind, header, body, route);
    if (route) await this.adopt(staged, route);
    else this.held.push(staged);
  }

  private async readManifest(body: Readable, name: string): Promise<void> {
    const tap = new DigestTap();
    const manifest = await parseManifest(throughTap(body, tap), name);
    this.digests.set(MANIFEST_MEMBER, tap.sha256);
    checkManifest(manifest, name);
    manifestWarnings(manifest, name).forEach(this.req.warn);
    const plan = planImport(manifest, this.imageDir.name!, this.locations, this.req.newProfile);
    if ((manifest.media ?? '').trim() === 'required') {
      const media = path.posix.join(this.locations.installdir, plan.osimage.osvers, plan.osimage.osarch);
      const there = await stat(this.req.sandbox.real(media)).then((s) => s.isDirectory(), () => false);
      if (!there) throw new ImageError(`This image requires that you first copy media for ${plan.osimage.osvers}-${plan.osimage.osarch} (${media} does not exist)`, plan.imagename);
    }
    assertDestinationsAllowed(manifestDestinations(plan), this.roots);
    await this.checkDestinations(plan);
    await this.transaction(plan.imagename);
    this.plan = plan;
    const held = this.held;
    this.held = [];
    for (const staged of held) await this.adopt(staged, routeMember(plan, staged.rel, staged.kind === 'dir'));
    // Only litefile.csv is needed in memory from now on.
    for (const [rel, data] of [...this.kept]) {
      if (rel === plan.litefileMember) continue;
      this.kept.delete(rel);
      this.keptBytes -= data.length;
    }
  }

  /** Checks (and, when missing, makes) an allowed root before staging goes there; see prepareRoot. */
  async prepareRoot(root: string, what?: string): Promise<void> {
    this.createdRoots.unshift(...(await prepareRoot(this.req.sandbox, root, this.req.dryRun, what)));
  }

  /** What can be checked before the members stream: each destination the manifest names, and its directories. */
  private async checkDestinations(plan: ImportPlan): Promise<void> {
    const destinations = manifestDestinations(plan);
    for (const root of this.roots) {
      if (root !== this.locations.installdir && destinations.some((d) => isUnder(d, root))) await this.prepareRoot(root);
    }
    const units: Unit[] = [
      ...[...plan.files.values()].flat().map((dest): Unit => ({ dest, type: 'file', member: '' })),
      ...(plan.tree ? [{ dest: path.posix.join(plan.tree.dir, 'rootimg'), type: 'tree', member: '' } as Unit] : []),
      ...plan.kits.map((kit): Unit => ({ dest: kit.dest, type: 'tree', member: '' })),
      ...(plan.kits.length ? [{ dest: plan.postscriptsDir, type: 'dir', member: '' } as Unit] : []),
      ...plan.extras.map((extra): Unit => ({ dest: extra.dest, type: 'dir', member: '' })),
    ];
    refuseRootReplacement(units.filter((unit) => unit.type === 'tree').map((unit) => unit.dest), this.roots);
    planCommit(units, await inspectPaths(this.req.sandbox, pathsToInspect(units), this.roots, units));
  }

  /** Where a member is written: beside its destination once the plan is known, else held. */
  private async stagingPath(rel: string, kind: Kind, route: Route | undefined): Promise<string | undefined> {
    const tx = this.tx;
    if (!tx) return undefined;
    if (!route) {
      if (kind === 'tree') return tx.unitPath(path.posix.join(this.locations.installdir, 'x'), 'rootimg');
      return path.join(await tx.stagingDirFor(path.posix.join(this.locations.installdir, 'x')), 'held', ...rel.split('/'));
    }
    switch (route.kind) {
      case 'file':
        return tx.unitPath(route.dests[0], path.posix.basename(rel));
      case 'tree':
        return tx.unitPath(path.posix.join(route.dir, 'rootimg'), 'rootimg');
      case 'extra':
        return kind === 'dir' ? undefined : tx.unitPath(route.dest, path.posix.basename(rel));
      case 'kit': {
        let root = this.kitRoots.get(route.kit.name);
        if (!root) {
          root = await tx.unitPath(route.kit.dest, route.kit.name);
          this.kitRoots.set(route.kit.name, root);
        }
        return route.sub ? path.join(root, ...route.sub.split('/')) : root;
      }
      default:
        return undefined;
    }
  }

  /** Before the manifest, any top-level member may be litefile.csv; after it, only the one it names. */
  private mayBeLitefile(rel: string): boolean {
    return this.plan ? rel === this.plan.litefileMember : !rel.includes('/');
  }

  /** litefile.csv is read whole to make its rows: one that could not be kept is refused, never skipped. */
  private litefileNotKept(rel: string, size: number): BundleError {
    const name = this.memberName(rel);
    const why = size > KEEP_MEMBER_MAX_BYTES
      ? `is too large to read as the image's litefile rows (${size} bytes, at most ${KEEP_MEMBER_MAX_BYTES})`
      : `came after more than ${KEEP_TOTAL_MAX_BYTES} bytes of other members before ${MANIFEST_MEMBER}, too many to keep in memory for its litefile rows`;
    return new BundleError(`member ${name} ${why}`, name);
  }

  private async stage(rel: string, name: string, kind0: Kind, header: tar.Header, body: Readable, route: Route | undefined): Promise<Staged> {
    if (rel === this.plan?.litefileMember && (header.size ?? 0) > KEEP_MEMBER_MAX_BYTES) throw this.litefileNotKept(rel, header.size ?? 0);
    const isTree = kind0 === 'file' && (route ? route.kind === 'tree' : rel === TREE_MEMBER);
    const kind: Kind = isTree ? 'tree' : kind0;
    const mode = (header.mode ?? 0o644) & 0o7777;
    const size = header.size ?? 0;
    const real = await this.stagingPath(rel, kind, route);
    const mtime = (header.mtime?.getTime() ?? Date.now()) / 1000;
    const staged: Staged = { rel, name, kind, real, mode, size, linkTarget: header.linkname ?? undefined, uid: header.uid ?? 0, gid: header.gid ?? 0, mtime };
    if (real && kind !== 'tree') await mkdir(path.dirname(real), { recursive: true, mode: 0o700 });
    if (kind === 'file' || kind === 'tree') {
      if (real) await this.tx!.ensureRoom(real, size);
      const tap = new DigestTap();
      const keep = this.mayBeLitefile(rel) && size <= KEEP_MEMBER_MAX_BYTES && this.keptBytes + size <= KEEP_TOTAL_MAX_BYTES;
      const chunks: Buffer[] = [];
      if (keep) tap.on('data', (c: Buffer) => chunks.push(c));
      if (kind === 'tree') await this.unpackTree(throughTap(body, tap), real, name);
      else if (real) {
        await pipeline(throughTap(body, tap), createStagedFile(real, mode, { shownAs: this.req.sandbox.logical(real), highWaterMark: STAGING_WRITE_AHEAD }));
        await chmod(real, mode);
      } else {
        await pipeline(throughTap(body, tap), async (source: AsyncIterable<Buffer>) => {
          for await (const chunk of source) void chunk;
        });
      }
      this.rememberFile(rel, real, route);
      this.digests.set(rel, tap.sha256);
      this.sizes.set(rel, size);
      if (keep) {
        this.kept.set(rel, Buffer.concat(chunks));
        this.keptBytes += size;
      }
    } else if (real && kind === 'dir') {
      await mkdir(real, { recursive: true, mode: 0o700 });
      await chmod(real, mode);
    } else if (real && kind === 'symlink') {
      // The link is created as a link inside our own staging directory: never followed.
      await symlink(header.linkname ?? '', real);
    } else if (kind === 'hardlink') {
      const target = this.imageDir.place(header.linkname ?? '');
      // Only files routed to be staged are remembered, so in a real import each has its staged path.
      if (!target || !this.stagedFiles.has(target.rel)) throw memberRefusal.hardLink(name, header.linkname ?? '');
      if (real) await link(this.stagedFiles.get(target.rel)!, real);
      this.rememberFile(rel, real, route);
      staged.size = this.sizes.get(target.rel) ?? 0; // its data's, for the room its copies need
    }
    return staged;
  }

  /**
   * Remembers a file that later hard links may name: one staged for its destination (in a dry
   * run, one that would be). A member that stages nothing (a name the bundle's structure keeps,
   * such as IMAGE/extra, or SHA256SUMS), even as a hard link to a file, cannot be the target of another.
   */
  private rememberFile(rel: string, real: string | undefined, route: Route | undefined): void {
    if (!route || stagesFile(route)) this.stagedFiles.set(rel, real);
  }

  private async unpackTree(compressed: Readable, real: string | undefined, name: string): Promise<void> {
    this.req.out(`Extracting ${TREE_MEMBER} as it streams.`);
    // --dry-run reads the tree through as the extraction would, writing nothing.
    const opts = { stripPrefix: TREE_PREFIX, member: name, warn: this.req.warn };
    const result = await readTreeMember(compressed, name, (cpio) => (real ? extractCpioTree(cpio, real, opts) : checkCpioTree(cpio, opts)));
    this.req.out(`${result.entries} entries, ${result.bytes} bytes`);
  }

  /** Turns a staged member into what the commit needs, by its route. */
  private async adopt(staged: Staged, route: Route): Promise<void> {
    const { name, kind, real } = staged;
    const escaping = kind === 'symlink' ? escapingLinkRefusal(route, name, staged.linkTarget ?? '') : undefined;
    if (escaping) throw escaping;
    const refuseLink = () => {
      if (kind === 'symlink' || kind === 'hardlink') throw memberRefusal.linkForFile(name);
    };
    switch (route.kind) {
      case 'file':
        refuseLink();
        if (kind === 'dir') return;
        this.units.push({ dest: route.dests[0], type: 'file', staged: real, member: name, size: staged.size });
        for (const dest of route.dests.slice(1)) this.copies.push({ from: real, dest, mode: staged.mode, member: name, size: staged.size });
        return;
      case 'tree':
        refuseLink();
        if (kind === 'dir') throw new BundleError(`refusing member ${name}: a directory where the manifest expects the gzip'd root image tree`, name);
        this.units.push({ dest: path.posix.join(route.dir, 'rootimg'), type: 'tree', staged: real, member: name, size: staged.size });
        return;
      case 'extra':
        if (kind === 'dir') {
          const { uid, gid, mtime } = staged;
          this.units.push({ dest: route.dest, type: 'dir', mode: staged.mode, kept: { uid, gid, mtime }, member: name });
          return;
        }
        if (kind === 'symlink' && route.copies.length) throw new BundleError(`refusing member ${name}: a symbolic link where ${route.copies.length + 1} extras expect a file`, name);
        // A file extra is copied with plain cp by xCAT (a directory extra's files with cp -a, modes kept).
        if (real && kind === 'file' && !route.fromDirectory) await chmod(real, plainCopyMode(staged.mode));
        if (real && route.fromDirectory && (kind === 'file' || kind === 'symlink')) await keepAttributes(real, staged, kind === 'file' ? staged.mode : undefined);
        this.units.push({ dest: route.dest, type: kind === 'symlink' ? 'symlink' : 'file', staged: real, member: name, size: staged.size, overwrite: route.fromDirectory });
        for (const dest of route.copies) this.copies.push({ from: real, dest, mode: plainCopyMode(staged.mode), member: name, size: staged.size });
        return;
      case 'kit': {
        claimKitDirectory(this.kitDirNames, route, staged.rel, name, (dir) => this.memberName(dir));
        if (!this.req.dryRun) assertDestinationsAllowed(route.copies, this.roots, this.plan!.pluginDir);
        // Held kit members already form the kit tree under the held directory.
        if (!this.kitRoots.has(route.kit.name)) {
          const heldRoot = real && (route.sub ? real.slice(0, real.length - route.sub.length - 1) : real);
          this.kitRoots.set(route.kit.name, heldRoot);
        }
        // A link among a kit's postscripts is copied as a link, as xCAT's cp -rf copies it.
        if (kind === 'symlink') return this.copyKitLink(staged, route.copies);
        if (kind !== 'file' && kind !== 'hardlink') return;
        const mode = kitFileMode(route.sub, staged.mode);
        if (real && mode !== staged.mode) await chmod(real, mode);
        for (const dest of route.copies) this.copies.push({ from: real, dest, mode: plainCopyMode(mode), member: name, size: staged.size, overwrite: true });
        return;
      }
      case 'unknown':
        throw unplacedMember(this.plan!, staged.rel, name);
      default:
        return;
    }
  }

  private copyKitLink(staged: Staged, dests: string[]): void {
    for (const dest of dests) this.copies.push({ linkTarget: staged.linkTarget, dest, mode: 0o777, member: staged.name, size: 0, overwrite: true });
  }

  /** After the last member: checks, then the commit plan (and its execution unless --dry-run). */
  finish(tables: Tables, nodes: string[] | undefined): Promise<string> {
    const finishing = this.aborted ? Promise.reject(new ImgportError('interrupted')) : this.verifyAndCommit(tables, nodes);
    this.inFlight = finishing.then(() => undefined);
    return finishing;
  }

  private async verifyAndCommit(tables: Tables, nodes: string[] | undefined): Promise<string> {
    const plan = this.plan;
    if (!this.imageDir.name) throw new BundleError(`bundle ${this.req.bundle} holds no image`, this.req.bundle);
    if (!plan) throw missingManifest(this.req.bundle, this.memberName(MANIFEST_MEMBER));
    this.verifyChecksums();
    const lacking = lackingMember(plan, this.seen, this.seenDirs, (rel) => this.memberName(rel));
    if (lacking) throw lacking;
    for (const member of plan.files.keys()) {
      if (!this.seen.has(member)) this.req.warn(`Warning: the manifest names ${member}, which is not in the bundle; skipped.`);
    }
    const litefileSize = plan.litefileMember && this.seen.has(plan.litefileMember) && !this.kept.has(plan.litefileMember) ? this.sizes.get(plan.litefileMember) : undefined;
    if (litefileSize !== undefined) throw this.litefileNotKept(plan.litefileMember!, litefileSize);
    for (const kit of plan.kits) {
      const dirName = this.kitDirNames.get(kit.name)!; // lackingMember saw a member of it, which adopt named
      this.units.push({ dest: kit.dest, type: 'tree', staged: this.kitRoots.get(kit.name), member: `${this.memberName(dirName)}/` });
    }
    await this.stageKitRepositoryLinks(plan, activeRows(tables));
    for (const copy of this.copies) {
      let staged: string | undefined;
      if (this.tx && copy.linkTarget !== undefined) {
        staged = await this.tx.unitPath(copy.dest, path.posix.basename(copy.dest));
        await symlink(copy.linkTarget, staged);
      } else if (this.tx && copy.from) {
        staged = await this.tx.unitPath(copy.dest, path.posix.basename(copy.dest));
        await this.tx.ensureRoom(staged, copy.size);
        await copyFile(copy.from, staged);
        await chmod(staged, copy.mode);
      }
      const type = copy.linkTarget !== undefined ? 'symlink' : 'file';
      this.units.push({ dest: copy.dest, type, staged, member: copy.member, size: copy.size, overwrite: copy.overwrite });
    }
    const refusal = destinationRefusal(this.units.map((u) => u.dest), this.roots, plan.pluginDir);
    if (refusal && !this.req.dryRun) throw refusal;
    for (const unit of this.units) if (this.tx && unit.staged) unit.staged = await this.tx.rehome(unit.staged, unit.dest);
    // Everything is staged: on disk before the commit (and before its lock: a flush can take long).
    if (!this.req.dryRun) await this.tx!.flush();
    const planAndCommit = () => this.planAndCommit(plan, tables, nodes, refusal);
    return this.req.dryRun ? planAndCommit() : this.tx!.commitExclusively(planAndCommit, () => this.aborted);
  }

  /** xCAT's OTHERPKGDIR/KITREPONAME links, staged as units of the commit. */
  private async stageKitRepositoryLinks(plan: ImportPlan, tables: Tables): Promise<void> {
    for (const link of kitRepositoryLinks(plan, tables)) {
      if (!isUnderAny(link.dest, this.roots)) {
        this.req.warn(`Warning: ${link.dest} is outside the allowed destinations: the kit repository is not linked there (--allow-dest ${path.posix.dirname(link.dest)} would).`);
        continue;
      }
      // Left on the node, a link to elsewhere would look like an administrator's, for later imports to write through.
      if (!isUnderAny(link.target, this.roots)) {
        this.req.warn(`Warning: the kit repository ${link.target} is outside the allowed destinations: ${link.dest} is not made to point there.`);
        continue;
      }
      // As xCAT: a directory there (or a link to one) is left as it is, and so is this very link.
      const real = this.req.sandbox.real(link.dest);
      if (await readlink(real).then((target) => target === link.target, () => false)) continue;
      if (await stat(real).then((s) => s.isDirectory(), () => false)) continue;
      const staged = this.tx && (await this.tx.unitPath(link.dest, path.posix.basename(link.dest)));
      if (staged) await symlink(link.target, staged);
      this.units.push({ dest: link.dest, type: 'symlink', staged, member: `the kit repository ${link.target}`, overwrite: true });
    }
  }

  /** From what is on disk now (under the commit lock), the commit's operations; then the commit. */
  private async planAndCommit(plan: ImportPlan, tables: Tables, nodes: string[] | undefined, refusal: Error | undefined): Promise<string> {
    const existing = await inspectPaths(this.req.sandbox, pathsToInspect(this.units), this.roots, this.units);
    const ops = planCommit(this.units, existing);

    const litefileText = plan.litefileMember ? this.kept.get(plan.litefileMember)?.toString('utf8') : undefined;
    const litefile = litefileText !== undefined ? parseLitefileCsv(litefileText, this.memberName(plan.litefileMember!)) : undefined;
    const changeTables = (t: Tables) =>
      applyImportToTables(t, plan, { nodes, litefile: litefile && litefileChanges(t, plan.imagename, litefile) });

    if (this.req.dryRun) {
      this.printDryRun(plan, ops, tables, changeTables, await interruptedCommit(this.req.sandbox, plan.imagename));
      // The whole plan is shown, then why a real import would stop.
      if (refusal) throw refusal;
      return plan.imagename;
    }
    this.committing = this.whileNoPackRuns(ops, plan.imagename, () => this.commit(ops, changeTables, litefileText, nodes));
    await this.committing;
    return plan.imagename;
  }

  /**
   * `work` holding the pack lock of every root image directory where the commit places a packed
   * root image (rootimg.cpio.gz, ...): a packimage running there would remove it once its own
   * archive is in place. A directory that does not exist yet has no pack running.
   */
  private async whileNoPackRuns(ops: CommitOp[], image: string, work: () => Promise<void>): Promise<void> {
    const dirs = new Set(ops.flatMap((op) => (op.op === 'place' && PACKED_FORMS.includes(path.posix.basename(op.unit.dest)) ? [path.posix.dirname(op.unit.dest)] : [])));
    const releases: (() => Promise<void>)[] = [];
    try {
      for (const dir of dirs) {
        if (await stat(this.req.sandbox.real(dir)).then((st) => st.isDirectory(), () => false)) releases.push(await lockRootImageDir(this.req.sandbox, dir, `import ${image}`, image));
      }
      await work();
    } finally {
      for (const release of releases) await release();
    }
  }

  private verifyChecksums(): void {
    if (this.sums) compareChecksums(this.digests, this.sums, this.imageDir.name!);
  }

  /** The plan, every step; `pendingJournal`: a killed import's commit the real one would roll back first. */
  private printDryRun(plan: ImportPlan, ops: CommitOp[], tables: Tables, change: (t: Tables) => WrittenRows, pendingJournal: string | undefined): void {
    const out = this.req.out;
    out(`Dry run: importing image ${plan.imagename} (bundle image ${this.imageDir.name}) would:`);
    if (pendingJournal) {
      out(`  first settle the commit a killed import left half done (journal ${pendingJournal}): rolled back, or finished if it had placed its files; the steps below are planned against the files as they are now`);
    }
    for (const op of ops) out(`  ${op.op === 'place' ? 'write ' : ''}${describeOp(op)}`);
    const inside = this.units.filter((unit) => enclosingTree(this.units, unit.dest));
    if (inside.length) {
      out(`  (${inside.length} of these go into a new tree: what it holds there already, kept as .ORIG or not needing a mkdir, is known once it is unpacked)`);
    }
    for (const written of change(structuredClone(tables))) {
      const { table, row } = written;
      const unchanged = rowsHeld(tables, [written]) ? ' (unchanged)' : '';
      out(`  set ${table} row: ${Object.entries(row).map(([k, v]) => `${k}=${v}`).join(' ')}${unchanged}`);
    }
    out('Nothing was written.');
  }

  private async commit(ops: CommitOp[], change: (t: Tables) => WrittenRows, litefileText: string | undefined, nodes: string[] | undefined): Promise<void> {
    const tx = this.tx!;
    // Every row the write sets (the definition, litefile, kit and -p postscripts rows), as it would
    // set them in the tables as they are now: what finishes the commit should this import be
    // killed once its files are placed, and what shows that it has.
    const rows = change(structuredClone(await this.req.store.read()));
    const pause = pauseForTests(process.env.IMGPORT_TEST_PAUSE_COMMIT_AFTER, () => this.aborted);
    const done = await executeCommit(this.req.sandbox, ops, {
      trash: (real) => tx.unitPath(this.req.sandbox.logical(real), 'old'),
      progress: (op) => {
        if (op.op === 'place' || op.op === 'mkdir') this.req.out(op.op === 'mkdir' ? `mkdir ${op.path}` : op.unit.dest);
      },
      aborted: () => this.aborted,
      record: (steps) => tx.recordCommit(steps, rows),
      placed: () => tx.commitInPlace(),
      undone: () => tx.commitUndone(),
      afterOp: pause,
    });
    await pause?.('placed');
    try {
      await this.req.store.update((t) => void change(t));
    } catch (err) {
      // Undone only once the journal says so; if it cannot, the next import finishes the commit.
      await tx.commitToUndo();
      await done.undo();
      throw err;
    }
    tx.commitStands();
    markCommitted();
    await tx.commitFinished();
    if (litefileText !== undefined) {
      this.req.out('Updating the litefile table.');
      for (const line of litefileText.split('\n').filter((l) => l.trim())) this.req.out(line);
      this.req.out('The litetree and statelite tables are untouched. You can update them if needed.');
    }
    if (nodes) this.req.out('Adding postscripts.');
  }

  /** Removes the staging (after a commit, or instead of one). Every caller waits for the removal to end. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.unregisterCleanup?.();
      const tx = await this.beginning?.catch(() => undefined);
      await tx?.close();
    })();
    return this.closing;
  }

  /** On failure or signal: a running commit undoes itself when it sees the abort; then the staging goes. */
  async rollback(): Promise<void> {
    this.aborted = true;
    this.stopReading();
    await this.inFlight?.catch(() => undefined);
    await this.committing?.catch(() => undefined);
    await this.close();
    for (const dir of this.createdRoots) await rmdir(this.req.sandbox.real(dir)).catch(() => undefined);
  }
}

/** A failed filesystem call (it carries the path) as a PathError naming that path, logically. */
function asPathError(err: unknown, sandbox: Sandbox): unknown {
  const fsError = err as NodeJS.ErrnoException;
  if (err instanceof ImgportError || !fsError.code || typeof fsError.path !== 'string') return err;
  const where = sandbox.shown(fsError.path);
  return new PathError(`cannot ${fsError.syscall ?? 'use'} ${where}: ${fsError.code}`, where);
}

/** Imports one bundle; resolves to the imported image's name. */
export async function importBundle(req: ImportRequest): Promise<string> {
  const tables = await req.store.read();
  // Lookups skip disabled rows, as xCAT's do; the table write keeps them.
  const active = activeRows(tables);
  const locations = req.locations(active);
  const nodes = req.postscripts !== undefined ? postscriptNodes(active, req.postscripts, req.warn) : undefined;
  const source = await openBundleSource(req.bundle, req.remotehost);
  const session = new ImportSession(req, locations);
  session.stopReading = () => source.destroy();
  req.out('Unbundling image...');
  let imagename: string;
  const reader: ReaderState = {};
  try {
    await session.prepareRoot(locations.installdir, 'the install directory');
    for await (const { header, body } of readBundleMembers(source, req.bundle, undefined, reader)) await session.member(header, body);
    imagename = await session.finish(tables, nodes);
  } catch (caught) {
    const err = asPathError(caught, req.sandbox);
    await session.rollback();
    // Our own refusals stand; a stream error means the bundle itself failed upstream.
    throw isUpstreamFailure(err) ? reader.failure ?? err : err;
  }
  await session.close();
  if (!req.dryRun) req.out(`Successfully imported the image ${imagename}.`);
  return imagename;
}
