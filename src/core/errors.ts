/**
 * Typed errors. Every error the tools report on purpose is an ImgportError: the command runner
 * prints its message as `Error: ...` and exits 1. Anything else is a bug and prints its stack.
 * Each kind carries the thing it concerns (a path, a table, a bundle member) so callers and tests
 * can tell what went wrong without parsing text.
 */
export class ImgportError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** Bad command line: the runner prints the usage after the message. */
export class UsageError extends ImgportError {}

/** A file or directory on disk that cannot be used as asked. */
export class PathError extends ImgportError {
  constructor(message: string, readonly path: string) {
    super(message);
  }
}

/** The table file, a table, a column or an object definition. */
export class TableError extends ImgportError {
  constructor(message: string, readonly table?: string) {
    super(message);
  }
}

/** Something wrong with a bundle or one of its members. */
export class BundleError extends ImgportError {
  constructor(message: string, readonly member?: string) {
    super(message);
  }
}

/** manifest.xml that is missing, unreadable, hostile or incomplete. */
export class ManifestError extends BundleError {}

/** A member whose digest does not match the bundle's SHA256SUMS. */
export class ChecksumError extends BundleError {}

/** The osimage definition cannot be exported (xCAT's refusals). */
export class ImageError extends ImgportError {
  constructor(message: string, readonly image?: string) {
    super(message);
  }
}

/** The operation was interrupted by a signal; cleanup has run. */
export class InterruptedError extends ImgportError {
  constructor(readonly signal: NodeJS.Signals) {
    super(`interrupted by ${signal}`);
  }
}

/** Bytes as text, those above ASCII escaped (\xe9): names a name that is not UTF-8. */
export function escapedBytes(raw: Buffer): string {
  return [...raw].map((byte) => (byte < 0x80 ? String.fromCharCode(byte) : `\\x${byte.toString(16)}`)).join('');
}

/** A short reason for an fs error: "permission denied" rather than the full libuv message. */
export function describeFsError(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  switch (e.code) {
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'ENOENT':
      return 'no such file or directory';
    case 'ENOTDIR':
      return 'not a directory';
    case 'ELOOP':
      return 'it is a symbolic link';
    case 'ENOSPC':
      return 'no space left on device';
    case 'EDQUOT':
      return 'disk quota exceeded';
    case 'EROFS':
      return 'read-only file system';
    default:
      return e.message;
  }
}
