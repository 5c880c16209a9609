import { ImageError } from '../core/errors.js';
import type { Row } from '../tables/types.js';
import type { Manifest } from './manifest.js';

/**
 * manifest.xml exactly as xCAT's imgexport writes it: Perl XML::Simple, RootName 'xcatimage',
 * NoAttr, declaration `<?xml version="1.0"?>` (xcat-bundle-format.md section 2). Byte-identical
 * output keeps bundles interchangeable with xCAT and lets tests compare against xCAT's own.
 */

type XmlElement = { name: string; text: string } | { name: string; children: XmlElement[] };

const INDENT = '  ';

/** Control characters XML 1.0 cannot carry (tab, newline and CR it can). */
const FORBIDDEN_CONTROL = /[\x00-\x08\x0B\x0C\x0E-\x1F]/;

/** XML::Simple escapes these four and nothing else (apostrophes and non-ASCII go out as they are). */
function escapeText(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** Perl's `sort keys`: plain string order. */
function byName(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function leaf(name: string, text: string | undefined): XmlElement[] {
  return text ? [{ name, text }] : [];
}

/** A row as XML::Simple writes a hash: non-empty columns sorted by name. */
function rowChildren(row: Row): XmlElement[] {
  return Object.keys(row)
    .sort(byName)
    .flatMap((column) => leaf(column, row[column]));
}

/**
 * A hash of rows keyed by `keyColumn`, folded by XML::Simple on `name`: one element per row,
 * sorted by key, each with `<name>KEY</name>` first and then the row's columns.
 */
function foldedRows(element: string, rows: Row[], keyColumn: string): XmlElement[] {
  return [...rows]
    .sort((a, b) => byName(a[keyColumn] ?? '', b[keyColumn] ?? ''))
    .map((row) => ({ name: element, children: [...leaf('name', row[keyColumn]), ...rowChildren(row)] }));
}

function container(name: string, children: XmlElement[]): XmlElement[] {
  return children.length > 0 ? [{ name, children }] : [];
}

function topLevelElements(m: Manifest): XmlElement[] {
  const elements: XmlElement[] = [
    ...container('osimage', rowChildren(m.osimage)),
    ...container('linuximage', rowChildren(m.linuximage)),
    ...leaf('kernel', m.kernel),
    ...leaf('ramdisk', m.ramdisk),
    ...leaf('rootimg', m.rootimg),
    ...leaf('rootimgtree', m.rootimgtree),
    ...leaf('litefile', m.litefile),
    ...leaf('media', m.media),
    ...leaf('postscripts', m.postscripts),
    ...leaf('postbootscripts', m.postbootscripts),
    ...m.extra.map((e) => ({ name: 'extra', children: [...leaf('dest', e.dest), ...leaf('src', e.src)] })),
    ...foldedRows('kit', m.kit, 'kitname'),
    ...foldedRows('kitrepo', m.kitrepo, 'kitreponame'),
    ...foldedRows('kitcomp', m.kitcomp, 'kitcompname'),
    ...container('rawimagefiles', m.rawimagefiles.flatMap((file) => leaf('files', file))),
  ];
  // Stable sort: repeated elements (extra, kit, ...) keep their order among themselves.
  return elements.sort((a, b) => byName(a.name, b.name));
}

function render(element: XmlElement, depth: number, path: string, image: string, out: string[]): void {
  const indent = INDENT.repeat(depth);
  const where = path ? `${path}/${element.name}` : element.name;
  if ('text' in element) {
    if (FORBIDDEN_CONTROL.test(element.text)) {
      throw new ImageError(`osimage ${image}: ${where} holds a control character that manifest.xml cannot carry`, image);
    }
    out.push(`${indent}<${element.name}>${escapeText(element.text)}</${element.name}>\n`);
    return;
  }
  out.push(`${indent}<${element.name}>\n`);
  for (const child of element.children) render(child, depth + 1, where, image, out);
  out.push(`${indent}</${element.name}>\n`);
}

/** The manifest.xml text of `m`, byte for byte what xCAT's imgexport writes for the same data. */
export function writeManifestXml(m: Manifest): string {
  const image = m.osimage.imagename ?? '';
  const out = ['<?xml version="1.0"?>\n', '<xcatimage>\n'];
  for (const element of topLevelElements(m)) render(element, 1, '', image, out);
  out.push('</xcatimage>\n');
  return out.join('');
}
