/** Compressor thread: compresses one block per task and transfers the result back. */
import { move, transferableSymbol, valueSymbol, workerData } from 'piscina';
import { compressBlock, preloadZstd, type BlockTask, type TaskResult } from '../src/pipeline/compress/block-task.js';
import type { WorkerSetup } from '../src/pipeline/compress/pool.js';

// A failed load shows again, as an error, on the first task.
if ((workerData as WorkerSetup | undefined)?.preloadZstd) preloadZstd().catch(() => undefined);

export default async function compress(task: BlockTask): Promise<TaskResult> {
  const output = await compressBlock(task);
  const result: TaskResult = { output: output.buffer as ArrayBuffer, outputLength: output.byteLength, input: task.data };
  // Both buffers are transferred back, not copied; the block's own goes back to be refilled.
  const transferable = {
    get [transferableSymbol]() {
      return [result.output, result.input];
    },
    get [valueSymbol]() {
      return result;
    },
  };
  return move(transferable as unknown as Parameters<typeof move>[0]) as unknown as TaskResult;
}
