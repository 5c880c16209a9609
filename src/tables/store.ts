import fs from 'node:fs/promises';
import path from 'node:path';
import { Low, type Adapter } from 'lowdb';
import { describeFsError, TableError } from '../core/errors.js';
import { acquirePidLock } from '../core/pid-lock.js';
import { checkColumn, checkTable, CONTROL_CHARACTER, TABLES } from './schema.js';
import type { Row, Tables } from './types.js';

/** How long update() waits for another process's lock before giving up. */
const LOCK_TIMEOUT_MS = 60_000;

/**
 * The table file: `{ "TABLE": [ {col: "value"}, ... ], ... }`, one JSON file. The only code that
 * reads or writes it. Writes are atomic and durable (DurableTableFile), and every
 * read-modify-write holds a lock file next to it, so concurrent processes never lose a change.
 */
export class TableStore {
  constructor(readonly file: string) {}

  /** A snapshot of every table; a missing file holds no tables. */
  async read(): Promise<Tables> {
    const db = new Low<Record<string, unknown>>(new DurableTableFile(this.file), {});
    try {
      await db.read();
    } catch (err) {
      if (err instanceof TableError) throw err;
      throw new TableError(`cannot read the table file ${this.file}: ${describeFsError(err)}`);
    }
    return this.validate(db.data);
  }

  /**
   * Locked read-modify-write: `change` mutates the tables it is given; what it returns is
   * returned. If it throws, or leaves the tables outside the schema, nothing is written.
   */
  async update<T>(change: (tables: Tables) => T | Promise<T>): Promise<T> {
    // A table file kept as a link: the file it leads to is locked and replaced, the link stays.
    const file = await fs.realpath(this.file).catch(async () => {
      await refuseDanglingLink(this.file);
      return this.file;
    });
    await fs.mkdir(path.dirname(file), { recursive: true }).catch((err: NodeJS.ErrnoException) => {
      // A file where the directory should be: EEXIST (the directory itself) or ENOTDIR (one above it).
      const reason = err.code === 'EEXIST' ? 'not a directory' : describeFsError(err);
      throw new TableError(`cannot create ${path.dirname(file)}, the table file's directory: ${reason}`);
    });
    const unlock = await this.lock(file);
    try {
      const tables = await this.read();
      const result = await change(tables);
      const db = new Low(new DurableTableFile(file), this.validate(tables));
      await db.write();
      return result;
    } finally {
      await unlock();
    }
  }

  /** Checks the shape against the schema; returns the tables without empty ones. */
  private validate(data: Record<string, unknown>): Tables {
    const where = `table file ${this.file}`;
    const tables: Tables = {};
    for (const [table, rows] of Object.entries(data)) {
      naming(where, () => checkTable(table));
      if (!Array.isArray(rows)) throw new TableError(`${where}: table ${table} is not a list of rows`, table);
      const keys = new Set<string>();
      rows.forEach((row: unknown, index) => {
        const at = `table ${table} row ${index + 1}`;
        if (!isPlainObject(row)) throw new TableError(`${where}: ${at} is not an object`, table);
        for (const [column, value] of Object.entries(row)) {
          naming(where, () => checkColumn(table, column));
          if (typeof value !== 'string') throw new TableError(`${where}: table ${table} column ${column} of row ${index + 1} is not a string`, table);
          if (CONTROL_CHARACTER.test(value)) throw new TableError(`${where}: table ${table} column ${column} of row ${index + 1} holds a control character`, table);
        }
        // Rows are found by their key: one without it, or a second with the same, would be lost or shadowed.
        const key = TABLES[table].key.map((column) => row[column]);
        if (key.some((value) => !value)) throw new TableError(`${where}: ${at} has no ${TABLES[table].key.join(' and ')}`, table);
        const id = JSON.stringify(key);
        if (keys.has(id)) throw new TableError(`${where}: ${at} has the same ${TABLES[table].key.join(' and ')} as an earlier row (${key.join(', ')})`, table);
        keys.add(id);
      });
      if (rows.length > 0) tables[table] = rows as Row[];
    }
    return tables;
  }

  /** Takes the lock file (FILE.lock holding our pid); resolves to its release. */
  private async lock(file: string): Promise<() => Promise<void>> {
    const lockFile = `${file}.lock`;
    const attempt = await acquirePidLock(lockFile, LOCK_TIMEOUT_MS).catch((err) => {
      throw new TableError(`cannot lock the table file ${this.file} (${lockFile}): ${describeFsError(err)}`);
    });
    if (!attempt.acquired) {
      throw new TableError(`the table file ${this.file} stays locked by process ${attempt.holder ?? '?'} (${lockFile})`);
    }
    return attempt.release;
  }
}

