import { stringOption, type ParsedValues } from '../cli/command.js';
import { TableStore } from '../tables/store.js';
import { installdirOf } from '../tables/schema.js';
import type { Tables } from '../tables/types.js';
import { dbPathFrom, xcatrootFrom, type Locations } from './locations.js';
import { sandboxFrom, type Sandbox } from './sandbox.js';

/** What every command works on: the sandbox root and the table file. */
export interface Context {
  sandbox: Sandbox;
  store: TableStore;
  dbPath: string;
}

/** The context from `--root`/IMGPORT_ROOT and `--db`/IMGPORT_DB. */
export function contextFrom(values: ParsedValues, env: NodeJS.ProcessEnv = process.env): Context {
  const sandbox = sandboxFrom(stringOption(values, 'root'), env);
  const dbPath = dbPathFrom(stringOption(values, 'db'), sandbox, env);
  return { sandbox, store: new TableStore(dbPath), dbPath };
}

/** Where xCAT keeps things: installdir from the site table, XCATROOT from the environment. */
export function locationsFrom(ctx: Context, tables: Tables, env: NodeJS.ProcessEnv = process.env): Locations {
  return { sandbox: ctx.sandbox, installdir: installdirOf(tables), xcatroot: xcatrootFrom(env) };
}
