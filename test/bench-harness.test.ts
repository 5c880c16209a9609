// The benchmark harness: synthetic data, measurement of a process tree, the peers' pipelines,
// medians, ratios, target verdicts, the report and its plots.
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import t from 'tap';
// @ts-expect-error plain JavaScript modules without declarations
import { parseSize, seededGenerator, writeSyntheticTree } from '../scripts/make-synthetic-tree.mjs';
// @ts-expect-error plain JavaScript modules without declarations
import { measure, parseAccounting } from '../bench/measure.mjs';
// @ts-expect-error plain JavaScript modules without declarations
import { judgeTargets, median, resultsMarkdown, summarize } from '../bench/report.mjs';
// @ts-expect-error plain JavaScript modules without declarations
import { lineChart, niceTicks } from '../bench/svg.mjs';
// @ts-expect-error plain JavaScript modules without declarations
import { benchmarks, exportPeer, peerManifest } from '../bench/benchmarks.mjs';

const MB = 1e6;

function tempDir(t: { teardown(fn: () => void): void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'imgport-bench-test-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Every entry of a tree: path, type, mode, size, content digest or link target. */
function describeTree(root: string): string[] {
  const out: string[] = [];
  const walk = (rel: string): void => {
    for (const name of fs.readdirSync(path.join(root, rel)).sort()) {
      const r = path.join(rel, name);
      const st = fs.lstatSync(path.join(root, r));
      const what = st.isSymbolicLink() ? `-> ${fs.readlinkSync(path.join(root, r))}`
        : st.isFile() ? crypto.createHash('sha256').update(fs.readFileSync(path.join(root, r))).digest('hex')
        : 'dir';
      out.push(`${r} ${st.mode.toString(8)} ${st.isFile() ? st.size : 0} ${st.mtimeMs} ${what}`);
      if (st.isDirectory()) walk(r);
    }
  };
  walk('.');
  return out;
}

t.test('sizes and the seeded generator', async (t) => {
  t.equal(parseSize('200M'), 200 * 1024 ** 2);
  t.equal(parseSize('4G'), 4 * 1024 ** 3);
  t.equal(parseSize('1.5k'), 1536);
  t.throws(() => parseSize('big'), /not a size: 'big'/);
  const a = seededGenerator(3).fill(Buffer.alloc(64));
  t.same(seededGenerator(3).fill(Buffer.alloc(64)), a, 'same seed, same bytes');
  t.notSame(seededGenerator(4).fill(Buffer.alloc(64)), a, 'other seed, other bytes');
});

t.test('synthetic tree: deterministic, the promised mix, about the asked size', async (t) => {
  const dir = tempDir(t);
  const size = 24 * 1024 * 1024;
  const stats = writeSyntheticTree(path.join(dir, 'a'), size, 5);
  writeSyntheticTree(path.join(dir, 'b'), size, 5);
  writeSyntheticTree(path.join(dir, 'c'), size, 6);
  const a = describeTree(path.join(dir, 'a'));
  t.same(describeTree(path.join(dir, 'b')), a, 'same size and seed: same names, modes, bytes, mtimes');
  t.notSame(describeTree(path.join(dir, 'c')), a, 'another seed: another tree');

  t.ok(Math.abs(stats.bytes - size) / size < 0.1, `${stats.bytes} bytes for ${size} asked`);
  t.ok(stats.files > 300, `many files (${stats.files})`);
  t.ok(stats.hardlinks >= 1 && stats.symlinks >= 4, 'hard links and symlinks');
  const root = path.join(dir, 'a');
  t.equal(fs.readlinkSync(path.join(root, 'bin')), 'usr/bin');
  t.equal(fs.statSync(path.join(root, 'tmp')).mode & 0o7777, 0o1777);
  const linked = a.map((line) => line.split(' ')[0]).find((p) => p.endsWith('-alias'))!;
  t.equal(fs.statSync(path.join(root, linked)).ino, fs.statSync(path.join(root, linked.replace(/-alias$/, ''))).ino, 'alias is a hard link');
  const gz = a.map((line) => line.split(' ')[0]).find((p) => p.endsWith('.gz'))!;
  t.same([...fs.readFileSync(path.join(root, gz)).subarray(0, 2)], [0x1f, 0x8b], 'compressed files carry their magic');

  // Compressibility like a real root filesystem: gzip -6 of all file data lands between 35% and 65%.
  let raw = 0;
  let packed = 0;
  for (const line of a) {
    const rel = line.split(' ')[0];
    const st = fs.lstatSync(path.join(root, rel));
    if (!st.isFile()) continue;
    const data = fs.readFileSync(path.join(root, rel));
    raw += data.length;
    packed += zlib.gzipSync(data, { level: 6 }).length;
  }
  t.ok(packed / raw > 0.35 && packed / raw < 0.65, `gzip ratio ${(packed / raw).toFixed(2)}`);
});

t.test('measure: wall, CPU and writes of the whole tree, peak RSS summed over processes', async (t) => {
  const dir = tempDir(t);
  const out = path.join(dir, 'out');
  // Two processes holding 80 MB each at the same time, one busy for CPU, one writing 30 MB.
  const hold = 'const b = Buffer.alloc(80e6, 1); setTimeout(() => b.length, 700)';
  const busy = 'const end = Date.now() + 600; while (Date.now() < end);';
  const m = await measure({
    argv: ['bash', '-c', 'node -e "$1" & node -e "$1" & node -e "$2"; head -c 30000000 /dev/zero > "$3"; wait', 'x', hold, busy, out],
    diskPath: dir,
  });
  t.ok(m.wallSeconds >= 0.6 && m.wallSeconds < 20, `wall ${m.wallSeconds}`);
  t.ok(m.cpuSeconds >= 0.5, `cpu ${m.cpuSeconds} counts the busy child`);
  t.ok(m.peakRssBytes >= 160 * MB, `peak RSS ${m.peakRssBytes / MB} MB is the sum of both holders`);
  t.ok(m.writeBytes >= 30e6, `written ${m.writeBytes}`);
  t.equal(fs.statSync(out).size, 30e6);

  await t.rejects(measure({ argv: ['bash', '-c', 'echo "Error: disk on fire" >&2; exit 3'], diskPath: dir }), /exit 3[\s\S]*disk on fire/);
  const started = Date.now();
  await t.rejects(measure({ argv: ['bash', '-c', 'sleep 30; echo late'], diskPath: dir, timeoutSeconds: 0.3 }), /signal SIGKILL|exit/);
  t.ok(Date.now() - started < 10_000, 'a hung run is killed at its time limit');
});

t.test('parseAccounting reads the shell times and the io counters', async (t) => {
  const report = '0m0.010s 0m0.020s\n1m2.500s 0m0.500s\nrchar: 5\nwchar: 9\nread_bytes: 4096\nwrite_bytes: 8192\n';
  t.same(parseAccounting(report), { cpuSeconds: 63.03, writeBytes: 8192, readBytes: 4096 });
});

t.test('the peers: xCAT-style staged export makes a bundle its import unpacks back', async (t) => {
  const dir = tempDir(t);
  const rootimgdir = path.join(dir, 'img');
  fs.mkdirSync(path.join(rootimgdir, 'rootimg', 'etc'), { recursive: true });
  fs.writeFileSync(path.join(rootimgdir, 'rootimg', 'etc', 'hostname'), 'node1\n');
  fs.symlinkSync('etc/hostname', path.join(rootimgdir, 'rootimg', 'name'));
  fs.writeFileSync(path.join(rootimgdir, 'kernel'), 'k');
  fs.writeFileSync(path.join(rootimgdir, 'initrd-statelite.gz'), zlib.gzipSync('i'));
  fs.writeFileSync(path.join(dir, 'compute.pkglist'), 'bash\n');
  fs.writeFileSync(path.join(dir, 'manifest.xml'), peerManifest('statelite', '/p/compute.pkglist', '/install/x'));
  fs.writeFileSync(path.join(dir, 'litefile.csv'), '');
  const work = path.join(dir, 'work');
  fs.mkdirSync(work);
  const ctx = { ds: { rootimgdir }, work, threads: 2, pkglist: path.join(dir, 'compute.pkglist'), manifests: { statelite: path.join(dir, 'manifest.xml') }, litefile: path.join(dir, 'litefile.csv') };
  for (const [outer, inner] of [['tar-czf', 'gzip'], ['pigz', 'pigz'], ['zstd', 'pigz']]) {
    const peer = exportPeer(ctx, 'statelite', 'peer', outer, inner);
    execFileSync(peer.argv[0], peer.argv.slice(1), { cwd: work });
    const decompress = outer === 'zstd' ? ['-I', 'zstd'] : ['-z'];
    const members = execFileSync('tar', ['-t', ...decompress, '-f', peer.output], { encoding: 'utf8' }).split('\n').filter(Boolean).sort();
    t.same(members, ['./', './bookworm-x86_64-statelite-compute/', ...['compute.pkglist', 'initrd-statelite.gz', 'kernel', 'litefile.csv', 'manifest.xml', 'rootimgtree.gz'].map((f) => `./bookworm-x86_64-statelite-compute/${f}`)], `${outer}: xCAT's layout`);
    t.notOk(fs.existsSync(path.join(work, 'stage')), 'staging directory removed');
    if (outer !== 'tar-czf') {
      fs.rmSync(peer.output);
      continue;
    }
    const cpu = os.availableParallelism();
    const importPeer = benchmarks(cpu).find((b: { id: string }) => b.id === 'import-statelite')
      .tools({ ...ctx, threads: cpu, bundles: { statelite: peer.output } })
      .find((tool: { ours?: boolean }) => !tool.ours);
    execFileSync(importPeer.argv[0], importPeer.argv.slice(1), { cwd: work });
    const dest = path.join(work, 'import-dest');
    t.equal(fs.readFileSync(path.join(dest, 'rootimg', 'etc', 'hostname'), 'utf8'), 'node1\n', 'statelite tree unpacked by zcat | cpio -idum');
    t.equal(fs.readlinkSync(path.join(dest, 'rootimg', 'name')), 'etc/hostname');
    t.equal(fs.readFileSync(path.join(dest, 'kernel'), 'utf8'), 'k');
    t.notOk(fs.existsSync(path.join(dest, 'rootimgtree.gz')), 'rootimgtree.gz removed after unpacking');
  }
});

t.test('medians, ratios and target verdicts', async (t) => {
  t.equal(median([3, 1, 2]), 2);
  t.equal(median([4, 1, 2, 3]), 2.5);
  t.equal(median([]), undefined);
  const base = { benchmark: 'pack-gzip', title: 'pack', dataset: 'd', datasetLabel: 'D', treeBytes: 100 * MB, threads: 2, inputBytes: 100 * MB };
  const run = (tool: string, ours: boolean, wallSeconds: number, peakRssBytes = 50 * MB) => ({ ...base, tool, short: tool, ours, wallSeconds, cpuSeconds: 1, peakRssBytes, writeBytes: 1, peakDiskBytes: 1, outputBytes: 1 });
  const runs = [
    run('packimage', true, 2), run('packimage', true, 4), run('packimage', true, 3, 250 * MB),
    run('find | cpio | pigz', false, 6), run('find | cpio | pigz', false, 3), run('find | cpio | pigz', false, 4.5),
    { ...base, benchmark: 'pack-zstd', tool: 'packimage -c zstd', ours: true, error: 'Error: boom' },
    { ...base, benchmark: 'pack-zstd', tool: 'tar | zstd', ours: false, wallSeconds: 1, cpuSeconds: 1, peakRssBytes: 1, writeBytes: 1, peakDiskBytes: 1, outputBytes: 1 },
  ];
  const groups = summarize(runs);
  const gzip = groups.find((g: { benchmark: string }) => g.benchmark === 'pack-gzip');
  const [ours, peer] = gzip.tools;
  t.equal(ours.wallSeconds, 3);
  t.equal(ours.throughput, 100 * MB / 3);
  t.equal(peer.ratio, 1.5, 'peer median 4.5 s / ours 3 s');
  const verdicts = judgeTargets(groups, 2);
  const find = (re: RegExp) => verdicts.find((v: { target: string }) => re.test(v.target));
  t.equal(find(/1\.3x/).met, true, '1.5x meets 1.3x');
  t.equal(find(/0\.8x/).met, undefined, 'a failed imgport run is not measured, not met');
  t.equal(find(/peak RSS/).met, false, 'one run at 250 MB breaks the 200 MB target');
  t.match(find(/peak RSS/).measured, /250 MB/);

  const md = resultsMarkdown({ groups, verdicts, machine: { date: 'today', cpu: 'cpu', cores: 2, memoryGB: 24, kernel: 'k', node: 'v20', load: '0', tools: [] }, settings: { quick: true, cache: '/c', description: 'quick' }, notes: [] });
  t.match(md, /`find \\\| cpio \\\| pigz`/, 'pipes in table cells are escaped');
  t.match(md, /failed: Error: boom/);
  t.match(md, /\| 1\.50x \|/);
});

t.test('line chart: axes, one line per series, legend', async (t) => {
  t.same(niceTicks(87), [0, 20, 40, 60, 80, 100]);
  t.same(niceTicks(4.2), [0, 1, 2, 3, 4, 5]);
  const svg = lineChart({
    title: 'T & t', xLabel: 'size', yLabel: 'MB/s', formatX: (x: number) => `${x}B`,
    series: [{ name: 'ours <fast>', points: [[100, 50], [1000, 60], [4000, 55]] }, { name: 'peer', dashed: true, points: [[100, 20], [4000, 25]] }],
  });
  t.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  t.equal(svg.match(/<polyline/g)?.length, 2);
  t.equal(svg.match(/<circle/g)?.length, 5);
  t.match(svg, /ours &lt;fast&gt;/);
  t.match(svg, /T &amp; t/);
  t.match(svg, />4000B</);
  t.match(svg, /stroke-dasharray/);
});
