/**
 * The compressor threads: one piscina pool per thread count, shared by the streams that use it
 * at the same time and destroyed when the last of them lets go, so no idle thread keeps the
 * process alive after the output is written. A stream's share is taken on its first task: a
 * stream whose blocks are all stored or small (a netboot bundle) never loads piscina nor starts
 * a thread. A command sure to compress starts them early instead (`started()`): they start, and
 * load zstd's WebAssembly if asked, while the main thread still surveys the tree.
 */
import type { Piscina } from 'piscina';
import type { BlockTask, TaskResult } from './block-task.js';
import { packageFileUrl } from '../../core/package-files.js';
import { onCleanup } from '../../core/cleanup.js';

/** The compiled worker script (also when this module runs from its TypeScript source, in tests). */
const WORKER_SCRIPT = 'dist/workers/compress.js';

/**
 * piscina loads the worker script with require() first, import() if that throws. Node 20.19
 * require()s an ES module, and under a preloaded require hook (a test runner's, an APM agent's)
 * that path now and then aborts the whole process on an internal assertion (seen once in the
 * test suite: "CreateRequiredModuleFacade ... Assertion failed"). Turned off, require() throws
 * ERR_REQUIRE_ESM and piscina imports the script. (Node versions without the flag lack the path.)
 */
const WORKER_EXEC_ARGV = process.allowedNodeEnvironmentFlags.has('--no-experimental-require-module') ? ['--no-experimental-require-module'] : [];

/** What the worker script finds in piscina's workerData. */
export interface WorkerSetup {
  /** Load a zstd instance as the thread starts, before its first task. */
  preloadZstd: boolean;
}

interface SharedPool {
  pool: Promise<Piscina<BlockTask, TaskResult>>;
  users: number;
  /** Destroys the pool now (idempotent): on release by its last user, or by the command's cleanups. */
  stop(): Promise<void>;
}

const pools = new Map<number, SharedPool>();

export interface PoolLease {
  run(task: BlockTask): Promise<TaskResult>;
  /**
   * Resolves once the threads are being started (piscina loaded, the pool made): from then on they
   * start on their own, even while the main thread is busy.
   */
  started(): Promise<void>;
  /** Ends this user's share; the pool's threads stop when no user is left. Idempotent. */
  release(): void;
}

function joinPool(threads: number, setup: WorkerSetup): SharedPool {
  let shared = pools.get(threads);
  if (!shared) {
    const pool = import('piscina').then(
      ({ Piscina }) =>
        new Piscina<BlockTask, TaskResult>({
          filename: packageFileUrl(WORKER_SCRIPT).href,
          minThreads: threads,
          maxThreads: threads,
          concurrentTasksPerWorker: 1,
          // The worker is compiled JavaScript: module loaders the main thread was started with
          // (a TypeScript loader costs ~100 MB per thread) have no business there.
          execArgv: WORKER_EXEC_ARGV,
          workerData: setup,
        }),
    );
    // A failure or signal stops the threads before the process exits: exiting with a thread in the
    // middle of a task let Node end by a signal now and then, after the command had said why it stopped.
    let unregister = (): void => undefined;
    let stopped: Promise<void> | undefined;
    const stop = (): Promise<void> => {
      unregister();
      if (pools.get(threads) === shared) pools.delete(threads);
      // Tasks still running (a stream destroyed mid-way) have nobody waiting for them.
      stopped ??= pool.then((p) => p.destroy()).catch(() => undefined);
      return stopped;
    };
    shared = { pool, users: 0, stop };
    unregister = onCleanup(stop);
    pools.set(threads, shared);
  }
  shared.users++;
  return shared;
}

export interface LeaseOptions {
  /** The threads will compress zstd: each loads its instance as it starts (if this lease starts them). */
  zstd?: boolean;
}

export function leasePool(threads: number, opts: LeaseOptions = {}): PoolLease {
  const setup: WorkerSetup = { preloadZstd: opts.zstd ?? false };
  let share: SharedPool | undefined;
  let released = false;
  return {
    run: (task) => {
      if (released) return Promise.reject(new Error('compressor threads used after their release'));
      share ??= joinPool(threads, setup);
      return share.pool.then((pool) => pool.run(task, { transferList: [task.data] }));
    },
    started: async () => {
      share ??= joinPool(threads, setup);
      await share.pool;
    },
    release: () => {
      if (released) return;
      released = true;
      if (!share || --share.users > 0) return;
      void share.stop();
    },
  };
}

/**
 * Runs `work` with the compressor threads started first (each loading zstd when that is the
 * format), for a command sure to compress: the threads come up while it reads its tables and
 * surveys its trees, and a stream made meanwhile shares them. No format: `work` runs alone.
 */
export async function withThreadsStarted<T>(threads: number, format: 'gzip' | 'zstd' | undefined, work: () => Promise<T>): Promise<T> {
  const early = format && leasePool(threads, { zstd: format === 'zstd' });
  try {
    await early?.started();
    return await work();
  } finally {
    early?.release();
  }
}
