// The pure parts of the compression stage: names, magic numbers, block cutting and framing.
import crypto from 'node:crypto';
import zlib from 'node:zlib';
import t from 'tap';
import { compressionFormatOfName, looksCompressed, looksIncompressible } from '../src/pipeline/compress/format.js';
import { deflateStoredBlocks, gzipHeader, gzipTrailer } from '../src/pipeline/compress/gzip.js';
import { BlockSplitter, blockLength, blockParts } from '../src/pipeline/compress/splitter.js';

t.test('bundle names imply a compression', async (t) => {
  t.equal(compressionFormatOfName('/tmp/img.tgz'), 'gzip');
  t.equal(compressionFormatOfName('img.TAR.GZ'), 'gzip');
  t.equal(compressionFormatOfName('img.tzst'), 'zstd');
  t.equal(compressionFormatOfName('img.tar.zst'), 'zstd');
  t.equal(compressionFormatOfName('img.tar'), 'none');
  t.equal(compressionFormatOfName('img.zip'), undefined);
});

t.test('compressed data is recognised by its magic', async (t) => {
  t.ok(looksCompressed(zlib.gzipSync('x')));
  t.ok(looksCompressed(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 0, 4])), 'xz');
  t.ok(looksCompressed(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0])), 'zstd');
  t.ok(looksCompressed(Buffer.from('BZh91AY&SY')), 'bzip2');
  t.ok(looksCompressed(Buffer.from('hsqs\x01\x00\x00\x00')), 'squashfs');
  t.notOk(looksCompressed(Buffer.from('070701')), 'cpio');
  t.notOk(looksCompressed(Buffer.from([0x1f])), 'too short to tell');
});

t.test('data with no magic that does not shrink is found by a trial on its end', async (t) => {
  const text = (n: number) => Buffer.from('the quick brown fox jumps over the lazy dog. '.repeat(Math.ceil(n / 45))).subarray(0, n);
  t.ok(looksIncompressible(crypto.randomBytes(1 << 20)), 'random data');
  t.notOk(looksIncompressible(text(1 << 20)), 'text');
  // A compressed kernel: uncompressed setup code, then the compressed payload.
  t.ok(looksIncompressible(Buffer.concat([text(30_000), crypto.randomBytes(1 << 20)])), 'setup code, then a payload');
  t.notOk(looksIncompressible(Buffer.concat([crypto.randomBytes(1 << 20), text(70_000)])), 'only the last 64 KiB are tried');
  t.ok(looksIncompressible(crypto.randomBytes(100)), 'a short sample is tried whole');
});

t.test('blocks are cut at the block size and where the tag changes, whatever the chunking', async (t) => {
  const cuts = (chunks: Array<[number, boolean]>): string[] => {
    const splitter = new BlockSplitter(10, 0);
    const blocks = chunks.flatMap(([size, store]) => [...splitter.add({ data: Buffer.alloc(size), store })]);
    const last = splitter.end();
    return [...blocks, ...(last ? [last] : [])].map((b) => `${blockLength(b)}${b.store ? 's' : ''}`);
  };
  t.same(cuts([[25, false]]), ['10', '10', '5']);
  t.same(cuts([[3, false], [4, false], [18, false]]), ['10', '10', '5'], 'other chunking, same cuts');
  t.same(cuts([[4, false], [12, true], [0, false], [3, false]]), ['4', '10s', '2s', '3']);
  t.same(cuts([]), []);
  const splitter = new BlockSplitter(10, 0);
  const [block] = [...splitter.add({ data: Buffer.alloc(10), store: false })];
  t.equal(block.store === false && block.data.buffer.byteLength, 10, 'a block to compress owns its ArrayBuffer (transferable alone)');
  const input = [Buffer.from('0123456'), Buffer.from('789abc')];
  const [stored] = input.flatMap((data) => [...splitter.add({ data, store: true })]);
  t.ok(stored.store && stored.parts.every((part) => part.buffer === input[0].buffer || part.buffer === input[1].buffer), 'a block to store is views of the input, not a copy');
  t.equal(Buffer.concat(blockParts(stored)).toString(), '0123456789');
});

t.test('gzip framing: stored blocks, header and trailer make a valid member', async (t) => {
  const data = crypto.randomBytes(200_000);
  // Given in pieces that straddle the 65535-byte blocks: framed the same.
  const stored = Buffer.concat(deflateStoredBlocks([data.subarray(0, 70_000), data.subarray(70_000, 70_001), data.subarray(70_001)], data.length, true));
  t.equal(stored.length, data.length + 4 * 5, '65535-byte blocks, 5 bytes of header each');
  t.ok(zlib.inflateRawSync(stored).equals(data), 'inflates to the data');
  const member = Buffer.concat([gzipHeader(), stored, gzipTrailer(zlib.crc32(data), data.length)]);
  t.ok(zlib.gunzipSync(member).equals(data), 'a gzip member that checks');
  t.same([...Buffer.concat(deflateStoredBlocks([], 0, true))], [1, 0, 0, 0xff, 0xff], 'empty final block');
});
