import fs from 'node:fs';
import { PathError } from '../core/errors.js';
import { createRequire } from 'node:module';
import type tar from 'tar-stream';
import { archiveName, type EntryKind, type TreeEntry } from '../pipeline/walk.js';
import { readFile, type FileDataSource } from '../pipeline/file-reader.js';
import { tagged, type TaggedChunk } from '../pipeline/compress/format.js';

/** One tar member to write. Paths are full member names (`./IMAGE/kernel`). */
export interface TarMember {
  name: string;
  kind: EntryKind;
  /** Permission bits including setuid/setgid/sticky. */
  mode: number;
  uid: number;
  gid: number;
  /** Seconds since the epoch. */
  mtime: number;
  /** Regular files: the exact number of data bytes that will follow. */
  size?: number;
  /** Symlink: its target. Hard link: the member name of the file it links to. */
  linkTarget?: string;
  rdevMajor?: number;
  rdevMinor?: number;
  /** Owner names written in the header (xCAT's bundles say root/root); numeric only when absent. */
  uname?: string;
  gname?: string;
}

const TAR_TYPES: Record<EntryKind, tar.Header['type']> = {
  file: 'file',
  dir: 'directory',
  symlink: 'symlink',
  hardlink: 'link',
  chardev: 'character-device',
  blockdev: 'block-device',
  fifo: 'fifo',
};

/** File-type bits for st_mode: tar-stream replaces a mode of 0 by its default, so we always pass them. */
const TYPE_BITS: Record<EntryKind, number> = {
  file: 0o100000,
  dir: 0o040000,
  symlink: 0o120000,
  hardlink: 0o100000,
  chardev: 0o020000,
  blockdev: 0o060000,
  fifo: 0o010000,
};

/**
 * Largest uid/gid (6 octal digits) a ustar header holds, and largest mtime tar-stream writes
 * right: the field holds 11 octal digits, but tar-stream takes the seconds through a 32-bit
 * signed integer (2038 and later came out negative or as 2242).
 */
const USTAR_MAX_ID = 0o777777;
const USTAR_MAX_DEVICE = 0o777777;
const USTAR_MAX_TIME = 2 ** 31 - 1;
/**
 * Longest owner name the 32-byte uname/gname fields hold: tar-stream writes a longer one on, over
 * the fields that follow (a group name of 49 bytes moved the member into another directory).
 */
const USTAR_MAX_OWNER_NAME = 31;

/**
 * pax records for what the ustar fields cannot hold: big owner ids (directory services hand out
 * ids in the millions), long owner names, times before 1970 or from 2038 on. tar-stream would write the ids
 * saturated and those times as broken headers; readers take the pax value over the field's.
 */
function paxRecords(member: TarMember, owner: { uname: string; gname: string }): Record<string, string> | undefined {
  const records: Record<string, string> = {};
  if (Buffer.byteLength(owner.uname) > USTAR_MAX_OWNER_NAME) records.uname = owner.uname;
  if (Buffer.byteLength(owner.gname) > USTAR_MAX_OWNER_NAME) records.gname = owner.gname;
  if (member.uid > USTAR_MAX_ID) records.uid = String(member.uid);
  if (member.gid > USTAR_MAX_ID) records.gid = String(member.gid);
  if (member.mtime < 0 || member.mtime > USTAR_MAX_TIME) records.mtime = String(member.mtime);
  return Object.keys(records).length ? records : undefined;
}

function headerOf(member: TarMember): tar.Header {
  const owner = {
    uname: member.uname ?? ownerNames().users.get(member.uid) ?? '',
    gname: member.gname ?? ownerNames().groups.get(member.gid) ?? '',
  };
  const pax = paxRecords(member, owner);
  // A name too long for its field is in the pax record only.
  const field = (name: string): string => (Buffer.byteLength(name) > USTAR_MAX_OWNER_NAME ? '' : name);
  return {
    ...(pax && { pax }),
    // GNU tar (and so xCAT's bundles) ends directory names with a slash.
    name: member.kind === 'dir' && !member.name.endsWith('/') ? `${member.name}/` : member.name,
    type: TAR_TYPES[member.kind],
    mode: TYPE_BITS[member.kind] | (member.mode & 0o7777),
    uid: member.uid,
    gid: member.gid,
    uname: field(owner.uname),
    gname: field(owner.gname),
    mtime: new Date(Math.min(Math.max(member.mtime, 0), USTAR_MAX_TIME) * 1000),
    size: member.kind === 'file' ? (member.size ?? 0) : 0,
    linkname: member.linkTarget ?? '',
    devmajor: member.rdevMajor ?? 0,
    devminor: member.rdevMinor ?? 0,
  };
}

let owners: { users: Map<number, string>; groups: Map<number, string> } | undefined;

