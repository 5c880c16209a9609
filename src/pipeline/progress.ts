/**
 * A one-line progress display on standard error: bytes read and written, rate and ETA.
 * The walk knows the total input size up front, so the ETA is real, not a guess.
 */
export interface Progress {
  update(bytesRead: number, bytesWritten: number): void;
  done(): void;
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

/** 1536 -> "1.5 KiB". */
export function formatBytes(n: number): string {
  let unit = 0;
  while (n >= 1024 && unit < UNITS.length - 1) {
    n /= 1024;
    unit++;
  }
  return `${n.toFixed(unit === 0 ? 0 : 1)} ${UNITS[unit]}`;
}

/** Seconds -> "1:05" or "1:02:03". */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${sec}` : `${m}:${sec}`;
}

/** The progress line for the given state (pure, for tests). */
export function progressLine(bytesRead: number, bytesWritten: number, totalBytes: number, elapsedSeconds: number): string {
  const rate = elapsedSeconds > 0 ? bytesRead / elapsedSeconds : 0;
  const percent = totalBytes > 0 ? Math.min(100, (100 * bytesRead) / totalBytes) : 100;
  const eta = rate > 0 && totalBytes > bytesRead ? formatDuration((totalBytes - bytesRead) / rate) : '0:00';
  return `${percent.toFixed(0).padStart(3)}%  read ${formatBytes(bytesRead)} of ${formatBytes(totalBytes)}  wrote ${formatBytes(bytesWritten)}  ${formatBytes(rate)}/s  ETA ${eta}`;
}

/** Progress on stderr when enabled (default: when stderr is a terminal), at most 5 updates a second. */
export function createProgress(opts: { totalBytes: number; enabled?: boolean }): Progress {
  const enabled = opts.enabled ?? process.stderr.isTTY === true;
  const start = Date.now();
  let last = 0;
  let shown = false;
  let latest: [number, number] = [0, 0];
  const draw = (): void => {
    shown = true;
    process.stderr.write(`\r${progressLine(latest[0], latest[1], opts.totalBytes, (Date.now() - start) / 1000)}\x1b[K`);
  };
  return {
    update(bytesRead, bytesWritten) {
      latest = [bytesRead, bytesWritten];
      if (!enabled) return;
      const now = Date.now();
      if (now - last < 200) return;
      last = now;
      draw();
    },
    done() {
      if (!enabled) return;
      draw();
      if (shown) process.stderr.write('\n');
    },
  };
}
