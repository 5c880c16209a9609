import fs from 'node:fs/promises';
import path from 'node:path';
import { DataFile } from 'lowdb/node';
import { TableError } from '../core/errors.js';
import { acquirePidLock } from '../core/pid-lock.js';
import { checkColumn, checkTable, TABLES } from './schema.js';
import type { Row, Tables } from './types.js';

/** How long update() waits for another process's lock before giving up. */
const LOCK_TIMEOUT_MS = 60_000;

/**
 * The table file: `{ "TABLE": [ {col: "value"}, ... ], ... }`, one JSON file. The only code that
 * reads or writes it. Writes are atomic (lowdb writes a temporary file and renames it), and every
 * read-modify-write holds a lock file next to it, so concurrent processes never lose a change.
 */
export class TableStore {
  constructor(readonly file: string) {}

  /** A snapshot of every table; a missing file holds no tables. */
  async read(): Promise<Tables> {
    let data: unknown;
    try {
      data = await this.adapter().read();
    } catch (err) {
      throw new TableError(`cannot read the table file ${this.file}: ${(err as Error).message}`);
    }
    return data === null ? {} : this.validate(data);
  }

  /**
   * Locked read-modify-write: `change` mutates the tables it is given; what it returns is
   * returned. If it throws, or leaves the tables outside the schema, nothing is written.
   */
  async update<T>(change: (tables: Tables) => T | Promise<T>): Promise<T> {
    await fs.mkdir(path.dirname(this.file), { recursive: true });
    const unlock = await this.lock();
    try {
      const tables = await this.read();
      const result = await change(tables);
      await this.adapter().write(this.validate(tables));
      return result;
    } finally {
      await unlock();
    }
  }

  private adapter(): DataFile<unknown> {
    return new DataFile<unknown>(this.file, { parse: JSON.parse, stringify: (data) => formatTables(data as Tables) });
  }

  /** Checks the shape against the schema; returns the tables without empty ones. */
  private validate(data: unknown): Tables {
    const where = `table file ${this.file}`;
    if (!isPlainObject(data)) throw new TableError(`${where}: not a JSON object of tables`);
    const tables: Tables = {};
    for (const [table, rows] of Object.entries(data)) {
      naming(where, () => checkTable(table));
      if (!Array.isArray(rows)) throw new TableError(`${where}: table ${table} is not a list of rows`, table);
      rows.forEach((row: unknown, index) => {
        if (!isPlainObject(row)) throw new TableError(`${where}: table ${table} row ${index + 1} is not an object`, table);
        for (const [column, value] of Object.entries(row)) {
          naming(where, () => checkColumn(table, column));
          if (typeof value !== 'string') {
            throw new TableError(`${where}: table ${table} column ${column} of row ${index + 1} is not a string`, table);
          }
        }
      });
      if (rows.length > 0) tables[table] = rows as Row[];
    }
    return tables;
  }

  /** Takes the lock file (FILE.lock holding our pid); resolves to its release. */
  private async lock(): Promise<() => Promise<void>> {
    const lockFile = `${this.file}.lock`;
    const attempt = await acquirePidLock(lockFile, LOCK_TIMEOUT_MS);
    if (!attempt.acquired) {
      throw new TableError(`the table file ${this.file} stays locked by process ${attempt.holder ?? '?'} (${lockFile})`);
    }
    return attempt.release;
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
