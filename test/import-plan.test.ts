/** The pure planning of an import: -f mapping, routes, destination checks, table rows. */
import t from 'tap';
import { Sandbox } from '../src/core/sandbox.js';
import { applyImportToTables, rowsHeld, withoutDefaults, writeRowsAgain } from '../src/import/table-changes.js';
import { litefileChanges } from '../src/xcat/litefile.js';
import type { Tables } from '../src/tables/types.js';
import { expandNames, expandNoderange } from '../src/tables/noderange.js';
import { assertDestinationsAllowed, allowedRoots, kitFileMode, kitRepositoryLinks, planImport, relocateListFile, renamedForProfile, routeMember } from '../src/import/plan.js';
import { parseMemberName } from '../src/import/member-names.js';
import { emptyManifest } from '../src/xcat/manifest.js';
import { remoteReadArgs } from '../src/import/source.js';
import { shellQuote } from '../src/core/ssh.js';

const loc = { sandbox: new Sandbox(), installdir: '/install', xcatroot: '/opt/xcat' };

function netbootManifest() {
  const m = emptyManifest(
    { imagename: 'img', profile: 'compute', provmethod: 'netboot', osvers: 'rhels8.5.0', osarch: 'x86_64', synclists: '/install/custom/netboot/rh/compute.synclist' },
    { imagename: 'img', pkglist: '/opt/xcat/share/xcat/netboot/rh/compute.pkglist,/install/custom/extra.pkglist', rootimgdir: '/install/netboot/rhels8.5.0/x86_64/compute' },
  );
  m.kernel = '/install/netboot/rhels8.5.0/x86_64/compute/kernel';
  m.ramdisk = '/install/netboot/rhels8.5.0/x86_64/compute/initrd-stateless.gz';
  m.rootimg = '/install/netboot/rhels8.5.0/x86_64/compute/rootimg.cpio.gz';
  m.extra = [{ src: '/install/postscripts/a', dest: '/install/postscripts' }, { src: '/install/mydir', dest: '/install/custom/mydir' }];
  m.kit = [{ kitname: 'k-1', kitdir: '/install/kits/old-name' }];
  return m;
}

t.test('-f renames the image, moves image files and relocates share lists', async (t) => {
  const plan = planImport(netbootManifest(), 'img', loc, 'new');
  t.equal(plan.imagename, 'rhels8.5.0-x86_64-netboot-new');
  t.equal(plan.linuximage.rootimgdir, '/install/netboot/rhels8.5.0/x86_64/new');
  t.same(plan.files.get('kernel'), ['/install/netboot/rhels8.5.0/x86_64/new/kernel']);
  t.equal(plan.linuximage.pkglist, '/install/custom/netboot/rh/new.pkglist,/install/custom/new.extra.pkglist');
  t.equal(plan.osimage.synclists, '/install/custom/netboot/rh/new.synclist');
  t.same(plan.files.get('compute.pkglist'), ['/install/custom/netboot/rh/new.pkglist']);
  t.same(plan.requiredMembers, ['kernel', 'initrd-stateless.gz', 'rootimg.cpio.gz']);
  t.same(plan.kits, [{ name: 'k-1', dest: '/install/kits/k-1', bundleNames: ['k-1', 'old-name'] }]);
  t.equal(renamedForProfile('service.rhels8.pkglist', 'service', 'x'), 'x.rhels8.pkglist');
  t.equal(relocateListFile('/opt/xcat/share/xcat/install/sles/c.tmpl', { oldProfile: 'c', newProfile: 'd', osvers: 'sles15', provmethod: 'install', locations: loc }), '/install/custom/install/sles/d.tmpl');
  // By provmethod, not by where it came from: xCAT's stock netboot images list share/xcat/install files.
  t.equal(relocateListFile('/opt/xcat/share/xcat/install/rh/service.rhels8.x86_64.otherpkgs.pkglist', { oldProfile: 'service', newProfile: 's2', osvers: 'rhels8.5.0', provmethod: 'netboot', locations: loc }), '/install/custom/netboot/rh/s2.rhels8.x86_64.otherpkgs.pkglist');
  t.equal(relocateListFile('/opt/xcat/share/xcat/netboot/rh/c.pkglist', { oldProfile: 'c', newProfile: 'd', osvers: 'rhels8.5.0', provmethod: 'install', locations: loc }), '/install/custom/install/rh/d.pkglist');
  t.throws(() => planImport(netbootManifest(), 'img', loc, '../x'), /not a plain name/);
});

