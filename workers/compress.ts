/** Compressor thread: compresses one block per task and transfers its buffer back. */
import { move, transferableSymbol, valueSymbol, workerData } from 'piscina';
import { compressBlock, preloadZstd, type BlockTask, type TaskResult } from '../src/pipeline/compress/block-task.js';
import type { WorkerSetup } from '../src/pipeline/compress/pool.js';

// A failed load shows again, as an error, on the first task.
if ((workerData as WorkerSetup | undefined)?.preloadZstd) preloadZstd().catch(() => undefined);

export default async function compress(task: BlockTask): Promise<TaskResult> {
  const result = await compressBlock(task);
  // Transferred, not copied: the block's buffer goes back to be filled again.
  const buffers = [result.block];
  const transferable = {
    get [transferableSymbol]() {
      return buffers;
    },
    get [valueSymbol]() {
      return result;
    },
  };
  return move(transferable as unknown as Parameters<typeof move>[0]) as unknown as TaskResult;
}
