/**
 * xCAT's noderange (`-p` of imgexport and imgimport), the forms sites write: comma lists of node
 * and group names, ranges `node[01-10]`, `node[1,3,5-7]`, `rack[1-2]n[1-4]` and `node01-node10`,
 * and `-NAME` to take nodes out (`compute,-node5`). A name that is a node or group is that, before
 * any range is read into it. Regular expressions (`/re`), node files (`^file`), intersections
 * (`a@b`), `a:b` and `a+N` ranges are refused by name rather than read as node names.
 */
import { UsageError } from '../core/errors.js';
import { listItems, type Tables } from './types.js';

/** Names one element may make: a typo (`node[1-100000000]`) fails instead of filling memory. */
const MAX_RANGE = 100_000;

/** The nodes a noderange names, in nodelist order, and the names that are neither node nor group. */
export function expandNoderange(tables: Tables, noderange: string): { nodes: string[]; unknown: string[] } {
  const nodelist = tables.nodelist ?? [];
  const groupsOf = new Map(nodelist.map((row) => [row.node, listItems(row.groups)]));
  const known = new Set([...groupsOf.keys(), ...[...groupsOf.values()].flat()]);
  const chosen = new Set<string>();
  const left = new Set<string>();
  const unknown: string[] = [];
  for (const element of elementsOf(noderange)) {
    const excluded = element.startsWith('-') && element.length > 1;
    const text = excluded ? element.slice(1) : element;
    const named = known.has(text);
    if (!named && /^[/^]|[@:]|\d\+\d+$/.test(text)) {
      throw new UsageError(`noderange '${element}': regular expressions, node files, intersections and ':' or '+' ranges are not supported; name the nodes or groups`);
    }
    for (const name of named ? [text] : expandNames(text)) {
      const nodes = groupsOf.has(name) ? [name] : nodelist.filter((row) => groupsOf.get(row.node)!.includes(name)).map((row) => row.node);
      if (!nodes.length && !excluded) unknown.push(name);
      for (const node of nodes) (excluded ? left : chosen).add(node);
    }
  }
  return { nodes: nodelist.map((row) => row.node).filter((node) => chosen.has(node) && !left.has(node)), unknown };
}

/** One element's names: its bracket ranges and `a01-a10` range expanded, else the name itself. */
export function expandNames(text: string): string[] {
  const bracket = /^(.*?)\[([\d,-]+)\](.*)$/.exec(text);
  if (bracket) {
    const [, before, list, after] = bracket;
    const names: string[] = [];
    for (const item of list.split(',')) {
      const [from, to = from] = item.split('-');
      if (!/^\d+$/.test(from) || !/^\d+$/.test(to)) throw new UsageError(`noderange '${text}': '${item}' is not a number or a range of numbers`);
      for (const n of numbered(from, to, text)) {
        names.push(...expandNames(`${before}${n}${after}`));
        // Counted as they come: several ranges multiply (rack[1-1000]n[1-1000]).
        if (names.length > MAX_RANGE) throw new UsageError(`noderange '${text}' names more than ${MAX_RANGE} nodes`);
      }
    }
    return names;
  }
  const dash = /^(.*?)(\d+)-\1(\d+)$/.exec(text);
  if (dash) return numbered(dash[2], dash[3], text).map((n) => `${dash[1]}${n}`);
  return [text];
}

/** The comma-separated elements of a noderange, commas inside brackets kept (`node[1,3]`). */
function elementsOf(noderange: string): string[] {
  return (noderange.match(/(?:\[[^\]]*\]|[^,])+/g) ?? []).map((s) => s.trim()).filter(Boolean);
}

/** from..to, zero-padded to the width of `from` when it starts with 0 (node01-node10). */
function numbered(from: string, to: string, element: string): string[] {
  const [low, high] = [Number(from), Number(to)];
  if (high < low || high - low >= MAX_RANGE) throw new UsageError(`noderange '${element}': the range ${from}-${to} is empty or larger than ${MAX_RANGE}`);
  const width = from.startsWith('0') ? from.length : 0;
  return Array.from({ length: high - low + 1 }, (_, i) => String(low + i).padStart(width, '0'));
}