t.test('routes: files, extras (file and directory), kits with other_files and plugins, unknown', async (t) => {
  const plan = planImport(netbootManifest(), 'img', loc);
  t.same(routeMember(plan, 'kernel', false), { kind: 'file', dests: ['/install/netboot/rhels8.5.0/x86_64/compute/kernel'] });
  t.same(routeMember(plan, 'extra/a', false), { kind: 'extra', dest: '/install/postscripts/a', root: '/install/postscripts', fromDirectory: false, copies: [] });
  t.same(routeMember(plan, 'extra/install', true), { kind: 'structure' });
  t.same(routeMember(plan, 'extra/install/mydir/sub/b', false), { kind: 'extra', dest: '/install/custom/mydir/sub/b', root: '/install/custom/mydir', fromDirectory: true, copies: [] });
  t.same(routeMember(plan, 'k-1/other_files/post.sh', false).kind === 'kit' && (routeMember(plan, 'k-1/other_files/post.sh', false) as { copies: string[] }).copies, ['/install/postscripts/post.sh']);
  t.same((routeMember(plan, 'k-1/other_files/x.exlist', false) as { copies: string[] }).copies, []);
  t.same((routeMember(plan, 'k-1/other_files/.hidden', false) as { copies: string[] }).copies, []);
  t.same((routeMember(plan, 'k-1/plugins/p.pm', false) as { copies: string[] }).copies, ['/opt/xcat/lib/perl/xCAT_plugin/p.pm']);
  t.same(routeMember(plan, 'nothing', false), { kind: 'unknown' });
  t.equal(kitFileMode('other_files/post.sh', 0o644), 0o755, 'a postscript is made executable');
  for (const sub of ['other_files/x.exlist', 'other_files/.hidden', 'other_files/dir/inner.sh', 'plugins/p.pm', 'repos/r/a.rpm']) t.equal(kitFileMode(sub, 0o644), 0o644, sub);
});

t.test("kit repository links: OTHERPKGDIR/KITREPONAME -> kitrepodir per kit component, rows from the manifest, else the tables", async (t) => {
  const m = netbootManifest();
  m.osimage.kitcomponents = 'comp-a,comp-b,comp-gone';
  m.kitcomp = [{ kitcompname: 'comp-a', kitreponame: 'repo-a' }];
  m.kitrepo = [{ kitreponame: 'repo-a', kitrepodir: '/install/kits/k-1/repos/repo-a' }];
  const tables = { kitcomponent: [{ kitcompname: 'comp-b', kitreponame: 'repo-b' }], kitrepo: [{ kitreponame: 'repo-b', kitrepodir: '/install/kits/k-2/repos/repo-b' }] };
  t.same(kitRepositoryLinks(planImport(m, 'img', loc), tables), [], 'no otherpkgdir: no links');
  m.linuximage.otherpkgdir = '/install/post/otherpkgs/rhels8.5.0/x86_64';
  t.same(kitRepositoryLinks(planImport(m, 'img', loc), tables), [
    { dest: '/install/post/otherpkgs/rhels8.5.0/x86_64/repo-a', target: '/install/kits/k-1/repos/repo-a' },
    { dest: '/install/post/otherpkgs/rhels8.5.0/x86_64/repo-b', target: '/install/kits/k-2/repos/repo-b' },
  ]);
  m.linuximage.otherpkgdir = 'http://mirror/repo, /install/post/otherpkgs/local ,http://other';
  t.same(kitRepositoryLinks(planImport(m, 'img', loc), tables).map((l) => l.dest), ['/install/post/otherpkgs/local/repo-a', '/install/post/otherpkgs/local/repo-b'], 'the local directory of a list with repository URLs');
});

t.test('destinations outside the allowed roots are all listed', async (t) => {
  const roots = allowedRoots(loc, ['/srv/extra']);
  t.doesNotThrow(() => assertDestinationsAllowed(['/install/a', '/opt/xcat/share/x', '/srv/extra/y'], roots));
  t.throws(() => assertDestinationsAllowed(['/etc/a', '/install/ok', '/opt/xcat/lib/x', '/installer/z'], roots), {
    message: /: \/etc\/a, \/opt\/xcat\/lib\/x, \/installer\/z$/,
  });
});

