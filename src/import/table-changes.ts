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
  // In the schema's order, as the table file holds them: the key first.
  return Object.fromEntries((TABLES[table]?.columns ?? []).filter((column) => row[column] !== undefined && row[column] !== '').map((column) => [column, row[column]]));
}

/**
 * What a table write does to each row it touches: `row` holds the key and the columns it sets
 * (merged into the row with that key, or a new row), `cleared` the columns it removes. Other
 * columns are left as they are, so a change made meanwhile (a chdef of another column) stands.
 */
export type WrittenRows = { table: string; row: Row; cleared?: string[] }[];

/** The row of `table` with the key of `row`, or -1. */
function rowWithKey(tables: Tables, table: string, row: Row): number {
  const key = TABLES[table].key;
  return (tables[table] ?? []).findIndex((held) => key.every((column) => held[column] === row[column]));
}

/** Whether the tables hold every written row: its set columns with their values, none of its cleared ones. */
export function rowsHeld(tables: Tables, rows: WrittenRows): boolean {
  return rows.every(({ table, row, cleared = [] }) => {
    const held = tables[table]?.[rowWithKey(tables, table, row)];
    return !!held && Object.entries(row).every(([column, value]) => held[column] === value) && cleared.every((column) => !(column in held));
  });
}

/**
 * A table write made again from its rows alone (a killed import's, from its journal), as the
 * write does it: merged into the row with the same key, or added. Done twice, it changes nothing.
 */
export function writeRowsAgain(tables: Tables, rows: WrittenRows): void {
  for (const { table, row, cleared = [] } of rows) {
    const held = (tables[table] ??= []);
    const at = rowWithKey(tables, table, row);
    const merged = { ...(at < 0 ? {} : held[at]), ...row };
    for (const column of cleared) delete merged[column];
    if (at < 0) held.push(merged);
    else held[at] = merged;
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
  /** What litefile.csv does to the imported image's litefile rows (litefileChanges), when statelite. */
  litefile?: { row: Row; cleared: string[] }[];
  /** -p: the nodes that get the bundle's postscripts. */
  nodes?: string[];
}

/**
 * Applies the whole import to the tables (mutating them). Returns what it does to every row it
 * writes (what --dry-run shows, and a killed import's recovery does again), changed or not.
 */
export function applyImportToTables(tables: Tables, plan: ImportPlan, inputs: TableInputs): WrittenRows {
  const written: WrittenRows = [];
  // Written the way a killed import's recovery writes them again: the same result.
  const write = (entry: WrittenRows[number]) => {
    writeRowsAgain(tables, [entry]);
    written.push(entry);
  };
  write({ table: 'osimage', row: keepColumns('osimage', plan.osimage) });
  write({ table: 'linuximage', row: keepColumns('linuximage', plan.linuximage) });
  const kitTables = [['kit', plan.manifest.kit], ['kitrepo', plan.manifest.kitrepo], ['kitcomponent', plan.manifest.kitcomp]] as const;
  for (const [table, rows] of kitTables) {
    for (const row of rows) write({ table, row: keepColumns(table, row) });
  }
  for (const change of inputs.litefile ?? []) write({ table: 'litefile', ...change });
  if (inputs.nodes?.length) {
    const defaults = (tables.postscripts ?? []).find((r) => r.node === DEFAULTS_ROW);
    const postscripts = withoutDefaults(plan.manifest.postscripts, defaults?.postscripts);
    const postbootscripts = withoutDefaults(plan.manifest.postbootscripts, defaults?.postbootscripts);
    if (postscripts || postbootscripts) {
      // Both columns are set, as xCAT's set_postscripts does: an empty one clears what the node had
      // (removed: the store keeps no empty values).
      const set: Row = { ...(postscripts && { postscripts }), ...(postbootscripts && { postbootscripts }) };
      const cleared = ['postscripts', 'postbootscripts'].filter((column) => !(column in set));
      for (const node of inputs.nodes) write({ table: 'postscripts', row: { node, ...set }, cleared });
    }
  }
  return written;
}
