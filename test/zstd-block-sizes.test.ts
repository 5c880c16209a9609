import t from 'tap';
import crypto from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { compressBlock } from '../src/pipeline/compress/block-task.js';

const MiB = 1024 * 1024;

/** Compressible bytes that are not trivial: base64 of random data. */
function sample(length: number): Buffer {
  return Buffer.from(crypto.randomBytes(Math.ceil((length * 3) / 4)).toString('base64')).subarray(0, length);
}

/**
 * One zstd task as the compressor sends it (the block's buffer is always the full block size):
 * its frame, or undefined for a block that did not shrink (a frame's overhead on a few bytes).
 */
async function compress(data: Buffer, blockSize: number, level: number): Promise<Buffer | undefined> {
  const block = new ArrayBuffer(blockSize);
  new Uint8Array(block).set(data);
  const result = await compressBlock({ format: 'zstd', level, data: block, length: data.length, final: false });
  return result.compressedLength === undefined ? undefined : Buffer.from(result.block, 0, result.compressedLength);
}

// A thread's zstd instance lives in a fixed 16 MiB heap and keeps its vectors between blocks:
// blocks shorter than the block size (cut where stored data begins) must not make it reserve
// more room than the largest block needs, whatever order the sizes come in.
for (const { level, blockSize, lengths } of [
  { level: 3, blockSize: 2 * MiB, lengths: [1.9 * MiB, 2 * MiB, 1.95 * MiB, 2 * MiB] },
  { level: 9, blockSize: 2 * MiB, lengths: [1.5 * MiB, 1.9 * MiB, 2 * MiB] },
  { level: 5, blockSize: 4 * MiB, lengths: [2.1 * MiB, 3 * MiB, 4 * MiB] },
  { level: 3, blockSize: 2 * MiB, lengths: [100, 2 * MiB, 64 * 1024, 2 * MiB] },
]) {
  t.test(`level ${level}, ${blockSize / MiB} MiB blocks of ${lengths.map((n) => (n / MiB).toFixed(2)).join(', ')} MiB`, async (t) => {
    for (const length of lengths.map(Math.floor)) {
      const data = sample(length);
      const frame = await compress(data, blockSize, level);
      if (!frame) {
        t.ok(length <= 100, `${length} bytes did not shrink: left to be stored`);
        continue;
      }
      const decoded = spawnSync('zstd', ['-d', '-c', '-q'], { input: frame, maxBuffer: 8 * MiB });
      t.equal(decoded.status, 0, `${length} bytes: zstd -d accepts the frame`);
      t.ok(decoded.stdout.equals(data), `${length} bytes: the frame decodes to the block`);
    }
  });
}
