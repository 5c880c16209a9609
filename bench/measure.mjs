// Runs one command and measures it: wall time, CPU time and bytes written by its whole process
// tree, peak RSS of the tree, peak extra disk use of the output filesystem.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * Runs the command, then prints `times` (user and system time of the shell and of every
 * descendant it waited for, however short-lived) and its own /proc io, which the kernel adds
 * each reaped child's to. Exact where sampling /proc would miss the last interval of every
 * process. Fixed text: the command comes in as positional arguments.
 */
const ACCOUNTING_WRAPPER = 'report=$1; shift; "$@"; status=$?; times > "$report"; cat "/proc/$$/io" >> "$report"; exit $status';

/** Keeps the last bytes of a stream: enough to show why a run failed, bounded whatever it prints. */
function tail(limit = 4096) {
  let text = '';
  return { push: (chunk) => void (text = (text + chunk).slice(-limit)), get text() { return text; } };
}

/** `times` lines ("0m1.234s 0m0.056s") and io lines ("write_bytes: 123") of the wrapper's report. */
export function parseAccounting(report) {
  const seconds = [...report.matchAll(/(\d+)m(\d+(?:\.\d+)?)s/g)].reduce((sum, m) => sum + Number(m[1]) * 60 + Number(m[2]), 0);
  const io = Object.fromEntries([...report.matchAll(/^(\w+): (\d+)$/gm)].map((m) => [m[1], Number(m[2])]));
  return { cpuSeconds: seconds, writeBytes: io.write_bytes ?? 0, readBytes: io.read_bytes ?? 0 };
}

function readOrEmpty(file) {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return ''; // the process ended between listing and reading
  }
}

/** The pids of ROOT and all its descendants, from /proc/PID/task/TID/children. */
export function processTree(root) {
  const pids = [];
  const pending = [root];
  while (pending.length) {
    const pid = pending.pop();
    pids.push(pid);
    let tasks;
    try {
      tasks = fs.readdirSync(`/proc/${pid}/task`);
    } catch {
      continue;
    }
    for (const tid of tasks) {
      for (const child of readOrEmpty(`/proc/${pid}/task/${tid}/children`).split(' ')) if (child.trim()) pending.push(Number(child));
    }
  }
  return pids;
}

/**
 * Resident memory of the tree now and the largest single-process peak seen (VmHWM). A lone
 * process counts its VmRSS; several count the sum of their Pss, which splits the pages they share
 * among them: a child between fork and exec maps all of its parent's memory, and a sum of VmRSS
 * counted it twice (an import showed 222 MB for 141 MB while it started `sync`). Pss is read only
 * then: smaps_rollup costs ~1 ms on a 200 MB process, VmRSS a few µs.
 */
export function treeMemory(pids) {
  let rss = 0;
  let hwm = 0;
  for (const pid of pids) {
    const status = readOrEmpty(`/proc/${pid}/status`);
    const vmRss = /^VmRSS:\s+(\d+) kB/m.exec(status);
    const vmHwm = /^VmHWM:\s+(\d+) kB/m.exec(status);
    const pss = pids.length > 1 ? /^Pss:\s+(\d+) kB/m.exec(readOrEmpty(`/proc/${pid}/smaps_rollup`)) : null;
    if (pss ?? vmRss) rss += Number((pss ?? vmRss)[1]) * 1024;
    if (vmHwm) hwm = Math.max(hwm, Number(vmHwm[1]) * 1024);
  }
  return { rss, hwm };
}

function freeBytes(dir) {
  const s = fs.statfsSync(dir);
  return s.bfree * s.bsize;
}

/**
 * Runs ARGV (an argument array; no shell unless argv itself is one with a fixed script) with
 * the tree sampled every `sampleMs`. Resolves to the measurements; a non-zero exit rejects
 * with the command's last output. The command runs in a process group of its own, killed whole
 * after `timeoutSeconds` or when the bench itself is interrupted.
 */
export async function measure({ argv, cwd, env, diskPath, sampleMs = 20, timeoutSeconds = Infinity }) {
  const report = path.join(os.tmpdir(), `imgport-bench-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}.acct`);
  const output = tail();
  const diskBefore = freeBytes(diskPath);
  let minFree = diskBefore;
  let peakRss = 0;
  let peakHwm = 0;
  const started = process.hrtime.bigint();
  const child = spawn('bash', ['-c', ACCOUNTING_WRAPPER, 'bench-run', report, ...argv], { cwd, env: env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const killGroup = () => {
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  };
  const onInterrupt = () => {
    killGroup();
    process.exit(130);
  };
  process.once('SIGINT', onInterrupt);
  const deadline = Number.isFinite(timeoutSeconds) ? setTimeout(killGroup, timeoutSeconds * 1000) : undefined;
  child.stdout.setEncoding('utf8').on('data', output.push);
  child.stderr.setEncoding('utf8').on('data', output.push);
  const sample = () => {
    const { rss, hwm } = treeMemory(processTree(child.pid).slice(1)); // not the wrapper shell
    peakRss = Math.max(peakRss, rss);
    peakHwm = Math.max(peakHwm, hwm);
    minFree = Math.min(minFree, freeBytes(diskPath));
  };
  const timer = setInterval(sample, sampleMs);
  const code = await new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (exitCode, signal) => resolve(signal ? `signal ${signal}` : exitCode));
  }).finally(() => {
    clearInterval(timer);
    clearTimeout(deadline);
    process.removeListener('SIGINT', onInterrupt);
  });
  const wallSeconds = Number(process.hrtime.bigint() - started) / 1e9;
  const accounting = parseAccounting(readOrEmpty(report));
  fs.rmSync(report, { force: true });
  if (code !== 0) {
    const err = new Error(`${argv.join(' ')} failed (exit ${code}):\n${output.text.trim()}`);
    err.output = output.text;
    throw err;
  }
  return {
    wallSeconds,
    cpuSeconds: accounting.cpuSeconds,
    writeBytes: accounting.writeBytes,
    // A one-process peak reached between two samples still counts.
    peakRssBytes: Math.max(peakRss, peakHwm),
    peakDiskBytes: Math.max(0, diskBefore - minFree),
    output: output.text,
  };
}
