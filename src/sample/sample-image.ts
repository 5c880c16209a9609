import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import { Sandbox } from '../core/sandbox.js';
import type { Row } from '../tables/types.js';
import { childEnvironment } from '../core/child-env.js';

export type SampleProvmethod = 'netboot' | 'statelite' | 'install';

export interface SampleImageOptions {
  /** The sandbox root the image is written under (logical /install maps to ROOT/install). */
  root: string;
  provmethod: SampleProvmethod;
  /** Default OSVERS-OSARCH-PROVMETHOD-PROFILE. */
  name?: string;
  /** Default compute. */
  profile?: string;
  /** Default rhels8.5.0. */
  osvers?: string;
  /** Default x86_64. */
  osarch?: string;
  /** Multiplies the sizes of the kernel and the large compressible file (default 1). */
  sizeScale?: number;
}

export interface SampleImage {
  imagename: string;
  osimage: Row;
  linuximage: Row;
}

/** Every file in the sample tree gets this mtime, so two builds differ only in inode numbers. */
export const SAMPLE_MTIME = new Date('2024-01-02T03:04:05Z');

/**
 * Writes a small but realistic xCAT image under `root` and returns its table rows (the caller
 * defines them). Contents are the same on every call (a seeded generator, fixed mtimes):
 *
 * - /install/custom/netboot/rh/PROFILE.{pkglist,exlist,synclist,otherpkgs.pkglist,postinstall}
 *   (postinstall 0755); for `install` also /install/custom/install/rh/PROFILE.tmpl and the media
 *   directory /install/OSVERS/OSARCH;
 * - /install/postscripts/myscript1 (0755);
 * - netboot and statelite: rootimgdir /install/netboot/OSVERS/OSARCH/PROFILE with `kernel`
 *   (64 KiB x sizeScale of pseudo-random bytes), `initrd-stateless.gz` or `initrd-statelite.gz`
 *   (gzip), for netboot `rootimg.cpio.gz` (the tree below packed by `cpio -o -H newc`, gzipped),
 *   and the tree `rootimg/`:
 *     bin/bash (pseudo-random, 0755), bin/sh -> bash (symlink), etc/hostname, etc/passwd,
 *     etc/fstab, `etc/my file.conf` (space in the name), etc/ssh/ssh_host_rsa_key (0600),
 *     usr/bin/sudo (setuid, 04755), usr/bin/gzip + usr/bin/gunzip (one hard-linked file),
 *     usr/share/doc/big.txt (1 MiB x sizeScale of compressible text), tmp/ (01777), mnt/ (empty),
 *     var/log/messages.
 * Rows: osimage {imagename, profile, provmethod, osvers, osarch, imagetype, osname, synclists};
 * linuximage {imagename, pkglist, otherpkglist, exlist, postinstall, and rootimgdir (netboot,
 * statelite) or template and pkgdir (install)}.
 */
export async function buildSampleImage(opts: SampleImageOptions): Promise<SampleImage> {
  const { provmethod, profile = 'compute', osvers = 'rhels8.5.0', osarch = 'x86_64', sizeScale = 1 } = opts;
  const imagename = opts.name ?? `${osvers}-${osarch}-${provmethod}-${profile}`;
  const sandbox = new Sandbox(opts.root);
  const random = seededRandom(`${imagename}`);
  const write = (logical: string, data: string | Buffer, mode = 0o644): void => writeFile(sandbox.real(logical), data, mode);

  const listDir = '/install/custom/netboot/rh';
  const lists = {
    pkglist: `${listDir}/${profile}.pkglist`,
    exlist: `${listDir}/${profile}.exlist`,
    synclist: `${listDir}/${profile}.synclist`,
    otherpkglist: `${listDir}/${profile}.otherpkgs.pkglist`,
    postinstall: `${listDir}/${profile}.postinstall`,
  };
  write(lists.pkglist, 'bash\nopenssh-server\nkernel\nrsyslog\n');
  write(lists.exlist, './usr/share/man*\n./usr/share/locale*\n+./usr/share/locale/C*\n');
  write(lists.synclist, '/etc/hosts -> /etc/hosts\n/etc/resolv.conf -> /etc/resolv.conf\n');
  write(lists.otherpkglist, 'myapp\n');
  write(lists.postinstall, '#!/bin/sh\n# runs in the image root after genimage\necho "postinstall $1"\n', 0o755);
  write('/install/postscripts/myscript1', '#!/bin/sh\nlogger "myscript1 ran on $NODE"\n', 0o755);

  const osimage: Row = { imagename, profile, provmethod, osvers, osarch, imagetype: 'linux', osname: 'Linux', synclists: lists.synclist };
  const linuximage: Row = {
    imagename,
    pkglist: lists.pkglist,
    otherpkglist: lists.otherpkglist,
    exlist: lists.exlist,
    postinstall: lists.postinstall,
  };

  if (provmethod === 'install') {
    const template = `/install/custom/install/rh/${profile}.tmpl`;
    write(template, `# kickstart for ${imagename}\nlang en_US\nkeyboard us\n%packages\n#INCLUDE_DEFAULT_PKGLIST#\n%end\n`);
    fs.mkdirSync(sandbox.real(`/install/${osvers}/${osarch}`), { recursive: true });
    Object.assign(linuximage, { template, pkgdir: `/install/${osvers}/${osarch}` });
    return { imagename, osimage, linuximage };
  }

  const rootimgdir = `/install/netboot/${osvers}/${osarch}/${profile}`;
  linuximage.rootimgdir = rootimgdir;
  write(`${rootimgdir}/kernel`, random.bytes(64 * 1024 * sizeScale));
  const initrdText = `initrd of ${imagename}\n`.repeat(2000);
  write(`${rootimgdir}/initrd-${provmethod === 'netboot' ? 'stateless' : 'statelite'}.gz`, zlib.gzipSync(initrdText));
  const tree = sandbox.real(`${rootimgdir}/rootimg`);
  fs.rmSync(tree, { recursive: true, force: true }); // a rebuild starts from scratch
  writeRootTree(tree, random, sizeScale);
  if (provmethod === 'netboot') await packCpioGz(tree, sandbox.real(`${rootimgdir}/rootimg.cpio.gz`));
  return { imagename, osimage, linuximage };
}

