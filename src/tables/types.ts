/** A table row: column -> value. Unset columns are absent; values are strings. */
export type Row = Record<string, string>;

/** The items of a comma-separated value (a list column, a noderange), trimmed, empty ones left out. */
export function listItems(value: string | undefined): string[] {
  return (value ?? '').split(',').map((item) => item.trim()).filter(Boolean);
}

/** Every table, as the table file holds them: `{ "TABLE": [row, ...], ... }`. */
export type Tables = Record<string, Row[]>;
