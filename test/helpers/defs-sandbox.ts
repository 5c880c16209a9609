/** A --root sandbox and a way to run the compiled `imgport` in it, for the object-definition tests. */
import { execFile, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { NODE, NODE_ARGS } from './node-command.js';

const CLI = path.resolve('dist/bin/imgport.js');

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function defsSandbox(t: { teardown(fn: () => void): void }) {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'imgport-defs-'));
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  const imgport = (args: string[], input?: string, env: NodeJS.ProcessEnv = {}): Run => {
    const r = spawnSync(NODE, [...NODE_ARGS, CLI, ...args, '--root', root], { input, encoding: 'utf8', env: { ...process.env, ...env } });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  const imgportAsync = (args: string[]): Promise<Run> =>
    new Promise((resolve) => {
      execFile(NODE, [...NODE_ARGS, CLI, ...args, '--root', root], (err, stdout, stderr) =>
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
      );
    });
  const db = path.join(root, 'var/lib/imgport/tables.json');
  return { root, imgport, imgportAsync, db, tables: () => JSON.parse(fs.readFileSync(db, 'utf8')) };
}
