/** A table row: column -> value. Unset columns are absent; values are strings. */
export type Row = Record<string, string>;

/** The items of a comma-separated value (a list column, a noderange), trimmed, empty ones left out. */
export function listItems(value: string | undefined): string[] {
  return (value ?? '').split(',').map((item) => item.trim()).filter(Boolean);
}

/** Every table, as the table file holds them: `{ "TABLE": [row, ...], ... }`. */
export type Tables = Record<string, Row[]>;

/**
 * Whether a row is commented out: its `disable` column set to anything but '0' or 'no' (xCAT's
 * every query skips such rows; tabdump still shows them).
 */
export function isDisabled(row: Row): boolean {
  const value = row.disable;
  return value !== undefined && value !== '' && value !== '0' && value.toLowerCase() !== 'no';
}

/** The tables as xCAT's lookups see them: the rows that are not disabled. */
export function activeRows(tables: Tables): Tables {
  return Object.fromEntries(Object.entries(tables).map(([name, rows]) => [name, rows.filter((row) => !isDisabled(row))]));
}
