import path from 'node:path';
import { PathError } from './errors.js';

/**
 * The sandbox prefix (`--root DIR` / IMGPORT_ROOT). Tables and manifests always hold the paths a
 * management node would use (`/install/...`); only when the tool touches the disk is such a
 * logical path mapped under the root. Paths the user names on the command line for their own
 * files (a bundle, `--db`) are not logical paths and are never mapped.
 */
export class Sandbox {
  /** Absolute root directory, or undefined when paths are the real ones. */
  readonly root: string | undefined;

  constructor(root?: string) {
    this.root = root ? path.resolve(root) : undefined;
  }

  /** The real path on disk of an absolute logical path. */
  real(logicalPath: string): string {
    const normal = path.posix.normalize(logicalPath);
    if (!path.posix.isAbsolute(normal)) throw new PathError(`not an absolute path: ${logicalPath}`, logicalPath);
    return this.root ? path.join(this.root, normal) : normal;
  }

  /** The logical path of a real path under the root (the inverse of real()). */
  logical(realPath: string): string {
    if (!this.root) return realPath;
    const rel = path.relative(this.root, realPath);
    if (rel.startsWith('..') || path.isAbsolute(rel)) throw new Error(`outside the sandbox root: ${realPath}`);
    return '/' + rel.split(path.sep).join('/');
  }

  /** A real path as messages name it: logical under the root, as it is outside (a --db may be). */
  shown(realPath: string): string {
    try {
      return this.logical(realPath);
    } catch {
      return realPath;
    }
  }
}

/** The sandbox from `--root`, else IMGPORT_ROOT, else none. */
export function sandboxFrom(rootOption: string | undefined, env: NodeJS.ProcessEnv = process.env): Sandbox {
  return new Sandbox(rootOption ?? (env.IMGPORT_ROOT || undefined));
}
