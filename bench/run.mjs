#!/usr/bin/env node
// npm run bench [-- --quick] [--reps N] [--datasets a,b] [--only REGEX] [--threads N] [--no-build]
// Runs every benchmark against its peers and regenerates bench/RESULTS.md, throughput.svg, rss.svg.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { benchmarks, exportPeer, peerManifest } from './benchmarks.mjs';
import { DATASETS, isCached, NETBOOT_IMAGE, PKGLIST, prepareDataset, real, ROOTIMGDIR, STATELITE_IMAGE } from './datasets.mjs';
import { measure } from './measure.mjs';
import { judgeTargets, plots, resultsMarkdown, summarize } from './report.mjs';

const benchDir = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(benchDir, '..');
const PEER_PROGRAMS = { pigz: 'pigz', zstd: 'zstd', cpio: 'cpio', gzip: 'gzip', tar: 'tar' };
/** No single run may take longer than this; a hung tool is killed and recorded as failed. */
const RUN_TIMEOUT_SECONDS = 1200;

/**
 * What the full run measures per data set: every benchmark at N threads on the real root
 * filesystem and the 200 MB tree, the 1-thread variants on the real one; the large trees only
 * where they add information (the size plots, and the issues' memory targets on a 2 GB image),
 * so the whole run fits in about half an hour.
 */
const FULL_SCHEDULE = {
  rootfs: { reps: 3, oneThreadReps: 2 },
  'synthetic-200M': { reps: 2, oneThreadReps: 0 },
  'synthetic-1G': { reps: 1, oneThreadReps: 0, only: /^(pack-|export-statelite-gzip|import-statelite)/ },
  'synthetic-2G': { reps: 1, oneThreadReps: 0, only: /^(pack-|export-statelite-gzip)/ },
};

function options() {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean' },
      reps: { type: 'string' },
      datasets: { type: 'string' },
      only: { type: 'string' },
      threads: { type: 'string' },
      'no-build': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write('usage: npm run bench -- [--quick] [--reps N] [--datasets rootfs,synthetic-200M,synthetic-1G,synthetic-2G] [--only REGEX] [--threads N] [--no-build]\n');
    process.exit(0);
  }
  return values;
}

const say = (line) => process.stdout.write(`${line}\n`);