t.test('member names', async (t) => {
  t.same(parseMemberName('./img/sub/f'), { image: 'img', rel: 'sub/f' });
  t.same(parseMemberName('./img/'), { image: 'img', rel: '' });
  t.equal(parseMemberName('./'), undefined);
  t.throws(() => parseMemberName('img/../x'), /'\.\.'/);
  t.throws(() => parseMemberName('/img/x'), /absolute/);
  t.throws(() => parseMemberName('img//x'), /malformed/);
});

t.test('tables: rows upserted, kit rows, -p postscripts without the defaults', async (t) => {
  const tables = {
    osimage: [{ imagename: 'img', profile: 'old', description: 'kept' }],
    nodelist: [{ node: 'n1', groups: 'compute' }, { node: 'n2', groups: 'other' }],
    postscripts: [{ node: 'xcatdefaults', postscripts: 'syslog', postbootscripts: 'otherpkgs' }],
  };
  t.same(expandNoderange(tables, 'compute,n2,ghost'), { nodes: ['n1', 'n2'], unknown: ['ghost'] });
  t.equal(withoutDefaults('syslog,mine, more', 'syslog'), 'mine,more');
  const m = netbootManifest();
  m.postscripts = 'syslog,mine';
  m.kit = [{ kitname: 'k-1', kitdir: '/install/kits/k-1', name: 'k-1', bogus: 'x' }];
  const plan = planImport(m, 'img', loc);
  applyImportToTables(tables, plan, { nodes: ['n1'] });
  t.equal(tables.osimage.length, 1);
  t.equal(tables.osimage[0].description, 'kept');
  t.equal(tables.osimage[0].profile, 'compute');
  t.same((tables as Record<string, unknown>).kit, [{ kitname: 'k-1', kitdir: '/install/kits/k-1' }]);
  t.same(tables.postscripts[1], { node: 'n1', postscripts: 'mine' });
});

t.test("an import's rows, written again from the journal alone, make the same tables; twice changes nothing; a column set meanwhile stays", async (t) => {
  const before = {
    osimage: [{ imagename: 'img', profile: 'old', description: 'kept' }],
    nodelist: [{ node: 'n1' }],
    postscripts: [{ node: 'xcatdefaults', postscripts: 'syslog' }, { node: 'n1', postscripts: 'oldps', postbootscripts: 'oldpbs', comments: 'mine' }],
    litefile: [{ image: 'img', file: '/etc/a', options: 'tmpfs' }, { image: 'img', file: '/etc/b', comments: 'not in the bundle', disable: '1' }],
  };
  const m = netbootManifest();
  m.postscripts = 'syslog';
  m.postbootscripts = 'myscript2';
  const plan = planImport(m, 'img', loc);
  const litefile = litefileChanges(before, 'img', [{ file: '/etc/a', options: '' }, { file: '/var/log/', options: 'persistent' }]);
  const imported = structuredClone(before) as Tables;
  const rows = applyImportToTables(imported, plan, { nodes: ['n1'], litefile });
  t.same(imported.postscripts[1], { node: 'n1', postbootscripts: 'myscript2', comments: 'mine' }, 'postscripts cleared (only the defaults\' left), comments kept');
  t.same(imported.litefile, [{ image: 'img', file: '/etc/a' }, before.litefile[1], { image: 'img', file: '/var/log/', options: 'persistent' }], "a litefile row's options removed, one the bundle does not name untouched, a new one added");
  t.notOk(rowsHeld(before, rows), 'the rows are not in the tables before');
  t.ok(rowsHeld(imported, rows), 'they are after');
  const again = structuredClone(before) as Tables;
  writeRowsAgain(again, rows);
  t.same(again, imported, 'written again: the same tables');
  writeRowsAgain(again, rows);
  t.same(again, imported, 'twice: the same');
  const changed = structuredClone(before) as Tables;
  changed.osimage[0].comments = 'a chdef while the import ran';
  changed.litefile[1].comments = 'a chtab while the import ran';
  writeRowsAgain(changed, rows);
  t.equal(changed.litefile[1].comments, 'a chtab while the import ran', 'a litefile row the bundle does not name stays as changed');
  t.equal(changed.osimage[0].comments, 'a chdef while the import ran', 'a column the import does not set stays');
  t.equal(changed.osimage[0].profile, 'compute');
});

