/**
 * Pure table changes of an import (section 5 steps 5, 9, 10): the osimage/linuximage/kit rows,
 * the litefile rows and the -p postscripts. Applied inside the store's one locked update, and to
 * a copy for --dry-run.
 */
import { TableError } from '../core/errors.js';
import { listItems, type Row, type Tables } from '../tables/types.js';
import { DEFAULTS_ROW, TABLES } from '../tables/schema.js';
import { expandNoderange } from '../tables/noderange.js';
import type { ImportPlan } from './plan.js';

/** The -p nodes (a noderange), or a TableError when it names no known node. */
export function postscriptNodes(tables: Tables, noderange: string, warn: (line: string) => void): string[] {
  const { nodes, unknown } = expandNoderange(tables, noderange);
  if (!nodes.length) throw new TableError(`The nodes ${noderange} are not defined in xCAT DB.`, 'nodelist');
  if (unknown.length) warn(`Warning: The following nodes will be skipped because they are not in the nodelist table.\n  ${unknown.join(',')}`);
  return nodes;
}

/** A comma list without the entries the xcatdefaults row already runs. */
export function withoutDefaults(list: string | undefined, defaults: string | undefined): string {
  const skip = new Set(listItems(defaults));
  return listItems(list).filter((s) => !skip.has(s)).join(',');
}

/** Only the table's columns, empty values dropped: a manifest cannot invent columns. */
function keepColumns(table: string, row: Row): Row {
  const columns = new Set(TABLES[table]?.columns ?? []);
  return Object.fromEntries(Object.entries(row).filter(([k, v]) => columns.has(k) && v !== undefined && v !== ''));
}

/** Creates or updates the row whose key column equals row[key]; returns the row as it now is. */
export function upsertRow(tables: Tables, table: string, key: string, row: Row): Row {
  const rows = (tables[table] ??= []);
  const at = rows.findIndex((r) => r[key] === row[key]);
  if (at < 0) rows.push(row);
  else rows[at] = { ...rows[at], ...row };
  return at < 0 ? row : rows[at];
}

/** A column set to `value`, or removed (the store keeps no empty values) when it is empty. */
function setOrClear(row: Row, column: string, value: string): void {
  if (value) row[column] = value;
  else delete row[column];
}

/** The rows a table write sets, each as the write leaves it. */
export type WrittenRows = { table: string; row: Row }[];

/**
 * A table write made again from its rows alone (a killed import's, from its journal): each
 * replaces the row with the same key, or is added, as the write did. Done twice, it changes nothing.
 */
export function writeRowsAgain(tables: Tables, rows: WrittenRows): void {
  for (const { table, row } of rows) {
    const key = TABLES[table].key;
    const held = (tables[table] ??= []);
    const at = held.findIndex((r) => key.every((column) => r[column] === row[column]));
    if (at < 0) held.push({ ...row });
    else held[at] = { ...row };
  }
}

/** The tables an import writes (applyImportToTables). */
const IMPORT_TABLES = new Set(['osimage', 'linuximage', 'kit', 'kitrepo', 'kitcomponent', 'litefile', 'postscripts']);

/**
 * Whether an import of `image` could have written this row: what a journal's rows (read from
 * disk) must be before a recovery writes them again. Its own definition and litefile rows, kit
 * rows, and postscripts rows of nodes (never the xcatdefaults row); every value a string.
 */
export function isImportRow(image: string, written: { table: unknown; row: unknown }): boolean {
  const { table, row } = written;
  if (typeof table !== 'string' || !IMPORT_TABLES.has(table) || typeof row !== 'object' || row === null) return false;
  const values = row as Record<string, unknown>;
  if (!Object.values(values).every((value) => typeof value === 'string')) return false;
  if (table === 'osimage' || table === 'linuximage') return values.imagename === image;
  if (table === 'litefile') return values.image === image;
  return table !== 'postscripts' || values.node !== DEFAULTS_ROW;
}

export interface TableInputs {
  /** litefile rows for the imported image (from litefile.csv, merged), when statelite. */
  litefileRows?: Row[];
  /** -p: the nodes that get the bundle's postscripts. */
  nodes?: string[];
}

/**
 * Applies the whole import to the tables (mutating them). Returns every row it writes, as it is
 * afterwards (what --dry-run shows), changed or not.
 */
export function applyImportToTables(tables: Tables, plan: ImportPlan, inputs: TableInputs): WrittenRows {
  const written: WrittenRows = [];
  const upsert = (table: string, key: string, row: Row) => written.push({ table, row: upsertRow(tables, table, key, keepColumns(table, row)) });
  upsert('osimage', 'imagename', plan.osimage);
  upsert('linuximage', 'imagename', plan.linuximage);
  const kitTables = [['kit', plan.manifest.kit], ['kitrepo', plan.manifest.kitrepo], ['kitcomponent', plan.manifest.kitcomp]] as const;
  for (const [table, rows] of kitTables) {
    for (const row of rows) upsert(table, TABLES[table].key[0], row);
  }
  if (inputs.litefileRows) {
    tables.litefile = inputs.litefileRows;
    for (const row of inputs.litefileRows) if (row.image === plan.imagename) written.push({ table: 'litefile', row });
  }
  if (inputs.nodes?.length) {
    const defaults = (tables.postscripts ?? []).find((r) => r.node === DEFAULTS_ROW);
    const postscripts = withoutDefaults(plan.manifest.postscripts, defaults?.postscripts);
    const postbootscripts = withoutDefaults(plan.manifest.postbootscripts, defaults?.postbootscripts);
    if (postscripts || postbootscripts) {
      // Both columns are set, as xCAT's set_postscripts does: an empty one clears what the node had.
      for (const node of inputs.nodes) {
        const row = upsertRow(tables, 'postscripts', 'node', { node });
        setOrClear(row, 'postscripts', postscripts);
        setOrClear(row, 'postbootscripts', postbootscripts);
        written.push({ table: 'postscripts', row });
      }
    }
  }
  return written;
}
