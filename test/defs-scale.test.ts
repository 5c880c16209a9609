import t from 'tap';
import { defsSandbox } from './helpers/defs-sandbox.js';

t.test('mkdef and lsdef -l of 5,000 nodes take a time that grows with their number, not its square', async (t) => {
  const { imgport } = defsSandbox(t);
  const names = Array.from({ length: 5000 }, (_, i) => `n${i + 1}`);
  // Linear: about a second each here, even with the rest of the suite running; one lookup per object
  // that scanned the tables took 24 s and 16 s.
  const started = Date.now();
  const made = imgport(['mkdef', '-t', 'node', '-o', names.join(','), 'groups=compute,all', 'postscripts=mine']);
  t.same(made, { code: 0, stdout: '5000 object definitions have been created or modified.\n', stderr: '' });
  const listed = imgport(['lsdef', '-t', 'node', '-l']);
  const seconds = (Date.now() - started) / 1000;
  t.equal(listed.code, 0, listed.stderr);
  t.equal(listed.stdout.split('Object name: ').length - 1, 5000);
  t.match(listed.stdout, /^Object name: n1\n    groups=compute,all\n    postscripts=mine\n\nObject name: n10\n/);
  t.ok(seconds < 15, `both in ${seconds} s`);
});
