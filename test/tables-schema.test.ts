import t from 'tap';
import { TableError } from '../src/core/errors.js';
import {
  attributeNames,
  checkAttribute,
  checkColumn,
  checkObjectType,
  checkTable,
  installdirOf,
  OBJECT_SCHEMAS,
  TABLES,
} from '../src/tables/schema.js';

t.test('tables and keys as xCAT has them', async (t) => {
  t.same(Object.keys(TABLES), ['osimage', 'linuximage', 'kit', 'kitrepo', 'kitcomponent', 'litefile', 'postscripts', 'nodelist', 'site']);
  t.same(TABLES.litefile.key, ['image', 'file']);
  t.equal(TABLES.osimage.columns.length, 23);
  t.equal(TABLES.linuximage.columns.at(-2), 'comments');
  for (const schema of Object.values(TABLES)) t.same(schema.columns.slice(-2), ['comments', 'disable']);
});

t.test('unknown table, column, type, attribute: TableError naming the valid ones', async (t) => {
  t.throws(() => checkTable('osimages'), { name: 'TableError', table: 'osimages', message: /unknown table 'osimages'.*osimage, linuximage, kit, .*site/ });
  t.throws(() => checkColumn('site', 'val'), { name: 'TableError', table: 'site', message: /unknown column 'val' of table site \(its columns: key, value, comments, disable\)/ });
  t.doesNotThrow(() => checkColumn('linuximage', 'rootimgdir'));
  t.throws(() => checkObjectType('image'), /unknown object type 'image' \(known types: osimage, node, group\)/);
  t.throws(() => checkAttribute('group', 'groups'), /valid attributes: members, postbootscripts, postscripts\)/);
  const err = (() => {
    try {
      checkAttribute('osimage', 'comment');
    } catch (e) {
      return e as Error;
    }
  })();
  t.ok(err instanceof TableError);
  t.match(err?.message, /unknown attribute 'comment' of object type osimage \(valid attributes: addkcmdline, .*usercomment\)/);
});

t.test('object mappings', async (t) => {
  t.same(OBJECT_SCHEMAS.osimage.attributes.usercomment, { table: 'linuximage', column: 'comments' });
  t.same(OBJECT_SCHEMAS.osimage.attributes.comments, { table: 'osimage', column: 'comments' });
  t.same(OBJECT_SCHEMAS.osimage.attributes.disable, { table: 'osimage', column: 'disable' });
  t.same(OBJECT_SCHEMAS.osimage.attributes.rootimgdir, { table: 'linuximage', column: 'rootimgdir' });
  t.notOk('imagename' in OBJECT_SCHEMAS.osimage.attributes, 'the key is the object name, not an attribute');
  t.same(OBJECT_SCHEMAS.node.attributes.usercomment, { table: 'nodelist', column: 'comments' });
  t.same(OBJECT_SCHEMAS.node.attributes.postbootscripts, { table: 'postscripts', column: 'postbootscripts' });
  t.same(attributeNames('node').filter((a) => a.startsWith('post')), ['postbootscripts', 'postscripts']);
  t.equal(attributeNames('osimage').length, 22 + 23 - 1, 'osimage and linuximage non-key columns, disable once');
});

t.test('installdir from the site table', async (t) => {
  t.equal(installdirOf({}), '/install');
  t.equal(installdirOf({ site: [{ key: 'installdir', value: '' }] }), '/install');
  t.equal(installdirOf({ site: [{ key: 'tmpdir', value: '/tmp' }, { key: 'installdir', value: '/srv/install' }] }), '/srv/install');
});
