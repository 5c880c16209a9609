import { TableError } from '../core/errors.js';
import type { ObjectDefinition } from './objects.js';
import { checkAttribute, checkObjectType, checkValue } from './schema.js';

/**
 * xCAT's stanza format (`lsdef -z` writes it, `mkdef -z`/`chdef -z` read it):
 *
 *     # <xCAT data object stanza file>
 *
 *     NAME:
 *         objtype=osimage
 *         attr=value
 */
export const STANZA_HEADER = '# <xCAT data object stanza file>\n';

/** Stanzas for the objects: objtype first, then the attributes sorted, a blank line after each. */
export function formatStanzas(objects: ObjectDefinition[]): string {
  let text = STANZA_HEADER + '\n';
  for (const { name, type, attributes } of objects) {
    // Such a name is refused, but a table file from before that, or edited by hand, may hold one.
    if (name.startsWith('#')) throw new TableError(`${type} ${name}: a stanza file would read its name as a comment (lsdef -l shows it)`);
    text += `${name}:\n    objtype=${type}\n`;
    for (const attribute of Object.keys(attributes).sort()) {
      // A line break would make the rest of the value a line of its own: another attribute, or garbage.
      if (/[\n\r]/.test(attributes[attribute])) {
        throw new TableError(`${type} ${name}: its ${attribute} holds a line break, which a stanza file cannot carry (lsdef -l shows it)`);
      }
      text += `    ${attribute}=${attributes[attribute]}\n`;
    }
    text += '\n';
  }
  return text;
}

/**
 * Reads stanzas: blank lines and `#` comments anywhere, `NAME:` at the start of a line opens an
 * object, indented `attr=value` lines (value to the end of the line) fill it; `objtype` is
 * required. Unknown object types and attributes are errors naming `source` and the line.
 */
export function parseStanzas(text: string, source = 'stanza input'): ObjectDefinition[] {
  /** Runs a check, its error message prefixed with the source and line. */
  const atLine = <T>(line: number, check: () => T): T => {
    try {
      return check();
    } catch (err) {
      throw new TableError(`${source} line ${line}: ${(err as Error).message}`);
    }
  };
  const fail = (line: number, message: string): never => atLine(line, () => {
    throw new Error(message);
  });

  interface Pending {
    name: string;
    line: number;
    type?: { value: string; line: number };
    attributes: { attribute: string; value: string; line: number }[];
  }
  const objects: ObjectDefinition[] = [];
  let current: Pending | undefined;
  const finish = (): void => {
    if (!current) return;
    const { name, type: objtype, attributes } = current;
    if (!objtype) fail(current.line, `object '${name}' has no objtype`);
    const type = atLine(objtype!.line, () => checkObjectType(objtype!.value));
    const definition: ObjectDefinition = { name, type, attributes: {} };
    for (const { attribute, value, line } of attributes) {
      atLine(line, () => {
        checkAttribute(type, attribute);
        checkValue(attribute, value, `${type} ${name}`);
      });
      definition.attributes[attribute] = value;
    }
    objects.push(definition);
  };

  text.split(/\r?\n/).forEach((raw, index) => {
    const line = index + 1;
    const trimmed = raw.trim();
    if (trimmed === '' || trimmed.startsWith('#')) return;
    if (!/^\s/.test(raw)) {
      const match = /^(\S+?)\s*:$/.exec(trimmed);
      if (!match) fail(line, `expected 'NAME:' to open an object, not '${trimmed}'`);
      finish();
      current = { name: match![1], line, attributes: [] };
      return;
    }
    const eq = trimmed.indexOf('=');
    if (eq <= 0) fail(line, `expected 'attribute=value', not '${trimmed}'`);
    if (!current) return fail(line, `attribute outside any object: '${trimmed}'`);
    const attribute = trimmed.slice(0, eq).trim();
    const value = trimmed.slice(eq + 1).trim();
    if (attribute === 'objtype') current.type = { value, line };
    else current.attributes.push({ attribute, value, line });
  });
  finish();
  return objects;
}
