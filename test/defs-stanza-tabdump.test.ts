import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { defsSandbox } from './helpers/defs-sandbox.js';

const sandbox = defsSandbox;

t.test('mkdef -z and chdef -z read stanzas; lsdef -z writes them back', async (t) => {
  const { imgport } = sandbox(t);
  const stanzas =
    '# <xCAT data object stanza file>\n\nimg1:\n    objtype=osimage\n    osarch=x86_64\n    profile=compute\n    usercomment=a = b\n\n' +
    'node1:\n    objtype=node\n    groups=all\n\n';
  t.same(imgport(['mkdef', '-z'], stanzas), { code: 0, stdout: '2 object definitions have been created or modified.\n', stderr: '' });
  t.equal(imgport(['lsdef', '-t', 'osimage', '-o', 'img1', '-z']).stdout, stanzas.split('node1:')[0]);
  imgport(['chdef', '-z'], 'img1:\n    objtype=osimage\n    osarch=\n    provmethod=netboot\n');
  t.equal(imgport(['lsdef', '-t', 'osimage', '-o', 'img1', '-z']).stdout,
    '# <xCAT data object stanza file>\n\nimg1:\n    objtype=osimage\n    profile=compute\n    provmethod=netboot\n    usercomment=a = b\n\n');
  const bad = imgport(['mkdef', '-z'], 'x:\n    objtype=osimage\n    colour=red\n');
  t.equal(bad.code, 1);
  t.match(bad.stderr, /^Error: standard input line 3: unknown attribute 'colour'/);
});

t.test('mkdef -u fills the osimage as xCAT does', async (t) => {
  const { imgport, root } = sandbox(t);
  const put = (logical: string) => {
    fs.mkdirSync(path.dirname(path.join(root, logical)), { recursive: true });
    fs.writeFileSync(path.join(root, logical), 'x\n');
  };
  put('/install/custom/netboot/rh/compute.pkglist');
  put('/opt/xcat/share/xcat/install/rh/compute.rhels8.x86_64.tmpl');
  put('/opt/xcat/share/xcat/install/rh/compute.tmpl');
  put('/opt/xcat/share/xcat/install/rhels8/compute.tmpl');

  t.equal(imgport(['mkdef', '-t', 'osimage', '-u', 'profile=compute', 'provmethod=netboot', 'osvers=rhels8.5.0', 'osarch=ppc64le']).code, 0);
  t.equal(
    imgport(['lsdef', '-t', 'osimage', '-o', 'rhels8.5.0-ppc64le-netboot-compute']).stdout,
    'Object name: rhels8.5.0-ppc64le-netboot-compute\n    imagetype=linux\n    osarch=ppc64le\n    osvers=rhels8.5.0\n' +
      '    pkglist=/install/custom/netboot/rh/compute.pkglist\n    profile=compute\n    provmethod=netboot\n',
  );
  const machine = ({ x64: 'x86_64', arm64: 'aarch64', ppc64: 'ppc64le' } as Record<string, string>)[process.arch] ?? process.arch;
  t.equal(imgport(['mkdef', '-t', 'osimage', '-u', 'profile=compute', 'provmethod=install', 'osvers=rhels8.5.0']).code, 0);
  t.equal(
    imgport(['lsdef', '-t', 'osimage', '-o', `rhels8.5.0-${machine}-install-compute`, '-i', 'template,osarch']).stdout,
    `Object name: rhels8.5.0-${machine}-install-compute\n    osarch=${machine}\n    template=/opt/xcat/share/xcat/install/rhels8/compute.tmpl\n`,
  );
  t.equal(imgport(['mkdef', '-t', 'osimage', '-o', 'named', '-u', 'profile=compute', 'provmethod=statelite', 'osvers=rhels8.5.0', 'pkglist=/mine']).code, 0);
  t.equal(imgport(['lsdef', '-t', 'osimage', '-o', 'named', '-i', 'pkglist,imagetype']).stdout, 'Object name: named\n    imagetype=linux\n    pkglist=/mine\n');
  const incomplete = imgport(['mkdef', '-t', 'osimage', '-u', 'profile=compute']);
  t.equal(incomplete.code, 1);
  t.match(incomplete.stderr, /^Error: -u needs profile=, osvers= and provmethod=/);
});

t.test('tabdump: xCAT CSV', async (t) => {
  const { imgport, db } = sandbox(t);
  fs.mkdirSync(path.dirname(db), { recursive: true });
  fs.writeFileSync(db, JSON.stringify({ litefile: [
    { image: 'ALL', file: '/etc/adjtime', options: 'tmpfs' },
    { image: 'img', file: '/etc/ssh/', options: '', comments: 'say "x", ok' },
  ] }));
  t.same(imgport(['tabdump', 'litefile']), {
    code: 0,
    stdout: '#image,file,options,comments,disable\n"ALL","/etc/adjtime","tmpfs",,\n"img","/etc/ssh/",,"say ""x"", ok",\n',
    stderr: '',
  });
  t.equal(imgport(['tabdump', 'site']).stdout, '#key,value,comments,disable\n');
  const bad = imgport(['tabdump', 'nodes']);
  t.equal(bad.code, 1);
  t.match(bad.stderr, /^Error: unknown table 'nodes' \(known tables: osimage, linuximage, kit, kitrepo, kitcomponent, litefile, postscripts, nodelist, site\)/);
});

t.test('-h, unknown options, the table file from --db and IMGPORT_DB', async (t) => {
  const { imgport, imgportAsync, root } = sandbox(t);
  await Promise.all(
    ['mkdef', 'chdef', 'rmdef', 'lsdef', 'tabdump'].map(async (command) => {
      const help = await imgportAsync([command, '-h']);
      t.equal(help.code, 0);
      t.match(help.stdout, new RegExp(`^Usage: imgport ${command}`));
      const bad = await imgportAsync([command, '--colour']);
      t.equal(bad.code, 1);
      t.match(bad.stderr, new RegExp(`^Error: Unknown option '--colour'\\nUsage: imgport ${command}`));
    }),
  );
  const other = path.join(root, 'elsewhere.json');
  imgport(['mkdef', '-t', 'node', '-o', 'n1', '--db', other]);
  t.equal(imgport(['lsdef', '--db', other]).stdout, 'n1  (node)\n');
  t.equal(imgport(['lsdef'], undefined, { IMGPORT_DB: other }).stdout, 'n1  (node)\n');
  t.equal(imgport(['lsdef']).stdout, 'Could not find any object definitions to display.\n');
});
