import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { PathError } from '../core/errors.js';
import type { Sandbox } from '../core/sandbox.js';
import { listItems } from '../tables/types.js';

/**
 * xCAT's exclusion rules for packimage. Each non-comment line of an exlist is a `find -path`
 * pattern matched against `./` + the path in the tree: `+PATTERN` puts back what an exclusion
 * removed, `-PATTERN` or a bare `PATTERN` excludes. `#INCLUDE:FILE#` is replaced by FILE's lines.
 */
export interface PackRules {
  excludes: string[];
  includes: string[];
}

/** What xCAT never packs: statelite bookkeeping that a stateless node must not boot with. */
export const ALWAYS_EXCLUDED: readonly string[] = [
  './etc/init.d/statelite',
  './etc/rc.sysinit.backup',
  './.statelite*',
  './.default*',
  './.statebackup*',
];

/** Reads one list file by its logical path; undefined when it cannot be read. */
export type ListReader = (logicalPath: string) => Promise<string | undefined>;

export type Warn = (message: string) => void;

// xCAT's own pattern: the file name runs to the next '#' on the same line.
const INCLUDE_TAG = /#INCLUDE:([^#^\n]+)#/g;

/**
 * Replaces every `#INCLUDE:FILE#` by FILE's non-blank lines (trailing blanks removed), recursively.
 * Relative names are resolved against `baseDir`, which stays the top-level exlist's directory for
 * nested includes as in xCAT. A file already being included (a loop) or unreadable is skipped with
 * a warning; xCAT loops forever on the first and silently drops the second.
 */
export async function expandIncludes(
  text: string,
  baseDir: string,
  read: ListReader,
  warn: Warn,
  chain: readonly string[] = [],
): Promise<string> {
  const tags = [...text.matchAll(INCLUDE_TAG)];
  if (tags.length === 0) return text;
  const replacements: string[] = [];
  for (const tag of tags) {
    const file = path.posix.resolve(baseDir, tag[1]);
    if (chain.includes(file)) {
      warn(`exlist ${chain[chain.length - 1]}: #INCLUDE:${tag[1]}# includes itself; ignored`);
      replacements.push('');
      continue;
    }
    const included = await read(file);
    if (included === undefined) {
      warn(`exlist ${chain[chain.length - 1] ?? baseDir}: cannot read included file ${file}; ignored`);
      replacements.push('');
      continue;
    }
    const lines = included
      .split('\n')
      .map((line) => line.replace(/\s+$/, ''))
      .filter((line) => line !== '');
    replacements.push(await expandIncludes(lines.join('\n'), baseDir, read, warn, [...chain, file]));
  }
  let i = 0;
  return text.replace(INCLUDE_TAG, () => replacements[i++]);
}

/** Splits expanded exlist text into patterns: comments and blank lines dropped, `+` includes, `-`/bare excludes. */
export function parseRuleLines(text: string): PackRules {
  const rules: PackRules = { excludes: [], includes: [] };
  for (const raw of text.split('\n')) {
    // The CR of a CRLF line first: `.` does not cross it, so a comment before it would stay.
    const line = raw.replace(/\r$/, '').replace(/\s*#.*$/, '').trim();
    if (line === '') continue;
    if (line.startsWith('+')) rules.includes.push(line.slice(1));
    else rules.excludes.push(line.startsWith('-') ? line.slice(1) : line);
  }
  return rules;
}

/**
 * The rules of a linuximage `exlist` value (comma-separated logical paths), plus ALWAYS_EXCLUDED.
 * A listed exlist that cannot be read is an error: packing without the user's exclusions would
 * silently put into the image what they meant to keep out.
 */
export async function loadPackRules(exlistColumn: string | undefined, sandbox: Sandbox, warn: Warn): Promise<PackRules> {
  const rules: PackRules = { excludes: [...ALWAYS_EXCLUDED], includes: [] };
  const read: ListReader = (logicalPath) => readFile(sandbox.real(logicalPath), 'utf8').catch(() => undefined);
  for (const exlist of listItems(exlistColumn)) {
    const text = await read(exlist);
    if (text === undefined) throw new PathError(`cannot read the exlist file ${exlist}`, exlist);
    const expanded = await expandIncludes(text, path.posix.dirname(exlist), read, warn, [exlist]);
    const parsed = parseRuleLines(expanded);
    rules.excludes.push(...parsed.excludes);
    rules.includes.push(...parsed.includes);
  }
  return rules;
}

const POSIX_CLASSES: Record<string, string> = {
  alpha: 'a-zA-Z',
  digit: '0-9',
  alnum: 'a-zA-Z0-9',
  upper: 'A-Z',
  lower: 'a-z',
  space: ' \\t\\n\\r\\f\\v',
  blank: ' \\t',
  punct: '!-\\/:-@\\[-`{-~',
  xdigit: '0-9a-fA-F',
  print: ' -~',
  graph: '!-~',
  cntrl: '\\x00-\\x1f\\x7f',
};

/** Regular expression source for one `find -path` pattern (fnmatch without FNM_PATHNAME: `*` crosses `/`). */
export function findPathPatternSource(pattern: string): string {
  let out = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '*') out += '[^]*';
    else if (c === '?') out += '[^]';
    else if (c === '\\' && i + 1 < pattern.length) out += escapeRegExp(pattern[++i]);
    else if (c === '[') {
      const bracket = bracketSource(pattern, i);
      if (bracket) {
        out += bracket.source;
        i = bracket.end;
      } else out += '\\[';
    } else out += escapeRegExp(c);
  }
  return out;
}

