import fs from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { describeFsError, ImgportError, PathError } from './errors.js';

/**
 * A lock file holding its owner's pid, shared by every process that changes the same thing (the
 * table file, one image's import). It is written whole under a private name, flushed, and then
 * linked into place, so nobody ever reads it half-written, even after a power cut; the lock of a
 * process that died (SIGKILL, power loss) is broken by the next one that wants it.
 */
export type LockAttempt = { acquired: true; release: () => Promise<void> } | { acquired: false; holder: number | undefined };

/** A breaker lock older than this was left by a process that died while breaking a lock. */
const STALE_BREAKER_MS = 10_000;

/**
 * A lock file without a pid older than this is no lock being written: a power cut lost the data
 * of one linked before it was flushed, or a person or another tool left it. Younger, its writer
 * may still be filling it.
 */
const STALE_WITHOUT_PID_MS = 5_000;

/**
 * Takes `lockFile`, waiting up to `waitMs` for a live holder to let go (0: do not wait), or
 * until `stop` says to give up (an interrupted command).
 */
export async function acquirePidLock(lockFile: string, waitMs: number, stop?: () => boolean): Promise<LockAttempt> {
  const claim = `${lockFile}.${process.pid}.${Math.random().toString(36).slice(2)}`;
  const deadline = Date.now() + waitMs;
  try {
    await writeClaim(claim);
    for (let attempt = 0; ; attempt++) {
      try {
        await fs.link(claim, lockFile);
        return { acquired: true, release: () => fs.rm(lockFile, { force: true }) };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const lock = await readLock(lockFile);
      if (lock && isStale(lock)) {
        await breakStaleLock(lockFile);
        continue;
      }
      if (Date.now() >= deadline || stop?.()) return { acquired: false, holder: lock?.pid };
      await sleep(5 + Math.random() * Math.min(50, 5 * attempt));
    }
  } catch (err) {
    // A full or read-only disk under the lock's directory: said as such, naming the lock (not
    // taken for a failure of whatever the command was reading).
    throw err instanceof ImgportError ? err : new PathError(`cannot take the lock ${lockFile}: ${describeFsError(err)}`, lockFile);
  } finally {
    await fs.rm(claim, { force: true });
  }
}

/** Our pid in the claim file, on disk before the claim is linked as the lock. */
async function writeClaim(claim: string): Promise<void> {
  const handle = await fs.open(claim, 'w');
  try {
    await handle.writeFile(`${process.pid}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

interface LockContent {
  /** Undefined when the file holds no pid (empty, garbage). */
  pid: number | undefined;
  ageMs: number;
}

/** What a lock file holds and how old it is, or undefined when it vanished meanwhile. */
async function readLock(lockFile: string): Promise<LockContent | undefined> {
  try {
    const handle = await fs.open(lockFile, 'r');
    try {
      const pid = Number.parseInt(await handle.readFile('utf8'), 10);
      return { pid: Number.isInteger(pid) && pid > 0 ? pid : undefined, ageMs: Date.now() - (await handle.stat()).mtimeMs };
    } finally {
      await handle.close();
    }
  } catch {
    return undefined;
  }
}

/** A lock whose holder died, or one that has held no pid for longer than its writer could take to write it. */
function isStale(lock: LockContent): boolean {
  return lock.pid === undefined ? lock.ageMs > STALE_WITHOUT_PID_MS : !processAlive(lock.pid);
}

/** Whether a process exists (EPERM: it does, but belongs to someone else). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes a stale lock. Two processes may find the same stale lock: the breaker lock lets only one
 * of them remove it, after checking it is still stale (not a fresh lock taken meanwhile).
 */
async function breakStaleLock(lockFile: string): Promise<void> {
  const breaker = `${lockFile}.break`;
  try {
    await fs.writeFile(breaker, `${process.pid}\n`, { flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    const stat = await fs.stat(breaker).catch(() => undefined);
    if (stat && Date.now() - stat.mtimeMs > STALE_BREAKER_MS) await fs.rm(breaker, { force: true });
    await sleep(5);
    return;
  }
  try {
    const lock = await readLock(lockFile);
    if (lock && isStale(lock)) await fs.rm(lockFile, { force: true });
  } finally {
    await fs.rm(breaker, { force: true });
  }
}
