import { BundleError, TableError } from '../core/errors.js';
import { isDisabled, listItems, type Row, type Tables } from '../tables/types.js';
import { LITEFILE_MEMBER } from './manifest.js';

/**
 * A statelite image's litefile.csv (xcat-bundle-format.md section 3): written on export from the
 * litefile rows that apply to the image, turned back into litefile rows on import (section 5 step 9).
 */

export interface LitefileEntry {
  file: string;
  options: string;
}

const DEFAULT_OPTIONS = 'tmpfs';

/** Characters a quoted CSV field as xCAT writes it cannot carry. */
const UNWRITABLE = /["\x00-\x1F\x7F]/;

function imageOf(row: Row): string {
  return row.image ?? '';
}

/**
 * The litefile rows that apply to `imagename`, in xCAT's order: rows with no image, then rows for
 * the osimage's groups (comma list) when it has any, else rows for ALL, then the image's own rows.
 */
export function litefileRowsForImage(tables: Tables, imagename: string): Row[] {
  const litefile = tables.litefile ?? [];
  const groups = (tables.osimage ?? []).find((row) => row.imagename === imagename)?.groups;
  const shared = groups ? listItems(groups) : ['ALL'];
  const rowsFor = (image: string) => litefile.filter((row) => imageOf(row) === image);
  return [...rowsFor(''), ...shared.flatMap(rowsFor), ...rowsFor(imagename)];
}

/**
 * litefile.csv text: `"IMAGENAME","FILE","OPTIONS",,` per row that has a file, options defaulting
 * to tmpfs. A value with a quote or control character is refused: xCAT's reader could not split it.
 */
export function formatLitefileCsv(imagename: string, rows: Row[]): string {
  return rows
    .filter((row) => row.file)
    .map((row) => {
      const fields = [imagename, row.file!, row.options || DEFAULT_OPTIONS];
      const bad = fields.find((field) => UNWRITABLE.test(field));
      if (bad !== undefined) {
        throw new TableError(`litefile: ${JSON.stringify(bad)} cannot be written to litefile.csv (quote or control character)`, 'litefile');
      }
      return `${fields.map((field) => `"${field}"`).join(',')},,\n`;
    })
    .join('');
}

/**
 * Splits one CSV line into fields: quoted ("" inside stands for a quote) or bare. Undefined when
 * the quoting is broken.
 */
function splitCsvLine(line: string): string[] | undefined {
  const fields: string[] = [];
  const field = /\s*(?:"((?:[^"]|"")*)"|([^,"]*?))\s*(,|$)/y;
  let at = 0;
  for (;;) {
    field.lastIndex = at;
    const match = field.exec(line);
    if (!match) return undefined;
    fields.push(match[1] !== undefined ? match[1].replace(/""/g, '"') : match[2]!);
    if (match[3] === '') return fields;
    at = field.lastIndex;
  }
}

/**
 * The (file, options) pairs of a bundle's litefile.csv. The image column is ignored (import
 * replaces it); blank lines are skipped; a line without a file, or with broken quoting or control
 * characters, is refused with BundleError naming `member` and the line.
 */
export function parseLitefileCsv(text: string, member = LITEFILE_MEMBER): LitefileEntry[] {
  const entries: LitefileEntry[] = [];
  text.split(/\r?\n/).forEach((line, index) => {
    if (line.trim() === '') return;
    const fail = (problem: string) => new BundleError(`${member}: line ${index + 1}: ${problem}`, member);
    if (/[\x00-\x08\x0B-\x1F\x7F]/.test(line)) throw fail('control character');
    const fields = splitCsvLine(line);
    if (!fields) throw fail('broken quoting');
    const [, file, options] = fields;
    if (!file) throw fail('no file (expected "IMAGE","FILE","OPTIONS",,)');
    entries.push({ file, options: options ?? '' });
  });
  return entries;
}

/**
 * What importing `entries` for `imagename` does to the litefile table: each entry sets the row
 * (imagename, file) to its options (cleared when it has none; other columns kept, a new row
 * added), unless an ALL row already has the same file and options.
 */
export function litefileChanges(tables: Tables, imagename: string, entries: LitefileEntry[]): { row: Row; cleared: string[] }[] {
  // A disabled ALL row covers nothing (xCAT's lookups skip it).
  const allRows = (tables.litefile ?? []).filter((row) => row.image === 'ALL' && !isDisabled(row));
  return entries
    .filter(({ file, options }) => !allRows.some((row) => row.file === file && (row.options ?? '') === options))
    .map(({ file, options }) => ({ row: { image: imagename, file, ...(options && { options }) }, cleared: options ? [] : ['options'] }));
}
