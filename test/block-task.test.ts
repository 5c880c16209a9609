// One block's compression as the threads run it: the output is written over the block's own
// buffer (the threads allocate nothing per block), and deflate writes into memory we give it
// with exactly the bytes zlib.deflateRawSync gives.
import t from 'tap';
import crypto from 'node:crypto';
import { spawnSync } from 'node:child_process';
import zlib from 'node:zlib';
import { compressBlock, deflateInto, type BlockTask } from '../src/pipeline/compress/block-task.js';
import { leasePool } from '../src/pipeline/compress/pool.js';

const MiB = 1024 * 1024;

function text(length: number): Buffer {
  return Buffer.from(crypto.randomBytes(Math.ceil((length * 3) / 4)).toString('base64')).subarray(0, length);
}

function task(format: 'gzip' | 'zstd', data: Buffer, blockSize: number): BlockTask {
  const block = new ArrayBuffer(blockSize);
  new Uint8Array(block).set(data);
  return { format, level: format === 'gzip' ? 6 : 3, data: block, length: data.length, final: false };
}

t.test('deflateInto writes into the room it is given, the same bytes as deflateRawSync', (t) => {
  const room = Buffer.alloc(2 * MiB);
  for (const input of [text(100), text(MiB), crypto.randomBytes(300 * 1024), Buffer.alloc(0)]) {
    for (const finishFlush of [zlib.constants.Z_SYNC_FLUSH, zlib.constants.Z_FINISH]) {
      for (const level of [1, 6, 9]) {
        const options = { level, finishFlush };
        const expected = zlib.deflateRawSync(input, options);
        const got = deflateInto(room, input, options);
        t.ok(got.equals(expected), `${input.length} bytes, flush ${finishFlush}, level ${level}`);
        t.equal(got.buffer, room.buffer, 'written into the room');
      }
    }
  }
  t.end();
});

t.test('output longer than the room still comes back whole', (t) => {
  const input = crypto.randomBytes(64 * 1024);
  const got = deflateInto(Buffer.alloc(1024), input, { level: 6, finishFlush: zlib.constants.Z_FINISH });
  t.ok(zlib.inflateRawSync(got).equals(input));
  t.end();
});

for (const format of ['gzip', 'zstd'] as const) {
  t.test(`${format}: a block that shrinks comes back in its own buffer, compressed; one that does not, untouched`, async (t) => {
    const data = text(MiB);
    const shrinking = task(format, data, MiB);
    const result = await compressBlock(shrinking);
    t.equal(result.block, shrinking.data, 'the output is written over the block');
    t.ok(result.compressedLength! < data.length);
    const bytes = Buffer.from(result.block, 0, result.compressedLength);
    const decoded = format === 'gzip' ? zlib.inflateRawSync(bytes, { finishFlush: zlib.constants.Z_SYNC_FLUSH }) : zstdDecode(bytes);
    t.ok(decoded.equals(data), 'and decodes to the block on its own, without the bytes before it');

    for (const noise of [crypto.randomBytes(MiB), crypto.randomBytes(100)]) {
      const growing = task(format, noise, MiB);
      const grown = await compressBlock(growing);
      t.equal(grown.block, growing.data, `${noise.length} bytes of noise: the block's own buffer comes back`);
      t.equal(grown.compressedLength, undefined, 'marked as not shrinking');
      t.ok(Buffer.from(grown.block, 0, noise.length).equals(noise), 'holding the block as it came, to be stored');
    }
  });
}

/** The system's zstd decodes the frame. */
function zstdDecode(frame: Buffer): Buffer {
  const run = spawnSync('zstd', ['-d', '-c', '-q'], { input: frame, maxBuffer: 4 * MiB });
  if (run.status !== 0) throw new Error(`zstd -d: ${run.stderr}`);
  return run.stdout;
}

t.test('a thread hands back the block it was given, holding the output', async (t) => {
  const pool = leasePool(1);
  t.teardown(() => pool.release());
  const data = text(MiB);
  const sent = task('gzip', data, MiB);
  const result = await pool.run(sent);
  t.equal(sent.data.byteLength, 0, 'the block was transferred to the thread');
  t.equal(result.block.byteLength, MiB, 'and came back, holding the output');
  const decoded = zlib.inflateRawSync(Buffer.from(result.block, 0, result.compressedLength), { finishFlush: zlib.constants.Z_SYNC_FLUSH });
  t.ok(decoded.equals(data));
});
