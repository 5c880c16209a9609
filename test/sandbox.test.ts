import t from 'tap';
import { Sandbox } from '../src/core/sandbox.js';

t.test('shown: a real path as messages name it', async (t) => {
  const sandbox = new Sandbox('/srv/root');
  t.equal(sandbox.shown('/srv/root/install/netboot'), '/install/netboot', 'under the root: logical');
  t.equal(sandbox.shown('/var/lib/tables.json'), '/var/lib/tables.json', 'outside it: as it is');
  t.throws(() => sandbox.logical('/var/lib/tables.json'), { message: 'outside the sandbox root: /var/lib/tables.json' }, 'where logical() refuses');
  t.equal(new Sandbox().shown('/install/x'), '/install/x', 'no root: as it is');
});
