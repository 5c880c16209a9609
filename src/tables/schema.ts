import { TableError } from '../core/errors.js';
import { DEFAULT_INSTALLDIR } from '../core/locations.js';
import type { Tables } from './types.js';

export interface TableSchema {
  /** Key columns: together they identify a row. */
  key: string[];
  /** Every column, in xCAT's schema order. */
  columns: string[];
}

const columns = (list: string): string[] => list.split(' ');

/** The tables image export/import touches, as in xCAT's schema (docs/xcat-tables.md). */
export const TABLES: Readonly<Record<string, TableSchema>> = {
  osimage: {
    key: ['imagename'],
    columns: columns(
      'imagename groups profile imagetype description provmethod rootfstype nfsrootopts osdistroname osupdatename cfmdir ' +
        'osname osvers osarch synclists postscripts postbootscripts serverrole isdeletable kitcomponents environvar comments disable',
    ),
  },
  linuximage: {
    key: ['imagename'],
    columns: columns(
      'imagename template boottarget addkcmdline pkglist pkgdir otherpkglist otherpkgdir exlist postinstall rootimgdir kerneldir ' +
        'nodebootif otherifce netdrivers kernelver krpmver permission dump crashkernelsize partitionfile driverupdatesrc comments disable',
    ),
  },
  kit: {
    key: ['kitname'],
    columns: columns('kitname basename description version release ostype isinternal kitdeployparams kitdir comments disable'),
  },
  kitrepo: {
    key: ['kitreponame'],
    columns: columns(
      'kitreponame kitname osbasename osmajorversion osminorversion osarch compat_osbasenames kitrepodir comments disable',
    ),
  },
  kitcomponent: {
    key: ['kitcompname'],
    columns: columns(
      'kitcompname description kitname kitreponame basename version release serverroles kitpkgdeps prerequisite driverpacks ' +
        'kitcompdeps postbootscripts genimage_postinstall exlist comments disable',
    ),
  },
  litefile: { key: ['image', 'file'], columns: columns('image file options comments disable') },
  postscripts: { key: ['node'], columns: columns('node postscripts postbootscripts comments disable') },
  nodelist: {
    key: ['node'],
    columns: columns(
      'node groups status statustime appstatus appstatustime primarysn hidden updatestatus updatestatustime zonename comments disable',
    ),
  },
  site: { key: ['key'], columns: columns('key value comments disable') },
};

/** The schema of a table; unknown table: TableError naming the known ones. */
export function checkTable(name: string): TableSchema {
  if (!Object.hasOwn(TABLES, name)) {
    throw new TableError(`unknown table '${name}' (known tables: ${Object.keys(TABLES).join(', ')})`, name);
  }
  return TABLES[name];
}

/** Checks a column of a table; unknown column: TableError naming the table's columns. */
export function checkColumn(table: string, column: string): void {
  const schema = checkTable(table);
  if (!schema.columns.includes(column)) {
    throw new TableError(`unknown column '${column}' of table ${table} (its columns: ${schema.columns.join(', ')})`, table);
  }
}

export const OBJECT_TYPES = ['osimage', 'node', 'group'] as const;
export type ObjectType = (typeof OBJECT_TYPES)[number];

/** Where an object attribute is stored: a column of the row whose (single) key is the object name. */
export interface AttributeColumn {
  table: string;
  column: string;
}

export interface ObjectTypeSchema {
  /** attribute name -> the column holding it. */
  attributes: Record<string, AttributeColumn>;
  /** Tables whose row makes the object exist; mkdef creates one row in each. */
  definingTables: string[];
}

/**
 * Attributes of `table` for an object type: every non-key column under its own name, except
 * those listed in `renamed` (column -> attribute) and names an earlier table already claimed
 * (osimage and linuximage both have `disable`: the osimage row's wins, as the first table).
 */
