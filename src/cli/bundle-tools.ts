/** `imgport verify BUNDLE` and `imgport inspect BUNDLE`: read a bundle through without importing it. */
import { UsageError } from '../core/errors.js';
import { checkManifest, manifestWarnings, missingManifest } from '../xcat/manifest-reader.js';
import { checkPlacement, compareChecksums, fileDigests, scanBundle, type BundleScan } from '../import/bundle-scan.js';
import { openBundleSource } from '../import/source.js';
import { stringOption, type CommandSpec, type ParsedValues } from './command.js';

const FORMAT_NAMES = { gzip: 'gzip', zstd: 'zstd', none: 'tar (uncompressed)' } as const;

async function scanFrom(values: ParsedValues, positionals: string[]): Promise<BundleScan> {
  const [bundle, ...rest] = positionals;
  if (!bundle) throw new UsageError('missing bundle file name');
  if (rest.length) throw new UsageError(`unexpected argument '${rest[0]}'`);
  return scanBundle(await openBundleSource(bundle, stringOption(values, 'remotehost')), bundle);
}

const say = (line: string) => void process.stdout.write(`${line}\n`);
const warn = (line: string) => void process.stderr.write(`${line}\n`);

export const verifyCommand: CommandSpec = {
  usage: `Usage: imgport verify BUNDLE [-R USER@HOST]
  Reads the whole bundle (BUNDLE '-' = standard input) and checks what an import checks before it
  writes: compression, tar structure, member names, manifest.xml, that every member has its place
  and every file and extra the manifest names is there, the root tree's cpio (statelite), and every
  member against SHA256SUMS. Exit 0 when all is well, else 1 naming the bad member.
  -R USER@HOST  read BUNDLE on that host over ssh;  -h, --help  this text
`,
  options: { remotehost: { type: 'string', short: 'R' } },
  async run(values, positionals) {
    const scan = await scanFrom(values, positionals);
    const member = `${scan.image ?? 'IMAGE'}/manifest.xml`;
    if (!scan.manifest) throw missingManifest(positionals[0], member);
    // What the import would refuse is not a good bundle either.
    checkManifest(scan.manifest, member);
    checkPlacement(scan, scan.manifest);
    manifestWarnings(scan.manifest, member).forEach(warn);
    if (!scan.sums) {
      say(`${scan.image}: readable, manifest OK; no SHA256SUMS, so the members' contents are not verified`);
      return 0;
    }
    compareChecksums(fileDigests(scan), scan.sums, scan.image!);
    for (const rel of scan.sums.keys()) say(`${scan.image}/${rel}: OK`);
    say(`${scan.image}: all ${scan.sums.size} members OK`);
    return 0;
  },
};

export const inspectCommand: CommandSpec = {
  usage: `Usage: imgport inspect BUNDLE [-R USER@HOST]
  Prints the image definition in the bundle's manifest, its members with sizes, and its format.
  -R USER@HOST  read BUNDLE on that host over ssh;  -h, --help  this text
`,
  options: { remotehost: { type: 'string', short: 'R' } },
  async run(values, positionals) {
    const scan = await scanFrom(values, positionals);
    say(`Format: ${FORMAT_NAMES[scan.format as keyof typeof FORMAT_NAMES]}, ${scan.sums ? 'with' : 'without'} checksums (SHA256SUMS)`);
    say(`Image: ${scan.image ?? '(none)'}`);
    const m = scan.manifest;
    if (m) {
      manifestWarnings(m, `${scan.image}/manifest.xml`).forEach(warn);
      for (const table of ['osimage', 'linuximage'] as const) {
        say(`${table}:`);
        for (const [k, v] of Object.entries(m[table]).sort()) say(`    ${k}=${v}`);
      }
      for (const key of ['kernel', 'ramdisk', 'rootimg', 'rootimgtree', 'litefile', 'media', 'postscripts', 'postbootscripts'] as const) {
        if (m[key]) say(`${key}: ${m[key]}`);
      }
      for (const e of m.extra) say(`extra: ${e.src} -> ${e.dest}`);
      for (const k of m.kit) say(`kit: ${k.kitname ?? ''} (${k.kitdir ?? ''})`);
    } else say('manifest.xml: missing');
    say('Members:');
    for (const member of scan.members) say(`  ${String(member.size).padStart(12)}  ${member.type === 'file' ? '' : `[${member.type}] `}${member.name || './'}`);
    return 0;
  },
};
