// The decompressor on streams made by the system's gzip, pigz and zstd (and by hand), and its
// refusals: truncated, corrupt and trailing-garbage streams are BundleErrors that say so.
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import t from 'tap';
import { BundleError } from '../src/core/errors.js';
import { createDecompressor, detectFormat, type DetectedFormat } from '../src/pipeline/decompress.js';

const input = Buffer.concat([
  Buffer.from('tar-like header text '.repeat(50_000)),
  crypto.randomBytes(1024 * 1024),
  Buffer.alloc(2 * 1024 * 1024),
]);
const inputDigest = crypto.createHash('sha256').update(input).digest('hex');

/** A system tool's output for `data` on stdin (spawned with an argument array). */
const tool = (program: string, args: string[], data: Buffer = input): Buffer =>
  execFileSync(program, args, { input: data, maxBuffer: 64 * 1024 * 1024 });

/** Decompresses `data` fed in 64 KiB chunks; the output's digest. */
async function decode(data: Buffer, format: DetectedFormat): Promise<string> {
  const chunks = Array.from({ length: Math.ceil(data.length / 65536) }, (_, i) => data.subarray(i * 65536, (i + 1) * 65536));
  const hash = crypto.createHash('sha256');
  await pipeline(Readable.from(chunks), createDecompressor(format), async function* (source) {
    for await (const piece of source) hash.update(piece as Buffer);
  });
  return hash.digest('hex');
}

/** `frame` preceded by a skippable frame (magic 0x184D2A5E, 4-byte size, payload). */
function withSkippableFrame(frame: Buffer): Buffer {
  const header = Buffer.alloc(8);
  header.writeUInt32LE(0x184d2a5e, 0);
  header.writeUInt32LE(5, 4);
  return Buffer.concat([header, Buffer.from('hello'), frame]);
}

const gzipped = tool('gzip', ['-c']);
const zstded = tool('zstd', ['-c', '-q', '-T2']);

t.test('detectFormat reads the magic', async (t) => {
  t.equal(detectFormat(gzipped.subarray(0, 8)), 'gzip');
  t.equal(detectFormat(zstded.subarray(0, 8)), 'zstd');
  t.equal(detectFormat(withSkippableFrame(zstded).subarray(0, 8)), 'zstd');
  t.equal(detectFormat(Buffer.from('etc/\0\0\0\0')), 'none');
  t.equal(detectFormat(Buffer.alloc(0)), 'none');
});

t.test('streams from other producers decode', async (t) => {
  const streams: Array<[string, Buffer, DetectedFormat]> = [
    ['gzip -c', gzipped, 'gzip'],
    ['pigz -c', tool('pigz', ['-c', '-p', '2']), 'gzip'],
    ['two gzip members', Buffer.concat([tool('gzip', ['-c'], input.subarray(0, 1000)), tool('gzip', ['-c'], input.subarray(1000))]), 'gzip'],
    ['zstd -c -T2', zstded, 'zstd'],
    ['zstd -9 with checksum', tool('zstd', ['-c', '-q', '-9', '--check']), 'zstd'],
    ['zstd from a pipe, no content size', tool('sh', ['-c', 'cat | zstd -c -q --no-content-size']), 'zstd'],
    ['two zstd frames', Buffer.concat([tool('zstd', ['-c', '-q'], input.subarray(0, 1000)), tool('zstd', ['-c', '-q'], input.subarray(1000))]), 'zstd'],
    ['a skippable frame first', withSkippableFrame(zstded), 'zstd'],
    ['plain', input, 'none'],
  ];
  for (const [name, data, format] of streams) {
    t.equal(detectFormat(data.subarray(0, 8)), format, `${name} detected as ${format}`);
    t.equal(await decode(data, format), inputDigest, `${name} gives the input back`);
  }
});

t.test('damaged streams are refused with a message that says how', async (t) => {
  const flipped = (data: Buffer, at: number): Buffer => {
    const copy = Buffer.from(data);
    copy[at] ^= 0x55;
    return copy;
  };
  const cases: Array<[string, Buffer, DetectedFormat, RegExp]> = [
    ['truncated gzip', gzipped.subarray(0, gzipped.length - 100), 'gzip', /^bundle is truncated$/],
    ['truncated gzip header', gzipped.subarray(0, 5), 'gzip', /^bundle is truncated$/],
    ['bit-flipped gzip', flipped(gzipped, Math.floor(gzipped.length / 2)), 'gzip', /^corrupt gzip data/],
    ['gzip then text', Buffer.concat([gzipped, Buffer.from('garbage')]), 'gzip', /^trailing data after the compressed stream$/],
    ['gzip then zeros', Buffer.concat([gzipped, Buffer.alloc(300_000)]), 'gzip', /^trailing data after the compressed stream$/],
    ['empty gzip', Buffer.alloc(0), 'gzip', /^bundle is truncated$/],
    ['truncated zstd', zstded.subarray(0, zstded.length - 100), 'zstd', /^bundle is truncated$/],
    ['truncated zstd frame header', zstded.subarray(0, 5), 'zstd', /^bundle is truncated$/],
    ['bit-flipped zstd', flipped(zstded, Math.floor(zstded.length / 2)), 'zstd', /^corrupt zstd data/],
    ['zstd then text', Buffer.concat([zstded, Buffer.from('garbage')]), 'zstd', /^trailing data after the compressed stream$/],
    ['zstd then zeros', Buffer.concat([zstded, Buffer.alloc(10)]), 'zstd', /^trailing data after the compressed stream$/],
    ['empty zstd', Buffer.alloc(0), 'zstd', /^bundle is truncated$/],
  ];
  for (const [name, data, format, message] of cases) {
    await t.rejects(decode(data, format), { constructor: BundleError, message }, name);
  }
});

t.test('a zstd window too large for the in-process decoder is named', async (t) => {
  const long = tool('sh', ['-c', 'cat | zstd -c -q --long=27']);
  await t.rejects(decode(long, 'zstd'), { constructor: BundleError, message: /needs a 128 MiB window, more than the 8 MiB supported/ });
});
