import { TableError } from '../core/errors.js';
import { checkAttribute, checkValue, DEFAULTS_ROW, GROUP_MEMBERS_ATTRIBUTE, OBJECT_SCHEMAS, TABLES, type ObjectType } from './schema.js';
import type { Row, Tables } from './types.js';

/**
 * xCAT's object view of the tables (docs/xcat-tables.md, "Objects"): ObjectTables reads and
 * changes `Tables` in place. Each table of an object type is keyed by its single key column,
 * which holds the object name.
 */

/** attribute -> value; in changes an empty value clears the attribute. */
export type Attributes = Record<string, string>;

export interface ObjectDefinition {
  name: string;
  type: ObjectType;
  attributes: Attributes;
}

const keyOf = (table: string): string => TABLES[table].key[0];

function splitList(value: string | undefined): string[] {
  return (value ?? '').split(',').filter((item) => item !== '');
}

/** Checks every attribute name and value of a change before anything is touched. */
function checkAttributes(type: ObjectType, attributes: Attributes): void {
  for (const [attribute, value] of Object.entries(attributes)) {
    checkAttribute(type, attribute);
    checkValue(attribute, value);
    if (type === 'node' && attribute === 'groups') checkGroupNames(value);
  }
}

/**
 * What an object name cannot hold: list and assignment separators, white space, control
 * characters; nor start with `#`, which makes its stanza line a comment (mkdef -z would add the
 * object's attributes to the one before it).
 */
const BAD_NAME = /^#|[\s,:=\x00-\x1f\x7f]/;

/** Refuses a name no object may have: it would break a stanza file or a comma list. */
export function checkObjectName(name: string, what = 'an object'): void {
  if (!name || BAD_NAME.test(name)) throw new TableError(`'${name}' cannot name ${what}: no white space, ',', ':', '=' or control characters, and no '#' first`);
}

/**
 * Refuses a groups value (a node's groups, nodelist.groups) naming a group as no group may be
 * named: lsdef -z of it would not load back.
 */
export function checkGroupNames(groups: string): void {
  for (const group of splitList(groups)) {
    checkObjectName(group, 'a group');
    refuseDefaultsRow(group, 'a group');
  }
}

/** A node or group named xcatdefaults would take over, and could remove, the postscripts row every node runs. */
export function refuseDefaultsRow(name: string, what: string): void {
  if (name === DEFAULTS_ROW) {
    throw new TableError(`'${name}' cannot name ${what}: it is the postscripts row of defaults every node runs (chtab node=${name} postscripts.postscripts=... sets it)`, 'postscripts');
  }
}

/** The other type sharing a node's postscripts row: a node and a group of one name would share it. */
const RIVAL: Partial<Record<ObjectType, ObjectType>> = { node: 'group', group: 'node' };

function alreadyOfType(name: string, type: ObjectType): TableError {
  return new TableError(`'${name}' is already a ${type}: a node and a group cannot share a name (they would share one postscripts row)`, 'nodelist');
}

function missing(type: ObjectType, name: string): TableError {
  return new TableError(`could not find an object named '${name}' of type '${type}'`, OBJECT_SCHEMAS[type].definingTables[0]);
}

/**
 * The objects of one command's tables. Rows are found by name, and groups by how many nodes name
 * them, in maps made once and kept true by every change made here: a scan of the tables for each
 * object made mkdef and lsdef -l of 12,000 nodes take minutes. Tables changed behind its back
 * need a new one.
 */
export class ObjectTables {
  /** table -> object name -> its row, made on first use. */
  private readonly byName = new Map<string, Map<string, Row>>();
  /** group -> how many nodes' nodelist.groups name it. */
  private readonly memberCounts = new Map<string, number>();
  /** group -> its nodes in table order, made on first use and dropped when a membership changes. */
  private members?: Map<string, string[]>;

  constructor(readonly tables: Tables) {
    for (const row of tables.nodelist ?? []) this.count(row.groups, 1);
  }

