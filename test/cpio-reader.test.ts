import t from 'tap';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readCpio } from '../src/archive/cpio-reader.js';
import { BundleError } from '../src/core/errors.js';
import { craftNewc, DIR, FILE, inPieces, makeSampleTree } from './helpers/cpio-craft.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cpio-reader-test-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));
makeSampleTree(path.join(tmp, 'rootimg'));

/** GNU cpio's own archive of the tree: `find rootimg | cpio -o -H FORMAT`, names fed on stdin. */
async function gnuArchive(format: 'newc' | 'crc'): Promise<{ data: Buffer; names: string[] }> {
  const names = fs.readdirSync(path.join(tmp, 'rootimg'), { recursive: true, encoding: 'utf8' }).map((n) => `rootimg/${n}`);
  names.unshift('rootimg');
  const cpio = spawn('cpio', ['-o', '--quiet', '-H', format], { cwd: tmp });
  const parts: Buffer[] = [];
  cpio.stdout.on('data', (d: Buffer) => parts.push(d));
  cpio.stdin.end(names.join('\n') + '\n');
  const code = await new Promise((resolve) => cpio.on('close', resolve));
  if (code !== 0) throw new Error(`cpio exited ${code}`);
  return { data: Buffer.concat(parts), names };
}

async function readAll(source: AsyncIterable<Buffer>) {
  const out: { name: string; mode: number; size: number; nlink: number; digest: string; rdev: string }[] = [];
  for await (const { entry, body } of readCpio(source)) {
    const hash = crypto.createHash('sha256');
    for await (const chunk of body) hash.update(chunk);
    out.push({ name: entry.name, mode: entry.mode, size: entry.size, nlink: entry.nlink, digest: hash.digest('hex'), rdev: `${entry.rdevMajor},${entry.rdevMinor}` });
  }
  return out;
}

for (const format of ['newc', 'crc'] as const) {
  t.test(`reads GNU cpio's ${format} output entry by entry, however it is cut`, async (t) => {
    const { data, names } = await gnuArchive(format);
    for (const piece of [13, 4096, data.length]) {
      const got = await readAll(inPieces(data, piece));
      t.same(new Set(got.map((e) => e.name)), new Set(names), `every name (pieces of ${piece})`);
      const byName = new Map(got.map((e) => [e.name, e]));
      const big = byName.get('rootimg/usr/share/big.bin')!;
      t.equal(big.size, 300_000);
      t.equal(big.digest, crypto.createHash('sha256').update(fs.readFileSync(path.join(tmp, 'rootimg/usr/share/big.bin'))).digest('hex'));
      t.equal(byName.get('rootimg/usr/bin/su')!.mode, 0o104755);
      t.equal(byName.get('rootimg/tmp')!.mode, 0o41777);
      t.equal(byName.get('rootimg/dev/null')!.rdev, '1,3');
      t.equal(byName.get('rootimg/usr/bin/big')!.digest, crypto.createHash('sha256').update('../share/big.bin').digest('hex'));
      const perl = ['rootimg/usr/bin/perl', 'rootimg/usr/bin/perl5.36', 'rootimg/etc/perl-alias'].map((n) => byName.get(n)!);
      t.same(perl.map((p) => p.nlink), [3, 3, 3]);
      t.same(perl.map((p) => p.size).sort(), [0, 0, 12], 'data once, with one name');
    }
  });
}

t.test('bodies left unread are skipped', async (t) => {
  const data = craftNewc([
    { name: 'a', mode: FILE, body: 'x'.repeat(1001) },
    { name: 'b', mode: FILE, body: 'second' },
  ]);
  const seen: string[] = [];
  for await (const { entry, body } of readCpio(inPieces(data, 5))) {
    if (entry.name === 'b') for await (const chunk of body) seen.push(chunk.toString());
  }
  t.same(seen.join(''), 'second');
});

t.test('a crc archive with a wrong checksum is refused', async (t) => {
  const good = craftNewc([{ name: 'a', mode: FILE, body: 'abc' }], { magic: '070702' });
  // The check field is 0 here, but the sum of "abc" is not.
  await t.rejects(readAll(inPieces(good)), { message: /checksum mismatch in "a"/ });
});

t.test('truncated, garbage and trailer-less archives are BundleErrors with offset and entry', async (t) => {
  const data = craftNewc([
    { name: 'rootimg', mode: DIR },
    { name: 'rootimg/file', mode: FILE, body: 'y'.repeat(500) },
  ]);
  const cases: [string, Buffer, RegExp][] = [
    ['cut in a body', data.subarray(0, 400), /offset \d+: truncated archive: the data of "rootimg\/file" ends early/],
    ['cut in a header', data.subarray(0, 150), /offset 120: truncated archive: incomplete header after "rootimg"/],
    ['cut in a name', data.subarray(0, 240), /truncated archive: incomplete name after "rootimg"/],
    ['no trailer', craftNewc([{ name: 'rootimg', mode: DIR }], { trailer: false }), /offset 120: archive ends without its TRAILER!!! entry after "rootimg"/],
    ['empty', Buffer.alloc(0), /offset 0: archive ends without its TRAILER!!! entry at the start/],
    ['garbage', crypto.randomBytes(2000), /offset 0: not a newc cpio header/],
    ['old binary cpio', Buffer.concat([Buffer.from([0xc7, 0x71]), Buffer.alloc(200)]), /not a newc cpio header/],
    ['bad hex field', Buffer.from(data.toString('latin1').replace(/^(070701.{8})(.{8})/s, '$1zz000000'), 'latin1'), /malformed header field "zz000000" at the start/],
    ['name without NUL', Buffer.from(data.toString('latin1').replace('rootimg\0', 'rootimgX'), 'latin1'), /name not NUL-terminated/],
  ];
  for (const [what, bytes, message] of cases) {
    const err = await readAll(inPieces(bytes, 64)).catch((e: unknown) => e);
    t.type(err, BundleError, what);
    t.match((err as Error).message, message, what);
  }
});

t.test('stops at the trailer, ignoring what follows', async (t) => {
  const data = Buffer.concat([craftNewc([{ name: 'a', mode: FILE, body: 'z' }]), Buffer.from('junk after the end')]);
  t.same((await readAll(inPieces(data))).map((e) => e.name), ['a']);
});
