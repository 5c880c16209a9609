import t from 'tap';
import { ObjectTables } from '../src/tables/objects.js';
import { OBJECT_TYPES } from '../src/tables/schema.js';
import type { Tables } from '../src/tables/types.js';

/** Every object of every type with its attributes, as lsdef -l would show them. */
function everything(objects: ObjectTables): Record<string, Record<string, unknown>> {
  return Object.fromEntries(OBJECT_TYPES.map((type) => [type, Object.fromEntries(objects.list(type).map((name) => [name, objects.get(type, name)]))]));
}

t.test('the maps an ObjectTables keeps through its changes give what a fresh one finds in the tables', async (t) => {
  const tables: Tables = {
    osimage: [{ imagename: 'img1', profile: 'compute' }],
    linuximage: [{ imagename: 'img1', rootimgdir: '/install/netboot/img1' }, { imagename: 'img2' }],
    nodelist: [{ node: 'old1', groups: 'rack1,all' }],
    postscripts: [{ node: 'all', postscripts: 'syslog' }, { node: 'old1', postscripts: 'own' }],
  };
  const objects = new ObjectTables(tables);
  const steps: [string, () => void][] = [
    ['nodes with groups', () => ['n1', 'n2', 'n3'].forEach((n) => objects.create('node', n, { groups: 'compute,all', postscripts: 'p' }))],
    ['a group of its own', () => objects.create('group', 'compute', { postscripts: 'g' })],
    ['membership set from the group', () => objects.change('group', 'compute', { members: 'n3,old1' })],
    ['a node leaves every group', () => objects.change('node', 'n2', { groups: '', postscripts: '' })],
    ['a node replaced', () => objects.create('node', 'n1', { groups: 'rack1' }, true)],
    ['a node removed', () => objects.delete('node', 'old1')],
    ['a group removed', () => objects.delete('group', 'all')],
    ['an osimage changed and one removed', () => (objects.change('osimage', 'img1', { profile: '', exlist: '/x' }), objects.delete('osimage', 'img2'))],
  ];
  for (const [what, step] of steps) {
    step();
    t.same(everything(objects), everything(new ObjectTables(tables)), what);
  }
  t.same(everything(objects), {
    osimage: { img1: { exlist: '/x', rootimgdir: '/install/netboot/img1' } },
    node: { n1: { groups: 'rack1' }, n2: {}, n3: { groups: 'compute', postscripts: 'p' } },
    group: { compute: { postscripts: 'g', members: 'n3' }, rack1: { members: 'n1' } },
  });
  t.same(tables.postscripts, [{ node: 'n3', postscripts: 'p' }, { node: 'compute', postscripts: 'g' }], 'emptied and removed rows are gone');
  t.equal(objects.get('group', 'all'), undefined, 'a removed group is gone from its former members too');
});
