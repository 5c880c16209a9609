#!/usr/bin/env node
// imgport demo: builds a sample image in a temporary sandbox root, defines it and shows it.
// Uses the built code and commands (npm run build first; npm run demo does). Set KEEP_DEMO=1 to keep the sandbox.
// Each step is a section; later steps (export, import) go at the end as new sections.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const dist = path.join(here, '..', 'dist', 'src');
const commands = path.join(here, '..', 'dist', 'bin');
const { buildSampleImage } = await import(path.join(dist, 'sample', 'sample-image.js'));
const { formatStanzas } = await import(path.join(dist, 'tables', 'stanza.js'));

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'imgport-demo-'));

function section(title) {
  process.stdout.write(`\n== ${title}\n`);
}

/** Runs the command TOOL (imgport, imgexport, ...) with ARGS --root ROOT, echoing it; exits the demo if it fails. */
function runTool(tool, args, input) {
  const argv = [...args, '--root', root];
  process.stdout.write(`$ ${tool} ${argv.join(' ')}\n`);
  const run = spawnSync(process.execPath, [path.join(commands, `${tool}.js`), ...argv], { input, stdio: ['pipe', 'inherit', 'inherit'] });
  if (run.status !== 0) {
    process.stderr.write(`demo: ${tool} ${args[0]} failed (exit ${run.status})\n`);
    process.exit(1);
  }
}

const imgport = (args, input) => runTool('imgport', args, input);

try {
  section(`build a sample netboot image under ${root}`);
  const image = await buildSampleImage({ root, provmethod: 'netboot' });
  process.stdout.write(`image ${image.imagename}, rootimgdir ${image.linuximage.rootimgdir}\n`);

  section('define the image');
  const { imagename } = image;
  // The sample rows use no renamed column (linuximage.comments), so columns are attributes as they are.
  const attributes = { ...image.linuximage, ...image.osimage };
  delete attributes.imagename;
  imgport(['mkdef', '-z'], formatStanzas([{ name: imagename, type: 'osimage', attributes }]));

  section('list the osimage definitions');
  imgport(['lsdef', '-t', 'osimage']);

  section('show the image');
  imgport(['lsdef', '-t', 'osimage', '-o', imagename, '-l']);

  section('export the image to a bundle');
  const bundle = path.join(root, 'bundles', `${imagename}.tgz`);
  fs.mkdirSync(path.dirname(bundle));
  runTool('imgexport', [imagename, bundle, '-v']);

  section("the bundle's members (manifest.xml first, SHA256SUMS last)");
  process.stdout.write(`$ tar -tvzf ${bundle}\n`);
  spawnSync('tar', ['-tvzf', bundle], { stdio: 'inherit' });

  section('verify and inspect the bundle without importing it');
  imgport(['verify', bundle]);
  imgport(['inspect', bundle]);

  section('import it back as a copy under a new profile (xCAT\'s -f), after a dry run');
  runTool('imgimport', [bundle, '-f', 'compute2', '--dry-run']);
  runTool('imgimport', [bundle, '-f', 'compute2']);
  imgport(['lsdef', '-t', 'osimage']);

  section('pack the original root image for diskless boot: gzip, then zstd (which replaces the gzip one only once complete)');
  runTool('packimage', [imagename]);
  runTool('packimage', ['-c', 'zstd', imagename]);
  const rootimgdir = path.join(root, image.linuximage.rootimgdir);
  for (const name of fs.readdirSync(rootimgdir).sort()) {
    const stat = fs.statSync(path.join(rootimgdir, name));
    process.stdout.write(`${stat.isDirectory() ? 'dir ' : String(stat.size).padStart(8)}  ${image.linuximage.rootimgdir}/${name}\n`);
  }
} finally {
  if (process.env.KEEP_DEMO) process.stdout.write(`\nsandbox kept: ${root}\n`);
  else fs.rmSync(root, { recursive: true, force: true });
}
