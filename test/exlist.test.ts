import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Sandbox } from '../src/core/sandbox.js';
import { PathError } from '../src/core/errors.js';
import {
  ALWAYS_EXCLUDED,
  exclusionTest,
  expandIncludes,
  findPathMatcher,
  loadPackRules,
  parseRuleLines,
} from '../src/pack/exlist.js';

t.test('parseRuleLines: comments, blanks, + and - prefixes', async (t) => {
  const rules = parseRuleLines(
    ['# a comment', '', './usr/share/doc*', '-./usr/share/man*   # trailing comment', '+./usr/share/doc/keep*', '   ', '\t# indented comment'].join(
      '\n',
    ),
  );
  t.same(rules.excludes, ['./usr/share/doc*', './usr/share/man*']);
  t.same(rules.includes, ['./usr/share/doc/keep*']);
  const crlf = parseRuleLines(['./opt/drop*   # why\r', '+./opt/drop/keep # back\r', '# only a comment\r', '\r'].join('\n'));
  t.same(crlf, { excludes: ['./opt/drop*'], includes: ['./opt/drop/keep'] }, 'CRLF lines: comments stripped as on LF lines');
});

t.test('findPathMatcher agrees with find -path on a real tree', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'exlist-find-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const files = [
    'usr/share/doc/pkg/README',
    'usr/share/docs-extra/x',
    'usr/share/man/man1/ls.1.gz',
    'usr/lib/locale/C.utf8/LC_CTYPE',
    'usr/lib/locale/de_DE/LC_CTYPE',
    'etc/a.conf',
    'etc/b.conf',
    'etc/[odd].conf',
    'etc/x?y',
    'etc/-.conf',
    'boot/vmlinuz-1',
    '.statelite/litefile.save',
    '.defaultfoo',
  ];
  for (const f of files) {
    mkdirSync(path.join(dir, path.dirname(f)), { recursive: true });
    writeFileSync(path.join(dir, f), 'x');
  }
  const all = execFileSync('find', ['.'], { cwd: dir, encoding: 'utf8' }).split('\n').filter(Boolean);
  const patterns = [
    './usr/share/doc*',
    './usr/share/doc',
    './usr/*/LC_CTYPE',
    './usr/lib/locale/[!C]*',
    './usr/lib/locale/[a-d]*',
    './etc/?.conf',
    './etc/[[]odd].conf',
    './etc/x\\?y',
    './etc/[[:alpha:]].conf',
    './etc/[[:print:]].conf',
    './etc/[[:graph:]].conf',
    './etc/x[[:punct:]]y',
    './etc/x[[:cntrl:]]y',
    '*.gz',
    './boot*',
    '.',
    './.statelite*',
    './usr/lib/locale/[z-a]*',
    './usr/lib/locale/[z-aC]*',
    './etc/[!z-a].conf',
    './etc/[a\\-c].conf',
    './etc/[a-].conf',
    './etc/-.conf',
  ];
  for (const pattern of patterns) {
    const byFind = execFileSync('find', ['.', '-path', pattern], { cwd: dir, encoding: 'utf8' }).split('\n').filter(Boolean).sort();
    const matches = findPathMatcher([pattern]);
    t.same(all.filter(matches).sort(), byFind, `pattern ${pattern}`);
  }
});

t.test('exclusionTest: excludes, + puts back, always-excluded statelite paths', async (t) => {
  const excluded = exclusionTest({
    excludes: [...ALWAYS_EXCLUDED, './usr/share/doc*'],
    includes: ['./usr/share/doc/keep*'],
  });
  t.equal(excluded('.'), false);
  t.equal(excluded('usr/share/doc'), true);
  t.equal(excluded('usr/share/doc/other/file'), true);
  t.equal(excluded('usr/share/doc/keep'), false);
  t.equal(excluded('usr/share/doc/keep/file'), false);
  t.equal(excluded('usr/share'), false);
  t.equal(excluded('.statelite/litefile.save'), true);
  t.equal(excluded('.default'), true);
  t.equal(excluded('.statebackup'), true);
  t.equal(excluded('etc/init.d/statelite'), true);
  t.equal(excluded('etc/rc.sysinit.backup'), true);
  t.equal(excluded('etc/init.d/statelite2'), false);
  t.equal(excluded('etc/rc.sysinit'), false);
});

t.test('expandIncludes: nested, relative to the top exlist, loops and missing files harmless', async (t) => {
  const files: Record<string, string> = {
    '/lists/a.exlist': 'a1\n#INCLUDE:b.exlist#\na2',
    '/lists/b.exlist': 'b1   \n\n#INCLUDE:/lists/a.exlist#\n#INCLUDE:c.exlist#\n#INCLUDE:missing.exlist#',
    '/lists/c.exlist': '+c1',
  };
  const warnings: string[] = [];
  const read = async (p: string) => files[p];
  const text = await expandIncludes(files['/lists/a.exlist'], '/lists', read, (w) => warnings.push(w), ['/lists/a.exlist']);
  t.same(parseRuleLines(text), { excludes: ['a1', 'b1', 'a2'], includes: ['c1'] });
  t.equal(warnings.length, 2);
  t.match(warnings[0], /includes itself/);
  t.match(warnings[1], /missing\.exlist/);
  // A self-include without a chain given still terminates.
  const self = await expandIncludes('#INCLUDE:c.exlist#', '/lists', async () => '#INCLUDE:c.exlist#\nx', () => {});
  t.same(parseRuleLines(self).excludes, ['x']);
});

t.test('loadPackRules: comma-separated exlists mapped through the sandbox', async (t) => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'exlist-root-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  mkdirSync(path.join(root, 'opt/lists'), { recursive: true });
  writeFileSync(path.join(root, 'opt/lists/one.exlist'), './one*\n#INCLUDE:inc.exlist#\n');
  writeFileSync(path.join(root, 'opt/lists/inc.exlist'), '+./one/keep\n');
  writeFileSync(path.join(root, 'opt/lists/two.exlist'), '-./two*\n');
  const sandbox = new Sandbox(root);
  const rules = await loadPackRules('/opt/lists/one.exlist,/opt/lists/two.exlist', sandbox, () => {});
  t.same(rules.excludes, [...ALWAYS_EXCLUDED, './one*', './two*']);
  t.same(rules.includes, ['./one/keep']);
  t.same(await loadPackRules(undefined, sandbox, () => {}), { excludes: ALWAYS_EXCLUDED, includes: [] });
  await t.rejects(loadPackRules('/opt/lists/none.exlist', sandbox, () => {}), PathError);
  await t.rejects(loadPackRules('/opt/lists/none.exlist', sandbox, () => {}), { message: /\/opt\/lists\/none\.exlist/ });
});
