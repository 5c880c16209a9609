import { TableError } from '../core/errors.js';
import { checkAttribute, GROUP_MEMBERS_ATTRIBUTE, LINE_BREAK_OR_CONTROL, OBJECT_SCHEMAS, TABLES, type ObjectType } from './schema.js';
import type { Row, Tables } from './types.js';

/**
 * xCAT's object view of the tables (docs/xcat-tables.md, "Objects"): pure functions that read or
 * change `Tables` in place. Each table of an object type is keyed by its single key column, which
 * holds the object name.
 */

/** attribute -> value; in changes an empty value clears the attribute. */
export type Attributes = Record<string, string>;

export interface ObjectDefinition {
  name: string;
  type: ObjectType;
  attributes: Attributes;
}

const keyOf = (table: string): string => TABLES[table].key[0];

function findRow(tables: Tables, table: string, name: string): Row | undefined {
  return tables[table]?.find((row) => row[keyOf(table)] === name);
}

function splitList(value: string | undefined): string[] {
  return (value ?? '').split(',').filter((item) => item !== '');
}

/** The names of every node (nodelist rows). */
function nodeNames(tables: Tables): Set<string> {
  return new Set((tables.nodelist ?? []).map((row) => row.node));
}

/** Nodes whose nodelist.groups names the group, in table order. */
function groupMembers(tables: Tables, group: string): string[] {
  return (tables.nodelist ?? []).filter((row) => splitList(row.groups).includes(group)).map((row) => row.node);
}

/** Names of the objects of a type, sorted. */
export function listObjects(tables: Tables, type: ObjectType): string[] {
  const names = new Set<string>();
  for (const table of OBJECT_SCHEMAS[type].definingTables) for (const row of tables[table] ?? []) names.add(row[keyOf(table)]);
  if (type === 'group') {
    const nodes = nodeNames(tables);
    for (const name of names) if (nodes.has(name)) names.delete(name); // a node's own postscripts row
    for (const row of tables.nodelist ?? []) for (const group of splitList(row.groups)) names.add(group);
  }
  return [...names].sort();
}

export function objectExists(tables: Tables, type: ObjectType, name: string): boolean {
  return listObjects(tables, type).includes(name);
}

/**
 * Whether the object has rows of its own. A group that exists only as nodes' membership has
 * none: defining it (mkdef, or a stanza file from lsdef -z after its nodes) is no conflict.
 */
function isDefined(tables: Tables, type: ObjectType, name: string): boolean {
  if (type !== 'group') return objectExists(tables, type, name);
  return objectExists(tables, type, name) && OBJECT_SCHEMAS.group.definingTables.some((table) => findRow(tables, table, name) !== undefined);
}

/** The attributes of an object (unset ones absent), or undefined when it does not exist. */
export function getObject(tables: Tables, type: ObjectType, name: string): Attributes | undefined {
  if (!objectExists(tables, type, name)) return undefined;
  const attributes: Attributes = {};
  for (const [attribute, { table, column }] of Object.entries(OBJECT_SCHEMAS[type].attributes)) {
    const value = findRow(tables, table, name)?.[column];
    if (value !== undefined && value !== '') attributes[attribute] = value;
  }
  if (type === 'group') {
    const members = groupMembers(tables, name);
    if (members.length) attributes[GROUP_MEMBERS_ATTRIBUTE] = members.join(',');
  }
  return attributes;
}

/** Checks every attribute name and value of a change before anything is touched. */
function checkAttributes(type: ObjectType, attributes: Attributes): void {
  for (const [attribute, value] of Object.entries(attributes)) {
    checkAttribute(type, attribute);
    if (LINE_BREAK_OR_CONTROL.test(value)) throw new TableError(`the value of ${attribute} holds a control character (a line break?), which a table value cannot`);
  }
}

/** What an object name cannot hold: list and assignment separators, white space, control characters. */
const BAD_NAME = /[\s,:=\x00-\x1f\x7f]/;

/** Refuses a name no object may have: it would break a stanza file or a comma list. */
export function checkObjectName(name: string): void {
  if (!name || BAD_NAME.test(name)) throw new TableError(`'${name}' cannot name an object: no white space, ',', ':', '=' or control characters`);
}

/** The other type sharing a node's postscripts row: a node and a group of one name would share it. */
const RIVAL: Partial<Record<ObjectType, ObjectType>> = { node: 'group', group: 'node' };

