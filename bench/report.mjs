// Turns the recorded runs into medians, ratios, target verdicts, RESULTS.md and its two plots.
import { lineChart } from './svg.mjs';

const MB = 1e6;

export function median(values) {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (!sorted.length) return undefined;
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

const METRICS = ['wallSeconds', 'cpuSeconds', 'peakRssBytes', 'writeBytes', 'peakDiskBytes', 'outputBytes'];

/**
 * Groups runs by benchmark, data set and threads; per tool the median of each metric over its
 * successful runs, the throughput (input bytes / median wall time) and, for peers, the ratio
 * peer time / ours time (above 1: imgport is that many times faster).
 */
export function summarize(runs) {
  const groups = new Map();
  for (const run of runs) {
    const key = `${run.benchmark}\0${run.dataset}\0${run.threads}`;
    if (!groups.has(key)) groups.set(key, { benchmark: run.benchmark, title: run.title, dataset: run.dataset, datasetLabel: run.datasetLabel, treeBytes: run.treeBytes, threads: run.threads, inputBytes: run.inputBytes, tools: new Map() });
    const group = groups.get(key);
    if (!group.tools.has(run.tool)) group.tools.set(run.tool, { name: run.tool, short: run.short, ours: run.ours, runs: [], errors: [] });
    const tool = group.tools.get(run.tool);
    if (run.error) tool.errors.push(run.error);
    else tool.runs.push(run);
  }
  return [...groups.values()].map((group) => {
    const tools = [...group.tools.values()].map((tool) => {
      const medians = Object.fromEntries(METRICS.map((m) => [m, median(tool.runs.map((r) => r[m]))]));
      return { ...tool, repetitions: tool.runs.length, ...medians, throughput: medians.wallSeconds ? group.inputBytes / medians.wallSeconds : undefined };
    });
    const ours = tools.find((t) => t.ours);
    for (const tool of tools) if (!tool.ours && ours?.wallSeconds && tool.wallSeconds) tool.ratio = tool.wallSeconds / ours.wallSeconds;
    return { ...group, tools };
  });
}

/**
 * The targets, each judged on every group it applies to. A target with no successful
 * measurement is "not measured", never "met".
 */
export function judgeTargets(groups, cores) {
  const verdicts = [];
  const peerRatio = (benchmark, pattern, threshold, label) => {
    const rows = groups.filter((g) => g.benchmark === benchmark && g.threads === cores);
    for (const group of rows) {
      const peer = group.tools.find((t) => !t.ours && pattern.test(t.name));
      if (!peer) continue;
      verdicts.push({
        target: label,
        where: `${group.datasetLabel}, ${cores} threads`,
        measured: peer.ratio === undefined ? 'no successful run of both' : `${peer.ratio.toFixed(2)}x (${fmtSeconds(peer.wallSeconds)} vs ${fmtSeconds(group.tools.find((t) => t.ours).wallSeconds)})`,
        met: peer.ratio === undefined ? undefined : peer.ratio >= threshold,
      });
    }
  };
  // The thresholds are the issues' own (export #3, import #4, packimage #5).
  peerRatio('pack-gzip', /cpio .*pigz/, 1.3, 'packimage cpio.gz at least 1.3x faster than find | cpio | pigz -p N');
  peerRatio('pack-zstd', /zstd/, 0.8, 'packimage cpio.zst at least 0.8x the speed of tar | zstd -T N');
  peerRatio('export-statelite-gzip', /^xCAT: /, 5, "export statelite .tgz at least 5x faster than xCAT's own (gzip) pipeline");
  peerRatio('export-statelite-gzip', /^xCAT with pigz/, 1.3, "export statelite .tgz at least 1.3x faster than xCAT's pipeline with pigz");
  peerRatio('export-netboot-gzip', /^xCAT: /, 10, "export netboot .tgz at least 10x faster than xCAT's own (gzip) pipeline");
  peerRatio('export-statelite-zstd', /zstd/, 0.8, 'export statelite .tzst at least 0.8x the speed of the tar | zstd -T N pipeline');
  peerRatio('import-netboot', /tar zxf/, 1.5, "import netboot at least 1.5x faster than xCAT's way (tar zxf, mv)");
  peerRatio('import-statelite', /tar zxf/, 1.5, "import statelite at least 1.5x faster than xCAT's way (tar zxf, mv, zcat | cpio -idum)");
  for (const group of groups.filter((g) => g.benchmark.startsWith('import-') && g.threads === cores)) {
    const ours = group.tools.find((t) => t.ours);
    const peer = group.tools.find((t) => !t.ours);
    if (ours?.peakDiskBytes === undefined || peer?.peakDiskBytes === undefined) continue;
    verdicts.push({
      target: `${group.benchmark}: peak extra disk below xCAT's way`,
      where: `${group.datasetLabel}, ${cores} threads`,
      measured: `${fmtMB(ours.peakDiskBytes)} MB vs ${fmtMB(peer.peakDiskBytes)} MB`,
      met: ours.peakDiskBytes < peer.peakDiskBytes,
    });
  }
  // Export memory must not grow with the image: the largest tree's peak within 10% of the 200 MB tree's.
  const exportRss = groups
    .filter((g) => g.benchmark === 'export-statelite-gzip' && g.threads === cores && g.dataset.startsWith('synthetic-'))
    .map((g) => ({ g, rss: g.tools.find((t) => t.ours)?.peakRssBytes }))
    .filter((x) => x.rss !== undefined)
    .sort((a, b) => a.g.treeBytes - b.g.treeBytes);
  if (exportRss.length >= 2) {
    const [small, large] = [exportRss[0], exportRss[exportRss.length - 1]];
    verdicts.push({
      target: 'export peak RSS on the largest tree within 10% of the smallest',
      where: `${small.g.datasetLabel} -> ${large.g.datasetLabel}, ${cores} threads`,
      measured: `${fmtMB(small.rss)} MB -> ${fmtMB(large.rss)} MB`,
      met: large.rss <= small.rss * 1.1,
    });
  }
  const oursRuns = groups.flatMap((g) => g.tools.filter((t) => t.ours).flatMap((t) => t.runs.map((r) => ({ r, g }))));
  if (oursRuns.length) {
    const worst = oursRuns.reduce((a, b) => (b.r.peakRssBytes > a.r.peakRssBytes ? b : a));
    verdicts.push({
      target: 'imgport peak RSS under 200 MB (whole process tree, every run)',
      where: `largest: ${worst.g.benchmark}, ${worst.g.datasetLabel}, ${worst.g.threads} threads`,
      measured: `${fmtMB(worst.r.peakRssBytes)} MB`,
      met: worst.r.peakRssBytes < 200 * MB,
    });
  } else {
    verdicts.push({ target: 'imgport peak RSS under 200 MB', where: '-', measured: 'no successful run', met: undefined });
  }
  return verdicts;
}

const fmtSeconds = (s) => (s === undefined ? '-' : `${s < 10 ? s.toFixed(2) : s.toFixed(1)} s`);
const fmtMB = (bytes) => (bytes === undefined ? '-' : (bytes / MB).toFixed(bytes < 10 * MB ? 1 : 0));
const fmtSize = (bytes) => (bytes >= 1e9 ? `${(bytes / 1e9).toFixed(1)} GB` : `${Math.round(bytes / MB)} MB`);
/** Table cells: a `|` even inside backquotes ends the cell in GitHub's Markdown. */
const cell = (text) => String(text).replace(/\|/g, '\\|');
const verdictText = (met) => (met === undefined ? 'not measured' : met ? '**met**' : '**not met**');

function benchmarkTable(group) {
  const lines = [
    `#### ${group.datasetLabel} (${fmtSize(group.treeBytes)} tree, ${fmtSize(group.inputBytes)} in), ${group.threads} thread${group.threads > 1 ? 's' : ''}`,
    '',
    '| tool | runs | wall (median) | MB/s | CPU s | peak RSS MB | written MB | peak extra disk MB | output MB | imgport speed-up |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const t of group.tools) {
    const name = cell(t.ours ? `**imgport: ${t.name}**` : `\`${t.name}\``);
    if (!t.runs.length) {
      lines.push(`| ${name} | 0 | failed: ${cell((t.errors[0] ?? '?').split('\n')[0].slice(0, 160))} | | | | | | | |`);
      continue;
    }
    const ratio = t.ours ? '1.00x' : t.ratio === undefined ? '-' : `${t.ratio.toFixed(2)}x`;
    lines.push(`| ${name} | ${t.repetitions} | ${fmtSeconds(t.wallSeconds)} | ${(t.throughput / MB).toFixed(1)} | ${t.cpuSeconds.toFixed(1)} | ${fmtMB(t.peakRssBytes)} | ${fmtMB(t.writeBytes)} | ${fmtMB(t.peakDiskBytes)} | ${fmtMB(t.outputBytes)} | ${ratio} |`);
  }
  return lines.join('\n');
}

/** Throughput and peak RSS against image size, one line per tool of the packimage benchmarks at N threads. */
export function plots(groups, cores) {
  const seriesOf = (metric) => {
    const series = new Map();
    for (const g of groups.filter((g) => g.threads === cores && g.benchmark.startsWith('pack-'))) {
      for (const t of g.tools) {
        if (t[metric] === undefined) continue;
        if (!series.has(t.short)) series.set(t.short, { name: t.short, dashed: !t.ours, points: [] });
        series.get(t.short).points.push([g.treeBytes, metric === 'throughput' ? t.throughput / MB : t.peakRssBytes / MB]);
      }
    }
    return [...series.values()];
  };
  const common = { xLabel: 'image size (root filesystem tree)', formatX: fmtSize };
  return {
    throughput: lineChart({ ...common, title: `packimage throughput, ${cores} threads`, yLabel: 'MB/s of tree packed', series: seriesOf('throughput') }),
    rss: lineChart({ ...common, title: `packimage peak RSS (process tree), ${cores} threads`, yLabel: 'peak RSS, MB', series: seriesOf('peakRssBytes') }),
  };
}

/** RESULTS.md: how it was run, targets, then a table per benchmark and data set. */
export function resultsMarkdown({ groups, verdicts, machine, settings, notes }) {
  const out = [
    '# imgport benchmark results',
    '',
    `Generated by \`npm run bench${settings.quick ? ' -- --quick' : ''}\` on ${machine.date}. Re-run it to reproduce; the data sets are cached in \`${settings.cache}\`.`,
    '',
    ...notes.map((n) => `> ${n}`),
    ...(notes.length ? [''] : []),
    '## Machine',
    '',
    `- ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGB} GB RAM, Linux ${machine.kernel}`,
    `- Node ${machine.node}; ${machine.tools.join('; ')}`,
    `- load average when the run started: ${machine.load}`,
    `- ${settings.description}`,
    '',
    '## Targets',
    '',
    '| target | where | measured (peer time / imgport time) | verdict |',
    '| --- | --- | --- | --- |',
    ...verdicts.map((v) => `| ${cell(v.target)} | ${cell(v.where)} | ${cell(v.measured)} | ${verdictText(v.met)} |`),
    '',
    '## Plots',
    '',
    '![packimage throughput against image size](throughput.svg)',
    '',
    '![packimage peak RSS against image size](rss.svg)',
    '',
    '## How it is measured',
    '',
    '- Each benchmark runs imgport and its peers on the same data set and thread count, alternating: repetition *r* runs the tools in an order rotated by *r*. Figures are medians over the repetitions; "imgport speed-up" is the peer\'s median wall time divided by imgport\'s (above 1: imgport is faster).',
    '- Wall time from spawn to exit. CPU time: user + system of the whole process tree (the shell\'s `times` for every descendant it reaped). Written: the tree\'s `write_bytes` from /proc (children are added to their parent when reaped). Peak RSS: the process tree\'s resident memory sampled every 20 ms, maximum (at least the largest single-process VmHWM): a lone process\'s VmRSS, or the sum of Pss over several, so that pages they share (a child between fork and exec maps all of its parent\'s) count once. Peak extra disk: largest drop of the output filesystem\'s free space during the run (other activity on the filesystem shows up too). Throughput: bytes of the image (tree, boot files, packed root image as the benchmark reads or writes them) per second of wall time.',
    '- Peers are the real programs run as a user runs them, from fixed `bash -c` scripts with every path passed as an argument (bench/benchmarks.mjs). The page cache is warm for every tool alike: each data set is read once before its first benchmark (it fits in memory).',
    '- Every tool runs in the bench\'s environment without `NODE_EXTRA_CA_CERTS`: where it is set (as on the machine these figures come from, for its network tools), every Node process reads the whole certificate bundle as it starts, ~45 ms, and no tool measured here uses TLS.',
    "- File creation on this machine's disk is erratic: the same 6,000 small-file creations took from 0.2 s to 4.6 s from one minute to the next, outside any benchmark (`openat(O_CREAT)` then costs about 1 ms). An import creates one file per tree entry, so the statelite import on the real root filesystem (6.6k entries) varies several-fold between repetitions for both tools; the raw runs (one wall time per repetition) are in the cache's `runs-full.json`.",
    '',
    '## Results',
  ];
  const byBenchmark = new Map();
  for (const g of groups) {
    if (!byBenchmark.has(g.benchmark)) byBenchmark.set(g.benchmark, []);
    byBenchmark.get(g.benchmark).push(g);
  }
  for (const [, list] of byBenchmark) {
    out.push('', `### ${list[0].title}`, '');
    for (const g of list) out.push(benchmarkTable(g), '');
  }
  return out.join('\n').replace(/\n{3,}/g, '\n\n') + '\n';
}
