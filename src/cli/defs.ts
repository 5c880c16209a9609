import { text } from 'node:stream/consumers';
import { contextFrom, locationsFrom } from '../core/context.js';
import { TableError, UsageError } from '../core/errors.js';
import type { Locations } from '../core/locations.js';
import type { Sandbox } from '../core/sandbox.js';
import { refuseInterruptedImage } from '../import/transaction.js';
import { ObjectTables, type Attributes, type ObjectDefinition } from '../tables/objects.js';
import { checkAttribute, checkObjectType, checkTable, TABLES, type ObjectType } from '../tables/schema.js';
import { formatStanzas, parseStanzas } from '../tables/stanza.js';
import { applyChtab, deleteChtabRow, parseChtabArgs, parseChtabDelete } from '../tables/chtab.js';
import type { Row, Tables } from '../tables/types.js';
import { findProfileFile } from '../xcat/search.js';
import type { CommandSpec, OptionSpec, ParsedValues } from './command.js';
import { listOption, stringOption } from './command.js';

/** xCAT's commands on object definitions (mkdef, chdef, rmdef, lsdef) and on tables (tabdump, chtab). */

const COMMON_USAGE = '  -h, --help  this text;  --root DIR  sandbox prefix;  --db FILE  table file\n';

const TYPE_OPTIONS: OptionSpec = {
  type: { type: 'string', short: 't' },
  objects: { type: 'string', short: 'o', multiple: true },
};
const VERBOSE: OptionSpec = { verbose: { type: 'boolean', short: 'v' } };

/** The object type (-t, default node as in xCAT). */
function typeFrom(values: ParsedValues): ObjectType {
  return checkObjectType(stringOption(values, 'type') ?? 'node');
}

/** Object names (-o NAME,NAME and bare positionals) and attr=value assignments. */
function namesAndAttributes(values: ParsedValues, positionals: string[]): { names: string[]; attributes: Attributes } {
  const given = listOption(values, 'objects');
  if (given.length > 1) throw new UsageError('-o is given more than once: name every object in one -o NAME,NAME');
  const names = (given[0] ?? '').split(',').filter(Boolean);
  const attributes: Attributes = {};
  for (const arg of positionals) {
    const eq = arg.indexOf('=');
    if (eq < 0) names.push(...arg.split(',').filter(Boolean));
    else if (eq === 0) throw new UsageError(`'${arg}' has no attribute name`);
    else attributes[arg.slice(0, eq)] = arg.slice(eq + 1);
  }
  return { names: [...new Set(names)], attributes };
}

/** `-z`: the definitions come from standard input, each object once; nothing else may name or change them. */
async function stanzasFromStdin(values: ParsedValues, positionals: string[]): Promise<ObjectDefinition[]> {
  const others = ['type', 'objects', 'update'].filter((option) => values[option] !== undefined);
  if (others.length || positionals.length) {
    throw new UsageError(`-z reads the definitions from standard input: ${[...others.map((o) => `--${o}`), ...positionals].join(' ')} cannot be given with it`);
  }
  const definitions = parseStanzas(await text(process.stdin), 'standard input');
  const seen = new Set<string>();
  for (const { type, name } of definitions) {
    if (seen.has(`${type}:${name}`)) throw new UsageError(`standard input defines ${type} ${name} twice`);
    seen.add(`${type}:${name}`);
  }
  return definitions;
}

function report(values: ParsedValues, lines: string[], summary: string): void {
  if (values.verbose) for (const line of lines) process.stdout.write(line + '\n');
  process.stdout.write(summary + '\n');
}

/** xCAT's names for this machine's architecture. */
export function machineArch(arch: string = process.arch): string {
  return ({ x64: 'x86_64', arm64: 'aarch64', ppc64: 'ppc64le' } as Record<string, string>)[arch] ?? arch;
}

/**
 * `mkdef -u`: completes an osimage definition as xCAT does: imagetype linux, osarch of this
 * machine, the template (install) or package list (netboot, statelite) found by xCAT's search,
 * and the name OSVERS-OSARCH-PROVMETHOD-PROFILE. Returns the name (the given one if any).
 */
export function completeOsimage(loc: Locations, attributes: Attributes, givenName?: string): string {
  const { profile, osvers, provmethod } = attributes;
  if (!profile || !osvers || !provmethod) {
    throw new UsageError('-u needs profile=, osvers= and provmethod= to derive the rest of the osimage');
  }
  attributes.osarch ||= machineArch();
  attributes.imagetype ||= 'linux';
  const lookup =
    provmethod === 'install'
      ? { attribute: 'template', kind: 'install' as const, ext: 'tmpl' }
      : provmethod === 'netboot' || provmethod === 'statelite'
        ? { attribute: 'pkglist', kind: 'netboot' as const, ext: 'pkglist' }
        : undefined;
  if (lookup && !attributes[lookup.attribute]) {
    const found = findProfileFile(loc, lookup.kind, lookup.ext, { profile, osvers, osarch: attributes.osarch });
    if (found) attributes[lookup.attribute] = found;
    else process.stderr.write(`Warning: no ${lookup.attribute} found for profile ${profile} (${osvers}, ${attributes.osarch})\n`);
  }
  return givenName ?? `${osvers}-${attributes.osarch}-${provmethod}-${profile}`;
}

