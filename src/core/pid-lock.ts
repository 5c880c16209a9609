import fs from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * A lock file holding its owner's pid, shared by every process that changes the same thing (the
 * table file, one image's import). It is written whole under a private name and then linked into
 * place, so nobody ever reads it half-written; the lock of a process that died (SIGKILL, power
 * loss) is broken by the next one that wants it.
 */
export type LockAttempt = { acquired: true; release: () => Promise<void> } | { acquired: false; holder: number | undefined };

/** A breaker lock older than this was left by a process that died while breaking a lock. */
const STALE_BREAKER_MS = 10_000;

/** Takes `lockFile`, waiting up to `waitMs` for a live holder to let go (0: do not wait). */
export async function acquirePidLock(lockFile: string, waitMs: number): Promise<LockAttempt> {
  const claim = `${lockFile}.${process.pid}.${Math.random().toString(36).slice(2)}`;
  await fs.writeFile(claim, `${process.pid}\n`);
  const deadline = Date.now() + waitMs;
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        await fs.link(claim, lockFile);
        return { acquired: true, release: () => fs.rm(lockFile, { force: true }) };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const holder = await lockHolder(lockFile);
      if (holder !== undefined && !processAlive(holder)) {
        await breakStaleLock(lockFile, holder);
        continue;
      }
      if (Date.now() >= deadline) return { acquired: false, holder };
      await sleep(5 + Math.random() * Math.min(50, 5 * attempt));
    }
  } finally {
    await fs.rm(claim, { force: true });
  }
}

/** The pid in a lock file, or undefined when it vanished meanwhile. */
async function lockHolder(lockFile: string): Promise<number | undefined> {
  try {
    const pid = Number.parseInt(await fs.readFile(lockFile, 'utf8'), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
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
 * Removes a lock whose holder died. Two processes may find the same stale lock: the breaker lock
 * lets only one of them remove it, after checking it is still the dead one's (not a fresh lock).
 */
async function breakStaleLock(lockFile: string, deadPid: number): Promise<void> {
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
    if ((await lockHolder(lockFile)) === deadPid) await fs.rm(lockFile, { force: true });
  } finally {
    await fs.rm(breaker, { force: true });
  }
}
