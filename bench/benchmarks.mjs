// What is measured: each benchmark runs imgport ("ours") and the programs a user would run
// instead ("peers") on the same data set, with the same thread count.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { NETBOOT_IMAGE, STATELITE_IMAGE } from './datasets.mjs';

const cli = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'bin');
// Run as an installed command is: the script itself, so the Node options of its #! line apply.
const ours = (command, ...args) => [path.join(cli, `${command}.js`), ...args];

// Peer pipelines: fixed script texts, every path and number passed as a positional argument.
const PACK_CPIO_PIGZ = 'set -o pipefail; cd "$1" && find . -xdev -print0 | cpio -H newc -o -0 --quiet | pigz -p "$2" > "$3"';
const PACK_TAR_ZSTD = 'set -o pipefail; cd "$1" && tar -cf - . | zstd -q -T"$2" > "$3"';
/** xCAT's imgexport, step for step: staging copy, statelite tree as a gzip'd cpio, tar of the staging directory. */
const EXPORT_STAGED = `set -e -o pipefail
outer=$1 inner=$2 threads=$3 bundle=$4 stage=$5 image=$6 rootimgdir=$7; shift 7
squeeze() { case $1 in gzip) gzip -c ;; pigz) pigz -p "$threads" -c ;; zstd) zstd -q -T"$threads" -c ;; esac; }
mkdir -p "$stage/$image"
cp -a "$@" "$stage/$image/"
if [ "$inner" != none ]; then (cd "$rootimgdir" && find rootimg | cpio -H newc -o --quiet | squeeze "$inner") > "$stage/$image/rootimgtree.gz"; fi
cd "$stage"
case $outer in
  tar-czf) tar czf "$bundle" . ;;
  tar-I-pigz) tar -I pigz -cf "$bundle" . ;;
  *) tar -cf - . | squeeze "$outer" > "$bundle" ;;
esac
cd / && rm -rf "$stage"`;
/** xCAT's imgimport: unpack the whole bundle, move the files in place, unpack the statelite tree. */
const IMPORT_UNPACKED = `set -e -o pipefail
bundle=$1 stage=$2 dest=$3
mkdir -p "$stage" "$dest"
tar zxf "$bundle" -C "$stage"
for f in "$stage"/*/*; do mv "$f" "$dest/"; done
if [ -f "$dest/rootimgtree.gz" ]; then cd "$dest"; zcat rootimgtree.gz | cpio -idum --quiet; rm rootimgtree.gz; fi
rm -rf "$stage"`;

const bash = (script, ...args) => ['bash', '-c', script, 'bench-peer', ...args.map(String)];

/** The files xCAT's export copies into its staging directory (the manifest comes from the bench). */
function stagedFiles(ctx, provmethod) {
  const dir = ctx.ds.rootimgdir;
  const boot = ['kernel', provmethod === 'netboot' ? 'initrd-stateless.gz' : 'initrd-statelite.gz'].map((f) => path.join(dir, f));
  const packed = provmethod === 'netboot' ? [path.join(dir, 'rootimg.cpio.gz')] : [ctx.litefile];
  return [...boot, ...packed, ctx.pkglist, ctx.manifests[provmethod]];
}

/** xCAT's export as a staged shell pipeline; OUTER and INNER pick the compressors (tar-czf, tar-I-pigz, gzip, pigz, zstd). */
export function exportPeer(ctx, provmethod, name, outer, inner) {
  const image = provmethod === 'netboot' ? NETBOOT_IMAGE : STATELITE_IMAGE;
  const bundle = path.join(ctx.work, `peer-${image}.bundle`);
  return {
    name,
    argv: bash(EXPORT_STAGED, outer, provmethod === 'netboot' ? 'none' : inner, ctx.threads, bundle, path.join(ctx.work, 'stage'), image, ctx.ds.rootimgdir, ...stagedFiles(ctx, provmethod)),
    output: bundle,
  };
}

function exportOurs(ctx, provmethod, format) {
  const image = provmethod === 'netboot' ? NETBOOT_IMAGE : STATELITE_IMAGE;
  const bundle = path.join(ctx.work, `${image}.${format}`);
  return { name: `imgexport --format ${format}`, ours: true, argv: ours('imgexport', image, bundle, '--format', format, '-j', ctx.threads, '--no-progress', '--root', ctx.ds.root), output: bundle };
}

const fileSize = (file) => fs.statSync(file).size;
const packedRootimgBytes = (ds) => fileSize(path.join(ds.rootimgdir, 'rootimg.cpio.gz'));
/** Bytes an export reads (and an import writes): the boot files and the tree or the packed root image. */
const netbootBytes = (ds) => ds.bootBytes + packedRootimgBytes(ds);
const stateliteBytes = (ds) => ds.bootBytes + ds.treeBytes;

/**
 * Every benchmark: `threads` are the thread counts it runs at (N = the cores), `tools(ctx)`
 * its runs for one data set and thread count, ours first. `needs` names what must exist before.
 */
