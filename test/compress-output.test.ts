// The block compressors' output, checked by the system's gzip and zstd and by our decompressor:
// byte-exact round trips, stored data really stored, reproducible output, bounded window.
// Needs the compiled worker (dist/workers/compress.js): build first.
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import t from 'tap';
import { createCompressor, type CompressorOptions, type CompressorStats, type TaggedChunk } from '../src/pipeline/compress/index.js';
import { createDecompressor } from '../src/pipeline/decompress.js';
import { UsageError } from '../src/core/errors.js';

const MiB = 1024 * 1024;

/** Deterministic text-like bytes (compressible, not trivially). */
function text(size: number, seed: number): Buffer {
  const words = ['node', 'image', 'rootimg', 'kernel', 'initrd', 'xcat', 'osimage', 'export', 'linux', 'netboot', '\n'];
  const parts: string[] = [];
  let length = 0;
  let state = seed;
  while (length < size) {
    state = (state * 1103515245 + 12345) >>> 0;
    const word = words[state % words.length] + (state % 3 === 0 ? String(state % 1000) : '') + ' ';
    parts.push(word);
    length += word.length;
  }
  return Buffer.from(parts.join('')).subarray(0, size);
}

const random = (size: number): Buffer => crypto.randomBytes(size);
const sha256 = (data: Buffer): string => crypto.createHash('sha256').update(data).digest('hex');

/** The compressed stream of `chunks`, and the compressor's counts at its end. */
async function compressWithStats(chunks: TaggedChunk[], options: CompressorOptions): Promise<{ output: Buffer; stats: CompressorStats }> {
  const compressor = createCompressor(options);
  const out: Buffer[] = [];
  await pipeline(Readable.from(chunks, { objectMode: true }), compressor.stream, async function* (source) {
    for await (const piece of source) out.push(piece as Buffer);
  });
  return { output: Buffer.concat(out), stats: compressor.stats() };
}

async function compress(chunks: TaggedChunk[], options: CompressorOptions): Promise<Buffer> {
  return (await compressWithStats(chunks, options)).output;
}

async function decompress(data: Buffer, format: 'gzip' | 'zstd'): Promise<Buffer> {
  const out: Buffer[] = [];
  await pipeline(Readable.from([data]), createDecompressor(format), async function* (source) {
    for await (const piece of source) out.push(piece as Buffer);
  });
  return Buffer.concat(out);
}

/** Runs a program with `input` on stdin; its exit code and stdout. */
function run(program: string, args: string[], input: Buffer): Promise<{ code: number | null; stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const stdout: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => stdout.push(d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout: Buffer.concat(stdout), stderr }));
    child.stdin.on('error', () => undefined); // a tool that rejects its input may stop reading early
    child.stdin.end(input);
  });
}

const TOOLS = {
  gzip: { test: ['gzip', ['-t']], decode: ['gzip', ['-dc']], decodeOther: ['pigz', ['-dc']] },
  zstd: { test: ['zstd', ['-t', '-q']], decode: ['zstd', ['-dc', '-q']], decodeOther: ['zstd', ['-dc', '-q', '--no-check']] },
} as const;

const text3 = text(3 * MiB + 12345, 1);
const random3 = random(3 * MiB + 777);
const mixed: TaggedChunk[] = [
  { data: text(1000, 2), store: false },
  { data: random(70_000), store: true },
  { data: text(300_000, 3), store: false },
  { data: random(1), store: true },
  { data: text(MiB + 5, 4), store: false },
  { data: random(MiB + 9), store: true },
  { data: text(513, 5), store: false },
];

const cases: Array<[string, TaggedChunk[]]> = [
  ['empty input', []],
  ['one byte', [{ data: Buffer.from('x'), store: false }]],
  ['one stored byte', [{ data: Buffer.from('y'), store: true }]],
  ['a few MiB of text', [{ data: text3, store: false }]],
  ['a few MiB of random data tagged store', [{ data: random3, store: true }]],
  ['a few MiB of random data not tagged (blocks that do not shrink)', [{ data: text(5000, 6), store: false }, { data: random3, store: false }]],
  ['a short block that does not shrink at the end', [{ data: text3, store: false }, { data: random(500), store: true }, { data: random(3000), store: false }]],
  ['mixed tags', mixed],
];

