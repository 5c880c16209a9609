import { contextFrom } from '../core/context.js';
import { interruptedImports, ImportTransaction } from '../import/transaction.js';
import type { CommandSpec } from './command.js';

/**
 * `imgport recover [IMAGE...]`: what the next import of an image does first, for when there is no
 * next import (the bundle is gone, the image is to be exported or packed as it was): a commit that
 * a killed import cut short is rolled back, its staging removed.
 */
export const recoverCommand: CommandSpec = {
  usage: `Usage: imgport recover [IMAGE...]
  Puts back what an import killed outright (SIGKILL, power loss) left: a half-done commit is rolled
  back (the image as it was before that import), its staging directories removed. Without IMAGE:
  every image whose last import was killed. The next imgimport of an image does the same.
  -h, --help  this text;  --root DIR  sandbox prefix;  --db FILE  table file
`,
  options: {},
  async run(values, positionals) {
    const ctx = contextFrom(values);
    const images = positionals.length ? positionals : await interruptedImports(ctx.sandbox);
    if (!images.length) {
      process.stdout.write('No interrupted import to recover.\n');
      return;
    }
    const said: string[] = [];
    for (const image of images) {
      await ImportTransaction.recover(ctx.sandbox, image, (line) => said.push(line), () => ctx.store.read());
      if (!said.length) said.push(`Nothing to recover for ${image}.`);
      process.stdout.write(said.splice(0).map((line) => `${line}\n`).join(''));
    }
  },
};
