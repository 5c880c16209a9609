/**
 * Pure table changes of an import (section 5 steps 5, 9, 10): the osimage/linuximage/kit rows,
 * the litefile rows and the -p postscripts. Applied inside the store's one locked update, and to
 * a copy for --dry-run.
 */
import { TableError } from '../core/errors.js';
import type { Row, Tables } from '../tables/types.js';
import { TABLES } from '../tables/schema.js';
import type { ImportPlan } from './plan.js';

/** Nodes named by -p: node names and group names (members of nodelist.groups), expanded. */
export function resolveNodes(tables: Tables, noderange: string): { nodes: string[]; unknown: string[] } {
  const nodelist = tables.nodelist ?? [];
  const nodes = new Set<string>();
  const unknown: string[] = [];
  for (const name of noderange.split(',').map((s) => s.trim()).filter(Boolean)) {
    const direct = nodelist.filter((row) => row.node === name);
    const members = nodelist.filter((row) => (row.groups ?? '').split(',').map((g) => g.trim()).includes(name));
    if (!direct.length && !members.length) unknown.push(name);
    for (const row of [...direct, ...members]) nodes.add(row.node);
  }
  return { nodes: [...nodes], unknown };
}

/** The -p nodes, or a TableError when none of the names is a known node or group. */
export function postscriptNodes(tables: Tables, noderange: string, warn: (line: string) => void): string[] {
  const { nodes, unknown } = resolveNodes(tables, noderange);
  for (const name of unknown) warn(`Warning: ${name} is not a known node or group; skipped.`);
  if (!nodes.length) throw new TableError(`-p ${noderange}: no known node or group`, 'nodelist');
  return nodes;
}

/** A comma list without the entries the xcatdefaults row already runs. */
export function withoutDefaults(list: string | undefined, defaults: string | undefined): string {
  const skip = new Set((defaults ?? '').split(',').map((s) => s.trim()));
  return (list ?? '').split(',').map((s) => s.trim()).filter((s) => s && !skip.has(s)).join(',');
}

/** Only the table's columns, empty values dropped: a manifest cannot invent columns. */
export function keepColumns(table: string, row: Row): Row {
  const columns = new Set(TABLES[table]?.columns ?? []);
  return Object.fromEntries(Object.entries(row).filter(([k, v]) => columns.has(k) && v !== undefined && v !== ''));
}

/** Creates or updates the row whose key column equals row[key]. */
export function upsertRow(tables: Tables, table: string, key: string, row: Row): void {
  const rows = (tables[table] ??= []);
  const at = rows.findIndex((r) => r[key] === row[key]);
  if (at < 0) rows.push(row);
  else rows[at] = { ...rows[at], ...row };
}

export interface TableInputs {
  /** litefile rows for the imported image (from litefile.csv, merged), when statelite. */
  litefileRows?: Row[];
  /** -p: the nodes that get the bundle's postscripts. */
  nodes?: string[];
}

/** Applies the whole import to the tables (mutating them). */
export function applyImportToTables(tables: Tables, plan: ImportPlan, inputs: TableInputs): void {
  upsertRow(tables, 'osimage', 'imagename', keepColumns('osimage', plan.osimage));
  upsertRow(tables, 'linuximage', 'imagename', keepColumns('linuximage', plan.linuximage));
  const kitTables = [['kit', plan.manifest.kit], ['kitrepo', plan.manifest.kitrepo], ['kitcomponent', plan.manifest.kitcomp]] as const;
  for (const [table, rows] of kitTables) {
    for (const row of rows) upsertRow(tables, table, TABLES[table].key[0], keepColumns(table, row));
  }
  if (inputs.litefileRows) tables.litefile = inputs.litefileRows;
  if (inputs.nodes?.length) {
    const defaults = (tables.postscripts ?? []).find((r) => r.node === 'xcatdefaults');
    const postscripts = withoutDefaults(plan.manifest.postscripts, defaults?.postscripts);
    const postbootscripts = withoutDefaults(plan.manifest.postbootscripts, defaults?.postbootscripts);
    if (postscripts || postbootscripts) {
      for (const node of inputs.nodes) upsertRow(tables, 'postscripts', 'node', keepColumns('postscripts', { node, postscripts, postbootscripts }));
    }
  }
}

/** Rows present after and not before, per table: what --dry-run shows. */
export function changedRows(before: Tables, after: Tables): { table: string; row: Row }[] {
  const out: { table: string; row: Row }[] = [];
  for (const [table, rows] of Object.entries(after)) {
    const old = new Set((before[table] ?? []).map((r) => JSON.stringify(r)));
    for (const row of rows) if (!old.has(JSON.stringify(row))) out.push({ table, row });
  }
  return out;
}