  /** Names of the objects of a type, sorted. */
  list(type: ObjectType): string[] {
    const names = new Set<string>();
    for (const table of OBJECT_SCHEMAS[type].definingTables) for (const name of this.rows(table).keys()) names.add(name);
    if (type === 'group') {
      for (const name of names) if (this.row('nodelist', name)) names.delete(name); // a node's own postscripts row
      for (const group of this.memberCounts.keys()) names.add(group);
      names.delete(DEFAULTS_ROW);
    }
    return [...names].sort();
  }

  exists(type: ObjectType, name: string): boolean {
    if (type === 'group') {
      return name !== DEFAULTS_ROW && (this.memberCounts.has(name) || (this.row('postscripts', name) !== undefined && !this.row('nodelist', name)));
    }
    return OBJECT_SCHEMAS[type].definingTables.some((table) => this.row(table, name));
  }

  /** The attributes of an object (unset ones absent), or undefined when it does not exist. */
  get(type: ObjectType, name: string): Attributes | undefined {
    if (!this.exists(type, name)) return undefined;
    const attributes: Attributes = {};
    for (const [attribute, { table, column }] of Object.entries(OBJECT_SCHEMAS[type].attributes)) {
      const value = this.row(table, name)?.[column];
      if (value !== undefined && value !== '') attributes[attribute] = value;
    }
    if (type === 'group') {
      const members = this.groupMembers(name);
      if (members.length) attributes[GROUP_MEMBERS_ATTRIBUTE] = members.join(',');
    }
    return attributes;
  }

  /** Defines a new object; an existing one is an error unless `force`, which replaces it. */
  create(type: ObjectType, name: string, attributes: Attributes, force = false): void {
    checkAttributes(type, attributes);
    checkObjectName(name);
    const rival = RIVAL[type];
    if (rival) {
      refuseDefaultsRow(name, `a ${type}`);
      if (this.exists(rival, name)) {
        throw alreadyOfType(name, rival);
      }
    }
    if (this.isDefined(type, name)) {
      if (!force) {
        throw new TableError(
          `an object named '${name}' of type '${type}' already exists (use -f to replace it)`,
          OBJECT_SCHEMAS[type].definingTables[0],
        );
      }
      this.delete(type, name);
    }
    for (const table of OBJECT_SCHEMAS[type].definingTables) this.addRow(table, name);
    this.apply(type, name, attributes);
  }

  /** Changes attributes of an existing object; an empty value clears the attribute. */
  change(type: ObjectType, name: string, attributes: Attributes): void {
    checkAttributes(type, attributes);
    if (!this.exists(type, name)) throw missing(type, name);
    this.apply(type, name, attributes);
  }

  /** Removes an object: its rows in every table of its type (and a group from its members). */
  delete(type: ObjectType, name: string): void {
    if (!this.exists(type, name)) throw missing(type, name);
    if (type === 'node') this.setNodeGroups(this.row('nodelist', name)!, ''); // its groups lose a member
    const ownTables = new Set(Object.values(OBJECT_SCHEMAS[type].attributes).map(({ table }) => table));
    for (const table of ownTables) this.removeRow(table, name);
    if (type === 'group') this.setGroupMembers(name, []);
  }

  /**
   * Whether the object has rows of its own. A group that exists only as nodes' membership has
   * none: defining it (mkdef, or a stanza file from lsdef -z after its nodes) is no conflict.
   */
  private isDefined(type: ObjectType, name: string): boolean {
    return this.exists(type, name) && OBJECT_SCHEMAS[type].definingTables.some((table) => this.row(table, name));
  }

