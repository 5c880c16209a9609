/** Shared pieces of the fault tests: seeded kill points, interrupted runs, trees without leftovers. */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describeTree, type TreeItem } from './export-bundle.js';
import { NODE, NODE_ARGS } from './node-command.js';

/** IMGPORT_HEAVY_TESTS=1: more kill points and bigger data. */
export const HEAVY = process.env.IMGPORT_HEAVY_TESTS === '1';

/** Numbers in [0, 1), the same sequence for the same seed (mulberry32). */
export function seededRandom(seed: string): () => number {
  let state = 0;
  for (const ch of seed) state = (Math.imul(state, 31) + ch.charCodeAt(0)) | 0;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let x = Math.imul(state ^ (state >>> 15), 1 | state);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 2 ** 32;
  };
}

export interface Interrupted {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /**
   * The command had finished before the signal could act: it had exited when the signal was due
   * (never sent), or it exited 0 (its status can come in before its pipes close, and the signal
   * then reaches a process already exiting; an interrupted command exits 1 or by the signal).
   */
  finishedFirst: boolean;
}

export interface InterruptOptions {
  signal: NodeJS.Signals;
  /** Milliseconds after the trigger (start, or the first output line) before the signal. */
  delayMs: number;
  /** Wait for the command's first output line (its signal handlers are in place by then). */
  afterFirstOutput?: boolean;
  /** Bytes written to standard input before the delay starts; stdin is closed when all of `data` went. */
  feed?: { data: Buffer; upTo: number };
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/** Runs `node script args` and sends it a signal at the chosen point; resolves when it has exited. */
export async function runAndInterrupt(script: string, args: string[], opts: InterruptOptions): Promise<Interrupted> {
  const child = spawn(NODE, [...NODE_ARGS, script, ...args], { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let exited = false;
  const firstOutput = new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
  child.stdout.on('data', (c: Buffer) => (stdout += c));
  child.stderr.on('data', (c: Buffer) => (stderr += c));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('close', (code, signal) => {
      exited = true;
      resolve({ code, signal });
    }),
  );
  child.stdin.on('error', () => undefined); // a killed command closes its end early
  if (opts.feed) {
    const { data, upTo } = opts.feed;
    if (upTo >= data.length) child.stdin.end(data);
    else child.stdin.write(data.subarray(0, upTo));
  } else child.stdin.end();
  if (opts.afterFirstOutput) await Promise.race([firstOutput, done]);
  await Promise.race([sleep(opts.delayMs), done]);
  const exitedFirst = exited;
  if (!exited) child.kill(opts.signal);
  child.stdin.destroy();
  const { code, signal } = await done;
  return { code, signal, stdout, stderr, finishedFirst: exitedFirst || code === 0 };
}

/** A copy of a directory tree (owners, modes, links kept). */
export function cloneTree(from: string, to: string): void {
  execFileSync('cp', ['-a', from, to]);
}

/** What an interrupted command may leave: our staging directories, temporary files, locks and journals. */
export function isLeftover(relPath: string): boolean {
  return relPath.split('/').some((part) => part.startsWith('.imgport-staging-') || /^\..*\.tmp/.test(part)) || relPath.startsWith('var/lib/imgport');
}

/** The tree below `dir` without leftovers (describeTree's items). */
export function treeWithoutLeftovers(dir: string): TreeItem[] {
  return describeTree(dir).filter((item) => !isLeftover(item.path));
}

/** Every leftover below `dir` but the table file itself. */
export function leftovers(dir: string): string[] {
  return describeTree(dir).map((item) => item.path).filter((p) => isLeftover(p) && p !== 'var/lib/imgport' && p !== 'var/lib/imgport/tables.json' && p !== 'var/lib/imgport/imports');
}

export const fileBytes = (file: string): Buffer | undefined => (fs.existsSync(file) ? fs.readFileSync(file) : undefined);

/** A command that writes one output file, for the kill and signal tests. */
export interface OutputCommand {
  script: string;
  args: string[];
  /** The file it writes (under a temporary name first). */
  output: string;
  /** Whether bytes found at `output` are a whole, valid result. */
  isComplete(data: Buffer): boolean;
  /** Directories the command only reads: they must not change. */
  readOnly: string[];
}

/** Temporary files beside `file` (`.NAME.tmp...`). */
export function temporariesBeside(file: string): string[] {
  return fs.readdirSync(path.dirname(file)).filter((name) => name.startsWith(`.${path.basename(file)}.tmp`));
}


/** Runs the command to its end; resolves to its exit code, standard error and duration. */
export function runWhole(cmd: OutputCommand): { code: number | null; stderr: string; ms: number } {
  const started = Date.now();
  const run = spawnSync(NODE, [...NODE_ARGS, cmd.script, ...cmd.args], { encoding: 'utf8' });
  return { code: run.status, stderr: run.stderr, ms: Date.now() - started };
}

/**
 * SIGKILL, SIGINT and SIGTERM at seeded points of a command that writes `cmd.output`, which holds
 * a complete earlier result: afterwards the output is that earlier result or a complete new one
 * (never partial), the sources are unchanged; a caught signal exits 1 saying so and leaves no
 * temporary file; after SIGKILL the next run succeeds and leaves none.
 */
export async function outputFaultSuite(t: Tap.Test, name: string, cmd: OutputCommand, counts: { kill: number; catchable: number }): Promise<void> {
  const first = runWhole(cmd);
  t.equal(first.code, 0, `${name} runs: ${first.stderr}`);
  const nominalMs = first.ms;
  const sources = cmd.readOnly.map((dir) => describeTree(dir));
  const assertSafe = (t: Tap.Test, previous: Buffer) => {
    const now = fs.readFileSync(cmd.output);
    t.ok(now.equals(previous) || cmd.isComplete(now), 'the output is the earlier result or a complete new one');
    t.same(cmd.readOnly.map((dir) => describeTree(dir)), sources, 'sources unchanged');
  };
  const random = seededRandom(`${name} faults`);

  await t.test(`${name}: SIGKILL at ${counts.kill} seeded points`, async (t) => {
    for (let i = 0; i < counts.kill; i++) {
      const delayMs = Math.floor(random() * nominalMs * 1.2);
      const previous = fs.readFileSync(cmd.output);
      const run = await runAndInterrupt(cmd.script, cmd.args, { signal: 'SIGKILL', delayMs });
      t.test(`after ${delayMs} ms${run.finishedFirst ? ' (had finished)' : ''}`, async (t) => {
        assertSafe(t, previous);
        const next = runWhole(cmd);
        t.equal(next.code, 0, `the next run succeeds: ${next.stderr}`);
        t.ok(cmd.isComplete(fs.readFileSync(cmd.output)), 'and leaves a complete output');
        t.same(temporariesBeside(cmd.output), [], 'no temporary file left: the next run removed the killed one\'s');
      });
    }
  });

  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    await t.test(`${name}: ${signal} at ${counts.catchable} seeded points`, async (t) => {
      for (let i = 0; i < counts.catchable; i++) {
        const delayMs = Math.floor(random() * nominalMs * 0.8);
        const previous = fs.readFileSync(cmd.output);
        const run = await runAndInterrupt(cmd.script, cmd.args, { signal, delayMs, afterFirstOutput: true });
        t.test(`${delayMs} ms after the first output${run.finishedFirst ? ' (had finished)' : ''}`, async (t) => {
          if (run.finishedFirst) {
            // The signal came too late to act: then it must have finished its work.
            t.ok(cmd.isComplete(fs.readFileSync(cmd.output)), 'finished before the signal');
          } else {
            t.equal(run.code, 1, 'exit code 1');
            if (run.code !== 1) t.comment(`ended by signal ${run.signal}, stderr:\n${run.stderr}`);
            t.match(run.stderr, `interrupted by ${signal}`, 'says so');
          }
          assertSafe(t, previous);
          t.same(temporariesBeside(cmd.output), [], 'no temporary file left');
        });
      }
    });
  }
}