/** A `[...]` bracket expression starting at `start`, or undefined when it is not closed (then `[` is literal). */
function bracketSource(pattern: string, start: number): { source: string; end: number } | undefined {
  let i = start + 1;
  let negate = false;
  if (pattern[i] === '!' || pattern[i] === '^') {
    negate = true;
    i++;
  }
  const items: BracketItem[] = [];
  for (; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === ']' && items.length > 0) return { source: `[${negate ? '^' : ''}${bracketBody(items)}]`, end: i };
    const cls = /^\[:([a-z]+):\]/.exec(pattern.slice(i));
    if (cls && POSIX_CLASSES[cls[1]]) {
      items.push({ source: POSIX_CLASSES[cls[1]] });
      i += cls[0].length - 1;
    } else if (c === '\\' && i + 1 < pattern.length) items.push({ char: pattern[++i], escaped: true });
    else items.push({ char: c });
  }
  return undefined;
}

/** What a bracket holds: characters (an escaped one is never a range's dash) and POSIX classes' sources. */
type BracketItem = { char: string; escaped?: boolean } | { source: string };

/**
 * The inside of a bracket. `x-y` between two characters is a range; a reversed one (`z-a`)
 * matches nothing, as in GNU find, where a regular expression would refuse the whole pattern.
 */
function bracketBody(items: BracketItem[]): string {
  let body = '';
  for (let k = 0; k < items.length; k++) {
    const item = items[k];
    const dash = items[k + 1];
    const end = items[k + 2];
    if ('char' in item && dash && 'char' in dash && dash.char === '-' && !dash.escaped && end && 'char' in end) {
      if (item.char <= end.char) body += `${escapeInBracket(item.char)}-${escapeInBracket(end.char)}`;
      k += 2;
    } else body += 'char' in item ? escapeInBracket(item.char) : item.source;
  }
  return body;
}

function escapeInBracket(c: string): string {
  return /[\]\\^\-[]/.test(c) ? '\\' + c : c;
}

function escapeRegExp(c: string): string {
  return c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

/** One matcher for a set of patterns (a single alternation: fast for many patterns). */
export function findPathMatcher(patterns: readonly string[]): (findPath: string) => boolean {
  if (patterns.length === 0) return () => false;
  const re = new RegExp(`^(?:${patterns.map(findPathPatternSource).join('|')})$`);
  return (findPath) => re.test(findPath);
}

/** The path `find .` prints for a tree-relative path ('.' for the root). */
export function findPathOf(relPath: string): string {
  return relPath === '.' ? '.' : `./${relPath}`;
}

/** Whether a tree-relative path is left out: it matches an exclusion and no `+` inclusion. */
export function exclusionTest(rules: PackRules): (relPath: string) => boolean {
  const excluded = findPathMatcher(rules.excludes);
  const included = findPathMatcher(rules.includes);
  return (relPath) => {
    const p = findPathOf(relPath);
    return excluded(p) && !included(p);
  };
}
