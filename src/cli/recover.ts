import { contextFrom } from '../core/context.js';
import { ImgportError } from '../core/errors.js';
import { interruptedImports, ImportTransaction } from '../import/transaction.js';
import type { CommandSpec } from './command.js';

/**
 * `imgport recover [IMAGE...]`: what the next import of an image does first, for when there is no
 * next import (the bundle is gone, the image is to be exported or packed as it was): a commit that
 * a killed import cut short is rolled back (or finished, past its commit point), its staging removed.
 */
export const recoverCommand: CommandSpec = {
  usage: `Usage: imgport recover [IMAGE...]
  Puts back what an import killed outright (SIGKILL, power loss) left: a half-done commit is rolled
  back (the image as it was before that import), or finished if every file was in place (its table
  rows written), and its staging directories removed. Without IMAGE:
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
    // Each image on its own: what was put back is said as it happens, and one that cannot be
    // recovered (a live import holds it, a journal that cannot be undone) does not stop the others.
    let failed = 0;
    for (const image of images) {
      let said = 0;
      const say = (line: string): void => {
        said++;
        process.stdout.write(`${line}\n`);
      };
      try {
        await ImportTransaction.recover(ctx.sandbox, image, say, ctx.store);
        if (!said) say(`Nothing to recover for ${image}.`);
      } catch (err) {
        if (!(err instanceof ImgportError)) throw err;
        process.stderr.write(`Error: ${err.message}\n`);
        failed++;
      }
    }
    return failed ? 1 : 0;
  },
};
