import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { defsSandbox } from './helpers/defs-sandbox.js';
import { NODE, NODE_ARGS } from './helpers/node-command.js';

const sandbox = defsSandbox;

t.test('mkdef, lsdef short, long and -i, chdef clearing, rmdef', async (t) => {
  const { imgport, tables } = sandbox(t);
  t.same(imgport(['mkdef', '-t', 'osimage', '-o', 'b,a', 'profile=compute', 'osvers=rhels8.5.0', 'usercomment=mine', 'comments=os']), {
    code: 0,
    stdout: '2 object definitions have been created or modified.\n',
    stderr: '',
  });
  t.same(tables(), {
    osimage: [
      { imagename: 'b', profile: 'compute', osvers: 'rhels8.5.0', comments: 'os' },
      { imagename: 'a', profile: 'compute', osvers: 'rhels8.5.0', comments: 'os' },
    ],
    linuximage: [
      { imagename: 'b', comments: 'mine' },
      { imagename: 'a', comments: 'mine' },
    ],
  });
  t.equal(imgport(['lsdef', '-t', 'osimage']).stdout, 'a  (osimage)\nb  (osimage)\n');
  t.equal(imgport(['lsdef', '-t', 'osimage', '-o', 'a', '-s']).stdout, 'a  (osimage)\n');
  t.equal(
    imgport(['lsdef', '-t', 'osimage', '-l']).stdout,
    'Object name: a\n    comments=os\n    osvers=rhels8.5.0\n    profile=compute\n    usercomment=mine\n\n' +
      'Object name: b\n    comments=os\n    osvers=rhels8.5.0\n    profile=compute\n    usercomment=mine\n',
  );
  t.equal(imgport(['lsdef', '-t', 'osimage', '-o', 'b', '-i', 'profile,rootimgdir']).stdout, 'Object name: b\n    profile=compute\n    rootimgdir=\n');

  const changed = imgport(['chdef', '-t', 'osimage', '-o', 'a', '-v', 'comments=', 'rootimgdir=/install/netboot/x', 'description=say "hi"']);
  t.same(changed, { code: 0, stdout: 'Changed osimage a\n1 object definitions have been created or modified.\n', stderr: '' });
  t.equal(
    imgport(['lsdef', '-t', 'osimage', 'a']).stdout,
    'Object name: a\n    description=say "hi"\n    osvers=rhels8.5.0\n    profile=compute\n    rootimgdir=/install/netboot/x\n    usercomment=mine\n',
  );
  t.equal(
    imgport(['lsdef', '-t', 'osimage', '-o', 'a', '-z', '-i', 'profile']).stdout,
    '# <xCAT data object stanza file>\n\na:\n    objtype=osimage\n    profile=compute\n\n',
  );

  t.same(imgport(['rmdef', '-t', 'osimage', '-o', 'b']), { code: 0, stdout: '1 object definitions have been removed.\n', stderr: '' });
  t.same(tables().linuximage, [{ imagename: 'a', comments: 'mine', rootimgdir: '/install/netboot/x' }], 'rmdef removed both rows of b');
  t.same(tables().osimage.map((r: { imagename: string }) => r.imagename), ['a']);
});

