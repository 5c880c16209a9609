import { readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
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
        await removeDeadClaims(lockFile);
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
    // taken for a failure of whatever the command was reading); the errno code stays for callers
    // that say it their own way.
    if (err instanceof ImgportError) throw err;
    throw Object.assign(new PathError(`cannot take the lock ${lockFile}: ${describeFsError(err)}`, lockFile), { code: (err as NodeJS.ErrnoException).code });
  } finally {
    await fs.rm(claim, { force: true });
  }
}

/**
 * Removes the claims that processes killed while taking `lockFile` left beside it (killed before
 * removing its claim, one that got the lock leaves a second link to it): whoever holds the lock
 * tidies up, so the directory does not fill with them.
 */
async function removeDeadClaims(lockFile: string): Promise<void> {
  const prefix = `${path.basename(lockFile)}.`;
  const names = await fs.readdir(path.dirname(lockFile)).catch(() => [] as string[]);
  for (const name of names) {
    const owner = /^(\d+)\.[a-z0-9]+$/.exec(name.slice(prefix.length));
    if (!name.startsWith(prefix) || !owner || Number(owner[1]) === process.pid) continue;
    const claim = path.join(path.dirname(lockFile), name);
    // Judged as a lock is: one still being written (no pid yet, young) is left to its writer.
    const content = await readLock(claim);
    if (content && isStale(content)) await fs.rm(claim, { force: true });
  }
}

/** Our pid and start in the claim file, on disk before the claim is linked as the lock. */
async function writeClaim(claim: string): Promise<void> {
  const handle = await fs.open(claim, 'w');
  try {
    await handle.writeFile(OWN_START === undefined ? `${process.pid}\n` : `${process.pid} ${OWN_START}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

interface LockContent {
  /** Undefined when the file holds no pid (empty, garbage). */
  pid: number | undefined;
  /** The holder's processStart, when it wrote one (locks of earlier versions hold the pid alone). */
  start: string | undefined;
  ageMs: number;
}

/** What a lock file holds and how old it is, or undefined when it vanished meanwhile. */
async function readLock(lockFile: string): Promise<LockContent | undefined> {
  try {
    const handle = await fs.open(lockFile, 'r');
    try {
      const [pidText, start] = (await handle.readFile('utf8')).trim().split(' ');
      const pid = Number.parseInt(pidText, 10);
      return { pid: Number.isInteger(pid) && pid > 0 ? pid : undefined, start, ageMs: Date.now() - (await handle.stat()).mtimeMs };
    } finally {
      await handle.close();
    }
  } catch {
    return undefined;
  }
}

/** A lock whose holder died, or one that has held no pid for longer than its writer could take to write it. */
function isStale(lock: LockContent): boolean {
  return lock.pid === undefined ? lock.ageMs > STALE_WITHOUT_PID_MS : !processAlive(lock.pid, lock.start);
}

/**
 * Whether a process exists (EPERM: it does, but belongs to someone else), and, given the start
 * it recorded, is still that process: a pid is given to another process after its holder died,
 * and pids start again at every boot (the power cut a journal exists for).
 */
export function processAlive(pid: number, start?: string): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (start === undefined) return true;
  const now = processStart(pid);
  return now === undefined || now === start;
}

/** This boot's id, read once (a lock holder still waited for is checked every few ms). */
const BOOT_ID = (() => {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
})();

/**
 * What tells a process from a later one with the same pid: the boot and the process's start time
 * in clock ticks since boot (field 22 of /proc/PID/stat). Undefined where /proc does not say.
 */
export function processStart(pid: number): string | undefined {
  if (!BOOT_ID) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count from after its last ')'.
    const startTicks = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[22 - 3];
    return startTicks ? `${BOOT_ID}:${startTicks}` : undefined;
  } catch {
    return undefined;
  }
}

/** This process's processStart, written in its locks and journals. */
export const OWN_START = processStart(process.pid);

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
