// Memory stays flat whatever the data size: 300 MB generated on the fly go through the compressor
// and straight back through the decompressor, and a zstd stream that expands a thousandfold is
// decoded, with the process RSS sampled all along.
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import t from 'tap';
import { createCompressor, type TaggedChunk } from '../src/pipeline/compress/index.js';
import { createDecompressor } from '../src/pipeline/decompress.js';

const MB = 1e6;
const LIMIT = 150 * MB;

/** 300 MB in 1 MiB chunks: text-like runs (compressed) alternating with random ones (stored). */
function* generated(total: number, seen: crypto.Hash): Generator<TaggedChunk> {
  const textBlock = Buffer.from('usr/lib/x86_64-linux-gnu/libc.so.6 '.repeat(30_000).slice(0, 1024 * 1024));
  for (let made = 0, i = 0; made < total; made += textBlock.length, i++) {
    // A fresh buffer each time: nothing here may be kept alive by the stages downstream.
    const data = i % 4 === 3 ? crypto.randomBytes(textBlock.length) : Buffer.from(textBlock);
    data.writeUInt32LE(i, 0);
    seen.update(data);
    yield { data, store: i % 4 === 3 };
  }
}

/** Runs `work` while sampling RSS; returns the largest growth over the starting RSS. */
async function rssGrowth(work: () => Promise<void>): Promise<number> {
  global.gc?.();
  const start = process.memoryUsage().rss;
  let peak = start;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
  try {
    await work();
  } finally {
    clearInterval(sampler);
  }
  return Math.max(peak, process.memoryUsage().rss) - start;
}

/** Hashes what comes out of a stream. */
const digestInto = (hash: crypto.Hash) =>
  async function* (source: AsyncIterable<Buffer>) {
    for await (const piece of source) hash.update(piece);
  };

for (const format of ['zstd', 'gzip'] as const) {
  t.test(`${format}: 300 MB through compressor and decompressor in bounded memory`, async (t) => {
    const written = crypto.createHash('sha256');
    const read = crypto.createHash('sha256');
    const compressor = createCompressor({ format, threads: 2, level: 1 });
    const growth = await rssGrowth(() =>
      pipeline(Readable.from(generated(300 * MB, written), { objectMode: true }), compressor.stream, createDecompressor(format), digestInto(read)),
    );
    t.equal(read.digest('hex'), written.digest('hex'), 'the bytes come back');
    t.ok(compressor.stats().bytesIn >= 300 * MB, `${compressor.stats().bytesIn} bytes compressed`);
    t.ok(growth < LIMIT, `RSS grew by ${Math.round(growth / MB)} MB (limit ${LIMIT / MB} MB)`);
  });
}

t.test('zstd: a thousandfold expansion is decoded block by block', async (t) => {
  const zeros = execFileSync('sh', ['-c', 'head -c 400000000 /dev/zero | zstd -c -q'], { maxBuffer: 16 * 1024 * 1024 });
  t.ok(zeros.length < 400_000, `${zeros.length} compressed bytes`);
  let size = 0;
  const growth = await rssGrowth(() =>
    pipeline(Readable.from([zeros]), createDecompressor('zstd'), async function* (source) {
      for await (const piece of source) size += (piece as Buffer).length;
    }),
  );
  t.equal(size, 400_000_000, 'all of it');
  t.ok(growth < LIMIT, `RSS grew by ${Math.round(growth / MB)} MB (limit ${LIMIT / MB} MB)`);
});
