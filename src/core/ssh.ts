import { UsageError } from './errors.js';

/**
 * ssh runs its command through the remote user's shell, joined from its words: the one place
 * where a command line is text. Every path is quoted as one word, and the host can never be taken
 * for an ssh option.
 */

/** Quotes one word for a POSIX shell. */
export function shellQuote(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/** ssh's argument array running `remoteWords` (already quoted where needed) on USER@HOST. */
export function sshArgs(remotehost: string, ...remoteWords: string[]): string[] {
  if (!remotehost || remotehost.startsWith('-') || /\s/.test(remotehost)) throw new UsageError(`bad remote host '${remotehost}'`);
  return ['-o', 'BatchMode=yes', '--', remotehost, ...remoteWords];
}
