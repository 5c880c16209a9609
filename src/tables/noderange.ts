/**
 * xCAT's noderange (`-p` of imgexport and imgimport), the forms sites write: comma lists of node
 * and group names, ranges `node[01-10]`, `rack[1-2]n[1-4]` and `node01-node10`, and `-NAME` to take
 * nodes out (`compute,-node5`). Regular expressions (`/re`), node files (`^file`) and intersections
 * (`a@b`) are refused by name rather than read as node names.
 */
import { UsageError } from '../core/errors.js';
import type { Tables } from './types.js';

/** Names one range may make: a typo (`node[1-100000000]`) fails instead of filling memory. */
const MAX_RANGE = 100_000;

/** The nodes a noderange names, in nodelist order, and the names that are neither node nor group. */
export function expandNoderange(tables: Tables, noderange: string): { nodes: string[]; unknown: string[] } {
  const nodelist = tables.nodelist ?? [];
  const groupsOf = new Map(nodelist.map((row) => [row.node, splitList(row.groups)]));
  const chosen = new Set<string>();
  const left = new Set<string>();
  const unknown: string[] = [];
  for (const element of splitList(noderange)) {
    const excluded = element.startsWith('-') && element.length > 1;
    const text = excluded ? element.slice(1) : element;
    if (/^[/^]|@/.test(text)) throw new UsageError(`noderange '${element}': regular expressions, node files and intersections are not supported; name the nodes or groups`);
    for (const name of expandNames(text)) {
      const nodes = groupsOf.has(name) ? [name] : nodelist.filter((row) => groupsOf.get(row.node)!.includes(name)).map((row) => row.node);
      if (!nodes.length && !excluded) unknown.push(name);
      for (const node of nodes) (excluded ? left : chosen).add(node);
    }
  }
  return { nodes: nodelist.map((row) => row.node).filter((node) => chosen.has(node) && !left.has(node)), unknown };
}

/** One element's names: its bracket ranges and `a01-a10` range expanded, else the name itself. */
export function expandNames(text: string): string[] {
  const bracket = /^(.*?)\[(\d+)-(\d+)\](.*)$/.exec(text);
  if (bracket) {
    const [, before, from, to, after] = bracket;
    return numbered(from, to, text).flatMap((n) => expandNames(`${before}${n}${after}`));
  }
  const dash = /^(.*?)(\d+)-\1(\d+)$/.exec(text);
  if (dash) return numbered(dash[2], dash[3], text).map((n) => `${dash[1]}${n}`);
  return [text];
}

/** from..to, zero-padded to the width of `from` when it starts with 0 (node01-node10). */
function numbered(from: string, to: string, element: string): string[] {
  const [low, high] = [Number(from), Number(to)];
  if (high < low || high - low >= MAX_RANGE) throw new UsageError(`noderange '${element}': the range ${from}-${to} is empty or larger than ${MAX_RANGE}`);
  const width = from.startsWith('0') ? from.length : 0;
  return Array.from({ length: high - low + 1 }, (_, i) => String(low + i).padStart(width, '0'));
}

function splitList(value: string | undefined): string[] {
  return (value ?? '').split(',').map((s) => s.trim()).filter(Boolean);
}
