// The data sets: each is a sandbox root holding one xCAT image tree (a real Debian root
// filesystem or a seeded synthetic one), with a kernel, initrds, a pkglist and the table file
// defining a netboot and a statelite image on it. Built once and cached outside the repository.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { seededGenerator } from '../scripts/make-synthetic-tree.mjs';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export const IMAGE = { osvers: 'bookworm', osarch: 'x86_64', profile: 'compute' };
export const ROOTIMGDIR = `/install/netboot/${IMAGE.osvers}/${IMAGE.osarch}/${IMAGE.profile}`;
export const NETBOOT_IMAGE = `${IMAGE.osvers}-${IMAGE.osarch}-netboot-${IMAGE.profile}`;
export const STATELITE_IMAGE = `${IMAGE.osvers}-${IMAGE.osarch}-statelite-${IMAGE.profile}`;
export const PKGLIST = `/install/custom/netboot/debian/${IMAGE.profile}.pkglist`;
/** Sizes of the boot files, as on a real image: a compressed kernel and gzip'd initrds. */
const KERNEL_BYTES = 12 * 1024 * 1024;
const INITRD_SOURCE_BYTES = 48 * 1024 * 1024;

/** Every data set the benchmarks know, smallest first. */
export const DATASETS = [
  { name: 'rootfs', label: 'Debian bookworm minbase', build: (tree) => run('bash', [path.join(repo, 'scripts/make-rootfs.sh'), tree]) },
  ...['200M', '1G', '2G'].map((size) => ({
    name: `synthetic-${size}`,
    label: `synthetic ${size}`,
    build: (tree) => run(process.execPath, [path.join(repo, 'scripts/make-synthetic-tree.mjs'), '--size', size, '--seed', '1', tree]),
  })),
];

function run(program, args) {
  const result = spawnSync(program, args, { stdio: ['ignore', 'inherit', 'inherit'] });
  if (result.status !== 0) throw new Error(`${program} ${args.join(' ')} failed (exit ${result.status ?? result.signal})`);
}

/** The real path of a logical path in a data set's root. */
export function real(root, logical) {
  return path.join(root, logical);
}

/** Files, bytes and entries of a tree (regular file sizes; hard-linked data counted once). */
export function treeSize(dir) {
  const seen = new Set();
  let bytes = 0;
  let entries = 0;
  const walk = (d) => {
    for (const entry of fs.readdirSync(d, { withFileTypes: true })) {
      entries++;
      const full = path.join(d, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.isFile()) {
        const st = fs.lstatSync(full);
        if (st.nlink > 1 && seen.has(st.ino)) continue;
        seen.add(st.ino);
        bytes += st.size;
      }
    }
  };
  walk(dir);
  return { bytes, entries };
}

function writeOnce(file, makeData) {
  if (fs.existsSync(file)) return;
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(`${file}.partial`, makeData());
  fs.renameSync(`${file}.partial`, file);
}

/** Kernel, initrds, pkglist and table file around the tree, unless already there. */
function furnish(root) {
  const dir = real(root, ROOTIMGDIR);
  const random = seededGenerator(7);
  writeOnce(path.join(dir, 'kernel'), () => random.fill(Buffer.alloc(KERNEL_BYTES)));
  const initrd = () => {
    const source = Buffer.alloc(INITRD_SOURCE_BYTES);
    for (let at = 0; at < source.length; at += 1 << 20) random.fill(source.subarray(at, at + (1 << 20)), at % (3 << 20) ? 0x0f0f0f0f : 0xffffffff);
    return zlib.gzipSync(source, { level: 1 });
  };
  writeOnce(path.join(dir, 'initrd-stateless.gz'), initrd);
  writeOnce(path.join(dir, 'initrd-statelite.gz'), initrd);
  writeOnce(real(root, PKGLIST), () => 'bash\nopenssh-server\nlinux-image-amd64\nrsyslog\n');
  const common = { profile: IMAGE.profile, osvers: IMAGE.osvers, osarch: IMAGE.osarch, imagetype: 'linux', osname: 'Linux' };
  const tables = {
    osimage: [
      { imagename: NETBOOT_IMAGE, provmethod: 'netboot', ...common },
      { imagename: STATELITE_IMAGE, provmethod: 'statelite', ...common },
    ],
    linuximage: [NETBOOT_IMAGE, STATELITE_IMAGE].map((imagename) => ({ imagename, pkglist: PKGLIST, rootimgdir: ROOTIMGDIR })),
  };
  writeOnce(real(root, '/var/lib/imgport/tables.json'), () => JSON.stringify(tables, null, 2) + '\n');
}

/**
 * The data set NAME under CACHE, built when missing. Resolves to its root, tree, image names
 * and sizes (the tree's are measured once and cached next to it).
 */
export function prepareDataset(cache, name) {
  const spec = DATASETS.find((d) => d.name === name);
  if (!spec) throw new Error(`unknown data set '${name}' (known: ${DATASETS.map((d) => d.name).join(', ')})`);
  const root = path.join(cache, 'images', name);
  const tree = real(root, `${ROOTIMGDIR}/rootimg`);
  if (!fs.existsSync(tree)) spec.build(tree);
  furnish(root);
  const sizeFile = path.join(cache, 'images', `${name}.size.json`);
  if (!fs.existsSync(sizeFile)) fs.writeFileSync(sizeFile, JSON.stringify(treeSize(tree)));
  const { bytes, entries } = JSON.parse(fs.readFileSync(sizeFile, 'utf8'));
  const bootBytes = ['kernel', 'initrd-statelite.gz'].reduce((sum, f) => sum + fs.statSync(path.join(real(root, ROOTIMGDIR), f)).size, 0);
  return { name, label: spec.label, root, tree, rootimgdir: real(root, ROOTIMGDIR), treeBytes: bytes, entries, bootBytes };
}

/** True when the data set is already built (no build needed to use it). */
export function isCached(cache, name) {
  return fs.existsSync(real(path.join(cache, 'images', name), `${ROOTIMGDIR}/rootimg`));
}
