import t from 'tap';
import { formatStanzas, parseStanzas } from '../src/tables/stanza.js';

// As xCAT's own `lsdef -t osimage -z` prints it.
const XCAT_LSDEF_Z = `# <xCAT data object stanza file>

rhels8.5.0-ppc64le-netboot-compute:
    objtype=osimage
    exlist=/install/custom/netboot/rh/compute.exlist
    imagetype=linux
    nodebootif=eth0
    osarch=ppc64le
    osdistroname=rhels8.5.0-ppc64le
    osname=Linux
    osvers=rhels8.5.0
    otherpkgdir=/install/post/otherpkgs/rhels8.5.0/ppc64le
    otherpkglist=/install/custom/netboot/rh/compute.otherpkgs.pkglist
    pkglist=/install/custom/netboot/rh/compute.pkglist
    postinstall=/install/custom/netboot/rh/compute.postinstall
    postscripts=myscript2
    profile=compute
    provmethod=netboot
    rootimgdir=/install/netboot/rhels8.5.0/ppc64le/compute
    synclists=/install/custom/netboot/rh/compute.synclist
    usercomment=built by genimage; "quoted" = fine

node1:
    objtype=node
    groups=compute,all
    postbootscripts=myscript2
    postscripts=myscript1

`;

t.test("xCAT's lsdef -z output loads and formats back unchanged", async (t) => {
  const objects = parseStanzas(XCAT_LSDEF_Z);
  t.equal(objects.length, 2);
  t.same(objects[1], { name: 'node1', type: 'node', attributes: { groups: 'compute,all', postbootscripts: 'myscript2', postscripts: 'myscript1' } });
  t.equal(objects[0].attributes.usercomment, 'built by genimage; "quoted" = fine', 'value runs to the end of the line');
  t.equal(formatStanzas(objects), XCAT_LSDEF_Z);
});

t.test('comments, blank lines, CRLF and objtype after attributes are accepted', async (t) => {
  const text = '# header\r\n\r\nimg:\r\n  # a comment\r\n\tprofile=compute   \r\n    objtype=osimage\r\n\r\n# trailing\r\n';
  t.same(parseStanzas(text), [{ name: 'img', type: 'osimage', attributes: { profile: 'compute' } }]);
  t.same(parseStanzas(''), []);
});

t.test('errors name the source and line', async (t) => {
  t.throws(() => parseStanzas('a:\n    objtype=image\n', 'defs.stanza'), { name: 'TableError', message: /^defs\.stanza line 2: unknown object type 'image'/ });
  t.throws(() => parseStanzas('a:\n    objtype=osimage\n    colour=red\n'), /^stanza input line 3: unknown attribute 'colour' of object type osimage \(valid attributes: /);
  t.throws(() => parseStanzas('\n\na:\n    profile=x\n'), /line 3: object 'a' has no objtype/);
  t.throws(() => parseStanzas('    profile=x\n'), /line 1: attribute outside any object/);
  t.throws(() => parseStanzas('a:\n    objtype=node\n    just words\n'), /line 3: expected 'attribute=value'/);
  t.throws(() => parseStanzas('a b c\n'), /line 1: expected 'NAME:'/);
  t.throws(() => parseStanzas('a:\n    objtype=osimage\n\nb:\n    objtype=node\n    usercomment=bell\u0007\n', 'standard input'), {
    name: 'TableError',
    message: 'standard input line 6: the value of usercomment of node b holds a control character (a line break?), which a table value cannot',
  });
});
