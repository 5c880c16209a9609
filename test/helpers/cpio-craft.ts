import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

/** One newc member to craft, hostile or not: any name, any mode, any body. */
export interface CraftEntry {
  name: string;
  mode: number;
  body?: Buffer | string;
  ino?: number;
  nlink?: number;
  size?: number; // declared size when it must differ from the body
  uid?: number;
  gid?: number;
  mtime?: number;
  rdevMajor?: number;
  rdevMinor?: number;
}

const hex = (n: number) => n.toString(16).toUpperCase().padStart(8, '0');
const pad4 = (n: number) => (n + 3) & ~3;

/** Arbitrary newc bytes, with the trailer unless told otherwise. */
export function craftNewc(entries: CraftEntry[], opts: { trailer?: boolean; magic?: string } = {}): Buffer {
  const parts: Buffer[] = [];
  const all = opts.trailer === false ? entries : [...entries, { name: 'TRAILER!!!', mode: 0, nlink: 1 }];
  all.forEach((e, i) => {
    const body = Buffer.from(e.body ?? '');
    const name = Buffer.from(e.name + '\0');
    const fields = [e.ino ?? i + 1, e.mode, e.uid ?? 0, e.gid ?? 0, e.nlink ?? 1, e.mtime ?? 1_000_000_000, e.size ?? body.length,
      0, 0, e.rdevMajor ?? 0, e.rdevMinor ?? 0, name.length, 0];
    const header = Buffer.from((opts.magic ?? '070701') + fields.map(hex).join(''), 'latin1');
    parts.push(header, name, Buffer.alloc(pad4(header.length + name.length) - header.length - name.length));
    parts.push(body, Buffer.alloc(pad4(body.length) - body.length));
  });
  return Buffer.concat(parts);
}

export const FILE = 0o100644;
export const DIR = 0o040755;
export const SYMLINK = 0o120777;

/** A buffer handed out in pieces of `size` bytes, as a decompressor would. */
export async function* inPieces(data: Buffer, size = 7): AsyncIterable<Buffer> {
  for (let at = 0; at < data.length; at += size) yield data.subarray(at, at + size);
}

export const FIXED_MTIME = 1_600_000_000;

/**
 * A small root image with what archiving must keep: setuid/setgid/sticky modes, owners, a
 * three-name hard link, symlinks, a char device (1,3), a fifo, an empty file, a file bigger than a
 * read chunk, non-ASCII names, and fixed mtimes everywhere (directories last).
 */
export function makeSampleTree(top: string): void {
  const put = (rel: string, data: string | Buffer, mode = 0o644, owner = [0, 0]) => {
    const p = path.join(top, rel);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, data);
    fs.chownSync(p, owner[0], owner[1]);
    fs.chmodSync(p, mode);
  };
  fs.mkdirSync(top, { recursive: true });
  put('etc/hosts', '127.0.0.1 localhost\n');
  put('etc/empty', '');
  put('usr/bin/su', crypto.randomBytes(70_000), 0o4755);
  put('usr/bin/wall', crypto.randomBytes(1000), 0o2755, [0, 5]);
  put('usr/share/big.bin', crypto.randomBytes(300_000));
  put('usr/share/notes é ü.txt', 'non-ASCII name\n', 0o600, [1000, 1000]);
  put('usr/bin/perl', 'perl binary\n', 0o755);
  fs.linkSync(path.join(top, 'usr/bin/perl'), path.join(top, 'usr/bin/perl5.36'));
  fs.linkSync(path.join(top, 'usr/bin/perl'), path.join(top, 'etc/perl-alias'));
  fs.symlinkSync('../share/big.bin', path.join(top, 'usr/bin/big'));
  fs.symlinkSync('/etc/hosts', path.join(top, 'etc/hosts.abs'));
  fs.lchownSync(path.join(top, 'etc/hosts.abs'), 1000, 1000);
  fs.mkdirSync(path.join(top, 'tmp'));
  fs.chmodSync(path.join(top, 'tmp'), 0o1777);
  fs.mkdirSync(path.join(top, 'var/empty'), { recursive: true });
  fs.chownSync(path.join(top, 'var/empty'), 1234, 5678);
  fs.chmodSync(path.join(top, 'var/empty'), 0o700);
  fs.mkdirSync(path.join(top, 'dev'));
  execFileSync('mknod', [path.join(top, 'dev/null'), 'c', '1', '3']);
  fs.chmodSync(path.join(top, 'dev/null'), 0o666);
  execFileSync('mkfifo', [path.join(top, 'dev/initctl')]);
  fs.chmodSync(path.join(top, 'dev/initctl'), 0o600);
  setMtimes(top);
}

/** Sets every mtime below `top` (and top's) to distinct fixed values, directories after their content. */
function setMtimes(top: string): void {
  let n = 0;
  const visit = (p: string) => {
    const stat = fs.lstatSync(p);
    if (stat.isDirectory()) for (const name of fs.readdirSync(p)) visit(path.join(p, name));
    const when = FIXED_MTIME + 1000 * n++;
    fs.lutimesSync(p, when, when);
  };
  visit(top);
}

/** Everything about a tree that an archive round trip must keep, keyed by relative path. */
export interface Snapshot {
  [relPath: string]: { type: string; mode: number; uid: number; gid: number; size: number; mtime: number; sha256?: string; target?: string; rdev?: string; linkedWith?: string };
}

export function snapshotTree(top: string): Snapshot {
  const snapshot: Snapshot = {};
  const firstNameOfInode = new Map<number, string>();
  const visit = (rel: string) => {
    const p = path.join(top, rel);
    const st = fs.lstatSync(p);
    const type = st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : st.isCharacterDevice() ? 'chardev' : st.isFIFO() ? 'fifo' : 'other';
    const record: Snapshot[string] = { type, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, size: st.isDirectory() ? 0 : st.size, mtime: Math.floor(st.mtimeMs / 1000) };
    if (type === 'file') {
      record.sha256 = crypto.createHash('sha256').update(fs.readFileSync(p)).digest('hex');
      if (st.nlink > 1) {
        record.linkedWith = firstNameOfInode.get(st.ino) ?? rel;
        firstNameOfInode.set(st.ino, record.linkedWith);
      }
    }
    if (type === 'symlink') record.target = fs.readlinkSync(p);
    if (type === 'chardev') record.rdev = `${st.rdev >> 8},${st.rdev & 0xff}`;
    snapshot[rel] = record;
    if (type === 'dir') for (const name of fs.readdirSync(p).sort()) visit(rel === '.' ? name : `${rel}/${name}`);
  };
  visit('.');
  return snapshot;
}