export function benchmarks(cores) {
  const both = cores > 1 ? [cores, 1] : [1];
  return [
    {
      id: 'pack-zstd',
      title: 'packimage -m cpio -c zstd',
      threads: both,
      inputBytes: (ds) => ds.treeBytes,
      tools: (ctx) => [
        { name: 'packimage -c zstd', short: 'imgport cpio.zst', ours: true, argv: ours('packimage', '-m', 'cpio', '-c', 'zstd', '-j', ctx.threads, '--no-progress', '--root', ctx.ds.root, NETBOOT_IMAGE), output: path.join(ctx.ds.rootimgdir, 'rootimg.cpio.zst') },
        { name: `tar -cf - . | zstd -T${ctx.threads}`, short: 'tar | zstd', argv: bash(PACK_TAR_ZSTD, ctx.ds.tree, ctx.threads, path.join(ctx.work, 'rootimg.tar.zst')), output: path.join(ctx.work, 'rootimg.tar.zst') },
      ],
    },
    {
      // After pack-zstd: packing cpio.gz last leaves the rootimg.cpio.gz the netboot export bundles.
      id: 'pack-gzip',
      title: 'packimage -m cpio -c gzip',
      threads: both,
      inputBytes: (ds) => ds.treeBytes,
      tools: (ctx) => [
        { name: 'packimage -c gzip', short: 'imgport cpio.gz', ours: true, argv: ours('packimage', '-m', 'cpio', '-c', 'gzip', '-j', ctx.threads, '--no-progress', '--root', ctx.ds.root, NETBOOT_IMAGE), output: path.join(ctx.ds.rootimgdir, 'rootimg.cpio.gz') },
        { name: `find . -xdev -print0 | cpio -H newc -o -0 | pigz -p ${ctx.threads}`, short: 'find | cpio | pigz', argv: bash(PACK_CPIO_PIGZ, ctx.ds.tree, ctx.threads, path.join(ctx.work, 'rootimg.cpio.gz')), output: path.join(ctx.work, 'rootimg.cpio.gz') },
      ],
    },
    ...['netboot', 'statelite'].map((provmethod) => ({
      id: `export-${provmethod}-gzip`,
      title: `imgexport, ${provmethod} image, gzip bundle (.tgz)`,
      threads: both,
      needs: provmethod === 'netboot' ? ['packed-rootimg'] : [],
      inputBytes: provmethod === 'netboot' ? netbootBytes : stateliteBytes,
      tools: (ctx) => [
        exportOurs(ctx, provmethod, 'tgz'),
        exportPeer(ctx, provmethod, 'xCAT: cp -a staging, cpio | gzip, tar czf', 'tar-czf', 'gzip'),
        exportPeer(ctx, provmethod, `xCAT with pigz -p ${ctx.threads}`, 'pigz', 'pigz'),
        ...(ctx.threads === cores ? [exportPeer(ctx, provmethod, 'staging, cpio | pigz, tar -I pigz', 'tar-I-pigz', 'pigz')] : []),
      ],
    })),
    {
      id: 'export-statelite-zstd',
      title: 'imgexport, statelite image, zstd bundle (.tzst)',
      threads: [cores],
      inputBytes: stateliteBytes,
      tools: (ctx) => [exportOurs(ctx, 'statelite', 'tzst'), exportPeer(ctx, 'statelite', `staging, cpio | pigz, tar | zstd -T${ctx.threads}`, 'zstd', 'pigz')],
    },
    ...['netboot', 'statelite'].map((provmethod) => ({
      id: `import-${provmethod}`,
      title: `imgimport, ${provmethod} bundle (.tgz)`,
      threads: [cores],
      needs: [`bundle-${provmethod}`],
      inputBytes: provmethod === 'netboot' ? netbootBytes : stateliteBytes,
      tools: (ctx) => [
        { name: 'imgimport', ours: true, argv: ours('imgimport', ctx.bundles[provmethod], '--root', path.join(ctx.work, 'import-root')) },
        {
          name: provmethod === 'netboot' ? 'tar zxf, mv' : 'tar zxf, mv, zcat | cpio -idum',
          argv: bash(IMPORT_UNPACKED, ctx.bundles[provmethod], path.join(ctx.work, 'stage'), path.join(ctx.work, 'import-dest')),
        },
      ],
    })),
  ];
}

/** The manifest a staged peer export bundles: the same fields imgexport writes for the image. */
export function peerManifest(provmethod, pkglist, rootimgdir) {
  const image = provmethod === 'netboot' ? NETBOOT_IMAGE : STATELITE_IMAGE;
  const files = provmethod === 'netboot'
    ? `  <kernel>${rootimgdir}/kernel</kernel>\n  <ramdisk>${rootimgdir}/initrd-stateless.gz</ramdisk>\n  <rootimg>${rootimgdir}/rootimg.cpio.gz</rootimg>\n`
    : `  <kernel>${rootimgdir}/kernel</kernel>\n  <litefile>${rootimgdir}/litefile.csv</litefile>\n  <ramdisk>${rootimgdir}/initrd-statelite.gz</ramdisk>\n  <rootimgtree>${rootimgdir}/rootimgtree.gz</rootimgtree>\n`;
  return `<?xml version="1.0"?>
<xcatimage>
${files}  <linuximage>
    <imagename>${image}</imagename>
    <pkglist>${pkglist}</pkglist>
    <rootimgdir>${rootimgdir}</rootimgdir>
  </linuximage>
  <osimage>
    <imagename>${image}</imagename>
    <osarch>x86_64</osarch>
    <osvers>bookworm</osvers>
    <profile>compute</profile>
    <provmethod>${provmethod}</provmethod>
  </osimage>
</xcatimage>
`;
}
