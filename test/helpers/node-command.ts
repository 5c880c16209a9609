/**
 * How tests start a Node program (our commands, a script): `spawn(NODE, [...NODE_ARGS, script,
 * ...args])`. The test runner puts into every child's environment a NODE_OPTIONS that preloads its
 * process-tracking hooks: ~0.3 s of start-up per process, which made up most of the suite's time.
 * `env -u` drops it, and NODE_EXTRA_CA_CERTS (~45 ms to read the bundle; nothing here uses TLS).
 */
export const NODE = '/usr/bin/env'; // by its path: some tests run with a PATH that lacks it
export const NODE_ARGS = ['-u', 'NODE_OPTIONS', '-u', 'NODE_EXTRA_CA_CERTS', process.execPath];