t.test('refusals name what is wrong and change nothing', async (t) => {
  const { imgport, db } = sandbox(t);
  imgport(['mkdef', '-t', 'osimage', '-o', 'a', 'profile=p']);
  const before = fs.readFileSync(db, 'utf8');
  const refused = (args: string[], message: RegExp) => {
    const r = imgport(args);
    t.equal(r.code, 1, args.join(' '));
    t.match(r.stderr, message);
    t.equal(fs.readFileSync(db, 'utf8'), before);
  };
  refused(['mkdef', '-t', 'osimage', '-o', 'a', 'profile=q'], /^Error: an object named 'a' of type 'osimage' already exists \(use -f/);
  refused(['chdef', '-t', 'osimage', '-o', 'zz', 'profile=q'], /^Error: could not find an object named 'zz' of type 'osimage'/);
  refused(['chdef', '-t', 'osimage', '-o', 'a', 'colour=red'], /^Error: unknown attribute 'colour' of object type osimage \(valid attributes: addkcmdline,/);
  refused(['rmdef', '-t', 'osimage', '-o', 'a,zz'], /^Error: could not find an object named 'zz'/);
  refused(['mkdef', '-t', 'image', '-o', 'x'], /^Error: unknown object type 'image' \(known types: osimage, node, group\)/);
  refused(['lsdef', '-t', 'osimage', '-o', 'zz'], /^Error: could not find an object named 'zz'/);

  t.equal(imgport(['mkdef', '-f', '-t', 'osimage', '-o', 'a', 'osvers=x']).code, 0, '-f replaces');
  t.same(imgport(['lsdef', '-t', 'osimage', '-o', 'a']).stdout, 'Object name: a\n    osvers=x\n');
});

t.test('nodes and groups', async (t) => {
  const { imgport, tables } = sandbox(t);
  imgport(['mkdef', '-t', 'node', '-o', 'node1,node2', 'groups=compute,all', 'usercomment=rack 1']);
  imgport(['chdef', '-t', 'node', '-o', 'node1', 'postscripts=myscript1', 'postbootscripts=otherpkgs']);
  imgport(['chtab', 'node=xcatdefaults', 'postscripts.postscripts=syslog,remoteshell']);
  t.equal(imgport(['lsdef']).stdout, 'node1  (node)\nnode2  (node)\n', 'default type node');
  t.equal(imgport(['lsdef', '-t', 'group']).stdout, 'all  (group)\ncompute  (group)\n');
  t.equal(
    imgport(['lsdef', '-t', 'node', 'node1']).stdout,
    'Object name: node1\n    groups=compute,all\n    postbootscripts=otherpkgs\n    postscripts=myscript1\n    usercomment=rack 1\n',
  );
  t.equal(imgport(['lsdef', '-t', 'group', '-o', 'compute']).stdout, 'Object name: compute\n    members=node1,node2\n');
  imgport(['chdef', '-t', 'group', '-o', 'compute', 'members=node2', 'postscripts=g1']);
  t.same(tables().nodelist, [
    { node: 'node1', groups: 'all', comments: 'rack 1' },
    { node: 'node2', groups: 'all,compute', comments: 'rack 1' },
  ]);
  imgport(['chdef', '-t', 'node', '-o', 'node1', 'postscripts=', 'postbootscripts=']);
  t.same(tables().postscripts, [
    { node: 'xcatdefaults', postscripts: 'syslog,remoteshell' },
    { node: 'compute', postscripts: 'g1' },
  ], "node1's emptied postscripts row is gone");
  imgport(['rmdef', '-t', 'group', '-o', 'compute']);
  t.same(tables().nodelist[1], { node: 'node2', groups: 'all', comments: 'rack 1' });
});


t.test("the xcatdefaults row of postscripts is xCAT's defaults, not a group: no group or node can show, change or remove it", async (t) => {
  const { imgport, db, tables } = sandbox(t);
  imgport(['chtab', 'node=xcatdefaults', 'postscripts.postscripts=syslog']);
  imgport(['mkdef', '-t', 'node', '-o', 'n1', 'groups=compute']);
  t.equal(imgport(['lsdef', '-t', 'group']).stdout, 'compute  (group)\n');
  t.equal(imgport(['lsdef', '-t', 'group', '-z']).stdout, '# <xCAT data object stanza file>\n\ncompute:\n    objtype=group\n    members=n1\n\n');
  const before = fs.readFileSync(db);
  const taken = (what: string) =>
    `Error: 'xcatdefaults' cannot name ${what}: it is the postscripts row of defaults every node runs (chtab node=xcatdefaults postscripts.postscripts=... sets it)\n`;
  for (const [args, stderr] of [
    [['lsdef', '-t', 'group', '-o', 'xcatdefaults'], "Error: could not find an object named 'xcatdefaults' of type 'group'\n"],
    [['rmdef', '-t', 'group', '-o', 'xcatdefaults'], "Error: could not find an object named 'xcatdefaults' of type 'group'\n"],
    [['chdef', '-t', 'group', '-o', 'xcatdefaults', 'postscripts=x'], "Error: could not find an object named 'xcatdefaults' of type 'group'\n"],
    [['mkdef', '-f', '-t', 'group', '-o', 'xcatdefaults', 'postscripts=x'], taken('a group')],
    [['mkdef', '-t', 'node', '-o', 'xcatdefaults'], taken('a node')],
    [['chdef', '-t', 'node', '-o', 'n1', 'groups=compute,xcatdefaults'], taken('a group')],
    [['chtab', 'node=xcatdefaults', 'nodelist.groups=all'], taken('a node')],
  ] as [string[], string][]) {
    t.same(imgport(args), { code: 1, stdout: '', stderr }, args.join(' '));
    t.same(fs.readFileSync(db), before, `${args.join(' ')}: table file unchanged`);
  }
  t.same(tables().postscripts, [{ node: 'xcatdefaults', postscripts: 'syslog' }]);
});

t.test('a node and a group never share a name: they would share one postscripts row', async (t) => {
  const { imgport, db } = sandbox(t);
  imgport(['mkdef', '-t', 'node', '-o', 'node1,node2', 'groups=compute,all', 'postscripts=a']);
  const before = fs.readFileSync(db, 'utf8');
  const refused = (args: string[], message: string) => {
    const r = imgport(args);
    t.equal(r.code, 1, args.join(' '));
    t.equal(r.stderr, `Error: ${message}\n`);
    t.equal(fs.readFileSync(db, 'utf8'), before, 'table file unchanged');
  };
  refused(['mkdef', '-t', 'group', '-o', 'node1', 'postscripts=evil'], "'node1' is already a node: a node and a group cannot share a name (they would share one postscripts row)");
  refused(['mkdef', '-t', 'node', '-o', 'compute'], "'compute' is already a group: a node and a group cannot share a name (they would share one postscripts row)");
  refused(['chdef', '-t', 'node', '-o', 'node1', 'groups=node2'], "'node2' is a node: it cannot be a group too (they would share one postscripts row)");
  // chtab's way in to the nodelist is held to the same rule.
  refused(['chtab', 'node=node1', 'nodelist.groups=compute,node2'], "'node2' is a node: it cannot be a group too (they would share one postscripts row)");
  refused(['chtab', 'node=node1', 'nodelist.groups+=node1'], "'node1' is a node: it cannot be a group too (they would share one postscripts row)");
  refused(['chtab', 'node=compute', 'nodelist.groups=all'], "'compute' is already a group: a node and a group cannot share a name (they would share one postscripts row)");
  t.equal(imgport(['chtab', 'node=node3', 'nodelist.groups=compute']).code, 0, 'a new node in an existing group');
  t.equal(imgport(['chtab', 'node=node1', 'nodelist.groups=compute,gpu']).code, 0, 'a node joins a new group');
});

t.test('lsdef -z of nodes and groups loads back into an empty table file, nodes first', async (t) => {
  const { imgport, tables } = sandbox(t);
  imgport(['mkdef', '-t', 'node', '-o', 'n1,n2', 'groups=compute']);
  imgport(['mkdef', '-t', 'group', '-o', 'compute', 'postscripts=grp']);
  const stanzas = imgport(['lsdef', '-t', 'node', '-z']).stdout + imgport(['lsdef', '-t', 'group', '-z']).stdout;
  const before = tables();
  const empty = sandbox(t);
  const loaded = empty.imgport(['mkdef', '-z'], stanzas);
  t.equal(loaded.code, 0, loaded.stderr);
  t.same(empty.tables(), before);
});

t.test('lsdef -z of a type with no objects writes no stanza: nodes then groups load back even without groups', async (t) => {
  const { imgport, tables } = sandbox(t);
  imgport(['mkdef', '-t', 'node', '-o', 'n1', 'postscripts=mine']);
  const groups = imgport(['lsdef', '-t', 'group', '-z']);
  t.same(groups, { code: 0, stdout: '', stderr: 'Could not find any object definitions to display.\n' }, 'the message on standard error');
  const empty = sandbox(t);
  const loaded = empty.imgport(['mkdef', '-z'], imgport(['lsdef', '-t', 'node', '-z']).stdout + groups.stdout);
  t.equal(loaded.code, 0, loaded.stderr);
  t.same(empty.tables(), tables());
});

t.test('an install directory that is not absolute (a hand-edited table file) is an error naming it, no stack', async (t) => {
  const { imgport, db } = sandbox(t);
  fs.mkdirSync(path.dirname(db), { recursive: true });
  fs.writeFileSync(db, JSON.stringify({ site: [{ key: 'installdir', value: 'relative/dir' }] }));
  const r = imgport(['mkdef', '-t', 'osimage', '-u', 'provmethod=netboot', 'profile=compute', 'osvers=rhels8.5.0']);
  t.equal(r.code, 1);
  t.equal(r.stderr, "Error: the site table's installdir 'relative/dir' is not an absolute path\n");
});

t.test('lsdef whose output cannot be written (a full disk) fails: exit 1, the reason', async (t) => {
  const { imgport, root } = sandbox(t);
  imgport(['mkdef', '-t', 'node', '-o', 'n1', 'groups=all']);
  const full = fs.openSync('/dev/full', 'w');
  t.teardown(() => fs.closeSync(full));
  const r = spawnSync(NODE, [...NODE_ARGS, path.resolve('dist/bin/imgport.js'), 'lsdef', '-t', 'node', '-z', '--root', root], { stdio: ['ignore', full, 'pipe'], encoding: 'utf8' });
  t.equal(r.status, 1, 'exit 1: the stanza file was not written');
  t.equal(r.stderr, 'Error: cannot write standard output: no space left on device\n');
});

t.test("chtab sets what no object holds (site's installdir), as xCAT's chtab: add, change, append, clear, delete", async (t) => {
  const { imgport, tables } = sandbox(t);
  t.same(imgport(['chtab', 'key=installdir', 'site.value=/data/install', '-v']), { code: 0, stdout: 'Added a row of site\n', stderr: '' });
  t.same(imgport(['chtab', 'key=installdir', 'site.value=/srv/install', 'site.comments=moved', '-v']), { code: 0, stdout: 'Changed a row of site\n', stderr: '' });
  t.same(tables().site, [{ key: 'installdir', value: '/srv/install', comments: 'moved' }]);
  t.equal(imgport(['tabdump', 'site']).stdout, '#key,value,comments,disable\n"installdir","/srv/install","moved",\n');
  imgport(['chtab', 'node=n1', 'postscripts.postscripts+=a,b']);
  imgport(['chtab', 'node=n1', 'postscripts.postscripts+=b,c', 'postscripts.comments=']);
  t.same(tables().postscripts, [{ node: 'n1', postscripts: 'a,b,c' }], '+= appends what is not listed yet; an empty value clears');
  t.same(imgport(['chtab', 'image=ALL', 'file=/etc/x', 'litefile.options=tmpfs']).code, 0, 'a table of two key columns');
  t.same(tables().litefile, [{ image: 'ALL', file: '/etc/x', options: 'tmpfs' }]);
  t.same(imgport(['chtab', '-d', 'key=installdir', 'site']).code, 0);
  t.same(tables().site ?? [], [], 'the row is gone');

  const refusals: [string[], string][] = [
    [['chtab', 'node=n1', 'site.value=x'], 'Error: the rows of site are chosen by key=VALUE, not by node'],
    [['chtab', 'image=ALL', 'litefile.options=x'], 'Error: the rows of litefile are chosen by image=VALUE file=VALUE'],
    [['chtab', 'key=a', 'site.value=1', 'nodelist.groups=x'], 'Error: one table at a time, not site and nodelist'],
    [['chtab', 'key=a', 'site.key=b'], 'Error: site.key is a key column'],
    [['chtab', 'key=a', 'site.nope=1'], "Error: unknown column 'nope' of table site"],
    [['chtab', 'key=a', 'nosuch.value=1'], "Error: unknown table 'nosuch'"],
    [['chtab', 'key=a', 'site.value=a\nb'], 'a value cannot hold a line break or control character'],
    [['chtab', 'key=', 'site.value=1'], 'Error: key cannot be empty: it names the row'],
    [['chtab', 'key=a'], 'Error: nothing to set: give TABLE.COLUMN=VALUE'],
    [['chtab', '-d', 'key=nosuch', 'site'], 'Error: no row of site has key=nosuch'],
    [['chtab', '-d', 'key=a'], 'Error: -d takes the keys and one TABLE'],
    [['chtab', 'key=installdir', 'site.value=relative/dir'], "Error: the install directory must be an absolute path, not 'relative/dir'"],
    [['chtab', 'node=sp ace', 'nodelist.groups=x'], "Error: 'sp ace' cannot name an object"],
    [['chtab', 'node=a,b', 'postscripts.postscripts=x'], "Error: 'a,b' cannot name an object"],
    [['chtab', 'imagename=x:y', 'osimage.profile=x'], "Error: 'x:y' cannot name an object"],
  ];
  const unchanged = JSON.stringify(tables());
  for (const [args, message] of refusals) {
    const r = imgport(args);
    t.equal(r.code, 1, args.join(' '));
    t.match(r.stderr, message, args.join(' '));
    t.equal(JSON.stringify(tables()), unchanged, `${args.join(' ')}: tables unchanged`);
  }
});

t.test('bad names, values and option mixes are refused, and nothing is written', async (t) => {
  const { imgport, db } = sandbox(t);
  imgport(['mkdef', '-t', 'osimage', '-o', 'img1', 'provmethod=netboot']);
  const before = fs.readFileSync(db, 'utf8');
  const refused = (args: string[], message: string, input?: string) => {
    const r = imgport(args, input);
    t.equal(r.code, 1, args.join(' '));
    t.equal(r.stderr.split('\n')[0], `Error: ${message}`);
    t.equal(fs.readFileSync(db, 'utf8'), before, 'table file unchanged');
  };
  refused(['mkdef', '-t', 'osimage', '-o', 'x y'], "'x y' cannot name an object: no white space, ',', ':', '=' or control characters, and no '#' first");
  refused(['chdef', '-t', 'osimage', '-o', 'img1', 'description=line1\n    rootimgdir=/etc'], 'the value of description holds a control character (a line break?), which a table value cannot');
  refused(['mkdef', '-t', 'osimage', '-o', 'x', '-o', 'y'], '-o is given more than once: name every object in one -o NAME,NAME');
  const stanza = '# <xCAT data object stanza file>\n\nimg2:\n    objtype=osimage\n    profile=p\n';
  refused(['chdef', '-z', '-t', 'osimage', '-o', 'img1', 'profile=service'], '-z reads the definitions from standard input: --type --objects profile=service cannot be given with it', stanza);
  refused(['mkdef', '-z'], 'standard input defines osimage img2 twice', stanza + '\n' + stanza.split('\n').slice(2).join('\n'));
  for (const command of ['mkdef', 'chdef']) {
    refused(
      [command, '-z'],
      'standard input line 5: the value of description of osimage img1 holds a control character (a line break?), which a table value cannot',
      '# <xCAT data object stanza file>\n\nimg1:\n    objtype=osimage\n    description=tab\there, escape \u001b[31m red\n',
    );
  }
});

t.test("a name starting with '#' is refused: lsdef -z would write it as a comment, and mkdef -z add its attributes to the object before it", async (t) => {
  const { imgport, db } = sandbox(t);
  imgport(['mkdef', '-t', 'osimage', '-o', 'img1', 'profile=p']);
  const before = fs.readFileSync(db);
  for (const args of [
    ['mkdef', '-t', 'osimage', '-o', '#evil', 'profile=q'],
    ['mkdef', '-t', 'node', '-o', 'n1,#evil'],
    ['mkdef', '-t', 'group', '-o', '#evil', 'postscripts=x'],
    ['chtab', 'node=#evil', 'postscripts.postscripts=x'],
    ['chtab', 'imagename=#evil', 'linuximage.rootimgdir=/x'],
  ]) {
    t.same(imgport(args), { code: 1, stdout: '', stderr: "Error: '#evil' cannot name an object: no white space, ',', ':', '=' or control characters, and no '#' first\n" }, args.join(' '));
    t.same(fs.readFileSync(db), before, `${args.join(' ')}: table file unchanged`);
  }
  // A table file of before the rule: lsdef -z refuses to write what would not load back as it is.
  fs.writeFileSync(db, JSON.stringify({ osimage: [{ imagename: 'img1', profile: 'p' }, { imagename: '#evil', profile: 'q' }] }));
  t.same(imgport(['lsdef', '-t', 'osimage', '-z']), { code: 1, stdout: '', stderr: 'Error: osimage #evil: a stanza file would read its name as a comment (lsdef -l shows it)\n' });
});

t.test('group names in a groups value follow the rules of mkdef -t group: lsdef -z of nodes then groups must load back', async (t) => {
  const { imgport, db } = sandbox(t);
  imgport(['mkdef', '-t', 'node', '-o', 'n1', 'groups=compute']);
  const before = fs.readFileSync(db);
  const rules = "no white space, ',', ':', '=' or control characters, and no '#' first";
  for (const [args, input, name] of [
    [['mkdef', '-t', 'node', '-o', 'n2', 'groups=bad group,x:y'], undefined, 'bad group'],
    [['chdef', '-t', 'node', '-o', 'n1', 'groups=compute,x:y'], undefined, 'x:y'],
    [['chdef', '-z'], '# <xCAT data object stanza file>\n\nn1:\n    objtype=node\n    groups=a=b\n', 'a=b'],
    [['chtab', 'node=n4', 'nodelist.groups=has space'], undefined, 'has space'],
    [['chtab', 'node=n1', 'nodelist.groups+=#g'], undefined, '#g'],
  ] as [string[], string | undefined, string][]) {
    t.same(imgport(args, input), { code: 1, stdout: '', stderr: `Error: '${name}' cannot name a group: ${rules}\n` }, args.join(' '));
    t.same(fs.readFileSync(db), before, `${args.join(' ')}: table file unchanged`);
  }
  t.equal(imgport(['chtab', 'node=n1', 'nodelist.groups+=rack1,all']).code, 0, 'good names still go in');
  t.equal(imgport(['lsdef', '-t', 'group']).stdout, 'all  (group)\ncompute  (group)\nrack1  (group)\n');
});

t.test('a table file that is a link to nothing (storage not mounted) is an error for reads and changes; the link stays', async (t) => {
  const { imgport, root, db } = sandbox(t);
  fs.mkdirSync(path.dirname(db), { recursive: true });
  const target = path.join(root, 'mnt/tables.json');
  fs.symlinkSync(target, db);
  const stderr = `Error: the table file ${db} is a link to ${target}, which does not exist (storage not mounted?)\n`;
  t.same(imgport(['lsdef', '-t', 'osimage']), { code: 1, stdout: '', stderr }, 'lsdef shows no empty store');
  t.same(imgport(['mkdef', '-t', 'osimage', '-o', 'a']), { code: 1, stdout: '', stderr });
  t.same(imgport(['chtab', 'key=installdir', 'site.value=/data']), { code: 1, stdout: '', stderr });
  t.equal(fs.readlinkSync(db), target, 'still the link');
  t.same(fs.readdirSync(path.dirname(db)), ['tables.json'], 'nothing beside it');
  t.notOk(fs.existsSync(target));
});

t.test("a table file whose directory or lock file cannot be made: an error naming it, no stack", async (t) => {
  const { imgport, root } = sandbox(t);
  const file = path.join(root, 'file');
  fs.writeFileSync(file, 'not a directory\n');
  const at = (db: string) => ['--db', db];
  t.same(imgport(['mkdef', '-t', 'node', '-o', 'n1', ...at(`${file}/tables.json`)]), { code: 1, stdout: '', stderr: `Error: cannot create ${file}, the table file's directory: not a directory\n` });
  t.same(imgport(['chtab', 'key=a', 'site.value=b', ...at(`${file}/sub/tables.json`)]), { code: 1, stdout: '', stderr: `Error: cannot create ${file}/sub, the table file's directory: not a directory\n` });
  t.same(imgport(['lsdef', ...at(`${file}/tables.json`)]), { code: 1, stdout: '', stderr: `Error: cannot read the table file ${file}/tables.json: not a directory\n` });
  t.equal(fs.readFileSync(file, 'utf8'), 'not a directory\n');
});

t.test('as a user who may not write beside the table file: permission denied, naming the path', { skip: process.getuid?.() !== 0 && 'needs root to run as nobody' }, async (t) => {
  const { root } = sandbox(t);
  fs.chmodSync(root, 0o755);
  const db = path.join(root, 'tables.json');
  fs.writeFileSync(db, '{}\n');
  // As nobody, without the test runner's preloads (env drops NODE_OPTIONS), which write where nobody may not.
  const asNobody = (args: string[]) => {
    const r = spawnSync(NODE, [...NODE_ARGS, path.resolve('dist/bin/imgport.js'), ...args], { uid: 65534, gid: 65534, cwd: root, encoding: 'utf8' });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  t.same(asNobody(['mkdef', '-t', 'node', '-o', 'n1', '--db', db]), { code: 1, stdout: '', stderr: `Error: cannot lock the table file ${db} (${db}.lock): permission denied\n` });
  t.same(asNobody(['mkdef', '-t', 'node', '-o', 'n1', '--db', path.join(root, 'sub/tables.json')]), { code: 1, stdout: '', stderr: `Error: cannot create ${root}/sub, the table file's directory: permission denied\n` });
  fs.chmodSync(db, 0o600);
  t.same(asNobody(['lsdef', '--db', db]), { code: 1, stdout: '', stderr: `Error: cannot read the table file ${db}: permission denied\n` });
  t.equal(fs.readFileSync(db, 'utf8'), '{}\n');
  t.same(fs.readdirSync(root), ['tables.json']);
});

t.test('a table file with rows missing their key, or two rows with one key, is refused, naming them', async (t) => {
  const { imgport, db } = sandbox(t);
  fs.mkdirSync(db.slice(0, db.lastIndexOf('/')), { recursive: true });
  for (const [rows, message] of [
    [[{ imagename: 'a' }, { imagename: 'a', profile: 'p' }], 'table osimage row 2 has the same imagename as an earlier row (a)'],
    [[{ profile: 'p' }], 'table osimage row 1 has no imagename'],
    [[{ imagename: '' }], 'table osimage row 1 has no imagename'],
    [[{ imagename: 'a', description: 'bell\u0007' }], 'table osimage column description of row 1 holds a control character'],
  ] as const) {
    fs.writeFileSync(db, JSON.stringify({ osimage: rows }));
    const r = imgport(['lsdef', '-t', 'osimage']);
    t.equal(r.code, 1);
    t.equal(r.stderr, `Error: table file ${db}: ${message}\n`);
  }
  // A file holding null is no empty store: the next change would overwrite it.
  fs.writeFileSync(db, 'null\n');
  t.same(imgport(['mkdef', '-t', 'osimage', '-o', 'a']), { code: 1, stdout: '', stderr: `Error: table file ${db}: not a JSON object of tables\n` });
  t.equal(fs.readFileSync(db, 'utf8'), 'null\n', 'left as it was');
  // A multi-line description (a manifest may bring one) is a value like any other, but no stanza line can carry it.
  fs.writeFileSync(db, JSON.stringify({ osimage: [{ imagename: 'a', description: 'two\nlines' }] }));
  t.equal(imgport(['lsdef', '-t', 'osimage']).stdout, 'a  (osimage)\n');
  const z = imgport(['lsdef', '-t', 'osimage', '-z']);
  t.equal(z.code, 1);
  t.equal(z.stderr, 'Error: osimage a: its description holds a line break, which a stanza file cannot carry (lsdef -l shows it)\n');
});