t.test('noderange: lists, groups, bracket and dash ranges (zero-padded), exclusions; what it cannot read is refused', async (t) => {
  const nodelist = ['node01', 'node02', 'node03', 'node10', 'r1n1', 'r1n2', 'r2n1', 'login'].map((node) => ({ node, groups: node === 'login' ? 'all' : 'compute,all' }));
  const tables = { nodelist };
  t.same(expandNames('node[01-03]'), ['node01', 'node02', 'node03']);
  t.same(expandNames('node01-node03'), ['node01', 'node02', 'node03']);
  t.same(expandNames('r[1-2]n[1-2]'), ['r1n1', 'r1n2', 'r2n1', 'r2n2']);
  t.same(expandNames('node9-x'), ['node9-x'], 'a name with a dash that is no range');
  t.same(expandNoderange(tables, 'compute,-node[02-03],-r2n1'), { nodes: ['node01', 'node10', 'r1n1', 'r1n2'], unknown: [] });
  t.same(expandNoderange(tables, 'all,-compute'), { nodes: ['login'], unknown: [] });
  t.same(expandNoderange(tables, 'r[1-2]n[1-2]'), { nodes: ['r1n1', 'r1n2', 'r2n1'], unknown: ['r2n2'] });
  t.same(expandNoderange(tables, '-login'), { nodes: [], unknown: [] }, 'only exclusions: nothing');
  t.throws(() => expandNoderange(tables, '/node.*'), /noderange '\/node\.\*': regular expressions, node files, intersections and ':' or '\+' ranges are not supported/);
  t.throws(() => expandNoderange(tables, 'compute@all'), /not supported/);
  t.throws(() => expandNoderange(tables, 'node[1-999999999]'), /larger than 100000/);
  t.throws(() => expandNoderange(tables, 'rack[1-1000]n[1-1000]'), /noderange 'rack\[1-1000\]n\[1-1000\]' names more than 100000 nodes/, 'ranges multiply');
  t.throws(() => expandNoderange(tables, 'n[1-60000,1-60000]'), /names more than 100000 nodes/, 'list items add up');
  t.equal(expandNames('r[1-2]n[1-50000]').length, 100_000, 'up to the limit');
  t.same(expandNames('node[01,03-04]'), ['node01', 'node03', 'node04'], 'a list inside brackets');
  t.same(expandNoderange(tables, 'node[01,03],login'), { nodes: ['node01', 'node03', 'login'], unknown: [] }, 'its commas are not the list\'s');
  t.same(expandNoderange({ nodelist: [{ node: 'a1-a2' }] }, 'a1-a2'), { nodes: ['a1-a2'], unknown: [] }, 'a node of that name before a range');
  t.throws(() => expandNoderange(tables, 'node01:node03'), /':' or '\+' ranges are not supported/);
  t.throws(() => expandNoderange(tables, 'node1+3'), /not supported/);
});

t.test('-p sets both columns as xCAT does: one left empty by the defaults clears the node\'s own', async (t) => {
  const tables = {
    nodelist: [{ node: 'n1' }, { node: 'n2' }],
    postscripts: [
      { node: 'xcatdefaults', postscripts: 'syslog,remoteshell', postbootscripts: 'otherpkgs' },
      { node: 'n1', postscripts: 'oldps', postbootscripts: 'oldpbs' },
      { node: 'n2', postscripts: 'keep2', postbootscripts: 'keep2b' },
    ],
  };
  const m = netbootManifest();
  m.postscripts = 'syslog,remoteshell';
  m.postbootscripts = 'myscript2';
  applyImportToTables(tables, planImport(m, 'img', loc), { nodes: ['n1'] });
  t.same(tables.postscripts[1], { node: 'n1', postbootscripts: 'myscript2' });
  // Nothing left once the defaults are taken out: the nodes are not touched at all.
  m.postbootscripts = 'otherpkgs';
  applyImportToTables(tables, planImport(m, 'img', loc), { nodes: ['n2'] });
  t.same(tables.postscripts[2], { node: 'n2', postscripts: 'keep2', postbootscripts: 'keep2b' });
});

t.test('ssh arguments: the remote path is quoted for the remote shell, the host cannot be an option', async (t) => {
  t.equal(shellQuote("a b'c;$(x)"), `'a b'\\''c;$(x)'`);
  t.same(remoteReadArgs('root@mn', '/tmp/my bundle.tgz'), ['-o', 'BatchMode=yes', '--', 'root@mn', 'cat', '--', "'/tmp/my bundle.tgz'"]);
  t.throws(() => remoteReadArgs('-oProxyCommand=x', '/b'), /bad remote host/);
});
