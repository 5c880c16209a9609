/** A table row: column -> value. Unset columns are absent; values are strings. */
export type Row = Record<string, string>;

/** Every table, as the table file holds them: `{ "TABLE": [row, ...], ... }`. */
export type Tables = Record<string, Row[]>;