export const mkdefCommand: CommandSpec = {
  usage: `Usage: imgport mkdef [-t osimage|node|group] -o NAME[,NAME...] [-f] [-u] [-v] attr=value ...
       imgport mkdef -z [-f] [-v] < STANZAFILE
  Defines objects.  -f  replace existing objects;  -z  read stanzas from standard input;
  -u  (osimage) fill in imagetype, osarch, template/pkglist and the name from profile, osvers, provmethod
${COMMON_USAGE}`,
  options: { ...TYPE_OPTIONS, ...VERBOSE, force: { type: 'boolean', short: 'f' }, stanza: { type: 'boolean', short: 'z' }, update: { type: 'boolean', short: 'u' } },
  async run(values, positionals) {
    const ctx = contextFrom(values);
    const force = values.force === true;
    const stanzas = values.stanza ? await stanzasFromStdin(values, positionals) : undefined;
    const lines = await ctx.store.update((tables) => {
      const definitions = stanzas ?? definitionsFromArgs(values, positionals, tables, (t) => locationsFrom(ctx, t));
      const objects = new ObjectTables(tables);
      for (const { type, name, attributes } of definitions) objects.create(type, name, attributes, force);
      return definitions.map(({ type, name }) => `Created ${type} ${name}`);
    });
    report(values, lines, `${lines.length} object definitions have been created or modified.`);
  },
};

function definitionsFromArgs(
  values: ParsedValues,
  positionals: string[],
  tables: Tables,
  locations: (tables: Tables) => Locations,
): ObjectDefinition[] {
  const type = typeFrom(values);
  const { names, attributes } = namesAndAttributes(values, positionals);
  for (const attribute of Object.keys(attributes)) checkAttribute(type, attribute);
  if (values.update) {
    if (type !== 'osimage') throw new UsageError('-u applies to osimage definitions only');
    if (names.length > 1) throw new UsageError('-u defines one osimage at a time');
    names[0] = completeOsimage(locations(tables), attributes, names[0]);
  }
  if (!names.length) throw new UsageError('no object name given (-o NAME)');
  return names.map((name) => ({ type, name, attributes: { ...attributes } }));
}

export const chdefCommand: CommandSpec = {
  usage: `Usage: imgport chdef [-t osimage|node|group] -o NAME[,NAME...] [-v] attr=value ... (attr= clears it)
       imgport chdef -z [-v] < STANZAFILE
  Changes existing objects.  -z  read stanzas from standard input
${COMMON_USAGE}`,
  options: { ...TYPE_OPTIONS, ...VERBOSE, stanza: { type: 'boolean', short: 'z' } },
  async run(values, positionals) {
    const ctx = contextFrom(values);
    let definitions: ObjectDefinition[];
    if (values.stanza) {
      definitions = await stanzasFromStdin(values, positionals);
    } else {
      const type = typeFrom(values);
      const { names, attributes } = namesAndAttributes(values, positionals);
      if (!names.length) throw new UsageError('no object name given (-o NAME)');
      if (!Object.keys(attributes).length) throw new UsageError('no attr=value given');
      definitions = names.map((name) => ({ type, name, attributes }));
    }
    await refuseHalfImported(ctx.sandbox, definitions, 'change');
    await ctx.store.update((tables) => {
      const objects = new ObjectTables(tables);
      for (const { type, name, attributes } of definitions) objects.change(type, name, attributes);
    });
    report(values, definitions.map(({ type, name }) => `Changed ${type} ${name}`), `${definitions.length} object definitions have been created or modified.`);
  },
};

export const rmdefCommand: CommandSpec = {
  usage: `Usage: imgport rmdef [-t osimage|node|group] -o NAME[,NAME...] [-v]
  Removes objects (an osimage: its osimage and linuximage rows).
${COMMON_USAGE}`,
  options: { ...TYPE_OPTIONS, ...VERBOSE },
  async run(values, positionals) {
    const ctx = contextFrom(values);
    const type = typeFrom(values);
    const { names, attributes } = namesAndAttributes(values, positionals);
    if (Object.keys(attributes).length) throw new UsageError('rmdef takes no attr=value');
    if (!names.length) throw new UsageError('no object name given (-o NAME)');
    await refuseHalfImported(ctx.sandbox, names.map((name) => ({ type, name })), 'remove');
    await ctx.store.update((tables) => {
      const objects = new ObjectTables(tables);
      for (const name of names) objects.delete(type, name);
    });
    report(values, names.map((name) => `Removed ${type} ${name}`), `${names.length} object definitions have been removed.`);
  },
};

