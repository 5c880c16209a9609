/** A sandbox prepared as the xCAT fixtures' README says, and snapshots of what an import left. */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export { FIXTURES } from './shared.js';
import { FIXTURES } from './shared.js';
import { NODE, NODE_ARGS } from './node-command.js';
export const IMGIMPORT = path.resolve('dist/bin/imgimport.js');
export const IMGPORT = path.resolve('dist/bin/imgport.js');

export interface FileInfo {
  type: 'dir' | 'file' | 'symlink';
  mode?: string;
  size?: number;
  sha256?: string;
  target?: string;
}

export interface ImportSandbox {
  root: string;
  db: string;
  /** A private copy of a fixture bundle. */
  bundle(name: string): string;
  run(args: string[], input?: Buffer): { code: number | null; stdout: string; stderr: string };
  /** The same, not waiting: for concurrency and kill tests. */
  start(args: string[]): ReturnType<typeof spawn>;
  tables(): Record<string, Record<string, string>[]>;
  files(): Record<string, FileInfo>;
}

export const INITIAL_TABLES = {
  nodelist: [
    { node: 'node1', groups: 'compute,all' },
    { node: 'node2', groups: 'compute,all' },
  ],
  postscripts: [{ node: 'xcatdefaults', postscripts: 'syslog,remoteshell,syncfiles', postbootscripts: 'otherpkgs' }],
  litefile: [{ image: 'ALL', file: '/etc/adjtime', options: 'tmpfs' }],
};

/**
 * An import reading a bundle from standard input, stopped half way: started with the first half,
 * returned once its journal exists (the import is under way, its signal handlers in place). It
 * throws, with the import's stderr, if that does not happen within a minute.
 */
export async function startHalfWay(sandbox: ImportSandbox, data: Buffer, image: string, args: string[] = []) {
  const child = sandbox.start(['-', ...args]);
  let stderr = '';
  child.stderr!.on('data', (c) => (stderr += c));
  let running = true;
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => {
    running = false;
    resolve(code);
  }));
  child.stdin!.write(data.subarray(0, Math.floor(data.length / 2)));
  const journal = path.join(sandbox.root, 'var/lib/imgport/imports', `${image}.json`);
  const deadline = Date.now() + 60_000;
  while (!fs.existsSync(journal)) {
    if (!running || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`the import of ${image} never got under way (no ${journal}); its stderr: ${stderr}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return { child, journal, exited, stderr: () => stderr, finish: () => child.stdin!.end(data.subarray(Math.floor(data.length / 2))) };
}

export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Every path under ROOT/install and ROOT/opt/xcat, as the fixtures' files_after lists them. */
export function snapshot(root: string): Record<string, FileInfo> {
  const out: Record<string, FileInfo> = {};
  const walk = (logical: string) => {
    const real = path.join(root, logical);
    if (!fs.existsSync(real)) return;
    for (const name of fs.readdirSync(real).sort()) {
      const child = `${logical}/${name}`;
      const st = fs.lstatSync(path.join(root, child));
      if (st.isSymbolicLink()) out[child] = { type: 'symlink', target: fs.readlinkSync(path.join(root, child)) };
      else if (st.isDirectory()) {
        out[child] = { type: 'dir', mode: '0o' + (st.mode & 0o7777).toString(8) };
        walk(child);
      } else {
        const data = fs.readFileSync(path.join(root, child));
        out[child] = { type: 'file', mode: '0o' + (st.mode & 0o7777).toString(8), size: st.size, sha256: sha256(data) };
      }
    }
  };
  walk('/install');
  walk('/opt/xcat');
  return out;
}

/** Sorted rows, so that row order does not matter. */
export function normalTables(tables: Record<string, Record<string, string>[]>): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [name, rows] of Object.entries(tables)) {
    if (!rows.length) continue;
    out[name] = rows.map((r) => JSON.stringify(Object.fromEntries(Object.entries(r).sort()))).sort();
  }
  return out;
}

export function makeSandbox(t: { teardown(fn: () => void): void }, tables: object = INITIAL_TABLES): ImportSandbox {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'imgport-import-'));
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  fs.mkdirSync(path.join(root, 'install/rhels8.5.0/x86_64'), { recursive: true });
  fs.mkdirSync(path.join(root, 'opt/xcat/share/xcat'), { recursive: true });
  for (const dir of ['install/rhels8.5.0', 'install/rhels8.5.0/x86_64', 'opt/xcat/share', 'opt/xcat/share/xcat']) fs.chmodSync(path.join(root, dir), 0o755);
  const db = path.join(root, 'var/lib/imgport/tables.json');
  fs.mkdirSync(path.dirname(db), { recursive: true });
  fs.writeFileSync(db, JSON.stringify(tables));
  const bundles = path.join(root, 'bundles');
  fs.mkdirSync(bundles);
  const env = { ...process.env, XCATROOT: '', IMGPORT_ROOT: '', IMGPORT_DB: '' };
  return {
    root,
    db,
    bundle(name) {
      const copy = path.join(bundles, name);
      fs.copyFileSync(path.join(FIXTURES, name), copy);
      return copy;
    },
    run(args, input) {
      const r = spawnSync(NODE, [...NODE_ARGS, IMGIMPORT, ...args, '--root', root], { input, encoding: 'utf8', env });
      return { code: r.status, stdout: r.stdout, stderr: r.stderr };
    },
    start(args) {
      return spawn(NODE, [...NODE_ARGS, IMGIMPORT, ...args, '--root', root], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    },
    tables: () => JSON.parse(fs.readFileSync(db, 'utf8')),
    files: () => snapshot(root),
  };
}

/** name -> {mode, sha256, size} of the regular files in a gzip'd tar, via GNU tar. */
export function bundleFiles(bundle: string): Map<string, FileInfo> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'imgport-unpack-'));
  try {
    const r = spawnSync('tar', ['-xzf', bundle, '-C', dir]);
    if (r.status !== 0) throw new Error(`tar failed: ${r.stderr}`);
    return new Map(
      Object.entries(snapshotDir(dir)).map(([k, v]) => [k.replace(/^\//, ''), v]),
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function snapshotDir(dir: string): Record<string, FileInfo> {
  const out: Record<string, FileInfo> = {};
  const walk = (rel: string) => {
    for (const name of fs.readdirSync(path.join(dir, rel)).sort()) {
      const child = rel ? `${rel}/${name}` : name;
      const st = fs.lstatSync(path.join(dir, child));
      if (st.isDirectory()) {
        out[child] = { type: 'dir', mode: '0o' + (st.mode & 0o7777).toString(8) };
        walk(child);
      } else if (st.isFile()) {
        out[child] = { type: 'file', mode: '0o' + (st.mode & 0o7777).toString(8), size: st.size, sha256: sha256(fs.readFileSync(path.join(dir, child))) };
      }
    }
  };
  walk('');
  return out;
}
