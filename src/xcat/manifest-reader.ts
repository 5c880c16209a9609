import sax from 'sax';
import { ManifestError } from '../core/errors.js';
import { TABLES } from '../tables/schema.js';
import type { Row } from '../tables/types.js';
import { emptyManifest, MANIFEST_MEMBER, type Manifest } from './manifest.js';

/**
 * manifest.xml from a bundle, read as xCAT's import reads it (XML::Simple defaults, then its 2.7
 * adapter), but defensively: the bundle may come from anyone, so the parser is bounded in size and
 * depth, refuses DTDs (no entity expansion) and control characters, and only known elements
 * become data.
 */

export const MANIFEST_MAX_BYTES = 1024 * 1024;


/** Columns of a table a manifest carries. */
function columnsOf(table: string): readonly string[] {
  return TABLES[table]!.columns;
}

/** Top-level elements holding one value each. */
const VALUE_KEYS = ['kernel', 'ramdisk', 'rootimg', 'rootimgtree', 'litefile', 'media', 'postscripts',
  'postbootscripts'] as const;

/** Repeated elements folded by `<name>`: element, its table, the table's key column. */
const KEYED_SECTIONS = [
  { element: 'kit', table: 'kit', key: 'kitname' },
  { element: 'kitrepo', table: 'kitrepo', key: 'kitreponame' },
  { element: 'kitcomp', table: 'kitcomponent', key: 'kitcompname' },
] as const;

/** osimage fields xCAT trims of surrounding white space before using them in paths. */
const TRIMMED_FIELDS = ['imagename', 'provmethod', 'profile', 'osvers', 'osarch'] as const;

/** xcatimage > section > value: the deepest the format goes. */
const MAX_DEPTH = 3;

/** C0 (but tab, newline, CR), DEL and C1 control characters. */
const CONTROL_CHARACTER = /[\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]/;

interface XmlNode {
  name: string;
  text: string;
  children: XmlNode[];
}

function failure(member: string, problem: string): ManifestError {
  return new ManifestError(`${member}: ${problem}`, member);
}

/** A bundle without its manifest, in xCAT's words and ours. */
export function missingManifest(bundle: string, member: string): ManifestError {
  return new ManifestError(`Failed to find manifest.xml file in image bundle (${bundle} has no ${member})`, member);
}

/** A manifest that cannot be read: xCAT's words for it, then what is wrong. */
function unreadable(member: string, problem: string): ManifestError {
  return new ManifestError(`invalid manifest.xml file inside the bundle.  Please verify the XML (${member}: ${problem})`, member);
}

/**
 * Streams `source` through a strict SAX parser into a small element tree, refusing anything
 * outside what a manifest can hold. Reading stops as soon as the size limit is passed.
 */
