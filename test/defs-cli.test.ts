import fs from 'node:fs';
import t from 'tap';
import { defsSandbox } from './helpers/defs-sandbox.js';

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
  imgport(['mkdef', '-t', 'group', '-o', 'xcatdefaults', 'postscripts=syslog,remoteshell']);
  t.equal(imgport(['lsdef']).stdout, 'node1  (node)\nnode2  (node)\n', 'default type node');
  t.equal(imgport(['lsdef', '-t', 'group']).stdout, 'all  (group)\ncompute  (group)\nxcatdefaults  (group)\n');
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

