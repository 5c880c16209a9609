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

function task(format: 'gzip' | 'zstd', data: Buffer, blockSize: number, dictionary?: Buffer): BlockTask {
  const block = new ArrayBuffer(blockSize);
  new Uint8Array(block).set(data);
  return { format, level: format === 'gzip' ? 6 : 3, data: block, length: data.length, final: false, dictionary: dictionary && new Uint8Array(dictionary).buffer };
}

t.test('deflateInto writes into the room it is given, the same bytes as deflateRawSync', (t) => {
  const room = Buffer.alloc(2 * MiB);
  const dictionary = text(32 * 1024);
  for (const input of [text(100), text(MiB), crypto.randomBytes(300 * 1024), Buffer.alloc(0)]) {
    for (const finishFlush of [zlib.constants.Z_SYNC_FLUSH, zlib.constants.Z_FINISH]) {
      for (const dict of [undefined, dictionary]) {
        const options = { level: 6, finishFlush, dictionary: dict };
        const expected = zlib.deflateRawSync(input, options);
        const got = deflateInto(room, input, options);
        t.ok(got.equals(expected), `${input.length} bytes, flush ${finishFlush}, ${dict ? 'with' : 'no'} dictionary`);
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
  t.test(`${format}: a block that shrinks comes back in its own buffer; one that does not, in a new one`, async (t) => {
    const data = text(MiB);
    const dictionary = text(32 * 1024);
    const shrinking = task(format, data, MiB, format === 'gzip' ? dictionary : undefined);
    const result = await compressBlock(shrinking);
    t.equal(result.output, shrinking.data, 'the output is written over the block');
    t.ok(result.outputLength < data.length);
    t.equal(result.input, shrinking.data);
    t.equal(result.dictionary, shrinking.dictionary, 'the dictionary is handed back');
    const bytes = Buffer.from(result.output, 0, result.outputLength);
    const decoded = format === 'gzip' ? zlib.inflateRawSync(bytes, { dictionary, finishFlush: zlib.constants.Z_SYNC_FLUSH }) : zstdDecode(bytes);
    t.ok(decoded.equals(data), 'and decodes to the block');

    const noise = crypto.randomBytes(MiB);
    const growing = task(format, noise, MiB);
    const grown = await compressBlock(growing);
    t.not(grown.output, growing.data, 'output larger than the block: a buffer of its own');
    t.ok(grown.outputLength > MiB);
    t.equal(grown.output.byteLength, grown.outputLength);
    t.equal(grown.input, growing.data);
  });
}

/** The system's zstd decodes the frame. */
function zstdDecode(frame: Buffer): Buffer {
  const run = spawnSync('zstd', ['-d', '-c', '-q'], { input: frame, maxBuffer: 4 * MiB });
  if (run.status !== 0) throw new Error(`zstd -d: ${run.stderr}`);
  return run.stdout;
}

t.test('a thread hands back every buffer of a task: the block (with the output) and the dictionary', async (t) => {
  const pool = leasePool(1);
  t.teardown(() => pool.release());
  const data = text(MiB);
  const dictionary = text(32 * 1024);
  const sent = task('gzip', data, MiB, dictionary);
  const result = await pool.run(sent);
  t.equal(sent.data.byteLength, 0, 'the block was transferred to the thread');
  t.equal(result.input.byteLength, MiB, 'and came back');
  t.equal(result.output, result.input, 'holding the output');
  t.equal(result.dictionary?.byteLength, 32 * 1024, 'the dictionary came back too');
  const decoded = zlib.inflateRawSync(Buffer.from(result.output, 0, result.outputLength), { dictionary, finishFlush: zlib.constants.Z_SYNC_FLUSH });
  t.ok(decoded.equals(data));
});