function attributesOf(
  into: Record<string, AttributeColumn>,
  table: string,
  only?: string[],
  renamed: Record<string, string> = {},
): Record<string, AttributeColumn> {
  const schema = TABLES[table];
  for (const column of only ?? schema.columns) {
    if (schema.key.includes(column)) continue;
    const attribute = renamed[column] ?? column;
    if (!Object.hasOwn(into, attribute)) into[attribute] = { table, column };
  }
  return into;
}

const POSTSCRIPT_COLUMNS = ['postscripts', 'postbootscripts'];

/** The object types lsdef/mkdef/chdef/rmdef handle (docs/xcat-tables.md, "Objects"). */
export const OBJECT_SCHEMAS: Readonly<Record<ObjectType, ObjectTypeSchema>> = {
  osimage: {
    attributes: attributesOf(attributesOf({}, 'osimage'), 'linuximage', undefined, { comments: 'usercomment' }),
    definingTables: ['osimage', 'linuximage'],
  },
  node: {
    attributes: attributesOf(attributesOf({}, 'nodelist', undefined, { comments: 'usercomment' }), 'postscripts', POSTSCRIPT_COLUMNS),
    definingTables: ['nodelist'],
  },
  group: {
    attributes: attributesOf({}, 'postscripts', POSTSCRIPT_COLUMNS),
    definingTables: ['postscripts'],
  },
};

/** C0 but tab and line breaks, and DEL: what no table value holds (a manifest's multi-line description may). */
export const CONTROL_CHARACTER = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/;
/** What a value set on the command line cannot hold either: a line break would end its stanza line. */
export const LINE_BREAK_OR_CONTROL = /[\x00-\x08\x0a-\x1f\x7f]/;

/** Refuses an attribute value holding LINE_BREAK_OR_CONTROL; `of` names its object where nothing else does. */
export function checkValue(attribute: string, value: string, of?: string): void {
  if (LINE_BREAK_OR_CONTROL.test(value)) {
    throw new TableError(`the value of ${attribute}${of ? ` of ${of}` : ''} holds a control character (a line break?), which a table value cannot`);
  }
}

/** The postscripts row of xCAT's defaults, which every node runs (docs/xcat-tables.md): neither a node nor a group. */
export const DEFAULTS_ROW = 'xcatdefaults';

/** A group's computed attribute: the nodes whose nodelist.groups names it. */
export const GROUP_MEMBERS_ATTRIBUTE = 'members';

/** The schema of an object type; unknown type: TableError naming the known ones. */
export function checkObjectType(type: string): ObjectType {
  if (!(OBJECT_TYPES as readonly string[]).includes(type)) {
    throw new TableError(`unknown object type '${type}' (known types: ${OBJECT_TYPES.join(', ')})`);
  }
  return type as ObjectType;
}

/** Every attribute name of an object type, sorted. */
export function attributeNames(type: ObjectType): string[] {
  const names = Object.keys(OBJECT_SCHEMAS[type].attributes);
  if (type === 'group') names.push(GROUP_MEMBERS_ATTRIBUTE);
  return names.sort();
}

/** Checks an attribute name; unknown: TableError naming the valid attributes of the type. */
export function checkAttribute(type: ObjectType, attribute: string): void {
  const valid = attributeNames(type);
  if (!valid.includes(attribute)) {
    throw new TableError(`unknown attribute '${attribute}' of object type ${type} (valid attributes: ${valid.join(', ')})`);
  }
}

/** A site table value, or undefined when the key is absent or empty. */
export function siteValue(tables: Tables, key: string): string | undefined {
  return tables.site?.find((row) => row.key === key)?.value || undefined;
}

/** The install directory: the site table's `installdir`, else /install. */
export function installdirOf(tables: Tables): string {
  const installdir = siteValue(tables, 'installdir') ?? DEFAULT_INSTALLDIR;
  if (!installdir.startsWith('/')) throw new TableError(`the site table's installdir '${installdir}' is not an absolute path`, 'site');
  return installdir;
}