/** User and group names by id from /etc/passwd and /etc/group, as GNU tar writes them; read once. */
function ownerNames(): NonNullable<typeof owners> {
  const read = (file: string): Map<number, string> => {
    const names = new Map<number, string>();
    let text = '';
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch {
      return names; // no names: the header carries the numeric ids only
    }
    for (const line of text.split('\n')) {
      const [name, , id] = line.split(':');
      if (name && id && /^\d+$/.test(id) && !names.has(Number(id))) names.set(Number(id), name);
    }
    return names;
  };
  owners ??= { users: read('/etc/passwd'), groups: read('/etc/group') };
  return owners;
}

const require = createRequire(import.meta.url);
let tarStream: typeof tar | undefined;

/** tar-stream, loaded with the first tar written: packing a cpio never needs it (~25 ms of start-up). */
function tarStreamLibrary(): typeof tar {
  tarStream ??= require('tar-stream') as typeof tar;
  return tarStream;
}

/**
 * A tar stream writer whose output carries, for every chunk, whether it is worth compressing.
 * tar-stream passes each data Buffer we write through to its output as the same object, so
 * chunks marked compressed (markCompressed) keep their mark; headers and padding are small and
 * always compressed.
 */
export class TarWriter {
  private readonly pack = tarStreamLibrary().pack();

  /** Adds one member; for a file, its data must total exactly member.size bytes. Resolves once written. */
  async add(member: TarMember, data?: AsyncIterable<Buffer>): Promise<void> {
    const done = new Promise<void>((resolve, reject) => {
      const sink = this.pack.entry(headerOf(member), (err) => (err ? reject(err) : resolve()));
      // A failing data source destroys the entry with its error: it is reported through `done`.
      sink.on('error', reject);
      if (member.kind !== 'file') return;
      void writeAll(sink, data).catch((err: Error) => sink.destroy(err));
    });
    return done;
  }

  /** Ends the archive (two zero blocks). */
  finish(): void {
    this.pack.finalize();
  }

  /** Aborts the archive: the output iteration fails with `err`. */
  abort(err: Error): void {
    this.pack.destroy(err);
  }

  /** The archive bytes, tagged for the compressor. */
  async *chunks(): AsyncIterable<TaggedChunk> {
    for await (const data of this.pack as AsyncIterable<Buffer>) yield tagged(data);
  }
}

/** The writable side of one tar-stream entry (a streamx stream). */
type EntrySink = ReturnType<ReturnType<typeof tar.pack>['entry']>;

function drainedOrClosed(sink: EntrySink): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      sink.off('drain', done);
      sink.off('close', done);
      resolve();
    };
    sink.on('drain', done);
    sink.on('close', done);
  });
}

async function writeAll(sink: EntrySink, data: AsyncIterable<Buffer> | undefined): Promise<void> {
  for await (const chunk of data ?? []) {
    if (!sink.write(chunk)) await drainedOrClosed(sink);
    // An aborted archive destroys the entry: stop reading, add() has already failed.
    if (sink.destroyed) return;
  }
  sink.end(null);
}

/**
 * The tar member for a walked tree entry, named `prefix/relPath` (`prefix` alone for the root).
 * A device number tar-stream cannot write (it writes 6 octal digits, and pax has no standard
 * record for them) is refused, naming the file: it would be written as 262143 silently.
 */
export function treeEntryMember(entry: TreeEntry, prefix: string): TarMember {
  if (entry.rdevMajor > USTAR_MAX_DEVICE || entry.rdevMinor > USTAR_MAX_DEVICE) {
    throw new PathError(`cannot archive ${entry.absPath}: its device numbers ${entry.rdevMajor}, ${entry.rdevMinor} do not fit a tar header (${USTAR_MAX_DEVICE} at most); a cpio archive holds them (packimage -m cpio)`, entry.absPath);
  }
  const name = archiveName(entry.relPath, prefix);
  return {
    name,
    kind: entry.kind,
    mode: entry.mode,
    uid: entry.uid,
    gid: entry.gid,
    mtime: entry.mtime,
    size: entry.size,
    linkTarget: entry.kind === 'hardlink' ? archiveName(entry.linkTarget!, prefix) : entry.linkTarget,
    rdevMajor: entry.rdevMajor,
    rdevMinor: entry.rdevMinor,
  };
}

/** Adds every entry of a walked tree to the writer, each file's data read as its member is written. */
export async function addTree(writer: TarWriter, tree: Iterable<TreeEntry>, prefix: string, data: FileDataSource = (entry) => readFile(entry)): Promise<void> {
  for (const entry of tree) {
    const member = treeEntryMember(entry, prefix);
    await writer.add(member, entry.kind === 'file' ? data(entry) : undefined);
  }
}

/** A complete tar stream (with its end blocks) of a walked tree, for packimage's tar method. */
export async function* treeTarChunks(tree: Iterable<TreeEntry>, opts: { prefix: string; data?: FileDataSource }): AsyncIterable<TaggedChunk> {
  const writer = new TarWriter();
  const feeding = addTree(writer, tree, opts.prefix, opts.data).then(
    () => writer.finish(),
    (err: Error) => writer.abort(err),
  );
  yield* writer.chunks();
  await feeding;
}
