import fs from 'node:fs';

/**
 * A file of this package, by its path from the package's top directory. Found by walking up from
 * this module to package.json: the same code runs from its TypeScript source (tests), from tsc's
 * output (dist/src/...) and bundled into a command (dist/bin/...), each at another depth.
 */
export function packageFileUrl(relative: string): URL {
  for (let dir = new URL('.', import.meta.url); ; ) {
    if (fs.existsSync(new URL('package.json', dir))) return new URL(relative, dir);
    const parent = new URL('..', dir);
    if (parent.href === dir.href) throw new Error(`package.json of imgport not found above ${import.meta.url}`);
    dir = parent;
  }
}