async function readElementTree(source: AsyncIterable<Buffer> | Buffer, member: string): Promise<XmlNode> {
  const fail = (problem: string) => unreadable(member, problem);
  const parser = sax.parser(true, { position: true });
  const decoder = new TextDecoder('utf-8', { fatal: true });
  const open: XmlNode[] = [];
  let root: XmlNode | undefined;

  const pathOf = (name: string) => [...open.map((n) => n.name), name].map((n) => `<${n}>`).join('');
  const addText = (text: string) => {
    if (CONTROL_CHARACTER.test(text)) throw fail(`control character in text near line ${parser.line + 1}`);
    const current = open.at(-1);
    if (current) current.text += text;
  };

  parser.onerror = (err) => {
    throw fail(`malformed XML at line ${parser.line + 1}, column ${parser.column + 1}: ${err.message.split('\n')[0]}`);
  };
  parser.ondoctype = () => {
    throw fail('DOCTYPE declarations are refused (they can declare entities)');
  };
  parser.onsgmldeclaration = (declaration) => {
    throw fail(`declaration <!${declaration.slice(0, 20)}...> is refused`);
  };
  parser.onopentag = (tag) => {
    if (root) throw fail(`<${tag.name}> after the root element`);
    if (open.length === 0 && tag.name !== 'xcatimage') throw fail(`root element must be <xcatimage>, not <${tag.name}>`);
    if (open.length >= MAX_DEPTH) throw fail(`${pathOf(tag.name)} is nested deeper than the format has`);
    if (Object.keys(tag.attributes).length > 0) throw fail(`${pathOf(tag.name)} has attributes; the format has none`);
    open.push({ name: tag.name, text: '', children: [] });
  };
  parser.ontext = addText;
  parser.oncdata = addText;
  parser.onclosetag = () => {
    const node = open.pop()!;
    if (node.children.length > 0 && node.text.trim() !== '') {
      throw fail(`${pathOf(node.name)} mixes text and elements`);
    }
    const parent = open.at(-1);
    if (parent) parent.children.push(node);
    else root = node;
  };

  let bytes = 0;
  try {
    for await (const chunk of Buffer.isBuffer(source) ? [source] : source) {
      bytes += chunk.length;
      if (bytes > MANIFEST_MAX_BYTES) throw fail(`larger than ${MANIFEST_MAX_BYTES} bytes`);
      parser.write(decoder.decode(chunk, { stream: true }));
    }
    parser.write(decoder.decode());
    parser.close();
  } catch (err) {
    if (err instanceof TypeError && (err as NodeJS.ErrnoException).code === 'ERR_ENCODING_INVALID_ENCODED_DATA') {
      throw fail('not valid UTF-8');
    }
    throw err;
  }
  if (!root) throw fail('no <xcatimage> element');
  return root;
}

/** Builds the typed manifest from the element tree; `fail` names the member. */
class ManifestBuilder {
  /** A Set: the same unknown element in every kit is one warning. */
  readonly warnings = new Set<string>();

  constructor(private readonly fail: (problem: string) => ManifestError) {}

  /** A value element's text; blank reads as absent, as XML::Simple gives an empty hash for it. */
  value(node: XmlNode, path: string): string | undefined {
    if (node.children.length > 0) throw this.fail(`${path} must hold text, not elements`);
    return node.text.trim() === '' ? undefined : node.text;
  }

  /** The child elements of a section; text there is refused (it would be lost). */
  children(node: XmlNode, path: string): XmlNode[] {
    if (node.text.trim() !== '') throw this.fail(`${path} must hold elements, not text`);
    return node.children;
  }

  /** At most one element of a name. */
  single(nodes: XmlNode[] | undefined, path: string): XmlNode | undefined {
    if (nodes && nodes.length > 1) throw this.fail(`${path} appears ${nodes.length} times`);
    return nodes?.[0];
  }

  /** Columns of `table` from child elements; other children are skipped with a warning. */
  row(children: XmlNode[], columns: readonly string[], path: string): Row {
    const row: Row = {};
    const seen = new Set<string>();
    for (const child of children) {
      const where = `${path}<${child.name}>`;
      if (!columns.includes(child.name)) {
        this.warnings.add(`${where} is not a known column; ignored`);
        continue;
      }
      if (seen.has(child.name)) throw this.fail(`${where} appears more than once`);
      seen.add(child.name);
      const value = this.value(child, where);
      if (value !== undefined) row[child.name] = value;
    }
    return row;
  }

  /** A kit/kitrepo/kitcomp element: `<name>` gives the key column when the row lacks it. */
  keyedRow(node: XmlNode, columns: readonly string[], key: string, path: string): Row {
    const children = this.children(node, path);
    const nameNode = this.single(children.filter((c) => c.name === 'name'), `${path}<name>`);
    const name = nameNode && this.value(nameNode, `${path}<name>`);
    const row = this.row(children.filter((c) => c.name !== 'name'), columns, path);
    if (name !== undefined && row[key] !== undefined && row[key] !== name) {
      throw this.fail(`${path} has <name>${name}</name> but <${key}>${row[key]}</${key}>`);
    }
    const keyValue = row[key] ?? name;
    if (keyValue === undefined) throw this.fail(`${path} has neither <name> nor <${key}>`);
    return { ...row, [key]: keyValue };
  }