  private apply(type: ObjectType, name: string, attributes: Attributes): void {
    const schema = OBJECT_SCHEMAS[type];
    for (const [attribute, value] of Object.entries(attributes)) {
      if (type === 'group' && attribute === GROUP_MEMBERS_ATTRIBUTE) {
        this.setGroupMembers(name, splitList(value));
        continue;
      }
      if (type === 'node' && attribute === 'groups') {
        this.refuseNodesAsGroups(splitList(value));
        this.setNodeGroups(this.row('nodelist', name)!, value);
        continue;
      }
      const { table, column } = schema.attributes[attribute];
      const row = this.row(table, name);
      if (value === '') {
        if (row) delete row[column];
        continue;
      }
      (row ?? this.addRow(table, name))[column] = value;
    }
    this.dropKeyOnlyRows(type, name);
  }

  /** Refuses groups that name a node: they would share its postscripts row. */
  refuseNodesAsGroups(groups: string[]): void {
    const clash = groups.find((group) => this.row('nodelist', group));
    if (clash) throw new TableError(`'${clash}' is a node: it cannot be a group too (they would share one postscripts row)`, 'nodelist');
  }

  /** Refuses a new node named like a group its nodes list (chtab's way in; mkdef's is create). */
  refuseNodeNamedAsGroup(node: string): void {
    if (this.memberCounts.has(node)) throw alreadyOfType(node, 'group');
  }

  /** Rows of optional tables (a node's postscripts row) that were emptied go away. */
  private dropKeyOnlyRows(type: ObjectType, name: string): void {
    const schema = OBJECT_SCHEMAS[type];
    for (const { table } of Object.values(schema.attributes)) {
      if (schema.definingTables.includes(table)) continue;
      const row = this.row(table, name);
      if (row && Object.keys(row).length === 1) this.removeRow(table, name);
    }
  }

  /** Makes exactly `members` (existing nodes) members of the group, editing nodelist.groups. */
  private setGroupMembers(group: string, members: string[]): void {
    const unknown = members.filter((member) => !this.row('nodelist', member));
    if (unknown.length) throw new TableError(`group ${group}: no node named ${unknown.join(', ')}`, 'nodelist');
    const wanted = new Set(members);
    for (const row of this.tables.nodelist ?? []) {
      const groups = splitList(row.groups).filter((g) => g !== group);
      if (wanted.has(row.node)) groups.push(group);
      this.setNodeGroups(row, groups.join(','));
    }
  }

  /** Sets a node's nodelist.groups (empty: none), keeping the group counts true. */
  private setNodeGroups(row: Row, groups: string): void {
    this.count(row.groups, -1);
    if (groups) row.groups = groups;
    else delete row.groups;
    this.count(row.groups, 1);
    this.members = undefined;
  }

  private count(groups: string | undefined, by: 1 | -1): void {
    for (const group of splitList(groups)) {
      const count = (this.memberCounts.get(group) ?? 0) + by;
      if (count) this.memberCounts.set(group, count);
      else this.memberCounts.delete(group);
    }
  }

  /** Nodes whose nodelist.groups names the group, in table order. */
  private groupMembers(group: string): string[] {
    if (!this.members) {
      const members = (this.members = new Map<string, string[]>());
      for (const row of this.tables.nodelist ?? []) {
        for (const g of splitList(row.groups)) {
          const list = members.get(g);
          if (list) list.push(row.node);
          else members.set(g, [row.node]);
        }
      }
    }
    return this.members.get(group) ?? [];
  }

  private row(table: string, name: string): Row | undefined {
    return this.rows(table).get(name);
  }

  private rows(table: string): Map<string, Row> {
    let rows = this.byName.get(table);
    if (!rows) this.byName.set(table, (rows = new Map((this.tables[table] ?? []).map((row) => [row[keyOf(table)], row]))));
    return rows;
  }

  private addRow(table: string, name: string): Row {
    const row = { [keyOf(table)]: name };
    (this.tables[table] ??= []).push(row);
    this.rows(table).set(name, row);
    return row;
  }

  /** Removes the object's row of the table, if it has one (one splice: rmdef of thousands at once is the slow case). */
  private removeRow(table: string, name: string): void {
    const row = this.row(table, name);
    if (!row) return;
    this.rows(table).delete(name);
    this.tables[table].splice(this.tables[table].indexOf(row), 1);
  }
}
