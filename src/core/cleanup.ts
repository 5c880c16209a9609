/**
 * Undo actions for the current command: temporary files and staging directories register a
 * cleanup here, and unregister it once their work is committed. On failure, SIGINT or SIGTERM
 * the command runner runs whatever is still registered (newest first), so nothing half-written
 * is left behind.
 */
type Cleanup = () => void | Promise<void>;

const pending = new Set<Cleanup>();

/** Registers an undo action; the returned function unregisters it (call it after committing). */
export function onCleanup(fn: Cleanup): () => void {
  pending.add(fn);
  return () => {
    pending.delete(fn);
  };
}

/** Runs every registered undo action, newest first; errors are reported, not thrown. */
export async function runCleanups(): Promise<void> {
  const fns = [...pending].reverse();
  pending.clear();
  for (const fn of fns) {
    try {
      await fn();
    } catch (err) {
      process.stderr.write(`Warning: cleanup failed: ${(err as Error).message}\n`);
    }
  }
}

let committed = false;

/**
 * Marks the command's point of no return: its result is complete and in place (the bundle
 * renamed, the tables written). A signal after this must not claim that nothing was changed.
 */
export function markCommitted(): void {
  committed = true;
}

export function isCommitted(): boolean {
  return committed;
}
