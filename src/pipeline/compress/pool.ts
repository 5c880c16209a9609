/**
 * The compressor threads: one piscina pool per thread count, shared by the streams that use it
 * at the same time and destroyed when the last of them lets go, so no idle thread keeps the
 * process alive after the output is written.
 */
import { Piscina } from 'piscina';
import type { BlockTask, TaskResult } from './block-task.js';

/** The worker script, compiled next to the sources (dist/workers/compress.js beside dist/src/). */
function workerUrl(): URL {
  // Run from TypeScript sources (tests), this module is src/…/pool.ts: use the compiled worker.
  const fromSources = import.meta.url.endsWith('.ts');
  return new URL(fromSources ? '../../../dist/workers/compress.js' : '../../../workers/compress.js', import.meta.url);
}

interface SharedPool {
  pool: Piscina<BlockTask, TaskResult>;
  users: number;
}

const pools = new Map<number, SharedPool>();

export interface PoolLease {
  run(task: BlockTask): Promise<TaskResult>;
  /** Ends this user's share; the pool's threads stop when no user is left. Idempotent. */
  release(): void;
}

export function leasePool(threads: number): PoolLease {
  let shared = pools.get(threads);
  if (!shared) {
    const pool = new Piscina<BlockTask, TaskResult>({
      filename: workerUrl().href,
      minThreads: threads,
      maxThreads: threads,
      concurrentTasksPerWorker: 1,
      // The worker is compiled JavaScript: module loaders the main thread was started with
      // (a TypeScript loader costs ~100 MB per thread) have no business there.
      execArgv: [],
    });
    shared = { pool, users: 0 };
    pools.set(threads, shared);
  }
  const lease = shared;
  lease.users++;
  let released = false;
  return {
    run: (task) => {
      const transferList = task.dictionary ? [task.data, task.dictionary] : [task.data];
      return lease.pool.run(task, { transferList });
    },
    release: () => {
      if (released) return;
      released = true;
      if (--lease.users > 0) return;
      pools.delete(threads);
      // Tasks still running (a stream destroyed mid-way) have nobody waiting for them.
      lease.pool.destroy().catch(() => undefined);
    },
  };
}
