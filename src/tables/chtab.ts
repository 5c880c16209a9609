import { TableError, UsageError } from '../core/errors.js';
import { checkColumn, checkTable, LINE_BREAK_OR_CONTROL } from './schema.js';
import { listItems, type Row, type Tables } from './types.js';
import { checkGroupNames, checkObjectName, ObjectTables, refuseDefaultsRow } from './objects.js';

/**
 * xCAT's chtab on the tables: `KEYCOL=KEYVAL... TABLE.COLUMN=VALUE...` sets columns of the row
 * the keys select, adding it when there is none (`+=` appends to a comma-separated list);
 * `-d KEYCOL=KEYVAL... TABLE` deletes it. The way to set what no object type holds, such as the
 * site table's `installdir`. Pure functions on `Tables`, changed in place.
 */

export interface ChtabAssignment {
  column: string;
  value: string;
  /** `+=`: append to the current value, comma-separated (a value already listed is not repeated). */
  append: boolean;
}

export interface ChtabChange {
  table: string;
  /** key column -> value: the row changed (every key column of the table). */
  keys: Record<string, string>;
  assignments: ChtabAssignment[];
}

/** Parses chtab's arguments: `KEYCOL=KEYVAL` (no dot) and `TABLE.COLUMN=VALUE` or `TABLE.COLUMN+=VALUE`, one table. */
export function parseChtabArgs(args: string[]): ChtabChange {
  const keys: Record<string, string> = {};
  const assignments: ChtabAssignment[] = [];
  const tables = new Set<string>();
  for (const arg of args) {
    const match = /^([A-Za-z_][\w]*)(?:\.([A-Za-z_]\w*))?(\+?)=(.*)$/s.exec(arg);
    if (!match) throw new UsageError(`'${arg}' is neither KEYCOL=KEYVALUE nor TABLE.COLUMN=VALUE`);
    const [, first, column, plus, value] = match;
    if (LINE_BREAK_OR_CONTROL.test(value)) throw new UsageError(`'${arg}': a value cannot hold a line break or control character`);
    if (column === undefined) {
      if (plus) throw new UsageError(`'${arg}': += applies to TABLE.COLUMN, not to a key`);
      keys[first] = value;
    } else {
      tables.add(first);
      assignments.push({ column, value, append: plus === '+' });
    }
  }
  if (tables.size !== 1) throw new UsageError(tables.size ? `one table at a time, not ${[...tables].join(' and ')}` : 'nothing to set: give TABLE.COLUMN=VALUE');
  const [table] = tables;
  checkKeys(table, keys);
  // A row it adds names an object: it must be a name lsdef -z can write (deleting one need not be).
  if (Object.hasOwn(OBJECT_NAME_KEYS, table)) checkObjectName(keys[OBJECT_NAME_KEYS[table]]);
  if (table === 'nodelist') refuseDefaultsRow(keys.node, 'a node');
  for (const { column, value } of assignments) {
    checkColumn(table, column);
    if (table === 'nodelist' && column === 'groups') checkGroupNames(value);
    if (Object.hasOwn(keys, column)) throw new UsageError(`${table}.${column} is a key column: the row is chosen by it, not changed`);
    if (table === 'site' && keys.key === 'installdir' && column === 'value' && value !== '' && !value.startsWith('/')) {
      throw new UsageError(`the install directory must be an absolute path, not '${value}'`);
    }
  }
  return { table, keys, assignments };
}

/** Tables whose key names an object: the key follows the object naming rules (lsdef -z must load back). */
const OBJECT_NAME_KEYS: Record<string, string> = { osimage: 'imagename', linuximage: 'imagename', nodelist: 'node', postscripts: 'node' };

/** The keys must be exactly the table's key columns, with a value each. */
export function checkKeys(table: string, keys: Record<string, string>): void {
  const { key } = checkTable(table);
  const given = Object.keys(keys);
  const missing = key.filter((column) => !given.includes(column));
  const extra = given.filter((column) => !key.includes(column));
  if (missing.length || extra.length) {
    throw new UsageError(`the rows of ${table} are chosen by ${key.map((k) => `${k}=VALUE`).join(' ')}${extra.length ? `, not by ${extra.join(', ')}` : ''}`);
  }
  for (const column of key) if (keys[column] === '') throw new UsageError(`${column} cannot be empty: it names the row`);
}

const selects = (keys: Record<string, string>) => (row: Row): boolean => Object.entries(keys).every(([column, value]) => row[column] === value);

/** Applies a change; returns whether the row was added. An empty value clears the column. */
export function applyChtab(tables: Tables, change: ChtabChange): boolean {
  const rows = (tables[change.table] ??= []);
  let row = rows.find(selects(change.keys));
  const added = row === undefined;
  // mkdef's rule: a node and a group never share a name, nor so a postscripts row.
  const objects = change.table === 'nodelist' ? new ObjectTables(tables) : undefined;
  if (added) objects?.refuseNodeNamedAsGroup(change.keys.node);
  row ??= rows[rows.push({ ...change.keys }) - 1];
  for (const { column, value, append } of change.assignments) {
    const next = append ? appendToList(row[column], value) : value;
    if (next === '') delete row[column];
    else row[column] = next;
  }
  if (objects) objects.refuseNodesAsGroups(listItems(row.groups));
  return added;
}

/** `a,b` += `c` is `a,b,c`; a value already listed stays once. */
function appendToList(current: string | undefined, value: string): string {
  const items = (current ?? '').split(',').filter(Boolean);
  for (const item of value.split(',').filter(Boolean)) if (!items.includes(item)) items.push(item);
  return items.join(',');
}

/** Parses `chtab -d`'s arguments: `KEYCOL=KEYVAL`... and one TABLE. */
export function parseChtabDelete(args: string[]): { table: string; keys: Record<string, string> } {
  const tables = args.filter((arg) => !arg.includes('='));
  if (tables.length !== 1) throw new UsageError('-d takes the keys and one TABLE');
  const keys: Record<string, string> = {};
  for (const arg of args.filter((a) => a.includes('='))) keys[arg.slice(0, arg.indexOf('='))] = arg.slice(arg.indexOf('=') + 1);
  checkKeys(tables[0], keys);
  return { table: tables[0], keys };
}

/** Deletes the row the keys select; a missing row is an error (nothing was meant to be kept). */
export function deleteChtabRow(tables: Tables, table: string, keys: Record<string, string>): void {
  const rows = tables[table] ?? [];
  const index = rows.findIndex(selects(keys));
  if (index < 0) throw new TableError(`no row of ${table} has ${Object.entries(keys).map(([k, v]) => `${k}=${v}`).join(' ')}`, table);
  rows.splice(index, 1);
}
