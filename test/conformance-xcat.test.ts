/**
 * Each case of the xCAT fixtures imported into a sandbox prepared as their README says must leave
 * exactly xCAT's tables_after and files_after, except the two xCAT defects the README names,
 * where the correct result is required (kit imported; /install/postscripts a directory).
 */
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { bundleFiles, FIXTURES, makeSandbox, normalTables, type FileInfo } from './helpers/import-sandbox.js';

interface Expected {
  bundle: string;
  imgimport_args: string[];
  tables_after: Record<string, Record<string, string>[]>;
  files_after: Record<string, FileInfo>;
  xcat_output: string[];
}

const load = (name: string): Expected => JSON.parse(fs.readFileSync(path.join(FIXTURES, `${name}.expected.json`), 'utf8'));
const dir = (mode = '0o755'): FileInfo => ({ type: 'dir', mode });

/** /install/postscripts as a directory holding the extras (xCAT made it a file holding the last one). */
function fixPostscripts(t: Tap, expected: Expected, extras: string[]): void {
  const files = expected.files_after;
  const xcatFile = files['/install/postscripts'];
  const inBundle = bundleFiles(path.join(FIXTURES, expected.bundle));
  const image = [...inBundle.keys()].find((k) => !k.includes('/'))!;
  files['/install/postscripts'] = dir();
  for (const name of extras) {
    const member = inBundle.get(`${image}/extra/${name}`)!;
    files[`/install/postscripts/${name}`] = { type: 'file', mode: member.mode, size: member.size, sha256: member.sha256 };
  }
  // The last extra xCAT copied is the content its /install/postscripts file ended with.
  t.equal(files[`/install/postscripts/${extras.at(-1)}`].sha256, xcatFile.sha256, 'fixture and bundle agree');
}

/** The kit case as a correct import leaves it (xCAT's own import died on it). */
function fixKit(_t: Tap, expected: Expected): void {
  const source = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'source-tables.json'), 'utf8'));
  expected.tables_after.kit = source.kit;
  expected.tables_after.kitrepo = source.kitrepo;
  expected.tables_after.kitcomponent = source.kitcomponent;
  const inBundle = bundleFiles(path.join(FIXTURES, expected.bundle));
  const image = 'rhels8.5.0-x86_64-netboot-service';
  const files = expected.files_after;
  const file = (member: string): FileInfo => {
    const m = inBundle.get(`${image}/${member}`)!;
    return { type: 'file', mode: m.mode, size: m.size, sha256: m.sha256 };
  };
  for (const d of ['/install/netboot', '/install/netboot/rhels8.5.0', '/install/netboot/rhels8.5.0/x86_64', '/install/netboot/rhels8.5.0/x86_64/compute',
    '/opt/xcat/share/xcat/netboot', '/opt/xcat/share/xcat/netboot/rh', '/install/kits', '/install/postscripts']) files[d] = dir();
  for (const f of ['kernel', 'initrd-stateless.gz', 'rootimg.cpio.gz']) files[`/install/netboot/rhels8.5.0/x86_64/compute/${f}`] = file(f);
  files['/opt/xcat/share/xcat/netboot/rh/service.rhels8.5.0.x86_64.pkglist'] = file('service.rhels8.5.0.x86_64.pkglist');
  for (const [member, info] of inBundle) {
    if (!member.startsWith(`${image}/mykit-1.0-1`)) continue;
    files[`/install/kits/${member.slice(image.length + 1)}`] = info.type === 'dir' ? dir(info.mode) : file(member.slice(image.length + 1));
  }
  // xCAT's copyPostscripts makes each postscript in other_files executable, then copies it.
  const postscript = { ...file('mykit-1.0-1/other_files/mykit-post.sh'), mode: '0o755' };
  files['/install/kits/mykit-1.0-1/other_files/mykit-post.sh'] = postscript;
  files['/install/postscripts/mykit-post.sh'] = postscript;
  // xCAT's create_symlink: OTHERPKGDIR/KITREPONAME -> kitrepodir, for otherpkgs to find the kit's packages.
  for (const d of ['/install/post', '/install/post/otherpkgs', '/install/post/otherpkgs/rhels8.5.0', '/install/post/otherpkgs/rhels8.5.0/x86_64']) files[d] = dir();
  files['/install/post/otherpkgs/rhels8.5.0/x86_64/mykit-1.0-1-rhels-8-x86_64'] = { type: 'symlink', target: '/install/kits/mykit-1.0-1/repos/mykit-1.0-1-rhels-8-x86_64' };
}

type Tap = { equal(a: unknown, b: unknown, message?: string): void };

const FIXES: Record<string, (t: Tap, e: Expected) => void> = {
  statelite: (t, e) => fixPostscripts(t, e, ['myscript1']),
  'statelite-f-p': (t, e) => fixPostscripts(t, e, ['myscript1']),
  netboot: (t, e) => fixPostscripts(t, e, ['myscript1', 'myscript2']),
  'netboot-f': (t, e) => fixPostscripts(t, e, ['myscript1', 'myscript2']),
  install: () => undefined,
  kit: fixKit,
};

for (const [name, fix] of Object.entries(FIXES)) {
  t.test(`xCAT fixture ${name}`, async (t) => {
    const expected = load(name);
    fix(t, expected);
    const sandbox = makeSandbox(t);
    const result = sandbox.run([sandbox.bundle(expected.bundle), ...expected.imgimport_args]);
    t.equal(result.code, 0, result.stderr);
    t.same(normalTables(sandbox.tables()), normalTables(expected.tables_after), 'tables_after');
    t.same(sandbox.files(), expected.files_after, 'files_after');
    const lastLine = expected.xcat_output.at(-1)!;
    if (lastLine.startsWith('Successfully')) t.equal(result.stdout.trim().split('\n').at(-1), lastLine);
    t.match(result.stdout, /^Unbundling image\.\.\.\n/);
    t.notOk(fs.readdirSync(path.join(sandbox.root, 'install')).some((n) => n.startsWith('.imgport')), 'no staging left');
    t.same(fs.readdirSync(path.join(sandbox.root, 'var/lib/imgport/imports')), [], 'no lock or journal left');
  });
}
