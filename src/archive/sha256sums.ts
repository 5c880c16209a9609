import { createHash, type Hash } from 'node:crypto';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BundleError } from '../core/errors.js';

/**
 * The bundle's SHA256SUMS member, in GNU sha256sum's text format so that `sha256sum -c` run in the
 * image directory verifies an unpacked bundle, and the digests computed as data streams past.
 */

export interface Sha256Entry {
  /** Path relative to the image directory. */
  name: string;
  /** Lower-case hex digest. */
  sha256: string;
}

/** The checksums' name in a bundle's image directory. */
export const CHECKSUMS_MEMBER = 'SHA256SUMS';

/** sha256sum escapes these in names, marking the line with a leading backslash. */
const ESCAPES: Record<string, string> = { '\\': '\\\\', '\n': '\\n', '\r': '\\r' };
const UNESCAPES: Record<string, string> = { '\\': '\\', n: '\n', r: '\r' };

function formatLine({ name, sha256 }: Sha256Entry): string {
  const escaped = name.replace(/[\\\n\r]/g, (c) => ESCAPES[c]!);
  return `${escaped === name ? '' : '\\'}${sha256}  ${escaped}\n`;
}

/** `HEX  NAME` lines, as `sha256sum` prints them, in the given order. */
export function formatSha256Sums(entries: Sha256Entry[]): string {
  return entries.map(formatLine).join('');
}

/** Undoes sha256sum's escaping; undefined for an escape sha256sum never writes. */
function unescapeName(name: string): string | undefined {
  let bad = false;
  const plain = name.replace(/\\(.?)/gs, (_, c: string) => {
    const replacement = UNESCAPES[c];
    if (replacement === undefined) bad = true;
    return replacement ?? '';
  });
  return bad ? undefined : plain;
}

const LINE = /^(\\?)([0-9a-fA-F]{64}) [ *](.+)$/s;

/**
 * Name -> lower-case hex digest. Accepts what sha256sum writes (text or binary marker, escaped
 * names); refuses with BundleError any other line or a name listed twice.
 */
export function parseSha256Sums(text: string, member = CHECKSUMS_MEMBER): Map<string, string> {
  const sums = new Map<string, string>();
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  lines.forEach((line, index) => {
    const fail = (problem: string) => new BundleError(`${member}: line ${index + 1}: ${problem}`, member);
    const match = LINE.exec(line);
    if (!match) throw fail('not a sha256sum line (HEX  NAME)');
    const [, escapedMark, hex, rawName] = match as unknown as [string, string, string, string];
    if (!escapedMark && /[\\\r]/.test(rawName)) throw fail('unescaped backslash or CR in the name');
    const name = escapedMark ? unescapeName(rawName) : rawName;
    if (name === undefined) throw fail('bad escape in the name');
    if (sums.has(name)) throw fail(`${JSON.stringify(name)} is listed twice`);
    sums.set(name, hex.toLowerCase());
  });
  return sums;
}

/**
 * `source` read through `tap`. Not source.pipe(tap): a source destroyed half way (the bundle
 * stopped on a signal) would leave whoever reads the tap waiting for ever; linked this way the
 * tap fails with it. Every member body is read through one.
 */
export function throughTap(source: Readable, tap: DigestTap): DigestTap {
  // Already destroyed (a bundle that ended in the chunk holding this member's header), a tar
  // entry would leave the pipeline waiting for ever: the tap fails at once instead.
  if (source.destroyed) tap.destroy(new Error('premature close'));
  else pipeline(source, tap).catch(() => undefined); // its error reaches the tap's reader
  return tap;
}

/**
 * A pass-through stream that hashes every chunk on its way. `sha256` and `bytes` are final once
 * the stream has ended (after 'finish'/'end').
 */
export class DigestTap extends Transform {
  private readonly hash: Hash = createHash('sha256');
  private hex: string | undefined;
  bytes = 0;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    this.hex = this.hash.digest('hex');
    callback();
  }

  /** The hex digest of everything that passed; throws before the stream has ended. */
  get sha256(): string {
    if (this.hex === undefined) throw new Error('DigestTap: digest read before the stream ended');
    return this.hex;
  }
}