export const lsdefCommand: CommandSpec = {
  usage: `Usage: imgport lsdef [-t osimage|node|group] [-o NAME[,NAME...]] [-l|-s] [-i attr,attr] [-z]
  Lists objects: names only (-s, the default without names), every attribute (-l, the default with
  names), the attributes named by -i, or stanzas (-z).
${COMMON_USAGE}`,
  options: {
    ...TYPE_OPTIONS,
    long: { type: 'boolean', short: 'l' },
    short: { type: 'boolean', short: 's' },
    attributes: { type: 'string', short: 'i' },
    stanza: { type: 'boolean', short: 'z' },
  },
  async run(values, positionals) {
    const ctx = contextFrom(values);
    const type = typeFrom(values);
    const { names, attributes } = namesAndAttributes(values, positionals);
    if (Object.keys(attributes).length) throw new UsageError('lsdef takes no attr=value');
    const only = stringOption(values, 'attributes')?.split(',').filter(Boolean);
    for (const attribute of only ?? []) checkAttribute(type, attribute);
    const defined = new ObjectTables(await ctx.store.read());
    const objects = (names.length ? names : defined.list(type)).map((name): ObjectDefinition => {
      const found = defined.get(type, name);
      if (!found) throw new TableError(`could not find an object named '${name}' of type '${type}'`);
      return { type, name, attributes: only ? selectAttributes(found, only) : found };
    });
    if (!objects.length) {
      // With -z the output is a stanza file: the message must not become part of it.
      (values.stanza ? process.stderr : process.stdout).write('Could not find any object definitions to display.\n');
    } else if (values.stanza) {
      process.stdout.write(formatStanzas(objects));
    } else if (values.short || (!values.long && !only && !names.length)) {
      process.stdout.write(objects.map(({ name }) => `${name}  (${type})\n`).join(''));
    } else {
      process.stdout.write(objects.map(formatLong).join('\n'));
    }
  },
};

/** The named attributes; unset ones shown empty, as xCAT's lsdef -i does. */
function selectAttributes(attributes: Attributes, only: string[]): Attributes {
  return Object.fromEntries(only.map((attribute) => [attribute, attributes[attribute] ?? '']));
}

/** `Object name: NAME` then `    attr=value` lines sorted by attribute. */
export function formatLong({ name, attributes }: ObjectDefinition): string {
  const lines = Object.keys(attributes)
    .sort()
    .map((attribute) => `    ${attribute}=${attributes[attribute]}\n`);
  return `Object name: ${name}\n${lines.join('')}`;
}

/**
 * An osimage that a killed import left half replaced is not changed or removed until it is
 * recovered: the recovery reads the image's rows to tell whether that import's table write happened.
 */
async function refuseHalfImported(sandbox: Sandbox, objects: { type: string; name: string }[], doing: string): Promise<void> {
  for (const { type, name } of objects) if (type === 'osimage') await refuseInterruptedImage(sandbox, name, doing);
}

export const tabdumpCommand: CommandSpec = {
  usage: `Usage: imgport tabdump [TABLE]
  Writes a table as CSV: a #column header, then one line per row. Without TABLE: the table names.
${COMMON_USAGE}`,
  options: {},
  async run(values, positionals) {
    if (positionals.length > 1) throw new UsageError('tabdump takes one table name');
    const [table] = positionals;
    if (table === undefined) {
      process.stdout.write(Object.keys(TABLES).join('\n') + '\n');
      return;
    }
    checkTable(table);
    const tables = await contextFrom(values).store.read();
    process.stdout.write(formatTabdump(table, tables[table] ?? []));
  },
};

export const chtabCommand: CommandSpec = {
  usage: `Usage: imgport chtab KEYCOL=KEYVALUE... TABLE.COLUMN=VALUE...
       imgport chtab KEYCOL=KEYVALUE... TABLE.COLUMN+=VALUE...
       imgport chtab -d KEYCOL=KEYVALUE... TABLE
  Sets columns of the row the keys choose (added when missing; an empty VALUE clears the column),
  += appends to a comma-separated list; -d deletes the row. As xCAT's chtab, for instance:
    imgport chtab key=installdir site.value=/data/install
  -v  say whether the row was added or changed
${COMMON_USAGE}`,
  options: { delete: { type: 'boolean', short: 'd' }, ...VERBOSE },
  async run(values, positionals) {
    const ctx = contextFrom(values);
    if (values.delete) {
      const { table, keys } = parseChtabDelete(positionals);
      await ctx.store.update((tables) => deleteChtabRow(tables, table, keys));
      if (values.verbose) process.stdout.write(`Deleted a row of ${table}\n`);
      return;
    }
    const change = parseChtabArgs(positionals);
    const added = await ctx.store.update((tables) => applyChtab(tables, change));
    if (values.verbose) process.stdout.write(`${added ? 'Added' : 'Changed'} a row of ${change.table}\n`);
  },
};

/** xCAT's tabdump CSV: `#col,...` in schema order, every value quoted (`"` doubled), empty ones empty. */
export function formatTabdump(table: string, rows: Row[]): string {
  const { columns } = checkTable(table);
  const quote = (value: string | undefined): string => (value ? `"${value.replaceAll('"', '""')}"` : '');
  return [`#${columns.join(',')}`, ...rows.map((row) => columns.map((column) => quote(row[column])).join(','))].join('\n') + '\n';
}