  /** `<extra><src>..</src><dest>..</dest></extra>`, both required. */
  extra(node: XmlNode, path: string): { src: string; dest: string } {
    const children = this.children(node, path);
    const fields: Partial<Record<'src' | 'dest', string>> = {};
    for (const field of ['src', 'dest'] as const) {
      const where = `${path}<${field}>`;
      const child = this.single(children.filter((c) => c.name === field), where);
      const value = child && this.value(child, where);
      if (value === undefined) throw this.fail(`${path} lacks ${where}`);
      fields[field] = value;
    }
    for (const child of children) {
      if (child.name !== 'src' && child.name !== 'dest') this.warnings.add(`${path}<${child.name}> is unknown; ignored`);
    }
    return { src: fields.src!, dest: fields.dest! };
  }

  build(root: XmlNode): Manifest {
    const byName = new Map<string, XmlNode[]>();
    for (const child of root.children) {
      const same = byName.get(child.name);
      if (same) same.push(child);
      else byName.set(child.name, [child]);
    }
    const take = (name: string) => {
      const nodes = byName.get(name);
      byName.delete(name);
      return nodes;
    };
    const section = (name: 'osimage' | 'linuximage') => {
      const node = this.single(take(name), `<${name}>`);
      return node && this.row(this.children(node, `<${name}>`), columnsOf(name), `<${name}>`);
    };
    const osimage = section('osimage');
    const linuximage = section('linuximage');
    const m = emptyManifest(osimage ?? {}, linuximage ?? {});
    // xCAT 2.7 wrote the table columns directly under <xcatimage>; xCAT's import moves them.
    if (!osimage && !linuximage) this.adaptFlatColumns(byName, m);

    for (const key of VALUE_KEYS) {
      const node = this.single(take(key), `<${key}>`);
      const value = node && this.value(node, `<${key}>`);
      if (value !== undefined) m[key] = value;
    }
    m.extra = (take('extra') ?? []).map((node) => this.extra(node, '<extra>'));
    for (const { element, table, key } of KEYED_SECTIONS) {
      const rows = (take(element) ?? [])
        // XML::Simple writes an empty hash of kits as <kit></kit>.
        .filter((node) => node.children.length > 0 || node.text.trim() !== '')
        .map((node) => this.keyedRow(node, columnsOf(table), key, `<${element}>`));
      const seen = new Set<string>();
      for (const row of rows) {
        if (seen.has(row[key]!)) throw this.fail(`<${element}> ${row[key]} appears more than once`);
        seen.add(row[key]!);
      }
      m[element] = rows;
    }
    const raw = this.single(take('rawimagefiles'), '<rawimagefiles>');
    for (const child of raw ? this.children(raw, '<rawimagefiles>') : []) {
      const where = `<rawimagefiles><${child.name}>`;
      if (child.name !== 'files') this.warnings.add(`${where} is unknown; ignored`);
      else {
        const value = this.value(child, where);
        if (value !== undefined) m.rawimagefiles.push(value);
      }
    }

    for (const name of byName.keys()) this.warnings.add(`<${name}> is unknown; ignored`);
    for (const field of TRIMMED_FIELDS) {
      const trimmed = m.osimage[field]?.trim();
      if (trimmed) m.osimage[field] = trimmed;
    }
    if (this.warnings.size > 0) m.warnings = [...this.warnings];
    return m;
  }

  private adaptFlatColumns(byName: Map<string, XmlNode[]>, m: Manifest): void {
    for (const table of ['osimage', 'linuximage'] as const) {
      for (const column of columnsOf(table)) {
        const node = this.single(byName.get(column), `<${column}>`);
        const value = node && this.value(node, `<${column}>`);
        if (value !== undefined) m[table][column] = value;
      }
    }
    for (const column of [...columnsOf('osimage'), ...columnsOf('linuximage')]) byName.delete(column);
  }
}

