import t from 'tap';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DigestTap, formatSha256Sums, parseSha256Sums } from '../src/archive/sha256sums.js';
import { BundleError } from '../src/core/errors.js';

const work = mkdtempSync(join(tmpdir(), 'sha256sums-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));

const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');

/** Files with awkward names, relative to the image directory. */
const files: Record<string, string> = {
  'manifest.xml': '<xcatimage/>\n',
  'plain name': 'spaces',
  'new\nline': 'newline',
  'back\\slash': 'backslash',
  'carriage\rreturn': 'cr',
  'extra/install/mydir/a*b': 'star',
  'kit/ünïcødé': 'utf8',
};

function writeImageDir(dir: string): void {
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), content);
  }
}

t.test('sha256sum -c accepts what we write, including escaped names', async (t) => {
  const dir = join(work, 'image');
  writeImageDir(dir);
  const text = formatSha256Sums(Object.entries(files).map(([name, content]) => ({ name, sha256: sha256(content) })));
  writeFileSync(join(dir, 'SHA256SUMS'), text);
  const check = spawnSync('sha256sum', ['--strict', '-c', 'SHA256SUMS'], { cwd: dir, encoding: 'utf8' });
  t.equal(check.status, 0, check.stderr);
  t.equal(check.stdout.match(/: OK$/gm)?.length, Object.keys(files).length);

  writeFileSync(join(dir, 'back\\slash'), 'tampered');
  const tampered = spawnSync('sha256sum', ['-c', 'SHA256SUMS'], { cwd: dir, encoding: 'utf8' });
  t.equal(tampered.status, 1, 'and notices a changed file');
});

t.test('same text as sha256sum prints, and parses back', async (t) => {
  const dir = join(work, 'compare');
  writeImageDir(dir);
  const names = Object.keys(files).sort();
  const theirs = spawnSync('sha256sum', ['--', ...names], { cwd: dir, encoding: 'utf8' }).stdout;
  const ours = formatSha256Sums(names.map((name) => ({ name, sha256: sha256(files[name]!) })));
  t.equal(ours, theirs);
  t.same(parseSha256Sums(theirs), new Map(names.map((name) => [name, sha256(files[name]!)])));
  const binaryMarker = `${sha256('x').toUpperCase()} *bin\n`;
  t.same(parseSha256Sums(binaryMarker), new Map([['bin', sha256('x')]]), 'binary marker and upper-case hex');
  t.same(parseSha256Sums(''), new Map(), 'empty file');
});

t.test('malformed lines are refused naming the member and line', async (t) => {
  const hex = sha256('x');
  const refused = (text: string, problem: string) =>
    t.throws(() => parseSha256Sums(text, 'IMG/SHA256SUMS'), new BundleError(`IMG/SHA256SUMS: ${problem}`, 'IMG/SHA256SUMS'), JSON.stringify(text));
  refused(`${hex}  ok\n${hex.slice(1)}  short\n`, 'line 2: not a sha256sum line (HEX  NAME)');
  refused(`${hex} nomarker\n`, 'line 1: not a sha256sum line (HEX  NAME)');
  refused(`${hex}  \n`, 'line 1: not a sha256sum line (HEX  NAME)');
  refused('\n', 'line 1: not a sha256sum line (HEX  NAME)');
  refused(`${hex}  a\\b\n`, 'line 1: unescaped backslash or CR in the name');
  refused(`${hex}  crlf\r\n`, 'line 1: unescaped backslash or CR in the name');
  refused(`\\${hex}  bad\\tescape\n`, 'line 1: bad escape in the name');
  refused(`\\${hex}  trailing\\\n`, 'line 1: bad escape in the name');
  refused(`${hex}  twice\n${hex}  twice\n`, 'line 2: "twice" is listed twice');
});

t.test('DigestTap hashes what passes through, unchanged', async (t) => {
  const chunks = [Buffer.from('abc'), Buffer.alloc(300_000, 7), Buffer.from('end')];
  const tap = new DigestTap();
  t.throws(() => tap.sha256, /before the stream ended/);
  const received: Buffer[] = [];
  await pipeline(Readable.from(chunks), tap, new Writable({
    write(chunk: Buffer, _encoding, callback) {
      received.push(chunk);
      callback();
    },
  }));
  const all = Buffer.concat(chunks);
  t.ok(Buffer.concat(received).equals(all), 'bytes pass unchanged');
  t.equal(tap.sha256, sha256(all));
  t.equal(tap.bytes, all.length);

  const empty = new DigestTap();
  await pipeline(Readable.from([]), empty, new Writable({ write: (_c, _e, cb) => cb() }));
  t.equal(empty.sha256, sha256(''));
});
