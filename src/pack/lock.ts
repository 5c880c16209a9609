import path from 'node:path';
import { onCleanup } from '../core/cleanup.js';
import { ImageError } from '../core/errors.js';
import { acquirePidLock } from '../core/pid-lock.js';
import type { Sandbox } from '../core/sandbox.js';

/** The lock file in ROOTIMGDIR held by a pack, and by an import that puts a packed root image there. */
export const PACK_LOCK_NAME = '.imgport-packimage.lock';

/**
 * One pack of a root image directory at a time, as xCAT's packimage locks it, and no import
 * placing a packed root image there meanwhile: each would remove the archive the other just put
 * in place (a pack removes the other forms), leaving none or the wrong one. Refused at once,
 * naming the holder, as `cannot DOING`; resolves to the release (also run on a signal).
 */
export async function lockRootImageDir(sandbox: Sandbox, rootimgdir: string, doing: string, image: string): Promise<() => Promise<void>> {
  const lock = await acquirePidLock(path.join(sandbox.real(rootimgdir), PACK_LOCK_NAME), 0);
  if (!lock.acquired) {
    const shown = path.posix.join(rootimgdir, PACK_LOCK_NAME);
    throw new ImageError(`cannot ${doing}: ${rootimgdir} is being packed by process ${lock.holder ?? '?'} (lock ${shown}); try again when it has finished`, image);
  }
  const unregister = onCleanup(lock.release);
  return async () => {
    unregister();
    await lock.release();
  };
}