/**
 * lowdb's adapter for the table file. lowdb's own text file renames a temporary file it never
 * flushed: after a power cut soon after a change, the file could be there but empty, every image
 * definition lost. Here the temporary file is on disk before the rename, and the directory is
 * flushed after it. The new file has the old one's permissions, owner and group (a table file
 * kept private stays so; a first one is 0644 less the umask). A failed write removes the
 * temporary file and leaves the table file as it was.
 */
class DurableTableFile implements Adapter<Record<string, unknown>> {
  constructor(readonly file: string) {}

  /** The file's object of tables; null when there is no file. */
  async read(): Promise<Record<string, unknown> | null> {
    let text: string;
    try {
      text = await fs.readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      await refuseDanglingLink(this.file);
      return null;
    }
    const data: unknown = JSON.parse(text);
    // Refused here: lowdb takes a falsy value (null, false, 0) for no data, an empty store the next change overwrites.
    if (!isPlainObject(data)) throw new TableError(`table file ${this.file}: not a JSON object of tables`);
    return data;
  }

  async write(data: Record<string, unknown>): Promise<void> {
    const temporary = path.join(path.dirname(this.file), `.${path.basename(this.file)}.tmp`);
    try {
      const old = await fs.stat(this.file).catch(() => undefined);
      await fs.rm(temporary, { force: true }); // a killed run's, whose mode 'w' would keep
      const handle = await fs.open(temporary, 'wx', old ? old.mode & 0o7777 : 0o644);
      try {
        if (old) {
          await handle.chmod(old.mode & 0o7777); // as it was, whatever the umask
          // Its owner and group too (a group that could read it still can); only root may give it away.
          await handle.chown(old.uid, old.gid).catch((err: NodeJS.ErrnoException) => {
            if (err.code !== 'EPERM') throw err;
          });
        }
        await handle.writeFile(formatTables(data as Tables), 'utf8');
        await handle.sync();
      } finally {
        await handle.close();
      }
      await fs.rename(temporary, this.file);
    } catch (err) {
      await fs.rm(temporary, { force: true }).catch(() => undefined);
      throw new TableError(`cannot write the table file ${this.file}: ${describeFsError(err)}`);
    }
    // The rename is the change: once done it stands, and a failure to flush the directory cannot
    // undo it, so it is not reported as a failed write (the import flushes the filesystem again, and warns).
    await syncDirectory(path.dirname(this.file)).catch(() => undefined);
  }
}

/**
 * Refuses a missing table file whose path goes through a link to nothing (its storage not
 * mounted): read as no tables, and the next change writing a new file in the link's place.
 */
async function refuseDanglingLink(file: string): Promise<void> {
  for (let at = file; at !== path.dirname(at); at = path.dirname(at)) {
    const target = await fs.readlink(at).catch(() => undefined);
    if (target === undefined || (await fs.stat(at).then(() => true, () => false))) continue;
    const where = at === file ? `the table file ${file} is a link` : `the table file ${file} is under ${at}, a link`;
    throw new TableError(`${where} to ${path.resolve(path.dirname(at), target)}, which does not exist (storage not mounted?)`);
  }
}

/** fsync of a directory: the renames and creations in it are on disk. */
async function syncDirectory(dir: string): Promise<void> {
  const handle = await fs.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Runs a schema check, putting `where` (the file) in front of its error message. */
function naming(where: string, check: () => unknown): void {
  try {
    check();
  } catch (err) {
    if (err instanceof TableError) throw new TableError(`${where}: ${err.message}`, err.table);
    throw err;
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The file's text: tables in schema order, one row per line (diffable, greppable), columns in
 * schema order, empty tables left out.
 */
export function formatTables(tables: Tables): string {
  const parts: string[] = [];
  for (const [table, schema] of Object.entries(TABLES)) {
    const rows = tables[table];
    if (!rows?.length) continue;
    const lines = rows.map((row) => {
      const ordered: Row = {};
      for (const column of schema.columns) if (row[column] !== undefined) ordered[column] = row[column];
      return '    ' + JSON.stringify(ordered);
    });
    parts.push(`  ${JSON.stringify(table)}: [\n${lines.join(',\n')}\n  ]`);
  }
  return parts.length ? `{\n${parts.join(',\n')}\n}\n` : '{}\n';
}
