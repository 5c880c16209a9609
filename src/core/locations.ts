import { Sandbox } from './sandbox.js';

/** Where xCAT keeps things, as logical paths (see Sandbox). */
export interface Locations {
  sandbox: Sandbox;
  /** The site table's installdir, else /install. */
  installdir: string;
  /** XCATROOT from the environment, else /opt/xcat. */
  xcatroot: string;
}

export const DEFAULT_INSTALLDIR = '/install';
export const DEFAULT_XCATROOT = '/opt/xcat';
/** Where the table file lives when neither --db nor IMGPORT_DB says otherwise (under the root). */
export const DEFAULT_DB = '/var/lib/imgport/tables.json';

export function xcatrootFrom(env: NodeJS.ProcessEnv = process.env): string {
  return env.XCATROOT || DEFAULT_XCATROOT;
}

/** The table file: --db, else IMGPORT_DB, else DEFAULT_DB under the sandbox root. */
export function dbPathFrom(dbOption: string | undefined, sandbox: Sandbox, env: NodeJS.ProcessEnv = process.env): string {
  return dbOption ?? (env.IMGPORT_DB || sandbox.real(DEFAULT_DB));
}