function writeFile(file: string, data: string | Buffer, mode: number): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, data);
  fs.chmodSync(file, mode); // explicit: the umask must not change the sample
}

/** The root filesystem tree described in buildSampleImage's comment. */
function writeRootTree(tree: string, random: SeededRandom, sizeScale: number): void {
  const at = (rel: string): string => path.join(tree, rel);
  const file = (rel: string, data: string | Buffer, mode = 0o644): void => writeFile(at(rel), data, mode);
  const dir = (rel: string, mode = 0o755): void => {
    fs.mkdirSync(at(rel), { recursive: true });
    fs.chmodSync(at(rel), mode);
  };

  dir('.');
  file('bin/bash', random.bytes(48 * 1024), 0o755);
  fs.symlinkSync('bash', at('bin/sh'));
  file('etc/hostname', 'sample\n');
  file('etc/passwd', 'root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/:/sbin/nologin\n');
  file('etc/fstab', 'proc /proc proc defaults 0 0\nsysfs /sys sysfs defaults 0 0\n');
  file('etc/my file.conf', 'name = with a space\n');
  file('etc/ssh/ssh_host_rsa_key', `-----BEGIN OPENSSH PRIVATE KEY-----\n${random.bytes(300).toString('base64')}\n`, 0o600);
  file('usr/bin/sudo', random.bytes(8 * 1024), 0o4755);
  file('usr/bin/gzip', random.bytes(16 * 1024), 0o755);
  fs.linkSync(at('usr/bin/gzip'), at('usr/bin/gunzip'));
  file('usr/share/doc/big.txt', compressibleText(random, 1024 * 1024 * sizeScale));
  file('var/log/messages', 'Jan  2 03:04:05 sample kernel: Linux version 4.18.0\n');
  dir('tmp', 0o1777);
  dir('mnt');
  setMtimes(tree);
}

/** Sets SAMPLE_MTIME on every entry of the tree (symlinks themselves included). */
function setMtimes(dir: string): void {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) setMtimes(full);
    fs.lutimesSync(full, SAMPLE_MTIME, SAMPLE_MTIME);
  }
  fs.utimesSync(dir, SAMPLE_MTIME, SAMPLE_MTIME);
}

/** Entries of the tree as xCAT's packimage lists them (`find .`), sorted for a stable archive. */
function listTree(tree: string, rel = '.'): string[] {
  const names = [rel];
  for (const entry of fs.readdirSync(path.join(tree, rel), { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const child = `${rel}/${entry.name}`;
    if (entry.isDirectory()) names.push(...listTree(tree, child));
    else names.push(child);
  }
  return names;
}

/** `cpio -o -H newc` of the tree, gzip-compressed into `out`. */
async function packCpioGz(tree: string, out: string): Promise<void> {
  const cpio = spawn('cpio', ['-o', '-H', 'newc', '--quiet'], { cwd: tree, stdio: ['pipe', 'pipe', 'inherit'], env: childEnvironment() });
  const exited = new Promise<void>((resolve, reject) => {
    cpio.on('error', reject);
    cpio.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`cpio exited with ${code} packing ${tree}`))));
  });
  cpio.stdin.end(listTree(tree).join('\n') + '\n');
  await Promise.all([pipeline(cpio.stdout, zlib.createGzip(), fs.createWriteStream(out)), exited]);
}

interface SeededRandom {
  next(): number;
  bytes(n: number): Buffer;
}

/** mulberry32 seeded from a string: the same sample bytes on every run. */
function seededRandom(seed: string): SeededRandom {
  let state = 0;
  for (const ch of seed) state = (Math.imul(state, 31) + ch.charCodeAt(0)) | 0;
  const next = (): number => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return (t ^ (t >>> 14)) >>> 0;
  };
  return {
    next,
    bytes(n) {
      const buf = Buffer.alloc(n);
      for (let i = 0; i < n; i += 4) buf.writeUInt32LE(next(), Math.min(i, n - 4));
      return buf;
    },
  };
}

/** Log-like lines from a small vocabulary: compresses well, like real text in an image. */
function compressibleText(random: SeededRandom, size: number): Buffer {
  const words = ['kernel', 'systemd', 'started', 'network', 'eth0', 'link', 'up', 'mounted', 'filesystem', 'xcat', 'node', 'boot'];
  const lines: string[] = [];
  let length = 0;
  for (let i = 0; length < size; i++) {
    const count = 4 + (random.next() % 8);
    const line = `${String(i).padStart(7, '0')} ${Array.from({ length: count }, () => words[random.next() % words.length]).join(' ')}\n`;
    lines.push(line);
    length += line.length;
  }
  return Buffer.from(lines.join('')).subarray(0, size);
}