for (const format of ['gzip', 'zstd'] as const) {
  t.test(`${format}: system tools and our decompressor restore the input`, async (t) => {
    for (const [name, chunks] of cases) {
      const input = Buffer.concat(chunks.map((c) => c.data));
      const output = await compress(chunks, { format, threads: 2 });
      const [testProgram, testArgs] = TOOLS[format].test;
      const tested = await run(testProgram, [...testArgs], output);
      t.equal(tested.code, 0, `${name}: ${testProgram} ${testArgs.join(' ')} accepts it ${tested.stderr}`);
      for (const [program, args] of [TOOLS[format].decode, TOOLS[format].decodeOther]) {
        const decoded = await run(program, [...args], output);
        t.equal(decoded.code, 0, `${name}: ${program} decodes it`);
        t.equal(sha256(decoded.stdout), sha256(input), `${name}: ${program} ${args.join(' ')} gives the input back`);
      }
      t.equal(sha256(await decompress(output, format)), sha256(input), `${name}: our decompressor gives the input back`);
    }
  });

  t.test(`${format}: data tagged store is stored, not compressed`, async (t) => {
    const data = random(8 * MiB);
    const { output, stats } = await compressWithStats([{ data, store: true }], { format, threads: 2 });
    t.ok(output.length >= data.length && output.length < data.length * 1.01, `size ${output.length} within 1% of ${data.length}`);
    // Samples inside one stored block each (gzip cuts its stored blocks every 65535 bytes from
    // each 1 MiB block start, zstd every 128 KiB from each 4 MiB block start).
    for (const offset of [0, 4 * MiB + 1000, 7 * MiB + 1000]) {
      const sample = data.subarray(offset, offset + 60_000);
      t.ok(output.includes(sample), `input bytes at ${offset} appear in clear`);
    }
    t.same(stats, { bytesIn: data.length, bytesOut: output.length, storedBytes: data.length }, 'stats count it');
  });

  t.test(`${format}: a block that does not shrink is stored, its compressed form thrown away`, async (t) => {
    const data = random(3 * MiB);
    const { output, stats } = await compressWithStats([{ data, store: false }], { format, threads: 2 });
    t.ok(output.length >= data.length && output.length < data.length * 1.01, `size ${output.length} within 1% of ${data.length}`);
    for (const offset of [0, MiB + 1000, 2 * MiB + 1000]) {
      t.ok(output.includes(data.subarray(offset, offset + 60_000)), `input bytes at ${offset} appear in clear`);
    }
    t.same(stats, { bytesIn: data.length, bytesOut: output.length, storedBytes: data.length }, 'counted as stored');
    t.equal(sha256(await decompress(output, format)), sha256(data), 'and it decodes to the input');
  });

  t.test(`${format}: output depends only on the bytes and their tags`, async (t) => {
    const blockSize = 64 * 1024;
    const one = await compress(mixed, { format, threads: 1, blockSize });
    const three = await compress(mixed, { format, threads: 3, blockSize });
    t.ok(one.equals(three), 'threads=1 and threads=3 give byte-identical output');
    // The same stream written in other chunk sizes: the block cuts must not move.
    const rechunked: TaggedChunk[] = mixed.flatMap(({ data, store }) => {
      const parts: TaggedChunk[] = [];
      for (let at = 0, step = 1; at < data.length; at += step, step = step * 7 + 1) parts.push({ data: data.subarray(at, at + step), store });
      return parts;
    });
    const rechunkedOut = await compress(rechunked, { format, threads: 2, blockSize });
    t.ok(one.equals(rechunkedOut), 'other chunking gives byte-identical output');
    const input = Buffer.concat(mixed.map((c) => c.data));
    const [program, args] = TOOLS[format].decode;
    t.equal(sha256((await run(program, [...args], one)).stdout), sha256(input), 'small blocks decode too');
  });

  t.test(`${format}: the writer is held while the window is full`, async (t) => {
    const blockSize = 64 * 1024;
    const compressor = createCompressor({ format, threads: 1, blockSize });
    const block = text(blockSize, 9);
    for (let i = 0; i < 200; i++) compressor.stream.write({ data: block, store: false });
    compressor.stream.end();
    await new Promise((resolve) => setTimeout(resolve, 400));
    // Window of 2 blocks, the readable buffer and the writable buffer: far less than 200 blocks.
    t.ok(compressor.stats().bytesIn < 40 * blockSize, `${compressor.stats().bytesIn} bytes accepted without a reader`);
    const out: Buffer[] = [];
    for await (const piece of compressor.stream) out.push(piece as Buffer);
    t.equal(compressor.stats().bytesIn, 200 * blockSize, 'everything accepted once read');
    t.equal(sha256(await decompress(Buffer.concat(out), format)), sha256(Buffer.concat(Array(200).fill(block))), 'and intact');
  });
}

t.test('none passes the bytes through', async (t) => {
  const output = await compress(mixed, { format: 'none', threads: 1 });
  t.ok(output.equals(Buffer.concat(mixed.map((c) => c.data))));
});

t.test('bad settings are usage errors', async (t) => {
  t.throws(() => createCompressor({ format: 'gzip', threads: 0 }), UsageError);
  t.throws(() => createCompressor({ format: 'gzip', threads: 1, level: 10 }), { name: 'UsageError', message: /level must be 1 to 9/ });
  t.throws(() => createCompressor({ format: 'zstd', threads: 1, level: 19 }), { name: 'UsageError', message: /level must be 1 to 9/ });
  t.throws(() => createCompressor({ format: 'zstd', threads: 1, level: 7, blockSize: 4 * MiB }), {
    name: 'UsageError',
    message: /block size must be 64 KiB to 2 MiB at level 7/,
  });
});