/** Installs the peer programs (and the data set tools) a fresh machine lacks, as root. */
function ensurePrograms() {
  const missing = Object.entries(PEER_PROGRAMS).filter(([program]) => spawnSync('sh', ['-c', 'command -v "$1"', 'sh', program]).status !== 0);
  if (!missing.length) return;
  say(`installing ${missing.map(([, pkg]) => pkg).join(' ')}`);
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit' });
  execFileSync('apt-get', ['install', '-y', '-qq', ...missing.map(([, pkg]) => pkg)], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
}

function build() {
  say('building (tsc, then the commands bundled)');
  // Type errors elsewhere in the tree do not stop tsc from emitting; a missing command shows up as a failed run.
  spawnSync(process.execPath, [path.join(repo, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', repo], { stdio: 'ignore' });
  spawnSync(process.execPath, [path.join(repo, 'scripts', 'bundle-commands.mjs')], { stdio: 'inherit' });
}

/**
 * Reads every file of a data set once, so the first tool measured on it does not pay for the disk
 * reads the others are spared (a 1 GB tree read cold took our packimage from ~9 s to 20 s).
 */
function warmPageCache(root) {
  say('  reading the data set once (page cache)');
  execFileSync('bash', ['-c', 'cd "$1" && find . -xdev -type f -print0 | xargs -0 -r cat > /dev/null', 'warm-cache', root], { stdio: 'inherit' });
}

function machineInfo() {
  const version = (program, args) => {
    const r = spawnSync(program, args, { encoding: 'utf8' });
    return `${r.stdout}${r.stderr}`.split('\n').find((l) => l.trim())?.trim() ?? `${program}: not found`;
  };
  return {
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    cpu: os.cpus()[0]?.model.trim() ?? 'unknown CPU',
    cores: os.availableParallelism(),
    memoryGB: Math.round(os.totalmem() / 2 ** 30),
    kernel: os.release(),
    node: process.version,
    load: os.loadavg().map((l) => l.toFixed(2)).join(' '),
    tools: [version('pigz', ['--version']), version('zstd', ['--version']), version('gzip', ['--version']), version('tar', ['--version']), version('cpio', ['--version'])],
  };
}

/** Which benchmarks, thread counts and repetitions each data set gets. */
function schedule(opts, cores) {
  const all = benchmarks(cores);
  const only = opts.only ? new RegExp(opts.only) : undefined;
  const reps = opts.reps ? Number(opts.reps) : undefined;
  let names;
  if (opts.datasets) names = opts.datasets.split(',');
  else if (opts.quick) names = [isCached(opts.cache, 'rootfs') ? 'rootfs' : 'synthetic-200M'];
  else names = DATASETS.map((d) => d.name);
  return names.map((name) => {
    const plan = opts.quick ? { reps: 1, oneThreadReps: 0 } : FULL_SCHEDULE[name] ?? { reps: 1, oneThreadReps: 0 };
    const jobs = [];
    for (const bench of all) {
      if ((plan.only && !plan.only.test(bench.id)) || (only && !only.test(bench.id))) continue;
      for (const threads of bench.threads) {
        const n = reps ?? (threads === cores ? plan.reps : plan.oneThreadReps);
        if (n > 0) jobs.push({ bench, threads, reps: n });
      }
    }
    return { name, jobs };
  });
}

const rotate = (list, by) => list.map((_, i) => list[(i + by) % list.length]);
const sizeOf = (file) => (file && fs.existsSync(file) ? fs.statSync(file).size : undefined);

/** Why a run failed: the tool's error line (`Error: ...`, `Error [CODE]: ...`), else its last words. */
export function failureReason(err) {
  const lines = (err.output ?? '').trim().split('\n').filter((l) => l.trim());
  const reason = lines.find((l) => /^(\w*Error\b|.*: (error|cannot|failed))/i.test(l)) ?? lines.slice(-2).join(' / ');
  return (reason || err.message.split('\n')[0]).slice(0, 500);
}

/**
 * The tools' environment: the bench's own without NODE_EXTRA_CA_CERTS, which makes every Node start
 * read the whole certificate bundle (~45 ms here); no tool measured uses TLS.
 */
const TOOL_ENV = Object.fromEntries(Object.entries(process.env).filter(([name]) => name !== 'NODE_EXTRA_CA_CERTS'));

/** Runs one tool once; returns the run record (with `error` when it failed). */
async function runTool(tool, ctx, base) {
  fs.rmSync(ctx.work, { recursive: true, force: true });
  fs.mkdirSync(ctx.work, { recursive: true });
  const record = { ...base, tool: tool.name, short: tool.short ?? tool.name, ours: Boolean(tool.ours) };
  try {
    const m = await measure({ argv: tool.argv, cwd: ctx.work, env: TOOL_ENV, diskPath: ctx.work, timeoutSeconds: RUN_TIMEOUT_SECONDS });
    Object.assign(record, m, { outputBytes: sizeOf(tool.output), output: undefined });
    say(`  ${tool.name}: ${m.wallSeconds.toFixed(2)} s, cpu ${m.cpuSeconds.toFixed(1)} s, rss ${(m.peakRssBytes / 1e6).toFixed(0)} MB`);
  } catch (err) {
    record.error = failureReason(err);
    say(`  ${tool.name}: FAILED ${record.error}`);
  } finally {
    // Outputs are measured, not kept; the cpio.gz in the image is kept for the netboot export.
    if (tool.output && !tool.output.endsWith(path.join(ROOTIMGDIR, 'rootimg.cpio.gz'))) fs.rmSync(tool.output, { force: true });
    fs.rmSync(ctx.work, { recursive: true, force: true });
  }
  return record;
}

/** Makes what a benchmark needs first (unmeasured): the packed root image, bundles to import. */
function satisfy(needs, ctx) {
  const quiet = { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' };
  for (const need of needs ?? []) {
    if (need === 'packed-rootimg' && !fs.existsSync(path.join(ctx.ds.rootimgdir, 'rootimg.cpio.gz'))) {
      say('  (packing rootimg.cpio.gz for the netboot export)');
      const r = spawnSync(process.execPath, [path.join(repo, 'dist/bin/packimage.js'), '-m', 'cpio', '-c', 'gzip', '--no-progress', '--root', ctx.ds.root, NETBOOT_IMAGE], quiet);
      if (r.status !== 0) {
        say('  (imgport packimage failed; packing with cpio | pigz instead)');
        execFileSync('bash', ['-c', 'set -o pipefail; cd "$1" && find . -xdev -print0 | cpio -H newc -o -0 --quiet | pigz > "$2"', 'bench', ctx.ds.tree, path.join(ctx.ds.rootimgdir, 'rootimg.cpio.gz')]);
      }
    }
    const provmethod = need.startsWith('bundle-') && need.slice('bundle-'.length);
    if (provmethod && !ctx.bundles[provmethod]) {
      const image = provmethod === 'netboot' ? NETBOOT_IMAGE : STATELITE_IMAGE;
      const bundle = path.join(ctx.bundleDir, `${ctx.ds.name}-${image}.tgz`);
      say(`  (exporting ${image} with imgexport to import it)`);
      const r = spawnSync(process.execPath, [path.join(repo, 'dist/bin/imgexport.js'), image, bundle, '--no-progress', '--root', ctx.ds.root], quiet);
      if (r.status !== 0) {
        // Both imports still get a bundle in xCAT's format: the one xCAT's own pipeline makes.
        const reason = r.stderr.trim().split('\n').pop();
        say(`  (imgexport failed: ${reason}; making the bundle with xCAT's pipeline instead)`);
        ctx.notes.push(`The ${provmethod} bundle imported on ${ctx.ds.name} was made by xCAT's pipeline (with pigz): imgexport failed (${reason}).`);
        fs.mkdirSync(ctx.work, { recursive: true });
        const peer = exportPeer(ctx, provmethod, 'bundle', 'pigz', 'pigz');
        execFileSync(peer.argv[0], peer.argv.slice(1), { cwd: ctx.work, stdio: 'ignore' });
        fs.renameSync(peer.output, bundle);
        fs.rmSync(ctx.work, { recursive: true, force: true });
      }
      ctx.bundles[provmethod] = bundle;
    }
  }
}

async function main() {
  const opts = options();
  opts.cache = process.env.IMGPORT_BENCH_CACHE || '/var/cache/imgport-bench';
  const cores = opts.threads ? Number(opts.threads) : os.availableParallelism();
  const started = Date.now();
  ensurePrograms();
  if (!opts['no-build']) build();
  const machine = machineInfo();
  const plan = schedule(opts, cores);
  const runDir = path.join(opts.cache, 'run');
  fs.rmSync(runDir, { recursive: true, force: true });
  const runs = [];
  const notes = [];
  const rawFile = path.join(opts.cache, `runs-${opts.quick ? 'quick' : 'full'}.json`);

  for (const { name, jobs } of plan) {
    say(`data set ${name}`);
    let ds;
    try {
      ds = prepareDataset(opts.cache, name);
    } catch (err) {
      notes.push(`Data set ${name} could not be built (${err.message.split('\n')[0]}): skipped.`);
      say(`  skipped: ${err.message}`);
      continue;
    }
    warmPageCache(ds.root);
    const statics = path.join(runDir, 'static');
    fs.mkdirSync(statics, { recursive: true });
    const manifests = {};
    for (const provmethod of ['netboot', 'statelite']) {
      fs.mkdirSync(path.join(statics, provmethod), { recursive: true });
      manifests[provmethod] = path.join(statics, provmethod, 'manifest.xml');
      fs.writeFileSync(manifests[provmethod], peerManifest(provmethod, PKGLIST, ROOTIMGDIR));
    }
    const litefile = path.join(statics, 'litefile.csv');
    fs.writeFileSync(litefile, '');
    const bundleDir = path.join(runDir, 'bundles');
    fs.mkdirSync(bundleDir, { recursive: true });
    const shared = { ds, work: path.join(runDir, 'work'), bundleDir, bundles: {}, manifests, litefile, pkglist: real(ds.root, PKGLIST), notes };

    for (const { bench, threads, reps } of jobs) {
      const ctx = { ...shared, threads };
      say(`${bench.id}, ${ds.name}, ${threads} thread(s), ${reps} repetition(s)`);
      try {
        satisfy(bench.needs, ctx);
      } catch (err) {
        notes.push(`${bench.id} on ${ds.name} not run: ${err.message}`);
        say(`  not run: ${err.message}`);
        continue;
      }
      Object.assign(shared.bundles, ctx.bundles);
      const base = { benchmark: bench.id, title: bench.title, dataset: ds.name, datasetLabel: ds.label, treeBytes: ds.treeBytes, threads, inputBytes: bench.inputBytes(ds) };
      const tools = bench.tools(ctx);
      const failed = new Set();
      for (let rep = 0; rep < reps; rep++) {
        for (const tool of rotate(tools, rep)) {
          if (failed.has(tool.name)) continue; // a tool that failed once is not retried
          const record = await runTool(tool, ctx, { ...base, rep });
          if (record.error) failed.add(tool.name);
          runs.push(record);
          fs.writeFileSync(rawFile, JSON.stringify({ machine, runs }, null, 1));
        }
      }
    }
  }

  const groups = summarize(runs);
  const verdicts = judgeTargets(groups, cores);
  const minutes = ((Date.now() - started) / 60000).toFixed(1);
  const description = opts.quick
    ? `--quick: one data set, ${cores} threads, one repetition per tool; took ${minutes} min. A smoke check: the full run has more repetitions, sizes and the 1-thread variants.`
    : `full run: repetitions per data set ${plan.map((p) => `${p.name} ${p.jobs.length ? Math.max(...p.jobs.map((j) => j.reps)) : 0}`).join(', ')}; took ${minutes} min.`;
  const charts = plots(groups, cores);
  fs.writeFileSync(path.join(benchDir, 'throughput.svg'), charts.throughput);
  fs.writeFileSync(path.join(benchDir, 'rss.svg'), charts.rss);
  fs.writeFileSync(path.join(benchDir, 'RESULTS.md'), resultsMarkdown({ groups, verdicts, machine, settings: { quick: opts.quick, cache: opts.cache, description }, notes }));
  fs.rmSync(runDir, { recursive: true, force: true });
  say(`\nbench/RESULTS.md written (${minutes} min); raw runs in ${rawFile}`);
  for (const v of verdicts) say(`${v.met === undefined ? 'not measured' : v.met ? 'met' : 'NOT MET'}: ${v.target} [${v.where}]: ${v.measured}`);
}

await main();