function missing(type: ObjectType, name: string): TableError {
  return new TableError(`could not find an object named '${name}' of type '${type}'`, OBJECT_SCHEMAS[type].definingTables[0]);
}

/** Defines a new object; an existing one is an error unless `force`, which replaces it. */
export function createObject(tables: Tables, type: ObjectType, name: string, attributes: Attributes, force = false): void {
  checkAttributes(type, attributes);
  checkObjectName(name);
  const rival = RIVAL[type];
  if (rival && objectExists(tables, rival, name)) {
    throw new TableError(`'${name}' is already a ${rival}: a node and a group cannot share a name (they would share one postscripts row)`, 'nodelist');
  }
  if (isDefined(tables, type, name)) {
    if (!force) {
      throw new TableError(
        `an object named '${name}' of type '${type}' already exists (use -f to replace it)`,
        OBJECT_SCHEMAS[type].definingTables[0],
      );
    }
    deleteObject(tables, type, name);
  }
  for (const table of OBJECT_SCHEMAS[type].definingTables) (tables[table] ??= []).push({ [keyOf(table)]: name });
  applyAttributes(tables, type, name, attributes);
}

/** Changes attributes of an existing object; an empty value clears the attribute. */
export function changeObject(tables: Tables, type: ObjectType, name: string, attributes: Attributes): void {
  checkAttributes(type, attributes);
  if (!objectExists(tables, type, name)) throw missing(type, name);
  applyAttributes(tables, type, name, attributes);
}

/** Removes an object: its rows in every table of its type (and a group from its members). */
export function deleteObject(tables: Tables, type: ObjectType, name: string): void {
  if (!objectExists(tables, type, name)) throw missing(type, name);
  const ownTables = new Set(Object.values(OBJECT_SCHEMAS[type].attributes).map(({ table }) => table));
  for (const table of ownTables) {
    if (tables[table]) tables[table] = tables[table].filter((row) => row[keyOf(table)] !== name);
  }
  if (type === 'group') setGroupMembers(tables, name, []);
}

function applyAttributes(tables: Tables, type: ObjectType, name: string, attributes: Attributes): void {
  const schema = OBJECT_SCHEMAS[type];
  for (const [attribute, value] of Object.entries(attributes)) {
    if (type === 'group' && attribute === GROUP_MEMBERS_ATTRIBUTE) {
      setGroupMembers(tables, name, splitList(value));
      continue;
    }
    if (type === 'node' && attribute === 'groups') refuseNodesAsGroups(tables, splitList(value));
    const { table, column } = schema.attributes[attribute];
    let row = findRow(tables, table, name);
    if (value === '') {
      if (row) delete row[column];
      continue;
    }
    if (!row) (tables[table] ??= []).push((row = { [keyOf(table)]: name }));
    row[column] = value;
  }
  dropKeyOnlyRows(tables, type, name);
}

function refuseNodesAsGroups(tables: Tables, groups: string[]): void {
  const nodes = nodeNames(tables);
  const clash = groups.find((group) => nodes.has(group));
  if (clash) throw new TableError(`'${clash}' is a node: it cannot be a group too (they would share one postscripts row)`, 'nodelist');
}

/** Rows of optional tables (a node's postscripts row) that were emptied go away. */
function dropKeyOnlyRows(tables: Tables, type: ObjectType, name: string): void {
  const schema = OBJECT_SCHEMAS[type];
  for (const { table } of Object.values(schema.attributes)) {
    if (schema.definingTables.includes(table) || !tables[table]) continue;
    tables[table] = tables[table].filter((row) => row[keyOf(table)] !== name || Object.keys(row).length > 1);
  }
}

/** Makes exactly `members` (existing nodes) members of the group, editing nodelist.groups. */
function setGroupMembers(tables: Tables, group: string, members: string[]): void {
  const nodes = nodeNames(tables);
  const unknown = members.filter((member) => !nodes.has(member));
  if (unknown.length) throw new TableError(`group ${group}: no node named ${unknown.join(', ')}`, 'nodelist');
  for (const row of tables.nodelist ?? []) {
    const groups = splitList(row.groups).filter((g) => g !== group);
    if (members.includes(row.node)) groups.push(group);
    if (groups.length) row.groups = groups.join(',');
    else delete row.groups;
  }
}
