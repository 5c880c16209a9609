import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatLitefileCsv, litefileChanges, litefileRowsForImage, parseLitefileCsv, type LitefileEntry } from '../src/xcat/litefile.js';
import { writeRowsAgain } from '../src/import/table-changes.js';
import { BundleError, TableError } from '../src/core/errors.js';
import type { Tables } from '../src/tables/types.js';

import { FIXTURES } from './helpers/shared.js';
const IMAGE = 'rhels8.5.0-x86_64-statelite-compute';
const source = JSON.parse(readFileSync(join(FIXTURES, 'source-tables.json'), 'utf8')) as Tables;

const work = mkdtempSync(join(tmpdir(), 'litefile-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));
execFileSync('tar', ['xzf', join(FIXTURES, 'statelite.tgz'), '-C', work]);
const fixtureCsv = readFileSync(join(work, IMAGE, 'litefile.csv'), 'utf8');

function expectedTables(name: string): Tables {
  return JSON.parse(readFileSync(join(FIXTURES, `${name}.expected.json`), 'utf8')).tables_after as Tables;
}

t.test('export: litefile.csv byte-identical to xCAT\'s', async (t) => {
  const rows = litefileRowsForImage(source, IMAGE);
  t.same(rows.map((r) => r.file), ['/etc/adjtime', '/var/log/', '/etc/ssh/'], 'ALL rows, then the image\'s');
  t.equal(formatLitefileCsv(IMAGE, rows), fixtureCsv);
});

t.test('export: row selection order with and without osimage groups', async (t) => {
  const tables: Tables = {
    osimage: [{ imagename: 'grouped', groups: 'g2,g1' }, { imagename: 'plain' }],
    litefile: [
      { image: 'grouped', file: '/own' },
      { image: 'ALL', file: '/all' },
      { image: 'g1', file: '/g1', options: 'persistent' },
      { file: '/noimage' },
      { image: 'g2', file: '/g2' },
      { image: 'other', file: '/other' },
      { image: '', file: '/empty', options: 'rw' },
      { image: 'plain', file: '/plain' },
      { image: 'plain' },
    ],
  };
  t.same(litefileRowsForImage(tables, 'grouped').map((r) => r.file), ['/noimage', '/empty', '/g2', '/g1', '/own']);
  const plain = litefileRowsForImage(tables, 'plain');
  t.same(plain.map((r) => r.file), ['/noimage', '/empty', '/all', '/plain', undefined]);
  t.equal(formatLitefileCsv('plain', plain),
    '"plain","/noimage","tmpfs",,\n"plain","/empty","rw",,\n"plain","/all","tmpfs",,\n"plain","/plain","tmpfs",,\n',
    'rows without a file are skipped, options default to tmpfs');
  t.same(litefileRowsForImage({}, 'x'), [], 'no litefile table');
});

t.test('export: a value the CSV cannot carry is refused', async (t) => {
  t.throws(() => formatLitefileCsv('img', [{ file: '/a"b' }]), new TableError('litefile: "/a\\"b" cannot be written to litefile.csv (quote or control character)', 'litefile'));
  t.throws(() => formatLitefileCsv('img', [{ file: '/a\nb' }]), { name: 'TableError', table: 'litefile' });
});

t.test('import: parse xCAT\'s file and tolerant variants', async (t) => {
  t.same(parseLitefileCsv(fixtureCsv), [
    { file: '/etc/adjtime', options: 'tmpfs' },
    { file: '/var/log/', options: 'persistent' },
    { file: '/etc/ssh/', options: 'tmpfs' },
  ]);
  t.same(parseLitefileCsv('img,/bare,persistent\r\n\n  \n"img", "/spaced" ,"tmpfs",,\n"img","/q""uote","",,\n"img","/a,b"\n'), [
    { file: '/bare', options: 'persistent' },
    { file: '/spaced', options: 'tmpfs' },
    { file: '/q"uote', options: '' },
    { file: '/a,b', options: '' },
  ]);
});

t.test('import: garbage is refused naming the member and line', async (t) => {
  const refused = (text: string, line: number, problem: string) =>
    t.throws(() => parseLitefileCsv(text, 'IMG/litefile.csv'),
      new BundleError(`IMG/litefile.csv: line ${line}: ${problem}`, 'IMG/litefile.csv'), JSON.stringify(text));
  refused('"img","/ok","tmpfs",,\n"img","/broken,"tmpfs",,\n', 2, 'broken quoting');
  refused('"img","","tmpfs",,\n', 1, 'no file (expected "IMAGE","FILE","OPTIONS",,)');
  refused('just one field\n', 1, 'no file (expected "IMAGE","FILE","OPTIONS",,)');
  refused('"img","/a\u0001","tmpfs",,\n', 1, 'control character');
});

/** The litefile table after an import's changes, written as the import writes them (the tables left untouched). */
function mergeLitefileRows(tables: Tables, imagename: string, entries: LitefileEntry[]): Tables['litefile'] {
  const after = structuredClone(tables);
  writeRowsAgain(after, litefileChanges(tables, imagename, entries).map((change) => ({ table: 'litefile', ...change })));
  return after.litefile ?? [];
}

t.test('import: merged rows match what xCAT\'s import left in the litefile table', async (t) => {
  const before: Tables = { litefile: [{ image: 'ALL', file: '/etc/adjtime', options: 'tmpfs' }] };
  const parsed = parseLitefileCsv(fixtureCsv);
  t.same(mergeLitefileRows(before, IMAGE, parsed), expectedTables('statelite').litefile);
  t.same(mergeLitefileRows(before, 'rhels8.5.0-x86_64-statelite-compute_test', parsed),
    expectedTables('statelite-f-p').litefile, 'with -f the new image name is used');
  t.same(before.litefile, [{ image: 'ALL', file: '/etc/adjtime', options: 'tmpfs' }], 'input tables untouched');
});

t.test('import: existing rows of the image are updated in place', async (t) => {
  const tables: Tables = {
    litefile: [
      { image: 'img', file: '/var/log/', options: 'tmpfs', comments: 'keep me' },
      { image: 'ALL', file: '/etc/adjtime', options: 'persistent' },
    ],
  };
  const merged = mergeLitefileRows(tables, 'img', [
    { file: '/var/log/', options: 'persistent' },
    { file: '/etc/adjtime', options: 'tmpfs' },
    { file: '/none', options: '' },
  ]);
  t.same(merged, [
    { image: 'img', file: '/var/log/', options: 'persistent', comments: 'keep me' },
    { image: 'ALL', file: '/etc/adjtime', options: 'persistent' },
    { image: 'img', file: '/etc/adjtime', options: 'tmpfs' },
    { image: 'img', file: '/none' },
  ], 'an ALL row with other options does not hide the entry');
});

t.test('merging ignores a disabled ALL row: the bundle\'s entry is added for the image', async (t) => {
  const tables = { litefile: [{ image: 'ALL', file: '/etc/adjtime', options: 'tmpfs', disable: '1' }, { image: 'ALL', file: '/var/log/', options: 'persistent' }] };
  const rows = mergeLitefileRows(tables, 'img', [{ file: '/etc/adjtime', options: 'tmpfs' }, { file: '/var/log/', options: 'persistent' }]);
  t.same(rows.filter((row) => row.image === 'img'), [{ image: 'img', file: '/etc/adjtime', options: 'tmpfs' }], 'added; /var/log/ stays covered by the enabled ALL row');
  t.same(tables.litefile[0].disable, '1', 'the disabled row is left as it was');
});