/**
 * Reads manifest.xml from a Buffer or a stream of chunks. Throws ManifestError (naming `member`)
 * for anything too large, malformed, hostile or outside the format; unknown elements are skipped
 * and listed in `warnings`.
 */
export async function parseManifest(source: AsyncIterable<Buffer> | Buffer, member = MANIFEST_MEMBER): Promise<Manifest> {
  const fail = (problem: string) => unreadable(member, problem);
  return new ManifestBuilder(fail).build(await readElementTree(source, member));
}

const ALLOWED_PROVMETHODS = ['install', 'netboot', 'statelite', 'raw', 'sysclone'];

/** Fields that become path components on import: refused when they could escape or confuse a path. */
const PATH_NAME_FIELDS = ['imagename', 'profile', 'osvers', 'osarch'] as const;

function notDefined(field: string): string {
  return `The '${field}' field is not defined in manifest.xml.`;
}

/**
 * Why a name cannot be used as a path component, or undefined when it can. An image name may hold
 * inner spaces, as xCAT allows (its bundle directory gets `_` instead); surrounding ones are trimmed.
 */
function hostileNameProblem(value: string, innerSpaces = false): string | undefined {
  if (CONTROL_CHARACTER.test(value)) return 'a control character';
  if (/\s/.test(innerSpaces ? value.trim().replace(/ /g, '') : value)) return 'white space';
  if (value.includes('/')) return "'/'";
  if (value.includes('..') || value === '.') return "'..' or '.'";
  return undefined;
}

/** The files the manifest must name for its provmethod (xCAT's verify_manifest). */
function missingFiles(m: Manifest): string[] {
  const { provmethod, osarch } = m.osimage;
  const needsRawFiles = osarch === 's390x' && (provmethod === 'netboot' || provmethod === 'sysclone');
  if (needsRawFiles) {
    return m.rawimagefiles.length > 0 ? [] : ["The 'rawimagefiles' section is not defined in manifest.xml."];
  }
  const required: Record<string, (keyof Manifest)[]> = {
    netboot: ['kernel', 'ramdisk', 'rootimg'],
    statelite: ['kernel', 'ramdisk', 'rootimgtree'],
  };
  const problems = (required[provmethod!] ?? []).filter((key) => !m[key]).map(notDefined);
  if (provmethod === 'install' && !m.linuximage.template) problems.push(notDefined('template'));
  return problems;
}

/** What the manifest held that no table has a place for (a newer xCAT's columns, say), as warning lines. */
export function manifestWarnings(m: Manifest, member = MANIFEST_MEMBER): string[] {
  return (m.warnings ?? []).map((warning) => `Warning: ${member}: ${warning}`);
}

/**
 * Import step 2 (xcat-bundle-format.md section 5): the osimage fields and the per-provmethod
 * files must be present, and names used in paths must be plain. Throws one ManifestError listing
 * every problem, with xCAT's messages.
 */
export function checkManifest(m: Manifest, member = MANIFEST_MEMBER): void {
  const problems: string[] = [];
  for (const field of ['imagename', 'provmethod', 'profile', 'osvers', 'osarch']) {
    if (!m.osimage[field]) problems.push(notDefined(field));
  }
  const { provmethod, osarch } = m.osimage;
  if (provmethod && !ALLOWED_PROVMETHODS.includes(provmethod)) {
    problems.push(`Importing images with 'provmethod' ${provmethod} is not supported. Hint: install, netboot, statelite, sysclone or raw`);
  } else if (provmethod === 'sysclone' && osarch !== 's390x') {
    problems.push(`Importing images with 'provmethod' sysclone is not supported for osarch '${osarch ?? ''}'`);
  } else if (provmethod) {
    problems.push(...missingFiles(m));
  }
  for (const field of PATH_NAME_FIELDS) {
    const value = m.osimage[field];
    const problem = value === undefined ? undefined : hostileNameProblem(value, field === 'imagename');
    if (problem) problems.push(`The '${field}' field ${JSON.stringify(value)} contains ${problem}; refused.`);
  }
  if (problems.length > 0) throw failure(member, problems.join(' '));
}
