/** Compressor thread: compresses one block per task and transfers the result back. */
import { move } from 'piscina';
import { compressBlock, type BlockTask } from '../src/pipeline/compress/block-task.js';

export default async function compress(task: BlockTask): Promise<ArrayBuffer> {
  return move(await compressBlock(task)) as ArrayBuffer;
}
