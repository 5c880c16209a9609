import t from 'tap';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ChunkPool, chunkPool } from '../src/pipeline/chunk-pool.js';
import { createFileSink } from '../src/pipeline/sink.js';

const sameMemory = (a: Buffer, b: Buffer): boolean => a.buffer === b.buffer && a.byteOffset === b.byteOffset;

t.test('small requests are carved one after the other from one slab', async (t) => {
  const pool = new ChunkPool(1000, 4);
  const a = pool.take(300);
  const b = pool.take(300);
  const c = pool.take(400);
  t.equal(a.buffer, b.buffer, 'same slab');
  t.equal(c.buffer, a.buffer, 'a request that just fits stays in the slab');
  t.same([a.byteOffset, b.byteOffset, c.byteOffset, c.length], [0, 300, 600, 400]);
  const d = pool.take(1);
  t.not(d.buffer, a.buffer, 'a full slab is left for a new one');
});

t.test('a slab is carved again only once every byte handed out is reported done', async (t) => {
  const pool = new ChunkPool(1000, 4);
  const first = pool.take(600);
  const second = pool.take(300);
  pool.take(500); // does not fit: a second slab becomes the current one
  pool.done(first);
  t.equal(pool.freeSlabs, 0, 'bytes of the first slab are still pending');
  pool.done(second.subarray(0, 100));
  pool.done(second.subarray(100));
  t.equal(pool.freeSlabs, 1, 'all bytes done in pieces: the slab is free');
  const reused = pool.take(900); // does not fit the current slab (500 carved): the freed one is next
  t.ok(sameMemory(reused, first), 'the freed slab is handed out again from its start');
});

t.test('the current slab starts over when all its bytes are done', async (t) => {
  const pool = new ChunkPool(1000, 4);
  const a = pool.take(700);
  pool.done(a);
  const b = pool.take(700);
  t.ok(sameMemory(a, b), 'carved again from the start instead of taking a new slab');
});

t.test('requests bigger than a slab get memory of their own, never pooled', async (t) => {
  const pool = new ChunkPool(1000, 4);
  const big = pool.take(1001);
  t.equal(big.length, 1001);
  t.equal(big.byteOffset, 0);
  pool.done(big);
  t.equal(pool.freeSlabs, 0, 'reporting unpooled memory changes nothing');
  pool.done(Buffer.alloc(10));
  t.equal(pool.freeSlabs, 0);
});

t.test('reporting more bytes than were handed out is an error, not a silent reuse', async (t) => {
  const pool = new ChunkPool(1000, 4);
  const a = pool.take(100);
  pool.take(950); // a second slab: the first is no longer current
  pool.done(a);
  t.throws(() => pool.done(a), { message: 'chunk pool: 100 more bytes reported done than were handed out' });
});

t.test('idle slabs kept are capped', async (t) => {
  const pool = new ChunkPool(100, 2);
  const taken = [0, 1, 2, 3, 4].map(() => pool.take(100));
  taken.forEach((b) => pool.done(b));
  t.equal(pool.freeSlabs, 2);
});

t.test('the file sink reports what it wrote: its memory is handed out again', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chunk-pool-test-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const target = path.join(dir, 'out');
  const expected: Buffer[] = [];
  const written = new Set<ArrayBufferLike>();
  const sink = createFileSink(target);
  // Whole slabs and small pieces, all queued at once, each filled with its own data.
  for (const size of [chunkPool.slabSize, 1000, chunkPool.slabSize, 5, chunkPool.slabSize]) {
    const chunk = chunkPool.take(size);
    crypto.randomFillSync(chunk);
    expected.push(Buffer.from(chunk));
    written.add(chunk.buffer);
    sink.stream.write(chunk);
  }
  sink.stream.end();
  await sink.commit();
  t.ok(fs.readFileSync(target).equals(Buffer.concat(expected)), 'file content');
  t.ok(written.has(chunkPool.take(chunkPool.slabSize).buffer), 'a slab written out is taken again');
});

t.test('the splitter reports bytes it copied into a block, not bytes it keeps to store', async (t) => {
  const { BlockSplitter } = await import('../src/pipeline/compress/splitter.js');
  const splitter = new BlockSplitter(64 * 1024, 2);
  const toCompress = chunkPool.take(chunkPool.slabSize);
  crypto.randomFillSync(toCompress);
  const copy = Buffer.from(toCompress);
  const blocks = [...splitter.add({ data: toCompress, store: false })];
  t.ok(Buffer.concat(blocks.map((b) => (b.store ? Buffer.concat(b.parts) : b.data))).equals(copy), 'the blocks hold the bytes');
  t.ok(sameMemory(chunkPool.take(chunkPool.slabSize), toCompress), 'copied: the slab is free for the next chunk');

  const toStore = chunkPool.take(chunkPool.slabSize);
  [...splitter.add({ data: toStore, store: true })];
  t.not(chunkPool.take(chunkPool.slabSize).buffer, toStore.buffer, 'kept as views: the slab stays taken');
});
